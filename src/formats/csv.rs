//! CSV export (RFC 4180, CRLF line ends): one row per change, with the
//! event's columns repeated; an event without changes (a withdrawal) is one
//! row with the change columns empty.

use std::io::Write;

use crate::store::TimelineEntry;

/// The header row.
pub const COLUMNS: [&str; 12] = [
    "seq",
    "id",
    "at",
    "precision",
    "title",
    "entity",
    "attr",
    "op",
    "value",
    "until",
    "tags",
    "sources",
];

/// The rows of `entries`, written as they come: an export of any size
/// in the memory of one event.
pub fn write_events(
    entries: impl IntoIterator<Item = TimelineEntry>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut csv = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(out);
    csv.write_record(COLUMNS)?;
    for entry in entries {
        let event = &entry.record.event;
        let seq = entry.record.seq.to_string();
        let at = event.at.to_string();
        let tags = event.tags.join("; ");
        let sources = event
            .sources
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let mut row = |change: [String; 5]| {
            let [entity, attr, op, value, until] = change;
            csv.write_record([
                seq.as_str(),
                &event.id,
                &at,
                event.at.precision().name(),
                &event.title,
                &entity,
                &attr,
                &op,
                &value,
                &until,
                &tags,
                &sources,
            ])
        };
        if event.changes.is_empty() {
            row(Default::default())?;
        }
        for change in &event.changes {
            row([
                change.entity.to_string(),
                change.attr.to_string(),
                change.op.keyword().to_string(),
                change
                    .op
                    .value()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                change.op.until().map(|u| u.to_string()).unwrap_or_default(),
            ])?;
        }
    }
    csv.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;
    use crate::testing::{self, entries};

    #[test]
    fn quotes_what_needs_quoting_and_ends_rows_with_crlf() {
        let mut e = testing::event(
            "a",
            "2024-06",
            &[("x.name", testing::set(Value::Text("say \"hi\"".into())))],
        );
        e.title = "Commas, \"quotes\"\nand lines".into();
        let mut out = Vec::new();
        write_events(entries(vec![e]), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "seq,id,at,precision,title,entity,attr,op,value,until,tags,sources\r\n"
            )
        );
        assert!(text.contains(
            "1,a,2024-06,month,\"Commas, \"\"quotes\"\"\nand lines\",x,name,set,\"say \"\"hi\"\"\",,,\r\n"
        ), "{text:?}");
    }

    #[test]
    fn an_event_without_changes_is_one_row() {
        let mut out = Vec::new();
        write_events(entries(vec![testing::event("gone", "2019", &[])]), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.ends_with("1,gone,2019,year,title of gone,,,,,,,\r\n"),
            "{text:?}"
        );
    }
}
