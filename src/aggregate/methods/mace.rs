//! MACE (Hovy et al. 2013) as crowd-kit 1.4.2 fits it by default (variational Bayes): each worker
//! either knows the answer (and gives the true class) or spams (and draws a class from their own
//! spamming distribution `theta_w`).
//!
//! - **Model**: P(answer `l` | true `c`) = `spam_w[0] * theta_w[l] + spam_w[1] * [l == c]`, with
//!   `spam_w = (P(spamming), P(knowing))`; uniform class prior.
//! - **Start** (per restart): `spam_w` and `theta_w` drawn uniform in `[1, 1 + 1.5)` and
//!   normalised, from a [`SplitMix`] seeded with `seed + restart`.
//! - **Iteration** (`n_iter`, no early stop): variational M-step from the expected counts
//!   (`exp(digamma(count + prior)) / exp(digamma(sum))`, priors Beta(0.5, 0.5) on `spam_w` and a
//!   symmetric Dirichlet(10) on `theta_w`), then E-step.
//! - **Restarts**: the restart with the highest log marginal likelihood wins. crowd-kit 1.4.2
//!   runs 10 restarts but seeds each one with the same `random_state`, so all 10 start alike; one
//!   restart reproduces that, and is the default. More restarts here draw distinct starts.
//! - **Differences**: products over a task's answers are taken in log space (crowd-kit multiplies
//!   them directly, which underflows to 0 and then NaN on tasks with hundreds of answers), and the
//!   log marginal likelihood is `sum ln(marginal)` without crowd-kit's `+ 1e-8`. crowd-kit 1.4.2
//!   also indexes its `theta` by sorted worker and label names on the M-step but by order of first
//!   appearance on the E-step (a mix-up); this file keeps one order. The mix-up moves results:
//!   on the shared `product` set crowd-kit reports .9304, crowd-kit with aligned indexes .8273,
//!   this file .8305.
//! - **Tie rule**: lowest class (crowd-kit: first class in order of appearance).

use super::digamma::digamma;
use super::layout::{split_rows, Layout};
use super::{one_class, softmax_in_place, Answers, Fit, SplitMix};
use crate::error::Result;
use rayon::prelude::*;
use std::ops::Range;

/// crowd-kit's defaults (`method = "vb"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub n_restarts: usize,
    pub n_iter: usize,
    /// Start values are uniform in `[1, 2 + default_noise)` before normalising.
    pub default_noise: f64,
    /// Beta prior on (spamming, knowing).
    pub alpha: f64,
    pub beta: f64,
    /// Symmetric Dirichlet prior on each spamming distribution.
    pub theta_prior: f64,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            n_restarts: 1,
            n_iter: 50,
            default_noise: 0.5,
            alpha: 0.5,
            beta: 0.5,
            theta_prior: 10.0,
            seed: 0,
        }
    }
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaceParams {
    /// `workers x 2`: (spamming, knowing) weights of each worker.
    pub spamming: Vec<f64>,
    /// `workers x classes`: each worker's spamming distribution.
    pub thetas: Vec<f64>,
}

pub fn fit(a: &Answers, opts: &Options) -> Result<Fit<MaceParams>> {
    a.check()?;
    if let Some(f) = one_class(a, MaceParams::default) {
        return Ok(f);
    }
    let lay = Layout::new(a);
    let blocks = lay.blocks(lay.workers * (lay.classes + 1) + 1);
    // One posteriors buffer per restart, reused by every step (no fresh pages per iteration).
    let run = |r: usize| {
        let mut params = start(&lay, opts, opts.seed.wrapping_add(r as u64));
        let mut step = e_step(&lay, &blocks, &params, vec![0.0; lay.tasks * lay.classes]);
        for _ in 0..opts.n_iter {
            params = m_step(&lay, &step, opts);
            step = e_step(&lay, &blocks, &params, std::mem::take(&mut step.posteriors));
        }
        (step, params)
    };
    let (mut step, mut params) = run(0);
    for r in 1..opts.n_restarts {
        let next = run(r);
        if next.0.lml > step.lml {
            (step, params) = next;
        }
    }
    Ok(Fit {
        classes: lay.classes,
        posteriors: step.posteriors,
        iterations: opts.n_iter,
        objective: Some(step.lml),
        params,
    })
}

