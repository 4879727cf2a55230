//! Timers and inputs of `microtask bench`: the same items through every backend, timed end to
//! end from host memory (warm-up first, then the median of a few runs), plus tallies.

use super::report::BackendFigures;
use crate::backend::gpu::{GpuBackend, GpuOptions};
use crate::backend::{Backend, Items, Predictions};
use crate::data::synth::Rng;
use crate::data::votes::VoteTable;
use crate::error::Result;
use crate::model::Ensemble;
use std::time::Instant;

/// A random model of `workers` x 10 classes over 28x28 items (throughput does not depend on
/// the weights).
pub fn random_model(workers: usize, seed: u64) -> Ensemble {
    random_model_of(workers, 28, 28, seed)
}

/// A random model of `workers` x 10 classes over `height` x `width` items.
pub fn random_model_of(workers: usize, height: usize, width: usize, seed: u64) -> Ensemble {
    let mut m = Ensemble::zeros(workers, 10, height, width);
    let mut rng = Rng::new(seed);
    m.weight
        .iter_mut()
        .for_each(|w| *w = rng.range(-0.05, 0.05));
    m.bias.iter_mut().for_each(|b| *b = rng.range(-0.05, 0.05));
    m
}

/// `n` items made by repeating `base` (whole items), as peers.py tiles the MNIST test set.
pub fn tile(base: &[u8], features: usize, n: usize) -> Vec<u8> {
    base.iter().copied().cycle().take(n * features).collect()
}

/// Median seconds of `reps` runs of `classify` over `items` in calls of `chunk` items, after one
/// warm-up call on the first chunk (pipelines compile and buffers fill on the first call).
pub(crate) fn time_classify(
    backend: &dyn Backend,
    model: &Ensemble,
    items: Items<'_>,
    chunk: usize,
    reps: usize,
) -> Result<f64> {
    Ok(median(
        &time_interleaved(&[backend], model, items, chunk, reps)?[0],
    ))
}

/// The median of `values` (the upper one of an even count; NaN when empty).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Like [`time_classify`] for several backends at once, their runs taken in turn (a, b, a, b,
/// ...) so that a slow spell of a shared machine hits all of them alike. Returns the seconds of
/// every run, per backend.
pub(crate) fn time_interleaved(
    backends: &[&dyn Backend],
    model: &Ensemble,
    items: Items<'_>,
    chunk: usize,
    reps: usize,
) -> Result<Vec<Vec<f64>>> {
    let d = model.features();
    let n = items.len() / d;
    let chunk = chunk.clamp(1, n.max(1));
    let mut out = Predictions::with_capacity(chunk, model.workers);
    for backend in backends {
        backend.classify_items(model, items.slice(0..chunk * d), &mut out)?;
    }
    let mut runs = vec![Vec::with_capacity(reps); backends.len()];
    for _ in 0..reps.max(1) {
        for (backend, runs) in backends.iter().zip(&mut runs) {
            let t = Instant::now();
            for start in (0..n).step_by(chunk) {
                let part = items.slice(start * d..(start + chunk).min(n) * d);
                out.labels.clear();
                out.confidence.clear();
                backend.classify_items(model, part, &mut out)?;
            }
            runs.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(runs)
}

/// Figures of the CPU backend over `items`.
pub(crate) fn bench_cpu(
    backend: &dyn Backend,
    model: &Ensemble,
    items: Items<'_>,
    reps: usize,
) -> Result<BackendFigures> {
    let n = items.len() / model.features();
    let seconds = time_classify(backend, model, items, n, reps)?;
    Ok(BackendFigures {
        backend: "cpu".into(),
        adapter: None,
        items: n,
        seconds,
        items_per_s: n as f64 / seconds,
        kernel: None,
        batch: None,
        slots: None,
        stages: Vec::new(),
        device_busy: None,
        overlap: None,
    })
}

/// Figures of a GPU backend that classified `n` items in `seconds`, with the stage timings of
/// its last run.
pub(crate) fn gpu_figures(gpu: &GpuBackend, name: &str, n: usize, seconds: f64) -> BackendFigures {
    let stats = gpu.last_stats().unwrap_or_default();
    BackendFigures {
        backend: name.into(),
        adapter: Some(format!(
            "{} [{}]",
            gpu.adapter().short(),
            gpu.adapter().driver()
        )),
        items: n,
        seconds,
        items_per_s: n as f64 / seconds,
        kernel: Some(stats.kernel),
        batch: Some(stats.batch_size),
        slots: Some(stats.slots),
        stages: stats
            .stages()
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        device_busy: Some(stats.device_busy_fraction()),
        overlap: Some(stats.overlap()),
    }
}

/// A GPU backend like `gpu` with other batch/slot settings.
pub(crate) fn gpu_variant(
    gpu: &GpuBackend,
    batch: Option<usize>,
    slots: usize,
) -> Result<GpuBackend> {
    gpu.with_options(GpuOptions {
        batch,
        slots,
        ..gpu.options().clone()
    })
}

/// `tasks` tasks with `per_task` random answers each over `classes` classes from 1000 workers.
pub fn random_votes(tasks: usize, per_task: usize, classes: usize, seed: u64) -> VoteTable {
    let mut rng = Rng::new(seed);
    let n = tasks * per_task;
    VoteTable {
        task: (0..n).map(|i| (i / per_task) as u32).collect(),
        worker: (0..n).map(|_| rng.below(1000) as u32).collect(),
        label: (0..n).map(|_| rng.below(classes as u64) as u32).collect(),
        confidence: (0..n).map(|_| rng.uniform()).collect(),
        tasks: (0..tasks).map(|t| t.to_string()).collect(),
        workers: (0..1000).map(|w| w.to_string()).collect(),
        classes: (0..classes).map(|c| c.to_string()).collect(),
    }
}

/// Answers per second of `backend.majority` on `votes` (median of `reps`, after a warm-up).
pub(crate) fn time_majority(backend: &dyn Backend, votes: &VoteTable, reps: usize) -> Result<f64> {
    backend.majority(votes)?;
    let mut times = Vec::new();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        backend.majority(votes)?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(votes.len() as f64 / median(&times))
}
