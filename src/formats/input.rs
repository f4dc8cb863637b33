//! Reading events from TOML, JSON and JSON Lines.
//!
//! All three share one set of field names (DESIGN.md section 2) and one
//! path from raw text to checked [`Event`]s: the text is split into one raw
//! item per event, each item is deserialised into a `RawEvent` (unknown
//! fields are refused) and then converted, so that every error can name the
//! file, the event (id, number and line where known) and the field.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use compact_str::CompactString;
use serde::Deserialize;

use crate::error::Error;
use crate::event::{
    Change, Event, Located, Op, Origin, Recorded, Source, Validated, Value, parse_target,
};
use crate::store::Writer;
use crate::when::When;

/// The authoring formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Toml,
    Json,
    JsonLines,
}

impl InputFormat {
    /// The format a file's extension names, if any.
    pub fn from_path(path: &Path) -> Option<InputFormat> {
        match path.extension()?.to_str()? {
            "toml" => Some(InputFormat::Toml),
            "json" => Some(InputFormat::Json),
            "jsonl" => Some(InputFormat::JsonLines),
            _ => None,
        }
    }

    /// Recognises the format of text with no file name. Text that starts
    /// with `{` is JSON Lines when its first line is a JSON object on its
    /// own (and not a whole `{"event": ...}` file), else JSON; text that
    /// starts with `[` is JSON unless it is a TOML table header such as
    /// `[[event]]`; anything else is TOML. A byte-order mark is ignored.
    pub fn sniff(text: &str) -> InputFormat {
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        let first_line = trimmed.lines().next().unwrap_or_default().trim();
        if trimmed.starts_with('{') {
            let whole = serde_json::from_str::<serde_json::Value>(trimmed);
            if let Ok(serde_json::Value::Object(map)) = &whole
                && map.contains_key("event")
            {
                return InputFormat::Json;
            }
            return match serde_json::from_str::<serde_json::Value>(first_line) {
                Ok(serde_json::Value::Object(_)) => InputFormat::JsonLines,
                _ => InputFormat::Json,
            };
        }
        if trimmed.starts_with('[') {
            let table_header = first_line.ends_with(']')
                && first_line
                    .trim_start_matches('[')
                    .starts_with(|c: char| c.is_ascii_alphabetic() || c == '"' || c == '\'');
            if table_header && serde_json::from_str::<serde_json::Value>(trimmed).is_err() {
                return InputFormat::Toml;
            }
            return InputFormat::Json;
        }
        InputFormat::Toml
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    event: Vec<toml::Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFile<'a> {
    #[serde(borrow)]
    event: Vec<&'a serde_json::value::RawValue>,
}

/// Just the id of an event, to name it in messages.
#[derive(Deserialize)]
struct IdOnly {
    id: Option<CompactString>,
}

/// One event exactly as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    id: CompactString,
    at: String,
    title: String,
    summary: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    sources: Vec<RawSource>,
    #[serde(default)]
    corrects: Vec<String>,
    #[serde(default)]
    changes: Vec<RawChange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    title: Option<String>,
    publisher: Option<String>,
    url: Option<String>,
    published: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChange {
    set: Option<CompactString>,
    unset: Option<CompactString>,
    add: Option<CompactString>,
    remove: Option<CompactString>,
    value: Option<Value>,
    until: Option<String>,
}

/// Reads every event in `text`, written in `format`; `file` names the
/// input in messages. Syntax, unknown fields and impossible values are
/// errors here; the rules of [`Event::validate`] are checked too.
pub fn read_events(text: &str, format: InputFormat, file: &str) -> Result<Vec<Located>, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let items = split(text, format, file)?;
    let file: Arc<str> = file.into();
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| located(item, &file, i + 1))
        .collect()
}

/// Reads JSON Lines from `reader` and hands the events to `take` in chunks
/// of `chunk` events, so that a file of any size is read in bounded memory.
pub fn read_json_lines<E: From<Error>>(
    mut reader: impl std::io::BufRead,
    file: &str,
    chunk: usize,
    mut take: impl FnMut(Validated) -> Result<(), E>,
) -> Result<(), E> {
    let mut events = Vec::with_capacity(chunk.min(1 << 16));
    let mut buffer = Vec::new();
    let (mut line, mut number) = (0, 0);
    let shared: Arc<str> = file.into();
    loop {
        buffer.clear();
        let read = reader
            .read_until(b'\n', &mut buffer)
            .map_err(|source| Error::Io {
                action: "read",
                path: file.into(),
                source,
            })?;
        if read == 0 {
            break;
        }
        line += 1;
        let text = std::str::from_utf8(&buffer).map_err(|e| Error::Input {
            origin: format!("{file}: line {line}"),
            message: format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        })?;
        let text = if line == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        if text.trim().is_empty() {
            continue;
        }
        number += 1;
        events.push(located(
            json_line(text.trim_end_matches(['\n', '\r']), line),
            &shared,
            number,
        )?);
        if events.len() >= chunk {
            take(Validated::new(std::mem::take(&mut events)))?;
        }
    }
    if !events.is_empty() {
        take(Validated::new(events))?;
    }
    Ok(())
}

