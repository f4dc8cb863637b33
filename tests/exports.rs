//! Every export format, read back by a real, independent reader: Python's
//! csv module, the icalendar and markdown-it-py packages, Graphviz, and
//! TimelineJS and the HTML page in headless Chromium. The readers are
//! installed by `scripts/install-test-deps`; a missing one fails the test
//! with that instruction rather than skipping it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Env;
use serde_json::{Value as Json, json};

fn readers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readers")
}

/// Runs an independent reader; its stdout.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("{program} could not run ({e}): install the test readers with scripts/install-test-deps")
    });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn python(script: &str, file: &Path) -> Json {
    let script = readers().join(script);
    let out = run(
        "python3",
        &[&script.display().to_string(), &file.display().to_string()],
    );
    serde_json::from_str(&out).expect("the reader prints JSON")
}

/// The bundled timeline plus events whose text needs quoting in every
/// format: commas, quotes, new lines, markup, non-ASCII, a long title.
fn tricky_env() -> Env {
    let env = Env::bundled();
    let file = env.write(
        "tricky.toml",
        r#"
[[event]]
id = "tricky-1"
at = "2023-03-07"
title = "Commas, \"quotes\" and a\nnew line; also <b>markup</b> & *stars* | pipes"
summary = "Ünïcödé — and a long summary that goes on well past the seventy-five octets a calendar line may hold, so that folding must happen."
tags = ["test", "odd"]
sources = [{ title = "A, \"quoted\" source", url = "https://example.org/a?b=1&c=2" }]
changes = [{ set = "widget.name", value = "Name, with \"quotes\"" }, { add = "widget.links", value = { ref = "openai" } }, { set = "widget.note", value = "line one\n- line two &amp; more" }]

[[event]]
id = "tricky-2"
at = "2023-03-07T10:15:00Z"
title = "An instant"
changes = [{ set = "widget.count", value = 3, until = "2024" }]
"#,
    );
    env.ok(&["import", &file]);
    env
}

fn timeline(env: &Env) -> Vec<Json> {
    env.json(&["timeline"])["events"]
        .as_array()
        .unwrap()
        .clone()
}

fn export(env: &Env, format: &str, name: &str, extra: &[&str]) -> PathBuf {
    let path = env.dir().join(name);
    let mut args = vec!["export", "--format", format, "-o"];
    let out = path.display().to_string();
    args.push(&out);
    args.extend_from_slice(extra);
    env.ok(&args);
    path
}

#[test]
fn csv_reads_back_row_for_row_with_python() {
    let env = tricky_env();
    let rows = python("read_csv.py", &export(&env, "csv", "t.csv", &[]));
    let rows = rows.as_array().unwrap();
    assert_eq!(
        rows[0],
        json!([
            "seq",
            "id",
            "at",
            "precision",
            "title",
            "entity",
            "attr",
            "op",
            "value",
            "until",
            "tags",
            "sources"
        ])
    );
    let mut expected = Vec::new();
    for event in timeline(&env) {
        for change in event["changes"].as_array().unwrap() {
            let (op, target) = ["set", "unset", "add", "remove"]
                .iter()
                .find_map(|op| change.get(*op).map(|t| (*op, t.as_str().unwrap())))
                .unwrap();
            let (entity, attr) = target.split_once('.').unwrap();
            expected.push((
                event["id"].as_str().unwrap().to_string(),
                event["at"].as_str().unwrap().to_string(),
                event["title"].as_str().unwrap().to_string(),
                entity.to_string(),
                attr.to_string(),
                op.to_string(),
            ));
        }
    }
    let read: Vec<_> = rows[1..]
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap().to_string();
            (s(1), s(2), s(4), s(5), s(6), s(7))
        })
        .collect();
    assert_eq!(read, expected);
    let tricky = rows
        .iter()
        .find(|r| r[1] == "tricky-1" && r[6] == "name")
        .unwrap();
    assert_eq!(
        tricky[4],
        "Commas, \"quotes\" and a\nnew line; also <b>markup</b> & *stars* | pipes"
    );
    assert_eq!(tricky[8], "Name, with \"quotes\"");
    assert_eq!(tricky[10], "test; odd");
    assert_eq!(
        tricky[11],
        "\"A, \"quoted\" source\", https://example.org/a?b=1&c=2"
    );
    let until = rows.iter().find(|r| r[1] == "tricky-2").unwrap();
    assert_eq!(
        (until[3].as_str(), until[9].as_str()),
        (Some("instant"), Some("2024"))
    );
}

