//! The Dawid-Skene EM steps ([`DsSteps`]) on the CPU twins, for the EM driver in
//! `aggregate::dawid_skene`.

use super::dawid_skene as ds;
use crate::backend::answers::{ds_by_worker, TaskAnswers};
use crate::backend::DsSteps;
use crate::error::Result;

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