fn start(lay: &Layout, opts: &Options, seed: u64) -> MaceParams {
    let mut rng = SplitMix::new(seed);
    let mut draw = |n: usize, width: usize| -> Vec<f64> {
        let mut v: Vec<f64> = (0..n * width)
            .map(|_| 1.0 + (1.0 + opts.default_noise) * rng.uniform())
            .collect();
        for row in v.chunks_mut(width) {
            let s: f64 = row.iter().sum();
            row.iter_mut().for_each(|x| *x /= s);
        }
        v
    };
    let spamming = draw(lay.workers, 2);
    let thetas = draw(lay.workers, lay.classes);
    MaceParams { spamming, thetas }
}

struct Step {
    posteriors: Vec<f64>,
    /// Log marginal likelihood of the answers.
    lml: f64,
    /// `workers x classes`: expected spamming answers of each worker per label given.
    strategy: Vec<f64>,
    /// Per worker: expected answers given knowingly.
    knowing: Vec<f64>,
}

/// Posteriors into `posteriors` (any values; `tasks x classes`), with the expected counts.
fn e_step(lay: &Layout, blocks: &[Range<usize>], p: &MaceParams, mut posteriors: Vec<f64>) -> Step {
    let k = lay.classes;
    let wk = lay.workers * k;
    // Per (worker, class): ln(spam * theta), ln(spam * theta + know) - ln(spam * theta), and
    // know / (spam * theta + know), the share of a right answer that was known.
    let table: Vec<(f64, f64, f64)> = (0..wk)
        .into_par_iter()
        .map(|wl| {
            let w = wl / k;
            let a = p.spamming[2 * w] * p.thetas[wl];
            let b = a + p.spamming[2 * w + 1];
            (a.ln(), b.ln() - a.ln(), p.spamming[2 * w + 1] / b)
        })
        .collect();
    let ln_k = (k as f64).ln();
    // Per block: strategy (workers x classes), knowing (workers), lml.
    let tables = blocks
        .par_iter()
        .zip(split_rows(&mut posteriors, k, blocks))
        .map(|(r, rows)| {
            let mut acc = vec![0.0; wk + lay.workers + 1];
            for (t, row) in r.clone().zip(rows.chunks_exact_mut(k)) {
                row.fill(0.0);
                let mut base = -ln_k;
                for i in lay.of_task(t) {
                    let (la, gain, _) = table[lay.worker[i] as usize * k + lay.label[i] as usize];
                    base += la;
                    row[lay.label[i] as usize] += gain;
                }
                row.iter_mut().for_each(|v| *v += base);
                let lse = softmax_in_place(row);
                if lay.task_len(t) > 0 {
                    acc[wk + lay.workers] += lse;
                }
                for i in lay.of_task(t) {
                    let (w, l) = (lay.worker[i] as usize, lay.label[i] as usize);
                    let know = row[l] * table[w * k + l].2;
                    acc[w * k + l] += 1.0 - know;
                    acc[wk + w] += know;
                }
            }
            acc
        });
    let sums = crate::ordered_sum::add_tables(tables, wk + lay.workers + 1);
    Step {
        posteriors,
        lml: sums[wk + lay.workers],
        strategy: sums[..wk].to_vec(),
        knowing: sums[wk..wk + lay.workers].to_vec(),
    }
}

/// `exp(digamma(x_i + prior_i)) / exp(digamma(sum_j (x_j + prior_j)))`, row by row.
fn variational_normalize(counts: &[f64], prior: f64, out: &mut [f64]) {
    let total: f64 = counts.iter().map(|c| c + prior).sum();
    let norm = digamma(total);
    for (o, c) in out.iter_mut().zip(counts) {
        *o = (digamma(c + prior) - norm).exp();
    }
}

fn m_step(lay: &Layout, step: &Step, opts: &Options) -> MaceParams {
    let k = lay.classes;
    let mut spamming = vec![0.0; lay.workers * 2];
    let mut thetas = vec![0.0; lay.workers * k];
    spamming
        .par_chunks_mut(2)
        .zip(thetas.par_chunks_mut(k))
        .enumerate()
        .for_each(|(w, (spam, theta))| {
            let strategy = &step.strategy[w * k..w * k + k];
            let spam_count: f64 = strategy.iter().sum();
            let knowing = step.knowing[w];
            // Beta(alpha, beta): alpha on spamming, beta on knowing (crowd-kit's columns).
            let total = digamma(spam_count + opts.alpha + knowing + opts.beta);
            spam[0] = (digamma(spam_count + opts.alpha) - total).exp();
            spam[1] = (digamma(knowing + opts.beta) - total).exp();
            variational_normalize(strategy, opts.theta_prior, theta);
        });
    MaceParams { spamming, thetas }
}
