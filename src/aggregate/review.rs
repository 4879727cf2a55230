//! The review loop: tasks whose aggregated confidence is below a threshold, as microtasks to hand
//! back to the crowd, with how many more answers each needs. The answers that come back are merged
//! by passing them as another `--votes` file.
//!
//! [`by_value`] ranks them by the **expected value of one more answer** ([`value_of_answer`]):
//! how much one answer from a typical worker is expected to raise the probability that the
//! task's label is right. It is highest where the posterior is split between classes a typical
//! worker tells apart well, and near 0 where the task is settled or where no answer could settle
//! it (a task on which the crowd itself is confused). With a model's probabilities, tasks nobody
//! has answered yet are ranked beside the others by the same measure on the model's tempered
//! probabilities (ActiveLab's idea, in expected-gain form).

use super::Aggregate;
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
    /// The expected value of one more answer (0 from [`review`], which does not compute it).
    pub value: f32,
    /// `false` for a task nobody has answered yet (then `task` is the model's row index).
    pub answered: bool,
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
            value: 0.0,
            answered: true,
        })
        .collect();
    items.par_sort_by(|a, b| {
        a.confidence
            .total_cmp(&b.confidence)
            .then(a.task.cmp(&b.task))
    });
    items
}

/// A typical worker who is right with probability `accuracy` and otherwise gives any other class
/// alike: `[c * K + l]` = P(answer l | true c).
pub fn one_coin(classes: usize, accuracy: f32) -> Vec<f64> {
    let k = classes.max(1);
    let a = (accuracy as f64).clamp(0.0, 1.0);
    let wrong = if k > 1 {
        (1.0 - a) / (k - 1) as f64
    } else {
        0.0
    };
    (0..k * k)
        .map(|j| if j / k == j % k { a } else { wrong })
        .collect()
}

/// The expected value of one more answer to a task with posterior `q` from a worker who answers
/// as `worker` (`[c * K + l]` = P(answer l | true c)): the expected probability that the label is
/// right after the answer, minus before, `sum_l max_c q_c P(l | c) - max_c q_c`. Never negative
/// (information does not hurt on average).
pub fn value_of_answer(q: &[f32], worker: &[f64]) -> f64 {
    let k = q.len();
    let before = q.iter().fold(0f64, |m, &p| m.max(p as f64));
    let after: f64 = (0..k)
        .map(|l| {
            (0..k)
                .map(|c| q[c] as f64 * worker[c * k + l])
                .fold(0.0, f64::max)
        })
        .sum();
    (after - before).max(0.0)
}

/// Tasks with confidence below `below`, most valuable first ([`value_of_answer`]; ties by lower
/// confidence, then answered before unanswered, then id), with suggested extra answers. The
/// typical worker is [`Aggregate::typical_worker`] when the method has one, else a one-coin
/// worker of accuracy `worker_accuracy`. With a model ([`Aggregate::with_model`]) the tasks it
/// covers that nobody answered are included by the same rule.
pub fn by_value(
    agg: &Aggregate,
    below: f32,
    classes: usize,
    worker_accuracy: f32,
) -> Vec<ReviewItem> {
    let k = classes.max(1);
    let worker = agg
        .typical_worker
        .clone()
        .filter(|m| m.len() == k * k)
        .unwrap_or_else(|| one_coin(k, worker_accuracy));
    // A task's posterior; without posteriors, the label's confidence and the rest spread evenly.
    let row_of = |t: usize, l: &TaskLabel, buf: &mut Vec<f32>| {
        buf.clear();
        match &agg.posteriors {
            Some(p) if p.len() == agg.labels.len() * k => buf.extend(&p[t * k..t * k + k]),
            _ => {
                let rest = (1.0 - l.confidence) / (k - 1).max(1) as f32;
                buf.extend((0..k).map(|c| {
                    if c as u32 == l.label {
                        l.confidence
                    } else {
                        rest
                    }
                }));
            }
        }
    };
    let item =
        |task: u32, label: u32, confidence: f32, answers: u32, q: &[f32], answered| ReviewItem {
            task,
            label,
            confidence,
            answers,
            suggested: suggested_answers(confidence, below, k, worker_accuracy),
            value: value_of_answer(q, &worker) as f32,
            answered,
        };
    let mut items: Vec<ReviewItem> = agg
        .labels
        .par_iter()
        .enumerate()
        .filter(|(_, l)| l.confidence < below)
        .map_init(Vec::new, |buf, (t, l)| {
            row_of(t, l, buf);
            item(t as u32, l.label, l.confidence, l.answers, buf, true)
        })
        .collect();
    if let Some(m) = &agg.with_model {
        items.par_extend(
            m.unanswered
                .par_iter()
                .zip(m.unanswered_posteriors.par_chunks_exact(k))
                .filter_map(|(&row, q)| {
                    let label =
                        super::methods::argmax(&q.iter().map(|&p| p as f64).collect::<Vec<_>>());
                    let conf = q[label as usize];
                    (conf < below).then(|| item(row, label, conf, 0, q, false))
                }),
        );
    }
    items.par_sort_by(|a, b| {
        b.value
            .total_cmp(&a.value)
            .then(a.confidence.total_cmp(&b.confidence))
            .then(b.answered.cmp(&a.answered))
            .then(a.task.cmp(&b.task))
    });
    items
}

/// Writes `task,label,confidence,answers,suggested_answers,value` atomically (a task nobody has
/// answered is named by its row index).
pub fn write_review(path: &Path, votes: &VoteTable, items: &[ReviewItem]) -> Result<()> {
    write_rows(
        path,
        "task,label,confidence,answers,suggested_answers,value\n",
        items.len(),
        |i, buf| {
            let r = &items[i];
            if r.answered {
                push_field(buf, &votes.tasks[r.task as usize]);
            } else {
                let _ = write!(buf, "{}", r.task);
            }
            buf.push(b',');
            push_field(buf, &votes.classes[r.label as usize]);
            let _ = writeln!(
                buf,
                ",{},{},{},{}",
                r.confidence, r.answers, r.suggested, r.value
            );
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

    #[test]
    fn value_is_highest_where_an_answer_can_decide() {
        let w = one_coin(2, 0.8);
        let settled = value_of_answer(&[0.99, 0.01], &w);
        let split = value_of_answer(&[0.5, 0.5], &w);
        let leaning = value_of_answer(&[0.7, 0.3], &w);
        assert!(
            split > leaning && leaning >= settled,
            "{split} {leaning} {settled}"
        );
        assert!((split - 0.3).abs() < 1e-6, "{split}");
        // A worker at chance adds nothing.
        assert!(value_of_answer(&[0.5, 0.5], &one_coin(2, 0.5)).abs() < 1e-12);
        assert!(value_of_answer(&[1.0, 0.0], &w).abs() < 1e-12);
    }
}
