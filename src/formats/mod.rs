//! Everything that turns events into text or text into events: the
//! authoring formats (TOML, JSON, JSON Lines), the JSON shapes that output
//! and exports share, and one module per export format, each walking the
//! same [`export::Export`]. No format re-implements date or value printing:
//! dates print through [`crate::When`]'s `Display`, values through
//! [`json::value`] or [`crate::Value`]'s `Display`.

pub mod csv;
pub mod dot;
pub mod export;
pub mod html;
pub mod ics;
pub mod input;
pub mod json;
pub mod jsonl;
pub mod markdown;
pub mod timelinejs;
