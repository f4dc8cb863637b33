//! Replay: the facts that hold at a date, each with its provenance.
//!
//! [`State::apply`] applies one event's changes; [`Replay`] feeds events in
//! replay order (interval start, then append sequence) and takes care of
//! the date rules: events coarser than the question are applied but flagged
//! uncertain (or left out with `strict`), and facts with `until` expire at
//! the exclusive end of that date. Nothing here does I/O, which is what lets
//! the store, the tests and the reference model share it.

use compact_str::CompactString;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::event::{Event, Op, Value};
use crate::when::{Certainty, When};

mod members;
pub use members::Members;

use crate::names::Names;

/// The question a replay answers: the state at the end of `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    /// The query date; the state is taken at the exclusive end of its interval.
    pub at: When,
    /// Leave out events whose date is coarser than the question instead of
    /// applying them with their facts flagged uncertain.
    pub strict: bool,
}

impl AsOf {
    pub fn new(at: When) -> AsOf {
        AsOf { at, strict: false }
    }

    pub fn strict(at: When) -> AsOf {
        AsOf { at, strict: true }
    }

    /// The exclusive end of the query interval, in seconds since the epoch.
    pub fn end(&self) -> i64 {
        self.at.end()
    }

    /// What a replay for this question does with an event dated `at`.
    pub fn status(&self, at: When) -> Fed {
        match at.certainty_at(self.end()) {
            Certainty::NotYet => Fed::Past,
            Certainty::Uncertain if self.strict => Fed::Skipped,
            Certainty::Uncertain => Fed::Uncertain,
            Certainty::Certain => Fed::Certain,
        }
    }
}

/// Why a fact holds: the latest event that set or added its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// The event's id, held inline when short (as ids usually are), so
    /// that a fact is read and dropped without following a pointer.
    pub event: CompactString,
    /// The event's date.
    pub since: When,
    /// An event coarser than the question set or removed the fact, so it
    /// may or may not hold then.
    pub uncertain: bool,
    /// The fact holds through the end of this date, then expires.
    pub until: Option<When>,
}

/// One fact of a [`State`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fact<'a> {
    pub entity: &'a str,
    pub attr: &'a str,
    pub value: &'a Value,
    pub provenance: &'a Provenance,
}

/// What one attribute holds: a single value, or a set of values, each with
/// its provenance.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    One(Value, Provenance),
    Many(Members),
}

impl Slot {
    /// The members of a set; a slot holding a single value becomes an
    /// empty set first.
    fn members_mut(&mut self) -> &mut Members {
        if let Slot::One(..) = self {
            *self = Slot::Many(Members::new());
        }
        match self {
            Slot::Many(members) => members,
            Slot::One(..) => unreachable!("just made a set"),
        }
    }

    /// The value(s), sorted, each with its provenance.
    pub fn values(&self) -> Vec<(&Value, &Provenance)> {
        match self {
            Slot::One(value, p) => vec![(value, p)],
            Slot::Many(members) => members.iter().collect(),
        }
    }
}

/// A fact that an `until` ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Expired {
    pub entity: String,
    pub attr: String,
    pub value: Value,
    /// The provenance the fact had, with the `until` that ended it.
    pub provenance: Provenance,
}

/// The facts that hold at some date: for every (entity, attribute), one
/// value or a set of values, each with its provenance.
///
/// Entities and attributes are numbered as first seen (a few thousand
/// entities, a few dozen attributes), and what each attribute holds is kept
/// in a hash map keyed by the two numbers: replay looks up attributes far
/// more often than it lists them, and an integer key is hashed and compared
/// without reading a string. Listing sorts by the names' ranks.
#[derive(Clone, Default)]
pub struct State {
    entities: Names,
    attrs: Names,
    /// By [`key`]: entity number, attribute number.
    slots: FxHashMap<u64, Slot>,
}

/// The key of a slot: the entity's number, then the attribute's.
fn key(entity: u32, attr: u32) -> u64 {
    (u64::from(entity) << 32) | u64::from(attr)
}

