//! Bayesian classifier combination (IBCC: Kim & Ghahramani 2012), fitted by mean-field
//! variational inference: a Dirichlet prior on each row of each worker's confusion matrix and on
//! the class proportions; posteriors over the true classes, the confusion rows and the
//! proportions.
//!
//! **The priors, by a stated principle: empirical Bayes, no constant fitted to any data set.**
//! - Class proportions: Dirichlet(1, ..., 1), Laplace's uniform prior.
//! - Worker `w`'s confusion row for true class `c`: Dirichlet(`s_c * m_c`). The mean `m_c` is
//!   the crowd's pooled row (every answer read as one worker's, Laplace-smoothed: `(1 + expected
//!   count of l given c) / (K + expected answers given c)`); the strength `s_c` (pseudo-answers)
//!   is the one under which the workers' own rows are most probable (maximum Dirichlet-multinomial
//!   evidence, Minka's fixed point, kept within `[0.01, answers]`). Both are re-estimated after
//!   every variational step. So the prior is diagonal-dominant exactly as far as the crowd is
//!   better than chance; a crowd whose workers differ a lot gets a weak prior (each worker read by
//!   their own record), a uniform crowd a strong one (workers with few answers read as typical);
//!   a worker with many answers outweighs any prior.
//! - [`Options::strength`] fixes `s_c` instead (for comparisons).
//!
//! **Algorithm**: start from the majority-vote shares; each step sets the Dirichlet posteriors
//! from the expected counts, then the task posteriors from `E[ln proportion] + sum over answers
//! of E[ln confusion]` (digammas). Stop when no task posterior moved more than `tol`, or after
//! `max_iter` steps.
//!
//! **Gold** ([`Evidence::gold`]): a task with a known class is clamped to it (one-hot) after
//! every step, so it teaches the confusion rows; the label the answers alone give it under the
//! final model is returned beside the fit, for honest scoring.
//!
//! **A model's probabilities** ([`Evidence::model`]): for a task the model covers, its class
//! probabilities tempered by one exponent `lambda` (`p^lambda`, renormalised) take the place of
//! the class proportions: P(class | item, answers) is proportional to P(class | item) times the
//! answers' likelihood. `lambda` is the model's weight, a parameter like the confusion rows,
//! fitted after every step from the data: the one under which the tempered probabilities best
//! predict the current posteriors of the tasks that have answers (the M-step of the joint
//! likelihood; [`super::temper`]). A model that agrees with the annotators gets a weight near or
//! above 1, an overconfident one less, a useless one 0.
//!
//! **Tie rule**: lowest class.

use super::digamma::digamma;
use super::ds_crowdkit::{confusion_counts, vote_shares};
use super::layout::Layout;
use super::temper;
use super::{argmax, one_class, softmax_in_place, Answers, Fit};
use crate::error::Result;
use rayon::prelude::*;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub max_iter: usize,
    /// Stop when the largest change of any task posterior is at most this. 1e-4: on the shared
    /// sets 1e-6 to 1e-3 give the same labels; 1e-4 takes a third fewer steps than 1e-6.
    pub tol: f64,
    /// Pseudo-answers per confusion row in the prior; `None` = fitted (see the module docs).
    pub strength: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_iter: 100,
            tol: 1e-4,
            strength: None,
        }
    }
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BayesParams {
    /// Per true class: pseudo-answers per confusion row in the prior.
    pub strength: Vec<f64>,
    /// `classes x classes`: the crowd's pooled confusion rows (`[c * K + l]` = P(answer l | c)),
    /// the prior's mean.
    pub prior_mean: Vec<f64>,
    /// `workers x classes x classes`: Dirichlet posterior parameters, `[(w * K + c) * K + l]`.
    pub confusion: Vec<f64>,
    /// `classes`: Dirichlet posterior parameters of the class proportions.
    pub proportions: Vec<f64>,
    /// The model's fitted weight (the exponent on its probabilities), when one was given.
    pub model_weight: Option<f64>,
}

/// What the fit may use besides the answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// Per task: its known class, or `u32::MAX`.
    pub gold: Option<&'a [u32]>,
    pub model: Option<ModelEvidence<'a>>,
}

/// A model's class probabilities per task, as logs.
#[derive(Debug, Clone, Copy)]
pub struct ModelEvidence<'a> {
    /// `tasks x classes`: ln P(class | item), finite (floored); rows of uncovered tasks unused.
    pub log_probs: &'a [f64],
    /// Per task: whether the model has a row for it.
    pub covered: &'a [bool],
}

/// A fit with evidence: the fit, and with gold, per task the answers-only label of each clamped
/// task (`u32::MAX` for the others).
pub type FitWith = (Fit<BayesParams>, Option<Vec<u32>>);

pub fn fit(a: &Answers, opts: &Options) -> Result<Fit<BayesParams>> {
    fit_with(a, opts, &Evidence::default()).map(|(f, _)| f)
}

