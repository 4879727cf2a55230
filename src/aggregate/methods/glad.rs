//! GLAD (Whitehill et al. 2009) as crowd-kit 1.4.2 fits it: worker skill `alpha_w`, task
//! difficulty `beta_t` (easiness `exp(beta_t)`); a worker answers correctly with probability
//! `sigmoid(alpha_w * exp(beta_t))`, and a wrong answer is any other class with equal probability.
//!
//! - **Start**: `alpha = beta = 1`; class priors uniform and fixed; Gaussian priors N(1, 1) on
//!   every `alpha` and `beta`.
//! - **Iteration** (at most `n_iter`): E-step (posteriors), then M-step: at most
//!   `m_step_max_iter` iterations of nonlinear conjugate gradient (Polak-Ribiere+, Wolfe line
//!   search, as scipy's `minimize(method="CG")`) on `-Q`, stopping early when the largest
//!   gradient entry is below `m_step_tol`. `Q` = expected complete log-likelihood plus the log
//!   priors. Stop when `Q` per row (answers x classes, crowd-kit's melted table) gained less than
//!   `tol`; the first comparison is against the unnormalised start value, as in crowd-kit.
//! - **Posteriors** are those of the last E-step (before the last M-step), as crowd-kit returns.
//! - **Tie rule**: lowest class.

use super::layout::{split_rows, Layout};
use super::{one_class, softmax_in_place, Answers, Fit};
use crate::error::Result;
use rayon::prelude::*;

/// crowd-kit's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub n_iter: usize,
    pub tol: f64,
    pub m_step_max_iter: usize,
    pub m_step_tol: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            n_iter: 100,
            tol: 1e-5,
            m_step_max_iter: 25,
            m_step_tol: 0.01,
        }
    }
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GladParams {
    /// Per worker: skill (negative = adversarial).
    pub alpha: Vec<f64>,
    /// Per task: log easiness.
    pub beta: Vec<f64>,
    /// `Q` per row after each iteration.
    pub loss_history: Vec<f64>,
}

const PRIOR_MEAN: f64 = 1.0;

pub fn fit(a: &Answers, opts: &Options) -> Result<Fit<GladParams>> {
    a.check()?;
    if let Some(f) = one_class(a, GladParams::default) {
        return Ok(f);
    }
    let lay = Layout::new(a);
    let m = Model::new(&lay);
    let mut x = vec![PRIOR_MEAN; lay.workers + lay.tasks];
    let mut scratch = vec![0.0; x.len()];
    let mut probas = m.e_step(&x);
    let mut q = -m.eval(&x, &probas, &mut scratch);
    let rows = (lay.answers() * lay.classes) as f64;
    let mut history = Vec::new();
    for _ in 0..opts.n_iter {
        let last_q = q;
        probas = m.e_step(&x);
        conjugate_gradient(&m, &probas, &mut x, opts.m_step_max_iter, opts.m_step_tol);
        q = -m.eval(&x, &probas, &mut scratch) / rows;
        history.push(q);
        if q - last_q < opts.tol {
            break;
        }
    }
    let beta = x.split_off(lay.workers);
    Ok(Fit {
        classes: lay.classes,
        posteriors: probas,
        iterations: history.len(),
        objective: history.last().copied(),
        params: GladParams {
            alpha: x,
            beta,
            loss_history: history,
        },
    })
}

/// `(softplus(-z), sigmoid(z))` with one `exp` and one `ln`. `ln(1 + e)` rather than
/// `ln_1p(e)`: glibc's `log1p` took half of a 1M-task fit, and for `e` in `(0, 1]` the two differ
/// by at most about 1e-16 in absolute terms, nothing next to the sums they enter.
fn softplus_neg_and_sigmoid(z: f64) -> (f64, f64) {
    let e = (-z.abs()).exp();
    let sp = (-z).max(0.0) + (1.0 + e).ln();
    let sig = if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (sp, sig)
}

struct Model<'a> {
    lay: &'a Layout,
    blocks: Vec<std::ops::Range<usize>>,
    /// `ln(K - 1)`: a wrong answer's share of the error probability.
    ln_wrong: f64,
}

impl<'a> Model<'a> {
    fn new(lay: &'a Layout) -> Self {
        Model {
            lay,
            blocks: lay.blocks(lay.workers + 1),
            ln_wrong: ((lay.classes - 1) as f64).ln(),
        }
    }

    /// Posteriors under `x = [alpha; beta]` with uniform class priors.
    fn e_step(&self, x: &[f64]) -> Vec<f64> {
        let lay = self.lay;
        let k = lay.classes;
        let (alpha, beta) = x.split_at(lay.workers);
        let mut p = vec![0.0; lay.tasks * k];
        p.par_chunks_mut(k)
            .enumerate()
            .with_min_len(64)
            .for_each(|(t, row)| {
                let eb = beta[t].exp();
                let mut base = 0.0;
                for i in lay.of_task(t) {
                    let z = alpha[lay.worker[i] as usize] * eb;
                    let (sp_neg, _) = softplus_neg_and_sigmoid(z);
                    let (right, wrong) = (-sp_neg, -(sp_neg + z) - self.ln_wrong);
                    base += wrong;
                    row[lay.label[i] as usize] += right - wrong;
                }
                row.iter_mut().for_each(|v| *v += base);
                softmax_in_place(row);
            });
        p
    }

