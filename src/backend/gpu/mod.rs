//! The GPU backend: the same kernels as the CPU backend, as WGSL compute shaders run by wgpu.
//!
//! - `context`: instance, adapter choice (and why), device, error and device-lost tracking.
//! - `layout`: structs and constants shared with the shaders (`#[repr(C)]` + bytemuck).
//! - `classify`: the classify pipelines (pixels and features) and the model's buffers; `shape`:
//!   a batch's shape, packing and size limits; `slot`: the buffers of one batch in flight.
//! - `scheduler`: the ring of K in-flight batches, one device loop, CPU fallback.
//! - `tally`: majority vote on the device.
//! - `hybrid`: CPU threads and the GPU pulling batches from one queue.
//! - `dawid_skene`, `ds_steps`: Dawid-Skene's passes over the answers on the device.
//! - `testing`: skip-or-fail helpers for GPU tests (`MICROTASK_REQUIRE_GPU`), with the
//!   `test-hooks` feature only.

pub mod classify;
pub mod context;
pub mod dawid_skene;
mod ds_steps;
pub mod hybrid;
pub mod layout;
pub mod scheduler;
mod shape;
mod slot;
pub mod tally;
#[cfg(any(test, feature = "test-hooks"))]
pub mod testing;

pub use classify::{BatchLimit, LogitsKernel, ModelShape, DEFAULT_BATCH};
pub use context::{adapter_reports, choose, AdapterChoice, AdapterReport, GpuContext};
pub use ds_steps::GpuDsSteps;
pub use hybrid::HybridBackend;
// The run statistics are the backend interface's; re-exported where `bench` looks for them.
pub use crate::backend::RunStats;

use super::{Backend, DsSteps, Items, Predictions, TaskAnswers, TaskLabel};
use crate::data::votes::VoteTable;
use crate::error::{Error, Result};
use crate::model::Ensemble;
use classify::ClassifyKernel;
use scheduler::{Job, Resident};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally::TallyKernel;

/// Default number of batches in flight.
pub const DEFAULT_SLOTS: usize = 3;
/// The most batches in flight the scheduler accepts.
pub const MAX_SLOTS: usize = 16;

/// What to do when the device fails mid-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDeviceError {
    /// Finish the failed batch and the rest on the CPU, saying so on stderr.
    #[default]
    CpuFallback,
    /// Fail the run with the device's error.
    Fail,
}

/// Tuning of the GPU backend (`--batch`, `--slots`).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuOptions {
    /// Items per batch; `None` chooses from the adapter's limits. An explicit value above the
    /// device's limit is refused with an error naming the limit.
    pub batch: Option<usize>,
    /// Batches in flight (the ring size K), 1 to `MAX_SLOTS`.
    pub slots: usize,
    pub on_device_error: OnDeviceError,
    /// Which logits kernel to run (`Auto`: the register-blocked one on a software adapter,
    /// the tiled one on a GPU). Both give the same bits.
    pub kernel: LogitsKernel,
    /// Write each batch straight into a mapped storage buffer where the device offers that
    /// (`GpuContext::direct_upload`: software adapters), instead of staging it with
    /// `write_buffer` and copying it on the device. Same results either way.
    pub direct_upload: bool,
    /// Longest wait for one batch before the device is declared hung.
    pub timeout: Duration,
    /// Tests only (`test-hooks` feature): pretend the device fails when batch `b` (0-based)
    /// completes.
    #[cfg(feature = "test-hooks")]
    pub inject_fault_at_batch: Option<usize>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            batch: None,
            slots: DEFAULT_SLOTS,
            on_device_error: OnDeviceError::default(),
            kernel: LogitsKernel::Auto,
            direct_upload: true,
            timeout: Duration::from_secs(300),
            #[cfg(feature = "test-hooks")]
            inject_fault_at_batch: None,
        }
    }
}

