//! The command line: clap definitions and one small function per command.
//!
//! A command parses its arguments into library values, makes one library
//! call, and prints. This is the only place that knows the terminal, the
//! clock and the environment; it never touches sled.

mod add;
mod changes;
mod export;
mod generate;
mod query;
mod table;
mod write;

use std::io::Write;
use std::path::PathBuf;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};

use chronik::{Error, When};

const ABOUT: &str =
    "A timeline store: dated events in an append-only log, replayed into the state at any date.";

const LONG_ABOUT: &str = "\
A timeline store: dated events in an append-only log, replayed into the state at any date.

chronik keeps events such as \"Microsoft invests in OpenAI (2019)\" in an append-only
log and answers what was true on a given date, and which event made it so.
Dates may be partial (2019, 2024-06, 2025-01-21); facts from events coarser than
the question are marked uncertain.";

const EXAMPLES: &str = "\
Examples:
  chronik import events/
  chronik state --at 2025-01-21
  chronik timeline --entity openai
  chronik diff --from 2024-06 --to 2025-01-21
  chronik history openai --attr cloud_providers
  chronik add --id oracle-capacity-2024 --at 2024-06 --title \"Oracle capacity\" \\
      --add openai.cloud_providers=@oracle";

#[derive(Debug, Parser)]
#[command(name = "chronik", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// The store directory.
    #[arg(
        long,
        global = true,
        env = "CHRONIK_STORE",
        default_value = "chronik.db",
        value_name = "PATH"
    )]
    pub store: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import event files or folders; events already stored unchanged are skipped.
    #[command(
        after_help = "Example:\n  chronik import events/\n  chronik import a.toml more/ b.jsonl"
    )]
    Import(write::ImportArgs),

    /// Append new events from a file or stdin; every id must be new.
    #[command(
        after_help = "Examples:\n  chronik append new.toml\n  chronik append --expect-head 4 - < new.jsonl"
    )]
    Append(write::AppendArgs),

    /// Append one event written as flags.
    #[command(after_help = add::AFTER_HELP)]
    Add(add::AddArgs),

    /// Show the facts that hold at a date, with the event behind each.
    #[command(
        after_help = "Examples:\n  chronik state --at 2025-01-21\n  chronik state --at 2019-06-01 --strict\n  chronik state --at 2024-07 --entity openai --format json"
    )]
    State(query::StateArgs),

    /// Show what changed between two dates, and which events changed it.
    #[command(
        after_help = "Examples:\n  chronik diff --from 2024-06 --to 2025-01-21\n  chronik diff --from 2019 --to 2025 --entity openai --format json"
    )]
    Diff(changes::DiffArgs),

    /// Show every change to an entity (or one attribute) in replay order.
    #[command(
        after_help = "Examples:\n  chronik history openai\n  chronik history openai --attr cloud_providers --known-at '#2'"
    )]
    History(changes::HistoryArgs),

    /// List events in replay order, optionally by date range, entity or tag.
    #[command(
        after_help = "Examples:\n  chronik timeline\n  chronik timeline --from 2024 --to 2025-01 --entity openai"
    )]
    Timeline(query::TimelineArgs),

    /// Write the timeline in a format other tools read: jsonl, csv, markdown, timelinejs, ics, dot or html.
    #[command(
        after_help = "Examples:\n  chronik export --format jsonl -o backup.jsonl\n  chronik export --format html -o timeline.html\n  chronik export --format markdown --at 2025-01-21 --entity openai\n  chronik export --format dot --at 2025-01-21 | dot -Tsvg > state.svg"
    )]
    Export(export::ExportArgs),

    /// Show one event in full.
    #[command(after_help = "Example:\n  chronik show oracle-capacity-2024")]
    Show(query::ShowArgs),

    /// List records in append order, with when each was recorded.
    #[command(after_help = "Example:\n  chronik log --format json")]
    Log(query::LogArgs),

    /// Drop and rebuild every index and checkpoint from the log, then verify.
    #[command(after_help = "Example:\n  chronik reindex")]
    Reindex(query::ReindexArgs),

    /// Write a synthetic timeline as JSON Lines (deterministic for a seed).
    #[command(
        after_help = "Example:\n  chronik generate --events 100000 --entities 10000 --years 20 --seed 7 > big.jsonl"
    )]
    Generate(generate::GenerateArgs),

    /// Check the whole store: every record, the hash chain and every index.
    #[command(
        after_help = "Example:\n  chronik verify\n\nExit code 0 when the store is sound; 1 with the first problem found."
    )]
    Verify(query::VerifyArgs),

    /// Show figures about the store: events, head, dates, entities, size.
    #[command(after_help = "Example:\n  chronik stats")]
    Stats(query::StatsArgs),
}

/// Output format of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Text,
    /// One JSON document (see DESIGN.md section 5).
    Json,
}

/// Parses the arguments. `add` needs the raw matches to keep its changes in
/// the order they were written. Help and version requests are printed as
/// clap prints them; a usage error becomes one `chronik:` line (exit code 2).
pub fn parse() -> Result<(Cli, ArgMatches), clap::Error> {
    let matches = <Cli as clap::CommandFactory>::command().try_get_matches()?;
    let cli = Cli::from_arg_matches(&matches)?;
    Ok((cli, matches))
}

/// A clap error as one sentence: its first line, without clap's `error: `.
pub fn usage_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let first: Vec<&str> = text
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let first = first.join(" ");
    let first = first.strip_prefix("error: ").unwrap_or(&first);
    format!("{first} (see --help)")
}

/// Runs one command, writing its output to `out`.
pub fn run(cli: Cli, matches: &ArgMatches, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = cli.store;
    match cli.command {
        Command::Import(args) => write::import(&store, args, out),
        Command::Append(args) => write::append(&store, args, out),
        Command::Add(args) => {
            let sub = matches
                .subcommand_matches("add")
                .expect("the add subcommand was given");
            add::run(&store, args, sub, out)
        }
        Command::State(args) => query::state(&store, args, out),
        Command::Diff(args) => changes::diff(&store, args, out),
        Command::History(args) => changes::history(&store, args, out),
        Command::Timeline(args) => query::timeline(&store, args, out),
        Command::Show(args) => query::show(&store, args, out),
        Command::Export(args) => export::export(&store, args, out),
        Command::Log(args) => query::log(&store, args, out),
        Command::Stats(args) => query::stats(&store, args, out),
        Command::Verify(args) => query::verify(&store, args, out),
        Command::Generate(args) => generate::run(args, out),
        Command::Reindex(args) => query::reindex(&store, args, out),
    }
}

/// Parses a date given on the command line.
fn parse_when(text: &str) -> Result<When, String> {
    When::parse(text).map_err(|e| e.to_string())
}

/// Parses `--known-at`.
fn parse_known_at(text: &str) -> Result<chronik::KnownAt, String> {
    chronik::KnownAt::parse(text)
}

/// Today's date in UTC: the default question of `state`.
fn today() -> When {
    When::day(chrono::Utc::now().date_naive())
}

/// An invalid-input error for something given on the command line.
fn usage(message: impl Into<String>) -> anyhow::Error {
    Error::Usage(message.into()).into()
}

/// Args shared by every write: optimistic concurrency.
#[derive(Debug, Args)]
pub struct ExpectHead {
    /// Refuse (exit code 3) unless the store's head seq is exactly N.
    #[arg(long, value_name = "N")]
    pub expect_head: Option<u64>,
}
