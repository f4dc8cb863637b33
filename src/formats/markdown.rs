//! Markdown export: a timeline document a person reads. A heading per year;
//! each event with its date as precise as it is known, its title, summary,
//! the changes it made and the numbers of its sources; the state at `--at`
//! as a table, if asked; the numbered sources at the end.

use std::io::Write;

use super::export::Export;

/// Escapes the characters that Markdown would read as markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text that may span lines, indented to stay inside a list item.
fn indented(text: &str, indent: &str) -> String {
    text.lines()
        .map(|line| match line.trim() {
            "" => String::new(),
            line => format!("{indent}{}", escape(line)),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn write(export: &Export, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "# {}", escape(&export.title))?;
    writeln!(out)?;
    if let Some(known_at) = &export.known_at {
        writeln!(out, "As the log stood at {}.", escape(known_at))?;
        writeln!(out)?;
    }
    if export.events.is_empty() {
        writeln!(out, "No events.")?;
        writeln!(out)?;
    }
    let citations = export.citations();
    let mut year = None;
    for (event, sources) in export.events().zip(&citations.by_event) {
        if year != Some(event.at.year()) {
            year = Some(event.at.year());
            writeln!(out, "## {}", event.at.year())?;
            writeln!(out)?;
        }
        // A title is one line: a line break in it would end the list item.
        let title = event.title.split_whitespace().collect::<Vec<_>>().join(" ");
        write!(out, "- **{}** — {}", event.at.human(), escape(&title))?;
        if !sources.is_empty() {
            let numbers: Vec<String> = sources.iter().map(|n| format!("\\[{n}\\]")).collect();
            write!(out, " {}", numbers.join(""))?;
        }
        writeln!(out)?;
        if let Some(summary) = &event.summary {
            writeln!(out)?;
            writeln!(out, "{}", indented(summary, "  "))?;
        }
        if !event.changes.is_empty() {
            writeln!(out)?;
            for change in &event.changes {
                writeln!(out, "  - {}", escape(&change.to_string()))?;
            }
        }
        writeln!(out)?;
    }
    if let Some(at) = &export.state {
        writeln!(out, "## State at {}", at.at.human())?;
        writeln!(out)?;
        if at.state.is_empty() {
            writeln!(out, "Nothing holds then.")?;
        } else {
            writeln!(out, "| Entity | Attribute | Value | Since | Event |")?;
            writeln!(out, "|---|---|---|---|---|")?;
            let mut uncertain = false;
            for fact in at.state.facts() {
                let mark = if fact.provenance.uncertain {
                    uncertain = true;
                    " ?"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "| {} | {} | {} | {}{mark} | {} |",
                    escape(fact.entity),
                    escape(fact.attr),
                    escape(&fact.value.to_string()),
                    fact.provenance.since,
                    escape(&fact.provenance.event),
                )?;
            }
            if uncertain {
                writeln!(out)?;
                writeln!(
                    out,
                    "? uncertain: an event dated more coarsely than {} set the fact, so it may or may not hold then.",
                    at.at
                )?;
            }
        }
        writeln!(out)?;
    }
    if !citations.sources.is_empty() {
        writeln!(out, "## Sources")?;
        writeln!(out)?;
        for (i, source) in citations.sources.iter().enumerate() {
            writeln!(out, "{}. {}", i + 1, escape(&source.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, entries};

    #[test]
    fn markup_in_titles_is_escaped() {
        assert_eq!(escape("a *b* [c] | d"), r"a \*b\* \[c\] \| d");
        let mut e = testing::event("a", "2024-06", &[]);
        e.title = "# not a heading".into();
        let export = Export::new("T", entries(vec![e]));
        let mut out = Vec::new();
        write(&export, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("- **June 2024** — \\# not a heading\n"),
            "{text}"
        );
    }
}