/// Like [`read_json_lines`], but reads in a second thread, which also
/// `prepare`s each chunk, while `take` works on the chunk before: reading
/// and writing a large import overlap. Chunks are taken in order; the first
/// error in the input's order is returned (a line that does not parse, a
/// chunk that `take` refuses), and reading stops soon after it.
///
/// Each prepared chunk goes back to the reading thread to be freed there,
/// where its memory came from: freeing a chunk's thousands of strings is
/// work the taker, the slower of the two, need not do.
pub fn read_json_lines_in_background<T: Send, E: From<Error> + Send>(
    reader: impl std::io::BufRead + Send,
    file: &str,
    chunk: usize,
    mut prepare: impl FnMut(Validated) -> T + Send,
    mut take: impl FnMut(&mut T) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<T>(1);
        let (give_back, taken) = std::sync::mpsc::channel::<T>();
        let parser = scope.spawn(move || {
            read_json_lines::<Error>(reader, file, chunk, |events| {
                taken.try_iter().for_each(drop);
                // The receiver is gone only when `take` failed: stop reading
                // (what the receiver reports stands).
                sender
                    .send(prepare(events))
                    .map_err(|_| Error::Usage(String::new()))
            })
        });
        let mut result = Ok(());
        for mut prepared in receiver.iter() {
            result = take(&mut prepared);
            // Once the parser is done, what it has not freed is freed here.
            let _ = give_back.send(prepared);
            if result.is_err() {
                break;
            }
        }
        drop(receiver);
        let parsed = parser.join().expect("the parser thread does not panic");
        result?;
        parsed.map_err(E::from)
    })
}

/// Reads JSON Lines from `reader` into `writer`'s batch, in chunks of
/// `chunk` events: a second thread reads and checks each chunk while this
/// one stages the chunk before (see [`Writer::push_checked_elsewhere`]).
pub fn write_json_lines(
    reader: impl std::io::BufRead + Send,
    file: &str,
    chunk: usize,
    writer: &mut Writer<'_>,
) -> Result<(), Error> {
    writer.push_checked_elsewhere(|checks, stage| {
        read_json_lines_in_background(reader, file, chunk, |events| checks.check(events), stage)
    })
}

/// Turns one raw item into a checked event with its origin.
fn located(item: Item, file: &Arc<str>, number: usize) -> Result<Located, Error> {
    let mut origin = Origin {
        file: file.clone(),
        number,
        line: item.line,
        id: item.id,
    };
    let fail = |origin: &Origin, message: String| Error::Input {
        origin: origin.to_string(),
        message,
    };
    let raw = item.raw.map_err(|message| fail(&origin, message))?;
    origin.id = Some(raw.id.clone());
    let event = raw
        .into_event()
        .map_err(|invalid| fail(&origin, invalid.to_string()))?;
    event
        .validate()
        .map_err(|invalid| fail(&origin, invalid.to_string()))?;
    let recorded = item
        .record
        .map(|r| r.parse(&event))
        .transpose()
        .map_err(|message| fail(&origin, message))?;
    Ok(Located {
        event,
        origin,
        recorded,
    })
}

/// Reads a file's bytes as events: the bytes must be UTF-8.
pub fn read_event_bytes(
    bytes: &[u8],
    format: InputFormat,
    file: &str,
) -> Result<Vec<Located>, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Input {
        origin: file.to_string(),
        message: format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ),
    })?;
    read_events(text, format, file)
}

/// One event's raw item: its line and id if known, and the deserialised
/// fields or the deserialiser's complaint.
struct Item {
    line: Option<usize>,
    id: Option<CompactString>,
    raw: Result<RawEvent, String>,
    /// For a record line of an export: its seq, time and hash as written.
    record: Option<RecordInfo>,
}

/// A record line of a JSON Lines export: an event and where it stood in
/// the log it came from.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    seq: u64,
    recorded_at: String,
    hash: String,
    prev_hash: String,
    event: RawEvent,
}

struct RecordInfo {
    seq: u64,
    recorded_at: String,
    hash: String,
    prev_hash: String,
}

