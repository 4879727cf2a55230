//! The classify kernels (`shaders/classify.wgsl`): pipelines, the model's resident buffers, the
//! per-slot buffers of the scheduler ring, packing and the batch-size limits.

use super::context::{AdapterReport, GpuContext};
use super::layout::{
    self, dispatch_2d, ClassifyParams, REG_GROUP, REG_ITEMS, REG_ROWS, SOFTMAX_GROUP, TILE_ITEMS,
    TILE_ROWS,
};
use crate::error::{Error, Result};
use crate::model::{Ensemble, MAX_CLASSES};
use std::borrow::Cow;
use wgpu::util::DeviceExt;

/// Default upper bound on items per batch: big enough to amortise a submit, small enough that
/// K slots of buffers stay modest and the first results come back early.
pub const DEFAULT_BATCH: usize = 16_384;

/// The shape of a model as the kernels see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    pub features: usize,
    /// u32 words per packed item row.
    pub words: usize,
    pub rows: usize,
    pub classes: usize,
    pub workers: usize,
}

impl ModelShape {
    /// Checks what the kernels can run; `Error::Invalid` for a model they cannot.
    pub fn of(model: &Ensemble) -> Result<Self> {
        let features = model.features();
        if model.workers == 0 || model.classes == 0 || features == 0 {
            return Err(Error::Invalid(format!(
                "model has {} workers, {} classes and {features} features; the GPU kernels need \
                 at least one of each",
                model.workers, model.classes
            )));
        }
        if model.classes > MAX_CLASSES {
            return Err(Error::Invalid(format!(
                "model has {} classes; the GPU kernels support at most {MAX_CLASSES}",
                model.classes
            )));
        }
        let rows = model.rows();
        if model.weight.len() != rows * features || model.bias.len() != rows {
            return Err(Error::Invalid(format!(
                "model weight/bias hold {}/{} values; {} workers x {} classes x {features} \
                 features need {}/{rows}",
                model.weight.len(),
                model.bias.len(),
                model.workers,
                model.classes,
                rows * features
            )));
        }
        Ok(ModelShape {
            features,
            words: features.div_ceil(4),
            rows,
            classes: model.classes,
            workers: model.workers,
        })
    }

    /// Bytes per item in each per-slot device buffer: packed items, logits, labels, confidence.
    fn bytes_per_item(&self) -> [(u64, &'static str); 3] {
        [
            (self.words as u64 * 4, "packed items"),
            (self.rows as u64 * 4, "logits"),
            (self.workers as u64 * 4 * 2, "labels + confidence readback"),
        ]
    }
}

/// The most items one batch may hold on a device, and the limit that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLimit {
    pub items: usize,
    /// Which limit binds, with its value, e.g.
    /// `max_storage_buffer_binding_size (134217728 bytes) / 3136 bytes of packed items per item`.
    pub limit: String,
}

/// The batch-size limit of `shape` on a device with `limits`.
pub fn batch_limit(limits: &wgpu::Limits, shape: &ModelShape) -> BatchLimit {
    let binding = limits.max_storage_buffer_binding_size;
    let buffer = limits.max_buffer_size;
    let mut best = BatchLimit {
        items: u32::MAX as usize,
        limit: "u32 item indices in the shaders".into(),
    };
    for (per_item, what) in shape.bytes_per_item() {
        for (limit, name) in [
            (binding, "max_storage_buffer_binding_size"),
            (buffer, "max_buffer_size"),
        ] {
            let items = (limit / per_item.max(1)) as usize;
            if items < best.items {
                best = BatchLimit {
                    items,
                    limit: format!("{name} ({limit} bytes) / {per_item} bytes of {what} per item"),
                };
            }
        }
    }
    let dim = limits.max_compute_workgroups_per_dimension as usize;
    let dispatch = dim * TILE_ITEMS as usize;
    if dispatch < best.items {
        best = BatchLimit {
            items: dispatch,
            limit: format!(
                "max_compute_workgroups_per_dimension ({dim}) x {TILE_ITEMS} items per workgroup"
            ),
        };
    }
    // u32 flat indices: item * rows + row in the logits buffer.
    let index = u32::MAX as usize / shape.rows.max(1);
    if index < best.items {
        best = BatchLimit {
            items: index,
            limit: format!("u32 logit indices ({} rows per item)", shape.rows),
        };
    }
    best
}

/// Items in the default batch: DEFAULT_BATCH within the limit, rounded down to a whole number of
/// CPU blocks so a CPU fallback or hybrid run splits the items exactly as the CPU backend does.
pub fn default_batch(limit: &BatchLimit) -> usize {
    let block = crate::backend::cpu::BLOCK_ITEMS;
    let b = DEFAULT_BATCH.min(limit.items);
    if b >= block {
        b / block * block
    } else {
        b.max(1)
    }
}

