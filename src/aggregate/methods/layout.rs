//! The answers grouped twice, built once per fit: by task (for the per-task posterior steps, run
//! in parallel over tasks) and by worker (for the per-worker parameter steps, run in parallel over
//! workers without atomics).

use super::Answers;
use rayon::prelude::*;
use std::ops::Range;

/// Answers in task order, plus the same answers grouped by worker.
#[derive(Debug, Clone)]
pub struct Layout {
    pub tasks: usize,
    pub workers: usize,
    pub classes: usize,
    /// Task `t`'s answers are positions `task_start[t]..task_start[t + 1]` of `worker`/`label`.
    pub task_start: Vec<usize>,
    /// Per answer in task order: its worker.
    pub worker: Vec<u32>,
    /// Per answer in task order: its class.
    pub label: Vec<u32>,
    /// Worker `w`'s answers are `by_worker[worker_start[w]..worker_start[w + 1]]`.
    pub worker_start: Vec<usize>,
    /// Positions into the task-ordered columns, grouped by worker (task order within a worker).
    pub by_worker: Vec<u32>,
}

/// Blocks of tasks summed apart and then added in order ([`Layout::blocks`]): a few per thread
/// on common machines.
const MAX_BLOCKS: usize = 16;

impl Layout {
    /// Groups `a` (assumed checked with [`Answers::check`]). Stable: answers keep their input
    /// order within a task.
    pub fn new(a: &Answers) -> Layout {
        let (task_start, order) = group(a.task, a.tasks);
        let worker: Vec<u32> = order.par_iter().map(|&i| a.worker[i as usize]).collect();
        let label: Vec<u32> = order.par_iter().map(|&i| a.label[i as usize]).collect();
        let (worker_start, by_worker) = group(&worker, a.workers);
        Layout {
            tasks: a.tasks,
            workers: a.workers,
            classes: a.classes,
            task_start,
            worker,
            label,
            worker_start,
            by_worker,
        }
    }

    pub fn answers(&self) -> usize {
        self.label.len()
    }

    /// The task-order positions of task `t`'s answers.
    pub fn of_task(&self, t: usize) -> std::ops::Range<usize> {
        self.task_start[t]..self.task_start[t + 1]
    }

    /// The task-order positions of worker `w`'s answers.
    pub fn of_worker(&self, w: usize) -> &[u32] {
        &self.by_worker[self.worker_start[w]..self.worker_start[w + 1]]
    }

    /// The task of each task-order position (for passes that go by worker).
    pub fn task_of_position(&self) -> Vec<u32> {
        let mut out = vec![0u32; self.answers()];
        for t in 0..self.tasks {
            out[self.of_task(t)].iter_mut().for_each(|x| *x = t as u32);
        }
        out
    }

    /// Answers per task.
    pub fn task_len(&self, t: usize) -> usize {
        self.task_start[t + 1] - self.task_start[t]
    }

    /// Consecutive task ranges of about equal answer counts, for passes in task order that
    /// scatter into per-block tables of `table_len` values each: as many blocks as keep the
    /// tables within 2^24 values in all, at most [`MAX_BLOCKS`], at least 1.
    pub fn blocks(&self, table_len: usize) -> Vec<Range<usize>> {
        let by_memory = (1usize << 24) / table_len.max(1);
        let n = by_memory
            // Fixed, not by the thread count: the same sums on every machine.
            .min(MAX_BLOCKS)
            .min(self.tasks)
            .max(1);
        let per = self.answers().div_ceil(n).max(1);
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        while start < self.tasks {
            let goal = self.task_start[start] + per;
            let end = start + 1 + self.task_start[start + 1..].partition_point(|&s| s < goal);
            let end = end.min(self.tasks);
            out.push(start..end);
            start = end;
        }
        out
    }
}

impl Layout {
    /// Sums, over `blocks` in parallel, the tables that `f(table, task)` fills task by task
    /// (each block its own zeroed table of `len` values).
    pub fn sum_over_tasks<F>(&self, blocks: &[Range<usize>], len: usize, f: F) -> Vec<f64>
    where
        F: Fn(&mut [f64], usize) + Sync,
    {
        let tables = blocks.par_iter().map(|r| {
            let mut acc = vec![0.0; len];
            r.clone().for_each(|t| f(&mut acc, t));
            acc
        });
        crate::ordered_sum::add_tables(tables, len)
    }
}

/// `rows` (`width` values per task) cut into the mutable pieces of `blocks`, in order.
pub fn split_rows<'a, T>(
    mut rows: &'a mut [T],
    width: usize,
    blocks: &[Range<usize>],
) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(blocks.len());
    for b in blocks {
        let (head, tail) = rows.split_at_mut(b.len() * width);
        out.push(head);
        rows = tail;
    }
    out
}

/// Counting sort of `0..key.len()` by `key`: (`start`, `order`) with group `g` at
/// `order[start[g]..start[g + 1]]`.
fn group(key: &[u32], groups: usize) -> (Vec<usize>, Vec<u32>) {
    if key.par_windows(2).all(|w| w[0] <= w[1]) {
        // Already in order: the identity (see `votes::group_by`).
        let start = (0..=groups)
            .into_par_iter()
            .map(|g| key.partition_point(|&k| (k as usize) < g))
            .collect();
        return (start, (0..key.len() as u32).into_par_iter().collect());
    }
    let mut start = vec![0usize; groups + 1];
    for &k in key {
        start[k as usize + 1] += 1;
    }
    for g in 0..groups {
        start[g + 1] += start[g];
    }
    let mut next = start.clone();
    let mut order = vec![0u32; key.len()];
    for (i, &k) in key.iter().enumerate() {
        order[next[k as usize]] = i as u32;
        next[k as usize] += 1;
    }
    (start, order)
}
