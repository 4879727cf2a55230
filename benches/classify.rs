//! Criterion: dense softmax classification throughput (items/s) on the CPU, by batch size and
//! ensemble size.

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
    let items = synth::generate(100_000, 1);
    let cpu = CpuBackend::default();
    let mut group = c.benchmark_group("classify_cpu");
    group.sample_size(10);
    for workers in [1, 5] {
        let model = random_model(workers);
        for n in [1_000, 10_000, 100_000] {
            let batch = &items.pixels[..n * 784];
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
