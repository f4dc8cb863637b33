//! Crashes: the real binary killed with SIGKILL at random moments.
//!
//! The moments are random on purpose (from a fixed seed, spread over how
//! long the write takes when left alone): these tests look for the kill that
//! lands at the worst time, they do not wait for anything. After each kill
//! the store must open, `verify` must pass, and it must hold whole batches
//! only — and every append that reported success.

#![cfg(unix)]

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::Env;

/// Kills in each test: a count, not a time budget, so that a slow machine
/// takes longer instead of failing.
const KILLS: usize = 30;

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn chronik() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("chronik"))
}

fn kill_group(pid: u32) {
    // SAFETY: kill(2) with a process group id; no memory is involved.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
}

fn events(n: usize, prefix: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\": \"{prefix}{i}\", \"at\": \"20{:02}-{:02}\", \"title\": \"event {i}\", \"changes\": [{{\"set\": \"e{}.v\", \"value\": {i}}}]}}\n",
                10 + i % 15,
                1 + i % 12,
                i % 500
            )
        })
        .collect()
}

fn event_count(env: &Env) -> u64 {
    env.json(&["stats"])["events"].as_u64().unwrap()
}

#[test]
fn a_batch_killed_at_any_moment_lands_whole_or_not_at_all() {
    const BATCH: u64 = 8_000;
    let env = Env::new();
    let batch = env.write("batch.jsonl", &events(BATCH as usize, "b"));
    // How long the import takes when nobody kills it.
    let timing = Env::new();
    timing.ok(&["import", &common::bundled_events().display().to_string()]);
    let started = Instant::now();
    timing.ok(&["import", &batch]);
    let full = started.elapsed();

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut none, mut whole, mut kills) = (0, 0, 0);
    while kills < KILLS {
        let store = env.dir().join(format!("store-{kills}"));
        let store_arg = store.display().to_string();
        let bundled = common::bundled_events().display().to_string();
        let status = chronik()
            .args(["--store", &store_arg, "import", &bundled])
            .output()
            .unwrap();
        assert!(status.status.success());
        let mut child = chronik()
            .args(["--store", &store_arg, "import", &batch])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 11 / 10));
        std::thread::sleep(delay);
        kill_group(child.id());
        child.wait().unwrap();
        kills += 1;

        let verify = chronik()
            .args(["--store", &store_arg, "verify"])
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "after a kill at {delay:?}: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let stats = chronik()
            .args(["--store", &store_arg, "stats", "--format", "json"])
            .output()
            .unwrap();
        let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
        match stats["events"].as_u64().unwrap() {
            4 => none += 1,
            n if n == 4 + BATCH => whole += 1,
            n => panic!("after a kill at {delay:?} the store holds {n} events: part of a batch"),
        }
        std::fs::remove_dir_all(&store).unwrap();
    }
    eprintln!("{kills} kills over {full:?} imports: {none} left nothing, {whole} landed whole");
}

#[test]
fn every_acknowledged_append_survives_a_kill() {
    let env = Env::new();
    env.ok(&["import", &common::bundled_events().display().to_string()]);
    let store = env.store().display().to_string();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut acknowledged: Vec<String> = Vec::new();
    let mut round = 0;
    while round < KILLS {
        // One thread appends one event after another, noting each append
        // that reported success; this thread kills whichever append runs.
        let running = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let appender = {
            let (running, stop, store) = (running.clone(), stop.clone(), store.clone());
            std::thread::spawn(move || {
                let mut done = Vec::new();
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let id = format!("r{round}-{i}");
                    let mut child = chronik()
                        .args([
                            "--store", &store, "add", "--id", &id, "--at", "2020", "--title", "t",
                        ])
                        .args(["--set", &format!("x.v={i}")])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap();
                    running.store(child.id(), Ordering::SeqCst);
                    let status = child.wait().unwrap();
                    running.store(0, Ordering::SeqCst);
                    if status.success() {
                        done.push(id);
                    } else {
                        break;
                    }
                }
                done
            })
        };
        std::thread::sleep(Duration::from_millis(20 + rng.below(300)));
        stop.store(true, Ordering::SeqCst);
        let pid = running.load(Ordering::SeqCst);
        if pid != 0 {
            // SAFETY: kill(2) on the append that is running; no memory involved.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        acknowledged.extend(appender.join().unwrap());
        round += 1;

        let verify = env.cmd(&["verify"]).output().unwrap();
        assert!(
            verify.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let log = env.json(&["log"]);
        let stored: std::collections::HashSet<&str> = log["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        for id in &acknowledged {
            assert!(
                stored.contains(id.as_str()),
                "round {round}: the acknowledged append {id} is lost"
            );
        }
    }
    eprintln!(
        "{round} kills, {} acknowledged appends, all present; {} events stored",
        acknowledged.len(),
        event_count(&env)
    );
    assert!(
        !acknowledged.is_empty(),
        "no append was acknowledged: the test proved nothing"
    );
}
