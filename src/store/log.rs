//! The log: records by seq, in pages of [`RECORDS_PER_PAGE`].
//!
//! Page `p` (key: `p` as u64 big-endian) holds the records with seq
//! `p * RECORDS_PER_PAGE + 1` to `(p + 1) * RECORDS_PER_PAGE`, each as a
//! LEB128 length and the record's bytes (the page format of [`super::pages`]),
//! compressed as one zstd frame (see [`super::compress`]; pages of format
//! version 1 are not, and read as they are). Appending fills the last page and starts new ones; each page is written
//! whole, so a crash leaves whole pages, and recovery cuts them back to the
//! head.

use std::sync::Mutex;

use sled::{IVec, Tree};

use super::cache::{Decoded, SizedLru, decoded_size};
use super::compress;
use super::pages::{BadPage, elements, push_element};
use super::record::MAX_EVENT_BYTES;

/// Records per page: a page of typical events is 4 to 5 KiB decoded,
/// about half that compressed.
pub const RECORDS_PER_PAGE: u64 = 32;

/// How many pages one sled batch writes.
const PAGES_PER_BATCH: usize = 64;

/// The most a page can hold once decompressed: full records, their hashes
/// and headers, and their lengths.
const PAGE_LIMIT: usize = RECORDS_PER_PAGE as usize * (MAX_EVENT_BYTES + 1024);

/// A stored page's bytes, decompressed if they were compressed.
fn open_page(page: u64, stored: IVec) -> Result<IVec, LogError> {
    compress::open(stored, PAGE_LIMIT).ok_or(LogError::BadPage(page))
}

/// How much memory a log's decoded pages may take. Replay order is not
/// append order: an event dated only by its year sorts at the year's
/// start, ahead of the pages written before it, and an event appended out
/// of date order sorts years back. A replay therefore comes back to pages
/// it read thousands of pages earlier: in the replay order of a generated
/// million events, keeping the last 8 pages decodes each page 7.5 times,
/// keeping 2,048 (about 10 MiB of that timeline's pages) 2.8 times
/// (BENCHMARKS.md). A budget in bytes rather than pages keeps large events
/// from holding gigabytes; a page larger than all of it is not kept.
const CACHED_BYTES: usize = 12 << 20;

pub struct Log {
    tree: Tree,
    /// The pages read last, decoded, by page number.
    cached: Mutex<SizedLru<u64, Page>>,
}

/// A log error: the storage engine's, or a page that does not decode.
#[derive(Debug)]
pub enum LogError {
    Sled(sled::Error),
    BadPage(u64),
}

impl From<sled::Error> for LogError {
    fn from(e: sled::Error) -> LogError {
        LogError::Sled(e)
    }
}

/// A page's bytes and the (offset, length) of each record in it.
type Page = Decoded;

/// The spans of the records of a page still to be read.
type Spans = std::vec::IntoIter<(usize, usize)>;

fn page_of(seq: u64) -> (u64, usize) {
    (
        (seq - 1) / RECORDS_PER_PAGE,
        ((seq - 1) % RECORDS_PER_PAGE) as usize,
    )
}

impl Log {
    pub fn new(tree: Tree) -> Log {
        Log {
            tree,
            cached: Mutex::new(SizedLru::new(CACHED_BYTES, decoded_size)),
        }
    }

    fn page(&self, page: u64) -> Result<Option<Page>, LogError> {
        let Some(stored) = self.tree.get(page.to_be_bytes())? else {
            return Ok(None);
        };
        let bytes = open_page(page, stored)?;
        let spans = elements(&bytes).map_err(|BadPage| LogError::BadPage(page))?;
        Ok(Some((bytes, spans)))
    }

