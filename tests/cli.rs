//! The command line, run as a real process against fresh stores.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::{Env, bundled_events, facts, r, values};
use serde_json::json;

const TWO_EVENTS: &str = r#"
[[event]]
id = "a"
at = "2020"
title = "A"
changes = [{ set = "x.v", value = 1 }]

[[event]]
id = "b"
at = "2021-03"
title = "B"
tags = ["t"]
changes = [{ add = "y.s", value = { ref = "x" } }]
"#;

#[test]
fn importing_the_same_folder_twice_appends_nothing_the_second_time() {
    let env = Env::new();
    let events = bundled_events().display().to_string();
    let first = env.ok(&["import", &events]);
    assert_eq!(
        first,
        "imported 4 events from 1 file (seq 1-4); the head is now 4\n"
    );
    let before = env.snapshot();
    let second = env.ok(&["import", &events]);
    assert_eq!(
        second,
        "nothing to import: all 4 events from 1 file are already stored unchanged (head 4)\n"
    );
    assert_eq!(env.snapshot(), before);
}

#[test]
fn importing_a_changed_event_under_an_existing_id_is_a_conflict() {
    let env = Env::new();
    env.ok(&["import", &env.write("one.toml", TWO_EVENTS)]);
    let before = env.snapshot();
    let changed = env.write(
        "changed.toml",
        &TWO_EVENTS.replace("title = \"B\"", "title = \"B, revised\""),
    );
    let stderr = env.fails(&["import", &changed], 3);
    assert_eq!(
        stderr,
        "chronik: event \"b\" is already stored (seq 2) with different content; give the new event another id\n"
    );
    assert_eq!(env.snapshot(), before);
}

#[test]
fn import_reads_folders_recursively_in_path_order_as_one_batch() {
    let env = Env::new();
    std::fs::create_dir_all(env.dir().join("in/sub")).unwrap();
    env.write(
        "in/sub/b.jsonl",
        r#"{"id": "later", "at": "2022", "title": "L"}"#,
    );
    env.write(
        "in/a.json",
        r#"[{"id": "first", "at": "2023", "title": "F"}]"#,
    );
    env.write("in/notes.txt", "not events");
    env.write("in/.hidden.toml", "garbage that must not be read");
    let out = env.ok(&["import", "in"]);
    assert_eq!(
        out,
        "imported 2 events from 2 files (seq 1-2); the head is now 2\n"
    );
    let log = env.json(&["log"]);
    assert_eq!(log["records"][0]["id"], "first");
    assert_eq!(log["records"][1]["id"], "later");
    std::fs::create_dir(env.dir().join("empty")).unwrap();
    assert!(
        env.fails(&["import", "empty"], 2)
            .contains("no event files")
    );
}

#[test]
fn one_bad_event_among_good_ones_leaves_the_store_exactly_as_it_was() {
    let env = Env::bundled();
    let before = env.snapshot();
    let state_before = env.ok(&["state", "--at", "2030"]);
    let bad = format!("{TWO_EVENTS}\n[[event]]\nid = \"c\"\nat = \"2023-02-29\"\ntitle = \"C\"\n");
    let stderr = env.fails(&["import", &env.write("bad.toml", &bad)], 2);
    assert!(
        stderr.contains(
            "bad.toml: event #3 \"c\" (line 15): field `at`: invalid date \"2023-02-29\""
        ),
        "{stderr}"
    );
    let stderr = env.fails(&["append", &env.write("bad2.toml", &bad)], 2);
    assert!(stderr.contains("invalid date \"2023-02-29\""), "{stderr}");
    let kinds = format!(
        "{TWO_EVENTS}\n[[event]]\nid = \"c\"\nat = \"2023\"\ntitle = \"C\"\nchanges = [{{ add = \"x.v\", value = 2 }}]\n"
    );
    let stderr = env.fails(&["import", &env.write("kinds.toml", &kinds)], 2);
    assert!(
        stderr.contains("\"x.v\" is single-valued (set/unset) in event \"a\""),
        "{stderr}"
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.ok(&["state", "--at", "2030"]), state_before);
}

