//! One slot of the scheduler ring: the buffers of one batch in flight (items, logits, labels,
//! confidences, readback), its bind groups, and how a batch is uploaded, encoded and read back.

use super::classify::{ClassifyKernel, LogitsKernel, ModelBuffers};
use super::context::GpuContext;
use super::layout::{
    dispatch_2d, ClassifyParams, REG_GROUP, REG_ITEMS, REG_ROWS, SOFTMAX_GROUP, TILE_ITEMS,
    TILE_ROWS,
};
use super::shape::ModelShape;
use crate::error::{Error, Result};

/// One slot of the scheduler ring: every buffer one batch in flight needs.
pub struct Slot {
    pub capacity: usize,
    /// Items go straight into the mapped `items` buffer (`GpuContext::direct_upload`); the
    /// scheduler maps it again for writing when the batch that read it completes.
    pub direct: bool,
    /// The logits kernel of the model buffers the slot was built for.
    kernel: LogitsKernel,
    params: wgpu::Buffer,
    pub items: wgpu::Buffer,
    labels: wgpu::Buffer,
    confidence: wgpu::Buffer,
    /// `capacity * workers` labels, then `capacity * workers` confidences.
    pub readback: wgpu::Buffer,
    logits_group: wgpu::BindGroup,
    softmax_group: wgpu::BindGroup,
    // Kept alive for the bind groups.
    _logits: wgpu::Buffer,
}

