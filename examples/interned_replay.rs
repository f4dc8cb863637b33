//! What a replay over interned, compact changes would cost: a measurement
//! for a redesign of chronik's stored form (BENCHMARKS.md, "A replay over
//! interned changes"), not part of chronik.
//!
//! ```sh
//! cargo run --release --example interned_replay -- STORE
//! ```
//!
//! Reads every event of STORE in replay order, numbers each (entity,
//! attribute) and each value, and then measures, in one thread:
//!
//! 1. a replay of those numbered changes held in memory, into a state that
//!    is a vector indexed by attribute number;
//! 2. the same read from a "replay stream": the changes in replay order as
//!    varints, 256 events to a zstd frame, held in memory, decompressed and
//!    decoded as they are applied;
//! 3. decoding a checkpoint of the final state stored the same way (in
//!    64 KiB frames) into a new state.
//!
//! Each time is the best of three runs. The replay follows chronik's rules
//! for a question at the end of 9999 (every event certain): `set`
//! replaces, `unset` clears a single value, `add`/`remove` change a set,
//! `until` expires a fact unless it changed since. It checks that it ends
//! with the same facts as chronik's own replay (entity, attribute, value,
//! event and date of each), and that the stream and the checkpoint give
//! the same state.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use chronik::store::{OpenMode, Store};
use chronik::{AsOf, Op, When};
use rustc_hash::FxHashMap;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Why a fact holds, by numbers.
#[derive(Clone, Copy, Default, PartialEq)]
struct Provenance {
    event: u32,
    since: i64,
    precision: u8,
    /// The end of its `until`, or 0.
    until_end: i64,
}

#[derive(Clone, Default, PartialEq)]
enum Slot {
    #[default]
    Empty,
    One(u32, Provenance),
    /// Members sorted by value number.
    Many(Vec<(u32, Provenance)>),
}

const SET: u8 = 0;
const UNSET: u8 = 1;
const ADD: u8 = 2;
const REMOVE: u8 = 3;

/// One change: attribute number, operation, value number, `until` end or 0.
#[derive(Clone, Copy)]
struct Change {
    slot: u32,
    op: u8,
    value: u32,
    until_end: i64,
}

/// One event: its date, its number, and its changes in `changes[from..to]`.
struct Event {
    start: i64,
    end: i64,
    precision: u8,
    id: u32,
    from: u32,
    to: u32,
}

/// Pending expiries: (end, attribute, value).
type Expiries = BinaryHeap<Reverse<(i64, u32, u32)>>;

/// Runs the expiries due at or before `t`.
fn expire_through(state: &mut [Slot], expiries: &mut Expiries, t: i64) {
    while let Some(&Reverse((end, slot, value))) = expiries.peek() {
        if end > t {
            break;
        }
        expiries.pop();
        let held = &mut state[slot as usize];
        match held {
            Slot::One(_, p) if p.until_end == end => *held = Slot::Empty,
            Slot::Many(members) => {
                members.retain(|(v, p)| !(*v == value && p.until_end == end));
                if members.is_empty() {
                    *held = Slot::Empty;
                }
            }
            _ => {}
        }
    }
}

