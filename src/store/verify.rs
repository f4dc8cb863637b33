//! `verify`: proves that the store is what its writes made it.
//!
//! One pass over the log checks every record (it decodes, its hash matches
//! its body, it chains to the record before, its seq is its place, seqs
//! have no gaps, `recorded_at` never goes backwards) and that every index
//! element the record implies exists (those of the entity index are summed
//! into a digest, compared with the stored elements' as that index is
//! walked). Then every index is walked, and every element must be one of
//! those: nothing missing, nothing extra. Beside it, a second thread
//! replays the log and compares every checkpoint.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use super::checkpoint::Compared;
use super::log::LogError;
use super::pages::{PageCache, PageError, PagedSet, page_cache};
use super::{Head, Store, encode_kind, keys, record};
use crate::error::Result;
use crate::event::AttrKind;

/// What a healthy store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub head: Head,
    /// Index entries checked, in all indexes together.
    pub index_entries: u64,
    /// Checkpoints found equal to a fresh replay.
    pub checkpoints: u64,
}

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The record concerned, where there is one.
    pub seq: Option<u64>,
    /// The tree the problem is in.
    pub tree: &'static str,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "record {seq}, tree {}: {}", self.tree, self.what),
            None => write!(f, "tree {}: {}", self.tree, self.what),
        }
    }
}

/// The outcome of one check: fine, or the first problem.
type Checked<T = ()> = std::result::Result<T, Problem>;

fn problem(seq: impl Into<Option<u64>>, tree: &'static str, what: impl Into<String>) -> Problem {
    Problem {
        seq: seq.into(),
        tree,
        what: what.into(),
    }
}

impl Store {
    /// Checks the whole store; `Ok(Err(problem))` names the first problem.
    /// `Err` only when the storage engine itself fails.
    pub fn verify(&self) -> Result<Checked<Verified>> {
        Checker::new(self).run()
    }
}

struct Checker<'s> {
    store: &'s Store,
    /// The interval start of every record, by seq - 1.
    starts: Vec<i64>,
    /// The digest of every `by_entity` element the records imply.
    entity_digest: Digest,
    correction_entries: u64,
    /// (entity, attr) → (kind, first seq that used it).
    attrs: HashMap<(String, String), (AttrKind, u64)>,
    /// Decoded pages of `by_time` and `by_id` for the checks of every
    /// record, so that a page is not decompressed for each of its elements.
    pages: [PageCache; 2],
}

/// Stops the comparison of the checkpoints if the checks beside it panic,
/// so that the panic is not held up by the whole replay.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// A digest of a multiset of byte strings that does not depend on their
/// order: their number, and the sum of a 128-bit hash of each. Two equal
/// multisets have equal digests; two that differ by accident (damage, a
/// bug) have equal ones with a chance of about 2^-128. It is no defence
/// against someone who forges entries on purpose: sums of hashes can be
/// matched with far less work than that.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Digest {
    count: u64,
    sum: u128,
}

impl Digest {
    fn add(&mut self, element: &[u8]) {
        let hash = blake3::hash(element);
        let low: [u8; 16] = hash.as_bytes()[..16].try_into().expect("16 of 32 bytes");
        self.count += 1;
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(low));
    }
}

/// How much of the decoded pages of `by_time` and of `by_id` the checks
/// keep: at a million events, all of them (about 17 MiB each; `verify` went
/// from 61 to 40 s). `by_entity`, ten times the size and read in no useful
/// order, is not looked up at all: the records' elements are compared with
/// the stored ones by their [`Digest`] (at a million events, 39-42 s to
/// 12.7-12.9 s; then 8.7-9.2 s with the checkpoints compared beside).
const PAGES_OF_BY_TIME_AND_BY_ID: usize = 24 << 20;

/// Turns the errors of a paged set into problems where the data is at
/// fault, and into errors where the storage engine is.
fn page_check<T>(
    store: &Store,
    tree: &'static str,
    result: std::result::Result<T, PageError>,
) -> Result<Checked<T>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(PageError::Bad(_)) => Ok(Err(problem(None, tree, "a page does not decode"))),
        Err(PageError::Sled(e)) => Err(store.storage(e)),
    }
}

