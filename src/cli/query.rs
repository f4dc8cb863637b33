//! The read-only commands: `state`, `timeline`, `show`, `log`, `stats`.
//! Each has a text rendering for people and a JSON one for programs.
//! (`diff` and `history` are in `changes.rs`.)

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use serde_json::{Map, Value as Json, json};

use chronik::formats::json as shapes;
use chronik::store::record::hash_to_hex as hex;
use chronik::store::{Record, Snapshot, TimelineFilter};
use chronik::{AsOf, Error, Event, KnownAt, OpenMode, State, Store, When};

use super::table::{self, Table};
use super::{Format, parse_known_at, parse_when, today};

/// `--known-at`, shared by every query that can look back in transaction time.
#[derive(Debug, Args)]
pub struct KnownAtArg {
    /// Answer as the log stood then: '#N' (records up to seq N), a date, or an RFC 3339 timestamp.
    #[arg(long, value_parser = parse_known_at, value_name = "T|#N")]
    pub known_at: Option<KnownAt>,
}

/// The `known_at` field of JSON output: the bound as given, or null.
pub fn known_at_json(snapshot: &Snapshot<'_>) -> Json {
    snapshot
        .known_at()
        .map_or(Json::Null, |k| json!(k.to_string()))
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// The date to show the state at (its end); default: today (UTC).
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub at: Option<When>,

    /// Only facts about this entity (repeatable).
    #[arg(long = "entity", value_name = "ENTITY")]
    pub entities: Vec<String>,

    /// Leave out events whose date is coarser than --at instead of marking their facts uncertain.
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub known_at: KnownAtArg,

    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Also list events that later events correct (marked as corrected).
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub known_at: KnownAtArg,

    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Which events `timeline` and `export` take.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only events whose date reaches into or past this date.
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub from: Option<When>,

    /// Only events whose date starts within or before this date.
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub to: Option<When>,

    /// Only events that change this entity (repeatable).
    #[arg(long = "entity", value_name = "ENTITY")]
    pub entities: Vec<String>,

    /// Only events with this tag (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
}

impl FilterArgs {
    /// Whether any option narrows the events.
    pub fn narrows(&self) -> bool {
        self.from.is_some()
            || self.to.is_some()
            || !self.entities.is_empty()
            || !self.tags.is_empty()
    }

