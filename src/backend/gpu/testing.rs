//! Helpers for GPU tests (integration tests and benches use them too).
//!
//! A machine without any adapter skips GPU tests with a message; CI sets
//! `MICROTASK_REQUIRE_GPU=1` so that a missing adapter fails instead of skipping.

use super::{AdapterChoice, GpuBackend, GpuContext, GpuOptions};
use std::io::Write;

/// The variable that turns "no adapter" from a skip into a failure.
pub const REQUIRE_GPU_VAR: &str = "MICROTASK_REQUIRE_GPU";

/// Whether `MICROTASK_REQUIRE_GPU` asks for GPU tests to fail rather than skip.
pub fn gpu_required() -> bool {
    std::env::var(REQUIRE_GPU_VAR)
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false)
}

/// Opens any adapter (software included) for a test. Without one: panics when
/// `MICROTASK_REQUIRE_GPU=1`, else prints why `test` is skipped and returns `None`.
pub fn context_or_skip(test: &str) -> Option<GpuContext> {
    match GpuContext::new(AdapterChoice::Any) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            if gpu_required() {
                panic!("{test}: {REQUIRE_GPU_VAR} is set but no GPU adapter is usable: {e}");
            }
            // Straight to stderr, not through `eprintln!`, which the test harness captures:
            // a skip should be visible in a plain `cargo test`.
            let line = format!(
                "{test}: skipped: no GPU adapter (set {REQUIRE_GPU_VAR}=1 to make this fail)\n"
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            None
        }
    }
}

/// As `context_or_skip`, with a backend built on the context.
pub fn backend_or_skip(test: &str, opts: GpuOptions) -> Option<GpuBackend> {
    let ctx = context_or_skip(test)?;
    match GpuBackend::with_context(ctx, opts, format!("test {test}")) {
        Ok(b) => Some(b),
        Err(e) => panic!("{test}: the GPU backend does not build on the adapter found: {e}"),
    }
}
