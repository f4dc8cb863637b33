//! Store tests that need the inside of the store: the commit protocol,
//! crash leftovers, format versions.

use super::*;
use crate::event::{Op, Origin, Validated, Value};
use crate::state::{AsOf, Resume, State};
use crate::store::tamper;
use crate::testing::{self, rows as facts, w};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn event(id: &str, at: &str, changes: &[(&str, Op)]) -> Located {
    Located::new(
        crate::testing::event(id, at, changes),
        Origin {
            file: "test".into(),
            number: 1,
            line: None,
            id: Some(id.into()),
        },
    )
}

fn set(v: i64) -> Op {
    testing::set(Value::Int(v))
}

fn add(id: &str) -> Op {
    testing::add(testing::r(id))
}

fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s"), OpenMode::CreateIfMissing).unwrap();
    (dir, store)
}

fn now() -> DateTime<Utc> {
    t("2026-01-01T00:00:00Z")
}

/// A strict append that must succeed.
fn append(store: &Store, batch: &[Located]) -> Receipt {
    store
        .write(batch, IdPolicy::RequireNew, None, now())
        .unwrap()
}

fn ids(records: impl IntoIterator<Item = Result<Record>>) -> Vec<String> {
    records
        .into_iter()
        .map(|r| r.unwrap().event.id.into())
        .collect()
}

#[test]
fn appends_get_gap_free_seqs_and_a_hash_chain() {
    let (_dir, store) = fresh();
    let r = append(
        &store,
        &[
            event("a", "2020", &[("x.v", set(1))]),
            event("b", "2019", &[]),
        ],
    );
    assert_eq!((r.appended, r.first, r.head), (2, Some(1), 2));
    let r = store
        .write(
            &[event("c", "2021", &[])],
            IdPolicy::RequireNew,
            Some(2),
            now(),
        )
        .unwrap();
    assert_eq!((r.first, r.head), (Some(3), 3));
    let log: Vec<Record> = store.latest().unwrap().log().map(Result::unwrap).collect();
    assert_eq!(log.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(log[0].prev_hash, [0; 32]);
    assert_eq!(log[1].prev_hash, log[0].hash);
    assert_eq!(log[2].prev_hash, log[1].hash);
    assert_eq!(store.head().unwrap().hash, log[2].hash);
    assert_eq!(
        ids(store.latest().unwrap().replay_order(None).unwrap()),
        ["b", "a", "c"]
    );
    assert_eq!(store.latest().unwrap().find("b").unwrap().unwrap().seq, 2);
    assert!(store.latest().unwrap().find("zz").unwrap().is_none());
}

#[test]
fn same_day_events_replay_in_append_order() {
    let (_dir, store) = fresh();
    // Ids that sort the other way round, so that id order cannot pass.
    append(
        &store,
        &[event("zz-first", "2025-01-21", &[("x.v", set(1))])],
    );
    append(
        &store,
        &[event("aa-second", "2025-01-21", &[("x.v", set(2))])],
    );
    let state = store
        .latest()
        .unwrap()
        .state(AsOf::new(w("2025-01-21")), &[])
        .unwrap();
    assert_eq!(
        facts(&state),
        [("x.v".into(), "2".into(), "aa-second".into(), false)]
    );
}

#[test]
fn dates_that_start_together_replay_in_append_order_whatever_their_precision() {
    let (_dir, store) = fresh();
    append(&store, &[event("day", "2019-01-01", &[("x.v", set(1))])]);
    append(&store, &[event("year", "2019", &[("x.v", set(2))])]);
    let snapshot = store.latest().unwrap();
    assert_eq!(ids(snapshot.replay_order(None).unwrap()), ["day", "year"]);
    let state = snapshot.state(AsOf::new(w("2020")), &[]).unwrap();
    assert_eq!(
        facts(&state),
        [("x.v".into(), "2".into(), "year".into(), false)]
    );
}

#[test]
fn import_skips_unchanged_events_and_refuses_changed_ones() {
    let (_dir, store) = fresh();
    let batch = [
        event("a", "2020", &[("x.v", set(1))]),
        event("b", "2021", &[]),
    ];
    store
        .write(&batch, IdPolicy::SkipUnchanged, None, now())
        .unwrap();
    let again = store
        .write(&batch, IdPolicy::SkipUnchanged, None, now())
        .unwrap();
    assert_eq!((again.appended, again.skipped, again.first), (0, 2, None));
    let changed = [event("a", "2020", &[("x.v", set(2))])];
    let err = store
        .write(&changed, IdPolicy::SkipUnchanged, None, now())
        .unwrap_err();
    assert!(
        matches!(&err, Error::ChangedEvent { id, seq: 1 } if id == "a"),
        "{err}"
    );
    let err = store
        .write(&batch[1..], IdPolicy::RequireNew, None, now())
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateId { id, seq: 2 } if id == "b"),
        "{err}"
    );
    assert_eq!(store.head().unwrap().seq, 2);
}

#[test]
fn expect_head_guards_concurrent_writers() {
    let (_dir, store) = fresh();
    store
        .write(
            &[event("a", "2020", &[])],
            IdPolicy::RequireNew,
            Some(0),
            now(),
        )
        .unwrap();
    let err = store
        .write(
            &[event("b", "2020", &[])],
            IdPolicy::RequireNew,
            Some(0),
            now(),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        Error::HeadMismatch {
            expected: 0,
            actual: 1
        }
    ));
    assert_eq!(err.kind(), crate::ErrorKind::Conflict);
    assert_eq!(store.head().unwrap().seq, 1);
}

#[test]
fn a_failed_batch_writes_nothing() {
    let (_dir, store) = fresh();
    append(&store, &[event("a", "2020", &[("x.v", set(1))])]);
    let before_head = store.head().unwrap();
    let bad_batches = [
        vec![event("b", "2020", &[]), event("b", "2021", &[])],
        vec![
            event("c", "2020", &[]),
            event("d", "2021", &[("x.v", add("p"))]),
        ],
        vec![
            event("e", "2020", &[]),
            event("a", "2020", &[("x.v", set(1))]),
        ],
    ];
    for batch in bad_batches {
        assert!(
            store
                .write(&batch, IdPolicy::RequireNew, None, now())
                .is_err()
        );
        assert_eq!(store.head().unwrap(), before_head);
        assert_eq!(ids(store.latest().unwrap().log()), ["a"]);
        for id in ["b", "c", "d", "e"] {
            assert!(store.latest().unwrap().find(id).unwrap().is_none());
        }
    }
}

#[test]
fn attribute_kinds_are_checked_against_the_store() {
    let (_dir, store) = fresh();
    append(&store, &[event("a", "2020", &[("x.s", add("p"))])]);
    let err = store
        .write(
            &[event("b", "2021", &[("x.s", set(1))])],
            IdPolicy::RequireNew,
            None,
            now(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("\"x.s\" is set-valued (add/remove) in the store"),
        "{err}"
    );
    assert_eq!(store.attr_kind("x", "s").unwrap(), Some(AttrKind::Set));
    assert_eq!(store.attr_kind("x", "t").unwrap(), None);
}

#[test]
fn recorded_at_never_goes_backwards() {
    let (_dir, store) = fresh();
    store
        .write(
            &[event("a", "2020", &[])],
            IdPolicy::RequireNew,
            None,
            t("2026-05-01T00:00:00Z"),
        )
        .unwrap();
    store
        .write(
            &[event("b", "2020", &[])],
            IdPolicy::RequireNew,
            None,
            t("2026-04-01T00:00:00Z"),
        )
        .unwrap();
    let log: Vec<Record> = store.latest().unwrap().log().map(Result::unwrap).collect();
    assert_eq!(log[1].recorded_at, t("2026-05-01T00:00:00Z"));
}

#[test]
fn backdated_appends_replay_as_if_appended_in_date_order() {
    let batches = [
        event(
            "m2019",
            "2019",
            &[("openai.cloud", add("microsoft")), ("openai.excl", set(1))],
        ),
        event("o2024", "2024-06", &[("openai.cloud", add("oracle"))]),
        event("x2025", "2025-01-21", &[("openai.excl", Op::Unset)]),
    ];
    let (_a, in_order) = fresh();
    for e in &batches {
        append(&in_order, std::slice::from_ref(e));
    }
    let (_b, backdated) = fresh();
    for e in batches.iter().rev() {
        append(&backdated, std::slice::from_ref(e));
    }
    for date in [
        "2018",
        "2019-06-01",
        "2019",
        "2024-06-15",
        "2024-07",
        "2025-01-20",
        "2025-01-21",
        "2030",
    ] {
        for query in [AsOf::new(w(date)), AsOf::strict(w(date))] {
            let a = in_order.latest().unwrap().state(query, &[]).unwrap();
            let b = backdated.latest().unwrap().state(query, &[]).unwrap();
            assert_eq!(a, b, "at {date}");
        }
    }
    assert_eq!(
        facts(
            &backdated
                .latest()
                .unwrap()
                .state(AsOf::new(w("2024-07")), &[])
                .unwrap()
        )
        .len(),
        3
    );
}

#[test]
fn entity_scoped_state_equals_the_filtered_whole_state() {
    let (_dir, store) = fresh();
    let batch = [
        event("a", "2019", &[("x.v", set(1)), ("y.v", set(2))]),
        event("b", "2020", &[("y.v", set(3))]),
        event("c", "2021", &[("z.s", add("x"))]),
    ];
    append(&store, &batch);
    for date in ["2019", "2020-06", "2022"] {
        let scoped = store
            .latest()
            .unwrap()
            .state(AsOf::new(w(date)), &["y".into(), "z".into()])
            .unwrap();
        let mut whole = store
            .latest()
            .unwrap()
            .state(AsOf::new(w(date)), &[])
            .unwrap();
        whole.retain_entities(&["y".into(), "z".into()]);
        assert_eq!(scoped, whole, "at {date}");
    }
    assert_eq!(store.latest().unwrap().entities().unwrap(), ["x", "y", "z"]);
    let records = store
        .latest()
        .unwrap()
        .entity_records(&["y".into()], None)
        .unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| r.event.id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn a_batch_interrupted_before_publishing_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    {
        let store = Store::open(&path, OpenMode::CreateIfMissing).unwrap();
        append(&store, &[event("a", "2020", &[("x.v", set(1))])]);
        let mut writer = store.writer(IdPolicy::RequireNew, None, now()).unwrap();
        writer
            .push(&[event("b", "2019", &[("x.v", set(2)), ("y.s", add("p"))])])
            .unwrap();
        store.flush().unwrap();
        // Neither committed nor rolled back, as a crash would leave it.
        std::mem::forget(writer);
        assert_eq!(store.log.last_seq().unwrap(), 2);
    }
    let store = Store::open(&path, OpenMode::Existing).unwrap();
    assert_eq!(store.head().unwrap().seq, 1);
    assert!(store.meta.get(META_PENDING).unwrap().is_none());
    assert!(store.log.get(2).unwrap().is_none());
    assert_eq!(store.by_id.iter().count(), 1);
    assert_eq!(store.by_time.iter().count(), 1);
    assert_eq!(store.by_entity.iter().count(), 1);
    assert_eq!(store.attrs.iter().count(), 1);
    assert_eq!(store.attr_kind("y", "s").unwrap(), None);
    // The next batch takes seq 2, and the attribute kind is free again.
    let r = append(&store, &[event("c", "2021", &[("y.s", set(5))])]);
    assert_eq!((r.appended, r.first), (1, Some(2)));
    let state = store
        .latest()
        .unwrap()
        .state(AsOf::new(w("2022")), &[])
        .unwrap();
    assert_eq!(
        facts(&state),
        [
            ("x.v".into(), "1".into(), "a".into(), false),
            ("y.s".into(), "5".into(), "c".into(), false)
        ]
    );
}

#[test]
fn stores_from_a_newer_format_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    {
        let store = Store::open(&path, OpenMode::CreateIfMissing).unwrap();
        store
            .meta
            .insert(META_FORMAT, &(FORMAT_VERSION + 1).to_be_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    let err = Store::open(&path, OpenMode::Existing).unwrap_err();
    assert!(matches!(err, Error::NewerFormat { found, .. } if found == FORMAT_VERSION + 1));
    assert!(err.to_string().contains("upgrade chronik"));
}

#[test]
fn paths_that_are_not_stores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    assert!(matches!(
        Store::open(&missing, OpenMode::Existing),
        Err(Error::NoStore { .. })
    ));
    assert!(!missing.exists(), "a query must not create a store");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(matches!(
        Store::open(&file, OpenMode::CreateIfMissing),
        Err(Error::NotAStore { .. })
    ));
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "x").unwrap();
    let err = Store::open(&other, OpenMode::CreateIfMissing).unwrap_err();
    assert!(err.to_string().contains("holds other files"), "{err}");
    let orphan = dir.path().join("no/such/parent/s");
    let err = Store::open(&orphan, OpenMode::CreateIfMissing).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!dir.path().join("no").exists());
}

