//! Aligned columns for text output.

use std::borrow::Cow;
use std::io::{self, Write};

/// A table of text cells, printed with every column as wide as its widest
/// cell (the last column is not padded); control characters are shown
/// escaped, so that one record stays on one line. Without a header
/// ([`Table::default`]), only the rows are printed.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header`.
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let header = (!self.header.is_empty()).then_some(&self.header[..]);
        let columns = columns.max(self.header.len());
        write_table(out, header, columns, &self.rows, |row, cells| {
            for (cell, text) in cells.iter_mut().zip(row) {
                cell.push_str(text);
            }
        })
    }
}

/// Writes a table of `rows` without holding the text of its cells, laid
/// out as [`Table`] says. `fill` writes a row's cells into the strings it is
/// given: one per header column, cleared before each call. It is called
/// twice for each row, once to measure the columns and once to print them.
pub fn write_rows<T>(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[T],
    fill: impl FnMut(&T, &mut [String]),
) -> io::Result<()> {
    write_table(out, Some(header), header.len(), rows, fill)
}

/// [`write_rows`] for `columns` columns, with or without a header.
fn write_table<T>(
    out: &mut dyn Write,
    header: Option<&[&str]>,
    columns: usize,
    rows: &[T],
    mut fill: impl FnMut(&T, &mut [String]),
) -> io::Result<()> {
    let mut cells = vec![String::new(); columns];
    let mut fill = |row: &T, cells: &mut [String]| {
        cells.iter_mut().for_each(String::clear);
        fill(row, cells);
    };
    let mut widths = vec![0; columns];
    for (width, name) in widths.iter_mut().zip(header.unwrap_or_default()) {
        *width = name.chars().count();
    }
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
    if let Some(header) = header {
        write_line(&mut header.iter().copied())?;
    }
    for row in rows {
        fill(row, &mut cells);
        write_line(&mut cells.iter().map(String::as_str))?;
    }
    Ok(())
}

/// A cell as shown: with control characters (newlines, tabs, ...) escaped.
fn shown(cell: &str) -> Cow<'_, str> {
    if !cell.chars().any(char::is_control) {
        return Cow::Borrowed(cell);
    }
    let mut escaped = String::with_capacity(cell.len() + 2);
    for c in cell.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

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
