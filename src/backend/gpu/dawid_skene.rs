//! Dawid-Skene EM steps on the device (`shaders/dawid_skene.wgsl`): the GPU twins of
//! [`crate::backend::cpu::dawid_skene`]'s `e_step`, `m_step` and `class_totals`. The EM driver
//! and the estimate are `aggregate::dawid_skene`'s.
//!
//! - **Resident**: a [`DsSession`] uploads the answers once (grouped by task for the E-step and by
//!   row `worker * C + label` for the M-step, as CSR arrays); they stay on the device for every
//!   iteration. So do the posteriors, until [`DsSession::posteriors`] reads them back at the end.
//! - **M-step shape**: one invocation per count `(w * C + l) * C + k`, summing in a register over
//!   the answers of that row in task order: the order in which the CPU twin's by-worker `m_step`
//!   adds into that count, with no read-modify-write of memory and `W*C*C` invocations.
//! - **Per iteration** ([`DsSession::e_m_step`]): the parameters go up (`C + W*C*C` floats), one
//!   submit runs the E-step, the M-step and the block sums, and the confusion counts
//!   (`W*C*C` floats), the per-block class sums (`C` floats per [`TOTALS_BLOCK`] tasks) and the
//!   per-task log-likelihood terms (`T` floats) come back; the host adds the blocks and the
//!   terms in f64 (as the CPU twin adds its terms), and the driver runs the estimate.
//! - **Precision**: the E-step uses the CPU twin's polynomial `exp`/`ln` and its summation order,
//!   so posteriors agree with the CPU's within a few ulp (tested to 1e-5; the compiler may fuse
//!   multiply-adds); the counts are summed in the same order as the CPU's by-worker `m_step`.
//! - **Limits**: every buffer must fit `max_storage_buffer_binding_size`; a problem that does not
//!   is refused with an [`Error::Gpu`] that names the buffer and the limit ([`DsShape::check`]).
//! - **Fallback**: [`super::GpuDsSteps`] runs the steps for the EM driver; when the device fails
//!   (or the problem does not fit), it goes on with the CPU twins (saying so on stderr) or fails,
//!   per [`super::OnDeviceError`].

use super::context::GpuContext;
use super::layout::{self, dispatch_2d};
use crate::backend::answers::{TaskAnswers, NO_CLAMP};
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wgpu::util::DeviceExt;

// The constants and the parameter block shared with shaders/dawid_skene.wgsl live with the
// other shared layouts, the one source of both sides.
pub use super::layout::{DsParams, DS_GROUP, TOTALS_BLOCK};

/// The size of a problem, for the device buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DsShape {
    pub tasks: usize,
    pub workers: usize,
    pub classes: usize,
    pub answers: usize,
}

impl DsShape {
    pub fn of(a: &TaskAnswers, workers: usize) -> Self {
        DsShape {
            tasks: a.tasks(),
            workers,
            classes: a.classes,
            answers: a.row.len(),
        }
    }

    fn blocks(&self) -> usize {
        self.tasks.div_ceil(TOTALS_BLOCK as usize).max(1)
    }

