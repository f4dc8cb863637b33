//! Times chronik's queries in process on an existing store: the harness
//! behind the side-by-side measurements in BENCHMARKS.md (the suite,
//! `benches/store.rs`, imports its own stores; this one measures any store,
//! so two builds can be compared on the same one, alternating).
//!
//! ```sh
//! cargo run --release --example query_times -- STORE whole [N]
//! cargo run --release --example query_times -- STORE entity [N]
//! cargo run --release --example query_times -- STORE suite [N]
//! cargo run --release --example query_times -- STORE replay [N]
//! cargo run --release --example query_times -- STORE diff [N]
//! ```
//!
//! - `whole`: N whole states at random dates (default 60), p50 and range;
//! - `entity`: N one-entity states at random dates on the open store
//!   (default 20,000: sled's cache warm);
//! - `suite`: as the suite takes one-entity queries: 200 whole states, then
//!   N one-entity states (default 1,000), on a store just opened;
//! - `replay`: the state at the end of 9999 from the first event, entity by
//!   entity and in date order, N times each (default 5), best and median;
//!   `replay-entity`: entity by entity only (for a profile);
//! - `diff`: N diffs between two random dates (default 8).
//!
//! Dates are days between 2000 and 2019, entities `e0` to `e9999`, as the
//! suite generates them; the random numbers come from fixed seeds, so every
//! build answers the same questions.

use std::time::{Duration, Instant};

use chronik::store::{OpenMode, Store};
use chronik::{AsOf, When};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = || -> ! {
        eprintln!("usage: query_times STORE whole|entity|suite|replay|replay-entity|diff [N]");
        std::process::exit(2);
    };
    let (Some(path), Some(mode)) = (args.next(), args.next()) else {
        usage()
    };
    let n: Option<usize> = args.next().map(|n| n.parse().unwrap_or_else(|_| usage()));
    let store = Store::open(path.as_ref(), OpenMode::Existing).unwrap_or_else(|e| {
        eprintln!("query_times: {e}");
        std::process::exit(1);
    });
    let mut rng = fastrand::Rng::with_seed(11);
    let whole = |rng: &mut fastrand::Rng| {
        let at = AsOf::new(day(rng));
        let started = Instant::now();
        let state = store.latest().unwrap().state(at, &[]).unwrap();
        let took = started.elapsed();
        drop(state);
        took
    };
    let entity = |rng: &mut fastrand::Rng| {
        let (at, e) = (
            AsOf::new(day(rng)),
            vec![format!("e{}", rng.usize(0..10_000))],
        );
        let started = Instant::now();
        let state = store.latest().unwrap().state(at, &e).unwrap();
        let took = started.elapsed();
        drop(state);
        took
    };
    match mode.as_str() {
        "whole" => report("whole state", (0..n.unwrap_or(60)).map(|_| whole(&mut rng))),
        "entity" => report(
            "one entity",
            (0..n.unwrap_or(20_000)).map(|_| entity(&mut rng)),
        ),
        "suite" => {
            for _ in 0..200 {
                whole(&mut rng);
            }
            report(
                "one entity",
                (0..n.unwrap_or(1_000)).map(|_| entity(&mut rng)),
            );
        }
        "replay" | "replay-entity" => {
            let everything = AsOf::new(When::parse("9999").unwrap());
            let snapshot = store.latest().unwrap();
            let times = |replay: &dyn Fn() -> chronik::State| -> Vec<Duration> {
                (0..n.unwrap_or(5))
                    .map(|_| {
                        let started = Instant::now();
                        let state = replay();
                        let took = started.elapsed();
                        drop(state);
                        took
                    })
                    .collect()
            };
            report(
                "replay entity by entity",
                times(&|| snapshot.state_from_start(everything).unwrap()).into_iter(),
            );
            if mode == "replay" {
                report(
                    "replay in date order",
                    times(&|| snapshot.state_in_date_order(everything).unwrap()).into_iter(),
                );
            }
        }
        "diff" => {
            let mut rng = fastrand::Rng::with_seed(5);
            let diffs = (0..n.unwrap_or(8)).map(|_| {
                let (a, b) = (day(&mut rng), day(&mut rng));
                let (from, to) = if a <= b { (a, b) } else { (b, a) };
                let started = Instant::now();
                let changes = store
                    .latest()
                    .unwrap()
                    .diff(AsOf::new(from), AsOf::new(to), &[])
                    .unwrap();
                let took = started.elapsed();
                drop(changes);
                took
            });
            report("diff", diffs);
        }
        other => {
            eprintln!(
                "unknown mode {other:?}: whole, entity, suite, replay, replay-entity or diff"
            );
            std::process::exit(2);
        }
    }
}

/// A random day from 2000 to 2019.
fn day(rng: &mut fastrand::Rng) -> When {
    let first = When::parse("2000-01-01").unwrap().start() / 86_400;
    let date = chrono::DateTime::from_timestamp((first + rng.i64(0..20 * 365)) * 86_400, 0)
        .expect("in range");
    When::day(date.date_naive())
}

/// Prints the median, the fastest and the slowest of `times`.
fn report(what: &str, times: impl Iterator<Item = Duration>) {
    let mut times: Vec<Duration> = times.collect();
    times.sort();
    let (p50, first, last) = (times[times.len() / 2], times[0], times[times.len() - 1]);
    println!(
        "{what}: p50 {p50:.1?}, fastest {first:.1?}, slowest {last:.1?} ({} runs)",
        times.len()
    );
}
