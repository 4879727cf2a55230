//! Majority-vote helpers: the tie rule's input ([`for_ties`]), soft vote shares (the Dawid-Skene
//! initialisation and the posteriors that `--posteriors-out` writes for `mv`) and labels from
//! posteriors.
//!
//! # The rule
//! Most answers wins; a tie goes to the class with the higher summed confidence, then to the
//! lowest class. An answer without a confidence (a person's answer in a file without a
//! `confidence` column, beside a model's) counts as an average answer: the mean confidence of the
//! answers that have one, over all the files tallied together. So it neither wins nor loses a
//! tie for lacking the column: against a model's answer it wins when the model is less sure than
//! it usually is, and loses when the model is surer. (Counting it as 1, as before, gave every such
//! tie to the person; as 0, to the model.) When no answer has a confidence, all count alike and
//! ties go to the lowest class.
//!
//! The hard majority vote runs on the backend (`Backend::majority`) by the kernels' rule
//! re-exported here ([`pick`]): most votes, then the higher fixed-point confidence sum
//! ([`conf_fixed`], where NaN counts 0), then the lowest class; [`for_ties`] gives the kernels the
//! table with the missing confidences filled in. The kernels' rule lives in `backend::tie`,
//! beside the kernels, because backends do not import from `aggregate`.

pub use crate::backend::tie::{conf_fixed, pick, CONF_FIXED_SCALE};

use crate::backend::TaskLabel;
use crate::data::votes::VoteTable;
use rayon::prelude::*;
use std::borrow::Cow;

/// The table the backend's majority vote should see under [the rule](self#the-rule): `votes`
/// itself when every answer has a confidence or none has, else a copy in which each missing
/// confidence (NaN) is the mean of the others.
pub fn for_ties(votes: &VoteTable) -> Cow<'_, VoteTable> {
    let c = &votes.confidence;
    let (sum, present) = crate::ordered_sum::fold(
        c.len(),
        (0.0, 0usize),
        |i| {
            if c[i].is_nan() {
                (0.0, 0)
            } else {
                (c[i] as f64, 1)
            }
        },
        |a, b| (a.0 + b.0, a.1 + b.1),
    );
    if present == 0 || present == votes.len() {
        return Cow::Borrowed(votes);
    }
    let mean = (sum / present as f64) as f32;
    let mut out = votes.clone();
    out.confidence
        .par_iter_mut()
        .filter(|c| c.is_nan())
        .for_each(|c| *c = mean);
    Cow::Owned(out)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::majority;

    /// Answers `(task, label, confidence)`, NaN for none; one worker per answer.
    fn table(rows: &[(u32, u32, f32)]) -> VoteTable {
        let tasks = rows.iter().map(|r| r.0).max().map_or(0, |t| t + 1) as usize;
        VoteTable {
            task: rows.iter().map(|r| r.0).collect(),
            worker: (0..rows.len() as u32).collect(),
            label: rows.iter().map(|r| r.1).collect(),
            confidence: rows.iter().map(|r| r.2).collect(),
            tasks: (0..tasks).map(|t| t.to_string()).collect(),
            workers: (0..rows.len()).map(|w| w.to_string()).collect(),
            classes: vec!["0".into(), "1".into(), "2".into()],
        }
    }

    fn winners(rows: &[(u32, u32, f32)]) -> Vec<u32> {
        majority(&for_ties(&table(rows)))
            .iter()
            .map(|l| l.label)
            .collect()
    }

    #[test]
    fn an_answer_without_confidence_counts_as_the_mean_confidence_in_a_tie() {
        let none = f32::NAN;
        // The model's confidences average (0.4 + 0.4 + 1 + 1 + 0.9 + 0.6) / 6 = 0.717.
        let got = winners(&[
            // A person against a model less sure than it usually is: the person, either way
            // round (so neither the class order nor the missing column decides).
            (0, 1, none),
            (0, 0, 0.4),
            (1, 0, none),
            (1, 1, 0.4),
            // Against a model surer than usual: the model, either way round.
            (2, 1, none),
            (2, 0, 1.0),
            (3, 0, none),
            (3, 1, 1.0),
            // Two people: alike, so the lowest class.
            (4, 2, none),
            (4, 1, none),
            // Two models: the confidence decides.
            (5, 0, 0.6),
            (5, 1, 0.9),
            // No tie: the count decides, whatever the confidences.
            (6, 2, 0.0),
            (6, 2, 0.0),
            (6, 1, none),
        ]);
        assert_eq!(got, [1, 0, 0, 1, 1, 1, 2]);
    }

    #[test]
    fn tables_with_all_or_no_confidences_are_used_as_they_are() {
        let all = table(&[(0, 1, 0.5), (0, 0, 0.4)]);
        assert!(matches!(for_ties(&all), Cow::Borrowed(_)));
        let none = table(&[(0, 1, f32::NAN), (0, 0, f32::NAN)]);
        assert!(matches!(for_ties(&none), Cow::Borrowed(_)));
        assert_eq!(majority(&none)[0].label, 0);
    }
}
