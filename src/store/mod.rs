//! The store: an append-only log of events in sled, with indexes.
//!
//! This module is the only one that knows sled. Its trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `log` | seq (u64 BE) | record (see [`record`]) |
//! | `by_time` | (start, seq) | empty — replay order |
//! | `by_id` | event id | seq |
//! | `by_entity` | (entity, 0, start, seq) | empty |
//! | `attrs` | (entity, 0, attr) | kind byte, seq that first used it |
//! | `corrected` | (corrected seq, correcting seq) | empty |
//! | `meta` | `format_version`, `head`, `pending` | see below |
//!
//! A batch lands all or nothing by the commit-marker design: `pending` is
//! written first, then records and index entries, then `head` is published
//! (and `pending` cleared) in one atomic write to `meta`, then everything is
//! flushed. Readers ignore whatever lies above the head; opening a store
//! that has `pending` (a crash mid-batch) removes the leftovers. After the
//! flush, the head is also written to a witness file (see [`witness`]), so
//! that a store whose files lost records is refused instead of answering
//! as if they never existed.

mod keys;
pub mod record;
mod snapshot;
mod verify;
mod witness;

#[doc(hidden)]
pub mod tamper;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::event::{AttrKind, Event, Located, validate_batch};
use crate::when::When;
pub use record::{Hash, Record};
pub use snapshot::{Snapshot, TimelineEntry};
pub use verify::{Problem, Verified};

/// The store format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// sled's page cache; its default (1 GiB) is far more than chronik needs.
const CACHE_BYTES: u64 = 64 << 20;

const META_FORMAT: &[u8] = b"format_version";
const META_HEAD: &[u8] = b"head";
const META_PENDING: &[u8] = b"pending";

/// The newest record: what the log holds up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The last sequence number (0 for an empty store).
    pub seq: u64,
    /// The last record's hash (all zero for an empty store).
    pub hash: Hash,
    /// When the last record was appended (the epoch for an empty store).
    pub recorded_at: DateTime<Utc>,
}

impl Head {
    fn empty() -> Head {
        Head {
            seq: 0,
            hash: [0; 32],
            recorded_at: DateTime::UNIX_EPOCH,
        }
    }

    fn encode(&self) -> [u8; 48] {
        let mut bytes = [0; 48];
        bytes[..8].copy_from_slice(&self.seq.to_be_bytes());
        bytes[8..40].copy_from_slice(&self.hash);
        bytes[40..].copy_from_slice(&self.recorded_at.timestamp_micros().to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Head> {
        if bytes.len() != 48 {
            return None;
        }
        Some(Head {
            seq: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            hash: bytes[8..40].try_into().ok()?,
            recorded_at: DateTime::from_timestamp_micros(i64::from_be_bytes(
                bytes[40..].try_into().ok()?,
            ))?,
        })
    }
}

/// How [`Store::open`] treats a missing store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The store must exist (queries).
    Existing,
    /// Create an empty store if there is none (writes).
    CreateIfMissing,
}

/// How a batch treats ids that are already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdPolicy {
    /// `import`: an id stored with the same content is skipped; with other
    /// content it is a conflict.
    SkipUnchanged,
    /// `append`: every id must be new.
    RequireNew,
}

/// What a batch write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The (seq, id) of every event appended, in order.
    pub appended: Vec<(u64, String)>,
    /// Ids already stored with the same content, skipped.
    pub skipped: Vec<String>,
    /// The head after the batch.
    pub head: u64,
    /// The records were restored from an export with their original seq,
    /// `recorded_at` and hash.
    pub restored: bool,
}

/// Figures about a store.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub events: u64,
    pub head: Head,
    /// The earliest and the latest event date, in replay order.
    pub first_at: Option<When>,
    pub last_at: Option<When>,
    /// When the first record was appended.
    pub first_recorded_at: Option<DateTime<Utc>>,
    /// Distinct entities changed by any event.
    pub entities: u64,
    pub size_on_disk: u64,
}

/// Filters for [`Store::timeline`]. Dates select every event whose interval
/// overlaps `[from.start, to.end)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineFilter {
    pub from: Option<When>,
    pub to: Option<When>,
    /// Only events that change one of these entities (any, if empty).
    pub entities: Vec<String>,
    /// Only events with one of these tags (any, if empty).
    pub tags: Vec<String>,
}

