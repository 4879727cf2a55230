//! The tally kernels (`shaders/tally.wgsl`): majority vote over sparse answers on the device.
//!
//! Tasks are processed in chunks that fit the device's buffer limits (usually one chunk). When
//! more than one chunk is needed, the answers are first grouped by task (a counting sort, as the
//! CPU twin does) so each chunk's answers are contiguous.

use super::context::GpuContext;
use super::layout::{self, dispatch_2d, GpuTaskLabel, GpuVote, TallyParams, TALLY_GROUP};
use crate::backend::TaskLabel;
use crate::data::votes::VoteTable;
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct TallyKernel {
    accumulate: wgpu::ComputePipeline,
    pick: wgpu::ComputePipeline,
}

/// Chunk sizes that fit a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TallyLimits {
    pub tasks_per_chunk: usize,
    pub votes_per_submit: usize,
}

impl TallyLimits {
    pub fn of(limits: &wgpu::Limits, classes: usize) -> Result<Self> {
        let binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let classes = classes.max(1) as u64;
        let cell = 4 * classes;
        let out = std::mem::size_of::<GpuTaskLabel>() as u64;
        let vote = std::mem::size_of::<GpuVote>() as u64;
        let dispatch = limits.max_compute_workgroups_per_dimension as u64
            * limits.max_compute_workgroups_per_dimension as u64
            * TALLY_GROUP as u64;
        let index = u32::MAX as u64 / classes;
        let tasks = (binding / cell).min(binding / out).min(dispatch).min(index);
        let votes = (binding / vote).min(dispatch).min(u32::MAX as u64);
        if tasks == 0 || votes == 0 {
            return Err(Error::Gpu(format!(
                "{classes} classes do not fit this device's max_storage_buffer_binding_size \
                 ({binding} bytes) for the tally kernel"
            )));
        }
        Ok(TallyLimits {
            tasks_per_chunk: tasks as usize,
            votes_per_submit: votes as usize,
        })
    }
}

impl TallyKernel {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let [accumulate, pick] = ctx.compile(&layout::TALLY, ["accumulate", "pick"])?;
        Ok(TallyKernel { accumulate, pick })
    }

    /// Majority vote per task on the device; same answer as `cpu::majority`.
    pub fn majority(
        &self,
        ctx: &GpuContext,
        votes: &VoteTable,
        timeout: Duration,
    ) -> Result<Vec<TaskLabel>> {
        let n_tasks = votes.n_tasks();
        if n_tasks == 0 {
            return Ok(Vec::new());
        }
        let classes = votes.n_classes().max(1);
        let limits = TallyLimits::of(&ctx.limits, classes)?;
        self.majority_chunked(ctx, votes, limits, timeout)
    }

    /// As `majority`, with explicit chunk sizes (tests force several chunks with small ones).
    pub fn majority_chunked(
        &self,
        ctx: &GpuContext,
        votes: &VoteTable,
        limits: TallyLimits,
        timeout: Duration,
    ) -> Result<Vec<TaskLabel>> {
        let n_tasks = votes.n_tasks();
        let classes = votes.n_classes().max(1);
        if n_tasks == 0 {
            return Ok(Vec::new());
        }
        if votes.task.len() != votes.label.len() || votes.task.len() != votes.confidence.len() {
            return Err(Error::Invalid(
                "vote table columns have different lengths".into(),
            ));
        }
        let tasks_per_chunk = limits.tasks_per_chunk.clamp(1, n_tasks);
        let grouped = if tasks_per_chunk < n_tasks {
            Some(group_by_task(votes))
        } else {
            None
        };
        let vote_cap = limits.votes_per_submit.clamp(1, votes.len().max(1));
        let bufs = Buffers::new(ctx, self, tasks_per_chunk, classes, vote_cap);
        let mut out = Vec::with_capacity(n_tasks);
        let mut t0 = 0;
        while t0 < n_tasks {
            let t1 = (t0 + tasks_per_chunk).min(n_tasks);
            let indices: Cow<'_, [u32]> = match &grouped {
                Some((start, order)) => Cow::Borrowed(&order[start[t0]..start[t1]]),
                None => Cow::Owned(Vec::new()),
            };
            let all = grouped.is_none();
            let count = if all { votes.len() } else { indices.len() };
            let errors = ctx.health.error_count();
            let mut first = true;
            let mut done = 0;
            let mut index;
            // At least one submit per chunk, even without answers: it clears the histograms.
            loop {
                let m = (count - done).min(vote_cap);
                let batch: Vec<GpuVote> = (done..done + m)
                    .map(|k| {
                        let i = if all { k } else { indices[k] as usize };
                        GpuVote {
                            task: votes.task[i].wrapping_sub(t0 as u32),
                            label: votes.label[i],
                            conf_bits: votes.confidence[i].to_bits(),
                        }
                    })
                    .collect();
                let params = TallyParams {
                    n_votes: m as u32,
                    n_tasks: (t1 - t0) as u32,
                    classes: classes as u32,
                    _pad: 0,
                };
                done += m;
                let last = done >= count;
                index = bufs.submit(ctx, self, &params, &batch, first, last);
                first = false;
                if last {
                    break;
                }
            }
            let chunk = bufs.read(ctx, t1 - t0, index, timeout)?;
            if ctx.health.error_count() != errors {
                return Err(Error::Gpu(format!(
                    "tally on {} failed: {}",
                    ctx.adapter.short(),
                    ctx.health.first_error()
                )));
            }
            out.extend(chunk.into_iter().map(|t| TaskLabel {
                label: t.label,
                confidence: t.confidence,
                answers: t.answers,
            }));
            t0 = t1;
        }
        Ok(out)
    }
}