#[test]
fn ics_reads_back_with_the_icalendar_package() {
    let env = tricky_env();
    let path = export(&env, "ics", "t.ics", &["--title", "OpenAI and Microsoft"]);
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    for line in text.split("\r\n") {
        assert!(
            line.len() <= 75,
            "a line of {} octets: {line:?}",
            line.len()
        );
        assert!(!line.contains('\n'), "a bare LF in {line:?}");
    }
    let calendar = python("read_ics.py", &path);
    assert_eq!(calendar["name"], "OpenAI and Microsoft");
    let events = calendar["events"].as_array().unwrap();
    let expected = timeline(&env);
    assert_eq!(events.len(), expected.len());
    let by_uid = |uid: &str| events.iter().find(|e| e["uid"] == uid).unwrap().clone();
    for event in &expected {
        let read = by_uid(event["id"].as_str().unwrap());
        assert_eq!(read["summary"], event["title"]);
    }
    let invest = by_uid("microsoft-invests-2019");
    assert_eq!(
        (invest["start"].as_str(), invest["end"].as_str()),
        (Some("2019-01-01"), Some("2020-01-01"))
    );
    let oracle = by_uid("oracle-capacity-2024");
    assert_eq!(
        (oracle["start"].as_str(), oracle["end"].as_str()),
        (Some("2024-06-01"), Some("2024-07-01"))
    );
    let day = by_uid("stargate-announced-2025");
    assert_eq!(
        (day["start"].as_str(), day["end"].as_str()),
        (Some("2025-01-21"), Some("2025-01-22"))
    );
    let instant = by_uid("tricky-2");
    assert_eq!(instant["start"], "2023-03-07T10:15:00+00:00");
    let tricky = by_uid("tricky-1");
    assert!(
        tricky["description"]
            .as_str()
            .unwrap()
            .contains("Ünïcödé — and a long summary that goes on well past"),
        "{tricky}"
    );
}

#[test]
fn markdown_parses_as_commonmark_with_a_heading_per_year() {
    let env = tricky_env();
    let path = export(&env, "markdown", "t.md", &["--at", "2025-01-21"]);
    let doc = python("read_markdown.py", &path);
    let headings: Vec<String> = doc["headings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{} {}", h[0].as_str().unwrap(), h[1].as_str().unwrap()))
        .collect();
    assert_eq!(
        headings,
        [
            "h1 chronik timeline",
            "h2 2019",
            "h2 2023",
            "h2 2024",
            "h2 2025",
            "h2 State at 21 January 2025",
            "h2 Sources"
        ]
    );
    let items: Vec<&str> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(items.len(), timeline(&env).len());
    assert!(
        items[0].starts_with("2019 — Microsoft invests in OpenAI"),
        "{items:?}"
    );
    assert!(items.contains(&"7 March 2023 — Commas, \"quotes\" and a new line; also <b>markup</b> & *stars* | pipes [3]"), "{items:?}");
    assert!(
        items.contains(&"June 2024 — Oracle to provide data center capacity for OpenAI [1]"),
        "{items:?}"
    );
    // The state table: a header and one row per fact of `chronik state`.
    let rows = doc["rows"].as_array().unwrap();
    let state = env.json(&["state", "--at", "2025-01-21"]);
    let facts = state["facts"].as_array().unwrap();
    assert_eq!(rows.len(), facts.len() + 1);
    for (row, fact) in rows[1..].iter().zip(facts) {
        assert_eq!(row[0], fact["entity"]);
        assert_eq!(row[1], fact["attr"]);
        assert_eq!(row[4], fact["event"]);
        let value = &fact["value"];
        let shown = match (value.as_str(), value["ref"].as_str()) {
            // Text reads as written, its line breaks as spaces.
            (Some(text), _) => text.split_whitespace().collect::<Vec<_>>().join(" "),
            (_, Some(entity)) => format!("@{entity}"),
            _ => continue,
        };
        assert_eq!(row[2], shown.as_str(), "{fact}");
    }
    assert!(
        rows.iter()
            .any(|r| r[2] == "line one - line two &amp; more")
    );
}

