//! `import` and `append`: reading event files and writing them as one batch.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use chronik::formats::input::{InputFormat, read_event_bytes, write_json_lines};
use chronik::store::{IdPolicy, Receipt, Writer};
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

/// How many events a large input is written in at a time.
const CHUNK: usize = 20_000;

pub fn import(store_path: &Path, args: ImportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for path in &args.paths {
        collect_files(path, &mut files)?;
    }
    let format = args.input_format.map(Into::into);
    let from = plural(files.len() as u64, "file");
    let receipt = write(store_path, IdPolicy::SkipUnchanged, None, |writer| {
        for file in &files {
            read_chunks(file, format, writer)?;
        }
        Ok(())
    })?;
    let Some(receipt) = receipt else {
        writeln!(out, "nothing to import: no events in {from}")?;
        return Ok(());
    };
    if receipt.appended == 0 {
        writeln!(
            out,
            "nothing to import: all {} from {from} are already stored unchanged (head {})",
            plural(receipt.skipped, "event"),
            receipt.head
        )?;
        return Ok(());
    }
    let what = if receipt.restored { "record" } else { "event" };
    write!(
        out,
        "{} {} from {from} {}",
        if receipt.restored {
            "restored"
        } else {
            "imported"
        },
        plural(receipt.appended, what),
        seq_range(&receipt)
    )?;
    if receipt.restored {
        write!(out, " with their original times and hashes")?;
    }
    if receipt.skipped > 0 {
        write!(out, "; {} already stored unchanged", receipt.skipped)?;
    }
    writeln!(out, "; the head is now {}", receipt.head)?;
    Ok(())
}

pub fn append(store_path: &Path, args: AppendArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let format = args.input_format.map(Into::into);
    let receipt = write(
        store_path,
        IdPolicy::RequireNew,
        args.expect.expect_head,
        |writer| read_chunks(&args.file, format, writer),
    )?;
    let Some(receipt) = receipt else {
        let input = match args.file.as_os_str() == "-" {
            true => "<stdin>".to_string(),
            false => name(&args.file),
        };
        return Err(usage(format!("{input}: no events to append")));
    };
    report_appended(&receipt, out)
}

/// Appends one batch strictly (every id new) and reports what it did.
pub fn append_batch(
    store_path: &Path,
    batch: &[Located],
    expect_head: Option<u64>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let receipt = write(store_path, IdPolicy::RequireNew, expect_head, |writer| {
        writer.push(batch)
    })?;
    report_appended(&receipt.expect("a batch of one event is not empty"), out)
}

fn report_appended(receipt: &Receipt, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "appended {} {}; the head is now {}",
        plural(receipt.appended, "event"),
        seq_range(receipt),
        receipt.head
    )?;
    Ok(())
}

/// Says on stderr what the user should know about a batch that is stored.
fn warn(receipt: &Receipt) {
    if let Some(warning) = &receipt.warning {
        eprintln!("chronik: warning: {warning}");
    }
}

/// Writes one batch, fed by `feed`, creating the store if there is none;
/// `None` when `feed` gave no events. A store created here is removed again
/// if the batch fails or is empty, so that nothing is left behind.
fn write(
    store_path: &Path,
    policy: IdPolicy,
    expect_head: Option<u64>,
    feed: impl FnOnce(&mut Writer<'_>) -> Result<(), Error>,
) -> Result<Option<Receipt>, Error> {
    let existed = store_path.exists();
    let store = Store::open(store_path, OpenMode::CreateIfMissing)?;
    let result = (|| {
        let mut writer = store.writer(policy, expect_head, chrono::Utc::now())?;
        feed(&mut writer)?;
        let receipt = writer.commit()?;
        warn(&receipt);
        Ok((receipt.appended + receipt.skipped > 0).then_some(receipt))
    })();
    drop(store);
    if !existed && !matches!(result, Ok(Some(_))) {
        // Best effort: the error about the batch matters more than this.
        let _ = std::fs::remove_dir_all(store_path);
    }
    result
}

fn seq_range(receipt: &Receipt) -> String {
    match receipt.first {
        Some(first) if receipt.appended > 1 => {
            format!("(seq {first}-{})", first + receipt.appended - 1)
        }
        Some(first) => format!("(seq {first})"),
        None => String::new(),
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn name(path: &Path) -> String {
    path.display().to_string()
}

/// Reads a file, or standard input for `-` (its format recognised from the
/// content unless given), and pushes its events to `writer` in chunks. JSON
/// Lines is streamed, and checked while the chunk before is staged; TOML
/// and JSON files are read whole.
fn read_chunks(path: &Path, format: Option<InputFormat>, writer: &mut Writer) -> Result<(), Error> {
    let io = |action: &'static str, source| Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|source| io("read", source))?;
        let format = format.unwrap_or_else(|| InputFormat::sniff(&String::from_utf8_lossy(&bytes)));
        return match format {
            InputFormat::JsonLines => write_json_lines(&bytes[..], "<stdin>", CHUNK, writer),
            _ => read_event_bytes(&bytes, format, "<stdin>")?
                .chunks(CHUNK)
                .try_for_each(|chunk| writer.push(chunk)),
        };
    }
    match format.or_else(|| InputFormat::from_path(path)) {
        Some(InputFormat::JsonLines) => {
            let file = std::fs::File::open(path).map_err(|source| io("read", source))?;
            write_json_lines(std::io::BufReader::new(file), &name(path), CHUNK, writer)
        }
        _ => read_file(path, format)?
            .chunks(CHUNK)
            .try_for_each(|chunk| writer.push(chunk)),
    }
}

/// Reads one event file; its format comes from `format` or its extension.
fn read_file(path: &Path, format: Option<InputFormat>) -> Result<Vec<Located>, Error> {
    let format = format.or_else(|| InputFormat::from_path(path)).ok_or_else(|| {
        Error::Usage(format!(
            "{}: cannot tell the format; name the file .toml, .json or .jsonl, or give --input-format",
            name(path)
        ))
    })?;
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    read_event_bytes(&bytes, format, &name(path))
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
