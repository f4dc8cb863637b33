//! What changed between two dates: [`diff`] compares two states fact by
//! fact and names the events behind every difference. Pure: the store
//! gathers the states and the events in between.

use rustc_hash::FxHashMap as HashMap;

use crate::event::{Event, Op, Value};
use crate::state::{Provenance, Slot, State};

/// How a fact differs between the two dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// The fact holds at the later date only.
    Added,
    /// The fact holds at the earlier date only.
    Removed,
    /// A single-valued attribute holds another value.
    Changed,
    /// Same value; only whether it is uncertain differs.
    Certainty,
}

impl ChangeKind {
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
            ChangeKind::Certainty => "certainty",
        }
    }
}

/// One difference between two states.
#[derive(Debug, Clone, PartialEq)]
pub struct FactChange {
    pub entity: String,
    pub attr: String,
    pub kind: ChangeKind,
    /// The value and provenance at the earlier date.
    pub before: Option<(Value, Provenance)>,
    /// The value and provenance at the later date.
    pub after: Option<(Value, Provenance)>,
    /// The events that caused it, in replay order.
    pub events: Vec<String>,
}

/// One side of a comparison: the value and its provenance, if the fact holds.
type Side<'a> = Option<(&'a Value, &'a Provenance)>;

/// Compares `before` with `after`, fact by fact, sorted by (entity,
/// attribute, value). `between` are the events that apply to `after` but
/// not to `before`, in replay order; a difference is caused by those among
/// them that change its attribute (its value, for a set), by the event
/// behind the new value, and, for a fact that ended with no such event, by
/// the event whose `until` ended it.
pub fn diff(before: &State, after: &State, between: &[&Event]) -> Vec<FactChange> {
    let mut diff = Diff::new(before, after);
    for event in between {
        diff.event(event);
    }
    diff.finish()
}

/// [`diff`], fed the events in between one at a time, so that they need
/// not be held: the differences are found first, and each event then adds
/// its id to those it touches.
pub struct Diff<'s> {
    changes: Vec<FactChange>,
    /// The differences of each attribute.
    by_attr: HashMap<(&'s str, &'s str), Differences<'s>>,
    /// For each difference, the number of the last event that named it
    /// (events are numbered from 1 as they are fed), so that an event that
    /// touches it twice is named once.
    named_by: Vec<usize>,
    fed: usize,
}

/// The differences of one attribute, as indexes into [`Diff`]'s changes.
#[derive(Default)]
struct Differences<'s> {
    /// Its value, if single-valued: any change to the attribute touches it.
    single: Option<usize>,
    /// Its members that differ, if a set, sorted by member: adding or
    /// removing a value touches only that member's difference.
    members: Vec<(&'s Value, usize)>,
}

impl<'s> Diff<'s> {
    pub fn new(before: &'s State, after: &'s State) -> Diff<'s> {
        let mut keys: Vec<(&str, &str)> = before.slots().map(|(e, a, _)| (e, a)).collect();
        keys.extend(after.slots().map(|(e, a, _)| (e, a)));
        keys.sort_unstable();
        keys.dedup();
        let mut diff = Diff {
            changes: Vec::new(),
            by_attr: HashMap::default(),
            named_by: Vec::new(),
            fed: 0,
        };
        for (entity, attr) in keys {
            let (old, new) = (before.get(entity, attr), after.get(entity, attr));
            let single = matches!(old, Some(Slot::One(..))) || matches!(new, Some(Slot::One(..)));
            let old_values = old.map(Slot::values).unwrap_or_default();
            let new_values = new.map(Slot::values).unwrap_or_default();
            let mut pairs: Vec<(Side<'s>, Side<'s>)> = Vec::new();
            if single {
                pairs.push((old_values.first().copied(), new_values.first().copied()));
            } else {
                let mut members: Vec<&Value> = old_values
                    .iter()
                    .chain(&new_values)
                    .map(|(v, _)| *v)
                    .collect();
                members.sort();
                members.dedup();
                for member in members {
                    pairs.push((
                        member_of(&old_values, member),
                        member_of(&new_values, member),
                    ));
                }
            }
            for (old, new) in pairs {
                let kind = match (old, new) {
                    (None, None) => continue,
                    (None, Some(_)) => ChangeKind::Added,
                    (Some(_), None) => ChangeKind::Removed,
                    (Some((a, pa)), Some((b, pb))) if a == b => {
                        if pa.uncertain == pb.uncertain {
                            continue;
                        }
                        ChangeKind::Certainty
                    }
                    (Some(_), Some(_)) => ChangeKind::Changed,
                };
                let index = diff.changes.len();
                let differences = diff.by_attr.entry((entity, attr)).or_default();
                match new.or(old) {
                    // Members come sorted, so they are pushed in order.
                    Some((member, _)) if !single => differences.members.push((member, index)),
                    _ => differences.single = Some(index),
                }
                diff.named_by.push(0);
                diff.changes.push(FactChange {
                    entity: entity.to_string(),
                    attr: attr.to_string(),
                    kind,
                    before: old.map(|(v, p)| (v.clone(), p.clone())),
                    after: new.map(|(v, p)| (v.clone(), p.clone())),
                    events: Vec::new(),
                });
            }
        }
        diff
    }

    /// The next event in between, in replay order.
    pub fn event(&mut self, event: &Event) {
        self.fed += 1;
        let Diff {
            changes,
            by_attr,
            named_by,
            fed,
        } = self;
        let mut name = |index: usize| {
            if named_by[index] != *fed {
                named_by[index] = *fed;
                changes[index].events.push(event.id.to_string());
            }
        };
        for change in &event.changes {
            let key = (change.entity.as_str(), change.attr.as_str());
            let Some(differences) = by_attr.get(&key) else {
                continue;
            };
            if let Some(index) = differences.single {
                name(index);
            }
            let members = &differences.members;
            match &change.op {
                Op::Add { value, .. } | Op::Remove { value } => {
                    if let Ok(at) = members.binary_search_by(|(member, _)| (*member).cmp(value)) {
                        name(members[at].1);
                    }
                }
                Op::Set { .. } | Op::Unset => members.iter().for_each(|&(_, index)| name(index)),
            }
        }
    }

    /// The differences, each with the events that caused it.
    pub fn finish(mut self) -> Vec<FactChange> {
        for change in &mut self.changes {
            if let Some((_, p)) = &change.after
                && !change.events.iter().any(|e| **e == *p.event)
            {
                change.events.push(p.event.to_string());
            }
            if change.events.is_empty()
                && let Some((_, p)) = &change.before
            {
                change.events.push(p.event.to_string());
            }
        }
        self.changes
    }
}

