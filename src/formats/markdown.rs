//! Markdown export: a timeline document a person reads. A heading per year;
//! each event with its date as precise as it is known, its title, summary,
//! the changes it made and the numbers of its sources; the state at `--at`
//! as a table, if asked; the numbered sources at the end.

use std::io::Write;

use super::export::Export;

/// Escapes the characters that Markdown would read as markup, so that text
/// reads exactly as written: inline markup, entities, and the markers that
/// start a block at the beginning of a line (lists, headings, rules, quotes).
/// Line breaks become spaces: text here is one line.
fn escape(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '!' | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    escape_block_start(out)
}

/// Escapes what would start a list, a rule or a setext heading underline at
/// the start of a line: `-`, `+`, `=`, or a number followed by `.` or `)`.
fn escape_block_start(line: String) -> String {
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    let first = line.chars().next();
    if matches!(first, Some('-' | '+' | '='))
        || (digits > 0 && matches!(line[digits..].chars().next(), Some('.' | ')')))
    {
        let at = if digits > 0 { digits } else { 0 };
        format!("{}\\{}", &line[..at], &line[at..])
    } else {
        line
    }
}

/// Text of several lines (a summary), indented to stay inside a list item:
/// each line escaped, lines of a paragraph joined by hard line breaks,
/// blank lines kept between paragraphs.
fn paragraphs(text: &str, indent: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(|line| format!("{indent}{}", escape(line)))
                .collect::<Vec<_>>()
                .join("\\\n")
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
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
        write!(out, "- **{}** — {}", event.at.human(), escape(&event.title))?;
        if !sources.is_empty() {
            let numbers: Vec<String> = sources.iter().map(|n| format!("\\[{n}\\]")).collect();
            write!(out, " {}", numbers.join(""))?;
        }
        writeln!(out)?;
        if let Some(summary) = &event.summary {
            writeln!(out)?;
            writeln!(out, "{}", paragraphs(summary, "  "))?;
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
        assert_eq!(escape("AT&amp;T"), r"AT\&amp;T");
        assert_eq!(escape("- not a list"), r"\- not a list");
        assert_eq!(escape("1. not a list"), r"1\. not a list");
        assert_eq!(escape("2024) not a list"), r"2024\) not a list");
        assert_eq!(escape("=== not a heading"), r"\=== not a heading");
        assert_eq!(escape("two\nlines"), "two lines");
        assert_eq!(
            paragraphs("one\n- two\n\nthree", "  "),
            "  one\\\n  \\- two\n\n  three"
        );
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