    /// Every device buffer with its size in bytes.
    pub fn buffers(&self) -> [(&'static str, u64); 7] {
        let (t, w, c, n) = (
            self.tasks as u64,
            self.workers as u64,
            self.classes as u64,
            self.answers as u64,
        );
        [
            ("task offsets and gold clamps", 4 * (2 * t + 1)),
            ("answers by task", 4 * n.max(1)),
            ("parameters", 4 * (c + w * c * c)),
            ("posteriors", 4 * (t * c + t).max(1)),
            ("answers by worker and label", 4 * (w * c + 1 + n)),
            ("confusion counts", 4 * (w * c * c).max(1)),
            ("block sums", 4 * self.blocks() as u64 * c),
        ]
    }

    /// Refuses a problem whose buffers or indices do not fit the device (`limits`), naming the
    /// buffer and the limit.
    pub fn check(&self, limits: &wgpu::Limits, adapter: &str) -> Result<()> {
        if self.classes == 0 || self.tasks == 0 {
            return Err(Error::Invalid(
                "Dawid-Skene needs at least one task and one class".into(),
            ));
        }
        let max = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        for (name, bytes) in self.buffers() {
            if bytes > max {
                return Err(Error::Gpu(format!(
                    "Dawid-Skene on {adapter}: the {name} need {bytes} bytes, more than the \
                     device's max_storage_buffer_binding_size ({max} bytes); {} tasks x {} \
                     classes, {} workers, {} answers is too large for this device \
                     (use --backend cpu)",
                    self.tasks, self.classes, self.workers, self.answers
                )));
            }
        }
        // Every index the kernels compute stays below 2^32 (buffers of at most 4 GiB of
        // 4-byte words guarantee it, but say so plainly if a device ever offers more).
        let (t, w, c) = (self.tasks as u64, self.workers as u64, self.classes as u64);
        if t * c + t >= u32::MAX as u64 || c + w * c * c >= u32::MAX as u64 {
            return Err(Error::Gpu(format!(
                "Dawid-Skene on {adapter}: {t} tasks x {c} classes with {w} workers overflow \
                 the kernels' 32-bit indices (use --backend cpu)"
            )));
        }
        Ok(())
    }
}

thread_local! {
    static SESSIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Sessions opened on the device by this thread so far: tests use it to check that a fit really
/// ran on the device.
#[doc(hidden)]
pub fn sessions_on_this_thread() -> u64 {
    SESSIONS.with(|s| s.get())
}

/// The compiled pipelines.
pub struct DsKernel {
    e_step: wgpu::ComputePipeline,
    m_step: wgpu::ComputePipeline,
    totals: wgpu::ComputePipeline,
}

impl DsKernel {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let [e_step, m_step, totals] =
            ctx.compile(&layout::DAWID_SKENE, ["e_step", "m_step", "totals"])?;
        Ok(DsKernel {
            e_step,
            m_step,
            totals,
        })
    }
}

/// The M-step's grouping: `[row_start (rows + 1) | entries]`, where the answers of row
/// `r = worker * C + label` are entries `row_start[r]..row_start[r + 1]`, each `task * C`, in
/// task order (a stable counting sort of the task-grouped answers by row).
fn by_row(a: TaskAnswers, rows: usize) -> Vec<u32> {
    let c = a.classes as u32;
    let n = a.row.len();
    let mut info = vec![0u32; rows + 1 + n];
    for &r in a.row {
        info[r as usize + 1] += 1;
    }
    for r in 0..rows {
        info[r + 1] += info[r];
    }
    let (start, entries) = info.split_at_mut(rows + 1);
    let mut fill = start[..rows].to_vec();
    for t in 0..a.tasks() {
        for &r in &a.row[a.start[t] as usize..a.start[t + 1] as usize] {
            let f = &mut fill[r as usize];
            entries[*f as usize] = t as u32 * c;
            *f += 1;
        }
    }
    info
}

fn entry(binding: u32, buf: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buf.as_entire_binding(),
    }
}

/// What one submit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// E-step and block sums (log-likelihood, totals).
    E,
    /// M-step and block sums, from the current posteriors.
    M,
    /// E-step, M-step, block sums.
    EM,
}

/// One problem's buffers on the device: the answers, resident across iterations, and the
/// posteriors, which stay there until read.
pub struct DsSession<'c> {
    ctx: &'c GpuContext,
    kernel: DsKernel,
    shape: DsShape,
    params: DsParams,
    model: wgpu::Buffer,
    post: wgpu::Buffer,
    counts: wgpu::Buffer,
    partials: wgpu::Buffer,
    /// Counts then block sums, mapped for reading.
    readback: wgpu::Buffer,
    e_group: wgpu::BindGroup,
    m_group: wgpu::BindGroup,
    totals_group: wgpu::BindGroup,
    timeout: Duration,
    // Kept alive for the bind groups.
    _resident: [wgpu::Buffer; 4],
}

