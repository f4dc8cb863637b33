//! The store against a naive model.
//!
//! Random event sets (mixed precisions, set/unset/add/remove, `until`,
//! corrections) are appended in several batches in shuffled date order;
//! `state`, `diff` and `history` at random dates, strictness and known-at
//! positions must agree with a deliberately simple reference written here:
//! filter, sort, fold — no indexes, no heap, no shared code with the replay.
//!
//! 256 cases by default; set PROPTEST_CASES for more.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use chronik::diff::ChangeKind;
use chronik::history::HistoryOp;
use chronik::store::{IdPolicy, OpenMode, Store};
use chronik::{AsOf, Change, Event, KnownAt, Located, Op, Origin, Value, When};

const ENTITIES: [&str; 3] = ["a", "b", "c"];
/// The most events one case appends.
const MAX_EVENTS: usize = 12;
/// Attributes named `s*` are single-valued, `m*` are sets.
const ATTRS: [&str; 4] = ["s1", "s2", "m1", "m2"];

fn is_set(attr: &str) -> bool {
    attr.starts_with('m')
}

// ---------------------------------------------------------------- generators

fn when_in(years: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = When> {
    (years, 0..10u8, 1..=12u32, 1..=28u32, 0..24u32).prop_map(|(y, p, m, d, h)| {
        let text = match p {
            0..=2 => format!("{y:04}"),
            3..=5 => format!("{y:04}-{m:02}"),
            6..=8 => format!("{y:04}-{m:02}-{d:02}"),
            _ => format!("{y:04}-{m:02}-{d:02}T{h:02}:00:00Z"),
        };
        When::parse(&text).unwrap()
    })
}

/// Few values, so that events often meet the same fact.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0..2i64).prop_map(Value::Int),
        (0..2usize).prop_map(|i| Value::Ref(ENTITIES[i].into())),
    ]
}

/// (entity, attr, op) with an `until` that may end before the event (dropped later).
fn change() -> impl Strategy<Value = (usize, usize, bool, Value, Option<When>)> {
    // Changes touch entities a and b; c is only ever referenced.
    (
        0..2usize,
        0..4usize,
        any::<bool>(),
        value(),
        proptest::option::weighted(0.25, when_in(2019..=2022)),
    )
}

#[derive(Debug, Clone)]
struct Case {
    /// Events between two checkpoints (0: none).
    checkpoint_every: u64,
    /// Events in append order.
    events: Vec<Event>,
    /// Where each batch ends (exclusive), increasing, last = events.len().
    batch_ends: Vec<usize>,
    queries: Vec<Query>,
}

#[derive(Debug, Clone)]
struct Query {
    from: When,
    to: When,
    strict: bool,
    /// Known-at as a fraction of the head.
    known: f64,
    entity: usize,
    attr: Option<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    let event = (
        when_in(2019..=2021),
        proptest::collection::vec(change(), 0..4),
    );
    (
        proptest::collection::vec(event, 1..=MAX_EVENTS),
        proptest::collection::vec(
            proptest::option::weighted(0.2, any::<prop::sample::Index>()),
            MAX_EVENTS,
        ),
        proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
        proptest::collection::vec(
            (
                when_in(2018..=2023),
                when_in(2018..=2023),
                any::<bool>(),
                0.0..=1.0f64,
                0..3usize,
                proptest::option::of(0..4usize),
            ),
            6,
        ),
    )
        .prop_flat_map(|(specs, corrects, cuts, queries)| {
            let n = specs.len();
            let order: Vec<usize> = (0..n).collect();
            (
                Just((specs, corrects, cuts, queries)),
                Just(order).prop_shuffle(),
            )
        })
        .prop_map(|((specs, corrects, cuts, queries), order)| {
            let mut events: Vec<Event> = Vec::new();
            for (position, &i) in order.iter().enumerate() {
                let (at, changes) = &specs[i];
                let changes = changes
                    .iter()
                    .map(|(e, a, first_kind, v, until)| {
                        let attr = ATTRS[*a];
                        let until = until.filter(|u| u.end() > at.start());
                        let op = match (is_set(attr), first_kind) {
                            (false, true) => Op::Set {
                                value: v.clone(),
                                until,
                            },
                            (false, false) => Op::Unset,
                            (true, true) => Op::Add {
                                value: v.clone(),
                                until,
                            },
                            (true, false) => Op::Remove { value: v.clone() },
                        };
                        Change {
                            entity: ENTITIES[*e].into(),
                            attr: attr.into(),
                            op,
                        }
                    })
                    .collect();
                // Corrections point at an event appended before this one.
                // Corrections point at one or two events appended before this one.
                let corrects = match (position, corrects[position]) {
                    (p, Some(index)) if p > 0 => {
                        let first = index.index(p);
                        let mut targets = vec![events[first].id.to_string()];
                        if first + 1 < p && index.index(7) == 0 {
                            targets.push(events[first + 1].id.to_string());
                        }
                        targets
                    }
                    _ => vec![],
                };
                events.push(Event {
                    id: format!("e{i}").into(),
                    at: *at,
                    title: format!("event {i}"),
                    summary: None,
                    tags: vec![],
                    sources: vec![],
                    corrects,
                    changes,
                });
            }
            let n = events.len();
            let mut batch_ends: Vec<usize> = cuts.iter().map(|c| c.index(n) + 1).collect();
            batch_ends.push(n);
            batch_ends.sort();
            batch_ends.dedup();
            let queries = queries
                .into_iter()
                .map(|(a, b, strict, known, entity, attr)| {
                    let (from, to) = if a.end() <= b.end() { (a, b) } else { (b, a) };
                    Query {
                        from,
                        to,
                        strict,
                        known,
                        entity,
                        attr,
                    }
                })
                .collect();
            Case {
                checkpoint_every: (n % 4) as u64,
                events,
                batch_ends,
                queries,
            }
        })
}

