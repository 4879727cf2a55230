//! The whole job that `microtask run` does: data -> partition -> train -> classify -> tally ->
//! report. Each stage reports progress through `Progress` so the CLI can draw bars.

use crate::aggregate::{self, quality, review, Aggregate, Method, WorkerQuality};
use crate::backend::{Backend, Predictions, TaskLabel};
use crate::classify::{worker_name, ClassifyJob, ClassifyStats, CHUNK_ITEMS};
use crate::data::stream::ItemStream;
use crate::data::votes::{Gold, VoteTable, NO_LABEL};
use crate::data::{Classes, Dataset, ImageOptions};
use crate::error::{Error, Result};
use crate::model::Ensemble;
use crate::train::{train_ensemble, TrainConfig};
use std::path::Path;
use std::time::Instant;

/// What `run` calls its model: its workers are `model/<r>`.
pub const MODEL_NAME: &str = "model";

/// Where `run` gets its data.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub train_data: String,
    /// `None`: hold out the last sixth of the training data.
    pub test_data: Option<String>,
    pub workers: usize,
    pub train: TrainConfig,
    /// Tasks whose aggregated confidence is below this go to review.
    pub review_below: f32,
    /// Every this-many-th test item is a gold question (its label known to the aggregator).
    pub gold_every: usize,
}

/// Callbacks a front end uses to show progress: `start(stage, total)`, then `advance(done)`.
pub trait Progress: Sync {
    fn start(&self, stage: &str, total: u64);
    fn advance(&self, done: u64);
    fn finish(&self);
}

/// One stage's figures for the report.
#[derive(Debug, Clone)]
pub struct StageTime {
    pub name: &'static str,
    pub items: u64,
    pub seconds: f64,
}

impl StageTime {
    pub fn items_per_second(&self) -> f64 {
        self.items as f64 / self.seconds.max(1e-9)
    }
}

/// Everything the `run` report prints.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub train_source: String,
    pub test_source: String,
    pub train_items: usize,
    pub test_items: usize,
    /// Why the test items carry no labels, when their source could have given some.
    pub test_unlabelled: Option<String>,
    pub backend: String,
    pub model: Ensemble,
    pub classify: ClassifyStats,
    pub majority: Vec<TaskLabel>,
    pub majority_accuracy: Option<f64>,
    /// Dawid-Skene without gold, and with the gold questions clamped.
    pub ds: Aggregate,
    pub ds_accuracy: Option<f64>,
    /// With gold clamped: accuracy on the items that are not gold questions.
    pub ds_gold_accuracy: Option<f64>,
    /// Gold questions among the test items (0 when the items carry no labels).
    pub gold_questions: usize,
    /// Per worker: quality estimated by Dawid-Skene without gold, and scored on gold questions.
    pub quality_no_gold: Vec<WorkerQuality>,
    pub quality_gold: Vec<WorkerQuality>,
    pub review_below: f32,
    pub under_review: usize,
    pub stages: Vec<StageTime>,
}

/// A folder holding the MNIST IDX pair (`train-images-idx3-ubyte[.gz]`, `t10k-...`) stands for
/// its training and test files.
fn resolve_mnist_folder(spec: &str) -> Option<(String, String)> {
    let dir = Path::new(spec);
    if !dir.is_dir() {
        return None;
    }
    let find = |stem: &str| {
        [".gz", ""]
            .iter()
            .map(|ext| dir.join(format!("{stem}-images-idx3-ubyte{ext}")))
            .find(|p| p.exists())
            .map(|p| p.display().to_string())
    };
    Some((find("train")?, find("t10k")?))
}

fn load_sets(config: &RunConfig) -> Result<(Dataset, Dataset)> {
    let (train_spec, test_spec) =
        match (&config.test_data, resolve_mnist_folder(&config.train_data)) {
            (None, Some((train, test))) => (train, Some(test)),
            (test, _) => (config.train_data.clone(), test.clone()),
        };
    let train = crate::data::load(&train_spec)?;
    match test_spec {
        Some(spec) => {
            // Test images are read as the model will take them: the training images' size and
            // channels, and labels only from folders named by the training set's classes.
            let classes = if !train.class_names.is_empty() {
                Classes::Named(train.class_names.clone())
            } else if train.labels.is_some() {
                Classes::Numbered(crate::train::class_count(&train)?)
            } else {
                Classes::Any
            };
            let opts = ImageOptions {
                channels: train.channels,
                size: Some((train.height, train.width)),
                resize: false,
                classes,
            };
            let test = crate::data::load_with(&spec, &opts)?;
            Ok((train, test))
        }
        None => {
            let cut = train.len() - train.len() / 6;
            if cut == 0 || cut == train.len() {
                return Err(Error::Invalid(format!(
                    "{}: too few items ({}) to hold out a test set; give --test-data",
                    train.source,
                    train.len()
                )));
            }
            let test = train.slice(cut..train.len());
            Ok((train.slice(0..cut), test))
        }
    }
}

