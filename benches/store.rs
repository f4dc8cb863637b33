//! chronik's benchmark suite, with SQLite side by side.
//!
//! For each size it generates a timeline (`chronik generate`'s generator),
//! imports it with the real binary (time, peak RSS, size on disk), and then
//! measures, in this process, appends, whole-state and entity-scoped
//! queries at random dates, a full replay and diffs, plus a cold start of
//! the binary. The same events become a SQLite table of facts with their
//! validity intervals, loaded in one transaction and queried "as of" the
//! same dates. Everything is measured in one run, so ratios compare like
//! with like on a shared, noisy machine.
//!
//! ```text
//! cargo bench --bench store -- [--sizes 10000,100000,1000000] [--entities 10000]
//!     [--queries 200] [--appends 100] [--out bench-results] [--smoke]
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chronik::When;
use chronik::event::{Event, Located, Op, Origin, Value};
use chronik::formats::json;
use chronik::generate::{Plan, generate};
use chronik::state::AsOf;
use chronik::store::{IdPolicy, OpenMode, Store};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    sizes: Vec<usize>,
    entities: usize,
    years: u32,
    queries: usize,
    appends: usize,
    out: PathBuf,
    /// Checkpoint intervals to compare on the largest store.
    intervals: Vec<u64>,
}

fn args() -> Args {
    let mut args = Args {
        sizes: vec![10_000, 100_000, 1_000_000],
        entities: 10_000,
        years: 20,
        queries: 200,
        appends: 100,
        out: PathBuf::from("bench-results"),
        intervals: vec![],
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match arg.as_str() {
            "--sizes" => {
                args.sizes = value()
                    .split(',')
                    .map(|s| s.parse().expect("a size"))
                    .collect()
            }
            "--entities" => args.entities = value().parse().expect("a count"),
            "--queries" => args.queries = value().parse().expect("a count"),
            "--appends" => args.appends = value().parse().expect("a count"),
            "--out" => args.out = PathBuf::from(value()),
            "--intervals" => {
                args.intervals = value()
                    .split(',')
                    .map(|s| s.parse().expect("an interval"))
                    .collect()
            }
            "--smoke" => {
                args.sizes = vec![2_000];
                args.entities = 200;
                args.queries = 10;
                args.appends = 5;
                args.intervals = vec![500, 1000];
                args.out = std::env::temp_dir().join("chronik-bench-smoke");
            }
            // cargo bench passes --bench; test harness flags are ignored.
            _ => {}
        }
    }
    args
}

/// p50 and p99 of some durations, in microseconds.
#[derive(Clone, Copy, Default)]
struct Latency {
    p50: f64,
    p99: f64,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    Latency {
        p50: at(0.5),
        p99: at(0.99),
    }
}

#[derive(Default)]
struct Figures {
    events: usize,
    jsonl_bytes: u64,
    import_secs: f64,
    import_rss_kb: u64,
    store_bytes: u64,
    append: Latency,
    state: Latency,
    facts: usize,
    entity: Latency,
    replay_per_sec: f64,
    replay_in_date_order_per_sec: f64,
    diff: Latency,
    cold_start: Latency,
    query_rss_kb: u64,
    sqlite_rows: usize,
    sqlite_load_secs: f64,
    sqlite_bytes: u64,
    sqlite_state: Latency,
    sqlite_facts: usize,
    sqlite_entity: Latency,
    /// The checkpoint interval comparison (a table), if it was asked for.
    intervals: String,
}

/// Runs `program` with `args` to its end; returns its wall time and peak
/// RSS (KiB).
///
/// Linux charges a child the peak RSS of the process it was spawned from
/// (the memory map it starts with, or shares until exec), so a child of
/// this large benchmark process would report this process's peak. The
/// command is therefore run by a fresh, small copy of this binary
/// (`--measure`), which times it, reaps it with wait4 and prints both.
fn run_measured(program: &str, args: &[&std::ffi::OsStr]) -> (Duration, u64) {
    let output = Command::new(std::env::current_exe().expect("the bench binary"))
        .arg("--measure")
        .arg(program)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("the measuring helper starts");
    assert!(output.status.success(), "{program} {args:?} failed");
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let (micros, rss) = text.trim().split_once(' ').expect("two figures");
    (
        Duration::from_micros(micros.parse().expect("micros")),
        rss.parse().expect("KiB"),
    )
}

