//! How an entity changed: every change to it in replay order, with the
//! facts that `until` ended as rows of their own. Pure: the store gathers
//! the entity's events.

use crate::event::{Event, Op, Value};
use crate::state::{AsOf, Fed, Replay};
use crate::when::{MAX_YEAR, When};

/// What a history row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryOp {
    Set,
    Unset,
    Add,
    Remove,
    /// An `until` ended the fact.
    Expire,
}

impl HistoryOp {
    pub fn name(self) -> &'static str {
        match self {
            HistoryOp::Set => "set",
            HistoryOp::Unset => "unset",
            HistoryOp::Add => "add",
            HistoryOp::Remove => "remove",
            HistoryOp::Expire => "expire",
        }
    }
}

/// One change to one attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The event's seq; for an expiry, the seq of the event whose `until` ended the fact.
    pub seq: u64,
    /// The event's id; for an expiry, the event whose `until` ended the fact.
    pub event: String,
    /// The event's date; for an expiry, the first moment the fact is gone,
    /// at the precision of its `until` (`until = "2030"` expires at `2031`).
    pub at: When,
    pub attr: String,
    pub op: HistoryOp,
    pub value: Option<Value>,
    pub until: Option<When>,
}

/// The history of `entity` (only `attr`, if given) from `records`, the
/// (seq, event) pairs that change it, in replay order.
pub fn history<'a>(
    entity: &str,
    attr: Option<&str>,
    records: impl IntoIterator<Item = (u64, &'a Event)>,
) -> Vec<HistoryRow> {
    let last_year = When::parse(&format!("{MAX_YEAR}")).expect("a valid year");
    let mut replay = Replay::keeping_expired(AsOf::new(last_year));
    let mut seqs: Vec<(String, u64)> = Vec::new();
    let mut rows = Vec::new();
    let wanted = |a: &str| attr.is_none_or(|want| want == a);
    let push_expired = |replay: &mut Replay, rows: &mut Vec<HistoryRow>, seqs: &[(String, u64)]| {
        for expired in replay.take_expired() {
            if expired.entity != entity || !wanted(&expired.attr) {
                continue;
            }
            let until = expired
                .provenance
                .until
                .expect("an expired fact has an until");
            let seq = seqs
                .iter()
                .find(|(id, _)| **id == *expired.provenance.event)
                .map_or(0, |(_, seq)| *seq);
            rows.push(HistoryRow {
                seq,
                event: expired.provenance.event.to_string(),
                at: When::from_parts(until.end(), until.precision())
                    .expect("expiries before the last year"),
                attr: expired.attr,
                op: HistoryOp::Expire,
                value: Some(expired.value),
                until: Some(until),
            });
        }
    };
    for (seq, event) in records {
        seqs.push((event.id.to_string(), seq));
        if replay.feed(event) == Fed::Past {
            break;
        }
        push_expired(&mut replay, &mut rows, &seqs);
        for change in event
            .changes
            .iter()
            .filter(|c| c.entity == entity && wanted(&c.attr))
        {
            let op = match change.op {
                Op::Set { .. } => HistoryOp::Set,
                Op::Unset => HistoryOp::Unset,
                Op::Add { .. } => HistoryOp::Add,
                Op::Remove { .. } => HistoryOp::Remove,
            };
            rows.push(HistoryRow {
                seq,
                event: event.id.to_string(),
                at: event.at,
                attr: change.attr.to_string(),
                op,
                value: change.op.value().cloned(),
                until: change.op.until(),
            });
        }
    }
    replay.finish_expiries();
    push_expired(&mut replay, &mut rows, &seqs);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{add, event, r, set, w};

    fn rows(rows: &[HistoryRow]) -> Vec<String> {
        rows.iter()
            .map(|r| {
                let value = r.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                format!("{} {} {} {} {value}", r.at, r.event, r.attr, r.op.name())
            })
            .collect()
    }

    #[test]
    fn changes_and_expiries_in_replay_order() {
        let events = [
            event(
                "a",
                "2019",
                &[
                    (
                        "x.v",
                        Op::Set {
                            value: Value::Int(1),
                            until: Some(w("2020-06")),
                        },
                    ),
                    ("y.v", set(Value::Int(9))),
                ],
            ),
            event("b", "2020-07-01", &[("x.s", add(r("p")))]),
            event(
                "c",
                "2021",
                &[
                    ("x.v", set(Value::Int(2))),
                    ("x.s", Op::Remove { value: r("p") }),
                    ("x.v", Op::Unset),
                ],
            ),
        ];
        let records: Vec<(u64, &Event)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u64 + 1, e))
            .collect();
        assert_eq!(
            rows(&history("x", None, records.clone())),
            [
                "2019 a v set 1",
                "2020-07 a v expire 1",
                "2020-07-01 b s add @p",
                "2021 c v set 2",
                "2021 c s remove @p",
                "2021 c v unset ",
            ]
        );
        let only_s = history("x", Some("s"), records.clone());
        assert_eq!(
            rows(&only_s),
            ["2020-07-01 b s add @p", "2021 c s remove @p"]
        );
        assert_eq!(only_s[0].seq, 2);
        let expiry = &history("x", None, records)[1];
        assert_eq!((expiry.seq, expiry.until), (1, Some(w("2020-06"))));
    }

    #[test]
    fn an_expiry_that_a_later_change_overtook_is_not_shown() {
        let events = [
            event(
                "a",
                "2019",
                &[(
                    "x.v",
                    Op::Set {
                        value: Value::Int(1),
                        until: Some(w("2030")),
                    },
                )],
            ),
            event("b", "2020", &[("x.v", set(Value::Int(2)))]),
        ];
        let records = events.iter().enumerate().map(|(i, e)| (i as u64 + 1, e));
        assert_eq!(
            rows(&history("x", None, records)),
            ["2019 a v set 1", "2020 b v set 2"]
        );
    }
}
