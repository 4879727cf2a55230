//! `microtask train`: train an ensemble of softmax workers and save it as safetensors.

use super::{checks, numbers, progress};
use anyhow::Context;
use microtask::data::npy;
use microtask::output::Outputs;
use microtask::train::{train_ensemble, train_matrix, TrainConfig};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training data: an IDX images file (raw or .gz, labels read from the file beside it),
    /// a .npy matrix (u8 pixels or f16/f32 features, one row per item), a folder of images with
    /// one folder per class (integer names are the labels; other names, sorted, are recorded in
    /// the model as its class names), or synth:N[:SEED].
    #[arg(long)]
    pub data: String,
    /// Labels of a .npy matrix: integers, one per row, as a .npy file (default: FILE-labels.npy
    /// beside FILE.npy).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Number of workers; worker r trains on shard r of the data with its own seed.
    #[arg(long, default_value_t = 5, value_parser = numbers::at_least_one)]
    pub workers: usize,
    /// Passes over each worker's shard.
    #[arg(long, default_value_t = 10, value_parser = numbers::at_least_one)]
    pub epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 32, value_parser = numbers::at_least_one)]
    pub batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.001, value_parser = numbers::positive_f32)]
    pub learning_rate: f32,
    /// Channels per pixel of a folder of images: 1 (grayscale) or 3 (RGB). The model records it.
    #[arg(long, default_value_t = 1, value_parser = numbers::channels)]
    pub channels: usize,
    /// Seed of the weight initialisation and shuffling.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the model (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let mut outs = Outputs::new();
    checks::data(&mut outs, "--data", &a.data);
    if let Some(labels) = &a.labels {
        outs.input("--labels", labels);
    }
    outs.output("--out", &a.out);
    outs.check()?;
    let opts = microtask::data::ImageOptions {
        channels: a.channels,
        ..Default::default()
    };
    let config = TrainConfig {
        epochs: a.epochs,
        batch: a.batch,
        learning_rate: a.learning_rate,
        seed: a.seed,
    };
    let t = std::time::Instant::now();
    let path = std::path::Path::new(&a.data);
    let (model, items, source) = if npy::is_npy(path) {
        let m = npy::NpyMatrix::open(path)?;
        let labels = npy::labels_for(path, m.rows, a.labels.as_deref())?.with_context(|| {
            format!(
                "{}: training needs labels: pass --labels FILE.npy or put them in {}",
                a.data,
                npy::labels_path_for(path).display()
            )
        })?;
        let bar = progress::bar((m.rows * a.epochs) as u64, "train");
        let model = train_matrix(&m, &labels, a.workers, &config, &|n| bar.inc(n))?;
        bar.finish_and_clear();
        (model, m.rows, a.data.clone())
    } else {
        if a.labels.is_some() {
            anyhow::bail!(
                "--labels is for .npy data; {} carries its own labels",
                a.data
            );
        }
        let set = microtask::data::load_with(&a.data, &opts)?;
        let bar = progress::bar((set.len() * a.epochs) as u64, "train");
        let model = train_ensemble(&set, a.workers, &config, &|n| bar.inc(n))?;
        bar.finish_and_clear();
        (model, set.len(), set.source)
    };
    model
        .save(&a.out)
        .with_context(|| format!("saving the model to {}", a.out.display()))?;
    println!(
        "trained {} workers x {} classes on {} items of {} ({} epochs) in {:.1} s -> {}",
        model.workers,
        model.classes,
        items,
        source,
        a.epochs,
        t.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}
