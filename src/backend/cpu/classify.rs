//! Dense softmax classification on the CPU: rows (u8 pixels, f16 or f32 features) in
//! cache-sized blocks, the logits of the whole ensemble (one weight matrix, copied once per call
//! onto a cache-line boundary) from the SIMD kernels of [`super::kernel`], then softmax/argmax
//! per worker. CPU twin of `shaders/classify_logits.wgsl` and `shaders/classify.wgsl`.

use crate::backend::{Items, Predictions};
use crate::error::Result;
use crate::model::Ensemble;
use rayon::prelude::*;

use super::aligned::AlignedWeights;
use super::kernel::{self, Isa};

/// Items per block: the f32 copy of a block (BLOCK_ITEMS x 784 x 4 bytes) stays in L2.
pub const BLOCK_ITEMS: usize = 128;

/// Scratch space reused by one thread across blocks (no per-item allocation).
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    logits: Vec<f32>,
}

pub fn classify(model: &Ensemble, items: Items<'_>, out: &mut Predictions) -> Result<()> {
    classify_with(Isa::detect(), model, items, out)
}

/// [`classify`] with the kernel of `isa` (lowered to what the CPU has).
fn classify_with(
    isa: Isa,
    model: &Ensemble,
    items: Items<'_>,
    out: &mut Predictions,
) -> Result<()> {
    let n = items.rows(model.features())?;
    let r = model.workers;
    out.workers = r;
    let start = out.labels.len();
    out.labels.resize(start + n * r, 0);
    out.confidence.resize(start + n * r, 0.0);
    if r == 0 {
        return Ok(()); // no workers, no votes
    }
    let (labels, conf) = (&mut out.labels[start..], &mut out.confidence[start..]);
    classify_into_with(isa, model, items, labels, conf);
    Ok(())
}

/// Classifies `items` (whole rows of `model.features()` values) into `labels`/`conf`
/// (`n * workers` entries each), in the blocks of the CPU backend: what the GPU scheduler runs
/// for the batches it leaves to the CPU.
pub fn classify_into(model: &Ensemble, items: Items<'_>, labels: &mut [u32], conf: &mut [f32]) {
    classify_into_with(Isa::detect(), model, items, labels, conf)
}

fn classify_into_with(
    isa: Isa,
    model: &Ensemble,
    items: Items<'_>,
    labels: &mut [u32],
    conf: &mut [f32],
) {
    let (d, r) = (model.features(), model.workers);
    if d == 0 || r == 0 {
        return;
    }
    let n = items.len() / d;
    let weight = AlignedWeights::new(&model.weight);
    let weight = weight.as_slice();
    labels[..n * r]
        .par_chunks_mut(BLOCK_ITEMS * r)
        .zip(conf[..n * r].par_chunks_mut(BLOCK_ITEMS * r))
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (b, (labels, conf))| {
            let first = b * BLOCK_ITEMS;
            let block = items.slice(first * d..(first + labels.len() / r) * d);
            block_with(isa, model, weight, block, labels, conf, scratch)
        });
}

/// Classifies one block of items: `labels`/`conf` get `items * workers` entries.
/// Logit of worker r, class c: `scale * (sum_k x_k * W[r*C+c, k]) + b[r*C+c]` with `x_k` the raw
/// value (a byte's integer value, scale 1/255; a feature, scale 1), as the shader computes it.
/// `x` is scratch for the portable kernel, `logits` for the block's `items * workers * classes`
/// logits.
pub fn classify_block<'b>(
    model: &Ensemble,
    block: impl Into<Items<'b>>,
    labels: &mut [u32],
    conf: &mut [f32],
    x: &mut Vec<f32>,
    logits: &mut Vec<f32>,
) {
    let mut scratch = Scratch {
        x: std::mem::take(x),
        logits: std::mem::take(logits),
    };
    let block = block.into();
    block_with(
        Isa::detect(),
        model,
        &model.weight,
        block,
        labels,
        conf,
        &mut scratch,
    );
    *x = scratch.x;
    *logits = scratch.logits;
}