/// The entity's and the attribute's number in a slot's key.
fn numbers(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        self.slots.len() == other.slots.len()
            && self.slots.iter().all(|(&key, slot)| {
                let (entity, attr) = self.names(key);
                other.get(entity, attr) == Some(slot)
            })
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.slots()
                    .map(|(entity, attr, slot)| (format!("{entity}.{attr}"), slot)),
            )
            .finish()
    }
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// The key of (entity, attr), numbering either if it is new.
    fn number(&mut self, entity: &str, attr: &str) -> u64 {
        key(self.entities.number(entity), self.attrs.number(attr))
    }

    /// The key of (entity, attr), if both have numbers.
    fn find(&self, entity: &str, attr: &str) -> Option<u64> {
        Some(key(self.entities.find(entity)?, self.attrs.find(attr)?))
    }

    /// The entity and attribute of a slot's key.
    fn names(&self, key: u64) -> (&str, &str) {
        let (entity, attr) = numbers(key);
        (self.entities.name(entity), self.attrs.name(attr))
    }

    /// Applies `event`'s changes in the order written; every fact it sets or
    /// adds takes `event` as its provenance, flagged `uncertain` as given.
    ///
    /// An uncertain event (coarser than the question) never makes a certain
    /// fact less certain than it is: setting or adding a value that already
    /// holds for certain keeps the certain provenance, and unsetting or
    /// removing a fact keeps it, flagged uncertain, since it may still hold.
    pub fn apply(&mut self, event: &Event, uncertain: bool) {
        for change in &event.changes {
            let key = self.number(&change.entity, &change.attr);
            let provenance = |until: Option<When>| Provenance {
                event: event.id.clone(),
                since: event.at,
                uncertain,
                until,
            };
            // Whether an uncertain event meets a fact it cannot make less certain.
            let keeps = |held: &Provenance| uncertain && !held.uncertain;
            match &change.op {
                Op::Set { value, until } => match self.slots.get_mut(&key) {
                    Some(Slot::One(held, p)) if held == value && keeps(p) => {}
                    Some(existing) => *existing = Slot::One(value.clone(), provenance(*until)),
                    None => {
                        let slot = Slot::One(value.clone(), provenance(*until));
                        self.slots.insert(key, slot);
                    }
                },
                Op::Unset => match self.slots.get_mut(&key) {
                    Some(Slot::One(_, p)) if uncertain => p.uncertain = true,
                    Some(Slot::One(..)) => {
                        self.slots.remove(&key);
                    }
                    _ => {}
                },
                Op::Add { value, until } => {
                    let slot = self
                        .slots
                        .entry(key)
                        .or_insert_with(|| Slot::Many(Members::new()));
                    let members = slot.members_mut();
                    if members.get(value).is_some_and(keeps) {
                        continue;
                    }
                    members.insert(value.clone(), provenance(*until));
                }
                Op::Remove { value } => {
                    if let Some(Slot::Many(members)) = self.slots.get_mut(&key) {
                        match members.get_mut(value) {
                            Some(p) if uncertain => p.uncertain = true,
                            Some(_) => {
                                members.remove_entry(value);
                            }
                            None => {}
                        }
                        if members.is_empty() {
                            self.slots.remove(&key);
                        }
                    }
                }
            }
        }
    }

    /// Removes the fact (`value` for a set member, `None` for a single
    /// value) if its `until` still ends exactly at `end`, and returns it; a
    /// later event that changed the fact since has moved or cleared that end.
    fn expire(
        &mut self,
        entity: &str,
        attr: &str,
        value: Option<&Value>,
        end: i64,
    ) -> Option<(Value, Provenance)> {
        let key = self.find(entity, attr)?;
        let ends_here = |p: &Provenance| p.until.map(When::end) == Some(end);
        match (self.slots.get_mut(&key), value) {
            (Some(Slot::One(_, p)), None) if ends_here(p) => match self.slots.remove(&key) {
                Some(Slot::One(value, p)) => Some((value, p)),
                _ => None,
            },
            (Some(Slot::Many(members)), Some(v)) if members.get(v).is_some_and(ends_here) => {
                let removed = members.remove_entry(v);
                if members.is_empty() {
                    self.slots.remove(&key);
                }
                removed
            }
            _ => None,
        }
    }

    /// What (entity, attr) holds, if anything.
    pub fn get(&self, entity: &str, attr: &str) -> Option<&Slot> {
        self.slots.get(&self.find(entity, attr)?)
    }

    /// An empty state with room for `slots` attributes.
    pub fn with_capacity(slots: usize) -> State {
        State {
            slots: FxHashMap::with_capacity_and_hasher(slots, Default::default()),
            ..State::default()
        }
    }

    /// Sets what `entity`'s `attr` holds, replacing what it held.
    pub fn put_slot(&mut self, entity: &str, attr: &str, slot: Slot) {
        let key = self.number(entity, attr);
        self.slots.insert(key, slot);
    }

    /// Takes in every slot of `other`, whose entities this state should have
    /// none of; returns how many slots both held (`other`'s are kept).
    pub(crate) fn absorb(&mut self, other: State) -> usize {
        let State {
            entities,
            attrs,
            slots,
        } = other;
        self.slots.reserve(slots.len());
        let mut both = 0;
        for (key, slot) in slots {
            let (entity, attr) = numbers(key);
            let key = self.number(entities.name(entity), attrs.name(attr));
            both += usize::from(self.slots.insert(key, slot).is_some());
        }
        both
    }

    /// The number of `entity`, numbering it if it is new: for putting
    /// several of its slots with [`State::put_entity_slot`].
    pub(crate) fn entity_number(&mut self, entity: &str) -> u32 {
        self.entities.number(entity)
    }

    /// Puts a slot of the entity numbered `entity` ([`State::entity_number`]).
    pub(crate) fn put_entity_slot(&mut self, entity: u32, attr: &str, slot: Slot) {
        let key = key(entity, self.attrs.number(attr));
        self.slots.insert(key, slot);
    }

    /// Every attribute that holds anything, sorted by (entity, attribute).
    pub fn slots(&self) -> impl Iterator<Item = (&str, &str, &Slot)> {
        let (entities, attrs) = (self.entities.ranks(), self.attrs.ranks());
        let mut slots: Vec<(u64, u64, &Slot)> = self
            .slots
            .iter()
            .map(|(&key, slot)| {
                let (entity, attr) = numbers(key);
                let rank = self::key(entities[entity as usize], attrs[attr as usize]);
                (rank, key, slot)
            })
            .collect();
        slots.sort_unstable_by_key(|&(rank, ..)| rank);
        slots.into_iter().map(|(_, key, slot)| {
            let (entity, attr) = self.names(key);
            (entity, attr, slot)
        })
    }

    /// Every fact, sorted by (entity, attribute, value).
    pub fn facts(&self) -> impl Iterator<Item = Fact<'_>> {
        self.slots().flat_map(|(entity, attr, slot)| {
            let (one, many) = match slot {
                Slot::One(value, p) => (Some((value, p)), None),
                Slot::Many(members) => (None, Some(members.iter())),
            };
            one.into_iter()
                .chain(many.into_iter().flatten())
                .map(move |(value, provenance)| Fact {
                    entity,
                    attr,
                    value,
                    provenance,
                })
        })
    }

    /// The number of facts (a set counts one per member).
    pub fn len(&self) -> usize {
        self.slots
            .values()
            .map(|slot| match slot {
                Slot::One(..) => 1,
                Slot::Many(members) => members.len(),
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The number of attributes that hold anything.
    pub fn attributes(&self) -> usize {
        self.slots.len()
    }

    /// Keeps only the facts about the given entities.
    pub fn retain_entities(&mut self, entities: &[String]) {
        let kept: Vec<u32> = entities
            .iter()
            .filter_map(|e| self.entities.find(e))
            .collect();
        self.slots.retain(|&key, _| kept.contains(&numbers(key).0));
    }
}

/// A pending `until` expiry: at `end` (seconds since the epoch), the fact
/// (entity, attr, member; no member for a single value) goes, unless it was
/// changed since.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expiry {
    pub end: i64,
    pub entity: String,
    pub attr: String,
    pub member: Option<Value>,
}

/// Where a replay stands between two events, to continue from later: the
/// state, and the `until` expiries still to come. A checkpoint is one of
/// these, taken where every event so far is certain.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    pub state: State,
    /// Sorted.
    pub expiries: Vec<Expiry>,
}

