//! `reindex`: every index and checkpoint dropped and rebuilt from the log.
//!
//! The log is the store; everything else can be derived from it. A reindex
//! marks `meta/reindexing` before it clears anything, so that a crash in the
//! middle is finished by the next open, and ends with `verify`.

use std::collections::HashSet;

use super::pages::Elements;
use super::{META_REINDEXING, Store, encode_kind, keys, record};
use crate::error::{Error, Result};

/// What a reindex did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reindexed {
    pub records: u64,
    pub index_entries: u64,
    pub checkpoints: u64,
}

impl Store {
    /// Drops every index and checkpoint and rebuilds them from the log.
    pub fn reindex(&self) -> Result<Reindexed> {
        let _lock = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.rebuild()
    }

    /// The rebuild itself, under the write lock.
    pub(super) fn rebuild(&self) -> Result<Reindexed> {
        let sled_err = |e| self.storage(e);
        self.upgrade_format()?;
        self.meta.insert(META_REINDEXING, &[1]).map_err(sled_err)?;
        self.flush()?;
        for tree in [
            self.by_time.tree(),
            self.by_id.tree(),
            self.by_entity.tree(),
            self.attrs.tree(),
            &self.corrected,
            &self.checkpoints,
        ] {
            tree.clear().map_err(sled_err)?;
        }
        self.forget_corrections();
        let head = self.head()?.seq;
        let (mut by_time, mut by_id, mut by_entity, mut attrs) = Default::default();
        let mut seen_attrs: HashSet<Vec<u8>> = HashSet::new();
        let mut corrections: Vec<(u64, Vec<String>)> = Vec::new();
        let mut entries = 0;
        for seq in 1..=head {
            let event = self.read(seq)?.event;
            let start = event.at.start();
            push(&mut by_time, &keys::time(start, seq), &mut entries);
            push(&mut by_id, &keys::id(&event.id, seq), &mut entries);
            for entity in event.entities() {
                push(
                    &mut by_entity,
                    &record::entity_element(&event, entity, seq),
                    &mut entries,
                );
            }
            for change in &event.changes {
                if seen_attrs.insert(keys::attr(&change.entity, &change.attr)) {
                    let kind = encode_kind(change.op.attr_kind());
                    push(
                        &mut attrs,
                        &keys::attr_element(&change.entity, &change.attr, kind, seq),
                        &mut entries,
                    );
                }
            }
            if !event.corrects.is_empty() {
                corrections.push((seq, event.corrects.clone()));
            }
            // As in a batch: the entity index, the largest, is written
            // whenever its elements outgrow the budget.
            self.spill_entity_elements(&mut by_entity)?;
        }
        for (name, set, elements) in [
            ("by_time", &self.by_time, by_time),
            ("by_id", &self.by_id, by_id),
            ("by_entity", &self.by_entity, by_entity),
            ("attrs", &self.attrs, attrs),
        ] {
            set.insert_sorted(&elements.sorted())
                .map_err(|e| self.page_error(name, e))?;
        }
        let mut pairs = sled::Batch::default();
        for (by, targets) in corrections {
            for id in targets {
                // `by_id` is written by now.
                let target = self
                    .id_seq(&id, head)
                    .map_err(|e| self.page_error("by_id", e))?
                    .ok_or_else(|| {
                        Error::Corrupt(format!(
                            "record {by} corrects \"{id}\", which is not in the log"
                        ))
                    })?;
                pairs.insert(&keys::pair(target, by), &[]);
                entries += 1;
            }
        }
        self.corrected.apply_batch(pairs).map_err(sled_err)?;
        self.forget_corrections();
        let checkpoints = self.build_checkpoints(true)?;
        self.meta.remove(META_REINDEXING).map_err(sled_err)?;
        self.flush()?;
        Ok(Reindexed {
            records: head,
            index_entries: entries,
            checkpoints,
        })
    }
}

fn push(elements: &mut Elements, element: &[u8], count: &mut u64) {
    elements.push(element);
    *count += 1;
}
