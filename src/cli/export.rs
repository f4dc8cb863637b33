//! `export`: the log in a format other tools read.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use chronik::Error;
use chronik::formats::jsonl;

use super::query::{KnownAtArg, open};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The format to write.
    #[arg(long, value_enum)]
    pub format: ExportFormat,

    /// Write to this file (atomically: all of it or, on failure, nothing) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub known_at: KnownAtArg,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Every record, lossless: seq, recorded_at, hashes and the event; `import` reads it back.
    Jsonl,
}

pub fn export(store_path: &Path, args: ExportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(output) = &args.output {
        refuse_inside_store(output, store_path)?;
    }
    let store = open(store_path)?;
    let snapshot = store.snapshot(args.known_at.known_at.as_ref())?;
    let records = snapshot.log().collect::<Result<Vec<_>, _>>()?;
    let write = |out: &mut dyn Write| match args.format {
        ExportFormat::Jsonl => jsonl::write(&records, out),
    };
    match &args.output {
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

/// Writes `path` through a temporary file in the same folder, renamed over
/// `path` only once everything is written and synced: a reader never sees
/// half a file, and a failure leaves any earlier file as it was.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let io = |action: &'static str| {
        move |source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::NamedTempFile::new_in(folder).map_err(io("write"))?;
    {
        let mut buffered = std::io::BufWriter::new(temporary.as_file_mut());
        write(&mut buffered).map_err(io("write"))?;
        buffered.flush().map_err(io("write"))?;
    }
    temporary.as_file().sync_all().map_err(io("write"))?;
    temporary
        .persist(path)
        .map_err(|e| io("replace")(e.error))?;
    Ok(())
}
