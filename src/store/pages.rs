//! Sorted sets of byte strings, stored in pages.
//!
//! sled costs several microseconds and a copy of a node per key written, and
//! far more memory than the data for large batches. An index with one sled
//! key per entry cannot import a million events quickly. A [`PagedSet`]
//! keeps its elements, sorted, in pages of about [`PAGE_BYTES`] (or the size
//! it was made with): each sled entry is one page, keyed by its first
//! element, holding the elements from that one up to the next page's first
//! element. Writes merge sorted runs
//! into the pages they fall in and split pages that grow too big; a bulk
//! import touches a few thousand sled keys instead of millions.
//!
//! A page is a sequence of elements, each a LEB128 length and its bytes,
//! stored as one zstd frame ([`super::compress`]). Pages of format version 1
//! are stored as they are and still read: a first element of length 40
//! (0x28) starts with a string, and no UTF-8 string starts like the rest of
//! a zstd frame's magic.
//! Every element of chronik's indexes ends in the seq of its record (eight
//! bytes, big-endian), which lets readers skip elements above a head and
//! crash recovery remove them.

use std::ops::Bound;

use sled::{IVec, Tree};

use super::cache::{Decoded, SizedLru, decoded_size};
use super::compress;

/// The size a page is filled to before a new one starts, unless the set
/// says otherwise ([`PagedSet::with_page_bytes`]).
pub const PAGE_BYTES: usize = 8192;

/// The page size of the entity index.
pub const ENTITY_PAGE_BYTES: usize = 4096;

/// How many pages one sled batch writes; bounds the memory of big writes.
const PAGES_PER_BATCH: usize = 128;

/// Many elements waiting to be written, packed into one buffer: a large
/// batch keeps its index elements here and writes each index once, so every
/// page is written once, not once per chunk.
#[derive(Debug, Default)]
pub struct Elements {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Elements {
    pub fn push(&mut self, element: &[u8]) {
        self.bytes.extend_from_slice(element);
        self.ends.push(self.bytes.len());
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The memory the elements take, roughly.
    pub fn footprint(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }

    /// The elements, sorted, each once.
    pub fn sorted(&self) -> Vec<&[u8]> {
        let mut start = 0;
        let mut all: Vec<&[u8]> = self
            .ends
            .iter()
            .map(|&end| {
                let element = &self.bytes[start..end];
                start = end;
                element
            })
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// Decoded pages of one paged set by key, each with the page as stored
/// (see [`PagedSet::contains_cached`]).
pub type PageCache = SizedLru<IVec, (IVec, Decoded)>;

/// A page cache of `budget` bytes.
pub fn page_cache(budget: usize) -> PageCache {
    SizedLru::new(budget, |(stored, page)| stored.len() + decoded_size(page))
}

/// A sorted set of byte strings in a sled tree of pages.
#[derive(Clone)]
pub struct PagedSet {
    tree: Tree,
    /// What a page is filled to before a new one starts.
    page_bytes: usize,
}

/// A page that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPage;

pub(super) fn push_element(page: &mut Vec<u8>, element: &[u8]) {
    let mut n = element.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            page.push(byte);
            break;
        }
        page.push(byte | 0x80);
    }
    page.extend_from_slice(element);
}

/// The (offset, length) of each element of a page.
pub(super) fn elements(page: &[u8]) -> Result<Vec<(usize, usize)>, BadPage> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < page.len() {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let byte = *page.get(at).ok_or(BadPage)?;
            at += 1;
            if shift > 28 {
                return Err(BadPage);
            }
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if at + len > page.len() {
            return Err(BadPage);
        }
        out.push((at, len));
        at += len;
    }
    Ok(out)
}

/// Splits sorted elements into pages of about `page_bytes`, each with its
/// first element, one page at a time.
fn pages_of<'a>(
    elements: &'a [&'a [u8]],
    page_bytes: usize,
) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + 'a {
    let mut rest = elements;
    std::iter::from_fn(move || {
        let first = *rest.first()?;
        let mut page: Vec<u8> = Vec::new();
        while let Some(element) = rest.first() {
            if page.len() + element.len() + 2 > page_bytes && !page.is_empty() {
                break;
            }
            push_element(&mut page, element);
            rest = &rest[1..];
        }
        Some((first.to_vec(), page))
    })
}