#[test]
fn stats_describe_the_store() {
    let (_dir, store) = fresh();
    append(
        &store,
        &[
            event("a", "2024-06", &[("x.v", set(1))]),
            event("b", "2019", &[("y.v", set(1))]),
        ],
    );
    let stats = store.stats().unwrap();
    assert_eq!(stats.events, 2);
    assert_eq!(stats.first_at, Some(w("2019")));
    assert_eq!(stats.last_at, Some(w("2024-06")));
    assert_eq!(stats.entities, 2);
    assert!(stats.size_on_disk > 0);
    assert_eq!(stats.first_recorded_at, Some(now()));
}

#[test]
fn entity_scoped_state_reads_only_that_entitys_records() {
    let (_dir, store) = fresh();
    let mut batch: Vec<Located> = (0..200)
        .map(|i| event(&format!("x{i}"), "2020", &[("x.v", set(i))]))
        .collect();
    batch.push(event("y0", "2019", &[("y.v", set(1))]));
    batch.push(event("y1", "2021", &[("y.v", set(2)), ("x.v", set(-1))]));
    append(&store, &batch);
    let snapshot = store.latest().unwrap();
    // The entity index holds what the events change about "y": the log is
    // not read at all.
    let before = store.records_read();
    let state = snapshot.state(AsOf::new(w("2030")), &["y".into()]).unwrap();
    assert_eq!(store.records_read() - before, 0);
    let expected = [("y.v".into(), "2".into(), "y1".into(), false)];
    assert_eq!(facts(&state), expected);
    // Entries as format 1 wrote them (the position only) send the query to
    // the log, for the two records of "y" only.
    let old_form = |e: &[u8]| {
        let (entity, start, seq) = keys::decode_entity(e).unwrap();
        keys::entity(entity, start, seq)
    };
    let all: Vec<Vec<u8>> = store
        .by_entity
        .iter()
        .map(|e| e.unwrap().to_vec())
        .collect();
    let mut plain: Vec<Vec<u8>> = all.iter().map(|e| old_form(e)).collect();
    plain.sort();
    store.by_entity.retain(|_| false).unwrap();
    store.by_entity.insert_sorted(&plain).unwrap();
    let snapshot = store.latest().unwrap();
    let before = store.records_read();
    let state = snapshot.state(AsOf::new(w("2030")), &["y".into()]).unwrap();
    assert_eq!(store.records_read() - before, 2);
    assert_eq!(facts(&state), expected);
    store.verify().unwrap().unwrap();
    let before = store.records_read();
    snapshot.state(AsOf::new(w("2030")), &[]).unwrap();
    assert_eq!(store.records_read() - before, 202);
    // A query about 2019 reads nothing dated later.
    let before = store.records_read();
    snapshot.state(AsOf::new(w("2019")), &[]).unwrap();
    assert_eq!(store.records_read() - before, 1);
}

#[test]
fn corrections_must_name_known_events_and_must_not_go_in_circles() {
    let (_dir, store) = fresh();
    append(&store, &[event("a", "2019", &[("x.v", set(1))])]);
    let corrects = |id: &str, at: &str, targets: &[&str]| {
        let mut e = event(id, at, &[]);
        e.event.corrects = targets.iter().map(|t| t.to_string()).collect();
        e
    };
    let err = store
        .write(
            &[corrects("b", "2019", &["nope"])],
            IdPolicy::RequireNew,
            None,
            now(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("field `corrects[0]`: there is no event \"nope\""),
        "{err}"
    );
    let circle = [
        corrects("b", "2019", &["c"]),
        corrects("c", "2019", &["d"]),
        corrects("d", "2019", &["b", "a"]),
    ];
    let err = store
        .write(&circle, IdPolicy::RequireNew, None, now())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the corrections go in a circle: b → c → d → b"),
        "{err}"
    );
    assert_eq!(store.head().unwrap().seq, 1);
    // A correction inside one batch, and of a stored event, both work.
    append(
        &store,
        &[
            corrects("b", "2019-07", &["a", "c"]),
            corrects("c", "2019", &[]),
        ],
    );
    let snapshot = store.latest().unwrap();
    assert!(snapshot.is_corrected(1) && snapshot.is_corrected(3) && !snapshot.is_corrected(2));
    assert_eq!(snapshot.corrected_by(1).unwrap(), ["b"]);
    assert!(
        snapshot
            .state(AsOf::new(w("2030")), &[])
            .unwrap()
            .is_empty()
    );
    let before = store.snapshot(Some(&crate::KnownAt::seq(1))).unwrap();
    assert!(!before.is_corrected(1));
    assert_eq!(before.state(AsOf::new(w("2030")), &[]).unwrap().len(), 1);
    // A reindex finds the correction of a record that comes after it in
    // the log, as the batch did.
    let pairs = |store: &Store| -> Vec<sled::IVec> {
        store.corrected.iter().keys().map(Result::unwrap).collect()
    };
    let written = pairs(&store);
    assert!(written.contains(&keys::pair(3, 2).to_vec().into()));
    store.reindex().unwrap();
    assert_eq!(pairs(&store), written);
    store.verify().unwrap().unwrap();
}

#[test]
fn entities_are_those_changed_by_the_records_up_to_the_head() {
    let (_dir, store) = fresh();
    append(&store, &[event("a", "2019", &[("m.v", set(1))])]);
    append(
        &store,
        &[
            event("b", "2018", &[("k.v", set(2)), ("m.w", set(3))]),
            event("c", "2020", &[("z.v", set(4))]),
        ],
    );
    append(&store, &[event("d", "2021", &[("m.v", set(5))])]);
    let at = |seq| {
        store
            .snapshot(Some(&crate::KnownAt::seq(seq)))
            .unwrap()
            .entities()
            .unwrap()
    };
    assert_eq!(at(1), ["m"]);
    assert_eq!(at(2), ["k", "m"]);
    assert_eq!(at(3), ["k", "m", "z"]);
    assert_eq!(at(4), ["k", "m", "z"]);
    assert_eq!(store.latest().unwrap().entities().unwrap(), at(4));
}

#[test]
fn a_timeline_from_a_date_keeps_coarse_events_that_started_long_before() {
    let (_dir, store) = fresh();
    append(
        &store,
        &[
            event("long-before", "2018-06-01", &[("m.v", set(1))]),
            event("the-year", "2019", &[("m.v", set(2))]),
            event("the-year-before", "2018", &[("m.v", set(3))]),
            event("the-day", "2019-12-31", &[("m.v", set(4))]),
            event("after", "2020-01-01", &[("m.v", set(5))]),
            event("leap-year", "2020", &[("m.v", set(6))]),
        ],
    );
    let ids = |from: &str, to: &str| -> Vec<String> {
        let filter = TimelineFilter {
            from: Some(w(from)),
            to: Some(w(to)),
            ..TimelineFilter::default()
        };
        store
            .latest()
            .unwrap()
            .timeline(&filter, false)
            .unwrap()
            .into_iter()
            .map(|entry| entry.record.event.id.into())
            .collect()
    };
    // "2019" started 364 days before the 31st of December and still holds.
    assert_eq!(ids("2019-12-31", "2019-12-31"), ["the-year", "the-day"]);
    assert_eq!(ids("2019-01-01", "2019-01-01"), ["the-year"]);
    assert_eq!(
        ids("2018-12-31", "2019"),
        ["the-year-before", "the-year", "the-day"]
    );
    // A leap year, from its very last second: it started 366 days less a
    // second before.
    assert_eq!(ids("2020-12-31T23:59:59Z", "2020-12-31"), ["leap-year"]);
}

#[test]
fn known_at_a_time_finds_the_records_appended_by_then() {
    let (_dir, store) = fresh();
    for (i, time) in [
        "2026-01-01T00:00:00Z",
        "2026-02-01T00:00:00Z",
        "2026-03-01T12:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        store
            .write(
                &[event(&format!("e{i}"), "2020", &[])],
                IdPolicy::RequireNew,
                None,
                t(time),
            )
            .unwrap();
    }
    let head_at = |text: &str| {
        store
            .snapshot(Some(&crate::KnownAt::parse(text).unwrap()))
            .unwrap()
            .head()
    };
    assert_eq!(head_at("2025"), 0);
    assert_eq!(head_at("2026-01"), 1);
    assert_eq!(head_at("2026-02-01"), 2);
    assert_eq!(head_at("2026-03-01T11:59:59Z"), 2);
    assert_eq!(head_at("2026-03-01T12:00:00Z"), 3);
    assert_eq!(head_at("2027"), 3);
    assert_eq!(head_at("#2"), 2);
    let err = store.snapshot(Some(&crate::KnownAt::seq(4))).err().unwrap();
    assert!(
        err.to_string().contains("beyond the log, whose head is #3"),
        "{err}"
    );
}

