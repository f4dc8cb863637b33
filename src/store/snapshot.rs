//! Reading the store: a [`Snapshot`] is the store as it was at one head
//! (now, or `--known-at`), with the corrections known at that head. Every
//! query reads through one snapshot, so it sees one consistent log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{Store, TimelineFilter, keys, record};
use crate::diff::{Diff, FactChange};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::history::{HistoryRow, history};
use crate::known_at::{Bound, KnownAt};
use crate::state::{AsOf, Fed, Replay, State};
use crate::store::record::Record;
use crate::when::LONGEST_INTERVAL;

mod by_entity;

/// The store as it was at one head.
pub struct Snapshot<'s> {
    store: &'s Store,
    head: u64,
    known_at: Option<KnownAt>,
    /// The corrections whose correcting event is at or below the head.
    corrected: Arc<Corrections>,
}

/// Corrections: corrected seq → the seqs of the events that correct it, in
/// ascending order (looked up for every record a replay reads).
#[derive(Debug, Default)]
pub(super) struct Corrections {
    map: FxHashMap<u64, Vec<u64>>,
    /// The highest correcting seq (0 if none).
    last_by: u64,
}

/// What a replay takes from a record: (interval start, seq, its event or
/// `None` if it is corrected).
pub(super) type ReplayInput = (i64, u64, Option<Event>);

/// An event as an entity query replays it: the changes to the entities
/// asked about, or the whole event when it was read from the log.
struct EntityEvent {
    event: Event,
    whole: bool,
}

/// What a `by_entity` element keeps: its position, and the event with its
/// changes to the entity (`None` for an element of store format 1).
pub(super) type EntityChanges = ((i64, u64), Option<Event>);

/// The position just before every record whose interval starts at
/// `start` or later: no record has seq 0.
fn before_start(start: i64) -> [u8; 16] {
    keys::time(start, 0)
}

/// An event of a timeline and the ids of the events that correct it.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub record: Record,
    pub corrected_by: Vec<String>,
}

impl Store {
    /// A consistent view of the store as it is now, or as it was at `known_at`.
    pub fn snapshot(&self, known_at: Option<&KnownAt>) -> Result<Snapshot<'_>> {
        let head = self.head()?.seq;
        let limit = match known_at.map(KnownAt::bound) {
            None => head,
            Some(Bound::Seq(n)) if n > head => {
                return Err(Error::Usage(format!(
                    "--known-at #{n} is beyond the log, whose head is #{head}"
                )));
            }
            Some(Bound::Seq(n)) => n,
            Some(Bound::RecordedBefore(_)) => {
                let known_at = known_at.expect("matched Some");
                // recorded_at never goes backwards: the known records are a prefix.
                let (mut known, mut unknown) = (0, head + 1);
                while unknown - known > 1 {
                    let mid = known + (unknown - known) / 2;
                    if known_at.keeps_time(self.read(mid)?.recorded_at) {
                        known = mid;
                    } else {
                        unknown = mid;
                    }
                }
                known
            }
        };
        let mut snapshot = self.snapshot_at(limit)?;
        snapshot.known_at = known_at.cloned();
        Ok(snapshot)
    }

    /// The store as it was when `head` was its head.
    pub(super) fn snapshot_at(&self, head: u64) -> Result<Snapshot<'_>> {
        let all = self.corrections()?;
        // Corrections above the head (older heads, or a batch being
        // written) are left out.
        let corrected = if all.last_by <= head {
            all
        } else {
            let mut known = Corrections::default();
            for (&target, by) in &all.map {
                let by: Vec<u64> = by.iter().copied().filter(|&b| b <= head).collect();
                if !by.is_empty() {
                    known.last_by = known.last_by.max(by[by.len() - 1]);
                    known.map.insert(target, by);
                }
            }
            Arc::new(known)
        };
        Ok(Snapshot {
            store: self,
            head,
            known_at: None,
            corrected,
        })
    }

    /// Every correction in the `corrected` tree, read once and kept until
    /// the tree is written.
    fn corrections(&self) -> Result<Arc<Corrections>> {
        self.corrections.get_or_read(|| {
            let mut all = Corrections::default();
            for entry in self.corrected.iter() {
                let (key, _) = entry.map_err(|e| self.storage(e))?;
                let (target, by) = keys::decode_pair(&key)
                    .ok_or_else(|| Error::Corrupt("a correction index key is unreadable".into()))?;
                all.map.entry(target).or_default().push(by);
                all.last_by = all.last_by.max(by);
            }
            Ok(all)
        })
    }

    /// Forgets the corrections read (every write to the `corrected` tree does).
    pub(super) fn forget_corrections(&self) {
        self.corrections.forget();
    }
}

