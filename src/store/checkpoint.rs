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
//! Stored as a header and the body in chunks, each the facts of a run of
//! entities, so that a query about one entity decodes only the part of the
//! checkpoint about it, and sled (which keeps up to 16 entries in a node and
//! rewrites whole nodes) never handles values of many megabytes:
//!
//! - `h ‖ position` → `[version 3][max_end i64 BE][requires u64 BE]
//!   [count u64 BE][chunks u32 BE][slots u32 BE]`, `count` the number of
//!   records at or before the position, `slots` the number of attributes
//!   that hold anything (to size the state before decoding);
//! - `c ‖ position ‖ first` → a zstd frame (or the bytes themselves, if they
//!   would not shrink) of the entities from `first` (an
//!   entity's name; empty for the first chunk) up to the next chunk's, in
//!   order, each as two elements of the page format of [`super::pages`]: the
//!   entity's name, and the bincode of `BodyV1` with its facts and the
//!   `until` expiries pending for them, strings (attributes, event ids)
//!   interned once an entity.
//!
//! The header and the chunks are written in one sled batch. Earlier layouts
//! are not read; the first write to a store of an earlier format version
//! removes them, and the build after it replaces them: version 1 kept header
//! and body in one value under the bare position, version 2 split one body
//! into 64 KiB parts under `p ‖ position ‖ part u32 BE`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rustc_hash::FxHashMap as HashMap;

use serde::{Deserialize, Serialize};

use super::record::{ValueV1, WhenV1};
use super::{Snapshot, Store, compress, keys};
use crate::error::{Error, Result};
use crate::event::{Event, Value};
use crate::state::{AsOf, Expiry, Fed, Provenance, Replay, Resume, Slot, State};
use crate::when::When;

mod by_entity;

const VERSION: u8 = 3;
const HEADER: usize = 33;
const DECODE_LIMIT: usize = 1 << 30;
/// The key prefixes of chunks and headers, and of the parts of version 2.
const CHUNKS: u8 = b'c';
const HEADERS: u8 = b'h';
const LEGACY_PARTS: u8 = b'p';
/// The length of a version-1 key: a bare position.
const LEGACY_KEY: usize = 16;
/// How many bytes of encoded entities a chunk holds before the next one
/// starts (an entity is never split, so one with many facts makes a larger
/// chunk). Smaller chunks make a query about one entity cheaper and
/// compress less well.
const CHUNK_BYTES: usize = 4 << 10;
/// States with fewer attributes than this are encoded in one thread; larger
/// ones in up to `MAX_RUNS` threads side by side.
const PARALLEL_SLOTS: usize = 4096;
const MAX_RUNS: usize = 4;

/// Events between two checkpoints, unless the store says otherwise.
pub const DEFAULT_EVERY: u64 = 50_000;

/// Every stored checkpoint header, (key, value), in key order.
pub(super) type StoredHeaders = Vec<(sled::IVec, sled::IVec)>;

/// What a query needs to know before it decodes a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub max_end: i64,
    pub requires: u64,
    /// Records (corrected ones too) at or before the checkpoint's position.
    pub count: u64,
}

impl Header {
    /// Counts the next record in replay order, `seq`: `end` is the end of
    /// its event's date, `None` if it is corrected (by `correctors`).
    fn take(&mut self, seq: u64, end: Option<i64>, correctors: impl Iterator<Item = u64>) {
        self.requires = self.requires.max(seq);
        self.count += 1;
        match end {
            Some(end) => self.max_end = self.max_end.max(end),
            None => self.requires = correctors.fold(self.requires, u64::max),
        }
    }
}

/// How a checkpoint's body is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    chunks: u32,
    /// Attributes that hold anything, in every chunk together.
    slots: u32,
}

#[derive(Serialize, Deserialize, bincode::BorrowDecode)]
struct BodyV1<S> {
    strings: Vec<S>,
    slots: Vec<SlotV1<S>>,
    expiries: Vec<ExpiryV1<S>>,
}

#[derive(Serialize, Deserialize, bincode::BorrowDecode)]
struct SlotV1<S> {
    entity: u32,
    attr: u32,
    many: bool,
    facts: Vec<FactV1<S>>,
}

#[derive(Serialize, Deserialize, bincode::BorrowDecode)]
struct FactV1<S> {
    value: ValueV1<S>,
    event: u32,
    since: WhenV1,
    until: Option<WhenV1>,
}

#[derive(Serialize, Deserialize, bincode::BorrowDecode)]
struct ExpiryV1<S> {
    end: i64,
    entity: u32,
    attr: u32,
    member: Option<ValueV1<S>>,
}

/// Interns strings for encoding; one table serves every entity of a body
/// in turn ([`Strings::clear`] keeps its memory).
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

    fn clear(&mut self) {
        self.index.clear();
        self.list.clear();
    }
}

/// A checkpoint's body, ready to store: each chunk's first key (see the
/// module's documentation) and its compressed bytes.
#[derive(Default)]
struct Chunks {
    chunks: Vec<(Vec<u8>, Vec<u8>)>,
    slots: u32,
}

impl Chunks {
    /// Adds the chunks of a later run of entities.
    fn append(&mut self, run: Chunks) {
        self.chunks.extend(run.chunks);
        self.slots = self.slots.saturating_add(run.slots);
    }
}

/// A run of a body to encode: slots and expiries of whole entities, and
/// the key of its first chunk if not its first entity's.
type Run<'s, 'a> = (
    &'s [(&'a str, &'a str, &'a Slot)],
    &'s [&'a Expiry],
    Option<&'a str>,
);