    /// The filter, once the dates are checked against each other and the
    /// entities against the snapshot.
    pub fn check(&self, snapshot: &Snapshot<'_>) -> anyhow::Result<TimelineFilter> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from.start() >= to.end()
        {
            return Err(super::usage(format!("--from {from} is after --to {to}")));
        }
        snapshot.check_entities(&self.entities)?;
        Ok(TimelineFilter {
            from: self.from,
            to: self.to,
            entities: self.entities.clone(),
            tags: self.tags.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The event's id.
    pub id: String,

    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Opens an existing store for reading.
pub fn open(path: &Path) -> Result<Store, Error> {
    Store::open(path, OpenMode::Existing)
}

pub fn print_json(out: &mut dyn Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    // serde_json writes a token at a time: a buffer of a known type takes
    // them without a dynamic call each (a third of the time of a large
    // state's JSON went to those calls).
    let mut buffered = std::io::BufWriter::with_capacity(JSON_BUFFER, &mut *out);
    serde_json::to_writer_pretty(&mut buffered, value)?;
    writeln!(buffered)?;
    buffered.flush()?;
    Ok(())
}

/// The buffer of [`print_json`] and [`print_json_streaming`].
const JSON_BUFFER: usize = 64 << 10;

pub fn state(store_path: &Path, args: StateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let at = args.at.unwrap_or_else(today);
    let query = AsOf {
        at,
        strict: args.strict,
    };
    let store = open(store_path)?;
    let snapshot = store.snapshot(args.known_at.known_at.as_ref())?;
    snapshot.check_entities(&args.entities)?;
    let state = snapshot.state(query, &args.entities)?;
    match args.format {
        Format::Json => state_json(&state, query, &snapshot, out),
        Format::Text => state_text(&state, query, &snapshot, out),
    }
}

fn state_json(
    state: &State,
    query: AsOf,
    snapshot: &Snapshot<'_>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let document = shapes::StateDocument {
        at: query.at.to_string(),
        known_at: snapshot.known_at().map(|k| k.to_string()),
        strict: query.strict,
        state,
    };
    print_json(out, &document)
}

fn state_text(
    state: &State,
    query: AsOf,
    snapshot: &Snapshot<'_>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let strict = format!(
        "{}{}",
        if query.strict { ", strict" } else { "" },
        known_at_text(snapshot)
    );
    if state.is_empty() {
        writeln!(out, "State at {}{strict}: no facts.", query.at)?;
        return Ok(());
    }
    let facts = state.len();
    writeln!(
        out,
        "State at {}{strict}: {facts} fact{}",
        query.at,
        if facts == 1 { "" } else { "s" }
    )?;
    writeln!(out)?;
    // Listed once (listing sorts), then written in two passes (widths, then
    // rows) without holding the text of every cell.
    let listed: Vec<_> = state.facts().collect();
    let with_until = listed.iter().any(|f| f.provenance.until.is_some());
    let mut header = vec!["ENTITY", "ATTRIBUTE", "VALUE", "SINCE", "EVENT"];
    if with_until {
        header.push("UNTIL");
    }
    let uncertain = listed.iter().filter(|f| f.provenance.uncertain).count();
    table::write_rows(out, &header, &listed, |fact, cells| {
        use std::fmt::Write as _;
        let p = fact.provenance;
        cells[0].push_str(fact.entity);
        cells[1].push_str(fact.attr);
        let _ = write!(cells[2], "{}", fact.value);
        let _ = write!(cells[3], "{}", p.since);
        if p.uncertain {
            cells[3].push_str(" ?");
        }
        cells[4].push_str(&p.event);
        if let (true, Some(until)) = (with_until, p.until) {
            let _ = write!(cells[5], "{until}");
        }
    })?;
    if uncertain > 0 {
        writeln!(out)?;
        writeln!(
            out,
            "? uncertain ({uncertain}): an event dated more coarsely than {} set or removed the fact, so it may or may not hold then; --strict leaves such events out.",
            query.at
        )?;
    }
    Ok(())
}

/// ", as known at #3" for headings, or nothing.
pub fn known_at_text(snapshot: &Snapshot<'_>) -> String {
    match snapshot.known_at() {
        Some(k) if k.to_string().starts_with('#') => format!(", as known at {k}"),
        Some(k) => format!(", as known at {k} (#{})", snapshot.head()),
        None => String::new(),
    }
}

/// A record as JSON: seq, the event's fields, then when it was recorded,
/// and the events that correct it, if any.
fn record_json(record: &Record, corrected_by: &[String]) -> Json {
    let mut object = Map::new();
    object.insert("seq".into(), json!(record.seq));
    object.extend(shapes::event(&record.event));
    object.insert("recorded_at".into(), json!(timestamp(record.recorded_at)));
    if !corrected_by.is_empty() {
        object.insert("corrected_by".into(), json!(corrected_by));
    }
    Json::Object(object)
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn timeline(store_path: &Path, args: TimelineArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open(store_path)?;
    let snapshot = store.snapshot(args.known_at.known_at.as_ref())?;
    let filter = args.filter.check(&snapshot)?;
    let entries = snapshot.timeline_entries(&filter, args.all)?;
    match args.format {
        // Each event is turned into JSON and written as it is read, so a
        // timeline of millions of events needs no more memory than one.
        Format::Json => print_json_streaming(
            out,
            &[("known_at", known_at_json(&snapshot))],
            "events",
            entries.map(|e| e.map(|e| record_json(&e.record, &e.corrected_by))),
        ),
        Format::Text => {
            let mut table = Table::new(&["AT", "ID", "TITLE"]);
            let mut any = false;
            for entry in entries {
                let entry = entry?;
                let e = &entry.record.event;
                let mut title = e.title.clone();
                if !entry.corrected_by.is_empty() {
                    title = format!("[corrected by {}] {title}", entry.corrected_by.join(", "));
                }
                table.row(vec![e.at.to_string(), e.id.to_string(), title]);
                any = true;
            }
            if !any {
                writeln!(out, "No events.")?;
                return Ok(());
            }
            table.write(out)?;
            Ok(())
        }
    }
}

/// Prints `{leading..., key: [items]}` as [`print_json`] would, but writes
/// each item as it comes, so the whole array is never held. An item that
/// fails ends the output with its error.
pub fn print_json_streaming(
    out: &mut dyn Write,
    leading: &[(&str, Json)],
    key: &str,
    items: impl Iterator<Item = chronik::Result<Json>>,
) -> anyhow::Result<()> {
    use serde::ser::{SerializeMap, Serializer};
    let array = StreamedArray {
        items: std::cell::RefCell::new(items),
        failed: std::cell::RefCell::new(None),
    };
    let written = (|| -> anyhow::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(JSON_BUFFER, &mut *out);
        let mut serializer = serde_json::Serializer::pretty(&mut out);
        let mut map = serializer.serialize_map(Some(leading.len() + 1))?;
        for (name, value) in leading {
            map.serialize_entry(name, value)?;
        }
        map.serialize_entry(key, &array)?;
        map.end()?;
        writeln!(out)?;
        out.flush()?;
        Ok(())
    })();
    match array.failed.into_inner() {
        Some(e) => Err(e.into()),
        None => written,
    }
}

/// A JSON array serialised from an iterator; the error of an item that
/// fails is kept in `failed`.
struct StreamedArray<I> {
    items: std::cell::RefCell<I>,
    failed: std::cell::RefCell<Option<Error>>,
}

impl<I: Iterator<Item = chronik::Result<Json>>> serde::Serialize for StreamedArray<I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let mut seq = serializer.serialize_seq(None)?;
        for item in &mut *self.items.borrow_mut() {
            match item {
                Ok(item) => seq.serialize_element(&item)?,
                Err(e) => {
                    let message = e.to_string();
                    *self.failed.borrow_mut() = Some(e);
                    return Err(S::Error::custom(message));
                }
            }
        }
        seq.end()
    }
}

