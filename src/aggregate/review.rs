//! The review loop: tasks whose aggregated confidence is below a threshold, as microtasks to hand
//! back to the crowd, with how many more answers each needs. The answers that come back are merged
//! by passing them as another `--votes` file.

use crate::backend::TaskLabel;
use crate::data::votes::{push_field, write_rows, VoteTable};
use crate::error::Result;
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// Most extra answers suggested for one task.
pub const MAX_SUGGESTED: u32 = 10;

/// One task to review.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReviewItem {
    pub task: u32,
    pub label: u32,
    pub confidence: f32,
    pub answers: u32,
    /// Extra answers suggested.
    pub suggested: u32,
}

/// How many tasks have confidence below `below`.
pub fn count_below(labels: &[TaskLabel], below: f32) -> usize {
    labels.par_iter().filter(|l| l.confidence < below).count()
}

/// Extra answers that would lift `confidence` to at least `target` if they all agree with the
/// current label, each from a worker of accuracy `worker_accuracy` among `classes` classes: each
/// agreeing answer multiplies the odds of the label by `a (C - 1) / (1 - a)`, the odds ratio of a
/// worker who is right with probability `a` and otherwise picks a wrong class uniformly. At least
/// 1, at most [`MAX_SUGGESTED`]. A heuristic: answers that disagree leave the task for another
/// round.
pub fn suggested_answers(
    confidence: f32,
    target: f32,
    classes: usize,
    worker_accuracy: f32,
) -> u32 {
    let c = classes.max(2) as f64;
    let chance = 1.0 / c;
    let a = (worker_accuracy as f64).clamp(chance + 0.05, 0.99);
    let gain = (a * (c - 1.0) / (1.0 - a)).ln();
    let logit = |p: f64| {
        let p = p.clamp(1e-6, 1.0 - 1e-6);
        (p / (1.0 - p)).ln()
    };
    let need = (logit(target as f64) - logit(confidence as f64)) / gain;
    if need.is_finite() {
        need.ceil().clamp(1.0, MAX_SUGGESTED as f64) as u32
    } else {
        MAX_SUGGESTED
    }
}

/// Tasks with confidence below `below`, least confident first (ties by task id), with suggested
/// extra answers (see [`suggested_answers`]; `worker_accuracy` is the crowd's mean accuracy,
/// e.g. [`super::quality::mean_accuracy`]).
pub fn review(
    labels: &[TaskLabel],
    below: f32,
    classes: usize,
    worker_accuracy: f32,
) -> Vec<ReviewItem> {
    let mut items: Vec<ReviewItem> = labels
        .par_iter()
        .enumerate()
        .filter(|(_, l)| l.confidence < below)
        .map(|(t, l)| ReviewItem {
            task: t as u32,
            label: l.label,
            confidence: l.confidence,
            answers: l.answers,
            suggested: suggested_answers(l.confidence, below, classes, worker_accuracy),
        })
        .collect();
    items.par_sort_by(|a, b| {
        a.confidence
            .total_cmp(&b.confidence)
            .then(a.task.cmp(&b.task))
    });
    items
}

/// Writes `task,label,confidence,answers,suggested_answers` atomically.
pub fn write_review(path: &Path, votes: &VoteTable, items: &[ReviewItem]) -> Result<()> {
    write_rows(
        path,
        "task,label,confidence,answers,suggested_answers\n",
        items.len(),
        |i, buf| {
            let r = &items[i];
            push_field(buf, &votes.tasks[r.task as usize]);
            buf.push(b',');
            push_field(buf, &votes.classes[r.label as usize]);
            let _ = writeln!(buf, ",{},{},{}", r.confidence, r.answers, r.suggested);
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_grow_with_the_gap() {
        let a = suggested_answers(0.6, 0.9, 2, 0.8);
        let b = suggested_answers(0.3, 0.9, 2, 0.8);
        assert!(a >= 1 && b > a, "{a} {b}");
        assert_eq!(suggested_answers(0.0, 1.0, 2, 0.5), MAX_SUGGESTED);
        assert_eq!(suggested_answers(0.89, 0.9, 10, 0.9), 1);
    }
}