#[test]
fn append_requires_new_ids_and_honours_expect_head() {
    let env = Env::bundled();
    let file = env.write("new.toml", TWO_EVENTS);
    let stderr = env.fails(&["append", "--expect-head", "3", &file], 3);
    assert_eq!(
        stderr,
        "chronik: the store's head is 4, not the expected 3: someone appended in between; read the new events and retry\n"
    );
    assert_eq!(
        env.ok(&["append", "--expect-head", "4", &file]),
        "appended 2 events (seq 5-6); the head is now 6\n"
    );
    let stderr = env.fails(&["append", &file], 3);
    assert!(
        stderr.contains("event \"a\" is already stored (seq 5)"),
        "{stderr}"
    );
    let stderr = env.fails(
        &[
            "append",
            &bundled_events()
                .join("openai-microsoft.toml")
                .display()
                .to_string(),
        ],
        3,
    );
    assert!(stderr.contains("\"microsoft-invests-2019\""), "{stderr}");
}

#[test]
fn append_reads_stdin_in_any_format() {
    let env = Env::new();
    let inputs = [
        (
            "[[event]]\nid = \"t\"\nat = \"2019\"\ntitle = \"toml\"\n",
            "t",
        ),
        (
            "{\"id\": \"l1\", \"at\": \"2019\", \"title\": \"x\"}\n{\"id\": \"l2\", \"at\": \"2019\", \"title\": \"y\"}\n",
            "l2",
        ),
        (
            "[{\"id\": \"j\", \"at\": \"2019\", \"title\": \"json\"}]",
            "j",
        ),
        (
            "{\"event\": [{\"id\": \"w\", \"at\": \"2019\", \"title\": \"wrapped\"}]}",
            "w",
        ),
    ];
    for (input, id) in inputs {
        env.cmd(&["append", "-"])
            .write_stdin(input)
            .assert()
            .success();
        env.ok(&["show", id]);
    }
    let stderr = {
        let out = env
            .cmd(&["append"])
            .write_stdin("{\"id\": \"bad\"")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(
        stderr.starts_with("chronik: <stdin>: not valid JSON: EOF while parsing"),
        "{stderr}"
    );
    // --input-format overrides what the content looks like.
    let line = "{\"id\": \"forced\", \"at\": \"2019\", \"title\": \"t\"}";
    let out = env
        .cmd(&["append", "--input-format", "toml", "-"])
        .write_stdin(line)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    env.cmd(&["append", "--input-format", "jsonl", "-"])
        .write_stdin(line)
        .assert()
        .success();
    let stderr = env.fails(
        &[
            "append",
            "--input-format",
            "json",
            &env.write(
                "e.toml",
                "[[event]]\nid = \"x\"\nat = \"2019\"\ntitle = \"t\"\n",
            ),
        ],
        2,
    );
    assert!(stderr.contains("not valid JSON"), "{stderr}");
    let out = env.cmd(&["append", "-"]).write_stdin("").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "chronik: <stdin>: no events to append\n"
    );
    assert!(
        env.fails(&["append", &env.write("empty.toml", "")], 2)
            .contains("no events to append")
    );
}

#[test]
fn add_builds_one_event_from_flags_in_the_order_written() {
    let env = Env::new();
    env.ok(&[
        "add", "--id", "stargate-announced-2025", "--at", "2025-01-21", "--title", "Stargate",
        "--set", "stargate.kind=joint venture",
        "--add", "stargate.partners=@openai",
        "--set", "stargate.planned_investment=500000000000USD", "--until", "2029",
        "--set", "stargate.years=4",
        "--set", "stargate.share=0.5",
        "--set", "stargate.public=true",
        "--set", "stargate.ends=date:2029",
        "--set", "stargate.code=text:42",
        "--unset", "stargate.code",
        "--tag", "stargate",
        "--source", "title=OpenAI may now also use cloud providers other than Microsoft; publisher=heise online",
        "--source", "https://example.org/x",
    ]);
    let shown = env.json(&["show", "stargate-announced-2025"]);
    assert_eq!(
        shown["changes"],
        json!([
            {"set": "stargate.kind", "value": "joint venture"},
            {"add": "stargate.partners", "value": {"ref": "openai"}},
            {"set": "stargate.planned_investment", "value": {"amount": 500000000000u64, "unit": "USD"}, "until": "2029"},
            {"set": "stargate.years", "value": 4},
            {"set": "stargate.share", "value": 0.5},
            {"set": "stargate.public", "value": true},
            {"set": "stargate.ends", "value": {"date": "2029"}},
            {"set": "stargate.code", "value": "42"},
            {"unset": "stargate.code"},
        ])
    );
    assert_eq!(shown["sources"][0]["publisher"], "heise online");
    assert_eq!(shown["sources"][1]["url"], "https://example.org/x");
    assert_eq!(shown["tags"], json!(["stargate"]));
    let s = env.json(&["state", "--at", "2029"]);
    assert_eq!(values(&s, "stargate.planned_investment").len(), 1);
    assert!(values(&s, "stargate.code").is_empty());
    let s = env.json(&["state", "--at", "2030"]);
    assert!(values(&s, "stargate.planned_investment").is_empty());
}