/// Packs `n` rows of `features` bytes into rows of `words` little-endian u32 (zero padded), as
/// bytes ready for `write_buffer`. Rows that are already whole words are passed through.
pub fn pack_items(items: &[u8], features: usize) -> Cow<'_, [u8]> {
    if features.is_multiple_of(4) && cfg!(target_endian = "little") {
        return Cow::Borrowed(items);
    }
    let words = features.div_ceil(4);
    let n = items.len() / features.max(1);
    let mut out = vec![0u8; n * words * 4];
    for (src, dst) in items
        .chunks_exact(features)
        .zip(out.chunks_exact_mut(words * 4))
    {
        dst[..features].copy_from_slice(src);
    }
    // Byte k of a row is byte k % 4 of word k / 4 in little-endian order; on a big-endian host
    // swap each word so the shader's `(word >> 8 * b) & 0xff` still finds feature 4w + b.
    if cfg!(target_endian = "big") {
        for w in out.chunks_exact_mut(4) {
            w.reverse();
        }
    }
    Cow::Owned(out)
}

/// Which logits kernel a run uses. Both compute bit-identical logits (the same fused
/// multiply-adds in the same order); they differ in how the work is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogitsKernel {
    /// `auto`: `Registers` on a software adapter, `Tiled` on a GPU.
    #[default]
    Auto,
    /// `logits`: 64 items x 16 rows per workgroup through workgroup memory, two barriers per
    /// 32 features. What GPUs are built for.
    Tiled,
    /// `logits_regs`: 8 items x 10 rows per invocation in registers, weights read at
    /// workgroup-uniform addresses, no workgroup memory, no barriers. What a CPU running the
    /// API (lavapipe, llvmpipe: 8 invocations per AVX2 vector, workgroup memory and barriers
    /// emulated) runs fastest, about 5x the tiled kernel there.
    Registers,
}

impl LogitsKernel {
    /// The kernel `self` means on the adapter `report` (`Auto` resolved).
    pub fn resolve(self, report: &AdapterReport) -> LogitsKernel {
        match self {
            LogitsKernel::Auto if report.software => LogitsKernel::Registers,
            LogitsKernel::Auto => LogitsKernel::Tiled,
            k => k,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogitsKernel::Auto => "auto",
            LogitsKernel::Tiled => "tiled",
            LogitsKernel::Registers => "registers",
        }
    }
}

/// The classify pipelines.
pub struct ClassifyKernel {
    logits: wgpu::ComputePipeline,
    logits_regs: wgpu::ComputePipeline,
    softmax: wgpu::ComputePipeline,
}

impl ClassifyKernel {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        if ctx.limits.max_storage_buffers_per_shader_stage < 4 {
            return Err(Error::Gpu(format!(
                "{} allows {} storage buffers per shader stage; the classify kernels need 4",
                ctx.adapter.short(),
                ctx.limits.max_storage_buffers_per_shader_stage
            )));
        }
        let [logits, logits_regs, softmax] =
            ctx.compile(&layout::CLASSIFY, ["logits", "logits_regs", "softmax"])?;
        Ok(ClassifyKernel {
            logits,
            logits_regs,
            softmax,
        })
    }
}

/// A model's weights (in the layout its logits kernel reads) and biases on the device.
pub struct ModelBuffers {
    pub shape: ModelShape,
    /// `Tiled` or `Registers`, never `Auto`.
    pub kernel: LogitsKernel,
    weight: wgpu::Buffer,
    bias: wgpu::Buffer,
}

/// Bytes of the weight buffer `kernel` reads for a model of `shape`: the (R*C) x D matrix for
/// `Tiled`; for `Registers`, chunks of REG_ROWS rows, each feature's rows padded to 12 (three
/// vec4) and the features to whole words.
pub fn weight_bytes(shape: &ModelShape, kernel: LogitsKernel) -> u64 {
    match kernel {
        LogitsKernel::Registers => {
            let chunks = shape.rows.div_ceil(REG_ROWS as usize) as u64;
            chunks * shape.words as u64 * 4 * 12 * 4
        }
        _ => (shape.rows * shape.features * 4) as u64,
    }
}

