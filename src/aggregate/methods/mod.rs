//! Aggregation methods beyond majority vote and our Dawid-Skene, each in one file, each on one
//! neutral layout of the answers ([`Answers`]) and each returning posteriors plus its own
//! parameters ([`Fit`]).
//!
//! - [`ds_crowdkit`]: Dawid-Skene exactly as crowd-kit 1.4.2's `DawidSkene`.
//! - [`onecoin`]: crowd-kit's `OneCoinDawidSkene` (one accuracy per worker).
//! - [`glad`]: GLAD (worker skill alpha, task difficulty beta), crowd-kit's defaults.
//! - [`mace`]: MACE (spammers), variational, crowd-kit's defaults.
//! - [`zbs`]: crowd-kit's `ZeroBasedSkill` (weighted majority vote with learned skills).
//! - [`kos`]: Karger-Oh-Shah message passing, two classes only.
//! - [`bayes`]: Bayesian classifier combination (Dirichlet priors, mean-field variational), with
//!   gold clamped and a model's probabilities weighted by [`temper`] when given.
//!
//! **Tie rule, every method**: a task's label is the class with the highest posterior; exact ties
//! go to the lowest class index ([`argmax`]). crowd-kit's `idxmax` does the same in its column
//! order, which is the sorted class order on which our class ids are built.
//!
//! **Degenerate input, every method**: no answers is an error; one class gives every task
//! posterior 1 for it; a task with no answers gets the method's class prior (uniform when the
//! method has none). No method writes a NaN into its posteriors.

pub mod bayes;
pub mod digamma;
pub mod ds_crowdkit;
pub mod glad;
pub mod kos;
pub mod layout;
pub mod mace;
pub mod onecoin;
pub mod temper;
pub mod zbs;

pub use layout::Layout;

use crate::data::votes::VoteTable;
use crate::error::{Error, Result};

/// One entry per answer, dense ids: answer `i` says task `task[i]` is class `label[i]`, given by
/// worker `worker[i]`.
#[derive(Debug, Clone, Copy)]
pub struct Answers<'a> {
    pub tasks: usize,
    pub workers: usize,
    pub classes: usize,
    pub task: &'a [u32],
    pub worker: &'a [u32],
    pub label: &'a [u32],
}

impl<'a> Answers<'a> {
    /// The answers of a vote table (its columns are borrowed, not copied).
    pub fn from_table(t: &'a VoteTable) -> Answers<'a> {
        Answers {
            tasks: t.tasks.len(),
            workers: t.workers.len(),
            classes: t.classes.len(),
            task: &t.task,
            worker: &t.worker,
            label: &t.label,
        }
    }

    pub fn len(&self) -> usize {
        self.task.len()
    }

    pub fn is_empty(&self) -> bool {
        self.task.is_empty()
    }

    /// Checks lengths and id ranges; no answers is an error (there is nothing to aggregate).
    pub fn check(&self) -> Result<()> {
        let n = self.task.len();
        if self.worker.len() != n || self.label.len() != n {
            return Err(Error::Invalid(format!(
                "answer columns differ in length: task {n}, worker {}, label {}",
                self.worker.len(),
                self.label.len()
            )));
        }
        if n == 0 {
            return Err(Error::Invalid("no answers to aggregate".into()));
        }
        let over = |col: &[u32], max: usize, what: &str| -> Result<()> {
            match col.iter().position(|&x| x as usize >= max) {
                Some(i) => Err(Error::Invalid(format!(
                    "answer {i}: {what} id {} is not below the {what} count {max}",
                    col[i]
                ))),
                None => Ok(()),
            }
        };
        over(self.task, self.tasks, "task")?;
        over(self.worker, self.workers, "worker")?;
        over(self.label, self.classes, "class")
    }
}

/// A fitted method: posteriors (`tasks x classes`, rows sum to 1) and its own parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit<P> {
    pub classes: usize,
    pub posteriors: Vec<f64>,
    /// Iterations run (EM, variational or message-passing rounds; 0 when none were needed).
    pub iterations: usize,
    /// The method's own objective at the end (ELBO per answer, GLAD's Q per row, MACE's log
    /// marginal likelihood, ...); `None` for methods without one.
    pub objective: Option<f64>,
    pub params: P,
}

