//! `export`: the log in a format other tools read.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use chronik::formats::export::{Export, StateAt};
use chronik::formats::{csv, dot, html, ics, jsonl, markdown, timelinejs};
use chronik::state::AsOf;
use chronik::{Error, When};

use super::query::{FilterArgs, KnownAtArg, open};
use super::{parse_when, today, usage};

/// The most dates an HTML page steps through: each is a replay.
const MAX_HTML_STEPS: usize = 5_000;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The format to write.
    #[arg(long, value_enum)]
    pub format: ExportFormat,

    /// Write to this file (atomically: all of it or, on failure, nothing) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The state at this date: the graph of `dot` (default: today, UTC) and a table at the end of `markdown`.
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub at: Option<When>,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// The title of the document, calendar or page.
    #[arg(long, default_value = "chronik timeline")]
    pub title: String,

    #[command(flatten)]
    pub known_at: KnownAtArg,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Every record, lossless: seq, recorded_at, hashes and the event; `import` reads it back.
    Jsonl,
    /// One row per change (RFC 4180): seq, id, at, precision, title, entity, attr, op, value, until, tags, sources.
    Csv,
    /// A readable timeline document: a heading per year, events with changes and numbered sources.
    Markdown,
    /// TimelineJS3's JSON: one slide per event, dates only as precise as known.
    Timelinejs,
    /// iCalendar (RFC 5545): one all-day or timed VEVENT per event, UID = event id.
    Ics,
    /// Graphviz: the entities at --at as nodes, references as edges (dashed when uncertain).
    Dot,
    /// One self-contained page: an SVG timeline and a date slider showing the state at each date.
    Html,
}

pub fn export(store_path: &Path, args: ExportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(output) = &args.output {
        refuse_inside_store(output, store_path)?;
    }
    if args.format == ExportFormat::Jsonl && (args.filter.narrows() || args.at.is_some()) {
        return Err(usage(
            "--format jsonl writes every record so that import restores the store; --at, --from, --to, --entity and --tag do not apply".to_string(),
        ));
    }
    if args.at.is_some() && !matches!(args.format, ExportFormat::Markdown | ExportFormat::Dot) {
        return Err(usage(
            "--at applies to --format markdown (a state table) and dot (the graph) only; the html page has a slider for every date".to_string(),
        ));
    }
    let store = open(store_path)?;
    let snapshot = store.snapshot(args.known_at.known_at.as_ref())?;
    if args.format == ExportFormat::Jsonl {
        return emit_streamed(&args.output, out, |out, unreadable| {
            for record in snapshot.log() {
                match record {
                    Ok(record) => jsonl::write([&record], out)?,
                    Err(e) => {
                        *unreadable = Some(e);
                        break;
                    }
                }
            }
            Ok(())
        });
    }
    if matches!(args.format, ExportFormat::Csv | ExportFormat::Ics) {
        let filter = args.filter.check(&snapshot)?;
        let entries = snapshot.timeline_entries(&filter, false)?;
        return emit_streamed(&args.output, out, |out, unreadable| {
            let entries = entries.map_while(|e| e.map_err(|e| *unreadable = Some(e)).ok());
            match args.format {
                ExportFormat::Csv => csv::write_events(entries, out),
                _ => ics::write_events(&args.title, entries, out),
            }
        });
    }
    let filter = args.filter.check(&snapshot)?;
    let mut export = Export::new(args.title.clone(), snapshot.timeline(&filter, false)?);
    export.known_at = snapshot.known_at().map(|k| k.to_string());
    let state_at = |at: When| -> anyhow::Result<StateAt> {
        Ok(StateAt {
            at,
            state: snapshot.state(AsOf::new(at), &filter.entities)?,
        })
    };
    match args.format {
        ExportFormat::Dot => export.state = Some(state_at(args.at.unwrap_or_else(today))?),
        ExportFormat::Markdown => export.state = args.at.map(state_at).transpose()?,
        ExportFormat::Html => {
            let dates = export.step_dates();
            if dates.len() > MAX_HTML_STEPS {
                return Err(usage(format!(
                    "the page would step through {} dates (at most {MAX_HTML_STEPS}); choose fewer events with --from, --to, --entity or --tag",
                    dates.len()
                )));
            }
            export.steps = dates
                .into_iter()
                .map(state_at)
                .collect::<anyhow::Result<_>>()?;
        }
        _ => {}
    }
    let write = |out: &mut dyn Write| match args.format {
        ExportFormat::Jsonl | ExportFormat::Csv | ExportFormat::Ics => {
            unreachable!("written above")
        }
        ExportFormat::Markdown => markdown::write(&export, out),
        ExportFormat::Timelinejs => timelinejs::write(&export, out),
        ExportFormat::Dot => dot::write(&export, out),
        ExportFormat::Html => html::write(&export, out),
    };
    emit(&args.output, out, write)
}

