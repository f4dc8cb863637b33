//! Building every checkpoint of a store at once, entity by entity.
//!
//! A checkpoint holds, for each entity, what replaying that entity's events
//! up to the checkpoint's position gives: a replay of one entity's events
//! touches only its facts and `until` expiries (which is also what lets a
//! query about one entity start from its part of a checkpoint). So when a
//! store has no checkpoint (after its first import, a reindex, or a write
//! that removed every one), every checkpoint is built in one pass over the
//! entity index, whose elements carry each event's changes to their
//! entity, in (entity, replay order): each entity is replayed alone, in a
//! small state, and its part of every checkpoint is encoded as its replay
//! passes that checkpoint's position (once, if nothing touches it until
//! the next). Runs of entities are built side by side, each starting
//! chunks of its own, as [`super::encode_in_runs`] does for one state.
//!
//! The log is read only for events that change nothing. An entity index
//! that still holds elements of store format 1 (which keep no changes) is
//! left to the replay in date order, which reads the log in order.
//!
//! Every checkpoint is being built at once, so the chunks each run seals
//! go to an unnamed temporary file in the store's directory until the run
//! is done, and each checkpoint is written from there in turn: together
//! they take as much space as on disk, and memory holds one at a time.
//!
//! The replay in date order ([`Store::build_checkpoints`] past the last
//! checkpoint) gives the same checkpoints; a test builds both.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{
    ChunkWriter, Chunks, Header, Placement, Strings, all_certain, encode_entity, not_certain,
};
use crate::error::{Error, Result};
use crate::state::{Fed, Replay};
use crate::store::{Snapshot, Store, keys};

/// Where checkpoints go in replay order.
struct Plan {
    /// The position of each checkpoint, as [`Placement`] puts them.
    positions: Vec<(i64, u64)>,
    /// For each, the start of the last event at or before it that a replay
    /// fed (not corrected), up to which it ran the `until` expiries. An
    /// entity's replay runs them after its own last event, where the
    /// replay in date order ran them before the event at that start: the
    /// same, since no `until` ends at or before its event's start
    /// ([`crate::event::Event::validate`]).
    expired_through: Vec<i64>,
}

/// A range of keys, (from, to): to the end if `to` is `None`.
pub(in crate::store) type KeyRange = (Vec<u8>, Option<Vec<u8>>);

/// One run of entities' part of every checkpoint (`None` for a checkpoint
/// one of whose entities was too large to encode), its chunks in `spill`.
struct RunParts {
    bodies: Vec<Option<Spilled>>,
    spill: Spill,
}

/// A run's part of one checkpoint: where its chunks are in the run's
/// [`Spill`] (each chunk's key, offset and length), and how many
/// attributes hold anything in it.
#[derive(Default)]
struct Spilled {
    chunks: Vec<(Vec<u8>, u64, usize)>,
    slots: u32,
}

/// A run's part of one checkpoint while it is built.
struct Part {
    writer: ChunkWriter,
    spilled: Spilled,
}

/// The chunks a run has sealed, end to end in an unnamed temporary file
/// (created at the first), which is gone once closed.
struct Spill {
    dir: std::path::PathBuf,
    file: Option<File>,
    end: u64,
}

impl Spill {
    fn new(dir: &std::path::Path) -> Spill {
        Spill {
            dir: dir.to_path_buf(),
            file: None,
            end: 0,
        }
    }

    /// Keeps the chunks `part`'s writer has sealed.
    fn take_sealed(&mut self, part: &mut Part) -> Result<()> {
        for (first, bytes) in part.writer.chunks.drain(..) {
            let file = match &self.file {
                Some(file) => file,
                None => {
                    let file = tempfile::tempfile_in(&self.dir)
                        .map_err(|e| self.error("create a temporary file for checkpoints in", e))?;
                    self.file.insert(file)
                }
            };
            file.write_all_at(&bytes, self.end)
                .map_err(|e| self.error("write checkpoints to a temporary file in", e))?;
            part.spilled.chunks.push((first, self.end, bytes.len()));
            self.end += bytes.len() as u64;
        }
        Ok(())
    }

