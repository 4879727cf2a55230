//! What the x86 kernels share: the tile operands, the prefetch, and the sweep of a block over
//! row groups (macros, so each ISA instantiates its own tile function).

/// One tile's operands: `I` items of `d` values of type `T` from `x`, `G` weight rows of `d`
/// floats from `w`; item `a`'s logit for row `j` goes to `out[a * stride + j]`, the sum times
/// `scale` (1/255 for pixels, 1 for features).
pub struct Tile<T> {
    pub x: *const T,
    pub d: usize,
    pub w: *const f32,
    pub out: *mut f32,
    pub stride: usize,
    pub scale: f32,
}

impl<T> Clone for Tile<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Tile<T> {}

/// Items ahead of the current tile whose bytes are prefetched.
const PREFETCH_ITEMS: usize = 4;

/// Asks for every cache line of `values` to be brought into L1.
#[inline(always)]
fn prefetch<T: bytemuck::Pod>(values: &[T]) {
    let bytes: &[u8] = bytemuck::cast_slice(values);
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch never faults; the address is inside `bytes`.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr() as *const i8) };
    }
}

/// Calls `$f::<T, $i, G>($t)` for the runtime group size `$g`, one of the sizes listed.
macro_rules! by_group {
    ($f:ident, $i:expr, $g:expr, $t:expr, [$($n:literal)*]) => {
        match $g {
            $($n => $f::<_, { $i }, $n>($t),)*
            g => unreachable!("group of {g} rows"),
        }
    };
}

/// Sweeps the block once per row group, `$items` items per tile (then one at a time for the
/// last few).
/// `$tile::<I, G, T>(Tile<T>)` computes one tile, for `G` one of `$sizes` (1 up to `$max`).
macro_rules! sweep {
    ($tile:ident, $items:expr, $max:expr, $sizes:tt, $block:expr, $d:expr, $weight:expr, $rows:expr, $logits:expr, $scale:expr) => {{
        let (block, d, weight, rows, logits, scale): (&[_], usize, &[f32], usize, &mut [f32], f32) =
            ($block, $d, $weight, $rows, $logits, $scale);
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
                    scale,
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
