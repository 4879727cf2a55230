//! Data sets: items are u8 rows (one byte per pixel and channel) with optional labels and ids.

pub mod idx;
pub mod images;
pub mod items;
#[cfg(unix)]
pub mod mapped;
pub mod npy;
pub mod parquet;
pub mod stream;
pub mod synth;
pub mod synth_votes;
pub mod votes;

pub use images::{Classes, ImageOptions};

use crate::error::{Error, Result};
use std::path::Path;

/// IDX files and `synth:` hold grayscale images: asking for colour from them is an error.
fn grayscale_only(spec: &str, opts: &ImageOptions) -> Result<()> {
    if opts.channels != 1 {
        return Err(Error::Invalid(format!(
            "{spec}: holds grayscale images; {} channels need a folder of images",
            opts.channels
        )));
    }
    Ok(())
}

/// A labelled (or unlabelled) set of equally sized images, kept as u8 rows.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Where the items came from (a path or `synth:N:SEED`), for messages and reports.
    pub source: String,
    pub height: usize,
    pub width: usize,
    /// Bytes per pixel: 1 (grayscale) or 3 (RGB, interleaved).
    pub channels: usize,
    /// `len() * features()` bytes, row-major, item after item.
    pub pixels: Vec<u8>,
    /// One class per item when known.
    pub labels: Option<Vec<u8>>,
    /// Per item, the id users join on (its path in an image folder); `None`: the row index.
    pub ids: Option<Vec<String>>,
    /// The class names when the labels come from named folders (label `k` is
    /// `class_names[k]`); empty when the labels are the classes' numbers.
    pub class_names: Vec<String>,
    /// Why the items carry no labels when their source could have given some (an image folder
    /// whose layout names no classes).
    pub unlabelled: Option<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.pixels.len() / self.features().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per item: `height * width * channels`.
    pub fn features(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Item `i`'s id: its path for an image folder, else its index.
    pub fn id(&self, i: usize) -> String {
        match &self.ids {
            Some(ids) => ids[i].clone(),
            None => i.to_string(),
        }
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
            channels: self.channels,
            pixels: self.pixels[range.start * d..range.end * d].to_vec(),
            labels: self.labels.as_ref().map(|l| l[range.clone()].to_vec()),
            ids: self.ids.as_ref().map(|ids| ids[range].to_vec()),
            class_names: self.class_names.clone(),
            unlabelled: self.unlabelled.clone(),
        }
    }
}

/// Loads a data set from a spec: `synth:N[:SEED]`, an IDX images file (raw or `.gz`), a u8
/// `.npy` matrix (labels from `FILE-labels.npy` beside it), or a folder of images (see
/// [`images`]).
pub fn load(spec: &str) -> Result<Dataset> {
    load_with(spec, &ImageOptions::default())
}

/// [`load`], reading an image folder with `opts` (channels, size, classes).
pub fn load_with(spec: &str, opts: &ImageOptions) -> Result<Dataset> {
    let path = Path::new(spec);
    let is_dir = !spec.starts_with("synth:")
        && std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .is_dir();
    if !is_dir {
        grayscale_only(spec, opts)?;
    }
    if let Some(rest) = spec.strip_prefix("synth:") {
        let (n, seed) = synth::parse_spec(rest)?;
        return Ok(synth::generate(n, seed));
    }
    let set = if is_dir {
        images::load_dir(path, opts)?
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
