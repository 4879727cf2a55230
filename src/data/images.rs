//! Folders of PNG/JPEG images, any layout: every image under the root (recursively) is an item,
//! and its id is its path relative to the root with `/` separators.
//!
//! Labels come from class folders only when every image sits below a top-level folder
//! (`ROOT/<class>/.../<file>`) and every such folder names a class ([`Classes`]); otherwise the
//! items are unlabelled and [`Dataset::unlabelled`] says why. Items are ordered by file name,
//! numerically when the names are numbers (so MNIST-style `60000.png..69999.png` keep their
//! original order), then by path. Images are decoded to 1 channel (grayscale) or 3 (RGB); one of
//! another size than expected is an error naming it and both sizes, unless resizing is asked for
//! ([`RESIZE_FILTER`]).

use super::Dataset;
use crate::error::{Error, Result};
use image::imageops::FilterType;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The filter `--resize` scales images with: the `image` crate's triangle filter (bilinear).
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;

/// How [`RESIZE_FILTER`] is named in messages and help.
pub const RESIZE_FILTER_NAME: &str = "triangle (bilinear) filter";

/// Folders below this depth are not searched (a guard against symbolic-link loops).
const MAX_DEPTH: usize = 64;

/// The most bytes one decoded item may take: the image crate's default decoding limit, so a
/// header claiming a huge image is refused before its pixels are allocated.
const MAX_IMAGE_BYTES: usize = 512 << 20;

/// Which top-level folder names are classes.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Classes {
    /// Any names (training): integer names (0..=255) are their own labels; otherwise the names,
    /// sorted, are the classes ([`Dataset::class_names`]).
    #[default]
    Any,
    /// A model's named classes: folder `name` is class `k` when `names[k] == name`.
    Named(Vec<String>),
    /// A model's classes `0..n`: a folder named by an integer below `n` is that class.
    Numbered(usize),
}

/// How to read an image folder.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageOptions {
    /// Values per pixel: 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// The size, `(height, width)`, every image must have; `None`: the first image's.
    pub size: Option<(usize, usize)>,
    /// Scale images of another size with [`RESIZE_FILTER`] instead of refusing them.
    pub resize: bool,
    pub classes: Classes,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            channels: 1,
            size: None,
            resize: false,
            classes: Classes::Any,
        }
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Every image under `dir` (hidden entries skipped), in no particular order.
fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, depth + 1, out)?;
            }
        } else if is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
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

/// `path` relative to `root`, with `/` between the parts.
fn relative_id(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Labels and class names from the top-level folders of `ids`, or why there are none.
struct Labelling {
    labels: Option<Vec<u8>>,
    class_names: Vec<String>,
    unlabelled: Option<String>,
}

impl Labelling {
    fn none(why: String) -> Self {
        Labelling {
            labels: None,
            class_names: Vec::new(),
            unlabelled: Some(why),
        }
    }
}

fn label_items(ids: &[String], classes: &Classes) -> Labelling {
    let tops: Vec<Option<&str>> = ids
        .iter()
        .map(|id| id.split_once('/').map(|(top, _)| top))
        .collect();
    let loose = tops.iter().filter(|t| t.is_none()).count();
    if loose > 0 {
        let example = ids.iter().zip(&tops).find(|(_, t)| t.is_none());
        return Labelling::none(format!(
            "{loose} of {} images are not in a class folder (e.g. `{}`)",
            ids.len(),
            example.map_or("", |(id, _)| id.as_str())
        ));
    }
    let mut names: Vec<&str> = tops.iter().flatten().copied().collect();
    names.sort_unstable();
    names.dedup();
    // Per folder name (sorted, as `names`), its class; `Err` says why a folder is no class.
    let class_of: std::result::Result<Vec<u8>, String> = match classes {
        Classes::Any => {
            let numbers: Option<Vec<u8>> = names.iter().map(|n| n.parse::<u8>().ok()).collect();
            match numbers {
                Some(n) => Ok(n),
                None if names.len() > 256 => Err(format!(
                    "{} class folders, more than the 256 a model may have",
                    names.len()
                )),
                None => Ok((0..names.len()).map(|k| k as u8).collect()),
            }
        }
        Classes::Named(model) => names
            .iter()
            .map(|n| {
                model
                    .iter()
                    .position(|m| m == n)
                    .and_then(|k| u8::try_from(k).ok())
                    .ok_or_else(|| {
                        format!(
                            "folder `{n}` is not one of the model's classes ({})",
                            model.join(", ")
                        )
                    })
            })
            .collect(),
        Classes::Numbered(count) => names
            .iter()
            .map(|n| {
                n.parse::<u8>()
                    .ok()
                    .filter(|&k| (k as usize) < *count)
                    .ok_or_else(|| {
                        format!(
                            "folder `{n}` is not one of the model's classes (0..{})",
                            count.saturating_sub(1)
                        )
                    })
            })
            .collect(),
    };
    let class_of = match class_of {
        Ok(c) => c,
        Err(why) => return Labelling::none(why),
    };
    let named = *classes == Classes::Any && names.iter().any(|n| n.parse::<u8>().is_err());
    let labels = tops
        .iter()
        .map(|t| {
            let top = t.unwrap_or_default();
            class_of[names.binary_search(&top).unwrap_or(0)]
        })
        .collect();
    Labelling {
        labels: Some(labels),
        class_names: if named {
            names.iter().map(|n| n.to_string()).collect()
        } else {
            Vec::new()
        },
        unlabelled: None,
    }
}

/// One image as `height * width * channels` bytes, at `size` (`(height, width)`).
fn decode(path: &Path, opts: &ImageOptions, size: (usize, usize), why: &str) -> Result<Vec<u8>> {
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| Error::format(path, format!("cannot decode image: {e}")))?;
    let (h, w) = size;
    let mut img = img;
    if (img.height() as usize, img.width() as usize) != size {
        if !opts.resize {
            return Err(Error::format(
                path,
                format!(
                    "image is {}x{} (width x height), but {why}",
                    img.width(),
                    img.height()
                ),
            ));
        }
        img = img.resize_exact(w as u32, h as u32, RESIZE_FILTER);
    }
    Ok(match opts.channels {
        3 => img.into_rgb8().into_raw(),
        _ => img.into_luma8().into_raw(),
    })
}

