//! Writing a batch: all or nothing, in chunks if it is large.
//!
//! A [`Writer`] holds the store's write lock for one batch. Each chunk
//! pushed is checked (against the batch so far and against the store) and
//! staged above the head: records, index elements, attribute kinds. Nothing
//! is visible to readers until [`Writer::commit`] has checked what only the
//! whole batch can tell (corrections may point forward), published the new
//! head in one atomic write, flushed, and written the head witness. A writer
//! dropped before it commits takes its staged leftovers back; if the process
//! dies instead, the next open does.

use std::collections::HashMap;
use std::sync::MutexGuard;

use chrono::{DateTime, Utc};

use super::pages::Elements;
use super::runs::Runs;
use super::{
    Head, IdPolicy, META_HEAD, META_PENDING, Receipt, Store, encode_kind, keys, record, witness,
};
use crate::error::{Error, Result};
use crate::event::{BatchCheck, Change, Event, Invalid, Located, Validated};

/// How much memory a batch's `by_entity` elements may take before they are
/// spilled to a run (see [`IndexElements::spill`]), unless the store says
/// otherwise.
pub const ENTITY_ELEMENTS_BUDGET: usize = 48 << 20;

/// An event of the batch that corrects others: its seq, id, targets and origin.
struct Correction {
    seq: u64,
    id: String,
    targets: Vec<String>,
    origin: String,
}

/// One batch being written. See the module documentation.
pub struct Writer<'s> {
    store: &'s Store,
    _lock: MutexGuard<'s, ()>,
    policy: IdPolicy,
    /// The head when the batch began: everything above it is this batch's.
    head: Head,
    now: DateTime<Utc>,
    check: BatchCheck,
    next_seq: u64,
    prev_hash: record::Hash,
    /// The hash the next restored record must follow (the last one checked).
    chain: record::Hash,
    last_time: DateTime<Utc>,
    /// Whether the batch restores exported records (decided by its first new event).
    restore: Option<bool>,
    corrections: Vec<Correction>,
    /// Index elements of the staged records, written once at commit.
    elements: IndexElements,
    /// The earliest position in replay order this batch writes at: every
    /// checkpoint from there on must go.
    earliest: Option<[u8; 16]>,
    skipped: u64,
    staged: bool,
    committed: bool,
    /// Why a push failed: what was staged may be incomplete, so the batch
    /// takes nothing more and cannot commit.
    failed: Option<String>,
}

/// The checks of a batch's events (see [`BatchCheck`], and the ids the store
/// holds already), lent by [`Writer::push_checked_elsewhere`] to another
/// thread than the one that stages what they keep: they depend on the
/// events before and on the store as it was when the batch began, never on
/// what was staged.
pub struct BatchChecks<'s> {
    store: &'s Store,
    /// The head when the batch began.
    head: u64,
    policy: IdPolicy,
    check: BatchCheck,
    /// Events skipped as stored unchanged.
    skipped: u64,
    /// How many chunks were checked: the next [`Checked`]'s number.
    chunks: u64,
    /// Why a check failed: nothing is checked after it.
    failed: Option<String>,
}

/// A chunk's events with what their [`BatchChecks`] decided, to be staged
/// once, in the order the chunks were checked.
pub struct Checked {
    events: Validated,
    verdicts: Verdicts,
    number: u64,
}

/// What the checks decided for each event of a chunk, in order, up to the
/// first that failed them: to stage it, with the changes (by index) that
/// first use their attribute, or (`None`) to skip it, as stored already
/// unchanged. Then why the next event failed, if one did: the events before
/// it are staged first, so that an error they meet while staged (such as a
/// record that does not continue a restored chain) is the one reported, as
/// the first in the input's order.
#[derive(Default)]
struct Verdicts {
    kept: Vec<Option<Vec<usize>>>,
    failure: Option<Error>,
}

