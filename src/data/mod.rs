//! Data sets: items are u8 rows (one byte per pixel) with optional labels.

pub mod idx;
pub mod images;
pub mod items;
#[cfg(unix)]
pub mod mapped;
pub mod npy;
pub mod stream;
pub mod synth;
pub mod synth_votes;
pub mod votes;

use crate::error::{Error, Result};
use std::path::Path;

/// A labelled (or unlabelled) set of equally sized grayscale images, kept as u8 rows.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Where the items came from (a path or `synth:N:SEED`), for messages and reports.
    pub source: String,
    pub height: usize,
    pub width: usize,
    /// `len() * height * width` bytes, row-major, item after item.
    pub pixels: Vec<u8>,
    /// One class per item when known.
    pub labels: Option<Vec<u8>>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.pixels.len() / self.features().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes (pixels) per item.
    pub fn features(&self) -> usize {
        self.height * self.width
    }

    pub fn item(&self, i: usize) -> &[u8] {
        let d = self.features();
        &self.pixels[i * d..(i + 1) * d]
    }

    /// The items `range` as a new data set (labels follow).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        let d = self.features();
        Dataset {
            source: self.source.clone(),
            height: self.height,
            width: self.width,
            pixels: self.pixels[range.start * d..range.end * d].to_vec(),
            labels: self.labels.as_ref().map(|l| l[range].to_vec()),
        }
    }
}

/// Loads a data set from a spec: `synth:N[:SEED]`, an IDX images file (raw or `.gz`), a u8
/// `.npy` matrix (labels from `FILE-labels.npy` beside it), or a class-per-folder image directory.
pub fn load(spec: &str) -> Result<Dataset> {
    if let Some(rest) = spec.strip_prefix("synth:") {
        let (n, seed) = synth::parse_spec(rest)?;
        return Ok(synth::generate(n, seed));
    }
    let path = Path::new(spec);
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let set = if meta.is_dir() {
        images::load_dir(path)?
    } else if npy::is_npy(path) {
        npy::load_pixels(path)?
    } else {
        idx::load_images(path)?
    };
    if set.is_empty() {
        return Err(Error::format(path, "the data set holds no items"));
    }
    Ok(set)
}
