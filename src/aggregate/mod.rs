//! Aggregation: many answers per task in, one trusted label per task out.
//!
//! - [`Method::Mv`]: majority vote on the backend (most votes, then the higher confidence sum,
//!   an answer without a confidence counting as the mean of those with one: see [`majority`],
//!   then the lowest class); confidence = vote share.
//! - [`Method::Wmv`]: weighted majority vote ([`wmv`]): weights from gold accuracy, else
//!   agreement with the majority (Wawa).
//! - [`Method::Ds`]: Dawid-Skene EM ([`dawid_skene`]), gold tasks clamped.
//!
//! Then [`quality`] scores the aggregate and the workers, and [`review`] lists the tasks that need
//! more answers.

pub mod dawid_skene;
pub mod majority;
pub mod methods;
pub mod quality;
pub mod review;
pub mod wmv;

pub use dawid_skene::{DsFit, DsModel, DsOptions};
pub use quality::{GoldScore, WorkerQuality};
pub use review::ReviewItem;

use crate::backend::{Backend, TaskLabel};
use crate::data::parquet::{is_parquet, write_table, Column};
use crate::data::votes::{push_field, write_rows, Gold, VoteTable};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// How answers are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Majority vote: most answers wins; ties to the higher summed confidence (an answer without
    /// one counts as the mean of those with one), then the lowest class.
    #[default]
    Mv,
    /// Weighted majority vote: workers weighted by gold accuracy, else by agreement with the
    /// majority (Wawa).
    Wmv,
    /// Dawid-Skene EM: a confusion matrix per worker and class priors.
    Ds,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Mv => "mv",
            Method::Wmv => "wmv",
            Method::Ds => "ds",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Aggregation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub method: Method,
    /// Dawid-Skene settings (ignored by the other methods).
    pub ds: DsOptions,
    /// Also compute posteriors for `mv` (vote shares); `wmv` and `ds` always have them.
    pub posteriors: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            method: Method::Mv,
            ds: DsOptions::default(),
            posteriors: false,
        }
    }
}

impl Options {
    pub fn new(method: Method) -> Self {
        Options {
            method,
            ..Options::default()
        }
    }
}

/// The result of an aggregation.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    pub method: Method,
    /// One per task, in task-id order.
    pub labels: Vec<TaskLabel>,
    /// `tasks * classes`: vote shares (mv, when asked), weight shares (wmv), posteriors (ds).
    pub posteriors: Option<Vec<f32>>,
    /// EM iterations run (0 for mv and wmv).
    pub iterations: usize,
    pub log_likelihood: Option<f64>,
    /// Dawid-Skene's fitted model.
    pub model: Option<DsModel>,
    /// Weighted majority vote's worker weights.
    pub weights: Option<Vec<f32>>,
    /// Dawid-Skene with gold: the answers-only label of each clamped gold task (see
    /// [`quality::score`]).
    pub unclamped: Option<Vec<u32>>,
}

/// Aggregates `votes` with `opts.method`. `gold`, when given, is used by the method: `wmv`
/// weights workers by it, `ds` clamps the gold tasks; `mv` ignores it. Pass `None` to use gold
/// only for scoring afterwards ([`quality::score`]).
pub fn aggregate(
    votes: &VoteTable,
    gold: Option<&Gold>,
    opts: &Options,
    backend: &dyn Backend,
) -> Result<Aggregate> {
    if votes.is_empty() {
        return Err(Error::Invalid("no answers to aggregate".into()));
    }
    votes.validate()?;
    match opts.method {
        Method::Mv => {
            let labels = backend.majority(&majority::for_ties(votes))?;
            let posteriors = opts.posteriors.then(|| {
                let (start, order) = votes.by_task();
                majority::vote_shares(votes, &start, &order)
            });
            Ok(Aggregate {
                method: Method::Mv,
                labels,
                posteriors,
                ..Aggregate::default()
            })
        }
        Method::Wmv => {
            let mv = backend.majority(&majority::for_ties(votes))?;
            let weights = wmv::weights(votes, &mv, gold);
            let (labels, post) = wmv::weighted_vote(votes, &weights, &mv);
            Ok(Aggregate {
                method: Method::Wmv,
                labels,
                posteriors: Some(post),
                weights: Some(weights),
                ..Aggregate::default()
            })
        }
        Method::Ds => {
            // Validated above: the grouping need not scan the votes again.
            let grouping = dawid_skene::TaskGrouping::of_valid(votes)?;
            let fit = dawid_skene::fit_grouped_on(backend, votes, &grouping, gold, &opts.ds)?;
            Ok(Aggregate {
                method: Method::Ds,
                labels: fit.labels,
                posteriors: Some(fit.posteriors),
                iterations: fit.iterations,
                log_likelihood: fit.log_likelihood,
                model: Some(fit.model),
                weights: None,
                unclamped: fit.unclamped,
            })
        }
    }
}

/// Writes `task,label,confidence,answers` with the original task and class names, atomically
/// (as Parquet when the name ends in `.parquet`).
pub fn write_labels(path: &Path, votes: &VoteTable, labels: &[TaskLabel]) -> Result<()> {
    if is_parquet(path) {
        let cols = [
            Column::names("task", &votes.tasks, |t| t as u32),
            Column::names("label", &votes.classes, |t| labels[t].label),
            Column::float("confidence", |t| labels[t].confidence),
            Column::int("answers", |t| labels[t].answers as i64),
        ];
        return write_table(path, labels.len(), &cols);
    }
    write_rows(
        path,
        "task,label,confidence,answers\n",
        labels.len(),
        |t, buf| {
            let l = &labels[t];
            push_field(buf, &votes.tasks[t]);
            buf.push(b',');
            push_field(buf, &votes.classes[l.label as usize]);
            let _ = writeln!(buf, ",{},{}", l.confidence, l.answers);
        },
    )
}

/// Writes `task,<class 1>,<class 2>,...` with one probability per class, atomically (as
/// Parquet when the name ends in `.parquet`).
pub fn write_posteriors(path: &Path, votes: &VoteTable, posteriors: &[f32]) -> Result<()> {
    let c = votes.n_classes().max(1);
    if is_parquet(path) {
        let mut cols = vec![Column::names("task", &votes.tasks, |t| t as u32)];
        for (k, name) in votes.classes.iter().enumerate() {
            cols.push(Column::float(name, move |t| posteriors[t * c + k]));
        }
        return write_table(path, votes.n_tasks(), &cols);
    }
    let mut header = Vec::from(&b"task"[..]);
    for name in &votes.classes {
        header.push(b',');
        push_field(&mut header, name);
    }
    header.push(b'\n');
    let header = String::from_utf8_lossy(&header).into_owned();
    write_rows(path, &header, votes.n_tasks(), |t, buf| {
        push_field(buf, &votes.tasks[t]);
        for p in &posteriors[t * c..t * c + c] {
            let _ = write!(buf, ",{p}");
        }
        buf.push(b'\n');
    })
}
