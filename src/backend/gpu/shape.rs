//! A batch as the classify kernels see it: the model's shape with the items' packing (4 u8, 2
//! f16 or 1 f32 per u32 word), the packing itself, and the batch-size limits a device sets.

use super::layout::TILE_ITEMS;
use crate::backend::Items;
use crate::error::{Error, Result};
use crate::model::{Ensemble, MAX_CLASSES};
use std::borrow::Cow;

/// Default upper bound on items per batch: big enough to amortise a submit, small enough that
/// K slots of buffers stay modest and the first results come back early.
pub const DEFAULT_BATCH: usize = 16_384;

/// The shape of a model and its items as the kernels see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    pub features: usize,
    /// Values per packed u32 word: 4 u8 pixels, 2 f16 or 1 f32 features.
    pub per_word: usize,
    /// u32 words per packed item row: `features.div_ceil(per_word)`.
    pub words: usize,
    pub rows: usize,
    pub classes: usize,
    pub workers: usize,
}

impl ModelShape {
    /// The shape for u8 pixels (see [`ModelShape::for_items`]).
    pub fn of(model: &Ensemble) -> Result<Self> {
        Self::for_items(model, 4)
    }

    /// Checks what the kernels can run on items packed `per_word` values a word (4: u8, 2: f16,
    /// 1: f32); `Error::Invalid` for a model they cannot.
    pub fn for_items(model: &Ensemble, per_word: usize) -> Result<Self> {
        if ![1, 2, 4].contains(&per_word) {
            return Err(Error::Invalid(format!(
                "{per_word} values per word: the kernels pack 4 (u8), 2 (f16) or 1 (f32)"
            )));
        }
        let features = model.features();
        if model.workers == 0 || model.classes == 0 || features == 0 {
            return Err(Error::Invalid(format!(
                "model has {} workers, {} classes and {features} features; the GPU kernels need \
                 at least one of each",
                model.workers, model.classes
            )));
        }
        if model.classes > MAX_CLASSES {
            return Err(Error::Invalid(format!(
                "model has {} classes; the GPU kernels support at most {MAX_CLASSES}",
                model.classes
            )));
        }
        let rows = model.rows();
        if model.weight.len() != rows * features || model.bias.len() != rows {
            return Err(Error::Invalid(format!(
                "model weight/bias hold {}/{} values; {} workers x {} classes x {features} \
                 features need {}/{rows}",
                model.weight.len(),
                model.bias.len(),
                model.workers,
                model.classes,
                rows * features
            )));
        }
        Ok(ModelShape {
            features,
            per_word,
            words: features.div_ceil(per_word),
            rows,
            classes: model.classes,
            workers: model.workers,
        })
    }

    /// Bytes per item in each per-slot device buffer: packed items, logits, labels, confidence.
    fn bytes_per_item(&self) -> [(u64, &'static str); 3] {
        [
            (self.words as u64 * 4, "packed items"),
            (self.rows as u64 * 4, "logits"),
            (self.workers as u64 * 4 * 2, "labels + confidence readback"),
        ]
    }
}

/// The most items one batch may hold on a device, and the limit that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLimit {
    pub items: usize,
    /// Which limit binds, with its value, e.g.
    /// `max_storage_buffer_binding_size (134217728 bytes) / 3136 bytes of packed items per item`.
    pub limit: String,
}

/// The batch-size limit of `shape` on a device with `limits`.
pub fn batch_limit(limits: &wgpu::Limits, shape: &ModelShape) -> BatchLimit {
    let binding = limits.max_storage_buffer_binding_size;
    let buffer = limits.max_buffer_size;
    let mut best = BatchLimit {
        items: u32::MAX as usize,
        limit: "u32 item indices in the shaders".into(),
    };
    for (per_item, what) in shape.bytes_per_item() {
        for (limit, name) in [
            (binding, "max_storage_buffer_binding_size"),
            (buffer, "max_buffer_size"),
        ] {
            let items = (limit / per_item.max(1)) as usize;
            if items < best.items {
                best = BatchLimit {
                    items,
                    limit: format!("{name} ({limit} bytes) / {per_item} bytes of {what} per item"),
                };
            }
        }
    }
    let dim = limits.max_compute_workgroups_per_dimension as usize;
    let dispatch = dim * TILE_ITEMS as usize;
    if dispatch < best.items {
        best = BatchLimit {
            items: dispatch,
            limit: format!(
                "max_compute_workgroups_per_dimension ({dim}) x {TILE_ITEMS} items per workgroup"
            ),
        };
    }
    // u32 flat indices: item * rows + row in the logits buffer.
    let index = u32::MAX as usize / shape.rows.max(1);
    if index < best.items {
        best = BatchLimit {
            items: index,
            limit: format!("u32 logit indices ({} rows per item)", shape.rows),
        };
    }
    best
}

