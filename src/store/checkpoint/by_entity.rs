//! Building every checkpoint of a store at once, entity by entity.
//!
//! A checkpoint holds, for each entity, what replaying that entity's events
//! up to the checkpoint's position gives: a replay of one entity's events
//! touches only its facts and `until` expiries (which is also what lets a
//! query about one entity start from its part of a checkpoint). So when a
//! store has no checkpoint yet (after the first import, or a reindex), every
//! checkpoint is built in one pass over the entity index, whose elements
//! carry each event's changes to their entity, in (entity, replay order):
//! each entity is replayed alone, in a small state, and its part of every
//! checkpoint is encoded as its replay passes that checkpoint's position.
//! The log is read only for events that change nothing. Runs of entities
//! are built side by side, each starting chunks of its own, as
//! [`super::encode_in_runs`] does for one state.
//!
//! The replay in date order ([`Store::build_checkpoints`] past the last
//! checkpoint) gives the same checkpoints; a test builds both.

use super::{ChunkWriter, Chunks, Header, Strings, all_certain, encode_entity};
use crate::error::{Error, Result};
use crate::state::{Fed, Replay};
use crate::store::{Snapshot, Store, keys};

/// Where checkpoints go in replay order.
struct Plan {
    /// The position of each checkpoint: every `every`-th record.
    positions: Vec<(i64, u64)>,
    /// For each, the start of the last event at or before it that a replay
    /// fed (not corrected), up to which it ran the `until` expiries.
    expired_through: Vec<i64>,
}

/// A range of keys, (from, to): to the end if `to` is `None`.
type KeyRange = (Vec<u8>, Option<Vec<u8>>);

/// One run of entities' part of every checkpoint: the chunks (`None` for a
/// checkpoint one of whose entities was too large to encode), and the end
/// of every event the run replayed, by seq.
struct RunParts {
    bodies: Vec<Option<Chunks>>,
    ends: Vec<(u64, i64)>,
}

impl Store {
    /// Builds a checkpoint every `every` records, for a store that has
    /// none. Returns how many it built.
    pub(super) fn build_every_checkpoint(&self, every: u64) -> Result<u64> {
        let runs = super::super::cores().min(super::MAX_RUNS);
        self.build_every_checkpoint_in(every, runs)
    }

    /// [`Store::build_every_checkpoint`] in up to `runs` runs of entities.
    pub(in crate::store) fn build_every_checkpoint_in(
        &self,
        every: u64,
        runs: usize,
    ) -> Result<u64> {
        let snapshot = self.latest()?;
        let records: Vec<(i64, u64)> = snapshot
            .positions_after(None, None)
            .collect::<Result<_>>()?;
        let every = usize::try_from(every).unwrap_or(usize::MAX);
        let mut plan = Plan {
            positions: Vec::new(),
            expired_through: Vec::new(),
        };
        let mut fed_start = i64::MIN;
        for (i, &(start, seq)) in records.iter().enumerate() {
            if !snapshot.is_corrected(seq) {
                fed_start = start;
            }
            if (i + 1) % every == 0 {
                plan.positions.push((start, seq));
                plan.expired_through.push(fed_start);
            }
        }
        if plan.positions.is_empty() {
            return Ok(0);
        }
        let runs = self.entity_runs(runs)?;
        let parts = super::super::map_side_by_side(&runs, runs.len(), |(from, to)| {
            self.build_run(&snapshot, &plan, from, to.as_deref(), from.is_empty())
        });
        let mut bodies: Vec<Option<Chunks>> = (0..plan.positions.len())
            .map(|_| {
                Some(Chunks {
                    chunks: Vec::new(),
                    slots: 0,
                })
            })
            .collect();
        let mut ends = vec![i64::MIN; usize::try_from(snapshot.head()).unwrap_or(0)];
        for part in parts {
            let part = part?;
            for (seq, end) in part.ends {
                ends[(seq - 1) as usize] = end;
            }
            for (body, run) in bodies.iter_mut().zip(part.bodies) {
                *body = match (body.take(), run) {
                    (Some(mut body), Some(run)) => {
                        body.chunks.extend(run.chunks);
                        body.slots = body.slots.saturating_add(run.slots);
                        Some(body)
                    }
                    _ => None,
                };
            }
        }
        // The headers, from every record in replay order.
        let mut header = Header {
            max_end: i64::MIN,
            requires: 0,
            count: 0,
        };
        let mut built = 0;
        let mut next = plan.positions.iter().zip(bodies).peekable();
        for &(start, seq) in &records {
            let Some(&(&position, _)) = next.peek() else {
                break;
            };
            header.requires = header.requires.max(seq);
            header.count += 1;
            if snapshot.is_corrected(seq) {
                for by in snapshot.correctors(seq) {
                    header.requires = header.requires.max(by);
                }
            } else {
                let end = match ends[(seq - 1) as usize] {
                    i64::MIN => self.end_of_unchanging(&snapshot, start, seq)?,
                    end => end,
                };
                header.max_end = header.max_end.max(end);
            }
            if (start, seq) == position {
                let (_, body) = next.next().expect("peeked");
                if let Some(body) = body {
                    self.put_checkpoint(&keys::time(start, seq), header, &body)?;
                    built += 1;
                }
            }
        }
        Ok(built)
    }

