//! The library's error type. Every variant names the file (or input) and the problem, so the CLI can
//! print one line; it exits 2 on [`Error::Usage`], [`INTERRUPTED_EXIT`] on [`Error::Interrupted`]
//! and 1 on the rest.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed at the OS level. The OS error is part of the message and
    /// not a `source`, so that a printed cause chain names it once.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A file was read but its contents are not what the format says.
    #[error("{path}: {problem}")]
    Format { path: PathBuf, problem: String },
    /// A CSV file has a bad row; `line` is 1-based, as an editor shows it.
    #[error("{path}:{line}: {problem}")]
    Row {
        path: PathBuf,
        line: u64,
        problem: String,
    },
    /// The arguments or data do not fit together (dimensions, class counts, limits).
    #[error("{0}")]
    Invalid(String),
    /// The command cannot work as asked, found before any work: outputs that clash with inputs or
    /// with each other, a missing folder, a stale journal. Nothing was changed.
    #[error("{0}")]
    Usage(String),
    /// A job stopped early on request (SIGINT, SIGTERM) after committing its work; running it
    /// again with `--resume` continues it.
    #[error("{0}")]
    Interrupted(String),
    /// The GPU could not be used or failed during a run.
    #[error("gpu: {0}")]
    Gpu(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }

    pub fn format(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// The exit code of a job stopped by SIGINT or SIGTERM with its work committed: EX_TEMPFAIL
/// from sysexits.h ("try again"): rerun with `--resume`.
pub const INTERRUPTED_EXIT: u8 = 75;

pub type Result<T, E = Error> = std::result::Result<T, E>;