/// Encodes a checkpoint's body from a state and its pending expiries, in
/// chunks; `None` if an entity would be too large to decode (a cache can
/// do without).
///
/// A large state is cut into runs of whole entities, one for each core,
/// encoded side by side: each run starts a chunk, keyed by its first
/// entity as any chunk is, so the body reads as if written in one pass.
fn encode_body<'a>(state: &'a State, expiries: impl Iterator<Item = &'a Expiry>) -> Option<Chunks> {
    let runs = if state.attributes() < PARALLEL_SLOTS {
        1
    } else {
        super::cores().min(MAX_RUNS)
    };
    encode_in_runs(state, expiries, runs)
}

/// Encodes a body in up to `runs` runs side by side.
fn encode_in_runs<'a>(
    state: &'a State,
    expiries: impl Iterator<Item = &'a Expiry>,
    runs: usize,
) -> Option<Chunks> {
    // Slots come sorted by entity; expiries are sorted by entity to match,
    // and both are walked side by side, an entity at a time.
    let slots: Vec<(&str, &str, &Slot)> = state.slots().collect();
    let mut expiries: Vec<&Expiry> = expiries.collect();
    expiries.sort_by(|a, b| a.entity.cmp(&b.entity));
    // Each run from the first slot of an entity on; the first from the start.
    let mut cuts = vec![0];
    for run in 1..runs {
        let mut cut = (slots.len() * run / runs).max(*cuts.last().expect("one cut"));
        while cut < slots.len() && cut > 0 && slots[cut].0 == slots[cut - 1].0 {
            cut += 1;
        }
        if cut < slots.len() && cut > *cuts.last().expect("one cut") {
            cuts.push(cut);
        }
    }
    // Where each run's expiries start: an entity with expiries only goes
    // with the run its name falls in.
    let expiry_cut = |run: usize| match (run, cuts.get(run)) {
        (0, _) => 0,
        (_, Some(&cut)) => expiries.partition_point(|x| x.entity.as_str() < slots[cut].0),
        (_, None) => expiries.len(),
    };
    let parts: Vec<Run> = (0..cuts.len())
        .map(|run| {
            let to = cuts.get(run + 1).copied().unwrap_or(slots.len());
            (
                &slots[cuts[run]..to],
                &expiries[expiry_cut(run)..expiry_cut(run + 1)],
                // The body's first chunk is keyed by the empty name.
                (run == 0).then_some(""),
            )
        })
        .collect();
    let encoded = super::map_side_by_side(&parts, parts.len(), |&(s, x, f)| encode_run(s, x, f));
    let mut body = Chunks::default();
    for run in encoded {
        body.append(run?);
    }
    Some(body)
}

