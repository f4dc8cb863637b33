//! The bad-input corpus (tests/bad/): every broken input fails with its
//! expected exit code and message, and leaves the store answering exactly as
//! it did before.

mod common;

use std::path::{Path, PathBuf};

use common::Env;
use serde::Deserialize;

#[derive(Deserialize)]
struct Manifest {
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    file: String,
    command: String,
    exit: i32,
    message: String,
    generate: Option<String>,
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad")
}

/// Writes the inputs too large to commit.
fn generate(kind: &str, path: &Path) {
    let text = match kind {
        "deep-json" => format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        "deep-value" => format!(
            r#"[{{"id": "x", "at": "2019", "title": "t", "changes": [{{"set": "a.b", "value": {}{}}}]}}]"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
        "huge-line" => format!(
            r#"{{"id": "huge", "at": "2019", "title": "{}"}}"#,
            "x".repeat(100 << 20)
        ),
        other => panic!("unknown generator {other}"),
    };
    std::fs::write(path, text).unwrap();
}

/// What a reader sees: every record, and the state at a few dates.
fn answers(env: &Env) -> Vec<String> {
    let mut seen = vec![env.ok(&["log", "--format", "json"])];
    for at in ["2019-06-01", "2024-06-15", "2025-01-21", "2030"] {
        seen.push(env.ok(&["state", "--at", at, "--format", "json"]));
    }
    seen
}

#[test]
fn every_broken_input_is_refused_and_changes_nothing() {
    let manifest: Manifest =
        toml::from_str(&std::fs::read_to_string(corpus().join("cases.toml")).unwrap()).unwrap();
    assert!(
        manifest.case.len() >= 30,
        "the corpus has {} cases",
        manifest.case.len()
    );
    let env = Env::bundled();
    let before = answers(&env);
    let store_files = std::fs::read_dir(env.store()).unwrap().count();
    for case in &manifest.case {
        let path = match &case.generate {
            Some(kind) => {
                let path = env.dir().join(&case.file);
                generate(kind, &path);
                path
            }
            None => corpus().join(&case.file),
        };
        let path = path.display().to_string();
        let stderr = env.fails(&[case.command.as_str(), &path], case.exit);
        assert!(
            stderr.contains(&case.message),
            "{}: expected {:?} in {stderr:?}",
            case.file,
            case.message
        );
        assert_eq!(stderr.lines().count(), 1, "{}: {stderr}", case.file);
        assert!(
            stderr.len() < 1000,
            "{}: a message of {} bytes",
            case.file,
            stderr.len()
        );
        if case.generate.is_some() {
            std::fs::remove_file(&path).unwrap();
        }
    }
    assert_eq!(answers(&env), before);
    assert_eq!(std::fs::read_dir(env.store()).unwrap().count(), store_files);
    env.ok(&["verify"]);
}

#[test]
fn every_corpus_file_is_listed() {
    let manifest: Manifest =
        toml::from_str(&std::fs::read_to_string(corpus().join("cases.toml")).unwrap()).unwrap();
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name != "cases.toml" {
            assert!(
                manifest.case.iter().any(|c| c.file == name),
                "{name} is not in cases.toml"
            );
        }
    }
}
