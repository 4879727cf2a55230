//! `microtask classify`: every worker of a model votes on every item; writes the votes file and,
//! when asked, every worker's class probabilities.

use super::device::DeviceArgs;
use super::progress;
use microtask::classify::{ClassifyJob, ClassifyStats, ProbsOut, CHUNK_ITEMS};
use microtask::data::images::RESIZE_FILTER_NAME;
use microtask::data::stream::ItemStream;
use microtask::error::Error;
use microtask::model::Ensemble;
use microtask::output::write_atomic;
use microtask::probs::ProbsFormat;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Model file (.safetensors) written by `microtask train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Items to classify: IDX images file (raw or .gz), a folder of images (any layout; the
    /// item id is the path in it; labels come from class folders named by the model's classes),
    /// or synth:N[:SEED]. Raw IDX and synth: are streamed in chunks (memory does not grow with N).
    #[arg(long)]
    pub data: String,
    /// Votes file to write: CSV `task,worker,label,confidence` (task = item id: the path in an
    /// image folder, else the row index; worker = `<model file stem>/<r>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Every worker's class probabilities: NumPy `.npy` [items, workers, classes] f32 when the
    /// name ends in .npy, else CSV `task,worker,<class>...`. Computed on the CPU (the GPU kernels
    /// return only the top class); the votes then come from the same probabilities.
    #[arg(long, value_name = "FILE")]
    pub probs_out: Option<PathBuf>,
    /// Scale images of another size than the model's (triangle filter, i.e. bilinear) instead of
    /// refusing them.
    #[arg(long)]
    pub resize: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// What the workers are called: `<model file stem>/<r>`.
fn model_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "model".into())
}

pub fn run(a: ClassifyArgs) -> anyhow::Result<()> {
    let model = Ensemble::load(&a.model)?;
    let stream = ItemStream::open_with(&a.data, &model.image_options(a.resize))?;
    if let (Some(votes), Some(probs)) = (&a.out, &a.probs_out) {
        if votes == probs {
            anyhow::bail!("--out and --probs-out name the same file");
        }
    }
    // Probabilities are computed on the CPU: no device to open for them.
    let backend = match a.probs_out {
        Some(_) => microtask::backend::select(microtask::backend::BackendKind::Cpu)?,
        None => a.device.backend()?,
    };
    if a.probs_out.is_some() && a.device.backend != super::values::BackendArg::Cpu {
        eprintln!(
            "note: --probs-out: classifying on the CPU (the GPU kernels return only the top class)"
        );
    }
    let unlabelled = stream.unlabelled.clone();
    let bar = progress::bar(stream.len as u64, "classify");
    let name = model_name(&a.model);
    let job = ClassifyJob {
        backend: backend.as_ref(),
        model: &model,
        model_name: &name,
        chunk_items: CHUNK_ITEMS,
        keep_predictions: false,
        progress: &|n| bar.set_position(n),
    };
    let stats = run_job(&job, stream, a.out.as_deref(), a.probs_out.as_deref())?;
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
            if let Some(acc) = stats.worker_accuracy(r) {
                println!("  worker {r}: accuracy {acc:.4}");
            }
        }
        if let Some(acc) = stats.majority_accuracy() {
            println!("  majority vote: accuracy {acc:.4}");
        }
    } else if let Some(why) = unlabelled {
        println!("  no accuracy: the items carry no labels: {why}");
    }
    if let Some(path) = &a.out {
        println!("votes -> {}", path.display());
    }
    if let Some(path) = &a.probs_out {
        println!("probabilities -> {}", path.display());
    }
    if a.resize {
        println!(
            "  --resize: images of another size than {} were scaled with the {RESIZE_FILTER_NAME}",
            model.shape_text()
        );
    }
    Ok(())
}

/// Runs the job with each output written atomically (a failed run leaves neither file).
fn run_job(
    job: &ClassifyJob,
    stream: ItemStream,
    votes: Option<&Path>,
    probs: Option<&Path>,
) -> microtask::Result<ClassifyStats> {
    let no_result = || Error::Invalid("classification produced no result".into());
    let run = |probs_out: Option<ProbsOut<'_>>| -> microtask::Result<ClassifyStats> {
        match votes {
            Some(path) => {
                let mut result = None;
                write_atomic(path, |w| {
                    result = Some(job.run_with_probs(stream, Some(w), probs_out)?);
                    Ok(())
                })?;
                result.ok_or_else(no_result)
            }
            None => job.run_with_probs(stream, None, probs_out),
        }
    };
    match probs {
        Some(path) => {
            let mut result = None;
            write_atomic(path, |w| {
                result = Some(run(Some(ProbsOut {
                    writer: w,
                    format: ProbsFormat::for_path(path),
                }))?);
                Ok(())
            })?;
            result.ok_or_else(no_result)
        }
        None => run(None),
    }
}
