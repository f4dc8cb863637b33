//! Builders shared by the unit tests.

use crate::event::{Change, Event, Op, Value, parse_target};
use crate::state::State;
use crate::when::When;

/// Parses a date that the test knows is valid.
pub fn w(s: &str) -> When {
    When::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// An event with a title and the given changes, written `("entity.attr", op)`.
pub fn event(id: &str, at: &str, changes: &[(&str, Op)]) -> Event {
    Event {
        id: id.into(),
        at: w(at),
        title: format!("title of {id}"),
        summary: None,
        tags: vec![],
        sources: vec![],
        corrects: vec![],
        changes: changes
            .iter()
            .map(|(target, op)| {
                let (entity, attr) = parse_target(target).unwrap();
                Change {
                    entity,
                    attr,
                    op: op.clone(),
                }
            })
            .collect(),
    }
}

pub fn set(value: Value) -> Op {
    Op::Set { value, until: None }
}

pub fn add(value: Value) -> Op {
    Op::Add { value, until: None }
}

pub fn r(id: &str) -> Value {
    Value::Ref(id.into())
}

/// (entity.attr, value, event, uncertain) of every fact, in order.
pub fn rows(state: &State) -> Vec<(String, String, String, bool)> {
    state
        .facts()
        .map(|f| {
            (
                format!("{}.{}", f.entity, f.attr),
                f.value.to_string(),
                f.provenance.event.to_string(),
                f.provenance.uncertain,
            )
        })
        .collect()
}

/// Timeline entries for `events`, as if they were records 1, 2, ... of a
/// store, none corrected.
pub fn entries(events: Vec<Event>) -> Vec<crate::store::TimelineEntry> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| crate::store::TimelineEntry {
            record: crate::store::Record {
                seq: i as u64 + 1,
                recorded_at: chrono::DateTime::UNIX_EPOCH,
                prev_hash: [0; 32],
                hash: [0; 32],
                event,
            },
            corrected_by: vec![],
        })
        .collect()
}