// ---------------------------------------------------------------- the model

/// A fact of the model: (value, event, since, uncertain, until).
type ModelFact = (Value, String, When, bool, Option<When>);

/// The records known at `known`, minus every event a known record corrects,
/// sorted into replay order: a filter and a sort.
fn visible(log: &[(u64, Event)], known: u64) -> Vec<(u64, Event)> {
    let known_records: Vec<&(u64, Event)> = log.iter().filter(|(seq, _)| *seq <= known).collect();
    let corrected: BTreeSet<&str> = known_records
        .iter()
        .flat_map(|(_, e)| e.corrects.iter().map(String::as_str))
        .collect();
    let mut events: Vec<(u64, Event)> = known_records
        .into_iter()
        .filter(|(_, e)| !corrected.contains(e.id.as_str()))
        .cloned()
        .collect();
    events.sort_by_key(|(seq, e)| (e.at.start(), *seq));
    events
}

fn applied(event: &Event, q: i64, strict: bool) -> bool {
    event.at.start() < q && !(strict && event.at.end() > q)
}

/// Removes every fact whose `until` has ended by `t` (its end is at or before `t`).
fn expire(facts: &mut BTreeMap<(String, String), Vec<ModelFact>>, t: i64) {
    for values in facts.values_mut() {
        values.retain(|(.., until)| until.is_none_or(|u| u.end() > t));
    }
    facts.retain(|_, values| !values.is_empty());
}

fn model_state(
    log: &[(u64, Event)],
    known: u64,
    at: When,
    strict: bool,
) -> BTreeMap<(String, String), Vec<ModelFact>> {
    let q = at.end();
    let mut facts: BTreeMap<(String, String), Vec<ModelFact>> = BTreeMap::new();
    for (_, event) in visible(log, known) {
        if event.at.start() >= q {
            break;
        }
        expire(&mut facts, event.at.start());
        if !applied(&event, q, strict) {
            continue;
        }
        let uncertain = event.at.end() > q;
        for c in &event.changes {
            let values = facts
                .entry((c.entity.to_string(), c.attr.to_string()))
                .or_default();
            let fact =
                |v: &Value, until| (v.clone(), event.id.to_string(), event.at, uncertain, until);
            // An uncertain event leaves a certain fact of the same value alone,
            // and only casts doubt on what it unsets or removes.
            let certain_already =
                |values: &Vec<ModelFact>, v: &Value| values.iter().any(|f| f.0 == *v && !f.3);
            match &c.op {
                Op::Set { value, .. } | Op::Add { value, .. }
                    if uncertain && certain_already(values, value) => {}
                Op::Set { value, until } => *values = vec![fact(value, *until)],
                Op::Unset if uncertain => values.iter_mut().for_each(|f| f.3 = true),
                Op::Unset => values.clear(),
                Op::Add { value, until } => {
                    values.retain(|f| f.0 != *value);
                    values.push(fact(value, *until));
                }
                Op::Remove { value } if uncertain => values
                    .iter_mut()
                    .filter(|f| f.0 == *value)
                    .for_each(|f| f.3 = true),
                Op::Remove { value } => values.retain(|f| f.0 != *value),
            }
        }
        facts.retain(|_, values| !values.is_empty());
    }
    expire(&mut facts, q - 1);
    for values in facts.values_mut() {
        values.sort_by(|a, b| a.0.cmp(&b.0));
    }
    facts
}