impl RecordInfo {
    /// The record's place, once its hash is checked against `event`.
    fn parse(self, event: &Event) -> Result<Recorded, String> {
        use crate::store::record;
        let at = chrono::DateTime::parse_from_rfc3339(&self.recorded_at)
            .map_err(|e| {
                format!(
                    "field `recorded_at`: \"{}\" is not an RFC 3339 timestamp ({e})",
                    self.recorded_at
                )
            })?
            .with_timezone(&chrono::Utc);
        let hex = |field: &str, text: &str| {
            record::hash_from_hex(text)
                .ok_or_else(|| format!("field `{field}`: \"{text}\" is not 64 hexadecimal digits"))
        };
        let hash = hex("hash", &self.hash)?;
        let prev_hash = hex("prev_hash", &self.prev_hash)?;
        if record::encode(self.seq, at, prev_hash, event).1 != hash {
            return Err(format!(
                "record {} does not hash to the hash its export gives: the export was changed or is damaged",
                self.seq
            ));
        }
        Ok(Recorded {
            seq: self.seq,
            at,
            prev_hash,
            hash,
        })
    }
}

/// Enough of a JSON Lines line to tell a record (with `event`) from an event.
#[derive(Deserialize)]
struct Peek {
    event: Option<serde::de::IgnoredAny>,
}

/// Deserialises one JSON Lines line; errors name the field and the column.
fn from_line<T: serde::de::DeserializeOwned>(line: &str) -> Result<T, String> {
    // The line is already named; keep the column.
    let column = |message: String| match message.rsplit_once(" at line 1 column ") {
        Some((head, column)) => format!("{head} at column {column}"),
        None => message,
    };
    let mut deserializer = serde_json::Deserializer::from_str(line);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => deserializer
            .end()
            .map(|()| value)
            .map_err(|e| column(e.to_string())),
        Err(e) => {
            let path = e.path().to_string();
            Err(with_path(&path, &column(e.into_inner().to_string())))
        }
    }
}

fn split(text: &str, format: InputFormat, file: &str) -> Result<Vec<Item>, Error> {
    let whole_file = |message: String| Error::Input {
        origin: file.to_string(),
        message,
    };
    match format {
        InputFormat::Toml => {
            let parsed: TomlFile =
                toml::from_str(text).map_err(|e| whole_file(toml_message(&e)))?;
            Ok(parsed
                .event
                .into_iter()
                .map(|spanned| {
                    let line = line_of(text, spanned.span().start);
                    let value = dates_as_values(spanned.into_inner());
                    Item {
                        record: None,
                        line: Some(line),
                        id: value
                            .get("id")
                            .and_then(|v| v.as_str())
                            .map(CompactString::from),
                        raw: serde_path_to_error::deserialize(value).map_err(|e| {
                            let path = e.path().to_string();
                            with_path(&path, e.into_inner().message())
                        }),
                    }
                })
                .collect())
        }
        InputFormat::Json => {
            use serde_json::value::RawValue;
            let expected = "expected {\"event\": [...]} or an array of events";
            let whole: &RawValue = serde_json::from_str(text)
                .map_err(|e| whole_file(format!("not valid JSON: {e}")))?;
            let events: Vec<&RawValue> = match whole.get().as_bytes().first() {
                Some(b'[') => serde_json::from_str(whole.get())
                    .map_err(|e| whole_file(format!("{expected}: {e}")))?,
                Some(b'{') => {
                    serde_json::from_str::<JsonFile>(whole.get())
                        .map_err(|e| whole_file(format!("{expected}: {e}")))?
                        .event
                }
                _ => return Err(whole_file(expected.into())),
            };
            Ok(events
                .into_iter()
                .map(|raw| {
                    let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
                    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
                    Item {
                        record: None,
                        line: Some(line_of(text, offset)),
                        id: serde_json::from_str::<IdOnly>(raw.get())
                            .ok()
                            .and_then(|i| i.id),
                        raw: if !raw.get().starts_with('{') {
                            Err("an event must be a JSON object".to_string())
                        } else {
                            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                                let path = e.path().to_string();
                                // The event's line is named; a position inside it would mislead.
                                let message = e.into_inner().to_string();
                                let message = message
                                    .rsplit_once(" at line ")
                                    .map_or(message.as_str(), |(m, _)| m);
                                with_path(&path, message)
                            })
                        },
                    }
                })
                .collect())
        }
        InputFormat::JsonLines => Ok(text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| json_line(line, i + 1))
            .collect()),
    }
}

/// One line of JSON Lines: an event, or a record of an export.
fn json_line(line: &str, number: usize) -> Item {
    // The common case first and fast; the slower paths name the field.
    let (raw, record) = match serde_json::from_str::<RawEvent>(line) {
        Ok(raw) => (Ok(raw), None),
        Err(_) if serde_json::from_str::<Peek>(line).is_ok_and(|p| p.event.is_some()) => {
            match from_line::<RawRecord>(line) {
                Ok(r) => (
                    Ok(r.event),
                    Some(RecordInfo {
                        seq: r.seq,
                        recorded_at: r.recorded_at,
                        hash: r.hash,
                        prev_hash: r.prev_hash,
                    }),
                ),
                Err(e) => (Err(e), None),
            }
        }
        Err(_) => (from_line::<RawEvent>(line), None),
    };
    let id = match &raw {
        Ok(raw) => Some(raw.id.clone()),
        Err(_) => serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| {
                let event = v.get("event").unwrap_or(&v);
                event.get("id")?.as_str().map(CompactString::from)
            }),
    };
    Item {
        line: Some(number),
        id,
        raw,
        record,
    }
}

