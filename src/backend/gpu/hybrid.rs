//! `--backend hybrid`: the GPU's device loop and a CPU worker (using the rayon pool) pull
//! batches from one queue. Every batch is classified whole by one side, with the same kernels
//! as the GPU and CPU backends, and lands at its own offset: the output is the same rows in the
//! same order as either backend alone.

use super::GpuBackend;
use crate::backend::cpu::CpuDsSteps;
use crate::backend::{Backend, DsSteps, Items, Predictions, RunStats, TaskAnswers, TaskLabel};
use crate::data::votes::VoteTable;
use crate::error::Result;
use crate::model::Ensemble;

#[derive(Debug)]
pub struct HybridBackend {
    gpu: GpuBackend,
}

impl HybridBackend {
    pub fn new(gpu: GpuBackend) -> Self {
        HybridBackend { gpu }
    }
}

impl Backend for HybridBackend {
    fn describe(&self) -> String {
        format!(
            "hybrid: cpu (rayon, {} threads) + {}",
            rayon::current_num_threads(),
            self.gpu.describe()
        )
    }

    fn classify_items(
        &self,
        model: &Ensemble,
        items: Items<'_>,
        out: &mut Predictions,
    ) -> Result<()> {
        self.gpu.classify_impl(model, items, out, true)
    }

    /// Tallies run on the device (they are small next to classification).
    fn majority(&self, votes: &VoteTable) -> Result<Vec<TaskLabel>> {
        self.gpu.majority_impl(votes)
    }

    fn last_stats(&self) -> Option<RunStats> {
        self.gpu.last_stats()
    }

    /// Dawid-Skene runs on the CPU twins: the hybrid split is for classification.
    fn ds_steps<'a>(
        &'a self,
        answers: TaskAnswers<'a>,
        workers: usize,
        init: Vec<f32>,
    ) -> Result<Box<dyn DsSteps + 'a>> {
        Ok(Box::new(CpuDsSteps::new(answers, workers, init)))
    }
}