impl GpuOptions {
    fn validate(&self) -> Result<()> {
        if self.slots == 0 || self.slots > MAX_SLOTS {
            return Err(Error::Invalid(format!(
                "--slots {} is out of range: 1 to {MAX_SLOTS} batches in flight",
                self.slots
            )));
        }
        if self.batch == Some(0) {
            return Err(Error::Invalid(
                "--batch 0: a batch needs at least 1 item".into(),
            ));
        }
        Ok(())
    }
}

/// The device and its compiled kernels, shared by backends with different options.
struct Device {
    ctx: GpuContext,
    classify_kernel: ClassifyKernel,
    tally_kernel: TallyKernel,
}

/// Classification and tallies on a wgpu device.
pub struct GpuBackend {
    dev: Arc<Device>,
    opts: GpuOptions,
    /// Who asked for this backend (`--backend gpu`, `--backend auto`...).
    origin: String,
    resident: Mutex<Option<Resident>>,
    last: Mutex<Option<RunStats>>,
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuBackend")
            .field("adapter", &self.dev.ctx.adapter.short())
            .field("opts", &self.opts)
            .finish()
    }
}

impl GpuBackend {
    /// Opens the adapter `choice` allows and compiles the kernels. `origin` says who asked
    /// (e.g. `--backend gpu`), for `describe`.
    pub fn new(choice: AdapterChoice, opts: GpuOptions, origin: impl Into<String>) -> Result<Self> {
        opts.validate()?;
        let ctx = GpuContext::new(choice)?;
        Self::with_context(ctx, opts, origin)
    }

    /// Builds the backend on an open context.
    pub fn with_context(
        ctx: GpuContext,
        opts: GpuOptions,
        origin: impl Into<String>,
    ) -> Result<Self> {
        opts.validate()?;
        let classify_kernel = ClassifyKernel::new(&ctx)?;
        let tally_kernel = TallyKernel::new(&ctx)?;
        Ok(GpuBackend {
            dev: Arc::new(Device {
                ctx,
                classify_kernel,
                tally_kernel,
            }),
            opts,
            origin: origin.into(),
            resident: Mutex::new(None),
            last: Mutex::new(None),
        })
    }

    /// Another backend on the same device (no new device, no recompiled kernels) with other
    /// options: what a benchmark over batch sizes or slot counts wants.
    pub fn with_options(&self, opts: GpuOptions) -> Result<GpuBackend> {
        opts.validate()?;
        Ok(GpuBackend {
            dev: self.dev.clone(),
            opts,
            origin: self.origin.clone(),
            resident: Mutex::new(None),
            last: Mutex::new(None),
        })
    }

    pub fn context(&self) -> &GpuContext {
        &self.dev.ctx
    }

    pub fn adapter(&self) -> &AdapterReport {
        &self.dev.ctx.adapter
    }

    pub fn options(&self) -> &GpuOptions {
        &self.opts
    }

    /// The most items per batch this device takes for `model` on u8 pixels, and the limit that
    /// sets it.
    pub fn batch_limit(&self, model: &Ensemble) -> Result<BatchLimit> {
        self.batch_limit_for(model, 4)
    }

    /// [`GpuBackend::batch_limit`] for items packed `per_word` values a word
    /// ([`Items::per_word`]).
    pub fn batch_limit_for(&self, model: &Ensemble, per_word: usize) -> Result<BatchLimit> {
        Ok(classify::batch_limit(
            &self.dev.ctx.limits,
            &ModelShape::for_items(model, per_word)?,
        ))
    }

    /// Items per batch for `model` on u8 pixels: the explicit `--batch` if it fits the device,
    /// else an error naming the limit; without one, a size chosen from the limits.
    pub fn batch_size(&self, model: &Ensemble) -> Result<usize> {
        self.batch_size_for(model, 4)
    }

