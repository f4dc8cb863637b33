//! The store: an append-only log of events in sled, with indexes.
//!
//! This module is the only one that knows sled. Its trees:
//!
//! | tree | holds |
//! |---|---|
//! | `log` | records by seq, 32 to a page (see `log.rs`, [`record`]) |
//! | `by_time` | paged set of (start, seq) — replay order (see `pages.rs`) |
//! | `by_id` | paged set of (event id, 0, seq) |
//! | `by_entity` | paged set of (entity, 0, start, seq) |
//! | `attrs` | paged set of (entity, 0, attr, 0, kind, seq that first used it) |
//! | `corrected` | (corrected seq, correcting seq) → empty |
//! | `checkpoints` | position in replay order → replayed state (see `checkpoint.rs`) |
//! | `meta` | `format_version`, `head`, `pending`, `reindexing` |
//!
//! A batch lands all or nothing by the commit-marker design (see
//! [`write`]): `pending` is written first, then records and index entries,
//! then `head` is published (and `pending` cleared) in one atomic write to
//! `meta`, then everything is flushed. Readers ignore whatever lies above
//! the head; opening a store that has `pending` (a crash mid-batch) removes
//! the leftovers. After the flush, the head is also written to a witness
//! file (see `witness.rs`), so that a store whose files lost records is
//! refused instead of answering as if they never existed.

mod cache;
mod checkpoint;
mod compress;
mod keys;
mod log;
mod pages;
pub mod record;
mod reindex;
mod runs;
mod snapshot;
mod verify;
mod witness;
mod write;

#[doc(hidden)]
pub mod tamper;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result, io_message};
use crate::event::{AttrKind, Event, Located};
use crate::when::When;
pub use record::{Hash, Record};
pub use reindex::Reindexed;
use snapshot::Corrections;
pub use snapshot::{Snapshot, TimelineEntry};
pub use verify::{Problem, Verified};
pub use write::{BatchChecks, Checked, Writer};

/// The cores this process may use, asked once (the answer can take reads
/// of the system's files).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `work` of each of `items`, in order, on up to `threads` threads side by
/// side (this one among them): each takes the next item as it finishes
/// one, and if no thread can be had, this one does them all.
fn map_side_by_side<T: Sync, R: Send + Sync>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::AtomicUsize;
    let done: Vec<std::sync::OnceLock<R>> = items.iter().map(|_| Default::default()).collect();
    let next = AtomicUsize::new(0);
    let take = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            // Each index is taken once, so each cell is set once.
            let _ = done[i].set(work(item));
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.min(items.len()) {
            if std::thread::Builder::new()
                .spawn_scoped(scope, take)
                .is_err()
            {
                break;
            }
        }
        take();
    });
    done.into_iter()
        .map(|cell| cell.into_inner().expect("every item is taken"))
        .collect()
}

/// The store format this code writes and reads.
///
/// - 1: log pages and checkpoints stored as they are;
/// - 2: log pages and checkpoints may be zstd frames (a page of version 1
///   never starts like one);
/// - 3: checkpoints are stored in chunks by entity; those of version 2 are
///   ignored, and the next write rebuilds them.
///
/// The first write to a store of an earlier version makes it current.
pub const FORMAT_VERSION: u32 = 3;

/// sled's page cache; its default (1 GiB) is far more than chronik needs.
/// Entity queries at random dates over a million events touch about 90 MiB
/// of checkpoints and entity index: at 64 MiB, a fifth of their time went
/// to reading back what the cache had let go (BENCHMARKS.md).
const CACHE_BYTES: u64 = 128 << 20;

/// The sled trees of a store.
const TREES: [&[u8]; 8] = [
    b"checkpoints",
    b"log",
    b"by_time",
    b"by_id",
    b"by_entity",
    b"attrs",
    b"corrected",
    b"meta",
];

const META_FORMAT: &[u8] = b"format_version";
const META_HEAD: &[u8] = b"head";
const META_PENDING: &[u8] = b"pending";
const META_REINDEXING: &[u8] = b"reindexing";

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
    /// How many events were appended.
    pub appended: u64,
    /// The seq of the first one, if any.
    pub first: Option<u64>,
    /// How many events were already stored with the same content, and skipped.
    pub skipped: u64,
    /// The head after the batch.
    pub head: u64,
    /// The records were restored from an export with their original seq,
    /// `recorded_at` and hash.
    pub restored: bool,
    /// Something the user should know although the batch is stored.
    pub warning: Option<String>,
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

