//! `microtask bench`: end-to-end classification throughput of every available backend in one
//! run, with GPU stage timings, majority-vote tallies, and the peers (NumPy, ONNX Runtime) when
//! their venv is set up.

use super::values::DtypeArg;
use super::{checks, numbers, plot};
use microtask::bench::{self, BenchConfig, BenchReport, PeersConfig};
use microtask::output::{write_atomic, Outputs};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Items to classify per backend (MNIST test images tiled to this count, as peers.py does).
    #[arg(long, default_value_t = 1_000_000, value_parser = numbers::at_least_one)]
    pub items: usize,
    /// Items for the GPU runs on a software adapter (lavapipe is a CPU: it is slow). A hardware
    /// GPU gets --items.
    #[arg(long, default_value_t = 400_000, value_parser = numbers::at_least_one)]
    pub software_gpu_items: usize,
    /// Workers in the (random) ensemble.
    #[arg(long, default_value_t = 1, value_parser = numbers::at_least_one)]
    pub workers: usize,
    /// Timed runs per figure (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = numbers::at_least_one)]
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
    /// The items' type: u8 pixels, or f16/f32 features (embedding-like, written to a temporary
    /// .npy file of --items rows that both microtask and the peers read).
    #[arg(long, value_enum, default_value_t = DtypeArg::U8)]
    pub dtype: DtypeArg,
    /// Values per item of the generated features (--dtype f16|f32).
    #[arg(long, default_value_t = 512)]
    pub features: usize,
    /// Classify this .npy matrix (u8, f16 or f32) instead, and time the peers on the very file
    /// (its dtype and width replace --dtype and --features, its rows --items).
    #[arg(long)]
    pub npy: Option<PathBuf>,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    if let Some(p) = &a.plot {
        let mut outs = Outputs::new();
        outs.output("--plot", p);
        if let Some(d) = &a.data {
            checks::data(&mut outs, "--data", d);
        }
        outs.check()?;
    }
    let config = BenchConfig {
        items: a.items,
        software_gpu_items: a.software_gpu_items,
        workers: a.workers,
        reps: a.reps,
        data: a.data,
        dtype: a.dtype.into(),
        features: a.features,
        npy: a.npy,
        peers: PeersConfig {
            dir: a.peers_dir,
            system_python: a.peers,
        },
        sweep: a.plot.is_some(),
    };
    let say = |m: &str| {
        if !a.json {
            eprintln!("{m}");
        }
    };
    let report = bench::run(&config, &say)?;
    if let Some(why) = &report.peers_skipped {
        eprintln!("microtask: peers skipped: {why}");
    }
    if let Some(path) = &a.plot {
        let svg = plot::svg(
            "microtask classify: items/s against batch size",
            &report.sweep,
        );
        write_atomic(path, |w| {
            std::io::Write::write_all(w, svg.as_bytes()).map_err(|e| microtask::Error::io(path, e))
        })?;
        say(&format!("plot -> {}", path.display()));
    }
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &BenchReport) {
    let cpu = r.backends[0].items_per_s;
    let best_peer = r.peers.iter().map(|p| p.items_per_s).fold(0.0, f64::max);
    let bound = r.read_bound.items_per_s;
    let kind = if r.dtype == "u8" {
        "pixels"
    } else {
        "features"
    };
    println!(
        "classify: {} workers x 10 classes, {} {} {kind} per item, {} threads; items from {}",
        r.workers, r.features, r.dtype, r.threads, r.source
    );
    println!(
        "read bound: {:.1} GB/s over the same items ({} threads) = {:.0} items/s",
        r.read_bound.bytes_per_s / 1e9,
        r.read_bound.threads,
        bound
    );
    println!(
        "{:<16} {:>10} {:>14} {:>9} {:>12} {:>11}",
        "backend", "items", "items/s", "vs cpu", "vs best peer", "read bound"
    );
    let vs_peer = |v: f64| {
        if best_peer > 0.0 {
            format!("{:.2}x", v / best_peer)
        } else {
            "-".into()
        }
    };
    for b in &r.backends {
        println!(
            "{:<16} {:>10} {:>14.0} {:>8.3}x {:>12} {:>10.0}%",
            b.backend,
            b.items,
            b.items_per_s,
            b.items_per_s / cpu,
            vs_peer(b.items_per_s),
            100.0 * b.items_per_s / bound
        );
    }
    for p in &r.peers {
        println!(
            "{:<16} {:>10} {:>14.0} {:>8.3}x {:>12} {:>10.0}%",
            p.peer,
            r.items,
            p.items_per_s,
            p.items_per_s / cpu,
            vs_peer(p.items_per_s),
            100.0 * p.items_per_s / bound
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
