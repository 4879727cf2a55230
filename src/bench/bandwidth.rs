//! The machine's memory read bound, measured in the same run as the figures it bounds: every
//! thread of the pool sums its share of the very bytes the backends classify (the same pages of
//! the same buffer or mapped file), which is the most any classifier of them can read per second.

use super::timing::median;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// Bytes per task of the probe: big enough that scheduling is noise, small enough to balance.
const PIECE: usize = 1 << 20;

/// The read bound of one bench run.
#[derive(Debug, Clone, Serialize)]
pub struct ReadBound {
    /// Bytes read per second (median of the runs).
    pub bytes_per_s: f64,
    /// The items per second reading alone allows: `bytes_per_s / item bytes`.
    pub items_per_s: f64,
    pub threads: usize,
}

/// Reads `bytes` (whole items of `item_bytes` bytes) `reps` times after one warm-up pass, with
/// every thread of the rayon pool; the median run gives the bound.
pub fn probe(bytes: &[u8], item_bytes: usize, reps: usize) -> ReadBound {
    let mut runs = Vec::new();
    let mut sink = 0u64;
    for rep in 0..=reps.max(1) {
        let t = Instant::now();
        sink ^= read_all(bytes);
        if rep > 0 {
            runs.push(t.elapsed().as_secs_f64());
        }
    }
    std::hint::black_box(sink);
    let bytes_per_s = bytes.len() as f64 / median(&runs);
    ReadBound {
        bytes_per_s,
        items_per_s: bytes_per_s / item_bytes.max(1) as f64,
        threads: rayon::current_num_threads(),
    }
}

/// Every byte of `bytes` read once: 64-bit words folded by XOR (vectorised, far faster than
/// memory), the unaligned ends byte by byte.
fn read_all(bytes: &[u8]) -> u64 {
    bytes
        .par_chunks(PIECE)
        .map(|piece| {
            let (head, words, tail) = bytemuck::pod_align_to::<u8, u64>(piece);
            let mut acc = [0u64; 8];
            let mut lanes = words.chunks_exact(8);
            for w in &mut lanes {
                for (a, &v) in acc.iter_mut().zip(w) {
                    *a ^= v;
                }
            }
            let rest = lanes.remainder().iter().fold(0, |x, &v| x ^ v);
            let ends = head.iter().chain(tail).fold(0, |x, &b| x ^ b as u64);
            acc.iter().fold(rest ^ ends, |x, &v| x ^ v)
        })
        .reduce(|| 0, |a, b| a ^ b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_reads_every_byte() {
        // Any one byte set, at a piece boundary, in an aligned middle or in an unaligned end,
        // shows in the result.
        let v = vec![0u8; 3 * PIECE + 13];
        assert_eq!(read_all(&v[1..]), 0);
        for at in [1, 2, PIECE, PIECE + 1, PIECE + 100, 3 * PIECE + 12] {
            let mut w = v.clone();
            w[at] = 0x80;
            assert_ne!(read_all(&w[1..]), 0, "byte {at}");
        }
        let b = probe(&v, 784, 2);
        assert!(b.bytes_per_s > 0.0 && b.items_per_s * 784.0 <= b.bytes_per_s * 1.0001);
    }
}
