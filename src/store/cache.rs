//! What the store keeps in memory to read again.
//!
//! Decoded pages, bounded by the memory they take ([`SizedLru`]): the log
//! keeps the pages a replay read last (replay order keeps coming back to
//! them); `verify` keeps index pages while it checks every record. Both
//! bound the cache in bytes rather than in pages, so that pages of large
//! events cannot make it hold gigabytes. And values read from a whole tree
//! ([`Kept`]): the corrections and the checkpoint headers, which every
//! query needs and which change only when their tree is written.

use std::hash::Hash;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use sled::IVec;

/// A page decoded: its bytes and the (offset, length) of each element.
pub type Decoded = (IVec, Vec<(usize, usize)>);

/// The memory a decoded page takes, roughly.
pub fn decoded_size((bytes, spans): &Decoded) -> usize {
    bytes.len() + std::mem::size_of_val(spans.as_slice())
}

/// Values by key, the least recently used going first once they take more
/// than a budget of bytes; a value larger than the whole budget is not kept.
pub struct SizedLru<K: Hash + Eq, V> {
    entries: LruCache<K, V>,
    bytes: usize,
    budget: usize,
    size: fn(&V) -> usize,
}

impl<K: Hash + Eq, V> SizedLru<K, V> {
    /// An empty cache of `budget` bytes, each value weighed by `size`.
    pub fn new(budget: usize, size: fn(&V) -> usize) -> SizedLru<K, V> {
        SizedLru {
            entries: LruCache::unbounded(),
            bytes: 0,
            budget,
            size,
        }
    }

    /// The value of `key`, now the most recently used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    /// Keeps `value` under `key` (replacing what was there), unless it is
    /// larger than the whole budget.
    pub fn put(&mut self, key: K, value: V) {
        let size = (self.size)(&value);
        if size > self.budget {
            if let Some(old) = self.entries.pop(&key) {
                self.bytes -= (self.size)(&old);
            }
            return;
        }
        if let Some((_, old)) = self.entries.push(key, value) {
            self.bytes -= (self.size)(&old);
        }
        self.bytes += size;
        while self.bytes > self.budget {
            let Some((_, oldest)) = self.entries.pop_lru() else {
                break;
            };
            self.bytes -= (self.size)(&oldest);
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

/// A value read once and kept until [`Kept::forget`] (called by whatever
/// writes what it was read from).
pub struct Kept<T>(Mutex<Option<Arc<T>>>);

impl<T> Default for Kept<T> {
    fn default() -> Kept<T> {
        Kept(Mutex::new(None))
    }
}

impl<T> Kept<T> {
    /// The value kept, or the one `read` gives, kept from now on. The lock
    /// is held while it reads, so that a `forget` cannot come between the
    /// read and the keeping.
    pub fn get_or_read<E>(&self, read: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(value) = &*kept {
            return Ok(value.clone());
        }
        let value = Arc::new(read()?);
        *kept = Some(value.clone());
        Ok(value)
    }

    pub fn forget(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_value_is_read_once_until_forgotten_and_a_failed_read_is_not_kept() {
        let kept: Kept<u32> = Kept::default();
        let mut reads = 0;
        let mut read = |value: Result<u32, &'static str>| {
            kept.get_or_read(|| {
                reads += 1;
                value
            })
        };
        assert_eq!(read(Err("unreadable")), Err("unreadable"));
        assert_eq!(read(Ok(1)).as_deref(), Ok(&1));
        assert_eq!(read(Ok(2)).as_deref(), Ok(&1), "kept");
        kept.forget();
        assert_eq!(read(Ok(3)).as_deref(), Ok(&3), "read again");
        assert_eq!(reads, 3);
    }

    #[test]
    fn the_least_recently_used_go_once_the_budget_is_passed() {
        let mut cache: SizedLru<u32, Vec<u8>> = SizedLru::new(10, Vec::len);
        cache.put(1, vec![0; 4]);
        cache.put(2, vec![0; 4]);
        assert!(cache.get(&1).is_some());
        // 12 bytes: the least recently used (2) goes.
        cache.put(3, vec![0; 4]);
        assert!(cache.get(&2).is_none());
        assert!(cache.get(&1).is_some() && cache.get(&3).is_some());
        // Replacing a value counts its new size, not both: 6 + 4 fit.
        cache.put(1, vec![0; 6]);
        assert!(cache.get(&3).is_some() && cache.get(&1).is_some());
        // Larger than the whole budget: not kept, and the old value goes.
        cache.put(1, vec![0; 11]);
        assert!(cache.get(&1).is_none());
        // So 3 (4 bytes) is all that is left, and goes for 10 new ones.
        cache.put(4, vec![0; 10]);
        assert!(cache.get(&4).is_some() && cache.get(&3).is_none());
        cache.clear();
        assert!(cache.get(&4).is_none());
        cache.put(5, vec![0; 10]);
        assert!(cache.get(&5).is_some());
    }
}