type Row = (String, String, Value, String, When, bool);

fn model_rows(
    facts: &BTreeMap<(String, String), Vec<ModelFact>>,
    entity: Option<&str>,
) -> Vec<Row> {
    facts
        .iter()
        .filter(|((e, _), _)| entity.is_none_or(|want| want == e))
        .flat_map(|((e, a), values)| {
            values.iter().map(|(v, ev, since, u, _)| {
                (e.clone(), a.clone(), v.clone(), ev.clone(), *since, *u)
            })
        })
        .collect()
}

/// (entity, attr, kind, before, after, events) of the model's diff.
type DiffRow = (
    String,
    String,
    ChangeKind,
    Option<Value>,
    Option<Value>,
    Vec<String>,
);

fn model_diff(
    log: &[(u64, Event)],
    known: u64,
    from: When,
    to: When,
    strict: bool,
) -> Vec<DiffRow> {
    let before = model_state(log, known, from, strict);
    let after = model_state(log, known, to, strict);
    // What each question does with an event: 0 not applied, 1 uncertain, 2 certain.
    let effect = |e: &Event, q: i64| match (applied(e, q, strict), e.at.end() > q) {
        (false, _) => 0,
        (true, true) => 1,
        (true, false) => 2,
    };
    let between: Vec<Event> = visible(log, known)
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| effect(e, to.end()) > 0 && effect(e, to.end()) != effect(e, from.end()))
        .collect();
    let keys: BTreeSet<&(String, String)> = before.keys().chain(after.keys()).collect();
    let mut rows = Vec::new();
    for key in keys {
        let (entity, attr) = key;
        let old = before.get(key).cloned().unwrap_or_default();
        let new = after.get(key).cloned().unwrap_or_default();
        let mut pairs: Vec<(Option<ModelFact>, Option<ModelFact>)> = Vec::new();
        if is_set(attr) {
            let members: BTreeSet<Value> = old.iter().chain(&new).map(|f| f.0.clone()).collect();
            for m in members {
                pairs.push((
                    old.iter().find(|f| f.0 == m).cloned(),
                    new.iter().find(|f| f.0 == m).cloned(),
                ));
            }
        } else {
            pairs.push((old.first().cloned(), new.first().cloned()));
        }
        for (o, n) in pairs {
            let kind = match (&o, &n) {
                (None, None) => continue,
                (None, Some(_)) => ChangeKind::Added,
                (Some(_), None) => ChangeKind::Removed,
                (Some(a), Some(b)) if a.0 == b.0 && a.3 == b.3 => continue,
                (Some(a), Some(b)) if a.0 == b.0 => ChangeKind::Certainty,
                _ => ChangeKind::Changed,
            };
            let member = n.as_ref().or(o.as_ref()).map(|f| f.0.clone());
            let mut events: Vec<String> = between
                .iter()
                .filter(|e| {
                    e.changes.iter().any(|c| {
                        c.entity == entity
                            && c.attr == attr
                            && (!is_set(attr) || c.op.value() == member.as_ref())
                    })
                })
                .map(|e| e.id.to_string())
                .collect();
            if let Some(f) = &n
                && !events.contains(&f.1)
            {
                events.push(f.1.clone());
            }
            if events.is_empty()
                && let Some(f) = &o
            {
                events.push(f.1.clone());
            }
            rows.push((
                entity.clone(),
                attr.clone(),
                kind,
                o.map(|f| f.0),
                n.map(|f| f.0),
                events,
            ));
        }
    }
    rows
}

/// (seq, event, at, attr, op, value, until) of the model's history, or None
/// for an entity or attribute that no known record mentions.
type HistoryLine = (
    u64,
    String,
    When,
    String,
    HistoryOp,
    Option<Value>,
    Option<When>,
);