/// [`fit`] with gold clamped and/or a model's probabilities (see the module docs).
pub fn fit_with(a: &Answers, opts: &Options, ev: &Evidence) -> Result<FitWith> {
    a.check()?;
    check_evidence(a, ev)?;
    if let Some(f) = one_class(a, BayesParams::default) {
        return Ok((f, ev.gold.map(|g| g.iter().map(|_| 0).collect())));
    }
    let lay = Layout::new(a);
    let k = lay.classes;
    let blocks = lay.blocks(lay.workers * k * k);
    let mut q = vote_shares(&lay);
    // The model's first weight: against the vote shares.
    let mut lambda = ev
        .model
        .map(|m| temper::fit(&m, &q, k, |t| lay.task_len(t) > 0, 1.0));
    let mut unclamped = None;
    clamp(&mut q, k, ev.gold);
    let mut params = BayesParams::default();
    let mut iterations = 0;
    // Two posterior buffers, swapped each step (no fresh pages per iteration).
    let mut next = vec![0.0; q.len()];
    while iterations < opts.max_iter {
        params = posterior_params(&lay, &blocks, &q, opts.strength);
        e_step(&lay, &params, ev, lambda, &mut next);
        iterations += 1;
        unclamped = clamp(&mut next, k, ev.gold);
        if let Some(m) = &ev.model {
            let l = lambda.unwrap_or(1.0);
            lambda = Some(temper::fit(m, &next, k, |t| lay.task_len(t) > 0, l));
        }
        let moved = next
            .par_iter()
            .zip(&q)
            .map(|(a, b)| (a - b).abs())
            .reduce(|| 0.0, f64::max);
        std::mem::swap(&mut q, &mut next);
        if moved <= opts.tol {
            break;
        }
    }
    params.model_weight = lambda;
    if iterations == 0 {
        unclamped = ev.gold.map(|g| clamped_labels(&vote_shares(&lay), k, g));
    }
    Ok((
        Fit {
            classes: k,
            posteriors: q,
            iterations,
            objective: None,
            params,
        },
        unclamped,
    ))
}

fn check_evidence(a: &Answers, ev: &Evidence) -> Result<()> {
    let bad = |what: &str, got: usize, want: usize| {
        Err(crate::error::Error::Invalid(format!(
            "{what} has {got} values for {want}"
        )))
    };
    if let Some(g) = ev.gold {
        if g.len() != a.tasks {
            return bad("gold", g.len(), a.tasks);
        }
        if let Some(&c) = g
            .iter()
            .find(|&&c| c != u32::MAX && c as usize >= a.classes)
        {
            return Err(crate::error::Error::Invalid(format!(
                "gold class {c} is not below the class count {}",
                a.classes
            )));
        }
    }
    if let Some(m) = &ev.model {
        if m.covered.len() != a.tasks {
            return bad("the model's task mask", m.covered.len(), a.tasks);
        }
        if m.log_probs.len() != a.tasks * a.classes {
            return bad(
                "the model's probabilities",
                m.log_probs.len(),
                a.tasks * a.classes,
            );
        }
    }
    Ok(())
}

/// Per task, the argmax of `q` where gold is known (`u32::MAX` elsewhere).
fn clamped_labels(q: &[f64], k: usize, gold: &[u32]) -> Vec<u32> {
    q.chunks_exact(k)
        .zip(gold)
        .map(|(row, &g)| if g == u32::MAX { u32::MAX } else { argmax(row) })
        .collect()
}

/// Sets gold tasks one-hot; returns their labels before the clamp.
fn clamp(q: &mut [f64], k: usize, gold: Option<&[u32]>) -> Option<Vec<u32>> {
    let gold = gold?;
    let before = clamped_labels(q, k, gold);
    q.par_chunks_mut(k).zip(gold).for_each(|(row, &g)| {
        if g != u32::MAX {
            row.iter_mut()
                .enumerate()
                .for_each(|(c, p)| *p = f64::from(c as u32 == g));
        }
    });
    Some(before)
}

