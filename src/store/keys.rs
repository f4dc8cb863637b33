//! Key encodings. Every key sorts, byte by byte, in the order the store
//! needs: integers big-endian, signed integers with the sign bit flipped,
//! strings followed by a 0 byte (which no id, entity or attribute contains).
//! Every element of a paged index ends in the seq of its record.

/// Flips the sign bit so that signed order equals unsigned byte order.
fn flip(i: i64) -> u64 {
    (i as u64) ^ (1 << 63)
}

fn unflip(u: u64) -> i64 {
    (u ^ (1 << 63)) as i64
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The seq an index element ends in.
pub fn seq_of(element: &[u8]) -> Option<u64> {
    let at = element.len().checked_sub(8)?;
    u64_at(element, at)
}

/// `by_id` element: (id, 0, seq).
pub fn id(id: &str, seq: u64) -> Vec<u8> {
    let mut element = entity_prefix(id);
    element.extend_from_slice(&seq.to_be_bytes());
    element
}

/// The `by_id` prefix of every element of `id`.
pub fn id_prefix(id: &str) -> Vec<u8> {
    entity_prefix(id)
}

/// Decodes a `by_id` element into (id, seq).
pub fn decode_id(element: &[u8]) -> Option<(&str, u64)> {
    let nul = element.iter().position(|&b| b == 0)?;
    let id = std::str::from_utf8(&element[..nul]).ok()?;
    (element.len() == nul + 9).then_some(())?;
    Some((id, seq_of(element)?))
}

/// `by_time` key: (interval start, seq) — replay order.
pub fn time(start: i64, seq: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&flip(start).to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Decodes a `by_time` key into (start, seq).
pub fn decode_time(key: &[u8]) -> Option<(i64, u64)> {
    if key.len() != 16 {
        return None;
    }
    Some((unflip(u64_at(key, 0)?), u64_at(key, 8)?))
}

/// `by_entity` key prefix: every key of `entity` starts with it.
pub fn entity_prefix(entity: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(entity.len() + 17);
    key.extend_from_slice(entity.as_bytes());
    key.push(0);
    key
}

/// `by_entity` key: (entity, interval start, seq).
pub fn entity(entity: &str, start: i64, seq: u64) -> Vec<u8> {
    let mut key = entity_prefix(entity);
    key.extend_from_slice(&time(start, seq));
    key
}

/// `by_entity` element of store format 2: (entity, interval start, seq),
/// what the event changes about the entity (`changes`, encoded by
/// [`super::record::entity_element`]), and the seq again, as every element
/// ends in the seq of its record. Sorted like [`entity`]: the position
/// comes first and is unique.
pub fn entity_changes(name: &str, start: i64, seq: u64, changes: &[u8]) -> Vec<u8> {
    let mut element = entity(name, start, seq);
    element.extend_from_slice(changes);
    element.extend_from_slice(&seq.to_be_bytes());
    element
}

/// Decodes a `by_entity` element (of either format) into (entity, start, seq).
pub fn decode_entity(element: &[u8]) -> Option<(&str, i64, u64)> {
    let nul = element.iter().position(|&b| b == 0)?;
    let entity = std::str::from_utf8(&element[..nul]).ok()?;
    let (start, seq, _) = decode_entity_rest(&element[nul + 1..])?;
    Some((entity, start, seq))
}

/// Decodes what follows `entity ‖ 0` in a `by_entity` element: (start,
/// seq, changes), the changes `None` in an element of format 1, which has
/// none. For readers that know the entity already.
pub fn decode_entity_rest(rest: &[u8]) -> Option<(i64, u64, Option<&[u8]>)> {
    let (start, seq) = decode_time(rest.get(..16)?)?;
    let changes = match rest.len() {
        16 => None,
        n if n > 24 && u64_at(rest, n - 8)? == seq => Some(&rest[16..n - 8]),
        _ => return None,
    };
    Some((start, seq, changes))
}

/// The first key after every key that starts with `prefix` (which ends in 0).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    *end.last_mut().expect("a prefix ends in 0") = 1;
    end
}

/// `corrected` key: (corrected seq, correcting seq).
pub fn pair(corrected: u64, by: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&corrected.to_be_bytes());
    key[8..].copy_from_slice(&by.to_be_bytes());
    key
}

/// Decodes a `corrected` key.
pub fn decode_pair(key: &[u8]) -> Option<(u64, u64)> {
    (key.len() == 16)
        .then(|| Some((u64_at(key, 0)?, u64_at(key, 8)?)))
        .flatten()
}

/// `attrs` element: (entity, 0, attribute, 0, kind, seq that first used it).
pub fn attr_element(entity: &str, attr: &str, kind: u8, seq: u64) -> Vec<u8> {
    let mut element = attr_prefix(entity, attr);
    element.push(kind);
    element.extend_from_slice(&seq.to_be_bytes());
    element
}

