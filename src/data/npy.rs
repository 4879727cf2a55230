//! NumPy's `.npy` format: a 2-D matrix of items (u8 pixels, f16 or f32 features), read
//! memory-mapped so that memory does not grow with the number of rows; 1-D integer label files;
//! and an f32 writer (class probabilities).
//!
//! The header (versions 1.0, 2.0 and 3.0) is a Python dict literal with exactly the keys
//! `descr`, `fortran_order` and `shape`. Only what the engine can use as given is accepted:
//! C order, little-endian, and a file whose size is exactly the header's shape times the item
//! size. Anything else is an error naming the file and the problem.

mod header;

pub use header::header_bytes;
use header::{little_endian, parse_header, shape_text, split_descr, Header};

use crate::error::{Error, Result};
use crate::output::write_atomic;
use memmap2::Mmap;
use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The element types of an item matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// Pixels, one byte each (`|u1`).
    U8,
    /// Features, IEEE half precision (`<f2`).
    F16,
    /// Features, IEEE single precision (`<f4`).
    F32,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::F16 => 2,
            Dtype::F32 => 4,
        }
    }

    /// NumPy's name for it, as in `np.dtype(name)`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::F16 => "float16",
            Dtype::F32 => "float32",
        }
    }

    /// The `descr` string NumPy writes for it.
    pub fn descr(self) -> &'static str {
        match self {
            Dtype::U8 => "|u1",
            Dtype::F16 => "<f2",
            Dtype::F32 => "<f4",
        }
    }
}

fn item_matrix_dtype(path: &Path, descr: &str) -> Result<Dtype> {
    let unsupported = |why: &str| {
        Error::format(
            path,
            format!(
                "dtype '{descr}' is not supported ({why}): save the matrix as uint8 pixels or \
                 float16/float32 features, e.g. x.astype(np.float32)"
            ),
        )
    };
    let (order, kind, size) = split_descr(descr).ok_or_else(|| unsupported("unknown"))?;
    let dtype = match (kind, size) {
        ('u', 1) => Dtype::U8,
        ('f', 2) => Dtype::F16,
        ('f', 4) => Dtype::F32,
        ('f', 8) => return Err(unsupported("float64")),
        ('i', _) | ('u', _) => return Err(unsupported("integers other than uint8")),
        ('O', _) => return Err(unsupported("Python objects")),
        _ => return Err(unsupported("not uint8, float16 or float32")),
    };
    if !little_endian(order, size) {
        return Err(unsupported("big-endian"));
    }
    Ok(dtype)
}

/// Maps `path` read-only and parses its header.
fn map_file(path: &Path) -> Result<(Arc<Mmap>, Header)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only; as with any mapped input, the file must not be truncated
    // while it is in use (the same contract as the raw IDX reader's mapping).
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let header = parse_header(path, &map)?;
    Ok((Arc::new(map), header))
}

/// Checks that the file holds exactly `count` elements of `size` bytes after the header.
fn check_size(path: &Path, header: &Header, count: u64, size: usize, len: usize) -> Result<()> {
    let need = count
        .checked_mul(size as u64)
        .and_then(|b| b.checked_add(header.data_offset as u64))
        .ok_or_else(|| {
            Error::format(
                path,
                format!("shape {} is too large", shape_text(&header.shape)),
            )
        })?;
    if need != len as u64 {
        let what = if (len as u64) < need {
            "truncated"
        } else {
            "size mismatch"
        };
        return Err(Error::format(
            path,
            format!(
                "{what}: the header claims shape {} of '{}' ({} + {} bytes = {need} bytes) \
                 but the file has {len} bytes",
                shape_text(&header.shape),
                header.descr,
                header.data_offset,
                need - header.data_offset as u64
            ),
        ));
    }
    Ok(())
}

/// A 2-D C-order matrix of items, one row per item, mapped from a `.npy` file.
#[derive(Debug, Clone)]
pub struct NpyMatrix {
    pub path: PathBuf,
    pub rows: usize,
    pub cols: usize,
    pub dtype: Dtype,
    /// Byte offset of row 0 in the file (and in `map`).
    pub offset: usize,
    /// The whole file, header included; shared so that chunks can outlive a borrow.
    pub map: Arc<Mmap>,
}