impl<'s> Checker<'s> {
    fn new(store: &'s Store) -> Checker<'s> {
        Checker {
            store,
            starts: Vec::new(),
            entity_digest: Digest::default(),
            correction_entries: 0,
            attrs: HashMap::new(),
            pages: [PAGES_OF_BY_TIME_AND_BY_ID; 2].map(page_cache),
        }
    }

    fn run(mut self) -> Result<Checked<Verified>> {
        let head = match self.store.head() {
            Ok(head) => head,
            Err(e) => return Ok(Err(problem(None, "meta", e.to_string()))),
        };
        // The checkpoints are compared with a fresh replay in a second
        // thread, beside the checks of the log and the indexes (about half
        // of the time each); their problems come second all the same, and
        // a problem of the log or an index stops the replay.
        let store = self.store;
        let stop = AtomicBool::new(false);
        let (indexes, checkpoints) = std::thread::scope(|scope| {
            let thread =
                std::thread::Builder::new().spawn_scoped(scope, || store.check_checkpoints(&stop));
            let stop_on_panic = StopOnPanic(&stop);
            let indexes = self.check_log_and_indexes(head);
            drop(stop_on_panic);
            if !matches!(indexes, Ok(Ok(_))) {
                stop.store(true, Ordering::Relaxed);
            }
            let checkpoints = thread.ok().map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
            (indexes, checkpoints)
        });
        let index_entries = match indexes? {
            Ok(n) => n,
            Err(p) => return Ok(Err(p)),
        };
        // No second thread to be had: compared here.
        let checkpoints = checkpoints.unwrap_or_else(|| store.check_checkpoints(&stop));
        let checkpoints = match checkpoints? {
            Compared::Equal(n) => n,
            Compared::Differs(seq, what) => return Ok(Err(problem(seq, "checkpoints", what))),
            Compared::Stopped => unreachable!("stopped only when the log or an index failed"),
        };
        Ok(Ok(Verified {
            records: head.seq,
            head,
            index_entries,
            checkpoints,
        }))
    }

    /// Checks the log, the head witness and every index: the number of
    /// index entries, or the first problem.
    fn check_log_and_indexes(&mut self, head: Head) -> Result<Checked<u64>> {
        if let Err(p) = self.check_log(head)? {
            return Ok(Err(p));
        }
        match super::witness::read(&self.store.path) {
            Ok(Some(w)) if w.seq == head.seq && w.hash == head.hash => {}
            Ok(_) => {
                return Ok(Err(problem(
                    head.seq,
                    "meta",
                    "the head witness file does not match the head",
                )));
            }
            Err(e) => return Ok(Err(problem(head.seq, "meta", e.to_string()))),
        }
        let mut index_entries = 0;
        for check in [
            Checker::check_by_time as fn(&Self, u64) -> Result<Checked<u64>>,
            Checker::check_by_id,
            Checker::check_by_entity,
            Checker::check_attrs,
            Checker::check_corrected,
        ] {
            match check(self, head.seq)? {
                Ok(n) => index_entries += n,
                Err(p) => return Ok(Err(p)),
            }
        }
        Ok(Ok(index_entries))
    }

    fn check_log(&mut self, head: Head) -> Result<Checked> {
        let store = self.store;
        let mut prev_hash = [0; 32];
        let mut prev_time = None;
        let mut expected = 1;
        for entry in store.log.iter() {
            let (seq, bytes) = match entry {
                Ok(entry) => entry,
                Err(LogError::BadPage(page)) => {
                    return Ok(Err(problem(
                        expected,
                        "log",
                        format!("log page {page} does not decode"),
                    )));
                }
                Err(e) => return Err(store.log_error(e)),
            };
            if seq != expected {
                return Ok(Err(problem(
                    expected,
                    "log",
                    format!("record {expected} is missing: the log jumps to {seq}"),
                )));
            }
            if seq > head.seq {
                return Ok(Err(problem(
                    seq,
                    "log",
                    format!("a record lies above the head ({})", head.seq),
                )));
            }
            let record = match record::decode(&bytes, prev_hash) {
                Ok(record) => record,
                Err(m) => return Ok(Err(problem(seq, "log", m))),
            };
            if !record::hash_matches(&bytes, &prev_hash) {
                return Ok(Err(problem(
                    seq,
                    "log",
                    "the stored hash does not match the record and the one before it: its bytes changed",
                )));
            }
            if record.seq != seq {
                return Ok(Err(problem(
                    seq,
                    "log",
                    format!("the record says it is record {}", record.seq),
                )));
            }
            if prev_time.is_some_and(|t| record.recorded_at < t) {
                return Ok(Err(problem(seq, "log", "recorded_at goes backwards")));
            }
            if let Err(p) = self.check_elements_of(&record, head.seq)? {
                return Ok(Err(p));
            }
            prev_hash = record.hash;
            prev_time = Some(record.recorded_at);
            expected += 1;
        }
        if expected - 1 != head.seq {
            return Ok(Err(problem(
                expected,
                "log",
                format!("the log ends before the head ({})", head.seq),
            )));
        }
        if prev_hash != head.hash {
            return Ok(Err(problem(
                head.seq,
                "meta",
                "the head hash is not the last record's hash",
            )));
        }
        if head.seq > 0 && prev_time != Some(head.recorded_at) {
            return Ok(Err(problem(
                head.seq,
                "meta",
                "the head's recorded_at is not the last record's",
            )));
        }
        Ok(Ok(()))
    }

    /// Checks that the index elements `record` implies exist, and notes what
    /// the index walks need.
    fn check_elements_of(&mut self, record: &record::Record, head: u64) -> Result<Checked> {
        let store = self.store;
        let (seq, event) = (record.seq, &record.event);
        let start = event.at.start();
        self.starts.push(start);
        let [time_pages, id_pages] = &mut self.pages;
        let has = |tree: &'static str, set: &PagedSet, pages: &mut PageCache, element: &[u8]| {
            page_check(store, tree, set.contains_cached(element, pages))
        };
        match has(
            "by_time",
            &store.by_time,
            time_pages,
            &keys::time(start, seq),
        )? {
            Ok(true) => {}
            Ok(false) => {
                return Ok(Err(problem(
                    seq,
                    "by_time",
                    "the record has no replay-order entry",
                )));
            }
            Err(p) => return Ok(Err(p)),
        }
        match has("by_id", &store.by_id, id_pages, &keys::id(&event.id, seq))? {
            Ok(true) => {}
            Ok(false) => {
                return Ok(Err(problem(
                    seq,
                    "by_id",
                    format!("the id \"{}\" does not lead to the record", event.id),
                )));
            }
            Err(p) => return Ok(Err(p)),
        }
        // The entity index is compared as a whole once it is walked.
        for entity in event.entities() {
            self.entity_digest
                .add(&record::entity_element(event, entity, seq));
        }
        for change in &event.changes {
            let key = (change.entity.to_string(), change.attr.to_string());
            self.attrs
                .entry(key)
                .or_insert((change.op.attr_kind(), seq));
        }
        for id in &event.corrects {
            let target = match page_check(store, "by_id", store.id_seq(id, head))? {
                Ok(target) => target,
                Err(p) => return Ok(Err(p)),
            };
            let Some(target) = target else {
                return Ok(Err(problem(
                    seq,
                    "by_id",
                    format!("the corrected event \"{id}\" has no id entry"),
                )));
            };
            if !store
                .corrected
                .contains_key(keys::pair(target, seq))
                .map_err(|e| store.storage(e))?
            {
                return Ok(Err(problem(
                    seq,
                    "corrected",
                    format!("the correction of \"{id}\" has no entry"),
                )));
            }
            self.correction_entries += 1;
        }
        Ok(Ok(()))
    }