/// What a test may run after each batch a writer applies.
#[cfg(test)]
type BatchHook = Box<dyn FnMut(&Tree)>;

#[cfg(test)]
thread_local! {
    /// Called with the tree after each batch a writer applies (tests only).
    static AFTER_BATCH: std::cell::RefCell<Option<BatchHook>> = std::cell::RefCell::new(None);
}

/// Writes accumulated page changes in batches of bounded size.
struct Writer<'t> {
    tree: &'t Tree,
    /// The keys written since the last flush, in order: `true` for a page
    /// to write, `false` for one to remove.
    keys: Vec<(Vec<u8>, bool)>,
    /// The pages to write, in order: those compressed so far, then those
    /// not yet (compressed side by side, a batch's worth at a time, so a
    /// replacement of many pages never holds them all uncompressed).
    compressed: Vec<Vec<u8>>,
    raw: Vec<Vec<u8>>,
}

impl Writer<'_> {
    fn new(tree: &Tree) -> Writer<'_> {
        Writer {
            tree,
            keys: Vec::new(),
            compressed: Vec::new(),
            raw: Vec::new(),
        }
    }

    fn remove(&mut self, key: &[u8]) {
        self.keys.push((key.to_vec(), false));
    }

    fn insert(&mut self, key: Vec<u8>, page: Vec<u8>) {
        self.keys.push((key, true));
        self.raw.push(page);
        if self.raw.len() >= PAGES_PER_BATCH {
            self.compress();
        }
    }

    fn compress(&mut self) {
        let raw = std::mem::take(&mut self.raw);
        self.compressed.extend(compress::compress_all(raw));
    }

    /// Ends the replacement of one old page: the batch may be written now,
    /// never in the middle of a replacement (a crash there would lose the
    /// elements of the pages not yet written).
    fn page_done(&mut self) -> sled::Result<()> {
        if self.compressed.len() + self.raw.len() >= PAGES_PER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> sled::Result<()> {
        self.compress();
        let mut pages = std::mem::take(&mut self.compressed).into_iter();
        let mut batch = sled::Batch::default();
        // In order: a page may be removed and written again under its key.
        for (key, written) in self.keys.drain(..) {
            match written {
                true => batch.insert(key, pages.next().expect("one page per key written")),
                false => batch.remove(key),
            }
        }
        self.tree.apply_batch(batch)?;
        #[cfg(test)]
        AFTER_BATCH.with_borrow_mut(|hook| {
            if let Some(hook) = hook {
                hook(self.tree);
            }
        });
        Ok(())
    }
}

/// An error of a paged set: the storage engine's, or a damaged page.
#[derive(Debug)]
pub enum PageError {
    Sled(sled::Error),
    Bad(IVec),
}

impl From<sled::Error> for PageError {
    fn from(e: sled::Error) -> PageError {
        PageError::Sled(e)
    }
}

/// The most a page can hold once decompressed (pages are about
/// [`PAGE_BYTES`]; one element may make a page larger).
const PAGE_LIMIT: usize = 64 << 20;

/// A stored page's bytes, decompressed if they were compressed.
fn open(key: &IVec, stored: IVec) -> Result<IVec, PageError> {
    compress::open(stored, PAGE_LIMIT).ok_or_else(|| PageError::Bad(key.clone()))
}

impl PagedSet {
    pub fn new(tree: Tree) -> PagedSet {
        PagedSet::with_page_bytes(tree, PAGE_BYTES)
    }

    /// A set whose writes fill pages to about `page_bytes` (pages written
    /// with another size are read all the same). Smaller pages make a
    /// lookup decompress less and compress less well.
    pub fn with_page_bytes(tree: Tree, page_bytes: usize) -> PagedSet {
        PagedSet { tree, page_bytes }
    }

    /// The sled tree the pages live in.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The page `element` belongs in: the one with the greatest first
    /// element at or below it, else the first page.
    fn page_for(&self, element: &[u8]) -> Result<Option<(IVec, IVec)>, PageError> {
        self.stored_page_for(element)?
            .map(|(key, stored)| Ok((key.clone(), open(&key, stored)?)))
            .transpose()
    }

    /// [`Self::page_for`], the page as stored (compressed).
    fn stored_page_for(&self, element: &[u8]) -> sled::Result<Option<(IVec, IVec)>> {
        match self.tree.range(..=element).next_back() {
            Some(page) => page.map(Some),
            None => self.tree.first(),
        }
    }

