//! The methods of the library's `aggregate::methods` module (crowd-kit's DS, OneCoinDS, GLAD,
//! MACE, ZBS, KOS, and our Bayesian one), behind this crate's `methods` feature (on by default).
//! Each method is one arm: its options by crowd-kit's names (defaults from its `Options`), its
//! parameters as named arrays for `microtask/aggregation.py`. Known labels and a model's
//! probabilities enter `bayes` only, as in `microtask tally`.

use crate::aggregation::{option, Fitted};
use microtask::aggregate::methods::{self as m, Answers, Fit};
use microtask::aggregate::ModelProbs;
use microtask::data::votes::{Gold, VoteTable};
use microtask::Error;
use std::collections::HashMap;

/// Engine names, as `microtask.aggregation` asks for them.
pub const NAMES: &[&str] = &[
    "ds_crowdkit",
    "onecoin",
    "glad",
    "mace",
    "zbs",
    "kos",
    "bayes",
];

type Arrays = Vec<(&'static str, Vec<f64>, Vec<usize>)>;

fn fitted<P>(f: Fit<P>, params: impl FnOnce(P) -> Arrays) -> Fitted {
    Fitted {
        labels: f.labels(),
        posteriors: f.posteriors,
        iterations: f.iterations,
        objective: f.objective,
        params: params(f.params),
    }
}

/// Fits `name` (one of [`NAMES`]); `None` for a name that is not one of them. Known labels
/// (`gold`) and a model's probabilities enter `bayes` only, as in `microtask tally`.
pub fn fit(
    name: &str,
    table: &VoteTable,
    gold: Option<&Gold>,
    model: Option<&ModelProbs>,
    opts: &HashMap<String, f64>,
) -> microtask::Result<Option<Fitted>> {
    if name != "bayes" {
        if gold.is_some() {
            return Err(Error::Invalid(format!("{name} takes no true labels")));
        }
        if model.is_some() {
            return Err(Error::Invalid(format!(
                "a model's probabilities enter the bayes method only, not {name}"
            )));
        }
    }
    let a = Answers::from_table(table);
    let (t, w, c) = (a.tasks, a.workers, a.classes);
    let n = |k: &str, d: usize| option(opts, k, d as f64).map(|v| v as usize);
    let x = |k: &str, d: f64| option(opts, k, d);
    let history = |h: Vec<f64>| {
        let len = h.len();
        ("loss_history", h, vec![len])
    };
    Ok(Some(match name {
        "ds_crowdkit" | "onecoin" => {
            let d = m::ds_crowdkit::Options::default();
            let o = m::ds_crowdkit::Options {
                n_iter: n("n_iter", d.n_iter)?,
                tol: x("tol", d.tol)?,
            };
            if name == "onecoin" {
                fitted(m::onecoin::fit(&a, &o)?, |p| {
                    vec![
                        ("priors", p.priors, vec![c]),
                        ("skills", p.skills, vec![w]),
                        history(p.loss_history),
                    ]
                })
            } else {
                fitted(m::ds_crowdkit::fit(&a, &o)?, |p| {
                    vec![
                        ("priors", p.priors, vec![c]),
                        ("errors", p.errors, vec![w, c, c]),
                        history(p.loss_history),
                    ]
                })
            }
        }
        "glad" => {
            let d = m::glad::Options::default();
            let o = m::glad::Options {
                n_iter: n("n_iter", d.n_iter)?,
                tol: x("tol", d.tol)?,
                m_step_max_iter: n("m_step_max_iter", d.m_step_max_iter)?,
                m_step_tol: x("m_step_tol", d.m_step_tol)?,
            };
            fitted(m::glad::fit(&a, &o)?, |p| {
                vec![
                    ("alphas", p.alpha, vec![w]),
                    ("betas", p.beta, vec![t]),
                    history(p.loss_history),
                ]
            })
        }
        "mace" => {
            let d = m::mace::Options::default();
            let o = m::mace::Options {
                n_restarts: n("n_restarts", d.n_restarts)?,
                n_iter: n("n_iter", d.n_iter)?,
                default_noise: x("default_noise", d.default_noise)?,
                alpha: x("alpha", d.alpha)?,
                beta: x("beta", d.beta)?,
                theta_prior: x("smoothing", d.theta_prior)?,
                seed: n("random_state", d.seed as usize)? as u64,
            };
            fitted(m::mace::fit(&a, &o)?, |p| {
                vec![
                    ("spamming", p.spamming, vec![w, 2]),
                    ("thetas", p.thetas, vec![w, c]),
                ]
            })
        }
        "zbs" => {
            let d = m::zbs::Options::default();
            let o = m::zbs::Options {
                n_iter: n("n_iter", d.n_iter)?,
                lr_init: x("lr_init", d.lr_init)?,
                lr_steps_to_reduce: n("lr_steps_to_reduce", d.lr_steps_to_reduce)?,
                lr_reduce_factor: x("lr_reduce_factor", d.lr_reduce_factor)?,
                eps: x("eps", d.eps)?,
            };
            fitted(m::zbs::fit(&a, &o)?, |p| {
                vec![("skills", p.skills, vec![w])]
            })
        }
        "kos" => {
            let d = m::kos::Options::default();
            let o = m::kos::Options {
                n_iter: n("n_iter", d.n_iter)?,
                seed: n("random_state", d.seed as usize)? as u64,
            };
            fitted(m::kos::fit(&a, &o)?, |p| {
                vec![("scores", p.scores, vec![t])]
            })
        }
        "bayes" => {
            let d = m::bayes::Options::default();
            let o = m::bayes::Options {
                max_iter: n("n_iter", d.max_iter)?,
                tol: x("tol", d.tol)?,
                strength: match opts.get("strength") {
                    None => d.strength,
                    // Pseudo-answers: a Dirichlet parameter of 0 has no density.
                    Some(&v) if v.is_finite() && v > 0.0 => Some(v),
                    Some(v) => {
                        return Err(microtask::Error::Invalid(format!(
                            "strength must be a finite number > 0 (pseudo-answers), not {v}"
                        )))
                    }
                },
            };
            // The library's join: task names are row indexes, class names column indexes.
            let joined = model.map(|m| m.join(table)).transpose()?;
            let evidence = m::bayes::Evidence {
                gold: gold.filter(|g| g.tasks > 0).map(|g| g.label.as_slice()),
                model: joined.as_ref().map(|j| m::bayes::ModelEvidence {
                    log_probs: &j.log_probs,
                    covered: &j.covered,
                }),
            };
            let (f, _) = m::bayes::fit_with(&a, &o, &evidence)?;
            fitted(f, |p| {
                // Dirichlet posterior parameters: confusion [worker, truth, answer].
                let mut v = vec![
                    ("confusion", p.confusion, vec![w, c, c]),
                    ("proportions", p.proportions, vec![c]),
                    ("strength", p.strength, vec![c]),
                    ("prior_mean", p.prior_mean, vec![c, c]),
                ];
                if let Some(weight) = p.model_weight {
                    v.push(("model_weight", vec![weight], vec![1]));
                }
                v
            })
        }
        _ => return Ok(None),
    }))
}
