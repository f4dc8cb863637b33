//! What chronik promises about the store: `verify` catches damage, an
//! export restores to the same head hash, odd situations get one clear
//! sentence and leave the store sound, and stores written by this format
//! version stay readable.

mod common;

use std::path::Path;
use std::process::Command;

use chronik::store::tamper;
use chronik::{OpenMode, Store};
use common::Env;
use serde_json::Value as Json;

fn head_hash(env: &Env) -> String {
    env.json(&["stats"])["head"]["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Opens the test's store through the library, to damage it.
fn damage(env: &Env, how: impl FnOnce(&Store)) {
    let store = Store::open(&env.store(), OpenMode::Existing).unwrap();
    how(&store);
}

#[test]
fn verify_passes_on_a_sound_store_and_names_the_first_problem() {
    let env = Env::bundled();
    let out = env.ok(&["verify"]);
    assert!(
        out.starts_with("verified: 4 records, seq 1-4 without gaps, hash chain intact"),
        "{out}"
    );
    let json = env.json(&["verify"]);
    assert_eq!(json["head"]["hash"], head_hash(&env));

    damage(&env, |s| tamper::flip_record_byte(s, 3, 40));
    let stderr = env.fails(&["verify"], 1);
    assert!(
        stderr.starts_with("chronik: the store is corrupt: verify failed at record 3, tree log: "),
        "{stderr}"
    );

    let env = Env::bundled();
    damage(&env, |s| tamper::remove_index_entry(s, "by_entity", 2));
    let stderr = env.fails(&["verify"], 1);
    assert!(
        stderr
            .contains("record 2, tree by_entity: the record has no entry under entity \"openai\""),
        "{stderr}"
    );
}

#[test]
fn an_export_stops_at_a_record_that_does_not_read_and_leaves_no_file() {
    let env = Env::bundled();
    let out = env.write("earlier.jsonl", "an earlier export\n");
    // The version byte of record 3: its bytes no longer decode.
    damage(&env, |s| tamper::flip_record_byte(s, 3, 0));
    let stderr = env.fails(&["export", "--format", "jsonl", "-o", &out], 1);
    assert!(stderr.contains("record 3"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "an earlier export\n"
    );
    for format in ["csv", "ics"] {
        let stderr = env.fails(&["export", "--format", format, "-o", &out], 1);
        assert!(stderr.contains("record 3"), "{format}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "an earlier export\n"
        );
    }
    let fresh = env.dir().join("fresh.jsonl");
    env.fails(
        &[
            "export",
            "--format",
            "jsonl",
            "-o",
            &fresh.display().to_string(),
        ],
        1,
    );
    assert!(!fresh.exists());
    // To stdout, the records before it are written, then the error.
    let output = env.cmd(&["export", "--format", "jsonl"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<Json> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|l| l["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn timeline_and_log_stop_at_a_record_that_does_not_read() {
    let env = Env::bundled();
    damage(&env, |s| tamper::flip_record_byte(s, 3, 0));
    for args in [
        &["timeline"][..],
        &["timeline", "--format", "json"],
        &["log"],
        &["log", "--format", "json"],
    ] {
        let stderr = env.fails(args, 1);
        assert!(stderr.contains("record 3"), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    // JSON is written as it is read: what came before the error is on
    // stdout, an unfinished document that the exit code disowns.
    let output = env.cmd(&["log", "--format", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(serde_json::from_slice::<Json>(&output.stdout).is_err());
}

#[test]
fn an_export_imported_into_a_fresh_store_has_the_same_head_hash() {
    let env = Env::bundled();
    env.ok(&[
        "append",
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/microsoft-2019-refined.toml")
            .display()
            .to_string(),
    ]);
    let many: String = (0..300)
        .map(|i| format!("{{\"id\": \"g{i}\", \"at\": \"2021-{:02}\", \"title\": \"generated {i}\", \"changes\": [{{\"add\": \"g{}.s\", \"value\": {i}, \"until\": \"2022\"}}]}}\n", 1 + i % 12, i % 7))
        .collect();
    env.ok(&["append", &env.write("many.jsonl", &many)]);
    let export = env.dir().join("export.jsonl");
    env.ok(&[
        "export",
        "--format",
        "jsonl",
        "-o",
        &export.display().to_string(),
    ]);

    let copy = Env::new();
    let out = copy.ok(&["import", &export.display().to_string()]);
    assert_eq!(
        out,
        "restored 305 records from 1 file (seq 1-305) with their original times and hashes; the head is now 305\n"
    );
    copy.ok(&["verify"]);
    assert_eq!(head_hash(&copy), head_hash(&env));
    assert_eq!(copy.json(&["log"]), env.json(&["log"]));
    for at in ["2019-06-01", "2021-06", "2023"] {
        assert_eq!(
            copy.json(&["state", "--at", at]),
            env.json(&["state", "--at", at]),
            "at {at}"
        );
    }
    // A changed export is refused, not restored.
    let text = std::fs::read_to_string(&export)
        .unwrap()
        .replace("generated 7\"", "generated seven\"");
    let other = Env::new();
    let stderr = other.fails(&["import", &other.write("changed.jsonl", &text)], 2);
    assert!(
        stderr.contains("record 13 does not hash to the hash its export gives"),
        "{stderr}"
    );
    assert!(!other.store().exists());
    // Up to a known-at, through stdin.
    let partial = Env::new();
    let exported = env
        .cmd(&["export", "--format", "jsonl", "--known-at", "#2"])
        .output()
        .unwrap()
        .stdout;
    partial
        .cmd(&["import", "-"])
        .write_stdin(exported)
        .assert()
        .success();
    assert_eq!(
        partial.json(&["stats"])["head"]["hash"],
        env.json(&["log"])["records"][1]["hash"]
    );
}

#[test]
fn a_store_from_a_newer_format_is_refused() {
    let env = Env::bundled();
    damage(&env, |s| tamper::set_format_version(s, 99));
    let stderr = env.fails(&["state"], 1);
    assert!(
        stderr.contains(
            "has format version 99, but this chronik reads only up to version 3; upgrade chronik"
        ),
        "{stderr}"
    );
}

#[test]
fn a_store_whose_files_lost_records_is_refused() {
    let env = Env::bundled();
    let db = env.store().join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&db, bytes).unwrap();
    let stderr = env.fails(&["state", "--at", "2025"], 1);
    assert!(
        stderr.contains("records were lost: the store last held 4 records"),
        "{stderr}"
    );
}

#[test]
fn a_missing_parent_directory_is_named_and_nothing_is_created() {
    let env = Env::new();
    let deep = env.dir().join("no/such/place/store");
    let out = Command::new(assert_cmd::cargo::cargo_bin("chronik"))
        .args(["--store", &deep.display().to_string(), "import"])
        .arg(common::bundled_events())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the directory") && stderr.contains("no/such/place does not exist"),
        "{stderr}"
    );
    assert!(!env.dir().join("no").exists());
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
#[cfg(unix)]
fn a_store_the_user_may_not_write_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::bundled();
    let before = env.ok(&["state", "--at", "2030", "--format", "json"]);
    let mut cmd = if is_root() {
        // Root may write anywhere: run as nobody instead, in a folder nobody may read.
        std::fs::set_permissions(env.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        cmd.arg(assert_cmd::cargo::cargo_bin("chronik"));
        cmd
    } else {
        std::fs::set_permissions(env.store(), std::fs::Permissions::from_mode(0o555)).unwrap();
        Command::new(assert_cmd::cargo::cargo_bin("chronik"))
    };
    let out = cmd
        .args([
            "--store",
            &env.store().display().to_string(),
            "add",
            "--id",
            "x",
            "--at",
            "2020",
            "--title",
            "t",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&env.store().display().to_string()) && stderr.contains("ermission denied"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    std::fs::set_permissions(env.store(), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.ok(&["verify"]);
    assert_eq!(
        env.ok(&["state", "--at", "2030", "--format", "json"]),
        before
    );
}

#[test]
#[cfg(unix)]
fn a_full_disk_is_an_error_and_the_store_stays_sound() {
    let env = Env::bundled();
    let before = env.ok(&["log", "--format", "json"]);
    let many: String = (0..20_000)
        .map(|i| format!("{{\"id\": \"f{i}\", \"at\": \"2020\", \"title\": \"filling the disk, event {i}\"}}\n"))
        .collect();
    let file = env.write("many.jsonl", &many);
    let size = std::fs::metadata(env.store().join("db")).unwrap().len();
    // ulimit -f counts 512-byte blocks on Linux's sh: enough to open the
    // store, not enough for the batch, so the write itself fails.
    let blocks = size / 512 + 256;
    let script = format!("ulimit -f {blocks}; exec \"$0\" --store \"$1\" import \"$2\"");
    let out = Command::new("sh")
        .args(["-c", &script])
        .arg(assert_cmd::cargo::cargo_bin("chronik"))
        .arg(env.store())
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the disk is full or a file-size limit is reached"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    env.ok(&["verify"]);
    assert_eq!(env.ok(&["log", "--format", "json"]), before);
}

/// The committed stores in tests/fixtures/store-format-N, written by each
/// format version (see tests/fixtures/README.md for how they were made).
#[test]
fn stores_written_by_every_format_version_still_read() {
    for version in 1..=chronik::store::FORMAT_VERSION {
        stored_by_format_version_still_reads(version);
    }
}

fn stored_by_format_version_still_reads(version: u32) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/store-format-{version}"));
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(fixture.with_extension("json")).unwrap())
            .unwrap();
    // Opening a store may write to it: work on a copy.
    let env = Env::new();
    copy_dir(&fixture, &env.store());
    env.ok(&["verify"]);
    let stats = env.json(&["stats"]);
    assert_eq!(stats["head"]["seq"], manifest["head_seq"]);
    assert_eq!(stats["head"]["hash"], manifest["head_hash"]);
    for (at, expected) in manifest["states"].as_object().unwrap() {
        assert_eq!(&env.json(&["state", "--at", at]), expected, "state at {at}");
    }
    let history = env.json(&["history", "openai", "--known-at", "#4"]);
    assert_eq!(history["changes"].as_array().unwrap().len(), 8);
    // A write makes it a store of the current format: its old pages still
    // read, next to new ones, and the old answers stay.
    env.ok(&[
        "add",
        "--id",
        "later",
        "--at",
        "2031",
        "--title",
        "Later",
        "--set",
        "openai.later=true",
    ]);
    env.ok(&["verify"]);
    for (at, expected) in manifest["states"].as_object().unwrap() {
        assert_eq!(&env.json(&["state", "--at", at]), expected, "state at {at}");
    }
    let later = env.json(&["state", "--at", "2031", "--entity", "openai"]);
    assert!(later.to_string().contains("\"later\""), "{later}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// sled 0.34.7 reads an unfinished `snap.*.generating` file, left by a
/// process killed while writing a snapshot, as the newest snapshot and
/// refuses the store as corrupt. Found by tests/crash.rs.
#[test]
fn an_unfinished_sled_snapshot_does_not_make_the_store_unreadable() {
    let env = Env::bundled();
    let before = env.ok(&["state", "--at", "2030", "--format", "json"]);
    std::fs::write(env.store().join("snap.FFFFFFFFFFFFFFFF.generating"), b"").unwrap();
    env.ok(&["verify"]);
    assert_eq!(
        env.ok(&["state", "--at", "2030", "--format", "json"]),
        before
    );
    assert!(
        !env.store()
            .join("snap.FFFFFFFFFFFFFFFF.generating")
            .exists()
    );
}

#[test]
fn reindex_rebuilds_a_damaged_index_and_says_so() {
    let env = Env::new();
    let generated = env.ok(&[
        "generate",
        "--events",
        "3000",
        "--entities",
        "50",
        "--seed",
        "5",
    ]);
    env.ok(&["import", &env.write("g.jsonl", &generated)]);
    let before = env.ok(&["state", "--at", "2015", "--format", "json"]);
    // The first 300 records lose their replay-order entries, and with them
    // their place in the answers.
    damage(&env, |s| {
        for seq in 1..=300 {
            tamper::remove_index_entry(s, "by_time", seq);
        }
    });
    env.fails(&["verify"], 1);
    let out = env.ok(&["reindex"]);
    assert!(out.starts_with("reindexed 3000 records: "), "{out}");
    assert!(out.contains("the answers changed at "), "{out}");
    assert!(
        out.contains("verified: the rebuilt store is sound"),
        "{out}"
    );
    let again = env.ok(&["reindex"]);
    assert!(
        again.contains("the store answers as before at all 13 sample dates"),
        "{again}"
    );
    env.ok(&["verify"]);
    assert_eq!(
        env.ok(&["state", "--at", "2015", "--format", "json"]),
        before
    );
}

/// chronik turns transparent huge pages off for its process (src/main.rs,
/// BENCHMARKS.md): the kernel says so while it runs.
#[cfg(target_os = "linux")]
#[test]
fn chronik_runs_without_transparent_huge_pages() {
    use std::io::Read;
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("chronik"))
        .args(["generate", "--events", "20000", "--entities", "100"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("chronik runs");
    let mut stdout = child.stdout.take().expect("a pipe");
    // Once it has written, its `main` has run; with megabytes still to
    // write into a pipe that holds 64 KiB, it waits for this test to read.
    stdout.read_exact(&mut [0]).expect("chronik writes");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .expect("the process's status");
    drop(stdout);
    child.wait().expect("chronik ends");
    assert!(
        !status.contains("(zombie)"),
        "chronik ended early: {status}"
    );
    let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) else {
        // Kernels before 5.0 do not say.
        eprintln!("skipped: this kernel does not report THP_enabled");
        return;
    };
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
}