impl Slot {
    pub fn new(
        ctx: &GpuContext,
        kernel: &ClassifyKernel,
        model: &ModelBuffers,
        capacity: usize,
        direct: bool,
    ) -> Self {
        let shape = model.shape;
        let cap = capacity.max(1) as u64;
        let device = &ctx.device;
        let buffer = |label, size: u64, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        let params = buffer(
            "params",
            std::mem::size_of::<ClassifyParams>() as u64,
            U::UNIFORM | U::COPY_DST,
        );
        // With direct upload (only where `ctx.direct_upload`) the host writes each batch into
        // the mapped items buffer (mapped at creation, then again after each batch by
        // `map_buffer_on_submit`).
        let direct = direct && ctx.direct_upload;
        let items = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("items"),
            size: cap * shape.words as u64 * 4,
            usage: if direct {
                U::STORAGE | U::MAP_WRITE
            } else {
                U::STORAGE | U::COPY_DST
            },
            mapped_at_creation: direct,
        });
        let logits = buffer("logits", cap * shape.rows as u64 * 4, U::STORAGE);
        let out = cap * shape.workers as u64 * 4;
        let labels = buffer("labels", out, U::STORAGE | U::COPY_SRC);
        let confidence = buffer("confidence", out, U::STORAGE | U::COPY_SRC);
        let readback = buffer("readback", out * 2, U::MAP_READ | U::COPY_DST);
        let pipeline = kernel.logits_pipeline(model.kernel, shape.per_word);
        let weight_binding = match model.kernel {
            LogitsKernel::Registers => 7,
            _ => 2,
        };
        let logits_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("logits"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                bind_entry(0, &params),
                bind_entry(1, &items),
                bind_entry(weight_binding, &model.weight),
                bind_entry(3, &logits),
            ],
        });
        let softmax_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("softmax"),
            layout: &kernel.softmax.get_bind_group_layout(0),
            entries: &[
                bind_entry(0, &params),
                bind_entry(3, &logits),
                bind_entry(4, &model.bias),
                bind_entry(5, &labels),
                bind_entry(6, &confidence),
            ],
        });
        Slot {
            capacity,
            direct,
            kernel: model.kernel,
            params,
            items,
            labels,
            confidence,
            readback,
            logits_group,
            softmax_group,
            _logits: logits,
        }
    }

    /// Uploads `n` packed items (and the batch's parameters) into this slot: written into the
    /// mapped items buffer and unmapped (direct upload), or queued with `write_buffer` (the
    /// writes land at the start of the next submit).
    pub fn upload(
        &self,
        ctx: &GpuContext,
        shape: &ModelShape,
        n: usize,
        packed: &[u8],
    ) -> Result<()> {
        let params = ClassifyParams {
            n_items: n as u32,
            features: shape.features as u32,
            words: shape.words as u32,
            rows: shape.rows as u32,
            classes: shape.classes as u32,
            workers: shape.workers as u32,
            // Pixels are scaled by 1/255; features are taken as given.
            scale: if shape.per_word == 4 {
                1.0 / 255.0
            } else {
                1.0
            },
            _pad: 0,
        };
        ctx.queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
        if self.direct {
            if !packed.is_empty() {
                let mut view = self
                    .items
                    .get_mapped_range_mut(..packed.len() as u64)
                    .map_err(|e| Error::Gpu(format!("cannot write the batch's items: {e}")))?;
                view.copy_from_slice(packed);
            }
            self.items.unmap();
        } else if !packed.is_empty() {
            ctx.queue.write_buffer(&self.items, 0, packed);
        }
        Ok(())
    }

    /// Records both kernels for `n` items and the copy into the readback buffer.
    pub fn encode(
        &self,
        ctx: &GpuContext,
        kernel: &ClassifyKernel,
        shape: &ModelShape,
        n: usize,
    ) -> wgpu::CommandEncoder {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("classify batch"),
            });
        let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("classify"),
                timestamp_writes: None,
            });
            pass.set_pipeline(kernel.logits_pipeline(self.kernel, shape.per_word));
            match self.kernel {
                LogitsKernel::Registers => {
                    pass.set_bind_group(0, &self.logits_group, &[]);
                    pass.dispatch_workgroups(
                        (n as u32).div_ceil(REG_ITEMS * REG_GROUP),
                        (shape.rows as u32).div_ceil(REG_ROWS),
                        1,
                    );
                }
                _ => {
                    pass.set_bind_group(0, &self.logits_group, &[]);
                    pass.dispatch_workgroups(
                        (n as u32).div_ceil(TILE_ITEMS),
                        (shape.rows as u32).div_ceil(TILE_ROWS),
                        1,
                    );
                }
            }
            pass.set_pipeline(&kernel.softmax);
            pass.set_bind_group(0, &self.softmax_group, &[]);
            let groups = ((n * shape.workers) as u32).div_ceil(SOFTMAX_GROUP);
            let (x, y) = dispatch_2d(groups, max_dim);
            pass.dispatch_workgroups(x, y, 1);
        }
        let bytes = (n * shape.workers * 4) as u64;
        let conf_at = (self.capacity.max(1) * shape.workers * 4) as u64;
        enc.copy_buffer_to_buffer(&self.labels, 0, &self.readback, 0, bytes);
        enc.copy_buffer_to_buffer(&self.confidence, 0, &self.readback, conf_at, bytes);
        enc
    }

    /// Copies `labels.len()` labels and confidences out of the mapped readback buffer.
    pub fn read(&self, shape: &ModelShape, labels: &mut [u32], conf: &mut [f32]) -> Result<()> {
        let count = labels.len();
        let conf_at = self.capacity.max(1) * shape.workers * 4;
        let view = self
            .readback
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("cannot read the results back: {e}")))?;
        copy_u32(&view[..count * 4], labels);
        let conf_bits: &mut [u32] = bytemuck::cast_slice_mut(conf);
        copy_u32(&view[conf_at..conf_at + count * 4], conf_bits);
        Ok(())
    }
}

/// Copies little-endian u32 words from mapped bytes (which may not be 4-aligned in memory).
pub fn copy_u32(src: &[u8], dst: &mut [u32]) {
    match bytemuck::try_cast_slice::<u8, u32>(src) {
        Ok(words) if cfg!(target_endian = "little") => dst.copy_from_slice(words),
        _ => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            }
        }
    }
}

pub(super) fn bind_entry(binding: u32, buf: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buf.as_entire_binding(),
    }
}