/// What [`Replay::feed`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// Applied; its facts are certain.
    Certain,
    /// Applied, with its facts flagged uncertain.
    Uncertain,
    /// Left out: uncertain under a strict question.
    Skipped,
    /// The event starts at or after the end of the question. Events come in
    /// replay order, so every later one does too: stop feeding.
    Past,
}

/// Builds the [`State`] at a date from events fed in replay order.
#[derive(Debug, Clone)]
pub struct Replay {
    state: State,
    query: AsOf,
    end: i64,
    expiries: BinaryHeap<Reverse<Expiry>>,
    /// The facts `until` ended, when asked to keep them.
    expired: Option<Vec<Expired>>,
}

impl Replay {
    pub fn new(query: AsOf) -> Replay {
        Replay {
            state: State::new(),
            end: query.end(),
            query,
            expiries: BinaryHeap::new(),
            expired: None,
        }
    }

    /// Like [`Replay::new`], with room for `slots` attributes in the state.
    pub fn with_capacity(query: AsOf, slots: usize) -> Replay {
        Replay {
            state: State::with_capacity(slots),
            ..Replay::new(query)
        }
    }

    /// Continues a replay suspended by [`Replay::suspend`], for `query`. Only
    /// sound when every event the suspended replay saw is certain at
    /// `query` (a checkpoint's dates all end before the question's end).
    pub fn resume(query: AsOf, from: Resume) -> Replay {
        Replay {
            state: from.state,
            expiries: from.expiries.into_iter().map(Reverse).collect(),
            ..Replay::new(query)
        }
    }

