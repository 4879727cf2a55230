//! Karger-Oh-Shah (2011) iterative message passing for two classes, as crowd-kit 1.4.2's `KOS`.
//!
//! - Class 0 is `+1`, class 1 is `-1`. Each answer `i` (an edge task-worker) carries a worker
//!   message `y_i`, started from N(1, 1) draws ([`SplitMix`] seeded with `seed`).
//! - **Iteration** (at most `n_iter`): task messages `x_i = sum of A_j y_j over the task's other
//!   answers`, then `y_i = sum of A_j x_j over the worker's other answers`. crowd-kit stops when a
//!   sum exceeds 1e300 in magnitude (keeping the last complete `y`); the messages here are
//!   rescaled every round (which changes no sign) and the scale is tracked, so the stop comes at
//!   the same round without overflow.
//! - **Label**: the sign of `sum A_i y_i` over the task's answers; posteriors are one-hot (KOS has
//!   no probabilities).
//! - **Tie rule**: a zero sum (a task whose answers carry no message, e.g. its only answer comes
//!   from a worker with no other answer) falls back to the task's vote shares, then to the lowest
//!   class; crowd-kit fails there.
//! - More than two classes is an error.

use super::ds_crowdkit::vote_shares;
use super::layout::Layout;
use super::{one_class, Answers, Fit, SplitMix};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// crowd-kit's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub n_iter: usize,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            n_iter: 100,
            seed: 0,
        }
    }
}

/// The fitted messages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KosParams {
    /// Per task: `sum A_i y_i`, divided by the largest magnitude (in `[-1, 1]`; > 0 is class 0).
    pub scores: Vec<f64>,
}

/// crowd-kit's overflow guard (`_MAX = 10**300`), as a natural log.
fn ln_max() -> f64 {
    300.0 * std::f64::consts::LN_10
}

pub fn fit(a: &Answers, opts: &Options) -> Result<Fit<KosParams>> {
    a.check()?;
    if let Some(f) = one_class(a, KosParams::default) {
        return Ok(f);
    }
    if a.classes != 2 {
        return Err(Error::Invalid(format!(
            "kos is for two classes; the answers have {}",
            a.classes
        )));
    }
    let lay = Layout::new(a);
    let sign: Vec<f64> = lay
        .label
        .iter()
        .map(|&l| if l == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut rng = SplitMix::new(opts.seed);
    let mut y: Vec<f64> = (0..lay.answers()).map(|_| 1.0 + rng.normal()).collect();
    let mut x = vec![0.0; lay.answers()];
    let task_of = lay.task_of_position();
    let mut ln_scale = 0.0;
    let mut iterations = 0;
    for _ in 0..opts.n_iter {
        let task_sums = task_sums(&lay, &sign, &y);
        if ln_scale + max_abs(&task_sums).ln() > ln_max() {
            break;
        }
        x.par_iter_mut().enumerate().for_each(|(i, xi)| {
            *xi = task_sums[task_of[i] as usize] - sign[i] * y[i];
        });
        let worker_sums: Vec<f64> = (0..lay.workers)
            .into_par_iter()
            .map(|w| {
                lay.of_worker(w)
                    .iter()
                    .map(|&i| sign[i as usize] * x[i as usize])
                    .sum()
            })
            .collect();
        if ln_scale + max_abs(&worker_sums).ln() > ln_max() {
            break;
        }
        let mut next: Vec<f64> = (0..lay.answers())
            .into_par_iter()
            .map(|i| worker_sums[lay.worker[i] as usize] - sign[i] * x[i])
            .collect();
        iterations += 1;
        let m = max_abs(&next);
        if m == 0.0 || !m.is_finite() {
            y = next;
            break;
        }
        next.par_iter_mut().for_each(|v| *v /= m);
        ln_scale += m.ln();
        y = next;
    }
    let mut scores = task_sums(&lay, &sign, &y);
    let m = max_abs(&scores);
    if m > 0.0 {
        scores.iter_mut().for_each(|s| *s /= m);
    }
    let shares = vote_shares(&lay);
    let posteriors = scores
        .iter()
        .enumerate()
        .flat_map(|(t, &s)| {
            if s > 0.0 {
                [1.0, 0.0]
            } else if s < 0.0 {
                [0.0, 1.0]
            } else {
                [shares[2 * t], shares[2 * t + 1]]
            }
        })
        .collect();
    Ok(Fit {
        classes: 2,
        posteriors,
        iterations,
        objective: None,
        params: KosParams { scores },
    })
}

fn task_sums(lay: &Layout, sign: &[f64], y: &[f64]) -> Vec<f64> {
    (0..lay.tasks)
        .into_par_iter()
        .with_min_len(256)
        .map(|t| lay.of_task(t).map(|i| sign[i] * y[i]).sum())
        .collect()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}
