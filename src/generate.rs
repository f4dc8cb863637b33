//! A synthetic timeline for benchmarks and demos: deterministic for a seed.
//!
//! Events move forward through the years with a few appended out of date
//! order; dates are about 10% years, 20% months, 60% days and 10% instants;
//! changes set, unset, add and remove attributes of `M` entities, refer to
//! other entities, sometimes end with `until`, and a few events correct
//! earlier ones. Attribute names say their kind: single-valued ones are
//! `status`, `owner`, `rating`, `region`, `budget`; sets are `partners`,
//! `investors`, `labels`.

use crate::event::{Change, Event, Op, Source, Value};
use crate::when::When;

const SINGLE: [&str; 5] = ["status", "owner", "rating", "region", "budget"];
const SETS: [&str; 3] = ["partners", "investors", "labels"];
const STATUSES: [&str; 6] = [
    "planned", "active", "paused", "merged", "closed", "rumoured",
];
const REGIONS: [&str; 5] = ["emea", "americas", "apac", "global", "none"];

/// The shape of a generated timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub events: usize,
    pub entities: usize,
    /// Years covered, starting with 2000.
    pub years: u32,
    pub seed: u64,
}

/// The events of `plan`, in append order.
pub fn generate(plan: Plan) -> impl Iterator<Item = Event> {
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let span_days = i64::from(plan.years.max(1)) * 365;
    let first_day = When::parse("2000-01-01").expect("a valid date").start() / 86_400;
    // The members each set holds, so that removals remove something and
    // sets stay the size real ones are (a handful of members).
    let mut members: std::collections::HashMap<(usize, usize), Vec<usize>> =
        std::collections::HashMap::new();
    let entities = plan.entities.max(1);
    (0..plan.events).map(move |i| {
        // Time moves forward with the sequence; 5% of events are backdated.
        let progress = (i as i64 * span_days) / plan.events.max(1) as i64;
        let day = if rng.u8(0..100) < 5 {
            rng.i64(0..=progress)
        } else {
            (progress + rng.i64(0..3)).min(span_days - 1)
        };
        let at = date(&mut rng, first_day + day);
        let name = |n: usize| format!("e{n}");
        let subject = rng.usize(0..entities);
        let changes = (0..rng.usize(1..=3))
            .map(|_| {
                // Most changes concern the event's subject.
                let target = if rng.u8(0..10) < 8 {
                    subject
                } else {
                    rng.usize(0..entities)
                };
                let set_valued = rng.u8(0..10) < 4;
                let (attr, op) = if set_valued {
                    let a = rng.usize(0..SETS.len());
                    let held = members.entry((target, a)).or_default();
                    let op = if held.len() >= 2 && (held.len() >= 6 || rng.u8(0..10) < 4) {
                        let member = held.swap_remove(rng.usize(0..held.len()));
                        Op::Remove {
                            value: Value::Ref(name(member).into()),
                        }
                    } else {
                        let member = rng.usize(0..entities);
                        held.push(member);
                        Op::Add {
                            value: Value::Ref(name(member).into()),
                            until: until(&mut rng, at),
                        }
                    };
                    (SETS[a], op)
                } else {
                    let attr = SINGLE[rng.usize(0..SINGLE.len())];
                    let value = match attr {
                        "status" => Value::Text(STATUSES[rng.usize(0..STATUSES.len())].into()),
                        "owner" => Value::Ref(name(rng.usize(0..entities)).into()),
                        "rating" => Value::Int(rng.i64(1..=5)),
                        "region" => Value::Text(REGIONS[rng.usize(0..REGIONS.len())].into()),
                        _ => Value::Amount {
                            amount: (rng.u32(1..10_000) * 1000) as f64,
                            unit: "USD".into(),
                        },
                    };
                    let op = match rng.u8(0..10) {
                        0..=8 => Op::Set {
                            value,
                            until: until(&mut rng, at),
                        },
                        _ => Op::Unset,
                    };
                    (attr, op)
                };
                Change {
                    entity: name(target).into(),
                    attr: attr.into(),
                    op,
                }
            })
            .collect();
        // A few events correct an earlier one.
        let corrects = if i > 0 && rng.u16(0..1000) < 2 {
            vec![format!("ev{}", rng.usize(0..i))]
        } else {
            Vec::new()
        };
        Event {
            id: format!("ev{i}").into(),
            at,
            title: format!("Event {i} about {}", name(subject)),
            summary: None,
            tags: if rng.u8(0..10) == 0 {
                vec!["flagged".into()]
            } else {
                Vec::new()
            },
            sources: if rng.u8(0..20) == 0 {
                vec![Source {
                    publisher: Some("Generated".into()),
                    ..Source::default()
                }]
            } else {
                Vec::new()
            },
            corrects,
            changes,
        }
    })
}

