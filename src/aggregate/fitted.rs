//! The methods of [`super::methods`] as an [`Aggregate`]: label = the most probable class (ties
//! to the lowest), confidence = its posterior, and per worker the probability that an answer of
//! theirs is right, read from the method's own parameters:
//!
//! - `ds-crowdkit`: the confusion diagonal weighted by the class priors;
//! - `onecoin`: the skill; `zbs`: the skill (agreement with the weighted vote);
//! - `glad`: `sigmoid(alpha_w * exp(beta_t))` averaged over the worker's tasks;
//! - `mace`: P(knowing) + P(spamming) / K (a spammer is right by chance);
//! - `bayes`: the posterior mean confusion diagonal weighted by the expected class proportions;
//! - `kos`: none (its messages are no probabilities): agreement with the aggregate.
//!
//! Gold: `bayes` clamps gold tasks (and returns the answers-only label of each, for honest
//! scoring); the other methods do not use gold in the fit. A model's probabilities enter `bayes`
//! only ([`super::methods::bayes`], [`ModelPart`]).

use super::methods::{self, bayes, softmax_in_place, Fit, Params};
use super::model_probs::{Joined, ModelProbs};
use super::{Aggregate, Method};
use crate::backend::TaskLabel;
use crate::data::votes::{Gold, VoteTable};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// What a model's probabilities added to an aggregate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelPart {
    /// The exponent on the model's probabilities, fitted from the data (0 = ignored).
    pub weight: f64,
    /// Tasks with answers that the model covers.
    pub covered_tasks: usize,
    /// Row indexes (task ids) the model covers that have no answers.
    pub unanswered: Vec<u32>,
    /// `unanswered x classes`: their tempered model probabilities.
    pub unanswered_posteriors: Vec<f32>,
}

/// Fits `method` (one of [`Method::fitted`]'s) on `votes`; see the module docs for gold and
/// `model`.
pub fn aggregate(
    votes: &VoteTable,
    gold: Option<&Gold>,
    method: Method,
    model: Option<&ModelProbs>,
) -> Result<Aggregate> {
    let which = method
        .fitted()
        .ok_or_else(|| Error::Invalid(format!("{method} is not one of the fitted methods")))?;
    if model.is_some() && method != Method::Bayes {
        return Err(Error::Invalid(format!(
            "a model's probabilities enter the bayes method only, not {method}"
        )));
    }
    let a = methods::Answers::from_table(votes);
    let joined = model.map(|m| m.join(votes)).transpose()?;
    let (fit, unclamped) = if method == Method::Bayes {
        let ev = bayes::Evidence {
            gold: gold.filter(|g| g.tasks > 0).map(|g| g.label.as_slice()),
            model: joined.as_ref().map(|j| bayes::ModelEvidence {
                log_probs: &j.log_probs,
                covered: &j.covered,
            }),
        };
        let (f, u) = bayes::fit_with(&a, &bayes::Options::default(), &ev)?;
        (wrap(f, Params::Bayes), u)
    } else {
        (methods::fit(which, &a)?, None)
    };
    let k = votes.n_classes();
    let mut answers = vec![0u32; votes.n_tasks()];
    votes.task.iter().for_each(|&t| answers[t as usize] += 1);
    let labels: Vec<TaskLabel> = fit
        .posteriors
        .par_chunks_exact(k.max(1))
        .zip(&answers)
        .map(|(row, &n)| {
            let label = methods::argmax(row);
            TaskLabel {
                label,
                confidence: row[label as usize] as f32,
                answers: n,
            }
        })
        .collect();
    let with_model = match (&joined, &fit.params) {
        (Some(j), Params::Bayes(p)) => Some(model_part(j, p.model_weight.unwrap_or(1.0), k)),
        _ => None,
    };
    Ok(Aggregate {
        method,
        labels,
        posteriors: Some(fit.posteriors.iter().map(|&p| p as f32).collect()),
        iterations: fit.iterations,
        objective: fit.objective,
        worker_accuracy: worker_accuracy(votes, &fit),
        typical_worker: match &fit.params {
            Params::Bayes(p) if !p.prior_mean.is_empty() => Some(p.prior_mean.clone()),
            _ => None,
        },
        unclamped,
        with_model,
        ..Aggregate::default()
    })
}

fn wrap(f: Fit<bayes::BayesParams>, to: fn(bayes::BayesParams) -> Params) -> Fit<Params> {
    Fit {
        classes: f.classes,
        posteriors: f.posteriors,
        iterations: f.iterations,
        objective: f.objective,
        params: to(f.params),
    }
}

fn model_part(j: &Joined, weight: f64, k: usize) -> ModelPart {
    let mut post = j.unanswered_log_probs.clone();
    post.par_chunks_mut(k.max(1)).for_each(|row| {
        row.iter_mut().for_each(|v| *v *= weight);
        softmax_in_place(row);
    });
    ModelPart {
        weight,
        covered_tasks: j.covered_tasks,
        unanswered: j.unanswered.clone(),
        unanswered_posteriors: post.iter().map(|&p| p as f32).collect(),
    }
}

/// Per worker, from the method's parameters (see the module docs); `None` for kos and for a
/// one-class fit (no parameters).
fn worker_accuracy(votes: &VoteTable, fit: &Fit<Params>) -> Option<Vec<f32>> {
    let (w, k) = (votes.n_workers(), votes.n_classes());
    let clean = |v: f64| {
        if v.is_finite() {
            v.clamp(0.0, 1.0) as f32
        } else {
            0.0
        }
    };
    let acc: Vec<f32> = match &fit.params {
        Params::DsCrowdkit(p) if p.errors.len() == w * k * k => (0..w)
            .map(|w| {
                let m = &p.errors[w * k * k..(w + 1) * k * k];
                clean((0..k).map(|c| p.priors[c] * m[c * k + c]).sum())
            })
            .collect(),
        Params::OneCoin(p) if p.skills.len() == w => p.skills.iter().map(|&s| clean(s)).collect(),
        Params::Zbs(p) if p.skills.len() == w => p.skills.iter().map(|&s| clean(s)).collect(),
        Params::Glad(p) if p.alpha.len() == w => {
            let (mut sum, mut n) = (vec![0.0; w], vec![0.0; w]);
            for i in 0..votes.len() {
                let (t, wi) = (votes.task[i] as usize, votes.worker[i] as usize);
                let z = p.alpha[wi] * p.beta[t].exp();
                sum[wi] += 1.0 / (1.0 + (-z).exp());
                n[wi] += 1.0;
            }
            sum.iter()
                .zip(&n)
                .map(|(s, n)| clean(s / f64::max(*n, 1.0)))
                .collect()
        }
        Params::Mace(p) if p.spamming.len() == 2 * w => p
            .spamming
            .chunks_exact(2)
            .map(|s| clean((s[1] + s[0] / k as f64) / (s[0] + s[1])))
            .collect(),
        Params::Bayes(p) if p.confusion.len() == w * k * k => {
            let total: f64 = p.proportions.iter().sum();
            (0..w)
                .map(|w| {
                    let m = &p.confusion[w * k * k..(w + 1) * k * k];
                    clean(
                        (0..k)
                            .map(|c| {
                                let row: f64 = m[c * k..c * k + k].iter().sum();
                                p.proportions[c] / total * m[c * k + c] / row
                            })
                            .sum(),
                    )
                })
                .collect()
        }
        _ => return None,
    };
    Some(acc)
}
