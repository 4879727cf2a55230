//! AVX2 + FMA kernels: 8 lanes.

use super::{groups, prefetch, Tile, PREFETCH_ITEMS};
use std::arch::x86_64::*;

/// Rows per tile: 2 items x 5 rows = 10 accumulators of the 16 ymm registers.
pub const MAX_GROUP: usize = 5;
/// Items per tile.
pub const ITEMS: usize = 2;

/// See [`super::super::logits`].
///
/// # Safety
/// The CPU must have avx2, fma and f16c; `block` is `n * d` values, `weight` `rows * d`
/// floats and `logits` `n * rows` floats.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn logits<T: Load>(
    block: &[T],
    d: usize,
    weight: &[f32],
    rows: usize,
    logits: &mut [f32],
    scale: f32,
) {
    // SAFETY: as for the avx512 sweep.
    sweep!(tile, ITEMS, MAX_GROUP, [1 2 3 4 5], block, d, weight, rows, logits, scale);
}

/// An element type the tile reads 8 at a time as f32.
pub trait Load: bytemuck::Pod {
    /// The 8 values at `p` as f32.
    ///
    /// # Safety
    /// The CPU has avx2, fma and f16c; 8 values at `p` are readable.
    unsafe fn load(p: *const Self) -> __m256;
}

impl Load for u8 {
    /// Widens 8 bytes to 8 f32.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(p: *const u8) -> __m256 {
        // SAFETY: the caller guarantees 8 readable bytes at p.
        let b = unsafe { _mm_loadl_epi64(p as *const __m128i) };
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b))
    }
}

impl Load for u16 {
    /// Converts 8 halves (bit patterns) to 8 f32, exactly.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(p: *const u16) -> __m256 {
        // SAFETY: the caller guarantees 8 readable halves at p.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p as *const __m128i) })
    }
}

impl Load for f32 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(p: *const f32) -> __m256 {
        // SAFETY: the caller guarantees 8 readable floats at p.
        unsafe { _mm256_loadu_ps(p) }
    }
}

/// As the avx512 tile, 8 lanes; the last `d % 8` features go through a zero-padded copy
/// and masked weight loads.
///
/// # Safety
/// As for the avx512 tile.
#[inline]
#[allow(clippy::needless_range_loop)] // a and j index the tile's register arrays
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<T: Load, const I: usize, const G: usize>(t: Tile<T>) {
    let Tile {
        x,
        d,
        w,
        out,
        stride,
        scale,
    } = t;
    let mut acc = [[_mm256_setzero_ps(); G]; I];
    let mut xv = [_mm256_setzero_ps(); I];
    let mut k = 0;
    while k + 8 <= d {
        for a in 0..I {
            // SAFETY: k + 8 <= d, inside item a's row.
            xv[a] = unsafe { T::load(x.add(a * d + k)) };
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
            let mut tail = [T::zeroed(); 8];
            // SAFETY: the `left` values after k are inside item a's row.
            let src = unsafe { std::slice::from_raw_parts(x.add(a * d + k), left) };
            tail[..left].copy_from_slice(src);
            // SAFETY: `tail` is 8 values.
            xv[a] = unsafe { T::load(tail.as_ptr()) };
        }
        for j in 0..G {
            // SAFETY: the mask selects the `left` floats after k in weight row j.
            let wv = unsafe { _mm256_maskload_ps(w.add(j * d + k), mask) };
            for a in 0..I {
                acc[a][j] = _mm256_fmadd_ps(xv[a], wv, acc[a][j]);
            }
        }
    }
    let scale = _mm256_set1_ps(scale);
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
#[target_feature(enable = "avx2,fma,f16c")]
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
        let m = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(live as i32), lanes));
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
#[target_feature(enable = "avx2,fma,f16c")]
fn exp(x: __m256) -> __m256 {
    let x = _mm256_max_ps(x, _mm256_set1_ps(-87.0));
    let x = _mm256_min_ps(x, _mm256_set1_ps(88.0));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
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
#[target_feature(enable = "avx2,fma,f16c")]
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
