//! AVX-512 (F, BW, VL) kernels: 16 lanes, masked tails.

use super::{groups, prefetch, Tile, PREFETCH_ITEMS};
use std::arch::x86_64::*;

/// Rows per tile: 2 items x 12 rows = 24 accumulators of the 32 zmm registers.
pub const MAX_GROUP: usize = 12;
/// Items per tile.
pub const ITEMS: usize = 2;

/// See [`super::super::logits`]: `scale` is 1/255 for pixels, 1 for features.
///
/// # Safety
/// The CPU must have avx512f, avx512bw and avx512vl (and F16C, which every AVX-512 CPU has);
/// `block` is `n * d` values, `weight` `rows * d` floats and `logits` `n * rows` floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub unsafe fn logits<T: Load>(
    block: &[T],
    d: usize,
    weight: &[f32],
    rows: usize,
    logits: &mut [f32],
    scale: f32,
) {
    // SAFETY (each tile): item i..i+I has I * d values in `block`, rows first..first+g
    // have g * d floats in `weight`, and the tile writes entries (i + a) * rows + first + j
    // for a < I, j < g, all inside `logits` (n * rows).
    sweep!(tile, ITEMS, MAX_GROUP, [1 2 3 4 5 6 7 8 9 10 11 12], block, d, weight, rows, logits, scale);
}

/// An element type the tile reads 16 at a time as f32.
pub trait Load: bytemuck::Pod {
    /// The 16 values at `p` (or the first ones selected by `mask`, zeros elsewhere) as f32.
    ///
    /// # Safety
    /// The CPU has avx512f/bw/vl and f16c; the values selected by `mask` are readable.
    unsafe fn load(p: *const Self, mask: __mmask16) -> __m512;
}

impl Load for u8 {
    /// Widens 16 bytes to 16 f32.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    unsafe fn load(p: *const u8, mask: __mmask16) -> __m512 {
        // SAFETY: the caller guarantees the bytes selected by `mask` are readable; masked-off
        // lanes are not accessed.
        let b = unsafe { _mm_maskz_loadu_epi8(mask, p as *const i8) };
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b))
    }
}

impl Load for u16 {
    /// Converts 16 halves (bit patterns) to 16 f32, exactly.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    unsafe fn load(p: *const u16, mask: __mmask16) -> __m512 {
        // SAFETY: as for u8, 2 bytes per lane.
        let h = unsafe { _mm256_maskz_loadu_epi16(mask, p as *const i16) };
        _mm512_cvtph_ps(h)
    }
}

impl Load for f32 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    unsafe fn load(p: *const f32, mask: __mmask16) -> __m512 {
        // SAFETY: as for u8, 4 bytes per lane.
        unsafe { _mm512_maskz_loadu_ps(mask, p) }
    }
}

/// One tile: `I` items (rows of `d` values from `x`) times `G` weight rows (rows of `d`
/// floats from `w`); writes `out[a * stride + j]` for item `a`, row `j`.
///
/// # Safety
/// `x` has `I * d` readable values, `w` `G * d` floats, `out` room for
/// `(I - 1) * stride + G` floats.
#[inline]
#[allow(clippy::needless_range_loop)] // a and j index the tile's register arrays
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
unsafe fn tile<T: Load, const I: usize, const G: usize>(t: Tile<T>) {
    let Tile {
        x,
        d,
        w,
        out,
        stride,
        scale,
    } = t;
    let mut acc = [[_mm512_setzero_ps(); G]; I];
    let mut xv = [_mm512_setzero_ps(); I];
    let mut k = 0;
    while k + 16 <= d {
        for a in 0..I {
            // SAFETY: k + 16 <= d, inside item a's row.
            xv[a] = unsafe { T::load(x.add(a * d + k), !0) };
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
            // SAFETY: the mask selects the d - k < 16 values left in item a's row.
            xv[a] = unsafe { T::load(x.add(a * d + k), mask) };
        }
        for j in 0..G {
            // SAFETY: the mask selects the d - k floats left in weight row j.
            let wv = unsafe { _mm512_maskz_loadu_ps(mask, w.add(j * d + k)) };
            for a in 0..I {
                acc[a][j] = _mm512_fmadd_ps(xv[a], wv, acc[a][j]);
            }
        }
    }
    let scale = _mm512_set1_ps(scale);
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
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
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
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
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
                    _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), m, step, base.add(c))
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
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
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
