//! One-coin Dawid-Skene as crowd-kit 1.4.2's `OneCoinDawidSkene`: each worker has one skill `s`
//! (probability of answering the true class); a wrong answer is any other class with
//! `(1 - s) / (K - 1)`.
//!
//! - **Start**: majority-vote shares; priors = their mean; skills from them.
//! - **Iteration** (at most `n_iter`): E-step, priors = mean posterior, skills = each worker's mean
//!   posterior of the labels they gave, then crowd-kit's ELBO per answer (as in
//!   [`super::ds_crowdkit`], with the one-coin errors clipped to `[1e-10, 1 - 1e-10]`); stop when
//!   it gained less than `tol`.
//! - **Tie rule**: lowest class.

use super::ds_crowdkit::{e_step, log_priors, mean_posterior, vote_shares, EPS};
use super::layout::Layout;
use super::{one_class, Answers, Fit};
use crate::error::Result;
use std::ops::Range;

pub use super::ds_crowdkit::Options;

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OneCoinParams {
    pub priors: Vec<f64>,
    /// Per worker: the probability of answering the true class.
    pub skills: Vec<f64>,
    pub loss_history: Vec<f64>,
}

pub fn fit(a: &Answers, opts: &Options) -> Result<Fit<OneCoinParams>> {
    a.check()?;
    if let Some(f) = one_class(a, OneCoinParams::default) {
        return Ok(f);
    }
    let lay = Layout::new(a);
    let k = lay.classes;
    let blocks = lay.blocks(lay.workers);
    let answers_of: Vec<f64> = (0..lay.workers)
        .map(|w| lay.of_worker(w).len() as f64)
        .collect();
    let mut probas = vote_shares(&lay);
    let mut priors = mean_posterior(&lay, &probas);
    let mut right_mass = right_mass(&lay, &blocks, &probas);
    let mut skills = skills_of(&right_mass, &answers_of);
    let mut loss = f64::NEG_INFINITY;
    let mut history = Vec::new();
    for _ in 0..opts.n_iter {
        let e = e_step(&lay, &blocks, &priors, &log_errors(&skills, k), &mut probas);
        priors = e.priors;
        right_mass = self::right_mass(&lay, &blocks, &probas);
        skills = skills_of(&right_mass, &answers_of);
        // crowd-kit's ELBO without another pass: a worker's answers contribute their posterior
        // mass on the given label times ln(right), the rest times ln(wrong).
        let joint: f64 = log_skills(&skills, k)
            .iter()
            .zip(right_mass.iter().zip(&answers_of))
            .map(|((right, wrong), (s, n))| s * right + (n - s) * wrong)
            .sum();
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
        params: OneCoinParams {
            priors,
            skills,
            loss_history: history,
        },
    })
}

/// Per worker: the posterior mass of the labels they gave.
fn right_mass(lay: &Layout, blocks: &[Range<usize>], probas: &[f64]) -> Vec<f64> {
    let k = lay.classes;
    lay.sum_over_tasks(blocks, lay.workers, |acc, t| {
        for i in lay.of_task(t) {
            acc[lay.worker[i] as usize] += probas[t * k + lay.label[i] as usize];
        }
    })
}

/// Each worker's mean posterior of the labels they gave (0 for a worker with no answers).
fn skills_of(right_mass: &[f64], answers_of: &[f64]) -> Vec<f64> {
    right_mass
        .iter()
        .zip(answers_of)
        .map(|(s, n)| s / n.max(1.0))
        .collect()
}

/// Per worker: (ln of the right-answer probability, ln of each wrong-answer probability).
fn log_skills(skills: &[f64], k: usize) -> Vec<(f64, f64)> {
    let hi = 1.0 - EPS;
    skills
        .iter()
        .map(|&s| {
            let right = s.clamp(EPS, hi);
            let wrong = ((1.0 - s) / (k - 1) as f64).clamp(EPS, hi);
            (right.ln(), wrong.ln())
        })
        .collect()
}

/// The one-coin errors as a Dawid-Skene log-error table, `[(w * K + l) * K + c]`.
fn log_errors(skills: &[f64], k: usize) -> Vec<f64> {
    let mut le = vec![0.0; skills.len() * k * k];
    for (m, (right, wrong)) in le.chunks_exact_mut(k * k).zip(log_skills(skills, k)) {
        for (j, v) in m.iter_mut().enumerate() {
            *v = if j / k == j % k { right } else { wrong };
        }
    }
    le
}
