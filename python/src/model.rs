//! `microtask.Model`: a trained ensemble and the backend that runs it, on NumPy arrays; and
//! `microtask.train`, the CLI's training.

use crate::aggregation::{backend_kind, cached_backend};
use crate::engine::{self, invalid};
use crate::probs;
use microtask::backend::{Backend, Predictions};
use microtask::classify::item_majority;
use microtask::data::Dataset;
use microtask::model::Ensemble;
use microtask::train::{train_ensemble, TrainConfig};
use numpy::{
    PyArray1, PyArray2, PyArray3, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1,
    PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use std::borrow::Cow;
use std::path::PathBuf;
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

    /// The ensemble's label per row of `x` (`(n, features)` uint8): the majority of the
    /// workers' votes, ties as `microtask classify` breaks them.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let (view, n) = self.rows(x)?;
        let items = items_of(&view);
        let (e, b) = (self.ensemble.clone(), self.backend.clone());
        let labels = engine::run(py, move || {
            let p = classify(&e, b.as_ref(), &items)?;
            let r = e.workers.max(1);
            Ok(p.labels
                .chunks_exact(r)
                .zip(p.confidence.chunks_exact(r))
                .map(|(l, c)| item_majority(l, c, e.classes) as i64)
                .collect::<Vec<i64>>())
        })?;
        debug_assert_eq!(labels.len(), n);
        Ok(PyArray1::from_vec(py, labels))
    }

    /// Every worker's vote per row of `x`: `(labels, confidence)`, each `(n, workers)`; the
    /// confidence is the vote's softmax probability.
    fn predict_votes<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Votes<'py>> {
        let (view, n) = self.rows(x)?;
        let items = items_of(&view);
        let (e, b) = (self.ensemble.clone(), self.backend.clone());
        let p = engine::run(py, move || classify(&e, b.as_ref(), &items))?;
        let r = self.ensemble.workers;
        Ok((
            PyArray1::from_vec(py, p.labels).reshape([n, r])?,
            PyArray1::from_vec(py, p.confidence).reshape([n, r])?,
        ))
    }

    /// Every worker's softmax probabilities per row of `x`: `(n, workers, classes)` float32.
    /// Computed on the CPU whatever the backend (the backends return top votes only).
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray3<f32>>> {
        let (view, n) = self.rows(x)?;
        let items = items_of(&view);
        let e = self.ensemble.clone();
        let p = engine::run(py, move || Ok(probs::probabilities(&e, &items)))?;
        PyArray1::from_vec(py, p).reshape([n, self.ensemble.workers, self.ensemble.classes])
    }
}

impl Model {
    /// `x` checked to be a 2-D uint8 array of the model's width.
    fn rows<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<(PyReadonlyArray2<'py, u8>, usize)> {
        let d = self.ensemble.features();
        let arr = x.cast::<PyUntypedArray>().map_err(|_| {
            PyTypeError::new_err(format!(
                "x must be a NumPy array of uint8 pixels, not {}",
                type_name(x)
            ))
        })?;
        let dtype = arr.dtype();
        if arr.ndim() != 2 {
            return Err(invalid(format!(
                "x must be 2-D (items x {d} features), got a {}-D array of shape {:?}; \
                 reshape it with x.reshape(len(x), -1)",
                arr.ndim(),
                arr.shape()
            )));
        }
        let kind = dtype.kind();
        if !(kind == b'u' && dtype.itemsize() == 1) {
            let what = dtype.str().map(|s| s.to_string()).unwrap_or_default();
            let hint = if kind == b'f' {
                "; float features (f16/f32) are not supported yet: models read uint8 pixels"
            } else {
                ""
            };
            return Err(PyTypeError::new_err(format!(
                "x must hold uint8 pixels, got dtype {what}{hint}"
            )));
        }
        let shape = arr.shape();
        if shape[1] != d {
            return Err(invalid(format!(
                "x has {} features per row, the model expects {d} ({}x{})",
                shape[1], self.ensemble.height, self.ensemble.width
            )));
        }
        let n = shape[0];
        let view: PyReadonlyArray2<'py, u8> = x.extract()?;
        Ok((view, n))
    }
}

/// The array's bytes without a copy when it is C-contiguous, else a row-major copy.
fn items_of<'a>(view: &'a PyReadonlyArray2<'_, u8>) -> Cow<'a, [u8]> {
    match view.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(view.as_array().iter().copied().collect()),
    }
}

fn classify(e: &Ensemble, b: &dyn Backend, items: &[u8]) -> microtask::Result<Predictions> {
    let mut p = Predictions::with_capacity(items.len() / e.features().max(1), e.workers);
    b.classify(e, items, &mut p)?;
    Ok(p)
}

fn type_name(x: &Bound<'_, PyAny>) -> String {
    x.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an unknown type".into())
}

/// Trains an ensemble as `microtask train` does: worker r on shard r of the data, minibatch
/// Adam. The data is either `data` (an IDX file, an image folder or `synth:N[:SEED]`, as the
/// CLI's `--data`) or `x` (`(n, features)` uint8) with labels `y` (`(n,)` uint8 classes).
#[pyfunction]
#[pyo3(signature = (x=None, y=None, *, data=None, height=None, width=None, workers=5, epochs=10, batch=32, learning_rate=0.001, seed=1, backend="auto"))]
#[allow(clippy::too_many_arguments)]
pub fn train(
    py: Python<'_>,
    x: Option<PyReadonlyArray2<'_, u8>>,
    y: Option<PyReadonlyArray1<'_, u8>>,
    data: Option<String>,
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
    let set = match (x, y, data) {
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
                pixels: items_of(&x).into_owned(),
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