/// The logits of a block before the bias (`n * rows`, as [`classify_block`] computes them for
/// its softmax), for callers that need every class's probability.
pub fn block_logits<'b>(
    model: &Ensemble,
    block: impl Into<Items<'b>>,
    logits: &mut Vec<f32>,
    x: &mut Vec<f32>,
) {
    let block = block.into();
    let (d, rows) = (model.features(), model.rows());
    logits.clear();
    logits.resize(block.len() / d.max(1) * rows, 0.0);
    kernel::logits(Isa::detect(), block, d, &model.weight, rows, logits, x);
}

fn block_with(
    isa: Isa,
    model: &Ensemble,
    weight: &[f32],
    block: Items<'_>,
    labels: &mut [u32],
    conf: &mut [f32],
    scratch: &mut Scratch,
) {
    let d = model.features();
    let n = block.len() / d;
    let rows = model.rows();
    let logits = &mut scratch.logits;
    logits.clear();
    logits.resize(n * rows, 0.0);
    kernel::logits(isa, block, d, weight, rows, logits, &mut scratch.x);
    kernel::softmax(isa, logits, &model.bias, model.classes, labels, conf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::Rng;

    fn random_model(workers: usize, classes: usize, d: usize, scale: f32, seed: u64) -> Ensemble {
        let mut m = Ensemble::zeros(workers, classes, 1, d);
        let mut rng = Rng::new(seed);
        m.weight
            .iter_mut()
            .for_each(|w| *w = rng.range(-scale, scale));
        m.bias.iter_mut().for_each(|b| *b = rng.range(-1.0, 1.0));
        m
    }

    fn random_items(n: usize, d: usize, seed: u64) -> Vec<u8> {
        let mut rng = Rng::new(seed);
        (0..n * d).map(|_| rng.below(256) as u8).collect()
    }

    /// One vote of the plain scalar reference (f64 throughout).
    struct Want {
        label: u32,
        conf: f64,
        /// Top logit minus the runner-up.
        gap: f64,
        /// The largest `scale * sum_k |x_k w_k| + |b|` of the worker's logits: f32 rounding of a
        /// logit is a small multiple of 2^-24 times this.
        magnitude: f64,
    }

    /// Random features in [-3, 3]: f32, and the same rounded to f16 (bit patterns).
    fn random_features(n: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<u16>) {
        let mut rng = Rng::new(seed);
        let f: Vec<f32> = (0..n * d).map(|_| rng.range(-3.0, 3.0)).collect();
        let h = f
            .iter()
            .map(|&v| half::f16::from_f32(v).to_bits())
            .collect();
        (f, h)
    }

    /// The items' values as f64 (the raw byte value for pixels) and the scale of the product.
    fn values(items: Items<'_>) -> (Vec<f64>, f64) {
        match items {
            Items::U8(v) => (v.iter().map(|&p| p as f64).collect(), 1.0 / 255.0),
            Items::F16(v) => (
                v.iter()
                    .map(|&b| half::f16::from_bits(b).to_f64())
                    .collect(),
                1.0,
            ),
            Items::F32(v) => (v.iter().map(|&x| x as f64).collect(), 1.0),
        }
    }

    fn reference(model: &Ensemble, items: Items<'_>) -> Vec<Want> {
        let (d, c) = (model.features(), model.classes);
        let (items, scale) = values(items);
        let mut out = Vec::new();
        for x in items.chunks_exact(d) {
            for r in 0..model.workers {
                let mut magnitude = 0f64;
                let z: Vec<f64> = (0..c)
                    .map(|k| {
                        let j = r * c + k;
                        let w = &model.weight[j * d..(j + 1) * d];
                        let terms = x.iter().zip(w).map(|(&p, &w)| p * w as f64);
                        let (dot, abs) = terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()));
                        let b = model.bias[j] as f64;
                        magnitude = magnitude.max(abs * scale + b.abs());
                        dot * scale + b
                    })
                    .collect();
                let mut best = 0;
                for k in 0..c {
                    if z[k] > z[best] {
                        best = k;
                    }
                }
                let top = z[best];
                let sum: f64 = z.iter().map(|&v| (v - top).exp()).sum();
                let second = (0..c)
                    .filter(|&k| k != best)
                    .map(|k| z[k])
                    .fold(f64::NEG_INFINITY, f64::max);
                out.push(Want {
                    label: best as u32,
                    conf: 1.0 / sum,
                    gap: top - second,
                    magnitude,
                });
            }
        }
        out
    }

    /// Labels equal unless the reference's top two logits are within rounding of each other;
    /// confidences within 1e-5 (or, for logits in the hundreds, what f32 rounding allows).
    fn check<'a>(isa: Isa, model: &Ensemble, items: impl Into<Items<'a>>) {
        let items = items.into();
        let mut out = Predictions::default();
        classify_with(isa, model, items, &mut out).unwrap();
        let want = reference(model, items);
        assert_eq!(out.labels.len(), want.len());
        let what = format!(
            "{isa:?}: {} workers x {} classes, d = {}, n = {}, {}",
            model.workers,
            model.classes,
            model.features(),
            items.len() / model.features(),
            items.type_name()
        );
        for (k, w) in want.iter().enumerate() {
            let rounding = 5e-7 * w.magnitude;
            if w.gap > 1e-4f64.max(2.0 * rounding) {
                assert_eq!(out.labels[k], w.label, "{what}: vote {k}, gap {}", w.gap);
            }
            let got = out.confidence[k] as f64;
            let tol = 1e-5f64.max(rounding);
            assert!(
                (got - w.conf).abs() <= tol,
                "{what}: vote {k}: {got} vs {} (tolerance {tol})",
                w.conf
            );
        }
    }

    #[test]
    fn every_kernel_matches_the_reference_on_awkward_sizes() {
        let mut seed = 1;
        for isa in Isa::available() {
            for d in [784, 5, 17, 1000] {
                for classes in [2, 10, 64] {
                    for workers in [1, 5, 7] {
                        seed += 1;
                        let model = random_model(workers, classes, d, 0.05, seed);
                        for n in [1, 65] {
                            check(isa, &model, &random_items(n, d, seed + 100));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_kernel_matches_the_reference_on_batch_sizes() {
        for isa in Isa::available() {
            // The last two give logits hundreds apart: exp underflows, confidences near 1.
            for (workers, classes, d, scale) in [
                (1, 10, 784, 0.05),
                (5, 10, 784, 0.2),
                (7, 64, 17, 1.0),
                (2, 10, 784, 10.0),
                (3, 33, 100, 30.0),
            ] {
                let model = random_model(workers, classes, d, scale, 7);
                for n in [1, 63, 64, 65, 127, 128, 129, 1000] {
                    check(isa, &model, &random_items(n, d, n as u64));
                }
            }
        }
    }

    #[test]
    fn an_item_scores_the_same_alone_or_anywhere_in_a_batch() {
        // The SIMD kernels only: the portable GEMM's summation order depends on the batch shape.
        for isa in Isa::available().into_iter().filter(|&i| i != Isa::Portable) {
            let model = random_model(5, 10, 784, 0.05, 3);
            let items = random_items(301, 784, 4);
            let mut all = Predictions::default();
            classify_with(isa, &model, Items::U8(&items), &mut all).unwrap();
            for (i, x) in items.chunks_exact(784).enumerate() {
                let mut one = Predictions::default();
                classify_with(isa, &model, Items::U8(x), &mut one).unwrap();
                assert_eq!(
                    one.labels[..],
                    all.labels[i * 5..(i + 1) * 5],
                    "{isa:?} item {i}"
                );
                assert_eq!(
                    one.confidence[..],
                    all.confidence[i * 5..(i + 1) * 5],
                    "{isa:?}"
                );
            }
        }
    }

    #[test]
    fn every_kernel_matches_the_reference_on_f16_and_f32_features() {
        let mut seed = 500;
        for isa in Isa::available() {
            for d in [512, 768, 5, 17, 33] {
                for (workers, classes) in [(1, 10), (5, 10), (3, 64), (7, 2)] {
                    seed += 1;
                    let model = random_model(workers, classes, d, 0.2, seed);
                    for n in [1, 2, 65, 129] {
                        let (f, h) = random_features(n, d, seed + 7);
                        check(isa, &model, &f[..]);
                        check(isa, &model, &h[..]);
                    }
                }
            }
        }
    }

    #[test]
    fn f16_features_score_as_their_f32_values() {
        // Every f16 is exactly an f32: the same items as f16 bits and as f32 give the same votes
        // on the SIMD kernels (which convert inline and sum in the same order).
        for isa in Isa::available().into_iter().filter(|&i| i != Isa::Portable) {
            let model = random_model(5, 10, 512, 0.2, 3);
            let (_, h) = random_features(300, 512, 4);
            let f: Vec<f32> = h
                .iter()
                .map(|&b| half::f16::from_bits(b).to_f32())
                .collect();
            let (mut a, mut b) = (Predictions::default(), Predictions::default());
            classify_with(isa, &model, Items::F16(&h), &mut a).unwrap();
            classify_with(isa, &model, Items::F32(&f), &mut b).unwrap();
            assert_eq!(a, b, "{isa:?}");
            // Alone or in a batch: the same bits.
            for (i, x) in f.chunks_exact(512).enumerate().step_by(37) {
                let mut one = Predictions::default();
                classify_with(isa, &model, Items::F32(x), &mut one).unwrap();
                assert_eq!(
                    one.confidence[..],
                    b.confidence[i * 5..(i + 1) * 5],
                    "{isa:?}"
                );
            }
        }
    }

    #[test]
    fn the_scheduler_entry_point_matches_the_backend() {
        let model = random_model(3, 10, 100, 0.2, 8);
        let (f, _) = random_features(333, 100, 9);
        let mut want = Predictions::default();
        classify(&model, Items::F32(&f), &mut want).unwrap();
        let (mut labels, mut conf) = (vec![0; 999], vec![0.0; 999]);
        classify_into(&model, Items::F32(&f), &mut labels, &mut conf);
        assert_eq!((labels, conf), (want.labels, want.confidence));
        let err = classify(&model, Items::F32(&f[..101]), &mut Predictions::default()).unwrap_err();
        assert!(err.to_string().contains("101 f32 values"), "{err}");
    }

    #[test]
    fn an_ensemble_of_no_workers_gives_no_votes() {
        for isa in Isa::available() {
            let model = Ensemble::zeros(0, 10, 28, 28);
            let mut out = Predictions::default();
            classify_with(isa, &model, Items::U8(&random_items(70, 784, 1)), &mut out).unwrap();
            assert!(out.labels.is_empty() && out.confidence.is_empty());
        }
    }

    #[test]
    fn ties_break_to_the_lowest_class() {
        for isa in Isa::available() {
            // All logits equal: class 0 with probability 1/C.
            let model = Ensemble::zeros(2, 10, 1, 33);
            let mut out = Predictions::default();
            classify_with(isa, &model, Items::U8(&random_items(3, 33, 1)), &mut out).unwrap();
            assert!(out.labels.iter().all(|&l| l == 0));
            assert!(out.confidence.iter().all(|&p| (p - 0.1).abs() < 1e-6));
            // Classes 37 and 45 of 64 share the top logit.
            let mut model = random_model(1, 64, 20, 0.05, 9);
            for k in [37, 45] {
                model.weight[k * 20..(k + 1) * 20].fill(0.5);
                model.bias[k] = 2.0;
            }
            let mut out = Predictions::default();
            classify_with(isa, &model, Items::U8(&random_items(5, 20, 2)), &mut out).unwrap();
            assert!(
                out.labels.iter().all(|&l| l == 37),
                "{isa:?}: {:?}",
                out.labels
            );
        }
    }
}