/// A date on `day` (days since the epoch) at a random precision.
fn date(rng: &mut fastrand::Rng, day: i64) -> When {
    let when = When::day(
        chrono::DateTime::from_timestamp(day * 86_400, 0)
            .expect("in range")
            .date_naive(),
    );
    let text = match rng.u8(0..10) {
        0 => format!("{}", when.year()),
        1 | 2 => format!("{}-{:02}", when.year(), when.month().unwrap_or(1)),
        3..=8 => return when,
        _ => format!("{}T{:02}:{:02}:00Z", when, rng.u8(0..24), rng.u8(0..60)),
    };
    When::parse(&text).expect("a generated date is valid")
}

/// Sometimes an `until` a little after `at`.
fn until(rng: &mut fastrand::Rng, at: When) -> Option<When> {
    (rng.u8(0..20) == 0).then(|| {
        let year = at.year() + i32::from(rng.u8(0..4));
        When::parse(&format!("{year}")).expect("a valid year")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Located, Origin, validate_batch};

    fn plan(seed: u64) -> Plan {
        Plan {
            events: 2000,
            entities: 50,
            years: 10,
            seed,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_timeline() {
        let a: Vec<Event> = generate(plan(7)).collect();
        let b: Vec<Event> = generate(plan(7)).collect();
        let c: Vec<Event> = generate(plan(8)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 2000);
    }

    #[test]
    fn generated_events_are_valid_and_varied() {
        let events: Vec<Event> = generate(plan(1)).collect();
        let batch: Vec<Located> = events
            .iter()
            .map(|e| {
                Located::new(
                    e.clone(),
                    Origin {
                        file: "g".into(),
                        number: 0,
                        line: None,
                        id: None,
                    },
                )
            })
            .collect();
        assert_eq!(validate_batch(&batch, |_, _| None), Ok(()));
        let share = |f: &dyn Fn(&Event) -> bool| {
            events.iter().filter(|e| f(e)).count() * 100 / events.len()
        };
        use crate::when::Precision::*;
        let years = share(&|e| e.at.precision() == Year);
        let months = share(&|e| e.at.precision() == Month);
        let days = share(&|e| e.at.precision() == Day);
        let instants = share(&|e| e.at.precision() == Instant);
        assert!((5..=15).contains(&years), "{years}% years");
        assert!((14..=26).contains(&months), "{months}% months");
        assert!((50..=70).contains(&days), "{days}% days");
        assert!((5..=15).contains(&instants), "{instants}% instants");
        // About 5% appended out of date order: ended a month or more before
        // the latest start appended before them (some are backdated by
        // only days, and are not counted).
        let mut latest = i64::MIN;
        let backdated = events
            .iter()
            .filter(|e| {
                let back = e.at.end() + 30 * 86_400 < latest;
                latest = latest.max(e.at.start());
                back
            })
            .count();
        let backdated = backdated * 100 / events.len();
        assert!((3..=7).contains(&backdated), "{backdated}% backdated");
        let corrections = share(&|e| !e.corrects.is_empty());
        assert!(events.iter().any(|e| !e.corrects.is_empty()) && corrections < 1);
        // Every kind of change, references between entities, and `until`s.
        let changes: Vec<&Change> = events.iter().flat_map(|e| &e.changes).collect();
        let of = |f: &dyn Fn(&Change) -> bool| changes.iter().filter(|c| f(c)).count();
        assert!(of(&|c| matches!(c.op, Op::Set { .. })) > changes.len() / 4);
        assert!(of(&|c| matches!(c.op, Op::Add { .. })) > changes.len() / 10);
        assert!(of(&|c| matches!(c.op, Op::Remove { .. })) > changes.len() / 50);
        assert!(of(&|c| matches!(c.op, Op::Unset)) > changes.len() / 100);
        assert!(of(&|c| c.op.until().is_some()) > changes.len() / 50);
        let refers = |c: &Change| match &c.op {
            Op::Set { value, .. } | Op::Add { value, .. } => {
                matches!(value, crate::event::Value::Ref(r) if *r != c.entity)
            }
            _ => false,
        };
        assert!(of(&refers) > changes.len() / 10);
    }
}