impl<'c> DsSession<'c> {
    /// Compiles the kernels and uploads the answers (`a`, answers of `workers` workers).
    /// Refuses (`Error::Gpu`) a problem that does not fit the device.
    pub fn new(
        ctx: &'c GpuContext,
        a: TaskAnswers,
        workers: usize,
        timeout: Duration,
    ) -> Result<Self> {
        let shape = DsShape::of(&a, workers);
        shape.check(&ctx.limits, &ctx.adapter.short())?;
        let (t, c) = (shape.tasks, shape.classes);
        if a.clamp.len() != t {
            return Err(Error::Invalid(format!(
                "{} gold clamps for {t} tasks",
                a.clamp.len()
            )));
        }
        if a.clamp.iter().any(|&g| g != NO_CLAMP && g as usize >= c) {
            return Err(Error::Invalid(
                "a gold class is outside the votes' classes".into(),
            ));
        }
        if a.row.iter().any(|&r| r as usize >= workers * c) {
            return Err(Error::Invalid(
                "an answer's worker or label is out of range".into(),
            ));
        }
        let kernel = DsKernel::new(ctx)?;
        let errors = ctx.health.error_count();
        let params = DsParams {
            tasks: t as u32,
            classes: c as u32,
            workers: workers as u32,
            clamp_offset: t as u32 + 1,
            ll_offset: (t * c) as u32,
            entry_offset: (workers * c) as u32 + 1,
            blocks: shape.blocks() as u32,
            _pad: 0,
        };
        use wgpu::BufferUsages as U;
        let dev = &ctx.device;
        let init = |label: &str, words: &[u32], usage: U| {
            let pad = [0u32];
            let words = if words.is_empty() { &pad[..] } else { words };
            dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(words),
                usage,
            })
        };
        let empty = |label: &str, bytes: u64, usage: U| {
            dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(4),
                usage,
                mapped_at_creation: false,
            })
        };
        let params_buf = init("ds params", bytemuck::cast_slice(&[params]), U::UNIFORM);
        let mut info = Vec::with_capacity(2 * t + 1);
        info.extend_from_slice(&a.start[..t + 1]);
        info.extend_from_slice(a.clamp);
        let task_info = init("ds task offsets and clamps", &info, U::STORAGE);
        drop(info);
        let task_row = init("ds answers by task", a.row, U::STORAGE);
        let rows = by_row(a, workers * c);
        let row_info = init("ds answers by worker and label", &rows, U::STORAGE);
        drop(rows);
        let sizes = shape.buffers();
        let model = empty("ds parameters", sizes[2].1, U::STORAGE | U::COPY_DST);
        let post = empty(
            "ds posteriors",
            sizes[3].1,
            U::STORAGE | U::COPY_DST | U::COPY_SRC,
        );
        let counts = empty("ds counts", sizes[5].1, U::STORAGE | U::COPY_SRC);
        let partials = empty("ds block sums", sizes[6].1, U::STORAGE | U::COPY_SRC);
        let readback = empty(
            "ds counts readback",
            counts.size() + partials.size() + 4 * t as u64,
            U::MAP_READ | U::COPY_DST,
        );
        let group =
            |label: &str, pipeline: &wgpu::ComputePipeline, entries: &[(u32, &wgpu::Buffer)]| {
                let entries: Vec<wgpu::BindGroupEntry> =
                    entries.iter().map(|&(b, buf)| entry(b, buf)).collect();
                dev.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(label),
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &entries,
                })
            };
        let e_group = group(
            "ds e_step",
            &kernel.e_step,
            &[
                (0, &params_buf),
                (1, &task_info),
                (2, &task_row),
                (3, &model),
                (4, &post),
            ],
        );
        let m_group = group(
            "ds m_step",
            &kernel.m_step,
            &[(0, &params_buf), (4, &post), (5, &row_info), (6, &counts)],
        );
        let totals_group = group(
            "ds totals",
            &kernel.totals,
            &[(0, &params_buf), (4, &post), (7, &partials)],
        );
        if ctx.health.error_count() != errors {
            return Err(Error::Gpu(format!(
                "Dawid-Skene buffers on {}: {}",
                ctx.adapter.short(),
                ctx.health.first_error()
            )));
        }
        SESSIONS.with(|s| s.set(s.get() + 1));
        Ok(DsSession {
            ctx,
            kernel,
            shape,
            params,
            model,
            post,
            counts,
            partials,
            readback,
            e_group,
            m_group,
            totals_group,
            timeout,
            _resident: [params_buf, task_info, task_row, row_info],
        })
    }

    pub fn shape(&self) -> DsShape {
        self.shape
    }

    /// Replaces the posteriors on the device (`tasks * classes`).
    pub fn set_posteriors(&self, post: &[f32]) -> Result<()> {
        let (t, c) = (self.shape.tasks, self.shape.classes);
        if post.len() != t * c {
            return Err(Error::Invalid(format!(
                "{} posteriors for {t} tasks x {c} classes",
                post.len()
            )));
        }
        self.ctx
            .queue
            .write_buffer(&self.post, 0, bytemuck::cast_slice(post));
        Ok(())
    }

    fn set_model(&self, log_prior: &[f32], log_conf: &[f32]) -> Result<()> {
        let (w, c) = (self.shape.workers, self.shape.classes);
        if log_prior.len() != c || log_conf.len() != w * c * c {
            return Err(Error::Invalid(format!(
                "Dawid-Skene parameters of {} + {} values for {w} workers x {c} classes",
                log_prior.len(),
                log_conf.len()
            )));
        }
        let q = &self.ctx.queue;
        q.write_buffer(&self.model, 0, bytemuck::cast_slice(log_prior));
        q.write_buffer(&self.model, 4 * c as u64, bytemuck::cast_slice(log_conf));
        Ok(())
    }

    /// Runs `pass`, waits, and reads the block sums (and the counts after an M-step) back.
    /// Returns the log-likelihood.
    fn run(
        &self,
        pass: Pass,
        counts: Option<&mut [f32]>,
        totals: Option<&mut [f64]>,
    ) -> Result<f64> {
        let (ctx, k, p) = (self.ctx, &self.kernel, &self.params);
        let errors = ctx.health.error_count();
        if ctx.health.is_lost() {
            return Err(self.failed("the device was lost earlier"));
        }
        let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
        let dispatch = |pass: &mut wgpu::ComputePass, invocations: u32| {
            let (x, y) = dispatch_2d(invocations.div_ceil(DS_GROUP), max_dim);
            pass.dispatch_workgroups(x, y, 1);
        };
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("dawid-skene"),
            });
        {
            let mut cp = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("dawid-skene"),
                timestamp_writes: None,
            });
            if pass != Pass::M {
                cp.set_pipeline(&k.e_step);
                cp.set_bind_group(0, &self.e_group, &[]);
                dispatch(&mut cp, p.tasks);
            }
            if pass != Pass::E {
                cp.set_pipeline(&k.m_step);
                cp.set_bind_group(0, &self.m_group, &[]);
                dispatch(&mut cp, p.workers * p.classes * p.classes);
            }
            cp.set_pipeline(&k.totals);
            cp.set_bind_group(0, &self.totals_group, &[]);
            dispatch(&mut cp, p.blocks * p.classes);
        }
        let counts_bytes = if pass == Pass::E {
            0
        } else {
            self.counts.size()
        };
        if counts_bytes > 0 {
            enc.copy_buffer_to_buffer(&self.counts, 0, &self.readback, 0, counts_bytes);
        }
        let sums = self.partials.size();
        enc.copy_buffer_to_buffer(&self.partials, 0, &self.readback, counts_bytes, sums);
        let ll_bytes = 4 * p.tasks as u64;
        enc.copy_buffer_to_buffer(
            &self.post,
            4 * p.ll_offset as u64,
            &self.readback,
            counts_bytes + sums,
            ll_bytes,
        );
        let index = ctx.queue.submit([enc.finish()]);
        let words = self.read(&self.readback, counts_bytes + sums + ll_bytes, index)?;
        if ctx.health.error_count() != errors {
            return Err(self.failed(&ctx.health.first_error()));
        }
        let (cw, rest) = words.split_at((counts_bytes / 4) as usize);
        let (sw, lw) = rest.split_at((sums / 4) as usize);
        if let Some(counts) = counts {
            let n = counts.len();
            counts.copy_from_slice(&cw[..n]);
        }
        // Block sums in f64, as the CPU adds its f32 runs.
        if let Some(totals) = totals {
            let c = self.shape.classes;
            totals.fill(0.0);
            for b in sw.chunks_exact(c).take(p.blocks as usize) {
                for (s, &v) in totals.iter_mut().zip(b) {
                    *s += v as f64;
                }
            }
        }
        // The per-task terms in f64, as the CPU twin adds them.
        Ok(lw.iter().map(|&v| v as f64).sum())
    }

    fn failed(&self, why: &str) -> Error {
        Error::Gpu(format!(
            "Dawid-Skene on {} failed: {why}",
            self.ctx.adapter.short()
        ))
    }

    /// Waits for submission `index` and reads `bytes` of `buf` as f32 words.
    fn read(
        &self,
        buf: &wgpu::Buffer,
        bytes: u64,
        index: wgpu::SubmissionIndex,
    ) -> Result<Vec<f32>> {
        let ctx = self.ctx;
        let state = Arc::new(AtomicU8::new(0));
        let s = state.clone();
        buf.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            s.store(if r.is_ok() { 1 } else { 2 }, Ordering::SeqCst)
        });
        let mut tries = 0;
        while state.load(Ordering::SeqCst) == 0 {
            if ctx.health.is_lost() || tries > 3 {
                return Err(self.failed(&format!(
                    "the readback never completed ({})",
                    ctx.health.first_error()
                )));
            }
            ctx.device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(index.clone()),
                    timeout: Some(self.timeout),
                })
                .map_err(|e| self.failed(&format!("waiting for the device: {e}")))?;
            tries += 1;
        }
        if state.load(Ordering::SeqCst) != 1 {
            return Err(self.failed(&format!(
                "the readback failed ({})",
                ctx.health.first_error()
            )));
        }
        let words = {
            let view = buf
                .get_mapped_range(0..bytes)
                .map_err(|e| self.failed(&format!("cannot read back: {e}")))?;
            bytemuck::pod_collect_to_vec::<u8, f32>(&view)
        };
        buf.unmap();
        Ok(words)
    }

    /// The M-step's sums from the posteriors on the device: confusion counts (`W*C*C`) and class
    /// totals (`C`). Overwrites both.
    pub fn m_sums(&self, counts: &mut [f32], totals: &mut [f64]) -> Result<()> {
        self.check_sums(counts, totals)?;
        self.run(Pass::M, Some(counts), Some(totals)).map(|_| ())
    }

    /// The E-step alone: new posteriors on the device; returns the log-likelihood.
    pub fn e_step(&self, log_prior: &[f32], log_conf: &[f32]) -> Result<f64> {
        self.set_model(log_prior, log_conf)?;
        self.run(Pass::E, None, None)
    }

    /// The E-step, then the M-step's sums from its posteriors (one submit); returns the
    /// log-likelihood.
    pub fn e_m_step(
        &self,
        log_prior: &[f32],
        log_conf: &[f32],
        counts: &mut [f32],
        totals: &mut [f64],
    ) -> Result<f64> {
        self.check_sums(counts, totals)?;
        self.set_model(log_prior, log_conf)?;
        self.run(Pass::EM, Some(counts), Some(totals))
    }

    fn check_sums(&self, counts: &[f32], totals: &[f64]) -> Result<()> {
        let (w, c) = (self.shape.workers, self.shape.classes);
        if counts.len() != w * c * c || totals.len() != c {
            return Err(Error::Invalid(format!(
                "Dawid-Skene sums of {} + {} values for {w} workers x {c} classes",
                counts.len(),
                totals.len()
            )));
        }
        Ok(())
    }

    /// Reads the posteriors back (`tasks * classes`).
    pub fn posteriors(&self) -> Result<Vec<f32>> {
        let ctx = self.ctx;
        let errors = ctx.health.error_count();
        let bytes = 4 * (self.shape.tasks * self.shape.classes) as u64;
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ds posteriors readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("ds posteriors"),
            });
        enc.copy_buffer_to_buffer(&self.post, 0, &staging, 0, bytes);
        let index = ctx.queue.submit([enc.finish()]);
        let post = self.read(&staging, bytes, index)?;
        if ctx.health.error_count() != errors {
            return Err(self.failed(&ctx.health.first_error()));
        }
        Ok(post)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_too_large_for_the_device_are_refused_by_name() {
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: 1 << 20,
            ..wgpu::Limits::default()
        };
        let small = DsShape {
            tasks: 1000,
            workers: 10,
            classes: 4,
            answers: 5000,
        };
        small.check(&limits, "test").unwrap();
        let big = DsShape {
            tasks: 100_000,
            ..small
        };
        match big.check(&limits, "test") {
            Err(Error::Gpu(m)) => {
                assert!(m.contains("posteriors") && m.contains("max_storage_buffer_binding_size"))
            }
            other => panic!("{other:?}"),
        }
    }
}
