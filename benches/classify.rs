//! Criterion: dense softmax classification throughput (items/s) on the CPU, by batch size and
//! ensemble size (R workers of 10 classes on 28x28 items; 1M items stream from memory).
//!
//! The CPU picks its best kernel (AVX-512, AVX2+FMA, portable); `MICROTASK_CPU_KERNEL=avx2` or
//! `=portable` benchmarks a lower one, `RAYON_NUM_THREADS` sets the threads.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use microtask::backend::cpu::CpuBackend;
use microtask::backend::{Backend, Predictions};
use microtask::data::synth;
use microtask::model::Ensemble;

fn random_model(workers: usize) -> Ensemble {
    let mut m = Ensemble::zeros(workers, 10, 28, 28);
    let mut rng = synth::Rng::new(3);
    m.weight
        .iter_mut()
        .for_each(|w| *w = rng.range(-0.05, 0.05));
    m.bias.iter_mut().for_each(|b| *b = rng.range(-0.05, 0.05));
    m
}

fn classify_cpu(c: &mut Criterion) {
    // 1M items: the 100k synthetic ones ten times over (generating 1M takes longer than timing).
    let base = synth::generate(100_000, 1).pixels;
    let pixels: Vec<u8> = base.iter().copied().cycle().take(10 * base.len()).collect();
    let cpu = CpuBackend::default();
    let mut group = c.benchmark_group("classify_cpu");
    group.sample_size(10);
    for workers in [1, 5] {
        let model = random_model(workers);
        for n in [1_000, 10_000, 100_000, 1_000_000] {
            let batch = &pixels[..n * 784];
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(format!("R{workers}"), n), &n, |b, &n| {
                let mut out = Predictions::with_capacity(n, workers);
                b.iter(|| {
                    out.labels.clear();
                    out.confidence.clear();
                    cpu.classify(&model, batch, &mut out).expect("classify");
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, classify_cpu);
criterion_main!(benches);
