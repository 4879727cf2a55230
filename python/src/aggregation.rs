//! Aggregation from Python: dense codes in (pandas.factorize's), posteriors and each method's
//! parameters out as NumPy arrays in a dict. `microtask/aggregation.py` builds crowd-kit's pandas
//! objects from them.
//!
//! A method is one arm of [`fit`] returning a [`Fitted`]: its posteriors (tasks x classes) and
//! its named parameter arrays: the library's majority votes and Dawid-Skene here, "default" (the
//! method `tally` runs with no --method), and the methods of `microtask::aggregate::methods`
//! (GLAD, MACE, bayes, ...) in [`crate::methods`].

use crate::engine::{self, invalid};
use microtask::aggregate::{self as agg, DsOptions, Method, ModelProbs, Options};
use microtask::backend::{Backend, BackendKind};
use microtask::data::votes::{Gold, VoteTable, NO_LABEL};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The library's own methods, by the names `microtask.aggregation` uses; "default" is the
/// method `microtask tally` runs when given none.
const METHODS: &[&str] = &["mv", "wawa", "ds", "default"];

/// The name of the library's default method (what `microtask tally` runs with no --method).
#[pyfunction]
pub fn default_method() -> &'static str {
    Options::default().method.name()
}

/// The names of the methods this build can run.
#[pyfunction]
pub fn methods() -> Vec<&'static str> {
    [METHODS, MORE].concat()
}

/// The methods module's, when this build has it.
#[cfg(feature = "methods")]
const MORE: &[&str] = crate::methods::NAMES;
#[cfg(not(feature = "methods"))]
const MORE: &[&str] = &[];

