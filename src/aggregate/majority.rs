//! Majority-vote helpers: soft vote shares (the Dawid-Skene initialisation and the posteriors that
//! `--posteriors-out` writes for `mv`) and labels from posteriors.
//!
//! The hard majority vote itself runs on the backend (`Backend::majority`) by the tie rule
//! re-exported here ([`pick`]): most votes, then the higher fixed-point confidence sum
//! ([`conf_fixed`]), then the lowest class. The rule lives in `backend::tie`, beside the kernels
//! that run it, because backends do not import from `aggregate`.

pub use crate::backend::tie::{conf_fixed, pick, CONF_FIXED_SCALE};

use crate::backend::TaskLabel;
use crate::data::votes::VoteTable;
use rayon::prelude::*;

/// Per task, the share of its answers that gave each class (`tasks * classes`, row-major).
/// Confidences are not used. `start`/`order` are [`VoteTable::by_task`]'s grouping.
pub fn vote_shares(votes: &VoteTable, start: &[u32], order: &[u32]) -> Vec<f32> {
    let c = votes.n_classes().max(1);
    let mut post = vec![0f32; votes.n_tasks() * c];
    post.par_chunks_mut(c).enumerate().for_each(|(t, p)| {
        let g = &order[start[t] as usize..start[t + 1] as usize];
        for &i in g {
            p[votes.label[i as usize] as usize] += 1.0;
        }
        if !g.is_empty() {
            let inv = 1.0 / g.len() as f32;
            p.iter_mut().for_each(|v| *v *= inv);
        }
    });
    post
}

/// Index of the largest value; ties go to the lowest index.
#[inline]
pub fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for (k, &v) in p.iter().enumerate().skip(1) {
        if v > p[best] {
            best = k;
        }
    }
    best
}

/// One label per task from posteriors: the most probable class (ties to the lowest class), its
/// probability as confidence, and the task's answer count from `start`.
pub fn labels_from_posteriors(post: &[f32], classes: usize, start: &[u32]) -> Vec<TaskLabel> {
    let c = classes.max(1);
    post.par_chunks(c)
        .enumerate()
        .map(|(t, p)| {
            let k = argmax(p);
            TaskLabel {
                label: k as u32,
                confidence: p[k],
                answers: start[t + 1] - start[t],
            }
        })
        .collect()
}
