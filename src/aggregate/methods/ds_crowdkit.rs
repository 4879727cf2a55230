//! Dawid-Skene as crowd-kit 1.4.2's `DawidSkene` computes it, so that a user moving from
//! crowd-kit gets the same labels.
//!
//! - **Start**: posteriors = majority-vote vote shares; priors = their mean over tasks; errors
//!   from an M-step on them.
//! - **Iteration** (at most `n_iter`): E-step (posteriors from priors and errors), priors = mean
//!   posterior, M-step, then the ELBO per answer; stop when it gained less than `tol`.
//! - **M-step**: `errors[w][l][c]` = posterior mass of class `c` over worker `w`'s answers `l`,
//!   each answered `(w, l)` cell clipped below at 1e-10, each column `c` normalised over the
//!   labels `l` the worker used. No smoothing.
//! - **ELBO** (crowd-kit's): `sum over answers, classes of p[t][c] (ln e[w][l][c] + ln prior[c])`
//!   plus the posteriors' entropy (posteriors clipped at 1e-10 inside the log), over the answers.
//!   Note the prior counts once per answer, not once per task, as in crowd-kit.
//! - **Priors** are clipped below at 1e-10 before their log.
//! - **Differences**: crowd-kit computes in base 2 in its E-step and leaves its final posteriors
//!   clipped at 1e-10; ours are natural-log and sum to 1. Labels agree except where the two best
//!   posteriors are within rounding ([`super::Fit::near_ties`]).
//! - **Tie rule**: lowest class.

use super::layout::{split_rows, Layout};
use super::{one_class, softmax_in_place, Answers, Fit};
use crate::error::Result;
use rayon::prelude::*;
use std::ops::Range;

/// crowd-kit's `_EPS`.
pub const EPS: f64 = 1e-10;

/// crowd-kit's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub n_iter: usize,
    /// Stop when the ELBO per answer gains less than this (`f64::NEG_INFINITY`: run `n_iter`).
    pub tol: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            n_iter: 100,
            tol: 1e-5,
        }
    }
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DsParams {
    /// Class priors (mean posterior), `classes`.
    pub priors: Vec<f64>,
    /// `workers x classes x classes`: `errors[(w * K + l) * K + c]` = P(answer `l` | true `c`);
    /// rows of labels a worker never gave are 0.
    pub errors: Vec<f64>,
    /// ELBO per answer after each iteration.
    pub loss_history: Vec<f64>,
}

pub fn fit(a: &Answers, opts: &Options) -> Result<Fit<DsParams>> {
    a.check()?;
    if let Some(f) = one_class(a, DsParams::default) {
        return Ok(f);
    }
    let lay = Layout::new(a);
    let k = lay.classes;
    let blocks = lay.blocks(lay.workers * k * k);
    let used = labels_used(&lay);
    let mut probas = vote_shares(&lay);
    let mut priors = mean_posterior(&lay, &probas);
    let mut counts = confusion_counts(&lay, &blocks, &probas);
    let mut errors = normalise(&lay, &used, &counts);
    let mut loss = f64::NEG_INFINITY;
    let mut history = Vec::new();
    for _ in 0..opts.n_iter {
        let e = e_step(&lay, &blocks, &priors, &log_errors(&errors), &mut probas);
        priors = e.priors;
        counts = confusion_counts(&lay, &blocks, &probas);
        errors = normalise(&lay, &used, &counts);
        // crowd-kit's ELBO, without another pass: the answers' part is the confusion counts
        // times the log errors, plus the prior per answer, plus the entropy.
        let joint = crate::ordered_sum::sum(counts.len(), |i| {
            let (n, e) = (counts[i], errors[i]);
            if n > 0.0 {
                n * e.ln()
            } else {
                0.0
            }
        });
        let prior_part: f64 = log_priors(&priors)
            .iter()
            .zip(&e.answer_mass)
            .map(|(lp, m)| lp * m)
            .sum();
        let new_loss = (joint + prior_part + e.entropy) / lay.answers() as f64;
        history.push(new_loss);
        if new_loss - loss < opts.tol {
            break;
        }
        loss = new_loss;
    }
    Ok(Fit {
        classes: k,
        posteriors: probas,
        iterations: history.len(),
        objective: history.last().copied(),
        params: DsParams {
            priors,
            errors,
            loss_history: history,
        },
    })
}

/// Majority-vote shares (crowd-kit's `MajorityVote.fit_predict_proba`); no answers: uniform.
pub(crate) fn vote_shares(lay: &Layout) -> Vec<f64> {
    let k = lay.classes;
    let mut p = vec![0.0; lay.tasks * k];
    p.par_chunks_mut(k).enumerate().for_each(|(t, row)| {
        let r = lay.of_task(t);
        if r.is_empty() {
            row.iter_mut().for_each(|x| *x = 1.0 / k as f64);
            return;
        }
        let n = r.len() as f64;
        for i in r {
            row[lay.label[i] as usize] += 1.0 / n;
        }
    });
    p
}