pub fn show(store_path: &Path, args: ShowArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open(store_path)?;
    let snapshot = store.latest()?;
    let record = snapshot
        .find(&args.id)?
        .ok_or_else(|| Error::UnknownEvent(args.id.clone()))?;
    let corrected_by = snapshot.corrected_by(record.seq)?;
    match args.format {
        Format::Json => print_json(out, &record_json(&record, &corrected_by)),
        Format::Text => show_text(&record, &corrected_by, out),
    }
}

fn show_text(record: &Record, corrected_by: &[String], out: &mut dyn Write) -> anyhow::Result<()> {
    let e: &Event = &record.event;
    writeln!(out, "{}", e.id)?;
    let mut table = Table::default();
    let mut field = |name: &str, value: String| table.row(vec![name.to_string(), value]);
    field("at", format!("{} ({})", e.at, e.at.precision().name()));
    field("title", e.title.clone());
    if let Some(summary) = &e.summary {
        field("summary", summary.clone());
    }
    if !e.tags.is_empty() {
        field("tags", e.tags.join(", "));
    }
    for (i, s) in e.sources.iter().enumerate() {
        field(
            if i == 0 { "sources" } else { "" },
            format!("[{}] {s}", i + 1),
        );
    }
    if !e.corrects.is_empty() {
        field("corrects", e.corrects.join(", "));
    }
    if !corrected_by.is_empty() {
        field("corrected by", corrected_by.join(", "));
    }
    field("seq", record.seq.to_string());
    field("recorded", timestamp(record.recorded_at));
    table.write(out)?;
    if e.changes.is_empty() {
        writeln!(out, "no changes")?;
        return Ok(());
    }
    writeln!(out)?;
    let with_until = e.changes.iter().any(|c| c.op.until().is_some());
    let header: &[&str] = if with_until {
        &["CHANGE", "ATTRIBUTE", "VALUE", "UNTIL"]
    } else {
        &["CHANGE", "ATTRIBUTE", "VALUE"]
    };
    let mut changes = Table::new(header);
    for c in &e.changes {
        let mut row = vec![
            c.op.keyword().to_string(),
            c.target(),
            c.op.value().map(|v| v.to_string()).unwrap_or_default(),
        ];
        if with_until {
            row.push(c.op.until().map(|u| u.to_string()).unwrap_or_default());
        }
        changes.row(row);
    }
    changes.write(out)?;
    Ok(())
}