    /// [`Self::contains`] for many checks in a row: a page `cache` holds
    /// (as stored now) is not decoded again.
    pub fn contains_cached(
        &self,
        element: &[u8],
        cache: &mut PageCache,
    ) -> Result<bool, PageError> {
        let Some((key, stored)) = self.stored_page_for(element)? else {
            return Ok(false);
        };
        let holds = |(bytes, spans): &Decoded| {
            spans
                .binary_search_by(|&(at, len)| bytes[at..at + len].cmp(element))
                .is_ok()
        };
        if let Some((cached, page)) = cache.get(&key)
            && *cached == stored
        {
            return Ok(holds(page));
        }
        let bytes = open(&key, stored.clone())?;
        let spans = elements(&bytes).map_err(|BadPage| PageError::Bad(key.clone()))?;
        let page = (bytes, spans);
        let found = holds(&page);
        cache.put(key, (stored, page));
        Ok(found)
    }

    fn decode<'p>(key: &IVec, page: &'p IVec) -> Result<Vec<&'p [u8]>, PageError> {
        let spans = elements(page).map_err(|BadPage| PageError::Bad(key.clone()))?;
        Ok(spans
            .into_iter()
            .map(|(at, len)| &page[at..at + len])
            .collect())
    }

    /// Adds `items`, which must be sorted ascending (duplicates and
    /// elements already present are kept once).
    pub fn insert_sorted<T: AsRef<[u8]>>(&self, items: &[T]) -> Result<(), PageError> {
        let mut writer = Writer::new(&self.tree);
        let mut i = 0;
        while i < items.len() {
            let page = self.page_for(items[i].as_ref())?;
            // The items for this page: all below the next page's first element.
            let next = match &page {
                Some((key, _)) => self
                    .tree
                    .range::<&[u8], _>((Bound::Excluded(&key[..]), Bound::Unbounded))
                    .next()
                    .transpose()?
                    .map(|(k, _)| k),
                None => None,
            };
            let end = match &next {
                Some(next) => i + items[i..].partition_point(|x| x.as_ref() < &next[..]),
                None => items.len(),
            };
            let old: Vec<&[u8]> = match &page {
                Some((key, bytes)) => Self::decode(key, bytes)?,
                None => Vec::new(),
            };
            let mut merged: Vec<&[u8]> = Vec::with_capacity(old.len() + end - i);
            let (mut a, mut b) = (
                old.iter().peekable(),
                items[i..end].iter().map(AsRef::as_ref).peekable(),
            );
            loop {
                let take_old = match (a.peek(), b.peek()) {
                    (None, None) => break,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (Some(x), Some(y)) => **x <= *y,
                };
                let next_element = if take_old {
                    *a.next().expect("peeked")
                } else {
                    b.next().expect("peeked")
                };
                if merged.last() != Some(&next_element) {
                    merged.push(next_element);
                }
            }
            if let Some((key, _)) = &page {
                writer.remove(key);
            }
            for (first, bytes) in pages_of(&merged, self.page_bytes) {
                writer.insert(first, bytes);
            }
            writer.page_done()?;
            // The new pages must be visible to the lookups of later items
            // only if those items could fall into them, which they cannot:
            // they lie at or beyond `next`.
            i = end;
        }
        writer.flush()?;
        Ok(())
    }

    /// Removes every element for which `keep` is false; returns how many.
    pub fn retain(&self, keep: impl Fn(&[u8]) -> bool) -> Result<u64, PageError> {
        let mut writer = Writer::new(&self.tree);
        let mut removed = 0;
        for page in self.tree.iter() {
            let (key, stored) = page?;
            let bytes = open(&key, stored)?;
            let old = Self::decode(&key, &bytes)?;
            let kept: Vec<&[u8]> = old.iter().copied().filter(|e| keep(e)).collect();
            if kept.len() == old.len() {
                continue;
            }
            removed += (old.len() - kept.len()) as u64;
            writer.remove(&key);
            for (first, page) in pages_of(&kept, self.page_bytes) {
                writer.insert(first, page);
            }
            writer.page_done()?;
        }
        writer.flush()?;
        Ok(removed)
    }

    /// Whether `element` is in the set (for tests: the checks that need it
    /// use [`Self::contains_cached`]).
    #[cfg(test)]
    pub fn contains(&self, element: &[u8]) -> Result<bool, PageError> {
        let Some((key, bytes)) = self.page_for(element)? else {
            return Ok(false);
        };
        Ok(Self::decode(&key, &bytes)?.binary_search(&element).is_ok())
    }

    /// The elements from `from` (inclusive) up to `to` (exclusive, or the
    /// end), in order.
    pub fn range(&self, from: &[u8], to: Option<&[u8]>) -> Range {
        let mut range = Range::new(from, to);
        // The first page is the one found for `from`; the others follow it.
        let start = match self.stored_page_for(from) {
            Ok(Some((key, stored))) => {
                if let Err(e) = range.enter(key.clone(), stored) {
                    return Range::failed(e);
                }
                Bound::Excluded(key)
            }
            Ok(None) => Bound::Unbounded,
            Err(e) => return Range::failed(PageError::Sled(e)),
        };
        range.pages = Some(self.tree.range::<IVec, _>((start, Bound::Unbounded)));
        range
    }

    /// Every element, in order.
    pub fn iter(&self) -> Range {
        self.range(&[], None)
    }

    /// The last element below `before`, if any.
    pub fn last_before(&self, before: &[u8]) -> Result<Option<IVec>, PageError> {
        let mut pages = self.tree.range(..before);
        while let Some(page) = pages.next_back() {
            let (key, stored) = page?;
            let bytes = open(&key, stored)?;
            let spans = elements(&bytes).map_err(|BadPage| PageError::Bad(key.clone()))?;
            if let Some((at, len)) = spans
                .into_iter()
                .rev()
                .find(|(at, len)| &bytes[*at..at + len] < before)
            {
                return Ok(Some(bytes.subslice(at, len)));
            }
        }
        Ok(None)
    }

    /// How many pages the set uses.
    #[cfg(test)]
    pub fn pages(&self) -> usize {
        self.tree.len()
    }
}

