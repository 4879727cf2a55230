//! The classify kernels (`shaders/classify_logits.wgsl` for the logits of u8 pixels and f16/f32
//! features, `shaders/classify.wgsl` for the softmax): the pipelines, which logits kernel runs, and the model's resident
//! buffers. The batch's shape and packing are in `shape`, the ring's buffers in `slot`.

use super::context::{AdapterReport, GpuContext};
use super::layout::{self, REG_ROWS, TILE_ROWS};
use crate::error::{Error, Result};
use crate::model::Ensemble;
use wgpu::util::DeviceExt;

// Paths of the items that moved to `shape` and `slot`, kept for their users.
pub use super::shape::{
    batch_limit, default_batch, pack_items, BatchLimit, ModelShape, DEFAULT_BATCH,
};
pub(super) use super::slot::bind_entry;
pub use super::slot::{copy_u32, Slot};

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

/// The two logits pipelines of one item type.
struct LogitsPipelines {
    tiled: wgpu::ComputePipeline,
    regs: wgpu::ComputePipeline,
}

/// The classify pipelines: logits (`classify_logits.wgsl`) for u8 pixels, f16 and f32
/// features, and the softmax (`classify.wgsl`) every one of them feeds.
pub struct ClassifyKernel {
    pixels: LogitsPipelines,
    f16: LogitsPipelines,
    f32: LogitsPipelines,
    pub(super) softmax: wgpu::ComputePipeline,
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
        let [softmax] = ctx.compile(&layout::CLASSIFY, ["softmax"])?;
        let logits = |shader| -> Result<LogitsPipelines> {
            let [tiled, regs] = ctx.compile(shader, ["logits", "logits_regs"])?;
            Ok(LogitsPipelines { tiled, regs })
        };
        Ok(ClassifyKernel {
            pixels: logits(&layout::LOGITS_U8)?,
            f16: logits(&layout::LOGITS_F16)?,
            f32: logits(&layout::LOGITS_F32)?,
            softmax,
        })
    }

    /// The logits pipeline of `kernel` (resolved) for items packed `per_word` values a word.
    pub(super) fn logits_pipeline(
        &self,
        kernel: LogitsKernel,
        per_word: usize,
    ) -> &wgpu::ComputePipeline {
        let p = match per_word {
            1 => &self.f32,
            2 => &self.f16,
            _ => &self.pixels,
        };
        match kernel {
            LogitsKernel::Registers => &p.regs,
            _ => &p.tiled,
        }
    }
}

/// A model's weights (in the layout its logits kernel reads) and biases on the device.
pub struct ModelBuffers {
    pub shape: ModelShape,
    /// `Tiled` or `Registers`, never `Auto`.
    pub kernel: LogitsKernel,
    pub(super) weight: wgpu::Buffer,
    pub(super) bias: wgpu::Buffer,
}

/// Bytes of the weight buffer `kernel` reads for a model of `shape`: the (R*C) x D matrix for
/// `Tiled`; for `Registers`, chunks of REG_ROWS rows, each feature's rows padded to 12 (three
/// vec4) and the features to whole words.
pub fn weight_bytes(shape: &ModelShape, kernel: LogitsKernel) -> u64 {
    match kernel {
        LogitsKernel::Registers => {
            let chunks = shape.rows.div_ceil(REG_ROWS as usize) as u64;
            chunks * (shape.words * shape.per_word) as u64 * 12 * 4
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

/// The weights in the layout of `logits_regs` for items packed `per_word` values
/// a word: `out[((c * feats + k) * 12 + j]` is row `c * REG_ROWS + j` (j < REG_ROWS) of feature
/// k, with `feats` the features padded to whole words; zero for j >= REG_ROWS, rows past the
/// model and features past `features`.
pub fn register_weights(model: &Ensemble, per_word: usize) -> Vec<f32> {
    let d = model.features();
    let rows = model.rows();
    let chunk = REG_ROWS as usize;
    let feats = d.div_ceil(per_word) * per_word;
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
    /// Uploads `model` for `kernel` (`Auto` is resolved for the context's adapter) and items
    /// packed `per_word` values a word.
    pub fn upload(
        ctx: &GpuContext,
        model: &Ensemble,
        kernel: LogitsKernel,
        per_word: usize,
    ) -> Result<Self> {
        let shape = ModelShape::for_items(model, per_word)?;
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
            LogitsKernel::Registers => init("weight_t", &register_weights(model, per_word)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_weights_are_chunks_of_rows_by_feature() {
        // 2 workers x 7 classes = 14 rows (two chunks, the second short), 5 features (2 words).
        let mut m = Ensemble::zeros(2, 7, 1, 5);
        for (i, w) in m.weight.iter_mut().enumerate() {
            *w = i as f32 + 1.0;
        }
        let t = register_weights(&m, 4);
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
}
