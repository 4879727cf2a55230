//! MNIST-style IDX files: big-endian header, then row-major u8 data. Raw or gzip.
//!
//! Images (magic 2051) are `count x rows x cols`; labels (magic 2049) are `count` bytes. The
//! reader streams: a header claiming more items than the file holds is caught when the data runs
//! out, and memory is only ever allocated for data that has actually been read.

use super::stream::{Chunk, ItemStream, Pixels};
use super::Dataset;
use crate::error::{Error, Result};
use crate::output::write_atomic;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel};

const IMAGES_MAGIC: u32 = 2051;
const LABELS_MAGIC: u32 = 2049;

/// Bytes per read when a whole images file is loaded.
const READ_AHEAD: usize = 16 << 20;

/// A streaming reader over the items of an IDX images file.
pub(crate) struct IdxImages {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    pub(crate) count: usize,
    pub(crate) height: usize,
    pub(crate) width: usize,
    read: usize,
}

fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// One gzip member and nothing after it. The decoder checks the member's CRC and length when it
/// reaches the member's end, so readers must read to the end (see `expect_end`); bytes after the
/// member (a second member, garbage) are an error there too, never silently ignored.
struct GzipMember<R: BufRead>(flate2::bufread::GzDecoder<R>);

impl<R: BufRead> Read for GzipMember<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => e,
            _ => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("corrupt gzip data: {e}"),
            ),
        })?;
        if n == 0 && !buf.is_empty() && !self.0.get_mut().fill_buf()?.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bytes after the end of the gzip data (a second gzip member or garbage)",
            ));
        }
        Ok(n)
    }
}

fn open(path: &Path) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if is_gzip(path) {
        let gz = flate2::bufread::GzDecoder::new(BufReader::with_capacity(1 << 20, file));
        Ok((
            Box::new(BufReader::with_capacity(1 << 20, GzipMember(gz))),
            None,
        ))
    } else {
        Ok((Box::new(BufReader::with_capacity(1 << 20, file)), Some(len)))
    }
}

/// The size a raw IDX file must have, checked before any item is used: a shorter file lacks
/// items, a longer one holds bytes its header does not account for (either way the header and
/// the data disagree, and the items cannot be trusted).
pub fn check_raw_size(path: &Path, header: u64, claims: &str, need: u64, len: u64) -> Result<()> {
    let what = format!(
        "the header claims {claims} ({header} + {} bytes = {need} bytes)",
        need - header
    );
    if len < need {
        return Err(Error::format(
            path,
            format!("truncated: {what} but the file has {len} bytes"),
        ));
    }
    if len > need {
        return Err(Error::format(
            path,
            format!(
                "size mismatch: {what} but the file has {len} bytes ({} too many)",
                len - need
            ),
        ));
    }
    Ok(())
}

/// After the last item: the data must end here. Reading to the end is also what makes the gzip
/// decoder check the CRC and length of what was read.
fn expect_end(path: &Path, reader: &mut dyn Read, claims: &str) -> Result<()> {
    let mut byte = [0u8; 1];
    loop {
        return match reader.read(&mut byte) {
            Ok(0) => Ok(()),
            Ok(_) => Err(Error::format(
                path,
                format!("size mismatch: the data goes on after the {claims} its header claims"),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::format(
                path,
                "truncated: the gzip data ends before its end marker (CRC and length)",
            )),
            Err(e) => Err(read_error(path, e)),
        };
    }
}

/// Reads exactly `buf.len()` bytes or explains why not: `truncated()` says what was cut short
/// when the data ends early; a corrupt gzip stream says so.
fn read_full(
    path: &Path,
    reader: &mut dyn Read,
    buf: &mut [u8],
    truncated: impl Fn() -> String,
) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Err(Error::format(path, truncated())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(Error::format(path, truncated()))
            }
            Err(e) => return Err(read_error(path, e)),
        }
    }
    Ok(())
}

/// Bytes a growing read starts with; it doubles from there.
const GROW_FROM: usize = 64 << 10;

/// Appends `want` bytes to `out`, growing it as the data arrives (doubling from [`GROW_FROM`])
/// rather than to `want` at once: memory follows the data read, never a header's claim.
fn read_growing(
    path: &Path,
    reader: &mut dyn Read,
    out: &mut Vec<u8>,
    want: usize,
    truncated: impl Fn() -> String,
) -> Result<()> {
    let end = out.len() + want;
    while out.len() < end {
        let start = out.len();
        let step = (end - start).min(start.max(GROW_FROM));
        out.resize(start + step, 0);
        read_full(path, reader, &mut out[start..], &truncated)?;
    }
    Ok(())
}

/// A failed read: bad data (a corrupt gzip stream) says what is wrong; anything else is the
/// system's error.
fn read_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::InvalidData {
        Error::format(path, e.to_string())
    } else {
        Error::format(path, format!("cannot read: {e}"))
    }
}

/// The message for data that ends inside `what`.
fn ends_inside(what: &str) -> impl Fn() -> String + '_ {
    move || format!("truncated: the file ends inside the {what}")
}