    /// `-Q(x)` under the posteriors `probas`; writes `-dQ/dx` into `grad`.
    fn eval(&self, x: &[f64], probas: &[f64], grad: &mut [f64]) -> f64 {
        let lay = self.lay;
        let k = lay.classes;
        let (alpha, beta) = x.split_at(lay.workers);
        let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let log_normal = |v: f64| -0.5 * (v - PRIOR_MEAN) * (v - PRIOR_MEAN) - half_ln_2pi;
        let (ga, gb) = grad.split_at_mut(lay.workers);
        let blocks = &self.blocks;
        // Per block: dQ/dalpha per worker, then Q; dQ/dbeta goes straight into `gb`.
        let tables = blocks
            .par_iter()
            .zip(split_rows(gb, 1, blocks))
            .map(|(r, gbs)| {
                let mut acc = vec![0.0; lay.workers + 1];
                let mut q = 0.0;
                for (t, g_beta) in r.clone().zip(gbs.iter_mut()) {
                    let eb = beta[t].exp();
                    let mut db = 0.0;
                    for i in lay.of_task(t) {
                        let w = lay.worker[i] as usize;
                        let z = alpha[w] * eb;
                        let (sp_neg, sig) = softplus_neg_and_sigmoid(z);
                        let p = probas[t * k + lay.label[i] as usize];
                        q += p * -sp_neg + (1.0 - p) * (-(sp_neg + z) - self.ln_wrong);
                        let g = (p - sig) * eb;
                        acc[w] += g;
                        db += g * alpha[w];
                    }
                    q += log_normal(beta[t]);
                    *g_beta = -(db - (beta[t] - PRIOR_MEAN));
                }
                acc[lay.workers] = q;
                acc
            });
        let sums = crate::ordered_sum::add_tables(tables, lay.workers + 1);
        let mut q = sums[lay.workers];
        q += alpha.iter().map(|&v| log_normal(v)).sum::<f64>();
        for (w, g) in ga.iter_mut().enumerate() {
            *g = -(sums[w] - (alpha[w] - PRIOR_MEAN));
        }
        -q
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    crate::ordered_sum::sum(a.len(), |i| a[i] * b[i])
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Minimises `-Q` from `x` in place: Polak-Ribiere+ conjugate gradient with a Wolfe line search,
/// the first step sized as scipy's (`min(1, 2.02 * (f_prev - f) / -slope)`).
fn conjugate_gradient(m: &Model, probas: &[f64], x: &mut [f64], max_iter: usize, gtol: f64) {
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut f = m.eval(x, probas, &mut g);
    let mut f_prev = f + g.iter().map(|v| v * v).sum::<f64>().sqrt() / 2.0;
    let mut d: Vec<f64> = g.iter().map(|v| -v).collect();
    let mut trial = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    for _ in 0..max_iter {
        if max_abs(&g) <= gtol {
            break;
        }
        let gg = dot(&g, &g);
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            d.iter_mut().zip(&g).for_each(|(di, gi)| *di = -gi);
            slope = -gg;
        }
        let step0 = match 2.02 * (f - f_prev) / slope {
            s if s > 0.0 && s.is_finite() => s.min(1.0),
            _ => 1.0,
        };
        let line = |s: f64, trial: &mut [f64], g_new: &mut [f64]| {
            trial
                .par_iter_mut()
                .zip(&*x)
                .zip(&d)
                .for_each(|((t, xi), di)| *t = xi + s * di);
            let fv = m.eval(trial, probas, g_new);
            (fv, dot(g_new, &d))
        };
        let Some((_, f_new)) = wolfe(f, slope, step0, |s| line(s, &mut trial, &mut g_new)) else {
            break;
        };
        x.copy_from_slice(&trial);
        f_prev = f;
        f = f_new;
        let num = crate::ordered_sum::sum(g.len(), |i| g_new[i] * (g_new[i] - g[i]));
        let beta_pr = (num / gg).max(0.0);
        d.par_iter_mut()
            .zip(&g_new)
            .for_each(|(di, gi)| *di = -gi + beta_pr * *di);
        std::mem::swap(&mut g, &mut g_new);
    }
}

/// A strong-Wolfe line search (c1 = 1e-4, c2 = 0.4, scipy's values for CG) by bracketing and
/// bisection. `phi(s)` returns (value, slope) at step `s` and leaves the trial point's state
/// (point and gradient) in its buffers, so the last call must be the accepted step: on success
/// returns (step, value) with that state in place.
fn wolfe(
    f0: f64,
    slope0: f64,
    step0: f64,
    mut phi: impl FnMut(f64) -> (f64, f64),
) -> Option<(f64, f64)> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.4;
    let ok = |s: f64, f: f64, g: f64| f <= f0 + C1 * s * slope0 && g.abs() <= -C2 * slope0;
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    let mut s = step0;
    for _ in 0..30 {
        let (f, g) = phi(s);
        if !f.is_finite() || f > f0 + C1 * s * slope0 {
            hi = s;
        } else if ok(s, f, g) {
            return Some((s, f));
        } else if g < 0.0 {
            lo = s;
        } else {
            hi = s;
        }
        s = if hi.is_finite() {
            0.5 * (lo + hi)
        } else {
            2.0 * s
        };
    }
    // No Wolfe point found: accept the last point only if it decreased enough, else give up.
    let (f, _) = phi(lo.max(0.0));
    (lo > 0.0 && f <= f0 + C1 * lo * slope0).then_some((lo, f))
}
