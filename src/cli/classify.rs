//! `microtask classify`: every worker of a model votes on every item; writes the votes file and,
//! when asked, every worker's class probabilities.

use super::device::DeviceArgs;
use super::{checks, progress};
use microtask::classify::{ClassifyJob, ClassifyStats, Part, ProbsOut, VotesSink, CHUNK_ITEMS};
use microtask::data::images::RESIZE_FILTER_NAME;
use microtask::data::parquet::is_parquet;
use microtask::data::stream::ItemStream;
use microtask::error::Error;
use microtask::job::shard::{self, Shard, ShardSource};
use microtask::job::votes_file::NamedSink;
use microtask::job::{JobId, ShardRun, VotesFile};
use microtask::model::Ensemble;
use microtask::output::{is_gz, write_atomic, OutputWriter, Outputs};
use microtask::parquet_out::ParquetVotes;
use microtask::probs::ProbsFormat;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Model file (.safetensors) written by `microtask train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Items to classify: IDX images file (raw or .gz), a folder of images (any layout; the
    /// item id is the path in it; labels come from class folders named by the model's classes),
    /// a .npy matrix (u8 pixels or f16/f32 features, one row per item; labels from
    /// FILE-labels.npy beside it), or synth:N[:SEED]. Raw IDX, .npy and synth: are streamed in
    /// chunks (memory does not grow with N).
    #[arg(long)]
    pub data: String,
    /// Votes file to write: CSV `task,worker,label,confidence` (task = item id: the path in an
    /// image folder, else the row index; worker = `<model file stem>/<r>`). Written
    /// as `.NAME.partial` with a journal `.NAME.journal` beside it until done (see --resume);
    /// a name ending in `.gz` is compressed, one ending in `.parquet` is Parquet (the same
    /// columns); neither is journaled. With a shard: a folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run shard I of N (0-based) of the items, split by whole microtasks: writes
    /// `part-I-of-N.csv` and its manifest `part-I-of-N.json` into the --out folder, for
    /// `microtask merge`. A shard already done (valid manifest) is not run again. Without this
    /// flag the shard comes from a Slurm job array (SLURM_ARRAY_TASK_ID, _MIN, _STEP, _COUNT) or
    /// a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with --shards).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// The number of shards, for a Kubernetes Indexed Job (its completions); checked against
    /// the Slurm array's task count.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Go on from the last committed chunk of an interrupted run of the same command (killed,
    /// out of power, or stopped by SIGINT/SIGTERM, which exits 75 after committing); the result
    /// is the same bytes as one uninterrupted run. Without it, a journal left by an interrupted
    /// run is an error (exit 2). With no journal there, the run starts afresh.
    #[arg(long)]
    pub resume: bool,
    /// Every worker's class probabilities: NumPy `.npy` [items, workers, classes] f32 when the
    /// name ends in .npy, Parquet when it ends in .parquet, else CSV `task,worker,<class>...`
    /// (Parquet: the same columns). Computed on the CPU (the GPU kernels
    /// return only the top class); the votes then come from the same probabilities. Not with a
    /// shard or --resume.
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

/// SIGINT, SIGTERM and SIGHUP set the returned flag: the job stops at the next chunk boundary
/// with its journal consistent. A second signal exits at once (the journal is still good up to
/// its last commit).
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_conditional_shutdown(
            sig,
            microtask::error::INTERRUPTED_EXIT as i32,
            Arc::clone(&stop),
        )?;
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    Ok(stop)
}

pub fn run(a: ClassifyArgs) -> anyhow::Result<()> {
    let shard = shard::from_env(a.shard, a.shards, &|k| std::env::var(k).ok())?;
    let mut outs = Outputs::new();
    outs.input("--model", &a.model);
    checks::data(&mut outs, "--data", &a.data);
    match (&a.out, &shard) {
        (Some(p), Some(_)) => {
            outs.folder("--out", p);
        }
        (Some(p), None) => {
            outs.output("--out", p);
        }
        (None, Some((s, _))) => {
            return Err(Error::Usage(format!("shard {s}: --out FOLDER is needed")).into())
        }
        (None, None) if a.resume => return Err(Error::Usage("--resume needs --out".into()).into()),
        (None, None) => {}
    }
    if let Some(p) = &a.probs_out {
        if shard.is_some() || a.resume {
            return Err(Error::Usage(
                "--probs-out is written by a whole run: not with a shard or --resume".into(),
            )
            .into());
        }
        outs.output("--probs-out", p);
    }
    let whole = |p: &Path| is_gz(p) || is_parquet(p);
    if a.resume && a.out.as_deref().is_some_and(whole) && shard.is_none() {
        return Err(Error::Usage(
            "--resume: a .gz or .parquet votes file is not journaled; write plain CSV to resume"
                .into(),
        )
        .into());
    }
    outs.check()?;
    let model = Ensemble::load(&a.model)?;
    let stream = ItemStream::open_with(&a.data, &model.image_options(a.resize))?;
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
    let name = model_name(&a.model);
    let stop = stop_on_signals()?;
    let items = match &shard {
        Some((s, _)) => s.items(stream.len, CHUNK_ITEMS),
        None => 0..stream.len,
    };
    let bar = progress::bar(items.len() as u64, "classify");
    let job = ClassifyJob {
        backend: backend.as_ref(),
        model: &model,
        model_name: &name,
        chunk_items: CHUNK_ITEMS,
        keep_predictions: false,
        progress: &|n| bar.set_position(n),
    };
    let file_job = |stream: &ItemStream| -> anyhow::Result<VotesFile<'_>> {
        Ok(VotesFile {
            job: &job,
            id: JobId::new(&a.model, &name, a.resize, &a.data, stream, CHUNK_ITEMS)?,
            items: items.clone(),
            resume: a.resume,
            stop: Some(&stop),
        })
    };
    let (stats, resumed_at) = match (&a.out, &shard) {
        (Some(dir), Some((s, source))) => {
            let from = match source {
                ShardSource::Flag => "",
                ShardSource::Slurm => " (from the Slurm array)",
                ShardSource::Kubernetes => " (from the Kubernetes completion index)",
            };
            eprintln!(
                "shard {s}{from}: items {}..{} of {}",
                items.start, items.end, stream.len
            );
            match file_job(&stream)?.shard(stream, dir, *s)? {
                ShardRun::Skipped(m) => {
                    bar.finish_and_clear();
                    println!(
                        "shard {s} is already done ({} items, manifest {}): nothing to do",
                        m.end - m.start,
                        dir.join(s.file_name("json")).display()
                    );
                    return Ok(());
                }
                ShardRun::Done {
                    written, redone, ..
                } => {
                    if let Some(why) = redone {
                        eprintln!("note: shard {s} was run again: {why}");
                    }
                    (written.stats, written.resumed_at)
                }
            }
        }
        (votes, None) if a.probs_out.is_some() => {
            let probs = a
                .probs_out
                .as_deref()
                .ok_or_else(|| Error::Invalid("--probs-out is missing".into()))?;
            (
                classify_with_probs(&job, stream, votes.as_deref(), probs, &stop)?,
                None,
            )
        }
        (Some(path), None) if !whole(path) => {
            let written = file_job(&stream)?.write(stream, path, &|_, _| Ok(()))?;
            (written.stats, written.resumed_at)
        }
        (Some(path), None) => (classify_whole(&job, stream, path, &stop)?, None),
        (None, _) => (job.run(stream, None)?, None),
    };
    bar.finish_and_clear();
    let before = resumed_at.map_or(0, |r| r.saturating_sub(items.start));
    report(&stats, resumed_at, before as u64, &backend.describe());
    if stats.labelled == 0 {
        if let Some(why) = unlabelled {
            println!("  no accuracy: the items carry no labels: {why}");
        }
    }
    if a.resize {
        println!(
            "  --resize: images of another size than {} were scaled with the {RESIZE_FILTER_NAME}",
            model.shape_text()
        );
    }
    match (&a.out, &shard) {
        (Some(dir), Some((s, _))) => println!(
            "votes -> {} (manifest {})",
            dir.join(s.file_name("csv")).display(),
            s.file_name("json")
        ),
        (Some(path), None) => println!("votes -> {}", path.display()),
        _ => {}
    }
    if let Some(path) = &a.probs_out {
        println!("probabilities -> {}", path.display());
    }
    Ok(())
}

/// A whole run with `--probs-out`: the probabilities and the votes (when asked) written through
/// temporary files and renamed together (no journal).
fn classify_with_probs(
    job: &ClassifyJob<'_>,
    stream: ItemStream,
    votes: Option<&Path>,
    probs: &Path,
    stop: &AtomicBool,
) -> anyhow::Result<ClassifyStats> {
    let len = stream.len;
    let part = Part {
        stop: Some(stop),
        ..Part::all(len)
    };
    let stopped = |stats: &ClassifyStats| {
        (stats.items < len as u64 && stop.load(Ordering::SeqCst)).then(|| {
            Error::Interrupted(format!(
                "stopped by a signal after {} of {len} items; nothing was written",
                stats.items
            ))
        })
    };
    let outs = Outputs::new();
    let stats = outs.commit(|| {
        let mut result = None;
        write_atomic(probs, |pw| {
            let probs_out = Some(ProbsOut {
                writer: pw,
                format: ProbsFormat::for_path(probs),
            });
            let stats = match votes {
                Some(path) => {
                    let mut stats = None;
                    write_atomic(path, |w| {
                        let s = whole_votes(w, path, |sink| {
                            job.run_part_with_probs(stream, part, Some(sink), probs_out)
                        })?;
                        if let Some(e) = stopped(&s) {
                            return Err(e);
                        }
                        stats = Some(s);
                        Ok(())
                    })?;
                    stats
                }
                None => Some(job.run_part_with_probs(stream, part, None, probs_out)?),
            };
            if let Some(e) = stats.as_ref().and_then(stopped) {
                return Err(e);
            }
            result = stats;
            Ok(())
        })?;
        result.ok_or_else(|| Error::Invalid("classification produced no result".into()))
    })?;
    Ok(stats)
}

/// Runs `run` into a votes file written whole: Parquet columns for a `.parquet` name, else CSV
/// rows (compressed for `.gz`).
fn whole_votes(
    w: &mut OutputWriter,
    path: &Path,
    run: impl FnOnce(&mut dyn VotesSink) -> microtask::Result<ClassifyStats>,
) -> microtask::Result<ClassifyStats> {
    if is_parquet(path) {
        run(&mut ParquetVotes::new(w, path))
    } else {
        run(&mut NamedSink { writer: w, path })
    }
}

/// A `.gz` or `.parquet` votes file: written whole through a temporary file (no journal).
fn classify_whole(
    job: &ClassifyJob<'_>,
    stream: ItemStream,
    path: &Path,
    stop: &AtomicBool,
) -> anyhow::Result<ClassifyStats> {
    let len = stream.len;
    let mut result = None;
    write_atomic(path, |w| {
        let part = Part {
            stop: Some(stop),
            ..Part::all(len)
        };
        let stats = whole_votes(w, path, |sink| job.run_part(stream, part, Some(sink)))?;
        if stats.items < len as u64 && stop.load(Ordering::SeqCst) {
            return Err(Error::Interrupted(format!(
                "stopped by a signal after {} of {len} items; {} was not written",
                stats.items,
                path.display()
            )));
        }
        result = Some(stats);
        Ok(())
    })?;
    result.ok_or_else(|| Error::Invalid("classification produced no result".into()).into())
}

/// The summary of a classify run; `before` items were done by the runs it resumed (they count
/// in the accuracy, not in the speed).
fn report(stats: &ClassifyStats, resumed_at: Option<usize>, before: u64, backend: &str) {
    let resumed = resumed_at.map_or(String::new(), |i| format!(", resumed at item {i}"));
    let now = stats.items.saturating_sub(before);
    println!(
        "classified {} items x {} workers in {:.2} s ({:.0} items/s) on {backend}{resumed}",
        stats.items,
        stats.workers,
        stats.seconds,
        now as f64 / stats.seconds.max(1e-9),
    );
    if stats.seconds > 0.0 {
        println!(
            "  stages (overlapped): read {:.2} s, compute {:.2} s, tally+write {:.2} s; bound by {}",
            stats.read_seconds,
            stats.compute_seconds,
            stats.write_seconds,
            stats.bound_by()
        );
    }
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
}