/// Encodes a run of whole entities (its slots and expiries, both sorted by
/// entity) into chunks; the first is keyed by `first`, or if none by the
/// run's first entity.
fn encode_run<'a>(
    slots: &[(&'a str, &'a str, &'a Slot)],
    expiries: &[&'a Expiry],
    first: Option<&'a str>,
) -> Option<Chunks> {
    let mut slots = slots.iter().copied().peekable();
    let mut expiries = expiries.iter().copied().peekable();
    let mut strings = Strings::default();
    let mut entity_slots: Vec<(&str, &Slot)> = Vec::new();
    let mut entity_expiries: Vec<&Expiry> = Vec::new();
    let mut chunks = ChunkWriter::new(first);
    loop {
        let entity = match (slots.peek(), expiries.peek()) {
            (None, None) => break,
            (Some(&(e, ..)), None) => e,
            (None, Some(x)) => x.entity.as_str(),
            (Some(&(e, ..)), Some(x)) => e.min(x.entity.as_str()),
        };
        entity_slots.clear();
        while let Some((_, attr, slot)) = slots.next_if(|&(e, ..)| e == entity) {
            entity_slots.push((attr, slot));
        }
        entity_expiries.clear();
        entity_expiries.extend(std::iter::from_fn(|| {
            expiries.next_if(|x| x.entity == entity)
        }));
        let body = encode_entity(&mut strings, entity, &entity_slots, &entity_expiries)?;
        chunks.push(entity, &body, entity_slots.len())?;
    }
    chunks.finish()
}

/// Gathers encoded entities, in order, into chunks of about
/// [`CHUNK_BYTES`], each keyed by its first entity.
struct ChunkWriter {
    /// The key of the chunk being filled, once known.
    first: Option<String>,
    page: Vec<u8>,
    chunks: Vec<(Vec<u8>, Vec<u8>)>,
    slots: u32,
    previous: Option<String>,
}

impl ChunkWriter {
    /// A writer whose first chunk is keyed by `first` (the body's first
    /// run: the empty name), or else by its first entity.
    fn new(first: Option<&str>) -> ChunkWriter {
        ChunkWriter {
            first: first.map(str::to_string),
            page: Vec::new(),
            chunks: Vec::new(),
            slots: 0,
            previous: None,
        }
    }

    /// Adds the next entity's encoded part, with how many attributes hold
    /// anything in it; `None` if a chunk grew too large to decode.
    fn push(&mut self, entity: &str, body: &[u8], slots: usize) -> Option<()> {
        debug_assert!(
            self.previous.as_deref() < Some(entity),
            "entities come in order, each once"
        );
        if cfg!(debug_assertions) {
            self.previous = Some(entity.to_string());
        }
        if self.page.len() >= CHUNK_BYTES {
            self.seal()?;
            self.first = Some(entity.to_string());
        }
        self.first.get_or_insert_with(|| entity.to_string());
        super::pages::push_element(&mut self.page, entity.as_bytes());
        super::pages::push_element(&mut self.page, body);
        self.slots = self
            .slots
            .saturating_add(u32::try_from(slots).unwrap_or(u32::MAX));
        Some(())
    }

    /// Compresses the chunk being filled and starts the next.
    fn seal(&mut self) -> Option<()> {
        let page = std::mem::take(&mut self.page);
        if page.len() > DECODE_LIMIT {
            return None;
        }
        let first = self.first.take().unwrap_or_default();
        self.chunks
            .push((first.into_bytes(), compress::compress(page)));
        Some(())
    }

    /// The chunks. A writer keyed from the start always has one, empty if
    /// nothing was pushed; one keyed by its first entity has none then.
    fn finish(mut self) -> Option<Chunks> {
        self.close()?;
        Some(Chunks {
            chunks: self.chunks,
            slots: self.slots,
        })
    }

    /// Seals the chunk being filled, if any (see [`ChunkWriter::finish`]);
    /// nothing may be pushed after.
    fn close(&mut self) -> Option<()> {
        if self.first.is_some() {
            self.seal()?;
        }
        Some(())
    }
}

/// Encodes one entity's part of a body, interning its strings in
/// `strings` (cleared first: each entity has its own).
fn encode_entity<'a>(
    strings: &mut Strings<'a>,
    entity: &'a str,
    slots: &[(&'a str, &'a Slot)],
    expiries: &[&'a Expiry],
) -> Option<Vec<u8>> {
    strings.clear();
    let fact = |strings: &mut Strings<'a>, value: &'a Value, p: &'a Provenance| FactV1 {
        value: value.into(),
        event: strings.of(&p.event),
        since: p.since.into(),
        until: p.until.map(Into::into),
    };
    let slots: Vec<SlotV1<&str>> = slots
        .iter()
        .map(|&(attr, slot)| SlotV1 {
            entity: strings.of(entity),
            attr: strings.of(attr),
            many: matches!(slot, Slot::Many(_)),
            facts: match slot {
                Slot::One(value, p) => vec![fact(strings, value, p)],
                Slot::Many(members) => members.iter().map(|(v, p)| fact(strings, v, p)).collect(),
            },
        })
        .collect();
    let expiries: Vec<ExpiryV1<&str>> = expiries
        .iter()
        .map(|e| ExpiryV1 {
            end: e.end,
            entity: strings.of(&e.entity),
            attr: strings.of(&e.attr),
            member: e.member.as_ref().map(Into::into),
        })
        .collect();
    let body = BodyV1 {
        strings: std::mem::take(&mut strings.list),
        slots,
        expiries,
    };
    let bytes = bincode::serde::encode_to_vec(&body, bincode::config::standard())
        .expect("encoding to a Vec cannot fail");
    strings.list = body.strings;
    (bytes.len() < DECODE_LIMIT).then_some(bytes)
}

/// Encodes a checkpoint's header.
fn encode_header(header: Header, layout: Layout) -> [u8; HEADER] {
    let mut bytes = [0; HEADER];
    bytes[0] = VERSION;
    bytes[1..9].copy_from_slice(&header.max_end.to_be_bytes());
    bytes[9..17].copy_from_slice(&header.requires.to_be_bytes());
    bytes[17..25].copy_from_slice(&header.count.to_be_bytes());
    bytes[25..29].copy_from_slice(&layout.chunks.to_be_bytes());
    bytes[29..33].copy_from_slice(&layout.slots.to_be_bytes());
    bytes
}

/// Reads a checkpoint's header: `None` for one of an earlier layout, which
/// queries ignore.
fn decode_header(bytes: &[u8]) -> Result<Option<(Header, Layout)>> {
    if is_legacy_header(bytes) {
        return Ok(None);
    }
    let bytes: &[u8; HEADER] = match <&[u8; HEADER]>::try_from(bytes) {
        Ok(bytes) if bytes[0] == VERSION => bytes,
        _ => return Err(damaged("a checkpoint header is unreadable")),
    };
    let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let header = Header {
        max_end: u64_at(1) as i64,
        requires: u64_at(9),
        count: u64_at(17),
    };
    let layout = Layout {
        chunks: u32_at(25),
        slots: u32_at(29),
    };
    Ok(Some((header, layout)))
}

/// Whether a header's bytes are of an earlier layout (by their version).
fn is_legacy_header(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|&version| version < VERSION)
}

/// Whether a key is that of a version-1 checkpoint: a bare position, which
/// starts with 0x7F or 0x80 and so sorts after every prefix of the later
/// layouts.
fn is_legacy_position(key: &[u8]) -> bool {
    key.len() == LEGACY_KEY && key[0] > LEGACY_PARTS
}

/// A checkpoint that does not read. Checkpoints hold nothing the log does
/// not, so the message says how to make them anew.
fn damaged(what: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!(
        "{what} (`chronik reindex` rebuilds every checkpoint from the log)"
    ))
}

/// Reads a header entry: (position, header, layout), or `None` for one of
/// an earlier layout.
fn read_header(key: &[u8], bytes: &[u8]) -> Result<Option<(Vec<u8>, Header, Layout)>> {
    if key.len() != 1 + 16 {
        return Err(damaged("a checkpoint header's key is unreadable"));
    }
    Ok(decode_header(bytes)?.map(|(header, layout)| (key[1..].to_vec(), header, layout)))
}

fn header_key(position: &[u8]) -> Vec<u8> {
    [&[HEADERS][..], position].concat()
}

fn chunk_key(position: &[u8], first: &[u8]) -> Vec<u8> {
    [&[CHUNKS][..], position, first].concat()
}

/// Which entities of a chunk to decode.
#[derive(Clone, Copy)]
enum Wanted<'a> {
    /// All of them, checking that they lie between the chunk's first key
    /// and the next chunk's (`None`: after every entity).
    Between(&'a [u8], Option<&'a [u8]>),
    /// Only this one.
    Entity(&'a str),
}

/// The chunks of a checkpoint's body, each with its key (whose end, from
/// `name_at`, names the chunk's first entity).
struct BodyChunks {
    chunks: Vec<(sled::IVec, sled::IVec)>,
    name_at: usize,
}

/// What one thread decoded of a checkpoint's body.
struct Part {
    state: State,
    expiries: Vec<Expiry>,
    /// Attributes that two parts both held: chunks hold disjoint runs of
    /// entities, so any is damage.
    overlaps: usize,
}

