//! `generate`: a synthetic timeline as JSON Lines, for benchmarks and demos.

use std::io::Write;

use clap::Args;

use chronik::formats::json;
use chronik::generate::{Plan, generate};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// How many events.
    #[arg(long, default_value_t = 1000)]
    pub events: usize,

    /// How many entities they are about.
    #[arg(long, default_value_t = 100)]
    pub entities: usize,

    /// How many years they span, from 2000.
    #[arg(long, default_value_t = 20)]
    pub years: u32,

    /// The seed: the same seed gives the same timeline.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: GenerateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let plan = Plan {
        events: args.events,
        entities: args.entities,
        years: args.years,
        seed: args.seed,
    };
    for event in generate(plan) {
        serde_json::to_writer(&mut *out, &json::event(&event))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