/// Answers grouped by task: `order[start[t]..start[t + 1]]` are task t's answer indices.
fn group_by_task(votes: &VoteTable) -> (Vec<usize>, Vec<u32>) {
    let t = votes.n_tasks();
    let mut start = vec![0usize; t + 1];
    for &task in &votes.task {
        if (task as usize) < t {
            start[task as usize + 1] += 1;
        }
    }
    for i in 0..t {
        start[i + 1] += start[i];
    }
    let mut order = vec![0u32; start[t]];
    let mut fill = start.clone();
    for (i, &task) in votes.task.iter().enumerate() {
        if (task as usize) < t {
            order[fill[task as usize]] = i as u32;
            fill[task as usize] += 1;
        }
    }
    (start, order)
}

/// Device buffers of one tally run, sized for the largest chunk.
struct Buffers {
    params: wgpu::Buffer,
    votes: wgpu::Buffer,
    counts: wgpu::Buffer,
    sums: wgpu::Buffer,
    out: wgpu::Buffer,
    readback: wgpu::Buffer,
    accumulate_group: wgpu::BindGroup,
    pick_group: wgpu::BindGroup,
    max_dim: u32,
}

impl Buffers {
    fn new(
        ctx: &GpuContext,
        kernel: &TallyKernel,
        tasks: usize,
        classes: usize,
        votes: usize,
    ) -> Self {
        use wgpu::BufferUsages as U;
        let buffer = |label, size: u64, usage| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let params = buffer(
            "tally params",
            std::mem::size_of::<TallyParams>() as u64,
            U::UNIFORM | U::COPY_DST,
        );
        let vote_bytes = (votes * std::mem::size_of::<GpuVote>()) as u64;
        let votes_buf = buffer("votes", vote_bytes, U::STORAGE | U::COPY_DST);
        let cells = (tasks * classes * 4) as u64;
        let counts = buffer("counts", cells, U::STORAGE | U::COPY_DST);
        let sums = buffer("sums", cells, U::STORAGE | U::COPY_DST);
        let out_bytes = (tasks * std::mem::size_of::<GpuTaskLabel>()) as u64;
        let out = buffer("task labels", out_bytes, U::STORAGE | U::COPY_SRC);
        let readback = buffer("task labels readback", out_bytes, U::MAP_READ | U::COPY_DST);
        let accumulate_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("accumulate"),
            layout: &kernel.accumulate.get_bind_group_layout(0),
            entries: &[
                super::classify::bind_entry(0, &params),
                super::classify::bind_entry(1, &votes_buf),
                super::classify::bind_entry(2, &counts),
                super::classify::bind_entry(3, &sums),
            ],
        });
        let pick_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("pick"),
            layout: &kernel.pick.get_bind_group_layout(0),
            entries: &[
                super::classify::bind_entry(0, &params),
                super::classify::bind_entry(2, &counts),
                super::classify::bind_entry(3, &sums),
                super::classify::bind_entry(4, &out),
            ],
        });
        Buffers {
            params,
            votes: votes_buf,
            counts,
            sums,
            out,
            readback,
            accumulate_group,
            pick_group,
            max_dim: ctx.limits.max_compute_workgroups_per_dimension,
        }
    }

    /// One submit: (clear the histograms,) accumulate `votes`, (pick and copy out).
    fn submit(
        &self,
        ctx: &GpuContext,
        kernel: &TallyKernel,
        params: &TallyParams,
        votes: &[GpuVote],
        clear: bool,
        pick: bool,
    ) -> wgpu::SubmissionIndex {
        ctx.queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(params));
        if !votes.is_empty() {
            ctx.queue
                .write_buffer(&self.votes, 0, bytemuck::cast_slice(votes));
        }
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("tally"),
            });
        if clear {
            enc.clear_buffer(&self.counts, 0, None);
            enc.clear_buffer(&self.sums, 0, None);
        }
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tally"),
                timestamp_writes: None,
            });
            if !votes.is_empty() {
                pass.set_pipeline(&kernel.accumulate);
                pass.set_bind_group(0, &self.accumulate_group, &[]);
                let (x, y) = dispatch_2d(params.n_votes.div_ceil(TALLY_GROUP), self.max_dim);
                pass.dispatch_workgroups(x, y, 1);
            }
            if pick {
                pass.set_pipeline(&kernel.pick);
                pass.set_bind_group(0, &self.pick_group, &[]);
                let (x, y) = dispatch_2d(params.n_tasks.div_ceil(TALLY_GROUP), self.max_dim);
                pass.dispatch_workgroups(x, y, 1);
            }
        }
        if pick {
            let bytes = params.n_tasks as u64 * std::mem::size_of::<GpuTaskLabel>() as u64;
            enc.copy_buffer_to_buffer(&self.out, 0, &self.readback, 0, bytes);
        }
        ctx.queue.submit([enc.finish()])
    }

    /// Waits for the last submit and reads `tasks` results.
    fn read(
        &self,
        ctx: &GpuContext,
        tasks: usize,
        index: wgpu::SubmissionIndex,
        timeout: Duration,
    ) -> Result<Vec<GpuTaskLabel>> {
        let bytes = (tasks * std::mem::size_of::<GpuTaskLabel>()) as u64;
        let state = Arc::new(AtomicU8::new(0));
        let s = state.clone();
        self.readback
            .map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
                s.store(if r.is_ok() { 1 } else { 2 }, Ordering::SeqCst)
            });
        let mut tries = 0;
        while state.load(Ordering::SeqCst) == 0 {
            if ctx.health.is_lost() || tries > 3 {
                return Err(Error::Gpu(format!(
                    "tally readback never completed: {}",
                    ctx.health.first_error()
                )));
            }
            ctx.device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(index.clone()),
                    timeout: Some(timeout),
                })
                .map_err(|e| Error::Gpu(format!("waiting for the tally: {e}")))?;
            tries += 1;
        }
        if state.load(Ordering::SeqCst) != 1 {
            return Err(Error::Gpu(format!(
                "tally readback failed: {}",
                ctx.health.first_error()
            )));
        }
        let result = {
            let view = self
                .readback
                .get_mapped_range(0..bytes)
                .map_err(|e| Error::Gpu(format!("cannot read the tally back: {e}")))?;
            let mut words = vec![0u32; tasks * 3];
            super::classify::copy_u32(&view, &mut words);
            words
                .chunks_exact(3)
                .map(|w| GpuTaskLabel {
                    label: w[0],
                    confidence: f32::from_bits(w[1]),
                    answers: w[2],
                })
                .collect()
        };
        self.readback.unmap();
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_shrink_with_classes() {
        let l = wgpu::Limits::default();
        let a = TallyLimits::of(&l, 10).unwrap();
        let b = TallyLimits::of(&l, 1000).unwrap();
        assert!(b.tasks_per_chunk < a.tasks_per_chunk);
    }

    #[test]
    fn grouping_keeps_answer_order_within_a_task() {
        let v = VoteTable {
            task: vec![1, 0, 1, 0],
            worker: vec![0; 4],
            label: vec![0; 4],
            confidence: vec![1.0; 4],
            tasks: vec!["a".into(), "b".into()],
            workers: vec!["w".into()],
            classes: vec!["x".into()],
        };
        let (start, order) = group_by_task(&v);
        assert_eq!(start, vec![0, 2, 4]);
        assert_eq!(order, vec![1, 3, 0, 2]);
    }
}