/// The `attrs` prefix of (entity, attribute).
pub fn attr_prefix(entity: &str, name: &str) -> Vec<u8> {
    let mut prefix = attr(entity, name);
    prefix.push(0);
    prefix
}

/// Decodes an `attrs` element into (entity, attribute, kind, seq).
pub fn decode_attr_element(element: &[u8]) -> Option<(&str, &str, u8, u64)> {
    let first = element.iter().position(|&b| b == 0)?;
    let rest = &element[first + 1..];
    let second = rest.iter().position(|&b| b == 0)?;
    if rest.len() != second + 10 {
        return None;
    }
    let entity = std::str::from_utf8(&element[..first]).ok()?;
    let attr = std::str::from_utf8(&rest[..second]).ok()?;
    Some((entity, attr, rest[second + 1], seq_of(element)?))
}

/// (entity, attribute), as the batch check names it.
pub fn attr(entity: &str, attr: &str) -> Vec<u8> {
    let mut key = entity_prefix(entity);
    key.extend_from_slice(attr.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_by_start_then_seq_across_the_epoch() {
        let keys = [
            time(i64::MIN, 0),
            time(-62_000_000_000, 7),
            time(-1, 3),
            time(0, 1),
            time(0, 2),
            time(1_546_300_800, 1),
            time(i64::MAX, u64::MAX),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(decode_time(&time(-5, 9)), Some((-5, 9)));
        assert_eq!(decode_time(&[0; 15]), None);
    }

    #[test]
    fn entity_elements_of_both_formats_decode() {
        let old = entity("openai", -5, 7);
        let rest = |e: &[u8]| e["openai".len() + 1..].to_vec();
        assert_eq!(decode_entity_rest(&rest(&old)), Some((-5, 7, None)));
        let new = entity_changes("openai", -5, 7, b"changes");
        assert_eq!(
            decode_entity_rest(&rest(&new)),
            Some((-5, 7, Some(&b"changes"[..])))
        );
        assert_eq!(decode_entity(&new), Some(("openai", -5, 7)));
        assert_eq!(decode_entity(&old), Some(("openai", -5, 7)));
        assert_eq!(seq_of(&new), Some(7));
        // Sorted by position, whatever the changes.
        assert!(entity_changes("openai", -5, 7, b"zz") < entity_changes("openai", -5, 8, b"aa"));
        // A trailing seq that is not the element's, or no room for one.
        let mut bad = new.clone();
        *bad.last_mut().unwrap() = 8;
        assert_eq!(decode_entity(&bad), None);
        assert_eq!(decode_entity(&new[..old.len() + 4]), None);
    }

    #[test]
    fn entity_keys_group_by_entity_then_sort_by_time() {
        let a1 = entity("a", 10, 1);
        let a2 = entity("a", 20, 0);
        let ab = entity("ab", 0, 0);
        assert!(a1 < a2 && a2 < ab);
        assert!(a1.starts_with(&entity_prefix("a")) && !ab.starts_with(&entity_prefix("a")));
        assert_eq!(decode_entity(&a2), Some(("a", 20, 0)));
        assert_eq!(decode_entity(b"no-nul"), None);
    }

    #[test]
    fn pairs_and_prefix_ends() {
        assert_eq!(decode_pair(&pair(3, 9)), Some((3, 9)));
        assert!(pair(3, 9) < pair(4, 1));
        let prefix = entity_prefix("a");
        assert!(entity("a", i64::MAX, u64::MAX) < prefix_end(&prefix));
        assert!(prefix_end(&prefix) <= entity_prefix("a\u{1}"));
    }

    #[test]
    fn attribute_elements_round_trip() {
        let e = attr_element("openai", "cloud_providers", 1, 42);
        assert_eq!(
            decode_attr_element(&e),
            Some(("openai", "cloud_providers", 1, 42))
        );
        assert!(e.starts_with(&attr_prefix("openai", "cloud_providers")));
        assert!(
            !attr_element("openai", "cloud_providers_2", 0, 1)
                .starts_with(&attr_prefix("openai", "cloud_providers"))
        );
        assert_eq!(seq_of(&e), Some(42));
    }

    #[test]
    fn every_element_ends_in_its_seq() {
        assert_eq!(seq_of(&time(-5, 9)), Some(9));
        assert_eq!(seq_of(&entity("a", 3, 11)), Some(11));
        assert_eq!(seq_of(&id("ev-1", 12)), Some(12));
        assert_eq!(decode_id(&id("ev-1", 12)), Some(("ev-1", 12)));
        assert!(id("a", u64::MAX) < id("a-", 0) && id("a", 5).starts_with(&id_prefix("a")));
        assert_eq!(seq_of(&[1, 2]), None);
    }
}
