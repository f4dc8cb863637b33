//! Sorted runs of index elements, spilled to a temporary file while a large
//! batch is staged and merged once when it commits.
//!
//! Writing the entity index each time its elements outgrew their budget
//! rewrote most of that index every time (every flush touches every
//! entity), and left sled's files with the garbage of each rewrite. Runs
//! keep the budget without it: each spill sorts the elements and appends
//! them to an unnamed temporary file in the store's directory (gone with
//! the process, whatever happens to it), in blocks of about 64 KiB, each
//! compressed with [`super::compress`] if that makes it smaller; the commit
//! merges the runs with the elements still in memory and writes the index
//! once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::compress;
use super::pages::{elements, push_element};

/// The bytes of elements a block holds before the next one starts.
const BLOCK_BYTES: usize = 64 << 10;
/// The most a block may hold once decompressed (one element may make a
/// block larger than [`BLOCK_BYTES`]).
const BLOCK_LIMIT: usize = 1 << 30;
/// The runs kept at most: the next spill merges them all into one, in a
/// new file, so that a merge holds at most this many blocks.
const MAX_RUNS: usize = 64;
/// A merge hands out its elements in chunks of at most this many ...
const CHUNK_ELEMENTS: usize = 1 << 16;
/// ... and about this many bytes.
const CHUNK_BYTES: usize = 4 << 20;

/// Sorted runs of elements in a temporary file.
#[derive(Default)]
pub struct Runs {
    file: Option<File>,
    /// Where each run's blocks start and end in the file.
    runs: Vec<(u64, u64)>,
    /// The end of the file.
    end: u64,
}

impl Runs {
    /// Whether nothing was spilled.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Adds a run of `sorted` elements (sorted, each once), creating the
    /// file in `dir` at the first. Once there are [`MAX_RUNS`], the runs so
    /// far and this one are merged into one run in a new file, which
    /// replaces the old. Nothing changes if it fails.
    pub fn spill(&mut self, dir: &Path, sorted: &[&[u8]]) -> io::Result<()> {
        match &self.file {
            Some(file) if self.runs.len() < MAX_RUNS => {
                let end = write_run(file, self.end, |writer| {
                    sorted.iter().try_for_each(|e| writer.push(e))
                })?;
                self.runs.push((self.end, end));
                self.end = end;
            }
            old => {
                let file = tempfile::tempfile_in(dir)?;
                let end = write_run(&file, 0, |writer| {
                    merge(
                        old.as_ref(),
                        &self.runs,
                        sorted,
                        |e| e,
                        |chunk| chunk.iter().try_for_each(|e| writer.push(e)),
                    )
                })?;
                self.file = Some(file);
                self.runs = vec![(0, end)];
                self.end = end;
            }
        }
        Ok(())
    }

    /// Merges every run with `rest` (sorted, each once) and gives `out`
    /// the elements in order, each once, in chunks (`rest` as it is, in
    /// one, if nothing was spilled); `read_error` says what a failure to
    /// read the runs back is.
    pub fn merge_with<E>(
        &self,
        rest: &[&[u8]],
        read_error: impl Fn(io::Error) -> E,
        mut out: impl FnMut(&[&[u8]]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.runs.is_empty() {
            return if rest.is_empty() { Ok(()) } else { out(rest) };
        }
        merge(self.file.as_ref(), &self.runs, rest, read_error, out)
    }
}

/// Writes a run from `start` in `file`, with what `fill` pushes; returns
/// where it ends.
fn write_run(
    file: &File,
    start: u64,
    fill: impl FnOnce(&mut BlockWriter) -> io::Result<()>,
) -> io::Result<u64> {
    let mut writer = BlockWriter {
        file,
        end: start,
        block: Vec::new(),
    };
    fill(&mut writer)?;
    writer.finish()
}

/// Appends elements to the file in blocks, each a length (u64 BE), a byte
/// saying whether it is compressed (1) or not (0), and the block.
struct BlockWriter<'f> {
    file: &'f File,
    end: u64,
    block: Vec<u8>,
}

