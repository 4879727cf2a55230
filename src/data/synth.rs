//! `synth:N[:SEED]`: a deterministic generator of labelled 28x28 digit-like images.
//!
//! Each class is a fixed set of strokes; every item draws them with its own random scale, shear,
//! shift, stroke width, contrast and pixel noise. Item `i` depends only on `(seed, i)`, so any
//! slice of a data set can be made in parallel and is the same whatever N is.

use super::Dataset;
use crate::error::{Error, Result};
use rayon::prelude::*;

pub const SIDE: usize = 28;
pub const CLASSES: usize = 10;
pub const DEFAULT_SEED: u64 = 7;

/// splitmix64: tiny, fast, good enough for drawing shapes and noise.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

type Point = (f32, f32);
const A: Point = (0.2, 0.1);
const B: Point = (0.8, 0.1);
const C: Point = (0.2, 0.5);
const D: Point = (0.8, 0.5);
const E: Point = (0.2, 0.9);
const F: Point = (0.8, 0.9);

/// Most strokes in an item: the longest glyph and a stray one.
const MAX_STROKES: usize = 6;

/// Strokes of each digit in a unit box (x right, y down).
const GLYPHS: [&[(Point, Point)]; CLASSES] = [
    &[(A, B), (B, F), (F, E), (E, A)],
    &[((0.5, 0.1), (0.5, 0.9)), ((0.3, 0.3), (0.5, 0.1))],
    &[(A, B), (B, D), (D, C), (C, E), (E, F)],
    &[(A, B), (B, F), (F, E), ((0.35, 0.5), D)],
    &[(A, C), (C, D), (B, F)],
    &[(B, A), (A, C), (C, D), (D, F), (F, E)],
    &[(B, A), (A, E), (E, F), (F, D), (D, C)],
    &[(A, B), (B, (0.4, 0.9))],
    &[(A, B), (B, F), (F, E), (E, A), (C, D)],
    &[(D, C), (C, A), (A, B), (B, F), (F, E)],
];

/// Parses the part after `synth:`: `N` or `N:SEED`.
pub fn parse_spec(rest: &str) -> Result<(usize, u64)> {
    let bad = || {
        Error::Invalid(format!(
            "synth:{rest}: expected synth:N or synth:N:SEED with N a positive item count"
        ))
    };
    let mut parts = rest.split(':');
    let n: usize = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let seed = match parts.next() {
        Some(s) => s.parse().map_err(|_| bad())?,
        None => DEFAULT_SEED,
    };
    if n == 0 || parts.next().is_some() {
        return Err(bad());
    }
    Ok((n, seed))
}

fn segment_distance2(p: Point, a: Point, b: Point) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0);
    let (ex, ey) = (p.0 - a.0 - t * dx, p.1 - a.1 - t * dy);
    ex * ex + ey * ey
}

/// Columns of the distance buffer: SIDE rounded up to whole blocks.
const BLOCK: usize = 16;
const STRIDE: usize = SIDE.div_ceil(BLOCK) * BLOCK;

/// The centre of each pixel column (or row) in glyph units: the unit box covers the middle
/// 20x20 pixels (columns past SIDE are padding, computed and never drawn).
const CENTRES: [f32; STRIDE] = {
    let mut c = [0f32; STRIDE];
    let mut k = 0;
    while k < STRIDE {
        c[k] = (k as f32 + 0.5 - 4.0) / 20.0;
        k += 1;
    }
    c
};

/// The pixels `lo..=hi` (one axis) whose centres lie within `[min, max]`, widened by one pixel
/// so that rounding can never leave out a pixel the stroke touches.
fn pixel_span(min: f32, max: f32) -> std::ops::Range<usize> {
    let lo = (min * 20.0 + 3.5).floor() - 1.0;
    let hi = (max * 20.0 + 3.5).ceil() + 1.0;
    let lo = lo.clamp(0.0, SIDE as f32) as usize;
    let hi = (hi + 1.0).clamp(0.0, SIDE as f32) as usize;
    lo..hi.max(lo)
}