/// The `--measure PROGRAM ARGS...` mode: runs the program, prints its wall
/// time (µs) and peak RSS (KiB).
// The child is reaped by wait4, which also reports its peak RSS.
#[allow(clippy::zombie_processes)]
fn measure(program: &str, args: &[String]) -> ! {
    let started = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("the command starts");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        eprintln!("{program} {args:?} failed");
        std::process::exit(1);
    }
    println!("{} {}", elapsed.as_micros(), usage.ru_maxrss);
    std::process::exit(0);
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn day(rng: &mut fastrand::Rng, years: u32) -> When {
    let first = When::parse("2000-01-01").unwrap().start() / 86_400;
    let days = i64::from(years) * 365;
    let date = chrono::DateTime::from_timestamp((first + rng.i64(0..days)) * 86_400, 0).unwrap();
    When::day(date.date_naive())
}

fn bench_size(args: &Args, events: usize, work: &Path) -> Figures {
    let plan = Plan {
        events,
        entities: args.entities,
        years: args.years,
        seed: 7,
    };
    let mut figures = Figures {
        events,
        ..Figures::default()
    };
    // The timeline, as a user would hand it to `import`.
    let jsonl = work.join(format!("timeline-{events}.jsonl"));
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&jsonl).unwrap());
        for event in generate(plan) {
            serde_json::to_writer(&mut out, &json::event(&event)).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    figures.jsonl_bytes = std::fs::metadata(&jsonl).unwrap().len();

    // Import with the real binary.
    let store_path = work.join(format!("store-{events}"));
    let _ = std::fs::remove_dir_all(&store_path);
    let binary = env!("CARGO_BIN_EXE_chronik");
    let (took, rss) = run_measured(
        binary,
        &[
            "--store".as_ref(),
            store_path.as_os_str(),
            "import".as_ref(),
            jsonl.as_os_str(),
        ],
    );
    figures.import_secs = took.as_secs_f64();
    figures.import_rss_kb = rss;
    figures.store_bytes = dir_size(&store_path);
    eprintln!(
        "  {events}: imported in {took:?}, peak RSS {} MiB",
        rss / 1024
    );

    let mut rng = fastrand::Rng::with_seed(11);
    {
        let store = Store::open(&store_path, OpenMode::Existing).unwrap();
        // Whole state at random dates.
        let mut samples = Vec::new();
        for _ in 0..args.queries {
            let at = day(&mut rng, args.years);
            let started = Instant::now();
            let state = store.latest().unwrap().state(AsOf::new(at), &[]).unwrap();
            samples.push(started.elapsed());
            figures.facts = figures.facts.max(state.len());
        }
        figures.state = latency(samples);
        // One entity's state at random dates.
        let mut samples = Vec::new();
        for _ in 0..args.queries * 5 {
            let at = day(&mut rng, args.years);
            let entity = vec![format!("e{}", rng.usize(0..args.entities))];
            let started = Instant::now();
            let state = store
                .latest()
                .unwrap()
                .state(AsOf::new(at), &entity)
                .unwrap();
            samples.push(started.elapsed());
            std::hint::black_box(state);
        }
        figures.entity = latency(samples);
        // A full replay from the start, with no checkpoint: entity by
        // entity through the entity index (what a query with no checkpoint
        // does), then in date order through the log. Every event in the
        // log passes through the replay (corrected ones are skipped).
        let everything = AsOf::new(When::parse("9999").unwrap());
        let started = Instant::now();
        let snapshot = store.latest().unwrap();
        std::hint::black_box(snapshot.state_from_start(everything).unwrap());
        figures.replay_per_sec = events as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        std::hint::black_box(snapshot.state_in_date_order(everything).unwrap());
        figures.replay_in_date_order_per_sec = events as f64 / started.elapsed().as_secs_f64();
        // Diffs between two random dates.
        let mut samples = Vec::new();
        for _ in 0..(args.queries / 4).max(3) {
            let (a, b) = (day(&mut rng, args.years), day(&mut rng, args.years));
            let (from, to) = if a <= b { (a, b) } else { (b, a) };
            let started = Instant::now();
            let changes = store
                .latest()
                .unwrap()
                .diff(AsOf::new(from), AsOf::new(to), &[])
                .unwrap();
            samples.push(started.elapsed());
            std::hint::black_box(changes);
        }
        figures.diff = latency(samples);
        // Appends of one event each, acknowledged (flushed) before the next.
        let mut samples = Vec::new();
        let year = 2000 + args.years as i32 - 1;
        for i in 0..args.appends {
            let event = Event {
                id: format!("appended-{i}").into(),
                at: When::parse(&format!("{year}-06-{:02}", 1 + i % 28)).unwrap(),
                title: "An appended event".into(),
                summary: None,
                tags: vec![],
                sources: vec![],
                corrects: vec![],
                changes: vec![chronik::Change {
                    entity: format!("e{}", i % args.entities).into(),
                    attr: "status".into(),
                    op: Op::Set {
                        value: Value::Text("active".into()),
                        until: None,
                    },
                }],
            };
            let origin = Origin {
                file: "bench".into(),
                number: 0,
                line: None,
                id: None,
            };
            let started = Instant::now();
            store
                .write(
                    &[Located::new(event, origin)],
                    IdPolicy::RequireNew,
                    None,
                    chrono::Utc::now(),
                )
                .unwrap();
            samples.push(started.elapsed());
        }
        figures.append = latency(samples);
    }
    // The binary from a cold start: open the store, answer, print JSON.
    let mut samples = Vec::new();
    for _ in 0..5 {
        let at = day(&mut rng, args.years).to_string();
        let (took, rss) = run_measured(
            binary,
            &[
                "--store".as_ref(),
                store_path.as_os_str(),
                "state".as_ref(),
                "--at".as_ref(),
                at.as_ref(),
                "--format".as_ref(),
                "json".as_ref(),
            ],
        );
        samples.push(took);
        figures.query_rss_kb = figures.query_rss_kb.max(rss);
    }
    figures.cold_start = latency(samples);

    sqlite(args, plan, work, &mut figures, &mut rng);
    if Some(&events) == args.sizes.iter().max() && !args.intervals.is_empty() {
        figures.intervals = tune_intervals(args, &store_path);
    }
    let _ = std::fs::remove_dir_all(&store_path);
    let _ = std::fs::remove_file(&jsonl);
    figures
}

