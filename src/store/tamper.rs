//! Test hooks that damage a store on purpose, so that tests outside this
//! module can show `verify` and `open` catching damage. Not for anything else.

use super::{META_FORMAT, Store, keys};

/// Flips every bit of the byte at `offset` in record `seq`'s stored bytes.
pub fn flip_record_byte(store: &Store, seq: u64, offset: usize) {
    let key = keys::seq(seq);
    let mut bytes = store
        .log
        .get(key)
        .unwrap()
        .expect("the record exists")
        .to_vec();
    bytes[offset] ^= 0xff;
    store.log.insert(key, bytes).unwrap();
    store.flush().unwrap();
}

/// Removes record `seq`'s entry from an index tree: `by_time`, `by_id` or
/// `by_entity` (its first entity).
pub fn remove_index_entry(store: &Store, tree: &str, seq: u64) {
    let event = store.read(seq).unwrap().event;
    let start = event.at.start();
    match tree {
        "by_time" => store.by_time.remove(keys::time(start, seq)).unwrap(),
        "by_id" => store.by_id.remove(event.id.as_bytes()).unwrap(),
        "by_entity" => store
            .by_entity
            .remove(keys::entity(event.entities()[0], start, seq))
            .unwrap(),
        other => panic!("no index tree {other}"),
    };
    store.flush().unwrap();
}

/// Adds a `by_time` entry for a record that does not exist.
pub fn add_stray_index_entry(store: &Store, seq: u64) {
    store.by_time.insert(keys::time(0, seq), &[]).unwrap();
    store.flush().unwrap();
}

/// Writes another format version into `meta`.
pub fn set_format_version(store: &Store, version: u32) {
    store
        .meta
        .insert(META_FORMAT, &version.to_be_bytes())
        .unwrap();
    store.flush().unwrap();
}