    fn start_of(&self, seq: u64, head: u64) -> Option<i64> {
        (seq >= 1 && seq <= head).then(|| self.starts[seq as usize - 1])
    }

    /// Walks a paged index: every element must decode to a (start, seq) of a
    /// record; returns how many there are.
    fn walk(
        &self,
        tree: &'static str,
        set: &PagedSet,
        head: u64,
        mut decode: impl FnMut(&[u8]) -> Option<(i64, u64)>,
    ) -> Result<Checked<u64>> {
        let mut n = 0;
        for element in set.iter() {
            let element = match page_check(self.store, tree, element)? {
                Ok(element) => element,
                Err(p) => return Ok(Err(p)),
            };
            let Some((start, seq)) = decode(&element) else {
                return Ok(Err(problem(None, tree, "an element is unreadable")));
            };
            if self.start_of(seq, head) != Some(start) {
                return Ok(Err(problem(seq, tree, "an entry points to no such record")));
            }
            n += 1;
        }
        Ok(Ok(n))
    }

    fn check_by_time(&self, head: u64) -> Result<Checked<u64>> {
        let n = match self.walk("by_time", &self.store.by_time, head, keys::decode_time)? {
            Ok(n) => n,
            Err(p) => return Ok(Err(p)),
        };
        // Every record has its element (checked), elements are unique, and
        // each points to a record with that start: so there are exactly as many.
        Ok(Ok(n))
    }

