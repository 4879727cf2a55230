//! The library's error type. Every variant names the file (or input) and the problem, so the CLI can
//! print one line and exit 1.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed at the OS level.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
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
    /// The GPU could not be used or failed during a run.
    #[error("gpu: {0}")]
    Gpu(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn format(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