fn model_history(
    log: &[(u64, Event)],
    known: u64,
    entity: &str,
    attr: Option<&str>,
) -> Option<Vec<HistoryLine>> {
    let mentions = |e: &Event, a: Option<&str>| {
        e.changes
            .iter()
            .any(|c| c.entity == entity && a.is_none_or(|a| a == c.attr))
    };
    let known_records: Vec<&(u64, Event)> = log.iter().filter(|(seq, _)| *seq <= known).collect();
    if !known_records.iter().any(|(_, e)| mentions(e, None))
        || !known_records.iter().any(|(_, e)| mentions(e, attr))
    {
        return None;
    }
    let wanted = |a: &str| attr.is_none_or(|w| w == a);
    let events: Vec<(u64, Event)> = visible(log, known)
        .into_iter()
        .filter(|(_, e)| mentions(e, None))
        .collect();
    // What each attribute of the entity holds: (value, seq and id of the event, until).
    type Held = Vec<(Value, u64, String, Option<When>)>;
    let mut held: BTreeMap<String, Held> = BTreeMap::new();
    let mut lines = Vec::new();
    // Ends every held fact whose until ends at or before `t`, in order of
    // (end, attribute, value), as rows.
    let expire_through =
        |held: &mut BTreeMap<String, Held>, lines: &mut Vec<HistoryLine>, t: i64| {
            let mut ended: Vec<(i64, String, Value, u64, String, When)> = Vec::new();
            for (a, values) in held.iter_mut() {
                values.retain(|(v, seq, id, until)| match until {
                    Some(u) if u.end() <= t => {
                        ended.push((u.end(), a.clone(), v.clone(), *seq, id.clone(), *u));
                        false
                    }
                    _ => true,
                });
            }
            ended.sort_by(|x, y| (x.0, &x.1, &x.2).cmp(&(y.0, &y.1, &y.2)));
            for (end, a, v, seq, id, u) in ended {
                if wanted(&a) {
                    let at = When::from_parts(end, u.precision()).unwrap();
                    lines.push((seq, id, at, a, HistoryOp::Expire, Some(v), Some(u)));
                }
            }
        };
    for (seq, event) in &events {
        expire_through(&mut held, &mut lines, event.at.start());
        for c in event.changes.iter().filter(|c| c.entity == entity) {
            let values = held.entry(c.attr.to_string()).or_default();
            let fact =
                |v: &Value, until: &Option<When>| (v.clone(), *seq, event.id.to_string(), *until);
            let op = match &c.op {
                Op::Set { value, until } => {
                    *values = vec![fact(value, until)];
                    HistoryOp::Set
                }
                Op::Unset => {
                    values.clear();
                    HistoryOp::Unset
                }
                Op::Add { value, until } => {
                    values.retain(|f| f.0 != *value);
                    values.push(fact(value, until));
                    HistoryOp::Add
                }
                Op::Remove { value } => {
                    values.retain(|f| f.0 != *value);
                    HistoryOp::Remove
                }
            };
            if wanted(&c.attr) {
                lines.push((
                    *seq,
                    event.id.to_string(),
                    event.at,
                    c.attr.to_string(),
                    op,
                    c.op.value().cloned(),
                    c.op.until(),
                ));
            }
        }
    }
    // History looks to the end of the last year a date can name.
    let last = When::parse("9999").unwrap().end();
    expire_through(&mut held, &mut lines, last - 1);
    Some(lines)
}

// ---------------------------------------------------------------- the test

fn located(e: &Event) -> Located {
    Located::new(
        e.clone(),
        Origin {
            file: "model".into(),
            number: 1,
            line: None,
            id: Some(e.id.clone()),
        },
    )
}

