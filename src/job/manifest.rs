//! A shard's manifest (`part-I-of-N.json`): which job and items its part file holds, and the
//! part file's checksum. It is written after the part file, so a manifest means a finished shard.

use super::digest;
use super::identity::{Counts, JobId};
use super::shard::Shard;
use crate::error::{Error, Result};
use crate::output::write_atomic;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// The manifest format's name and version.
pub const FORMAT: &str = "microtask-shard/1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub job: JobId,
    pub shard: Shard,
    /// The items of the part file: `start..end` of the data set.
    pub start: usize,
    pub end: usize,
    /// Vote rows (items x workers), the header not counted.
    pub rows: u64,
    /// The part file's length and sha256.
    pub bytes: u64,
    pub sha256: String,
    /// The summary counts of these items.
    pub counts: Counts,
}

impl Manifest {
    /// The manifest of a finished part file.
    pub fn of_part(
        job: JobId,
        shard: Shard,
        items: std::ops::Range<usize>,
        workers: usize,
        counts: Counts,
        part: &Path,
    ) -> Result<Manifest> {
        let bytes = std::fs::metadata(part)
            .map_err(|e| Error::io(part, e))?
            .len();
        Ok(Manifest {
            format: FORMAT.into(),
            job,
            shard,
            start: items.start,
            end: items.end,
            rows: counts.items * workers as u64,
            bytes,
            sha256: digest::file_sha256(part)?,
            counts,
        })
    }

    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let m: Manifest = serde_json::from_slice(&text)
            .map_err(|e| Error::format(path, format!("not a shard manifest: {e}")))?;
        if m.format != FORMAT {
            return Err(Error::format(
                path,
                format!("manifest format {:?}, expected {FORMAT:?}", m.format),
            ));
        }
        Ok(m)
    }

    /// Writes the manifest atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Invalid(format!("cannot encode the manifest: {e}")))?;
        text.push(b'\n');
        write_atomic(path, |w| w.write_all(&text).map_err(|e| Error::io(path, e)))
    }

    /// Whether `part` is the file this manifest describes (length, then sha256); `None` when it
    /// is, else what is wrong.
    pub fn check_part(&self, part: &Path) -> Result<Option<String>> {
        let len = match std::fs::metadata(part) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Some(format!("{} is missing", part.display())))
            }
            Err(e) => return Err(Error::io(part, e)),
        };
        if len != self.bytes {
            return Ok(Some(format!(
                "{} has {len} bytes, its manifest says {}",
                part.display(),
                self.bytes
            )));
        }
        if digest::file_sha256(part)? != self.sha256 {
            return Ok(Some(format!(
                "{} does not match its manifest's sha256 (changed since it was written)",
                part.display()
            )));
        }
        Ok(None)
    }
}