impl BodyChunks {
    /// How many attributes to make room for: the header's count, a hint
    /// not to be trusted further than the stored bytes could hold.
    fn capacity(&self, layout: Layout) -> usize {
        let stored: usize = self.chunks.iter().map(|(_, chunk)| chunk.len()).sum();
        (layout.slots as usize).min(8 * stored)
    }

    /// Decodes the chunks this thread claims from `next` (the index of the
    /// next chunk no thread has claimed) until none is left.
    fn decode(&self, next: &AtomicUsize, capacity: usize) -> Result<Part> {
        self.decode_until(next, self.chunks.len(), capacity)
    }

    /// Like [`BodyChunks::decode`], claiming no chunk from `end` on. A
    /// chunk that does not decode leaves the others to no thread.
    fn decode_until(&self, next: &AtomicUsize, end: usize, capacity: usize) -> Result<Part> {
        let corrupt = |m: String| damaged(format!("a checkpoint: {m}"));
        let first = |n: usize| self.chunks.get(n).map(|(key, _)| &key[self.name_at..]);
        let mut part = Part {
            state: State::with_capacity(capacity),
            expiries: Vec::new(),
            overlaps: 0,
        };
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let Some((_, chunk)) = self.chunks[..end].get(n) else {
                return Ok(part);
            };
            let wanted = Wanted::Between(first(n).unwrap_or_default(), first(n + 1));
            let decoded = compress::open(chunk.clone(), DECODE_LIMIT)
                .ok_or_else(|| "a chunk does not decompress".to_string())
                .and_then(|bytes| {
                    decode_chunk(&bytes, wanted, &mut part.state, &mut part.expiries)
                });
            if let Err(e) = decoded {
                next.fetch_max(self.chunks.len(), Ordering::Relaxed);
                return Err(corrupt(e));
            }
        }
    }
}

impl Part {
    /// Takes in what another thread decoded of the same body (other
    /// entities: chunks hold disjoint runs of them).
    fn join(&mut self, other: Part) {
        self.overlaps += other.overlaps + self.state.absorb(other.state);
        self.expiries.extend(other.expiries);
    }

    /// The whole body, once every chunk is in, checked against its header.
    fn finish(mut self, layout: Layout) -> Result<Resume> {
        if self.overlaps > 0 {
            return Err(damaged("a checkpoint: two of its chunks hold one entity"));
        }
        if u32::try_from(self.state.attributes()).unwrap_or(u32::MAX) != layout.slots {
            return Err(damaged(
                "a checkpoint: its header does not match its chunks",
            ));
        }
        self.expiries.sort();
        Ok(Resume {
            state: self.state,
            expiries: self.expiries,
        })
    }
}

/// Decodes the `wanted` entities of a checkpoint chunk (decompressed) into
/// `state` and their pending expiries into `expiries`.
fn decode_chunk(
    chunk: &[u8],
    wanted: Wanted<'_>,
    state: &mut State,
    expiries: &mut Vec<Expiry>,
) -> std::result::Result<(), String> {
    let spans = super::pages::elements(chunk).map_err(|_| "a chunk does not decode")?;
    if spans.len() % 2 != 0 {
        return Err("a chunk does not decode".into());
    }
    let mut previous: Option<&[u8]> = None;
    for pair in spans.chunks(2) {
        let [(at, len), (body_at, body_len)] = [pair[0], pair[1]];
        let name = &chunk[at..at + len];
        let wants = match wanted {
            Wanted::Between(from, to) => {
                if name < from || to.is_some_and(|to| name >= to) || previous >= Some(name) {
                    return Err("a chunk holds entities outside its range".into());
                }
                previous = Some(name);
                true
            }
            Wanted::Entity(entity) => name == entity.as_bytes(),
        };
        if wants {
            let name = std::str::from_utf8(name).map_err(|_| "an entity name is not UTF-8")?;
            decode_entity(&chunk[body_at..body_at + body_len], name, state, expiries)?;
        }
    }
    Ok(())
}

/// Decodes one entity's part of a body into `state` and `expiries`. Strings
/// are borrowed from `bytes` while decoding and copied once into the state;
/// an event id is held inline in each fact when short.
fn decode_entity(
    bytes: &[u8],
    entity: &str,
    state: &mut State,
    expiries: &mut Vec<Expiry>,
) -> std::result::Result<(), String> {
    let (body, _): (BodyV1<&str>, usize) =
        super::record::borrow_decode::<_, DECODE_LIMIT>(bytes)
            .map_err(|e| format!("checkpoint does not decode: {e}"))?;
    let strings = body.strings;
    let string = |i: u32| {
        strings
            .get(i as usize)
            .copied()
            .ok_or("a checkpoint names an unknown string")
    };
    let ours = |i: u32| match string(i)? {
        name if name == entity => Ok(()),
        _ => Err("a chunk files facts under another entity"),
    };
    let when = |w: WhenV1| When::try_from(w);
    let fact_of = |fact: FactV1<&str>| -> std::result::Result<_, String> {
        let provenance = Provenance {
            event: string(fact.event)?.into(),
            since: when(fact.since)?,
            uncertain: false,
            until: fact.until.map(when).transpose()?,
        };
        Ok((fact.value.into_value()?, provenance))
    };
    // Numbered once, with its first slot.
    let mut number = None;
    for slot in body.slots {
        ours(slot.entity)?;
        let slot_value = if slot.many {
            Slot::Many(
                slot.facts
                    .into_iter()
                    .map(fact_of)
                    .collect::<std::result::Result<_, _>>()?,
            )
        } else {
            let mut facts = slot.facts.into_iter();
            let (Some(fact), None) = (facts.next(), facts.next()) else {
                return Err("a single-valued attribute holds no value, or several".into());
            };
            let (value, provenance) = fact_of(fact)?;
            Slot::One(value, provenance)
        };
        let number = *number.get_or_insert_with(|| state.entity_number(entity));
        state.put_entity_slot(number, string(slot.attr)?, slot_value);
    }
    for e in body.expiries {
        ours(e.entity)?;
        expiries.push(Expiry {
            end: e.end,
            entity: entity.to_string(),
            attr: string(e.attr)?.to_string(),
            member: e.member.map(ValueV1::into_value).transpose()?,
        });
    }
    Ok(())
}

