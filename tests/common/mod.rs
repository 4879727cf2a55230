//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The shared data folder: `MICROTASK_SHARED_DATA`, else `../shared/data` beside the project.
pub fn shared_data_dir() -> PathBuf {
    std::env::var_os("MICROTASK_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

/// The shared data folder. Panics (fails the test) when missing: these tests need the real data.
pub fn shared_data() -> PathBuf {
    let dir = shared_data_dir();
    assert!(
        dir.is_dir(),
        "shared data not found at {} (set MICROTASK_SHARED_DATA)",
        dir.display()
    );
    dir
}

/// A CI run (`MICROTASK_REQUIRE_GPU=1` or `CI=true`): what a developer's machine may skip
/// (no adapter, no shared data) fails there instead.
pub fn in_ci() -> bool {
    let set =
        |var: &str| std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    microtask::backend::gpu::testing::gpu_required() || set("CI")
}

/// `rel` under the shared data folder. When it is missing: panics in CI, else prints why `test`
/// is skipped and returns `None`.
pub fn shared_file_or_skip(test: &str, rel: &str) -> Option<PathBuf> {
    let path = shared_data_dir().join(rel);
    if path.exists() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "{test}: {} not found (set MICROTASK_SHARED_DATA); CI needs the shared data",
        path.display()
    );
    // Straight to stderr: the harness captures `eprintln!`, and a skip should be visible.
    let line = format!("{test}: skipped: {} not found\n", path.display());
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
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
    assert_failure_with(o, 1, needles);
}

/// Asserts a run was refused as a usage error (exit 2) with a one-line error mentioning every
/// `needles`, and no panic.
pub fn assert_usage_failure(o: &Output, needles: &[&str]) {
    assert_failure_with(o, 2, needles);
}

fn assert_failure_with(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}; stderr: {err}"
    );
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
