//! Backends run the hot kernels: classify a batch of items with every worker, tally votes.
//!
//! The CPU backend (rayon) is production code and the reference every GPU kernel is tested
//! against; the GPU backend (wgpu) runs the same kernels as WGSL compute shaders.

pub mod cpu;
pub mod gpu;
pub mod select;

pub use select::{select, select_with, BackendKind};

use crate::data::votes::VoteTable;
use crate::error::Result;
use crate::model::Ensemble;

/// Summed confidences used to break vote ties are kept in fixed point (`round(conf * SCALE)` as
/// u32) on both CPU and GPU, so the tie rule gives the same answer on both: WGSL has no atomic
/// float add. One task may hold up to 65,535 answers of confidence 1 before the sum saturates.
pub const CONF_FIXED_SCALE: f32 = 65536.0;

/// Per item, per worker: the predicted class and its softmax probability.
/// Item-major: entry `i * workers + r` is worker `r`'s vote on item `i`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    pub workers: usize,
    pub labels: Vec<u32>,
    pub confidence: Vec<f32>,
}

impl Predictions {
    pub fn with_capacity(items: usize, workers: usize) -> Self {
        Predictions {
            workers,
            labels: Vec::with_capacity(items * workers),
            confidence: Vec::with_capacity(items * workers),
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len() / self.workers.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// One aggregated answer per task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskLabel {
    pub label: u32,
    /// Vote share of `label` (majority vote) or its posterior probability (Dawid-Skene).
    pub confidence: f32,
    /// Answers the task received.
    pub answers: u32,
}

/// What a backend can run.
pub trait Backend: Send + Sync {
    /// A short description for reports: which device ran and why it was chosen.
    fn describe(&self) -> String;

    /// Scores `items` (`n * model.features()` bytes) with every worker of `model`, appending
    /// `n * model.workers` votes to `out`.
    fn classify(&self, model: &Ensemble, items: &[u8], out: &mut Predictions) -> Result<()>;

    /// Majority vote per task: most votes, ties to the higher fixed-point confidence sum, then
    /// the lowest label. Tasks with no answers get label 0, confidence 0, answers 0.
    fn majority(&self, votes: &VoteTable) -> Result<Vec<TaskLabel>>;

    /// Per-stage timings of the last `classify` call (GPU and hybrid backends), for `bench`.
    fn last_stats(&self) -> Option<gpu::RunStats> {
        None
    }
}