/// When batch `b` is appended: an hour after the one before.
fn batch_time(b: usize) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::hours(b as i64)
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s"), OpenMode::CreateIfMissing).unwrap();
    // Checkpoints every few events, so that queries start from them.
    store.set_checkpoint_interval(case.checkpoint_every);
    // In half the cases, batches spill their entity index elements to runs
    // before they commit, as large ones do.
    if case.events.len().is_multiple_of(2) {
        store.set_entity_elements_budget(0);
    }
    let mut start = 0;
    // The seq of the last record of every batch.
    let mut batch_heads = Vec::new();
    for (b, &end) in case.batch_ends.iter().enumerate() {
        let batch: Vec<Located> = case.events[start..end].iter().map(located).collect();
        store
            .write(&batch, IdPolicy::RequireNew, None, batch_time(b))
            .unwrap();
        start = end;
        batch_heads.push(end as u64);
    }
    prop_assert!(store.verify().unwrap().is_ok(), "verify after the writes");
    let log: Vec<(u64, Event)> = case
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| (i as u64 + 1, e.clone()))
        .collect();
    let head = log.len() as u64;
    for q in &case.queries {
        // Known-at as a seq, or as a time between batches (or in one).
        let (known, known_at) = if q.known < 0.5 {
            let known = ((head as f64) * q.known * 2.0).round() as u64;
            (known, KnownAt::seq(known))
        } else {
            let b = ((q.known - 0.5) * 2.0 * batch_heads.len() as f64) as usize;
            let minutes = if q.known * 1000.0 % 2.0 < 1.0 { 0 } else { 30 };
            let t = batch_time(b.min(batch_heads.len())) + chrono::Duration::minutes(minutes)
                - chrono::Duration::hours(1);
            let known = batch_heads
                .iter()
                .enumerate()
                .filter(|(i, _)| batch_time(*i) <= t)
                .map(|(_, h)| *h)
                .max()
                .unwrap_or(0);
            (known, KnownAt::parse(&t.to_rfc3339()).unwrap())
        };
        let snapshot = store.snapshot(Some(&known_at)).unwrap();
        prop_assert_eq!(snapshot.head(), known, "known-at {}", known_at);
        let entity = ENTITIES[q.entity];

        for at in [q.from, q.to] {
            let query = AsOf {
                at,
                strict: q.strict,
            };
            let model = model_state(&log, known, at, q.strict);
            let state = snapshot.state(query, &[]).unwrap();
            let rows: Vec<Row> = state
                .facts()
                .map(|f| {
                    let p = f.provenance;
                    (
                        f.entity.to_string(),
                        f.attr.to_string(),
                        f.value.clone(),
                        p.event.to_string(),
                        p.since,
                        p.uncertain,
                    )
                })
                .collect();
            prop_assert_eq!(
                &rows,
                &model_rows(&model, None),
                "state at {} strict {} known #{}",
                at,
                q.strict,
                known
            );
            let scoped = snapshot.state(query, &[entity.to_string()]).unwrap();
            let scoped_rows: Vec<Row> = rows.iter().filter(|r| r.0 == entity).cloned().collect();
            prop_assert_eq!(
                scoped.facts().count(),
                scoped_rows.len(),
                "entity state of {}",
                entity
            );
            prop_assert_eq!(scoped, {
                let mut s = state.clone();
                s.retain_entities(&[entity.to_string()]);
                s
            });
        }

        let from = AsOf {
            at: q.from,
            strict: q.strict,
        };
        let to = AsOf {
            at: q.to,
            strict: q.strict,
        };
        let diff: Vec<DiffRow> = snapshot
            .diff(from, to, &[])
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.entity,
                    c.attr,
                    c.kind,
                    c.before.map(|b| b.0),
                    c.after.map(|a| a.0),
                    c.events,
                )
            })
            .collect();
        prop_assert_eq!(
            &diff,
            &model_diff(&log, known, q.from, q.to, q.strict),
            "diff {} to {}",
            q.from,
            q.to
        );

        let scoped: Vec<DiffRow> = snapshot
            .diff(from, to, &[entity.to_string()])
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.entity,
                    c.attr,
                    c.kind,
                    c.before.map(|b| b.0),
                    c.after.map(|a| a.0),
                    c.events,
                )
            })
            .collect();
        let model_scoped: Vec<DiffRow> = model_diff(&log, known, q.from, q.to, q.strict)
            .into_iter()
            .filter(|row| row.0 == entity)
            .collect();
        prop_assert_eq!(
            &scoped,
            &model_scoped,
            "diff of {} from {} to {}",
            entity,
            q.from,
            q.to
        );

        let attr = q.attr.map(|a| ATTRS[a]);
        let history = snapshot.history(entity, attr);
        if let Err(e) = &history {
            prop_assert_eq!(e.kind(), chronik::ErrorKind::Invalid, "{}", e);
        }
        let history = history.ok().map(|rows| {
            rows.into_iter()
                .map(|r| (r.seq, r.event, r.at, r.attr, r.op, r.value, r.until))
                .collect::<Vec<HistoryLine>>()
        });
        prop_assert_eq!(
            history,
            model_history(&log, known, entity, attr),
            "history of {} {:?}",
            entity,
            attr
        );
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_store_agrees_with_the_naive_model(case in case()) {
        check(&case)?;
    }
}
