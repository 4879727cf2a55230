//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// `../shared/data` beside the project, or `MICROTASK_SHARED_DATA`. Panics (fails the test)
/// when missing: these tests need the real data.
pub fn shared_data() -> PathBuf {
    let dir = std::env::var_os("MICROTASK_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    assert!(
        dir.is_dir(),
        "shared data not found at {} (set MICROTASK_SHARED_DATA)",
        dir.display()
    );
    dir
}

pub fn mnist(name: &str) -> String {
    shared_data().join("mnist").join(name).display().to_string()
}

/// Runs the built `microtask` binary.
pub fn microtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_microtask"))
        .args(args)
        .output()
        .expect("the microtask binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a run failed with exit 1, a one-line error mentioning every `needles`, and no panic.
pub fn assert_clean_failure(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "expected exit 1; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    // The last error line is ours: Mesa may print its own `error: XDG_RUNTIME_DIR...` first.
    let line = err
        .lines()
        .rfind(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line in: {err}"));
    for n in needles {
        assert!(
            line.contains(n),
            "error line {line:?} does not mention {n:?}"
        );
    }
}

/// A fresh temporary folder.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}
