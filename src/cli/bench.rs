//! `microtask bench`: end-to-end classification throughput of every available backend in one
//! run, with GPU stage timings, majority-vote tallies, and the peers (NumPy, ONNX Runtime) when
//! their venv is set up.

use anyhow::Context;
use microtask::backend::cpu::CpuBackend;
use microtask::backend::gpu::{AdapterChoice, GpuBackend, GpuOptions, DEFAULT_SLOTS};
use microtask::bench::{self, BackendFigures};
use microtask::plot::{self, Series};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Items to classify per backend (MNIST test images tiled to this count, as peers.py does).
    #[arg(long, default_value_t = 1_000_000)]
    pub items: usize,
    /// Items for the GPU runs on a software adapter (lavapipe is a CPU: it is slow). A hardware
    /// GPU gets --items.
    #[arg(long, default_value_t = 400_000)]
    pub software_gpu_items: usize,
    /// Workers in the (random) ensemble.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Timed runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run the peers even if ../shared/bench/.venv is missing (with the system python3).
    #[arg(long)]
    pub peers: bool,
    /// Folder of peers.py (default: ../shared/bench).
    #[arg(long, default_value = "../shared/bench")]
    pub peers_dir: PathBuf,
    /// Draw items/s against batch size for each backend into this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Items source to tile (default: the MNIST test set when present, else synth:10000).
    #[arg(long)]
    pub data: Option<String>,
}

#[derive(Debug, Serialize)]
struct Peer {
    peer: String,
    items_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

#[derive(Debug, Serialize)]
struct Tally {
    backend: String,
    tasks: usize,
    answers: usize,
    answers_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    items: usize,
    workers: usize,
    threads: usize,
    backends: Vec<BackendFigures>,
    peers: Vec<Peer>,
    tally: Vec<Tally>,
    /// Why the GPU is missing from `backends`, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    gpu_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ring_vs_one: Option<RingVsOne>,
}

/// The ring of in-flight batches against one slot, over runs taken in turn.
#[derive(Debug, Serialize)]
struct RingVsOne {
    pairs: usize,
    /// Pairs in which the ring finished first.
    ring_ahead: usize,
    /// Median over pairs of (1-slot seconds / ring seconds).
    median_speedup: f64,
}

impl RingVsOne {
    /// From the seconds of each run, taken in turn.
    fn from_runs(ring: &[f64], one: &[f64]) -> Self {
        let speedups: Vec<f64> = ring.iter().zip(one).map(|(r, o)| o / r).collect();
        RingVsOne {
            pairs: speedups.len(),
            ring_ahead: speedups.iter().filter(|&&x| x > 1.0).count(),
            median_speedup: bench::median(&speedups),
        }
    }
}

fn default_data() -> String {
    let mnist = "../shared/data/mnist/t10k-images-idx3-ubyte.gz";
    if Path::new(mnist).exists() {
        mnist.into()
    } else {
        "synth:10000".into()
    }
}

fn run_peers(a: &BenchArgs) -> anyhow::Result<Vec<Peer>> {
    let venv = a.peers_dir.join(".venv/bin/python3");
    let python = if venv.exists() {
        venv
    } else if a.peers {
        PathBuf::from("python3")
    } else {
        anyhow::bail!(
            "{} is missing (run `bash {}` once, or pass --peers to use the system python3)",
            venv.display(),
            a.peers_dir.join("setup.sh").display()
        );
    };
    let script = a.peers_dir.join("peers.py");
    let out = Command::new(&python)
        .arg(&script)
        .args([
            "--items",
            &a.items.to_string(),
            "--reps",
            &a.reps.to_string(),
        ])
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let mut peers = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
    {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let (Some(p), Some(ips)) = (v["peer"].as_str(), v["items_per_s"].as_f64()) {
            peers.push(Peer {
                peer: p.into(),
                items_per_s: ips,
                version: v["version"].as_str().map(String::from),
            });
        }
    }
    Ok(peers)
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.items > 0, "--items must be at least 1");
    let spec = a.data.clone().unwrap_or_else(default_data);
    let base = microtask::data::load(&spec)?;
    let model = bench::random_model(a.workers.max(1), 3);
    anyhow::ensure!(
        base.features() == model.features(),
        "{spec}: bench needs 28x28 items, these are {}x{}",
        base.height,
        base.width
    );
    let d = model.features();
    let items = bench::tile(&base.pixels, d, a.items);
    let say = |m: &str| {
        if !a.json {
            eprintln!("{m}");
        }
    };

