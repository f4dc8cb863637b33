//! chronik: a timeline and event-sourcing store.
//!
//! Facts about the world change on dated events ("Microsoft invests in
//! OpenAI, 2019"). chronik keeps those events in an append-only log and
//! answers the question its users have: what was true on a given date, and
//! which event made it so?
//!
//! # Layout
//!
//! - [`when`]: partial dates ([`When`]) and the certainty rules.
//! - [`event`]: [`Event`], [`Change`], [`Value`] and validation.
//! - [`state`]: replaying events into the [`State`] at a date; pure.
//! - [`diff`], [`history`]: what changed between two dates, and how one
//!   entity changed over time; pure.
//! - [`generate`]: deterministic synthetic timelines for benchmarks.
//! - [`known_at`]: the transaction-time bound of a query (`--known-at`).
//! - [`store`]: the sled-backed log and its indexes; the only module that
//!   knows sled.
//! - [`formats`]: reading the authoring formats, JSON shapes for output.
//! - [`error`]: the one [`Error`] type.
//!
//! The library never prints, never reads the clock and never reads the
//! environment: "now" and paths are passed in.

pub mod diff;
pub mod error;
pub mod event;
pub mod formats;
pub mod generate;
pub mod history;
pub mod known_at;
mod names;
pub mod state;
pub mod store;
pub mod when;

#[cfg(test)]
mod testing;

pub use error::{Error, ErrorKind, Result};
pub use event::{Change, Event, Located, Op, Origin, Source, Validated, Value};
pub use known_at::KnownAt;
pub use state::{AsOf, State};
pub use store::{OpenMode, Store};
pub use when::{Precision, When};