/// Mean posterior over the tasks that have answers (crowd-kit's `probas.mean()`).
pub(crate) fn mean_posterior(lay: &Layout, probas: &[f64]) -> Vec<f64> {
    let k = lay.classes;
    let (sum, n) = probas
        .par_chunks(k)
        .enumerate()
        .filter(|(t, _)| lay.task_len(*t) > 0)
        .fold(
            || (vec![0.0; k], 0usize),
            |(mut s, n), (_, row)| {
                s.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                (s, n + 1)
            },
        )
        .reduce(
            || (vec![0.0; k], 0usize),
            |(mut s, n), (s2, n2)| {
                s.iter_mut().zip(&s2).for_each(|(a, b)| *a += b);
                (s, n + n2)
            },
        );
    sum.into_iter().map(|s| s / n.max(1) as f64).collect()
}

/// `workers x classes`: whether the worker gave the label at least once.
pub(crate) fn labels_used(lay: &Layout) -> Vec<bool> {
    let k = lay.classes;
    let mut used = vec![false; lay.workers * k];
    used.par_chunks_mut(k).enumerate().for_each(|(w, row)| {
        for &i in lay.of_worker(w) {
            row[lay.label[i as usize] as usize] = true;
        }
    });
    used
}

/// `workers x classes x classes`: `[(w * K + l) * K + c]` = posterior mass of class `c` over
/// worker `w`'s answers `l`.
pub(crate) fn confusion_counts(lay: &Layout, blocks: &[Range<usize>], probas: &[f64]) -> Vec<f64> {
    let k = lay.classes;
    lay.sum_over_tasks(blocks, lay.workers * k * k, |acc, t| {
        let p = &probas[t * k..t * k + k];
        for i in lay.of_task(t) {
            let off = (lay.worker[i] as usize * k + lay.label[i] as usize) * k;
            acc[off..off + k]
                .iter_mut()
                .zip(p)
                .for_each(|(a, b)| *a += b);
        }
    })
}

/// crowd-kit's M-step from the counts: each answered cell clipped below at `EPS`, each column
/// normalised over the labels the worker used.
fn normalise(lay: &Layout, used: &[bool], counts: &[f64]) -> Vec<f64> {
    let k = lay.classes;
    let mut e = counts.to_vec();
    e.par_chunks_mut(k * k).enumerate().for_each(|(w, m)| {
        let used = &used[w * k..w * k + k];
        for (l, &u) in used.iter().enumerate() {
            if u {
                m[l * k..l * k + k].iter_mut().for_each(|x| *x = x.max(EPS));
            }
        }
        for c in 0..k {
            let s: f64 = (0..k).map(|l| m[l * k + c]).sum();
            if s > 0.0 {
                (0..k).for_each(|l| m[l * k + c] /= s);
            }
        }
    });
    e
}

/// Natural logs of the errors, 0 where a row is unused (it is never looked up).
fn log_errors(errors: &[f64]) -> Vec<f64> {
    errors
        .par_iter()
        .map(|&x| if x > 0.0 { x.ln() } else { 0.0 })
        .collect()
}

pub(crate) fn log_priors(priors: &[f64]) -> Vec<f64> {
    priors.iter().map(|p| p.max(EPS).ln()).collect()
}

/// What an E-step pass also gives: the new priors (mean posterior over tasks with answers),
/// `sum over tasks of answers * posterior` per class, and crowd-kit's clipped entropy.
pub(crate) struct EStep {
    pub priors: Vec<f64>,
    pub answer_mass: Vec<f64>,
    pub entropy: f64,
}

/// Posteriors into `probas` from the priors and the log-error table `le` (`[(w * K + l) * K +
/// c]` = ln P(answer l | true c)).
pub(crate) fn e_step(
    lay: &Layout,
    blocks: &[Range<usize>],
    priors: &[f64],
    le: &[f64],
    probas: &mut [f64],
) -> EStep {
    let k = lay.classes;
    let lp = log_priors(priors);
    let ln_eps = EPS.ln();
    // Per block: [sum p (k), sum n p (k), entropy, tasks with answers].
    let tables = blocks
        .par_iter()
        .zip(split_rows(probas, k, blocks))
        .map(|(r, rows)| {
            let mut acc = vec![0.0; 2 * k + 2];
            let mut scores = vec![0.0; k];
            for (t, row) in r.clone().zip(rows.chunks_exact_mut(k)) {
                row.copy_from_slice(&lp);
                for i in lay.of_task(t) {
                    let off = (lay.worker[i] as usize * k + lay.label[i] as usize) * k;
                    row.iter_mut()
                        .zip(&le[off..off + k])
                        .for_each(|(a, b)| *a += b);
                }
                let n = lay.task_len(t);
                scores.copy_from_slice(row);
                let lse = softmax_in_place(row);
                if n == 0 {
                    continue;
                }
                let mut h = 0.0;
                for (c, (&p, &x)) in row.iter().zip(&scores).enumerate() {
                    acc[c] += p;
                    acc[k + c] += n as f64 * p;
                    // ln p = score - lse; crowd-kit clips p at EPS inside the entropy.
                    h -= if p < EPS { EPS * ln_eps } else { p * (x - lse) };
                }
                acc[2 * k] += h;
                acc[2 * k + 1] += 1.0;
            }
            acc
        });
    let sums = crate::ordered_sum::add_tables(tables, 2 * k + 2);
    let tasks = sums[2 * k + 1].max(1.0);
    EStep {
        priors: sums[..k].iter().map(|s| s / tasks).collect(),
        answer_mass: sums[k..2 * k].to_vec(),
        entropy: sums[2 * k],
    }
}
