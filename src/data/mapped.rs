//! Read-only memory maps of raw data files: items are read straight from the page cache, with
//! no copy. Each chunk gives its pages back (`MADV_DONTNEED`) when it is dropped, so the
//! process's resident memory stays bounded however big the file is (the page cache keeps them).

use crate::error::{Error, Result};
use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// A whole file mapped read-only.
pub struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and lives until `Drop`; shared reads from threads are sound.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `path`; `None` for an empty file.
    pub fn open(path: &Path) -> Result<Option<Arc<Mapping>>> {
        use std::os::fd::AsRawFd;
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len() as usize;
        if len == 0 {
            return Ok(None);
        }
        // SAFETY: a fresh read-only private mapping of an open file descriptor; the result is
        // checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::io(path, std::io::Error::last_os_error()));
        }
        // SAFETY: advice on the range just mapped; failure is harmless.
        unsafe { libc::madvise(ptr, len, libc::MADV_SEQUENTIAL) };
        Ok(Some(Arc::new(Mapping { ptr, len })))
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until `Drop`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Maps the pages of `range` into this process in one call (Linux 5.14+; elsewhere a no-op),
    /// which is cheaper than taking a page fault per page while computing.
    fn populate(&self, range: Range<usize>) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if range.start < range.end && range.end <= self.len {
            let page = 4096;
            let start = range.start / page * page;
            // SAFETY: a subrange of our own read-only mapping; the kernel only reads it in.
            unsafe {
                libc::madvise(
                    self.ptr.add(start),
                    range.end - start,
                    libc::MADV_POPULATE_READ,
                )
            };
        }
        let _ = range;
    }

    /// Drops the resident pages wholly inside `range` from this process (they stay cached).
    fn release(&self, range: Range<usize>) {
        let page = 4096;
        let start = range.start.div_ceil(page) * page;
        let end = (range.end / page) * page;
        if start < end && end <= self.len {
            // SAFETY: a page-aligned subrange of our own read-only private mapping, whose
            // contents can be read again from the file on the next access.
            unsafe { libc::madvise(self.ptr.add(start), end - start, libc::MADV_DONTNEED) };
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `open` mapped, once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
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
