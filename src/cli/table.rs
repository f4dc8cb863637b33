//! Aligned columns for text output.

use std::io::{self, Write};

/// A table of text cells, printed with every column as wide as its widest
/// cell (the last column is not padded).
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header`.
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row; control characters are shown escaped so that one record
    /// stays on one line.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| one_line(&c)).collect());
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Writes a table of `rows` too large to hold as text, laid out as
/// [`Table`] does. `fill` writes a row's cells into the strings it is
/// given: one per header column, cleared before each call. It is called
/// twice for each row, once to measure the columns and once to print them.
pub fn write_rows<T>(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[T],
    mut fill: impl FnMut(&T, &mut [String]),
) -> io::Result<()> {
    let mut cells = vec![String::new(); header.len()];
    let mut fill = |row: &T, cells: &mut [String]| {
        cells.iter_mut().for_each(String::clear);
        fill(row, cells);
    };
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        fill(row, &mut cells);
        for (width, cell) in widths.iter_mut().zip(&cells) {
            *width = (*width).max(shown(cell).chars().count());
        }
    }
    let mut line = String::new();
    let mut write_line = |cells: &mut dyn Iterator<Item = &str>| {
        line.clear();
        for (i, cell) in cells.enumerate() {
            let cell = shown(cell);
            line.push_str(&cell);
            if i + 1 < widths.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let kept = line.trim_end().len();
        line.truncate(kept);
        line.push('\n');
        out.write_all(line.as_bytes())
    };
    write_line(&mut header.iter().copied())?;
    for row in rows {
        fill(row, &mut cells);
        write_line(&mut cells.iter().map(String::as_str))?;
    }
    Ok(())
}

/// A cell as shown: with control characters escaped, as [`one_line`] does.
fn shown(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.chars().any(char::is_control) {
        one_line(cell).into()
    } else {
        cell.into()
    }
}

/// Escapes control characters (newlines, tabs, ...) so text stays on one line.
fn one_line(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_written_in_two_passes_look_like_a_table() {
        let rows = [
            ["long cell", "x", "last"],
            ["é", "two\nlines", ""],
            ["", "", "tab\there"],
        ];
        let header = ["A", "BB", "C"];
        let mut table = Table::new(&header);
        for row in &rows {
            table.row(row.iter().map(|c| c.to_string()).collect());
        }
        let mut held = Vec::new();
        table.write(&mut held).unwrap();
        let mut streamed = Vec::new();
        write_rows(&mut streamed, &header, &rows, |row, cells| {
            for (cell, text) in cells.iter_mut().zip(row) {
                cell.push_str(text);
            }
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(streamed).unwrap(),
            String::from_utf8(held).unwrap()
        );
    }

    #[test]
    fn columns_align_to_the_widest_cell() {
        let mut table = Table::new(&["A", "BB", "C"]);
        table.row(vec!["long cell".into(), "x".into(), "last".into()]);
        table.row(vec!["é".into(), "two\nlines".into(), "".into()]);
        let mut out = Vec::new();
        table.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A          BB          C\nlong cell  x           last\né          two\\nlines\n"
        );
    }
}