#[test]
fn dot_renders_with_graphviz_and_shows_every_reference() {
    let env = Env::bundled();
    let at = "2019-06-01";
    let path = export(&env, "dot", "t.dot", &["--at", at]);
    let svg = run("dot", &["-Tsvg", &path.display().to_string()]);
    let state = env.json(&["state", "--at", at]);
    let mut expected_edges = Vec::new();
    for fact in state["facts"].as_array().unwrap() {
        if let Some(target) = fact["value"]["ref"].as_str() {
            expected_edges.push((
                format!("{}&#45;&gt;{target}", fact["entity"].as_str().unwrap()),
                fact["uncertain"].as_bool().unwrap(),
            ));
        }
    }
    assert!(!expected_edges.is_empty());
    // Graphviz writes each node and edge as a <g class="node|edge"> with a <title>.
    let groups: Vec<(&str, &str)> = svg
        .split("<g id=")
        .skip(1)
        .filter_map(|g| {
            let class = g.split("class=\"").nth(1)?.split('"').next()?;
            let title = g.split("<title>").nth(1)?.split("</title>").next()?;
            Some((class, title))
        })
        .collect();
    let nodes: Vec<&str> = groups
        .iter()
        .filter(|(c, _)| *c == "node")
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(nodes, ["microsoft", "openai"]);
    for (edge, uncertain) in &expected_edges {
        let body = svg
            .split("<g id=")
            .find(|g| g.contains("class=\"edge\"") && g.contains(&format!("<title>{edge}</title>")))
            .unwrap_or_else(|| panic!("no edge {edge} in {svg}"));
        assert_eq!(body.contains("stroke-dasharray"), *uncertain, "{edge}");
    }
    let edges = groups.iter().filter(|(c, _)| *c == "edge").count();
    assert_eq!(edges, expected_edges.len());
}

/// Headless Chromium: loads `page` and prints the DOM once scripts ran.
fn chromium_dom(page: &Path) -> String {
    run(
        "chromium",
        &[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--allow-file-access-from-files",
            "--virtual-time-budget=15000",
            "--dump-dom",
            &format!("file://{}", page.display()),
        ],
    )
}

/// The JSON a test page left in `<pre id="result">`.
fn page_result(dom: &str) -> Json {
    let text = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .unwrap_or_else(|| panic!("the page wrote no result: {dom}"));
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Records errors from the first script on: window errors, rejected
/// promises and console.error calls.
const CATCH_ERRORS: &str = r#"<script>
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message || e)));
window.addEventListener("unhandledrejection", (e) => window.__errors.push(String(e.reason)));
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.map(String).join(" ")); __consoleError(...args); };
</script>"#;

