//! Item streams: the items of a data set in chunks, so a run's memory does not grow with N.
//! Raw IDX files and `synth:` are streamed; image folders and `.gz` files are read in chunks
//! from their decoder (image folders are decoded whole: they are small by nature).

use super::idx::{self, IdxImages};
#[cfg(unix)]
use super::mapped::{MappedRange, Mapping};
use super::{images, synth, Dataset};
use crate::error::{Error, Result};
use std::path::Path;
#[cfg(unix)]
use std::sync::Arc;

enum Source {
    Memory(Dataset),
    Idx(IdxImages),
    /// A raw IDX file mapped into memory: chunks are read in place, with no copy.
    #[cfg(unix)]
    Mapped(Arc<Mapping>),
    Synth {
        seed: u64,
    },
}

/// A chunk's pixels: owned bytes, or a range of a mapped file.
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
    pub len: usize,
    labels: Option<Vec<u8>>,
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
        if let Some(rest) = spec.strip_prefix("synth:") {
            let (n, seed) = synth::parse_spec(rest)?;
            return Ok(ItemStream {
                source: Source::Synth { seed },
                name: format!("synth:{n}:{seed}"),
                height: synth::SIDE,
                width: synth::SIDE,
                len: n,
                labels: None,
                pos: 0,
            });
        }
        let path = Path::new(spec);
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Self::from_dataset(images::load_dir(path)?);
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
            pos: 0,
            source: Self::raw_or_stream(path, reader)?,
        })
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

    pub fn from_dataset(set: Dataset) -> Result<Self> {
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
            len: set.len(),
            labels: None,
            pos: 0,
            source: Source::Memory(set),
        })
    }

    pub fn features(&self) -> usize {
        self.height * self.width
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