/// An open chronik store. Reads may run concurrently; writes are serialised.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    log: sled::Tree,
    by_time: sled::Tree,
    by_id: sled::Tree,
    by_entity: sled::Tree,
    attrs: sled::Tree,
    corrected: sled::Tree,
    meta: sled::Tree,
    writer: Mutex<()>,
    /// How many records have been read from the log (a diagnostic).
    reads: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path` (a directory), creating it in
    /// [`OpenMode::CreateIfMissing`]. Removes the leftovers of a batch that
    /// a crash interrupted.
    pub fn open(path: &Path, mode: OpenMode) -> Result<Store> {
        check_location(path, mode)?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| open_error(path, e))?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| storage(path, e));
        let store = Store {
            log: tree("log")?,
            by_time: tree("by_time")?,
            by_id: tree("by_id")?,
            by_entity: tree("by_entity")?,
            attrs: tree("attrs")?,
            corrected: tree("corrected")?,
            meta: tree("meta")?,
            path: path.to_path_buf(),
            db,
            writer: Mutex::new(()),
            reads: AtomicU64::new(0),
        };
        // The witness first: a store that lost records must not be
        // initialised or repaired as if it were new.
        let behind = witness::check(&store.path, &store.head()?)?;
        store.check_format(mode)?;
        store.recover()?;
        if behind {
            witness::write(&store.path, &store.head()?)?;
        }
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn storage(&self, e: sled::Error) -> Error {
        storage(&self.path, e)
    }

    fn check_format(&self, mode: OpenMode) -> Result<()> {
        match self.meta.get(META_FORMAT).map_err(|e| self.storage(e))? {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::Corrupt("the format version is unreadable".into()))?;
                if found > FORMAT_VERSION {
                    return Err(Error::NewerFormat {
                        path: self.path.clone(),
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                Ok(())
            }
            None if mode == OpenMode::CreateIfMissing && self.log.is_empty() => {
                self.meta
                    .insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes())
                    .map_err(|e| self.storage(e))?;
                self.flush()
            }
            None => Err(Error::NotAStore {
                path: self.path.clone(),
                reason: "it has no chronik format version".into(),
            }),
        }
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(|e| self.storage(e))
    }

    /// The newest record's position, hash and time.
    pub fn head(&self) -> Result<Head> {
        match self.meta.get(META_HEAD).map_err(|e| self.storage(e))? {
            None => Ok(Head::empty()),
            Some(bytes) => {
                Head::decode(&bytes).ok_or_else(|| Error::Corrupt("the head is unreadable".into()))
            }
        }
    }

    /// Removes everything above the head: the leftovers of a batch that a
    /// crash interrupted before it was published.
    fn recover(&self) -> Result<()> {
        let head = self.head()?.seq;
        let pending = self
            .meta
            .get(META_PENDING)
            .map_err(|e| self.storage(e))?
            .is_some();
        let above = self.log.range(keys::seq(head + 1)..).next().is_some();
        if !pending && !above {
            return Ok(());
        }
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.remove_above(head)?;
        self.meta
            .remove(META_PENDING)
            .map_err(|e| self.storage(e))?;
        self.flush()
    }

    fn remove_above(&self, head: u64) -> Result<()> {
        let sled_err = |e| self.storage(e);
        for entry in self.log.range(keys::seq(head + 1)..) {
            let (key, _) = entry.map_err(sled_err)?;
            self.log.remove(key).map_err(sled_err)?;
        }
        for entry in self.by_time.iter() {
            let (key, _) = entry.map_err(sled_err)?;
            if keys::decode_time(&key).is_none_or(|(_, seq)| seq > head) {
                self.by_time.remove(key).map_err(sled_err)?;
            }
        }
        for entry in self.by_entity.iter() {
            let (key, _) = entry.map_err(sled_err)?;
            if keys::decode_entity(&key).is_none_or(|(_, _, seq)| seq > head) {
                self.by_entity.remove(key).map_err(sled_err)?;
            }
        }
        for entry in self.by_id.iter() {
            let (key, value) = entry.map_err(sled_err)?;
            if keys::decode_seq(&value).is_none_or(|seq| seq > head) {
                self.by_id.remove(key).map_err(sled_err)?;
            }
        }
        for entry in self.attrs.iter() {
            let (key, value) = entry.map_err(sled_err)?;
            if decode_attr(&value).is_none_or(|(_, seq)| seq > head) {
                self.attrs.remove(key).map_err(sled_err)?;
            }
        }
        for entry in self.corrected.iter() {
            let (key, _) = entry.map_err(sled_err)?;
            if keys::decode_pair(&key).is_none_or(|(_, by)| by > head) {
                self.corrected.remove(key).map_err(sled_err)?;
            }
        }
        Ok(())
    }

    /// The kind an attribute was first used with, if any stored event uses it.
    pub fn attr_kind(&self, entity: &str, attr: &str) -> Result<Option<AttrKind>> {
        let head = self.head()?.seq;
        self.attr_kind_below(entity, attr, head)
    }

    fn attr_kind_below(&self, entity: &str, attr: &str, head: u64) -> Result<Option<AttrKind>> {
        let value = self
            .attrs
            .get(keys::attr(entity, attr))
            .map_err(|e| self.storage(e))?;
        Ok(value
            .and_then(|v| decode_attr(&v))
            .filter(|(_, seq)| *seq <= head)
            .map(|(kind, _)| kind))
    }

    /// Appends a batch, all or nothing, and flushes it to disk before
    /// returning. Every event is validated first (against each other and
    /// against the attribute kinds already stored); with `expect_head`, the
    /// batch is refused unless the head is exactly that.
    pub fn write(
        &self,
        batch: &[Located],
        policy: IdPolicy,
        expect_head: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Receipt> {
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head()?;
        if let Some(expected) = expect_head
            && expected != head.seq
        {
            return Err(Error::HeadMismatch {
                expected,
                actual: head.seq,
            });
        }
        let mut kind_error = None;
        validate_batch(batch, |entity, attr| {
            self.attr_kind_below(entity, attr, head.seq)
                .unwrap_or_else(|e| {
                    kind_error.get_or_insert(e);
                    None
                })
        })
        .map_err(|(index, invalid)| Error::Input {
            origin: batch[index].origin.to_string(),
            message: invalid.to_string(),
        })?;
        if let Some(e) = kind_error {
            return Err(e);
        }
        let snapshot = self.snapshot(None)?;
        check_corrections(batch, &snapshot)?;
        let mut receipt = Receipt {
            appended: Vec::new(),
            skipped: Vec::new(),
            head: head.seq,
            restored: false,
        };
        let mut new = Vec::new();
        for located in batch {
            let event = &located.event;
            let size = record::encoded_len(event);
            if size > record::MAX_EVENT_BYTES {
                return Err(Error::Input {
                    origin: located.origin.to_string(),
                    message: format!(
                        "the event is {size} bytes encoded; at most {} are allowed",
                        record::MAX_EVENT_BYTES
                    ),
                });
            }
            match snapshot.find(&event.id)? {
                None => new.push(located),
                Some(stored) => match policy {
                    IdPolicy::RequireNew => {
                        return Err(Error::DuplicateId {
                            id: event.id.clone(),
                            seq: stored.seq,
                        });
                    }
                    IdPolicy::SkipUnchanged if stored.event == *event => {
                        receipt.skipped.push(event.id.clone());
                    }
                    IdPolicy::SkipUnchanged => {
                        return Err(Error::ChangedEvent {
                            id: event.id.clone(),
                            seq: stored.seq,
                        });
                    }
                },
            }
        }
        if new.is_empty() {
            return Ok(receipt);
        }
        let times = match restored_times(head, &new) {
            Some(times) => {
                check_restored_hashes(head, &new, &times)?;
                receipt.restored = true;
                times
            }
            None => vec![now.max(head.recorded_at); new.len()],
        };
        let new: Vec<&Event> = new.iter().map(|l| &l.event).collect();
        let result = self.write_records(head, &new, &times);
        if result.is_err() {
            // Best effort: take back what was written above the head. If this
            // fails too, the next open does it (the pending marker is set).
            let _ = self.remove_above(head.seq);
        }
        let new_head = result?;
        receipt.appended = new
            .iter()
            .enumerate()
            .map(|(i, e)| (head.seq + 1 + i as u64, e.id.clone()))
            .collect();
        receipt.head = new_head.seq;
        Ok(receipt)
    }

    /// Writes the batch and publishes it: the whole commit protocol.
    fn write_records(
        &self,
        head: Head,
        events: &[&Event],
        times: &[DateTime<Utc>],
    ) -> Result<Head> {
        let new_head = self.stage(head, events, times)?;
        self.publish(new_head)?;
        Ok(new_head)
    }

    /// Steps 1 and 2 of a batch: the pending marker, then every record and
    /// index entry above the head. Nothing is visible until [`Store::publish`].
    fn stage(&self, head: Head, events: &[&Event], times: &[DateTime<Utc>]) -> Result<Head> {
        let sled_err = |e| self.storage(e);
        let last = head.seq + events.len() as u64;
        self.meta
            .insert(META_PENDING, &last.to_be_bytes())
            .map_err(sled_err)?;
        let (mut log, mut by_time, mut by_id, mut by_entity, mut attrs) = Default::default();
        let mut new_attrs = BTreeSet::new();
        let mut corrected = sled::Batch::default();
        let new_seqs: HashMap<&str, u64> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.as_str(), head.seq + 1 + i as u64))
            .collect();
        let mut prev = head.hash;
        let mut seq = head.seq;
        for (event, &recorded_at) in events.iter().zip(times) {
            seq += 1;
            for id in &event.corrects {
                let target = match new_seqs.get(id.as_str()) {
                    Some(&target) => target,
                    None => self
                        .by_id
                        .get(id.as_bytes())
                        .map_err(sled_err)?
                        .and_then(|v| keys::decode_seq(&v))
                        .ok_or_else(|| {
                            Error::Corrupt(format!(
                                "the corrected event \"{id}\" has no readable id index entry"
                            ))
                        })?,
                };
                corrected.insert(&keys::pair(target, seq), &[]);
            }
            let (bytes, hash) = record::encode(seq, recorded_at, prev, event);
            prev = hash;
            let start = event.at.start();
            sled::Batch::insert(&mut log, &keys::seq(seq), bytes);
            sled::Batch::insert(&mut by_time, &keys::time(start, seq), &[]);
            sled::Batch::insert(&mut by_id, event.id.as_bytes(), &keys::seq(seq));
            for entity in event.entities() {
                sled::Batch::insert(&mut by_entity, keys::entity(entity, start, seq), &[]);
            }
            for change in &event.changes {
                let key = keys::attr(&change.entity, &change.attr);
                if new_attrs.insert(key.clone())
                    && self.attrs.get(&key).map_err(sled_err)?.is_none()
                {
                    sled::Batch::insert(
                        &mut attrs,
                        key,
                        encode_attr(change.op.attr_kind(), seq).to_vec(),
                    );
                }
            }
        }
        self.log.apply_batch(log).map_err(sled_err)?;
        self.by_time.apply_batch(by_time).map_err(sled_err)?;
        self.by_id.apply_batch(by_id).map_err(sled_err)?;
        self.by_entity.apply_batch(by_entity).map_err(sled_err)?;
        self.attrs.apply_batch(attrs).map_err(sled_err)?;
        self.corrected.apply_batch(corrected).map_err(sled_err)?;
        Ok(Head {
            seq,
            hash: prev,
            recorded_at: times.last().copied().unwrap_or(head.recorded_at),
        })
    }

    /// Step 3: the new head and the cleared marker in one atomic write to
    /// `meta`, then a flush. Only after the flush is the batch acknowledged.
    fn publish(&self, head: Head) -> Result<()> {
        let mut publish = sled::Batch::default();
        publish.insert(META_HEAD, head.encode().to_vec());
        publish.remove(META_PENDING);
        self.meta
            .apply_batch(publish)
            .map_err(|e| self.storage(e))?;
        self.flush()?;
        witness::write(&self.path, &head)
    }

    /// How many records this handle has read from the log so far: lets
    /// tests and benchmarks see how much of the log a query touched.
    pub fn records_read(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Reads the record at `seq`, which must exist.
    fn read(&self, seq: u64) -> Result<Record> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let bytes = self
            .log
            .get(keys::seq(seq))
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| Error::Corrupt(format!("record {seq} is missing from the log")))?;
        let record =
            record::decode(&bytes).map_err(|m| Error::Corrupt(format!("record {seq}: {m}")))?;
        if record.seq != seq {
            return Err(Error::Corrupt(format!(
                "record {seq} says it is record {}",
                record.seq
            )));
        }
        Ok(record)
    }

    /// A consistent view of the store as it is now.
    pub fn latest(&self) -> Result<Snapshot<'_>> {
        self.snapshot(None)
    }

    /// Figures about the store.
    pub fn stats(&self) -> Result<Stats> {
        let snapshot = self.latest()?;
        let head = self.head()?;
        let mut order = snapshot.replay_order(None)?;
        let first_at = order.next().transpose()?.map(|r| r.event.at);
        let last_at = snapshot.last_in_replay_order()?.map(|r| r.event.at);
        Ok(Stats {
            events: head.seq,
            head,
            first_at,
            last_at,
            first_recorded_at: snapshot.get(1)?.map(|r| r.recorded_at),
            entities: snapshot.entities()?.len() as u64,
            size_on_disk: self.db.size_on_disk().map_err(|e| self.storage(e))?,
        })
    }
}

/// The original times of a batch that continues the log exactly where an
/// export left it: every event carries its record's place, the seqs follow
/// the head without a gap, and the times never go backwards. Otherwise the
/// batch is appended as new records, stamped now.
fn restored_times(head: Head, new: &[&Located]) -> Option<Vec<DateTime<Utc>>> {
    let mut previous = head.recorded_at;
    let mut times = Vec::with_capacity(new.len());
    for (i, located) in new.iter().enumerate() {
        let recorded = located.recorded?;
        if recorded.seq != head.seq + 1 + i as u64 || recorded.at < previous {
            return None;
        }
        previous = recorded.at;
        times.push(recorded.at);
    }
    Some(times)
}

/// A restored record must hash to the hash its export gave: otherwise the
/// export was changed or damaged.
fn check_restored_hashes(head: Head, new: &[&Located], times: &[DateTime<Utc>]) -> Result<()> {
    let mut prev = head.hash;
    for (i, located) in new.iter().enumerate() {
        let seq = head.seq + 1 + i as u64;
        let (_, hash) = record::encode(seq, times[i], prev, &located.event);
        if located
            .recorded
            .and_then(|r| r.hash)
            .is_some_and(|given| given != hash)
        {
            return Err(Error::Input {
                origin: located.origin.to_string(),
                message: format!(
                    "record {seq} does not hash to the hash its export gives: the export was changed or is damaged"
                ),
            });
        }
        prev = hash;
    }
    Ok(())
}

/// Every id an event corrects must be stored already or be in the batch,
/// and the batch must not correct in a circle.
fn check_corrections(batch: &[Located], snapshot: &Snapshot<'_>) -> Result<()> {
    let in_batch: HashMap<&str, usize> = batch
        .iter()
        .enumerate()
        .map(|(i, l)| (l.event.id.as_str(), i))
        .collect();
    let invalid = |index: usize, field: String, message: String| Error::Input {
        origin: batch[index].origin.to_string(),
        message: crate::event::Invalid::new(field, message).to_string(),
    };
    for (index, located) in batch.iter().enumerate() {
        for (i, id) in located.event.corrects.iter().enumerate() {
            if !in_batch.contains_key(id.as_str()) && snapshot.find(id)?.is_none() {
                return Err(invalid(
                    index,
                    format!("corrects[{i}]"),
                    format!("there is no event \"{id}\" in the store or in this batch to correct"),
                ));
            }
        }
    }
    // Stored events can only correct stored events, so a cycle lies within
    // the batch: a depth-first search over the batch's corrections finds it.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unseen,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::Unseen; batch.len()];
    for root in 0..batch.len() {
        if marks[root] != Mark::Unseen {
            continue;
        }
        marks[root] = Mark::OnPath;
        // (event index, index of its next correction to follow)
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&(node, next)) = path.last() {
            let corrects = &batch[node].event.corrects;
            if next == corrects.len() {
                marks[node] = Mark::Done;
                path.pop();
                continue;
            }
            path.last_mut().expect("not empty").1 += 1;
            let Some(&target) = in_batch.get(corrects[next].as_str()) else {
                continue;
            };
            match marks[target] {
                Mark::Unseen => {
                    marks[target] = Mark::OnPath;
                    path.push((target, 0));
                }
                Mark::OnPath => {
                    let from = path
                        .iter()
                        .position(|(n, _)| *n == target)
                        .expect("on the path");
                    let mut circle: Vec<&str> = path[from..]
                        .iter()
                        .map(|(n, _)| batch[*n].event.id.as_str())
                        .collect();
                    circle.push(&batch[target].event.id);
                    return Err(invalid(
                        target,
                        "corrects".into(),
                        format!("the corrections go in a circle: {}", circle.join(" → ")),
                    ));
                }
                Mark::Done => {}
            }
        }
    }
    Ok(())
}

fn encode_attr(kind: AttrKind, seq: u64) -> [u8; 9] {
    let mut bytes = [0; 9];
    bytes[0] = match kind {
        AttrKind::Single => 0,
        AttrKind::Set => 1,
    };
    bytes[1..].copy_from_slice(&seq.to_be_bytes());
    bytes
}

fn decode_attr(bytes: &[u8]) -> Option<(AttrKind, u64)> {
    let kind = match bytes.first()? {
        0 => AttrKind::Single,
        1 => AttrKind::Set,
        _ => return None,
    };
    Some((kind, keys::decode_seq(bytes.get(1..)?)?))
}

fn storage(path: &Path, e: sled::Error) -> Error {
    let message = match e {
        sled::Error::Io(io) => io_message(&io),
        other => other.to_string(),
    };
    Error::Storage {
        path: path.to_path_buf(),
        message,
    }
}

/// An I/O error in words, with a hint where one helps.
fn io_message(io: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match io.kind() {
        StorageFull | FileTooLarge | QuotaExceeded => {
            format!("{io}: the disk is full or a file-size limit is reached")
        }
        _ => io.to_string(),
    }
}

fn open_error(path: &Path, e: sled::Error) -> Error {
    let message = e.to_string();
    if message.contains("could not acquire lock") {
        return Error::Locked {
            path: path.to_path_buf(),
        };
    }
    match e {
        sled::Error::Io(io) => Error::Storage {
            path: path.to_path_buf(),
            message: format!("cannot open it: {}", io_message(&io)),
        },
        sled::Error::Corruption { .. } => {
            Error::Corrupt(format!("sled reports corruption in {}", path.display()))
        }
        other => storage(path, other),
    }
}

/// Refuses, before sled touches anything, a path that is not (and cannot
/// become) a store.
fn check_location(path: &Path, mode: OpenMode) -> Result<()> {
    let not_a_store = |reason: &str| Error::NotAStore {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => Err(not_a_store("it is a file, not a directory")),
        Ok(_) => {
            let entries = std::fs::read_dir(path).map_err(|source| Error::Io {
                action: "read the store directory",
                path: path.to_path_buf(),
                source,
            })?;
            let mut empty = true;
            for entry in entries.flatten() {
                empty = false;
                if entry.file_name() == "conf" {
                    return Ok(());
                }
            }
            if empty && mode == OpenMode::CreateIfMissing {
                Ok(())
            } else if empty {
                Err(Error::NoStore {
                    path: path.to_path_buf(),
                })
            } else {
                Err(not_a_store("the directory holds other files"))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match mode {
            OpenMode::Existing => Err(Error::NoStore {
                path: path.to_path_buf(),
            }),
            OpenMode::CreateIfMissing => {
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                match parent {
                    Some(parent) if !parent.is_dir() => Err(Error::Io {
                        action: "create the store at",
                        path: path.to_path_buf(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("the directory {} does not exist", parent.display()),
                        ),
                    }),
                    _ => Ok(()),
                }
            }
        },
        Err(source) => Err(Error::Io {
            action: "open the store at",
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
