//! Item streams: the items of a data set in chunks, so a run's memory does not grow with N.
//! Raw IDX files, `.npy` matrices (u8 pixels, f16/f32 features) and `synth:` are streamed; image folders and `.gz` files are read in chunks
//! from their decoder (image folders are decoded whole: they are small by nature).
//!
//! Every item has an id users can join on ([`ItemStream::id`]): its path in an image folder, its
//! row index otherwise.

use super::idx::{self, IdxImages};
#[cfg(unix)]
use super::mapped::{MappedRange, Mapping};
use super::npy::{self, Dtype};
use super::{images, synth, Dataset, ImageOptions};
use crate::error::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// Where a stream's items come from. One variant per input form.
enum Source {
    Memory(Dataset),
    Idx(IdxImages),
    /// A raw IDX file mapped into memory: chunks are read in place, with no copy.
    #[cfg(unix)]
    Mapped(Arc<Mapping>),
    Synth {
        seed: u64,
    },
    /// A `.npy` matrix mapped into memory: row i (item i) at `offset + i * row bytes`, read in
    /// place like a raw IDX file.
    #[cfg(unix)]
    Npy {
        map: Arc<Mapping>,
        offset: usize,
        dtype: Dtype,
    },
}

/// A chunk's items as bytes (u8 pixels, or the little-endian values of f16/f32 features: see
/// [`ItemStream::dtype`]): owned, or a range of a mapped file.
pub enum Pixels {
    Owned(Vec<u8>),
    #[cfg(unix)]
    Mapped(MappedRange),
}

impl Default for Pixels {
    fn default() -> Self {
        Pixels::Owned(Vec::new())
    }
}

impl std::ops::Deref for Pixels {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Pixels::Owned(v) => v,
            #[cfg(unix)]
            Pixels::Mapped(m) => m.bytes(),
        }
    }
}

impl std::fmt::Debug for Pixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pixels({} bytes)", self.len())
    }
}

pub struct ItemStream {
    source: Source,
    /// Where the items come from, for messages and reports.
    pub name: String,
    pub height: usize,
    pub width: usize,
    /// Bytes per pixel: 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    pub len: usize,
    labels: Option<Vec<u8>>,
    /// Item ids when they are not the row index (image folders: paths).
    pub ids: Option<Arc<Vec<String>>>,
    /// Class names when the labels come from named folders (see [`Dataset::class_names`]).
    pub class_names: Vec<String>,
    /// Why the items carry no labels when their source could have given some.
    pub unlabelled: Option<String>,
    pos: usize,
}

/// One chunk of items and, when known, their labels.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Index of the first item in the whole stream.
    pub start: usize,
    pub pixels: Pixels,
    pub labels: Option<Vec<u8>>,
}

impl ItemStream {
    /// Opens a data spec (see `data::load`) for streaming.
    pub fn open(spec: &str) -> Result<Self> {
        Self::open_with(spec, &ImageOptions::default())
    }

    /// [`ItemStream::open`], reading an image folder with `opts` (channels, size, classes).
    pub fn open_with(spec: &str, opts: &ImageOptions) -> Result<Self> {
        let path = Path::new(spec);
        let is_dir = !spec.starts_with("synth:")
            && std::fs::metadata(path)
                .map_err(|e| Error::io(path, e))?
                .is_dir();
        if is_dir {
            return Self::from_dataset(images::load_dir(path, opts)?);
        }
        super::grayscale_only(spec, opts)?;
        if let Some(rest) = spec.strip_prefix("synth:") {
            let (n, seed) = synth::parse_spec(rest)?;
            return Ok(ItemStream {
                source: Source::Synth { seed },
                name: format!("synth:{n}:{seed}"),
                height: synth::SIDE,
                width: synth::SIDE,
                len: n,
                ..Self::plain()
            });
        }
        if npy::is_npy(path) {
            return Self::open_npy(path);
        }
        let reader = IdxImages::open(path)?;
        if reader.count == 0 {
            return Err(Error::format(path, "the data set holds no items"));
        }
        let labels = match idx::labels_path_for(path) {
            Some(lp) => {
                let labels = idx::load_labels(&lp)?;
                if labels.len() != reader.count {
                    return Err(Error::format(
                        &lp,
                        format!("{} labels for {} images", labels.len(), reader.count),
                    ));
                }
                Some(labels)
            }
            None => None,
        };
        let (height, width, len) = (reader.height, reader.width, reader.count);
        Ok(ItemStream {
            name: path.display().to_string(),
            height,
            width,
            len,
            labels,
            source: Self::raw_or_stream(path, reader)?,
            ..Self::plain()
        })
    }