impl NpyMatrix {
    /// Maps `path` and checks its header and size (the data itself is not read).
    pub fn open(path: &Path) -> Result<Self> {
        let (map, header) = map_file(path)?;
        let dtype = item_matrix_dtype(path, &header.descr)?;
        if header.fortran_order {
            return Err(Error::format(
                path,
                "the matrix is in Fortran (column-major) order: save np.ascontiguousarray(x)",
            ));
        }
        let (rows, cols) = match header.shape[..] {
            [rows, cols] => (rows, cols),
            _ => {
                return Err(Error::format(
                    path,
                    format!(
                        "the array has shape {}: a 2-D matrix (items x features) is needed",
                        shape_text(&header.shape)
                    ),
                ))
            }
        };
        if cols == 0 {
            return Err(Error::format(path, "the matrix has 0 columns"));
        }
        let count = rows.checked_mul(cols).ok_or_else(|| {
            Error::format(
                path,
                format!("shape {} is too large", shape_text(&header.shape)),
            )
        })?;
        check_size(path, &header, count, dtype.size(), map.len())?;
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(NpyMatrix {
            path: path.to_path_buf(),
            rows: rows as usize,
            cols: cols as usize,
            dtype,
            offset: header.data_offset,
            map,
        })
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.cols * self.dtype.size()
    }

    /// The bytes of `rows` (row after row, little-endian elements), without a copy.
    /// Panics if the range runs past the last row, like slice indexing.
    pub fn rows_bytes(&self, rows: Range<usize>) -> &[u8] {
        let b = self.row_bytes();
        &self.map[self.offset + rows.start * b..self.offset + rows.end * b]
    }

    /// The byte range of `rows` in the file (and in `map`).
    pub fn byte_range(&self, rows: Range<usize>) -> Range<usize> {
        let b = self.row_bytes();
        self.offset + rows.start * b..self.offset + rows.end * b
    }

    /// Refuses NaN and infinite features in `rows` (u8 pixels are always finite), naming the
    /// first bad element.
    pub fn check_finite(&self, rows: Range<usize>) -> Result<()> {
        check_finite(
            &self.path,
            self.dtype,
            self.cols,
            rows.start,
            self.rows_bytes(rows),
        )
    }
}

/// Refuses a NaN or infinite value in `bytes` (whole rows of `cols` little-endian values of
/// `dtype`, the first being row `first_row` of `path`), naming the first bad element.
pub fn check_finite(
    path: &Path,
    dtype: Dtype,
    cols: usize,
    first_row: usize,
    bytes: &[u8],
) -> Result<()> {
    match first_non_finite(dtype, bytes) {
        None => Ok(()),
        Some(k) => Err(Error::format(
            path,
            format!(
                "row {}, column {}: a NaN or infinite feature",
                first_row + k / cols.max(1),
                k % cols.max(1)
            ),
        )),
    }
}

/// [`first_non_finite`] on every thread of the rayon pool (for a whole matrix in memory).
pub fn first_non_finite_par(dtype: Dtype, bytes: &[u8]) -> Option<usize> {
    use rayon::prelude::*;
    // Whole values per piece, so a piece's index times its values is where it starts.
    let piece = (1 << 20) * dtype.size();
    bytes
        .par_chunks(piece)
        .enumerate()
        .find_map_first(|(i, c)| Some(i * (1 << 20) + first_non_finite(dtype, c)?))
}

/// The index of the first NaN or infinite value in `bytes` (little-endian values of `dtype`).
/// Blocks are scanned without early exit (so the compiler vectorises them) and only a block
/// that holds a bad value is searched: the pass costs about one read of the data.
pub fn first_non_finite(dtype: Dtype, bytes: &[u8]) -> Option<usize> {
    // Exponent bits all set: infinity or NaN.
    fn scan<const N: usize>(bytes: &[u8], bad: impl Fn([u8; N]) -> bool) -> Option<usize> {
        const BLOCK: usize = 1024;
        let is_bad = |v: &[u8]| bad(v.try_into().expect("chunks of N bytes"));
        for (i, block) in bytes.chunks(BLOCK * N).enumerate() {
            if block.chunks_exact(N).fold(false, |any, v| any | is_bad(v)) {
                return block
                    .chunks_exact(N)
                    .position(&is_bad)
                    .map(|k| i * BLOCK + k);
            }
        }
        None
    }
    match dtype {
        Dtype::U8 => None,
        Dtype::F16 => scan::<2>(bytes, |h| u16::from_le_bytes(h) & 0x7c00 == 0x7c00),
        Dtype::F32 => scan::<4>(bytes, |f| {
            u32::from_le_bytes(f) & 0x7f80_0000 == 0x7f80_0000
        }),
    }
}

