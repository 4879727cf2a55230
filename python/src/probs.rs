//! Full softmax probabilities of every worker, for `Model.predict_proba`.
//!
//! The library's backends return each worker's top class and its probability only; the whole
//! distribution is computed here, on the CPU, with the CPU backend's portable arithmetic: logits
//! `(x . w) / 255 + b` in f32 (one matrix product per block), then a max-shifted softmax.
//! To be replaced by the library's own `--probs-out` path when it has one.

use microtask::model::Ensemble;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Items per block: the block's f32 copy stays in cache.
const BLOCK: usize = 128;

/// `items` (`n * features` bytes) -> `n * workers * classes` probabilities, item-major.
pub fn probabilities(model: &Ensemble, items: &[u8]) -> Vec<f32> {
    let d = model.features();
    let (rows, c) = (model.rows(), model.classes);
    let n = items.len() / d.max(1);
    let mut out = vec![0f32; n * rows];
    if n == 0 || rows == 0 {
        return out;
    }
    let w = ArrayView2::from_shape((rows, d), &model.weight[..])
        .expect("a validated model's weight is rows x features");
    items
        .par_chunks(BLOCK * d)
        .zip(out.par_chunks_mut(BLOCK * rows))
        .for_each_init(Vec::new, |x: &mut Vec<f32>, (block, probs)| {
            let m = block.len() / d;
            x.clear();
            x.extend(block.iter().map(|&p| p as f32));
            let xv = ArrayView2::from_shape((m, d), &x[..]).expect("block is m x d");
            let mut z = ArrayViewMut2::from_shape((m, rows), probs).expect("out is m x rows");
            ndarray::linalg::general_mat_mul(1.0 / 255.0, &xv, &w.t(), 0.0, &mut z);
            for (k, p) in probs.chunks_exact_mut(c).enumerate() {
                let r = k % model.workers;
                softmax(p, &model.bias[r * c..(r + 1) * c]);
            }
        });
    out
}

/// Adds the bias, then the max-shifted softmax in place.
fn softmax(z: &mut [f32], bias: &[f32]) {
    let mut top = f32::NEG_INFINITY;
    for (v, b) in z.iter_mut().zip(bias) {
        *v += b;
        top = top.max(*v);
    }
    let mut sum = 0f32;
    for v in z.iter_mut() {
        *v = (*v - top).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    z.iter_mut().for_each(|v| *v *= inv);
}
