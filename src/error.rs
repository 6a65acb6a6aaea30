//! The library's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in chunkah's library.
///
/// Variants that concern a file carry its path. The enum is non-exhaustive:
/// later stages add variants without breaking callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A backend was requested that this build or CPU cannot run.
    #[error("backend {backend} is not available: {reason}")]
    BackendUnavailable {
        /// The backend's name.
        backend: &'static str,
        /// Why it cannot run here.
        reason: String,
    },

    /// A name did not parse as a backend or algorithm.
    #[error("unknown {what} {value:?} (expected one of: {expected})")]
    UnknownName {
        /// What kind of name was expected.
        what: &'static str,
        /// What was given.
        value: String,
        /// The accepted names.
        expected: &'static str,
    },

    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An I/O error on a stream that has no path (a pipe).
    #[error("reading stream: {0}")]
    Stream(#[source] std::io::Error),

    /// The caller asked the work to stop (Ctrl-C in the CLI).
    #[error("interrupted")]
    Cancelled,

    /// A package database (dpkg, apk, pacman, rpm) has content that does not parse.
    #[error("{}:{line}: {message}", path.display())]
    PackageDb {
        /// The database file.
        path: PathBuf,
        /// The line concerned, counted from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with chunkah's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
