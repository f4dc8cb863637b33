//! The library's one error type. Every message is one sentence that names
//! its culprit (file, event, field, value, store path); [`Error::kind`] says
//! whether the input, a conflict or the machine is to blame.

use std::path::PathBuf;

/// Who is to blame for an [`Error`]; the command line maps these to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is invalid: fix it and try again.
    Invalid,
    /// The input conflicts with what is stored, or another process holds the store.
    Conflict,
    /// The store or the machine failed.
    Runtime,
}

/// Everything that can go wrong in chronik.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input that breaks a rule; `origin` names the file and event.
    #[error("{origin}: {message}")]
    Input { origin: String, message: String },

    /// Invalid input that belongs to no file (a date on the command line).
    #[error("{0}")]
    Usage(String),

    /// An id that is already stored with other content.
    #[error(
        "event \"{id}\" is already stored (seq {seq}) with different content; give the new event another id"
    )]
    ChangedEvent { id: String, seq: u64 },

    /// `append` of an id that is already stored.
    #[error(
        "event \"{id}\" is already stored (seq {seq}); append only takes new ids (import skips events stored unchanged)"
    )]
    DuplicateId { id: String, seq: u64 },

    /// `--expect-head` did not match.
    #[error(
        "the store's head is {actual}, not the expected {expected}: someone appended in between; read the new events and retry"
    )]
    HeadMismatch { expected: u64, actual: u64 },

    /// An event id that the store does not hold.
    #[error("no event with id \"{0}\" in the store")]
    UnknownEvent(String),

    /// Another process holds the store's lock.
    #[error("the store at {} is in use by another process", path.display())]
    Locked { path: PathBuf },

    /// No store where one was expected.
    #[error("there is no chronik store at {} (create one with `chronik import FILE` or `chronik add`)", path.display())]
    NoStore { path: PathBuf },

    /// Something that is not a chronik store.
    #[error("{} is not a chronik store: {reason}", path.display())]
    NotAStore { path: PathBuf, reason: String },

    /// A store written by a newer chronik.
    #[error("the store at {} has format version {found}, but this chronik reads only up to version {supported}; upgrade chronik", path.display())]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// Stored bytes that do not decode or do not agree with each other.
    #[error("the store is corrupt: {0}")]
    Corrupt(String),

    /// The storage engine failed.
    #[error("the store at {} failed: {message}", path.display())]
    Storage { path: PathBuf, message: String },

    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {}", .path.display(), io_message(.source))]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// Who is to blame.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Input { .. } | Error::Usage(_) | Error::UnknownEvent(_) => ErrorKind::Invalid,
            Error::ChangedEvent { .. }
            | Error::DuplicateId { .. }
            | Error::HeadMismatch { .. }
            | Error::Locked { .. } => ErrorKind::Conflict,
            Error::NoStore { .. }
            | Error::NotAStore { .. }
            | Error::NewerFormat { .. }
            | Error::Corrupt(_)
            | Error::Storage { .. }
            | Error::Io { .. } => ErrorKind::Runtime,
        }
    }
}

/// An I/O error in words a user acts on: a full disk and a file-size limit
/// are named as such, whatever the platform calls them.
pub fn io_message(io: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match io.kind() {
        StorageFull | FileTooLarge | QuotaExceeded => {
            "the disk is full or a file-size limit is reached".to_string()
        }
        PermissionDenied => "permission denied".to_string(),
        _ => io.to_string(),
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
