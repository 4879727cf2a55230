//! Dense softmax classification on the CPU: u8 rows in cache-sized blocks, one matrix product
//! for the whole ensemble, then softmax/argmax per worker. CPU twin of `shaders/classify.wgsl`.

use crate::backend::Predictions;
use crate::error::{Error, Result};
use crate::model::Ensemble;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Items per block: the f32 copy of a block (BLOCK_ITEMS x 784 x 4 bytes) stays in L2.
pub const BLOCK_ITEMS: usize = 128;

/// Scratch space reused by one thread across blocks (no per-item allocation).
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    logits: Vec<f32>,
}

pub fn classify(model: &Ensemble, items: &[u8], out: &mut Predictions) -> Result<()> {
    let d = model.features();
    if d == 0 || items.len() % d != 0 {
        return Err(Error::Invalid(format!(
            "items of {} bytes do not divide into rows of {d} features",
            items.len()
        )));
    }
    let n = items.len() / d;
    let r = model.workers;
    out.workers = r;
    let start = out.labels.len();
    out.labels.resize(start + n * r, 0);
    out.confidence.resize(start + n * r, 0.0);
    items
        .par_chunks(BLOCK_ITEMS * d)
        .zip(out.labels[start..].par_chunks_mut(BLOCK_ITEMS * r))
        .zip(out.confidence[start..].par_chunks_mut(BLOCK_ITEMS * r))
        .for_each_init(Scratch::default, |scratch, ((block, labels), conf)| {
            classify_block(
                model,
                block,
                labels,
                conf,
                &mut scratch.x,
                &mut scratch.logits,
            )
        });
    Ok(())
}

/// Classifies one block of items: `labels`/`conf` get `items * workers` entries.
/// Logit of worker r, class c: `(sum_k x_k * W[r*C+c, k]) / 255 + b[r*C+c]` with `x_k` the raw
/// byte value, as the shader computes it.
pub fn classify_block(
    model: &Ensemble,
    block: &[u8],
    labels: &mut [u32],
    conf: &mut [f32],
    x: &mut Vec<f32>,
    logits: &mut Vec<f32>,
) {
    let d = model.features();
    let n = block.len() / d;
    let rows = model.rows();
    x.clear();
    x.extend(block.iter().map(|&p| p as f32));
    logits.clear();
    logits.resize(n * rows, 0.0);
    let xv = ArrayView2::from_shape((n, d), &x[..]).expect("block is n x d by construction");
    let wv = ArrayView2::from_shape((rows, d), &model.weight[..]).expect("model validated");
    let mut lv = ArrayViewMut2::from_shape((n, rows), &mut logits[..]).expect("n x rows");
    ndarray::linalg::general_mat_mul(1.0 / 255.0, &xv, &wv.t(), 0.0, &mut lv);
    let c = model.classes;
    for (i, item_logits) in logits.chunks_exact_mut(rows).enumerate() {
        for (w, z) in item_logits.chunks_exact_mut(c).enumerate() {
            let b = &model.bias[w * c..(w + 1) * c];
            let (label, p) = softmax_argmax(z, b);
            labels[i * model.workers + w] = label;
            conf[i * model.workers + w] = p;
        }
    }
}

/// Adds the bias, then returns the argmax (ties to the lowest class) and its softmax probability.
pub fn softmax_argmax(z: &mut [f32], bias: &[f32]) -> (u32, f32) {
    let mut best = 0;
    for k in 0..z.len() {
        z[k] += bias[k];
        if z[k] > z[best] {
            best = k;
        }
    }
    let top = z[best];
    let sum: f32 = z.iter().map(|&v| (v - top).exp()).sum();
    (best as u32, 1.0 / sum)
}