/// Turns an unquoted TOML date given as a change's value
/// (`value = 2019-06-01`) into `{ date = "2019-06-01" }`: the toml crate
/// would otherwise hand it over as a string, which would become text.
fn dates_as_values(mut event: toml::Value) -> toml::Value {
    let changes = event
        .get_mut("changes")
        .and_then(toml::Value::as_array_mut)
        .into_iter()
        .flatten();
    for change in changes {
        if let Some(value) = change.get_mut("value")
            && let toml::Value::Datetime(date) = value
        {
            let mut table = toml::Table::new();
            table.insert("date".into(), toml::Value::String(date.to_string()));
            *value = toml::Value::Table(table);
        }
    }
    event
}

/// `field `changes[0].value`: message`, or the message alone at the top.
fn with_path(path: &str, message: &str) -> String {
    // For an unknown field the path ends in that field; name its parent.
    let mut path = if message.starts_with("unknown field") {
        path.rsplit_once('.').map_or("", |(parent, _)| parent)
    } else {
        path
    };
    // Where the deserialiser lost track, the path ends in `?`.
    while path == "?" || path.ends_with(".?") {
        path = path
            .strip_suffix('?')
            .unwrap_or_default()
            .trim_end_matches('.');
    }
    if path.is_empty() || path == "." {
        message.to_string()
    } else {
        format!("field `{path}`: {message}")
    }
}

/// A TOML error in one sentence: toml's own message with its line.
fn toml_message(e: &toml::de::Error) -> String {
    let line = e.span().map(|span| span.start);
    match line {
        Some(_) => {
            // toml's Display draws a multi-line excerpt; keep its first line
            // (which names the line and column) and its message.
            let shown = e.to_string();
            let position = shown
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("TOML parse error at ");
            let message: Vec<&str> = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            format!("{position}: {}", message.join("; "))
        }
        None => e.message().to_string(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl RawEvent {
    fn into_event(self) -> Result<Event, crate::event::Invalid> {
        use crate::event::Invalid;
        let at = When::parse(&self.at).map_err(|e| Invalid::new("at", e.to_string()))?;
        let sources = self
            .sources
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let published = s
                    .published
                    .map(|p| When::parse(&p))
                    .transpose()
                    .map_err(|e| Invalid::new(format!("sources[{i}].published"), e.to_string()))?;
                Ok(Source {
                    title: s.title,
                    publisher: s.publisher,
                    url: s.url,
                    published,
                })
            })
            .collect::<Result<Vec<_>, Invalid>>()?;
        let changes = self
            .changes
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                c.into_change().map_err(|(field, message)| {
                    Invalid::new(format!("changes[{i}]{field}"), message)
                })
            })
            .collect::<Result<Vec<_>, Invalid>>()?;
        Ok(Event {
            id: self.id,
            at,
            title: self.title,
            summary: self.summary,
            tags: self.tags,
            sources,
            corrects: self.corrects,
            changes,
        })
    }
}

impl RawChange {
    /// The change, or the sub-field (`""`, `.value`, `.until`, `.set`...)
    /// and what is wrong with it.
    fn into_change(self) -> Result<Change, (String, String)> {
        let ops = [
            ("set", self.set),
            ("unset", self.unset),
            ("add", self.add),
            ("remove", self.remove),
        ];
        let mut named = ops
            .into_iter()
            .filter_map(|(op, target)| target.map(|t| (op, t)));
        let (op, target) = named.next().ok_or_else(|| {
            (
                String::new(),
                "names no operation: write one of set, unset, add or remove".to_string(),
            )
        })?;
        if let Some((other, _)) = named.next() {
            return Err((
                String::new(),
                format!("names both {op} and {other}; a change does one thing"),
            ));
        }
        let (entity, attr) =
            parse_target(&target).map_err(|m| (format!(".{op}"), format!("\"{target}\" {m}")))?;
        let until = self
            .until
            .map(|u| When::parse(&u))
            .transpose()
            .map_err(|e| (".until".to_string(), e.to_string()))?;
        let value = self.value;
        let needs_value = |value: Option<Value>| {
            value.ok_or_else(|| (String::new(), format!("{op} needs a value")))
        };
        if until.is_some() && matches!(op, "unset" | "remove") {
            return Err((".until".into(), format!("{op} takes no until")));
        }
        let op = match op {
            "set" => Op::Set {
                value: needs_value(value)?,
                until,
            },
            "add" => Op::Add {
                value: needs_value(value)?,
                until,
            },
            "remove" => Op::Remove {
                value: needs_value(value)?,
            },
            _ => {
                if value.is_some() {
                    return Err((".value".into(), "unset takes no value".into()));
                }
                Op::Unset
            }
        };
        Ok(Change { entity, attr, op })
    }
}