/// Checks that a model of `shape` fits the device's buffer and dispatch limits with `kernel`
/// (a clear error if not).
pub fn check_fits(ctx: &GpuContext, shape: &ModelShape, kernel: LogitsKernel) -> Result<()> {
    let kernel = kernel.resolve(&ctx.adapter);
    let bytes = weight_bytes(shape, kernel);
    if bytes > ctx.max_binding() {
        return Err(Error::Gpu(format!(
            "the model's weights ({bytes} bytes for the {} kernel: {} rows x {} features) \
             exceed this device's max_storage_buffer_binding_size / max_buffer_size ({} bytes) \
             on {}",
            kernel.name(),
            shape.rows,
            shape.features,
            ctx.max_binding(),
            ctx.adapter.short()
        )));
    }
    let per_group = match kernel {
        LogitsKernel::Registers => REG_ROWS,
        _ => TILE_ROWS,
    };
    let row_groups = shape.rows.div_ceil(per_group as usize);
    let max_dim = ctx.limits.max_compute_workgroups_per_dimension as usize;
    if row_groups > max_dim {
        return Err(Error::Gpu(format!(
            "the model's {} weight rows need {row_groups} workgroups of {per_group} rows; \
             max_compute_workgroups_per_dimension is {max_dim} on {}",
            shape.rows,
            ctx.adapter.short()
        )));
    }
    Ok(())
}

/// The weights in the layout of `logits_regs`: `out[((c * words * 4 + k) * 12 + j]` is row
/// `c * REG_ROWS + j` (j < REG_ROWS) of feature k; zero for j >= REG_ROWS, rows past the model
/// and features past `features`.
pub fn register_weights(model: &Ensemble) -> Vec<f32> {
    let d = model.features();
    let rows = model.rows();
    let chunk = REG_ROWS as usize;
    let feats = d.div_ceil(4) * 4;
    let mut out = vec![0.0f32; rows.div_ceil(chunk) * feats * 12];
    for (r, w) in model.weight.chunks_exact(d.max(1)).enumerate() {
        let (c, j) = (r / chunk, r % chunk);
        for (k, &v) in w.iter().enumerate() {
            out[(c * feats + k) * 12 + j] = v;
        }
    }
    out
}

