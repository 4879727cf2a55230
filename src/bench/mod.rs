//! `microtask bench` as a library call: end-to-end classification throughput of every available
//! backend in one run, with GPU stage timings, majority-vote tallies, the peers (NumPy, ONNX
//! Runtime) when their venv is set up, the machine's memory read bound on the same items, and
//! optionally items/s against batch size. Items are u8 pixels or, with `dtype` f16/f32, feature
//! vectors read memory-mapped from a `.npy` file that the peers read too.

mod bandwidth;
mod peers;
mod report;
mod timing;
mod workload;

pub use bandwidth::ReadBound;
pub use peers::PeersConfig;
pub use report::{BackendFigures, BenchReport, Peer, RingVsOne, Series, Tally};
pub use timing::{random_model, random_model_of, random_votes, tile};

use timing::{
    bench_cpu, gpu_figures, gpu_variant, median, time_classify, time_interleaved, time_majority,
};
use workload::Workload;

use crate::backend::gpu::{GpuBackend, GpuOptions, HybridBackend, DEFAULT_SLOTS};
use crate::backend::{select, Backend, BackendKind, Items};
use crate::data::npy::Dtype;
use crate::error::{Error, Result};
use crate::model::Ensemble;
use std::path::PathBuf;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Items to classify per backend (the source tiled to this count, as peers.py does; for
    /// features, the rows written to the generated file).
    pub items: usize,
    /// Items for the GPU runs on a software adapter (a hardware GPU gets `items`).
    pub software_gpu_items: usize,
    /// Workers in the (random) ensemble.
    pub workers: usize,
    /// Timed runs per figure (the median is reported).
    pub reps: usize,
    /// Items source to tile; `None`: the MNIST test set when present, else synth:10000.
    pub data: Option<String>,
    /// The items' type: u8 pixels, or f16/f32 features.
    pub dtype: Dtype,
    /// Values per item of the generated features (f16/f32 without `npy`).
    pub features: usize,
    /// A `.npy` matrix to classify instead (the peers time the same file).
    pub npy: Option<PathBuf>,
    pub peers: PeersConfig,
    /// Also time every backend over a range of batch sizes (`BenchReport::sweep`).
    pub sweep: bool,
}

/// Batch sizes of the sweep.
const SWEEP_SIZES: [usize; 5] = [1_000, 4_000, 16_000, 64_000, 256_000];

