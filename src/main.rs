//! The `chronik` binary: parse the arguments, run one command, map errors
//! to exit codes (0 success, 1 runtime failure, 2 invalid input, 3 conflict).
//! Everything else lives in the library and in `cli/`.

mod cli;

use std::io::{self, Write};
use std::process::ExitCode;

use chronik::{Error, ErrorKind};

/// chronik allocates many small strings while it reads and replays events;
/// mimalloc does that markedly faster than the system allocator (measured:
/// about a third off a 100,000-event import).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ignore_file_size_signal();
    no_transparent_huge_pages();
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("chronik: internal error: {message}; this is a bug in chronik, please report it");
        // A runtime failure, like any other: exit code 1, not Rust's 101.
        std::process::exit(1);
    }));

    let (args, matches) = match cli::parse() {
        Ok(parsed) => parsed,
        Err(e)
            if e.use_stderr()
                && e.kind() != clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            eprintln!("chronik: {}", cli::usage_line(&e));
            return ExitCode::from(2);
        }
        // --help and --version (success), or the whole help when no command is given.
        Err(e) => e.exit(),
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = cli::run(args, &matches, &mut out).and_then(|()| out.flush().map_err(Into::into));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = match e.downcast_ref::<Error>().map(Error::kind) {
                Some(ErrorKind::Invalid) => 2,
                Some(ErrorKind::Conflict) => 3,
                _ => 1,
            };
            eprintln!("chronik: {e}");
            ExitCode::from(code)
        }
    }
}

/// A reader that went away (`chronik log | head`) is not a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = match cause.downcast_ref::<serde_json::Error>() {
            Some(json) => json.io_error_kind(),
            None => cause.downcast_ref::<io::Error>().map(io::Error::kind),
        };
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}

/// mimalloc asks the kernel for transparent huge pages for its memory.
/// chronik frees and reuses memory in pieces far smaller than a huge page
/// (2 MiB), which the kernel then zeroes whole again and again: without huge
/// pages a million-event import peaked at 417-458 instead of 451-479 MiB,
/// with less time in the kernel (BENCHMARKS.md, "Both cores for bulk writes and `verify`"). The flag
/// holds for the process.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE sets a flag of the process and touches no
    // memory; if the kernel refuses it, nothing changes.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// A write past the file-size limit (`ulimit -f`) raises SIGXFSZ, which kills
/// the process by default; ignored, the write fails with an error chronik
/// reports like any other full disk.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal to SIG_IGN installs no handler code and is
    // done before any other thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