impl<'s> Snapshot<'s> {
    /// The last seq this snapshot sees.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// The known-at bound it was taken at, if any.
    pub fn known_at(&self) -> Option<&KnownAt> {
        self.known_at.as_ref()
    }

    /// The record at `seq`, if the snapshot sees it.
    pub fn get(&self, seq: u64) -> Result<Option<Record>> {
        if seq == 0 || seq > self.head {
            return Ok(None);
        }
        self.store.read(seq).map(Some)
    }

    /// The record of the event with this id, if the snapshot sees it.
    pub fn find(&self, id: &str) -> Result<Option<Record>> {
        let store = self.store;
        let prefix = keys::id_prefix(id);
        let end = keys::prefix_end(&prefix);
        for element in store.by_id.range(&prefix, Some(&end)) {
            let element = element.map_err(|e| store.page_error("by_id", e))?;
            let (_, seq) = keys::decode_id(&element).ok_or_else(|| {
                Error::Corrupt(format!("the id index entry of \"{id}\" is unreadable"))
            })?;
            if seq > self.head {
                continue;
            }
            let record = store.read(seq)?;
            if record.event.id != id {
                return Err(Error::Corrupt(format!(
                    "the id index sends \"{id}\" to record {seq}, which holds \"{}\"",
                    record.event.id
                )));
            }
            return Ok(Some(record));
        }
        Ok(None)
    }

    /// Whether a later event (known to this snapshot) corrects `seq`.
    pub fn is_corrected(&self, seq: u64) -> bool {
        self.corrected.map.contains_key(&seq)
    }

    /// The ids of the events that correct `seq`, in append order.
    pub fn corrected_by(&self, seq: u64) -> Result<Vec<String>> {
        let Some(by) = self.corrected.map.get(&seq) else {
            return Ok(Vec::new());
        };
        by.iter()
            .map(|&s| self.store.read(s).map(|r| r.event.id.into()))
            .collect()
    }

