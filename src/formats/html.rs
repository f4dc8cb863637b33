//! HTML export: one self-contained page (all CSS, JavaScript and data
//! inline; no network access, works from `file://`). It draws the timeline
//! as an SVG, one lane per entity, each event a mark as wide as its date is
//! vague, and has a date slider that shows the state at each event date,
//! with provenance, uncertain facts marked and the facts that changed at
//! that date highlighted.
//!
//! The states are chronik's own, computed by replay for each date the
//! slider stops at ([`Export::steps`]); the page only adds and removes the
//! facts each step changes, so it never re-implements the date rules.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value as Json, json};

use super::export::{Export, escape_html};
use super::json;
use crate::state::State;

const TEMPLATE: &str = include_str!("html/page.html");
const CSS: &str = include_str!("html/page.css");
const JS: &str = include_str!("html/page.js");

/// The facts of a state, keyed by (entity, attribute, value).
fn facts(state: &State) -> BTreeMap<String, Json> {
    state
        .facts()
        .map(|f| {
            let value = json::value(f.value);
            let key = format!("{}\u{0}{}\u{0}{value}", f.entity, f.attr);
            let fact = json!({
                "key": key,
                "entity": f.entity,
                "attr": f.attr,
                "value": f.value.to_string(),
                "value_json": value,
                "since": f.provenance.since.to_string(),
                "event": &*f.provenance.event,
                "uncertain": f.provenance.uncertain,
            });
            (key, fact)
        })
        .collect()
}

/// The page's data: the events, and each step as the facts it adds (new,
/// or with new provenance) and the keys it removes.
pub fn data(export: &Export) -> Json {
    let dates = export.step_dates();
    let mut steps = Vec::new();
    let mut before = BTreeMap::new();
    for step in &export.steps {
        let now = facts(&step.state);
        let removed: Vec<&String> = before.keys().filter(|k| !now.contains_key(*k)).collect();
        let added: Vec<&Json> = now
            .iter()
            .filter(|(k, fact)| before.get(*k) != Some(*fact))
            .map(|(_, fact)| fact)
            .collect();
        steps.push(json!({
            "at": step.at.to_string(),
            "human": step.at.human(),
            "end": step.at.end(),
            "added": added,
            "removed": removed,
        }));
        before = now;
    }
    let events: Vec<Json> = export
        .events()
        .map(|e| {
            let mut entities: Vec<&str> = Vec::new();
            for change in &e.changes {
                if !entities.contains(&change.entity.as_str()) {
                    entities.push(&change.entity);
                }
            }
            json!({
                "id": e.id,
                "at": e.at.to_string(),
                "human": e.at.human(),
                "start": e.at.start(),
                "end": e.at.end(),
                "precision": e.at.precision().name(),
                "title": e.title,
                "entities": entities,
                "step": Export::step_of(&dates, e.at),
            })
        })
        .collect();
    json!({
        "title": export.title,
        "known_at": export.known_at,
        "events": events,
        "steps": steps,
    })
}

/// Fills the template's `{{NAME}}` placeholders in one pass, so that text
/// put in never has its own braces read as placeholders.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}").and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (close, v))
        }) {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn write(export: &Export, out: &mut dyn Write) -> std::io::Result<()> {
    // Inside <script>, "</script" ends the element and "<!--" changes how
    // the parser looks for the end: no <, > or & may appear as such. They
    // can only be inside JSON strings, where \u escapes mean the same.
    let data = serde_json::to_string(&data(export))?
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let title = escape_html(&export.title);
    let page = fill(
        TEMPLATE,
        &[("TITLE", &title), ("CSS", CSS), ("JS", JS), ("DATA", &data)],
    );
    out.write_all(page.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;
    use crate::formats::export::StateAt;
    use crate::state::{AsOf, replay};
    use crate::testing::{self, entries, r, set};

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(
            fill("<{{A}}|{{B}}|{{C}}>", &[("A", "{{B}}"), ("B", "b")]),
            "<{{B}}|b|{{C}}>"
        );
    }

    #[test]
    fn steps_carry_only_what_changed() {
        let events = vec![
            testing::event("a", "2019", &[("x.v", set(Value::Int(1)))]),
            testing::event(
                "b",
                "2020-05",
                &[("x.v", set(Value::Int(2))), ("x.r", set(r("y")))],
            ),
        ];
        let mut export = Export::new("T", entries(events.clone()));
        export.steps = export
            .step_dates()
            .into_iter()
            .map(|at| StateAt {
                at,
                state: replay(&events, AsOf::new(at)),
            })
            .collect();
        let data = data(&export);
        let steps = data["steps"].as_array().unwrap();
        let at: Vec<&str> = steps.iter().map(|s| s["at"].as_str().unwrap()).collect();
        assert_eq!(at, ["2019-01-01", "2019", "2020-05-01", "2020-05"]);
        // On 1 January 2019 the "2019" event may not have happened yet; by
        // its end it has: the fact is the same, its certainty is new.
        assert_eq!(steps[0]["added"][0]["uncertain"], true);
        assert_eq!(steps[1]["added"][0]["uncertain"], false);
        assert_eq!(steps[1]["removed"], json!([]));
        assert_eq!(steps[2]["removed"], json!(["x\u{0}v\u{0}1"]));
        let added: Vec<&str> = steps[2]["added"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["attr"].as_str().unwrap())
            .collect();
        assert_eq!(added, ["r", "v"]);
        assert_eq!(data["events"][0]["step"], 1);
        assert_eq!(data["events"][1]["step"], 3);
    }

    #[test]
    fn data_cannot_close_the_script_element() {
        let mut e = testing::event("a", "2019", &[]);
        e.title = "</script><script>alert(1)</script> <!--<script> & more".into();
        let mut out = Vec::new();
        write(&Export::new("T", entries(vec![e.clone()])), &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert_eq!(page.matches("</script>").count(), 2, "only the page's own");
        assert!(!page.contains("<!--"));
        let start = page.find("id=\"chronik-data\">").unwrap() + "id=\"chronik-data\">".len();
        let end = start + page[start..].find("</script>").unwrap();
        let data: Json = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(data["events"][0]["title"], e.title.as_str());
    }
}
