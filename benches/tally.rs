//! Criterion: majority-vote tally throughput (answers/s), CPU against GPU, by number of tasks
//! (5 random answers per task over 10 classes).
//!
//! The GPU group runs on any adapter, software included; on a software adapter (lavapipe, a
//! CPU pretending to be a GPU) it stops at 100k tasks. Without an adapter it prints a skip line
//! and only the CPU is measured, unless `MICROTASK_REQUIRE_GPU=1`, which makes that a panic.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use microtask::aggregate::dawid_skene::{fit_grouped_on, TaskGrouping};
use microtask::aggregate::DsOptions;
use microtask::backend::cpu::CpuBackend;
use microtask::backend::gpu::testing::context_or_skip;
use microtask::backend::gpu::{GpuBackend, GpuOptions, OnDeviceError};
use microtask::backend::Backend;
use microtask::bench::random_votes;

const ANSWERS_PER_TASK: usize = 5;
const CLASSES: usize = 10;
const CPU_TASKS: [usize; 4] = [10_000, 100_000, 1_000_000, 10_000_000];
const SOFTWARE_GPU_TASKS: [usize; 2] = [10_000, 100_000];
const HARDWARE_GPU_TASKS: [usize; 4] = [10_000, 100_000, 1_000_000, 10_000_000];

fn tally_cpu(c: &mut Criterion) {
    let cpu = CpuBackend::default();
    let mut group = c.benchmark_group("tally_mv_cpu");
    group.sample_size(10);
    for tasks in CPU_TASKS {
        let votes = random_votes(tasks, ANSWERS_PER_TASK, CLASSES, 1);
        group.throughput(Throughput::Elements(votes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(tasks), &votes, |b, v| {
            b.iter(|| cpu.majority(v).expect("tally"))
        });
    }
    group.finish();
}

fn tally_gpu(c: &mut Criterion) {
    // Panics when MICROTASK_REQUIRE_GPU=1 and no adapter is usable; else prints a skip line.
    let Some(ctx) = context_or_skip("bench tally_mv_gpu") else {
        return;
    };
    let software = ctx.adapter.software;
    let name = ctx.adapter.short();
    // A device error fails the bench rather than timing the CPU fallback under a GPU name.
    let opts = GpuOptions {
        on_device_error: OnDeviceError::Fail,
        ..GpuOptions::default()
    };
    let gpu = GpuBackend::with_context(ctx, opts, "bench")
        .unwrap_or_else(|e| panic!("the GPU backend does not build on {name}: {e}"));
    eprintln!("tally_mv_gpu on {name} [{}]", gpu.adapter().driver());
    let sizes: &[usize] = if software {
        &SOFTWARE_GPU_TASKS
    } else {
        &HARDWARE_GPU_TASKS
    };
    let mut group = c.benchmark_group("tally_mv_gpu");
    group.sample_size(10);
    for &tasks in sizes {
        let votes = random_votes(tasks, ANSWERS_PER_TASK, CLASSES, 1);
        group.throughput(Throughput::Elements(votes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(tasks), &votes, |b, v| {
            b.iter(|| gpu.majority(v).expect("tally"))
        });
    }
    group.finish();
}

/// Dawid-Skene EM iterations per answer: cost should be linear in answers (1M, 5M, 10M).
/// Throughput counts answers x iterations; the majority-vote start is included once.
fn ds_iterations(c: &mut Criterion) {
    const ITERS: usize = 10;
    let opts = DsOptions {
        max_iters: ITERS,
        tol: 0.0,
        ..DsOptions::default()
    };
    let cpu = CpuBackend::default();
    let gpu = context_or_skip("bench ds_gpu").and_then(|ctx| {
        let software = ctx.adapter.software;
        GpuBackend::with_context(ctx, GpuOptions::default(), "bench")
            .ok()
            .map(|g| (g, software))
    });
    let mut group = c.benchmark_group("ds_iteration");
    group.sample_size(10);
    let mut bench = |name: &str, backend: &dyn Backend, answers: usize| {
        let votes = random_votes(answers / ANSWERS_PER_TASK, ANSWERS_PER_TASK, CLASSES, 1);
        let grouping = TaskGrouping::new(&votes).expect("grouping");
        group.throughput(Throughput::Elements((votes.len() * ITERS) as u64));
        group.bench_with_input(BenchmarkId::new(name, answers), &votes, |b, v| {
            b.iter(|| fit_grouped_on(backend, v, &grouping, None, &opts).expect("ds"))
        });
    };
    for answers in [1_000_000, 5_000_000, 10_000_000] {
        bench("cpu", &cpu, answers);
    }
    // A software adapter is a CPU pretending to be a GPU: one small size is enough there.
    if let Some((g, software)) = &gpu {
        let sizes: &[usize] = if *software {
            &[100_000]
        } else {
            &[1_000_000, 5_000_000, 10_000_000]
        };
        for &answers in sizes {
            bench("gpu", g, answers);
        }
    }
    group.finish();
}

criterion_group!(benches, tally_cpu, tally_gpu, ds_iterations);
criterion_main!(benches);