impl BatchChecks<'_> {
    /// Checks the next events of the batch, validated as they were read.
    pub fn check(&mut self, events: Validated) -> Checked {
        let verdicts = self.verdicts(&events, true);
        self.chunks += 1;
        Checked {
            events,
            verdicts,
            number: self.chunks - 1,
        }
    }

    /// What the checks decide for each event of `chunk` (`validated`: its
    /// events passed [`crate::Event::validate`] already).
    fn verdicts(&mut self, chunk: &[Located], validated: bool) -> Verdicts {
        let mut kept = Vec::with_capacity(chunk.len());
        let failure = match &self.failed {
            Some(why) => Some(failed_earlier(why)),
            None => self.check_each(chunk, validated, &mut kept).err(),
        };
        if let Some(e) = &failure {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        Verdicts { kept, failure }
    }

    fn check_each(
        &mut self,
        chunk: &[Located],
        validated: bool,
        kept: &mut Vec<Option<Vec<usize>>>,
    ) -> Result<()> {
        let (store, head) = (self.store, self.head);
        let committed = store.snapshot_at(head)?;
        for located in chunk {
            let event = &located.event;
            let mut kind_error = None;
            let known_kind = |entity: &str, attr: &str| {
                if head == 0 {
                    return None;
                }
                store
                    .attr_kind_below(entity, attr, head)
                    .unwrap_or_else(|e| {
                        kind_error.get_or_insert(e);
                        None
                    })
            };
            let first_uses = match validated {
                true => self.check.check_valid(located, known_kind),
                false => self.check.check(located, known_kind),
            }
            .map_err(|invalid| input(located, invalid))?;
            if let Some(e) = kind_error {
                return Err(e);
            }
            let stored = if head > 0 {
                committed.find(&event.id)?
            } else {
                None
            };
            let Some(stored) = stored else {
                kept.push(Some(first_uses));
                continue;
            };
            match self.policy {
                IdPolicy::SkipUnchanged if stored.event == *event => {
                    self.skipped += 1;
                    kept.push(None);
                }
                IdPolicy::SkipUnchanged => {
                    return Err(Error::ChangedEvent {
                        id: event.id.to_string(),
                        seq: stored.seq,
                    });
                }
                IdPolicy::RequireNew => {
                    return Err(Error::DuplicateId {
                        id: event.id.to_string(),
                        seq: stored.seq,
                    });
                }
            }
        }
        Ok(())
    }
}

impl Store {
    /// Starts a batch: takes the write lock, and checks `expect_head`.
    pub fn writer(
        &self,
        policy: IdPolicy,
        expect_head: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Writer<'_>> {
        let lock = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head()?;
        if let Some(expected) = expect_head
            && expected != head.seq
        {
            return Err(Error::HeadMismatch {
                expected,
                actual: head.seq,
            });
        }
        Ok(Writer {
            store: self,
            _lock: lock,
            policy,
            head,
            now,
            check: BatchCheck::new(),
            next_seq: head.seq + 1,
            prev_hash: head.hash,
            chain: head.hash,
            last_time: head.recorded_at,
            restore: None,
            corrections: Vec::new(),
            elements: IndexElements::default(),
            earliest: None,
            skipped: 0,
            staged: false,
            committed: false,
            failed: None,
        })
    }
}

/// The index elements of records, gathered to be written once, at the end
/// of a batch or a reindex, so that each index page is written once. The
/// entity index's, the largest (they carry the changes), are spilled to a
/// temporary file in sorted runs whenever they outgrow a budget, so a batch
/// of any size holds at most that much of them in memory; the runs are
/// merged when the index is written ([`super::runs`]).
#[derive(Default)]
pub(super) struct IndexElements {
    by_time: Elements,
    by_id: Elements,
    by_entity: Elements,
    by_entity_runs: Runs,
    attrs: Elements,
}

