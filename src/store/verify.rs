//! `verify`: proves that the store is what its writes made it.
//!
//! One pass over the log checks every record (it decodes, its hash matches
//! its body, it chains to the record before, its seq is its key, seqs have
//! no gaps, `recorded_at` never goes backwards) and that every index entry
//! the record implies exists. Then every index tree is walked, and every
//! entry must be one of those: nothing missing, nothing extra.

use std::collections::{HashMap, HashSet};

use super::{Head, Store, decode_attr, keys, record};
use crate::error::Result;
use crate::event::AttrKind;

/// What a healthy store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub head: Head,
    /// Index entries checked, in all index trees together.
    pub index_entries: u64,
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

impl Store {
    /// Checks the whole store; `Ok(Err(problem))` names the first problem.
    /// `Err` only when the storage engine itself fails.
    pub fn verify(&self) -> Result<std::result::Result<Verified, Problem>> {
        Checker::new(self).run()
    }
}

struct Checker<'s> {
    store: &'s Store,
    /// The (start, entities, id) of every record, by seq - 1.
    starts: Vec<i64>,
    entity_keys: u64,
    corrected_keys: u64,
    /// (entity, attr) → (kind, first seq that used it).
    attrs: HashMap<(String, String), (AttrKind, u64)>,
}

fn problem(seq: impl Into<Option<u64>>, tree: &'static str, what: impl Into<String>) -> Problem {
    Problem {
        seq: seq.into(),
        tree,
        what: what.into(),
    }
}