/// The elements of a range of a [`PagedSet`], as cheap views into pages.
pub struct Range {
    pages: Option<sled::Iter>,
    current: Option<(IVec, std::vec::IntoIter<(usize, usize)>)>,
    from: Vec<u8>,
    to: Option<Vec<u8>>,
    /// Where in the current page the element returned last is.
    returned: Option<(usize, usize)>,
    /// The last element returned from the pages before the current one.
    last: Option<IVec>,
    error: Option<PageError>,
}

impl Range {
    /// A range from `from` (inclusive) to `to` (exclusive, or the end)
    /// that has no page yet.
    fn new(from: &[u8], to: Option<&[u8]>) -> Range {
        Range {
            pages: None,
            current: None,
            from: from.to_vec(),
            to: to.map(<[u8]>::to_vec),
            returned: None,
            last: None,
            error: None,
        }
    }

    /// A range that gives `e`, then ends.
    fn failed(e: PageError) -> Range {
        Range {
            error: Some(e),
            ..Range::new(&[], None)
        }
    }

    /// Makes the page stored under `key` the current one, from its first
    /// element at or after `from` and after the last one returned from the
    /// pages before (a write in another thread may have split a page
    /// meanwhile, so the next page can repeat the end of the last).
    fn enter(&mut self, key: IVec, stored: IVec) -> Result<(), PageError> {
        let bytes = open(&key, stored)?;
        let spans = elements(&bytes).map_err(|BadPage| PageError::Bad(key))?;
        let first = spans.partition_point(|&(at, len)| {
            let element = &bytes[at..at + len];
            element < &self.from[..] || self.last.as_deref().is_some_and(|last| element <= last)
        });
        let mut spans = spans.into_iter();
        if first > 0 {
            spans.nth(first - 1);
        }
        self.current = Some((bytes, spans));
        Ok(())
    }

    /// Ends the range.
    fn end(&mut self) {
        self.pages = None;
        self.current = None;
    }
}