/// Writes an export that reads the store as it goes, a record or an event
/// at a time, so that memory stays flat whatever the store's size. `write`
/// puts an error reading the store in its second argument and stops: the
/// export then ends with that error (with -o, no file is left; to stdout,
/// what came before it has been written).
fn emit_streamed(
    output: &Option<PathBuf>,
    out: &mut dyn Write,
    write: impl FnOnce(&mut dyn Write, &mut Option<Error>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut unreadable = None;
    let written = emit(output, out, |out| {
        write(out, &mut unreadable)?;
        match &unreadable {
            Some(e) => Err(std::io::Error::other(e.to_string())),
            None => Ok(()),
        }
    });
    match unreadable {
        Some(e) => Err(e.into()),
        None => written,
    }
}

/// Writes to `output` atomically, or to `out`.
fn emit(
    output: &Option<PathBuf>,
    out: &mut dyn Write,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    match output {
        None => write(out)?,
        Some(path) => write_atomically(path, write)?,
    }
    Ok(())
}

/// An export written into the store's own directory would overwrite or
/// litter sled's files.
fn refuse_inside_store(output: &Path, store_path: &Path) -> Result<(), Error> {
    let folder = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (Ok(folder), Ok(store)) = (folder.canonicalize(), store_path.canonicalize()) else {
        return Ok(());
    };
    if folder.starts_with(&store) {
        return Err(Error::Usage(format!(
            "-o {}: that is inside the store's own directory; write the export elsewhere",
            output.display()
        )));
    }
    Ok(())
}

/// Writes the export to `path`. A regular file (or a new one) is written
/// through a temporary file in the same folder, synced, and renamed over it
/// only once everything is written: a reader never sees half a file, and a
/// failure leaves any earlier file as it was. The new file keeps the old
/// one's permissions (a new file gets the usual ones, 0666 less the umask).
/// A symbolic link is followed, so the link stays a link. Anything else —
/// a device such as /dev/stdout, a named pipe — is written to directly, as
/// it cannot be replaced.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let io = |action: &'static str| {
        move |source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    };
    let permissions = match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => {
            return Err(io("write")(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            )));
        }
        Ok(m) if !m.is_file() => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(io("write"))?;
            let mut buffered = std::io::BufWriter::new(&mut file);
            write(&mut buffered).map_err(io("write"))?;
            return buffered.flush().map_err(io("write"));
        }
        Ok(m) => m.permissions(),
        Err(_) => std::fs::Permissions::from_mode(0o666),
    };
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::Builder::new()
        .prefix(".chronik-export-")
        .permissions(permissions.clone())
        .tempfile_in(folder)
        .map_err(io("write"))?;
    {
        let mut buffered = std::io::BufWriter::new(temporary.as_file_mut());
        write(&mut buffered).map_err(io("write"))?;
        buffered.flush().map_err(io("write"))?;
    }
    // An existing file's permissions exactly, whatever the umask.
    if std::fs::metadata(&target).is_ok() {
        std::fs::set_permissions(temporary.path(), permissions).map_err(io("write"))?;
    }
    temporary.as_file().sync_all().map_err(io("write"))?;
    temporary
        .persist(&target)
        .map_err(|e| io("replace")(e.error))?;
    Ok(())
}