/// What a method returns: posteriors and its own parameters, each a flat array with its shape.
pub(crate) struct Fitted {
    /// `tasks * classes`, row-major.
    pub posteriors: Vec<f64>,
    /// One class per task (the method's own labels, with its tie rule).
    pub labels: Vec<u32>,
    pub iterations: usize,
    /// Log-likelihood, ELBO or the method's own objective, when it has one.
    pub objective: Option<f64>,
    pub params: Vec<(&'static str, Vec<f64>, Vec<usize>)>,
}

/// Aggregates answers given as dense codes: answer `i` is worker `worker[i]`'s class `label[i]`
/// for task `task[i]`. `gold`, when given, holds one class per task (-1 for none).
/// `options` holds the method's settings by crowd-kit's names (`n_iter`, `tol`, ...).
/// `model_probs`, when given, is an `.npy` file's bytes (f32 `[N, R, C]` or `[N, C]`, as
/// `classify --probs-out` writes) read as `tally --model-probs` reads it, joined by
/// `task_names` (a task's row index, as text) and `class_names` (a class's column index).
#[pyfunction]
#[pyo3(name = "aggregate", signature = (method, task, worker, label, n_tasks, n_workers, n_classes, gold=None, options=None, backend="cpu", model_probs=None, task_names=None, class_names=None))]
#[allow(clippy::too_many_arguments)]
pub fn aggregate_codes<'py>(
    py: Python<'py>,
    method: &str,
    task: PyReadonlyArray1<'py, i64>,
    worker: PyReadonlyArray1<'py, i64>,
    label: PyReadonlyArray1<'py, i64>,
    n_tasks: usize,
    n_workers: usize,
    n_classes: usize,
    gold: Option<PyReadonlyArray1<'py, i64>>,
    options: Option<HashMap<String, f64>>,
    backend: &str,
    model_probs: Option<Bound<'py, PyBytes>>,
    task_names: Option<Vec<String>>,
    class_names: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyDict>> {
    if !methods().contains(&method) {
        return Err(invalid(format!(
            "unknown method {method:?}; this build has {:?}",
            methods()
        )));
    }
    let n = task.len();
    if worker.len() != n || label.len() != n {
        return Err(invalid(format!(
            "task, worker and label differ in length: {n}, {}, {}",
            worker.len(),
            label.len()
        )));
    }
    let names = |given: Option<Vec<String>>, count: usize, what: &str| match given {
        Some(v) if v.len() != count => Err(invalid(format!(
            "{} {what} names for {count} {what}s",
            v.len()
        ))),
        Some(v) => Ok(v),
        // The names stay in Python; the engine needs only their counts.
        None => Ok(vec![String::new(); count]),
    };
    let table = VoteTable {
        task: codes(&task, n_tasks, "task")?,
        worker: codes(&worker, n_workers, "worker")?,
        label: codes(&label, n_classes, "label")?,
        confidence: vec![1.0; n],
        tasks: names(task_names, n_tasks, "task")?,
        workers: vec![String::new(); n_workers],
        classes: names(class_names, n_classes, "class")?,
    };
    let model_probs = model_probs.map(|b| b.as_bytes().to_vec());
    let gold = match gold {
        None => None,
        Some(g) => {
            if g.len() != n_tasks {
                return Err(invalid(format!(
                    "gold holds {} entries for {n_tasks} tasks",
                    g.len()
                )));
            }
            let label = g
                .as_array()
                .iter()
                .map(|&c| match c {
                    -1 => Ok(NO_LABEL),
                    c if c >= 0 && (c as usize) < n_classes => Ok(c as u32),
                    c => Err(invalid(format!(
                        "gold class code {c} is outside the {n_classes} classes"
                    ))),
                })
                .collect::<PyResult<Vec<u32>>>()?;
            Some(Gold::from_labels(label))
        }
    };
    let opts = options.unwrap_or_default();
    let kind = backend_kind(backend)?;
    let method = method.to_string();
    let fitted = engine::run(py, move || {
        let backend = cached_backend(kind)?;
        let model = model_probs
            .map(|b| ModelProbs::parse(Path::new("model_probs"), &b))
            .transpose()?;
        fit(
            &method,
            &table,
            gold.as_ref(),
            model.as_ref(),
            &opts,
            backend.as_ref(),
        )
    })?;
    let out = PyDict::new(py);
    out.set_item(
        "labels",
        PyArray1::from_vec(py, fitted.labels.into_iter().map(i64::from).collect()),
    )?;
    out.set_item(
        "posteriors",
        PyArray1::from_vec(py, fitted.posteriors).reshape([n_tasks, n_classes])?,
    )?;
    out.set_item("iterations", fitted.iterations)?;
    out.set_item("objective", fitted.objective)?;
    for (name, values, shape) in fitted.params {
        // A method that had nothing to estimate (one class) leaves its arrays empty.
        if values.len() != shape.iter().product::<usize>() {
            continue;
        }
        out.set_item(name, PyArray1::from_vec(py, values).reshape(shape)?)?;
    }
    Ok(out)
}

/// Runs `method` (one of [`methods`]) on the library.
fn fit(
    method: &str,
    table: &VoteTable,
    gold: Option<&Gold>,
    model: Option<&ModelProbs>,
    opts: &HashMap<String, f64>,
    backend: &dyn Backend,
) -> microtask::Result<Fitted> {
    #[cfg(feature = "methods")]
    if crate::methods::NAMES.contains(&method) {
        if let Some(f) = crate::methods::fit(method, table, gold, model, opts)? {
            return Ok(f);
        }
    }
    if let Some(m) = model {
        if method != "default" {
            return Err(microtask::Error::Invalid(format!(
                "a model's probabilities enter the bayes method only, not {method}"
            )));
        }
        // As `tally --model-probs` with no --method.
        let a = agg::fitted::aggregate(table, gold, Method::default(), Some(m))?;
        return Ok(fitted(a, table));
    }
    let t = table.n_tasks();
    let options = |method| -> microtask::Result<Options> {
        let d = DsOptions::default();
        Ok(Options {
            method,
            ds: DsOptions {
                max_iters: option(opts, "n_iter", d.max_iters as f64)? as usize,
                tol: option(opts, "tol", d.tol)?,
                smoothing: option(opts, "smoothing", d.smoothing as f64)? as f32,
            },
            posteriors: true,
        })
    };
    let opts = match method {
        "mv" => options(Method::Mv)?,
        "wawa" => options(Method::Wmv)?,
        "ds" => options(Method::Ds)?,
        // `tally` with no --method: the library's default method and settings.
        "default" => Options {
            posteriors: true,
            ..Options::default()
        },
        other => {
            return Err(microtask::Error::Invalid(format!(
                "unknown method {other:?} ({t} tasks)"
            )))
        }
    };
    let a = agg::aggregate(table, gold, &opts, backend)?;
    Ok(fitted(a, table))
}

/// The library's aggregate as named arrays: `skills` (weighted majority vote's worker weights),
/// `priors` and `errors` (Dawid-Skene's model) when the method has them.
fn fitted(a: agg::Aggregate, table: &VoteTable) -> Fitted {
    let (w, c) = (table.n_workers(), table.n_classes());
    let widen = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let exp = |v: &[f32]| v.iter().map(|&x| (x as f64).exp()).collect::<Vec<f64>>();
    let mut params = Vec::new();
    if let Some(weights) = &a.weights {
        params.push(("skills", widen(weights), vec![w]));
    }
    if let Some(model) = &a.model {
        params.push(("priors", exp(&model.log_prior), vec![c]));
        // [worker, answer, truth], as crowd-kit's errors_ rows (worker, label).
        params.push(("errors", exp(&model.log_conf), vec![w, c, c]));
    }
    if let Some(acc) = &a.worker_accuracy {
        params.push(("worker_accuracy", widen(acc), vec![w]));
    }
    if let Some(m) = &a.with_model {
        params.push(("model_weight", vec![m.weight], vec![1]));
    }
    Fitted {
        posteriors: widen(a.posteriors.as_deref().unwrap_or_default()),
        labels: a.labels.iter().map(|l| l.label).collect(),
        iterations: a.iterations,
        objective: a.log_likelihood.or(a.objective),
        params,
    }
}

/// A numeric option by name, `default` when absent; it must be finite and not negative.
pub(crate) fn option(
    opts: &HashMap<String, f64>,
    name: &str,
    default: f64,
) -> microtask::Result<f64> {
    match opts.get(name) {
        None => Ok(default),
        Some(&v) if v.is_finite() && v >= 0.0 => Ok(v),
        Some(v) => Err(microtask::Error::Invalid(format!(
            "{name} must be a finite number >= 0, not {v}"
        ))),
    }
}

/// Codes as u32 ids, each checked to lie in `0..count`.
fn codes(col: &PyReadonlyArray1<'_, i64>, count: usize, what: &str) -> PyResult<Vec<u32>> {
    let view = col.as_array();
    let mut out = Vec::with_capacity(view.len());
    for (i, &c) in view.iter().enumerate() {
        if c < 0 || c as u64 >= count as u64 {
            return Err(invalid(format!(
                "{what} code {c} at row {i} is outside 0..{count}"
            )));
        }
        out.push(c as u32);
    }
    Ok(out)
}

/// `"auto" | "cpu" | "gpu" | "hybrid"` as the library's kind.
pub fn backend_kind(name: &str) -> PyResult<BackendKind> {
    match name {
        "auto" => Ok(BackendKind::Auto),
        "cpu" => Ok(BackendKind::Cpu),
        "gpu" => Ok(BackendKind::Gpu),
        "hybrid" => Ok(BackendKind::Hybrid),
        other => Err(invalid(format!(
            "backend must be \"auto\", \"cpu\", \"gpu\" or \"hybrid\", not {other:?}"
        ))),
    }
}

type Shared = Arc<dyn Backend>;

/// One backend per kind for the life of the process: opening a GPU device takes a while, and a
/// notebook calls `fit` many times.
pub fn cached_backend(kind: BackendKind) -> microtask::Result<Shared> {
    static CACHE: Mutex<Vec<(BackendKind, Shared)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, b)) = cache.iter().find(|(k, _)| *k == kind) {
        return Ok(b.clone());
    }
    let b: Shared = Arc::from(microtask::backend::select(kind)?);
    cache.push((kind, b.clone()));
    Ok(b)
}
