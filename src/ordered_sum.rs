//! Parallel sums with the same bits on every run and any number of threads. rayon's `sum` and
//! `reduce` group the terms as the work happens to split, and floating-point addition is not
//! associative: a stopping rule fed by such a sum could stop a step earlier or later from one
//! run to the next. Here terms are summed in pieces fixed by their count, and the pieces in order.

use rayon::prelude::*;

/// Terms per piece.
const PIECE: usize = 4096;

/// `term(0) + term(1) + ... + term(n - 1)` under `add` from `zero`, grouped by fixed pieces.
pub fn fold<T, F, A>(n: usize, zero: T, term: F, add: A) -> T
where
    T: Clone + Send + Sync,
    F: Fn(usize) -> T + Sync,
    A: Fn(T, T) -> T + Sync,
{
    let pieces: Vec<T> = (0..n.div_ceil(PIECE))
        .into_par_iter()
        .map(|p| (p * PIECE..(p * PIECE + PIECE).min(n)).fold(zero.clone(), |s, i| add(s, term(i))))
        .collect();
    pieces.into_iter().fold(zero, &add)
}

/// `term(0) + ... + term(n - 1)`, grouped by fixed pieces.
pub fn sum(n: usize, term: impl Fn(usize) -> f64 + Sync) -> f64 {
    fold(n, 0.0, term, |a, b| a + b)
}

/// The sum of values that come one per fixed piece of work (a block of tasks), in order.
pub fn sum_pieces(pieces: impl IndexedParallelIterator<Item = f64>) -> f64 {
    pieces.collect::<Vec<f64>>().iter().sum()
}

/// The element-wise sum of tables (`len` values each) that come one per fixed piece of work,
/// added in order.
pub fn add_tables(tables: impl IndexedParallelIterator<Item = Vec<f64>>, len: usize) -> Vec<f64> {
    let tables: Vec<Vec<f64>> = tables.collect();
    let mut out = vec![0.0; len];
    for t in &tables {
        out.iter_mut().zip(t).for_each(|(o, v)| *o += v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Terms whose sum depends on the grouping: the same bits on 1, 2 and 7 threads.
    #[test]
    fn the_same_bits_on_any_number_of_threads() {
        let term = |i: usize| ((i as f64) * 0.37).sin() * 10f64.powi((i % 17) as i32 - 8);
        let n = 100_003;
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let tables = (0..37usize)
                    .into_par_iter()
                    .map(|b| (0..5).map(|j| term(b * 5 + j)).collect());
                (
                    sum(n, term).to_bits(),
                    fold(
                        n,
                        (0.0, 0usize),
                        |i| (term(i), 1),
                        |a, b| (a.0 + b.0, a.1 + b.1),
                    ),
                    sum_pieces((0..n).into_par_iter().map(term)).to_bits(),
                    add_tables(tables, 5),
                )
            })
        };
        let one = run(1);
        assert_eq!(one.1 .1, n);
        for threads in [2, 7] {
            let other = run(threads);
            assert_eq!(one.0, other.0, "sum, {threads} threads");
            assert_eq!(one.1 .0.to_bits(), other.1 .0.to_bits(), "fold");
            assert_eq!(one.2, other.2, "sum_pieces");
            assert_eq!(one.3, other.3, "add_tables");
        }
        let plain: f64 = (0..n).map(term).sum();
        assert!((f64::from_bits(one.0) - plain).abs() <= 1e-9 * plain.abs().max(1.0));
    }
}