    /// The chunks of `spilled`, read back.
    fn read(&self, spilled: Spilled) -> Result<Chunks> {
        let mut chunks = Vec::with_capacity(spilled.chunks.len());
        for (first, at, len) in spilled.chunks {
            let file = self.file.as_ref().expect("a chunk spilled is in the file");
            let mut bytes = vec![0; len];
            file.read_exact_at(&mut bytes, at)
                .map_err(|e| self.error("read checkpoints back from a temporary file in", e))?;
            chunks.push((first, bytes));
        }
        Ok(Chunks {
            chunks,
            slots: spilled.slots,
        })
    }

    /// A failure to `action` the store's directory.
    fn error(&self, action: &'static str, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: self.dir.clone(),
            source,
        }
    }
}

impl Store {
    /// Builds every checkpoint of a store that has none, about every
    /// `every` records (as [`Placement`] puts them). Returns how many it built, or `None` if the entity index holds
    /// elements of store format 1, which keep no changes: a build in date
    /// order reads the log in order, where this would read it entity by
    /// entity.
    pub(super) fn build_every_checkpoint(&self, every: u64) -> Result<Option<u64>> {
        let runs = super::super::cores().min(super::MAX_RUNS);
        self.build_every_checkpoint_in(every, runs)
    }

    /// [`Store::build_every_checkpoint`] in up to `runs` runs of entities.
    pub(in crate::store) fn build_every_checkpoint_in(
        &self,
        every: u64,
        runs: usize,
    ) -> Result<Option<u64>> {
        let snapshot = self.latest()?;
        // Positions are read twice (here, and for the headers) rather than
        // held: a walk of `by_time` is cheap.
        let mut plan = Plan {
            positions: Vec::new(),
            expired_through: Vec::new(),
        };
        let mut fed_start = i64::MIN;
        let mut placement = Placement::new(every, None);
        let mut previous = None;
        for position in snapshot.positions_after(None, None) {
            let (start, seq) = position?;
            if placement.before(start)
                && let Some(previous) = previous
            {
                plan.positions.push(previous);
                plan.expired_through.push(fed_start);
            }
            if !snapshot.is_corrected(seq) {
                fed_start = start;
            }
            if placement.after() {
                plan.positions.push((start, seq));
                plan.expired_through.push(fed_start);
            }
            previous = Some((start, seq));
        }
        if plan.positions.is_empty() {
            return Ok(Some(0));
        }
        let runs = self.entity_runs(runs)?;
        // The end of each event's date, by seq, as the runs replay them.
        let ends: Vec<AtomicI64> = (0..snapshot.head())
            .map(|_| AtomicI64::new(i64::MIN))
            .collect();
        let parts = super::super::map_side_by_side(&runs, runs.len(), |(from, to)| {
            self.build_run(
                &snapshot,
                &plan,
                &ends,
                from,
                to.as_deref(),
                from.is_empty(),
            )
        });
        // Each run's parts of the checkpoints, in order, and its spill.
        let mut runs: Vec<(std::vec::IntoIter<Option<Spilled>>, Spill)> = Vec::new();
        for part in parts {
            let Some(part) = part? else {
                return Ok(None);
            };
            runs.push((part.bodies.into_iter(), part.spill));
        }
        // The headers, from every record in replay order, before anything
        // is written: a record that cannot be read leaves no checkpoint.
        let mut header = Header {
            max_end: i64::MIN,
            requires: 0,
            count: 0,
        };
        let mut headers = Vec::with_capacity(plan.positions.len());
        for record in snapshot.positions_after(None, None) {
            let (start, seq) = record?;
            let Some(&position) = plan.positions.get(headers.len()) else {
                break;
            };
            let end = match snapshot.is_corrected(seq) {
                true => None,
                false => Some(match end_of(&ends, seq)?.load(Ordering::Relaxed) {
                    i64::MIN => self.end_of_unchanging(&snapshot, start, seq)?,
                    end => end,
                }),
            };
            header.take(seq, end, snapshot.correctors(seq));
            if (start, seq) == position {
                headers.push(header);
            }
        }
        // Each checkpoint, its parts read back from the runs in turn.
        let mut built = 0;
        for (&(start, seq), header) in plan.positions.iter().zip(headers) {
            let mut body = Some(Chunks::default());
            for (parts, spill) in &mut runs {
                let part = parts
                    .next()
                    .expect("every run has a part of every checkpoint");
                body = match (body, part) {
                    (Some(mut body), Some(part)) => {
                        body.append(spill.read(part)?);
                        Some(body)
                    }
                    _ => None,
                };
            }
            if let Some(body) = body {
                self.put_checkpoint(&keys::time(start, seq), header, &body)?;
                built += 1;
            }
        }
        Ok(Some(built))
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
    pub(in crate::store) fn entity_runs(&self, runs: usize) -> Result<Vec<KeyRange>> {
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
            if cuts.last().is_none_or(|last| *last < cut) && cut.as_slice() > &first[..] {
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
        ends: &[AtomicI64],
        from: &[u8],
        to: Option<&[u8]>,
        from_start: bool,
    ) -> Result<Option<RunParts>> {
        let first = from_start.then_some("");
        let mut parts: Vec<Option<Part>> = plan
            .positions
            .iter()
            .map(|_| {
                Some(Part {
                    writer: ChunkWriter::new(first),
                    spilled: Spilled::default(),
                })
            })
            .collect();
        let mut spill = Spill::new(self.path());
        let mut current: Option<EntityReplay> = None;
        let mut event = None;
        for element in self.by_entity.range(from, to) {
            let element = element.map_err(|e| self.page_error("by_entity", e))?;
            let (entity, ..) = keys::decode_entity(&element)
                .ok_or_else(|| Error::Corrupt("an entity index key is unreadable".into()))?;
            if current.as_ref().is_none_or(|c| c.entity != entity) {
                if let Some(mut done) = current.take() {
                    done.pass_through(plan, &mut parts, &mut spill, None)?;
                }
                current = Some(EntityReplay::new(entity));
            }
            let replay = current.as_mut().expect("just set");
            // One event, its memory reused from element to element.
            let (start, seq) = match snapshot.entity_changes_into(entity, &element, &mut event)? {
                Some((position, true)) => position,
                // Above the head, or corrected.
                None => continue,
                // Store format 1: left to the replay in date order.
                Some((_, false)) => return Ok(None),
            };
            let event = event.as_ref().expect("just read");
            replay.pass_through(plan, &mut parts, &mut spill, Some((start, seq)))?;
            end_of(ends, seq)?.store(event.at.end(), Ordering::Relaxed);
            replay.feed(event, seq)?;
        }
        if let Some(mut done) = current {
            done.pass_through(plan, &mut parts, &mut spill, None)?;
        }
        let mut bodies = Vec::with_capacity(parts.len());
        for part in parts {
            let Some(mut part) = part else {
                bodies.push(None);
                continue;
            };
            if part.writer.close().is_none() {
                bodies.push(None);
                continue;
            }
            spill.take_sealed(&mut part)?;
            part.spilled.slots = part.writer.slots;
            bodies.push(Some(part.spilled));
        }
        Ok(Some(RunParts { bodies, spill }))
    }
}

/// One entity replayed alone, and how many checkpoints it has passed.
struct EntityReplay {
    entity: String,
    replay: Replay,
    passed: usize,
    /// Its part of the last checkpoint it passed (`None` inside if it had
    /// none), while no event or expiry has changed it since: an entity
    /// that nothing touches between two checkpoints is encoded once.
    encoded: Option<Option<(Vec<u8>, usize)>>,
}

impl EntityReplay {
    fn new(entity: &str) -> EntityReplay {
        EntityReplay {
            entity: entity.to_string(),
            replay: Replay::new(all_certain()),
            passed: 0,
            encoded: None,
        }
    }

    /// Feeds the entity's next event.
    fn feed(&mut self, event: &crate::event::Event, seq: u64) -> Result<()> {
        self.encoded = None;
        match self.replay.feed(event) {
            Fed::Certain => Ok(()),
            _ => Err(not_certain(seq)),
        }
    }

    /// Encodes the entity's part of every checkpoint before `position`
    /// (the next event's), or of every one left if `None`; the chunks this
    /// seals go to `spill`.
    fn pass_through(
        &mut self,
        plan: &Plan,
        parts: &mut [Option<Part>],
        spill: &mut Spill,
        position: Option<(i64, u64)>,
    ) -> Result<()> {
        while let Some(&checkpoint) = plan.positions.get(self.passed) {
            if position.is_some_and(|p| p <= checkpoint) {
                break;
            }
            let through = plan.expired_through[self.passed];
            if self.replay.next_expiry().is_some_and(|end| end <= through) {
                self.encoded = None;
            }
            self.replay.expire_through(through);
            let slot = &mut parts[self.passed];
            if let Some(part) = slot {
                if self.encode_into(&mut part.writer).is_some() {
                    spill.take_sealed(part)?;
                } else {
                    *slot = None;
                }
            }
            self.passed += 1;
        }
        Ok(())
    }

    /// Adds the entity's part to a checkpoint, if it holds anything or
    /// has expiries to come; `None` if it is too large.
    fn encode_into(&mut self, writer: &mut ChunkWriter) -> Option<()> {
        if self.encoded.is_none() {
            let slots: Vec<(&str, &crate::state::Slot)> = self
                .replay
                .state()
                .slots()
                .map(|(_, attr, slot)| (attr, slot))
                .collect();
            let expiries = self.replay.pending_expiries();
            self.encoded = Some(if slots.is_empty() && expiries.is_empty() {
                None
            } else {
                let mut strings = Strings::default();
                let body = encode_entity(&mut strings, &self.entity, &slots, &expiries)?;
                Some((body, slots.len()))
            });
        }
        match self.encoded.as_ref().expect("just encoded") {
            Some((body, slots)) => writer.push(&self.entity, body, *slots),
            None => Some(()),
        }
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

/// The end of record `seq`'s date in `ends`, by seq from 1.
fn end_of(ends: &[AtomicI64], seq: u64) -> Result<&AtomicI64> {
    seq.checked_sub(1)
        .and_then(|i| ends.get(usize::try_from(i).ok()?))
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "an index names record {seq}, which is not in the log"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part with `pages` sealed chunks, each of its index as bytes.
    fn sealed(pages: u8) -> Part {
        let mut writer = ChunkWriter::new(Some(""));
        for page in 0..pages {
            writer
                .chunks
                .push((vec![b'k', page], vec![page; usize::from(page) + 1]));
        }
        Part {
            writer,
            spilled: Spilled::default(),
        }
    }

    #[test]
    fn spilled_chunks_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(dir.path());
        let (mut a, mut b) = (sealed(3), sealed(2));
        spill.take_sealed(&mut a).unwrap();
        spill.take_sealed(&mut b).unwrap();
        assert!(a.writer.chunks.is_empty());
        let expected = sealed(3).writer.chunks;
        assert_eq!(spill.read(a.spilled).unwrap().chunks, expected);
        assert_eq!(
            spill.read(b.spilled).unwrap().chunks,
            sealed(2).writer.chunks
        );
    }

    #[test]
    fn a_spill_that_cannot_make_its_file_is_an_error_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let err = Spill::new(&gone).take_sealed(&mut sealed(1)).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("temporary file for checkpoints"),
            "{message}"
        );
        assert!(message.contains(&gone.display().to_string()), "{message}");
    }

    #[test]
    fn guesses_lie_between_the_first_and_last_key_in_order() {
        let (first, last) = (&b"e0\0\x7f\x01"[..], &b"e9999\0\x80\x02"[..]);
        let guesses: Vec<Vec<u8>> = (1..4).map(|run| between(first, last, run, 4)).collect();
        let mut all = vec![first.to_vec()];
        all.extend(guesses.iter().cloned());
        all.push(last.to_vec());
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
        // The common prefix kept, the next byte spread evenly: '0' to '9'.
        assert!(guesses.iter().all(|g| g.starts_with(b"e")));
        assert_eq!(guesses[1][1], (b'0' + b'9') / 2);
        // The same key twice gives a key at or after it.
        assert!(between(first, first, 1, 2).as_slice() >= first);
    }
}
