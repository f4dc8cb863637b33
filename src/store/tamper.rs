//! Test hooks that damage a store on purpose, so that tests outside this
//! module can show `verify` and `open` catching damage. Not for anything else.

use super::{META_FORMAT, Store, keys};

/// Flips every bit of the byte at `offset` in record `seq`'s stored bytes.
pub fn flip_record_byte(store: &Store, seq: u64, offset: usize) {
    let mut bytes = store
        .log
        .get(seq)
        .unwrap()
        .expect("the record exists")
        .to_vec();
    bytes[offset] ^= 0xff;
    store.log.replace(seq, &bytes).unwrap();
    store.flush().unwrap();
}

/// The length of record `seq`'s stored bytes.
pub fn record_len(store: &Store, seq: u64) -> usize {
    store
        .log
        .get(seq)
        .unwrap()
        .expect("the record exists")
        .len()
}

/// Removes record `seq` from the log (with the rest of its page).
pub fn remove_record(store: &Store, seq: u64) {
    store.log.remove_page_of(seq).unwrap();
    store.flush().unwrap();
}

/// Removes record `seq`'s element from an index: `by_time`, `by_id` or
/// `by_entity` (its first entity).
pub fn remove_index_entry(store: &Store, tree: &str, seq: u64) {
    let event = store.read(seq).unwrap().event;
    let start = event.at.start();
    let (set, element) = match tree {
        "by_time" => (&store.by_time, keys::time(start, seq).to_vec()),
        "by_id" => (&store.by_id, keys::id(&event.id, seq)),
        "by_entity" => (
            &store.by_entity,
            super::record::entity_element(&event, event.entities()[0], seq),
        ),
        other => panic!("no index tree {other}"),
    };
    set.retain(|e| e != element.as_slice()).unwrap();
    store.flush().unwrap();
}

/// Replaces what record `seq`'s `by_entity` element (of its first entity)
/// says the event changes with bytes that do not decode.
pub fn garble_entity_changes(store: &Store, seq: u64) {
    replace_entity_element(store, seq, |entity, start| {
        keys::entity_changes(entity, start, seq, &[0xff; 3])
    });
}

/// Replaces record `seq`'s `by_entity` element (of its first entity) with
/// one of store format 1, which keeps no changes.
pub fn downgrade_entity_element(store: &Store, seq: u64) {
    replace_entity_element(store, seq, |entity, start| keys::entity(entity, start, seq));
}

fn replace_entity_element(store: &Store, seq: u64, with: impl Fn(&str, i64) -> Vec<u8>) {
    let event = store.read(seq).unwrap().event;
    let entity = *event
        .entities()
        .first()
        .expect("the event changes something");
    let element = super::record::entity_element(&event, entity, seq);
    let removed = store.by_entity.retain(|e| e != element.as_slice()).unwrap();
    assert_eq!(removed, 1, "record {seq}'s element is in the entity index");
    store
        .by_entity
        .insert_sorted(&[with(entity, event.at.start())])
        .unwrap();
    store.flush().unwrap();
}

/// Adds a `by_time` element for a record that does not exist.
pub fn add_stray_index_entry(store: &Store, seq: u64) {
    store.by_time.insert_sorted(&[keys::time(0, seq)]).unwrap();
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