impl IndexElements {
    /// Adds the elements of `event`, record `seq`; `first_uses` are its
    /// changes to attributes no record before it used. Returns how many.
    pub(super) fn add<'e>(
        &mut self,
        event: &'e Event,
        seq: u64,
        first_uses: impl IntoIterator<Item = &'e Change>,
    ) -> u64 {
        self.by_time.push(&keys::time(event.at.start(), seq));
        self.by_id.push(&keys::id(&event.id, seq));
        let mut added = 2;
        for entity in event.entities() {
            self.by_entity
                .push(&record::entity_element(event, entity, seq));
            added += 1;
        }
        for change in first_uses {
            let kind = encode_kind(change.op.attr_kind());
            self.attrs
                .push(&keys::attr_element(&change.entity, &change.attr, kind, seq));
            added += 1;
        }
        added
    }

    /// Whether no entity index elements were spilled to a run.
    #[cfg(test)]
    pub(super) fn spilled_nothing(&self) -> bool {
        self.by_entity_runs.is_empty()
    }

    /// Spills the entity index's elements to a run if they outgrow the
    /// budget.
    pub(super) fn spill(&mut self, store: &Store) -> Result<()> {
        if self.by_entity.footprint() > store.entity_elements_budget() {
            self.by_entity_runs
                .spill(store.path(), &self.by_entity.sorted())
                .map_err(|source| {
                    let action = "spill the entity index's elements to a temporary file in";
                    runs_error(store, action, source)
                })?;
            self.by_entity = Elements::default();
        }
        Ok(())
    }

    /// Writes every element gathered.
    pub(super) fn write(self, store: &Store) -> Result<()> {
        for (name, set, elements) in [
            ("by_time", &store.by_time, self.by_time),
            ("by_id", &store.by_id, self.by_id),
            ("attrs", &store.attrs, self.attrs),
        ] {
            if !elements.is_empty() {
                set.insert_sorted(&elements.sorted())
                    .map_err(|e| store.page_error(name, e))?;
            }
        }
        // The runs and the rest, merged, written in sorted chunks.
        let read_error = |source| {
            let action = "read back the entity index's elements from a temporary file in";
            runs_error(store, action, source)
        };
        self.by_entity_runs
            .merge_with(&self.by_entity.sorted(), read_error, |chunk| {
                store
                    .by_entity
                    .insert_sorted(chunk)
                    .map_err(|e| store.page_error("by_entity", e))
            })
    }
}

/// A failure to write or read back the entity index's runs.
fn runs_error(store: &Store, action: &'static str, source: std::io::Error) -> Error {
    Error::Io {
        action,
        path: store.path().to_path_buf(),
        source,
    }
}

/// An event of the chunk to stage: the time it is recorded at, and the
/// changes whose attribute it is the first to use.
type New<'a> = (&'a Located, DateTime<Utc>, &'a [usize]);

/// The error a batch gives once it failed (`why`).
fn failed_earlier(why: &str) -> Error {
    Error::Usage(format!(
        "this batch failed earlier and takes nothing more ({why}); start a new one"
    ))
}

fn input(located: &Located, invalid: Invalid) -> Error {
    Error::Input {
        origin: located.origin.to_string(),
        message: invalid.to_string(),
    }
}

impl<'s> Writer<'s> {
    /// Whether the batch has spilled none of its entity index elements.
    #[cfg(test)]
    pub(super) fn spilled_nothing(&self) -> bool {
        self.elements.spilled_nothing()
    }

    /// Checks the next events of the batch and stages the new ones. After
    /// an error, the batch takes nothing more and cannot commit.
    pub fn push(&mut self, chunk: &[Located]) -> Result<()> {
        self.refuse_if_failed()?;
        let mut checks = self.checks();
        let verdicts = checks.verdicts(chunk, false);
        self.take_back(checks);
        let pushed = self.stage_verdicts(chunk, verdicts);
        if let Err(e) = &pushed {
            self.failed = Some(e.to_string());
        }
        pushed
    }

    /// The error to give once a push has failed.
    fn refuse_if_failed(&self) -> Result<()> {
        match &self.failed {
            Some(why) => Err(failed_earlier(why)),
            None => Ok(()),
        }
    }