    /// When the next `until` expiry is due, if any (seconds since the epoch).
    pub fn next_expiry(&self) -> Option<i64> {
        self.expiries.peek().map(|Reverse(e)| e.end)
    }

    /// The `until` expiries still to come, sorted.
    pub fn pending_expiries(&self) -> Vec<&Expiry> {
        let mut expiries: Vec<&Expiry> = self.expiries.iter().map(|Reverse(e)| e).collect();
        expiries.sort();
        expiries
    }

    /// Where this replay stands now.
    pub fn suspend(&self) -> Resume {
        let mut expiries: Vec<Expiry> = self.expiries.iter().map(|Reverse(e)| e.clone()).collect();
        expiries.sort();
        Resume {
            state: self.state.clone(),
            expiries,
        }
    }

    /// Like [`Replay::new`], and keeps every fact that an `until` ends, for
    /// [`Replay::take_expired`].
    pub fn keeping_expired(query: AsOf) -> Replay {
        Replay {
            expired: Some(Vec::new()),
            ..Replay::new(query)
        }
    }

    /// The facts ended by `until` since the last call, in the order they
    /// ended. Those ended while feeding an event ended before it applied.
    pub fn take_expired(&mut self) -> Vec<Expired> {
        self.expired
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The state so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The question being answered.
    pub fn query(&self) -> AsOf {
        self.query
    }

    /// Applies the next event in replay order (interval start, then append
    /// sequence), as the question's date rules say.
    pub fn feed(&mut self, event: &Event) -> Fed {
        let status = self.query.status(event.at);
        if status == Fed::Past {
            return Fed::Past;
        }
        // An expiry at the very moment an event starts happens first; the
        // order cannot change the outcome, since the event replaces the fact.
        self.expire_through(event.at.start());
        if status == Fed::Skipped {
            return Fed::Skipped;
        }
        let uncertain = status == Fed::Uncertain;
        self.state.apply(event, uncertain);
        for change in &event.changes {
            if let Some(until) = change.op.until() {
                let member = match &change.op {
                    Op::Add { value, .. } => Some(value.clone()),
                    _ => None,
                };
                self.expiries.push(Reverse(Expiry {
                    end: until.end(),
                    entity: change.entity.to_string(),
                    attr: change.attr.to_string(),
                    member,
                }));
            }
        }
        if uncertain {
            Fed::Uncertain
        } else {
            Fed::Certain
        }
    }

    /// Runs every expiry at or before `t` (seconds since the epoch), as
    /// feeding an event that starts at `t` does first.
    pub fn expire_through(&mut self, t: i64) {
        while let Some(Reverse(next)) = self.expiries.peek() {
            if next.end > t {
                break;
            }
            let Reverse(e) = self.expiries.pop().expect("peeked");
            let removed = self
                .state
                .expire(&e.entity, &e.attr, e.member.as_ref(), e.end);
            if let (Some((value, provenance)), Some(log)) = (removed, self.expired.as_mut()) {
                log.push(Expired {
                    entity: e.entity,
                    attr: e.attr,
                    value,
                    provenance,
                });
            }
        }
    }

    /// The state at the end of the question's date. An expiry happens when
    /// its moment lies before that end: a fact `until = "2030"` is still
    /// there at `2030-12-31` and gone at `2031-01-01`.
    pub fn finish(mut self) -> State {
        self.finish_expiries();
        self.state
    }

    /// Runs the expiries that happen before the end of the question, so
    /// that [`Replay::take_expired`] sees them too.
    pub fn finish_expiries(&mut self) {
        self.expire_through(self.end - 1);
    }
}

/// The state at `query` from events already in replay order.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>, query: AsOf) -> State {
    let mut replay = Replay::new(query);
    for event in events {
        if replay.feed(event) == Fed::Past {
            break;
        }
    }
    replay.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{add, r, rows, set, w};

