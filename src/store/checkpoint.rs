//! Checkpoints: the replayed state stored every so many events, so that
//! "the state at D" replays only from the nearest checkpoint before D.
//!
//! A checkpoint sits at a position in replay order (the `by_time` element
//! of the last event it includes) and holds a [`Resume`]: the state after
//! every event up to there, all taken as certain, and the `until` expiries
//! still to come. It may serve a question only if
//!
//! - every event up to it ends before the question's end (`max_end`), so
//!   none of them would be uncertain or left out by `--strict`; and
//! - every record it depends on is known to the snapshot (`requires`: the
//!   highest seq among its events and among the events correcting them), so
//!   `--known-at` an earlier seq never uses it.
//!
//! Both bounds only grow along replay order, so the checkpoints that may
//! serve a question are those up to some position: the nearest one is found
//! by walking back from the question's end. A write that lands at or before
//! a checkpoint's position (a backdated event, a correction) removes it
//! before the batch is published; new checkpoints are built after.
//!
//! Stored as a header and the body in parts, so that sled (which keeps up to
//! 16 entries in a node and rewrites whole nodes) never handles values of
//! many megabytes:
//!
//! - `h ‖ position` → `[version 2][max_end i64 BE][requires u64 BE]
//!   [count u64 BE][parts u32 BE]`, `count` the number of records at or
//!   before the position;
//! - `p ‖ position ‖ part u32 BE` → up to 64 KiB of the body: a zstd frame
//!   of the bincode of `BodyV1`, strings (entities, attributes, event ids)
//!   interned once.
//!
//! The header and the parts are written in one sled batch. Version 1 kept
//! header and body in one value under the bare position; such entries are
//! not read, and the next build replaces them.

use rustc_hash::FxHashMap as HashMap;

use serde::{Deserialize, Serialize};

use super::record::{ValueV1, WhenV1};
use super::{Snapshot, Store, compress, keys};
use crate::error::{Error, Result};
use crate::state::{AsOf, Expiry, Fed, Provenance, Replay, Resume, Slot, State};
use crate::when::When;

const VERSION: u8 = 2;
const HEADER: usize = 29;
const DECODE_LIMIT: usize = 1 << 30;
/// The key prefixes of headers and of body parts.
const HEADERS: u8 = b'h';
const PARTS: u8 = b'p';
/// The largest body part.
const PART_BYTES: usize = 64 << 10;
/// The length of a version-1 key: a bare position.
const LEGACY_KEY: usize = 16;

/// Events between two checkpoints, unless the store says otherwise.
pub const DEFAULT_EVERY: u64 = 50_000;

/// What a query needs to know before it decodes a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub max_end: i64,
    pub requires: u64,
    /// Records (corrected ones too) at or before the checkpoint's position.
    pub count: u64,
}

#[derive(Serialize, Deserialize)]
struct BodyV1<S> {
    strings: Vec<S>,
    slots: Vec<SlotV1<S>>,
    expiries: Vec<ExpiryV1<S>>,
}

#[derive(Serialize, Deserialize)]
struct SlotV1<S> {
    entity: u32,
    attr: u32,
    many: bool,
    facts: Vec<FactV1<S>>,
}

#[derive(Serialize, Deserialize)]
struct FactV1<S> {
    value: ValueV1<S>,
    event: u32,
    since: WhenV1,
    until: Option<WhenV1>,
}

#[derive(Serialize, Deserialize)]
struct ExpiryV1<S> {
    end: i64,
    entity: u32,
    attr: u32,
    member: Option<ValueV1<S>>,
}

/// Interns strings for encoding.
#[derive(Default)]
struct Strings<'a> {
    index: HashMap<&'a str, u32>,
    list: Vec<&'a str>,
}

impl<'a> Strings<'a> {
    fn of(&mut self, s: &'a str) -> u32 {
        *self.index.entry(s).or_insert_with(|| {
            self.list.push(s);
            (self.list.len() - 1) as u32
        })
    }
}