/// A store with events that use every index: entities, sets, corrections.
fn rich() -> (tempfile::TempDir, Store) {
    let (dir, store) = fresh();
    append(
        &store,
        &[
            event("a", "2019", &[("x.v", set(1)), ("y.s", add("p"))]),
            event("b", "2020-06", &[("y.s", add("q"))]),
        ],
    );
    let mut c = event("c", "2019-07", &[("x.v", set(2))]);
    c.event.corrects = vec!["a".into()];
    append(&store, &[c]);
    (dir, store)
}

fn problem(store: &Store) -> Problem {
    store
        .verify()
        .unwrap()
        .expect_err("verify should find the damage")
}

#[test]
fn verify_passes_on_a_sound_store() {
    let (_dir, store) = rich();
    let verified = store.verify().unwrap().unwrap();
    assert_eq!(verified.records, 3);
    assert_eq!(verified.head, store.head().unwrap());
    // by_time 3, by_id 3, by_entity 4, attrs 2, corrected 1
    assert_eq!(verified.index_entries, 13);
}

#[test]
fn verify_catches_a_flipped_byte_in_a_record() {
    let (_dir, store) = rich();
    let len = tamper::record_len(&store, 2);
    // Inside the event's text: decodes, but the hash no longer matches.
    tamper::flip_record_byte(&store, 2, len / 2);
    let p = problem(&store);
    assert_eq!((p.seq, p.tree), (Some(2), "log"));
    assert!(
        p.what.contains("hash does not match") || p.what.contains("does not decode"),
        "{p}"
    );
}

#[test]
fn verify_catches_a_damaged_hash_chain_and_head() {
    let (_dir, store) = rich();
    // The last byte is part of the stored hash: the body is intact, the hash not.
    let len = tamper::record_len(&store, 3);
    tamper::flip_record_byte(&store, 3, len - 1);
    let p = problem(&store);
    assert_eq!((p.seq, p.tree), (Some(3), "log"));
    assert!(p.what.contains("hash does not match"), "{p}");
}

#[test]
fn verify_catches_missing_and_stray_index_entries() {
    for tree in ["by_time", "by_id", "by_entity"] {
        let (_dir, store) = rich();
        tamper::remove_index_entry(&store, tree, 2);
        let p = problem(&store);
        assert_eq!((p.seq, p.tree), (Some(2), tree), "{p}");
    }
    let (_dir, store) = rich();
    tamper::add_stray_index_entry(&store, 7);
    let p = problem(&store);
    assert_eq!((p.seq, p.tree), (Some(7), "by_time"), "{p}");
    assert!(p.what.contains("points to no such record"), "{p}");
    let (_dir, store) = rich();
    store.corrected.remove(keys::pair(1, 3)).unwrap();
    assert_eq!(problem(&store).tree, "corrected");
    let (_dir, store) = rich();
    store
        .attrs
        .insert_sorted(&[keys::attr_element("y", "s", 0, 1)])
        .unwrap();
    assert_eq!(problem(&store).tree, "attrs");
    let (_dir, store) = rich();
    // The whole page of records 1 to 64 goes.
    tamper::remove_record(&store, 2);
    let p = problem(&store);
    assert_eq!((p.seq, p.tree), (Some(1), "log"));
    assert!(p.what.contains("the log ends before the head (3)"), "{p}");
}

/// Writes the `checkpoints` tree directly, as only a test does, then makes
/// the store forget the checkpoint headers it kept, as its own writes do.
fn write_checkpoints<T>(store: &Store, write: impl FnOnce(&sled::Tree) -> T) -> T {
    let written = write(&store.checkpoints);
    store.forget_checkpoint_headers();
    written
}

/// A store with checkpoints about every two events, over several batches.
fn checkpointed() -> (tempfile::TempDir, Store) {
    let (dir, store) = rich();
    store.set_checkpoint_interval(2);
    let batch: Vec<Located> = (0..7)
        .map(|i| {
            event(
                &format!("k{i}"),
                &format!("202{}", i % 4),
                &[("x.v", set(i)), ("z.s", add("q"))],
            )
        })
        .collect();
    append(&store, &batch);
    (dir, store)
}

/// 30 events dated by the year 2020 + `n`, each setting `x.v`.
fn a_year(n: usize) -> Vec<Located> {
    (0..30)
        .map(|i| {
            event(
                &format!("n{n}-{i}"),
                &format!("{}", 2020 + n),
                &[("x.v", set(i as i64))],
            )
        })
        .collect()
}

#[test]
fn queries_start_from_checkpoints_built_after_the_last_query() {
    let (_dir, store) = fresh();
    store.set_checkpoint_interval(10);
    let reads_for_whole_state = |store: &Store| {
        let before = store.records_read();
        store
            .latest()
            .unwrap()
            .state(AsOf::new(w("2040")), &[])
            .unwrap();
        store.records_read() - before
    };
    // Each batch, all in one year, ends in a checkpoint (one every one and
    // a half intervals where no year begins), so the state after it is
    // read from that checkpoint alone, whichever checkpoints the query
    // before saw.
    for n in 0..4 {
        append(&store, &a_year(n));
        assert_eq!(reads_for_whole_state(&store), 0, "after batch {n}");
    }
    // A backdated event removes every checkpoint after it, and they are
    // built again: the query uses the new ones, and answers as a replay
    // from the start does.
    append(&store, &[event("back", "2019", &[("x.v", set(-1))])]);
    assert_eq!(reads_for_whole_state(&store), 1);
    let snapshot = store.latest().unwrap();
    for at in ["2019", "2021", "2040"] {
        let query = AsOf::new(w(at));
        assert_eq!(
            snapshot.state(query, &[]).unwrap(),
            snapshot.state_from_start(query).unwrap()
        );
    }
    store.reindex().unwrap();
    assert_eq!(reads_for_whole_state(&store), 1, "after a reindex");
}

#[test]
fn a_correction_removes_the_checkpoints_that_hold_what_it_corrects() {
    let (_dir, store) = fresh();
    store.set_checkpoint_interval(10);
    // The last event of 2020 sets a fact no other event touches; every
    // checkpoint from 2021 on holds it.
    let mut first = a_year(0);
    first.push(event("wrong", "2020", &[("y.w", set(99))]));
    append(&store, &first);
    for n in 1..4 {
        append(&store, &a_year(n));
    }
    let in_2022 = AsOf::new(w("2022"));
    let held = |store: &Store, query| {
        let state = store.latest().unwrap().state(query, &[]).unwrap();
        state.get("y", "w").is_some()
    };
    assert!(held(&store, in_2022));
    let before = store.checkpoint_positions().unwrap();
    let first_of_2021 = keys::time(w("2021").start(), 0);
    assert!(before.iter().filter(|p| p[..] > first_of_2021[..]).count() >= 3);
    // A correction dated after every checkpoint withdraws it: the
    // checkpoints after the corrected event go (and are built again).
    let mut fix = event("fix", "2030", &[("z.v", set(1))]);
    fix.event.corrects = vec!["wrong".into()];
    append(&store, &[fix]);
    let snapshot = store.latest().unwrap();
    for at in ["2020-12", "2021", "2022", "2040"] {
        let query = AsOf::new(w(at));
        let state = snapshot.state(query, &[]).unwrap();
        assert!(state.get("y", "w").is_none(), "{at}");
        assert_eq!(state, snapshot.state_in_date_order(query).unwrap(), "{at}");
    }
    assert!(!held(&store, in_2022));
    store.verify().unwrap().unwrap();
}

#[test]
fn checkpoints_are_built_and_verified() {
    let (_dir, store) = checkpointed();
    let positions = store.checkpoint_positions().unwrap();
    assert_eq!(positions.len(), 4);
    let verified = store.verify().unwrap().unwrap();
    assert_eq!(verified.checkpoints, 4);
    // A checkpoint that differs from a fresh replay is found.
    let (header, mut resume) = store.read_checkpoint(&positions[2]).unwrap().unwrap();
    resume.state = State::new();
    store
        .write_checkpoint(&positions[2], header, &resume)
        .unwrap();
    let p = problem(&store);
    assert_eq!(p.tree, "checkpoints");
    assert!(p.what.contains("differs from a fresh replay"), "{p}");
}

#[test]
fn problems_of_the_log_and_indexes_come_before_those_of_checkpoints() {
    // The checkpoints are compared in a second thread: whichever finishes
    // first, the problem reported is the same as in one pass.
    let (_dir, store) = checkpointed();
    let positions = store.checkpoint_positions().unwrap();
    let (header, mut resume) = store.read_checkpoint(&positions[0]).unwrap().unwrap();
    resume.state = State::new();
    store
        .write_checkpoint(&positions[0], header, &resume)
        .unwrap();
    assert_eq!(problem(&store).tree, "checkpoints");
    tamper::remove_index_entry(&store, "by_id", 9);
    let p = problem(&store);
    assert_eq!((p.seq, p.tree), (Some(9), "by_id"), "{p}");
}

#[test]
fn a_checkpoint_build_that_cannot_read_an_event_fails_and_builds_nothing() {
    for in_date_order in [true, false] {
        let (_dir, store) = checkpointed();
        store.build_first_checkpoints_in_date_order(in_date_order);
        write_checkpoints(&store, |t| t.clear()).unwrap();
        if in_date_order {
            // The log's only page: no event reads, in the thread that reads ahead.
            tamper::remove_record(&store, 1);
        } else {
            // Built entity by entity, the log is not read (record 1 is
            // corrected, and not read either).
            tamper::garble_entity_changes(&store, 2);
        }
        let err = store.build_checkpoints(true).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
        assert!(store.checkpoint_positions().unwrap().is_empty());
    }
}

/// Every checkpoint of a store, with its header and what it holds.
fn every_checkpoint(store: &Store) -> Vec<(Vec<u8>, checkpoint::Header, Resume)> {
    store
        .checkpoint_positions()
        .unwrap()
        .into_iter()
        .map(|position| {
            let (header, resume) = store.read_checkpoint(&position).unwrap().unwrap();
            (position, header, resume)
        })
        .collect()
}