    /// Like [`Writer::push`] for a whole input whose events are read, and
    /// checked, on another thread: `feed` gets the [`BatchChecks`] to use
    /// there, and the function that stages each chunk here, once each and
    /// in the order they were checked. A chunk staged out of order, twice,
    /// or not at all fails the batch; so does a failed check, even if
    /// `feed` carries on.
    pub fn push_checked_elsewhere<T>(
        &mut self,
        feed: impl FnOnce(&mut BatchChecks<'s>, &mut dyn FnMut(&mut Checked) -> Result<()>) -> Result<T>,
    ) -> Result<T> {
        self.refuse_if_failed()?;
        let mut checks = self.checks();
        // Until the checks are back, the batch counts as failed: should
        // `feed` panic, it cannot be committed without them.
        self.failed = Some("its checks were interrupted".into());
        let mut staged = 0;
        let mut stage_failed: Option<String> = None;
        let fed = feed(&mut checks, &mut |checked| {
            if let Some(why) = &stage_failed {
                return Err(failed_earlier(why));
            }
            let result = if checked.number != staged {
                Err(Error::Usage(format!(
                    "chunk {} of the batch was handed in where chunk {staged} was due: each is staged once, in the order checked",
                    checked.number
                )))
            } else {
                staged += 1;
                self.stage_verdicts(&checked.events, std::mem::take(&mut checked.verdicts))
            };
            if let Err(e) = &result {
                stage_failed = Some(e.to_string());
            }
            result
        });
        let unstaged = checks.chunks != staged;
        let check_failed = checks.failed.clone();
        self.take_back(checks);
        self.failed = None;
        let fed = fed.and_then(|fed| match (check_failed, unstaged) {
            (Some(why), _) => Err(Error::Usage(format!(
                "a check of the batch failed ({why}), but the batch went on"
            ))),
            (None, true) => Err(Error::Usage(
                "a chunk of the batch was checked but never staged".into(),
            )),
            (None, false) => Ok(fed),
        });
        if let Err(e) = &fed {
            self.failed = Some(stage_failed.unwrap_or_else(|| e.to_string()));
        }
        fed
    }

    /// The batch's checks so far, lent out.
    fn checks(&mut self) -> BatchChecks<'s> {
        BatchChecks {
            store: self.store,
            head: self.head.seq,
            policy: self.policy,
            check: std::mem::take(&mut self.check),
            skipped: 0,
            chunks: 0,
            failed: None,
        }
    }

    /// Takes back the checks lent by [`Writer::checks`].
    fn take_back(&mut self, checks: BatchChecks<'s>) {
        self.check = checks.check;
        self.skipped += checks.skipped;
    }