/// Loads every image under `root` (see the module docs for layout, labels and order).
pub fn load_dir(root: &Path, opts: &ImageOptions) -> Result<Dataset> {
    if !matches!(opts.channels, 1 | 3) {
        return Err(Error::Invalid(format!(
            "images have 1 (grayscale) or 3 (RGB) channels, not {}",
            opts.channels
        )));
    }
    let mut paths = Vec::new();
    walk(root, 0, &mut paths)?;
    if paths.is_empty() {
        return Err(Error::format(root, "no PNG or JPEG images in the folder"));
    }
    paths.sort_by_cached_key(|p| order_key(p));
    let ids: Vec<String> = paths.iter().map(|p| relative_id(root, p)).collect();
    let labelling = label_items(&ids, &opts.classes);

    let (size, why) = match opts.size {
        Some((h, w)) => (
            (h, w),
            format!(
                "the model takes {w}x{h} (--resize scales images with the {RESIZE_FILTER_NAME})"
            ),
        ),
        None => {
            let (w, h) = image::image_dimensions(&paths[0])
                .map_err(|e| Error::format(&paths[0], format!("cannot decode image: {e}")))?;
            (
                (h as usize, w as usize),
                format!("{} is {w}x{h}: all images must share one size", ids[0]),
            )
        }
    };
    let d = size.0 * size.1 * opts.channels;
    if d == 0 {
        return Err(Error::format(&paths[0], "image has no pixels"));
    }
    if d > MAX_IMAGE_BYTES {
        return Err(Error::format(
            &paths[0],
            format!(
                "image is {}x{} (width x height): {d} bytes an item, above the {} MiB an image may \
                 take; --resize to the model's size",
                size.1,
                size.0,
                MAX_IMAGE_BYTES >> 20
            ),
        ));
    }
    let total = paths.len().saturating_mul(d);
    let mut pixels = Vec::new();
    pixels.try_reserve_exact(total).map_err(|_| {
        Error::format(
            root,
            format!("{} images of {d} bytes do not fit in memory", paths.len()),
        )
    })?;
    pixels.resize(total, 0);
    // Decode in parallel; the first error in item order wins so the message is deterministic.
    let errors: Vec<Option<Error>> = pixels
        .par_chunks_mut(d)
        .zip(paths.par_iter())
        .map(|(row, path)| match decode(path, opts, size, &why) {
            Ok(bytes) => {
                row.copy_from_slice(&bytes);
                None
            }
            Err(e) => Some(e),
        })
        .collect();
    if let Some(e) = errors.into_iter().flatten().next() {
        return Err(e);
    }
    Ok(Dataset {
        source: root.display().to_string(),
        height: size.0,
        width: size.1,
        channels: opts.channels,
        pixels,
        labels: labelling.labels,
        ids: Some(ids),
        class_names: labelling.class_names,
        unlabelled: labelling.unlabelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn labels_only_when_every_image_is_in_a_class_folder() {
        let nested = ids(&["3/a.png", "7/b/c.png"]);
        let l = label_items(&nested, &Classes::Numbered(10));
        assert_eq!(l.labels, Some(vec![3, 7]));
        let loose = ids(&["3/a.png", "b.png"]);
        let l = label_items(&loose, &Classes::Numbered(10));
        assert_eq!(l.labels, None);
        assert!(l.unlabelled.unwrap().contains("1 of 2 images"));
        let odd = ids(&["3/a.png", "other/b.png"]);
        let l = label_items(&odd, &Classes::Numbered(10));
        assert_eq!(l.labels, None);
        assert!(l.unlabelled.unwrap().contains("`other`"));
        let beyond = ids(&["12/a.png"]);
        assert_eq!(label_items(&beyond, &Classes::Numbered(10)).labels, None);
    }

    #[test]
    fn named_folders_are_classes_when_training_and_matched_by_name_after() {
        let set = ids(&["dog/1.png", "cat/2.png", "dog/x/3.png"]);
        let l = label_items(&set, &Classes::Any);
        assert_eq!(l.labels, Some(vec![1, 0, 1]));
        assert_eq!(l.class_names, ["cat", "dog"]);
        let model = Classes::Named(ids(&["dog", "cat", "bird"]));
        assert_eq!(label_items(&set, &model).labels, Some(vec![0, 1, 0]));
        let numbers = ids(&["3/a.png", "7/b.png"]);
        let l = label_items(&numbers, &Classes::Any);
        assert_eq!((l.labels, l.class_names.len()), (Some(vec![3, 7]), 0));
    }
}