/// Where checkpoints go along replay order, given the interval `every`.
///
/// A checkpoint may serve a question only once every event up to it has
/// ended (`max_end`), and an event dated by its year sorts at the year's
/// start and ends with it: a checkpoint in the middle of a year that has
/// such events serves no question in the rest of that year, which then
/// replays from the checkpoint before. Just before a year's first event,
/// though, every event before has ended (a year is the coarsest date), so
/// a checkpoint there serves every question from there on. So checkpoints
/// go where a year begins, once at least half an interval of positions has
/// gathered since the last; and after one and a half intervals without a
/// year beginning. (On the benchmark's timeline, 50,000 events a year and
/// one in ten dated by its year, this halved the events a whole-state
/// question replays: BENCHMARKS.md.)
pub(super) struct Placement {
    every: u64,
    /// Positions taken since the last checkpoint.
    since: u64,
    /// The year of the last position taken.
    year: Option<i32>,
}

impl Placement {
    /// Placement from the start of replay order, or from a checkpoint at a
    /// position that starts at `start`.
    pub(super) fn new(every: u64, start: Option<i64>) -> Placement {
        Placement {
            every: every.max(1),
            since: 0,
            year: start.map(year_of),
        }
    }

    /// Whether a checkpoint goes just before the next position, which
    /// starts at `start`.
    pub(super) fn before(&mut self, start: i64) -> bool {
        let year = year_of(start);
        let begins = self.year.is_some_and(|last| year > last);
        self.year = Some(year);
        let due = begins && self.since >= (self.every / 2).max(1);
        if due {
            self.since = 0;
        }
        due
    }

    /// Takes the next position; whether a checkpoint goes just after it.
    pub(super) fn after(&mut self) -> bool {
        self.since += 1;
        let due = self.since >= self.every.saturating_add(self.every / 2);
        if due {
            self.since = 0;
        }
        due
    }
}

/// The year a position's interval starts in.
fn year_of(start: i64) -> i32 {
    When::from_parts(start, crate::when::Precision::Instant).map_or(i32::MAX, When::year)
}

/// The question a checkpoint is built for: every event certain.
fn all_certain() -> AsOf {
    AsOf::new(When::parse("9999").expect("a valid year"))
}

/// A record no checkpoint can hold: it is dated past the end of time.
fn not_certain(seq: u64) -> Error {
    Error::Corrupt(format!("record {seq} is not certain at the end of time"))
}

impl Store {
    /// Sets about how many events lie between two checkpoints (0: none are
    /// built; they go where a year begins, see `Placement`).
    pub fn set_checkpoint_interval(&self, every: u64) {
        self.checkpoint_every
            .store(every, std::sync::atomic::Ordering::Relaxed);
    }

    /// Builds a store's first checkpoints by replaying in date order
    /// instead of entity by entity (the two give the same checkpoints).
    #[cfg(test)]
    pub(super) fn build_first_checkpoints_in_date_order(&self, yes: bool) {
        self.first_checkpoints_in_date_order
            .store(yes, Ordering::Relaxed);
    }

    /// Whether a store's first checkpoints are built entity by entity.
    fn builds_by_entity(&self) -> bool {
        #[cfg(test)]
        return !self.first_checkpoints_in_date_order.load(Ordering::Relaxed);
        #[cfg(not(test))]
        true
    }

    pub(super) fn checkpoint_interval(&self) -> u64 {
        self.checkpoint_every
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stores a checkpoint at `position` (a `by_time` element): its header
    /// and its body in chunks, all in one batch.
    fn put_checkpoint(&self, position: &[u8], header: Header, body: &Chunks) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (first, chunk) in &body.chunks {
            batch.insert(chunk_key(position, first), &chunk[..]);
        }
        let layout = Layout {
            chunks: u32::try_from(body.chunks.len()).expect("fewer chunks than facts"),
            slots: body.slots,
        };
        batch.insert(header_key(position), &encode_header(header, layout)[..]);
        self.apply_to_checkpoints(batch)
    }

    /// Applies `batch` to the `checkpoints` tree.
    fn apply_to_checkpoints(&self, batch: sled::Batch) -> Result<()> {
        let applied = self.checkpoints.apply_batch(batch);
        self.forget_checkpoint_headers();
        applied.map_err(|e| self.storage(e))
    }

    /// Every stored checkpoint header (key, value), in order; read once
    /// and kept until the tree is written. A header kept after it changed
    /// is no risk: [`Store::checkpoint_for`] checks the one it uses against
    /// the tree, and one written since is only a nearer one missed.
    fn stored_headers(&self) -> Result<Arc<StoredHeaders>> {
        self.checkpoint_headers.get_or_read(|| {
            self.checkpoints
                .scan_prefix([HEADERS])
                .collect::<sled::Result<_>>()
                .map_err(|e| self.storage(e))
        })
    }

    /// Whether a checkpoint lies among the events that start before `end`
    /// (whether or not it may serve a question): about an interval of
    /// events or more lies before it.
    pub(super) fn checkpoint_before(&self, end: i64) -> Result<bool> {
        let before = header_key(&keys::time(end, 0));
        Ok(self
            .stored_headers()?
            .first()
            .is_some_and(|(key, _)| key[..] < before[..]))
    }