fn read_u32s<const N: usize>(path: &Path, reader: &mut dyn Read) -> Result<[u32; N]> {
    let mut raw = [0u8; 16];
    read_full(path, reader, &mut raw[..4 * N], ends_inside("header"))?;
    let mut out = [0u32; N];
    for (i, v) in out.iter_mut().enumerate() {
        *v = u32::from_be_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]]);
    }
    Ok(out)
}

impl IdxImages {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let (mut reader, file_len) = open(path)?;
        let [magic, count, height, width] = read_u32s::<4>(path, &mut *reader)?;
        if magic != IMAGES_MAGIC {
            return Err(Error::format(
                path,
                format!("not an IDX images file: magic number {magic}, expected {IMAGES_MAGIC}"),
            ));
        }
        let (count, height, width) = (count as usize, height as usize, width as usize);
        if height == 0 || width == 0 || height * width > 1 << 24 {
            return Err(Error::format(
                path,
                format!("implausible image size {height}x{width}"),
            ));
        }
        if let Some(len) = file_len {
            let need = 16 + count as u64 * (height * width) as u64;
            let claims = format!("{count} images of {height}x{width}");
            check_raw_size(path, 16, &claims, need, len)?;
        }
        Ok(IdxImages {
            path: path.to_path_buf(),
            reader,
            count,
            height,
            width,
            read: 0,
        })
    }

    pub(crate) fn features(&self) -> usize {
        self.height * self.width
    }

    /// Items not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.count - self.read
    }

    /// Appends up to `max_items` items to `out`; returns how many were read (0 at the end).
    /// `out` grows as the data arrives, so a header that claims more than the file holds costs
    /// no more memory than the data (a `.gz` file's header is not checked against its size).
    pub(crate) fn read_chunk(&mut self, max_items: usize, out: &mut Vec<u8>) -> Result<usize> {
        let n = max_items.min(self.remaining());
        let (want, truncated) = (n * self.features(), self.truncated_before(self.read + n));
        read_growing(&self.path, &mut *self.reader, out, want, truncated)?;
        self.advance(n)
    }

    /// Fills `out` with the next `out.len() / features` items (fewer at the end of the file:
    /// the count read is returned and only that many items of `out` are written).
    pub(crate) fn read_into(&mut self, out: &mut [u8]) -> Result<usize> {
        let d = self.features();
        let n = (out.len() / d).min(self.remaining());
        let truncated = self.truncated_before(self.read + n);
        read_full(&self.path, &mut *self.reader, &mut out[..n * d], truncated)?;
        self.advance(n)
    }

    /// The message for data that ends before item `end`.
    fn truncated_before(&self, end: usize) -> impl Fn() -> String {
        let count = self.count;
        move || {
            format!(
                "truncated: the header claims {count} images but the data ends before image {end}"
            )
        }
    }

    /// Counts `n` items as read; after the last one, the data must end.
    fn advance(&mut self, n: usize) -> Result<usize> {
        self.read += n;
        if n > 0 && self.remaining() == 0 {
            let claims = format!("{} images", self.count);
            expect_end(&self.path, &mut *self.reader, &claims)?;
        }
        Ok(n)
    }
}

/// The name of the labels file that belongs beside an images file:
/// `x-images-idx3-ubyte[.gz]` -> `x-labels-idx1-ubyte[.gz]`.
pub fn labels_name_for(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let (base, gz) = match name.strip_suffix(".gz") {
        Some(base) => (base, ".gz"),
        None => (name, ""),
    };
    let base = base.strip_suffix("-images-idx3-ubyte")?;
    Some(images.with_file_name(format!("{base}-labels-idx1-ubyte{gz}")))
}

/// The labels file beside an images file, if there is one (compressed or not).
pub fn labels_path_for(images: &Path) -> Option<PathBuf> {
    let named = labels_name_for(images)?;
    let other = match named.to_str()?.strip_suffix(".gz") {
        Some(raw) => PathBuf::from(raw),
        None => PathBuf::from(format!("{}.gz", named.display())),
    };
    [named, other].into_iter().find(|p| p.exists())
}

/// Reads a whole IDX labels file.
pub fn load_labels(path: &Path) -> Result<Vec<u8>> {
    let (mut reader, file_len) = open(path)?;
    let [magic, count] = read_u32s::<2>(path, &mut *reader)?;
    if magic != LABELS_MAGIC {
        return Err(Error::format(
            path,
            format!("not an IDX labels file: magic number {magic}, expected {LABELS_MAGIC}"),
        ));
    }
    let count = count as usize;
    let claims = format!("{count} labels");
    if let Some(len) = file_len {
        check_raw_size(path, 8, &claims, 8 + count as u64, len)?;
    }
    let mut labels = Vec::new();
    read_growing(
        path,
        &mut *reader,
        &mut labels,
        count,
        ends_inside("label data"),
    )?;
    expect_end(path, &mut *reader, &claims)?;
    Ok(labels)
}