#[test]
fn add_refuses_bad_flags_with_exit_code_2_and_duplicates_with_3() {
    let env = Env::new();
    let base = ["add", "--id", "e", "--at", "2020", "--title", "T"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    let cases: [(&[&str], &str); 7] = [
        (&["--set", "x.v"], "--set x.v: write ENTITY.ATTR=VALUE"),
        (
            &["--until", "2021", "--set", "x.v=1"],
            "--until 2021 must follow a --set or --add",
        ),
        (
            &["--unset", "x.v", "--until", "2021"],
            "must follow a --set or --add",
        ),
        (&["--set", "X.v=1"], "entity \"X\""),
        (&["--add", "x.s=@Oracle"], "reference \"@Oracle\""),
        (&["--set", "x.v=date:2019-13"], "invalid date \"2019-13\""),
        (&["--source", "colour=red"], "unknown field \"colour\""),
    ];
    for (extra, fragment) in cases {
        let stderr = env.fails(&with(extra), 2);
        assert!(stderr.contains(fragment), "{extra:?}: {stderr}");
    }
    let stderr = env.fails(&["add", "--id", "e", "--at", "2019-13", "--title", "T"], 2);
    assert!(stderr.contains("invalid date \"2019-13\""), "{stderr}");
    let stderr = env.fails(
        &["add", "--id", "Bad Id", "--at", "2019", "--title", "T"],
        2,
    );
    assert!(
        stderr.contains("command line: event \"Bad Id\": field `id`"),
        "{stderr}"
    );
    env.ok(&with(&["--set", "x.v=1"]));
    assert!(
        env.fails(&with(&["--set", "x.v=2"]), 3)
            .contains("event \"e\" is already stored")
    );
    let stderr = env.fails(
        &[
            "add", "--id", "f", "--at", "2021", "--title", "T", "--add", "x.v=2",
        ],
        2,
    );
    assert!(
        stderr.contains("single-valued (set/unset) in the store"),
        "{stderr}"
    );
}

#[test]
fn state_text_aligns_columns_and_marks_uncertain_facts() {
    let env = Env::bundled();
    let text = env.ok(&["state", "--at", "2024-06-15"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "State at 2024-06-15: 4 facts");
    assert_eq!(
        lines[2],
        "ENTITY  ATTRIBUTE                 VALUE       SINCE      EVENT"
    );
    assert_eq!(
        lines[4],
        "openai  cloud_providers           @oracle     2024-06 ?  oracle-capacity-2024"
    );
    assert!(
        text.contains(
            "? uncertain (1): an event dated more coarsely than 2024-06-15 set or removed the fact"
        ),
        "{text}"
    );
    let strict = env.ok(&["state", "--at", "2024-06-15", "--strict"]);
    assert!(
        strict.starts_with("State at 2024-06-15, strict: 3 facts"),
        "{strict}"
    );
    assert!(!strict.contains('?'));
    assert_eq!(
        env.ok(&["state", "--at", "2018"]),
        "State at 2018: no facts.\n"
    );
}

#[test]
fn state_text_shows_until_only_when_a_fact_has_one_and_escapes_control_characters() {
    let env = Env::new();
    env.ok(&[
        "add",
        "--id",
        "deal",
        "--at",
        "2025-01-21",
        "--title",
        "Deal",
        "--set",
        "stargate.kind=a\tjoint venture of four",
        "--set",
        "stargate.planned_investment=500000000000USD",
        "--until",
        "2029",
    ]);
    let text = env.ok(&["state", "--at", "2026"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[2],
        "ENTITY    ATTRIBUTE           VALUE                     SINCE       EVENT  UNTIL"
    );
    assert_eq!(
        lines[3],
        "stargate  kind                a\\tjoint venture of four  2025-01-21  deal"
    );
    assert_eq!(
        lines[4],
        "stargate  planned_investment  500000000000 USD          2025-01-21  deal   2029"
    );
    // Past 2029 the fact has expired, and no fact left has an until. The
    // escaped value is the widest of its column: measured as shown.
    let later = env.ok(&["state", "--at", "2030"]);
    assert_eq!(
        later.lines().nth(2),
        Some("ENTITY    ATTRIBUTE  VALUE                     SINCE       EVENT")
    );
}

#[test]
fn state_defaults_to_today_and_filters_by_entity() {
    let env = Env::bundled();
    let today = chrono::Utc::now().date_naive().to_string();
    let s = env.json(&["state"]);
    // The date may roll over between the two readings of the clock.
    let at = s["at"].as_str().unwrap();
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string();
    assert!(at == today || at == tomorrow, "{at}");
    let scoped = env.json(&["state", "--at", "2025-01-21", "--entity", "stargate"]);
    assert!(
        facts(&scoped)
            .iter()
            .all(|(t, ..)| t.starts_with("stargate."))
    );
    assert_eq!(values(&scoped, "stargate.partners").len(), 3);
    let whole = env.json(&["state", "--at", "2025-01-21"]);
    let stargate: Vec<_> = facts(&whole)
        .into_iter()
        .filter(|(t, ..)| t.starts_with("stargate."))
        .collect();
    assert_eq!(facts(&scoped), stargate);
    let stderr = env.fails(&["state", "--entity", "opneai"], 2);
    assert_eq!(
        stderr,
        "chronik: no entity \"opneai\" in the store; did you mean \"openai\"?\n"
    );
    let stderr = env.fails(&["timeline", "--entity", "OpenAI"], 2);
    assert!(
        stderr.contains("entity \"OpenAI\" must start with"),
        "{stderr}"
    );
    env.fails(
        &[
            "diff", "--from", "2019", "--to", "2020", "--entity", "nobody",
        ],
        2,
    );
}

#[test]
fn timeline_lists_events_in_replay_order_with_filters() {
    let env = Env::bundled();
    env.ok(&[
        "add",
        "--id",
        "early",
        "--at",
        "2018-05",
        "--title",
        "Backdated",
        "--tag",
        "t",
        "--add",
        "openai.investors=@someone",
    ]);
    let ids = |args: &[&str]| -> Vec<String> {
        let json = env.json(args);
        json["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&["timeline"]),
        [
            "early",
            "microsoft-invests-2019",
            "oracle-capacity-2024",
            "exclusivity-change-2025",
            "stargate-announced-2025"
        ]
    );
    assert_eq!(
        ids(&["timeline", "--from", "2019-06", "--to", "2023"]),
        ["microsoft-invests-2019"]
    );
    assert_eq!(
        ids(&["timeline", "--from", "2019-06", "--to", "2024"]),
        ["microsoft-invests-2019", "oracle-capacity-2024"]
    );
    assert_eq!(
        ids(&["timeline", "--from", "2024-06-15", "--to", "2024-12"]),
        ["oracle-capacity-2024"]
    );
    assert_eq!(
        ids(&["timeline", "--entity", "stargate"]),
        ["stargate-announced-2025"]
    );
    assert_eq!(
        ids(&["timeline", "--tag", "t", "--tag", "stargate"]),
        ["early", "stargate-announced-2025"]
    );
    assert_eq!(ids(&["timeline", "--to", "2018"]), ["early"]);
    let json = env.json(&["timeline", "--entity", "stargate"]);
    let e = &json["events"][0];
    assert_eq!(e["seq"], 4);
    assert_eq!(e["at"], "2025-01-21");
    assert_eq!(
        e["title"],
        "Stargate joint venture announced: 500 billion US dollars for AI data centers"
    );
    assert_eq!(
        e["changes"][0],
        json!({"set": "stargate.kind", "value": "joint venture"})
    );
    let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    assert_eq!(keys[..4], ["seq", "id", "at", "title"]);
    let text = env.ok(&["timeline", "--to", "2019"]);
    assert_eq!(
        text,
        "AT       ID                      TITLE\n\
         2018-05  early                   Backdated\n\
         2019     microsoft-invests-2019  Microsoft invests in OpenAI and becomes its exclusive cloud provider\n"
    );
    assert!(
        env.fails(&["timeline", "--from", "2025", "--to", "2024"], 2)
            .contains("--from 2025 is after --to 2024")
    );
}

#[test]
fn show_log_and_stats_describe_what_is_stored() {
    let env = Env::bundled();
    let text = env.ok(&["show", "oracle-capacity-2024"]);
    assert!(
        text.starts_with("oracle-capacity-2024\nat        2024-06 (month)\n"),
        "{text}"
    );
    assert!(
        text.contains("add     openai.cloud_providers  @oracle"),
        "{text}"
    );
    assert!(
        text.contains(
            "[1] \"OpenAI may now also use cloud providers other than Microsoft\", heise online"
        ),
        "{text}"
    );
    assert_eq!(
        env.fails(&["show", "nope"], 2),
        "chronik: no event with id \"nope\" in the store\n"
    );

    let log = env.json(&["log"]);
    let records = log["records"].as_array().unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(records[1]["prev_hash"], records[0]["hash"]);
    let text = env.ok(&["log"]);
    assert!(
        text.lines().next().unwrap().starts_with("SEQ  RECORDED"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5);

    let stats = env.json(&["stats"]);
    assert_eq!(stats["events"], 4);
    assert_eq!(stats["head"]["seq"], 4);
    assert_eq!(stats["head"]["hash"], records[3]["hash"]);
    assert_eq!(stats["first_at"], "2019");
    assert_eq!(stats["last_at"], "2025-01-21");
    assert_eq!(stats["entities"], 2);
    assert!(stats["size_on_disk"].as_u64().unwrap() > 0);
    let text = env.ok(&["stats"]);
    assert!(text.contains("events        4\n"), "{text}");
    assert!(
        text.contains("dates         2019 to 2025-01-21\n"),
        "{text}"
    );
    assert!(text.contains("entities      2\n"), "{text}");
}

#[test]
fn the_store_comes_from_the_flag_the_environment_or_the_default() {
    let env = Env::new();
    let file = env.write("e.toml", TWO_EVENTS);
    let mut cmd = assert_cmd::Command::cargo_bin("chronik").unwrap();
    cmd.current_dir(env.dir())
        .env("CHRONIK_STORE", env.dir().join("from-env"))
        .args(["import", &file]);
    cmd.assert().success();
    assert!(env.dir().join("from-env").is_dir());
    let mut cmd = assert_cmd::Command::cargo_bin("chronik").unwrap();
    cmd.current_dir(env.dir())
        .env_remove("CHRONIK_STORE")
        .args(["import", &file]);
    cmd.assert().success();
    assert!(env.dir().join("chronik.db").is_dir());
}

#[test]
fn exit_codes_follow_the_design() {
    let env = Env::new();
    // 1: a runtime failure; a query on a missing store also creates nothing.
    let stderr = env.fails(&["state", "--at", "2020"], 1);
    assert!(
        stderr.starts_with("chronik: there is no chronik store at "),
        "{stderr}"
    );
    assert!(!env.store().exists());
    std::fs::create_dir(env.store()).unwrap();
    std::fs::write(env.store().join("x"), "").unwrap();
    assert!(
        env.fails(&["stats"], 1)
            .contains("is not a chronik store: the directory holds other files")
    );
    std::fs::remove_dir_all(env.store()).unwrap();
    // 2: invalid input and bad usage.
    env.fails(&["state", "--at", "2019-13"], 2);
    env.fails(&["frobnicate"], 2);
    env.fails(&["import"], 2);
    env.fails(&["import", "no-such-file.toml"], 1);
    let stderr = env.fails(&["import", &env.write("x.txt", "")], 2);
    assert!(stderr.contains("cannot tell the format"), "{stderr}");
    // 0
    env.ok(&["import", &env.write("e.toml", TWO_EVENTS)]);
    // 3: a store held by another process.
    let held = chronik::Store::open(&env.store(), chronik::OpenMode::Existing).unwrap();
    let stderr = env.fails(&["state", "--at", "2020"], 3);
    assert_eq!(
        stderr,
        format!(
            "chronik: the store at {} is in use by another process\n",
            env.store().display()
        )
    );
    drop(held);
    env.ok(&["state", "--at", "2020"]);
}

#[test]
fn errors_name_the_file_the_event_the_field_and_the_value() {
    let env = Env::new();
    let cases = [
        (
            "[[event]]\nid = \"ok\"\nat = \"2019\"\ntitle = \"t\"\ncolour = \"red\"\n",
            "e.toml: event #1 \"ok\" (line 1): unknown field `colour`",
        ),
        (
            "[[event]]\nid = \"ok\"\nat = \"2019\"\ntitle = \"t\"\nchanges = [{ set = \"x.y\", value = 1, until = \"2018\" }]\n",
            "field `changes[0].until`: \"2018\" ends before the event's date \"2019\"",
        ),
        (
            "[[event]]\nid = \"ok\"\nat = \"2019\"\ntitle = \"t\"\n[[event]]\nid = \"ok\"\nat = \"2020\"\ntitle = \"u\"\n",
            "e.toml: event #2 \"ok\" (line 5): field `id`: \"ok\" is used twice in this batch",
        ),
        (
            "[[event]]\nid = \"ok\"\nat = \"2019\"\ntitle = \"t\"\nchanges = [{ set = \"x.y\", value = { ref = \"Big\" } }]\n",
            "field `changes[0].value`: reference \"Big\"",
        ),
    ];
    for (text, fragment) in cases {
        let stderr = env.fails(&["import", &env.write("e.toml", text)], 2);
        assert!(stderr.contains(fragment), "{fragment:?} not in {stderr:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let bytes = env.dir().join("bin.toml");
    std::fs::write(&bytes, b"\xff\xfe\x00garbage").unwrap();
    let stderr = env.fails(&["import", &bytes.display().to_string()], 2);
    assert!(
        stderr.contains("bin.toml: the file is not UTF-8 text"),
        "{stderr}"
    );
}

#[test]
fn every_command_has_a_purpose_and_an_example_in_its_help() {
    let env = Env::new();
    for command in [
        "import", "append", "add", "state", "timeline", "show", "log", "stats",
    ] {
        let help = env.ok(&[command, "--help"]);
        let purpose = help.lines().next().unwrap();
        assert!(
            purpose.split_whitespace().count() >= 5,
            "{command}: {purpose:?}"
        );
        assert!(help.contains("Example"), "{command} has no example");
        assert!(
            help.contains(&format!("chronik {command}")),
            "{command}'s example does not run it"
        );
    }
    let add = env.ok(&["add", "--help"]);
    for syntax in [
        "@oracle",
        "date:2030",
        "500000000000USD",
        "text:42",
        "--until",
    ] {
        assert!(add.contains(syntax), "add --help does not explain {syntax}");
    }
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let env = Env::new();
    let many: String = (0..2000)
        .map(|i| {
            format!("{{\"id\": \"e{i}\", \"at\": \"2020\", \"title\": \"event number {i}\"}}\n")
        })
        .collect();
    env.ok(&["import", &env.write("many.jsonl", &many)]);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("chronik"))
        .args(["--store", &env.store().display().to_string(), "log"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    // The output is far larger than a pipe buffer, so the write fails.
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn a_backdated_append_answers_as_if_appended_in_date_order() {
    let bundled = Env::bundled();
    let file = bundled_events().join("openai-microsoft.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let reordered = Env::new();
    // Append the 2019 event last.
    let (first, rest) = text.split_at(text.find("[[event]]\nid = \"oracle").unwrap());
    let head_end = first.find("[[event]]").unwrap();
    reordered.ok(&["append", &reordered.write("later.toml", rest)]);
    reordered.ok(&["append", &reordered.write("2019.toml", &first[head_end..])]);
    assert_eq!(
        reordered.json(&["log"])["records"][3]["id"],
        "microsoft-invests-2019"
    );
    for at in [
        "2018",
        "2019-06-01",
        "2020",
        "2024-06-15",
        "2024-07-01",
        "2025-01-20",
        "2025-01-21",
    ] {
        assert_eq!(
            reordered.json(&["state", "--at", at]),
            bundled.json(&["state", "--at", at]),
            "at {at}"
        );
    }
    assert_eq!(
        values(
            &reordered.json(&["state", "--at", "2020"]),
            "openai.investors"
        ),
        [(r("microsoft"), false)]
    );
}

#[test]
fn usage_errors_are_one_line() {
    let env = Env::new();
    for args in [
        &["state", "--at", "2019-13"][..],
        &["frobnicate"],
        &["state", "--at"],
        &["import"],
        &["add", "--id", "x"],
    ] {
        let stderr = env.fails(args, 2);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("chronik: ") && stderr.ends_with("(see --help)\n"),
            "{stderr}"
        );
    }
    assert!(
        env.fails(&["state", "--at", "2019-13"], 2)
            .contains("invalid date \"2019-13\"")
    );
    assert!(env.ok(&["--version"]).starts_with("chronik "));
}

#[test]
fn a_refused_first_write_leaves_no_store_behind() {
    let env = Env::new();
    let twice = "[[event]]\nid = \"a\"\nat = \"2019\"\ntitle = \"A\"\n[[event]]\nid = \"a\"\nat = \"2020\"\ntitle = \"B\"\n";
    env.fails(&["import", &env.write("twice.toml", twice)], 2);
    assert!(!env.store().exists());
    env.fails(
        &[
            "add",
            "--id",
            "x",
            "--at",
            "2019",
            "--title",
            "T",
            "--expect-head",
            "3",
        ],
        3,
    );
    assert!(!env.store().exists());
    // An existing store is of course kept.
    env.ok(&["add", "--id", "x", "--at", "2019", "--title", "T"]);
    env.fails(&["import", &env.write("twice2.toml", twice)], 2);
    assert_eq!(env.json(&["stats"])["events"], 1);
}

#[test]
fn import_of_files_without_events_says_so() {
    let env = Env::new();
    let out = env.ok(&["import", &env.write("empty.toml", "# nothing yet\n")]);
    assert_eq!(out, "nothing to import: no events in 1 file\n");
    assert!(!env.store().exists());
}

#[test]
#[cfg(unix)]
fn import_does_not_follow_links_to_folders() {
    let env = Env::new();
    std::fs::create_dir_all(env.dir().join("in")).unwrap();
    env.write(
        "in/a.toml",
        "[[event]]\nid = \"a\"\nat = \"2019\"\ntitle = \"A\"\n",
    );
    std::os::unix::fs::symlink(env.dir().join("in"), env.dir().join("in/loop")).unwrap();
    assert_eq!(
        env.ok(&["import", "in"]),
        "imported 1 event from 1 file (seq 1); the head is now 1\n"
    );
}

#[test]
fn json_lines_are_checked_while_they_are_read() {
    let env = Env::new();
    let line = |id: &str, change: &str| {
        format!(r#"{{"id": "{id}", "at": "2020", "title": "T", "changes": [{change}]}}"#)
    };
    let set = r#"{"set": "x.v", "value": 1}"#;
    let lines = [line("a", set), line("b", ""), line("c", "")].join("\n");
    let file = env.write("events.jsonl", &lines);
    assert_eq!(
        env.ok(&["import", &file]),
        "imported 3 events from 1 file (seq 1-3); the head is now 3\n"
    );
    assert_eq!(
        env.ok(&["import", &file]),
        "nothing to import: all 3 events from 1 file are already stored unchanged (head 3)\n"
    );
    let before = env.snapshot();
    let changed = format!(
        "{}\n{}",
        line("a", set),
        line("b", "").replace("\"T\"", "\"T2\"")
    );
    let stderr = env.fails(&["import", &env.write("changed.jsonl", &changed)], 3);
    assert!(
        stderr.contains("event \"b\" is already stored (seq 2) with different content"),
        "{stderr}"
    );
    let twice = format!("{}\n{}", line("d", ""), line("d", ""));
    let stderr = env.fails(&["import", &env.write("twice.jsonl", &twice)], 2);
    assert!(
        stderr.contains("twice.jsonl: event #2 \"d\" (line 2)"),
        "{stderr}"
    );
    assert!(stderr.contains("is used twice in this batch"), "{stderr}");
    let kinds = line("e", r#"{"add": "x.v", "value": 2}"#);
    let stderr = env.fails(&["import", &env.write("kinds.jsonl", &kinds)], 2);
    assert!(
        stderr.contains("\"x.v\" is single-valued (set/unset) in the store"),
        "{stderr}"
    );
    assert_eq!(env.snapshot(), before);
}
