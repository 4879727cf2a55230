//! `microtask run`: the whole pipeline; with no arguments, on the embedded synthetic default.

use super::device::DeviceArgs;
use super::numbers;
use indicatif::ProgressBar;
use microtask::pipeline::{self, Progress, RunConfig};
use microtask::train::TrainConfig;
use std::sync::Mutex;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Training data: IDX images file (raw or .gz), a folder holding the MNIST IDX pair
    /// (train-* and t10k-*: the test set is taken from it), a folder of images with one folder
    /// per class, or synth:N[:SEED].
    #[arg(long, default_value = "synth:20000:1")]
    pub data: String,
    /// Test data (same forms). Default: synth:10000:2 with the synthetic default, the t10k file
    /// of an MNIST folder, else the last sixth of --data.
    #[arg(long)]
    pub test_data: Option<String>,
    /// Number of workers in the ensemble; each trains on its own shard of the data.
    #[arg(long, default_value_t = 5, value_parser = numbers::at_least_one)]
    pub workers: usize,
    /// Training passes over each worker's shard.
    #[arg(long, default_value_t = 10, value_parser = numbers::at_least_one)]
    pub epochs: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Items whose aggregated confidence is below this are counted for review.
    #[arg(long, default_value_t = 0.8, value_parser = numbers::fraction_f32)]
    pub review_below: f32,
    /// Every N-th test item is a gold question whose label the aggregator may use (worker
    /// quality "with gold" is scored on these).
    #[arg(long, default_value_t = 10, value_parser = numbers::at_least_one)]
    pub gold_every: usize,
}

/// indicatif bars behind the library's `Progress` callbacks.
#[derive(Default)]
struct Bars(Mutex<Option<ProgressBar>>);

impl Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
        if let Ok(mut b) = self.0.lock() {
            *b = Some(super::progress::bar(total, stage));
        }
    }
    fn advance(&self, done: u64) {
        if let Ok(b) = self.0.lock() {
            if let Some(b) = b.as_ref() {
                b.set_position(done);
            }
        }
    }
    fn finish(&self) {
        if let Ok(mut b) = self.0.lock() {
            if let Some(b) = b.take() {
                b.finish_and_clear();
            }
        }
    }
}

pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let test_data = match (&a.test_data, a.data.as_str()) {
        (None, "synth:20000:1") => Some("synth:10000:2".to_string()),
        (t, _) => t.clone(),
    };
    let config = RunConfig {
        train_data: a.data,
        test_data,
        workers: a.workers,
        train: TrainConfig {
            epochs: a.epochs,
            ..TrainConfig::default()
        },
        review_below: a.review_below,
        gold_every: a.gold_every,
    };
    let backend = a.device.backend()?;
    let report = pipeline::run(&config, backend.as_ref(), &Bars::default())?;
    print!("{}", super::report::Text(&report));
    Ok(())
}