/// Reads a whole IDX images file, with the labels file beside it when present.
pub(crate) fn load_images(path: &Path) -> Result<Dataset> {
    let mut reader = IdxImages::open(path)?;
    let mut pixels = Vec::new();
    let chunk = (READ_AHEAD / reader.features()).max(1);
    while reader.read_chunk(chunk, &mut pixels)? > 0 {}
    let labels = match labels_path_for(path) {
        Some(lp) => {
            let labels = load_labels(&lp)?;
            if labels.len() != reader.count {
                return Err(Error::format(
                    &lp,
                    format!(
                        "{} labels for {} images in {}",
                        labels.len(),
                        reader.count,
                        path.display()
                    ),
                ));
            }
            Some(labels)
        }
        None => None,
    };
    Ok(Dataset {
        source: path.display().to_string(),
        height: reader.height,
        width: reader.width,
        channels: 1,
        pixels,
        labels,
        ids: None,
        class_names: Vec::new(),
        unlabelled: None,
    })
}

/// Writes the 16-byte header of an images file of `count` items of `height` x `width`.
fn write_images_header(
    w: &mut impl Write,
    count: usize,
    height: usize,
    width: usize,
) -> std::io::Result<()> {
    for v in [IMAGES_MAGIC, count as u32, height as u32, width as u32] {
        w.write_all(&v.to_be_bytes())?;
    }
    Ok(())
}

/// Writes a data set as a raw IDX images file. The caller makes the write atomic.
pub fn write_images(w: &mut impl Write, set: &Dataset) -> std::io::Result<()> {
    write_images_header(w, set.len(), set.height, set.width)?;
    w.write_all(&set.pixels)
}

pub fn write_labels(w: &mut impl Write, labels: &[u8]) -> std::io::Result<()> {
    w.write_all(&LABELS_MAGIC.to_be_bytes())?;
    w.write_all(&(labels.len() as u32).to_be_bytes())?;
    w.write_all(labels)
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub items: usize,
    pub height: usize,
    pub width: usize,
    /// The labels file, written when every item has a label and the images file is named
    /// `NAME-images-idx3-ubyte` (so that reading it back finds the labels).
    pub labels: Option<PathBuf>,
}

/// Items per chunk read from the stream while exporting.
const EXPORT_CHUNK: usize = 1 << 16;

/// Writes every item of `stream` as a raw IDX images file at `out`, and its labels beside it,
/// streaming: a reader thread makes chunk k+1 (for `synth:`, draws it) while this thread writes
/// chunk k, so memory holds a few chunks and the labels. `progress` gets the items written so far.
pub fn export(mut stream: ItemStream, out: &Path, progress: &dyn Fn(u64)) -> Result<Exported> {
    let (len, height, width) = (stream.len, stream.height, stream.width);
    let features = stream.features();
    let mut labels: Vec<u8> = Vec::new();
    let mut all_labelled = true;
    // The write stays on this thread: `write_atomic` stages its file for the caller's commit here.
    write_atomic(out, |w| {
        let io = |e| Error::io(out, e);
        write_images_header(w, len, height, width).map_err(io)?;
        std::thread::scope(|s| -> Result<()> {
            let (chunk_tx, chunk_rx) = sync_channel::<Result<Chunk>>(1);
            // Pixel buffers go back to the reader for reuse (a `.gz` file is read into them).
            let (free_tx, free_rx) = channel::<Vec<u8>>();
            let reader = s.spawn(move || loop {
                let buffer = free_rx.try_recv().unwrap_or_default();
                let (next, more) = match stream.next_chunk_into(EXPORT_CHUNK, buffer) {
                    Ok(Some(chunk)) => (Ok(chunk), true),
                    Ok(None) => break,
                    Err(e) => (Err(e), false),
                };
                // A send fails only when the writer has stopped.
                if chunk_tx.send(next).is_err() || !more {
                    break;
                }
            });
            let mut done = 0u64;
            for chunk in chunk_rx {
                let chunk = chunk?;
                w.write_all(&chunk.pixels).map_err(io)?;
                match &chunk.labels {
                    Some(l) => labels.extend_from_slice(l),
                    None => all_labelled = false,
                }
                done += (chunk.pixels.len() / features) as u64;
                progress(done);
                if let Pixels::Owned(buffer) = chunk.pixels {
                    let _ = free_tx.send(buffer);
                }
            }
            // A reader that panicked closed its channel as if the items had ended.
            if reader.join().is_err() || done != len as u64 {
                return Err(Error::Invalid(format!(
                    "{}: the item reader stopped after {done} of {len} items",
                    out.display()
                )));
            }
            Ok(())
        })
    })?;
    let labels_path = match labels_name_for(out) {
        Some(lp) if all_labelled => {
            write_atomic(&lp, |w| {
                write_labels(w, &labels).map_err(|e| Error::io(&lp, e))
            })?;
            Some(lp)
        }
        _ => None,
    };
    Ok(Exported {
        items: len,
        height,
        width,
        labels: labels_path,
    })
}