/// A fact with the interval it holds in, as a SQLite user would store it.
struct Row {
    entity: String,
    attr: String,
    value: String,
    valid_from: i64,
    valid_to: Option<i64>,
    seq: u64,
}

/// The facts of a timeline with their validity intervals: a replay of the
/// events in date order that closes a fact's interval when it is changed,
/// removed or ends with `until`. It knows every date as certain: SQLite's
/// answers below ignore chronik's uncertainty, which only makes its work
/// simpler.
fn intervals(plan: Plan) -> Vec<Row> {
    let events: Vec<Event> = generate(plan).collect();
    let corrected: HashSet<&str> = events
        .iter()
        .flat_map(|e| e.corrects.iter().map(String::as_str))
        .collect();
    let mut order: Vec<(i64, usize)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| !corrected.contains(e.id.as_str()))
        .map(|(i, e)| (e.at.start(), i))
        .collect();
    order.sort();
    let mut rows: Vec<Row> = Vec::new();
    // (entity, attr) → indexes of open rows
    let mut open: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (start, i) in order {
        let event = &events[i];
        for change in &event.changes {
            let key = (change.entity.to_string(), change.attr.to_string());
            let held = open.entry(key.clone()).or_default();
            let close =
                |rows: &mut Vec<Row>, held: &mut Vec<usize>, keep: &dyn Fn(&Row) -> bool| {
                    held.retain(|&r| {
                        if keep(&rows[r]) {
                            return true;
                        }
                        rows[r].valid_to = Some(rows[r].valid_to.map_or(start, |t| t.min(start)));
                        false
                    });
                };
            let open_row =
                |rows: &mut Vec<Row>, held: &mut Vec<usize>, value: &Value, until: Option<When>| {
                    rows.push(Row {
                        entity: key.0.to_string(),
                        attr: key.1.to_string(),
                        value: value.to_string(),
                        valid_from: start,
                        valid_to: until.map(|u| u.end()),
                        seq: i as u64 + 1,
                    });
                    held.push(rows.len() - 1);
                };
            match &change.op {
                Op::Set { value, until } => {
                    close(&mut rows, held, &|_| false);
                    open_row(&mut rows, held, value, *until);
                }
                Op::Unset => close(&mut rows, held, &|_| false),
                Op::Add { value, until } => {
                    let text = value.to_string();
                    close(&mut rows, held, &|r| r.value != text);
                    open_row(&mut rows, held, value, *until);
                }
                Op::Remove { value } => {
                    let text = value.to_string();
                    close(&mut rows, held, &|r| r.value != text);
                }
            }
        }
    }
    rows
}

