//! Zero-Based Skill as crowd-kit 1.4.2's `ZeroBasedSkill`: a weighted majority vote whose worker
//! weights (skills) move toward each worker's agreement with the current weighted vote.
//!
//! - **Start**: every skill `1 / K + 1e-5`.
//! - **Iteration** `i = 1..=n_iter`: if `i` is a multiple of `lr_steps_to_reduce`, the learning
//!   rate is multiplied by `lr_reduce_factor` (before the step, as crowd-kit); labels = weighted
//!   vote; `skill += lr * (agreement - skill)`, agreement = share of the worker's answers equal to
//!   the label.
//! - **Posteriors**: the final weighted vote's shares. A task whose workers all have skill 0
//!   gets its plain vote shares (crowd-kit divides 0 by 0 there).
//! - **Tie rule**: lowest class (crowd-kit: first in sorted order, the same).

use super::layout::Layout;
use super::{argmax, one_class, Answers, Fit};
use crate::error::Result;
use rayon::prelude::*;

/// crowd-kit's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub n_iter: usize,
    pub lr_init: f64,
    pub lr_steps_to_reduce: usize,
    pub lr_reduce_factor: f64,
    pub eps: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            n_iter: 100,
            lr_init: 1.0,
            lr_steps_to_reduce: 20,
            lr_reduce_factor: 0.5,
            eps: 1e-5,
        }
    }
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZbsParams {
    /// Per worker, in `[0, 1]`.
    pub skills: Vec<f64>,
}

pub fn fit(a: &Answers, opts: &Options) -> Result<Fit<ZbsParams>> {
    a.check()?;
    if let Some(f) = one_class(a, ZbsParams::default) {
        return Ok(f);
    }
    let lay = Layout::new(a);
    let k = lay.classes;
    let blocks = lay.blocks(lay.workers);
    let answers_of: Vec<f64> = (0..lay.workers)
        .map(|w| lay.of_worker(w).len() as f64)
        .collect();
    let mut skills = vec![1.0 / k as f64 + opts.eps; lay.workers];
    let mut lr = opts.lr_init;
    for i in 1..=opts.n_iter {
        if opts.lr_steps_to_reduce > 0 && i % opts.lr_steps_to_reduce == 0 {
            lr *= opts.lr_reduce_factor;
        }
        // Per worker: answers equal to the weighted vote's label, in one pass by task.
        let agree = lay.sum_over_tasks(&blocks, lay.workers, |acc, t| {
            let mut row = [0.0f64; 64];
            let mut heap = Vec::new();
            let row: &mut [f64] = if k <= row.len() {
                &mut row[..k]
            } else {
                heap.resize(k, 0.0);
                &mut heap
            };
            for i in lay.of_task(t) {
                row[lay.label[i] as usize] += skills[lay.worker[i] as usize];
            }
            if row.iter().all(|&v| v == 0.0) {
                // No weight: the plain vote decides (crowd-kit divides 0 by 0 here).
                for i in lay.of_task(t) {
                    row[lay.label[i] as usize] += 1.0;
                }
            }
            let label = argmax(row);
            for i in lay.of_task(t) {
                if lay.label[i] == label {
                    acc[lay.worker[i] as usize] += 1.0;
                }
            }
        });
        skills
            .iter_mut()
            .zip(agree.iter().zip(&answers_of))
            .filter(|(_, (_, n))| **n > 0.0)
            .for_each(|(s, (a, n))| *s += lr * (a / n - *s));
    }
    Ok(Fit {
        classes: lay.classes,
        posteriors: weighted_shares(&lay, &skills),
        iterations: opts.n_iter,
        objective: None,
        params: ZbsParams { skills },
    })
}

/// Skill-weighted vote shares; a task with zero total weight gets its plain vote shares.
fn weighted_shares(lay: &Layout, skills: &[f64]) -> Vec<f64> {
    let k = lay.classes;
    let mut p = vec![0.0; lay.tasks * k];
    p.par_chunks_mut(k)
        .enumerate()
        .with_min_len(64)
        .for_each(|(t, row)| {
            for i in lay.of_task(t) {
                row[lay.label[i] as usize] += skills[lay.worker[i] as usize];
            }
            let s: f64 = row.iter().sum();
            if s > 0.0 {
                row.iter_mut().for_each(|x| *x /= s);
            } else if !lay.of_task(t).is_empty() {
                let n = lay.task_len(t) as f64;
                for i in lay.of_task(t) {
                    row[lay.label[i] as usize] += 1.0 / n;
                }
            } else {
                row.iter_mut().for_each(|x| *x = 1.0 / k as f64);
            }
        });
    p
}
