//! The whole state replayed from the first event entity by entity, through
//! the entity index instead of the log.
//!
//! Replay order matters only within an entity: an event's changes, its
//! `until` expiries and its certainty at the question touch the facts of
//! the entities it changes and nothing else. The entity index holds each
//! event's changes to each entity it changes, in (entity, replay order),
//! so it can be read in the order it is stored, a page at a time, instead
//! of fetching records from log pages in replay order, which is not the
//! order they were written in. The index is cut into runs of whole
//! entities, which two threads take in turn.

use super::Snapshot;
use crate::error::{Error, Result};
use crate::event::Event;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::state::{AsOf, Fed, Replay, State};
use crate::store::keys;

impl Snapshot<'_> {
    /// The state at `query` replayed from the first event entity by
    /// entity, or `None` if the entity index holds elements of store
    /// format 1 (no changes: those events must be read from the log).
    pub(in crate::store) fn state_by_entity(&self, query: AsOf) -> Result<Option<State>> {
        // More runs than threads, each thread taking the next run left, so
        // that neither waits long for the other at the end.
        const RUNS: usize = 16;
        let runs = self.store.entity_runs(RUNS)?;
        let next = AtomicUsize::new(0);
        // Each thread holds about half the state: room for half of the last
        // checkpoint's, so that its table is not grown step by step.
        let room = self.store.last_checkpoint_slots()? / 2;
        let work = || -> Result<Option<State>> {
            // A thread that fails or panics leaves the other no run to take.
            let _stop = StopOnDrop(&next, runs.len());
            let mut replay = Replay::with_capacity(query, room);
            while let Some((from, to)) = runs.get(next.fetch_add(1, Ordering::Relaxed)) {
                if !self.replay_entities(&mut replay, from, to.as_deref())? {
                    return Ok(None);
                }
            }
            Ok(Some(replay.finish()))
        };
        let (ours, theirs) = std::thread::scope(|scope| {
            let helper = std::thread::Builder::new().spawn_scoped(scope, work);
            let ours = work();
            let theirs = helper.ok().map(|helper| {
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
            (ours, theirs)
        });
        // An error from either thread wins over the other's format 1.
        let theirs = theirs.transpose()?;
        let (Some(mut state), Some(theirs)) = (ours?, theirs.unwrap_or_else(|| Some(State::new())))
        else {
            return Ok(None);
        };
        let both = state.absorb(theirs);
        debug_assert_eq!(both, 0, "runs hold disjoint entities");
        Ok(Some(state))
    }

    /// Feeds `replay` the events of the entities of the entity index from
    /// `from` up to `to`; `false` on an element of store format 1.
    ///
    /// One [`Replay`] serves every entity: an entity's events come together, in
    /// replay order, and an `until` of an entity already done that expires
    /// while a later one is fed ends a fact no event will change again, as
    /// it would have at the end. Once an event starts past the question,
    /// the entity's later events do too: they are skipped, and where many
    /// are left the range goes on from the next entity.
    fn replay_entities(&self, replay: &mut Replay, from: &[u8], to: Option<&[u8]>) -> Result<bool> {
        // Elements of an entity past the question are skipped; after this
        // many, the range starts again at the next entity instead.
        const SKIPS: usize = 4;
        let mut from = from.to_vec();
        let mut past: Option<Vec<u8>> = None;
        let mut event: Option<Event> = None;
        'range: loop {
            let mut skipped = 0;
            for element in self.store.by_entity.range(&from, to) {
                let element = element.map_err(|e| self.store.page_error("by_entity", e))?;
                let (entity, ..) = keys::decode_entity(&element)
                    .ok_or_else(|| Error::Corrupt("an entity index key is unreadable".into()))?;
                if past.as_deref() == Some(entity.as_bytes()) {
                    skipped += 1;
                    if skipped == SKIPS {
                        from = keys::prefix_end(&keys::entity_prefix(entity));
                        continue 'range;
                    }
                    continue;
                }
                // One event, its memory reused from element to element.
                match self.entity_changes_into(entity, &element, &mut event)? {
                    Some((_, true)) => {}
                    // Above the head, or corrected.
                    None => continue,
                    // Store format 1.
                    Some((_, false)) => return Ok(false),
                }
                let event = event.as_ref().expect("just read");
                // (A past event does not run expiries: `Replay` only ever
                // expires facts at moments before the question's end, which
                // is what lets one replay serve every entity.)
                if replay.feed(event) == Fed::Past {
                    past = Some(entity.as_bytes().to_vec());
                    skipped = 0;
                }
            }
            return Ok(true);
        }
    }
}

/// Leaves no run for any thread to take once dropped: a thread that
/// stops early, by an error or a panic, stops the other at its next run.
struct StopOnDrop<'a>(&'a AtomicUsize, usize);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_max(self.1, Ordering::Relaxed);
    }
}