#[test]
fn checkpoints_built_entity_by_entity_are_those_of_a_replay_in_date_order() {
    for (seed, every, runs) in [(1, 37, 1), (2, 100, 3), (3, 1, 2), (4, 250, 4)] {
        let mut batch = generated(700, seed);
        // Events that change nothing (the log has their dates), one of them
        // the last record, and one before every other.
        batch.push(event("quiet-late", "2009", &[]));
        batch.insert(0, event("quiet-early", "1999", &[]));
        let checkpoints = built_both_ways(&batch, every, runs, None);
        // Something to compare: facts, expiries to come, corrected records.
        assert!(
            checkpoints
                .iter()
                .any(|(.., resume)| !resume.state.is_empty())
        );
        assert!(
            checkpoints
                .iter()
                .any(|(.., resume)| !resume.expiries.is_empty())
        );
        assert!(batch.iter().any(|l| !l.event.corrects.is_empty()));
        if seed == 2 {
            // One element as store format 1 wrote it.
            built_both_ways(&batch, every, runs, Some(10));
        }
    }
    // A checkpoint at a corrected record: its replay ran the expiries
    // only up to the event before it, the last it fed.
    let until = |v: i64, until: &str| Op::Set {
        value: Value::Int(v),
        until: Some(w(until)),
    };
    let mut fix = event("fix", "2010", &[("y.v", set(2))]);
    fix.event.corrects = vec!["wrong".into()];
    let batch = [
        event("first", "2000", &[("x.v", until(1, "2001"))]),
        event("wrong", "2003", &[("y.v", set(1))]),
        fix,
    ];
    let checkpoints = built_both_ways(&batch, 2, 1, None);
    // Where each year begins: after "first", and after "wrong".
    assert_eq!(checkpoints.len(), 2);
    assert_eq!(checkpoints[1].0, keys::time(w("2003").start(), 2).to_vec());
    assert_eq!(checkpoints[1].2.expiries.len(), 1);
}

#[test]
fn a_replay_entity_by_entity_is_the_replay_in_date_order() {
    use crate::known_at::KnownAt;
    for seed in 1..=3 {
        let (_dir, store) = fresh();
        store.set_checkpoint_interval(0);
        let mut events = generated(900, seed);
        events.push(event("quiet", "2003", &[]));
        assert!(events.iter().any(|l| !l.event.corrects.is_empty()));
        // Three batches, so that earlier heads know fewer records and
        // fewer corrections.
        let later = events.split_off(600);
        append(&store, &events[..300]);
        append(&store, &events[300..]);
        append(&store, &later);
        assert!(store.entity_runs(2).unwrap().len() > 1);
        let heads = [None, Some(KnownAt::seq(450)), Some(KnownAt::seq(250))];
        for known_at in &heads {
            let snapshot = store.snapshot(known_at.as_ref()).unwrap();
            for date in [
                "1998",
                "2000-02",
                "2001-06-15",
                "2002",
                "2003-11",
                "2005-01-02",
                "9999",
            ] {
                for query in [AsOf::new(w(date)), AsOf::strict(w(date))] {
                    let by_entity = snapshot.state_by_entity(query).unwrap().unwrap();
                    let by_date = snapshot.state_in_date_order(query).unwrap();
                    assert_eq!(by_entity, by_date, "seed {seed}, {query:?}, {known_at:?}");
                    assert_eq!(snapshot.state(query, &[]).unwrap(), by_date);
                }
            }
        }
        // Something to compare: uncertain facts, and facts an `until` ended.
        let snapshot = store.latest().unwrap();
        let mid = snapshot.state_from_start(AsOf::new(w("2002-06"))).unwrap();
        assert!(mid.facts().any(|f| f.provenance.uncertain));
        let end = snapshot.state_from_start(AsOf::new(w("9999"))).unwrap();
        assert!(end.len() > 30);
        // An element as store format 1 wrote it (no changes): the replay
        // goes by date through the log instead.
        tamper::downgrade_entity_element(&store, 10);
        let snapshot = store.latest().unwrap();
        let query = AsOf::new(w("2004"));
        assert!(snapshot.state_by_entity(query).unwrap().is_none());
        assert_eq!(
            snapshot.state_from_start(query).unwrap(),
            snapshot.state_in_date_order(query).unwrap()
        );
    }
}

#[test]
fn a_replay_entity_by_entity_skips_what_follows_the_question_and_runs_every_expiry() {
    let (_dir, store) = fresh();
    store.set_checkpoint_interval(0);
    let until = |v: i64, until: &str| Op::Set {
        value: Value::Int(v),
        until: Some(w(until)),
    };
    let mut batch = Vec::new();
    // "a" (a prefix of "ab") changes every year; its fact set in 2000
    // ends with 2001, while "ab"'s events are fed after all of "a"'s.
    for year in 2000..2012 {
        batch.push(event(
            &format!("a{year}"),
            &year.to_string(),
            &[("a.v", set(year))],
        ));
        batch.push(event(
            &format!("ab{year}"),
            &year.to_string(),
            &[("ab.v", set(year))],
        ));
    }
    batch.push(event("a-until", "2000-06", &[("a.w", until(1, "2001"))]));
    batch.push(event("ab-until", "2002-06", &[("ab.w", until(2, "2009"))]));
    append(&store, &batch);
    let snapshot = store.latest().unwrap();
    // 2003 leaves eight elements of each entity past the question: four
    // skipped, then a new range at the next entity.
    for at in ["2000-12", "2001", "2002-03", "2003", "2010", "9999"] {
        for query in [AsOf::new(w(at)), AsOf::strict(w(at))] {
            let by_entity = snapshot.state_by_entity(query).unwrap().unwrap();
            assert_eq!(
                by_entity,
                snapshot.state_in_date_order(query).unwrap(),
                "{at}"
            );
        }
    }
    let at_2003 = snapshot
        .state_by_entity(AsOf::new(w("2003")))
        .unwrap()
        .unwrap();
    assert!(at_2003.get("a", "w").is_none());
    assert!(at_2003.get("ab", "w").is_some());
    assert!(matches!(
        at_2003.get("ab", "v"),
        Some(crate::state::Slot::One(Value::Int(2003), _))
    ));
}

/// Builds the checkpoints of a store holding `batch` entity by entity (in
/// `runs` runs) and by a replay in date order; asserts they are the same,
/// and returns them.
fn built_both_ways(
    batch: &[Located],
    every: u64,
    runs: usize,
    format_1: Option<u64>,
) -> Vec<(Vec<u8>, checkpoint::Header, Resume)> {
    let mut built = [false, true].map(|by_entity| {
        let (_dir, store) = fresh();
        store.set_checkpoint_interval(0);
        append(&store, batch);
        if let Some(seq) = format_1 {
            tamper::downgrade_entity_element(&store, seq);
        }
        store.set_checkpoint_interval(every);
        let count = if by_entity {
            if runs > 1 {
                assert!(store.entity_runs(runs).unwrap().len() > 1);
            }
            match store.build_every_checkpoint_in(every, runs).unwrap() {
                Some(count) => {
                    assert_eq!(format_1, None);
                    count
                }
                // An element of format 1: left to the replay in date order.
                None => {
                    assert!(format_1.is_some());
                    store.build_checkpoints(true).unwrap()
                }
            }
        } else {
            store.build_first_checkpoints_in_date_order(true);
            store.build_checkpoints(true).unwrap()
        };
        assert!(count > 0, "every {every}, runs {runs}");
        store.verify().unwrap().unwrap();
        every_checkpoint(&store)
    });
    let [by_date, by_entity] = &mut built;
    assert_eq!(by_date.len(), by_entity.len());
    for (a, b) in by_date.iter().zip(by_entity.iter()) {
        assert_eq!(a, b, "every {every}, runs {runs}");
    }
    std::mem::take(by_entity)
}

/// A generated timeline of `events` events about 30 entities over six
/// years.
fn generated(events: usize, seed: u64) -> Vec<Located> {
    use crate::generate::{Plan, generate};
    generate(Plan {
        events,
        entities: 30,
        years: 6,
        seed,
    })
    .enumerate()
    .map(|(i, e)| event_from(e, i))
    .collect()
}

fn event_from(event: Event, i: usize) -> Located {
    Located::new(
        event,
        Origin {
            file: "generated".into(),
            number: i + 1,
            line: None,
            id: None,
        },
    )
}

/// 5,000 events on consecutive days, checkpoints about every 1,000 (where
/// every other year begins).
fn daily() -> (tempfile::TempDir, Store) {
    let (dir, store) = fresh();
    store.set_checkpoint_interval(1000);
    let first = w("2000-01-01").start() / 86_400;
    let batch: Vec<Located> = (0..5000)
        .map(|i| {
            let day = chrono::DateTime::from_timestamp((first + i) * 86_400, 0).unwrap();
            let at = day.format("%Y-%m-%d").to_string();
            event(
                &format!("d{i}"),
                &at,
                &[(&format!("x{}.v", i % 50), set(i))],
            )
        })
        .collect();
    append(&store, &batch);
    (dir, store)
}

#[test]
fn reading_ahead_stops_with_its_reader_and_passes_on_its_errors() {
    let (_dir, store) = daily();
    // Where every other year begins.
    assert_eq!(store.checkpoint_positions().unwrap().len(), 6);
    let snapshot = store.latest().unwrap();
    // A reader far ahead of a replay that stops at once: no hang.
    let first = snapshot.read_ahead(None, None, |inputs| Ok(inputs.next().unwrap()?.1));
    assert_eq!(first.unwrap(), 1);
    // Record 3500 unreadable (and the others of its page): the whole state
    // from the checkpoint at the end of 2007, and from the start in date
    // order (well past the reader's first batch), fail instead of leaving
    // it out. (Entity by entity, the replay does not read the log.)
    let query = AsOf::new(w("2009-11-08"));
    let expected = snapshot.state_in_date_order(query).unwrap();
    assert_eq!(snapshot.state(query, &[]).unwrap(), expected);
    tamper::remove_record(&store, 3500);
    let snapshot = store.latest().unwrap();
    for result in [
        snapshot.state(query, &[]),
        snapshot.state_in_date_order(query),
    ] {
        assert!(matches!(result, Err(Error::Corrupt(_))), "{result:?}");
    }
}

#[test]
fn a_checkpoint_chunk_without_its_header_is_found() {
    let (_dir, store) = checkpointed();
    let positions = store.checkpoint_positions().unwrap();
    // A chunk at a position where no checkpoint is.
    let mut orphan = vec![b'c'];
    orphan.extend_from_slice(&keys::time(i64::MAX / 2, 1));
    assert!(!positions.iter().any(|p| orphan[1..17] == p[..]));
    write_checkpoints(&store, |t| t.insert(orphan.clone(), &b"x"[..])).unwrap();
    let p = problem(&store);
    assert_eq!(p.tree, "checkpoints");
    assert!(p.what.contains("chunks do not match"), "{p}");
    // Also when no checkpoint is left at all.
    write_checkpoints(&store, |t| t.clear()).unwrap();
    write_checkpoints(&store, |t| t.insert(orphan, &b"x"[..])).unwrap();
    let p = problem(&store);
    assert!(p.what.contains("chunks do not match"), "{p}");
    // And an entry that is neither a header nor a chunk.
    write_checkpoints(&store, |t| t.clear()).unwrap();
    write_checkpoints(&store, |t| t.insert(&b"zz"[..], &b"x"[..])).unwrap();
    let p = problem(&store);
    assert!(p.what.contains("neither a header nor a chunk"), "{p}");
}

