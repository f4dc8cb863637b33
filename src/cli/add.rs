//! `add`: one event written as flags.
//!
//! Changes apply in the order written, so the flags are put back in
//! command-line order from clap's indices; `--until` belongs to the
//! `--set` or `--add` just before it.

use std::io::Write;
use std::path::Path;

use clap::{ArgMatches, Args};

use chronik::event::parse_target;
use chronik::{Change, Event, Located, Op, Origin, Source, Value, When};

use super::{ExpectHead, parse_when, usage, write::append_batch};

pub const AFTER_HELP: &str = "\
Values (ENTITY.ATTR=VALUE):
  @oracle           a reference to the entity oracle
  42, -7            an integer
  1.5               a float
  true, false       a bool
  date:2030         a date, at any precision
  500000000000USD   an amount; the unit is upper-case letters (1.5 GW works too)
  text:42           the text \"42\" (text: keeps any value as text)
  anything else     text

--until WHEN follows a --set or --add: that fact holds through the end of WHEN.
--source takes a URL, or fields separated by semicolons:
  'title=...; publisher=...; url=...; published=2025-01'

Example:
  chronik add --id stargate-announced-2025 --at 2025-01-21 --title \"Stargate\" \\
    --set stargate.kind=\"joint venture\" --add stargate.partners=@openai \\
    --set stargate.planned_investment=500000000000USD \\
    --source 'publisher=heise online'";

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The event's id: a-z, 0-9 and -_. (starting with a letter or digit).
    #[arg(long)]
    pub id: String,

    /// When it happened: YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 timestamp.
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub at: When,

    /// A one-line title.
    #[arg(long)]
    pub title: String,

    /// Longer text.
    #[arg(long)]
    pub summary: Option<String>,

    /// A label (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// A citation: a URL, or 'title=...; publisher=...; url=...; published=WHEN' (repeatable).
    #[arg(long = "source", value_name = "SOURCE")]
    pub sources: Vec<String>,

    /// Give a single-valued attribute a value (repeatable).
    #[arg(long, value_name = "ENTITY.ATTR=VALUE")]
    pub set: Vec<String>,

    /// Remove a single-valued attribute's value (repeatable).
    #[arg(long, value_name = "ENTITY.ATTR")]
    pub unset: Vec<String>,

    /// Add a value to a set-valued attribute (repeatable).
    #[arg(long, value_name = "ENTITY.ATTR=VALUE")]
    pub add: Vec<String>,

    /// Remove a value from a set-valued attribute (repeatable).
    #[arg(long, value_name = "ENTITY.ATTR=VALUE")]
    pub remove: Vec<String>,

    /// End the preceding --set or --add after this date (inclusive).
    #[arg(long, value_name = "WHEN")]
    pub until: Vec<String>,

    #[command(flatten)]
    pub expect: ExpectHead,
}

pub fn run(
    store_path: &Path,
    args: AddArgs,
    matches: &ArgMatches,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let event = Event {
        changes: changes_in_order(matches)?,
        sources: args
            .sources
            .iter()
            .map(|s| parse_source(s))
            .collect::<anyhow::Result<_>>()?,
        id: args.id.into(),
        at: args.at,
        title: args.title,
        summary: args.summary,
        tags: args.tags,
        corrects: Vec::new(),
    };
    let origin = Origin {
        file: "command line".into(),
        number: 0,
        line: None,
        id: Some(event.id.clone()),
    };
    append_batch(
        store_path,
        &[Located::new(event, origin)],
        args.expect.expect_head,
        out,
    )
}

/// The change flags and `--until`s, in the order they were written.
fn changes_in_order(matches: &ArgMatches) -> anyhow::Result<Vec<Change>> {
    let mut flags: Vec<(usize, &str, &str)> = Vec::new();
    for flag in ["set", "unset", "add", "remove", "until"] {
        let (Some(indices), Some(values)) =
            (matches.indices_of(flag), matches.get_many::<String>(flag))
        else {
            continue;
        };
        flags.extend(indices.zip(values).map(|(i, v)| (i, flag, v.as_str())));
    }
    flags.sort_by_key(|(i, _, _)| *i);
    let mut changes: Vec<Change> = Vec::new();
    for (_, flag, text) in flags {
        if flag == "until" {
            let until = parse_when(text).map_err(|e| usage(format!("--until {text}: {e}")))?;
            let slot = match changes.last_mut().map(|c| &mut c.op) {
                Some(Op::Set { until, .. } | Op::Add { until, .. }) if until.is_none() => until,
                _ => {
                    return Err(usage(format!(
                        "--until {text} must follow a --set or --add (one --until each)"
                    )));
                }
            };
            *slot = Some(until);
            continue;
        }
        let fail = |message: String| usage(format!("--{flag} {text}: {message}"));
        let (target, value) = match flag {
            "unset" => (text, None),
            _ => {
                let (target, literal) = text
                    .split_once('=')
                    .ok_or_else(|| fail("write ENTITY.ATTR=VALUE".into()))?;
                (target, Some(Value::parse_literal(literal).map_err(fail)?))
            }
        };
        let (entity, attr) = parse_target(target).map_err(|m| fail(format!("\"{target}\" {m}")))?;
        let op = match (flag, value) {
            ("set", Some(value)) => Op::Set { value, until: None },
            ("add", Some(value)) => Op::Add { value, until: None },
            ("remove", Some(value)) => Op::Remove { value },
            _ => Op::Unset,
        };
        changes.push(Change { entity, attr, op });
    }
    Ok(changes)
}

/// Parses `--source`: a bare URL, or `key=value` fields separated by `;`.
fn parse_source(text: &str) -> anyhow::Result<Source> {
    let trimmed = text.trim();
    if (trimmed.starts_with("https://") || trimmed.starts_with("http://")) && !trimmed.contains(';')
    {
        return Ok(Source {
            url: Some(trimmed.to_string()),
            ..Source::default()
        });
    }
    let mut source = Source::default();
    for field in trimmed.split(';').map(str::trim).filter(|f| !f.is_empty()) {
        let fail = |message: &str| usage(format!("--source {text:?}: {message}"));
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| fail("write a URL, or fields such as 'title=...; publisher=...'"))?;
        let value = value.trim().to_string();
        match key.trim() {
            "title" => source.title = Some(value),
            "publisher" => source.publisher = Some(value),
            "url" => source.url = Some(value),
            "published" => source.published = Some(parse_when(&value).map_err(|e| fail(&e))?),
            other => {
                return Err(fail(&format!(
                    "unknown field \"{other}\"; use title, publisher, url or published"
                )));
            }
        }
    }
    if source == Source::default() {
        return Err(usage(format!("--source {text:?} is empty")));
    }
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_from_urls_and_fields() {
        let s = parse_source("https://example.org/a").unwrap();
        assert_eq!(s.url.as_deref(), Some("https://example.org/a"));
        let s = parse_source("title=A, B; publisher=heise online; published=2025-01").unwrap();
        assert_eq!(s.title.as_deref(), Some("A, B"));
        assert_eq!(s.publisher.as_deref(), Some("heise online"));
        assert_eq!(s.published.unwrap().to_string(), "2025-01");
        assert!(
            parse_source("name=x")
                .unwrap_err()
                .to_string()
                .contains("unknown field \"name\"")
        );
        assert!(
            parse_source("published=2019-13")
                .unwrap_err()
                .to_string()
                .contains("2019-13")
        );
        assert!(
            parse_source(" ; ")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }
}