#[test]
fn timelinejs_renders_one_slide_per_event_in_chromium() {
    let env = tricky_env();
    let data = export(&env, "timelinejs", "t.json", &[]);
    let data = std::fs::read_to_string(data).unwrap();
    let library = readers().join("node_modules/@knight-lab/timelinejs/dist");
    assert!(
        library.exists(),
        "TimelineJS is missing: install the test readers with scripts/install-test-deps"
    );
    let page = env.dir().join("timelinejs.html");
    std::fs::write(
        &page,
        format!(
            r#"<!DOCTYPE html><html><head><meta charset="utf-8">{CATCH_ERRORS}
<link rel="stylesheet" href="file://{lib}/css/timeline.css">
<script src="file://{lib}/js/timeline.js"></script></head>
<body><div id="timeline" style="width: 1000px; height: 600px"></div><pre id="result"></pre>
<script>
const data = {data};
const report = (extra) => {{
  document.getElementById("result").textContent = JSON.stringify(Object.assign({{
    slides: document.querySelectorAll(".tl-slide:not(.tl-slide-titleslide)").length,
    headlines: Array.from(document.querySelectorAll(".tl-slide:not(.tl-slide-titleslide) .tl-headline")).map((h) => h.textContent),
    errors: window.__errors,
  }}, extra));
}};
try {{
  const timeline = new TL.Timeline("timeline", data);
  timeline.on("loaded", () => setTimeout(() => report({{ loaded: true }}), 500));
}} catch (e) {{
  window.__errors.push(String(e));
  report({{ loaded: false }});
}}
</script></body></html>"#,
            lib = library.display(),
        ),
    )
    .unwrap();
    let result = page_result(&chromium_dom(&page));
    assert_eq!(result["errors"], json!([]), "{result}");
    assert_eq!(result["loaded"], true, "{result}");
    let events = timeline(&env);
    assert_eq!(result["slides"], events.len(), "{result}");
    let mut headlines: Vec<String> = result["headlines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    let mut titles: Vec<String> = events
        .iter()
        .map(|e| e["title"].as_str().unwrap().replace('\n', " "))
        .collect();
    headlines.iter_mut().for_each(|h| *h = h.replace('\n', " "));
    headlines.sort();
    titles.sort();
    assert_eq!(headlines, titles);
}

/// The facts an HTML page shows, as (entity, attr, value JSON, event,
/// uncertain), and those of `chronik state`.
fn shown(facts: &Json) -> Vec<(String, String, Json, String, bool)> {
    let mut rows: Vec<_> = facts
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let value = match &f["value"] {
                Json::String(s) if f.get("from_page").is_some() => serde_json::from_str(s).unwrap(),
                v => v.clone(),
            };
            (
                f["entity"].as_str().unwrap().to_string(),
                f["attr"].as_str().unwrap().to_string(),
                value,
                f["event"].as_str().unwrap().to_string(),
                f["uncertain"].as_bool().unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows
}

#[test]
fn html_page_shows_the_state_chronik_computes_at_the_dates_chosen_on_its_slider() {
    let env = tricky_env();
    let path = export(&env, "html", "t.html", &[]);
    let page = std::fs::read_to_string(&path).unwrap();
    // Self-contained: nothing is fetched from anywhere. (The data may cite
    // web pages; the page itself loads none.)
    let data_start = page
        .find("<script type=\"application/json\" id=\"chronik-data\">")
        .unwrap();
    let data_end = data_start + page[data_start..].find("</script>").unwrap();
    let code = format!("{}{}", &page[..data_start], &page[data_end..]);
    for fetch in [
        "src=",
        "<link",
        "@import",
        "url(",
        "fetch(",
        "XMLHttpRequest",
        "<iframe",
    ] {
        assert!(!code.contains(fetch), "the page loads something: {fetch}");
    }
    // The slider is moved as a user would, then the table is read.
    // 1 January 2019 is a stop of its own: the "2019" event may or may not
    // have happened by then.
    // Moved forwards and back again.
    let dates = ["2024-06", "2025-01-21", "2019-01-01"];
    let driver = format!(
        r##"<pre id="result"></pre><script>
const slider = document.getElementById("date");
const data = JSON.parse(document.getElementById("chronik-data").textContent);
const results = {{}};
for (const at of {dates}) {{
  const index = data.steps.findIndex((s) => s.at === at);
  slider.value = String(index);
  slider.dispatchEvent(new Event("input", {{ bubbles: true }}));
  results[at] = {{
    label: document.getElementById("date-label").textContent,
    changed: document.querySelectorAll("#state tbody tr.changed").length,
    uncertain_marks: document.querySelectorAll("#state tbody tr.uncertain .badge").length,
    facts: Array.from(document.querySelectorAll("#state tbody tr")).map((tr) => ({{
      entity: tr.dataset.entity, attr: tr.dataset.attr, value: tr.dataset.value,
      event: tr.dataset.event, uncertain: tr.dataset.uncertain === "true", from_page: true,
    }})),
  }};
}}
results.marks = document.querySelectorAll("#timeline .mark").length;
results.focusable_marks = document.querySelectorAll("#timeline .mark[tabindex='0']").length;
results.errors = window.__errors;
document.getElementById("result").textContent = JSON.stringify(results);
</script></body>"##,
        dates = serde_json::to_string(&dates).unwrap(),
    );
    let test_page = env.dir().join("driven.html");
    std::fs::write(
        &test_page,
        page.replacen("<head>", &format!("<head>{CATCH_ERRORS}"), 1)
            .replacen("</body>", &driver, 1),
    )
    .unwrap();
    let result = page_result(&chromium_dom(&test_page));
    assert_eq!(result["errors"], json!([]), "{result}");
    for at in dates {
        let state = env.json(&["state", "--at", at]);
        assert_eq!(
            shown(&result[at]["facts"]),
            shown(&state["facts"]),
            "the page at {at}"
        );
        let uncertain = state["facts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["uncertain"] == true)
            .count();
        assert_eq!(result[at]["uncertain_marks"], uncertain, "at {at}");
        assert!(result[at]["changed"].as_u64().unwrap() > 0, "at {at}");
    }
    assert_eq!(result["2024-06"]["label"], "State at June 2024");
    assert!(result["2019-01-01"]["uncertain_marks"].as_u64().unwrap() > 0);
    assert!(result["marks"].as_u64().unwrap() >= timeline(&env).len() as u64);
    assert_eq!(result["marks"], result["focusable_marks"]);
}

#[test]
fn exports_honour_known_at_and_filters() {
    let env = tricky_env();
    let before = export(&env, "csv", "before.csv", &["--known-at", "#4"]);
    let rows = python("read_csv.py", &before);
    let ids: std::collections::BTreeSet<&str> = rows.as_array().unwrap()[1..]
        .iter()
        .map(|r| r[1].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(!ids.contains("tricky-1"));
    let only = python(
        "read_csv.py",
        &export(
            &env,
            "csv",
            "only.csv",
            &["--entity", "widget", "--from", "2023"],
        ),
    );
    let ids: std::collections::BTreeSet<&str> = only.as_array().unwrap()[1..]
        .iter()
        .map(|r| r[1].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tricky-1", "tricky-2"].into_iter().collect());
    let stderr = env.fails(&["export", "--format", "jsonl", "--entity", "widget"], 2);
    assert!(stderr.contains("do not apply"), "{stderr}");
    let stderr = env.fails(&["export", "--format", "csv", "--at", "2025"], 2);
    assert!(stderr.contains("--at applies to"), "{stderr}");
    // A failed export leaves no file behind.
    env.fails(
        &[
            "export", "--format", "csv", "--entity", "nobody", "-o", "none.csv",
        ],
        2,
    );
    assert!(!env.dir().join("none.csv").exists());
}

/// Exports `env` as JSON Lines, imports it into a fresh store, and checks
/// that both stores hold the same events and answer the same at `dates`.
fn assert_round_trip(env: &Env, dates: &[String]) {
    let backup = export(env, "jsonl", "backup.jsonl", &[]);
    let restored = Env::new();
    restored.ok(&["import", &backup.display().to_string()]);
    assert_eq!(restored.json(&["log"]), env.json(&["log"]));
    assert_eq!(
        restored.json(&["timeline", "--all"]),
        env.json(&["timeline", "--all"])
    );
    for at in dates {
        let args = ["state", "--at", at.as_str()];
        assert_eq!(restored.json(&args), env.json(&args), "state at {at}");
    }
}

fn event_dates(env: &Env) -> Vec<String> {
    let mut dates: Vec<String> = timeline(env)
        .iter()
        .map(|e| e["at"].as_str().unwrap().to_string())
        .collect();
    dates.dedup();
    dates
}

#[test]
fn jsonl_round_trips_the_bundled_timeline() {
    let env = tricky_env();
    assert_round_trip(&env, &event_dates(&env));
}

#[test]
fn jsonl_round_trips_a_generated_timeline() {
    let env = Env::new();
    let generated = env.ok(&[
        "generate",
        "--events",
        "150",
        "--entities",
        "12",
        "--seed",
        "3",
    ]);
    env.ok(&["import", &env.write("g.jsonl", &generated)]);
    let dates = event_dates(&env);
    assert!(dates.len() > 100);
    assert_round_trip(&env, &dates);
}

/// Files in `dir` that an export left behind.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".chronik-export-"))
        .collect()
}

#[test]
fn an_output_file_is_replaced_whole_or_not_at_all() {
    use std::os::unix::fs::PermissionsExt;
    // One event whose long title the CSV repeats on each of its 60 rows:
    // a small store, a large export.
    let env = Env::new();
    let changes: Vec<String> = (0..60)
        .map(|i| format!("{{\"set\": \"x.a{i}\", \"value\": {i}}}"))
        .collect();
    let event = format!(
        "{{\"id\": \"long\", \"at\": \"2020\", \"title\": \"{}\", \"changes\": [{}]}}\n",
        "long title ".repeat(5_000),
        changes.join(", ")
    );
    env.ok(&["import", &env.write("long.jsonl", &event)]);
    let out = env.dir().join("out.csv");
    std::fs::write(&out, "old").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    // A file-size limit (sh counts 512-byte blocks) well below the
    // export's 3 MB, with a megabyte of room for sled to open its files:
    // the export's write fails half-way.
    let size = std::fs::metadata(env.store().join("db")).unwrap().len();
    let blocks = (size + (1 << 20)) / 512;
    let script =
        format!("ulimit -f {blocks}; exec \"$0\" --store \"$1\" export --format csv -o \"$2\"");
    let failed = Command::new("sh")
        .args(["-c", &script])
        .arg(assert_cmd::cargo::cargo_bin("chronik"))
        .arg(env.store())
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write"),
        "the export failed, not the store: {stderr}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
    assert_eq!(leftovers(env.dir()), Vec::<String>::new());
    // Without the limit it is replaced whole, keeping its permissions.
    env.ok(&["export", "--format", "csv", "-o", "out.csv"]);
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        written.len() as u64 > blocks * 512,
        "the export must outgrow the limit"
    );
    assert!(written.starts_with("seq,id,"));
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn an_output_through_a_link_or_into_a_pipe_keeps_them() {
    let env = Env::bundled();
    std::fs::write(env.dir().join("real.csv"), "old").unwrap();
    std::os::unix::fs::symlink("real.csv", env.dir().join("link.csv")).unwrap();
    env.ok(&["export", "--format", "csv", "-o", "link.csv"]);
    let link = std::fs::symlink_metadata(env.dir().join("link.csv")).unwrap();
    assert!(link.file_type().is_symlink(), "the link stays a link");
    let real = std::fs::read_to_string(env.dir().join("real.csv")).unwrap();
    assert!(real.starts_with("seq,id,"), "{real}");
    // A named pipe cannot be replaced: the export is written into it.
    let fifo = env.dir().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    env.ok(&["export", "--format", "csv", "-o", "fifo"]);
    let read = reader.join().unwrap();
    assert_eq!(read, real);
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind));
}
