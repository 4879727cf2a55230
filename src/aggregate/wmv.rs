//! Weighted majority vote.
//!
//! Worker weights:
//! - with gold: a worker's smoothed accuracy on the gold tasks it answered,
//!   `(correct + 1) / (gold answers + 2)`; a worker who answered no gold task gets its agreement
//!   with the majority vote, as without gold;
//! - without gold (crowd-kit's Wawa): the fraction of the worker's answers that agree with the
//!   majority vote.
//!
//! Each task's label is the class with the largest sum of weights (ties to the lowest class);
//! confidence = that sum over the task's total weight. A task whose answers all weigh 0 keeps its
//! majority-vote label and confidence. Confidences of the answers are not used.

use crate::backend::TaskLabel;
use crate::data::votes::{Gold, VoteTable};
use rayon::prelude::*;

/// Per worker: answers that agree with `labels`, answers, gold answers, correct gold answers.
fn worker_counts(votes: &VoteTable, labels: &[TaskLabel], gold: Option<&Gold>) -> Vec<[u32; 4]> {
    let w = votes.n_workers();
    let (start, order) = votes.by_worker();
    (0..w)
        .into_par_iter()
        .map(|wi| {
            let mut c = [0u32; 4];
            for &i in &order[start[wi] as usize..start[wi + 1] as usize] {
                let (t, l) = (votes.task[i as usize] as usize, votes.label[i as usize]);
                c[0] += (labels[t].label == l) as u32;
                c[1] += 1;
                if let Some(g) = gold.and_then(|g| g.get(t)) {
                    c[2] += 1;
                    c[3] += (g == l) as u32;
                }
            }
            c
        })
        .collect()
}

/// Worker weights as described in the module docs, from majority-vote labels `mv`.
pub fn weights(votes: &VoteTable, mv: &[TaskLabel], gold: Option<&Gold>) -> Vec<f32> {
    worker_counts(votes, mv, gold)
        .into_iter()
        .map(|[agree, n, gn, gc]| {
            if gn > 0 {
                (gc as f32 + 1.0) / (gn as f32 + 2.0)
            } else {
                agree as f32 / n.max(1) as f32
            }
        })
        .collect()
}

/// Weighted vote with `weights` per worker; returns labels and the weight shares
/// (`tasks * classes`) as posteriors.
pub fn weighted_vote(
    votes: &VoteTable,
    weights: &[f32],
    mv: &[TaskLabel],
) -> (Vec<TaskLabel>, Vec<f32>) {
    let c = votes.n_classes().max(1);
    let (start, order) = votes.by_task();
    let mut post = vec![0f32; votes.n_tasks() * c];
    let labels = post
        .par_chunks_mut(c)
        .enumerate()
        .map(|(t, p)| {
            let g = &order[start[t] as usize..start[t + 1] as usize];
            for &i in g {
                let i = i as usize;
                p[votes.label[i] as usize] += weights[votes.worker[i] as usize];
            }
            let total: f32 = p.iter().sum();
            if total > 0.0 {
                p.iter_mut().for_each(|v| *v /= total);
                let k = super::majority::argmax(p);
                TaskLabel {
                    label: k as u32,
                    confidence: p[k],
                    answers: g.len() as u32,
                }
            } else {
                p.fill(0.0);
                if let Some(v) = p.get_mut(mv[t].label as usize) {
                    *v = mv[t].confidence;
                }
                mv[t]
            }
        })
        .collect();
    (labels, post)
}
