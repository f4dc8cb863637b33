//! The lossless JSON Lines export: one record per line, in append order,
//! `{"seq", "recorded_at", "hash", "prev_hash", "event"}`, with the event in
//! the authoring shape. `import` reads it back: onto a store whose head is
//! just below the first record, the records are restored exactly (same seq,
//! time and hash); otherwise their events are imported like any others.

use std::io::{self, Write};

use chrono::SecondsFormat;
use serde_json::{Map, Value as Json, json};

use super::json;
use crate::store::Record;
use crate::store::record::hash_to_hex;

/// One record as a JSON object.
pub fn record(r: &Record) -> Json {
    let mut line = Map::new();
    line.insert("seq".into(), json!(r.seq));
    line.insert(
        "recorded_at".into(),
        json!(r.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true)),
    );
    line.insert("hash".into(), json!(hash_to_hex(&r.hash)));
    line.insert("prev_hash".into(), json!(hash_to_hex(&r.prev_hash)));
    line.insert("event".into(), Json::Object(json::event(&r.event)));
    Json::Object(line)
}

/// Writes one line per record.
pub fn write<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    out: &mut dyn Write,
) -> io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut *out, &record(r))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