/// Items in the default batch: DEFAULT_BATCH within the limit, rounded down to a whole number of
/// CPU blocks so a CPU fallback or hybrid run splits the items exactly as the CPU backend does.
pub fn default_batch(limit: &BatchLimit) -> usize {
    let block = crate::backend::cpu::BLOCK_ITEMS;
    let b = DEFAULT_BATCH.min(limit.items);
    if b >= block {
        b / block * block
    } else {
        b.max(1)
    }
}

/// Packs `n` rows of `features` values into rows of whole little-endian u32 words (4 bytes, 2
/// halves or 1 float a word, zero padded), as bytes ready for `write_buffer`. Rows that are
/// already whole words are passed through.
pub fn pack_items<'a>(items: impl Into<Items<'a>>, features: usize) -> Cow<'a, [u8]> {
    let items = items.into();
    match items {
        Items::U8(bytes) => pack_bytes(bytes, features),
        Items::F16(h) if !features.is_multiple_of(2) => {
            let n = h.len() / features.max(1);
            let mut out = vec![0u16; n * (features + 1)];
            for (src, dst) in h
                .chunks_exact(features)
                .zip(out.chunks_exact_mut(features + 1))
            {
                dst[..features].copy_from_slice(src);
            }
            Cow::Owned(bytemuck::cast_slice(&out).to_vec())
        }
        // Whole words already (little-endian host: the values are the words' halves/bits).
        _ => Cow::Borrowed(items.bytes()),
    }
}

fn pack_bytes(items: &[u8], features: usize) -> Cow<'_, [u8]> {
    if features.is_multiple_of(4) && cfg!(target_endian = "little") {
        return Cow::Borrowed(items);
    }
    let words = features.div_ceil(4);
    let n = items.len() / features.max(1);
    let mut out = vec![0u8; n * words * 4];
    for (src, dst) in items
        .chunks_exact(features)
        .zip(out.chunks_exact_mut(words * 4))
    {
        dst[..features].copy_from_slice(src);
    }
    // Byte k of a row is byte k % 4 of word k / 4 in little-endian order; on a big-endian host
    // swap each word so the shader's `(word >> 8 * b) & 0xff` still finds feature 4w + b.
    if cfg!(target_endian = "big") {
        for w in out.chunks_exact_mut(4) {
            w.reverse();
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_pads_rows_to_whole_words() {
        let items = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let p = pack_items(&items, 5);
        assert_eq!(&p[..], &[1, 2, 3, 4, 5, 0, 0, 0, 6, 7, 8, 9, 10, 0, 0, 0]);
        let q = pack_items(&items[..8], 4);
        assert!(matches!(q, Cow::Borrowed(_)));
    }

    #[test]
    fn halves_pack_two_a_word_and_floats_one() {
        let h = [1u16, 2, 3, 4, 5, 6];
        let p = pack_items(&h[..], 3);
        let words: &[u16] = bytemuck::cast_slice(&p);
        assert_eq!(words, &[1, 2, 3, 0, 4, 5, 6, 0]);
        assert!(matches!(pack_items(&h[..], 2), Cow::Borrowed(_)));
        let f = [1.5f32, 2.5, 3.5];
        assert!(matches!(pack_items(&f[..], 3), Cow::Borrowed(_)));
        let m = Ensemble::zeros(1, 2, 1, 5);
        assert_eq!(ModelShape::for_items(&m, 2).unwrap().words, 3);
        assert_eq!(ModelShape::for_items(&m, 1).unwrap().words, 5);
        assert_eq!(ModelShape::of(&m).unwrap().words, 2);
        assert!(ModelShape::for_items(&m, 3).is_err());
    }

    #[test]
    fn batch_limit_names_the_binding_limit() {
        let limits = wgpu::Limits::default();
        let shape = ModelShape {
            features: 784,
            per_word: 4,
            words: 196,
            rows: 50,
            classes: 10,
            workers: 5,
        };
        let l = batch_limit(&limits, &shape);
        assert_eq!(
            l.items,
            (limits.max_storage_buffer_binding_size / 784) as usize
        );
        assert!(l.limit.contains("max_storage_buffer_binding_size"));
        assert_eq!(default_batch(&l), DEFAULT_BATCH);
    }
}