    /// Every record in append order, corrected ones included.
    pub fn log(&self) -> impl Iterator<Item = Result<Record>> + '_ {
        (1..=self.head).map(move |seq| self.store.read(seq))
    }

    /// Records in replay order (interval start, then seq) whose interval
    /// starts before `before` (seconds since the epoch), or all of them;
    /// corrected events are left out.
    pub fn replay_order(
        &self,
        before: Option<i64>,
    ) -> Result<impl Iterator<Item = Result<Record>> + '_> {
        Ok(self
            .positions_after(None, before)
            .filter_map(move |position| match position {
                Ok((start, seq)) if !self.is_corrected(seq) => Some(self.read_indexed(seq, start)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }))
    }

    /// [`Snapshot::positions_after`] from the first record whose interval
    /// starts at `start` or later.
    fn positions_from(
        &self,
        start: i64,
        before: Option<i64>,
    ) -> impl Iterator<Item = Result<(i64, u64)>> + use<'_, 's> {
        self.positions_after(Some(&before_start(start)), before)
    }

    /// The (start, seq) of every record the snapshot sees, in replay order,
    /// after the position `after` (a `by_time` element; from the start if
    /// none) and starting before `before` (or all); corrected ones included.
    pub(super) fn positions_after(
        &self,
        after: Option<&[u8]>,
        before: Option<i64>,
    ) -> impl Iterator<Item = Result<(i64, u64)>> + use<'_, 's> {
        let store = self.store;
        let to = before.map(|t| keys::time(t, 0));
        // The first element after `after` is `after` with a 0 appended.
        let from = after.map(|a| [a, &[0][..]].concat()).unwrap_or_default();
        store
            .by_time
            .range(&from, to.as_ref().map(|t| &t[..]))
            .filter_map(move |element| {
                let element = match element {
                    Ok(element) => element,
                    Err(e) => return Some(Err(store.page_error("by_time", e))),
                };
                match keys::decode_time(&element) {
                    Some((start, seq)) => (seq <= self.head).then_some(Ok((start, seq))),
                    None => Some(Err(Error::Corrupt(
                        "a replay-order index element is unreadable".into(),
                    ))),
                }
            })
    }

    /// The seqs of the events (known to the snapshot) that correct `seq`.
    pub(super) fn correctors(&self, seq: u64) -> impl Iterator<Item = u64> + '_ {
        self.corrected.map.get(&seq).into_iter().flatten().copied()
    }

    /// The latest record in replay order, corrected ones included.
    pub(super) fn last_in_replay_order(&self) -> Result<Option<Record>> {
        let store = self.store;
        let mut bound = keys::time(i64::MAX, u64::MAX).to_vec();
        loop {
            let Some(element) = store
                .by_time
                .last_before(&bound)
                .map_err(|e| store.page_error("by_time", e))?
            else {
                return Ok(None);
            };
            let (start, seq) = keys::decode_time(&element).ok_or_else(|| {
                Error::Corrupt("a replay-order index element is unreadable".into())
            })?;
            if seq <= self.head {
                return self.read_indexed(seq, start).map(Some);
            }
            bound = element.to_vec();
        }
    }

    /// Reads a record an index points to and checks that they agree.
    pub(super) fn read_indexed(&self, seq: u64, start: i64) -> Result<Record> {
        let record = self.store.read(seq)?;
        if record.event.at.start() != start {
            return Err(Error::Corrupt(format!(
                "an index entry places record {seq} at {start}, but its event is dated {}",
                record.event.at
            )));
        }
        Ok(record)
    }

    /// The `by_entity` elements of `entity` after the position `after` (a
    /// `by_time` element; from the first if none) whose interval starts
    /// before `before` (or all), in replay order; above the head included.
    fn entity_elements(
        &self,
        entity: &str,
        after: Option<&[u8]>,
        before: Option<i64>,
    ) -> impl Iterator<Item = Result<sled::IVec>> + '_ {
        let (from, to) = if entity.contains('\0') {
            // No stored entity has a NUL in its name, and such a name would
            // select the elements of another: an empty range.
            (Vec::new(), Vec::new())
        } else {
            let prefix = keys::entity_prefix(entity);
            let from = match after.and_then(keys::decode_time) {
                // The first element after (start, seq) is at (start, seq + 1).
                Some((start, seq)) => keys::entity(entity, start, seq.saturating_add(1)),
                None => prefix.clone(),
            };
            let end = match before {
                Some(t) => keys::entity(entity, t, 0),
                None => keys::prefix_end(&prefix),
            };
            (from, end)
        };
        let store = self.store;
        store
            .by_entity
            .range(&from, Some(&to))
            .map(move |element| element.map_err(|e| store.page_error("by_entity", e)))
    }

    /// The (start, seq) of every record that changes any of `entities`,
    /// starting before `before` (or all), in replay order.
    fn entity_positions(
        &self,
        entities: &[String],
        before: Option<i64>,
    ) -> Result<BTreeSet<(i64, u64)>> {
        let mut positions = BTreeSet::new();
        for entity in entities {
            for element in self.entity_elements(entity, None, before) {
                let key = element?;
                let (_, start, seq) = keys::decode_entity(&key)
                    .ok_or_else(|| Error::Corrupt("an entity index key is unreadable".into()))?;
                if seq <= self.head {
                    positions.insert((start, seq));
                }
            }
        }
        Ok(positions)
    }

    /// Calls `each`, in replay order, with what each event that changes any
    /// of `entities` (after the position `after`, if given, and starting
    /// before `before`, or all) changes about them
    /// (`whole` if it is the whole event), until it returns false;
    /// corrected events are left out. Read from the entity index alone,
    /// except for elements written by format 1, which send to the log.
    /// One entity's events are streamed; several are merged first.
    fn entity_events(
        &self,
        entities: &[String],
        after: Option<&[u8]>,
        before: Option<i64>,
        mut each: impl FnMut(Event) -> bool,
    ) -> Result<()> {
        if let [entity] = entities {
            for element in self.entity_elements(entity, after, before) {
                if let Some((_, event)) = self.entity_event(entity, &element?)?
                    && !each(event.event)
                {
                    break;
                }
            }
            return Ok(());
        }
        let mut events: BTreeMap<(i64, u64), EntityEvent> = BTreeMap::new();
        for (i, entity) in entities.iter().enumerate() {
            if entities[..i].contains(entity) {
                continue;
            }
            for element in self.entity_elements(entity, after, before) {
                let Some((position, part)) = self.entity_event(entity, &element?)? else {
                    continue;
                };
                match events.entry(position) {
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(part);
                    }
                    std::collections::btree_map::Entry::Occupied(mut slot) => {
                        let held = slot.get_mut();
                        if part.whole {
                            *held = part;
                        } else if !held.whole {
                            held.event.changes.extend(part.event.changes);
                        }
                    }
                }
            }
        }
        for event in events.into_values() {
            if !each(event.event) {
                break;
            }
        }
        Ok(())
    }

    /// The event a `by_entity` element of `entity` stands for, with its
    /// position; `None` above the head or if corrected.
    fn entity_event(
        &self,
        entity: &str,
        element: &[u8],
    ) -> Result<Option<((i64, u64), EntityEvent)>> {
        Ok(match self.entity_changes(entity, element)? {
            None => None,
            Some((position, Some(event))) => Some((
                position,
                EntityEvent {
                    event,
                    whole: false,
                },
            )),
            // Format 1: the whole event, from the log.
            Some(((start, seq), None)) => {
                let event = self.event_for_replay(seq, start)?;
                Some(((start, seq), EntityEvent { event, whole: true }))
            }
        })
    }

    /// What the `by_entity` element of `entity` keeps, with its position:
    /// the event with only its id, date and changes to `entity`, or `None`
    /// for an element of store format 1, which keeps no changes (the event
    /// is in the log). `None` above the head or if corrected.
    pub(super) fn entity_changes(
        &self,
        entity: &str,
        element: &[u8],
    ) -> Result<Option<EntityChanges>> {
        let mut event = None;
        let read = self.entity_changes_into(entity, element, &mut event)?;
        // Store format 1 leaves `event` as it was: `None`.
        Ok(read.map(|(position, _)| (position, event)))
    }

    /// Like [`Snapshot::entity_changes`], into `event`: a new event if it
    /// holds none, else the one it holds, its memory reused (after an
    /// error, it must not be used). Gives the position, and whether the
    /// element keeps changes (`false`: store format 1, `event` untouched).
    pub(super) fn entity_changes_into(
        &self,
        entity: &str,
        element: &[u8],
        event: &mut Option<Event>,
    ) -> Result<Option<((i64, u64), bool)>> {
        let unreadable = || Error::Corrupt("an entity index entry is unreadable".into());
        // The range lies within `entity ‖ 0`.
        let (start, seq, changes) = element
            .get(entity.len() + 1..)
            .and_then(keys::decode_entity_rest)
            .ok_or_else(unreadable)?;
        if seq > self.head || self.is_corrected(seq) {
            return Ok(None);
        }
        let Some(changes) = changes else {
            return Ok(Some(((start, seq), false)));
        };
        let corrupt = |m| Error::Corrupt(format!("record {seq}: {m}"));
        let event = match event {
            Some(event) => {
                record::decode_entity_changes_into(entity, changes, event).map_err(corrupt)?;
                event
            }
            None => event.insert(record::decode_entity_changes(entity, changes).map_err(corrupt)?),
        };
        if event.at.start() != start {
            return Err(Error::Corrupt(format!(
                "an entity index entry places record {seq} at {start}, but says it is dated {}",
                event.at
            )));
        }
        Ok(Some(((start, seq), true)))
    }

    /// The records that change any of `entities`, in replay order, whose
    /// interval starts before `before` (or all), read through the entity
    /// index; corrected events are left out.
    pub fn entity_records(&self, entities: &[String], before: Option<i64>) -> Result<Vec<Record>> {
        self.entity_positions(entities, before)?
            .into_iter()
            .filter(|(_, seq)| !self.is_corrected(*seq))
            .map(|(start, seq)| self.read_indexed(seq, start))
            .collect()
    }

    /// The state at `query`: every fact, or only those about `entities`
    /// when it is not empty. Either starts from the nearest checkpoint that
    /// may serve (for entities, only its chunks about them); entities then
    /// read their events through the entity index.
    pub fn state(&self, query: AsOf, entities: &[String]) -> Result<State> {
        if !entities.is_empty() {
            let (after, mut replay) =
                match self
                    .store
                    .checkpoint_for(query, self.head, Some(entities), |_| ())?
                {
                    Some((position, resume, ())) => (Some(position), Replay::resume(query, resume)),
                    None => (None, Replay::new(query)),
                };
            self.entity_events(entities, after.as_deref(), Some(query.end()), |event| {
                replay.feed(&event) != Fed::Past
            })?;
            let mut state = replay.finish();
            state.retain_entities(entities);
            return Ok(state);
        }
        // The events since the checkpoint are read while it decodes, up to
        // one and a half intervals' worth (the most checkpoints are placed
        // apart, unless a backdated write removed some), so that their
        // memory stays bounded; any after stream in later.
        let every = self.store.checkpoint_interval();
        let ahead = every.saturating_add(every / 2).max(1);
        let since = |position: &[u8]| -> Result<(Vec<Event>, Option<Vec<u8>>)> {
            let mut events = Vec::new();
            let mut last = position.to_vec();
            for (read, input) in self
                .replay_inputs(Some(position), Some(query.end()))
                .enumerate()
            {
                if read as u64 == ahead {
                    return Ok((events, Some(last)));
                }
                let (start, seq, event) = input?;
                events.extend(event);
                last = keys::time(start, seq).to_vec();
            }
            Ok((events, None))
        };
        match self.store.checkpoint_for(query, self.head, None, since)? {
            Some((_, resume, since)) => {
                let (events, rest_after) = since?;
                let mut replay = Replay::resume(query, resume);
                for event in &events {
                    if replay.feed(event) == Fed::Past {
                        return Ok(replay.finish());
                    }
                }
                drop(events);
                match rest_after {
                    Some(last) => self.replay_after(replay, Some(&last), query),
                    None => Ok(replay.finish()),
                }
            }
            // No checkpoint may serve, but one lies before the question
            // (`--known-at` an earlier head, or uncertain events before
            // it): many events precede the question, and the replay entity
            // by entity reads them fastest. Before the first checkpoint, or
            // in a store without any, few events do (or the store is
            // small), and the replay in date order reads only those; so
            // does it for a head that knows under a quarter of the log,
            // whose later records the entity index would read and skip
            // (at 1M, `--known-at #100000` took 0.35 s entity by entity and
            // 0.29 s in date order, `#500000` 0.64-0.74 s against 1.12-1.40).
            None if self.store.checkpoint_before(query.end())?
                && self.head >= self.store.head()?.seq / 4 =>
            {
                self.state_from_start(query)
            }
            None => self.state_in_date_order(query),
        }
    }

    /// The whole state at `query`, replayed from the first event without
    /// checkpoints (what the benchmarks measure checkpoints against):
    /// entity by entity through the entity index, or in date order through
    /// the log where the index keeps no changes (store format 1).
    pub fn state_from_start(&self, query: AsOf) -> Result<State> {
        match self.state_by_entity(query)? {
            Some(state) => Ok(state),
            None => self.state_in_date_order(query),
        }
    }

    /// The whole state at `query`, replayed from the first event in
    /// replay order through the log, without checkpoints.
    pub fn state_in_date_order(&self, query: AsOf) -> Result<State> {
        self.replay_after(Replay::new(query), None, query)
    }

    /// Feeds `replay` the events after the position `after` (from the start
    /// if none) up to `query`'s end.
    fn replay_after(&self, mut replay: Replay, after: Option<&[u8]>, query: AsOf) -> Result<State> {
        self.read_ahead(after, Some(query.end()), |inputs| {
            for input in inputs {
                if let (_, _, Some(event)) = input?
                    && replay.feed(&event) == Fed::Past
                {
                    break;
                }
            }
            Ok(replay.finish())
        })
    }

    /// Calls `consume` with what a replay takes from each record after the
    /// position `after` (from the start if none) that starts before
    /// `before` (or all), in replay order (see [`Snapshot::replay_inputs`]).
    /// A second thread reads and decodes them, some batches ahead, and stops
    /// when `consume` returns; if no thread can be had, they are read here.
    pub(super) fn read_ahead<T>(
        &self,
        after: Option<&[u8]>,
        before: Option<i64>,
        consume: impl FnOnce(&mut dyn Iterator<Item = Result<ReplayInput>>) -> Result<T>,
    ) -> Result<T> {
        const BATCH: usize = 256;
        std::thread::scope(|scope| {
            let (batches, received) = std::sync::mpsc::sync_channel(16);
            let reader = std::thread::Builder::new().spawn_scoped(scope, move || {
                let mut batch = Vec::with_capacity(BATCH);
                for input in self.replay_inputs(after, before) {
                    let failed = input.is_err();
                    batch.push(input);
                    if batch.len() == BATCH || failed {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        // Stops when the receiver has stopped (or failed).
                        if batches.send(full).is_err() || failed {
                            return;
                        }
                    }
                }
                // The receiver may have stopped: nothing left to do then.
                let _ = batches.send(batch);
            });
            let Ok(reader) = reader else {
                return consume(&mut self.replay_inputs(after, before));
            };
            // The receiver is dropped at the end of this statement, so a
            // reader waiting to send stops before it is joined.
            let consumed = consume(&mut received.into_iter().flatten());
            if let Err(panic) = reader.join() {
                std::panic::resume_unwind(panic);
            }
            consumed
        })
    }

    /// What a replay takes from each record after the position `after`
    /// (from the start if none) that starts before `before` (or all), in
    /// replay order: (start, seq, its event or `None` if it is corrected).
    fn replay_inputs(
        &self,
        after: Option<&[u8]>,
        before: Option<i64>,
    ) -> impl Iterator<Item = Result<ReplayInput>> + '_ {
        self.positions_after(after, before).map(move |position| {
            position.and_then(|(start, seq)| Ok((start, seq, self.replay_input(start, seq)?)))
        })
    }

    /// What a replay takes from the record at (start, seq): its event, or
    /// `None` if it is corrected.
    pub(super) fn replay_input(&self, start: i64, seq: u64) -> Result<Option<Event>> {
        if self.is_corrected(seq) {
            return Ok(None);
        }
        self.event_for_replay(seq, start).map(Some)
    }

    /// What a replay needs of the record an index points to (see
    /// [`crate::store::record::decode_for_replay`]), checked against the index.
    pub(super) fn event_for_replay(&self, seq: u64, start: i64) -> Result<Event> {
        let event = self.store.read_for_replay(seq)?;
        if event.at.start() != start {
            return Err(Error::Corrupt(format!(
                "an index entry places record {seq} at {start}, but its event is dated {}",
                event.at
            )));
        }
        Ok(event)
    }

    /// What changed between the state at `from` and the state at `to`
    /// (about `entities`, if not empty), each change with its events.
    /// `from` must not end after `to`.
    pub fn diff(&self, from: AsOf, to: AsOf, entities: &[String]) -> Result<Vec<FactChange>> {
        let old = self.state(from, entities)?;
        let new = self.state(to, entities)?;
        // The events whose effect differs between the two questions: applied
        // at `to` but not at `from`, or uncertain at `from` and certain at
        // `to`. An event that starts longer than a leap year (the longest
        // date) before `from` ends is certain at both.
        let earliest = from.end().saturating_sub(LONGEST_INTERVAL);
        // Each event in between names the differences it touches as it is
        // read, so they are not held (but for a few batches read ahead).
        let mut differences = Diff::new(&old, &new);
        let mut consider = |event: Option<Event>| {
            if let Some(event) = event {
                let now = to.status(event.at);
                if matches!(now, Fed::Certain | Fed::Uncertain) && now != from.status(event.at) {
                    differences.event(&event);
                }
            }
        };
        if entities.is_empty() {
            // Every record between: a second thread reads them ahead.
            self.read_ahead(Some(&before_start(earliest)), Some(to.end()), |inputs| {
                for input in inputs {
                    let (_, _, event) = input?;
                    consider(event);
                }
                Ok(())
            })?;
        } else {
            for (start, seq) in self.entity_positions(entities, Some(to.end()))? {
                if start >= earliest {
                    consider(self.replay_input(start, seq)?);
                }
            }
        }
        Ok(differences.finish())
    }

    /// Every change to `entity` (only `attr`, if given) in replay order,
    /// with `until` expiries as rows of their own. An entity or attribute
    /// the snapshot has never seen is an error that suggests the closest.
    pub fn history(&self, entity: &str, attr: Option<&str>) -> Result<Vec<HistoryRow>> {
        let entities = [entity.to_string()];
        self.check_entities(&entities)?;
        if let Some(attr) = attr {
            let attrs = self.attrs(entity)?;
            if !attrs.iter().any(|a| a == attr) {
                return Err(Error::Usage(format!(
                    "entity \"{entity}\" has no attribute \"{attr}\"{}",
                    suggest(attr, &attrs)
                )));
            }
        }
        let records = self.entity_records(&entities, None)?;
        Ok(history(
            entity,
            attr,
            records.iter().map(|r| (r.seq, &r.event)),
        ))
    }

    /// The events that pass `filter`, in replay order, with the ids of the
    /// events that correct them. Corrected events are left out unless
    /// `with_corrected`.
    pub fn timeline(
        &self,
        filter: &TimelineFilter,
        with_corrected: bool,
    ) -> Result<Vec<TimelineEntry>> {
        self.timeline_entries(filter, with_corrected)?.collect()
    }

    /// [`Snapshot::timeline`], one entry at a time: only the positions of
    /// the events are held, each record is read as it is reached.
    pub fn timeline_entries<'f>(
        &'f self,
        filter: &'f TimelineFilter,
        with_corrected: bool,
    ) -> Result<impl Iterator<Item = Result<TimelineEntry>> + 'f> {
        let before = filter.to.map(crate::when::When::end);
        let from = filter.from.map(crate::when::When::start);
        let positions: Vec<(i64, u64)> = if filter.entities.is_empty() {
            // No date is longer than a leap year, so an event that starts
            // earlier than that before `from` ends before it too.
            let earliest = from.map_or(i64::MIN, |from| from.saturating_sub(LONGEST_INTERVAL));
            self.positions_from(earliest, before)
                .collect::<Result<_>>()?
        } else {
            self.entity_positions(&filter.entities, before)?
                .into_iter()
                .collect()
        };
        let entry = move |(start, seq): (i64, u64)| -> Result<Option<TimelineEntry>> {
            if !with_corrected && self.is_corrected(seq) {
                return Ok(None);
            }
            let record = self.read_indexed(seq, start)?;
            let event = &record.event;
            if from.is_some_and(|from| event.at.end() <= from)
                || !(filter.tags.is_empty() || event.tags.iter().any(|t| filter.tags.contains(t)))
            {
                return Ok(None);
            }
            let corrected_by = self.corrected_by(seq)?;
            Ok(Some(TimelineEntry {
                record,
                corrected_by,
            }))
        };
        Ok(positions
            .into_iter()
            .filter_map(move |position| entry(position).transpose()))
    }

    /// Refuses an entity name that is not a valid id or that no event the
    /// snapshot sees has ever changed, suggesting the closest known ones.
    pub fn check_entities(&self, entities: &[String]) -> Result<()> {
        for entity in entities {
            crate::event::check_entity(entity)
                .map_err(|reason| Error::Usage(format!("entity \"{entity}\" {reason}")))?;
            let mut known_here = false;
            for element in self.entity_elements(entity, None, None) {
                let element = element?;
                if keys::seq_of(&element).is_some_and(|seq| seq <= self.head) {
                    known_here = true;
                    break;
                }
            }
            if !known_here {
                let known = self.entities()?;
                let when = match &self.known_at {
                    Some(k) => format!(" as known at {k}"),
                    None => String::new(),
                };
                return Err(Error::Usage(format!(
                    "no entity \"{entity}\" in the store{when}{}",
                    suggest(entity, &known)
                )));
            }
        }
        Ok(())
    }

    /// Every entity the snapshot's events change, sorted.
    ///
    /// Read from the attribute index, which is far smaller than the entity
    /// index: an event at or before the head changed an entity exactly when
    /// one of the entity's attributes was first used at or before it.
    pub fn entities(&self) -> Result<Vec<String>> {
        let store = self.store;
        let mut entities: Vec<String> = Vec::new();
        for element in store.attrs.range(&[], None) {
            let element = element.map_err(|e| store.page_error("attrs", e))?;
            let (entity, _, _, seq) = keys::decode_attr_element(&element)
                .ok_or_else(|| Error::Corrupt("an attribute kind is unreadable".into()))?;
            if seq <= self.head && entities.last().is_none_or(|last| last != entity) {
                entities.push(entity.to_string());
            }
        }
        Ok(entities)
    }

    /// Every attribute of `entity` the snapshot's events change, sorted.
    pub fn attrs(&self, entity: &str) -> Result<Vec<String>> {
        let store = self.store;
        let prefix = keys::entity_prefix(entity);
        let end = keys::prefix_end(&prefix);
        let mut attrs: Vec<String> = Vec::new();
        for element in store.attrs.range(&prefix, Some(&end)) {
            let element = element.map_err(|e| store.page_error("attrs", e))?;
            let (_, attr, _, seq) = keys::decode_attr_element(&element)
                .ok_or_else(|| Error::Corrupt("an attribute kind is unreadable".into()))?;
            if seq <= self.head && attrs.last().is_none_or(|last| last != attr) {
                attrs.push(attr.to_string());
            }
        }
        Ok(attrs)
    }
}

/// ", did you mean ...?" with the up to three known names closest to
/// `wanted`, or nothing when none is close.
fn suggest(wanted: &str, known: &[String]) -> String {
    let mut scored: Vec<(f64, &String)> = known
        .iter()
        .map(|k| (strsim::jaro_winkler(wanted, k), k))
        .filter(|(score, _)| *score > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let names: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, k)| format!("\"{k}\""))
        .collect();
    match names.len() {
        0 => String::new(),
        _ => format!("; did you mean {}?", names.join(" or ")),
    }
}

#[cfg(test)]
mod tests {
    use super::suggest;

    #[test]
    fn suggestions_name_the_closest_known_names() {
        let known: Vec<String> = ["openai", "oracle", "softbank", "stargate"]
            .map(String::from)
            .to_vec();
        assert_eq!(suggest("opnai", &known), "; did you mean \"openai\"?");
        assert_eq!(suggest("stargat", &known), "; did you mean \"stargate\"?");
        assert_eq!(suggest("zzzzzz", &known), "");
    }
}
