//! diff, history, known-at and corrections through the command line.

mod common;

use std::path::Path;

use common::{Env, facts, r, values};
use serde_json::{Value as Json, json};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

fn without_known_at(mut json: Json) -> Json {
    json.as_object_mut().unwrap().remove("known_at");
    json
}

#[test]
fn diff_names_every_change_and_its_events() {
    let env = Env::bundled();
    let diff = env.json(&["diff", "--from", "2024-06", "--to", "2025-01-21"]);
    assert_eq!(diff["from"], "2024-06");
    assert_eq!(diff["to"], "2025-01-21");
    assert_eq!(diff["known_at"], Json::Null);
    let changes = diff["changes"].as_array().unwrap();
    let exclusive = changes
        .iter()
        .find(|c| c["attr"] == "exclusive_cloud_provider")
        .unwrap();
    assert_eq!(
        exclusive,
        &json!({"entity": "openai", "attr": "exclusive_cloud_provider", "kind": "removed",
                "before": {"ref": "microsoft"}, "after": null, "events": ["exclusivity-change-2025"]})
    );
    let partners: Vec<&Json> = changes.iter().filter(|c| c["attr"] == "partners").collect();
    assert_eq!(partners.len(), 3);
    assert!(
        partners
            .iter()
            .all(|c| c["kind"] == "added" && c["events"] == json!(["stargate-announced-2025"]))
    );
    let keys: Vec<(String, String)> = changes
        .iter()
        .map(|c| {
            (
                c["entity"].as_str().unwrap().into(),
                c["attr"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // Oracle's June 2024 capacity: uncertain mid-June, certain in July.
    let certainty = env.json(&[
        "diff",
        "--from",
        "2024-06-15",
        "--to",
        "2024-07",
        "--entity",
        "openai",
    ]);
    assert_eq!(
        certainty["changes"],
        json!([{"entity": "openai", "attr": "cloud_providers", "kind": "certainty",
                "before": {"ref": "oracle"}, "after": {"ref": "oracle"}, "events": ["oracle-capacity-2024"]}])
    );
    let none = env.json(&["diff", "--from", "2020", "--to", "2023"]);
    assert_eq!(none["changes"], json!([]));
    let text = env.ok(&[
        "diff",
        "--from",
        "2024-06",
        "--to",
        "2025-01-21",
        "--entity",
        "openai",
    ]);
    assert!(
        text.starts_with("Changes from 2024-06 to 2025-01-21: 4\n"),
        "{text}"
    );
    assert!(
        text.contains("exclusive_cloud_provider     removed  @microsoft"),
        "{text}"
    );
    let stderr = env.fails(&["diff", "--from", "2025", "--to", "2024-06"], 2);
    assert!(
        stderr.contains("--from 2025 is later than --to 2024-06"),
        "{stderr}"
    );
}

#[test]
fn history_lists_every_change_with_expiries_as_rows() {
    let env = Env::bundled();
    let history = env.json(&["history", "openai", "--attr", "cloud_providers"]);
    assert_eq!(
        history["changes"],
        json!([
            {"seq": 1, "event": "microsoft-invests-2019", "at": "2019", "attr": "cloud_providers", "op": "add", "value": {"ref": "microsoft"}, "until": null},
            {"seq": 2, "event": "oracle-capacity-2024", "at": "2024-06", "attr": "cloud_providers", "op": "add", "value": {"ref": "oracle"}, "until": null},
        ])
    );
    let all = env.json(&["history", "openai"]);
    assert_eq!(all["changes"].as_array().unwrap().len(), 8);
    assert_eq!(all["attr"], Json::Null);

    env.ok(&[
        "add",
        "--id",
        "trial",
        "--at",
        "2025-03",
        "--title",
        "A trial",
        "--add",
        "openai.cloud_providers=@acme",
        "--until",
        "2025-06",
    ]);
    let rows = env.json(&["history", "openai", "--attr", "cloud_providers"])["changes"].clone();
    assert_eq!(rows[2]["op"], "add");
    assert_eq!(
        rows[3],
        json!({"seq": 5, "event": "trial", "at": "2025-07", "attr": "cloud_providers", "op": "expire", "value": {"ref": "acme"}, "until": "2025-06"})
    );
    let text = env.ok(&["history", "openai", "--attr", "cloud_providers"]);
    assert!(
        text.contains("2025-07  cloud_providers  expire  @acme       2025-06  trial"),
        "{text}"
    );

    let stderr = env.fails(&["history", "opnai"], 2);
    assert_eq!(
        stderr,
        "chronik: no entity \"opnai\" in the store; did you mean \"openai\"?\n"
    );
    let stderr = env.fails(&["history", "openai", "--attr", "investor"], 2);
    assert!(
        stderr.contains(
            "entity \"openai\" has no attribute \"investor\"; did you mean \"investors\""
        ),
        "{stderr}"
    );
}

#[test]
fn known_at_answers_exactly_as_the_store_did_before_later_batches() {
    let env = Env::new();
    let batch = |name: &str, text: &str| env.write(name, text);
    let first = batch(
        "1.toml",
        "[[event]]\nid = \"a\"\nat = \"2020\"\ntitle = \"A\"\nchanges = [{ set = \"x.v\", value = 1 }, { add = \"x.s\", value = { ref = \"p\" }, until = \"2022\" }]\n",
    );
    let second = batch(
        "2.toml",
        "[[event]]\nid = \"b\"\nat = \"2019\"\ntitle = \"B\"\nchanges = [{ set = \"x.v\", value = 0 }, { set = \"y.v\", value = 5 }]\n[[event]]\nid = \"c\"\nat = \"2021\"\ntitle = \"C\"\nchanges = [{ unset = \"x.v\" }]\n",
    );
    let third = batch(
        "3.toml",
        "[[event]]\nid = \"d\"\nat = \"2020-06\"\ntitle = \"D\"\ncorrects = [\"a\"]\nchanges = [{ set = \"x.v\", value = 2 }]\n",
    );
    let queries: [&[&str]; 6] = [
        &["state", "--at", "2020-12"],
        &["state", "--at", "2023", "--strict"],
        &["diff", "--from", "2019", "--to", "2022"],
        &["history", "x"],
        &["timeline"],
        &["timeline", "--all"],
    ];
    env.ok(&["append", &first]);
    let before: Vec<Json> = queries
        .iter()
        .map(|q| without_known_at(env.json(q)))
        .collect();
    env.ok(&["append", &second]);
    env.ok(&["append", &third]);
    for (q, expected) in queries.iter().zip(&before) {
        let mut args = q.to_vec();
        args.extend(["--known-at", "#1"]);
        let now = env.json(&args);
        assert_eq!(now["known_at"], "#1", "{q:?}");
        assert_eq!(&without_known_at(now), expected, "{q:?}");
    }
    // The later batches do change the answers now.
    assert_ne!(without_known_at(env.json(queries[0])), before[0]);
    // A timestamp bound: everything recorded up to the first record's time.
    let log = env.json(&["log"]);
    let first_time = log["records"][0]["recorded_at"]
        .as_str()
        .unwrap()
        .to_string();
    let at_time = env.json(&["state", "--at", "2020-12", "--known-at", &first_time]);
    let last_time = log["records"][3]["recorded_at"].as_str().unwrap();
    assert_ne!(
        first_time, last_time,
        "the batches were appended by separate processes"
    );
    assert_eq!(without_known_at(at_time), before[0]);
    assert!(
        env.fails(&["state", "--known-at", "#9"], 2)
            .contains("beyond the log, whose head is #4")
    );
    assert!(
        env.fails(&["state", "--known-at", "soon"], 2)
            .contains("invalid known-at \"soon\"")
    );
}

#[test]
fn a_correction_refines_a_date_and_the_old_belief_stays_visible() {
    let env = Env::bundled();
    env.ok(&["append", &example("microsoft-2019-refined.toml")]);
    // Before 22 July 2019 Microsoft had certainly not yet invested.
    let now = env.json(&["state", "--at", "2019-06-01"]);
    assert!(facts(&now).is_empty());
    let later = env.json(&["state", "--at", "2019-08"]);
    assert_eq!(
        values(&later, "openai.investors"),
        [(r("microsoft"), false)]
    );
    assert_eq!(facts(&later)[0].2, "microsoft-invests-2019-07-22");
    // What the log said before the correction.
    let then = env.json(&["state", "--at", "2019-06-01", "--known-at", "#4"]);
    assert_eq!(values(&then, "openai.investors"), [(r("microsoft"), true)]);
    // show and timeline tell.
    let shown = env.ok(&["show", "microsoft-invests-2019"]);
    assert!(
        shown.contains("corrected by  microsoft-invests-2019-07-22"),
        "{shown}"
    );
    assert_eq!(
        env.json(&["show", "microsoft-invests-2019"])["corrected_by"],
        json!(["microsoft-invests-2019-07-22"])
    );
    let ids = |args: &[&str]| -> Vec<String> {
        env.json(args)["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!ids(&["timeline"]).contains(&"microsoft-invests-2019".to_string()));
    assert_eq!(
        ids(&["timeline", "--all"])[..2],
        ["microsoft-invests-2019", "microsoft-invests-2019-07-22"]
    );
    let text = env.ok(&["timeline", "--all", "--to", "2019"]);
    assert!(
        text.contains("[corrected by microsoft-invests-2019-07-22] Microsoft invests"),
        "{text}"
    );
    // The log itself is never rewritten.
    assert_eq!(env.json(&["log"])["records"].as_array().unwrap().len(), 5);
}

#[test]
fn corrections_fix_values_and_withdraw_events() {
    let env = Env::new();
    env.ok(&["import", &env.write("base.toml", "[[event]]\nid = \"wrong\"\nat = \"2020\"\ntitle = \"W\"\nchanges = [{ set = \"x.v\", value = 1 }]\n[[event]]\nid = \"rumour\"\nat = \"2021\"\ntitle = \"R\"\nchanges = [{ add = \"x.s\", value = { ref = \"y\" } }]\n")]);
    env.ok(&["append", &env.write("fix.toml", "[[event]]\nid = \"fixed\"\nat = \"2020\"\ntitle = \"F\"\ncorrects = [\"wrong\"]\nchanges = [{ set = \"x.v\", value = 2 }]\n[[event]]\nid = \"withdrawn\"\nat = \"2021\"\ntitle = \"No such thing\"\ncorrects = [\"rumour\"]\n")]);
    let state = env.json(&["state", "--at", "2022"]);
    assert_eq!(values(&state, "x.v"), [(json!(2), false)]);
    assert!(values(&state, "x.s").is_empty());
    let diff = env.json(&["diff", "--from", "2020", "--to", "2022", "--known-at", "#2"]);
    assert_eq!(diff["changes"][0]["after"], json!({"ref": "y"}));
    let stderr = env.fails(
        &[
            "append",
            &env.write(
                "bad.toml",
                "[[event]]\nid = \"z\"\nat = \"2020\"\ntitle = \"Z\"\ncorrects = [\"nothing\"]\n",
            ),
        ],
        2,
    );
    assert!(
        stderr.contains(
            "bad.toml: event #1 \"z\" (line 1): field `corrects[0]`: there is no event \"nothing\""
        ),
        "{stderr}"
    );
    let stderr = env.fails(&["append", &env.write("loop.toml", "[[event]]\nid = \"p\"\nat = \"2020\"\ntitle = \"P\"\ncorrects = [\"q\"]\n[[event]]\nid = \"q\"\nat = \"2020\"\ntitle = \"Q\"\ncorrects = [\"p\"]\n")], 2);
    assert!(
        stderr.contains("the corrections go in a circle: p → q → p"),
        "{stderr}"
    );
}
