//! `diff` and `history`: what changed between two dates, and how one
//! entity changed over time.

use std::io::Write;
use std::path::Path;

use clap::Args;
use serde_json::{Value as Json, json};

use chronik::diff::FactChange;
use chronik::formats::json as shapes;
use chronik::history::HistoryRow;
use chronik::state::Provenance;
use chronik::{AsOf, Value, When};

use super::query::{
    KnownAtArg, known_at_json, known_at_text, open, print_json, print_json_streaming,
};
use super::table::Table;
use super::{Format, parse_when, usage};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier date (the state at its end).
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub from: When,

    /// The later date (the state at its end).
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub to: When,

    /// Only facts about this entity (repeatable).
    #[arg(long = "entity", value_name = "ENTITY")]
    pub entities: Vec<String>,

    /// Leave out events whose date is coarser than the question, at both dates.
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub known_at: KnownAtArg,

    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The entity's id.
    pub entity: String,

    /// Only this attribute.
    #[arg(long, value_name = "ATTR")]
    pub attr: Option<String>,

    #[command(flatten)]
    pub known_at: KnownAtArg,

    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn diff(store_path: &Path, args: DiffArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.from.end() > args.to.end() {
        return Err(usage(format!(
            "--from {} is later than --to {}; give the earlier date first",
            args.from, args.to
        )));
    }
    let (from, to) = (
        AsOf {
            at: args.from,
            strict: args.strict,
        },
        AsOf {
            at: args.to,
            strict: args.strict,
        },
    );
    let store = open(store_path)?;
    let snapshot = store.snapshot(args.known_at.known_at.as_ref())?;
    snapshot.check_entities(&args.entities)?;
    let changes = snapshot.diff(from, to, &args.entities)?;
    match args.format {
        Format::Json => {
            let value = |side: &Option<(Value, Provenance)>| {
                side.as_ref().map_or(Json::Null, |(v, _)| shapes::value(v))
            };
            let changes = changes.iter().map(|c| {
                Ok(json!({
                    "entity": c.entity,
                    "attr": c.attr,
                    "kind": c.kind.name(),
                    "before": value(&c.before),
                    "after": value(&c.after),
                    "events": c.events,
                }))
            });
            print_json_streaming(
                out,
                &[
                    ("from", json!(args.from.to_string())),
                    ("to", json!(args.to.to_string())),
                    ("known_at", known_at_json(&snapshot)),
                    ("strict", json!(args.strict)),
                ],
                "changes",
                changes,
            )
        }
        Format::Text => {
            let heading = format!(
                "Changes from {} to {}{}{}",
                args.from,
                args.to,
                if args.strict { ", strict" } else { "" },
                known_at_text(&snapshot)
            );
            if changes.is_empty() {
                writeln!(out, "{heading}: none.")?;
                return Ok(());
            }
            writeln!(out, "{heading}: {}", changes.len())?;
            writeln!(out)?;
            diff_table(&changes).write(out)?;
            if changes.iter().any(has_uncertain) {
                writeln!(out)?;
                writeln!(
                    out,
                    "? uncertain: an event dated more coarsely than the question set or removed the fact, so it may or may not hold then."
                )?;
            }
            Ok(())
        }
    }
}

fn has_uncertain(c: &FactChange) -> bool {
    [&c.before, &c.after]
        .into_iter()
        .flatten()
        .any(|(_, p)| p.uncertain)
}

fn diff_table(changes: &[FactChange]) -> Table {
    let side = |side: &Option<(Value, Provenance)>| match side {
        None => String::new(),
        Some((v, p)) if p.uncertain => format!("{v} ?"),
        Some((v, _)) => v.to_string(),
    };
    let mut table = Table::new(&["ENTITY", "ATTRIBUTE", "CHANGE", "BEFORE", "AFTER", "EVENTS"]);
    for c in changes {
        table.row(vec![
            c.entity.clone(),
            c.attr.clone(),
            c.kind.name().to_string(),
            side(&c.before),
            side(&c.after),
            c.events.join(", "),
        ]);
    }
    table
}

pub fn history(store_path: &Path, args: HistoryArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open(store_path)?;
    let snapshot = store.snapshot(args.known_at.known_at.as_ref())?;
    let rows = snapshot.history(&args.entity, args.attr.as_deref())?;
    match args.format {
        Format::Json => {
            let rows: Vec<Json> = rows.iter().map(history_json).collect();
            print_json(
                out,
                &json!({
                    "entity": args.entity,
                    "attr": args.attr,
                    "known_at": known_at_json(&snapshot),
                    "changes": rows,
                }),
            )
        }
        Format::Text => {
            let subject = match &args.attr {
                Some(attr) => format!("{}.{attr}", args.entity),
                None => args.entity.clone(),
            };
            let heading = format!("History of {subject}{}", known_at_text(&snapshot));
            if rows.is_empty() {
                writeln!(out, "{heading}: no changes.")?;
                return Ok(());
            }
            writeln!(
                out,
                "{heading}: {} change{}",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            )?;
            writeln!(out)?;
            let with_until = rows.iter().any(|r| r.until.is_some());
            let mut header = vec!["AT", "ATTRIBUTE", "CHANGE", "VALUE"];
            if with_until {
                header.push("UNTIL");
            }
            header.push("EVENT");
            let mut table = Table::new(&header);
            for r in &rows {
                let mut row = vec![
                    r.at.to_string(),
                    r.attr.clone(),
                    r.op.name().to_string(),
                    r.value.as_ref().map(Value::to_string).unwrap_or_default(),
                ];
                if with_until {
                    row.push(r.until.map(|u| u.to_string()).unwrap_or_default());
                }
                row.push(r.event.clone());
                table.row(row);
            }
            table.write(out)?;
            Ok(())
        }
    }
}

fn history_json(r: &HistoryRow) -> Json {
    json!({
        "seq": r.seq,
        "event": r.event,
        "at": r.at.to_string(),
        "attr": r.attr,
        "op": r.op.name(),
        "value": r.value.as_ref().map_or(Json::Null, shapes::value),
        "until": r.until.map(|u| u.to_string()),
    })
}
