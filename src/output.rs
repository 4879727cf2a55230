//! Outputs that are all or nothing.
//!
//! Every output is written to a temporary file beside its final path (`.NAME.PID.tmp`), flushed
//! and fsync'd, then renamed over the final path, so a failed or killed run never leaves a
//! half-written file at a final path. A command with several outputs declares them in an
//! [`Outputs`] set: the set is checked before any work starts (folders exist and are writable, no
//! output is an input or a directory, no two outputs share a file), and [`Outputs::commit`] renames
//! every temporary file only once all of them are written.
//!
//! The one window left: the renames of a multi-output commit are separate system calls, so a
//! power cut or `kill -9` between two of them (microseconds, after every file is complete and
//! fsync'd) leaves some outputs new and some old. POSIX has no rename of several files at once.
//!
//! Symbolic links are followed (the link's target is replaced, the link stays), an existing file's
//! permissions are kept, and a name ending in `.gz` is written gzip-compressed.

use crate::error::{Error, Result};
use flate2::write::GzEncoder;
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Symbolic links followed at most, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// The writer handed to an output's `write` closure: plain, or gzip for `.gz` names.
pub struct OutputWriter {
    inner: Inner,
}

enum Inner {
    Plain(BufWriter<File>),
    Gz(Box<GzEncoder<BufWriter<File>>>),
}

impl OutputWriter {
    fn new(file: File, gz: bool) -> Self {
        let buffered = BufWriter::with_capacity(1 << 20, file);
        let inner = if gz {
            // Fast compression: outputs are big and the rest of a run is fast.
            Inner::Gz(Box::new(GzEncoder::new(
                buffered,
                flate2::Compression::fast(),
            )))
        } else {
            Inner::Plain(buffered)
        };
        OutputWriter { inner }
    }

    /// Ends the gzip stream, flushes and fsyncs: the bytes are on disk when this returns.
    fn finish(self) -> io::Result<()> {
        let buffered = match self.inner {
            Inner::Plain(w) => w,
            Inner::Gz(g) => g.finish()?,
        };
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

impl Write for OutputWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(w) => w.write(buf),
            Inner::Gz(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(w) => w.write_all(buf),
            Inner::Gz(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(w) => w.flush(),
            Inner::Gz(w) => w.flush(),
        }
    }
}

/// Whether an output named `path` is written gzip-compressed.
pub fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// The file that writing to `path` replaces: `path` itself, or the final target of a chain of
/// symbolic links (which may not exist yet).
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|e| Error::io(&p, e))?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::Usage(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}