impl Iterator for Range {
    type Item = Result<IVec, PageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.end();
            return Some(Err(e));
        }
        loop {
            if let Some((page, spans)) = &mut self.current {
                if let Some((at, len)) = spans.next() {
                    if self
                        .to
                        .as_deref()
                        .is_some_and(|to| page[at..at + len] >= *to)
                    {
                        self.end();
                        return None;
                    }
                    self.returned = Some((at, len));
                    return Some(Ok(page.subslice(at, len)));
                }
                if let Some((at, len)) = self.returned.take() {
                    self.last = Some(page.subslice(at, len));
                }
                self.current = None;
            }
            let (key, stored) = match self.pages.as_mut()?.next()? {
                Ok(page) => page,
                Err(e) => {
                    self.end();
                    return Some(Err(PageError::Sled(e)));
                }
            };
            // A page's key is its first element: a page that starts at or
            // after the end of the range is not opened.
            if self.to.as_deref().is_some_and(|to| key[..] >= *to) {
                self.end();
                return None;
            }
            if let Err(e) = self.enter(key, stored) {
                self.end();
                return Some(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn set() -> (tempfile::TempDir, PagedSet) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let set = PagedSet::new(db.open_tree("set").unwrap());
        (dir, set)
    }

    fn all(set: &PagedSet) -> Vec<Vec<u8>> {
        set.iter().map(|e| e.unwrap().to_vec()).collect()
    }

    #[test]
    fn no_batch_is_applied_in_the_middle_of_a_page_replacement() {
        // Pages that each split into several when the new items land, over
        // more than one batch.
        let (_dir, set) = set();
        let old: Vec<[u8; 8]> = (0u64..60_000).map(|i| (i * 4).to_be_bytes()).collect();
        set.insert_sorted(&old).unwrap();
        let pages_before = set.tree().len();
        let old: Vec<Vec<u8>> = old.iter().map(|e| e.to_vec()).collect();
        let batches = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = batches.clone();
        let tree = set.tree().clone();
        AFTER_BATCH.with_borrow_mut(|hook| {
            *hook = Some(Box::new(move |_: &Tree| {
                // After any batch, every element stored before is still there.
                let now = all(&PagedSet::new(tree.clone()));
                let missing = old.iter().filter(|e| now.binary_search(e).is_err()).count();
                assert_eq!(missing, 0, "batch {}", seen.get());
                seen.set(seen.get() + 1);
            }))
        });
        let new: Vec<[u8; 8]> = (0u64..120_000).map(|i| (i * 2 + 1).to_be_bytes()).collect();
        set.insert_sorted(&new).unwrap();
        AFTER_BATCH.with_borrow_mut(|hook| *hook = None);
        assert!(batches.get() > 1, "{} batches", batches.get());
        assert!(set.tree().len() > 2 * pages_before);
        assert_eq!(all(&set).len(), 180_000);
    }

    #[test]
    fn a_range_never_repeats_an_element_when_its_page_splits_meanwhile() {
        let (_dir, set) = set();
        let old: Vec<[u8; 8]> = (0u64..2_000).map(|i| (i * 4).to_be_bytes()).collect();
        set.insert_sorted(&old).unwrap();
        let mut range = set.range(&[], None);
        let first = range.next().unwrap().unwrap().to_vec();
        // The first page splits: the pages after it now repeat its end.
        let pages_before = set.pages();
        let new: Vec<[u8; 8]> = (0u64..1_000).map(|i| (i * 4 + 1).to_be_bytes()).collect();
        set.insert_sorted(&new).unwrap();
        assert!(set.pages() > pages_before, "no page split");
        let rest: Vec<Vec<u8>> = range.map(|e| e.unwrap().to_vec()).collect();
        let got: Vec<Vec<u8>> = std::iter::once(first).chain(rest).collect();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "repeated or out of order"
        );
        for element in &old {
            assert!(got.binary_search(&element.to_vec()).is_ok());
        }
    }

    #[test]
    fn a_range_does_not_open_the_page_at_its_end() {
        let (_dir, set) = set();
        let items: Vec<[u8; 8]> = (0u64..5_000).map(u64::to_be_bytes).collect();
        set.insert_sorted(&items).unwrap();
        let keys: Vec<IVec> = set.tree.iter().keys().map(Result::unwrap).collect();
        assert!(keys.len() > 2, "{} pages", keys.len());
        // The second page no longer decompresses: a range that ends at its
        // first element never opens it, one that ends after does.
        let stored = set.tree.get(&keys[1]).unwrap().unwrap();
        set.tree
            .insert(&keys[1], &stored[..stored.len() - 3])
            .unwrap();
        let got: Vec<IVec> = set
            .range(&keys[0], Some(&keys[1]))
            .map(Result::unwrap)
            .collect();
        let expected: Vec<&[u8]> = items
            .iter()
            .map(|i| &i[..])
            .take_while(|i| *i < &keys[1][..])
            .collect();
        assert_eq!(got.iter().map(|e| &e[..]).collect::<Vec<_>>(), expected);
        let mut past = keys[1].to_vec();
        past.push(0);
        assert!(set.range(&keys[0], Some(&past)).any(|e| e.is_err()));
    }

    #[test]
    fn elements_round_trip_through_pages() {
        let long = vec![7u8; 300];
        let items: Vec<&[u8]> = vec![b"", b"a", &long, b"b"];
        let pages: Vec<_> = pages_of(&items, PAGE_BYTES).collect();
        assert_eq!(pages.len(), 1);
        let spans = elements(&pages[0].1).unwrap();
        let back: Vec<&[u8]> = spans.iter().map(|(a, l)| &pages[0].1[*a..a + l]).collect();
        assert_eq!(back, items);
        assert_eq!(elements(&[0x85]), Err(BadPage));
        assert_eq!(
            elements(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(BadPage)
        );
    }

    /// The decoded size of every page of `set`'s tree.
    fn page_sizes(set: &PagedSet) -> Vec<usize> {
        set.tree()
            .iter()
            .map(|page| {
                let (key, stored) = page.unwrap();
                open(&key, stored).unwrap().len()
            })
            .collect()
    }

    #[test]
    fn a_set_fills_pages_to_its_own_size() {
        let (_dir, big) = set();
        let small = PagedSet::with_page_bytes(big.tree().clone(), 1024);
        let items: Vec<[u8; 8]> = (0u64..5_000).map(|i| (i * 2).to_be_bytes()).collect();
        // Pages of 8 KiB, as a store written before holds them.
        big.insert_sorted(&items).unwrap();
        assert!(page_sizes(&big).iter().any(|&n| n > 1024));
        // Rewritten by `retain`, through the small set: 1 KiB pages.
        small.retain(|e| e[7] % 8 != 6).unwrap();
        let kept: Vec<[u8; 8]> = items.into_iter().filter(|e| e[7] % 8 != 6).collect();
        let sizes = page_sizes(&small);
        // 9 bytes an element: a page of 1 KiB holds about 113.
        assert!(
            sizes.len() >= kept.len() * 9 / 1024,
            "{} pages",
            sizes.len()
        );
        assert!(sizes.iter().all(|&n| n <= 1024), "{sizes:?}");
        // Pages of 8 KiB again, then elements merged into them through the
        // small set: the pages it touched are split to its size.
        let (_other, fresh) = set();
        fresh.insert_sorted(&kept).unwrap();
        let small = PagedSet::with_page_bytes(fresh.tree().clone(), 1024);
        let odd: Vec<[u8; 8]> = (0u64..200).map(|i| (i * 2 + 1).to_be_bytes()).collect();
        small.insert_sorted(&odd).unwrap();
        let sizes = page_sizes(&small);
        assert!(sizes[0] <= 1024, "the page merged into: {sizes:?}");
        assert!(
            sizes.iter().any(|&n| n > 1024),
            "pages not touched stay: {sizes:?}"
        );
        let mut all_now: Vec<Vec<u8>> = kept.iter().chain(&odd).map(|e| e.to_vec()).collect();
        all_now.sort();
        assert_eq!(all(&small), all_now);
    }

    #[test]
    fn many_sequential_inserts_fill_pages() {
        let (_dir, set) = set();
        for chunk in (0u64..20_000).collect::<Vec<_>>().chunks(700) {
            let items: Vec<[u8; 8]> = chunk.iter().map(|i| i.to_be_bytes()).collect();
            set.insert_sorted(&items).unwrap();
        }
        assert_eq!(all(&set).len(), 20_000);
        // 9 bytes an element: a page holds about 450.
        assert!(
            set.pages() < 20_000 * 9 / (PAGE_BYTES / 2),
            "{} pages",
            set.pages()
        );
        let mid: Vec<Vec<u8>> = set
            .range(&100u64.to_be_bytes(), Some(&105u64.to_be_bytes()))
            .map(|e| e.unwrap().to_vec())
            .collect();
        assert_eq!(
            mid,
            (100u64..105)
                .map(|i| i.to_be_bytes().to_vec())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            set.last_before(&5000u64.to_be_bytes())
                .unwrap()
                .unwrap()
                .to_vec(),
            4999u64.to_be_bytes()
        );
        assert!(set.contains(&19_999u64.to_be_bytes()).unwrap());
        assert!(!set.contains(&20_000u64.to_be_bytes()).unwrap());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The paged set behaves like a BTreeSet under inserts, removals and
        /// range queries.
        #[test]
        fn agrees_with_a_btreeset(
            batches in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(0u8..4, 0..40), 0..300), 1..6),
            cut in any::<u8>(),
            from in proptest::collection::vec(0u8..4, 0..4),
            to in proptest::option::of(proptest::collection::vec(0u8..4, 0..4)),
        ) {
            let (_dir, set) = set();
            let mut model = BTreeSet::new();
            // Kept across the writes: a page rewritten since must be read again.
            let mut pages = page_cache(1 << 20);
            for mut batch in batches {
                batch.sort();
                set.insert_sorted(&batch).unwrap();
                model.extend(batch.iter().cloned());
                prop_assert_eq!(all(&set), model.iter().cloned().collect::<Vec<_>>());
                for probe in batch.iter().chain([&from]) {
                    prop_assert_eq!(set.contains_cached(probe, &mut pages).unwrap(), model.contains(probe));
                }
            }
            let keep = |e: &[u8]| e.iter().map(|&b| u32::from(b)).sum::<u32>() % 7 != u32::from(cut) % 7;
            set.retain(keep).unwrap();
            model.retain(|e| keep(e));
            prop_assert_eq!(all(&set), model.iter().cloned().collect::<Vec<_>>());
            let got: Vec<Vec<u8>> = set.range(&from, to.as_deref()).map(|e| e.unwrap().to_vec()).collect();
            let expected: Vec<Vec<u8>> = model
                .iter()
                .filter(|e| e.as_slice() >= from.as_slice() && to.as_ref().is_none_or(|t| e.as_slice() < t.as_slice()))
                .cloned()
                .collect();
            prop_assert_eq!(got, expected);
            for probe in [&from, to.as_ref().unwrap_or(&from)] {
                prop_assert_eq!(set.contains(probe).unwrap(), model.contains(probe));
                prop_assert_eq!(set.contains_cached(probe, &mut pages).unwrap(), model.contains(probe));
                let last = set.last_before(probe).unwrap().map(|e| e.to_vec());
                prop_assert_eq!(last, model.range(..probe.clone()).next_back().cloned());
            }
        }
    }

    #[test]
    fn pages_are_stored_compressed_and_uncompressed_pages_still_read() {
        let (_dir, set) = set();
        let items: Vec<[u8; 8]> = (0..5000u64).map(|i| (i * 2).to_be_bytes()).collect();
        set.insert_sorted(&items).unwrap();
        assert!(set.pages() > 1);
        for page in set.tree.iter() {
            assert!(compress::is_compressed(&page.unwrap().1));
        }
        // Replace every page with its elements as format version 1 stored them.
        for page in set.tree.iter() {
            let (key, stored) = page.unwrap();
            let plain = open(&key, stored).unwrap();
            assert!(!compress::is_compressed(&plain));
            set.tree.insert(key, plain).unwrap();
        }
        let expected: Vec<Vec<u8>> = items.iter().map(|i| i.to_vec()).collect();
        assert_eq!(all(&set), expected);
        assert!(set.contains(&8u64.to_be_bytes()).unwrap());
        assert!(!set.contains(&9u64.to_be_bytes()).unwrap());
        // Writes into plain pages leave them compressed.
        set.insert_sorted(&[9u64.to_be_bytes()]).unwrap();
        assert!(set.contains(&9u64.to_be_bytes()).unwrap());
        let (_, first) = set.tree.first().unwrap().unwrap();
        assert!(compress::is_compressed(&first));
    }

    #[test]
    fn a_page_that_does_not_decompress_is_a_bad_page() {
        let (_dir, set) = set();
        let items: Vec<[u8; 8]> = (0..100u64).map(u64::to_be_bytes).collect();
        set.insert_sorted(&items).unwrap();
        let (key, stored) = set.tree.first().unwrap().unwrap();
        set.tree.insert(&key, &stored[..stored.len() - 3]).unwrap();
        assert!(matches!(set.iter().next(), Some(Err(PageError::Bad(_)))));
        assert!(matches!(set.contains(&items[5]), Err(PageError::Bad(_))));
    }
}