    /// Stages the events of `chunk` that `verdicts` keep, then gives their
    /// failure, if any.
    fn stage_verdicts(&mut self, chunk: &[Located], verdicts: Verdicts) -> Result<()> {
        let mut new: Vec<New> = Vec::new();
        for (located, verdict) in chunk.iter().zip(&verdicts.kept) {
            let Some(first_uses) = verdict else {
                continue;
            };
            let event = &located.event;
            let seq = self.next_seq;
            let time = self.time_for(located)?;
            if !event.corrects.is_empty() {
                self.corrections.push(Correction {
                    seq,
                    id: event.id.to_string(),
                    targets: event.corrects.clone(),
                    origin: located.origin.to_string(),
                });
            }
            self.last_time = time;
            self.next_seq += 1;
            new.push((located, time, first_uses));
        }
        self.stage(&new)?;
        match verdicts.failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// The time a new event is recorded at. A batch whose first new event
    /// is an exported record that continues this store's chain exactly
    /// (next seq, the head's hash as its previous hash, a time neither
    /// before the head's nor in the future) restores exported records with
    /// their original times; then every new event must continue it.
    /// Otherwise events are stamped now.
    fn time_for(&mut self, located: &Located) -> Result<DateTime<Utc>> {
        let seq = self.next_seq;
        let continues = |r: &crate::event::Recorded| {
            r.seq == seq && r.prev_hash == self.chain && r.at >= self.last_time && r.at <= self.now
        };
        let restore = *self
            .restore
            .get_or_insert_with(|| located.recorded.as_ref().is_some_and(continues));
        if !restore {
            return Ok(self.now.max(self.head.recorded_at));
        }
        match &located.recorded {
            Some(r) if continues(r) => {
                self.chain = r.hash;
                Ok(r.at)
            }
            _ => Err(input(
                located,
                Invalid::new(
                    "seq",
                    format!(
                        "this batch restores exported records, but this one does not continue them as record {seq} (same chain, times in order, none in the future)"
                    ),
                ),
            )),
        }
    }

    /// Writes records and index elements for `new` above the head.
    fn stage(&mut self, new: &[New]) -> Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let store = self.store;
        let sled_err = |e| store.storage(e);
        if !self.staged {
            store.upgrade_format()?;
            store
                .meta
                .insert(META_PENDING, &self.head.seq.to_be_bytes())
                .map_err(sled_err)?;
            self.staged = true;
        }
        let first = self.next_seq - new.len() as u64;
        let mut records = Vec::with_capacity(new.len());
        for (i, (located, time, first_uses)) in new.iter().enumerate() {
            let seq = first + i as u64;
            let event = &located.event;
            let (bytes, hash) = record::encode(seq, *time, self.prev_hash, event);
            debug_assert!(
                self.restore != Some(true) || located.recorded.is_some_and(|r| r.hash == hash)
            );
            if bytes.len() > record::MAX_EVENT_BYTES {
                return Err(Error::Input {
                    origin: located.origin.to_string(),
                    message: format!(
                        "the event is {} bytes encoded; at most {} are allowed",
                        bytes.len(),
                        record::MAX_EVENT_BYTES
                    ),
                });
            }
            self.prev_hash = hash;
            records.push(bytes);
            self.lands_at(keys::time(event.at.start(), seq));
            let first_uses = first_uses.iter().map(|&i| &event.changes[i]);
            self.elements.add(event, seq, first_uses);
        }
        store
            .log
            .append(first, &records)
            .map_err(|e| store.log_error(e))?;
        // The other indexes are checked against during the batch and wait
        // for the commit.
        self.elements.spill(store)
    }

    /// Notes that the batch changes what replay finds at `position`.
    fn lands_at(&mut self, position: [u8; 16]) {
        if self.earliest.is_none_or(|earliest| position < earliest) {
            self.earliest = Some(position);
        }
    }

    /// The seq of the event `id` stored or staged in this batch.
    fn seq_of(&self, id: &str) -> Result<Option<u64>> {
        let store = self.store;
        store
            .id_seq(id, self.next_seq - 1)
            .map_err(|e| store.page_error("by_id", e))
    }