impl ModelBuffers {
    /// Uploads `model` for `kernel` (`Auto` is resolved for the context's adapter).
    pub fn upload(ctx: &GpuContext, model: &Ensemble, kernel: LogitsKernel) -> Result<Self> {
        let shape = ModelShape::of(model)?;
        let kernel = kernel.resolve(&ctx.adapter);
        check_fits(ctx, &shape, kernel)?;
        let init = |label, data: &[f32]| {
            ctx.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::cast_slice(data),
                    usage: wgpu::BufferUsages::STORAGE,
                })
        };
        let weight = match kernel {
            LogitsKernel::Registers => init("weight_t", &register_weights(model)),
            _ => init("weight", &model.weight),
        };
        Ok(ModelBuffers {
            shape,
            kernel,
            weight,
            bias: init("bias", &model.bias),
        })
    }
}

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
        let (pipeline, weight_binding) = match model.kernel {
            LogitsKernel::Registers => (&kernel.logits_regs, 7),
            _ => (&kernel.logits, 2),
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
            inv255: 1.0 / 255.0,
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
            match self.kernel {
                LogitsKernel::Registers => {
                    pass.set_pipeline(&kernel.logits_regs);
                    pass.set_bind_group(0, &self.logits_group, &[]);
                    pass.dispatch_workgroups(
                        (n as u32).div_ceil(REG_ITEMS * REG_GROUP),
                        (shape.rows as u32).div_ceil(REG_ROWS),
                        1,
                    );
                }
                _ => {
                    pass.set_pipeline(&kernel.logits);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_pads_rows_to_whole_words() {
        let items = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let p = pack_items(&items, 5);
        assert_eq!(&p[..], &[1, 2, 3, 4, 5, 0, 0, 0, 6, 7, 8, 9, 10, 0, 0, 0]);
        let q = pack_items(&items[..8], 4);
        assert!(matches!(q, Cow::Borrowed(_)));
    }

    #[test]
    fn register_weights_are_chunks_of_rows_by_feature() {
        // 2 workers x 7 classes = 14 rows (two chunks, the second short), 5 features (2 words).
        let mut m = Ensemble::zeros(2, 7, 1, 5);
        for (i, w) in m.weight.iter_mut().enumerate() {
            *w = i as f32 + 1.0;
        }
        let t = register_weights(&m);
        assert_eq!(t.len(), 2 * 8 * 12);
        for r in 0..14 {
            for k in 0..8 {
                let (c, j) = (r / 10, r % 10);
                let want = if k < 5 { m.weight[r * 5 + k] } else { 0.0 };
                assert_eq!(t[(c * 8 + k) * 12 + j], want, "row {r} feature {k}");
            }
        }
        // Padding rows (10, 11 of each feature, rows 14.. of the last chunk) stay zero.
        assert_eq!(t.iter().filter(|&&v| v != 0.0).count(), 14 * 5);
        let shape = ModelShape::of(&m).unwrap();
        assert_eq!(
            weight_bytes(&shape, LogitsKernel::Registers),
            t.len() as u64 * 4
        );
    }

    /// The two logits kernels, and both upload paths, give the same bits on awkward shapes
    /// (items not a multiple of a tile, rows not a multiple of a chunk, features not whole
    /// words or blocks), and agree with the CPU up to near-ties.
    #[test]
    fn both_logits_kernels_give_the_same_bits() {
        use crate::backend::gpu::testing::context_or_skip;
        use crate::backend::gpu::{GpuBackend, GpuOptions, OnDeviceError};
        use crate::backend::{Backend, Predictions};
        use crate::data::synth::Rng;
        let Some(ctx) = context_or_skip("both_logits_kernels_give_the_same_bits") else {
            return;
        };
        let opts = |kernel, batch| GpuOptions {
            kernel,
            batch: Some(batch),
            on_device_error: OnDeviceError::Fail,
            ..Default::default()
        };
        let tiled =
            GpuBackend::with_context(ctx, opts(LogitsKernel::Tiled, 300), "test").expect("backend");
        let regs = tiled
            .with_options(opts(LogitsKernel::Registers, 300))
            .unwrap();
        let regs_small = tiled
            .with_options(opts(LogitsKernel::Registers, 7))
            .unwrap();
        // Batches staged with write_buffer rather than written into mapped buffers.
        let staged = tiled
            .with_options(GpuOptions {
                direct_upload: false,
                ..opts(LogitsKernel::Registers, 64)
            })
            .unwrap();
        let cpu = crate::backend::cpu::CpuBackend::default();
        let mut rng = Rng::new(11);
        for (workers, classes, h, w) in [
            (1, 10, 28, 28),
            (7, 3, 5, 5),
            (2, 13, 1, 1030),
            (3, 1, 3, 3),
        ] {
            let mut m = Ensemble::zeros(workers, classes, h, w);
            m.weight
                .iter_mut()
                .for_each(|v| *v = rng.range(-0.05, 0.05));
            m.bias.iter_mut().for_each(|v| *v = rng.range(-0.5, 0.5));
            let d = m.features();
            for n in [1usize, 7, 63, 64, 65, 129, 700] {
                let items: Vec<u8> = (0..n * d).map(|_| rng.below(256) as u8).collect();
                let run = |b: &dyn Backend| {
                    let mut p = Predictions::default();
                    b.classify(&m, &items, &mut p).expect("classify");
                    p
                };
                let a = run(&tiled);
                let b = run(&regs);
                let c = run(&regs_small);
                let e = run(&staged);
                let tag = format!("R{workers} C{classes} D{d} n{n}");
                assert_eq!(a.labels, b.labels, "{tag}: labels");
                assert_eq!(a.labels, c.labels, "{tag}: labels (batch 7)");
                let bits = |p: &Predictions| -> Vec<u32> {
                    p.confidence.iter().map(|v| v.to_bits()).collect()
                };
                assert_eq!(bits(&a), bits(&b), "{tag}: confidence bits");
                assert_eq!(bits(&a), bits(&c), "{tag}: confidence bits (batch 7)");
                assert_eq!(a.labels, e.labels, "{tag}: labels (staged)");
                assert_eq!(bits(&a), bits(&e), "{tag}: confidence bits (staged)");
                assert_eq!(regs.last_stats().unwrap().kernel, "registers");
                let want = run(&cpu);
                for (i, ((l, g), (cw, cg))) in want
                    .labels
                    .iter()
                    .zip(&b.labels)
                    .zip(want.confidence.iter().zip(&b.confidence))
                    .enumerate()
                {
                    assert!(
                        l == g || (*cw <= 0.5001 && *cg <= 0.5001) || classes == 1,
                        "{tag}: row {i}: cpu {l} ({cw}) gpu {g} ({cg})"
                    );
                    assert!((cw - cg).abs() <= 1e-5, "{tag}: row {i}: {cw} vs {cg}");
                }
            }
        }
    }

    #[test]
    fn batch_limit_names_the_binding_limit() {
        let limits = wgpu::Limits::default();
        let shape = ModelShape {
            features: 784,
            words: 196,
            rows: 50,
            classes: 10,
            workers: 5,
        };
        let l = batch_limit(&limits, &shape);
        assert_eq!(
            l.items,
            (limits.max_storage_buffer_binding_size / 784) as usize
        );
        assert!(l.limit.contains("max_storage_buffer_binding_size"));
        assert_eq!(default_batch(&l), DEFAULT_BATCH);
    }
}
