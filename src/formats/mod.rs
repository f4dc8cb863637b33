//! Everything that turns events into text or text into events: the
//! authoring formats (TOML, JSON, JSON Lines) and the JSON shapes that
//! output and exports share. No format re-implements date or value printing:
//! dates print through [`crate::When`]'s `Display`, values through
//! [`json::value`] or [`crate::Value`]'s `Display`.

pub mod input;
pub mod json;
pub mod jsonl;
