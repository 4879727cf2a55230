//! SIMD kernels of the dense classifier, chosen at run time: AVX-512, AVX2+FMA, or a portable
//! matrix product (ndarray) on any other CPU. Items are u8 pixels (widened inline, the sums
//! scaled by 1/255), f16 features (converted inline with F16C, exactly) or f32 features.
//!
//! The product is computed as dot products, not as a padded GEMM: a tile of `I` items times `G`
//! weight rows keeps `I * G` vector accumulators in registers; per step of one vector width it
//! widens `I` x 16 (or 8) values to f32 inline and loads each weight vector once for all `I`
//! items (AVX-512: 2 items x up to 12 rows; AVX2: 2 x 5). The rows of the whole ensemble are
//! split into groups of near-equal size; a block of items is swept once per group, so the
//! group's weights (10 rows x 784 x 4 = 31 KB) stay in L1 while items stream by, prefetched a few
//! items ahead. The lane sums are reduced in a fixed order at the end, so an item's logits depend
//! only on the item and the kernel, never on its position in a block or the group it fell in.
//!
//! The softmax then runs across items: 16 (or 8) items per vector, one gather per class, a
//! polynomial `exp` (about 2 ulp), ties to the lowest class as in [`softmax_argmax`].

use crate::backend::Items;
use std::sync::OnceLock;

/// The instruction set a kernel is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 F/BW/VL (+ F16C): 16 lanes, masked tails, vector softmax.
    Avx512,
    /// AVX2 + FMA (+ F16C): 8 lanes.
    Avx2,
    /// Any CPU: a copy to f32 (none for f32 items), then ndarray's matrix product.
    Portable,
}

impl Isa {
    /// The best kernel this CPU runs; `MICROTASK_CPU_KERNEL=avx512|avx2|portable` picks a lower
    /// one (for benchmarks and debugging; asking for one the CPU lacks gives the best it has).
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            let best = Isa::best();
            match std::env::var("MICROTASK_CPU_KERNEL").as_deref() {
                Ok("portable") => Isa::Portable,
                Ok("avx2") if best != Isa::Portable => Isa::Avx2,
                _ => best,
            }
        })
    }

    /// The best kernel this CPU runs, ignoring the environment.
    pub fn best() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            // F16C (f16 -> f32) came before AVX2 in every x86 line; checked all the same.
            let f16c = is_x86_feature_detected!("f16c");
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
                && f16c
            {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && f16c {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// `self`, or the best this CPU has if that is lower.
    fn min_with_best(self) -> Isa {
        let best = Isa::best();
        if self <= best {
            self
        } else {
            best
        }
    }

    /// Every kernel this CPU runs, best first (the tests compare them all).
    #[cfg(test)]
    pub fn available() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .filter(|&isa| isa <= Isa::best())
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2+fma",
            Isa::Portable => "portable",
        }
    }
}

impl PartialOrd for Isa {
    /// `Portable < Avx2 < Avx512`: a CPU that runs one runs all lower ones.
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        let rank = |i: &Isa| match i {
            Isa::Portable => 0,
            Isa::Avx2 => 1,
            Isa::Avx512 => 2,
        };
        rank(self).partial_cmp(&rank(other))
    }
}

