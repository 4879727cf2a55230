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

/// Draws item `index` of the set seeded `seed` into `out` (28x28 bytes); returns its class.
pub fn draw_item(seed: u64, index: u64, out: &mut [u8]) -> u8 {
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
    let mut strokes: Vec<(Point, Point)> = GLYPHS[class]
        .iter()
        .map(|&(a, b)| (map(a), map(b)))
        .collect();
    // Now and then a stray stroke, so that some items are genuinely ambiguous.
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
    pixels
        .par_chunks_mut(d)
        .zip(labels.par_iter_mut())
        .enumerate()
        .for_each(|(i, (row, label))| *label = draw_item(seed, (range.start + i) as u64, row));
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