#[test]
fn checkpoints_of_earlier_layouts_are_ignored_then_replaced() {
    let (_dir, store) = checkpointed();
    let at = |store: &Store| {
        store
            .latest()
            .unwrap()
            .state(AsOf::new(w("2022")), &[])
            .unwrap()
    };
    let expected = at(&store);
    let positions = store.checkpoint_positions().unwrap();
    // Version 1: a bare position, its value unreadable today. Version 2: a
    // header of 29 bytes saying version 2, and a part of its body, at a
    // position of their own.
    let old = keys::time(w("2021").start(), 1_000);
    let v2_header = |position: &[u8]| [&[b'h'][..], position].concat();
    let v2_part = |position: &[u8]| [&[b'p'][..], position, &0u32.to_be_bytes()].concat();
    let legacy = |store: &Store| {
        write_checkpoints(store, |t| t.insert(&positions[1][..], &b"\x01old"[..])).unwrap();
        let mut header = vec![2u8];
        header.extend_from_slice(&[0; 28]);
        write_checkpoints(store, |t| t.insert(v2_header(&old), header)).unwrap();
        write_checkpoints(store, |t| t.insert(v2_part(&old), &b"old"[..])).unwrap();
    };
    let gone = |store: &Store| {
        assert!(store.checkpoints.get(&positions[1][..]).unwrap().is_none());
        assert!(store.checkpoints.get(v2_header(&old)).unwrap().is_none());
        assert!(store.checkpoints.get(v2_part(&old)).unwrap().is_none());
    };
    // Only a store of an earlier format version holds them. Next to
    // checkpoints of the current layout: ignored, then removed by the
    // first write, which keeps the current ones.
    tamper::set_format_version(&store, 2);
    legacy(&store);
    assert_eq!(at(&store), expected);
    store.verify().unwrap().unwrap();
    assert_eq!(store.checkpoint_positions().unwrap(), positions);
    let later = |id: &str| event(id, "2030", &[("x.v", set(99))]);
    append(&store, &[later("later-1")]);
    gone(&store);
    assert_eq!(
        store.checkpoint_positions().unwrap()[..positions.len()],
        positions[..]
    );
    assert_eq!(at(&store), expected);
    // Only entries of earlier layouts: the first write makes every
    // checkpoint anew.
    tamper::set_format_version(&store, 2);
    write_checkpoints(&store, |t| t.clear()).unwrap();
    legacy(&store);
    assert_eq!(at(&store), expected);
    store.verify().unwrap().unwrap();
    append(&store, &[later("later-2")]);
    gone(&store);
    assert_eq!(
        store.checkpoint_positions().unwrap()[..positions.len()],
        positions[..]
    );
    assert_eq!(at(&store), expected);
    store.verify().unwrap().unwrap();
}

/// A store whose checkpoints hold many chunks: 400 entities with a value,
/// a set and an expiring value each, 100 events a year from 2000, and a
/// checkpoint where each year begins (the interval is 200).
fn chunked() -> (tempfile::TempDir, Store) {
    let (dir, store) = fresh();
    store.set_checkpoint_interval(200);
    let batch: Vec<Located> = (0..1200)
        .map(|i| {
            let entity = format!("entity-{:03}", i % 400);
            let year = 2000 + i / 100;
            let until = Op::Set {
                value: Value::Int(i as i64),
                until: Some(w(&format!("{}", year + 3))),
            };
            event(
                &format!("event-{i}"),
                &format!("{year}-0{}", 1 + i % 9),
                &[
                    (&format!("{entity}.value"), set(i as i64)),
                    (&format!("{entity}.members"), add(&format!("m{}", i % 7))),
                    (&format!("{entity}.lease"), until),
                ],
            )
        })
        .collect();
    append(&store, &batch);
    (dir, store)
}

/// The chunks of the checkpoint at `position`, as (key, value).
fn chunks_of(store: &Store, position: &[u8]) -> Vec<(sled::IVec, sled::IVec)> {
    store
        .checkpoints
        .scan_prefix([&[b'c'][..], position].concat())
        .map(Result::unwrap)
        .collect()
}

#[test]
fn entity_queries_start_from_the_chunks_of_a_checkpoint() {
    let (_dir, store) = chunked();
    let positions = store.checkpoint_positions().unwrap();
    assert_eq!(positions.len(), 11);
    assert!(chunks_of(&store, &positions[2]).len() > 3);
    let snapshot = store.latest().unwrap();
    for date in ["2003-05", "2008-02-03", "2013"] {
        let query = AsOf::new(w(date));
        let whole = snapshot.state_from_start(query).unwrap();
        // Every entity, whichever chunk holds it.
        let names = (0..400).map(|i| format!("entity-{i:03}"));
        // And names that are not stored: one that starts several others.
        for entity in names.chain(["entity-1".into(), "nobody".into()]) {
            let mut expected = whole.clone();
            expected.retain_entities(std::slice::from_ref(&entity));
            let got = snapshot
                .state(query, std::slice::from_ref(&entity))
                .unwrap();
            assert_eq!(facts(&got), facts(&expected), "{entity} at {date}");
        }
        let several = ["entity-398".to_string(), "entity-007".to_string()];
        let mut expected = whole.clone();
        expected.retain_entities(&several);
        let got = snapshot.state(query, &several).unwrap();
        assert_eq!(facts(&got), facts(&expected), "several at {date}");
    }
    // The query reads the checkpoint, and none of the entity index up to
    // it: a checkpoint that says otherwise is believed (and `verify` finds
    // it), the event at its position is not applied again, and removing the
    // elements before it changes nothing. The checkpoint used for 2009 is
    // the one after 1,000 events, the last of them in 2009.
    let used = &positions[9];
    let query = AsOf::new(w("2009"));
    let entity = vec!["entity-200".to_string()];
    let before = snapshot.state(query, &entity).unwrap();
    let (header, mut resume) = store.read_checkpoint(used).unwrap().unwrap();
    let (_, _, slot) = before.slots().next().unwrap();
    let provenance = slot.values()[0].1.clone();
    let planted = |value: i64| crate::state::Slot::One(Value::Int(value), provenance.clone());
    resume.state.put_slot("entity-200", "planted", planted(1));
    // The entity of the event at the position: its next event is 400
    // events (four years) later.
    let (_, last_seq) = keys::decode_time(used).unwrap();
    let last = format!("entity-{:03}", (last_seq - 1) % 400);
    resume.state.put_slot(&last, "value", planted(-1));
    store.write_checkpoint(used, header, &resume).unwrap();
    let snapshot = store.latest().unwrap();
    let got = snapshot.state(query, &entity).unwrap();
    assert!(got.get("entity-200", "planted").is_some());
    let got = snapshot.state(query, std::slice::from_ref(&last)).unwrap();
    assert!(
        matches!(
            got.get(&last, "value"),
            Some(crate::state::Slot::One(Value::Int(-1), _))
        ),
        "{:?}",
        facts(&got)
    );
    assert!(problem(&store).what.contains("differs from a fresh replay"));
    store.reindex().unwrap();
    // entity-200's events are 201 (2002-03), 601 (2006-07) and 1001
    // (2010-02).
    assert!(used[..] > keys::time(w("2006-07").start(), 601)[..]);
    tamper::remove_index_entry(&store, "by_entity", 201);
    tamper::remove_index_entry(&store, "by_entity", 601);
    assert_eq!(
        facts(&store.latest().unwrap().state(query, &entity).unwrap()),
        facts(&before)
    );
    assert!(!facts(&before).is_empty());
}

/// Checkpoints are written through serde and read back by bincode's own
/// decoder (faster): both must agree on every kind of value.
#[test]
fn a_checkpoint_reads_back_every_kind_of_value() {
    use crate::state::{Expiry, Members, Provenance, Slot};
    let (_dir, store) = checkpointed();
    let position = store.checkpoint_positions().unwrap()[0].clone();
    let (header, _) = store.read_checkpoint(&position).unwrap().unwrap();
    let values = [
        Value::Text("joint venture".into()),
        Value::Int(-4),
        Value::Float(1.5),
        Value::Bool(true),
        Value::Ref("openai".into()),
        Value::Date(w("2025-01-21T10:00:00Z")),
        Value::Amount {
            amount: 5e11,
            unit: "USD".into(),
        },
    ];
    let provenance = |i: usize| Provenance {
        event: format!("event-{i}").into(),
        since: w("2024-06"),
        uncertain: false,
        until: i.is_multiple_of(2).then(|| w("2030")),
    };
    let mut resume = Resume {
        state: State::new(),
        expiries: Vec::new(),
    };
    let mut members = Members::new();
    for (i, value) in values.iter().enumerate() {
        let slot = Slot::One(value.clone(), provenance(i));
        resume.state.put_slot("stargate", &format!("one-{i}"), slot);
        members.insert(value.clone(), provenance(i));
        resume.expiries.push(Expiry {
            end: w("2030").end() + i as i64,
            entity: "stargate".into(),
            attr: "many".into(),
            member: Some(value.clone()),
        });
    }
    resume
        .state
        .put_slot("stargate", "many", Slot::Many(members));
    resume.expiries.push(Expiry {
        end: w("2031").end(),
        entity: "stargate".into(),
        attr: "one-0".into(),
        member: None,
    });
    store.write_checkpoint(&position, header, &resume).unwrap();
    let (_, read) = store.read_checkpoint(&position).unwrap().unwrap();
    assert_eq!(read, resume);
    assert_eq!(store.read_checkpoint_beside(&position).unwrap(), resume);
}