/// Expected confusion counts per worker, the pooled prior mean, and the Dirichlet posteriors.
fn posterior_params(
    lay: &Layout,
    blocks: &[Range<usize>],
    q: &[f64],
    strength: Option<f64>,
) -> BayesParams {
    let k = lay.classes;
    // Expected counts, summed in task order as [w][l][c], turned to [w][c][l].
    let by_label = confusion_counts(lay, blocks, q);
    let mut counts = vec![0.0; lay.workers * k * k];
    counts
        .par_chunks_mut(k * k)
        .zip(by_label.par_chunks(k * k))
        .for_each(|(m, n)| {
            for c in 0..k {
                for l in 0..k {
                    m[c * k + l] = n[l * k + c];
                }
            }
        });
    // Summed in fixed pieces of workers, then in order: the same bits on any thread count.
    let pieces = counts.par_chunks(64 * k * k).map(|piece| {
        let mut s = vec![0.0; k * k];
        for m in piece.chunks_exact(k * k) {
            s.iter_mut().zip(m).for_each(|(a, b)| *a += b);
        }
        s
    });
    let pooled = crate::ordered_sum::add_tables(pieces, k * k);
    let mut prior_mean = vec![0.0; k * k];
    for c in 0..k {
        let row = &pooled[c * k..c * k + k];
        let total: f64 = row.iter().sum::<f64>() + k as f64;
        for l in 0..k {
            prior_mean[c * k + l] = (row[l] + 1.0) / total;
        }
    }
    let strength: Vec<f64> = match strength {
        Some(s) => vec![s; k],
        None => (0..k)
            .into_par_iter()
            .map(|c| fit_strength(&counts, &prior_mean[c * k..c * k + k], c, k))
            .collect(),
    };
    counts.par_chunks_mut(k * k).for_each(|m| {
        for (j, (a, p)) in m.iter_mut().zip(&prior_mean).enumerate() {
            *a += strength[j / k] * p;
        }
    });
    let mut proportions = vec![1.0; k];
    for (t, row) in q.chunks_exact(k).enumerate() {
        if lay.task_len(t) > 0 {
            proportions.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
    }
    BayesParams {
        strength,
        prior_mean,
        confusion: counts,
        proportions,
        model_weight: None,
    }
}

/// Task posteriors (into `q`, every value written) from the Dirichlet posteriors; with a model,
/// its tempered probabilities in place of the class proportions on the tasks it covers.
fn e_step(lay: &Layout, p: &BayesParams, ev: &Evidence, lambda: Option<f64>, q: &mut [f64]) {
    let k = lay.classes;
    // E[ln pi_w[c][l]] laid out [w][l][c], so a task reads one contiguous row per answer.
    let mut eln = vec![0.0; lay.workers * k * k];
    eln.par_chunks_mut(k * k).enumerate().for_each(|(w, out)| {
        let conf = &p.confusion[w * k * k..(w + 1) * k * k];
        for c in 0..k {
            let row = &conf[c * k..c * k + k];
            let norm = digamma(row.iter().sum());
            for l in 0..k {
                out[l * k + c] = digamma(row[l]) - norm;
            }
        }
    });
    let total = digamma(p.proportions.iter().sum());
    let eln_prop: Vec<f64> = p.proportions.iter().map(|&v| digamma(v) - total).collect();
    let lambda = lambda.unwrap_or(1.0);
    q.par_chunks_mut(k)
        .enumerate()
        .with_min_len(64)
        .for_each(|(t, row)| {
            match ev.model.filter(|m| m.covered[t]) {
                Some(m) => {
                    let lp = &m.log_probs[t * k..t * k + k];
                    let lz = temper::log_norm(lp, lambda);
                    row.iter_mut()
                        .zip(lp)
                        .for_each(|(r, &v)| *r = lambda * v - lz);
                }
                None => row.copy_from_slice(&eln_prop),
            }
            for i in lay.of_task(t) {
                let off = (lay.worker[i] as usize * k + lay.label[i] as usize) * k;
                row.iter_mut()
                    .zip(&eln[off..off + k])
                    .for_each(|(a, b)| *a += b);
            }
            softmax_in_place(row);
        });
}

/// The Dirichlet precision that best explains the workers' rows for true class `c` (expected
/// counts, `[w][c][l]` in `counts`) around the mean `mean`: the maximum of the Dirichlet-multinomial
/// evidence, by Minka's fixed point. Kept within `[0.01, answers]`.
fn fit_strength(counts: &[f64], mean: &[f64], c: usize, k: usize) -> f64 {
    let rows: Vec<&[f64]> = counts
        .chunks_exact(k * k)
        .map(|m| &m[c * k..c * k + k])
        .filter(|r| r.iter().sum::<f64>() > 0.0)
        .collect();
    let total: f64 = rows.iter().map(|r| r.iter().sum::<f64>()).sum();
    let hi = total.max(1.0);
    let sums: Vec<f64> = rows.iter().map(|r| r.iter().sum()).collect();
    let mut s = k as f64;
    let mut dg_sm = vec![0.0; k];
    for _ in 0..50 {
        // The digammas that do not depend on the row, once per round.
        let dg_s = digamma(s);
        dg_sm
            .iter_mut()
            .zip(mean)
            .for_each(|(d, m)| *d = digamma(s * m));
        let (mut num, mut den) = (0.0, 0.0);
        for (r, &n) in rows.iter().zip(&sums) {
            den += digamma(n + s) - dg_s;
            for ((x, m), d) in r.iter().zip(mean).zip(&dg_sm) {
                num += m * (digamma(x + s * m) - d);
            }
        }
        if den.is_nan() || num.is_nan() || den <= 0.0 || num < 0.0 {
            break;
        }
        let next = (s * num / den).clamp(0.01, hi);
        let done = (next - s).abs() <= 1e-6 * s;
        s = next;
        if done {
            break;
        }
    }
    s
}
