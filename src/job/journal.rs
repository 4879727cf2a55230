//! The journal of a long classify run: which chunks of its output are committed.
//!
//! While a run writes `OUT`, the rows go to `.OUT.partial` and the journal `.OUT.journal`
//! beside it holds one JSON line naming the job, then one JSON line per commit: the item reached,
//! the partial file's length at that point and the summary counts. A commit fsyncs the partial file
//! first, then appends its line and fsyncs the journal, so every line it holds describes bytes that
//! are on disk; a line torn by a crash is ignored. Resuming truncates the partial file to the last
//! commit's length and goes on from its item. The journal is locked (`flock`) while a run holds it,
//! so a second run on the same output is refused while the first is alive, and a dead run's lock
//! is gone with it.

use super::identity::{Counts, JobId};
use crate::error::{Error, Result};
use crate::output::{parent_dir, sync_dir};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The journal's first line: which job, which items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub journal: u32,
    pub job: JobId,
    /// The items this output covers (a shard's, or all).
    pub start: usize,
    pub end: usize,
}

/// One commit: items before `end` are in the first `bytes` bytes of the partial file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub end: usize,
    pub bytes: u64,
    pub counts: Counts,
}

/// `.NAME.journal` beside `target`.
pub fn journal_path(target: &Path) -> PathBuf {
    beside(target, "journal")
}

/// `.NAME.partial` beside `target`: the output while it is written.
pub fn partial_path(target: &Path) -> PathBuf {
    beside(target, "partial")
}

fn beside(target: &Path, what: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{what}"))
}

/// An open, locked journal.
pub struct Journal {
    path: PathBuf,
    file: File,
}

/// Takes the journal's lock, or says that another live run holds it.
fn lock(file: &File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this File owns; released when the file closes (or the
        // process dies).
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Error::Usage(format!(
                    "{}: another microtask run (still running) is writing this output",
                    path.display()
                ))
            } else {
                Error::io(path, e)
            });
        }
    }
    let _ = (file, path);
    Ok(())
}

impl Journal {
    /// Starts a journal at `path` with its header line, durable before any row is written.
    pub fn create(path: &Path, header: &Header) -> Result<Journal> {
        let io = |e| Error::io(path, e);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        lock(&file, path)?;
        let mut journal = Journal {
            path: path.to_path_buf(),
            file,
        };
        journal.append_line(header)?;
        sync_dir(parent_dir(path))?;
        Ok(journal)
    }

    /// Opens an existing journal: its header and last whole commit.
    pub fn open(path: &Path) -> Result<(Journal, Header, Option<Commit>)> {
        let io = |e| Error::io(path, e);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        lock(&file, path)?;
        let mut lines = BufReader::new(&file).lines();
        let header: Header = match lines.next() {
            Some(Ok(line)) => serde_json::from_str(&line)
                .map_err(|e| Error::format(path, format!("not a microtask journal: {e}")))?,
            _ => return Err(Error::format(path, "an empty journal")),
        };
        let mut last: Option<Commit> = None;
        for line in lines {
            // A torn last line (a crash while appending) is not a commit.
            let Ok(line) = line else { break };
            let Ok(commit) = serde_json::from_str::<Commit>(&line) else {
                break;
            };
            last = Some(commit);
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
            },
            header,
            last,
        ))
    }

    fn append_line<T: Serialize>(&mut self, value: &T) -> Result<()> {
        let mut line = serde_json::to_vec(value)
            .map_err(|e| Error::Invalid(format!("cannot encode a journal line: {e}")))?;
        line.push(b'\n');
        let io = |e| Error::io(&self.path, e);
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// Records a commit. The caller has made the partial file's first `commit.bytes` durable.
    pub fn commit(&mut self, commit: &Commit) -> Result<()> {
        self.append_line(commit)
    }

    /// Removes the journal once its output is at its final path.
    pub fn remove(self) -> Result<()> {
        std::fs::remove_file(&self.path).map_err(|e| Error::io(&self.path, e))?;
        sync_dir(parent_dir(&self.path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Header {
    pub fn new(job: JobId, items: &Range<usize>) -> Header {
        Header {
            journal: 1,
            job,
            start: items.start,
            end: items.end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_not_a_commit_and_the_lock_holds() {
        let dir = std::env::temp_dir().join(format!("microtask-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = journal_path(&dir.join("v.csv"));
        let _ = std::fs::remove_file(&path);
        let job = JobId {
            version: "0".into(),
            model_sha256: "m".into(),
            model_name: "m".into(),
            resize: false,
            data: "d".into(),
            items: 10,
            chunk_items: 5,
        };
        let header = Header::new(job, &(0..10));
        let mut j = Journal::create(&path, &header).unwrap();
        let c = Commit {
            end: 5,
            bytes: 100,
            counts: Counts::default(),
        };
        j.commit(&c).unwrap();
        // Another open of the same journal is refused while this one holds it.
        let held = Journal::open(&path).err().map(|e| e.to_string());
        assert!(held.is_some_and(|e| e.contains("still running")));
        j.file.write_all(b"{\"end\":10,\"by").unwrap();
        drop(j);
        let (j, h, last) = Journal::open(&path).unwrap();
        assert_eq!(h, header);
        assert_eq!(last, Some(c));
        j.remove().unwrap();
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