    /// Forgets the cached pages (every write does).
    fn forget(&self) {
        self.cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The stored bytes of record `seq`, if there are any.
    pub fn get(&self, seq: u64) -> Result<Option<IVec>, LogError> {
        if seq == 0 {
            return Ok(None);
        }
        let (page, index) = page_of(seq);
        let record =
            |(bytes, spans): &Page| spans.get(index).map(|&(at, len)| bytes.subslice(at, len));
        // The lock is held while a missing page is read, so that a write's
        // `forget` cannot come between the read and the caching.
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cached.get(&page) {
            return Ok(record(hit));
        }
        let Some(read) = self.page(page)? else {
            return Ok(None);
        };
        let found = record(&read);
        cached.put(page, read);
        Ok(found)
    }

    /// Appends `records`, which take the seqs from `first` on; `first` must
    /// follow the last record stored.
    pub fn append(&self, first: u64, records: &[Vec<u8>]) -> Result<(), LogError> {
        self.forget();
        // Pages of one batch are compressed together, side by side.
        let mut pages: Vec<(u64, Vec<u8>)> = Vec::new();
        let write = |pages: &mut Vec<(u64, Vec<u8>)>| {
            let (keys, raws): (Vec<u64>, Vec<Vec<u8>>) = std::mem::take(pages).into_iter().unzip();
            let mut batch = sled::Batch::default();
            for (page, bytes) in keys.into_iter().zip(compress::compress_all(raws)) {
                batch.insert(&page.to_be_bytes(), bytes);
            }
            self.tree.apply_batch(batch)
        };
        let mut seq = first;
        let mut rest = records;
        while !rest.is_empty() {
            let (page, index) = page_of(seq);
            let mut bytes = match self.page(page)? {
                Some((bytes, spans)) => {
                    // Keep the records before `seq` (more would be crash leftovers).
                    let end = match index {
                        0 => 0,
                        i => spans.get(i - 1).map_or(bytes.len(), |(at, len)| at + len),
                    };
                    bytes[..end].to_vec()
                }
                None => Vec::new(),
            };
            let room = (RECORDS_PER_PAGE as usize - index).min(rest.len());
            for record in &rest[..room] {
                push_element(&mut bytes, record);
            }
            pages.push((page, bytes));
            if pages.len() >= PAGES_PER_BATCH {
                write(&mut pages)?;
            }
            seq += room as u64;
            rest = &rest[room..];
        }
        write(&mut pages)?;
        // A reader may have cached a page while it was being written.
        self.forget();
        Ok(())
    }

    /// Removes every record above `head`.
    pub fn truncate_above(&self, head: u64) -> Result<(), LogError> {
        self.forget();
        let keep_pages = head.div_ceil(RECORDS_PER_PAGE);
        for entry in self.tree.range(keep_pages.to_be_bytes()..) {
            let (key, _) = entry?;
            self.tree.remove(key)?;
        }
        if !head.is_multiple_of(RECORDS_PER_PAGE) {
            let (page, index) = page_of(head);
            if let Some((bytes, spans)) = self.page(page)?
                && spans.len() > index + 1
            {
                let (at, len) = spans[index];
                let kept = compress::compress(bytes[..at + len].to_vec());
                self.tree.insert(page.to_be_bytes(), kept)?;
            }
        }
        Ok(())
    }

    /// The highest seq stored (crash leftovers included).
    pub fn last_seq(&self) -> Result<u64, LogError> {
        let Some((key, _)) = self.tree.last()? else {
            return Ok(0);
        };
        let page = u64::from_be_bytes(
            key.as_ref()
                .try_into()
                .map_err(|_| LogError::BadPage(u64::MAX))?,
        );
        let (_, spans) = self.page(page)?.ok_or(LogError::BadPage(page))?;
        Ok(page * RECORDS_PER_PAGE + spans.len() as u64)
    }

    /// Every stored record from seq 1, as (seq, bytes), page by page; stops
    /// at the first missing page (verify reports the gap).
    pub fn iter(&self) -> impl Iterator<Item = Result<(u64, IVec), LogError>> + '_ {
        let mut pages = self.tree.iter();
        // The page being read, its records' spans left, and the last seq read.
        let mut current: Option<(IVec, Spans, u64)> = None;
        std::iter::from_fn(move || {
            loop {
                if let Some((bytes, spans, seq)) = &mut current
                    && let Some((at, len)) = spans.next()
                {
                    *seq += 1;
                    return Some(Ok((*seq, bytes.subslice(at, len))));
                }
                let (key, bytes) = match pages.next()? {
                    Ok(page) => page,
                    Err(e) => return Some(Err(LogError::Sled(e))),
                };
                let page = match <[u8; 8]>::try_from(key.as_ref()) {
                    Ok(k) => u64::from_be_bytes(k),
                    Err(_) => return Some(Err(LogError::BadPage(u64::MAX))),
                };
                let bytes = match open_page(page, bytes) {
                    Ok(bytes) => bytes,
                    Err(e) => return Some(Err(e)),
                };
                let spans = match elements(&bytes) {
                    Ok(spans) => spans,
                    Err(BadPage) => return Some(Err(LogError::BadPage(page))),
                };
                current = Some((bytes, spans.into_iter(), page * RECORDS_PER_PAGE));
            }
        })
    }