    /// [`GpuBackend::batch_size`] for items packed `per_word` values a word.
    pub fn batch_size_for(&self, model: &Ensemble, per_word: usize) -> Result<usize> {
        let limit = self.batch_limit_for(model, per_word)?;
        match self.opts.batch {
            Some(b) if b > limit.items => Err(Error::Gpu(format!(
                "--batch {b} exceeds what {} takes for this model: at most {} items per batch \
                 ({})",
                self.dev.ctx.adapter.short(),
                limit.items,
                limit.limit
            ))),
            Some(b) => Ok(b.max(1)),
            None => Ok(classify::default_batch(&limit)),
        }
    }

    /// Timings of the last `classify` call.
    pub fn last_stats(&self) -> Option<RunStats> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_stats(&self, stats: RunStats) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
    }

    /// Says why the device is not used any more, or fails, per `on_device_error`.
    fn device_gone(&self) -> Result<()> {
        let why = format!(
            "{} was lost earlier: {}",
            self.dev.ctx.adapter.short(),
            self.dev.ctx.health.first_error()
        );
        match self.opts.on_device_error {
            OnDeviceError::Fail => Err(Error::Gpu(why)),
            OnDeviceError::CpuFallback => {
                eprintln!("microtask: gpu: {why}; classifying on the CPU (rayon)");
                Ok(())
            }
        }
    }

    /// Runs `job` with the device loop on this thread and, when `cpu_helper` is set, a CPU
    /// worker pulling batches from the same queue on another thread (hybrid mode).
    pub(crate) fn run_job(
        &self,
        job: &Job<'_>,
        stats: &mut RunStats,
        cpu_helper: bool,
    ) -> Result<()> {
        if self.dev.ctx.health.is_lost() {
            self.device_gone()?;
            let mut cpu = RunStats::default();
            while let Some(b) = job.claim() {
                job.run_on_cpu(b, &mut cpu)?;
            }
            stats.cpu += cpu.cpu;
            stats.cpu_items += cpu.cpu_items;
            return Ok(());
        }
        let capacity = job.batch.min(job.n);
        let cached = self
            .resident
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let res = match scheduler::prepare(
            &self.dev.ctx,
            &self.dev.classify_kernel,
            job.model,
            job.items.per_word(),
            capacity,
            &self.opts,
            cached,
        ) {
            Ok(res) => res,
            Err(e) => {
                // The model was checked against the limits before: this is the device failing.
                if self.opts.on_device_error == OnDeviceError::Fail {
                    return Err(e);
                }
                eprintln!("microtask: {e}; classifying on the CPU (rayon)");
                stats.fallback = Some(e.to_string());
                let mut cpu = RunStats::default();
                while let Some(b) = job.claim() {
                    job.run_on_cpu(b, &mut cpu)?;
                }
                stats.cpu += cpu.cpu;
                stats.cpu_items += cpu.cpu_items;
                return Ok(());
            }
        };
        let healthy = std::thread::scope(|s| -> Result<bool> {
            let helper = cpu_helper.then(|| {
                s.spawn(|| -> Result<RunStats> {
                    let mut cpu = RunStats::default();
                    while let Some(b) = job.claim() {
                        job.run_on_cpu(b, &mut cpu)?;
                    }
                    Ok(cpu)
                })
            });
            let gpu = scheduler::run_gpu(
                &self.dev.ctx,
                &self.dev.classify_kernel,
                &res,
                job,
                &self.opts,
                stats,
            );
            if let Some(h) = helper {
                let cpu = h
                    .join()
                    .map_err(|_| Error::Gpu("the hybrid CPU worker panicked".into()))??;
                stats.cpu += cpu.cpu;
                stats.cpu_items += cpu.cpu_items;
            }
            gpu
        })?;
        if healthy {
            *self.resident.lock().unwrap_or_else(|e| e.into_inner()) = Some(res);
        }
        Ok(())
    }

    /// Classification with this backend's scheduler; `cpu_helper` adds a CPU worker.
    pub(crate) fn classify_impl(
        &self,
        model: &Ensemble,
        items: Items<'_>,
        out: &mut Predictions,
        cpu_helper: bool,
    ) -> Result<()> {
        let t0 = Instant::now();
        let shape = ModelShape::for_items(model, items.per_word())?;
        let n = items.rows(shape.features)?;
        let batch = self.batch_size_for(model, shape.per_word)?;
        classify::check_fits(&self.dev.ctx, &shape, self.opts.kernel)?;
        let r = model.workers;
        out.workers = r;
        let start = out.labels.len();
        out.labels.resize(start + n * r, 0);
        out.confidence.resize(start + n * r, 0.0);
        let mut stats = RunStats {
            kernel: self.opts.kernel.resolve(&self.dev.ctx.adapter).name(),
            items: n,
            batches: n.div_ceil(batch),
            batch_size: batch,
            slots: self.opts.slots,
            ..Default::default()
        };
        let result = if n == 0 {
            Ok(())
        } else {
            let job = Job::new(
                model,
                items,
                batch,
                &mut out.labels[start..],
                &mut out.confidence[start..],
            );
            self.run_job(&job, &mut stats, cpu_helper)
        };
        if let Err(e) = result {
            // Never hand back half-filled rows.
            out.labels.truncate(start);
            out.confidence.truncate(start);
            return Err(e);
        }
        stats.wall = t0.elapsed();
        self.set_stats(stats);
        Ok(())
    }

    pub(crate) fn majority_impl(&self, votes: &VoteTable) -> Result<Vec<TaskLabel>> {
        let gpu = if self.dev.ctx.health.is_lost() {
            Err(Error::Gpu(format!(
                "{} was lost earlier: {}",
                self.dev.ctx.adapter.short(),
                self.dev.ctx.health.first_error()
            )))
        } else {
            self.dev
                .tally_kernel
                .majority(&self.dev.ctx, votes, self.opts.timeout)
        };
        match (gpu, self.opts.on_device_error) {
            (Ok(t), _) => Ok(t),
            (Err(e @ Error::Invalid(_)), _) | (Err(e), OnDeviceError::Fail) => Err(e),
            (Err(e), OnDeviceError::CpuFallback) => {
                eprintln!("microtask: {e}; tallying on the CPU (rayon)");
                Ok(super::cpu::majority(votes))
            }
        }
    }
}