#[test]
fn a_checkpoint_encoded_in_runs_side_by_side_reads_as_one() {
    let (_dir, store) = chunked();
    let position = store.checkpoint_positions().unwrap()[8].clone();
    let (header, replayed) = store.read_checkpoint(&position).unwrap().unwrap();
    // Stored in runs, the checkpoint still equals a fresh replay.
    store
        .write_checkpoint_in_runs(&position, header, &replayed, 3)
        .unwrap();
    assert!(chunks_of(&store, &position).len() > 3);
    // (Writing it removed the checkpoint after it.)
    assert_eq!(store.verify().unwrap().map(|v| v.checkpoints), Ok(9));
    // An entity with pending expiries but no facts, where two runs meet
    // (entity-200's slots are the middle of the 1,200).
    let mut resume = replayed.clone();
    let mut state = State::new();
    for (entity, attr, slot) in resume.state.slots() {
        if entity != "entity-200" {
            state.put_slot(entity, attr, slot.clone());
        }
    }
    resume.state = state;
    assert!(resume.expiries.iter().any(|x| x.entity == "entity-200"));
    let names: Vec<String> = (0..400).map(|i| format!("entity-{i:03}")).collect();
    store
        .write_checkpoint_in_runs(&position, header, &resume, 1)
        .unwrap();
    let one_run = chunks_of(&store, &position).len();
    for runs in [1, 2, 3, 4, 7] {
        store
            .write_checkpoint_in_runs(&position, header, &resume, runs)
            .unwrap();
        let (read_header, read) = store.read_checkpoint(&position).unwrap().unwrap();
        assert_eq!((read_header, &read), (header, &resume), "{runs} runs");
        // The first chunk has the empty name; every run starts a chunk.
        let firsts: Vec<Vec<u8>> = chunks_of(&store, &position)
            .iter()
            .map(|(key, _)| key[1 + position.len()..].to_vec())
            .collect();
        assert_eq!(firsts[0], b"");
        assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{runs} runs");
        assert!(runs == 1 || firsts.len() > one_run, "{runs} runs");
        if runs == 2 {
            // The second run starts after the middle, at an entity with facts.
            assert!(firsts.contains(&b"entity-201".to_vec()), "{firsts:?}");
        }
        // Each entity alone, from the chunk its name falls in.
        each_entity_reads_alone(&store, &position, &resume, &names, &format!("{runs} runs"));
    }
}

/// What the checkpoint at `position` holds about each of `entities` alone
/// is what `resume` holds about it.
fn each_entity_reads_alone(
    store: &Store,
    position: &[u8],
    resume: &Resume,
    entities: &[String],
    case: &str,
) {
    for entity in entities {
        let alone = store
            .read_checkpoint_of(position, std::slice::from_ref(entity))
            .unwrap();
        let mut expected = resume.clone();
        expected.state.retain_entities(std::slice::from_ref(entity));
        expected.expiries.retain(|x| &x.entity == entity);
        assert_eq!(alone, expected, "{case}: {entity}");
    }
}

