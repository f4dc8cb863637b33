//! The bundled timeline (events/openai-microsoft.toml) answers as the
//! article says, at every date the foundation issue names.

mod common;

use common::{Env, facts, r, values};
use serde_json::json;

fn state(env: &Env, at: &str, strict: bool) -> serde_json::Value {
    let mut args = vec!["state", "--at", at];
    if strict {
        args.push("--strict");
    }
    let state = env.json(&args);
    assert_eq!(state["at"], at);
    assert_eq!(state["strict"], strict);
    assert_eq!(state["known_at"], serde_json::Value::Null);
    state
}

#[test]
fn before_2019_nothing_is_known() {
    let env = Env::bundled();
    assert!(facts(&state(&env, "2018", false)).is_empty());
    assert!(facts(&state(&env, "2018-12-31", false)).is_empty());
}

#[test]
fn mid_2019_the_microsoft_facts_are_uncertain_and_strict_drops_them() {
    let env = Env::bundled();
    let s = state(&env, "2019-06-01", false);
    assert_eq!(values(&s, "openai.investors"), [(r("microsoft"), true)]);
    assert_eq!(
        values(&s, "openai.cloud_providers"),
        [(r("microsoft"), true)]
    );
    assert_eq!(
        values(&s, "openai.exclusive_cloud_provider"),
        [(r("microsoft"), true)]
    );
    assert_eq!(facts(&s).len(), 3);
    assert!(facts(&state(&env, "2019-06-01", true)).is_empty());
}

#[test]
fn in_2020_the_microsoft_facts_are_certain() {
    let env = Env::bundled();
    let s = state(&env, "2020", false);
    assert_eq!(
        values(&s, "openai.exclusive_cloud_provider"),
        [(r("microsoft"), false)]
    );
    assert_eq!(
        values(&s, "openai.cloud_providers"),
        [(r("microsoft"), false)]
    );
    let fact = &s["facts"][0];
    assert_eq!(fact["since"], "2019");
    assert_eq!(fact["event"], "microsoft-invests-2019");
    assert_eq!(state(&env, "2020", true), {
        let mut strict = s.clone();
        strict["strict"] = json!(true);
        strict
    });
}

#[test]
fn mid_june_2024_oracle_is_uncertain_and_exclusivity_stays() {
    let env = Env::bundled();
    let s = state(&env, "2024-06-15", false);
    assert_eq!(
        values(&s, "openai.cloud_providers"),
        [(r("microsoft"), false), (r("oracle"), true)]
    );
    assert_eq!(
        values(&s, "openai.exclusive_cloud_provider"),
        [(r("microsoft"), false)]
    );
    let strict = state(&env, "2024-06-15", true);
    assert_eq!(
        values(&strict, "openai.cloud_providers"),
        [(r("microsoft"), false)]
    );
}

#[test]
fn in_july_2024_oracle_is_certain() {
    let env = Env::bundled();
    let s = state(&env, "2024-07-01", false);
    assert_eq!(
        values(&s, "openai.cloud_providers"),
        [(r("microsoft"), false), (r("oracle"), false)]
    );
    let oracle = facts(&s).into_iter().find(|f| f.1 == r("oracle")).unwrap();
    assert_eq!(oracle.2, "oracle-capacity-2024");
    assert_eq!(
        values(&s, "openai.exclusive_cloud_provider"),
        [(r("microsoft"), false)]
    );
}

#[test]
fn the_day_before_the_change_microsoft_is_still_exclusive_and_there_is_no_stargate() {
    let env = Env::bundled();
    let s = state(&env, "2025-01-20", false);
    assert_eq!(
        values(&s, "openai.exclusive_cloud_provider"),
        [(r("microsoft"), false)]
    );
    assert!(values(&s, "openai.capacity_first_refusal").is_empty());
    assert!(
        facts(&s)
            .iter()
            .all(|(target, ..)| !target.starts_with("stargate."))
    );
}

#[test]
fn on_21_january_2025_exclusivity_ends_and_stargate_begins() {
    let env = Env::bundled();
    let s = state(&env, "2025-01-21", false);
    assert!(values(&s, "openai.exclusive_cloud_provider").is_empty());
    assert_eq!(
        values(&s, "openai.capacity_first_refusal"),
        [(r("microsoft"), false)]
    );
    assert_eq!(
        values(&s, "openai.api_exclusive_cloud"),
        [(r("microsoft"), false)]
    );
    assert_eq!(
        values(&s, "openai.microsoft_partnership_until"),
        [(json!({"date": "2030"}), false)]
    );
    assert_eq!(
        values(&s, "openai.cloud_providers"),
        [(r("microsoft"), false), (r("oracle"), false)]
    );
    assert_eq!(
        values(&s, "stargate.kind"),
        [(json!("joint venture"), false)]
    );
    assert_eq!(
        values(&s, "stargate.partners"),
        [
            (r("openai"), false),
            (r("oracle"), false),
            (r("softbank"), false)
        ]
    );
    assert_eq!(
        values(&s, "stargate.planned_investment"),
        [(json!({"amount": 500000000000u64, "unit": "USD"}), false)]
    );
    assert_eq!(
        values(&s, "stargate.announced_at"),
        [(json!("White House"), false)]
    );
    assert!(facts(&s).iter().all(|(.., uncertain)| !uncertain));
}

#[test]
fn facts_are_sorted_by_entity_attribute_and_value() {
    let env = Env::bundled();
    let s = state(&env, "2025-01-21", false);
    let keys: Vec<(String, String)> = facts(&s)
        .iter()
        .map(|(t, v, ..)| (t.clone(), v.to_string()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn every_event_cites_the_heise_article() {
    let env = Env::bundled();
    let timeline = env.json(&["timeline"]);
    let events = timeline["events"].as_array().unwrap();
    assert!(events.len() >= 4);
    for e in events {
        let cited = e["sources"].as_array().unwrap().iter().any(|s| {
            s["publisher"] == "heise online"
                && s["title"] == "OpenAI may now also use cloud providers other than Microsoft"
        });
        assert!(cited, "{} does not cite the article", e["id"]);
    }
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids[..4],
        [
            "microsoft-invests-2019",
            "oracle-capacity-2024",
            "exclusivity-change-2025",
            "stargate-announced-2025"
        ]
    );
}