/// Encodes a checkpoint's body from a state and its pending expiries, in
/// order; `None` if it would be too large to decode (a cache can do
/// without).
fn encode_body<'a>(
    state: &'a State,
    expiries: impl Iterator<Item = &'a Expiry>,
) -> Option<Vec<u8>> {
    let mut strings = Strings::default();
    let slots: Vec<SlotV1<&str>> = state
        .slots()
        .map(|(entity, attr, slot)| SlotV1 {
            entity: strings.of(entity),
            attr: strings.of(attr),
            many: matches!(slot, Slot::Many(_)),
            facts: slot
                .values()
                .into_iter()
                .map(|(value, p)| FactV1 {
                    value: value.into(),
                    event: strings.of(&p.event),
                    since: p.since.into(),
                    until: p.until.map(Into::into),
                })
                .collect(),
        })
        .collect();
    let expiries: Vec<ExpiryV1<&str>> = expiries
        .map(|e| ExpiryV1 {
            end: e.end,
            entity: strings.of(&e.entity),
            attr: strings.of(&e.attr),
            member: e.member.as_ref().map(Into::into),
        })
        .collect();
    let body = BodyV1 {
        strings: strings.list,
        slots,
        expiries,
    };
    let bytes = bincode::serde::encode_to_vec(&body, bincode::config::standard())
        .expect("encoding to a Vec cannot fail");
    (bytes.len() <= DECODE_LIMIT).then(|| compress::compress(bytes))
}

/// Encodes a checkpoint's header, saying how many parts its body has.
fn encode_header(header: Header, parts: u32) -> [u8; HEADER] {
    let mut bytes = [0; HEADER];
    bytes[0] = VERSION;
    bytes[1..9].copy_from_slice(&header.max_end.to_be_bytes());
    bytes[9..17].copy_from_slice(&header.requires.to_be_bytes());
    bytes[17..25].copy_from_slice(&header.count.to_be_bytes());
    bytes[25..29].copy_from_slice(&parts.to_be_bytes());
    bytes
}

/// Reads a checkpoint's header and the number of parts of its body.
fn decode_header(bytes: &[u8]) -> Option<(Header, u32)> {
    if bytes.len() != HEADER || bytes[0] != VERSION {
        return None;
    }
    let header = Header {
        max_end: i64::from_be_bytes(bytes[1..9].try_into().ok()?),
        requires: u64::from_be_bytes(bytes[9..17].try_into().ok()?),
        count: u64::from_be_bytes(bytes[17..25].try_into().ok()?),
    };
    Some((header, u32::from_be_bytes(bytes[25..29].try_into().ok()?)))
}

fn header_key(position: &[u8]) -> Vec<u8> {
    [&[HEADERS][..], position].concat()
}

fn part_key(position: &[u8], part: u32) -> Vec<u8> {
    [&[PARTS][..], position, &part.to_be_bytes()].concat()
}

/// Decodes a checkpoint's body. Strings are borrowed from `bytes` while
/// decoding and copied once into the state; each event id becomes one
/// shared `Arc` for every fact it gave.
fn decode_body(bytes: &[u8]) -> std::result::Result<Resume, String> {
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let (body, _): (BodyV1<&str>, usize) = bincode::serde::borrow_decode_from_slice(bytes, config)
        .map_err(|e| format!("checkpoint does not decode: {e}"))?;
    let strings = body.strings;
    let string = |i: u32| {
        strings
            .get(i as usize)
            .copied()
            .ok_or("a checkpoint names an unknown string")
    };
    let mut ids: Vec<Option<std::sync::Arc<str>>> = vec![None; strings.len()];
    let when = |w: WhenV1| When::try_from(w);
    let mut state = State::with_capacity(body.slots.len());
    for slot in body.slots {
        let mut facts = Vec::with_capacity(slot.facts.len());
        for fact in slot.facts {
            let event = ids
                .get_mut(fact.event as usize)
                .ok_or("a checkpoint names an unknown string")?
                .get_or_insert_with(|| std::sync::Arc::from(strings[fact.event as usize]))
                .clone();
            let provenance = Provenance {
                event,
                since: when(fact.since)?,
                uncertain: false,
                until: fact.until.map(when).transpose()?,
            };
            facts.push((fact.value.into_value()?, provenance));
        }
        let slot_value = if slot.many {
            Slot::Many(facts.into_iter().collect())
        } else {
            let (value, provenance) = facts
                .into_iter()
                .next()
                .ok_or("a checkpoint holds an empty attribute")?;
            Slot::One(value, provenance)
        };
        state.put_slot(string(slot.entity)?, string(slot.attr)?, slot_value);
    }
    let expiries = body
        .expiries
        .into_iter()
        .map(|e| {
            Ok(Expiry {
                end: e.end,
                entity: string(e.entity)?.to_string(),
                attr: string(e.attr)?.to_string(),
                member: e.member.map(ValueV1::into_value).transpose()?,
            })
        })
        .collect::<std::result::Result<_, String>>()?;
    Ok(Resume { state, expiries })
}

