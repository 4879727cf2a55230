//! `microtask classify`: every worker of a model votes on every item; writes the votes file.

use super::device::DeviceArgs;
use super::progress;
use microtask::classify::{ClassifyJob, CHUNK_ITEMS};
use microtask::data::stream::ItemStream;
use microtask::error::Error;
use microtask::model::Ensemble;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Model file (.safetensors) written by `microtask train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Items to classify: IDX images file (raw or .gz), a .npy matrix (u8 pixels or f16/f32
    /// features, one row per item; labels from FILE-labels.npy beside it), class-per-folder image
    /// directory, or synth:N[:SEED]. Raw IDX, .npy and synth: are streamed in chunks (memory does
    /// not grow with N).
    #[arg(long)]
    pub data: String,
    /// Votes file to write: CSV `task,worker,label,confidence` (task = item index).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(a: ClassifyArgs) -> anyhow::Result<()> {
    let model = Ensemble::load(&a.model)?;
    let stream = ItemStream::open(&a.data)?;
    let backend = a.device.backend()?;
    let bar = progress::bar(stream.len as u64, "classify");
    let job = ClassifyJob {
        backend: backend.as_ref(),
        model: &model,
        chunk_items: CHUNK_ITEMS,
        keep_predictions: false,
        progress: &|n| bar.set_position(n),
    };
    let stats = match &a.out {
        Some(path) => {
            let mut result = None;
            microtask::output::write_atomic(path, |w| {
                result = Some(job.run(stream, Some(w))?);
                Ok(())
            })?;
            result.ok_or_else(|| Error::Invalid("classification produced no result".into()))?
        }
        None => job.run(stream, None)?,
    };
    bar.finish_and_clear();
    println!(
        "classified {} items x {} workers in {:.2} s ({:.0} items/s) on {}",
        stats.items,
        stats.workers,
        stats.seconds,
        stats.items_per_second(),
        backend.describe()
    );
    println!(
        "  stages (overlapped): read {:.2} s, compute {:.2} s, tally+write {:.2} s; bound by {}",
        stats.read_seconds,
        stats.compute_seconds,
        stats.write_seconds,
        stats.bound_by()
    );
    if stats.labelled > 0 {
        for r in 0..stats.workers {
            println!(
                "  worker {r}: accuracy {:.4}",
                stats.worker_accuracy(r).unwrap_or(0.0)
            );
        }
        println!(
            "  majority vote: accuracy {:.4}",
            stats.majority_accuracy().unwrap_or(0.0)
        );
    }
    if let Some(path) = &a.out {
        println!("votes -> {}", path.display());
    }
    Ok(())
}
