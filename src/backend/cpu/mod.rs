//! The rayon backend: production fallback and the reference for every GPU kernel.

mod aligned;
mod classify;
pub mod dawid_skene;
mod ds_steps;
mod kernel;
pub mod tally;

pub use classify::{block_logits, classify_block, classify_into, BLOCK_ITEMS};
pub use ds_steps::CpuDsSteps;
pub use tally::majority;

use super::{Backend, DsSteps, Items, Predictions, TaskAnswers, TaskLabel};
use crate::data::votes::VoteTable;
use crate::error::Result;
use crate::model::Ensemble;

#[derive(Debug, Default, Clone)]
pub struct CpuBackend {
    /// Why this backend was chosen (shown in reports).
    pub reason: String,
}

impl CpuBackend {
    pub fn new(reason: impl Into<String>) -> Self {
        CpuBackend {
            reason: reason.into(),
        }
    }
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        let threads = rayon::current_num_threads();
        let kernel = kernel::Isa::detect().name();
        if self.reason.is_empty() {
            format!("cpu (rayon, {threads} threads, {kernel} kernel)")
        } else {
            format!(
                "cpu (rayon, {threads} threads, {kernel} kernel): {}",
                self.reason
            )
        }
    }

    fn classify_items(
        &self,
        model: &Ensemble,
        items: Items<'_>,
        out: &mut Predictions,
    ) -> Result<()> {
        classify::classify(model, items, out)
    }

    fn majority(&self, votes: &VoteTable) -> Result<Vec<TaskLabel>> {
        Ok(majority(votes))
    }

    fn ds_steps<'a>(
        &'a self,
        answers: TaskAnswers<'a>,
        workers: usize,
        init: Vec<f32>,
    ) -> Result<Box<dyn DsSteps + 'a>> {
        Ok(Box::new(CpuDsSteps::new(answers, workers, init)))
    }
}