    /// The end of the date of an event no entity element stands for: one
    /// that changes nothing, read from the log.
    fn end_of_unchanging(&self, snapshot: &Snapshot<'_>, start: i64, seq: u64) -> Result<i64> {
        let event = snapshot.event_for_replay(seq, start)?;
        if all_certain().status(event.at) != Fed::Certain {
            return Err(not_certain(seq));
        }
        Ok(event.at.end())
    }

    /// Cuts the entity index into up to `runs` ranges of whole entities,
    /// (from, to), the first from the start and the last to the end. The
    /// cuts are guessed from the first and the last key, as if names were
    /// spread evenly between them.
    fn entity_runs(&self, runs: usize) -> Result<Vec<KeyRange>> {
        let tree = self.by_entity.tree();
        let storage = |e| self.storage(e);
        let (Some((first, _)), Some((last, _))) = (
            tree.first().map_err(storage)?,
            tree.last().map_err(storage)?,
        ) else {
            return Ok(vec![(Vec::new(), None)]);
        };
        let mut cuts: Vec<Vec<u8>> = Vec::new();
        for run in 1..runs {
            let guess = between(&first, &last, run, runs);
            // The page at or after the guess, and its first entity.
            let Some((key, _)) = tree.range(guess..).next().transpose().map_err(storage)? else {
                break;
            };
            let Some((entity, ..)) = keys::decode_entity(&key) else {
                break;
            };
            let cut = keys::entity_prefix(entity);
            if cuts.last().is_none_or(|last| *last < cut) && cut > first.to_vec() {
                cuts.push(cut);
            }
        }
        let mut ranges = Vec::new();
        let mut from = Vec::new();
        for cut in cuts {
            ranges.push((std::mem::replace(&mut from, cut.clone()), Some(cut)));
        }
        ranges.push((from, None));
        Ok(ranges)
    }

