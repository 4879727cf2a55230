//! Criterion: majority-vote tally throughput (answers/s) on the CPU, by number of tasks.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use microtask::backend::cpu::CpuBackend;
use microtask::backend::Backend;
use microtask::data::synth::Rng;
use microtask::data::votes::VoteTable;

/// `tasks` tasks with `per_task` random answers each over 10 classes.
pub fn random_votes(tasks: usize, per_task: usize, seed: u64) -> VoteTable {
    let mut rng = Rng::new(seed);
    let n = tasks * per_task;
    VoteTable {
        task: (0..n).map(|i| (i / per_task) as u32).collect(),
        worker: (0..n).map(|_| rng.below(1000) as u32).collect(),
        label: (0..n).map(|_| rng.below(10) as u32).collect(),
        confidence: (0..n).map(|_| rng.uniform()).collect(),
        tasks: (0..tasks).map(|t| t.to_string()).collect(),
        workers: (0..1000).map(|w| w.to_string()).collect(),
        classes: (0..10).map(|c| c.to_string()).collect(),
    }
}

fn tally_cpu(c: &mut Criterion) {
    let cpu = CpuBackend::default();
    let mut group = c.benchmark_group("tally_mv_cpu");
    group.sample_size(10);
    for tasks in [10_000, 100_000, 1_000_000] {
        let votes = random_votes(tasks, 5, 1);
        group.throughput(Throughput::Elements(votes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(tasks), &votes, |b, v| {
            b.iter(|| cpu.majority(v).expect("tally"))
        });
    }
    group.finish();
}

criterion_group!(benches, tally_cpu);
criterion_main!(benches);