    let cpu = CpuBackend::new("bench");
    let mut backends = vec![bench::bench_cpu(&cpu, &model, &items, a.reps)?];
    say(&format!("cpu: {:.0} items/s", backends[0].items_per_s));
    let mut gpu_note = None;
    let mut ring_vs_one = None;
    let gpu = match GpuBackend::new(AdapterChoice::Any, GpuOptions::default(), "bench") {
        Ok(g) => Some(g),
        Err(e) => {
            gpu_note = Some(e.to_string());
            None
        }
    };
    let gpu_items = match &gpu {
        Some(g) if g.adapter().software => a.items.min(a.software_gpu_items),
        _ => a.items,
    };
    let gpu_slice = &items[..gpu_items * d];
    if let Some(g) = &gpu {
        // The ring of in-flight batches against one batch at a time, same batch size, their
        // runs taken in turn (at least 5 each: the gap is small on a software adapter).
        let batch = Some(g.batch_size(&model)?.min(gpu_items.div_ceil(8).max(1)));
        let ring = bench::gpu_variant(g, batch, DEFAULT_SLOTS)?;
        let one = bench::gpu_variant(g, batch, 1)?;
        let runs =
            bench::time_interleaved(&[&ring, &one], &model, gpu_slice, gpu_items, a.reps.max(5))?;
        for (v, name, r) in [(&ring, "gpu", &runs[0]), (&one, "gpu (1 slot)", &runs[1])] {
            let f = bench::gpu_figures(v, name, gpu_items, bench::median(r));
            say(&format!("{name}: {:.0} items/s", f.items_per_s));
            backends.push(f);
        }
        ring_vs_one = Some(RingVsOne::from_runs(&runs[0], &runs[1]));
        let hybrid = microtask::backend::gpu::HybridBackend::new(bench::gpu_variant(
            g,
            batch,
            DEFAULT_SLOTS,
        )?);
        let n = gpu_items;
        let seconds = bench::time_classify(&hybrid, &model, gpu_slice, n, a.reps)?;
        backends.push(BackendFigures {
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
    }

    // Majority vote over tasks x 5 answers: as many tasks as items (fewer on a software GPU).
    let mut tally = Vec::new();
    let votes = bench::random_votes(a.items, 5, 10, 1);
    tally.push(Tally {
        backend: "cpu".into(),
        tasks: a.items,
        answers: votes.len(),
        answers_per_s: bench::time_majority(&cpu, &votes, a.reps)?,
    });
    if let Some(g) = &gpu {
        let votes = bench::random_votes(gpu_items, 5, 10, 1);
        tally.push(Tally {
            backend: "gpu".into(),
            tasks: gpu_items,
            answers: votes.len(),
            answers_per_s: bench::time_majority(g, &votes, a.reps)?,
        });
    }

    say("peers...");
    let peers = run_peers(&a).unwrap_or_else(|e| {
        eprintln!("microtask: peers skipped: {e:#}");
        Vec::new()
    });

    if let Some(path) = &a.plot {
        let sizes = [1_000usize, 4_000, 16_000, 64_000, 256_000];
        let mut series = vec![Series {
            name: "cpu".into(),
            points: Vec::new(),
        }];
        for &b in sizes.iter().filter(|&&b| b <= a.items) {
            let s = bench::time_classify(&cpu, &model, &items, b, a.reps)?;
            series[0].points.push((b as f64, a.items as f64 / s));
        }
        if let Some(g) = &gpu {
            let mut points = Vec::new();
            let limit = g.batch_limit(&model)?.items;
            for &b in sizes.iter().filter(|&&b| b <= gpu_items && b <= limit) {
                let v = bench::gpu_variant(g, Some(b), DEFAULT_SLOTS)?;
                let s = bench::time_classify(&v, &model, gpu_slice, gpu_items, a.reps)?;
                points.push((b as f64, gpu_items as f64 / s));
            }
            series.push(Series {
                name: format!("gpu: {}", g.adapter().short()),
                points,
            });
        }
        let svg = plot::svg("microtask classify: items/s against batch size", &series);
        microtask::output::write_atomic(path, |w| {
            std::io::Write::write_all(w, svg.as_bytes()).map_err(|e| microtask::Error::io(path, e))
        })?;
        say(&format!("plot -> {}", path.display()));
    }

    let report = Report {
        items: a.items,
        workers: model.workers,
        threads: rayon::current_num_threads(),
        backends,
        peers,
        tally,
        gpu_note,
        ring_vs_one,
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Report) {
    let cpu = r.backends[0].items_per_s;
    let best_peer = r.peers.iter().map(|p| p.items_per_s).fold(0.0, f64::max);
    println!(
        "classify: {} workers x 10 classes, 784 u8 features, {} threads",
        r.workers, r.threads
    );
    println!(
        "{:<16} {:>10} {:>14} {:>9} {:>11}",
        "backend", "items", "items/s", "vs cpu", "vs best peer"
    );
    for b in &r.backends {
        let vs_peer = if best_peer > 0.0 {
            format!("{:.2}x", b.items_per_s / best_peer)
        } else {
            "-".into()
        };
        println!(
            "{:<16} {:>10} {:>14.0} {:>8.3}x {:>11}",
            b.backend,
            b.items,
            b.items_per_s,
            b.items_per_s / cpu,
            vs_peer
        );
    }
    for p in &r.peers {
        println!(
            "{:<16} {:>10} {:>14.0} {:>8.3}x {:>10.2}x",
            p.peer,
            r.items,
            p.items_per_s,
            p.items_per_s / cpu,
            p.items_per_s / best_peer
        );
    }
    if let Some(note) = &r.gpu_note {
        println!("gpu: not measured: {note}");
    }
    if let Some(v) = &r.ring_vs_one {
        println!(
            "gpu ring vs 1 slot: ring ahead in {} of {} paired runs, median speed-up {:.3}x",
            v.ring_ahead, v.pairs, v.median_speedup
        );
    }
    for b in r.backends.iter().filter(|b| !b.stages.is_empty()) {
        println!();
        println!(
            "{} on {} ({} kernel): batch {} x {} slots, device busy {:.0}% of wall time, host stages overlapped {:.0}%",
            b.backend,
            b.adapter.as_deref().unwrap_or("?"),
            b.kernel.unwrap_or("?"),
            b.batch.unwrap_or(0),
            b.slots.unwrap_or(0),
            100.0 * b.device_busy.unwrap_or(0.0),
            100.0 * b.overlap.unwrap_or(0.0)
        );
        let stages: Vec<String> = b
            .stages
            .iter()
            .map(|(k, v)| format!("{k} {v:.3} s"))
            .collect();
        println!("  {}", stages.join(", "));
    }
    println!();
    println!("tally (majority vote, 5 answers per task)");
    for t in &r.tally {
        println!(
            "{:<16} {:>10} tasks {:>14.0} answers/s",
            t.backend, t.tasks, t.answers_per_s
        );
    }
}