/// The shared data folder: `MICROTASK_SHARED_DATA`, else `../shared/data`.
fn shared_data() -> PathBuf {
    std::env::var_os("MICROTASK_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}

fn default_data() -> String {
    let mnist = shared_data().join("mnist/t10k-images-idx3-ubyte.gz");
    if mnist.exists() {
        mnist.display().to_string()
    } else {
        "synth:10000".into()
    }
}

/// Runs the whole bench; `say` gets a line per finished figure.
pub fn run(cfg: &BenchConfig, say: &dyn Fn(&str)) -> Result<BenchReport> {
    if cfg.items == 0 {
        return Err(Error::Invalid("--items must be at least 1".into()));
    }
    if cfg.dtype != Dtype::U8 && cfg.npy.is_none() && cfg.features == 0 {
        return Err(Error::Invalid("--features must be at least 1".into()));
    }
    let work = Workload::prepare(cfg, say)?;
    let model = &work.model;
    let items = work.items();
    let n = work.len();
    let d = model.features();

    let read_bound = bandwidth::probe(items.bytes(), d * items.value_size(), cfg.reps);
    say(&format!(
        "read bound: {:.1} GB/s, {:.0} items/s",
        read_bound.bytes_per_s / 1e9,
        read_bound.items_per_s
    ));
    let cpu = select(BackendKind::Cpu)?;
    let mut backends = vec![bench_cpu(cpu.as_ref(), model, items, cfg.reps)?];
    say(&format!("cpu: {:.0} items/s", backends[0].items_per_s));
    let (gpu, gpu_note) = match select::gpu(&GpuOptions::default(), "bench") {
        Ok(g) => (Some(g), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let gpu_items = match &gpu {
        Some(g) if g.adapter().software => n.min(cfg.software_gpu_items),
        _ => n,
    };
    let gpu_slice = items.slice(0..gpu_items * d);
    let mut ring_vs_one = None;
    if let Some(g) = &gpu {
        let (figures, ring) = bench_gpu(g, model, gpu_slice, cfg.reps, say)?;
        backends.extend(figures);
        ring_vs_one = Some(ring);
    }

    // Majority vote over tasks x 5 answers: as many tasks as items (fewer on a software GPU).
    let votes = random_votes(n, 5, 10, 1);
    let mut tally = vec![Tally {
        backend: "cpu".into(),
        tasks: n,
        answers: votes.len(),
        answers_per_s: time_majority(cpu.as_ref(), &votes, cfg.reps)?,
    }];
    if let Some(g) = &gpu {
        let votes = random_votes(gpu_items, 5, 10, 1);
        tally.push(Tally {
            backend: "gpu".into(),
            tasks: gpu_items,
            answers: votes.len(),
            answers_per_s: time_majority(g, &votes, cfg.reps)?,
        });
    }

    say("peers...");
    let (peers, peers_skipped) = match peers::run(&cfg.peers, &work.peer_args, cfg.reps) {
        Ok(p) => (p, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };

    let sweep = if cfg.sweep {
        sweep(
            cpu.as_ref(),
            gpu.as_ref(),
            model,
            items,
            gpu_items,
            cfg.reps,
        )?
    } else {
        Vec::new()
    };

    Ok(BenchReport {
        items: n,
        workers: model.workers,
        dtype: items.type_name(),
        features: d,
        source: work.source.clone(),
        threads: rayon::current_num_threads(),
        read_bound,
        backends,
        peers,
        tally,
        gpu_note,
        ring_vs_one,
        peers_skipped,
        sweep,
    })
}

/// The ring of in-flight batches against one batch at a time (same batch size, their runs taken
/// in turn, at least 5 each: the gap is small on a software adapter), then the hybrid backend.
fn bench_gpu(
    g: &GpuBackend,
    model: &Ensemble,
    items: Items<'_>,
    reps: usize,
    say: &dyn Fn(&str),
) -> Result<(Vec<BackendFigures>, RingVsOne)> {
    let n = items.len() / model.features();
    let batch = Some(
        g.batch_size_for(model, items.per_word())?
            .min(n.div_ceil(8).max(1)),
    );
    let ring = gpu_variant(g, batch, DEFAULT_SLOTS)?;
    let one = gpu_variant(g, batch, 1)?;
    let runs = time_interleaved(&[&ring, &one], model, items, n, reps.max(5))?;
    let mut figures = Vec::new();
    for (v, name, r) in [(&ring, "gpu", &runs[0]), (&one, "gpu (1 slot)", &runs[1])] {
        let f = gpu_figures(v, name, n, median(r));
        say(&format!("{name}: {:.0} items/s", f.items_per_s));
        figures.push(f);
    }
    let hybrid = HybridBackend::new(gpu_variant(g, batch, DEFAULT_SLOTS)?);
    let seconds = time_classify(&hybrid, model, items, n, reps)?;
    figures.push(BackendFigures {
        backend: "hybrid".into(),
        adapter: Some(g.adapter().short()),
        items: n,
        seconds,
        items_per_s: n as f64 / seconds,
        kernel: None,
        batch,
        slots: Some(DEFAULT_SLOTS),
        stages: Vec::new(),
        device_busy: None,
        overlap: None,
    });
    Ok((figures, RingVsOne::from_runs(&runs[0], &runs[1])))
}

/// Items/s against batch size: the CPU classifying in calls of each size, and the GPU with each
/// size as its batch (sizes above the device's batch limit cannot run there).
fn sweep(
    cpu: &dyn Backend,
    gpu: Option<&GpuBackend>,
    model: &Ensemble,
    items: Items<'_>,
    gpu_items: usize,
    reps: usize,
) -> Result<Vec<Series>> {
    let n = items.len() / model.features();
    let mut points = Vec::new();
    for &b in SWEEP_SIZES.iter().filter(|&&b| b <= n) {
        let s = time_classify(cpu, model, items, b, reps)?;
        points.push((b as f64, n as f64 / s));
    }
    let mut series = vec![Series {
        name: "cpu".into(),
        points,
    }];
    if let Some(g) = gpu {
        let limit = g.batch_limit_for(model, items.per_word())?.items;
        let gpu_slice = items.slice(0..gpu_items * model.features());
        let mut points = Vec::new();
        for &b in SWEEP_SIZES
            .iter()
            .filter(|&&b| b <= gpu_items && b <= limit)
        {
            let v = gpu_variant(g, Some(b), DEFAULT_SLOTS)?;
            let s = time_classify(&v, model, gpu_slice, gpu_items, reps)?;
            points.push((b as f64, gpu_items as f64 / s));
        }
        series.push(Series {
            name: format!("gpu: {}", g.adapter().short()),
            points,
        });
    }
    Ok(series)
}