fn sqlite(args: &Args, plan: Plan, work: &Path, figures: &mut Figures, rng: &mut fastrand::Rng) {
    let rows = intervals(plan);
    figures.sqlite_rows = rows.len();
    let path = work.join(format!("facts-{}.sqlite", plan.events));
    let _ = std::fs::remove_file(&path);
    let mut db = rusqlite::Connection::open(&path).unwrap();
    let started = Instant::now();
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE facts (entity TEXT NOT NULL, attr TEXT NOT NULL, value TEXT NOT NULL,
                             valid_from INTEGER NOT NULL, valid_to INTEGER, seq INTEGER NOT NULL);",
    )
    .unwrap();
    let tx = db.transaction().unwrap();
    {
        let mut insert = tx
            .prepare("INSERT INTO facts (entity, attr, value, valid_from, valid_to, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .unwrap();
        for r in &rows {
            insert
                .execute(rusqlite::params![
                    r.entity,
                    r.attr,
                    r.value,
                    r.valid_from,
                    r.valid_to,
                    r.seq as i64
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    // The indexes that make "as of" fast: by start, and by entity then start.
    db.execute_batch(
        "CREATE INDEX facts_from ON facts (valid_from, valid_to);
         CREATE INDEX facts_entity ON facts (entity, valid_from, valid_to);
         ANALYZE;",
    )
    .unwrap();
    figures.sqlite_load_secs = started.elapsed().as_secs_f64();
    drop(db);
    let db = rusqlite::Connection::open(&path).unwrap();
    figures.sqlite_bytes = std::fs::metadata(&path).unwrap().len()
        + std::fs::metadata(path.with_extension("sqlite-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let mut whole = db
        .prepare("SELECT entity, attr, value, seq FROM facts WHERE valid_from < ?1 AND (valid_to IS NULL OR valid_to >= ?1)")
        .unwrap();
    let mut samples = Vec::new();
    for _ in 0..args.queries {
        let q = day(rng, args.years).end();
        let started = Instant::now();
        let facts: Vec<(String, String, String, i64)> = whole
            .query_map([q], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        samples.push(started.elapsed());
        figures.sqlite_facts = figures.sqlite_facts.max(facts.len());
    }
    figures.sqlite_state = latency(samples);
    let mut entity = db
        .prepare(
            "SELECT attr, value, seq FROM facts WHERE entity = ?1 AND valid_from < ?2 AND (valid_to IS NULL OR valid_to >= ?2)",
        )
        .unwrap();
    let mut samples = Vec::new();
    for _ in 0..args.queries * 5 {
        let q = day(rng, args.years).end();
        let name = format!("e{}", rng.usize(0..args.entities));
        let started = Instant::now();
        let facts: Vec<(String, String, i64)> = entity
            .query_map(rusqlite::params![name, q], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        samples.push(started.elapsed());
        std::hint::black_box(facts);
    }
    figures.sqlite_entity = latency(samples);
    drop(whole);
    drop(entity);
    drop(db);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("sqlite-wal"));
    let _ = std::fs::remove_file(path.with_extension("sqlite-shm"));
}

fn ms(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The summary table, in Markdown.
fn table(all: &[Figures]) -> String {
    let mut t = String::new();
    writeln!(
        t,
        "| events | measure | chronik | SQLite | chronik vs SQLite |"
    )
    .unwrap();
    writeln!(t, "|---:|---|---:|---:|---:|").unwrap();
    for f in all {
        let n = f.events;
        let rate = |events: usize, secs: f64| format!("{:.0} events/s", events as f64 / secs);
        let row = |t: &mut String, measure: &str, ours: String, theirs: String, ratio: String| {
            writeln!(t, "| {n} | {measure} | {ours} | {theirs} | {ratio} |").unwrap();
        };
        row(
            &mut t,
            "bulk import / load",
            rate(n, f.import_secs),
            rate(n, f.sqlite_load_secs),
            format!("{:.2}× as fast", f.sqlite_load_secs / f.import_secs),
        );
        row(
            &mut t,
            &format!("size on disk (JSONL {})", mib(f.jsonl_bytes)),
            format!(
                "{} ({:.2}× JSONL)",
                mib(f.store_bytes),
                f.store_bytes as f64 / f.jsonl_bytes as f64
            ),
            format!(
                "{} ({:.2}× JSONL)",
                mib(f.sqlite_bytes),
                f.sqlite_bytes as f64 / f.jsonl_bytes as f64
            ),
            format!(
                "{:.2}× the size",
                f.store_bytes as f64 / f.sqlite_bytes as f64
            ),
        );
        row(
            &mut t,
            "peak RSS of the import",
            format!("{} MiB", f.import_rss_kb / 1024),
            String::new(),
            String::new(),
        );
        row(
            &mut t,
            "append one event, flushed (p50 / p99)",
            format!("{} / {}", ms(f.append.p50), ms(f.append.p99)),
            String::new(),
            String::new(),
        );
        row(
            &mut t,
            &format!(
                "whole state at a random date (p50 / p99; up to {} facts, SQLite {} rows)",
                f.facts, f.sqlite_facts
            ),
            format!("{} / {}", ms(f.state.p50), ms(f.state.p99)),
            format!("{} / {}", ms(f.sqlite_state.p50), ms(f.sqlite_state.p99)),
            format!("{:.2}× as fast", f.sqlite_state.p50 / f.state.p50),
        );
        row(
            &mut t,
            "one entity's state at a random date (p50 / p99)",
            format!("{} / {}", ms(f.entity.p50), ms(f.entity.p99)),
            format!("{} / {}", ms(f.sqlite_entity.p50), ms(f.sqlite_entity.p99)),
            format!("{:.2}× as fast", f.sqlite_entity.p50 / f.entity.p50),
        );
        row(
            &mut t,
            "full replay from the start, entity by entity",
            format!("{:.0} events/s", f.replay_per_sec),
            String::new(),
            String::new(),
        );
        row(
            &mut t,
            "full replay from the start, in date order",
            format!("{:.0} events/s", f.replay_in_date_order_per_sec),
            String::new(),
            String::new(),
        );
        row(
            &mut t,
            "diff between two random dates (p50 / p99)",
            format!("{} / {}", ms(f.diff.p50), ms(f.diff.p99)),
            String::new(),
            String::new(),
        );
        row(
            &mut t,
            "`chronik state --at D --format json`, whole process (p50; peak RSS)",
            format!("{} ({} MiB)", ms(f.cold_start.p50), f.query_rss_kb / 1024),
            String::new(),
            String::new(),
        );
    }
    t
}

/// Latency against store size, both systems, log-log, as SVG.
fn plot(all: &[Figures]) -> String {
    let (w, h, left, bottom, top, right) = (720.0, 420.0, 80.0, 60.0, 30.0, 200.0);
    type Series<'a> = (&'a str, &'a str, fn(&Figures) -> f64);
    let series: [Series; 4] = [
        ("chronik, whole state", "#1f77b4", |f| f.state.p50),
        ("SQLite, whole state", "#ff7f0e", |f| f.sqlite_state.p50),
        ("chronik, one entity", "#2ca02c", |f| f.entity.p50),
        ("SQLite, one entity", "#d62728", |f| f.sqlite_entity.p50),
    ];
    let xs: Vec<f64> = all.iter().map(|f| (f.events as f64).log10()).collect();
    let ys: Vec<f64> = all
        .iter()
        .flat_map(|f| {
            series
                .iter()
                .map(move |(_, _, get)| get(f).max(1.0).log10())
        })
        .collect();
    let (x0, x1) = (
        xs.iter().cloned().fold(f64::MAX, f64::min) - 0.2,
        xs.iter().cloned().fold(f64::MIN, f64::max) + 0.2,
    );
    let (y0, y1) = (
        ys.iter().cloned().fold(f64::MAX, f64::min).floor(),
        ys.iter().cloned().fold(f64::MIN, f64::max).ceil(),
    );
    let px = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| h - bottom - (y - y0) / (y1 - y0).max(1.0) * (h - bottom - top);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">Query latency (p50) against store size</text>\n",
        (w - right + left) / 2.0
    );
    let mut y = y0;
    while y <= y1 {
        let label = ms(10f64.powf(y));
        writeln!(svg, "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>", w - right, py(y), py(y), left - 6.0, py(y) + 4.0).unwrap();
        y += 1.0;
    }
    for (f, x) in all.iter().zip(&xs) {
        writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{} events</text>",
            px(*x),
            h - bottom + 20.0,
            f.events
        )
        .unwrap();
    }
    for (i, (name, color, get)) in series.iter().enumerate() {
        let points: Vec<String> = all
            .iter()
            .zip(&xs)
            .map(|(f, x)| format!("{:.1},{:.1}", px(*x), py(get(f).max(1.0).log10())))
            .collect();
        writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        )
        .unwrap();
        for p in &points {
            let (cx, cy) = p.split_once(',').unwrap();
            writeln!(
                svg,
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3\" fill=\"{color}\"/>"
            )
            .unwrap();
        }
        let ly = top + 20.0 + i as f64 * 20.0;
        writeln!(svg, "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{name}</text>", w - right + 15.0, ly - 4.0, w - right + 35.0, ly + 1.0).unwrap();
    }
    svg.push_str("</svg>\n");
    svg
}

/// Rebuilds the checkpoints of the store at `path` at each interval of
/// `--intervals` and measures whole-state queries: the figures behind the
/// default interval.
fn tune_intervals(args: &Args, path: &Path) -> String {
    let store = Store::open(path, OpenMode::Existing).unwrap();
    let events = store.head().unwrap().seq;
    let mut t = String::from(
        "| events | checkpoint every | checkpoints | reindex | whole state p50 / p99 |\n\
         |---:|---:|---:|---:|---:|\n",
    );
    for &every in &args.intervals {
        eprintln!("  checkpoints every {every} events");
        store.set_checkpoint_interval(every);
        let started = Instant::now();
        let done = store.reindex().unwrap();
        let reindex = started.elapsed();
        let mut rng = fastrand::Rng::with_seed(13);
        let samples = (0..args.queries)
            .map(|_| {
                let at = day(&mut rng, args.years);
                let started = Instant::now();
                std::hint::black_box(store.latest().unwrap().state(AsOf::new(at), &[]).unwrap());
                started.elapsed()
            })
            .collect();
        let state = latency(samples);
        t += &format!(
            "| {events} | {every} | {} | {:.1} s | {} / {} |\n",
            done.checkpoints,
            reindex.as_secs_f64(),
            ms(state.p50),
            ms(state.p99)
        );
    }
    t
}

fn main() {
    // Queries in this process run as in the chronik binary, which turns
    // transparent huge pages off (src/main.rs).
    #[cfg(target_os = "linux")]
    // SAFETY: sets a flag of the process; touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some("--measure") {
        measure(&raw[2], &raw[3..]);
    }
    let args = args();
    std::fs::create_dir_all(&args.out).unwrap();
    let work = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let mut all = Vec::new();
    for &size in &args.sizes {
        eprintln!("benchmarking {size} events over {} entities", args.entities);
        all.push(bench_size(&args, size, work.path()));
    }
    let table = table(&all);
    println!("{table}");
    std::fs::write(args.out.join("summary.md"), &table).unwrap();
    std::fs::write(args.out.join("latency.svg"), plot(&all)).unwrap();
    if let Some(tuned) = all.iter().find(|f| !f.intervals.is_empty()) {
        println!("{}", tuned.intervals);
        std::fs::write(args.out.join("intervals.md"), &tuned.intervals).unwrap();
    }
    eprintln!(
        "wrote {} and {}",
        args.out.join("summary.md").display(),
        args.out.join("latency.svg").display()
    );
}
