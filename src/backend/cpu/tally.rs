//! Majority vote on the CPU. CPU twin of `shaders/tally.wgsl`: per task, a histogram of votes and
//! of fixed-point confidence sums; most votes wins, then the higher confidence sum, then the
//! lowest label.

use crate::backend::{TaskLabel, CONF_FIXED_SCALE};
use crate::data::votes::VoteTable;
use rayon::prelude::*;

/// The fixed-point confidence of one answer, as both CPU and GPU compute it.
pub fn conf_fixed(conf: f32) -> u32 {
    (conf.clamp(0.0, 1.0) * CONF_FIXED_SCALE).round() as u32
}

/// Picks the winner from one task's histogram (`counts`, `sums` per class).
pub fn pick(counts: &[u32], sums: &[u32]) -> TaskLabel {
    let mut best = 0;
    let mut total = 0u32;
    for k in 0..counts.len() {
        total += counts[k];
        if (counts[k], sums[k]) > (counts[best], sums[best]) {
            best = k;
        }
    }
    TaskLabel {
        label: best as u32,
        confidence: if total == 0 {
            0.0
        } else {
            counts[best] as f32 / total as f32
        },
        answers: total,
    }
}

pub fn majority(votes: &VoteTable) -> Vec<TaskLabel> {
    let c = votes.n_classes().max(1);
    let t = votes.n_tasks();
    // Answers grouped by task (counting sort), so each task is tallied by one thread.
    let mut start = vec![0usize; t + 1];
    for &task in &votes.task {
        start[task as usize + 1] += 1;
    }
    for i in 0..t {
        start[i + 1] += start[i];
    }
    let mut order = vec![0u32; votes.len()];
    let mut fill = start.clone();
    for (i, &task) in votes.task.iter().enumerate() {
        order[fill[task as usize]] = i as u32;
        fill[task as usize] += 1;
    }
    (0..t)
        .into_par_iter()
        .map_init(
            || (vec![0u32; c], vec![0u32; c]),
            |(counts, sums), task| {
                counts.fill(0);
                sums.fill(0);
                for &i in &order[start[task]..start[task + 1]] {
                    let (l, i) = (votes.label[i as usize] as usize, i as usize);
                    counts[l] += 1;
                    sums[l] = sums[l].saturating_add(conf_fixed(votes.confidence[i]));
                }
                pick(counts, sums)
            },
        )
        .collect()
}