impl BlockWriter<'_> {
    fn push(&mut self, element: &[u8]) -> io::Result<()> {
        push_element(&mut self.block, element);
        if self.block.len() >= BLOCK_BYTES {
            self.put()?;
        }
        Ok(())
    }

    fn put(&mut self) -> io::Result<()> {
        let raw = std::mem::take(&mut self.block);
        let raw_len = raw.len();
        let stored = compress::compress(raw);
        let mut framed = (stored.len() as u64).to_be_bytes().to_vec();
        framed.push(u8::from(stored.len() < raw_len));
        framed.extend_from_slice(&stored);
        self.file.write_all_at(&framed, self.end)?;
        self.end += framed.len() as u64;
        Ok(())
    }

    /// Writes the last block; returns the end of the file.
    fn finish(mut self) -> io::Result<u64> {
        if !self.block.is_empty() {
            self.put()?;
        }
        Ok(self.end)
    }
}

/// Merges the `runs` of `file` with `rest` (sorted, each once) and gives
/// `out` the elements in order, each once, in chunks; `read_error` turns a
/// failure to read a run into `out`'s error.
fn merge<E>(
    file: Option<&File>,
    runs: &[(u64, u64)],
    rest: &[&[u8]],
    read_error: impl Fn(io::Error) -> E,
    mut out: impl FnMut(&[&[u8]]) -> Result<(), E>,
) -> Result<(), E> {
    let mut readers: Vec<RunReader> = match file {
        Some(file) => runs
            .iter()
            .map(|&(start, end)| RunReader::new(file, start, end))
            .collect(),
        None => Vec::new(),
    };
    // (next element, source): the runs, then `rest` as the last source.
    let mut heap: BinaryHeap<Reverse<(Vec<u8>, usize)>> = BinaryHeap::new();
    for (i, reader) in readers.iter_mut().enumerate() {
        if let Some(element) = reader.next().map_err(&read_error)? {
            heap.push(Reverse((element, i)));
        }
    }
    let from_rest = readers.len();
    let mut rest = rest.iter();
    if let Some(element) = rest.next() {
        heap.push(Reverse((element.to_vec(), from_rest)));
    }
    let mut chunk: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    // The last element of the chunks given so far.
    let mut given: Option<Vec<u8>> = None;
    let mut give = |chunk: &mut Vec<Vec<u8>>, given: &mut Option<Vec<u8>>| {
        let view: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let out = out(&view);
        *given = chunk.pop();
        chunk.clear();
        out
    };
    while let Some(Reverse((element, source))) = heap.pop() {
        let next = if source == from_rest {
            rest.next().map(|e| e.to_vec())
        } else {
            readers[source].next().map_err(&read_error)?
        };
        if let Some(next) = next {
            heap.push(Reverse((next, source)));
        }
        if chunk.last().or(given.as_ref()) != Some(&element) {
            bytes += element.len();
            chunk.push(element);
        }
        if chunk.len() == CHUNK_ELEMENTS || bytes >= CHUNK_BYTES {
            give(&mut chunk, &mut given)?;
            bytes = 0;
        }
    }
    if !chunk.is_empty() {
        give(&mut chunk, &mut given)?;
    }
    Ok(())
}

/// Reads one run's elements in order, a block at a time.
struct RunReader<'f> {
    file: &'f File,
    at: u64,
    end: u64,
    block: Vec<u8>,
    spans: std::vec::IntoIter<(usize, usize)>,
}

