//! iCalendar export (RFC 5545): one VEVENT per event. The UID is the event
//! id, so a calendar that subscribes to the export updates events instead
//! of duplicating them. Year, month and day dates are all-day events whose
//! DTSTART and (exclusive) DTEND cover the whole interval: "2019" runs from
//! 1 January 2019 to 1 January 2020. An instant is a DTSTART with its time.
//! DTSTAMP is the record's `recorded_at` (the library never reads the
//! clock). Lines end in CRLF and are folded at 75 octets without splitting
//! a character.
//!
//! Written here rather than with a calendar crate: chronik writes one shape
//! of event, needs exact control of the all-day intervals, and must not
//! stamp the clock's time into an export.

use std::io::Write;

use chrono::{DateTime, Datelike, Utc};

use crate::store::TimelineEntry;
use crate::when::{Precision, When};

const MAX_OCTETS: usize = 75;

/// Escapes a TEXT value (RFC 5545 section 3.3.11).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Writes one content line, folded (RFC 5545 section 3.1): no physical line
/// longer than 75 octets, continuation lines starting with a space, never
/// inside a UTF-8 sequence.
fn line(out: &mut dyn Write, content: &str) -> std::io::Result<()> {
    let mut rest = content;
    let mut limit = MAX_OCTETS;
    loop {
        if rest.len() <= limit {
            out.write_all(rest.as_bytes())?;
            return out.write_all(b"\r\n");
        }
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.write_all(&rest.as_bytes()[..cut])?;
        out.write_all(b"\r\n ")?;
        rest = &rest[cut..];
        // The leading space counts towards the continuation line's octets.
        limit = MAX_OCTETS - 1;
    }
}

fn date(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d").to_string()
}

fn date_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// DTSTART and DTEND of a date. A date that ends after 9999 (DTEND cannot
/// be written then) gets its length as a DURATION instead.
fn interval(at: When) -> Vec<String> {
    if at.precision() == Precision::Instant {
        return vec![format!("DTSTART:{}", date_time(at.start_utc()))];
    }
    let start = format!("DTSTART;VALUE=DATE:{}", date(at.start_utc()));
    let end = match DateTime::from_timestamp(at.end(), 0) {
        Some(end) if end.year() <= 9999 => format!("DTEND;VALUE=DATE:{}", date(end)),
        _ => format!("DURATION:P{}D", (at.end() - at.start()) / 86_400),
    };
    vec![start, end]
}

/// A calendar named `title` of `entries`, written as they come: an export
/// of any size in the memory of one event.
pub fn write_events(
    title: &str,
    entries: impl IntoIterator<Item = TimelineEntry>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    line(out, "BEGIN:VCALENDAR")?;
    line(out, "VERSION:2.0")?;
    line(
        out,
        &format!(
            "PRODID:-//chronik//chronik {}//EN",
            env!("CARGO_PKG_VERSION")
        ),
    )?;
    line(out, "CALSCALE:GREGORIAN")?;
    // NAME is RFC 7986's; X-WR-CALNAME is what older calendar apps read.
    line(out, &format!("NAME:{}", escape(title)))?;
    line(out, &format!("X-WR-CALNAME:{}", escape(title)))?;
    for entry in entries {
        let event = &entry.record.event;
        line(out, "BEGIN:VEVENT")?;
        line(out, &format!("UID:{}", event.id))?;
        line(
            out,
            &format!("DTSTAMP:{}", date_time(entry.record.recorded_at)),
        )?;
        for property in interval(event.at) {
            line(out, &property)?;
        }
        line(out, &format!("SUMMARY:{}", escape(&event.title)))?;
        let mut description = Vec::new();
        if event.at.precision() < Precision::Day {
            description.push(format!("Date: {} (only this is known)", event.at.human()));
        }
        if let Some(summary) = &event.summary {
            description.push(summary.clone());
        }
        if !event.changes.is_empty() {
            description.push("Changes:".into());
            description.extend(event.changes.iter().map(|c| format!("- {c}")));
        }
        if !event.sources.is_empty() {
            description.push("Sources:".into());
            description.extend(
                event
                    .sources
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("[{}] {s}", i + 1)),
            );
        }
        if !description.is_empty() {
            line(
                out,
                &format!("DESCRIPTION:{}", escape(&description.join("\n"))),
            )?;
        }
        if !event.tags.is_empty() {
            let tags: Vec<String> = event.tags.iter().map(|t| escape(t)).collect();
            line(out, &format!("CATEGORIES:{}", tags.join(",")))?;
        }
        // Validation keeps line breaks out of URLs; a URL is not TEXT and
        // cannot be escaped, so one that slipped through is left out.
        if let Some(url) = event
            .sources
            .iter()
            .filter_map(|s| s.url.as_ref())
            .find(|url| !url.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            line(out, &format!("URL:{url}"))?;
        }
        line(out, "END:VEVENT")?;
    }
    line(out, "END:VCALENDAR")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, entries};

    #[test]
    fn long_lines_fold_at_75_octets_between_characters() {
        let content = format!("SUMMARY:{}", "é".repeat(100));
        let mut out = Vec::new();
        line(&mut out, &content).unwrap();
        let text = String::from_utf8(out).expect("folding never splits a character");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines.last(), Some(&""));
        for physical in &lines {
            assert!(
                physical.len() <= 75,
                "{} octets: {physical:?}",
                physical.len()
            );
        }
        assert!(lines[1..lines.len() - 1].iter().all(|l| l.starts_with(' ')));
        assert_eq!(text.replace("\r\n ", "").trim_end(), content);
    }

    #[test]
    fn coarse_dates_are_all_day_events_over_their_whole_interval() {
        let at = |s: &str| interval(testing::w(s));
        assert_eq!(
            at("2019"),
            ["DTSTART;VALUE=DATE:20190101", "DTEND;VALUE=DATE:20200101"]
        );
        assert_eq!(
            at("2024-06"),
            ["DTSTART;VALUE=DATE:20240601", "DTEND;VALUE=DATE:20240701"]
        );
        assert_eq!(
            at("2024-02-29"),
            ["DTSTART;VALUE=DATE:20240229", "DTEND;VALUE=DATE:20240301"]
        );
        assert_eq!(at("2025-01-21T15:30:00Z"), ["DTSTART:20250121T153000Z"]);
        assert_eq!(
            at("9999"),
            ["DTSTART;VALUE=DATE:99990101", "DURATION:P365D"]
        );
        assert_eq!(
            at("9999-12"),
            ["DTSTART;VALUE=DATE:99991201", "DURATION:P31D"]
        );
        assert_eq!(
            at("9999-12-30"),
            ["DTSTART;VALUE=DATE:99991230", "DTEND;VALUE=DATE:99991231"]
        );
    }

    #[test]
    fn text_is_escaped_and_lines_end_in_crlf() {
        let mut e = testing::event("a", "2019", &[]);
        e.title = "One, two; three\\four".into();
        let mut out = Vec::new();
        write_events("T", entries(vec![e]), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\r\nSUMMARY:One\\, two\\; three\\\\four\r\n"),
            "{text}"
        );
        assert!(!text.replace("\r\n", "").contains('\n'));
    }
}
