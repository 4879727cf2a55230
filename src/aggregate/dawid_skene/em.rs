//! The EM driver: initialisation, the loop, stopping, labels. The passes over the answers run on
//! the backend ([`Backend::ds_steps`]); the estimate ([`estimate`]) runs here.

use super::model::{estimate, DsModel};
use super::{DsFit, DsOptions};
use crate::aggregate::majority::{argmax, labels_from_posteriors, vote_shares};
use crate::backend::{Backend, TaskAnswers, NO_CLAMP};
use crate::data::votes::{Gold, VoteTable, NO_LABEL};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Answers grouped by task in the kernels' form.
pub struct TaskGrouping {
    /// `tasks + 1` offsets.
    pub start: Vec<u32>,
    /// Row order of the answers, grouped by task.
    pub order: Vec<u32>,
    /// Per grouped answer: `worker * classes + label`.
    pub row: Vec<u32>,
}

impl TaskGrouping {
    /// Groups `votes` by task, after checking that every id is inside the table's name tables.
    pub fn new(votes: &VoteTable) -> Result<TaskGrouping> {
        votes.validate()?;
        Self::of_valid(votes)
    }

    /// [`TaskGrouping::new`] for votes the caller has validated ([`VoteTable::validate`]).
    pub(crate) fn of_valid(votes: &VoteTable) -> Result<TaskGrouping> {
        let c = votes.n_classes().max(1);
        if (votes.n_workers() as u64) * (c as u64) >= u32::MAX as u64 {
            return Err(Error::Invalid(format!(
                "{} workers x {} classes is too many for Dawid-Skene",
                votes.n_workers(),
                c
            )));
        }
        if votes.len() >= u32::MAX as usize {
            return Err(Error::Invalid("more than 2^32 answers".into()));
        }
        let (start, order) = votes.by_task();
        let row = order
            .par_iter()
            .map(|&i| votes.worker[i as usize] * c as u32 + votes.label[i as usize])
            .collect();
        Ok(TaskGrouping { start, order, row })
    }
}

/// Fits Dawid-Skene to `votes` with the EM steps on `backend` ([`Backend::ds_steps`]: the CPU
/// twins, or the GPU kernels); `gold` classes, when given, are clamped.
pub fn fit_on(
    backend: &dyn Backend,
    votes: &VoteTable,
    gold: Option<&Gold>,
    opts: &DsOptions,
) -> Result<DsFit> {
    let grouping = TaskGrouping::new(votes)?;
    fit_grouped_on(backend, votes, &grouping, gold, opts)
}

/// [`fit_on`] with the task grouping already made (which validated the votes).
pub fn fit_grouped_on(
    backend: &dyn Backend,
    votes: &VoteTable,
    g: &TaskGrouping,
    gold: Option<&Gold>,
    opts: &DsOptions,
) -> Result<DsFit> {
    if votes.is_empty() {
        return Err(Error::Invalid("no answers to aggregate".into()));
    }
    if !(opts.smoothing > 0.0 && opts.smoothing.is_finite()) {
        return Err(Error::Invalid(format!(
            "Dawid-Skene smoothing must be a positive number, not {}",
            opts.smoothing
        )));
    }
    let (c, w, t) = (votes.n_classes(), votes.n_workers(), votes.n_tasks());
    let cells = (w as u64) * (c as u64) * (c as u64);
    if cells > (1u64 << 31) {
        return Err(Error::Invalid(format!(
            "{w} workers with {c}x{c} confusion matrices need {cells} cells: too many for Dawid-Skene"
        )));
    }
    let clamp: Vec<u32> = match gold {
        Some(gd) => {
            if gd.label.len() != t {
                return Err(Error::Invalid(format!(
                    "gold covers {} tasks, the votes {t}",
                    gd.label.len()
                )));
            }
            if gd.label.iter().any(|&l| l != NO_LABEL && l as usize >= c) {
                return Err(Error::Invalid(
                    "a gold class is outside the votes' classes".into(),
                ));
            }
            gd.label.clone()
        }
        None => vec![NO_CLAMP; t],
    };
    let a = TaskAnswers {
        classes: c,
        start: &g.start,
        row: &g.row,
        clamp: &clamp,
    };

    // Initialisation: vote shares, gold clamped.
    let mut post = vote_shares(votes, &g.start, &g.order);
    if gold.is_some() {
        post.par_chunks_mut(c).zip(&clamp).for_each(|(p, &gl)| {
            if gl != NO_CLAMP {
                p.fill(0.0);
                p[gl as usize] = 1.0;
            }
        });
    }
    let mut counts = vec![0f32; w * c * c];
    let mut totals = vec![0f64; c];
    // The backend keeps the posteriors (on the device for the GPU) and runs the passes over the
    // answers; the estimate from counts (workers x classes^2) runs here.
    let mut steps = backend.ds_steps(a, w, post)?;
    steps.m_sums(&mut counts, &mut totals)?;

    let mut model = DsModel {
        classes: c,
        workers: w,
        log_prior: vec![0f32; c],
        log_conf: vec![0f32; w * c * c],
    };
    let answers = votes.len() as f64;
    let mut ll: Option<f64> = None;
    let mut iterations = 0;
    let mut converged = false;
    for _ in 0..opts.max_iters {
        estimate(
            c,
            &counts,
            &totals,
            opts.smoothing,
            &mut model.log_prior,
            &mut model.log_conf,
        );
        let new_ll = steps.e_m_step(&model.log_prior, &model.log_conf, &mut counts, &mut totals)?;
        iterations += 1;
        let prev = ll.replace(new_ll);
        if let Some(prev) = prev {
            if opts.tol > 0.0 && (new_ll - prev) / answers < opts.tol {
                converged = true;
                break;
            }
        }
    }
    let post = steps.into_posteriors()?;
    if iterations == 0 {
        estimate(
            c,
            &counts,
            &totals,
            opts.smoothing,
            &mut model.log_prior,
            &mut model.log_conf,
        );
    }
    let labels = labels_from_posteriors(&post, c, &g.start);
    let unclamped = gold.map(|_| {
        (0..t)
            .into_par_iter()
            .map_init(
                || vec![0f32; c],
                |s, ti| {
                    if clamp[ti] == NO_CLAMP {
                        return NO_LABEL;
                    }
                    let rows = &g.row[g.start[ti] as usize..g.start[ti + 1] as usize];
                    model.scores(rows, s);
                    argmax(s) as u32
                },
            )
            .collect()
    });
    Ok(DsFit {
        posteriors: post,
        labels,
        model,
        iterations,
        log_likelihood: ll,
        converged,
        unclamped,
    })
}
