//! Criterion: dense softmax classification throughput (items/s), CPU against GPU, by batch size
//! and ensemble size (R workers of 10 classes on 28x28 items, from host memory).
//!
//! The CPU picks its best kernel (AVX-512, AVX2+FMA, portable); `MICROTASK_CPU_KERNEL=avx2` or
//! `=portable` benchmarks a lower one, `RAYON_NUM_THREADS` sets the threads. The GPU group runs on
//! any adapter, software included (lavapipe: a CPU pretending to be a GPU, so it stops at 100k
//! items); without one it prints a skip line, unless `MICROTASK_REQUIRE_GPU=1` makes that a panic.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use microtask::backend::cpu::CpuBackend;
use microtask::backend::gpu::testing::context_or_skip;
use microtask::backend::gpu::{GpuBackend, GpuOptions, OnDeviceError};
use microtask::backend::{Backend, Predictions};
use microtask::bench::{random_model, tile};
use microtask::data::synth;

/// 1M items: 100k synthetic ones ten times over (generating 1M takes longer than timing them).
fn items() -> Vec<u8> {
    tile(&synth::generate(100_000, 1).pixels, 784, 1_000_000)
}

fn bench_sizes(c: &mut Criterion, group: &str, backend: &dyn Backend, sizes: &[usize]) {
    let pixels = items();
    let mut group = c.benchmark_group(group);
    group.sample_size(10);
    for workers in [1, 5] {
        let model = random_model(workers, 3);
        for &n in sizes {
            let batch = &pixels[..n * 784];
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(format!("R{workers}"), n), &n, |b, &n| {
                let mut out = Predictions::with_capacity(n, workers);
                b.iter(|| {
                    out.labels.clear();
                    out.confidence.clear();
                    backend.classify(&model, batch, &mut out).expect("classify");
                })
            });
        }
    }
    group.finish();
}

fn classify_cpu(c: &mut Criterion) {
    let sizes = [1_000, 10_000, 100_000, 1_000_000];
    bench_sizes(c, "classify_cpu", &CpuBackend::default(), &sizes);
}

fn classify_gpu(c: &mut Criterion) {
    let Some(ctx) = context_or_skip("bench classify_gpu") else {
        return;
    };
    let software = ctx.adapter.software;
    // A device error fails the bench rather than timing the CPU fallback under a GPU name.
    let opts = GpuOptions {
        on_device_error: OnDeviceError::Fail,
        ..GpuOptions::default()
    };
    let gpu = GpuBackend::with_context(ctx, opts, "bench").expect("the GPU backend builds");
    eprintln!(
        "classify_gpu on {} [{}]",
        gpu.adapter().short(),
        gpu.adapter().driver()
    );
    let sizes: &[usize] = if software {
        &[1_000, 10_000, 100_000]
    } else {
        &[1_000, 10_000, 100_000, 1_000_000]
    };
    bench_sizes(c, "classify_gpu", &gpu, sizes);
}

criterion_group!(benches, classify_cpu, classify_gpu);
criterion_main!(benches);