/// The question a checkpoint is built for: every event certain.
fn all_certain() -> AsOf {
    AsOf::new(When::parse("9999").expect("a valid year"))
}

impl Store {
    /// Sets how many events lie between two checkpoints (0: none are built).
    pub fn set_checkpoint_interval(&self, every: u64) {
        self.checkpoint_every
            .store(every, std::sync::atomic::Ordering::Relaxed);
    }

    fn checkpoint_interval(&self) -> u64 {
        self.checkpoint_every
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stores a checkpoint at `position` (a `by_time` element): its header
    /// and its body in parts, all in one batch.
    pub(super) fn put_checkpoint(
        &self,
        position: &[u8],
        header: Header,
        body: &[u8],
    ) -> Result<()> {
        let mut batch = sled::Batch::default();
        let mut parts = 0u32;
        for part in body.chunks(PART_BYTES) {
            batch.insert(part_key(position, parts), part);
            parts += 1;
        }
        batch.insert(header_key(position), &encode_header(header, parts)[..]);
        self.checkpoints
            .apply_batch(batch)
            .map_err(|e| self.storage(e))
    }

    /// Every checkpoint header, in replay order: (position, header, parts).
    fn checkpoint_headers(
        &self,
    ) -> impl DoubleEndedIterator<Item = Result<(Vec<u8>, Header, u32)>> + '_ {
        self.checkpoints.scan_prefix([HEADERS]).map(|entry| {
            let (key, bytes) = entry.map_err(|e| self.storage(e))?;
            let (header, parts) = decode_header(&bytes)
                .ok_or_else(|| Error::Corrupt("a checkpoint header is unreadable".into()))?;
            Ok((key[1..].to_vec(), header, parts))
        })
    }

    /// The body of the checkpoint at `position`, from its `parts` parts.
    fn checkpoint_body(&self, position: &[u8], parts: u32) -> Result<Resume> {
        let mut body = Vec::new();
        let mut found = 0;
        for entry in self
            .checkpoints
            .scan_prefix(&part_key(position, 0)[..=position.len()])
        {
            let (key, part) = entry.map_err(|e| self.storage(e))?;
            if key[..] != part_key(position, found)[..] {
                return Err(Error::Corrupt(
                    "a checkpoint's parts are out of order".into(),
                ));
            }
            body.extend_from_slice(&part);
            found += 1;
        }
        if found != parts {
            return Err(Error::Corrupt(format!(
                "a checkpoint has {found} of its {parts} parts"
            )));
        }
        if compress::is_compressed(&body) {
            body = compress::decompress(&body, DECODE_LIMIT)
                .ok_or_else(|| Error::Corrupt("a checkpoint does not decompress".into()))?;
        }
        decode_body(&body).map_err(|m| Error::Corrupt(format!("a checkpoint: {m}")))
    }

    /// Removes every checkpoint at or after `position` (a `by_time`
    /// element): a write landed there. Version-1 entries go too.
    pub(super) fn invalidate_checkpoints(&self, position: &[u8]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for prefix in [HEADERS, PARTS] {
            let from = [&[prefix][..], position].concat();
            for entry in self.checkpoints.range(from..vec![prefix + 1]) {
                let (key, _) = entry.map_err(|e| self.storage(e))?;
                batch.remove(key);
            }
        }
        self.remove_legacy_checkpoints(&mut batch)?;
        self.checkpoints
            .apply_batch(batch)
            .map_err(|e| self.storage(e))
    }

    /// Adds to `batch` the removal of every version-1 checkpoint.
    fn remove_legacy_checkpoints(&self, batch: &mut sled::Batch) -> Result<bool> {
        // They sort before the headers or after the parts: a date's
        // position starts with 0x7F or 0x80.
        let mut any = false;
        let outside = self
            .checkpoints
            .range(..vec![HEADERS])
            .keys()
            .chain(self.checkpoints.range(vec![PARTS + 1]..).keys());
        for entry in outside {
            let key = entry.map_err(|e| self.storage(e))?;
            if key.len() == LEGACY_KEY {
                batch.remove(key);
                any = true;
            }
        }
        Ok(any)
    }