impl<'s> Checker<'s> {
    fn new(store: &'s Store) -> Checker<'s> {
        Checker {
            store,
            starts: Vec::new(),
            entity_keys: 0,
            corrected_keys: 0,
            attrs: HashMap::new(),
        }
    }

    fn run(mut self) -> Result<std::result::Result<Verified, Problem>> {
        let head = match self.store.head() {
            Ok(head) => head,
            Err(e) => return Ok(Err(problem(None, "meta", e.to_string()))),
        };
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
        let checks = [
            Checker::check_by_time as fn(&Self, u64) -> Result<std::result::Result<u64, Problem>>,
            Checker::check_by_id,
            Checker::check_by_entity,
            Checker::check_attrs,
            Checker::check_corrected,
        ];
        let mut index_entries = 0;
        for check in checks {
            match check(&self, head.seq)? {
                Ok(n) => index_entries += n,
                Err(p) => return Ok(Err(p)),
            }
        }
        Ok(Ok(Verified {
            records: head.seq,
            head,
            index_entries,
        }))
    }

    fn check_log(&mut self, head: Head) -> Result<std::result::Result<(), Problem>> {
        let store = self.store;
        let mut prev_hash = [0; 32];
        let mut prev_time = None;
        let mut expected = 1;
        for entry in store.log.iter() {
            let (key, bytes) = entry.map_err(|e| store.storage(e))?;
            let Some(seq) = keys::decode_seq(&key) else {
                return Ok(Err(problem(None, "log", "a key is not a sequence number")));
            };
            if seq != expected {
                let what = if seq > head.seq {
                    format!("a record lies above the head ({})", head.seq)
                } else {
                    format!("record {expected} is missing: the log jumps to {seq}")
                };
                return Ok(Err(problem(expected, "log", what)));
            }
            let record = match record::decode(&bytes) {
                Ok(record) => record,
                Err(m) => return Ok(Err(problem(seq, "log", m))),
            };
            if !record::hash_matches(&bytes) {
                return Ok(Err(problem(
                    seq,
                    "log",
                    "the stored hash does not match the record: its bytes changed",
                )));
            }
            if record.seq != seq {
                return Ok(Err(problem(
                    seq,
                    "log",
                    format!("the record says it is record {}", record.seq),
                )));
            }
            if record.prev_hash != prev_hash {
                return Ok(Err(problem(
                    seq,
                    "log",
                    "the record does not chain to the record before it",
                )));
            }
            if prev_time.is_some_and(|t| record.recorded_at < t) {
                return Ok(Err(problem(seq, "log", "recorded_at goes backwards")));
            }
            if let Err(p) = self.check_entries_of(&record)? {
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
        Ok(Ok(()))
    }

    /// Checks that the index entries `record` implies exist, and notes what
    /// the index walks need.
    fn check_entries_of(
        &mut self,
        record: &record::Record,
    ) -> Result<std::result::Result<(), Problem>> {
        let store = self.store;
        let sled_err = |e| store.storage(e);
        let (seq, event) = (record.seq, &record.event);
        let start = event.at.start();
        self.starts.push(start);
        if !store
            .by_time
            .contains_key(keys::time(start, seq))
            .map_err(sled_err)?
        {
            return Ok(Err(problem(
                seq,
                "by_time",
                "the record has no replay-order entry",
            )));
        }
        let by_id = store.by_id.get(event.id.as_bytes()).map_err(sled_err)?;
        if by_id.as_deref().and_then(keys::decode_seq) != Some(seq) {
            return Ok(Err(problem(
                seq,
                "by_id",
                format!("the id \"{}\" does not lead to the record", event.id),
            )));
        }
        for entity in event.entities() {
            if !store
                .by_entity
                .contains_key(keys::entity(entity, start, seq))
                .map_err(sled_err)?
            {
                return Ok(Err(problem(
                    seq,
                    "by_entity",
                    format!("the record has no entry under entity \"{entity}\""),
                )));
            }
            self.entity_keys += 1;
        }
        for change in &event.changes {
            let key = (change.entity.clone(), change.attr.clone());
            self.attrs
                .entry(key)
                .or_insert((change.op.attr_kind(), seq));
        }
        for id in &event.corrects {
            let target = store
                .by_id
                .get(id.as_bytes())
                .map_err(sled_err)?
                .as_deref()
                .and_then(keys::decode_seq);
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
                .map_err(sled_err)?
            {
                return Ok(Err(problem(
                    seq,
                    "corrected",
                    format!("the correction of \"{id}\" has no entry"),
                )));
            }
            self.corrected_keys += 1;
        }
        Ok(Ok(()))
    }

    fn start_of(&self, seq: u64, head: u64) -> Option<i64> {
        (seq >= 1 && seq <= head).then(|| self.starts[seq as usize - 1])
    }

    fn check_by_time(&self, head: u64) -> Result<std::result::Result<u64, Problem>> {
        let mut n = 0;
        for entry in self.store.by_time.iter() {
            let (key, _) = entry.map_err(|e| self.store.storage(e))?;
            let Some((start, seq)) = keys::decode_time(&key) else {
                return Ok(Err(problem(None, "by_time", "a key is unreadable")));
            };
            if self.start_of(seq, head) != Some(start) {
                return Ok(Err(problem(
                    seq,
                    "by_time",
                    "an entry points to no such record",
                )));
            }
            n += 1;
        }
        Ok(Ok(n))
    }

    fn check_by_id(&self, head: u64) -> Result<std::result::Result<u64, Problem>> {
        let n = self.store.by_id.len() as u64;
        if n != head {
            // Every record has its entry (checked), so an extra one is stale.
            for entry in self.store.by_id.iter() {
                let (key, value) = entry.map_err(|e| self.store.storage(e))?;
                let seq = keys::decode_seq(&value);
                let points_home = match seq.filter(|s| *s >= 1 && *s <= head) {
                    Some(seq) => self
                        .store
                        .read(seq)
                        .is_ok_and(|r| r.event.id.as_bytes() == &key[..]),
                    None => false,
                };
                if !points_home {
                    let id = String::from_utf8_lossy(&key);
                    return Ok(Err(problem(
                        seq,
                        "by_id",
                        format!("the entry for \"{id}\" points to no such record"),
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

    fn check_by_entity(&self, head: u64) -> Result<std::result::Result<u64, Problem>> {
        let mut n = 0;
        for entry in self.store.by_entity.iter() {
            let (key, _) = entry.map_err(|e| self.store.storage(e))?;
            let Some((entity, start, seq)) = keys::decode_entity(&key) else {
                return Ok(Err(problem(None, "by_entity", "a key is unreadable")));
            };
            if self.start_of(seq, head) != Some(start) {
                return Ok(Err(problem(
                    seq,
                    "by_entity",
                    format!("an entry under \"{entity}\" points to no such record"),
                )));
            }
            n += 1;
        }
        if n != self.entity_keys {
            // Right record and start, wrong entity: find which.
            for entry in self.store.by_entity.iter() {
                let (key, _) = entry.map_err(|e| self.store.storage(e))?;
                let (entity, _, seq) = keys::decode_entity(&key).expect("checked above");
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
            }
            let expected = self.entity_keys;
            return Ok(Err(problem(
                None,
                "by_entity",
                format!("{n} entries where the records imply {expected}"),
            )));
        }
        Ok(Ok(n))
    }

    fn check_attrs(&self, _head: u64) -> Result<std::result::Result<u64, Problem>> {
        let mut n = 0;
        let mut seen = HashSet::new();
        for entry in self.store.attrs.iter() {
            let (key, value) = entry.map_err(|e| self.store.storage(e))?;
            let nul = key.iter().position(|&b| b == 0);
            let Some(nul) = nul else {
                return Ok(Err(problem(None, "attrs", "a key is unreadable")));
            };
            let entity = String::from_utf8_lossy(&key[..nul]).into_owned();
            let attr = String::from_utf8_lossy(&key[nul + 1..]).into_owned();
            let expected = self.attrs.get(&(entity.clone(), attr.clone()));
            if decode_attr(&value) != expected.copied() {
                return Ok(Err(problem(
                    expected.map(|(_, seq)| *seq),
                    "attrs",
                    format!(
                        "the kind of \"{entity}.{attr}\" does not match the first record that uses it"
                    ),
                )));
            }
            seen.insert((entity, attr));
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

    fn check_corrected(&self, head: u64) -> Result<std::result::Result<u64, Problem>> {
        let n = self.store.corrected.len() as u64;
        if n != self.corrected_keys {
            for entry in self.store.corrected.iter() {
                let (key, _) = entry.map_err(|e| self.store.storage(e))?;
                let Some((target, by)) = keys::decode_pair(&key) else {
                    return Ok(Err(problem(None, "corrected", "a key is unreadable")));
                };
                let real = by <= head
                    && target <= head
                    && match (self.store.read(by), self.store.read(target)) {
                        (Ok(by), Ok(target)) => by.event.corrects.contains(&target.event.id),
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
            let expected = self.corrected_keys;
            return Ok(Err(problem(
                None,
                "corrected",
                format!("{n} entries where the records imply {expected}"),
            )));
        }
        Ok(Ok(n))
    }
}