    /// Replays each entity of the entity index from `from` up to `to` alone
    /// and encodes its part of every checkpoint of `plan`; the first chunk
    /// of each is keyed by the empty name if `from_start`.
    fn build_run(
        &self,
        snapshot: &Snapshot<'_>,
        plan: &Plan,
        from: &[u8],
        to: Option<&[u8]>,
        from_start: bool,
    ) -> Result<RunParts> {
        let first = from_start.then_some("");
        let mut writers: Vec<Option<ChunkWriter>> = plan
            .positions
            .iter()
            .map(|_| Some(ChunkWriter::new(first)))
            .collect();
        let mut ends = Vec::new();
        let mut current: Option<EntityReplay> = None;
        for element in self.by_entity.range(from, to) {
            let element = element.map_err(|e| self.page_error("by_entity", e))?;
            let (entity, ..) = keys::decode_entity(&element)
                .ok_or_else(|| Error::Corrupt("an entity index key is unreadable".into()))?;
            if current.as_ref().is_none_or(|c| c.entity != entity) {
                if let Some(done) = current.take() {
                    done.finish(plan, &mut writers);
                }
                current = Some(EntityReplay::new(entity));
            }
            let replay = current.as_mut().expect("just set");
            let Some(((start, seq), event)) = snapshot.entity_part(entity, &element)? else {
                continue;
            };
            replay.pass(plan, &mut writers, (start, seq));
            ends.push((seq, event.at.end()));
            if replay.replay.feed(&event) != Fed::Certain {
                return Err(not_certain(seq));
            }
        }
        if let Some(done) = current {
            done.finish(plan, &mut writers);
        }
        Ok(RunParts {
            bodies: writers
                .into_iter()
                .map(|writer| writer.and_then(ChunkWriter::finish))
                .collect(),
            ends,
        })
    }
}

/// One entity replayed alone, and how many checkpoints it has passed.
struct EntityReplay {
    entity: String,
    replay: Replay,
    passed: usize,
}

impl EntityReplay {
    fn new(entity: &str) -> EntityReplay {
        EntityReplay {
            entity: entity.to_string(),
            replay: Replay::new(all_certain()),
            passed: 0,
        }
    }

    /// Encodes the entity's part of every checkpoint before `position`
    /// (the next event's), or of every one left if `None`.
    fn pass_through(
        &mut self,
        plan: &Plan,
        writers: &mut [Option<ChunkWriter>],
        position: Option<(i64, u64)>,
    ) {
        while let Some(&checkpoint) = plan.positions.get(self.passed) {
            if position.is_some_and(|p| p <= checkpoint) {
                break;
            }
            self.replay
                .expire_through(plan.expired_through[self.passed]);
            let writer = &mut writers[self.passed];
            if let Some(w) = writer
                && self.encode_into(w).is_none()
            {
                *writer = None;
            }
            self.passed += 1;
        }
    }

    /// Before the event at `position`.
    fn pass(&mut self, plan: &Plan, writers: &mut [Option<ChunkWriter>], position: (i64, u64)) {
        self.pass_through(plan, writers, Some(position));
    }

    /// After the entity's last event.
    fn finish(mut self, plan: &Plan, writers: &mut [Option<ChunkWriter>]) {
        self.pass_through(plan, writers, None);
    }

    /// Adds the entity's part to a checkpoint, if it holds anything or
    /// has expiries to come; `None` if it is too large.
    fn encode_into(&self, writer: &mut ChunkWriter) -> Option<()> {
        let slots: Vec<(&str, &crate::state::Slot)> = self
            .replay
            .state()
            .slots()
            .map(|(_, attr, slot)| (attr, slot))
            .collect();
        let expiries = self.replay.pending_expiries();
        if slots.is_empty() && expiries.is_empty() {
            return Some(());
        }
        let mut strings = Strings::default();
        let body = encode_entity(&mut strings, &self.entity, &slots, &expiries)?;
        writer.push(&self.entity, &body, slots.len())
    }
}

/// The key `run / runs` of the way from `first` to `last`: their common
/// prefix, then the next eight bytes taken as a number and interpolated.
fn between(first: &[u8], last: &[u8], run: usize, runs: usize) -> Vec<u8> {
    let common = first.iter().zip(last).take_while(|(a, b)| a == b).count();
    let number = |key: &[u8]| {
        let mut bytes = [0u8; 8];
        for (b, k) in bytes.iter_mut().zip(key.iter().skip(common)) {
            *b = *k;
        }
        u128::from(u64::from_be_bytes(bytes))
    };
    let (a, b) = (number(first), number(last));
    let at = a + (b.saturating_sub(a)) * run as u128 / runs as u128;
    let mut key = first[..common].to_vec();
    key.extend_from_slice(&(at as u64).to_be_bytes());
    key
}

fn not_certain(seq: u64) -> Error {
    Error::Corrupt(format!("record {seq} is not certain at the end of time"))
}
