//! Backends run the hot kernels: classify a batch of items with every worker, tally votes.
//!
//! The CPU backend (rayon) is production code and the reference every GPU kernel is tested
//! against; the GPU backend (wgpu) runs the same kernels as WGSL compute shaders.
//!
//! This file is the interface: the [`Backend`] and [`DsSteps`] traits and the plain types they
//! speak in ([`answers`], [`stats`], [`tie`]); it names no type of `cpu/` or `gpu/`.

pub mod answers;
pub mod cpu;
pub mod gpu;
pub mod select;
pub mod stats;
pub mod tie;

pub use answers::{ds_by_worker, TaskAnswers, NO_CLAMP};
// The typed items every backend classifies (they live with the data, below the backends).
pub use crate::data::items::Items;
pub use select::{select, select_with, BackendKind};
pub use stats::RunStats;
pub use tie::CONF_FIXED_SCALE;

use crate::data::votes::VoteTable;
use crate::error::Result;
use crate::model::Ensemble;

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

    /// Scores `items` (`n * model.features()` values: u8 pixels, scaled by 1/255, or f16/f32
    /// features, as given) with every worker of `model`, appending `n * model.workers` votes to
    /// `out`.
    fn classify_items(
        &self,
        model: &Ensemble,
        items: Items<'_>,
        out: &mut Predictions,
    ) -> Result<()>;

    /// [`Backend::classify_items`] on u8 pixels.
    fn classify(&self, model: &Ensemble, items: &[u8], out: &mut Predictions) -> Result<()> {
        self.classify_items(model, Items::U8(items), out)
    }

    /// Majority vote per task: most votes, ties to the higher fixed-point confidence sum, then
    /// the lowest label. Tasks with no answers get label 0, confidence 0, answers 0.
    fn majority(&self, votes: &VoteTable) -> Result<Vec<TaskLabel>>;

    /// Per-stage timings of the last `classify` call (GPU and hybrid backends), for `bench`.
    fn last_stats(&self) -> Option<RunStats> {
        None
    }

    /// Dawid-Skene EM steps over `answers` (answers of `workers` workers, grouped by task),
    /// starting from the posteriors `init` (`tasks * classes`): the CPU twins (the fused E+M
    /// step), or the WGSL kernels with the answers resident on the device.
    fn ds_steps<'a>(
        &'a self,
        answers: TaskAnswers<'a>,
        workers: usize,
        init: Vec<f32>,
    ) -> Result<Box<dyn DsSteps + 'a>>;
}

/// The EM steps of one Dawid-Skene fit on one backend (see [`Backend::ds_steps`]). The current
/// posteriors live with the steps (in device memory for the GPU); the small arrays (parameters,
/// counts, totals) go in and out. Layouts: [`answers`].
pub trait DsSteps {
    /// The M-step's sums from the current posteriors: confusion counts (`workers * C * C`, the
    /// layout of `log_conf`) and class totals (`C`). Overwrites both.
    fn m_sums(&mut self, counts: &mut [f32], totals: &mut [f64]) -> Result<()>;

    /// An E-step from the parameters (new posteriors, gold tasks clamped), then the M-step's
    /// sums from them into `counts` and `totals`; returns the log-likelihood.
    fn e_m_step(
        &mut self,
        log_prior: &[f32],
        log_conf: &[f32],
        counts: &mut [f32],
        totals: &mut [f64],
    ) -> Result<f64>;

    /// The current posteriors (`tasks * C`).
    fn into_posteriors(self: Box<Self>) -> Result<Vec<f32>>;
}