impl<P> Fit<P> {
    /// The most probable class of each task; ties to the lowest class.
    pub fn labels(&self) -> Vec<u32> {
        self.posteriors
            .chunks_exact(self.classes.max(1))
            .map(argmax)
            .collect()
    }

    /// Tasks whose two best posteriors are within `eps` (labels that a rounding can flip).
    pub fn near_ties(&self, eps: f64) -> usize {
        self.posteriors
            .chunks_exact(self.classes.max(1))
            .filter(|row| {
                let (mut a, mut b) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
                for &p in row.iter() {
                    if p > a {
                        b = a;
                        a = p;
                    } else if p > b {
                        b = p;
                    }
                }
                a - b <= eps
            })
            .count()
    }
}

/// Index of the largest value; ties (and NaN, which never occurs) to the lowest index.
pub fn argmax(row: &[f64]) -> u32 {
    let mut best = 0;
    for (k, &p) in row.iter().enumerate() {
        if p > row[best] {
            best = k;
        }
    }
    best as u32
}

/// The methods of this module, for callers that pick one by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    DsCrowdkit,
    OneCoin,
    Glad,
    Mace,
    Zbs,
    Kos,
    Bayes,
}

impl Method {
    pub const ALL: [Method; 7] = [
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
            Method::DsCrowdkit => "ds_crowdkit",
            Method::OneCoin => "onecoin",
            Method::Glad => "glad",
            Method::Mace => "mace",
            Method::Zbs => "zbs",
            Method::Kos => "kos",
            Method::Bayes => "bayes",
        }
    }
}

/// Any method's parameters, for [`fit`].
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    DsCrowdkit(ds_crowdkit::DsParams),
    OneCoin(onecoin::OneCoinParams),
    Glad(glad::GladParams),
    Mace(mace::MaceParams),
    Zbs(zbs::ZbsParams),
    Kos(kos::KosParams),
    Bayes(bayes::BayesParams),
}

fn wrap<P>(f: Fit<P>, to: fn(P) -> Params) -> Fit<Params> {
    Fit {
        classes: f.classes,
        posteriors: f.posteriors,
        iterations: f.iterations,
        objective: f.objective,
        params: to(f.params),
    }
}

/// Fits `method` with its default options.
pub fn fit(method: Method, a: &Answers) -> Result<Fit<Params>> {
    Ok(match method {
        Method::DsCrowdkit => wrap(
            ds_crowdkit::fit(a, &ds_crowdkit::Options::default())?,
            Params::DsCrowdkit,
        ),
        Method::OneCoin => wrap(
            onecoin::fit(a, &onecoin::Options::default())?,
            Params::OneCoin,
        ),
        Method::Glad => wrap(glad::fit(a, &glad::Options::default())?, Params::Glad),
        Method::Mace => wrap(mace::fit(a, &mace::Options::default())?, Params::Mace),
        Method::Zbs => wrap(zbs::fit(a, &zbs::Options::default())?, Params::Zbs),
        Method::Kos => wrap(kos::fit(a, &kos::Options::default())?, Params::Kos),
        Method::Bayes => wrap(bayes::fit(a, &bayes::Options::default())?, Params::Bayes),
    })
}

/// Shared by the methods: the fit of a one-class problem (every task is class 0), or `None`.
pub(crate) fn one_class<P>(a: &Answers, params: impl FnOnce() -> P) -> Option<Fit<P>> {
    (a.classes == 1).then(|| Fit {
        classes: 1,
        posteriors: vec![1.0; a.tasks],
        iterations: 0,
        objective: None,
        params: params(),
    })
}

/// Normalises `row` from log-scores to probabilities in place (max-shifted, so no overflow);
/// returns the log of the scores' sum (`ln sum exp`), minus infinity when every score is.
pub(crate) fn softmax_in_place(row: &mut [f64]) -> f64 {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        // Every class impossible (or a NaN crept in): no information, uniform.
        let u = 1.0 / row.len() as f64;
        row.iter_mut().for_each(|p| *p = u);
        return f64::NEG_INFINITY;
    }
    let mut s = 0.0;
    for p in row.iter_mut() {
        *p = (*p - m).exp();
        s += *p;
    }
    row.iter_mut().for_each(|p| *p /= s);
    m + s.ln()
}

/// A small deterministic generator (SplitMix64) for the methods that start from random values.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform(); // (0, 1]
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}