/// `logits[i * rows + j] = scale * sum_k block[i * d + k] * weight[j * d + k]` for every item `i`
/// of `block` (`n * d` values) and row `j < rows`, with `scale` 1/255 for u8 pixels and 1 for
/// features. `x` is scratch for the portable kernel.
pub fn logits<'b>(
    isa: Isa,
    block: impl Into<Items<'b>>,
    d: usize,
    weight: &[f32],
    rows: usize,
    logits: &mut [f32],
    x: &mut Vec<f32>,
) {
    let block = block.into();
    assert!(
        d > 0 && block.len().is_multiple_of(d),
        "block is n x d values"
    );
    let n = block.len() / d;
    assert_eq!(weight.len(), rows * d, "weight is rows x d");
    assert_eq!(logits.len(), n * rows, "logits is n x rows");
    let scale = block.scale();
    // Never run a kernel the CPU lacks, whatever the caller asked for.
    #[cfg(target_arch = "x86_64")]
    match isa.min_with_best() {
        // SAFETY: `min_with_best` returned Avx512 only if the CPU has avx512f/bw/vl and f16c;
        // the sizes were checked above.
        Isa::Avx512 => unsafe {
            use x86::avx512::logits as k;
            return match block {
                Items::U8(b) => k(b, d, weight, rows, logits, scale),
                Items::F16(b) => k(b, d, weight, rows, logits, scale),
                Items::F32(b) => k(b, d, weight, rows, logits, scale),
            };
        },
        // SAFETY: as above, for avx2, fma and f16c.
        Isa::Avx2 => unsafe {
            use x86::avx2::logits as k;
            return match block {
                Items::U8(b) => k(b, d, weight, rows, logits, scale),
                Items::F16(b) => k(b, d, weight, rows, logits, scale),
                Items::F32(b) => k(b, d, weight, rows, logits, scale),
            };
        },
        Isa::Portable => {}
    }
    let _ = isa;
    portable_logits(block, d, weight, rows, logits, x)
}

/// A copy of the block to f32 (f32 items are read in place), then one matrix product
/// (matrixmultiply via ndarray) scaled by 1/255 for pixels.
fn portable_logits(
    block: Items<'_>,
    d: usize,
    weight: &[f32],
    rows: usize,
    logits: &mut [f32],
    x: &mut Vec<f32>,
) {
    use ndarray::{ArrayView2, ArrayViewMut2};
    let n = block.len() / d;
    let values: &[f32] = match block {
        Items::U8(b) => {
            x.clear();
            x.extend(b.iter().map(|&p| p as f32));
            x
        }
        Items::F16(h) => {
            x.clear();
            x.extend(h.iter().map(|&b| half::f16::from_bits(b).to_f32()));
            x
        }
        Items::F32(v) => v,
    };
    let xv = ArrayView2::from_shape((n, d), values).expect("block is n x d by construction");
    let wv = ArrayView2::from_shape((rows, d), weight).expect("checked by the caller");
    let mut lv = ArrayViewMut2::from_shape((n, rows), logits).expect("checked by the caller");
    ndarray::linalg::general_mat_mul(block.scale(), &xv, &wv.t(), 0.0, &mut lv);
}

/// Adds the bias to each worker's `classes` logits of every item, then writes the argmax (ties to
/// the lowest class) and its softmax probability: `labels`/`conf` get `n * workers` entries.
pub fn softmax(
    isa: Isa,
    logits: &mut [f32],
    bias: &[f32],
    classes: usize,
    labels: &mut [u32],
    conf: &mut [f32],
) {
    let rows = bias.len();
    assert!(
        classes > 0 && rows.is_multiple_of(classes),
        "bias is workers x classes"
    );
    assert_eq!(logits.len() % rows.max(1), 0, "logits is n x rows");
    let votes = logits.len() / rows.max(1) * (rows / classes);
    assert!(
        labels.len() >= votes && conf.len() >= votes,
        "one vote per item and worker"
    );
    if rows == 0 {
        return; // no workers, no votes
    }
    // The vector softmaxes keep one item's logits in a MAX_CLASSES-wide scratch row.
    assert!(
        classes <= crate::model::MAX_CLASSES,
        "at most MAX_CLASSES classes"
    );
    #[cfg(target_arch = "x86_64")]
    if isa.min_with_best() == Isa::Avx512 {
        // SAFETY: the CPU has avx512f/bw/vl (checked by `min_with_best`); sizes checked above.
        unsafe { x86::avx512::softmax(logits, bias, classes, labels, conf) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa.min_with_best() == Isa::Avx2 {
        // SAFETY: the CPU has avx2 and fma (checked by `min_with_best`); sizes checked above.
        unsafe { x86::avx2::softmax(logits, bias, classes, labels, conf) };
        return;
    }
    let _ = isa;
    for (k, z) in logits.chunks_exact_mut(classes).enumerate() {
        let w = k % (rows / classes);
        let (label, p) = softmax_argmax(z, &bias[w * classes..(w + 1) * classes]);
        labels[k] = label;
        conf[k] = p;
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

#[cfg(target_arch = "x86_64")]
mod x86;