    /// A `.npy` matrix (header and size checked by [`npy::NpyMatrix::open`]), one item per row
    /// of `height` 1 and `width` columns, with the labels of `FILE-labels.npy` beside it.
    #[cfg(unix)]
    fn open_npy(path: &Path) -> Result<Self> {
        let m = npy::NpyMatrix::open(path)?;
        if m.rows == 0 {
            return Err(Error::format(path, "the data set holds no items"));
        }
        let labels = npy::labels_for(path, m.rows, None)?;
        let map = Mapping::open(path)?.ok_or_else(|| Error::format(path, "the file is empty"))?;
        Ok(ItemStream {
            source: Source::Npy {
                map,
                offset: m.offset,
                dtype: m.dtype,
            },
            name: path.display().to_string(),
            height: 1,
            width: m.cols,
            len: m.rows,
            labels,
            ..Self::plain()
        })
    }

    #[cfg(not(unix))]
    fn open_npy(path: &Path) -> Result<Self> {
        Err(Error::format(
            path,
            ".npy matrices are read memory-mapped, on Unix only",
        ))
    }

    /// The items' element type: u8 pixels, except for f16/f32 `.npy` features.
    pub fn dtype(&self) -> Dtype {
        match &self.source {
            #[cfg(unix)]
            Source::Npy { dtype, .. } => *dtype,
            _ => Dtype::U8,
        }
    }

    /// The fields every source shares the defaults of: grayscale, index ids, no labels, at the
    /// start (with an empty source; the caller sets its own).
    fn plain() -> Self {
        ItemStream {
            source: Source::Synth { seed: 0 },
            name: String::new(),
            height: 0,
            width: 0,
            channels: 1,
            len: 0,
            labels: None,
            ids: None,
            class_names: Vec::new(),
            unlabelled: None,
            pos: 0,
        }
    }

    /// A raw IDX file (its size already checked against the header) is mapped; a `.gz` one is
    /// streamed through its decoder.
    fn raw_or_stream(path: &Path, reader: IdxImages) -> Result<Source> {
        #[cfg(unix)]
        if path.extension().is_none_or(|e| e != "gz") {
            if let Some(map) = Mapping::open(path)? {
                return Ok(Source::Mapped(map));
            }
        }
        let _ = path;
        Ok(Source::Idx(reader))
    }

