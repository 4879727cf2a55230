//! `microtask.Model`: a trained ensemble and the backend that runs it, on NumPy arrays; and
//! `microtask.train`, the CLI's training.

use crate::aggregation::{backend_kind, cached_backend};
use crate::engine::{self, invalid};
use crate::input::{contiguous, Rows};
use microtask::backend::{Backend, Predictions};
use microtask::classify::item_majority;
use microtask::data::items::Items;
use microtask::data::npy;
use microtask::data::Dataset;
use microtask::model::Ensemble;
use microtask::probs;
use microtask::train::{train_ensemble, train_matrix, TrainConfig};
use numpy::{
    PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Per item and worker: the voted class and its probability.
type Votes<'py> = (Bound<'py, PyArray2<u32>>, Bound<'py, PyArray2<f32>>);

/// An ensemble of softmax workers loaded from a `.safetensors` file (as `microtask train`
/// writes), with the backend that classifies on it.
#[pyclass(module = "microtask", frozen)]
pub struct Model {
    ensemble: Arc<Ensemble>,
    backend: Arc<dyn Backend>,
}

#[pymethods]
impl Model {
    /// Loads a model; `backend` is "auto" (a hardware GPU when there is one, else the CPU),
    /// "cpu", "gpu" or "hybrid".
    #[staticmethod]
    #[pyo3(signature = (path, backend = "auto"))]
    fn load(py: Python<'_>, path: PathBuf, backend: &str) -> PyResult<Model> {
        let kind = backend_kind(backend)?;
        let (ensemble, backend) = engine::run(py, move || {
            let e = Ensemble::load(&path)?;
            Ok((e, cached_backend(kind)?))
        })?;
        Ok(Model {
            ensemble: Arc::new(ensemble),
            backend,
        })
    }

    /// Writes the model as `.safetensors` (atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let e = self.ensemble.clone();
        engine::run(py, move || e.save(&path))
    }

    /// The same model on another backend.
    #[pyo3(signature = (backend))]
    fn to(&self, py: Python<'_>, backend: &str) -> PyResult<Model> {
        let kind = backend_kind(backend)?;
        let backend = engine::run(py, move || cached_backend(kind))?;
        Ok(Model {
            ensemble: self.ensemble.clone(),
            backend,
        })
    }

    #[getter]
    fn workers(&self) -> usize {
        self.ensemble.workers
    }

    #[getter]
    fn classes(&self) -> usize {
        self.ensemble.classes
    }

    #[getter]
    fn features(&self) -> usize {
        self.ensemble.features()
    }

    /// `(height, width)` of the items the model was trained on.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        (self.ensemble.height, self.ensemble.width)
    }

    /// Which device runs the model and why it was chosen.
    #[getter]
    fn backend(&self) -> String {
        self.backend.describe()
    }

    /// The weights as `(workers, classes, features)` float32 (a copy).
    #[getter]
    fn weight<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<f32>>> {
        let e = &self.ensemble;
        PyArray1::from_slice(py, &e.weight).reshape([e.workers, e.classes, e.features()])
    }

    /// The biases as `(workers, classes)` float32 (a copy).
    #[getter]
    fn bias<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let e = &self.ensemble;
        PyArray1::from_slice(py, &e.bias).reshape([e.workers, e.classes])
    }

    fn __repr__(&self) -> String {
        let e = &self.ensemble;
        format!(
            "Model(workers={}, classes={}, shape=({}, {}), backend={:?})",
            e.workers,
            e.classes,
            e.height,
            e.width,
            self.backend.describe()
        )
    }

    /// What the model reads: "pixels" (uint8) or "features" (float16/float32).
    #[getter]
    fn input(&self) -> &'static str {
        self.ensemble.input.name()
    }

    /// The ensemble's label per row of `x` (`(n, features)`: uint8 pixels, or float16/float32
    /// features for a feature model): the majority of the workers' votes, ties as
    /// `microtask classify` breaks them.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let rows = Rows::of(x, &self.ensemble)?;
        let values = rows.values();
        let (e, b) = (self.ensemble.clone(), self.backend.clone());
        let labels = engine::run(py, move || {
            let p = classify(&e, b.as_ref(), values.items())?;
            let r = e.workers.max(1);
            Ok(p.labels
                .chunks_exact(r)
                .zip(p.confidence.chunks_exact(r))
                .map(|(l, c)| item_majority(l, c, e.classes) as i64)
                .collect::<Vec<i64>>())
        })?;
        debug_assert_eq!(labels.len(), rows.len());
        Ok(PyArray1::from_vec(py, labels))
    }

    /// Every worker's vote per row of `x`: `(labels, confidence)`, each `(n, workers)`; the
    /// confidence is the vote's softmax probability.
    fn predict_votes<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Votes<'py>> {
        let rows = Rows::of(x, &self.ensemble)?;
        let values = rows.values();
        let (e, b) = (self.ensemble.clone(), self.backend.clone());
        let p = engine::run(py, move || classify(&e, b.as_ref(), values.items()))?;
        let (n, r) = (rows.len(), self.ensemble.workers);
        Ok((
            PyArray1::from_vec(py, p.labels).reshape([n, r])?,
            PyArray1::from_vec(py, p.confidence).reshape([n, r])?,
        ))
    }

    /// Every worker's softmax probabilities per row of `x`: `(n, workers, classes)` float32,
    /// as `microtask classify --probs-out` writes them (computed on the CPU whatever the
    /// backend: the backends return top votes only).
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray3<f32>>> {
        let rows = Rows::of(x, &self.ensemble)?;
        let values = rows.values();
        let e = self.ensemble.clone();
        let p = engine::run(py, move || {
            check_finite(&e, values.items())?;
            let (mut votes, mut probs) = (Predictions::default(), Vec::new());
            probs::classify_with_probs(&e, values.items(), &mut votes, &mut probs)?;
            Ok(probs)
        })?;
        let e = &self.ensemble;
        PyArray1::from_vec(py, p).reshape([rows.len(), e.workers, e.classes])
    }
}