/// Values as written in event files: a string is text, numbers and bools are
/// themselves, and tables/objects say what they are:
/// `{ ref = "oracle" }`, `{ date = "2030" }`, `{ amount = 5e11, unit = "USD" }`.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, bool, { ref = ... }, { date = ... } or { amount = ..., unit = ... }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Text(v.into()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
                i64::try_from(v).map(Value::Int).map_err(|_| {
                    E::custom(format!("integer {v} is too large (at most {})", i64::MAX))
                })
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Value, A::Error> {
                use serde::de::Error as _;
                let mut reference: Option<CompactString> = None;
                let mut date: Option<String> = None;
                let mut amount: Option<Number> = None;
                let mut unit: Option<CompactString> = None;
                fn once<T>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), String> {
                    match slot.replace(value) {
                        Some(_) => Err(format!("`{key}` is given twice")),
                        None => Ok(()),
                    }
                }
                while let Some(key) = map.next_key::<String>()? {
                    let set = match key.as_str() {
                        "ref" => once(&mut reference, map.next_value()?, "ref"),
                        "date" => once(&mut date, map.next_value()?, "date"),
                        "amount" => once(&mut amount, map.next_value()?, "amount"),
                        "unit" => once(&mut unit, map.next_value()?, "unit"),
                        other => {
                            return Err(A::Error::custom(format!(
                                "unknown value field `{other}`, expected `ref`, `date`, or `amount` with `unit`"
                            )));
                        }
                    };
                    set.map_err(A::Error::custom)?;
                }
                match (reference, date, amount, unit) {
                    (Some(r), None, None, None) => Ok(Value::Ref(r)),
                    (None, Some(d), None, None) => {
                        When::parse(&d).map(Value::Date).map_err(A::Error::custom)
                    }
                    (None, None, Some(Number(amount)), Some(unit)) => {
                        Ok(Value::Amount { amount, unit })
                    }
                    (None, None, Some(_), None) => {
                        Err(A::Error::custom("an amount needs a `unit`"))
                    }
                    (None, None, None, Some(_)) => {
                        Err(A::Error::custom("a `unit` needs an `amount`"))
                    }
                    (None, None, None, None) => Err(A::Error::custom(
                        "an empty value; expected `ref`, `date`, or `amount` with `unit`",
                    )),
                    _ => Err(A::Error::custom(
                        "a value is one of `ref`, `date`, or `amount` with `unit`, not several",
                    )),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// An amount as written: an integer or a float. Integers must be exact as
/// a float (at most 2^53 in size).
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Number, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Number, E> {
                if v.unsigned_abs() > 1 << 53 {
                    return Err(E::custom(format!(
                        "amount {v} is too large to hold exactly (at most 2^53)"
                    )));
                }
                Ok(Number(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Number, E> {
                if v > 1 << 53 {
                    return Err(E::custom(format!(
                        "amount {v} is too large to hold exactly (at most 2^53)"
                    )));
                }
                Ok(Number(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[[event]]
id = "oracle-capacity-2024"
at = "2024-06"
title = "Oracle to provide data center capacity for OpenAI"
tags = ["cloud"]
sources = [{ title = "OpenAI may now also use cloud providers other than Microsoft", publisher = "heise online", published = "2025-01" }]
changes = [
  { add = "openai.cloud_providers", value = { ref = "oracle" } },
  { set = "openai.partnership_until", value = { date = "2030" }, until = "2030" },
  { set = "stargate.planned_investment", value = { amount = 500000000000, unit = "USD" } },
  { unset = "openai.exclusive_cloud_provider" },
]

[[event]]
id = "second"
at = "2025-01-21"
title = "Second"
"#;

    fn toml_events(text: &str) -> Result<Vec<Located>, Error> {
        read_events(text, InputFormat::Toml, "t.toml")
    }

    #[test]
    fn toml_reads_every_field() {
        let events = toml_events(TOML).unwrap();
        assert_eq!(events.len(), 2);
        let e = &events[0].event;
        assert_eq!(e.id, "oracle-capacity-2024");
        assert_eq!(e.at.to_string(), "2024-06");
        assert_eq!(e.tags, ["cloud"]);
        assert_eq!(e.sources[0].publisher.as_deref(), Some("heise online"));
        assert_eq!(
            e.sources[0].published.map(|p| p.to_string()).as_deref(),
            Some("2025-01")
        );
        assert_eq!(e.changes.len(), 4);
        assert_eq!(
            e.changes[0].op,
            Op::Add {
                value: Value::Ref("oracle".into()),
                until: None
            }
        );
        assert_eq!(e.changes[1].op.until().unwrap().to_string(), "2030");
        assert_eq!(
            e.changes[2].op.value(),
            Some(&Value::Amount {
                amount: 5e11,
                unit: "USD".into()
            })
        );
        assert_eq!(e.changes[3].op, Op::Unset);
        assert_eq!(events[0].origin.line, Some(2));
        assert_eq!(events[1].origin.line, Some(15));
    }

    #[test]
    fn json_and_json_lines_read_the_same_events() {
        let toml = toml_events(TOML).unwrap();
        let as_json: Vec<serde_json::Value> = vec![
            serde_json::json!({"id": "oracle-capacity-2024", "at": "2024-06", "title": "Oracle to provide data center capacity for OpenAI",
                "tags": ["cloud"],
                "sources": [{"title": "OpenAI may now also use cloud providers other than Microsoft", "publisher": "heise online", "published": "2025-01"}],
                "changes": [
                    {"add": "openai.cloud_providers", "value": {"ref": "oracle"}},
                    {"set": "openai.partnership_until", "value": {"date": "2030"}, "until": "2030"},
                    {"set": "stargate.planned_investment", "value": {"amount": 500000000000u64, "unit": "USD"}},
                    {"unset": "openai.exclusive_cloud_provider"}]}),
            serde_json::json!({"id": "second", "at": "2025-01-21", "title": "Second"}),
        ];
        let events =
            |located: Vec<Located>| located.into_iter().map(|l| l.event).collect::<Vec<_>>();
        let wrapped = serde_json::json!({ "event": as_json }).to_string();
        let bare = serde_json::Value::Array(as_json.clone()).to_string();
        let lines: String = as_json.iter().map(|v| format!("{v}\n\n")).collect();
        assert_eq!(
            events(read_events(&wrapped, InputFormat::Json, "x").unwrap()),
            events(toml.clone())
        );
        assert_eq!(
            events(read_events(&bare, InputFormat::Json, "x").unwrap()),
            events(toml.clone())
        );
        let jsonl = read_events(&lines, InputFormat::JsonLines, "x").unwrap();
        assert_eq!(jsonl[1].origin.line, Some(3));
        assert_eq!(events(jsonl), events(toml));
    }

    #[test]
    fn formats_are_sniffed_from_content() {
        assert_eq!(InputFormat::sniff(TOML), InputFormat::Toml);
        assert_eq!(InputFormat::sniff(" [ {\"id\": 1} ]"), InputFormat::Json);
        assert_eq!(InputFormat::sniff("{\"event\": []}"), InputFormat::Json);
        assert_eq!(
            InputFormat::sniff("{\"id\": \"a\"}\n{\"id\": \"b\"}"),
            InputFormat::JsonLines
        );
        assert_eq!(
            InputFormat::sniff("{\"id\": \"a\"}"),
            InputFormat::JsonLines
        );
        assert_eq!(
            InputFormat::sniff("[[event]]\nid = \"a\""),
            InputFormat::Toml
        );
    }

    fn error_of(text: &str, format: InputFormat) -> String {
        match read_events(text, format, "f") {
            Err(e) => e.to_string(),
            Ok(events) => panic!("accepted: {events:?}"),
        }
    }

    #[test]
    fn errors_name_file_event_field_and_value() {
        let e =
            |body: &str| format!("[[event]]\nid = \"x\"\nat = \"2019\"\ntitle = \"t\"\n{body}\n");
        let cases = [
            (
                e("colour = \"red\""),
                "f: event #1 \"x\" (line 1): unknown field `colour`",
            ),
            (
                e("changes = [{ set = \"a.b\" }]"),
                "field `changes[0]`: set needs a value",
            ),
            (
                e("changes = [{ set = \"a.b\", add = \"a.c\", value = 1 }]"),
                "names both set and add",
            ),
            (e("changes = [{ value = 1 }]"), "names no operation"),
            (e("changes = [{ sett = \"a.b\" }]"), "unknown field `sett`"),
            (
                e("changes = [{ set = \"ab\", value = 1 }]"),
                "field `changes[0].set`: \"ab\" must be written entity.attribute",
            ),
            (
                e("changes = [{ unset = \"a.b\", value = 1 }]"),
                "unset takes no value",
            ),
            (
                e("changes = [{ remove = \"a.b\", value = 1, until = \"2020\" }]"),
                "remove takes no until",
            ),
            (
                e("changes = [{ set = \"a.b\", value = 1, until = \"2020-13\" }]"),
                "field `changes[0].until`: invalid date \"2020-13\"",
            ),
            (
                e("changes = [{ set = \"a.b\", value = { ref = \"x\", date = \"2020\" } }]"),
                "not several",
            ),
            (
                e("changes = [{ set = \"a.b\", value = { amount = 5 } }]"),
                "needs a `unit`",
            ),
            (
                e("changes = [{ set = \"a.b\", value = { colour = 5 } }]"),
                "unknown value field `colour`",
            ),
            (
                e("changes = [{ set = \"a.b\", value = [1] }]"),
                "invalid type: sequence",
            ),
            (
                e("sources = [{ published = \"2019-00\" }]"),
                "field `sources[0].published`: invalid date \"2019-00\"",
            ),
            (e("sources = [{ name = \"x\" }]"), "unknown field `name`"),
            (
                "[[event]]\nid = \"x\"\nat = \"2023-02-29\"\ntitle = \"t\"\n".to_string(),
                "field `at`: invalid date \"2023-02-29\"",
            ),
            (
                "[[event]]\nid = \"x\"\nat = 2019\ntitle = \"t\"\n".to_string(),
                "invalid type: integer `2019`",
            ),
            (
                "[[event]]\nid = \"x\"\ntitle = \"t\"\n".to_string(),
                "missing field `at`",
            ),
            (
                "[[event]]\nid = \"X\"\nat = \"2019\"\ntitle = \"t\"\n".to_string(),
                "field `id`: \"X\" must start",
            ),
            (
                "[[events]]\nid = \"x\"\n".to_string(),
                "unknown field `events`",
            ),
            ("[[event]\nid = \"x\"\n".to_string(), "f: line 1, column"),
        ];
        for (text, fragment) in cases {
            let message = error_of(&text, InputFormat::Toml);
            assert!(
                message.contains(fragment),
                "{fragment:?} not in {message:?}"
            );
            assert!(!message.contains('\n'), "multi-line: {message:?}");
        }
    }

    #[test]
    fn json_errors_name_the_event() {
        let message = error_of(
            r#"[{"id": "a", "at": "2019", "title": "t"}, {"id": "b", "at": "2019", "title": "t", "x": 1}]"#,
            InputFormat::Json,
        );
        assert!(
            message.starts_with("f: event #2 \"b\" (line 1): unknown field `x`"),
            "{message}"
        );
        let message = error_of(
            "{\"id\": \"a\", \"at\": \"2019\", \"title\": \"t\"}\n{\"id\": \"b\", \"at\": \"2019\"",
            InputFormat::JsonLines,
        );
        assert!(
            message.starts_with("f: event #2 (line 2): EOF while parsing"),
            "{message}"
        );
        let message = error_of("{\"id\": \"b\", \"at\": \"2019\"}", InputFormat::JsonLines);
        assert!(
            message.starts_with("f: event #1 \"b\" (line 1): missing field `title`"),
            "{message}"
        );
        let message = error_of("{\"event\": 3}", InputFormat::Json);
        assert!(message.contains("expected {\"event\": [...]}"), "{message}");
        let message = error_of(
            &format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)),
            InputFormat::Json,
        );
        assert!(
            message.contains("an event must be a JSON object"),
            "{message}"
        );
        let deep_tags = format!(
            r#"[{{"id": "a", "at": "2019", "title": "t", "tags": {}{}}}]"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let message = error_of(&deep_tags, InputFormat::Json);
        assert!(
            message.contains("field `tags[0]`: invalid type: sequence"),
            "{message}"
        );
    }

    #[test]
    fn type_errors_name_the_field() {
        let e =
            |body: &str| format!("[[event]]\nid = \"x\"\nat = \"2019\"\ntitle = \"t\"\n{body}\n");
        let cases = [
            (
                "[[event]]\nid = \"x\"\nat = \"2019\"\ntitle = 5\n".to_string(),
                "field `title`: invalid type: integer `5`, expected a string",
            ),
            (e("tags = \"x\""), "field `tags`: invalid type"),
            (
                e("changes = [{ set = \"a.b\", value = { ref = 5 } }]"),
                "field `changes[0].value",
            ),
            (
                e("changes = [{ set = \"a.b\", value = { date = \"2019-13\" } }]"),
                "field `changes[0].value`: invalid date \"2019-13\"",
            ),
            (
                e("sources = [{ url = 5 }]"),
                "field `sources[0].url`: invalid type",
            ),
            (
                e("changes = [{ set = \"a.b\", value = { ref = \"x\", ref = \"y\" } }]"),
                "duplicate key",
            ),
            (
                e(
                    "changes = [{ set = \"a.b\", value = { amount = 9007199254740993, unit = \"USD\" } }]",
                ),
                "too large to hold exactly",
            ),
            (
                e("changes = [{ set = \"a.b\", value = 2019-06-01T12:00:00 }]"),
                "invalid date",
            ),
        ];
        for (text, fragment) in cases {
            let message = error_of(&text, InputFormat::Toml);
            assert!(
                message.contains(fragment),
                "{fragment:?} not in {message:?}"
            );
        }
        let json = r#"[{"id": "x", "at": "2019", "title": "t", "changes": [{"set": "a.b", "value": {"ref": "o", "ref": "p"}}]}]"#;
        assert!(error_of(json, InputFormat::Json).contains("`ref` is given twice"));
        let line = r#"{"id": "x", "at": "2019", "title": "t", "tags": [1]}"#;
        assert!(
            error_of(line, InputFormat::JsonLines)
                .contains("field `tags[0]`: invalid type: integer `1`")
        );
    }

    #[test]
    fn unquoted_toml_dates_are_dates() {
        let text = "[[event]]\nid = \"x\"\nat = \"2019\"\ntitle = \"t\"\nchanges = [{ set = \"a.b\", value = 2019-06-01 }]\n";
        let events = toml_events(text).unwrap();
        assert_eq!(
            events[0].event.changes[0].op.value(),
            Some(&Value::Date(When::parse("2019-06-01").unwrap()))
        );
    }

    #[test]
    fn sniffing_handles_pretty_json_toml_tables_and_byte_order_marks() {
        assert_eq!(
            InputFormat::sniff("{\n  \"event\": []\n}"),
            InputFormat::Json
        );
        assert_eq!(InputFormat::sniff("{\n  \"id\": \"a\""), InputFormat::Json);
        assert_eq!(InputFormat::sniff("[event]\nid = 1"), InputFormat::Toml);
        assert_eq!(InputFormat::sniff("[\"a\"]"), InputFormat::Json);
        assert_eq!(
            InputFormat::sniff("\u{feff}[{\"id\": \"a\"}]"),
            InputFormat::Json
        );
        let bom = "\u{feff}[{\"id\": \"a\", \"at\": \"2019\", \"title\": \"t\"}]";
        assert_eq!(read_events(bom, InputFormat::Json, "f").unwrap().len(), 1);
    }

    #[test]
    fn non_utf8_bytes_are_refused() {
        let err =
            read_event_bytes(b"[[event]]\nid = \"\xff\"", InputFormat::Toml, "f").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f: the file is not UTF-8 text (invalid byte at offset 16)"
        );
    }

    /// Every event reaches the taker once, in order and in chunks, each
    /// prepared first; a failing taker stops the reading, and a bad line
    /// after good chunks is reported once those were taken.
    #[test]
    fn json_lines_in_background_take_every_chunk_in_order() {
        let text: String = (0..10).map(json_line_of).collect();
        let mut seen = Vec::new();
        read_json_lines_in_background::<_, Error>(text.as_bytes(), "f", 3, ids, |chunk| {
            seen.push(chunk.clone());
            Ok(())
        })
        .unwrap();
        let sizes: Vec<usize> = seen.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
        let all: Vec<String> = seen.concat();
        assert_eq!(all, (0..10).map(|i| format!("e{i}")).collect::<Vec<_>>());

        let mut calls = 0;
        let stopped =
            read_json_lines_in_background::<_, Error>(text.as_bytes(), "f", 3, ids, |_| {
                calls += 1;
                Err(Error::Usage("the taker gives up".into()))
            });
        assert_eq!(stopped.unwrap_err().to_string(), "the taker gives up");
        assert_eq!(calls, 1);

        let broken = format!(
            "{}not json\n{}",
            (0..7).map(json_line_of).collect::<String>(),
            json_line_of(8)
        );
        let mut taken = 0;
        let failed =
            read_json_lines_in_background::<_, Error>(broken.as_bytes(), "f", 3, ids, |chunk| {
                taken += chunk.len();
                Ok(())
            });
        let message = failed.unwrap_err().to_string();
        assert!(message.starts_with("f: event #8 (line 8)"), "{message}");
        assert_eq!(taken, 6);
    }

    /// A chunk that `take` refuses after others were taken is the error
    /// reported, and no chunk after it is taken.
    #[test]
    fn json_lines_in_background_stop_at_a_chunk_refused_later() {
        let text: String = (0..10).map(json_line_of).collect();
        let mut taken = Vec::new();
        let failed =
            read_json_lines_in_background::<_, Error>(text.as_bytes(), "f", 3, ids, |chunk| {
                match chunk[0].as_str() {
                    "e3" => Err(Error::Usage("the second chunk is refused".into())),
                    _ => {
                        taken.extend(chunk.iter().cloned());
                        Ok(())
                    }
                }
            });
        assert_eq!(
            failed.unwrap_err().to_string(),
            "the second chunk is refused"
        );
        assert_eq!(taken, ["e0", "e1", "e2"]);
    }

    fn json_line_of(i: usize) -> String {
        format!("{{\"id\": \"e{i}\", \"at\": \"2020\", \"title\": \"t\"}}\n")
    }

    fn ids(chunk: Validated) -> Vec<String> {
        chunk.iter().map(|l| l.event.id.to_string()).collect()
    }
}