/// The `k`-th output of a splitmix64 whose state is `state` now (`k` = 1 is its next output):
/// splitmix64 is a counter, so the noise of every pixel can be computed independently.
fn splitmix_at(state: u64, k: u64) -> u64 {
    let mut z = state.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Draws item `index` of the set seeded `seed` into `out` (28x28 bytes); returns its class.
pub fn draw_item(seed: u64, index: u64, out: &mut [u8]) -> u8 {
    draw(seed, index, out)
}

// Written as whole-image passes over arrays, so that the compiler vectorises the noise (a 64-bit
// hash per pixel) and the ink; there is no fused multiply-add anywhere, so every ISA gives the
// same bytes.
#[inline(always)]
fn draw(seed: u64, index: u64, out: &mut [u8]) -> u8 {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    rng.next_u64();
    let class = rng.below(CLASSES as u64) as usize;
    let scale = rng.range(0.75, 1.05);
    let shear = rng.range(-0.25, 0.25);
    let (sx, sy) = (rng.range(-0.12, 0.12), rng.range(-0.1, 0.1));
    let width = rng.range(0.05, 0.11);
    let contrast = rng.range(180.0, 255.0);
    let noise = rng.range(0.0, 40.0);
    // Map the unit glyph box onto the middle 20x20 pixels, as MNIST centres its digits.
    let mut map = |(x, y): Point| -> Point {
        // Each stroke end wobbles on its own, as a hand does.
        let (x, y) = (x + rng.range(-0.1, 0.1), y + rng.range(-0.1, 0.1));
        let (x, y) = ((x - 0.5) * scale, (y - 0.5) * scale);
        (x + shear * y + 0.5 + sx, y + 0.5 + sy)
    };
    let mut strokes = [((0.0, 0.0), (0.0, 0.0)); MAX_STROKES];
    let glyph = GLYPHS[class];
    for (s, &(a, b)) in strokes.iter_mut().zip(glyph) {
        *s = (map(a), map(b));
    }
    let mut n_strokes = glyph.len();
    // Now and then a stray stroke, so that some items are genuinely ambiguous.
    if rng.uniform() < 0.3 {
        let a = (rng.uniform(), rng.uniform());
        strokes[n_strokes] = (a, (a.0 + rng.range(-0.4, 0.4), a.1 + rng.range(-0.4, 0.4)));
        n_strokes += 1;
    }
    // Pixel `i`'s speckle is the generator's (i + 1)-th value from here on.
    let state = rng.0;
    let mut speckle = [0f32; SIDE * SIDE];
    for (i, s) in speckle.iter_mut().enumerate() {
        // < 2^24: exact through i32.
        let u = (splitmix_at(state, i as u64 + 1) >> 40) as i32 as f32 / (1u64 << 24) as f32;
        *s = (u - 0.5) * noise;
    }
    // Squared distance to the nearest stroke, computed only near each stroke's bounding box:
    // a pixel farther than `width + 0.02` from every stroke gets no ink (see below), whichever
    // stroke is nearest, so skipping far strokes changes no byte (min ignores order and NaN).
    let mut d2 = [[f32::MAX; STRIDE]; SIDE];
    let reach = width + 0.03;
    for &(a, b) in &strokes[..n_strokes] {
        let cols = pixel_span(a.0.min(b.0) - reach, a.0.max(b.0) + reach);
        let rows = pixel_span(a.1.min(b.1) - reach, a.1.max(b.1) + reach);
        // Whole blocks of BLOCK columns, so the loop has no scalar remainder; the extra pixels
        // only take one more stroke into their minimum, which is still exact.
        let blocks = cols.start / BLOCK * BLOCK..cols.end.div_ceil(BLOCK) * BLOCK;
        for r in rows {
            let y = CENTRES[r];
            for (cells, xs) in d2[r][blocks.clone()]
                .chunks_exact_mut(BLOCK)
                .zip(CENTRES[blocks.clone()].chunks_exact(BLOCK))
            {
                for (cell, &x) in cells.iter_mut().zip(xs) {
                    *cell = cell.min(segment_distance2((x, y), a, b));
                }
            }
        }
    }
    let out = out[..SIDE * SIDE].chunks_exact_mut(SIDE);
    for ((out, d2), speckle) in out.zip(&d2).zip(speckle.chunks_exact(SIDE)) {
        for ((px, &d2), &speckle) in out.iter_mut().zip(d2).zip(speckle) {
            let ink = if d2 < f32::MAX {
                ((width - d2.sqrt()) / 0.04 + 0.5).clamp(0.0, 1.0) * contrast
            } else {
                0.0
            };
            let v = ink
                + if ink > 0.0 {
                    speckle
                } else {
                    speckle.max(0.0) * 0.5
                };
            // `v` is finite (NaN distances never pass `d2 < MAX`); clamped, truncating through
            // i32 is what `as u8` does, and vectorises.
            let v = v.clamp(0.0, 255.0);
            // SAFETY: `v` is finite and within [0, 255].
            *px = unsafe { v.to_int_unchecked::<i32>() } as u8;
        }
    }
    class as u8
}

/// Draws items `first..` into `rows` (one 28x28 row each) and their classes into `labels`,
/// with the widest vector unit the CPU has.
fn draw_rows(seed: u64, first: u64, rows: &mut [u8], labels: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the features were just detected.
            return unsafe { draw_rows_avx512(seed, first, rows, labels) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the feature was just detected.
            return unsafe { draw_rows_avx2(seed, first, rows, labels) };
        }
    }
    draw_rows_portable(seed, first, rows, labels)
}