#[test]
fn checkpoints_in_runs_keep_entities_at_the_ends_and_states_without_facts() {
    let (_dir, store) = chunked();
    let position = store.checkpoint_positions().unwrap()[8].clone();
    let (header, replayed) = store.read_checkpoint(&position).unwrap().unwrap();
    let names: Vec<String> = (0..400).map(|i| format!("entity-{i:03}")).collect();
    let reads_back = |resume: &Resume, runs: usize, case: &str| {
        store
            .write_checkpoint_in_runs(&position, header, resume, runs)
            .unwrap();
        let (_, read) = store.read_checkpoint(&position).unwrap().unwrap();
        assert_eq!(&read, resume, "{case}, {runs} runs");
        let some: Vec<String> = names
            .iter()
            .step_by(7)
            .chain(&names[398..])
            .cloned()
            .collect();
        each_entity_reads_alone(
            &store,
            &position,
            resume,
            &some,
            &format!("{case}, {runs} runs"),
        );
    };
    let without = |entities: &[&str]| {
        let mut resume = replayed.clone();
        let mut state = State::new();
        for (entity, attr, slot) in replayed.state.slots() {
            if !entities.contains(&entity) {
                state.put_slot(entity, attr, slot.clone());
            }
        }
        resume.state = state;
        resume
    };
    // Entities with pending expiries but no facts, first and last.
    let ends = without(&["entity-000", "entity-399"]);
    assert!(ends.expiries.iter().any(|x| x.entity == "entity-000"));
    assert!(ends.expiries.iter().any(|x| x.entity == "entity-399"));
    // Expiries and no facts at all; nothing at all.
    let no_facts = without(&names.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(no_facts.state.is_empty() && !no_facts.expiries.is_empty());
    let nothing = Resume {
        state: State::new(),
        expiries: Vec::new(),
    };
    // One entity with every fact: the runs cannot be cut.
    let mut one = replayed.clone();
    one.state.retain_entities(&["entity-123".into()]);
    for runs in [2, 3, 50, 2000] {
        reads_back(&ends, runs, "ends");
        reads_back(&no_facts, runs, "no facts");
        reads_back(&nothing, runs, "nothing");
        reads_back(&one, runs, "one entity");
    }
}

#[test]
fn a_chunk_that_holds_entities_outside_its_range_is_found() {
    let (_dir, store) = chunked();
    let position = store.checkpoint_positions().unwrap()[6].clone();
    let chunks = chunks_of(&store, &position);
    // The second chunk, stored under a key after its first entity.
    let (key, value) = &chunks[1];
    write_checkpoints(&store, |t| t.remove(key)).unwrap();
    let mut moved = key.to_vec();
    moved.extend_from_slice(b"~");
    write_checkpoints(&store, |t| t.insert(moved, value)).unwrap();
    let p = problem(&store);
    assert_eq!(p.tree, "checkpoints");
    assert!(p.what.contains("holds entities outside its range"), "{p}");
}

#[test]
fn a_checkpoint_header_that_does_not_match_its_chunks_is_found() {
    let (_dir, store) = chunked();
    // A query first, so that the store keeps the headers it read.
    // (The checkpoint after 2006, which a question about 2006 starts from.)
    let query = AsOf::new(w("2006"));
    store.latest().unwrap().state(query, &[]).unwrap();
    let position = store.checkpoint_positions().unwrap()[6].clone();
    let key = [&[b'h'][..], &position].concat();
    let mut header = store.checkpoints.get(&key).unwrap().unwrap().to_vec();
    // The number of attributes, the last four bytes: far more than stored.
    header[29..33].copy_from_slice(&u32::MAX.to_be_bytes());
    write_checkpoints(&store, |t| t.insert(&key, header)).unwrap();
    let p = problem(&store);
    assert_eq!(p.tree, "checkpoints");
    assert!(p.what.contains("header does not match its chunks"), "{p}");
    let err = store.latest().unwrap().state(query, &[]).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
}

#[test]
fn reindex_rebuilds_every_index_and_answers_the_same() {
    let (_dir, store) = checkpointed();
    let at = |store: &Store, date: &str| {
        store
            .latest()
            .unwrap()
            .state(AsOf::new(w(date)), &[])
            .unwrap()
    };
    let before: Vec<State> = ["2019", "2020-06", "2022", "2030"]
        .iter()
        .map(|d| at(&store, d))
        .collect();
    tamper::remove_index_entry(&store, "by_entity", 2);
    write_checkpoints(&store, |t| t.clear()).unwrap();
    assert!(store.verify().unwrap().is_err());
    let done = store.reindex().unwrap();
    assert_eq!((done.records, done.checkpoints), (10, 4));
    store.verify().unwrap().unwrap();
    let after: Vec<State> = ["2019", "2020-06", "2022", "2030"]
        .iter()
        .map(|d| at(&store, d))
        .collect();
    assert_eq!(after, before);
    // The entity index's elements spilled to runs whenever they outgrow
    // their budget (here, after every record): the same index.
    let entries: Vec<Vec<u8>> = store
        .by_entity
        .iter()
        .map(|e| e.unwrap().to_vec())
        .collect();
    store.set_entity_elements_budget(0);
    store.reindex().unwrap();
    let rebuilt: Vec<Vec<u8>> = store
        .by_entity
        .iter()
        .map(|e| e.unwrap().to_vec())
        .collect();
    assert_eq!(rebuilt, entries);
    store.verify().unwrap().unwrap();
}

#[test]
fn a_reindex_cut_short_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    {
        let store = Store::open(&path, OpenMode::CreateIfMissing).unwrap();
        append(
            &store,
            &[
                event("a", "2019", &[("x.v", set(1))]),
                event("b", "2020", &[("y.s", add("p"))]),
            ],
        );
        // As a crash would leave it: the mark set, an index half gone.
        store.meta.insert(META_REINDEXING, &[1]).unwrap();
        store.by_entity.tree().clear().unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(&path, OpenMode::Existing).unwrap();
    assert!(store.meta.get(META_REINDEXING).unwrap().is_none());
    store.verify().unwrap().unwrap();
    assert_eq!(store.latest().unwrap().entities().unwrap(), ["x", "y"]);
}

#[test]
fn a_store_closed_by_this_process_opens_again_at_once() {
    // sled keeps its lock for a while after the last handle is dropped,
    // while its background threads finish writing.
    let (dir, store) = fresh();
    drop(store);
    let rounds = 30;
    for round in 0..rounds {
        let store = Store::open(&dir.path().join("s"), OpenMode::Existing)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let batch: Vec<Located> = (0..300)
            .map(|i| event(&format!("e{round}-{i}"), "2020", &[("x.a", set(i))]))
            .collect();
        append(&store, &batch);
    }
    let store = Store::open(&dir.path().join("s"), OpenMode::Existing).unwrap();
    assert_eq!(store.head().unwrap().seq, rounds * 300);
}

#[test]
fn the_first_write_to_a_store_of_format_1_marks_it_current() {
    let (_dir, store) = fresh();
    append(&store, &[event("a", "2020", &[("x.v", set(1))])]);
    tamper::set_format_version(&store, 1);
    append(&store, &[event("b", "2021", &[("x.v", set(2))])]);
    let stored = store.meta.get(META_FORMAT).unwrap().unwrap();
    assert_eq!(stored.as_ref(), &FORMAT_VERSION.to_be_bytes()[..]);
    assert_eq!(FORMAT_VERSION, 3);
}

#[test]
fn entity_queries_about_several_entities_agree_with_the_whole_state() {
    let (_dir, store) = fresh();
    append(
        &store,
        &[
            event(
                "a",
                "2019",
                &[("x.v", set(1)), ("y.s", add("p")), ("x.w", set(2))],
            ),
            event(
                "b",
                "2020",
                &[("y.s", add("q")), ("x.v", set(3)), ("z.v", set(4))],
            ),
            event("c", "2021-06", &[("y.v", set(5)), ("x.v", set(6))]),
        ],
    );
    let snapshot = store.latest().unwrap();
    let entities: Vec<String> = vec!["x".into(), "y".into()];
    for at in ["2019", "2020-06", "2021", "2030"] {
        let scoped = snapshot.state(AsOf::new(w(at)), &entities).unwrap();
        let mut whole = snapshot.state(AsOf::new(w(at)), &[]).unwrap();
        whole.retain_entities(&entities);
        assert_eq!(scoped, whole, "at {at}");
        // An entity named twice counts once.
        let twice: Vec<String> = vec!["y".into(), "x".into(), "y".into()];
        assert_eq!(snapshot.state(AsOf::new(w(at)), &twice).unwrap(), whole);
    }
}

#[test]
fn an_entity_index_entry_that_differs_from_its_record_is_found() {
    let (_dir, store) = fresh();
    append(
        &store,
        &[
            event("a", "2019", &[("x.v", set(1))]),
            event("b", "2020", &[("y.v", set(2))]),
        ],
    );
    let record = store.read(2).unwrap();
    let mut forged = record.event.clone();
    forged.changes[0].op = set(3);
    let genuine = record::entity_element(&record.event, "y", 2);
    store.by_entity.retain(|e| e != genuine.as_slice()).unwrap();
    store
        .by_entity
        .insert_sorted(&[record::entity_element(&forged, "y", 2)])
        .unwrap();
    let p = problem(&store);
    assert_eq!((p.seq, p.tree), (Some(2), "by_entity"));
    assert!(p.what.contains("differs"), "{p}");
}

#[test]
fn the_entity_index_is_checked_whole_and_record_by_record_where_it_differs() {
    let batch = || {
        (0..40)
            .map(|i| {
                event(
                    &format!("e{i}"),
                    &format!("20{:02}", i % 30),
                    &[(&format!("x{}.v", i % 7), set(i)), ("y.s", add("m"))],
                )
            })
            .collect::<Vec<_>>()
    };
    // An extra element beside a record's own, with other changes.
    let (_dir, store) = fresh();
    append(&store, &batch());
    let record = store.read(5).unwrap();
    let mut forged = record.event.clone();
    forged.changes[0].op = set(99);
    store
        .by_entity
        .insert_sorted(&[record::entity_element(&forged, "x4", 5)])
        .unwrap();
    let p = problem(&store);
    assert_eq!((p.seq, p.tree), (Some(5), "by_entity"), "{p}");
    assert!(p.what.contains("two entries under entity \"x4\""), "{p}");
    // Elements of format 1 for every other record: still healthy, and one
    // missing is named.
    let (_dir, store) = fresh();
    append(&store, &batch());
    let mixed: Vec<Vec<u8>> = store
        .by_entity
        .iter()
        .map(|e| {
            let e = e.unwrap().to_vec();
            let (entity, start, seq) = keys::decode_entity(&e).unwrap();
            if seq % 2 == 0 {
                keys::entity(entity, start, seq)
            } else {
                e
            }
        })
        .collect();
    let mut sorted = mixed.clone();
    sorted.sort();
    store.by_entity.retain(|_| false).unwrap();
    store.by_entity.insert_sorted(&sorted).unwrap();
    assert_eq!(store.verify().unwrap().unwrap().records, 40);
    // Both forms for one record.
    let twice = keys::entity("y", w("2012").start(), 13);
    store.by_entity.insert_sorted(&[&twice]).unwrap();
    let p = problem(&store);
    assert_eq!((p.seq, p.tree), (Some(13), "by_entity"), "{p}");
    assert!(p.what.contains("two entries under entity \"y\""), "{p}");
    store.by_entity.retain(|e| e != twice.as_slice()).unwrap();
    let old = keys::entity("y", w("2011").start(), 12);
    assert!(mixed.contains(&old));
    store.by_entity.retain(|e| e != old.as_slice()).unwrap();
    let p = problem(&store);
    assert_eq!((p.seq, p.tree), (Some(12), "by_entity"), "{p}");
    assert!(p.what.contains("no entry under entity \"y\""), "{p}");
}

#[test]
fn an_entity_index_entry_whose_entity_is_not_text_is_unreadable() {
    let (_dir, store) = rich();
    let mut element = keys::entity("y", w("2020-06").start(), 2);
    element[0] = 0xFF;
    store.by_entity.insert_sorted(&[element]).unwrap();
    let p = problem(&store);
    assert_eq!(p.tree, "by_entity", "{p}");
    assert!(p.what.contains("an element is unreadable"), "{p}");
}

#[test]
fn snapshots_see_the_corrections_of_their_head_only() {
    let (_dir, store) = fresh();
    append(&store, &[event("a", "2020", &[("x.v", set(1))])]);
    // A snapshot reads (and keeps) the corrections: none yet.
    assert!(!store.latest().unwrap().is_corrected(1));
    let mut fix = event("b", "2020", &[("x.v", set(2))]);
    fix.event.corrects = vec!["a".into()];
    append(&store, &[fix]);
    assert!(store.latest().unwrap().is_corrected(1));
    assert_eq!(store.latest().unwrap().corrected_by(1).unwrap(), ["b"]);
    // As of head 1, "b" was not known.
    assert!(!store.snapshot_at(1).unwrap().is_corrected(1));
}

#[test]
fn a_batch_whose_push_failed_takes_nothing_more_and_cannot_commit() {
    let (_dir, store) = fresh();
    append(&store, &[event("a", "2020", &[("x.v", set(1))])]);
    let mut writer = store.writer(IdPolicy::RequireNew, None, now()).unwrap();
    writer
        .push(&[event("b", "2021", &[("y.v", set(1))])])
        .unwrap();
    // "a" is stored: append refuses it.
    let err = writer.push(&[event("a", "2022", &[("z.v", set(2))])]);
    assert!(matches!(err, Err(Error::DuplicateId { .. })), "{err:?}");
    // Nothing of the batch is stored, "b" included.
    assert_batch_refused(writer, &store, "\"a\" is already stored", 1, "b");
    store.verify().unwrap().unwrap();
}

/// After a failed push, `writer` refuses more events and its commit, both
/// naming `why`, and nothing of the batch is stored: the head is still
/// `head`, and there is no event `absent`.
fn assert_batch_refused(mut writer: Writer<'_>, store: &Store, why: &str, head: u64, absent: &str) {
    let later = writer.push(&[event("later", "2030", &[])]).unwrap_err();
    let commit = writer.commit().unwrap_err();
    for refused in [later.to_string(), commit.to_string()] {
        assert!(refused.contains("failed earlier"), "{refused}");
        assert!(refused.contains(why), "{refused}");
    }
    assert_eq!(store.head().unwrap().seq, head);
    assert!(store.latest().unwrap().find(absent).unwrap().is_none());
}

#[test]
fn a_large_batch_that_fails_at_commit_leaves_no_entity_entries() {
    let (_dir, store) = fresh();
    store.set_entity_elements_budget(4 << 10);
    append(&store, &[event("a", "2020", &[("x.v", set(1))])]);
    let entries = |store: &Store| store.by_entity.iter().count();
    assert_eq!(entries(&store), 1);
    // Enough events that their entity entries outgrow the budget and are
    // spilled before the commit, which then fails: the last one corrects
    // an unknown event.
    let mut batch: Vec<Located> = (0..500)
        .map(|i| event(&format!("n{i}"), "2021", &[(&format!("e{i}.v"), set(i))]))
        .collect();
    let mut bad = event("bad", "2022", &[("x.v", set(2))]);
    bad.event.corrects = vec!["nowhere".into()];
    batch.push(bad);
    let mut writer = store.writer(IdPolicy::RequireNew, None, now()).unwrap();
    writer.push(&batch[..250]).unwrap();
    assert!(!writer.spilled_nothing(), "no run spilled");
    assert_eq!(entries(&store), 1, "nothing written before the commit");
    writer.push(&batch[250..]).unwrap();
    assert!(writer.commit().is_err());
    assert_eq!(entries(&store), 1);
    store.verify().unwrap().unwrap();
    // Without the bad event, the runs and the rest are merged into the
    // index at the commit: one entry for each event.
    let mut writer = store.writer(IdPolicy::RequireNew, None, now()).unwrap();
    writer.push(&batch[..250]).unwrap();
    writer.push(&batch[250..500]).unwrap();
    assert!(!writer.spilled_nothing(), "no run spilled");
    writer.commit().unwrap();
    assert_eq!(entries(&store), 501);
    let scoped = store
        .latest()
        .unwrap()
        .state(AsOf::new(w("2030")), &["e3".into(), "e499".into()])
        .unwrap();
    assert_eq!(scoped.len(), 2);
    store.verify().unwrap().unwrap();
}

#[test]
fn an_entity_name_with_a_nul_selects_nothing() {
    let (_dir, store) = fresh();
    // No stored name has a NUL; asking for one gives nothing, not the
    // entries of "a" that its bytes would select as a prefix. Such an
    // entry: of "a", at a position whose first bytes are "b", 0 (no valid
    // date has one, but a damaged store might).
    append(&store, &[event("e", "2020", &[("a.v", set(1))])]);
    let start = (0x6200_0000_0000_0000u64 ^ (1 << 63)) as i64;
    assert!(keys::entity("a", start, 1).starts_with(b"a\0b\0"));
    store
        .by_entity
        .insert_sorted(&[keys::entity_changes("a", start, 1, b"not a change list")])
        .unwrap();
    let snapshot = store.latest().unwrap();
    let state = snapshot
        .state(AsOf::new(w("2030")), &["a\0b".into(), "a\0".into()])
        .unwrap();
    assert_eq!(state.len(), 0);
}

/// `batch` as JSON Lines, each event as an event file line.
fn json_lines(batch: &[Located]) -> String {
    batch
        .iter()
        .map(|l| {
            format!(
                "{}\n",
                serde_json::Value::Object(crate::formats::json::event(&l.event))
            )
        })
        .collect()
}

/// Record `seq` of `store` as a JSON Lines export writes it.
fn record_line(store: &Store, seq: u64) -> String {
    let record = store.read(seq).unwrap();
    let line = serde_json::json!({
        "seq": record.seq,
        "recorded_at": record.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "hash": record::hash_to_hex(&record.hash),
        "prev_hash": record::hash_to_hex(&record.prev_hash),
        "event": crate::formats::json::event(&record.event),
    });
    format!("{line}\n")
}

/// Writes JSON Lines as `import` does, `chunk` events at a time, each
/// checked on a second thread while this one stages the chunk before.
fn import_json_lines(store: &Store, lines: &str, chunk: usize) -> Result<Receipt> {
    let mut writer = store.writer(IdPolicy::SkipUnchanged, None, now())?;
    crate::formats::input::write_json_lines(lines.as_bytes(), "test", chunk, &mut writer)?;
    writer.commit()
}

#[test]
fn chunks_checked_on_another_thread_are_written_as_pushed_chunks_are() {
    let kinds = |store: &Store| {
        store
            .attrs
            .iter()
            .map(|e| e.unwrap().to_vec())
            .collect::<Vec<_>>()
    };
    let stored = [
        event("a", "2020", &[("x.v", set(1))]),
        event("b", "2021", &[("x.tags", add("t"))]),
    ];
    let batch = [
        event("c", "2022", &[("x.v", set(2)), ("y.v", set(1))]),
        stored[0].clone(),
        event("d", "2019", &[("y.v", set(3)), ("x.tags", add("u"))]),
        stored[1].clone(),
        event("e", "2023", &[("z.tags", add("t"))]),
    ];
    let written = [false, true].map(|elsewhere| {
        let (dir, store) = fresh();
        append(&store, &stored);
        let receipt = if elsewhere {
            import_json_lines(&store, &json_lines(&batch), 2).unwrap()
        } else {
            store
                .write(&batch, IdPolicy::SkipUnchanged, None, now())
                .unwrap()
        };
        store.verify().unwrap().unwrap();
        let state = store
            .latest()
            .unwrap()
            .state(AsOf::new(w("2030")), &[])
            .unwrap();
        let counts = (receipt.appended, receipt.skipped);
        (dir, counts, store.head().unwrap(), kinds(&store), state)
    });
    let [
        (_, pushed_counts, pushed_head, pushed_kinds, pushed_state),
        (_, counts, head, kinds, state),
    ] = written;
    assert_eq!(counts, (3, 2));
    assert_eq!(counts, pushed_counts);
    assert_eq!(head, pushed_head);
    assert_eq!(kinds.len(), 4, "x.v, x.tags, y.v, z.tags");
    assert_eq!(kinds, pushed_kinds);
    assert_eq!(state, pushed_state);
}

#[test]
fn a_chunk_refused_on_another_thread_fails_the_whole_batch() {
    let (_dir, store) = fresh();
    append(&store, &[event("a", "2020", &[("x.v", set(1))])]);
    let good = [
        event("b", "2021", &[("y.v", set(1))]),
        event("c", "2021", &[]),
    ];
    let kinds = event("d", "2022", &[("x.v", add("t"))]);
    let changed = event("a", "2020", &[("x.v", set(2))]);
    for (bad, expected) in [
        (kinds, "\"x.v\" is single-valued"),
        (changed, "different content"),
    ] {
        // The bad event is in the second chunk, after one that was staged.
        let lines = json_lines(&[good[0].clone(), good[1].clone(), bad]);
        let mut writer = store.writer(IdPolicy::SkipUnchanged, None, now()).unwrap();
        let err = crate::formats::input::write_json_lines(lines.as_bytes(), "t", 2, &mut writer)
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
        assert_batch_refused(writer, &store, expected, 1, "b");
    }
    store.verify().unwrap().unwrap();
}

/// The first error in the input's order is reported: a record that does
/// not continue a restored chain (found as it is staged) before an id used
/// twice later in the same chunk (found by the checks, which run first).
#[test]
fn the_first_error_in_the_input_is_reported_whichever_step_finds_it() {
    let (_dir, exported) = fresh();
    append(
        &exported,
        &[
            event("a", "2020", &[]),
            event("b", "2021", &[]),
            event("c", "2022", &[]),
        ],
    );
    // Records 1 and 3: record 3 does not continue record 1.
    let lines = format!(
        "{}{}{}",
        record_line(&exported, 1),
        record_line(&exported, 3),
        json_lines(&[event("a", "2023", &[])])
    );
    for chunk in [1, 2, 10] {
        let (_dir, store) = fresh();
        let err = import_json_lines(&store, &lines, chunk)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not continue them as record 2"),
            "chunk {chunk}: {err}"
        );
        assert_eq!(store.head().unwrap().seq, 0);
    }
    // The same through `push`, one chunk.
    let (_dir, store) = fresh();
    let mut writer = store.writer(IdPolicy::SkipUnchanged, None, now()).unwrap();
    let mut events = Vec::new();
    crate::formats::input::read_json_lines::<Error>(lines.as_bytes(), "t", 10, |chunk| {
        events.extend(chunk.into_inner());
        Ok(())
    })
    .unwrap();
    let err = writer.push(&events).unwrap_err().to_string();
    assert!(err.contains("does not continue them as record 2"), "{err}");
}