impl<'f> RunReader<'f> {
    fn new(file: &'f File, start: u64, end: u64) -> RunReader<'f> {
        RunReader {
            file,
            at: start,
            end,
            block: Vec::new(),
            spans: Vec::new().into_iter(),
        }
    }

    fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some((at, len)) = self.spans.next() {
                return Ok(Some(self.block[at..at + len].to_vec()));
            }
            if self.at >= self.end {
                return Ok(None);
            }
            let bad = || io::Error::new(io::ErrorKind::InvalidData, "a spilled block is damaged");
            let mut head = [0; 9];
            self.file.read_exact_at(&mut head, self.at)?;
            let length = u64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
            if length > BLOCK_LIMIT as u64 || self.at + 9 + length > self.end {
                return Err(bad());
            }
            let mut stored = vec![0; length as usize];
            self.file.read_exact_at(&mut stored, self.at + 9)?;
            self.at += 9 + length;
            self.block = match head[8] {
                0 => stored,
                _ => compress::decompress(&stored, BLOCK_LIMIT).ok_or_else(bad)?,
            };
            self.spans = elements(&self.block).map_err(|_| bad())?.into_iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// Every element `runs` and `rest` give, in the order given, and the
    /// number of chunks they came in.
    fn merged(runs: &Runs, rest: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
        let (mut merged, mut chunks) = (Vec::new(), 0);
        runs.merge_with(
            rest,
            |e| e,
            |chunk| {
                chunks += 1;
                merged.extend(chunk.iter().map(|e| e.to_vec()));
                Ok(())
            },
        )
        .unwrap();
        (merged, chunks)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Runs spilled in any number, merged with the elements still in
        /// memory, give every element once, in order.
        #[test]
        fn runs_merge_into_every_element_once_in_order(
            spills in proptest::collection::vec(proptest::collection::btree_set(proptest::collection::vec(0u8..3, 0..6), 0..60), 0..150),
            rest in proptest::collection::btree_set(proptest::collection::vec(0u8..3, 0..6), 0..60),
            long in 0usize..3,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut runs = Runs::default();
            let mut model: BTreeSet<Vec<u8>> = BTreeSet::new();
            for (n, spill) in spills.iter().enumerate() {
                let mut spill = spill.clone();
                // Some elements longer than a block, with others after them.
                if n % 7 == long {
                    spill.insert(vec![1; BLOCK_BYTES + 10]);
                }
                let sorted: Vec<&[u8]> = spill.iter().map(Vec::as_slice).collect();
                runs.spill(dir.path(), &sorted).unwrap();
                model.extend(spill);
            }
            prop_assert!(runs.runs.len() <= MAX_RUNS);
            let rest_sorted: Vec<&[u8]> = rest.iter().map(Vec::as_slice).collect();
            model.extend(rest.iter().cloned());
            let (merged, _) = merged(&runs, &rest_sorted);
            prop_assert_eq!(merged, model.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_merge_of_more_runs_than_are_kept_crosses_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Runs::default();
        let spills = MAX_RUNS + 2;
        let all: Vec<[u8; 8]> = (0..(CHUNK_ELEMENTS as u64 * 3))
            .map(u64::to_be_bytes)
            .collect();
        for part in 0..spills {
            let sorted: Vec<&[u8]> = all
                .iter()
                .skip(part)
                .step_by(spills)
                .map(|e| &e[..])
                .collect();
            runs.spill(dir.path(), &sorted).unwrap();
        }
        assert!(runs.runs.len() < spills, "no merge of the runs kept");
        let (merged, chunks) = merged(&runs, &[]);
        assert!(chunks > 1);
        assert_eq!(merged, all.iter().map(|e| e.to_vec()).collect::<Vec<_>>());
    }

    #[test]
    fn many_elements_span_many_blocks_and_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Runs::default();
        let all: Vec<[u8; 8]> = (0u64..300_000).map(u64::to_be_bytes).collect();
        for part in 0..3 {
            let sorted: Vec<&[u8]> = all.iter().skip(part).step_by(3).map(|e| &e[..]).collect();
            runs.spill(dir.path(), &sorted).unwrap();
        }
        // The same elements twice, across the ends of the chunks merged.
        let sorted: Vec<&[u8]> = all.iter().map(|e| &e[..]).collect();
        runs.spill(dir.path(), &sorted).unwrap();
        let (merged, chunks) = merged(&runs, &[]);
        assert!(chunks > 1);
        assert_eq!(merged, all.iter().map(|e| e.to_vec()).collect::<Vec<_>>());
        // The file is unnamed: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