#[inline(always)]
fn draw_rows_portable(seed: u64, first: u64, rows: &mut [u8], labels: &mut [u8]) {
    for (i, (row, label)) in rows.chunks_exact_mut(SIDE * SIDE).zip(labels).enumerate() {
        *label = draw(seed, first + i as u64, row);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl")]
unsafe fn draw_rows_avx512(seed: u64, first: u64, rows: &mut [u8], labels: &mut [u8]) {
    draw_rows_portable(seed, first, rows, labels)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn draw_rows_avx2(seed: u64, first: u64, rows: &mut [u8], labels: &mut [u8]) {
    draw_rows_portable(seed, first, rows, labels)
}

/// Makes `n` items seeded `seed`, in parallel.
pub fn generate(n: usize, seed: u64) -> Dataset {
    generate_range(0..n, seed)
}

/// Items `range` of the set seeded `seed` (the same bytes as the matching slice of a bigger set).
pub fn generate_range(range: std::ops::Range<usize>, seed: u64) -> Dataset {
    let d = SIDE * SIDE;
    let n = range.len();
    let mut pixels = vec![0u8; n * d];
    let mut labels = vec![0u8; n];
    // Items in groups, so that the ISA is chosen once per group, not per item.
    const GROUP: usize = 256;
    pixels
        .par_chunks_mut(GROUP * d)
        .zip(labels.par_chunks_mut(GROUP))
        .enumerate()
        .for_each(|(g, (rows, labels))| {
            draw_rows(seed, (range.start + g * GROUP) as u64, rows, labels)
        });
    Dataset {
        source: format!("synth:{n}:{seed}"),
        height: SIDE,
        width: SIDE,
        channels: 1,
        pixels,
        labels: Some(labels),
        ids: None,
        class_names: Vec::new(),
        unlabelled: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first generator, pixel by pixel over every stroke: the fast one must draw the same
    /// bytes, since the data sets, tests and README figures depend on them.
    fn draw_reference(seed: u64, index: u64, out: &mut [u8]) -> u8 {
        let mut rng = Rng::new(seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        rng.next_u64();
        let class = rng.below(CLASSES as u64) as usize;
        let scale = rng.range(0.75, 1.05);
        let shear = rng.range(-0.25, 0.25);
        let (sx, sy) = (rng.range(-0.12, 0.12), rng.range(-0.1, 0.1));
        let width = rng.range(0.05, 0.11);
        let contrast = rng.range(180.0, 255.0);
        let noise = rng.range(0.0, 40.0);
        let mut map = |(x, y): Point| -> Point {
            let (x, y) = (x + rng.range(-0.1, 0.1), y + rng.range(-0.1, 0.1));
            let (x, y) = ((x - 0.5) * scale, (y - 0.5) * scale);
            (x + shear * y + 0.5 + sx, y + 0.5 + sy)
        };
        let mut strokes: Vec<(Point, Point)> = GLYPHS[class]
            .iter()
            .map(|&(a, b)| (map(a), map(b)))
            .collect();
        if rng.uniform() < 0.3 {
            let a = (rng.uniform(), rng.uniform());
            strokes.push((a, (a.0 + rng.range(-0.4, 0.4), a.1 + rng.range(-0.4, 0.4))));
        }
        for (i, px) in out.iter_mut().enumerate().take(SIDE * SIDE) {
            let p = (
                ((i % SIDE) as f32 + 0.5 - 4.0) / 20.0,
                ((i / SIDE) as f32 + 0.5 - 4.0) / 20.0,
            );
            let d = strokes
                .iter()
                .map(|&(a, b)| segment_distance2(p, a, b))
                .fold(f32::MAX, f32::min)
                .sqrt();
            let ink = ((width - d) / 0.04 + 0.5).clamp(0.0, 1.0) * contrast;
            let speckle = (rng.uniform() - 0.5) * noise;
            *px = (ink
                + if ink > 0.0 {
                    speckle
                } else {
                    speckle.max(0.0) * 0.5
                })
            .clamp(0.0, 255.0) as u8;
        }
        class as u8
    }

    #[test]
    fn fast_generator_draws_the_reference_bytes() {
        for seed in [DEFAULT_SEED, 1, 2, u64::MAX] {
            let set = generate_range(1000..4000, seed);
            let labels = set.labels.as_ref().unwrap();
            let mut want = [0u8; SIDE * SIDE];
            for (k, row) in set.pixels.chunks_exact(SIDE * SIDE).enumerate() {
                let index = 1000 + k as u64;
                let class = draw_reference(seed, index, &mut want);
                assert_eq!(
                    (row, labels[k]),
                    (&want[..], class),
                    "seed {seed} item {index}"
                );
                // The portable path (no wide vectors) too.
                let mut portable = [0u8; SIDE * SIDE];
                assert_eq!(draw_item(seed, index, &mut portable), class);
                assert_eq!(portable, want, "portable, seed {seed} item {index}");
            }
        }
    }

    #[test]
    fn splitmix_at_is_the_generator_k_steps_on() {
        let mut rng = Rng::new(12345);
        let state = rng.0;
        for k in 1..100 {
            assert_eq!(rng.next_u64(), splitmix_at(state, k));
        }
    }
}