    fn check_by_id(&self, head: u64) -> Result<Checked<u64>> {
        let mut n = 0;
        for element in self.store.by_id.iter() {
            let element = match page_check(self.store, "by_id", element)? {
                Ok(element) => element,
                Err(p) => return Ok(Err(p)),
            };
            let Some((id, seq)) = keys::decode_id(&element) else {
                return Ok(Err(problem(None, "by_id", "an element is unreadable")));
            };
            if self.start_of(seq, head).is_none() {
                return Ok(Err(problem(
                    seq,
                    "by_id",
                    format!("the entry for \"{id}\" points to no such record"),
                )));
            }
            n += 1;
        }
        if n != head {
            // Each record has its own element (checked): an extra one names
            // a record that holds another id.
            for element in self.store.by_id.iter() {
                let element = element.map_err(|e| self.store.page_error("by_id", e))?;
                let (id, seq) = keys::decode_id(&element).expect("checked above");
                if self
                    .store
                    .read(seq)
                    .map(|r| r.event.id != id)
                    .unwrap_or(true)
                {
                    return Ok(Err(problem(
                        seq,
                        "by_id",
                        format!("the entry for \"{id}\" points to another event"),
                    )));
                }
            }
            return Ok(Err(problem(
                None,
                "by_id",
                format!("{n} entries for {head} records"),
            )));
        }
        Ok(Ok(n))
    }

    fn check_by_entity(&self, head: u64) -> Result<Checked<u64>> {
        let mut stored = Digest::default();
        let mut legacy = false;
        let decode = |e: &[u8]| {
            let nul = e.iter().position(|&b| b == 0)?;
            std::str::from_utf8(&e[..nul]).ok()?;
            let (start, seq, changes) = keys::decode_entity_rest(&e[nul + 1..])?;
            // An element of format 1: the position alone, without changes.
            legacy |= changes.is_none();
            stored.add(e);
            Some((start, seq))
        };
        let n = match self.walk("by_entity", &self.store.by_entity, head, decode)? {
            Ok(n) => n,
            Err(p) => return Ok(Err(p)),
        };
        let expected = self.entity_digest.count;
        if stored == self.entity_digest && !legacy {
            return Ok(Ok(n));
        }
        // Something differs, or elements of format 1 stand for some
        // records' (they cannot be compared by digest): look up each
        // record's element to name the first that is missing or differs.
        if let Err(p) = self.find_entity_elements(head)? {
            return Ok(Err(p));
        }
        if n != expected {
            // Every record has its elements: name one too many, under an
            // entity its record does not change, or a second one of a
            // record under an entity (they would be next to each other).
            let mut previous: Option<(String, u64)> = None;
            for element in self.store.by_entity.iter() {
                let element = element.map_err(|e| self.store.page_error("by_entity", e))?;
                let Some((entity, _, seq)) = keys::decode_entity(&element) else {
                    return Ok(Err(problem(None, "by_entity", "an element is unreadable")));
                };
                let changes_it = self
                    .store
                    .read(seq)
                    .is_ok_and(|r| r.event.entities().contains(&entity));
                if !changes_it {
                    return Ok(Err(problem(
                        seq,
                        "by_entity",
                        format!("the record does not change \"{entity}\""),
                    )));
                }
                if previous.as_ref() == Some(&(entity.to_string(), seq)) {
                    return Ok(Err(problem(
                        seq,
                        "by_entity",
                        format!("the record has two entries under entity \"{entity}\""),
                    )));
                }
                previous = Some((entity.to_string(), seq));
            }
            return Ok(Err(problem(
                None,
                "by_entity",
                format!("{n} entries where the records imply {expected}"),
            )));
        }
        if legacy {
            // Every record has its element, and there are no others.
            return Ok(Ok(n));
        }
        Ok(Err(problem(
            None,
            "by_entity",
            "the entries differ from what the records imply",
        )))
    }