pub fn log(store_path: &Path, args: LogArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open(store_path)?;
    let snapshot = store.latest()?;
    match args.format {
        Format::Json => {
            let records = snapshot.log().map(|r| {
                r.map(|r| {
                    let mut json = record_json(&r, &[]);
                    if let Json::Object(object) = &mut json {
                        object.insert("prev_hash".into(), json!(hex(&r.prev_hash)));
                        object.insert("hash".into(), json!(hex(&r.hash)));
                    }
                    json
                })
            });
            print_json_streaming(out, &[], "records", records)
        }
        Format::Text => {
            let mut table = Table::new(&["SEQ", "RECORDED", "AT", "ID", "TITLE"]);
            let mut any = false;
            for r in snapshot.log() {
                let r = r?;
                any = true;
                table.row(vec![
                    r.seq.to_string(),
                    r.recorded_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    r.event.at.to_string(),
                    r.event.id.to_string(),
                    r.event.title.clone(),
                ]);
            }
            if any {
                table.write(out)?;
            } else {
                writeln!(out, "The log is empty.")?;
            }
            Ok(())
        }
    }
}

pub fn stats(store_path: &Path, args: StatsArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open(store_path)?;
    let stats = store.stats()?;
    let date = |w: Option<When>| w.map(|w| w.to_string());
    match args.format {
        Format::Json => print_json(
            out,
            &json!({
                "events": stats.events,
                "head": {
                    "seq": stats.head.seq,
                    "hash": hex(&stats.head.hash),
                    "recorded_at": (stats.events > 0).then(|| timestamp(stats.head.recorded_at)),
                },
                "first_at": date(stats.first_at),
                "last_at": date(stats.last_at),
                "first_recorded_at": stats.first_recorded_at.map(timestamp),
                "entities": stats.entities,
                "size_on_disk": stats.size_on_disk,
            }),
        ),
        Format::Text => {
            let mut table = Table::default();
            table.row(vec!["events".into(), stats.events.to_string()]);
            table.row(vec![
                "head".into(),
                format!(
                    "seq {}, hash {}",
                    stats.head.seq,
                    &hex(&stats.head.hash)[..16]
                ),
            ]);
            if let (Some(first), Some(last)) = (stats.first_at, stats.last_at) {
                table.row(vec!["dates".into(), format!("{first} to {last}")]);
            }
            if let Some(first) = stats.first_recorded_at {
                let secs = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
                table.row(vec![
                    "recorded".into(),
                    format!("{} to {}", secs(first), secs(stats.head.recorded_at)),
                ]);
            }
            table.row(vec!["entities".into(), stats.entities.to_string()]);
            table.row(vec!["size on disk".into(), human_bytes(stats.size_on_disk)]);
            table.write(out)?;
            Ok(())
        }
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut size = n as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if size < 1024.0 {
            break;
        }
        size /= 1024.0;
        unit = u;
    }
    format!("{size:.1} {unit} ({n} bytes)")
}

pub fn verify(store_path: &Path, args: VerifyArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open(store_path)?;
    match store.verify()? {
        Ok(v) => match args.format {
            Format::Json => print_json(
                out,
                &json!({
                    "ok": true,
                    "records": v.records,
                    "head": { "seq": v.head.seq, "hash": hex(&v.head.hash) },
                    "index_entries": v.index_entries,
                    "checkpoints": v.checkpoints,
                }),
            ),
            Format::Text => {
                if v.records == 0 {
                    writeln!(out, "verified: the store is empty and sound")?;
                    return Ok(());
                }
                writeln!(
                    out,
                    "verified: {} record{}, seq 1-{} without gaps, hash chain intact up to head {}, {} index entries consistent, {} checkpoint{} equal to a fresh replay",
                    v.records,
                    if v.records == 1 { "" } else { "s" },
                    v.records,
                    hex(&v.head.hash),
                    v.index_entries,
                    v.checkpoints,
                    if v.checkpoints == 1 { "" } else { "s" },
                )?;
                Ok(())
            }
        },
        Err(problem) => Err(Error::Corrupt(format!("verify failed at {problem}")).into()),
    }
}

#[derive(Debug, Args)]
pub struct ReindexArgs {}

/// The answers a store gives at 13 dates across its timeline, each as a
/// digest of the whole state (every fact, its provenance and its `until`;
/// `None` where it could not be read): a reindex compares them before and
/// after without holding 26 whole states (at a million events, over a
/// gigabyte).
fn sample_answers(store: &Store) -> Vec<Option<blake3::Hash>> {
    let Ok(stats) = store.stats() else {
        return Vec::new();
    };
    let (Some(first), Some(last)) = (stats.first_at, stats.last_at) else {
        return Vec::new();
    };
    let (from, to) = (first.year(), last.year() + 1);
    (0..=12)
        .map(|i| from + (to - from) * i / 12)
        .filter_map(|year| When::parse(&format!("{year:04}")).ok())
        .map(|at| {
            let state = store.latest().and_then(|s| s.state(AsOf::new(at), &[]));
            state.ok().map(|state| answer_digest(&state))
        })
        .collect()
}