/// Filters for [`Snapshot::timeline`]. Dates select every event whose interval
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
    log: log::Log,
    by_time: pages::PagedSet,
    by_id: pages::PagedSet,
    by_entity: pages::PagedSet,
    attrs: pages::PagedSet,
    corrected: sled::Tree,
    checkpoints: sled::Tree,
    meta: sled::Tree,
    writer: Mutex<()>,
    /// Events between two checkpoints (0: none are built).
    checkpoint_every: AtomicU64,
    /// Build a store's first checkpoints by replaying in date order, as
    /// checkpoints after the last one are, instead of entity by entity
    /// (for tests that compare the two).
    #[cfg(test)]
    first_checkpoints_in_date_order: std::sync::atomic::AtomicBool,
    /// Bytes of `by_entity` elements a batch holds before writing them.
    entity_elements_budget: AtomicU64,
    /// How many records have been read from the log (a diagnostic).
    reads: AtomicU64,
    /// The `corrected` tree, read once and kept until it is written
    /// (every snapshot needs it; reading it costs more than an entity query).
    corrections: cache::Kept<Corrections>,
    /// The checkpoint headers (key, value), read once and kept until the
    /// `checkpoints` tree is written (see [`Store::checkpoint_for`]).
    checkpoint_headers: cache::Kept<checkpoint::StoredHeaders>,
    /// chronik's own lock on the store, held while sled is open (declared
    /// last: released after sled has closed).
    _lock: std::fs::File,
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
        let lock = lock(path)?;
        wait_for_closing_sled(path)?;
        remove_interrupted_snapshots(path)?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| open_error(path, e))?;
        // Another program's sled database is left alone.
        if let Some(foreign) = db
            .tree_names()
            .into_iter()
            .find(|name| !TREES.contains(&&name[..]) && &name[..] != b"__sled__default")
        {
            return Err(Error::NotAStore {
                path: path.to_path_buf(),
                reason: format!(
                    "it is a sled database with a tree chronik does not know (\"{}\")",
                    String::from_utf8_lossy(&foreign)
                ),
            });
        }
        let tree = |name: &str| db.open_tree(name).map_err(|e| storage(path, e));
        let store = Store {
            log: log::Log::new(tree("log")?),
            by_time: pages::PagedSet::new(tree("by_time")?),
            by_id: pages::PagedSet::new(tree("by_id")?),
            // A one-entity query opens one of its pages: smaller ones
            // decompress faster (BENCHMARKS.md, "Smaller entity pages").
            by_entity: pages::PagedSet::with_page_bytes(
                tree("by_entity")?,
                pages::ENTITY_PAGE_BYTES,
            ),
            attrs: pages::PagedSet::new(tree("attrs")?),
            corrected: tree("corrected")?,
            checkpoints: tree("checkpoints")?,
            meta: tree("meta")?,
            checkpoint_every: AtomicU64::new(checkpoint::DEFAULT_EVERY),
            #[cfg(test)]
            first_checkpoints_in_date_order: std::sync::atomic::AtomicBool::new(false),
            entity_elements_budget: AtomicU64::new(write::ENTITY_ELEMENTS_BUDGET as u64),
            path: path.to_path_buf(),
            db,
            writer: Mutex::new(()),
            reads: AtomicU64::new(0),
            corrections: Default::default(),
            checkpoint_headers: Default::default(),
            _lock: lock,
        };
        // The format first (a newer one may keep its head elsewhere), then
        // the witness: a store that lost records must not be initialised or
        // repaired as if it were new.
        let initialised = store.check_format()?;
        let behind = witness::check(&store.path, &store.head()?)?;
        if !initialised {
            store.initialise()?;
        }
        store.recover()?;
        // A reindex that did not finish is finished now.
        if store
            .meta
            .get(META_REINDEXING)
            .map_err(|e| store.storage(e))?
            .is_some()
        {
            store.rebuild()?;
        }
        if behind {
            witness::write(&store.path, &store.head()?)?;
        }
        Ok(store)
    }

    /// Sets how many bytes of entity index elements a batch holds before it
    /// spills them to a run (tests set it low to exercise the runs).
    pub fn set_entity_elements_budget(&self, bytes: usize) {
        self.entity_elements_budget
            .store(bytes as u64, Ordering::Relaxed);
    }

    fn entity_elements_budget(&self) -> usize {
        self.entity_elements_budget.load(Ordering::Relaxed) as usize
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn storage(&self, e: sled::Error) -> Error {
        storage(&self.path, e)
    }

    /// Checks the format version: `Ok(false)` for a store that was never
    /// initialised (empty: new, or its first write died before it began).
    fn check_format(&self) -> Result<bool> {
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
                Ok(true)
            }
            None if self.log_last_seq()? == 0
                && self
                    .meta
                    .get(META_HEAD)
                    .map_err(|e| self.storage(e))?
                    .is_none() =>
            {
                Ok(false)
            }
            None => Err(Error::NotAStore {
                path: self.path.clone(),
                reason: "it has no chronik format version".into(),
            }),
        }
    }

    /// Marks a store of an earlier format version as of the current one,
    /// before anything is written in the current format (the versions
    /// before read the same, but cannot read what is written now). Its
    /// checkpoints of earlier layouts go first; later writes build current
    /// ones.
    fn upgrade_format(&self) -> Result<()> {
        let current = FORMAT_VERSION.to_be_bytes();
        if self
            .meta
            .get(META_FORMAT)
            .map_err(|e| self.storage(e))?
            .as_deref()
            != Some(&current[..])
        {
            self.remove_legacy_checkpoints()?;
            self.meta
                .insert(META_FORMAT, &current)
                .map_err(|e| self.storage(e))?;
            // Durable before anything of the new format is written.
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the format version of a new store.
    fn initialise(&self) -> Result<()> {
        self.meta
            .insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes())
            .map_err(|e| self.storage(e))?;
        self.flush()
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
        if !pending && self.log_last_seq()? <= head {
            return Ok(());
        }
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.upgrade_format()?;
        self.remove_above(head)?;
        self.meta
            .remove(META_PENDING)
            .map_err(|e| self.storage(e))?;
        self.flush()
    }

    fn log_last_seq(&self) -> Result<u64> {
        self.log.last_seq().map_err(|e| self.log_error(e))
    }

    fn remove_above(&self, head: u64) -> Result<()> {
        let sled_err = |e| self.storage(e);
        self.log
            .truncate_above(head)
            .map_err(|e| self.log_error(e))?;
        let known = |element: &[u8]| keys::seq_of(element).is_some_and(|seq| seq <= head);
        for (name, set) in self.index_sets() {
            set.retain(known).map_err(|e| self.page_error(name, e))?;
        }
        for entry in self.corrected.iter() {
            let (key, _) = entry.map_err(sled_err)?;
            if keys::decode_pair(&key).is_none_or(|(_, by)| by > head) {
                self.corrected.remove(key).map_err(sled_err)?;
            }
        }
        self.forget_corrections();
        Ok(())
    }

    /// The paged index sets, by tree name.
    fn index_sets(&self) -> [(&'static str, &pages::PagedSet); 4] {
        [
            ("by_time", &self.by_time),
            ("by_id", &self.by_id),
            ("by_entity", &self.by_entity),
            ("attrs", &self.attrs),
        ]
    }

    /// The seq that `by_id` gives for `id` among the records up to `last`
    /// (the first, in an index that gives several): the event stored, or
    /// staged by the batch being written, with that id. Entries above
    /// `last` are leftovers of a batch that failed.
    fn id_seq(&self, id: &str, last: u64) -> std::result::Result<Option<u64>, pages::PageError> {
        let prefix = keys::id_prefix(id);
        let end = keys::prefix_end(&prefix);
        for element in self.by_id.range(&prefix, Some(&end)) {
            match keys::seq_of(&element?) {
                Some(seq) if seq <= last => return Ok(Some(seq)),
                _ => {}
            }
        }
        Ok(None)
    }

    fn page_error(&self, tree: &str, e: pages::PageError) -> Error {
        match e {
            pages::PageError::Sled(e) => self.storage(e),
            pages::PageError::Bad(key) => Error::Corrupt(format!(
                "a page of the {tree} index (first key {}) does not decode",
                record::hash_to_hex(&key)
            )),
        }
    }

    fn log_error(&self, e: log::LogError) -> Error {
        match e {
            log::LogError::Sled(e) => self.storage(e),
            log::LogError::BadPage(page) => {
                Error::Corrupt(format!("page {page} of the log does not decode"))
            }
        }
    }

    /// The kind an attribute was first used with, if any stored event uses it.
    pub fn attr_kind(&self, entity: &str, attr: &str) -> Result<Option<AttrKind>> {
        let head = self.head()?.seq;
        self.attr_kind_below(entity, attr, head)
    }

    fn attr_kind_below(&self, entity: &str, attr: &str, head: u64) -> Result<Option<AttrKind>> {
        let prefix = keys::attr_prefix(entity, attr);
        let end = keys::prefix_end(&prefix);
        for element in self.attrs.range(&prefix, Some(&end)) {
            let element = element.map_err(|e| self.page_error("attrs", e))?;
            let (_, _, kind, seq) = keys::decode_attr_element(&element)
                .ok_or_else(|| Error::Corrupt("an attribute kind is unreadable".into()))?;
            if seq <= head {
                return decode_kind(kind)
                    .map(Some)
                    .ok_or_else(|| Error::Corrupt("an attribute kind is unreadable".into()));
            }
        }
        Ok(None)
    }

    /// Appends a batch, all or nothing, and flushes it to disk before
    /// returning (see [`Writer`] for a batch that arrives in chunks).
    pub fn write(
        &self,
        batch: &[Located],
        policy: IdPolicy,
        expect_head: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Receipt> {
        let mut writer = self.writer(policy, expect_head, now)?;
        writer.push(batch)?;
        writer.commit()
    }

    /// How many records this handle has read from the log so far: lets
    /// tests and benchmarks see how much of the log a query touched.
    pub fn records_read(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The stored bytes of record `seq`, which must exist.
    fn stored(&self, seq: u64) -> Result<sled::IVec> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.log
            .get(seq)
            .map_err(|e| self.log_error(e))?
            .ok_or_else(|| Error::Corrupt(format!("record {seq} is missing from the log")))
    }

    /// Reads the record at `seq`, which must exist.
    fn read(&self, seq: u64) -> Result<Record> {
        let bytes = self.stored(seq)?;
        let prev_hash = match seq {
            1 => [0; 32],
            _ => self
                .log
                .get(seq - 1)
                .map_err(|e| self.log_error(e))?
                .and_then(|b| record::stored_hash(&b))
                .ok_or_else(|| {
                    Error::Corrupt(format!("record {} is missing from the log", seq - 1))
                })?,
        };
        let record = record::decode(&bytes, prev_hash)
            .map_err(|m| Error::Corrupt(format!("record {seq}: {m}")))?;
        if record.seq != seq {
            return Err(Error::Corrupt(format!(
                "record {seq} says it is record {}",
                record.seq
            )));
        }
        Ok(record)
    }

    /// Reads what a replay needs of record `seq` (see
    /// [`record::decode_for_replay`]), which must exist.
    fn read_for_replay(&self, seq: u64) -> Result<Event> {
        let bytes = self.stored(seq)?;
        record::decode_for_replay(&bytes).map_err(|m| Error::Corrupt(format!("record {seq}: {m}")))
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

/// The byte an attribute kind is stored as.
fn encode_kind(kind: AttrKind) -> u8 {
    match kind {
        AttrKind::Single => 0,
        AttrKind::Set => 1,
    }
}

fn decode_kind(byte: u8) -> Option<AttrKind> {
    match byte {
        0 => Some(AttrKind::Single),
        1 => Some(AttrKind::Set),
        _ => None,
    }
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

/// chronik's lock file in a store directory.
const LOCK_FILE: &str = "chronik.lock";

/// Takes chronik's lock on the store directory (creating it if needed), so
/// that nothing below runs while another chronik process has the store open.
fn lock(path: &Path) -> Result<std::fs::File> {
    let io = |action: &'static str| {
        move |source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    std::fs::create_dir_all(path).map_err(io("create the store at"))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join(LOCK_FILE))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => Error::Storage {
                path: path.to_path_buf(),
                message: "cannot open it: permission denied".into(),
            },
            _ => io("open the store at")(e),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io("lock the store at")(e)),
    }
}

/// How long opening waits for a store this process just closed.
const CLOSING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until sled has let go of the store. Under chronik's lock, sled's
/// own lock on its `db` file can only be held by a store this process
/// closed a moment ago: sled finishes writing in background threads that
/// keep its files, and its lock, for a little while after the last handle
/// is dropped. Waiting here also keeps [`remove_interrupted_snapshots`]
/// from removing a snapshot such a thread is still writing.
fn wait_for_closing_sled(path: &Path) -> Result<()> {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path.join("db"))
    else {
        // No sled files yet (or none we may write): sled reports the rest.
        return Ok(());
    };
    let deadline = std::time::Instant::now() + CLOSING_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(Error::Io {
                    action: "lock the store at",
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// Removes the snapshot files sled was still writing when its process
/// died. sled 0.34.7 takes the newest `snap.*` file by name when it opens,
/// including an unfinished `snap.*.generating`, and then reports the store
/// corrupt; without it, sled uses the previous snapshot and its log, which
/// is what the unfinished file would have summarised. Safe only under
/// chronik's lock: no other process is writing a snapshot.
fn remove_interrupted_snapshots(path: &Path) -> Result<()> {
    let entries = std::fs::read_dir(path).map_err(|source| Error::Io {
        action: "read the store directory",
        path: path.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path()).map_err(|source| Error::Io {
                action: "remove the unfinished snapshot",
                path: entry.path(),
                source,
            })?;
        }
    }
    Ok(())
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
                if entry.file_name() == "conf" {
                    return Ok(());
                }
                // A first open that died before sled began leaves only the lock.
                empty &= entry.file_name() == LOCK_FILE;
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