    /// Looks up the `by_entity` element of each record under each entity it
    /// changes: the first record whose element is missing or differs.
    fn find_entity_elements(&self, head: u64) -> Result<Checked> {
        let store = self.store;
        let mut pages = page_cache(0);
        let mut prev_hash = [0; 32];
        for entry in store.log.iter() {
            let (seq, bytes) = entry.map_err(|e| store.log_error(e))?;
            if seq > head {
                break;
            }
            let record = match record::decode(&bytes, prev_hash) {
                Ok(record) => record,
                Err(m) => return Ok(Err(problem(seq, "log", m))),
            };
            prev_hash = record.hash;
            let event = &record.event;
            for entity in event.entities() {
                let mut has = |element: &[u8]| {
                    page_check(
                        store,
                        "by_entity",
                        store.by_entity.contains_cached(element, &mut pages),
                    )
                };
                // The element of format 2, with the changes; else that of format 1.
                let found = match has(&record::entity_element(event, entity, seq))? {
                    Ok(false) => has(&keys::entity(entity, event.at.start(), seq))?,
                    other => other,
                };
                match found {
                    Ok(true) => {}
                    Ok(false) => {
                        return Ok(Err(problem(
                            seq,
                            "by_entity",
                            format!(
                                "the record has no entry under entity \"{entity}\", or one that differs from it"
                            ),
                        )));
                    }
                    Err(p) => return Ok(Err(p)),
                }
            }
        }
        Ok(Ok(()))
    }

    fn check_attrs(&self, _head: u64) -> Result<Checked<u64>> {
        let mut n = 0;
        let mut seen = HashSet::new();
        for element in self.store.attrs.iter() {
            let element = match page_check(self.store, "attrs", element)? {
                Ok(element) => element,
                Err(p) => return Ok(Err(p)),
            };
            let Some((entity, attr, kind, seq)) = keys::decode_attr_element(&element) else {
                return Ok(Err(problem(None, "attrs", "an element is unreadable")));
            };
            let key = (entity.to_string(), attr.to_string());
            let expected = self.attrs.get(&key);
            if expected.map(|(kind, seq)| (encode_kind(*kind), *seq)) != Some((kind, seq))
                || !seen.insert(key)
            {
                return Ok(Err(problem(
                    expected.map(|(_, seq)| *seq),
                    "attrs",
                    format!(
                        "the kind of \"{entity}.{attr}\" does not match the first record that uses it"
                    ),
                )));
            }
            n += 1;
        }
        if let Some(((entity, attr), (_, seq))) =
            self.attrs.iter().find(|(k, _)| !seen.contains(*k))
        {
            return Ok(Err(problem(
                *seq,
                "attrs",
                format!("\"{entity}.{attr}\" has no kind entry"),
            )));
        }
        Ok(Ok(n))
    }

    fn check_corrected(&self, head: u64) -> Result<Checked<u64>> {
        let n = self.store.corrected.len() as u64;
        if n != self.correction_entries {
            for entry in self.store.corrected.iter() {
                let (key, _) = entry.map_err(|e| self.store.storage(e))?;
                let Some((target, by)) = keys::decode_pair(&key) else {
                    return Ok(Err(problem(None, "corrected", "a key is unreadable")));
                };
                let real = by <= head
                    && target <= head
                    && match (self.store.read(by), self.store.read(target)) {
                        (Ok(by), Ok(target)) => {
                            by.event.corrects.iter().any(|c| *c == target.event.id)
                        }
                        _ => false,
                    };
                if !real {
                    return Ok(Err(problem(
                        by,
                        "corrected",
                        format!(
                            "an entry says record {by} corrects record {target}, which it does not"
                        ),
                    )));
                }
            }
            let expected = self.correction_entries;
            return Ok(Err(problem(
                None,
                "corrected",
                format!("{n} entries where the records imply {expected}"),
            )));
        }
        Ok(Ok(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_checks_raises_the_stop_flag_and_nothing_else_does() {
        let stop = AtomicBool::new(false);
        drop(StopOnPanic(&stop));
        assert!(!stop.load(Ordering::Relaxed), "no panic, no stop");
        let panicked = std::panic::catch_unwind(|| {
            let _guard = StopOnPanic(&stop);
            panic!("a check failed");
        });
        assert!(panicked.is_err());
        assert!(stop.load(Ordering::Relaxed), "the panic stopped it");
    }
}