    /// Checks the corrections (their targets exist, they do not go in a
    /// circle) and writes their entries.
    fn write_corrections(&mut self) -> Result<()> {
        let store = self.store;
        let invalid = |c: &Correction, field: String, message: String| Error::Input {
            origin: c.origin.clone(),
            message: Invalid::new(field, message).to_string(),
        };
        let mut targets: HashMap<u64, Vec<(u64, &str)>> = HashMap::new();
        let mut pairs = sled::Batch::default();
        // Where the corrected stored events sit in replay order.
        let mut positions = Vec::new();
        for c in &self.corrections {
            let entry = targets.entry(c.seq).or_default();
            for (i, id) in c.targets.iter().enumerate() {
                let Some(target) = self.seq_of(id)? else {
                    return Err(invalid(
                        c,
                        format!("corrects[{i}]"),
                        format!(
                            "there is no event \"{id}\" in the store or in this batch to correct"
                        ),
                    ));
                };
                entry.push((target, id));
                pairs.insert(&keys::pair(target, c.seq), &[]);
                if target <= self.head.seq {
                    let start = store.read(target)?.event.at.start();
                    positions.push(keys::time(start, target));
                }
            }
        }
        // Stored events only correct stored events, so a circle lies within
        // the batch: a depth-first search over the batch's corrections.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            OnPath,
            Done,
        }
        let mut marks: HashMap<u64, Mark> = HashMap::new();
        let id_of: HashMap<u64, &Correction> =
            self.corrections.iter().map(|c| (c.seq, c)).collect();
        for c in &self.corrections {
            if marks.contains_key(&c.seq) {
                continue;
            }
            marks.insert(c.seq, Mark::OnPath);
            let mut path: Vec<(u64, usize)> = vec![(c.seq, 0)];
            while let Some(&(node, next)) = path.last() {
                let edges = targets.get(&node).map_or(&[][..], Vec::as_slice);
                if next == edges.len() {
                    marks.insert(node, Mark::Done);
                    path.pop();
                    continue;
                }
                path.last_mut().expect("not empty").1 += 1;
                let (target, _) = edges[next];
                match marks.get(&target) {
                    None if targets.contains_key(&target) => {
                        marks.insert(target, Mark::OnPath);
                        path.push((target, 0));
                    }
                    Some(Mark::OnPath) => {
                        let from = path
                            .iter()
                            .position(|(n, _)| *n == target)
                            .expect("on the path");
                        let mut circle: Vec<&str> = path[from..]
                            .iter()
                            .map(|(n, _)| id_of[n].id.as_str())
                            .collect();
                        circle.push(&id_of[&target].id);
                        return Err(invalid(
                            id_of[&target],
                            "corrects".into(),
                            format!("the corrections go in a circle: {}", circle.join(" → ")),
                        ));
                    }
                    _ => {}
                }
            }
        }
        store
            .corrected
            .apply_batch(pairs)
            .map_err(|e| store.storage(e))?;
        store.forget_corrections();
        for position in positions {
            self.lands_at(position);
        }
        Ok(())
    }

    /// Finishes the batch: checks its corrections, publishes the new head
    /// in one atomic write, flushes, writes the witness. Only then is the
    /// batch acknowledged.
    pub fn commit(mut self) -> Result<Receipt> {
        self.refuse_if_failed()?;
        let store = self.store;
        let appended = self.next_seq - 1 - self.head.seq;
        let mut receipt = Receipt {
            appended,
            first: (appended > 0).then_some(self.head.seq + 1),
            skipped: self.skipped,
            head: self.head.seq,
            restored: appended > 0 && self.restore == Some(true),
            warning: None,
        };
        if appended == 0 {
            self.committed = true;
            return Ok(receipt);
        }
        std::mem::take(&mut self.elements).write(store)?;
        self.write_corrections()?;
        // Checkpoints that no longer hold go before the batch is visible.
        if let Some(earliest) = self.earliest {
            store.invalidate_checkpoints(&earliest)?;
        }
        let head = Head {
            seq: self.next_seq - 1,
            hash: self.prev_hash,
            recorded_at: self.last_time,
        };
        let mut publish = sled::Batch::default();
        publish.insert(META_HEAD, head.encode().to_vec());
        publish.remove(META_PENDING);
        store
            .meta
            .apply_batch(publish)
            .map_err(|e| store.storage(e))?;
        self.committed = true;
        store.flush()?;
        receipt.head = head.seq;
        // The batch is durable now. A witness that cannot be written is
        // behind the head, which the next open repairs; the batch stands.
        if let Err(e) = witness::write(&store.path, &head) {
            receipt.warning = Some(format!(
                "the batch is stored, but the head witness could not be updated ({e}); the next command will update it"
            ));
        }
        // What the batch kept to check itself (every id, every attribute)
        // is not needed any more; the checkpoint build is the batch's peak
        // of memory.
        self.check = BatchCheck::new();
        self.corrections = Vec::new();
        // Checkpoints are a cache: failing to build them only slows queries.
        // (Still under the write lock: no other batch may move them meanwhile.)
        if let Err(e) = store.extend_checkpoints().and_then(|_| store.flush()) {
            receipt.warning.get_or_insert(format!(
                "the batch is stored, but no new checkpoints could be built ({e}); queries replay more"
            ));
        }
        Ok(receipt)
    }
}

impl Drop for Writer<'_> {
    /// A batch that was not committed takes back what it staged. If this
    /// fails too, the pending marker makes the next open do it.
    fn drop(&mut self) {
        if self.staged && !self.committed {
            // Only once the leftovers are gone may the marker go: if it
            // stays, the next open removes them.
            if self.store.remove_above(self.head.seq).is_ok() {
                let _ = self.store.meta.remove(META_PENDING);
            }
            let _ = self.store.flush();
        }
    }
}
