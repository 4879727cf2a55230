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
use cpu::dawid_skene::{self as ds, TaskAnswers};

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

    /// Dawid-Skene EM steps over `answers` (answers of `workers` workers, grouped by task),
    /// starting from the posteriors `init` (`tasks * classes`). The default runs the CPU twins
    /// ([`CpuDsSteps`]: the fused E+M step); the GPU backend runs the WGSL kernels with the
    /// answers resident on the device.
    fn ds_steps<'a>(
        &'a self,
        answers: TaskAnswers<'a>,
        workers: usize,
        init: Vec<f32>,
    ) -> Result<Box<dyn DsSteps + 'a>> {
        Ok(Box::new(CpuDsSteps::new(answers, workers, init)))
    }
}

/// The EM steps of one Dawid-Skene fit on one backend (see [`Backend::ds_steps`]). The current
/// posteriors live with the steps (in device memory for the GPU); the small arrays (parameters,
/// counts, totals) go in and out. Layouts: [`cpu::dawid_skene`]'s module docs.
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

/// Answers grouped by worker, from answers grouped by task: `(worker_start, task, label)`, where
/// worker `w`'s answers are entries `worker_start[w]..worker_start[w + 1]`, in task order.
/// What the by-worker M-step ([`cpu::dawid_skene::m_step`] and its GPU twin) reads.
pub fn ds_by_worker(a: TaskAnswers, workers: usize) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let c = a.classes.max(1) as u32;
    let mut start = vec![0u32; workers + 1];
    for &r in a.row {
        start[(r / c) as usize + 1] += 1;
    }
    for w in 0..workers {
        start[w + 1] += start[w];
    }
    let mut fill = start.clone();
    let (mut task, mut label) = (vec![0u32; a.row.len()], vec![0u32; a.row.len()]);
    for t in 0..a.tasks() {
        for &r in &a.row[a.start[t] as usize..a.start[t + 1] as usize] {
            let f = &mut fill[(r / c) as usize];
            task[*f as usize] = t as u32;
            label[*f as usize] = r % c;
            *f += 1;
        }
    }
    (start, task, label)
}

/// [`DsSteps`] on the CPU twins. The fused E+M step ([`ds::e_m_step_fused`]) keeps a copy of the
/// counts per block of tasks; when the model is large next to the answers, the separate E-step
/// and by-worker M-step run instead.
pub struct CpuDsSteps<'a> {
    a: TaskAnswers<'a>,
    post: Vec<f32>,
    /// `(worker_start, task, label)` when the by-worker M-step is used.
    by_worker: Option<(Vec<u32>, Vec<u32>, Vec<u32>)>,
}

impl<'a> CpuDsSteps<'a> {
    pub fn new(a: TaskAnswers<'a>, workers: usize, init: Vec<f32>) -> Self {
        let (c, t) = (a.classes, a.tasks());
        let fused = ds::fused_scratch(c, workers, t) <= (a.row.len() * c).max(1 << 24);
        CpuDsSteps {
            a,
            post: init,
            by_worker: (!fused).then(|| ds_by_worker(a, workers)),
        }
    }
}

impl DsSteps for CpuDsSteps<'_> {
    fn m_sums(&mut self, counts: &mut [f32], totals: &mut [f64]) -> Result<()> {
        match &self.by_worker {
            None => ds::accumulate(self.a, &mut self.post, counts, totals),
            Some((ws, wt, wl)) => {
                let c = self.a.classes;
                ds::m_step(c, ws, wt, wl, &self.post, counts);
                totals.copy_from_slice(&ds::class_totals(c, &self.post));
            }
        }
        Ok(())
    }

    fn e_m_step(
        &mut self,
        log_prior: &[f32],
        log_conf: &[f32],
        counts: &mut [f32],
        totals: &mut [f64],
    ) -> Result<f64> {
        if self.by_worker.is_none() {
            let (a, post) = (self.a, &mut self.post);
            return Ok(ds::e_m_step_fused(
                a, log_prior, log_conf, post, counts, totals,
            ));
        }
        let ll = ds::e_step(self.a, log_prior, log_conf, &mut self.post);
        self.m_sums(counts, totals)?;
        Ok(ll)
    }

    fn into_posteriors(self: Box<Self>) -> Result<Vec<f32>> {
        Ok(self.post)
    }
}