    /// How many attributes the last checkpoint holds (0 without one): a
    /// guess at the size of a state late in the timeline, to make room for.
    pub(super) fn last_checkpoint_slots(&self) -> Result<usize> {
        for (key, bytes) in self.stored_headers()?.iter().rev() {
            if let Some((_, _, layout)) = read_header(key, bytes)? {
                return Ok(layout.slots as usize);
            }
        }
        Ok(0)
    }

    /// Forgets the kept checkpoint headers: the tree was written.
    pub(super) fn forget_checkpoint_headers(&self) {
        self.checkpoint_headers.forget();
    }

    /// Every checkpoint header of the current layout, in replay order:
    /// (position, header, layout).
    fn checkpoint_headers(
        &self,
    ) -> impl DoubleEndedIterator<Item = Result<(Vec<u8>, Header, Layout)>> + '_ {
        self.checkpoints.scan_prefix([HEADERS]).filter_map(|entry| {
            let (key, bytes) = match entry {
                Ok(entry) => entry,
                Err(e) => return Some(Err(self.storage(e))),
            };
            read_header(&key, &bytes).transpose()
        })
    }

    /// The body of the checkpoint at `position`: every fact, or only those
    /// about `entities` when given (reading only the chunks that hold them).
    fn checkpoint_body(
        &self,
        position: &[u8],
        layout: Layout,
        entities: Option<&[String]>,
    ) -> Result<Resume> {
        let Some(entities) = entities else {
            let chunks = self.checkpoint_chunks(position, layout)?;
            let part = chunks.decode(&AtomicUsize::new(0), chunks.capacity(layout))?;
            return part.finish(layout);
        };
        let corrupt = |m: String| damaged(format!("a checkpoint: {m}"));
        let mut state = State::new();
        let mut expiries = Vec::new();
        for (i, entity) in entities.iter().enumerate() {
            if entities[..i].contains(entity) {
                continue;
            }
            // The last chunk that starts at or before the entity.
            let last = chunk_key(position, entity.as_bytes());
            let Some(entry) = self
                .checkpoints
                .range(chunk_key(position, b"")..=last)
                .next_back()
            else {
                return Err(damaged("a checkpoint is missing its first chunk"));
            };
            let (_, chunk) = entry.map_err(|e| self.storage(e))?;
            let bytes = compress::open(chunk, DECODE_LIMIT)
                .ok_or_else(|| corrupt("a chunk does not decompress".into()))?;
            decode_chunk(&bytes, Wanted::Entity(entity), &mut state, &mut expiries)
                .map_err(corrupt)?;
        }
        expiries.sort();
        Ok(Resume { state, expiries })
    }

    /// The chunks of the checkpoint at `position`, as many as its header
    /// says.
    fn checkpoint_chunks(&self, position: &[u8], layout: Layout) -> Result<BodyChunks> {
        let chunks = self
            .checkpoints
            .scan_prefix(chunk_key(position, b""))
            .collect::<sled::Result<Vec<_>>>()
            .map_err(|e| self.storage(e))?;
        if chunks.len() != layout.chunks as usize
            || chunks
                .first()
                .is_none_or(|(key, _)| key.len() != 1 + position.len())
        {
            return Err(damaged(format!(
                "a checkpoint has {} of its {} chunks",
                chunks.len(),
                layout.chunks
            )));
        }
        Ok(BodyChunks {
            chunks,
            name_at: 1 + position.len(),
        })
    }

    /// The whole checkpoint at `position`, decoded by another thread and
    /// this one: the other starts at once, and this one, once `alongside`
    /// has run, decodes the chunks still left into a state of its own,
    /// which then joins the other's. Gives what `alongside` gave too.
    fn checkpoint_body_beside<T>(
        &self,
        position: &[u8],
        layout: Layout,
        alongside: impl FnOnce() -> T,
    ) -> (Result<Resume>, T) {
        let next = AtomicUsize::new(0);
        let listed = std::sync::OnceLock::new();
        std::thread::scope(|scope| {
            let decoding = std::thread::Builder::new().spawn_scoped(scope, || {
                let chunks = self.checkpoint_chunks(position, layout)?;
                let chunks: &BodyChunks = listed.get_or_init(|| chunks);
                chunks.decode(&next, chunks.capacity(layout))
            });
            let beside = alongside();
            let Ok(decoding) = decoding else {
                // No second thread to be had: decode here.
                return (self.checkpoint_body(position, layout, None), beside);
            };
            // The chunks still left, once the other thread has listed them.
            let helped = listed.get().map(|chunks: &BodyChunks| {
                let left = chunks
                    .chunks
                    .len()
                    .saturating_sub(next.load(Ordering::Relaxed));
                let share = chunks.capacity(layout) * left / chunks.chunks.len().max(1);
                chunks.decode(&next, share)
            });
            let decoded = decoding
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            let body = decoded.and_then(|mut part| {
                if let Some(helped) = helped {
                    part.join(helped?);
                }
                part.finish(layout)
            });
            (body, beside)
        })
    }

    /// Removes every checkpoint at or after `position` (a `by_time`
    /// element): a write landed there.
    pub(super) fn invalidate_checkpoints(&self, position: &[u8]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for prefix in [CHUNKS, HEADERS] {
            let from = [&[prefix][..], position].concat();
            for entry in self.checkpoints.range(from..vec![prefix + 1]) {
                let (key, _) = entry.map_err(|e| self.storage(e))?;
                batch.remove(key);
            }
        }
        self.apply_to_checkpoints(batch)
    }

    /// Removes every checkpoint of an earlier layout (which only a store of
    /// an earlier format version holds: see [`Store::upgrade_format`]).
    pub(super) fn remove_legacy_checkpoints(&self) -> Result<()> {
        let mut batch = sled::Batch::default();
        // Version 2: headers of an earlier version, and parts.
        for entry in self.checkpoints.scan_prefix([HEADERS]) {
            let (key, bytes) = entry.map_err(|e| self.storage(e))?;
            if is_legacy_header(&bytes) {
                batch.remove(key);
            }
        }
        // Version 1: bare positions, after every prefix of the later layouts.
        for entry in self.checkpoints.range(vec![LEGACY_PARTS]..).keys() {
            let key = entry.map_err(|e| self.storage(e))?;
            if key[0] == LEGACY_PARTS || is_legacy_position(&key) {
                batch.remove(key);
            }
        }
        self.apply_to_checkpoints(batch)
    }

    /// The nearest checkpoint that may serve `query` in a snapshot at
    /// `head`: its position, its state (whole, or only about `entities`),
    /// and what `alongside` gave for that position. For the whole state,
    /// `alongside` runs while another thread decodes the checkpoint, and
    /// this one then helps decode what is left.
    pub(super) fn checkpoint_for<T>(
        &self,
        query: AsOf,
        head: u64,
        entities: Option<&[String]>,
        alongside: impl Fn(&[u8]) -> T,
    ) -> Result<Option<(Vec<u8>, Resume, T)>> {
        let before = header_key(&keys::time(query.end(), 0));
        let headers = self.stored_headers()?;
        let below = headers.partition_point(|(key, _)| key[..] < before[..]);
        for (key, bytes) in headers[..below].iter().rev() {
            let Some((position, header, layout)) = read_header(key, bytes)? else {
                continue;
            };
            if header.max_end > query.end() || header.requires > head {
                continue;
            }
            let (body, beside) = match entities {
                Some(_) => (
                    self.checkpoint_body(&position, layout, entities),
                    alongside(&position),
                ),
                None => self.checkpoint_body_beside(&position, layout, || alongside(&position)),
            };
            // A write in another thread may have removed it meanwhile (it
            // landed before it), or even built another in its place: then
            // one further back may serve.
            let unchanged = self
                .checkpoints
                .get(key)
                .map_err(|e| self.storage(e))?
                .as_ref()
                == Some(bytes);
            match body {
                Ok(resume) if unchanged => return Ok(Some((position, resume, beside))),
                Err(e) if unchanged => return Err(e),
                _ => continue,
            }
        }
        Ok(None)
    }

    /// Builds checkpoints for the events after the last one, where years
    /// begin (see `Placement`), if an interval of events has gathered. Returns how
    /// many it built.
    pub fn extend_checkpoints(&self) -> Result<u64> {
        self.build_checkpoints(false)
    }

    /// Builds checkpoints after the last one; with `rebuild_all`, as soon as
    /// an interval of events has gathered (a reindex). A store with none
    /// (a first import, a reindex, a write that removed every one) builds
    /// them entity by entity ([`by_entity`]) unless its entity index is of
    /// store format 1.
    pub(super) fn build_checkpoints(&self, rebuild_all: bool) -> Result<u64> {
        let every = self.checkpoint_interval();
        if every == 0 {
            return Ok(0);
        }
        let last = self.checkpoint_headers().next_back().transpose()?;
        let snapshot = self.latest()?;
        // Every record lies at exactly one position: those after the last
        // checkpoint are the ones it does not count. A backdated append
        // removes the checkpoints after it; rebuilding them only once twice
        // an interval has gathered keeps such appends cheap, and queries
        // replay at most about two intervals.
        let counted = last.as_ref().map_or(0, |(_, header, _)| header.count);
        let since = snapshot.head() - counted;
        if since < every || (last.is_some() && since < every.saturating_mul(2) && !rebuild_all) {
            return Ok(0);
        }
        if last.is_none()
            && self.builds_by_entity()
            && let Some(built) = self.build_every_checkpoint(every)?
        {
            return Ok(built);
        }
        let (mut builder, from) = match last {
            Some((position, header, layout)) => {
                let resume = self.checkpoint_body(&position, layout, None)?;
                (Builder::resume(header, resume), Some(position))
            }
            None => (Builder::new(), None),
        };
        let from_start = from
            .as_deref()
            .and_then(keys::decode_time)
            .map(|(start, _)| start);
        let mut placement = Placement::new(every, from_start);
        // A second thread reads and decodes the events while this one
        // replays them and stores checkpoints.
        snapshot.read_ahead(from.as_deref(), None, |inputs| {
            let mut built = 0;
            let mut put = |builder: &Builder, position: [u8; 16]| -> Result<()> {
                if let Some(body) = builder.encode() {
                    self.put_checkpoint(&position, builder.header, &body)?;
                    built += 1;
                }
                Ok(())
            };
            let mut previous = None;
            for input in inputs {
                let (start, seq, event) = input?;
                if placement.before(start)
                    && let Some(position) = previous
                {
                    put(&builder, position)?;
                }
                builder.take(&snapshot, seq, event)?;
                let position = keys::time(start, seq);
                if placement.after() {
                    put(&builder, position)?;
                }
                previous = Some(position);
            }
            Ok(built)
        })
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
        let Some((header, layout)) = decode_header(&bytes)? else {
            return Ok(None);
        };
        Ok(Some((
            header,
            self.checkpoint_body(position, layout, None)?,
        )))
    }

    /// The layout of the checkpoint at `position`, which must be of this
    /// version (for tests).
    #[cfg(test)]
    fn layout_at(&self, position: &[u8]) -> Result<Layout> {
        let bytes = self
            .checkpoints
            .get(header_key(position))
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| damaged("no checkpoint there"))?;
        let (_, layout) = decode_header(&bytes)?.ok_or_else(|| damaged("an earlier layout"))?;
        Ok(layout)
    }

    /// The checkpoint at `position` decoded in two parts, its chunks before
    /// `first_end` and those from `second_start` on, joined (for tests).
    #[cfg(test)]
    pub(super) fn read_checkpoint_in_parts(
        &self,
        position: &[u8],
        first_end: usize,
        second_start: usize,
    ) -> Result<Resume> {
        let layout = self.layout_at(position)?;
        let chunks = self.checkpoint_chunks(position, layout)?;
        let mut part = chunks.decode_until(&AtomicUsize::new(0), first_end, 0)?;
        part.join(chunks.decode(&AtomicUsize::new(second_start), 0)?);
        part.finish(layout)
    }

    /// The checkpoint at `position` as a whole-state query decodes it, by
    /// two threads (for tests).
    #[cfg(test)]
    pub(super) fn read_checkpoint_beside(&self, position: &[u8]) -> Result<Resume> {
        let layout = self.layout_at(position)?;
        self.checkpoint_body_beside(position, layout, || ()).0
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

    /// Replaces the checkpoint at `position`, its body encoded in up to
    /// `runs` runs side by side (for tests).
    #[cfg(test)]
    pub(super) fn write_checkpoint_in_runs(
        &self,
        position: &[u8],
        header: Header,
        resume: &Resume,
        runs: usize,
    ) -> Result<()> {
        self.invalidate_checkpoints(position)?;
        let body =
            encode_in_runs(&resume.state, resume.expiries.iter(), runs).expect("a small state");
        self.put_checkpoint(position, header, &body)
    }

    /// What the checkpoint at `position` holds about `entities` (for tests).
    #[cfg(test)]
    pub(super) fn read_checkpoint_of(
        &self,
        position: &[u8],
        entities: &[String],
    ) -> Result<Resume> {
        let layout = self.layout_at(position)?;
        self.checkpoint_body(position, layout, Some(entities))
    }

    /// The positions of every checkpoint, in replay order (for tests).
    #[cfg(test)]
    pub(super) fn checkpoint_positions(&self) -> Result<Vec<Vec<u8>>> {
        self.checkpoint_headers()
            .map(|h| h.map(|(position, ..)| position))
            .collect()
    }

    /// Compares every checkpoint with a fresh replay at its position,
    /// until `stop` is set.
    pub(super) fn check_checkpoints(&self, stop: &AtomicBool) -> Result<Compared> {
        let headers = self.checkpoint_headers().collect::<Result<Vec<_>>>()?;
        // Every entry is a header, a chunk, or a checkpoint of an earlier
        // layout (which the first write removes), and every chunk belongs
        // to a header.
        let mut stored_chunks = 0u64;
        for entry in self.checkpoints.iter().keys() {
            let key = entry.map_err(|e| self.storage(e))?;
            match (key.first(), key.len()) {
                (Some(&CHUNKS), 17..) => stored_chunks += 1,
                (Some(&HEADERS), 17) | (Some(&LEGACY_PARTS), 21) => {}
                _ if is_legacy_position(&key) => {}
                _ => {
                    return Ok(Compared::Differs(
                        None,
                        "an entry of the checkpoints tree is neither a header nor a chunk".into(),
                    ));
                }
            }
        }
        let claimed: u64 = headers
            .iter()
            .map(|(_, _, layout)| u64::from(layout.chunks))
            .sum();
        if stored_chunks != claimed {
            return Ok(Compared::Differs(
                None,
                "the checkpoints' chunks do not match their headers".into(),
            ));
        }
        if headers.is_empty() {
            return Ok(Compared::Equal(0));
        }
        let mut checkpoints = headers.iter().peekable();
        let snapshot = self.latest()?;
        let mut builder = Builder::new();
        let mut checked = 0;
        for position in snapshot.positions_after(None, None) {
            if stop.load(Ordering::Relaxed) {
                return Ok(Compared::Stopped);
            }
            let (start, seq) = position?;
            builder.step(&snapshot, start, seq)?;
            let key = keys::time(start, seq);
            while let Some((at, header, layout)) = checkpoints.peek() {
                if at[..] > key[..] {
                    break;
                }
                if at[..] < key[..] {
                    return Ok(Compared::Differs(
                        None,
                        "a checkpoint sits where there is no event".into(),
                    ));
                }
                let differs = match self.checkpoint_body(at, *layout, None) {
                    Ok(body) => *header != builder.header || body != builder.replay.suspend(),
                    Err(Error::Corrupt(m)) => return Ok(Compared::Differs(Some(seq), m)),
                    Err(e) => return Err(e),
                };
                if differs {
                    return Ok(Compared::Differs(
                        Some(seq),
                        "the checkpoint differs from a fresh replay up to it".into(),
                    ));
                }
                checked += 1;
                checkpoints.next();
            }
        }
        if checkpoints.next().is_some() {
            return Ok(Compared::Differs(
                None,
                "a checkpoint lies after the last event".into(),
            ));
        }
        Ok(Compared::Equal(checked))
    }
}

/// What comparing the checkpoints with a fresh replay found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Compared {
    /// Every checkpoint equals the replay: how many there are.
    Equal(u64),
    /// The first that does not (its record, if there is one, and what).
    Differs(Option<u64>, String),
    /// `stop` was set before the comparison ended.
    Stopped,
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
        let event = snapshot.replay_input(start, seq)?;
        self.take(snapshot, seq, event)
    }

    /// Takes the record `seq` at the next position in replay order: its
    /// event, or `None` if it is corrected.
    fn take(&mut self, snapshot: &Snapshot<'_>, seq: u64, event: Option<Event>) -> Result<()> {
        let end = event.as_ref().map(|e| e.at.end());
        self.header.take(seq, end, snapshot.correctors(seq));
        match event {
            Some(event) if self.replay.feed(&event) != Fed::Certain => Err(not_certain(seq)),
            _ => Ok(()),
        }
    }

    fn encode(&self) -> Option<Chunks> {
        encode_body(
            self.replay.state(),
            self.replay.pending_expiries().into_iter(),
        )
    }
}
