//! SIMD kernels of the dense classifier, chosen at run time: AVX-512, AVX2+FMA, or a portable
//! matrix product (ndarray) on any other CPU.
//!
//! The product is computed as dot products, not as a padded GEMM: a tile of `I` items times `G`
//! weight rows keeps `I * G` vector accumulators in registers; per step of one vector width it
//! widens `I` x 16 (or 8) bytes to f32 and loads each weight vector once for all `I` items. Rows
//! are split into groups of at most [`Isa::max_group`]; a block of items is swept once per group,
//! so the group's weights (10 rows x 784 x 4 = 31 KB) stay in L1 while items stream by. The lane
//! sums are reduced in a fixed order at the end, so an item's logits depend only on the item and
//! the kernel, never on its position in a block.

use std::sync::OnceLock;

/// The instruction set a kernel is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 F/BW/VL: 16 lanes, masked tails, vector softmax.
    Avx512,
    /// AVX2 + FMA: 8 lanes.
    Avx2,
    /// Any CPU: u8 -> f32 copy, then ndarray's matrix product.
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
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
            {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Every kernel this CPU runs, best first (the tests compare them all).
    #[cfg(test)]
    pub fn available() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .filter(|&isa| isa <= Isa::best())
            .collect()
    }
}

impl Isa {
    #[cfg(test)]
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

/// Splits `rows` into `ceil(rows / max)` groups of near-equal size: `(first row, rows)`.
fn groups(rows: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let count = rows.div_ceil(max.max(1)).max(1);
    let (base, extra) = (rows / count, rows % count);
    (0..count).scan(0, move |start, g| {
        let len = base + usize::from(g < extra);
        let first = *start;
        *start += len;
        Some((first, len))
    })
}

/// `logits[i * rows + j] = (sum_k block[i * d + k] * weight[j * d + k]) / 255` for every item `i`
/// of `block` (`n * d` bytes) and row `j < rows`. `x` is scratch for the portable kernel.
pub fn logits(
    isa: Isa,
    block: &[u8],
    d: usize,
    weight: &[f32],
    rows: usize,
    logits: &mut [f32],
    x: &mut Vec<f32>,
) {
    assert!(
        d > 0 && block.len().is_multiple_of(d),
        "block is n x d bytes"
    );
    let n = block.len() / d;
    assert_eq!(weight.len(), rows * d, "weight is rows x d");
    assert_eq!(logits.len(), n * rows, "logits is n x rows");
    // Never run a kernel the CPU lacks, whatever the caller asked for.
    match isa.min_with_best() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `min_with_best` returned Avx512 only if the CPU has avx512f/bw/vl; the sizes
        // were checked above.
        Isa::Avx512 => unsafe { x86::avx512::logits(block, d, weight, rows, logits) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for avx2 and fma.
        Isa::Avx2 => unsafe { x86::avx2::logits(block, d, weight, rows, logits) },
        _ => portable_logits(block, d, weight, rows, logits, x),
    }
}

impl Isa {
    /// `self`, or the best this CPU has if that is lower.
    fn min_with_best(self) -> Isa {
        let best = Isa::best();
        if self <= best {
            self
        } else {
            best
        }
    }
}

/// u8 -> f32 copy of the block, then one matrix product (matrixmultiply via ndarray).
fn portable_logits(
    block: &[u8],
    d: usize,
    weight: &[f32],
    rows: usize,
    logits: &mut [f32],
    x: &mut Vec<f32>,
) {
    use ndarray::{ArrayView2, ArrayViewMut2};
    let n = block.len() / d;
    x.clear();
    x.extend(block.iter().map(|&p| p as f32));
    let xv = ArrayView2::from_shape((n, d), &x[..]).expect("block is n x d by construction");
    let wv = ArrayView2::from_shape((rows, d), weight).expect("checked by the caller");
    let mut lv = ArrayViewMut2::from_shape((n, rows), logits).expect("checked by the caller");
    ndarray::linalg::general_mat_mul(1.0 / 255.0, &xv, &wv.t(), 0.0, &mut lv);
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
    #[cfg(target_arch = "x86_64")]
    if isa.min_with_best() == Isa::Avx512 {
        assert!(
            classes <= crate::model::MAX_CLASSES,
            "at most MAX_CLASSES classes"
        );
        // SAFETY: the CPU has avx512f/bw/vl (checked by `min_with_best`); sizes checked above.
        unsafe { x86::avx512::softmax(logits, bias, classes, labels, conf) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa.min_with_best() == Isa::Avx2 {
        assert!(
            classes <= crate::model::MAX_CLASSES,
            "at most MAX_CLASSES classes"
        );
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
mod x86 {
    use super::groups;

    /// One tile's operands: `I` items of `d` bytes from `x`, `G` weight rows of `d` floats from
    /// `w`; item `a`'s logit for row `j` goes to `out[a * stride + j]`.
    #[derive(Clone, Copy)]
    pub struct Tile {
        pub x: *const u8,
        pub d: usize,
        pub w: *const f32,
        pub out: *mut f32,
        pub stride: usize,
    }

    /// Items ahead of the current tile whose bytes are prefetched.
    const PREFETCH_ITEMS: usize = 4;

    /// Asks for every cache line of `bytes` to be brought into L1.
    #[inline(always)]
    fn prefetch(bytes: &[u8]) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for line in bytes.chunks(64) {
            // SAFETY: a prefetch never faults; the address is inside `bytes`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr() as *const i8) };
        }
    }

    /// Calls `$f::<$i, G>($t)` for the runtime group size `$g`, one of the sizes listed.
    macro_rules! by_group {
        ($f:ident, $i:expr, $g:expr, $t:expr, [$($n:literal)*]) => {
            match $g {
                $($n => $f::<{ $i }, $n>($t),)*
                g => unreachable!("group of {g} rows"),
            }
        };
    }

    /// Sweeps the block once per row group, two items per tile (one for an odd last item).
    /// `$tile::<I, G>(Tile)` computes one tile, for `G` one of `$sizes` (1 up to `$max`).
    macro_rules! sweep {
        ($tile:ident, $items:expr, $max:expr, $sizes:tt, $block:expr, $d:expr, $weight:expr, $rows:expr, $logits:expr) => {{
            let (block, d, weight, rows, logits): (&[u8], usize, &[f32], usize, &mut [f32]) =
                ($block, $d, $weight, $rows, $logits);
            let n = block.len() / d;
            for (first, g) in groups(rows, $max) {
                let w = weight[first * d..].as_ptr();
                let mut i = 0;
                while i < n {
                    // Items stream from memory: ask for the ones PREFETCH_ITEMS ahead now.
                    let ahead = ((i + PREFETCH_ITEMS) * d).min(block.len());
                    prefetch(&block[ahead..(ahead + $items * d).min(block.len())]);
                    let t = Tile {
                        x: block[i * d..].as_ptr(),
                        d,
                        w,
                        out: logits[i * rows + first..].as_mut_ptr(),
                        stride: rows,
                    };
                    if i + $items <= n {
                        by_group!($tile, $items, g, t, $sizes);
                        i += $items;
                    } else {
                        by_group!($tile, 1, g, t, $sizes);
                        i += 1;
                    }
                }
            }
        }};
    }

    pub mod avx512 {
        use super::{groups, prefetch, Tile, PREFETCH_ITEMS};

        /// Rows per tile: 2 items x 12 rows = 24 accumulators of the 32 zmm registers.
        pub const MAX_GROUP: usize = 12;
        /// Items per tile.
        pub const ITEMS: usize = 2;
        use std::arch::x86_64::*;

        /// See [`super::super::logits`].
        ///
        /// # Safety
        /// The CPU must have avx512f, avx512bw and avx512vl; `block` is `n * d` bytes, `weight`
        /// `rows * d` floats and `logits` `n * rows` floats.
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        pub unsafe fn logits(
            block: &[u8],
            d: usize,
            weight: &[f32],
            rows: usize,
            logits: &mut [f32],
        ) {
            // SAFETY (each tile): item i..i+I has I * d bytes in `block`, rows first..first+g
            // have g * d floats in `weight`, and the tile writes entries (i + a) * rows + first + j
            // for a < I, j < g, all inside `logits` (n * rows).
            sweep!(tile, ITEMS, MAX_GROUP, [1 2 3 4 5 6 7 8 9 10 11 12], block, d, weight, rows, logits);
        }

        /// Widens 16 bytes (or the first `len` with a mask) to 16 f32.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        unsafe fn widen(p: *const u8, mask: __mmask16) -> __m512 {
            // SAFETY: the caller guarantees the bytes selected by `mask` are readable; masked-off
            // lanes are not accessed.
            let b = unsafe { _mm_maskz_loadu_epi8(mask, p as *const i8) };
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b))
        }

        /// One tile: `I` items (rows of `d` bytes from `x`) times `G` weight rows (rows of `d`
        /// floats from `w`); writes `out[a * stride + j]` for item `a`, row `j`.
        ///
        /// # Safety
        /// `x` has `I * d` readable bytes, `w` `G * d` floats, `out` room for
        /// `(I - 1) * stride + G` floats.
        #[inline]
        #[allow(clippy::needless_range_loop)] // a and j index the tile's register arrays
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        unsafe fn tile<const I: usize, const G: usize>(t: Tile) {
            let Tile {
                x,
                d,
                w,
                out,
                stride,
            } = t;
            let mut acc = [[_mm512_setzero_ps(); G]; I];
            let mut xv = [_mm512_setzero_ps(); I];
            let mut k = 0;
            while k + 16 <= d {
                for a in 0..I {
                    // SAFETY: k + 16 <= d, inside item a's row.
                    xv[a] = unsafe { widen(x.add(a * d + k), !0) };
                }
                for j in 0..G {
                    // SAFETY: k + 16 <= d, inside weight row j.
                    let wv = unsafe { _mm512_loadu_ps(w.add(j * d + k)) };
                    for a in 0..I {
                        acc[a][j] = _mm512_fmadd_ps(xv[a], wv, acc[a][j]);
                    }
                }
                k += 16;
            }
            if k < d {
                let mask: __mmask16 = (1u16 << (d - k)) - 1;
                for a in 0..I {
                    // SAFETY: the mask selects the d - k < 16 bytes left in item a's row.
                    xv[a] = unsafe { widen(x.add(a * d + k), mask) };
                }
                for j in 0..G {
                    // SAFETY: the mask selects the d - k floats left in weight row j.
                    let wv = unsafe { _mm512_maskz_loadu_ps(mask, w.add(j * d + k)) };
                    for a in 0..I {
                        acc[a][j] = _mm512_fmadd_ps(xv[a], wv, acc[a][j]);
                    }
                }
            }
            let scale = _mm512_set1_ps(1.0 / 255.0);
            let keep: __mmask16 = ((1u32 << G) - 1) as __mmask16;
            for (a, acc) in acc.iter().enumerate() {
                let sums = _mm512_mul_ps(reduce::<G>(acc), scale);
                // SAFETY: writes G floats at out + a * stride, inside the caller's promise.
                unsafe { _mm512_mask_storeu_ps(out.add(a * stride), keep, sums) };
            }
        }

        /// Lane `j` of the result is the sum of the 16 lanes of `acc[j]` (zero for `j >= G`),
        /// added in the same fixed tree order for every row.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        fn reduce<const G: usize>(acc: &[__m512; G]) -> __m512 {
            // The tree below leaves the sum of input slot 4p + q in lane 4q + p; placing row
            // 4q + p in slot 4p + q puts row j's sum in lane j.
            let mut v = [_mm512_setzero_ps(); 16];
            for (j, &a) in acc.iter().enumerate() {
                v[4 * (j % 4) + j / 4] = a;
            }
            // Halve each pair (a, b): [a0+a2, a1+a3, b0+b2, b1+b3] in 128-bit chunks.
            let mut s = [_mm512_setzero_ps(); 8];
            for (k, s) in s.iter_mut().enumerate() {
                let (a, b) = (v[2 * k], v[2 * k + 1]);
                *s = _mm512_add_ps(
                    _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
                    _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
                );
            }
            // Chunk q of t[m] holds 4 partial sums of slot 4m + q.
            let mut t = [_mm512_setzero_ps(); 4];
            for (m, t) in t.iter_mut().enumerate() {
                let (a, b) = (s[2 * m], s[2 * m + 1]);
                *t = _mm512_add_ps(
                    _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b),
                    _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b),
                );
            }
            // Chunk q of u[h]: 2 partials of slot 8h + q, then 2 of slot 8h + 4 + q.
            let mut u = [_mm512_setzero_ps(); 2];
            for (h, u) in u.iter_mut().enumerate() {
                let (a, b) = (t[2 * h], t[2 * h + 1]);
                *u = _mm512_add_ps(
                    _mm512_shuffle_ps::<0b01_00_01_00>(a, b),
                    _mm512_shuffle_ps::<0b11_10_11_10>(a, b),
                );
            }
            // Chunk q: slots q, 4 + q, 8 + q, 12 + q.
            _mm512_add_ps(
                _mm512_shuffle_ps::<0b10_00_10_00>(u[0], u[1]),
                _mm512_shuffle_ps::<0b11_01_11_01>(u[0], u[1]),
            )
        }

        /// See [`super::super::softmax`]. Sixteen items per vector, one worker at a time: for each
        /// class, a gather of that class's logit of 16 items; the running maximum takes a class
        /// only when it is strictly larger, so ties go to the lowest class as in the scalar code.
        ///
        /// # Safety
        /// The CPU must have avx512f/bw/vl; `bias` is `workers * classes` floats
        /// (`classes <= MAX_CLASSES`), `logits` `n * workers * classes`, `labels` and `conf` at
        /// least `n * workers` entries.
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        pub unsafe fn softmax(
            logits: &[f32],
            bias: &[f32],
            classes: usize,
            labels: &mut [u32],
            conf: &mut [f32],
        ) {
            let rows = bias.len();
            let workers = rows / classes;
            let n = logits.len() / rows;
            assert!(classes <= crate::model::MAX_CLASSES);
            // Gathers take i32 offsets: a block of items is far below 2^31 floats.
            assert!(logits.len() < i32::MAX as usize, "block too large");
            let lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
            let step = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(rows as i32));
            let mut z = [_mm512_setzero_ps(); crate::model::MAX_CLASSES];
            let mut label = [0u32; 16];
            let mut p = [0f32; 16];
            for i in (0..n).step_by(16) {
                let live = (n - i).min(16);
                let m: __mmask16 = ((1u32 << live) - 1) as __mmask16;
                for w in 0..workers {
                    let base = logits[(i * rows + w * classes)..].as_ptr();
                    let mut top = _mm512_set1_ps(f32::NEG_INFINITY);
                    let mut best = _mm512_setzero_si512();
                    for (c, zc) in z[..classes].iter_mut().enumerate() {
                        // SAFETY: lane l reads logits[(i + l) * rows + w * classes + c], inside
                        // `logits` for the `live` lanes selected by `m`; other lanes read nothing.
                        let v = unsafe {
                            _mm512_mask_i32gather_ps::<4>(
                                _mm512_setzero_ps(),
                                m,
                                step,
                                base.add(c),
                            )
                        };
                        *zc = _mm512_add_ps(v, _mm512_set1_ps(bias[w * classes + c]));
                        let more = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(*zc, top);
                        top = _mm512_mask_mov_ps(top, more, *zc);
                        best = _mm512_mask_mov_epi32(best, more, _mm512_set1_epi32(c as i32));
                    }
                    let mut sum = _mm512_setzero_ps();
                    for &zc in &z[..classes] {
                        sum = _mm512_add_ps(sum, exp(_mm512_sub_ps(zc, top)));
                    }
                    let inv = _mm512_div_ps(_mm512_set1_ps(1.0), sum);
                    // SAFETY: 16 lanes into local arrays of 16.
                    unsafe {
                        _mm512_storeu_si512(label.as_mut_ptr() as *mut __m512i, best);
                        _mm512_storeu_ps(p.as_mut_ptr(), inv);
                    }
                    for l in 0..live {
                        labels[(i + l) * workers + w] = label[l];
                        conf[(i + l) * workers + w] = p[l];
                    }
                }
            }
        }

        /// `e^x` to about 2 ulp for x in [-87, 88] (Cephes' polynomial, scaled by `2^n`); inputs
        /// below -87 give about 1e-38 instead of 0.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        fn exp(x: __m512) -> __m512 {
            let x = _mm512_max_ps(x, _mm512_set1_ps(-87.0));
            let x = _mm512_min_ps(x, _mm512_set1_ps(88.0));
            let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
            );
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
            let mut p = _mm512_set1_ps(1.987_569_1e-4);
            for c in [
                1.398_199_9e-3,
                8.333_452e-3,
                4.166_579_6e-2,
                0.166_666_65,
                0.5,
            ] {
                p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
            }
            let p = _mm512_fmadd_ps(
                _mm512_mul_ps(p, r),
                r,
                _mm512_add_ps(r, _mm512_set1_ps(1.0)),
            );
            _mm512_scalef_ps(p, n)
        }
    }

    pub mod avx2 {
        use super::{groups, prefetch, Tile, PREFETCH_ITEMS};

        /// Rows per tile: 2 items x 5 rows = 10 accumulators of the 16 ymm registers.
        pub const MAX_GROUP: usize = 5;
        /// Items per tile.
        pub const ITEMS: usize = 2;
        use std::arch::x86_64::*;

        /// See [`super::super::logits`].
        ///
        /// # Safety
        /// The CPU must have avx2 and fma; `block` is `n * d` bytes, `weight` `rows * d` floats
        /// and `logits` `n * rows` floats.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn logits(
            block: &[u8],
            d: usize,
            weight: &[f32],
            rows: usize,
            logits: &mut [f32],
        ) {
            // SAFETY: as for the avx512 sweep.
            sweep!(tile, ITEMS, MAX_GROUP, [1 2 3 4 5], block, d, weight, rows, logits);
        }

        /// Widens 8 bytes to 8 f32.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn widen(p: *const u8) -> __m256 {
            // SAFETY: the caller guarantees 8 readable bytes at p.
            let b = unsafe { _mm_loadl_epi64(p as *const __m128i) };
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b))
        }

        /// As the avx512 tile, 8 lanes; the last `d % 8` features go through a zero-padded copy
        /// and masked weight loads.
        ///
        /// # Safety
        /// As for the avx512 tile.
        #[inline]
        #[allow(clippy::needless_range_loop)] // a and j index the tile's register arrays
        #[target_feature(enable = "avx2,fma")]
        unsafe fn tile<const I: usize, const G: usize>(t: Tile) {
            let Tile {
                x,
                d,
                w,
                out,
                stride,
            } = t;
            let mut acc = [[_mm256_setzero_ps(); G]; I];
            let mut xv = [_mm256_setzero_ps(); I];
            let mut k = 0;
            while k + 8 <= d {
                for a in 0..I {
                    // SAFETY: k + 8 <= d, inside item a's row.
                    xv[a] = unsafe { widen(x.add(a * d + k)) };
                }
                for j in 0..G {
                    // SAFETY: k + 8 <= d, inside weight row j.
                    let wv = unsafe { _mm256_loadu_ps(w.add(j * d + k)) };
                    for a in 0..I {
                        acc[a][j] = _mm256_fmadd_ps(xv[a], wv, acc[a][j]);
                    }
                }
                k += 8;
            }
            if k < d {
                let left = d - k;
                let lanes: [i32; 8] = std::array::from_fn(|l| if l < left { -1 } else { 0 });
                // SAFETY: reads 8 i32 from a local array.
                let mask = unsafe { _mm256_loadu_si256(lanes.as_ptr() as *const __m256i) };
                for a in 0..I {
                    let mut tail = [0u8; 8];
                    // SAFETY: the `left` bytes after k are inside item a's row.
                    let src = unsafe { std::slice::from_raw_parts(x.add(a * d + k), left) };
                    tail[..left].copy_from_slice(src);
                    // SAFETY: `tail` is 8 bytes.
                    xv[a] = unsafe { widen(tail.as_ptr()) };
                }
                for j in 0..G {
                    // SAFETY: the mask selects the `left` floats after k in weight row j.
                    let wv = unsafe { _mm256_maskload_ps(w.add(j * d + k), mask) };
                    for a in 0..I {
                        acc[a][j] = _mm256_fmadd_ps(xv[a], wv, acc[a][j]);
                    }
                }
            }
            let scale = _mm256_set1_ps(1.0 / 255.0);
            for (a, acc) in acc.iter().enumerate() {
                let sums = _mm256_mul_ps(reduce::<G>(acc), scale);
                let mut lanes = [0f32; 8];
                // SAFETY: stores 8 floats into a local array.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sums) };
                // SAFETY: G floats at out + a * stride, inside the caller's promise.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.add(a * stride), G) };
                dst.copy_from_slice(&lanes[..G]);
            }
        }

        /// As the avx512 softmax, eight items per vector.
        ///
        /// # Safety
        /// The CPU must have avx2 and fma; sizes as for the avx512 softmax.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn softmax(
            logits: &[f32],
            bias: &[f32],
            classes: usize,
            labels: &mut [u32],
            conf: &mut [f32],
        ) {
            let rows = bias.len();
            let workers = rows / classes;
            let n = logits.len() / rows;
            assert!(classes <= crate::model::MAX_CLASSES);
            // Gathers take i32 offsets: a block of items is far below 2^31 floats.
            assert!(logits.len() < i32::MAX as usize, "block too large");
            let lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
            let step = _mm256_mullo_epi32(lanes, _mm256_set1_epi32(rows as i32));
            let mut z = [_mm256_setzero_ps(); crate::model::MAX_CLASSES];
            let mut label = [0u32; 8];
            let mut p = [0f32; 8];
            for i in (0..n).step_by(8) {
                let live = (n - i).min(8);
                let m =
                    _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(live as i32), lanes));
                for w in 0..workers {
                    let base = logits[(i * rows + w * classes)..].as_ptr();
                    let mut top = _mm256_set1_ps(f32::NEG_INFINITY);
                    let mut best = _mm256_setzero_si256();
                    for (c, zc) in z[..classes].iter_mut().enumerate() {
                        // SAFETY: lane l reads logits[(i + l) * rows + w * classes + c], inside
                        // `logits` for the `live` lanes selected by `m`; other lanes read nothing.
                        let v = unsafe {
                            _mm256_mask_i32gather_ps::<4>(_mm256_setzero_ps(), base.add(c), step, m)
                        };
                        *zc = _mm256_add_ps(v, _mm256_set1_ps(bias[w * classes + c]));
                        let more = _mm256_cmp_ps::<_CMP_GT_OQ>(*zc, top);
                        top = _mm256_blendv_ps(top, *zc, more);
                        best = _mm256_castps_si256(_mm256_blendv_ps(
                            _mm256_castsi256_ps(best),
                            _mm256_castsi256_ps(_mm256_set1_epi32(c as i32)),
                            more,
                        ));
                    }
                    let mut sum = _mm256_setzero_ps();
                    for &zc in &z[..classes] {
                        sum = _mm256_add_ps(sum, exp(_mm256_sub_ps(zc, top)));
                    }
                    let inv = _mm256_div_ps(_mm256_set1_ps(1.0), sum);
                    // SAFETY: 8 lanes into local arrays of 8.
                    unsafe {
                        _mm256_storeu_si256(label.as_mut_ptr() as *mut __m256i, best);
                        _mm256_storeu_ps(p.as_mut_ptr(), inv);
                    }
                    for l in 0..live {
                        labels[(i + l) * workers + w] = label[l];
                        conf[(i + l) * workers + w] = p[l];
                    }
                }
            }
        }

        /// `e^x` as the avx512 one; `2^n` is built in the exponent bits.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn exp(x: __m256) -> __m256 {
            let x = _mm256_max_ps(x, _mm256_set1_ps(-87.0));
            let x = _mm256_min_ps(x, _mm256_set1_ps(88.0));
            let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
            );
            let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
            let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
            let mut p = _mm256_set1_ps(1.987_569_1e-4);
            for c in [
                1.398_199_9e-3,
                8.333_452e-3,
                4.166_579_6e-2,
                0.166_666_65,
                0.5,
            ] {
                p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
            }
            let p = _mm256_fmadd_ps(
                _mm256_mul_ps(p, r),
                r,
                _mm256_add_ps(r, _mm256_set1_ps(1.0)),
            );
            // n is in [-126, 127]: 2^n is a normal float with exponent field n + 127.
            let two_n = _mm256_slli_epi32::<23>(_mm256_add_epi32(
                _mm256_cvtps_epi32(n),
                _mm256_set1_epi32(127),
            ));
            _mm256_mul_ps(p, _mm256_castsi256_ps(two_n))
        }

        /// Lane `j` of the result is the sum of the 8 lanes of `acc[j]` (zero for `j >= G`), in a
        /// fixed order.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn reduce<const G: usize>(acc: &[__m256; G]) -> __m256 {
            let mut v = [_mm256_setzero_ps(); 8];
            v[..G].copy_from_slice(acc);
            // Per 128-bit half: [v0, v1, v2, v3] partial sums of that half's lanes.
            let lo = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
            let hi = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
            _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(lo, hi),
                _mm256_permute2f128_ps::<0x31>(lo, hi),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_cover_rows_evenly() {
        for rows in 1..100 {
            for max in [1, 5, 12] {
                let g: Vec<_> = groups(rows, max).collect();
                assert_eq!(g.len(), rows.div_ceil(max));
                assert_eq!(g.iter().map(|x| x.1).sum::<usize>(), rows);
                assert!(g.iter().all(|&(_, len)| len >= 1 && len <= max));
                for w in g.windows(2) {
                    assert_eq!(w[0].0 + w[0].1, w[1].0);
                }
            }
        }
    }
}
