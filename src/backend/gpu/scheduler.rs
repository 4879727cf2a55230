//! The pipelined scheduler: a ring of K slots, each owning its input, output and readback
//! buffers, so that while batch i computes, batch i+1 is uploaded and batch i-1 is read back.
//!
//! Threads: a packer thread claims batches from the job's queue and packs them (u8, f16 or f32
//! rows into u32 words) one ahead; the device loop (the calling thread) is the only one that submits,
//! polls and maps: it waits on one submission index at a time, never a global wait from
//! several threads. Results land in the output at their batch's offset, so they come out in
//! item order whatever order batches finish in. In hybrid mode CPU threads claim batches from
//! the same queue.
//!
//! On a software adapter (lavapipe) the ring can hide little: the "device" is llvmpipe's thread
//! pool on the same cores as the host stages, and lavapipe runs one submission at a time on its
//! queue thread (compute dispatches run to completion inside it). wgpu-hal chains every submit
//! to the previous one with a binary semaphore, and Mesa's threaded submit waits for that
//! semaphore's signal to be pending, which lavapipe makes true only once the previous batch has
//! finished: `queue.submit` of batch i + 1 blocks until batch i is done (the `dispatch` stage
//! in the stats), so at most one batch is ever queued in the driver. What the ring can overlap
//! there is the host work between batches; direct upload (`Slot::direct`) makes that small.
//!
//! A device error (validation, out of memory, lost device, failed map, timeout) never yields
//! wrong or missing rows: the batch it touched and every later one are classified on the CPU
//! (said on stderr) or, with `OnDeviceError::Fail`, the run fails with the error.

use super::classify::{pack_items, ClassifyKernel, ModelBuffers, ModelShape, Slot};
use super::context::GpuContext;
use super::{GpuOptions, OnDeviceError};
use crate::backend::cpu::classify_into;
use crate::backend::{Items, RunStats};
use crate::error::{Error, Result};
use crate::model::Ensemble;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

type OutSlices<'a> = (&'a mut [u32], &'a mut [f32]);

/// One classification job: the items, cut into batches that GPU and CPU workers claim from one
/// queue, and the output cut into the matching pieces.
pub struct Job<'a> {
    pub model: &'a Ensemble,
    pub items: Items<'a>,
    pub features: usize,
    pub n: usize,
    pub batch: usize,
    pub n_batches: usize,
    next: AtomicUsize,
    outputs: Vec<Mutex<Option<OutSlices<'a>>>>,
}

impl<'a> Job<'a> {
    /// `labels` and `confidence` hold `n * workers` entries each; `batch >= 1`.
    pub fn new(
        model: &'a Ensemble,
        items: Items<'a>,
        batch: usize,
        labels: &'a mut [u32],
        confidence: &'a mut [f32],
    ) -> Self {
        let features = model.features().max(1);
        let n = items.len() / features;
        let batch = batch.max(1);
        let per = batch * model.workers.max(1);
        let outputs = labels
            .chunks_mut(per)
            .zip(confidence.chunks_mut(per))
            .map(|(l, c)| Mutex::new(Some((l, c))))
            .collect();
        Job {
            model,
            items,
            features,
            n,
            batch,
            n_batches: n.div_ceil(batch),
            next: AtomicUsize::new(0),
            outputs,
        }
    }

    /// Takes the next batch from the queue.
    pub fn claim(&self) -> Option<usize> {
        let b = self.next.fetch_add(1, Ordering::SeqCst);
        (b < self.n_batches).then_some(b)
    }

    /// The items of batch `b`.
    pub fn range(&self, b: usize) -> Range<usize> {
        b * self.batch..((b + 1) * self.batch).min(self.n)
    }