/// The entry of `values` for `member`.
fn member_of<'a>(values: &[(&'a Value, &'a Provenance)], member: &Value) -> Side<'a> {
    values.iter().find(|(v, _)| *v == member).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{AsOf, replay};
    use crate::testing::{add, event, r, set, w};

    fn kinds(changes: &[FactChange]) -> Vec<(String, &'static str, Vec<String>)> {
        changes
            .iter()
            .map(|c| {
                (
                    format!("{}.{}", c.entity, c.attr),
                    c.kind.name(),
                    c.events.clone(),
                )
            })
            .collect()
    }

    fn between<'a>(events: &'a [Event], from: &str, to: &str) -> Vec<&'a Event> {
        let (q1, q2) = (w(from).end(), w(to).end());
        events
            .iter()
            .filter(|e| e.at.start() >= q1 && e.at.start() < q2)
            .collect()
    }

    #[test]
    fn an_event_is_named_once_per_difference_however_often_it_touches_it() {
        let events = vec![
            event("a", "2019", &[("x.one", set(Value::Int(1)))]),
            event(
                "b",
                "2020",
                &[
                    ("x.one", set(Value::Int(2))),
                    ("x.set", add(r("p"))),
                    ("x.one", set(Value::Int(3))),
                    ("x.set", add(r("q"))),
                ],
            ),
            event("c", "2020-06", &[("x.set", add(r("q")))]),
        ];
        let s1 = replay(&events, AsOf::new(w("2019")));
        let s2 = replay(&events, AsOf::new(w("2021")));
        let changes = diff(&s1, &s2, &between(&events, "2019", "2021"));
        assert_eq!(
            kinds(&changes),
            [
                ("x.one".into(), "changed", vec!["b".into()]),
                ("x.set".into(), "added", vec!["b".into()]),
                ("x.set".into(), "added", vec!["b".into(), "c".into()]),
            ]
        );
    }

    #[test]
    fn added_removed_changed_and_certainty() {
        let events = vec![
            event(
                "y",
                "2019",
                &[("x.one", set(Value::Int(1))), ("x.set", add(r("a")))],
            ),
            event(
                "d",
                "2020-03",
                &[("x.one", set(Value::Int(2))), ("x.set", add(r("b")))],
            ),
            event(
                "e",
                "2020-04",
                &[
                    ("x.set", Op::Remove { value: r("a") }),
                    ("x.gone", set(Value::Int(3))),
                ],
            ),
            event("f", "2020-05", &[("x.gone", Op::Unset)]),
        ];
        let s1 = replay(&events, AsOf::new(w("2019-06")));
        let s2 = replay(&events, AsOf::new(w("2020")));
        let changes = diff(&s1, &s2, &between(&events, "2019-06", "2020"));
        assert_eq!(
            kinds(&changes),
            [
                ("x.one".into(), "changed", vec!["d".into()]),
                ("x.set".into(), "removed", vec!["e".into()]),
                ("x.set".into(), "added", vec!["d".into()]),
            ]
        );
        assert_eq!(changes[0].before.as_ref().unwrap().0, Value::Int(1));
        assert_eq!(changes[0].after.as_ref().unwrap().0, Value::Int(2));
        let s0 = replay(&events, AsOf::new(w("2019-01")));
        let s1 = replay(&events, AsOf::new(w("2019")));
        let changes = diff(&s0, &s1, &between(&events, "2019-01", "2019"));
        assert_eq!(
            kinds(&changes),
            [
                ("x.one".into(), "certainty", vec!["y".into()]),
                ("x.set".into(), "certainty", vec!["y".into()])
            ]
        );
        assert!(diff(&s1, &s1, &[]).is_empty());
    }

    #[test]
    fn a_fact_ended_by_until_names_the_event_that_set_it() {
        let events = vec![event(
            "e",
            "2020",
            &[(
                "x.v",
                Op::Set {
                    value: Value::Int(1),
                    until: Some(w("2021")),
                },
            )],
        )];
        let s1 = replay(&events, AsOf::new(w("2021")));
        let s2 = replay(&events, AsOf::new(w("2022")));
        let changes = diff(&s1, &s2, &[]);
        assert_eq!(
            kinds(&changes),
            [("x.v".into(), "removed", vec!["e".into()])]
        );
        assert!(changes[0].after.is_none());
    }
}
