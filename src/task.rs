//! Partitioning: items split into shards (one per training worker) and microtasks (batches)
//! with stable ids. A microtask's id is its index; it covers a contiguous item range.

use std::ops::Range;

/// A batch of items handed to a backend as one unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Microtask {
    pub id: usize,
    pub items: Range<usize>,
}

/// Splits `n` items into `k` contiguous shards whose sizes differ by at most one.
pub fn shards(n: usize, k: usize) -> Vec<Range<usize>> {
    let k = k.max(1);
    (0..k).map(|i| i * n / k..(i + 1) * n / k).collect()
}

/// Splits `n` items into microtasks of `batch` items (the last may be shorter).
pub fn microtasks(n: usize, batch: usize) -> Vec<Microtask> {
    let batch = batch.max(1);
    (0..n.div_ceil(batch))
        .map(|id| Microtask {
            id,
            items: id * batch..((id + 1) * batch).min(n),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_item_once() {
        for (n, k) in [(10, 3), (0, 2), (5, 7), (60000, 5)] {
            let s = shards(n, k);
            assert_eq!(s.len(), k);
            assert_eq!(s[0].start, 0);
            assert_eq!(s[k - 1].end, n);
            assert!(s.windows(2).all(|w| w[0].end == w[1].start));
            assert!(s.iter().all(|r| r.len() <= n.div_ceil(k)));
        }
    }

    #[test]
    fn microtasks_have_stable_ids_and_ranges() {
        let m = microtasks(10, 4);
        assert_eq!(
            m.iter().map(|t| t.items.clone()).collect::<Vec<_>>(),
            vec![0..4, 4..8, 8..10]
        );
        assert_eq!(m[2].id, 2);
        assert!(microtasks(0, 4).is_empty());
    }
}