    /// Replaces record `seq`'s bytes (test hooks only).
    pub fn replace(&self, seq: u64, record: &[u8]) -> Result<(), LogError> {
        self.forget();
        let (page, index) = page_of(seq);
        let (bytes, spans) = self.page(page)?.ok_or(LogError::BadPage(page))?;
        let mut new = Vec::with_capacity(bytes.len());
        for (i, &(at, len)) in spans.iter().enumerate() {
            push_element(
                &mut new,
                if i == index {
                    record
                } else {
                    &bytes[at..at + len]
                },
            );
        }
        self.tree
            .insert(page.to_be_bytes(), compress::compress(new))?;
        Ok(())
    }

    /// Removes record `seq` and every later one in its page (test hooks only).
    pub fn remove_page_of(&self, seq: u64) -> Result<(), LogError> {
        self.forget();
        self.tree.remove(page_of(seq).0.to_be_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> (tempfile::TempDir, Log) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let log = Log::new(db.open_tree("log").unwrap());
        (dir, log)
    }

    fn record(seq: u64) -> Vec<u8> {
        vec![seq as u8; (seq % 300) as usize]
    }

    #[test]
    fn appends_fill_pages_and_read_back() {
        let (_dir, log) = log();
        let mut seq = 1;
        for size in [1, 63, 1, 200, 7, 64] {
            let records: Vec<Vec<u8>> = (seq..seq + size).map(record).collect();
            log.append(seq, &records).unwrap();
            seq += size;
        }
        assert_eq!(log.last_seq().unwrap(), seq - 1);
        for s in 1..seq {
            assert_eq!(log.get(s).unwrap().unwrap().to_vec(), record(s), "seq {s}");
        }
        assert_eq!(log.get(seq).unwrap(), None);
        assert_eq!(log.get(0).unwrap(), None);
        let all: Vec<u64> = log.iter().map(|r| r.unwrap().0).collect();
        assert_eq!(all, (1..seq).collect::<Vec<_>>());
    }

    #[test]
    fn truncation_cuts_back_to_the_head_and_appends_continue() {
        let (_dir, log) = log();
        let records: Vec<Vec<u8>> = (1..=300).map(record).collect();
        log.append(1, &records).unwrap();
        for head in [300, 200, 129, 128, 64, 1, 0] {
            log.truncate_above(head).unwrap();
            assert_eq!(log.last_seq().unwrap(), head);
        }
        // A crash leftover in the last page is overwritten by the next append.
        log.append(1, &[record(1), record(2), record(3)]).unwrap();
        log.append(2, &[vec![42]]).unwrap();
        assert_eq!(log.get(2).unwrap().unwrap().to_vec(), vec![42]);
        assert_eq!(log.get(3).unwrap(), None);
    }

    #[test]
    fn pages_are_stored_compressed_and_uncompressed_pages_still_read() {
        let (_dir, log) = log();
        let records: Vec<Vec<u8>> = (1..=40).map(record).collect();
        log.append(1, &records).unwrap();
        let stored = log.tree.get(1u64.to_be_bytes()).unwrap().unwrap();
        assert!(compress::is_compressed(&stored));
        // The last page as format version 1 wrote it: the records as they are.
        let mut plain = Vec::new();
        for seq in 33..=40 {
            push_element(&mut plain, &record(seq));
        }
        assert!(!compress::is_compressed(&plain));
        log.tree.insert(1u64.to_be_bytes(), plain).unwrap();
        log.forget();
        let all_read = |log: &Log| {
            for seq in 1..=40 {
                let read = log.get(seq).unwrap().unwrap();
                assert_eq!(read.to_vec(), record(seq), "seq {seq}");
            }
        };
        all_read(&log);
        assert_eq!(log.iter().count(), 40);
        assert_eq!(log.last_seq().unwrap(), 40);
        // Appending to the plain page stores it compressed, old records kept.
        log.append(41, &[vec![9; 500]]).unwrap();
        let stored = log.tree.get(1u64.to_be_bytes()).unwrap().unwrap();
        assert!(compress::is_compressed(&stored));
        assert_eq!(log.get(41).unwrap().unwrap().to_vec(), vec![9; 500]);
        all_read(&log);
    }

    #[test]
    fn the_pages_read_last_stay_decoded_up_to_the_cache_budget() {
        let (_dir, log) = log();
        let record_of = |_| vec![7; 12 << 10];
        let first: Vec<Vec<u8>> = (1..=RECORDS_PER_PAGE).map(record_of).collect();
        log.append(1, &first).unwrap();
        let page_size = decoded_size(&log.page(0).unwrap().unwrap());
        let fits = (CACHED_BYTES / page_size) as u64;
        assert!(fits > 4, "a page of the test takes {page_size} bytes");
        let rest: Vec<Vec<u8>> = (RECORDS_PER_PAGE + 1..=(fits + 1) * RECORDS_PER_PAGE)
            .map(record_of)
            .collect();
        log.append(RECORDS_PER_PAGE + 1, &rest).unwrap();
        // Pages 0 to fits - 1: all of them fit.
        for page in 0..fits {
            log.get(page * RECORDS_PER_PAGE + 1).unwrap().unwrap();
        }
        // Behind the cache's back, page 0 goes from the tree: it is still
        // served, decoded, as a replay coming back to it finds it.
        log.tree.remove(0u64.to_be_bytes()).unwrap();
        assert_eq!(log.get(2).unwrap().unwrap().len(), 12 << 10);
        // One page more, and the page used least recently (page 1) goes.
        log.get(fits * RECORDS_PER_PAGE + 1).unwrap().unwrap();
        log.tree.remove(1u64.to_be_bytes()).unwrap();
        assert_eq!(log.get(RECORDS_PER_PAGE + 2).unwrap(), None);
        assert_eq!(log.get(3).unwrap().unwrap().len(), 12 << 10);
    }

    #[test]
    fn a_page_larger_than_the_cache_budget_is_read_but_not_kept() {
        let (_dir, log) = log();
        let size = CACHED_BYTES / RECORDS_PER_PAGE as usize + 1;
        let records: Vec<Vec<u8>> = (1..=RECORDS_PER_PAGE).map(|_| vec![9; size]).collect();
        log.append(1, &records).unwrap();
        assert_eq!(log.get(1).unwrap().unwrap().len(), size);
        log.tree.remove(0u64.to_be_bytes()).unwrap();
        assert_eq!(log.get(2).unwrap(), None);
    }

    #[test]
    fn a_page_that_does_not_decompress_is_a_bad_page() {
        let (_dir, log) = log();
        let records: Vec<Vec<u8>> = (1..=10).map(record).collect();
        log.append(1, &records).unwrap();
        let stored = log.tree.get(0u64.to_be_bytes()).unwrap().unwrap();
        log.tree
            .insert(0u64.to_be_bytes(), &stored[..stored.len() / 2])
            .unwrap();
        log.forget();
        assert!(matches!(log.get(3), Err(LogError::BadPage(0))));
        assert!(matches!(log.iter().next(), Some(Err(LogError::BadPage(0)))));
    }
}
