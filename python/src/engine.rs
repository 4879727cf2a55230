//! Running the library from Python: without the GIL, with no panic crossing into Python, and
//! with the library's errors as the Python exceptions a user expects.

use microtask::Error;
use pyo3::exceptions::{
    PyFileNotFoundError, PyOSError, PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The library's error as a Python exception with the same message the CLI prints.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match &e {
        Error::Io { cause, .. } => match cause.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
        Error::Format { .. } | Error::Row { .. } | Error::Invalid(_) | Error::Usage(_) => {
            PyValueError::new_err(msg)
        }
        Error::Interrupted(_) => pyo3::exceptions::PyKeyboardInterrupt::new_err(msg),
        Error::Gpu(_) => PyRuntimeError::new_err(msg),
    }
}

/// Runs `f` with the GIL released. A panic inside becomes a `RuntimeError` naming it, so a bug
/// in the engine never takes the interpreter down.
pub fn run<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: Send + FnOnce() -> microtask::Result<T>,
    T: Send,
{
    let out = py.detach(move || catch_unwind(AssertUnwindSafe(f)));
    match out {
        Ok(r) => r.map_err(to_py),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!(
                "microtask engine failed (a bug, please report it): {what}"
            )))
        }
    }
}

/// A `ValueError` with `msg`.
pub fn invalid(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}
