//! `reindex`: every index and checkpoint dropped and rebuilt from the log.
//!
//! The log is the store; everything else can be derived from it. A reindex
//! marks `meta/reindexing` before it clears anything, so that a crash in the
//! middle is finished by the next open, and ends with `verify`.

use std::collections::HashSet;

use super::write::IndexElements;
use super::{META_REINDEXING, Store, keys};
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
        self.forget_checkpoint_headers();
        let head = self.head()?.seq;
        let mut elements = IndexElements::default();
        let mut seen_attrs: HashSet<Vec<u8>> = HashSet::new();
        let mut corrections: Vec<(u64, Vec<String>)> = Vec::new();
        let mut entries = 0;
        for seq in 1..=head {
            let event = self.read(seq)?.event;
            let first_uses = event
                .changes
                .iter()
                .filter(|c| seen_attrs.insert(keys::attr(&c.entity, &c.attr)));
            entries += elements.add(&event, seq, first_uses);
            if !event.corrects.is_empty() {
                corrections.push((seq, event.corrects.clone()));
            }
            // As in a batch, the entity index's elements are spilled to
            // runs whenever they outgrow the budget.
            elements.spill(self)?;
        }
        elements.write(self)?;
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