/// Chunks must be staged once each, in the order they were checked.
#[test]
fn checked_chunks_are_staged_once_each_in_order() {
    let (_dir, store) = fresh();
    let validated = |batch: &[Located]| Validated::new(batch.to_vec());
    let first = [event("a", "2020", &[])];
    let second = [event("b", "2021", &[])];
    refused_elsewhere(
        &store,
        "chunk 1 of the batch was handed in where chunk 0 was due",
        |checks, stage| {
            let mut a = checks.check(validated(&first));
            let mut b = checks.check(validated(&second));
            stage(&mut b).and_then(|_| stage(&mut a))
        },
    );
    refused_elsewhere(&store, "checked but never staged", |checks, stage| {
        let mut a = checks.check(validated(&first));
        checks.check(validated(&second));
        stage(&mut a)
    });
    refused_elsewhere(
        &store,
        "was handed in where chunk 1 was due",
        |checks, stage| {
            let mut a = checks.check(validated(&first));
            stage(&mut a)?;
            stage(&mut a)
        },
    );
    // A failed check fails the batch, even if the feed carries on.
    let twice = [event("a", "2020", &[]), event("a", "2021", &[])];
    refused_elsewhere(&store, "is used twice in this batch", |checks, _| {
        checks.check(validated(&twice));
        Ok(())
    });
    assert_eq!(store.head().unwrap().seq, 0);
}

/// Feeds a new batch of `store` through `feed`, which must fail it for
/// `why`; the batch then refuses to commit.
fn refused_elsewhere<'s>(
    store: &'s Store,
    why: &str,
    feed: impl FnOnce(&mut BatchChecks<'s>, &mut dyn FnMut(&mut Checked) -> Result<()>) -> Result<()>,
) {
    let mut writer = store.writer(IdPolicy::SkipUnchanged, None, now()).unwrap();
    let err = writer.push_checked_elsewhere(feed).unwrap_err();
    assert!(err.to_string().contains(why), "{err}");
    assert!(writer.commit().is_err());
}

#[test]
fn checkpoints_go_where_a_year_begins() {
    use crate::store::checkpoint::Placement;
    let year = |y: i32| w(&y.to_string()).start();
    // Within one year: one every one and a half intervals.
    let mut placement = Placement::new(4, None);
    let after: Vec<usize> = (0..20)
        .filter(|_| !placement.before(year(2020)) && placement.after())
        .collect();
    assert_eq!(after, [5, 11, 17]);
    // Where a year begins, once half an interval has gathered.
    let mut placement = Placement::new(4, None);
    let starts = [2020, 2020, 2021, 2021, 2021, 2022, 2023, 2023, 2023];
    let mut before = Vec::new();
    for (i, &y) in starts.iter().enumerate() {
        if placement.before(year(y)) {
            before.push(i);
        }
        assert!(!placement.after(), "position {i}");
    }
    // Before 2021 and 2022; not before 2023 (one position since the last),
    // nor before the first position.
    assert_eq!(before, [2, 5]);
    // Resumed from a checkpoint: none again before the position after it.
    let mut placement = Placement::new(4, Some(year(2020)));
    assert!(!placement.before(year(2021)));
    // Every position, at an interval of 1; never twice at one.
    let mut placement = Placement::new(1, None);
    let mut each = Vec::new();
    for y in [2020, 2021, 2021, 2022] {
        each.push((placement.before(year(y)), placement.after()));
    }
    assert_eq!(
        each,
        [(false, true), (false, true), (false, true), (false, true)]
    );
}

/// A question inside a year starts from the checkpoint where that year
/// began: one in the middle of the year (after its events dated by the
/// year alone, which end with it) could serve none of its questions.
#[test]
fn a_question_inside_a_year_starts_where_the_year_began() {
    let (_dir, store) = fresh();
    store.set_checkpoint_interval(100);
    let mut batch = Vec::new();
    for year in 2001..=2004 {
        batch.push(event(
            &format!("y{year}"),
            &year.to_string(),
            &[("x.year", set(year.into()))],
        ));
        let first = w(&format!("{year}-01-01")).start() / 86_400;
        for day in 0..120 {
            let date = chrono::DateTime::from_timestamp((first + day) * 86_400, 0).unwrap();
            let at = date.format("%Y-%m-%d").to_string();
            batch.push(event(&format!("d{year}-{day}"), &at, &[("x.v", set(day))]));
        }
    }
    append(&store, &batch);
    assert_eq!(store.checkpoint_positions().unwrap().len(), 3);
    let query = AsOf::new(w("2003-03-01"));
    let before = store.records_read();
    let snapshot = store.latest().unwrap();
    let state = snapshot.state(query, &[]).unwrap();
    // The year's own event and its first 60 days.
    assert_eq!(store.records_read() - before, 61);
    assert_eq!(state, snapshot.state_from_start(query).unwrap());
}

/// Checkpoints built a few at a time, as appends gather (a build resumed
/// from the last checkpoint), go where a full build puts them.
#[test]
fn checkpoints_built_as_appends_gather_go_where_a_full_build_puts_them() {
    let (_dir, store) = fresh();
    store.set_checkpoint_interval(10);
    for year in 2001..=2008 {
        let batch: Vec<Located> = (0..9)
            .map(|i| {
                let at = format!("{year}-0{}", i + 1);
                event(&format!("e{year}-{i}"), &at, &[("x.v", set(i))])
            })
            .collect();
        append(&store, &batch);
    }
    let built = store.checkpoint_positions().unwrap();
    // Where every year begins but the first (9 events a year; at least 5
    // since the last): before 2002 through 2008, as far as builds went.
    assert!(built.len() >= 5, "{}", built.len());
    for position in &built {
        let (start, seq) = keys::decode_time(position).unwrap();
        let date = chrono::DateTime::from_timestamp(start, 0).unwrap();
        assert_eq!(chrono::Datelike::month(&date), 9, "record {seq}");
    }
    store.reindex().unwrap();
    let full = store.checkpoint_positions().unwrap();
    assert_eq!(full[..built.len()], built[..]);
}

/// A checkpoint decoded by two threads, each into a state of its own,
/// joined: the same as decoded by one, wherever its chunks are cut.
#[test]
fn a_checkpoint_decoded_in_two_parts_is_the_one_checkpoint() {
    let (_dir, store) = chunked();
    let position = store.checkpoint_positions().unwrap()[8].clone();
    let (_, whole) = store.read_checkpoint(&position).unwrap().unwrap();
    let chunks = chunks_of(&store, &position).len();
    assert!(chunks > 3);
    assert!(!whole.expiries.is_empty());
    for cut in [0, 1, chunks / 2, chunks - 1, chunks] {
        let joined = store.read_checkpoint_in_parts(&position, cut, cut).unwrap();
        assert_eq!(joined, whole, "cut at {cut} of {chunks}");
    }
    assert_eq!(store.read_checkpoint_beside(&position).unwrap(), whole);
    // A chunk in both parts (as if two chunks held one entity) is damage.
    let err = store
        .read_checkpoint_in_parts(&position, chunks / 2 + 1, chunks / 2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("two of its chunks hold one entity"), "{err}");
    // A chunk in neither is too.
    let err = store
        .read_checkpoint_in_parts(&position, chunks / 2, chunks / 2 + 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("its header does not match its chunks"),
        "{err}"
    );
}
