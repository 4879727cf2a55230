//! Dawid-Skene EM steps ([`DsSteps`]) on the device, with the CPU twins as the fallback.

use super::dawid_skene::DsSession;
use super::{GpuBackend, OnDeviceError};
use crate::backend::answers::TaskAnswers;
use crate::backend::cpu::{dawid_skene as cpu_ds, CpuDsSteps};
use crate::backend::DsSteps;
use crate::error::{Error, Result};

/// [`DsSteps`] on the device, with the CPU twins as the fallback when the device fails.
///
/// Falling back loses nothing: an E-step needs only the parameters, so a failed
/// [`DsSteps::e_m_step`] is rerun on the CPU; the first posteriors are kept until the first
/// E-step has run on the device, and the last parameters until the posteriors are read.
pub struct GpuDsSteps<'a> {
    session: Option<DsSession<'a>>,
    cpu: Option<CpuDsSteps<'a>>,
    a: TaskAnswers<'a>,
    workers: usize,
    /// The initial posteriors, until an E-step replaces them.
    init: Option<Vec<f32>>,
    /// The parameters of the last E-step on the device.
    last: Option<(Vec<f32>, Vec<f32>)>,
    policy: OnDeviceError,
}

impl<'a> GpuDsSteps<'a> {
    /// Steps on `backend`'s device, or on the CPU when the device is lost or refuses the
    /// problem and the backend falls back (`OnDeviceError::CpuFallback`).
    pub fn new(
        backend: &'a GpuBackend,
        a: TaskAnswers<'a>,
        workers: usize,
        init: Vec<f32>,
    ) -> Result<Self> {
        let ctx = backend.context();
        let opts = backend.options();
        let mut steps = GpuDsSteps {
            session: None,
            cpu: None,
            a,
            workers,
            init: None,
            last: None,
            policy: opts.on_device_error,
        };
        let session = if ctx.health.is_lost() {
            Err(Error::Gpu(format!(
                "{} was lost earlier: {}",
                ctx.adapter.short(),
                ctx.health.first_error()
            )))
        } else {
            DsSession::new(ctx, a, workers, opts.timeout)
                .and_then(|s| s.set_posteriors(&init).map(|_| s))
        };
        match session {
            Ok(s) => {
                steps.session = Some(s);
                steps.init = Some(init);
            }
            Err(e @ Error::Invalid(_)) => return Err(e),
            Err(e) => {
                steps.init = Some(init);
                steps.fall_back(e)?;
            }
        }
        Ok(steps)
    }

    /// Whether the steps run on the device (false after a fallback).
    pub fn on_device(&self) -> bool {
        self.session.is_some()
    }

    /// Leaves the device: fails with `e`, or goes on with the CPU twins from the posteriors the
    /// device had (the initial ones, or those of the last E-step's parameters).
    fn fall_back(&mut self, e: Error) -> Result<&mut CpuDsSteps<'a>> {
        self.session = None;
        if self.policy == OnDeviceError::Fail || matches!(e, Error::Invalid(_)) {
            return Err(e);
        }
        eprintln!("microtask: {e}; running Dawid-Skene on the CPU (rayon)");
        let (t, c) = (self.a.tasks(), self.a.classes);
        let mut post = self.init.take().unwrap_or_else(|| vec![0f32; t * c]);
        if let Some((lp, lc)) = self.last.take() {
            cpu_ds::e_step(self.a, &lp, &lc, &mut post);
        }
        Ok(self.cpu.insert(CpuDsSteps::new(self.a, self.workers, post)))
    }
}

impl DsSteps for GpuDsSteps<'_> {
    fn m_sums(&mut self, counts: &mut [f32], totals: &mut [f64]) -> Result<()> {
        if let Some(s) = &self.session {
            match s.m_sums(counts, totals) {
                Ok(()) => return Ok(()),
                Err(e) => self.fall_back(e)?,
            };
        }
        match &mut self.cpu {
            Some(cpu) => cpu.m_sums(counts, totals),
            None => Err(Error::Gpu("Dawid-Skene steps have no device".into())),
        }
    }

    fn e_m_step(
        &mut self,
        log_prior: &[f32],
        log_conf: &[f32],
        counts: &mut [f32],
        totals: &mut [f64],
    ) -> Result<f64> {
        if let Some(s) = &self.session {
            match s.e_m_step(log_prior, log_conf, counts, totals) {
                Ok(ll) => {
                    self.init = None;
                    let last = self.last.get_or_insert_with(Default::default);
                    last.0.clear();
                    last.0.extend_from_slice(log_prior);
                    last.1.clear();
                    last.1.extend_from_slice(log_conf);
                    return Ok(ll);
                }
                Err(e) => self.fall_back(e)?,
            };
        }
        match &mut self.cpu {
            Some(cpu) => cpu.e_m_step(log_prior, log_conf, counts, totals),
            None => Err(Error::Gpu("Dawid-Skene steps have no device".into())),
        }
    }

    fn into_posteriors(mut self: Box<Self>) -> Result<Vec<f32>> {
        if let Some(s) = &self.session {
            match s.posteriors() {
                Ok(p) => return Ok(p),
                Err(e) => {
                    self.fall_back(e)?;
                }
            }
        }
        match self.cpu.take() {
            Some(cpu) => Box::new(cpu).into_posteriors(),
            None => Err(Error::Gpu("Dawid-Skene steps have no device".into())),
        }
    }
}