    fn event(id: &str, at: &str, changes: Vec<(&str, Op)>) -> Event {
        crate::testing::event(id, at, &changes)
    }

    fn at(events: &[Event], date: &str) -> State {
        replay(events, AsOf::new(w(date)))
    }

    /// A state absorbed into another gives the state of both, whatever
    /// order its names were numbered in, and counts the slots both held.
    #[test]
    fn an_absorbed_state_joins_the_other_and_counts_what_both_held() {
        let events = [
            event(
                "a",
                "2020",
                vec![("x.v", set(Value::Int(1))), ("y.s", add(r("p")))],
            ),
            event(
                "b",
                "2021",
                vec![("z.v", set(Value::Int(2))), ("y.s", add(r("q")))],
            ),
        ];
        let whole = at(&events, "2030");
        let mut first = at(&events[..1], "2030");
        let mut second = at(&events[1..], "2030");
        second.put_slot("w", "v", whole.get("x", "v").unwrap().clone());
        first.put_slot("w", "v", whole.get("x", "v").unwrap().clone());
        // Both hold y.s (with different members) and w.v.
        assert_eq!(first.absorb(second), 2);
        let mut expected = whole.clone();
        expected.put_slot("w", "v", whole.get("x", "v").unwrap().clone());
        expected.put_slot(
            "y",
            "s",
            at(&events[1..], "2030").get("y", "s").unwrap().clone(),
        );
        assert_eq!(first, expected);
    }

    #[test]
    fn set_unset_add_remove() {
        let events = vec![
            event(
                "a",
                "2019",
                vec![
                    ("x.one", set(Value::Int(1))),
                    ("x.many", add(r("p"))),
                    ("x.many", add(r("q"))),
                ],
            ),
            event(
                "b",
                "2020",
                vec![
                    ("x.one", set(Value::Int(2))),
                    ("x.many", Op::Remove { value: r("p") }),
                ],
            ),
            event(
                "c",
                "2021",
                vec![
                    ("x.one", Op::Unset),
                    ("x.many", Op::Remove { value: r("q") }),
                ],
            ),
        ];
        assert_eq!(
            rows(&at(&events, "2019")),
            [
                ("x.many".into(), "@p".into(), "a".into(), false),
                ("x.many".into(), "@q".into(), "a".into(), false),
                ("x.one".into(), "1".into(), "a".into(), false),
            ]
        );
        assert_eq!(
            rows(&at(&events, "2020")),
            [
                ("x.many".into(), "@q".into(), "a".into(), false),
                ("x.one".into(), "2".into(), "b".into(), false)
            ]
        );
        assert!(at(&events, "2021").is_empty());
        assert!(at(&events, "2018").is_empty());
    }

    #[test]
    fn coarse_events_are_uncertain_or_left_out_when_strict() {
        let events = vec![
            event("y", "2019", vec![("x.a", set(Value::Int(1)))]),
            event("d", "2019-03-01", vec![("x.b", set(Value::Int(2)))]),
        ];
        let state = at(&events, "2019-06-01");
        assert_eq!(
            rows(&state),
            [
                ("x.a".into(), "1".into(), "y".into(), true),
                ("x.b".into(), "2".into(), "d".into(), false)
            ]
        );
        let strict = replay(&events, AsOf::strict(w("2019-06-01")));
        assert_eq!(
            rows(&strict),
            [("x.b".into(), "2".into(), "d".into(), false)]
        );
        assert!(!rows(&at(&events, "2019"))[0].3);
    }