    pub fn from_dataset(mut set: Dataset) -> Result<Self> {
        if set.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: the data set holds no items",
                set.source
            )));
        }
        Ok(ItemStream {
            name: set.source.clone(),
            height: set.height,
            width: set.width,
            channels: set.channels,
            len: set.len(),
            ids: set.ids.take().map(Arc::new),
            class_names: std::mem::take(&mut set.class_names),
            unlabelled: set.unlabelled.take(),
            source: Source::Memory(set),
            ..Self::plain()
        })
    }

    /// Bytes per item: `height * width * channels`.
    pub fn features(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// `HxW` for grayscale, `HxWxC` otherwise, as messages show a shape.
    pub fn shape_text(&self) -> String {
        match self.channels {
            1 => format!("{}x{}", self.height, self.width),
            c => format!("{}x{}x{c}", self.height, self.width),
        }
    }

    /// Item `i`'s id: its path in an image folder, else its index.
    pub fn id(&self, i: usize) -> String {
        match &self.ids {
            Some(ids) => ids[i].clone(),
            None => i.to_string(),
        }
    }

    /// Moves forward to item `item` (where a shard or a resumed run starts). Mapped, in-memory
    /// and synthetic items are reached at once; a compressed file is read and dropped up to it.
    pub fn seek(&mut self, item: usize) -> Result<()> {
        let item = item.min(self.len);
        if item < self.pos {
            return Err(Error::Invalid(format!(
                "{}: cannot go back from item {} to {item}",
                self.name, self.pos
            )));
        }
        if let Source::Idx(reader) = &mut self.source {
            let mut scratch = Vec::new();
            let mut left = item - self.pos;
            while left > 0 {
                // Grown as the data arrives (see `next_chunk_into`).
                scratch.clear();
                let read = reader.read_chunk(left.min(4096), &mut scratch)?;
                if read == 0 {
                    break;
                }
                left -= read;
            }
        }
        self.pos = item;
        Ok(())
    }

    /// The next chunk of at most `max_items` items, or `None` at the end.
    pub fn next_chunk(&mut self, max_items: usize) -> Result<Option<Chunk>> {
        self.next_chunk_into(max_items, Vec::new())
    }

    /// Bytes before the first item in a mapped IDX file (the header).
    #[cfg(unix)]
    const IDX_HEADER: usize = 16;

    /// Like `next_chunk`, reusing `pixels` (a buffer from an earlier chunk) so that a long
    /// stream neither allocates nor zero-fills per chunk.
    pub fn next_chunk_into(
        &mut self,
        max_items: usize,
        mut pixels: Vec<u8>,
    ) -> Result<Option<Chunk>> {
        let n = max_items.max(1).min(self.len - self.pos);
        if n == 0 {
            return Ok(None);
        }
        let range = self.pos..self.pos + n;
        let (pixels, labels) = match &mut self.source {
            Source::Memory(set) => {
                let part = set.slice(range.clone());
                (Pixels::Owned(part.pixels), part.labels)
            }
            #[cfg(unix)]
            Source::Mapped(map) => {
                let d = self.height * self.width;
                let bytes = Self::IDX_HEADER + range.start * d..Self::IDX_HEADER + range.end * d;
                (
                    Pixels::Mapped(MappedRange::new(map.clone(), bytes)),
                    self.labels.as_ref().map(|l| l[range.clone()].to_vec()),
                )
            }
            #[cfg(unix)]
            Source::Npy { map, offset, dtype } => {
                let row = self.width * dtype.size();
                let bytes = *offset + range.start * row..*offset + range.end * row;
                let chunk = MappedRange::new(map.clone(), bytes);
                // Corrupt features are never taken as data: NaN would classify as class 0.
                let path = Path::new(&self.name);
                npy::check_finite(path, *dtype, self.width, range.start, chunk.bytes())?;
                (
                    Pixels::Mapped(chunk),
                    self.labels.as_ref().map(|l| l[range.clone()].to_vec()),
                )
            }
            Source::Idx(reader) => {
                let want = n * reader.features();
                if pixels.len() >= want {
                    // A buffer from an earlier chunk: no zero-fill; the read overwrites it.
                    pixels.truncate(want);
                    reader.read_into(&mut pixels)?;
                } else {
                    // Grown as the data arrives: a `.gz` header's count is not checked
                    // against the file, and may claim far more than it holds.
                    pixels.clear();
                    reader.read_chunk(n, &mut pixels)?;
                }
                (
                    Pixels::Owned(pixels),
                    self.labels.as_ref().map(|l| l[range.clone()].to_vec()),
                )
            }
            Source::Synth { seed } => {
                let part = synth::generate_range(range.clone(), *seed);
                (Pixels::Owned(part.pixels), part.labels)
            }
        };
        self.pos += n;
        Ok(Some(Chunk {
            start: range.start,
            pixels,
            labels,
        }))
    }
}
