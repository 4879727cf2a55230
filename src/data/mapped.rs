//! Read-only memory maps of raw data files (`memmap2`): items are read straight from the page
//! cache, with no copy. Each chunk gives its pages back (`MADV_DONTNEED`) when it is dropped, so
//! the process's resident memory stays bounded however big the file is (the page cache keeps them).

use crate::error::{Error, Result};
use memmap2::{Advice, Mmap, MmapOptions, UncheckedAdvice};
use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// A whole file mapped read-only.
pub struct Mapping {
    map: Mmap,
}

impl Mapping {
    /// Maps `path`; `None` for an empty file.
    pub fn open(path: &Path) -> Result<Option<Arc<Mapping>>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Ok(None);
        }
        // SAFETY: a read-only private mapping. Like any reader of a file, a run assumes the file
        // is not truncated or rewritten while it classifies it.
        let map = unsafe { MmapOptions::new().map_copy_read_only(&file) }
            .map_err(|e| Error::io(path, e))?;
        // Advice only: failure is harmless.
        let _ = map.advise(Advice::Sequential);
        Ok(Some(Arc::new(Mapping { map })))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Maps the pages of `range` into this process in one call (Linux 5.14+; elsewhere a no-op),
    /// which is cheaper than taking a page fault per page while computing.
    fn populate(&self, range: Range<usize>) {
        #[cfg(target_os = "linux")]
        if range.start < range.end && range.end <= self.map.len() {
            // Advice only: older kernels refuse it and the pages fault in as they are read.
            let _ =
                self.map
                    .advise_range(Advice::PopulateRead, range.start, range.end - range.start);
        }
        let _ = range;
    }

    /// Drops the resident pages wholly inside `range` from this process (they stay cached).
    fn release(&self, range: Range<usize>) {
        let page = page_size();
        let start = range.start.div_ceil(page) * page;
        let end = (range.end / page) * page;
        if start < end && end <= self.map.len() {
            // SAFETY: page-aligned pages of our own read-only private mapping, so never written:
            // a later read faults them in again from the file with the same bytes.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
}

/// The system's page size (the mapping's base is page-aligned, so offsets align with it).
fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf only reads a system constant.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
    })
}

/// A byte range of a mapping, handed out as one chunk's pixels.
pub struct MappedRange {
    map: Arc<Mapping>,
    range: Range<usize>,
}

impl MappedRange {
    /// The range, with its pages read in and mapped (see `Mapping::populate`).
    pub fn new(map: Arc<Mapping>, range: Range<usize>) -> Self {
        map.populate(range.clone());
        MappedRange { map, range }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map.bytes()[self.range.clone()]
    }
}

impl Drop for MappedRange {
    fn drop(&mut self) {
        self.map.release(self.range.clone());
    }
}