/// A digest of every fact of `state`, with its provenance and `until`.
fn answer_digest(state: &State) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    for fact in state.facts() {
        serde_json::to_writer(&mut hasher, &shapes::FactShape(fact))
            .expect("hashing does not fail");
        let until = fact.provenance.until.map(|u| u.to_string());
        hasher.update(until.unwrap_or_default().as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize()
}

pub fn reindex(store_path: &Path, _args: ReindexArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open(store_path)?;
    let before = sample_answers(&store);
    let done = store.reindex()?;
    let after = sample_answers(&store);
    let changed = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    writeln!(
        out,
        "reindexed {} records: {} index entries and {} checkpoints rebuilt from the log",
        done.records, done.index_entries, done.checkpoints
    )?;
    if changed == 0 {
        writeln!(
            out,
            "the store answers as before at all {} sample dates",
            after.len()
        )?;
    } else {
        writeln!(
            out,
            "the answers changed at {changed} of {} sample dates: the old indexes did not match the log",
            after.len()
        )?;
    }
    match store.verify()? {
        Ok(_) => writeln!(out, "verified: the rebuilt store is sound")?,
        Err(problem) => {
            return Err(
                Error::Corrupt(format!("verify failed after the reindex, at {problem}")).into(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_differ_when_a_fact_its_provenance_or_its_until_does() {
        use chronik::state::{Provenance, Slot};
        // openai.x = 1 from event "a" of 2019, as `change` leaves it.
        let state = |value: i64, change: &dyn Fn(&mut Provenance)| {
            let mut provenance = Provenance {
                event: "a".into(),
                since: When::parse("2019").unwrap(),
                uncertain: false,
                until: None,
            };
            change(&mut provenance);
            let mut state = State::new();
            state.put_slot(
                "openai",
                "x",
                Slot::One(chronik::Value::Int(value), provenance),
            );
            state
        };
        let base = answer_digest(&state(1, &|_| {}));
        assert_eq!(answer_digest(&state(1, &|_| {})), base);
        assert_ne!(answer_digest(&State::new()), base);
        assert_ne!(answer_digest(&state(2, &|_| {})), base);
        let changes: [&dyn Fn(&mut Provenance); 4] = [
            &|p| p.event = "b".into(),
            &|p| p.until = Some(When::parse("2030").unwrap()),
            &|p| p.uncertain = true,
            &|p| p.since = When::parse("2019-05").unwrap(),
        ];
        for (i, change) in changes.into_iter().enumerate() {
            assert_ne!(answer_digest(&state(1, change)), base, "change {i}");
        }
    }

    fn printed(write: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn streamed_json_prints_as_the_whole_document_would() {
        let items = [
            json!({"seq": 1, "id": "a", "tags": [], "nested": {"x": [1, 2]}}),
            json!({"seq": 2, "id": "b", "summary": null}),
        ];
        for n in 0..=items.len() {
            let items = &items[..n];
            let whole = printed(|out| {
                print_json(
                    out,
                    &json!({"known_at": null, "strict": true, "events": items}),
                )
            });
            let streamed = printed(|out| {
                print_json_streaming(
                    out,
                    &[("known_at", Json::Null), ("strict", json!(true))],
                    "events",
                    items.iter().cloned().map(Ok),
                )
            });
            assert_eq!(streamed, whole, "{n} items");
            let whole = printed(|out| print_json(out, &json!({ "records": items })));
            let streamed = printed(|out| {
                print_json_streaming(out, &[], "records", items.iter().cloned().map(Ok))
            });
            assert_eq!(streamed, whole, "{n} items, no leading fields");
        }
    }

    #[test]
    fn a_failing_item_ends_streamed_json_with_its_own_error() {
        let items = vec![
            Ok(json!(1)),
            Err(Error::Corrupt("record 2 is damaged".into())),
        ];
        let mut out = Vec::new();
        let err = print_json_streaming(&mut out, &[], "records", items.into_iter()).unwrap_err();
        assert!(
            matches!(err.downcast_ref::<Error>(), Some(Error::Corrupt(_))),
            "{err}"
        );
        assert!(serde_json::from_slice::<Json>(&out).is_err());
    }
}