/// `.NAME.PID.tmp` beside `target`.
fn temp_path(target: &Path) -> PathBuf {
    target.with_file_name(format!(".{}.{}.tmp", file_name(target), std::process::id()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The folder holding `path` (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    let _ = dir;
    Ok(())
}

/// Whether process `pid` is alive (any process, as far as this user can tell).
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Removes `.NAME.PID.tmp` files beside `target` left by runs that died (their pid is gone).
pub fn remove_dead_temps(target: &Path) {
    let prefix = format!(".{}.", file_name(target));
    let Ok(entries) = std::fs::read_dir(parent_dir(target)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !pid_alive(pid) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A written temporary file waiting to be renamed over its target.
struct Staged {
    tmp: PathBuf,
    target: PathBuf,
}

thread_local! {
    /// While an [`Outputs::commit`] runs on this thread, the files `write_atomic` wrote: they are
    /// renamed together when the commit's work succeeds.
    static STAGED: RefCell<Option<Vec<Staged>>> = const { RefCell::new(None) };
}

/// Writes a temporary file for `path` with `write`; fsync'd, with the permissions of the file it
/// replaces. Returns the temporary and the final (link-resolved) path.
fn write_temp<F>(path: &Path, write: F) -> Result<Staged>
where
    F: FnOnce(&mut OutputWriter) -> Result<()>,
{
    let target = resolve(path)?;
    let tmp = temp_path(&target);
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| Error::io(path, e))?;
        let mut w = OutputWriter::new(file, is_gz(&target));
        write(&mut w)?;
        w.finish().map_err(|e| Error::io(path, e))?;
        if let Ok(old) = std::fs::metadata(&target) {
            std::fs::set_permissions(&tmp, old.permissions()).map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(Staged { tmp, target }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The name of a commit record: the renames a commit of process `pid` is doing.
const COMMIT_PREFIX: &str = ".microtask-commit.";

/// Renames every staged file over its target, all or none as far as any later run can see: the
/// list of renames is first written (fsync'd) as a commit record in each target's folder, so that
/// a process killed between two renames leaves a record from which the next run that checks
/// these outputs ([`Outputs::check`]) completes the commit (see [`finish_dead_commits`]).
fn rename_all(staged: &[Staged]) -> Result<()> {
    let mut dirs: Vec<&Path> = staged.iter().map(|s| parent_dir(&s.target)).collect();
    dirs.sort();
    dirs.dedup();
    let records = if staged.len() > 1 {
        write_commit_records(staged, &dirs)?
    } else {
        Vec::new()
    };
    for (i, s) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(&s.tmp, &s.target) {
            for rest in &staged[i..] {
                let _ = std::fs::remove_file(&rest.tmp);
            }
            for r in &records {
                let _ = std::fs::remove_file(r);
            }
            return Err(Error::io(&s.target, e));
        }
    }
    for r in &records {
        let _ = std::fs::remove_file(r);
    }
    for d in dirs {
        sync_dir(d)?;
    }
    Ok(())
}

/// Writes the commit record (one `tmp\0target\n` line per file) into each of `dirs`.
fn write_commit_records(staged: &[Staged], dirs: &[&Path]) -> Result<Vec<PathBuf>> {
    let mut text = Vec::new();
    for s in staged {
        text.extend_from_slice(s.tmp.as_os_str().as_encoded_bytes());
        text.push(0);
        text.extend_from_slice(s.target.as_os_str().as_encoded_bytes());
        text.push(b'\n');
    }
    let mut records = Vec::new();
    for d in dirs {
        let path = d.join(format!("{COMMIT_PREFIX}{}", std::process::id()));
        let written = File::create(&path)
            .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
            .and_then(|()| sync_dir(d).map_err(|e| io::Error::other(e.to_string())));
        if let Err(e) = written {
            for r in &records {
                let _ = std::fs::remove_file(r);
            }
            let _ = std::fs::remove_file(&path);
            return Err(Error::io(&path, e));
        }
        records.push(path);
    }
    Ok(records)
}

/// Completes the commits of dead processes recorded in `dir`: every listed temporary file that
/// is still there is renamed over its target (each was complete and fsync'd before the record
/// was written), then the record is removed.
pub fn finish_dead_commits(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(COMMIT_PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || pid_alive(pid) {
            continue;
        }
        let Ok(text) = std::fs::read(entry.path()) else {
            continue;
        };
        for line in text.split(|&b| b == b'\n') {
            let mut parts = line.splitn(2, |&b| b == 0);
            let (Some(tmp), Some(target)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (tmp, target) = (bytes_path(tmp), bytes_path(target));
            if tmp.exists() {
                let _ = std::fs::rename(&tmp, &target);
            }
        }
        let _ = std::fs::remove_file(entry.path());
        let _ = sync_dir(dir);
    }
}

fn bytes_path(b: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(b))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(b).into_owned())
    }
}

/// Calls `write` with a buffered writer on a temporary file beside `path`; the file replaces
/// `path` only when `write`, the flush and the fsync succeed. On any error the temporary file is
/// removed. Inside [`Outputs::commit`], the rename waits for the commit.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut OutputWriter) -> Result<()>,
{
    let staged = write_temp(path, write)?;
    let staged = STAGED.with(|s| match s.borrow_mut().as_mut() {
        Some(list) => {
            list.push(staged);
            None
        }
        None => Some(staged),
    });
    match staged {
        Some(s) => rename_all(std::slice::from_ref(&s)),
        None => Ok(()),
    }
}

/// Removes the staged temporary files if a commit's work fails or panics.
struct StageGuard;

impl Drop for StageGuard {
    fn drop(&mut self) {
        let left = STAGED.with(|s| s.borrow_mut().take()).unwrap_or_default();
        for s in left {
            let _ = std::fs::remove_file(&s.tmp);
        }
    }
}

/// One declared path, with the flag that named it (for messages).
#[derive(Debug, Clone)]
struct Named {
    flag: String,
    path: PathBuf,
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.flag, self.path.display())
    }
}

/// Where a path lands once links are followed: its canonical folder and name, and the file's
/// device and inode when it exists (hard links and different spellings compare equal).
#[derive(Debug, PartialEq, Eq)]
struct Place {
    path: PathBuf,
    inode: Option<(u64, u64)>,
}

impl Place {
    fn of(path: &Path) -> Result<Place> {
        let target = resolve(path)?;
        let dir = parent_dir(&target);
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let path = match target.file_name() {
            Some(name) => dir.join(name),
            None => dir,
        };
        Ok(Place {
            inode: inode(&path),
            path,
        })
    }

    fn same(&self, other: &Place) -> bool {
        self.path == other.path || (self.inode.is_some() && self.inode == other.inode)
    }
}

fn inode(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn writable_dir(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: a valid NUL-terminated path; access() only reads it.
        unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        true
    }
}

/// The outputs of one command and the inputs they must not overwrite.
#[derive(Debug, Default)]
pub struct Outputs {
    outputs: Vec<Named>,
    /// Outputs that are folders (a shard's `--out`): created when missing.
    folders: Vec<Named>,
    inputs: Vec<Named>,
}

impl Outputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares an output file named by `flag`.
    pub fn output(&mut self, flag: &str, path: impl Into<PathBuf>) -> &mut Self {
        self.outputs.push(Named {
            flag: flag.into(),
            path: path.into(),
        });
        self
    }

    /// Declares an output folder (files are written inside it); it is created if missing.
    pub fn folder(&mut self, flag: &str, path: impl Into<PathBuf>) -> &mut Self {
        self.folders.push(Named {
            flag: flag.into(),
            path: path.into(),
        });
        self
    }

    /// Declares an input file that no output may replace. Inputs that do not exist are left for
    /// the reader to report.
    pub fn input(&mut self, flag: &str, path: impl Into<PathBuf>) -> &mut Self {
        self.inputs.push(Named {
            flag: flag.into(),
            path: path.into(),
        });
        self
    }

    /// Checks every output before any work starts; every problem is named in one
    /// [`Error::Usage`]. Temporary files of dead runs beside the outputs are removed.
    pub fn check(&self) -> Result<()> {
        let mut problems = Vec::new();
        let mut placed: Vec<(&Named, Place)> = Vec::new();
        for out in &self.outputs {
            let place = match Place::of(&out.path) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(format!("{out}: {e}"));
                    continue;
                }
            };
            if place.path.is_dir() {
                problems.push(format!("{out} is a directory, not a file"));
            } else {
                Self::check_folder(out, parent_dir(&place.path), &mut problems);
            }
            placed.push((out, place));
        }
        for dir in &self.folders {
            if dir.path.exists() && !dir.path.is_dir() {
                problems.push(format!("{dir} is a file, not a folder"));
            } else if dir.path.is_dir() {
                if !writable_dir(&dir.path) {
                    problems.push(format!("{dir}: the folder is not writable"));
                }
            } else {
                Self::check_folder(dir, parent_dir(&dir.path), &mut problems);
            }
        }
        for (i, (a, pa)) in placed.iter().enumerate() {
            for (b, pb) in &placed[..i] {
                if pa.same(pb) {
                    problems.push(format!("{b} and {a} are the same file"));
                }
            }
            for input in &self.inputs {
                if let Ok(pi) = Place::of(&input.path) {
                    if pi.inode.is_some() && pa.same(&pi) {
                        problems.push(format!("{a} would overwrite the input {input}"));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::Usage(format!(
                "nothing was done: {}",
                problems.join("; ")
            )));
        }
        for (_, place) in &placed {
            finish_dead_commits(parent_dir(&place.path));
            remove_dead_temps(&place.path);
        }
        for dir in &self.folders {
            if !dir.path.is_dir() {
                match std::fs::create_dir(&dir.path) {
                    // Another shard may have made it at the same moment.
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(Error::io(&dir.path, e))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn check_folder(out: &Named, dir: &Path, problems: &mut Vec<String>) {
        if !dir.is_dir() {
            problems.push(format!(
                "{out}: the folder {} does not exist",
                dir.display()
            ));
        } else if !writable_dir(dir) {
            problems.push(format!(
                "{out}: the folder {} is not writable",
                dir.display()
            ));
        }
    }

    /// Runs `work`, whose [`write_atomic`] calls (on this thread) only write temporary files;
    /// when `work` succeeds they are renamed over their targets together, when it fails (or
    /// panics) they are removed and no output changes.
    pub fn commit<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let nested = STAGED.with(|s| {
            let mut s = s.borrow_mut();
            let nested = s.is_some();
            if !nested {
                *s = Some(Vec::new());
            }
            nested
        });
        if nested {
            // An inner commit joins the outer one.
            return work();
        }
        let guard = StageGuard;
        let value = work()?;
        let staged = STAGED.with(|s| s.borrow_mut().take()).unwrap_or_default();
        drop(guard);
        rename_all(&staged)?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "microtask-output-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn put(path: &Path, text: &str) -> Result<()> {
        write_atomic(path, |w| {
            w.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
        })
    }

    #[test]
    fn a_commit_cut_between_two_renames_is_finished_by_the_next_check() {
        let dir = tempdir();
        let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
        put(&a, "old a").unwrap();
        put(&b, "old b").unwrap();
        // A dead process (pid u32::MAX) staged both files and renamed only the first.
        let (ta, tb) = (dir.join(".a.csv.1.tmp"), dir.join(".b.csv.1.tmp"));
        std::fs::write(&ta, "new a").unwrap();
        std::fs::write(&tb, "new b").unwrap();
        let mut record = Vec::new();
        for (t, f) in [(&ta, &a), (&tb, &b)] {
            record.extend_from_slice(t.as_os_str().as_encoded_bytes());
            record.push(0);
            record.extend_from_slice(f.as_os_str().as_encoded_bytes());
            record.push(b'\n');
        }
        std::fs::write(dir.join(format!("{COMMIT_PREFIX}{}", u32::MAX)), record).unwrap();
        std::fs::rename(&ta, &a).unwrap();
        let mut outs = Outputs::new();
        outs.output("--out", &a).output("--other", &b);
        outs.check().unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new b");
        assert!(!dir.join(format!("{COMMIT_PREFIX}{}", u32::MAX)).exists());
    }

    #[test]
    fn a_failed_commit_changes_no_output() {
        let dir = tempdir();
        let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
        put(&a, "old a").unwrap();
        put(&b, "old b").unwrap();
        let outs = Outputs::new();
        let r: Result<()> = outs.commit(|| {
            put(&a, "new a")?;
            Err(Error::Invalid("fails before b".into()))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        outs.commit(|| {
            put(&a, "new a")?;
            // Not renamed until the commit ends.
            assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
            put(&b, "new b")
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new b");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_and_permissions_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir();
        let real = dir.join("real.csv");
        put(&real, "old").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link.csv");
        std::os::unix::fs::symlink("real.csv", &link).unwrap();
        put(&link, "new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gz_names_are_compressed() {
        let dir = tempdir();
        let p = dir.join("x.csv.gz");
        put(&p, "hello").unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
        let mut text = String::new();
        io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).unwrap();
        assert_eq!(text, "hello");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temps_of_dead_runs_are_removed() {
        let dir = tempdir();
        let out = dir.join("v.csv");
        // No process has pid 4194304 + 7 (above Linux's pid_max).
        let dead = dir.join(".v.csv.4194311.tmp");
        let mine = temp_path(&out);
        std::fs::write(&dead, "x").unwrap();
        std::fs::write(&mine, "x").unwrap();
        Outputs::new().output("--out", &out).check().unwrap();
        assert!(!dead.exists());
        assert!(mine.exists(), "a live run's temp file stays");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