    /// The nearest checkpoint that may serve `query` in a snapshot at
    /// `head`: its position and its state.
    pub(super) fn checkpoint_for(
        &self,
        query: AsOf,
        head: u64,
    ) -> Result<Option<(Vec<u8>, Resume)>> {
        let before = header_key(&keys::time(query.end(), 0));
        for entry in self.checkpoints.range(vec![HEADERS]..before).rev() {
            let (key, bytes) = entry.map_err(|e| self.storage(e))?;
            let (header, parts) = decode_header(&bytes)
                .ok_or_else(|| Error::Corrupt("a checkpoint header is unreadable".into()))?;
            if header.max_end <= query.end() && header.requires <= head {
                let position = key[1..].to_vec();
                match self.checkpoint_body(&position, parts) {
                    Ok(resume) => return Ok(Some((position, resume))),
                    // A write in another thread removed it meanwhile (it
                    // landed before it): one further back may serve.
                    Err(_)
                        if self.checkpoints.get(&key).map_err(|e| self.storage(e))?
                            != Some(bytes) =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(None)
    }

    /// Builds checkpoints for the events after the last one, every
    /// `interval` events, if there are that many. Returns how many it built.
    pub fn extend_checkpoints(&self) -> Result<u64> {
        self.build_checkpoints(false)
    }

    /// Builds checkpoints after the last one; with `rebuild_all`, as soon as
    /// an interval of events has gathered (a reindex).
    pub(super) fn build_checkpoints(&self, rebuild_all: bool) -> Result<u64> {
        let every = self.checkpoint_interval();
        if every == 0 {
            return Ok(0);
        }
        // Checkpoints of an earlier chronik's layout go; the ones built
        // below, in the current layout, replace them.
        let mut legacy = sled::Batch::default();
        if self.remove_legacy_checkpoints(&mut legacy)? {
            self.checkpoints
                .apply_batch(legacy)
                .map_err(|e| self.storage(e))?;
        }
        let snapshot = self.latest()?;
        let last = self.checkpoint_headers().next_back().transpose()?;
        // Every record lies at exactly one position: those after the last
        // checkpoint are the ones it does not count. A backdated append
        // removes the checkpoints after it; rebuilding them only once twice
        // an interval has gathered keeps such appends cheap, and queries
        // replay at most two intervals.
        let counted = last.as_ref().map_or(0, |(_, header, _)| header.count);
        let since = snapshot.head() - counted;
        if since < every || (last.is_some() && since < 2 * every && !rebuild_all) {
            return Ok(0);
        }
        let (mut builder, from) = match last {
            Some((position, header, parts)) => {
                let resume = self.checkpoint_body(&position, parts)?;
                (Builder::resume(header, resume), Some(position))
            }
            None => (Builder::new(), None),
        };
        let mut built = 0;
        for position in snapshot.positions_after(from.as_deref(), None) {
            let (start, seq) = position?;
            builder.step(&snapshot, start, seq)?;
            if builder.header.count % every == 0
                && let Some(body) = builder.encode()
            {
                self.put_checkpoint(&keys::time(start, seq), builder.header, &body)?;
                built += 1;
            }
        }
        Ok(built)
    }

    /// The checkpoint at `position`, if there is one (for tests).
    #[cfg(test)]
    pub(super) fn read_checkpoint(&self, position: &[u8]) -> Result<Option<(Header, Resume)>> {
        let Some(bytes) = self
            .checkpoints
            .get(header_key(position))
            .map_err(|e| self.storage(e))?
        else {
            return Ok(None);
        };
        let (header, parts) = decode_header(&bytes)
            .ok_or_else(|| Error::Corrupt("a checkpoint header is unreadable".into()))?;
        Ok(Some((header, self.checkpoint_body(position, parts)?)))
    }

    /// Replaces the checkpoint at `position` (for tests).
    #[cfg(test)]
    pub(super) fn write_checkpoint(
        &self,
        position: &[u8],
        header: Header,
        resume: &Resume,
    ) -> Result<()> {
        self.invalidate_checkpoints(position)?;
        let body = encode_body(&resume.state, resume.expiries.iter()).expect("a small state");
        self.put_checkpoint(position, header, &body)
    }

    /// The positions of every checkpoint, in replay order (for tests).
    #[cfg(test)]
    pub(super) fn checkpoint_positions(&self) -> Result<Vec<Vec<u8>>> {
        self.checkpoint_headers()
            .map(|h| h.map(|(position, ..)| position))
            .collect()
    }

    /// Compares every checkpoint with a fresh replay at its position: the
    /// number checked, or the first one that differs.
    pub(super) fn check_checkpoints(
        &self,
    ) -> Result<std::result::Result<u64, (Option<u64>, String)>> {
        let headers = self.checkpoint_headers().collect::<Result<Vec<_>>>()?;
        // Every entry is a header, a part, or a version-1 checkpoint (which
        // the next build replaces), and every part belongs to a header.
        let mut stored_parts = 0u64;
        for entry in self.checkpoints.iter().keys() {
            let key = entry.map_err(|e| self.storage(e))?;
            match (key.first(), key.len()) {
                (Some(&PARTS), 21) => stored_parts += 1,
                (Some(&HEADERS), 17) | (_, LEGACY_KEY) => {}
                _ => {
                    return Ok(Err((
                        None,
                        "an entry of the checkpoints tree is neither a header nor a part".into(),
                    )));
                }
            }
        }
        let claimed: u64 = headers.iter().map(|(_, _, parts)| u64::from(*parts)).sum();
        if stored_parts != claimed {
            return Ok(Err((
                None,
                "the checkpoints' parts do not match their headers".into(),
            )));
        }
        if headers.is_empty() {
            return Ok(Ok(0));
        }
        let mut checkpoints = headers.iter().peekable();
        let snapshot = self.latest()?;
        let mut builder = Builder::new();
        let mut checked = 0;
        for position in snapshot.positions_after(None, None) {
            let (start, seq) = position?;
            builder.step(&snapshot, start, seq)?;
            let key = keys::time(start, seq);
            while let Some((at, header, parts)) = checkpoints.peek() {
                if at[..] > key[..] {
                    break;
                }
                if at[..] < key[..] {
                    return Ok(Err((
                        None,
                        "a checkpoint sits where there is no event".into(),
                    )));
                }
                let differs = *header != builder.header
                    || self.checkpoint_body(at, *parts).ok() != Some(builder.replay.suspend());
                if differs {
                    return Ok(Err((
                        Some(seq),
                        "the checkpoint differs from a fresh replay up to it".into(),
                    )));
                }
                checked += 1;
                checkpoints.next();
            }
        }
        if checkpoints.next().is_some() {
            return Ok(Err((None, "a checkpoint lies after the last event".into())));
        }
        Ok(Ok(checked))
    }
}

/// Replays events into checkpoints, keeping their header.
struct Builder {
    replay: Replay,
    header: Header,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            replay: Replay::new(all_certain()),
            header: Header {
                max_end: i64::MIN,
                requires: 0,
                count: 0,
            },
        }
    }

    /// Continues from a stored checkpoint.
    fn resume(header: Header, resume: Resume) -> Builder {
        Builder {
            replay: Replay::resume(all_certain(), resume),
            header,
        }
    }

    /// Takes the record at the next position in replay order.
    fn step(&mut self, snapshot: &Snapshot<'_>, start: i64, seq: u64) -> Result<()> {
        let header = &mut self.header;
        header.requires = header.requires.max(seq);
        header.count += 1;
        if snapshot.is_corrected(seq) {
            for by in snapshot.correctors(seq) {
                header.requires = header.requires.max(by);
            }
            return Ok(());
        }
        let event = snapshot.event_for_replay(seq, start)?;
        header.max_end = header.max_end.max(event.at.end());
        if self.replay.feed(&event) != Fed::Certain {
            return Err(Error::Corrupt(format!(
                "record {seq} is not certain at the end of time"
            )));
        }
        Ok(())
    }

    fn encode(&self) -> Option<Vec<u8>> {
        encode_body(
            self.replay.state(),
            self.replay.pending_expiries().into_iter(),
        )
    }
}
