//! What the x86 kernels share: the tile operands, the prefetch, and the sweep of a block over
//! row groups (macros, so each ISA instantiates its own tile function).

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

/// Sweeps the block once per row group, `$items` items per tile (then one at a time for the
/// last few).
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

/// Splits `rows` into `ceil(rows / max)` groups of near-equal size: `(first row, rows)`.
fn groups(rows: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let count = rows.div_ceil(max.max(1));
    let (base, extra) = (rows / count.max(1), rows % count.max(1));
    (0..count).scan(0, move |start, g| {
        let len = base + usize::from(g < extra);
        let first = *start;
        *start += len;
        Some((first, len))
    })
}

pub mod avx2;
pub mod avx512;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_cover_rows_evenly() {
        assert_eq!(groups(0, 12).count(), 0);
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
