//! What `microtask bench` measured, as the CLI prints it and as `--json` writes it (the JSON keys
//! are the field names).

use super::bandwidth::ReadBound;
use super::timing::median;
use serde::Serialize;

/// Everything one bench run measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub items: usize,
    pub workers: usize,
    /// `u8` (pixels), `f16` or `f32` (features).
    pub dtype: &'static str,
    /// Values per item.
    pub features: usize,
    /// Where the items came from (tiled source, or the `.npy` file classified).
    pub source: String,
    pub threads: usize,
    /// The memory read bound on the same items, measured in the same run.
    pub read_bound: ReadBound,
    pub backends: Vec<BackendFigures>,
    pub peers: Vec<Peer>,
    pub tally: Vec<Tally>,
    /// Why the GPU is missing from `backends`, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_vs_one: Option<RingVsOne>,
    /// Why the peers were not run, when they were not (not in the JSON: the empty list says it).
    #[serde(skip)]
    pub peers_skipped: Option<String>,
    /// Items/s against batch size per backend, when asked for (`--plot`).
    #[serde(skip)]
    pub sweep: Vec<Series>,
}

/// One backend's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BackendFigures {
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    pub items: usize,
    pub seconds: f64,
    pub items_per_s: f64,
    /// The logits kernel that ran (GPU only: `tiled` or `registers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<&'static str>,
    /// Items per batch and batches in flight (GPU only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<usize>,
    /// Seconds per stage, summed over batches (GPU only; stages overlap).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<(String, f64)>,
    /// Fraction of the wall time the device had work (GPU only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_busy: Option<f64>,
    /// Fraction of host-side stage time hidden behind device work (GPU only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap: Option<f64>,
}

/// A peer's figure, as peers.py prints it.
#[derive(Debug, Serialize)]
pub struct Peer {
    pub peer: String,
    pub items_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Majority-vote throughput on one backend.
#[derive(Debug, Serialize)]
pub struct Tally {
    pub backend: String,
    pub tasks: usize,
    pub answers: usize,
    pub answers_per_s: f64,
}

/// The ring of in-flight batches against one slot, over runs taken in turn.
#[derive(Debug, Serialize)]
pub struct RingVsOne {
    pub pairs: usize,
    /// Pairs in which the ring finished first.
    pub ring_ahead: usize,
    /// Median over pairs of (1-slot seconds / ring seconds).
    pub median_speedup: f64,
}

impl RingVsOne {
    /// From the seconds of each run, taken in turn.
    pub(crate) fn from_runs(ring: &[f64], one: &[f64]) -> Self {
        let speedups: Vec<f64> = ring.iter().zip(one).map(|(r, o)| o / r).collect();
        RingVsOne {
            pairs: speedups.len(),
            ring_ahead: speedups.iter().filter(|&&x| x > 1.0).count(),
            median_speedup: median(&speedups),
        }
    }
}

/// One line of the batch-size plot.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// (batch size, items/s)
    pub points: Vec<(f64, f64)>,
}
