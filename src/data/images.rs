//! Class-per-folder image sets: `ROOT/<class>/<file>.png|jpg`, converted to 8-bit grayscale.
//!
//! Class folders named by integers (`0`..`255`) take that number as the label; otherwise classes
//! are numbered in sorted folder-name order. Items are ordered by file name, numerically when the
//! names are numbers (so MNIST-style `60000.png..69999.png` keep their original order), then by
//! path, whatever folder they sit in.

use super::Dataset;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        out.push(entry.map_err(|e| Error::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

/// Sort key: numeric file stem first (when it is a number), then the path.
fn order_key(path: &Path) -> (u64, PathBuf) {
    let n = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    (n, path.to_path_buf())
}

/// Lists `(path, label)` for every image under `root`'s class folders.
fn list_images(root: &Path) -> Result<Vec<(PathBuf, u8)>> {
    let classes: Vec<PathBuf> = list_dir(root)?.into_iter().filter(|p| p.is_dir()).collect();
    if classes.is_empty() {
        return Err(Error::format(
            root,
            "no class folders: expected ROOT/<class>/<image>.png",
        ));
    }
    let names: Vec<String> = classes
        .iter()
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let numeric: Option<Vec<u8>> = names.iter().map(|n| n.parse::<u8>().ok()).collect();
    if numeric.is_none() && classes.len() > 256 {
        return Err(Error::format(root, "more than 256 class folders"));
    }
    let mut items = Vec::new();
    for (i, dir) in classes.iter().enumerate() {
        let label = numeric.as_ref().map_or(i as u8, |n| n[i]);
        for p in list_dir(dir)?.into_iter().filter(|p| is_image(p)) {
            items.push((p, label));
        }
    }
    items.sort_by_cached_key(|(p, _)| order_key(p));
    Ok(items)
}

fn decode(path: &Path) -> Result<image::GrayImage> {
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| Error::format(path, format!("cannot decode image: {e}")))?;
    Ok(img.into_luma8())
}

/// Loads every image under `root` (see the module docs for layout and order).
pub fn load_dir(root: &Path) -> Result<Dataset> {
    let items = list_images(root)?;
    if items.is_empty() {
        return Err(Error::format(
            root,
            "no PNG or JPEG images in the class folders",
        ));
    }
    let first = decode(&items[0].0)?;
    let (width, height) = (first.width() as usize, first.height() as usize);
    let d = width * height;
    let mut pixels = vec![0u8; items.len() * d];
    // Decode in parallel; the first error in item order wins so the message is deterministic.
    let errors: Vec<Option<Error>> = pixels
        .par_chunks_mut(d)
        .zip(items.par_iter())
        .map(|(row, (path, _))| {
            let img = match decode(path) {
                Ok(img) => img,
                Err(e) => return Some(e),
            };
            if img.width() as usize != width || img.height() as usize != height {
                return Some(Error::format(
                    path,
                    format!(
                        "image is {}x{}, but {} is {width}x{height}: all images must share one size",
                        img.width(),
                        img.height(),
                        items[0].0.display()
                    ),
                ));
            }
            row.copy_from_slice(img.as_raw());
            None
        })
        .collect();
    if let Some(e) = errors.into_iter().flatten().next() {
        return Err(e);
    }
    Ok(Dataset {
        source: root.display().to_string(),
        height,
        width,
        pixels,
        labels: Some(items.iter().map(|(_, l)| *l).collect()),
    })
}