    pub fn items_of(&self, b: usize) -> Items<'a> {
        let r = self.range(b);
        self.items
            .slice(r.start * self.features..r.end * self.features)
    }

    /// The output pieces of batch `b`; each batch's output is taken exactly once.
    fn take(&self, b: usize) -> Result<OutSlices<'a>> {
        self.outputs
            .get(b)
            .and_then(|m| m.lock().unwrap_or_else(|e| e.into_inner()).take())
            .ok_or_else(|| Error::Gpu(format!("internal: batch {b} was claimed twice")))
    }

    /// Classifies batch `b` on the CPU (rayon), exactly as the CPU backend would.
    pub fn run_on_cpu(&self, b: usize, stats: &mut RunStats) -> Result<()> {
        let (labels, conf) = self.take(b)?;
        let t = Instant::now();
        cpu_classify(self.model, self.items_of(b), labels, conf);
        stats.cpu += t.elapsed();
        stats.cpu_items += self.range(b).len();
        Ok(())
    }
}

/// The CPU twin over one batch: the same blocks of BLOCK_ITEMS items as `CpuBackend::classify`
/// (batches are whole blocks unless `--batch` says otherwise).
pub fn cpu_classify(model: &Ensemble, items: Items<'_>, labels: &mut [u32], conf: &mut [f32]) {
    classify_into(model, items, labels, conf)
}

/// What stays on the device between runs: the model and the slot ring.
pub struct Resident {
    model: Ensemble,
    buffers: ModelBuffers,
    slots: Vec<Slot>,
}

/// Reuses `cached` when it holds the same model for the same logits kernel and item type and
/// slots of the same kind and number, big enough; uploads what changed.
pub fn prepare(
    ctx: &GpuContext,
    kernel: &ClassifyKernel,
    model: &Ensemble,
    per_word: usize,
    capacity: usize,
    opts: &GpuOptions,
    cached: Option<Resident>,
) -> Result<Resident> {
    let logits = opts.kernel.resolve(&ctx.adapter);
    let slots = opts.slots;
    let direct = ctx.direct_upload && opts.direct_upload;
    let mut res = match cached {
        Some(r)
            if r.model == *model
                && r.buffers.kernel == logits
                && r.buffers.shape.per_word == per_word =>
        {
            r
        }
        _ => {
            let errors = ctx.health.error_count();
            let buffers = ModelBuffers::upload(ctx, model, logits, per_word)?;
            if ctx.health.error_count() != errors {
                return Err(Error::Gpu(format!(
                    "uploading the model failed: {}",
                    ctx.health.first_error()
                )));
            }
            Resident {
                model: model.clone(),
                buffers,
                slots: Vec::new(),
            }
        }
    };
    let fits = res.slots.len() == slots
        && res
            .slots
            .iter()
            .all(|s| s.capacity >= capacity && s.direct == direct);
    if !fits {
        res.slots.clear();
        let errors = ctx.health.error_count();
        res.slots = (0..slots)
            .map(|_| Slot::new(ctx, kernel, &res.buffers, capacity, direct))
            .collect();
        if ctx.health.error_count() != errors {
            return Err(Error::Gpu(format!(
                "allocating {slots} slots of {capacity} items failed: {}",
                ctx.health.first_error()
            )));
        }
    }
    Ok(res)
}

/// Set from the readback's map callback (which fires inside `device.poll`).
#[derive(Default)]
struct Signal {
    /// 0: pending, 1: mapped, 2: map failed.
    state: AtomicU8,
    at: OnceLock<Instant>,
}

impl Signal {
    fn set(&self, ok: bool) {
        let _ = self.at.set(Instant::now());
        self.state.store(if ok { 1 } else { 2 }, Ordering::SeqCst);
    }

    fn state(&self) -> u8 {
        self.state.load(Ordering::SeqCst)
    }
}

struct Pending {
    slot: usize,
    batch: usize,
    index: wgpu::SubmissionIndex,
    signal: Arc<Signal>,
    /// Direct upload: the items buffer mapped for writing again after the batch.
    items_signal: Option<Arc<Signal>>,
    submitted: Instant,
    errors_before: u64,
}

