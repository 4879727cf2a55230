//! The methods of the library's `aggregate::methods` module (crowd-kit's DS, OneCoinDS, GLAD,
//! MACE, ZBS, KOS, and our Bayesian one), compiled with this crate's `methods` feature once the
//! library has that module (branch h11-methods): then make `methods` a default feature.
//! Each method is one arm: its options by crowd-kit's names (defaults from its `Options`), its
//! parameters as named arrays for `microtask/aggregation.py`.

use crate::aggregation::{option, Fitted};
use microtask::aggregate::methods::{self as m, Answers, Fit};
use microtask::data::votes::VoteTable;
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

/// Fits `name` (one of [`NAMES`]); `None` for a name that is not one of them.
pub fn fit(
    name: &str,
    table: &VoteTable,
    opts: &HashMap<String, f64>,
) -> microtask::Result<Option<Fitted>> {
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
            fitted(m::bayes::fit(&a, &o)?, |p| {
                // Dirichlet posterior parameters: confusion [worker, truth, answer].
                vec![
                    ("confusion", p.confusion, vec![w, c, c]),
                    ("proportions", p.proportions, vec![c]),
                    ("strength", p.strength, vec![c]),
                    ("prior_mean", p.prior_mean, vec![c, c]),
                ]
            })
        }
        _ => return Ok(None),
    }))
}