fn apply(state: &mut [Slot], expiries: &mut Expiries, event: &Event, changes: &[Change]) {
    expire_through(state, expiries, event.start);
    for c in changes {
        let provenance = Provenance {
            event: event.id,
            since: event.start,
            precision: event.precision,
            until_end: c.until_end,
        };
        let held = &mut state[c.slot as usize];
        match c.op {
            SET => *held = Slot::One(c.value, provenance),
            UNSET => {
                if let Slot::One(..) = held {
                    *held = Slot::Empty;
                }
            }
            ADD => {
                if !matches!(held, Slot::Many(_)) {
                    *held = Slot::Many(Vec::new());
                }
                if let Slot::Many(members) = held {
                    match members.binary_search_by_key(&c.value, |m| m.0) {
                        Ok(i) => members[i].1 = provenance,
                        Err(i) => members.insert(i, (c.value, provenance)),
                    }
                }
            }
            _ => {
                if let Slot::Many(members) = held
                    && let Ok(i) = members.binary_search_by_key(&c.value, |m| m.0)
                {
                    members.remove(i);
                    if members.is_empty() {
                        *held = Slot::Empty;
                    }
                }
            }
        }
        if c.until_end != 0 {
            expiries.push(Reverse((c.until_end, c.slot, c.value)));
        }
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = bytes[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// What `run` gives, and the fewest seconds it took in `runs` runs (what
/// it gives is dropped outside the time).
fn best_of<T>(runs: usize, mut run: impl FnMut() -> T) -> (T, f64) {
    let mut best = None;
    for _ in 0..runs {
        let started = Instant::now();
        let given = run();
        let seconds = started.elapsed().as_secs_f64();
        best = match best {
            Some((_, fewest)) if fewest <= seconds => best,
            _ => Some((given, seconds)),
        };
    }
    best.expect("at least one run")
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: cargo run --release --example interned_replay -- STORE");
        std::process::exit(2);
    };
    let store = match Store::open(path.as_ref(), OpenMode::Existing) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let snapshot = store.latest().expect("a snapshot");
    let everything = AsOf::new(When::parse("9999").expect("a date"));
    let chronik_state = snapshot.state_from_start(everything).expect("a replay");

    let mut slots: FxHashMap<(String, String), u32> = FxHashMap::default();
    let mut values: FxHashMap<String, u32> = FxHashMap::default();
    let mut events: Vec<Event> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut changes: Vec<Change> = Vec::new();
    for record in snapshot.replay_order(None).expect("replay order") {
        let event = record.expect("a record").event;
        let from = changes.len() as u32;
        for change in &event.changes {
            let next = slots.len() as u32;
            let slot = *slots
                .entry((change.entity.to_string(), change.attr.to_string()))
                .or_insert(next);
            let (op, value, until) = match &change.op {
                Op::Set { value, until } => (SET, Some(value), *until),
                Op::Unset => (UNSET, None, None),
                Op::Add { value, until } => (ADD, Some(value), *until),
                Op::Remove { value } => (REMOVE, Some(value), None),
            };
            let value = value.map_or(0, |v| {
                let next = values.len() as u32;
                *values.entry(format!("{v:?}")).or_insert(next)
            });
            let until_end = until.map_or(0, When::end);
            changes.push(Change {
                slot,
                op,
                value,
                until_end,
            });
        }
        ids.push(event.id.to_string());
        events.push(Event {
            start: event.at.start(),
            end: event.at.end(),
            precision: event.at.precision().code(),
            id: events.len() as u32,
            from,
            to: changes.len() as u32,
        });
    }
    let end = everything.end();
    let replay = |changes_of: &mut dyn FnMut(&mut Vec<Slot>, &mut Expiries)| {
        let mut state = vec![Slot::Empty; slots.len()];
        let mut expiries = Expiries::new();
        changes_of(&mut state, &mut expiries);
        expire_through(&mut state, &mut expiries, end - 1);
        state
    };
    let in_memory = |state: &mut Vec<Slot>, expiries: &mut Expiries| {
        for e in &events {
            apply(state, expiries, e, &changes[e.from as usize..e.to as usize]);
        }
    };
    let state = replay(&mut { in_memory });
    // The same facts as chronik's: (entity, attribute, value, event, date).
    let mut names = vec![("", ""); slots.len()];
    for ((entity, attr), &i) in &slots {
        names[i as usize] = (entity.as_str(), attr.as_str());
    }
    let mut shown = vec![""; values.len()];
    for (value, &i) in &values {
        shown[i as usize] = value.as_str();
    }
    let mut ours: Vec<(&str, &str, &str, &str, i64)> = Vec::new();
    for (i, slot) in state.iter().enumerate() {
        let (entity, attr) = names[i];
        let mut fact = |value: u32, p: &Provenance| {
            let event = ids[p.event as usize].as_str();
            ours.push((entity, attr, shown[value as usize], event, p.since));
        };
        match slot {
            Slot::Empty => {}
            Slot::One(value, p) => fact(*value, p),
            Slot::Many(members) => members.iter().for_each(|(value, p)| fact(*value, p)),
        }
    }
    let chronik_values: Vec<String> = chronik_state
        .facts()
        .map(|f| format!("{:?}", f.value))
        .collect();
    let mut theirs: Vec<(&str, &str, &str, &str, i64)> = chronik_state
        .facts()
        .zip(&chronik_values)
        .map(|(f, value)| {
            let p = f.provenance;
            (f.entity, f.attr, value.as_str(), &*p.event, p.since.start())
        })
        .collect();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert!(ours == theirs, "the replay differs from chronik's");
    println!(
        "{} events, {} changes, {} attributes, {} values; {} facts at the end, as chronik's",
        events.len(),
        changes.len(),
        slots.len(),
        values.len(),
        ours.len()
    );
    let (_, seconds) = best_of(3, || replay(&mut { in_memory }));
    println!(
        "replay in memory: {:.0} events/s",
        events.len() as f64 / seconds
    );

    // The replay stream.
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut raw = 0;
    for chunk in events.chunks(256) {
        let mut page = Vec::new();
        let mut last = 0i64;
        for e in chunk {
            push_varint(&mut page, zigzag(e.start - last));
            last = e.start;
            push_varint(&mut page, zigzag(e.end - e.start));
            page.push(e.precision);
            push_varint(&mut page, u64::from(e.id));
            push_varint(&mut page, u64::from(e.to - e.from));
            for c in &changes[e.from as usize..e.to as usize] {
                push_varint(&mut page, u64::from(c.slot));
                page.push(c.op);
                push_varint(&mut page, u64::from(c.value));
                let until = if c.until_end == 0 {
                    0
                } else {
                    zigzag(c.until_end - e.start) + 1
                };
                push_varint(&mut page, until);
            }
        }
        raw += page.len();
        frames.push(zstd::bulk::compress(&page, 1).expect("compressed"));
    }
    let stored: usize = frames.iter().map(Vec::len).sum();
    println!(
        "replay stream: {:.1} MiB, {:.1} MiB compressed ({:.1} bytes an event)",
        raw as f64 / 1048576.0,
        stored as f64 / 1048576.0,
        stored as f64 / events.len() as f64
    );
    let from_stream = |state: &mut Vec<Slot>, expiries: &mut Expiries| {
        let mut decompressor = zstd::bulk::Decompressor::new().expect("a context");
        let mut buffer: Vec<Change> = Vec::new();
        let mut page = Vec::with_capacity(1 << 20);
        for frame in &frames {
            page.clear();
            decompressor
                .decompress_to_buffer(frame, &mut page)
                .expect("a page");
            let (mut at, mut last) = (0, 0i64);
            while at < page.len() {
                let start = last + unzigzag(read_varint(&page, &mut at));
                last = start;
                let end = start + unzigzag(read_varint(&page, &mut at));
                let precision = page[at];
                at += 1;
                let id = read_varint(&page, &mut at) as u32;
                let n = read_varint(&page, &mut at) as u32;
                buffer.clear();
                for _ in 0..n {
                    let slot = read_varint(&page, &mut at) as u32;
                    let op = page[at];
                    at += 1;
                    let value = read_varint(&page, &mut at) as u32;
                    let until = read_varint(&page, &mut at);
                    let until_end = if until == 0 {
                        0
                    } else {
                        start + unzigzag(until - 1)
                    };
                    buffer.push(Change {
                        slot,
                        op,
                        value,
                        until_end,
                    });
                }
                let event = Event {
                    start,
                    end,
                    precision,
                    id,
                    from: 0,
                    to: n,
                };
                apply(state, expiries, &event, &buffer);
            }
        }
    };
    let (streamed, seconds) = best_of(3, || replay(&mut { from_stream }));
    assert!(streamed == state, "the stream differs");
    println!(
        "replay from the stream (decompress, decode, apply): {:.0} events/s",
        events.len() as f64 / seconds
    );

    // A checkpoint of the final state, stored the same way.
    let mut bytes = Vec::new();
    let fact = |out: &mut Vec<u8>, value: u32, p: &Provenance| {
        push_varint(out, u64::from(value));
        push_varint(out, u64::from(p.event));
        push_varint(out, zigzag(p.since));
        out.push(p.precision);
        push_varint(out, zigzag(p.until_end));
    };
    for (i, slot) in state.iter().enumerate() {
        match slot {
            Slot::Empty => {}
            Slot::One(value, p) => {
                push_varint(&mut bytes, i as u64);
                push_varint(&mut bytes, 0);
                fact(&mut bytes, *value, p);
            }
            Slot::Many(members) => {
                push_varint(&mut bytes, i as u64);
                push_varint(&mut bytes, members.len() as u64);
                for (value, p) in members {
                    fact(&mut bytes, *value, p);
                }
            }
        }
    }
    let chunks: Vec<Vec<u8>> = bytes
        .chunks(64 << 10)
        .map(|c| zstd::bulk::compress(c, 1).expect("compressed"))
        .collect();
    println!(
        "checkpoint: {:.1} MiB, {:.1} MiB compressed",
        bytes.len() as f64 / 1048576.0,
        chunks.iter().map(Vec::len).sum::<usize>() as f64 / 1048576.0
    );
    let read_fact = |b: &[u8], at: &mut usize| {
        let value = read_varint(b, at) as u32;
        let event = read_varint(b, at) as u32;
        let since = unzigzag(read_varint(b, at));
        let precision = b[*at];
        *at += 1;
        let until_end = unzigzag(read_varint(b, at));
        let p = Provenance {
            event,
            since,
            precision,
            until_end,
        };
        (value, p)
    };
    let (read, seconds) = best_of(3, || {
        let mut decompressor = zstd::bulk::Decompressor::new().expect("a context");
        let mut decoded = Vec::with_capacity(bytes.len());
        // zstd writes a buffer from its start: one per frame, then appended.
        let mut frame = Vec::with_capacity(64 << 10);
        for chunk in &chunks {
            frame.clear();
            decompressor
                .decompress_to_buffer(chunk, &mut frame)
                .expect("a chunk");
            decoded.extend_from_slice(&frame);
        }
        let mut read = vec![Slot::Empty; slots.len()];
        let mut at = 0;
        while at < decoded.len() {
            let i = read_varint(&decoded, &mut at) as usize;
            let members = read_varint(&decoded, &mut at);
            read[i] = if members == 0 {
                let (value, p) = read_fact(&decoded, &mut at);
                Slot::One(value, p)
            } else {
                Slot::Many((0..members).map(|_| read_fact(&decoded, &mut at)).collect())
            };
        }
        read
    });
    assert!(read == state, "the checkpoint differs");
    println!("checkpoint decoded in {:.1} ms", seconds * 1e3);
}