    #[test]
    fn same_value_again_takes_over_provenance() {
        let events = vec![
            event(
                "first",
                "2019",
                vec![("x.s", add(r("m"))), ("x.o", set(Value::Int(1)))],
            ),
            event(
                "again",
                "2020",
                vec![("x.s", add(r("m"))), ("x.o", set(Value::Int(1)))],
            ),
        ];
        let state = at(&events, "2020");
        assert!(
            state
                .facts()
                .all(|f| &*f.provenance.event == "again" && f.provenance.since == w("2020"))
        );
        assert_eq!(state.len(), 2);
    }

    #[test]
    fn an_uncertain_event_never_weakens_a_certain_fact() {
        let events = vec![
            event(
                "a",
                "2019-01-15",
                vec![
                    ("x.s", add(r("m"))),
                    ("x.o", set(Value::Int(1))),
                    ("x.gone", set(Value::Int(2))),
                    ("x.t", add(r("p"))),
                ],
            ),
            event(
                "b",
                "2019-06",
                vec![
                    ("x.s", add(r("m"))),
                    ("x.o", set(Value::Int(1))),
                    ("x.gone", Op::Unset),
                    ("x.t", Op::Remove { value: r("p") }),
                ],
            ),
        ];
        // Mid-June, "b" may or may not have happened yet; "a" certainly has.
        assert_eq!(
            rows(&at(&events, "2019-06-15")),
            [
                ("x.gone".into(), "2".into(), "a".into(), true),
                ("x.o".into(), "1".into(), "a".into(), false),
                ("x.s".into(), "@m".into(), "a".into(), false),
                ("x.t".into(), "@p".into(), "a".into(), true),
            ]
        );
        // By July, "b" has happened: it takes over, and its removals hold.
        assert_eq!(
            rows(&at(&events, "2019-07")),
            [
                ("x.o".into(), "1".into(), "b".into(), false),
                ("x.s".into(), "@m".into(), "b".into(), false)
            ]
        );
    }

    #[test]
    fn changes_inside_one_event_apply_in_order() {
        let events = vec![event(
            "e",
            "2019",
            vec![
                ("x.o", set(Value::Int(1))),
                ("x.o", Op::Unset),
                ("x.o", set(Value::Int(3))),
            ],
        )];
        assert_eq!(rows(&at(&events, "2019"))[0].1, "3");
    }

    #[test]
    fn until_is_inclusive_of_its_whole_interval() {
        let until = |v, date: &str| Op::Set {
            value: v,
            until: Some(w(date)),
        };
        let events = vec![event(
            "e",
            "2025-01-21",
            vec![("x.p", until(Value::Int(1), "2030"))],
        )];
        assert_eq!(at(&events, "2030-12-31").len(), 1);
        assert_eq!(at(&events, "2030").len(), 1);
        assert_eq!(at(&events, "2030-12-31T23:59:59Z").len(), 1);
        assert!(at(&events, "2031-01-01").is_empty());
        assert!(at(&events, "2031-01-01T00:00:00Z").is_empty());
    }

    #[test]
    fn a_later_change_before_the_expiry_rules() {
        let events = vec![
            event(
                "e",
                "2020",
                vec![(
                    "x.p",
                    Op::Set {
                        value: Value::Int(1),
                        until: Some(w("2021")),
                    },
                )],
            ),
            event("f", "2021-06", vec![("x.p", set(Value::Int(2)))]),
            event(
                "g",
                "2021-07",
                vec![(
                    "x.s",
                    Op::Add {
                        value: r("a"),
                        until: Some(w("2021-08")),
                    },
                )],
            ),
            event("h", "2021-08-15", vec![("x.s", add(r("a")))]),
        ];
        let state = at(&events, "2023");
        assert_eq!(
            rows(&state),
            [
                ("x.p".into(), "2".into(), "f".into(), false),
                ("x.s".into(), "@a".into(), "h".into(), false)
            ]
        );
    }

    #[test]
    fn expiry_before_a_later_event_is_not_undone() {
        let events = vec![
            event(
                "e",
                "2020",
                vec![(
                    "x.s",
                    Op::Add {
                        value: r("a"),
                        until: Some(w("2020")),
                    },
                )],
            ),
            event("f", "2022", vec![("x.s", add(r("b")))]),
        ];
        assert_eq!(
            rows(&at(&events, "2022")),
            [("x.s".into(), "@b".into(), "f".into(), false)]
        );
    }

