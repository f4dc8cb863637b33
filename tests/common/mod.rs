//! One helper for every CLI test: a fresh temporary directory with a store
//! path in it, and the real `chronik` binary run against that store.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value as Json;

pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// A fresh store with the bundled timeline imported.
    pub fn bundled() -> Env {
        let env = Env::new();
        env.ok(&["import", &bundled_events().display().to_string()]);
        env
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// `chronik --store <fresh store> ARGS...`, run in the temporary directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("chronik").expect("the chronik binary");
        cmd.current_dir(self.dir.path())
            .env_remove("CHRONIK_STORE")
            .arg("--store")
            .arg(self.store())
            .args(args);
        cmd
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.cmd(args).output().expect("chronik runs");
        assert!(
            output.status.success(),
            "chronik {args:?} failed with {:?}: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.cmd(args).output().expect("chronik runs");
        let stderr = String::from_utf8(output.stderr).expect("UTF-8 stderr");
        assert_eq!(
            output.status.code(),
            Some(code),
            "chronik {args:?}: stderr {stderr:?}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{stderr}"
        );
        stderr
    }

    /// Runs a command with `--format json` output and parses it.
    pub fn json(&self, args: &[&str]) -> Json {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&args)).expect("valid JSON")
    }

    /// Writes a file in the temporary directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write a test file");
        path.display().to_string()
    }

    /// Everything a reader can see: the log (with hashes) and the stats
    /// that do not depend on disk layout.
    pub fn snapshot(&self) -> (Json, Json) {
        let mut stats = self.json(&["stats"]);
        stats.as_object_mut().unwrap().remove("size_on_disk");
        (self.json(&["log"]), stats)
    }
}

pub fn bundled_events() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// A fact of `state --format json` as (entity.attr, value, event, uncertain).
pub type Fact = (String, Json, String, bool);

pub fn facts(state: &Json) -> Vec<Fact> {
    state["facts"]
        .as_array()
        .expect("facts")
        .iter()
        .map(|f| {
            (
                format!(
                    "{}.{}",
                    f["entity"].as_str().unwrap(),
                    f["attr"].as_str().unwrap()
                ),
                f["value"].clone(),
                f["event"].as_str().unwrap().to_string(),
                f["uncertain"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The facts about one attribute.
pub fn values(state: &Json, target: &str) -> Vec<(Json, bool)> {
    facts(state)
        .into_iter()
        .filter(|(t, ..)| t == target)
        .map(|(_, v, _, uncertain)| (v, uncertain))
        .collect()
}

pub fn r(id: &str) -> Json {
    serde_json::json!({ "ref": id })
}