impl GpuBackend {
    /// Majority vote on the device with explicit chunk sizes (no CPU fallback): tests use it
    /// to force several chunks and submits.
    #[doc(hidden)]
    pub fn majority_on_device(
        &self,
        votes: &VoteTable,
        limits: tally::TallyLimits,
    ) -> Result<Vec<TaskLabel>> {
        self.dev
            .tally_kernel
            .majority_chunked(&self.dev.ctx, votes, limits, self.opts.timeout)
    }
}

impl Backend for GpuBackend {
    fn describe(&self) -> String {
        format!(
            "gpu: {} [driver {}], chosen by {}: {}",
            self.dev.ctx.adapter.short(),
            self.dev.ctx.adapter.driver(),
            self.origin,
            self.dev.ctx.reason
        )
    }

    fn classify_items(
        &self,
        model: &Ensemble,
        items: Items<'_>,
        out: &mut Predictions,
    ) -> Result<()> {
        self.classify_impl(model, items, out, false)
    }

    fn majority(&self, votes: &VoteTable) -> Result<Vec<TaskLabel>> {
        self.majority_impl(votes)
    }

    fn last_stats(&self) -> Option<RunStats> {
        GpuBackend::last_stats(self)
    }

    fn ds_steps<'a>(
        &'a self,
        answers: TaskAnswers<'a>,
        workers: usize,
        init: Vec<f32>,
    ) -> Result<Box<dyn DsSteps + 'a>> {
        Ok(Box::new(GpuDsSteps::new(self, answers, workers, init)?))
    }
}
