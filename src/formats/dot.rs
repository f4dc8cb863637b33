//! Graphviz export: the state at `--at` as a graph. Each entity is a node
//! labelled with its id and its values that are not references; each
//! reference is an edge labelled with its attribute, dashed when the fact is
//! uncertain. Entities that are only referenced are nodes too.

use std::collections::BTreeMap;
use std::io::Write;

use super::export::{Export, StateAt};
use crate::event::Value;

/// A DOT quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn write(export: &Export, out: &mut dyn Write) -> std::io::Result<()> {
    let Some(StateAt { at, state }) = &export.state else {
        return Err(std::io::Error::other("a graph needs the state at a date"));
    };
    // Node labels: the entity, then "attr: value" for each value that is not a reference.
    let mut nodes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut edges = Vec::new();
    for fact in state.facts() {
        let lines = nodes.entry(fact.entity).or_default();
        match fact.value {
            Value::Ref(target) => edges.push((fact.entity, target.as_str(), fact)),
            value => {
                let mark = if fact.provenance.uncertain {
                    " (?)"
                } else {
                    ""
                };
                lines.push(format!("{}: {value}{mark}", fact.attr));
            }
        }
    }
    for (_, target, _) in &edges {
        nodes.entry(target).or_default();
    }
    writeln!(out, "digraph chronik {{")?;
    let mut title = format!("{}: state at {}", export.title, at.human());
    if let Some(known_at) = &export.known_at {
        title += &format!(", as known at {known_at}");
    }
    writeln!(out, "  label={};", quoted(&title))?;
    writeln!(out, "  labelloc=t;")?;
    writeln!(out, "  rankdir=LR;")?;
    writeln!(
        out,
        "  node [shape=box, style=rounded, fontname=\"Helvetica\"];"
    )?;
    writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=10];")?;
    for (entity, lines) in &nodes {
        let label = std::iter::once(entity.to_string())
            .chain(lines.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n");
        writeln!(out, "  {} [label={}];", quoted(entity), quoted(&label))?;
    }
    for (from, to, fact) in &edges {
        let style = if fact.provenance.uncertain {
            ", style=dashed"
        } else {
            ""
        };
        writeln!(
            out,
            "  {} -> {} [label={}{style}];",
            quoted(from),
            quoted(to),
            quoted(fact.attr),
        )?;
    }
    writeln!(out, "}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_escape_quotes_backslashes_and_newlines() {
        assert_eq!(quoted("a \"b\" \\ c\nd"), r#""a \"b\" \\ c\nd""#);
    }
}