/// Runs the device loop over every batch the packer claims from `job`. Returns whether the
/// device is still trusted (false after a device error: the caller drops the resident buffers).
pub fn run_gpu(
    ctx: &GpuContext,
    kernel: &ClassifyKernel,
    res: &Resident,
    job: &Job<'_>,
    opts: &GpuOptions,
    stats: &mut RunStats,
) -> Result<bool> {
    std::thread::scope(|s| {
        // One packed batch waits in the channel; the packer holds at most one more. Claiming
        // only what the device is about to take keeps hybrid runs balanced at the end.
        let (tx, rx) = mpsc::sync_channel::<(usize, Cow<'_, [u8]>)>(1);
        let packer = s.spawn(move || {
            let mut spent = Duration::ZERO;
            while let Some(b) = job.claim() {
                let t = Instant::now();
                let packed = pack_items(job.items_of(b), job.features);
                spent += t.elapsed();
                if tx.send((b, packed)).is_err() {
                    break;
                }
            }
            spent
        });
        let mut runner = Runner {
            ctx,
            kernel,
            res,
            job,
            opts,
            stats,
            shape: res.buffers.shape,
            free: (0..res.slots.len()).rev().collect(),
            pending: VecDeque::new(),
            failed: None,
            last_end: None,
        };
        let result = runner.run(rx);
        let healthy = runner.failed.is_none();
        let pack = packer
            .join()
            .map_err(|_| Error::Gpu("the packing thread panicked".into()))?;
        runner.stats.pack += pack;
        result.map(|()| healthy)
    })
}

struct Runner<'r, 'a> {
    ctx: &'r GpuContext,
    kernel: &'r ClassifyKernel,
    res: &'r Resident,
    job: &'r Job<'a>,
    opts: &'r GpuOptions,
    stats: &'r mut RunStats,
    shape: ModelShape,
    free: Vec<usize>,
    pending: VecDeque<Pending>,
    /// Set after a device error: every later batch goes to the CPU.
    failed: Option<String>,
    last_end: Option<Instant>,
}

impl Runner<'_, '_> {
    fn run(&mut self, rx: mpsc::Receiver<(usize, Cow<'_, [u8]>)>) -> Result<()> {
        loop {
            // Read back whatever has finished, then make sure a slot is free before taking the
            // next batch, so a claimed batch never waits behind a full ring.
            while self.pending.front().is_some_and(|p| p.signal.state() != 0) {
                self.finish_front()?;
            }
            if self.free.is_empty() && self.failed.is_none() {
                self.finish_front()?;
            }
            let Ok((b, packed)) = rx.recv() else { break };
            if self.failed.is_some() {
                self.job.run_on_cpu(b, self.stats)?;
            } else {
                self.submit(b, &packed)?;
            }
        }
        while !self.pending.is_empty() {
            self.finish_front()?;
        }
        Ok(())
    }

    fn submit(&mut self, b: usize, packed: &[u8]) -> Result<()> {
        let slot_index = self
            .free
            .pop()
            .ok_or_else(|| Error::Gpu("internal: no free slot".into()))?;
        let slot = &self.res.slots[slot_index];
        let n = self.job.range(b).len();
        let errors_before = self.ctx.health.error_count();

        let t = Instant::now();
        let uploaded = slot.upload(self.ctx, &self.shape, n, packed);
        self.stats.upload += t.elapsed();
        if let Err(e) = uploaded {
            // The slot's items buffer is in an unknown state: it stays out of the ring.
            self.fail(b, e.to_string())?;
            return self.job.run_on_cpu(b, self.stats);
        }

        let t = Instant::now();
        let enc = slot.encode(self.ctx, self.kernel, &self.shape, n);
        let signal = Arc::new(Signal::default());
        let s = signal.clone();
        enc.map_buffer_on_submit(&slot.readback, wgpu::MapMode::Read, .., move |r| {
            s.set(r.is_ok())
        });
        let items_signal = slot.direct.then(|| {
            let signal = Arc::new(Signal::default());
            let s = signal.clone();
            enc.map_buffer_on_submit(&slot.items, wgpu::MapMode::Write, .., move |r| {
                s.set(r.is_ok())
            });
            signal
        });
        let cmd = enc.finish();
        // On backends that execute in submit (GL), the device is busy from here.
        let submitted = Instant::now();
        let index = self.ctx.queue.submit([cmd]);
        // Non-blocking: lets wgpu retire finished work and fire map callbacks.
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
        self.stats.dispatch += t.elapsed();

        self.pending.push_back(Pending {
            slot: slot_index,
            batch: b,
            index,
            signal,
            items_signal,
            submitted,
            errors_before,
        });
        Ok(())
    }

    /// Waits for the oldest batch in flight and copies its results out (or redoes it on the
    /// CPU after a device error).
    fn finish_front(&mut self) -> Result<()> {
        let Some(p) = self.pending.pop_front() else {
            return Ok(());
        };
        if self.failed.is_none() {
            if let Err(reason) = self.wait(&p) {
                self.fail(p.batch, reason)?;
            }
        }
        let (labels, conf) = self.job.take(p.batch)?;
        if self.failed.is_none() {
            let slot = &self.res.slots[p.slot];
            let t = Instant::now();
            let read = slot.read(&self.shape, labels, conf);
            slot.readback.unmap();
            self.stats.readback += t.elapsed();
            match read {
                Ok(()) => {
                    self.stats.gpu_items += self.job.range(p.batch).len();
                    self.free.push(p.slot);
                    return Ok(());
                }
                Err(e) => self.fail(p.batch, e.to_string())?,
            }
        }
        let t = Instant::now();
        cpu_classify(self.job.model, self.job.items_of(p.batch), labels, conf);
        self.stats.cpu += t.elapsed();
        self.stats.cpu_items += self.job.range(p.batch).len();
        Ok(())
    }

    /// Blocks until batch `p` is mapped for reading, and checks nothing went wrong meanwhile.
    fn wait(&mut self, p: &Pending) -> std::result::Result<(), String> {
        let t = Instant::now();
        let mut polls = 0;
        let items_pending = || p.items_signal.as_ref().is_some_and(|s| s.state() == 0);
        while p.signal.state() == 0 || items_pending() {
            if self.ctx.health.is_lost() {
                return Err(self.ctx.health.first_error());
            }
            if polls > 3 {
                return Err("the results of a finished batch were never mapped".into());
            }
            self.ctx
                .device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(p.index.clone()),
                    timeout: Some(self.opts.timeout),
                })
                .map_err(|e| format!("waiting for the device: {e}"))?;
            polls += 1;
        }
        self.stats.wait += t.elapsed();
        if p.signal.state() != 1 {
            return Err(format!(
                "mapping the results failed: {}",
                self.ctx.health.first_error()
            ));
        }
        if p.items_signal.as_ref().is_some_and(|s| s.state() != 1) {
            return Err(format!(
                "mapping the items buffer for the next batch failed: {}",
                self.ctx.health.first_error()
            ));
        }
        if self.ctx.health.error_count() != p.errors_before {
            return Err(self.ctx.health.first_error());
        }
        #[cfg(feature = "test-hooks")]
        if self.opts.inject_fault_at_batch == Some(p.batch) {
            return Err("injected device fault (test)".into());
        }
        let end = p.signal.at.get().copied().unwrap_or_else(Instant::now);
        let start = match self.last_end {
            Some(prev) if prev > p.submitted => prev,
            _ => p.submitted,
        };
        self.stats.device_busy += end.saturating_duration_since(start);
        self.last_end = Some(end);
        Ok(())
    }

    /// Records a device error at batch `b`: fail the run, or go on on the CPU.
    fn fail(&mut self, b: usize, reason: String) -> Result<()> {
        let range = self.job.range(b);
        let what = format!(
            "device error on {} at batch {} of {} (items {}..{}): {reason}",
            self.ctx.adapter.short(),
            b + 1,
            self.job.n_batches,
            range.start,
            range.end
        );
        match self.opts.on_device_error {
            OnDeviceError::Fail => Err(Error::Gpu(what)),
            OnDeviceError::CpuFallback => {
                eprintln!(
                    "microtask: gpu: {what}; finishing this batch and the rest on the CPU (rayon)"
                );
                self.stats.fallback = Some(what.clone());
                self.failed = Some(what);
                Ok(())
            }
        }
    }
}
