//! A private `XDG_RUNTIME_DIR` when the environment has none.
//!
//! Mesa's Vulkan drivers (through libwayland) print `error: XDG_RUNTIME_DIR is invalid or not
//! set in the environment.` when wgpu looks for adapters without it, on stderr, where it reads
//! like one of our own errors. Before any thread starts, `main` points the variable at a folder
//! of this user's own (`<temp dir>/microtask-runtime-<uid>`, mode 0700), created when missing.

/// Sets `XDG_RUNTIME_DIR` to a private folder when it is unset or not an absolute path. Must run
/// before any other thread exists (it changes the process environment).
pub fn ensure() {
    let current = std::env::var_os("XDG_RUNTIME_DIR");
    if current
        .as_ref()
        .is_some_and(|v| std::path::Path::new(v).is_absolute())
    {
        return;
    }
    if let Some(dir) = private_dir() {
        std::env::set_var("XDG_RUNTIME_DIR", dir);
    }
}

/// This user's folder, mode 0700; `None` when it cannot be made safely (left to Mesa then).
#[cfg(unix)]
fn private_dir() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("microtask-runtime-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    // Only a real folder of ours that nobody else may enter (not a link someone planted).
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    let private = meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0;
    private.then_some(dir)
}

#[cfg(not(unix))]
fn private_dir() -> Option<std::path::PathBuf> {
    None
}
