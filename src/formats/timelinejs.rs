//! TimelineJS3 export: the JSON that `new TL.Timeline(element, data)`
//! reads. A date is filled only as far as it is known (`{"year"}`,
//! `{"year", "month"}`, ...); coarse dates also get a `display_date` such as
//! "2019" or "June 2024", so that TimelineJS does not print "1 January 2019".

use std::io::Write;

use serde_json::{Value as Json, json};

use super::export::{Citations, Export, escape_html};
use crate::event::Event;
use crate::when::{Precision, When};

fn date(at: When) -> Json {
    let t = at.start_utc();
    let mut date = json!({ "year": at.year() });
    if let Some(month) = at.month() {
        date["month"] = json!(month);
    }
    if let Some(day) = at.day_of_month() {
        date["day"] = json!(day);
    }
    if at.precision() == Precision::Instant {
        use chrono::Timelike;
        date["hour"] = json!(t.hour());
        date["minute"] = json!(t.minute());
        date["second"] = json!(t.second());
    }
    date
}

/// The slide text: summary, changes and citations, as HTML.
fn text(event: &Event, sources: &[usize], citations: &Citations<'_>) -> String {
    let mut html = String::new();
    if let Some(summary) = &event.summary {
        html += &format!("<p>{}</p>", escape_html(summary));
    }
    if !event.changes.is_empty() {
        html += "<ul>";
        for change in &event.changes {
            html += &format!("<li>{}</li>", escape_html(&change.to_string()));
        }
        html += "</ul>";
    }
    for &n in sources {
        let source = citations.sources[n - 1];
        let cite = escape_html(&source.to_string());
        html += &match &source.url {
            Some(url) => format!(
                "<p class=\"source\">[{n}] <a href=\"{}\">{cite}</a></p>",
                escape_html(url)
            ),
            None => format!("<p class=\"source\">[{n}] {cite}</p>"),
        };
    }
    html
}

/// The TimelineJS document.
pub fn document(export: &Export) -> Json {
    let citations = export.citations();
    let events: Vec<Json> = export
        .events()
        .zip(&citations.by_event)
        .map(|(event, sources)| {
            let mut slide = json!({
                "unique_id": event.id,
                "start_date": date(event.at),
                "text": {
                    "headline": escape_html(&event.title),
                    "text": text(event, sources, &citations),
                },
            });
            if event.at.precision() < Precision::Day {
                slide["display_date"] = json!(event.at.human());
            }
            if let Some(tag) = event.tags.first() {
                slide["group"] = json!(tag);
            }
            slide
        })
        .collect();
    json!({
        "title": { "text": { "headline": escape_html(&export.title), "text": "" } },
        "events": events,
    })
}

pub fn write(export: &Export, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(export))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, entries};

    #[test]
    fn dates_are_filled_only_as_far_as_they_are_known() {
        let export = Export::new(
            "T",
            entries(vec![
                testing::event("y", "2019", &[]),
                testing::event("m", "2024-06", &[]),
                testing::event("d", "2025-01-21", &[]),
                testing::event("i", "2025-01-21T15:30:05Z", &[]),
            ]),
        );
        let doc = document(&export);
        let events = doc["events"].as_array().unwrap();
        assert_eq!(events[0]["start_date"], json!({"year": 2019}));
        assert_eq!(events[0]["display_date"], "2019");
        assert_eq!(events[1]["start_date"], json!({"year": 2024, "month": 6}));
        assert_eq!(events[1]["display_date"], "June 2024");
        assert_eq!(
            events[2]["start_date"],
            json!({"year": 2025, "month": 1, "day": 21})
        );
        assert!(events[2].get("display_date").is_none());
        assert_eq!(
            events[3]["start_date"],
            json!({"year": 2025, "month": 1, "day": 21, "hour": 15, "minute": 30, "second": 5})
        );
    }
}
