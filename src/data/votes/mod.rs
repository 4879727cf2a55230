//! Votes (answers): `task,worker,label[,confidence]`, mapped to dense integer ids.
//!
//! # The votes CSV format
//! - A header line is required. It names the columns `task`, `worker` and `label` (any order,
//!   case-insensitive) and optionally `confidence`; other columns are allowed and ignored.
//! - Task, worker and label are strings (crowd-kit's format). They are mapped to dense ids in
//!   order of first appearance (tasks, workers); the outputs use the original strings.
//! - `confidence` is a number in `[0, 1]`; when the column is absent or the field is empty, the
//!   answer has none (NaN in [`VoteTable::confidence`]). Majority vote breaks ties with the
//!   confidences, counting a missing one as the mean of the others (`aggregate::majority`);
//!   Dawid-Skene ignores them.
//! - A second header line (as `cat a.csv b.csv` makes) is an error naming its line: pass each
//!   file to `--votes` instead.
//! - Fields may be quoted (`"a,b"`, `""` for a quote inside); unquoted fields are trimmed of
//!   surrounding spaces; blank lines are skipped; `\r\n` line ends are accepted.
//! - Every row must have as many fields as the header; a bad row is an [`Error::Row`] naming the
//!   file and its 1-based line.
//! - An empty file, or a header with no answers after it, is an error.
//!
//! # Parquet
//! A file whose name ends in `.parquet` is read as Parquet (see `parquet.rs` for its columns) and
//! [`write_votes`] writes one (see [`crate::data::parquet`]).
//!
//! # Several files
//! [`read_votes`] reads several files into one table with shared id maps: a task or worker named in
//! two files is the same task or worker.
//!
//! # Duplicate answers
//! When the same worker answers the same task more than once (in one file or across files), the
//! **last** answer is kept (file order, then line order) and the earlier ones are dropped and
//! counted in [`LoadedVotes::duplicates`]. This lets a later file (answers that came back from a
//! review round) correct an earlier one.
//!
//! # Classes
//! The classes are the sorted set of all label strings: sorted numerically when every label is an
//! integer (`2` before `10`), else by their bytes. Class `k` of the table is `classes[k]`.
//!
//! # Where things live
//! - this file: the [`VoteTable`] itself;
//! - `record`: the CSV record and header parser shared by votes and gold files;
//! - `interner`: byte-string hashing, interning and name lookup;
//! - `dedupe`: one id space for the keys of several chunk-local interners;
//! - `parallel`: a file body split at line ends and parsed chunk by chunk;
//! - `parquet`: a Parquet votes file -> chunks (the columns and types it accepts);
//! - `read`: [`read_votes`] (files -> table: global ids, class order, duplicates);
//! - `gold`: [`Gold`] and [`read_gold`];
//! - `write`: [`write_rows`], [`push_field`], [`write_votes`].

mod dedupe;
mod gold;
mod interner;
mod parallel;
mod parquet;
mod read;
mod record;
#[cfg(test)]
mod tests;
mod write;

pub use gold::{read_gold, Gold};
pub use read::{describe_paths, read_votes, LoadedVotes};
pub use write::{push_field, write_rows, write_votes};

use crate::error::{Error, Result};
use rayon::prelude::*;

/// Marks "no label" in per-task label arrays (e.g. tasks without gold).
pub const NO_LABEL: u32 = u32::MAX;

/// Answers in columns, with dense ids; the name tables map ids back to the original strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VoteTable {
    pub task: Vec<u32>,
    pub worker: Vec<u32>,
    pub label: Vec<u32>,
    /// NaN when the source gave no confidence.
    pub confidence: Vec<f32>,
    pub tasks: Vec<String>,
    pub workers: Vec<String>,
    pub classes: Vec<String>,
}

impl VoteTable {
    pub fn len(&self) -> usize {
        self.task.len()
    }

    pub fn is_empty(&self) -> bool {
        self.task.is_empty()
    }

    pub fn n_tasks(&self) -> usize {
        self.tasks.len()
    }

    pub fn n_workers(&self) -> usize {
        self.workers.len()
    }

    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    /// Checks that every id is within its name table and that the columns have one length.
    pub fn validate(&self) -> Result<()> {
        let n = self.task.len();
        if self.worker.len() != n || self.label.len() != n || self.confidence.len() != n {
            return Err(Error::Invalid(format!(
                "vote table columns differ in length: task {}, worker {}, label {}, confidence {}",
                n,
                self.worker.len(),
                self.label.len(),
                self.confidence.len()
            )));
        }
        let bad = |col: &[u32], limit: usize| col.par_iter().any(|&v| v as usize >= limit);
        if bad(&self.task, self.n_tasks())
            || bad(&self.worker, self.n_workers())
            || bad(&self.label, self.n_classes())
        {
            return Err(Error::Invalid(
                "vote table holds an id outside its name tables".into(),
            ));
        }
        Ok(())
    }

    /// Answers grouped by task: `(start, order)` where the answers of task `t` are
    /// `order[start[t]..start[t + 1]]` (indices into the columns, in row order).
    pub fn by_task(&self) -> (Vec<u32>, Vec<u32>) {
        group_by(&self.task, self.n_tasks())
    }

    /// Answers grouped by worker, like [`VoteTable::by_task`].
    pub fn by_worker(&self) -> (Vec<u32>, Vec<u32>) {
        group_by(&self.worker, self.n_workers())
    }
}

/// Stable counting sort of row indices by `key` (`key[i] < groups`): returns `(start, order)`.
pub fn group_by(key: &[u32], groups: usize) -> (Vec<u32>, Vec<u32>) {
    if key.par_windows(2).all(|w| w[0] <= w[1]) {
        // Keys already in order (a file grouped by task): the stable sort is the identity and
        // group `g` starts at the first key not below `g`; both built in parallel.
        let start = (0..=groups)
            .into_par_iter()
            .map(|g| key.partition_point(|&k| (k as usize) < g) as u32)
            .collect();
        return (start, (0..key.len() as u32).into_par_iter().collect());
    }
    let mut start = vec![0u32; groups + 1];
    for &k in key {
        start[k as usize + 1] += 1;
    }
    for i in 0..groups {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut order = vec![0u32; key.len()];
    for (i, &k) in key.iter().enumerate() {
        let f = &mut fill[k as usize];
        order[*f as usize] = i as u32;
        *f += 1;
    }
    (start, order)
}