fn classify(e: &Ensemble, b: &dyn Backend, items: Items<'_>) -> microtask::Result<Predictions> {
    check_finite(e, items)?;
    let mut p = Predictions::with_capacity(items.len() / e.features().max(1), e.workers);
    b.classify_items(e, items, &mut p)?;
    Ok(p)
}

/// Refuses a NaN or infinite feature (the CLI refuses it in a `.npy` file the same way): it
/// would be classified as if it were data.
fn check_finite(e: &Ensemble, items: Items<'_>) -> microtask::Result<()> {
    let dtype = match items {
        Items::U8(_) => return Ok(()),
        Items::F16(_) => npy::Dtype::F16,
        Items::F32(_) => npy::Dtype::F32,
    };
    match npy::first_non_finite_par(dtype, items.bytes()) {
        None => Ok(()),
        Some(k) => {
            let d = e.features().max(1);
            Err(microtask::Error::Invalid(format!(
                "x row {}, column {}: a NaN or infinite feature",
                k / d,
                k % d
            )))
        }
    }
}

/// Trains an ensemble as `microtask train` does: worker r on shard r of the data, minibatch
/// Adam. The data is either `data` (an IDX file, an image folder, `synth:N[:SEED]` or a `.npy`
/// matrix with `labels`, as the CLI's `--data` and `--labels`) or `x` (`(n, features)` uint8)
/// with labels `y` (`(n,)` uint8 classes).
#[pyfunction]
#[pyo3(signature = (x=None, y=None, *, data=None, labels=None, height=None, width=None, workers=5, epochs=10, batch=32, learning_rate=0.001, seed=1, backend="auto"))]
#[allow(clippy::too_many_arguments)]
pub fn train(
    py: Python<'_>,
    x: Option<PyReadonlyArray2<'_, u8>>,
    y: Option<PyReadonlyArray1<'_, u8>>,
    data: Option<String>,
    labels: Option<PathBuf>,
    height: Option<usize>,
    width: Option<usize>,
    workers: usize,
    epochs: usize,
    batch: usize,
    learning_rate: f32,
    seed: u64,
    backend: &str,
) -> PyResult<Model> {
    let kind = backend_kind(backend)?;
    if labels.is_some() && !data.as_deref().is_some_and(|d| npy::is_npy(Path::new(d))) {
        return Err(invalid(
            "labels is for .npy data; other data carries its own labels (or give y)",
        ));
    }
    let set = match (x, y, data) {
        (None, None, Some(spec)) if npy::is_npy(Path::new(&spec)) => {
            Source::Npy(spec.into(), labels)
        }
        (None, None, Some(spec)) => Source::Spec(spec),
        (Some(x), Some(y), None) => {
            let (n, d) = (x.shape()[0], x.shape()[1]);
            if y.len() != n {
                return Err(invalid(format!("x has {n} rows, y {} labels", y.len())));
            }
            let (h, w) = match (height, width) {
                (Some(h), Some(w)) if h * w == d => (h, w),
                (None, None) => square(d),
                (h, w) => {
                    return Err(invalid(format!(
                        "height {h:?} x width {w:?} does not give the {d} features of x"
                    )))
                }
            };
            Source::Set(Dataset {
                source: "array".into(),
                height: h,
                width: w,
                pixels: contiguous(&x).into_owned(),
                labels: Some(y.as_array().iter().copied().collect()),
                channels: 1,
                ids: None,
                class_names: Vec::new(),
                unlabelled: None,
            })
        }
        _ => {
            return Err(invalid(
                "give either x and y (arrays) or data (a path or synth:N), not both",
            ))
        }
    };
    let config = TrainConfig {
        epochs,
        batch,
        learning_rate,
        seed,
    };
    let (ensemble, backend) = engine::run(py, move || {
        let set = match set {
            Source::Spec(s) => microtask::data::load(&s)?,
            Source::Set(s) => s,
            Source::Npy(path, labels) => {
                let e = train_npy(&path, labels.as_deref(), workers, &config)?;
                return Ok((e, cached_backend(kind)?));
            }
        };
        let e = train_ensemble(&set, workers, &config, &|_| {})?;
        Ok((e, cached_backend(kind)?))
    })?;
    Ok(Model {
        ensemble: Arc::new(ensemble),
        backend,
    })
}

enum Source {
    Spec(String),
    Set(Dataset),
    /// A `.npy` matrix (u8 pixels or f16/f32 features) and its labels file, when given.
    Npy(PathBuf, Option<PathBuf>),
}

/// `microtask train --data FILE.npy [--labels L.npy]`.
fn train_npy(
    path: &Path,
    labels: Option<&Path>,
    workers: usize,
    config: &TrainConfig,
) -> microtask::Result<Ensemble> {
    let m = npy::NpyMatrix::open(path)?;
    let labels = npy::labels_for(path, m.rows, labels)?.ok_or_else(|| {
        microtask::Error::Invalid(format!(
            "{}: training needs labels: pass labels=FILE.npy or put them in {}",
            path.display(),
            npy::labels_path_for(path).display()
        ))
    })?;
    train_matrix(&m, &labels, workers, config, &|_| {})
}

/// `(side, side)` when `d` is a perfect square (28x28 for 784), else `(1, d)`.
fn square(d: usize) -> (usize, usize) {
    let s = (d as f64).sqrt().round() as usize;
    if s * s == d {
        (s, s)
    } else {
        (1, d)
    }
}
