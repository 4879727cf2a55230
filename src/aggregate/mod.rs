//! Aggregation: many answers per task in, one trusted label per task out.
//!
//! - [`Method::Mv`]: majority vote on the backend (most votes, then the higher confidence sum,
//!   an answer without a confidence counting as the mean of those with one: see [`majority`],
//!   then the lowest class); confidence = vote share.
//! - [`Method::Wmv`]: weighted majority vote ([`wmv`]): weights from gold accuracy, else
//!   agreement with the majority (Wawa).
//! - [`Method::Ds`]: Dawid-Skene EM ([`dawid_skene`]), gold tasks clamped.
//! - [`Method::Bayes`] (the default), [`Method::DsCrowdkit`], [`Method::OneCoin`],
//!   [`Method::Glad`], [`Method::Mace`], [`Method::Zbs`], [`Method::Kos`]: the methods of
//!   [`methods`], on the CPU ([`fitted`] turns their fits into an [`Aggregate`]). `bayes` clamps
//!   gold tasks and can take a model's probabilities ([`model_probs`]); the others use gold for
//!   scoring only.
//!
//! Why `bayes` is the default: it has the best mean rank over the shared crowd sets and
//! synthetic crowds of many shapes, and keeps that rank when any one shared set is left out
//! (`tests/default_method.rs` checks the rule; docs/aggregation.md has the table).
//!
//! Then [`quality`] scores the aggregate and the workers, and [`review`] lists the tasks that need
//! more answers.

pub mod dawid_skene;
pub mod fitted;
pub mod majority;
pub mod methods;
pub mod model_probs;
pub mod quality;
pub mod review;
pub mod wmv;

pub use dawid_skene::{DsFit, DsModel, DsOptions};
pub use model_probs::ModelProbs;
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
    Mv,
    /// Weighted majority vote: workers weighted by gold accuracy, else by agreement with the
    /// majority (Wawa).
    Wmv,
    /// Dawid-Skene EM: a confusion matrix per worker and class priors (smoothed).
    Ds,
    /// Dawid-Skene exactly as crowd-kit's `DawidSkene` (no smoothing, its start and stop rule).
    DsCrowdkit,
    /// One accuracy per worker (crowd-kit's `OneCoinDawidSkene`).
    OneCoin,
    /// GLAD: worker skill and task difficulty (crowd-kit's `GLAD`).
    Glad,
    /// MACE: each worker knows or spams (crowd-kit's `MACE`).
    Mace,
    /// Zero-based skill: a weighted vote with learned skills (crowd-kit's `ZeroBasedSkill`).
    Zbs,
    /// Karger-Oh-Shah message passing, two classes only (crowd-kit's `KOS`).
    Kos,
    /// Bayesian classifier combination: Dirichlet priors on every confusion row, set from the
    /// data; the default.
    #[default]
    Bayes,
}

impl Method {
    pub const ALL: [Method; 10] = [
        Method::Mv,
        Method::Wmv,
        Method::Ds,
        Method::DsCrowdkit,
        Method::OneCoin,
        Method::Glad,
        Method::Mace,
        Method::Zbs,
        Method::Kos,
        Method::Bayes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Mv => "mv",
            Method::Wmv => "wmv",
            Method::Ds => "ds",
            Method::DsCrowdkit => "ds-crowdkit",
            Method::OneCoin => "onecoin",
            Method::Glad => "glad",
            Method::Mace => "mace",
            Method::Zbs => "zbs",
            Method::Kos => "kos",
            Method::Bayes => "bayes",
        }
    }

    /// The [`methods`] method behind this one, for those that have one.
    pub fn fitted(self) -> Option<methods::Method> {
        Some(match self {
            Method::Mv | Method::Wmv | Method::Ds => return None,
            Method::DsCrowdkit => methods::Method::DsCrowdkit,
            Method::OneCoin => methods::Method::OneCoin,
            Method::Glad => methods::Method::Glad,
            Method::Mace => methods::Method::Mace,
            Method::Zbs => methods::Method::Zbs,
            Method::Kos => methods::Method::Kos,
            Method::Bayes => methods::Method::Bayes,
        })
    }

    /// Whether gold tasks are clamped (or weight workers) when gold is passed to the fit.
    pub fn uses_gold(self) -> bool {
        matches!(self, Method::Wmv | Method::Ds | Method::Bayes)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Aggregation settings (default: the default method, default Dawid-Skene settings).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Options {
    pub method: Method,
    /// Dawid-Skene settings (ignored by the other methods).
    pub ds: DsOptions,
    /// Also compute posteriors for `mv` (vote shares); `wmv` and `ds` always have them.
    pub posteriors: bool,
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
    /// `tasks * classes`: vote shares (mv, when asked), weight shares (wmv), posteriors (the
    /// others).
    pub posteriors: Option<Vec<f32>>,
    /// EM (or variational, message-passing) iterations run (0 for mv and wmv).
    pub iterations: usize,
    /// Dawid-Skene's log-likelihood.
    pub log_likelihood: Option<f64>,
    /// The other methods' own objective ([`methods::Fit::objective`]).
    pub objective: Option<f64>,
    /// Dawid-Skene's fitted model.
    pub model: Option<DsModel>,
    /// Weighted majority vote's worker weights.
    pub weights: Option<Vec<f32>>,
    /// Dawid-Skene or bayes with gold: the answers-only label of each clamped gold task (see
    /// [`quality::score`]).
    pub unclamped: Option<Vec<u32>>,
    /// Per worker: the probability that an answer of theirs is right, from the method's own
    /// parameters (skills, spamming probabilities, confusion diagonals; see [`fitted`]).
    pub worker_accuracy: Option<Vec<f32>>,
    /// `classes x classes`: how a typical worker answers (`[c * K + l]` = P(answer l | true c)),
    /// for the value of one more answer ([`review::by_value`]).
    pub typical_worker: Option<Vec<f64>>,
    /// With a model's probabilities: its fitted weight, and the tasks it covers that have no
    /// answers (with their tempered probabilities).
    pub with_model: Option<fitted::ModelPart>,
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
                unclamped: fit.unclamped,
                ..Aggregate::default()
            })
        }
        m => fitted::aggregate(votes, gold, m, None),
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
