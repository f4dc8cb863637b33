//! The JSON shapes of values and events, as DESIGN.md section 5 fixes them.
//!
//! An event is written with the field names of the authoring formats, so
//! that what chronik prints can be read back by `import`.

use serde_json::{Map, Value as Json, json};

use crate::event::{Event, Op, Value, format_amount};

/// A value in JSON: text as a string, numbers and bools as themselves,
/// `{"ref": ...}`, `{"date": ...}`, `{"amount": ..., "unit": ...}` (an
/// integral amount without a fraction).
pub fn value(v: &Value) -> Json {
    serde_json::to_value(ValueShape(v)).expect("a value always serialises")
}

/// A value, serialisable in its JSON shape (see [`value`]) without building
/// a JSON tree first.
pub struct ValueShape<'a>(pub &'a Value);

impl serde::Serialize for ValueShape<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let one = |serializer: S, key: &str, value: &str| {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(key, value)?;
            map.end()
        };
        match self.0 {
            Value::Text(s) => serializer.serialize_str(s),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Ref(id) => one(serializer, "ref", id),
            Value::Date(w) => one(serializer, "date", &w.to_string()),
            Value::Amount { amount, unit } => {
                let mut map = serializer.serialize_map(Some(2))?;
                match format_amount(*amount).parse::<i64>() {
                    Ok(integral) => map.serialize_entry("amount", &integral)?,
                    Err(_) => map.serialize_entry("amount", amount)?,
                }
                map.serialize_entry("unit", unit)?;
                map.end()
            }
        }
    }
}

/// An event in the authoring shape: `id`, `at`, `title`, then the optional
/// fields that are present, then `changes`.
pub fn event(e: &Event) -> Map<String, Json> {
    let mut out = Map::new();
    out.insert("id".into(), json!(e.id));
    out.insert("at".into(), json!(e.at.to_string()));
    out.insert("title".into(), json!(e.title));
    if let Some(summary) = &e.summary {
        out.insert("summary".into(), json!(summary));
    }
    out.insert("tags".into(), json!(e.tags));
    let sources: Vec<Json> = e
        .sources
        .iter()
        .map(|s| {
            let mut source = Map::new();
            let mut put = |key: &str, v: Option<String>| {
                if let Some(v) = v {
                    source.insert(key.into(), json!(v));
                }
            };
            put("title", s.title.clone());
            put("publisher", s.publisher.clone());
            put("url", s.url.clone());
            put("published", s.published.map(|p| p.to_string()));
            Json::Object(source)
        })
        .collect();
    out.insert("sources".into(), Json::Array(sources));
    if !e.corrects.is_empty() {
        out.insert("corrects".into(), json!(e.corrects));
    }
    let changes: Vec<Json> = e
        .changes
        .iter()
        .map(|c| {
            let mut change = Map::new();
            change.insert(c.op.keyword().into(), json!(c.target()));
            if let Some(v) = c.op.value() {
                change.insert("value".into(), value(v));
            }
            if let Op::Set { until: Some(u), .. } | Op::Add { until: Some(u), .. } = &c.op {
                change.insert("until".into(), json!(u.to_string()));
            }
            Json::Object(change)
        })
        .collect();
    out.insert("changes".into(), Json::Array(changes));
    out
}

/// One fact of a state, as `state --format json` prints it.
pub fn fact(f: &crate::state::Fact<'_>) -> Json {
    serde_json::to_value(FactShape(*f)).expect("a fact always serialises")
}

/// A fact, serialisable in its JSON shape (see [`fact`]) without building a
/// JSON tree first.
pub struct FactShape<'a>(pub crate::state::Fact<'a>);

impl serde::Serialize for FactShape<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let f = self.0;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("entity", f.entity)?;
        map.serialize_entry("attr", f.attr)?;
        map.serialize_entry("value", &ValueShape(f.value))?;
        map.serialize_entry("since", &Displayed(f.provenance.since))?;
        map.serialize_entry("event", &*f.provenance.event)?;
        map.serialize_entry("uncertain", &f.provenance.uncertain)?;
        map.end()
    }
}

/// A value serialised as the string it displays as, without allocating it.
struct Displayed<T>(T);

impl<T: std::fmt::Display> serde::Serialize for Displayed<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A state as `state --format json` prints it, serialised fact by fact as
/// it is written: a state of many facts never exists twice in memory.
pub struct StateDocument<'a> {
    pub at: String,
    pub known_at: Option<String>,
    pub strict: bool,
    pub state: &'a crate::state::State,
}

impl serde::Serialize for StateDocument<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Facts<'a>(&'a crate::state::State);
        impl serde::Serialize for Facts<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.facts().map(FactShape))
            }
        }
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("at", &self.at)?;
        map.serialize_entry("known_at", &self.known_at)?;
        map.serialize_entry("strict", &self.strict)?;
        map.serialize_entry("facts", &Facts(self.state))?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::input::{InputFormat, read_events};
    use crate::when::When;

    #[test]
    fn values_take_the_design_shapes() {
        let cases = [
            (Value::Text("White House".into()), r#""White House""#),
            (Value::Int(3), "3"),
            (Value::Float(2.5), "2.5"),
            (Value::Bool(true), "true"),
            (Value::Ref("oracle".into()), r#"{"ref":"oracle"}"#),
            (
                Value::Date(When::parse("2030").unwrap()),
                r#"{"date":"2030"}"#,
            ),
            (
                Value::Amount {
                    amount: 5e11,
                    unit: "USD".into(),
                },
                r#"{"amount":500000000000,"unit":"USD"}"#,
            ),
            (
                Value::Amount {
                    amount: 1.5,
                    unit: "GW".into(),
                },
                r#"{"amount":1.5,"unit":"GW"}"#,
            ),
        ];
        for (v, expected) in cases {
            assert_eq!(value(&v).to_string(), expected);
        }
    }

    #[test]
    fn events_written_as_json_read_back_the_same() {
        let text = r#"
[[event]]
id = "e"
at = "2024-06"
title = "T, with \"quotes\""
summary = "s"
tags = ["cloud"]
sources = [{ title = "t", url = "https://example.org", published = "2025-01-21" }]
changes = [
  { add = "openai.cloud_providers", value = { ref = "oracle" }, until = "2030" },
  { set = "x.f", value = 1.25 },
  { remove = "openai.cloud_providers", value = { ref = "ms" } },
  { unset = "x.g" },
]
"#;
        let original = read_events(text, InputFormat::Toml, "t").unwrap();
        let line = Json::Object(event(&original[0].event)).to_string();
        let back = read_events(&line, InputFormat::JsonLines, "j").unwrap();
        assert_eq!(back[0].event, original[0].event);
    }

    #[test]
    fn a_state_document_has_the_design_shape_in_its_order() {
        let events = [crate::testing::event(
            "a",
            "2019",
            &[(
                "openai.cloud_providers",
                crate::testing::add(crate::testing::r("oracle")),
            )],
        )];
        let state = crate::state::replay(
            &events,
            crate::state::AsOf::new(When::parse("2019-06").unwrap()),
        );
        let document = StateDocument {
            at: "2019-06".into(),
            known_at: None,
            strict: false,
            state: &state,
        };
        assert_eq!(
            serde_json::to_string(&document).unwrap(),
            r#"{"at":"2019-06","known_at":null,"strict":false,"facts":[{"entity":"openai","attr":"cloud_providers","value":{"ref":"oracle"},"since":"2019","event":"a","uncertain":true}]}"#
        );
    }
}
