//! Quality control: accuracy of the aggregate on gold tasks, and per-worker quality.

use super::{Aggregate, Method};
use crate::backend::TaskLabel;
use crate::data::votes::{write_rows, Gold, VoteTable, NO_LABEL};
use crate::error::Result;
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// Accuracy on gold tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoldScore {
    /// Gold tasks present in the votes.
    pub tasks: usize,
    pub correct: usize,
}

impl GoldScore {
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.tasks.max(1) as f64
    }
}

/// Accuracy of `labels` on the gold tasks.
pub fn score_labels(labels: &[TaskLabel], gold: &Gold) -> GoldScore {
    let (tasks, correct) = labels
        .par_iter()
        .zip(&gold.label)
        .filter(|(_, &g)| g != NO_LABEL)
        .map(|(l, &g)| (1usize, (l.label == g) as usize))
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    GoldScore { tasks, correct }
}

/// Accuracy of an aggregate on the gold tasks. Where Dawid-Skene clamped a gold task, the label
/// scored is the one the answers alone give under the fitted model ([`Aggregate::unclamped`]), so
/// the figure is not trivially 1.
pub fn score(agg: &Aggregate, gold: &Gold) -> GoldScore {
    match &agg.unclamped {
        None => score_labels(&agg.labels, gold),
        Some(u) => {
            let (tasks, correct) = agg
                .labels
                .par_iter()
                .zip(u)
                .zip(&gold.label)
                .filter(|(_, &g)| g != NO_LABEL)
                .map(|((l, &u), &g)| {
                    let pred = if u != NO_LABEL { u } else { l.label };
                    (1usize, (pred == g) as usize)
                })
                .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            GoldScore { tasks, correct }
        }
    }
}

/// One worker's quality figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkerQuality {
    /// Answers given (after dropping duplicates).
    pub answers: u32,
    /// Fraction of its answers equal to the aggregate's label.
    pub agreement: f32,
    /// Estimated accuracy without looking at gold: for `ds`, the mean posterior probability of
    /// the labels it gave (the expected fraction of its answers that are right; when gold was
    /// clamped, the gold tasks' posteriors are their gold class); for the methods of
    /// [`super::fitted`], from the method's parameters ([`Aggregate::worker_accuracy`]); for
    /// `mv`, `wmv` and `kos`, its agreement with the aggregate (Wawa's estimate).
    pub estimated_accuracy: f32,
    /// Answers on gold tasks, and how many were right.
    pub gold_answers: u32,
    pub gold_correct: u32,
}

impl WorkerQuality {
    /// Accuracy on the gold tasks it answered; `None` when it answered none.
    pub fn gold_accuracy(&self) -> Option<f32> {
        (self.gold_answers > 0).then(|| self.gold_correct as f32 / self.gold_answers as f32)
    }
}

/// Quality of every worker against the aggregate `agg` (and `gold` when given).
pub fn workers(votes: &VoteTable, agg: &Aggregate, gold: Option<&Gold>) -> Vec<WorkerQuality> {
    let c = votes.n_classes().max(1);
    let (start, order) = votes.by_worker();
    let post = match agg.method {
        Method::Ds => agg.posteriors.as_deref(),
        _ => None,
    };
    (0..votes.n_workers())
        .into_par_iter()
        .map(|w| {
            let (mut agree, mut n, mut gn, mut gc) = (0u32, 0u32, 0u32, 0u32);
            let mut psum = 0f64;
            for &i in &order[start[w] as usize..start[w + 1] as usize] {
                let (t, l) = (votes.task[i as usize] as usize, votes.label[i as usize]);
                n += 1;
                agree += (agg.labels[t].label == l) as u32;
                if let Some(p) = post {
                    psum += p[t * c + l as usize] as f64;
                }
                if let Some(g) = gold.and_then(|g| g.get(t)) {
                    gn += 1;
                    gc += (g == l) as u32;
                }
            }
            let agreement = agree as f32 / n.max(1) as f32;
            let from_params = agg.worker_accuracy.as_ref().and_then(|a| a.get(w).copied());
            WorkerQuality {
                answers: n,
                agreement,
                estimated_accuracy: match (from_params, post) {
                    (Some(a), _) => a,
                    (None, Some(_)) => (psum / n.max(1) as f64) as f32,
                    (None, None) => agreement,
                },
                gold_answers: gn,
                gold_correct: gc,
            }
        })
        .collect()
}

/// Mean estimated accuracy over all answers (each worker weighted by its answers).
pub fn mean_accuracy(workers: &[WorkerQuality]) -> f32 {
    let (s, n) = workers.iter().fold((0f64, 0f64), |(s, n), w| {
        (
            s + w.estimated_accuracy as f64 * w.answers as f64,
            n + w.answers as f64,
        )
    });
    if n > 0.0 {
        (s / n) as f32
    } else {
        0.0
    }
}

/// Writes `worker,answers,agreement,estimated_accuracy,gold_answers,gold_accuracy`
/// (`gold_accuracy` empty for a worker with no gold answers) atomically.
pub fn write_workers(path: &Path, votes: &VoteTable, workers: &[WorkerQuality]) -> Result<()> {
    write_rows(
        path,
        "worker,answers,agreement,estimated_accuracy,gold_answers,gold_accuracy\n",
        workers.len(),
        |i, buf| {
            let q = &workers[i];
            crate::data::votes::push_field(buf, &votes.workers[i]);
            let _ = write!(
                buf,
                ",{},{},{},{},",
                q.answers, q.agreement, q.estimated_accuracy, q.gold_answers
            );
            if let Some(a) = q.gold_accuracy() {
                let _ = write!(buf, "{a}");
            }
            buf.push(b'\n');
        },
    )
}