    #[test]
    fn a_suspended_replay_resumes_to_the_same_state() {
        let events = vec![
            event(
                "a",
                "2019",
                vec![
                    (
                        "x.v",
                        Op::Set {
                            value: Value::Int(1),
                            until: Some(w("2021")),
                        },
                    ),
                    ("x.s", add(r("p"))),
                ],
            ),
            event(
                "b",
                "2020-03",
                vec![(
                    "x.s",
                    Op::Add {
                        value: r("q"),
                        until: Some(w("2020-06")),
                    },
                )],
            ),
            event("c", "2022", vec![("x.s", Op::Remove { value: r("p") })]),
        ];
        let far = AsOf::new(w("9999"));
        let mut first = Replay::new(far);
        first.feed(&events[0]);
        first.feed(&events[1]);
        let resume = first.suspend();
        assert_eq!(resume.expiries.len(), 2);
        for date in ["2020-04", "2020-07", "2021", "2022", "2030"] {
            let query = AsOf::new(w(date));
            let mut resumed = Replay::resume(query, resume.clone());
            resumed.feed(&events[2]);
            assert_eq!(resumed.finish(), replay(&events, query), "at {date}");
        }
    }

    #[test]
    fn feeding_stops_at_the_first_event_past_the_question() {
        let mut replay = Replay::new(AsOf::new(w("2019-06")));
        assert_eq!(replay.feed(&event("a", "2019", vec![])), Fed::Uncertain);
        assert_eq!(replay.feed(&event("b", "2019-06-30", vec![])), Fed::Certain);
        assert_eq!(replay.feed(&event("c", "2019-07", vec![])), Fed::Past);
        let mut strict = Replay::new(AsOf::strict(w("2019-06")));
        assert_eq!(strict.feed(&event("a", "2019", vec![])), Fed::Skipped);
    }

    #[test]
    fn entity_filter_keeps_only_those_entities() {
        let events = vec![event(
            "e",
            "2019",
            vec![("x.a", set(Value::Int(1))), ("y.a", set(Value::Int(2)))],
        )];
        let mut state = at(&events, "2019");
        state.retain_entities(&["y".to_string()]);
        assert_eq!(
            rows(&state),
            [("y.a".into(), "2".into(), "e".into(), false)]
        );
    }

    /// Entities and attributes are numbered in the order first seen; the
    /// numbers must show neither in listing nor in comparing.
    #[test]
    fn numbering_order_does_not_show() {
        let one = |target| event("e", "2019", vec![(target, set(Value::Int(1)))]);
        // "ab" and "a.z" numbered first; "a" sorts before "ab", and "z"
        // after "a".
        let seen_late = [one("ab.a"), one("a.z"), one("a.a"), one("b.z")];
        let seen_early = [one("a.a"), one("a.z"), one("ab.a"), one("b.z")];
        let late = replay(&seen_late, AsOf::new(w("2019")));
        let early = replay(&seen_early, AsOf::new(w("2019")));
        let listed = |state: &State| {
            state
                .slots()
                .map(|(e, a, _)| format!("{e}.{a}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(listed(&late), ["a.a", "a.z", "ab.a", "b.z"]);
        assert_eq!(listed(&early), listed(&late));
        assert_eq!(late, early);
        assert_eq!(format!("{late:?}"), format!("{early:?}"));

        // Same attributes, one value other; one attribute more or fewer.
        let mut other = early.clone();
        other.apply(
            &event("f", "2020", vec![("b.z", set(Value::Int(2)))]),
            false,
        );
        assert_ne!(late, other);
        let mut more = early.clone();
        more.apply(&one("c.a"), false);
        assert_ne!(late, more);
        assert_ne!(more, late);
        // An attribute that was numbered but holds nothing any more.
        more.apply(&event("g", "2020", vec![("c.a", Op::Unset)]), false);
        assert_eq!(late, more);
        assert_eq!(more.get("c", "a"), None);
        assert_eq!(more.get("nobody", "a"), None);

        let mut kept = late.clone();
        kept.retain_entities(&["ab".to_string(), "unknown".to_string()]);
        assert_eq!(listed(&kept), ["ab.a"]);
    }
}
