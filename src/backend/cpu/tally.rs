//! Majority vote on the CPU. CPU twin of `shaders/tally.wgsl`: per task, a histogram of votes and
//! of fixed-point confidence sums, then the tie rule ([`crate::backend::tie`]): most votes wins,
//! then the higher confidence sum, then the lowest label.

use crate::backend::tie::{conf_fixed, pick};
use crate::backend::TaskLabel;
use crate::data::votes::VoteTable;
use rayon::prelude::*;

/// Majority vote per task (see [`crate::backend::tie`] for the rule).
pub fn majority(votes: &VoteTable) -> Vec<TaskLabel> {
    let c = votes.n_classes().max(1);
    let t = votes.n_tasks();
    // Answers grouped by task, so each task is tallied by one thread.
    let (start, order) = votes.by_task();
    (0..t)
        .into_par_iter()
        .map_init(
            || (vec![0u32; c], vec![0u32; c]),
            |(counts, sums), task| {
                counts.fill(0);
                sums.fill(0);
                for &i in &order[start[task] as usize..start[task + 1] as usize] {
                    let (l, i) = (votes.label[i as usize] as usize, i as usize);
                    counts[l] += 1;
                    sums[l] = sums[l].saturating_add(conf_fixed(votes.confidence[i]));
                }
                pick(counts, sums)
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(u32, u32, f32)], tasks: usize, classes: usize) -> VoteTable {
        VoteTable {
            task: rows.iter().map(|r| r.0).collect(),
            worker: (0..rows.len() as u32).collect(),
            label: rows.iter().map(|r| r.1).collect(),
            confidence: rows.iter().map(|r| r.2).collect(),
            tasks: (0..tasks).map(|t| t.to_string()).collect(),
            workers: (0..rows.len()).map(|w| w.to_string()).collect(),
            classes: (0..classes).map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn most_votes_win() {
        let t = table(&[(0, 2, 0.1), (0, 2, 0.1), (0, 1, 1.0)], 1, 3);
        let r = majority(&t)[0];
        assert_eq!((r.label, r.answers), (2, 3));
        assert!((r.confidence - 2.0 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn ties_go_to_the_higher_confidence_sum_then_the_lowest_label() {
        let t = table(
            &[
                (0, 3, 0.6),
                (0, 1, 0.9),
                (1, 3, 0.5),
                (1, 1, 0.5),
                (1, 2, 0.5),
            ],
            2,
            4,
        );
        let r = majority(&t);
        assert_eq!(r[0].label, 1, "higher confidence sum wins a vote tie");
        assert_eq!(r[1].label, 1, "equal sums: the lowest label");
        assert!((r[1].confidence - 1.0 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn a_task_without_answers_gets_label_0_and_no_confidence() {
        let t = table(&[(1, 1, 1.0)], 2, 2);
        assert_eq!(
            majority(&t)[0],
            TaskLabel {
                label: 0,
                confidence: 0.0,
                answers: 0
            }
        );
    }
}
