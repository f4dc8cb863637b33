//! `import` and `append`: reading event files and writing them as one batch.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use chronik::formats::input::{InputFormat, read_event_bytes};
use chronik::store::{IdPolicy, Receipt};
use chronik::{Error, Located, OpenMode, Store};

use super::{ExpectHead, usage};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Event files (.toml, .json, .jsonl), folders (searched recursively), or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Read every file as this format, whatever its extension.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub input_format: Option<FormatArg>,
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    /// An event file, or - for standard input.
    #[arg(default_value = "-", value_name = "FILE|-")]
    pub file: PathBuf,

    /// The input's format; by default from the extension, or for stdin from the content.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub input_format: Option<FormatArg>,

    #[command(flatten)]
    pub expect: ExpectHead,
}

/// An authoring format, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Toml,
    Json,
    Jsonl,
}

impl From<FormatArg> for InputFormat {
    fn from(f: FormatArg) -> InputFormat {
        match f {
            FormatArg::Toml => InputFormat::Toml,
            FormatArg::Json => InputFormat::Json,
            FormatArg::Jsonl => InputFormat::JsonLines,
        }
    }
}

pub fn import(store_path: &Path, args: ImportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for path in &args.paths {
        collect_files(path, &mut files)?;
    }
    let mut batch = Vec::new();
    for file in &files {
        batch.extend(read_input(file, args.input_format.map(Into::into))?);
    }
    let from = plural(files.len(), "file");
    if batch.is_empty() {
        writeln!(out, "nothing to import: no events in {from}")?;
        return Ok(());
    }
    let receipt = write(store_path, &batch, IdPolicy::SkipUnchanged, None)?;
    if receipt.appended.is_empty() {
        writeln!(
            out,
            "nothing to import: all {} from {from} are already stored unchanged (head {})",
            plural(receipt.skipped.len(), "event"),
            receipt.head
        )?;
        return Ok(());
    }
    if receipt.restored {
        write!(
            out,
            "restored {} from {from} {} with their original times and hashes",
            plural(receipt.appended.len(), "record"),
            seq_range(&receipt)
        )?;
    } else {
        write!(
            out,
            "imported {} from {from} {}",
            plural(receipt.appended.len(), "event"),
            seq_range(&receipt)
        )?;
    }
    if !receipt.skipped.is_empty() {
        write!(out, "; {} already stored unchanged", receipt.skipped.len())?;
    }
    writeln!(out, "; the head is now {}", receipt.head)?;
    Ok(())
}

pub fn append(store_path: &Path, args: AppendArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let batch = read_input(&args.file, args.input_format.map(Into::into))?;
    if batch.is_empty() {
        let input = match args.file.as_os_str() == "-" {
            true => "<stdin>".to_string(),
            false => name(&args.file),
        };
        return Err(usage(format!("{input}: no events to append")));
    }
    append_batch(store_path, &batch, args.expect.expect_head, out)
}

/// Appends a batch strictly (every id new) and reports what it did.
pub fn append_batch(
    store_path: &Path,
    batch: &[Located],
    expect_head: Option<u64>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let receipt = write(store_path, batch, IdPolicy::RequireNew, expect_head)?;
    writeln!(
        out,
        "appended {} {}; the head is now {}",
        plural(receipt.appended.len(), "event"),
        seq_range(&receipt),
        receipt.head
    )?;
    Ok(())
}

/// Writes a batch, creating the store if there is none. A store created
/// here is removed again if the batch fails, so that a refused first write
/// leaves nothing behind.
fn write(
    store_path: &Path,
    batch: &[Located],
    policy: IdPolicy,
    expect_head: Option<u64>,
) -> Result<Receipt, Error> {
    let existed = store_path.exists();
    let store = Store::open(store_path, OpenMode::CreateIfMissing)?;
    let result = store.write(batch, policy, expect_head, chrono::Utc::now());
    drop(store);
    if result.is_err() && !existed {
        // Best effort: the error about the batch matters more than this.
        let _ = std::fs::remove_dir_all(store_path);
    }
    result
}

fn seq_range(receipt: &Receipt) -> String {
    match (receipt.appended.first(), receipt.appended.last()) {
        (Some((first, _)), Some((last, _))) if first != last => format!("(seq {first}-{last})"),
        (Some((first, _)), _) => format!("(seq {first})"),
        _ => String::new(),
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn name(path: &Path) -> String {
    path.display().to_string()
}

/// Reads a file, or standard input for `-` (its format recognised from
/// the content unless given).
fn read_input(path: &Path, format: Option<InputFormat>) -> anyhow::Result<Vec<Located>> {
    if path.as_os_str() != "-" {
        return read_file(path, format);
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            action: "read",
            path: "standard input".into(),
            source,
        })?;
    let format = format.unwrap_or_else(|| InputFormat::sniff(&String::from_utf8_lossy(&bytes)));
    Ok(read_event_bytes(&bytes, format, "<stdin>")?)
}

/// Reads one event file; its format comes from `format` or its extension.
fn read_file(path: &Path, format: Option<InputFormat>) -> anyhow::Result<Vec<Located>> {
    let format = format.or_else(|| InputFormat::from_path(path)).ok_or_else(|| {
        usage(format!(
            "{}: cannot tell the format; name the file .toml, .json or .jsonl, or give --input-format",
            name(path)
        ))
    })?;
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(read_event_bytes(&bytes, format, &name(path))?)
}

/// Adds `path` (a file) or the event files below it (a folder, searched
/// recursively, sorted by path, hidden entries and links to folders
/// skipped) to `files`.
fn collect_files(path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let before = files.len();
    walk(path, files)?;
    if files.len() == before {
        return Err(usage(format!(
            "{}: no event files (.toml, .json, .jsonl) in this folder",
            name(path)
        )));
    }
    Ok(())
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let io_error = |source| Error::Io {
        action: "read the folder",
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // Symbolic links to folders are not followed (they can loop).
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        if path.is_dir() && !is_link {
            walk(&path, files)?;
        } else if path.is_file() && InputFormat::from_path(&path).is_some() {
            files.push(path);
        }
    }
    Ok(())
}