/// Model votes as a vote table: task = item id, worker = `model/<r>`, the model's classes.
fn votes_from_predictions(pred: &Predictions, model: &Ensemble, ids: &[String]) -> VoteTable {
    let (n, r) = (pred.len(), pred.workers);
    VoteTable {
        task: (0..n as u32)
            .flat_map(|i| std::iter::repeat_n(i, r))
            .collect(),
        worker: (0..n).flat_map(|_| 0..r as u32).collect(),
        label: pred.labels.clone(),
        confidence: pred.confidence.clone(),
        tasks: ids.to_vec(),
        workers: (0..r).map(|w| worker_name(MODEL_NAME, w)).collect(),
        classes: model.class_names_or_numbers(),
    }
}

fn accuracy(labels: &[TaskLabel], truth: Option<&Vec<u8>>) -> Option<f64> {
    accuracy_where(labels, truth, |_| true)
}

/// Accuracy over the items `keep` selects; `None` without labels or without such items.
fn accuracy_where(
    labels: &[TaskLabel],
    truth: Option<&Vec<u8>>,
    keep: impl Fn(usize) -> bool,
) -> Option<f64> {
    let truth = truth?;
    let (mut seen, mut correct) = (0usize, 0usize);
    for (_, (l, &t)) in labels
        .iter()
        .zip(truth)
        .enumerate()
        .filter(|(i, _)| keep(*i))
    {
        seen += 1;
        correct += (l.label == t as u32) as usize;
    }
    (seen > 0).then(|| correct as f64 / seen as f64)
}

/// Runs the whole job on `backend`.
pub fn run(
    config: &RunConfig,
    backend: &dyn Backend,
    progress: &dyn Progress,
) -> Result<RunReport> {
    let mut stages = Vec::new();
    let t = Instant::now();
    let (train, test) = load_sets(config)?;
    stages.push(StageTime {
        name: "load",
        items: (train.len() + test.len()) as u64,
        seconds: t.elapsed().as_secs_f64(),
    });

    let t = Instant::now();
    progress.start("train", (train.len() * config.train.epochs) as u64);
    let done = std::sync::atomic::AtomicU64::new(0);
    let model = train_ensemble(&train, config.workers, &config.train, &|n| {
        let total = done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
        progress.advance(total);
    })?;
    progress.finish();
    stages.push(StageTime {
        name: "train",
        items: (train.len() * config.train.epochs) as u64,
        seconds: t.elapsed().as_secs_f64(),
    });

    progress.start("classify", test.len() as u64);
    let truth = test.labels.clone();
    let (test_source, test_items) = (test.source.clone(), test.len());
    let ids: Vec<String> = (0..test.len()).map(|i| test.id(i)).collect();
    let test_unlabelled = test.unlabelled.clone();
    let job = ClassifyJob {
        backend,
        model: &model,
        model_name: MODEL_NAME,
        chunk_items: CHUNK_ITEMS,
        keep_predictions: true,
        progress: &|n| progress.advance(n),
    };
    let classify = job.run(ItemStream::from_dataset(test)?, None)?;
    progress.finish();
    stages.push(StageTime {
        name: "classify",
        items: classify.items,
        seconds: classify.seconds,
    });

    let t = Instant::now();
    let votes = votes_from_predictions(&classify.predictions, &model, &ids);
    let majority = backend.majority(&votes)?;
    stages.push(StageTime {
        name: "tally (mv)",
        items: votes.len() as u64,
        seconds: t.elapsed().as_secs_f64(),
    });
    let majority_accuracy = accuracy(&majority, truth.as_ref());

    // Dawid-Skene twice: from the answers alone, then with the gold questions clamped.
    let t = Instant::now();
    let ds_opts = aggregate::Options::new(Method::Ds);
    let ds = aggregate::aggregate(&votes, None, &ds_opts, backend)?;
    let gold = truth.as_ref().map(|labels| {
        let every = config.gold_every.max(1);
        Gold::from_labels(
            labels
                .iter()
                .enumerate()
                .map(|(i, &l)| if i % every == 0 { l as u32 } else { NO_LABEL })
                .collect(),
        )
    });
    let ds_gold = match &gold {
        Some(g) => Some(aggregate::aggregate(&votes, Some(g), &ds_opts, backend)?),
        None => None,
    };
    stages.push(StageTime {
        name: "tally (ds)",
        items: votes.len() as u64
            * (ds.iterations + ds_gold.as_ref().map_or(0, |d| d.iterations)) as u64,
        seconds: t.elapsed().as_secs_f64(),
    });
    let quality_no_gold = quality::workers(&votes, &ds, None);
    let quality_gold = match (&ds_gold, &gold) {
        (Some(d), Some(g)) => quality::workers(&votes, d, Some(g)),
        _ => Vec::new(),
    };
    let under_review = review::count_below(&ds.labels, config.review_below);
    Ok(RunReport {
        train_source: train.source.clone(),
        test_source,
        train_items: train.len(),
        test_items,
        test_unlabelled,
        backend: backend.describe(),
        majority_accuracy,
        ds_accuracy: accuracy(&ds.labels, truth.as_ref()),
        ds_gold_accuracy: ds_gold.as_ref().and_then(|d| {
            let every = config.gold_every.max(1);
            accuracy_where(&d.labels, truth.as_ref(), |i| i % every != 0)
        }),
        gold_questions: gold.as_ref().map_or(0, |g| g.tasks),
        quality_no_gold,
        quality_gold,
        ds,
        model,
        classify,
        majority,
        review_below: config.review_below,
        under_review,
        stages,
    })
}