/// Reads a 1-D array of integer class labels (`|u1`, `|i1`, `<i2`, `<u2`, `<i4`, `<u4`, `<i8`,
/// `<u8`; shape `(N,)` or `(N, 1)`) as classes 0..=255.
pub fn load_labels(path: &Path) -> Result<Vec<u8>> {
    let (map, header) = map_file(path)?;
    let unsupported = |why: &str| {
        Error::format(
            path,
            format!(
                "labels of dtype '{}' are not supported ({why}): save integer classes, e.g. \
                 y.astype(np.int64)",
                header.descr
            ),
        )
    };
    let (order, kind, size) = split_descr(&header.descr).ok_or_else(|| unsupported("unknown"))?;
    if !matches!(kind, 'i' | 'u') || ![1, 2, 4, 8].contains(&size) {
        return Err(unsupported("not integers"));
    }
    if !little_endian(order, size) {
        return Err(unsupported("big-endian"));
    }
    let n = match header.shape[..] {
        [n] | [n, 1] => n,
        _ => {
            return Err(Error::format(
                path,
                format!(
                    "the labels have shape {}: one label per item (shape (N,)) is needed",
                    shape_text(&header.shape)
                ),
            ))
        }
    };
    check_size(path, &header, n, size, map.len())?;
    let data = &map[header.data_offset..];
    let mut labels = Vec::with_capacity(n as usize);
    for (i, raw) in data.chunks_exact(size).enumerate() {
        let mut le = [0u8; 8];
        le[..size].copy_from_slice(raw);
        // Sign-extend signed values so that -1 is seen as negative, not as a big number.
        let value = if kind == 'i' && raw[size - 1] & 0x80 != 0 {
            le[size..].fill(0xff);
            i64::from_le_bytes(le) as i128
        } else if kind == 'i' {
            i64::from_le_bytes(le) as i128
        } else {
            u64::from_le_bytes(le) as i128
        };
        let label = u8::try_from(value).map_err(|_| {
            Error::format(
                path,
                format!("label {value} at row {i}: classes must be integers from 0 to 255"),
            )
        })?;
        labels.push(label);
    }
    Ok(labels)
}

/// Writes `data` (row-major, `shape.iter().product()` values) as an f32 `.npy` file, atomically.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(Error::Invalid(format!(
            "{}: shape {shape:?} does not hold {} values",
            path.display(),
            data.len()
        )));
    }
    write_atomic(path, |w| {
        let io = |e| Error::io(path, e);
        w.write_all(&header_bytes(Dtype::F32.descr(), shape))
            .map_err(io)?;
        let mut buf = Vec::with_capacity(4 << 14);
        for chunk in data.chunks(1 << 14) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            w.write_all(&buf).map_err(io)?;
        }
        Ok(())
    })
}

/// Writes raw little-endian `data` under a header of `descr` and `shape`, atomically (for
/// matrices of any supported dtype, and for tests).
pub fn write_npy_bytes(path: &Path, descr: &str, shape: &[usize], data: &[u8]) -> Result<()> {
    let size = split_descr(descr).map_or(0, |(_, _, size)| size);
    if size == 0 || shape.iter().product::<usize>() * size != data.len() {
        return Err(Error::Invalid(format!(
            "{}: shape {shape:?} of '{descr}' does not hold {} bytes",
            path.display(),
            data.len()
        )));
    }
    write_atomic(path, |w| {
        let io = |e| Error::io(path, e);
        w.write_all(&header_bytes(descr, shape)).map_err(io)?;
        w.write_all(data).map_err(io)
    })
}

/// Whether `path` names a `.npy` file (by its extension, any case).
pub fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// `FILE-labels.npy` beside `FILE.npy`.
pub fn labels_path_for(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}-labels.npy"))
}

/// The labels of the `rows` items of the matrix `path`: from `explicit` when given, else from
/// `FILE-labels.npy` beside it when that exists (`None` otherwise). A count other than `rows` is
/// an error naming both files.
pub fn labels_for(path: &Path, rows: usize, explicit: Option<&Path>) -> Result<Option<Vec<u8>>> {
    let beside = labels_path_for(path);
    let file = match explicit {
        Some(p) => p,
        None if beside.exists() => &beside,
        None => return Ok(None),
    };
    let labels = load_labels(file)?;
    if labels.len() != rows {
        return Err(Error::format(
            file,
            format!(
                "{} labels for the {rows} rows of {}",
                labels.len(),
                path.display()
            ),
        ));
    }
    Ok(Some(labels))
}

/// A u8 `.npy` matrix read whole as a data set of 1 x cols pixel items (for `run`, which keeps
/// its items in memory), with the labels of `FILE-labels.npy` beside it. f16/f32 features are
/// refused: they are classified and trained on from the mapped file (`classify`, `train`).
pub fn load_pixels(path: &Path) -> Result<crate::data::Dataset> {
    let m = NpyMatrix::open(path)?;
    if m.dtype != Dtype::U8 {
        return Err(Error::format(
            path,
            format!(
                "holds {} features; this command takes u8 pixels (use `train` and `classify` \
                 for features)",
                m.dtype.name()
            ),
        ));
    }
    Ok(crate::data::Dataset {
        source: path.display().to_string(),
        height: 1,
        width: m.cols,
        channels: 1,
        pixels: m.rows_bytes(0..m.rows).to_vec(),
        labels: labels_for(path, m.rows, None)?,
        ids: None,
        class_names: Vec::new(),
        unlabelled: None,
    })
}

#[cfg(test)]
mod tests;
