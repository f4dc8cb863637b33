//! zstd compression of log pages, index pages and checkpoint chunks.
//!
//! A compressed value is one zstd frame; anything else is stored as it is.
//! Values of format version 1 were never compressed, and none of them
//! starts with the frame magic: a log page starts with a record's length
//! and version byte 1, a checkpoint body was never read without its header.
//! The contexts are kept per thread, as creating one costs more than
//! compressing a page.

use std::cell::RefCell;

/// The zstd level: the fastest of the standard ones. Pages are compressed
/// once, when written; higher levels bought little (BENCHMARKS.md).
const LEVEL: i32 = 1;

/// [`compress_all`] shares out values of this many bytes in all, or more.
const SHARED_BYTES: usize = 64 << 10;
/// ... between at most this many threads.
const MAX_THREADS: usize = 4;

/// The first bytes of every zstd frame.
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        RefCell::new(compressor());
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// A compressor at [`LEVEL`] whose frames end in a checksum of their
/// content, so that a damaged value is refused rather than read wrong.
fn compressor() -> Option<zstd::bulk::Compressor<'static>> {
    let mut compressor = zstd::bulk::Compressor::new(LEVEL).ok()?;
    compressor
        .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .ok()?;
    Some(compressor)
}

/// `raw` compressed, or `raw` itself if compressing fails or does not make
/// it smaller (both read back the same).
pub fn compress(raw: Vec<u8>) -> Vec<u8> {
    shrink(&raw).unwrap_or(raw)
}

/// `raw` compressed, if that works and makes it smaller.
fn shrink(raw: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR
        .with_borrow_mut(|c| c.as_mut().and_then(|c| c.compress(raw).ok()))
        .filter(|smaller| smaller.len() < raw.len())
}

/// Each of `raws` as [`compress`] makes it, in order; many bytes in all are
/// shared out between threads side by side.
pub fn compress_all(raws: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let total: usize = raws.iter().map(Vec::len).sum();
    let threads = if total < SHARED_BYTES {
        1
    } else {
        super::cores().min(MAX_THREADS)
    };
    let smaller = super::map_side_by_side(&raws, threads, |raw| shrink(raw));
    raws.into_iter()
        .zip(smaller)
        .map(|(raw, smaller)| smaller.unwrap_or(raw))
        .collect()
}

/// Whether `bytes` is a compressed value.
pub fn is_compressed(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// A stored page, decompressed if it is compressed and as it is if not;
/// `None` if it does not decompress or would exceed `limit` bytes.
pub fn open(stored: sled::IVec, limit: usize) -> Option<sled::IVec> {
    if !is_compressed(&stored) {
        return Some(stored);
    }
    decompress(&stored, limit).map(sled::IVec::from)
}

/// The value `bytes` holds, decompressed if it is compressed; `None` if it
/// does not decompress or would exceed `limit` bytes.
pub fn decompress(bytes: &[u8], limit: usize) -> Option<Vec<u8>> {
    let size = zstd::zstd_safe::get_frame_content_size(bytes).ok()??;
    let size = usize::try_from(size).ok().filter(|&s| s <= limit)?;
    let raw = DECOMPRESSOR.with_borrow_mut(|d| d.as_mut()?.decompress(bytes, size).ok())?;
    (raw.len() == size).then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_small_ones_stay_as_they_are() {
        let page: Vec<u8> = (0..4000u32).flat_map(|i| (i % 17).to_be_bytes()).collect();
        let compressed = compress(page.clone());
        assert!(is_compressed(&compressed));
        assert!(compressed.len() < page.len() / 4);
        assert_eq!(decompress(&compressed, page.len()).unwrap(), page);
        // The limit is a limit.
        assert_eq!(decompress(&compressed, page.len() - 1), None);
        // Nothing to gain: stored as it is.
        assert_eq!(compress(vec![1, 2, 3]), [1, 2, 3]);
        assert!(!is_compressed(&[1, 2, 3]));
    }

    #[test]
    fn many_values_compress_side_by_side_in_order() {
        // Enough bytes to share out; some values do not shrink.
        let raws: Vec<Vec<u8>> = (0..300u32)
            .map(|i| match i % 3 {
                0 => (0..2000u32)
                    .flat_map(|j| (j % (i + 2)).to_be_bytes())
                    .collect(),
                1 => vec![i as u8; 1 + i as usize],
                _ => i.to_be_bytes().to_vec(),
            })
            .collect();
        assert!(raws.iter().map(Vec::len).sum::<usize>() > SHARED_BYTES);
        let each: Vec<Vec<u8>> = raws.iter().cloned().map(compress).collect();
        assert_eq!(compress_all(raws.clone()), each);
        assert!(each.iter().any(|v| is_compressed(v)));
        assert!(each.iter().any(|v| !is_compressed(v)));
        // Few bytes: the same, in this thread.
        assert_eq!(compress_all(raws[..3].to_vec()), each[..3]);
        assert_eq!(compress_all(Vec::new()), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn damaged_frames_are_refused_not_panics() {
        let page = vec![7u8; 10_000];
        let compressed = compress(page.clone());
        for cut in [4, 8, compressed.len() - 1] {
            assert_eq!(
                decompress(&compressed[..cut], page.len()),
                None,
                "cut at {cut}"
            );
        }
        // A flipped bit anywhere after the frame header: the checksum (or
        // the decoder) refuses it.
        for at in 6..compressed.len() {
            let mut flipped = compressed.clone();
            flipped[at] ^= 0x10;
            assert_eq!(decompress(&flipped, page.len()), None, "flipped at {at}");
        }
    }
}
