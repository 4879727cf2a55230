//! The ensemble of dense softmax workers: one weight matrix of `workers * classes` rows.
//!
//! Row `r * classes + c` of `weight` (length `features`) and entry `r * classes + c` of `bias`
//! belong to worker `r`, class `c`. Pixels enter as `u8 / 255`, features as given.
//!
//! Saved as one `.safetensors` file with tensors `weight` (F32, `[R*C, D]`) and `bias`
//! (F32, `[R*C]`), and metadata `workers`, `classes`, `height`, `width`, `input` (`pixels` or
//! `features`; files without it hold pixels); NumPy/PyTorch users read
//! it with `safetensors.numpy.load_file` and reshape `weight` to `[R, C, D]`.

use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The most classes one model may have (the GPU kernels keep one row of logits per item in
/// registers/workgroup memory).
pub const MAX_CLASSES: usize = 64;

/// What an item's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputKind {
    /// 8-bit pixels, scaled by 1/255 before the product.
    #[default]
    Pixels,
    /// Numbers taken as given (embeddings and other feature vectors).
    Features,
}

impl InputKind {
    /// The name in the model file's metadata and in messages.
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Pixels => "pixels",
            InputKind::Features => "features",
        }
    }

    fn parse(s: &str) -> Option<InputKind> {
        match s {
            "pixels" => Some(InputKind::Pixels),
            "features" => Some(InputKind::Features),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    pub workers: usize,
    pub classes: usize,
    pub height: usize,
    pub width: usize,
    pub input: InputKind,
    /// `[workers * classes, features]`, row-major.
    pub weight: Vec<f32>,
    /// `[workers * classes]`.
    pub bias: Vec<f32>,
}

impl Ensemble {
    pub fn zeros(workers: usize, classes: usize, height: usize, width: usize) -> Self {
        let rows = workers * classes;
        Ensemble {
            workers,
            classes,
            height,
            width,
            input: InputKind::Pixels,
            weight: vec![0.0; rows * height * width],
            bias: vec![0.0; rows],
        }
    }

    pub fn features(&self) -> usize {
        self.height * self.width
    }

    /// Rows of the weight matrix: `workers * classes`.
    pub fn rows(&self) -> usize {
        self.workers * self.classes
    }

    /// Joins single-worker (or multi-worker) models into one ensemble.
    pub fn concat(parts: &[Ensemble]) -> Result<Ensemble> {
        let first = parts
            .first()
            .ok_or_else(|| Error::Invalid("no workers to join".into()))?;
        let mut out = Ensemble::zeros(0, first.classes, first.height, first.width);
        out.input = first.input;
        for p in parts {
            let shape = |m: &Ensemble| (m.classes, m.height, m.width, m.input);
            if shape(p) != shape(first) {
                return Err(Error::Invalid("workers of different shapes".into()));
            }
            out.workers += p.workers;
            out.weight.extend_from_slice(&p.weight);
            out.bias.extend_from_slice(&p.bias);
        }
        Ok(out)
    }

    /// Worker `r` alone, as a one-worker ensemble.
    pub fn worker(&self, r: usize) -> Ensemble {
        let (c, d) = (self.classes, self.features());
        Ensemble {
            workers: 1,
            classes: c,
            height: self.height,
            width: self.width,
            input: self.input,
            weight: self.weight[r * c * d..(r + 1) * c * d].to_vec(),
            bias: self.bias[r * c..(r + 1) * c].to_vec(),
        }
    }

    /// Checks shapes and values; `what` names the source in the message.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |p: String| Err(Error::format(path, p));
        if self.workers == 0 || self.classes < 2 {
            return bad(format!(
                "model has {} workers and {} classes; need at least 1 worker and 2 classes",
                self.workers, self.classes
            ));
        }
        if self.classes > MAX_CLASSES {
            return bad(format!(
                "model has {} classes; at most {MAX_CLASSES} are supported",
                self.classes
            ));
        }
        if self.weight.len() != self.rows() * self.features() || self.bias.len() != self.rows() {
            return bad("weight/bias sizes do not match workers x classes x features".into());
        }
        if let Some(i) = self.weight.iter().position(|v| !v.is_finite()) {
            return bad(format!(
                "weight holds a non-finite value (NaN or inf) at index {i}"
            ));
        }
        if let Some(i) = self.bias.iter().position(|v| !v.is_finite()) {
            return bad(format!(
                "bias holds a non-finite value (NaN or inf) at index {i}"
            ));
        }
        Ok(())
    }

    /// Serialises to safetensors bytes (see the module docs for the layout).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let w: &[u8] = bytemuck::cast_slice(&self.weight);
        let b: &[u8] = bytemuck::cast_slice(&self.bias);
        let views = [
            (
                "weight",
                TensorView::new(Dtype::F32, vec![self.rows(), self.features()], w)
                    .map_err(|e| Error::Invalid(format!("weight tensor: {e}")))?,
            ),
            (
                "bias",
                TensorView::new(Dtype::F32, vec![self.rows()], b)
                    .map_err(|e| Error::Invalid(format!("bias tensor: {e}")))?,
            ),
        ];
        let mut meta: HashMap<String, String> = [
            ("workers", self.workers),
            ("classes", self.classes),
            ("height", self.height),
            ("width", self.width),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        meta.insert("input".into(), self.input.name().into());
        safetensors::serialize(views, &Some(meta))
            .map_err(|e| Error::Invalid(format!("cannot serialise the model: {e}")))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        crate::output::write_atomic(path, |w| {
            std::io::Write::write_all(w, &bytes).map_err(|e| Error::io(path, e))
        })
    }

    pub fn load(path: &Path) -> Result<Ensemble> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses safetensors bytes; `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Ensemble> {
        let bad = |p: String| Error::format(path, p);
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a safetensors model: {e}")))?;
        let tensors = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a safetensors model: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| -> Result<usize> {
            meta.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(format!("metadata `{k}` is missing or not a number")))
        };
        let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
            let t = tensors
                .tensor(name)
                .map_err(|_| bad(format!("tensor `{name}` is missing")))?;
            if t.dtype() != Dtype::F32 {
                return Err(bad(format!(
                    "tensor `{name}` is {:?}, expected F32",
                    t.dtype()
                )));
            }
            let data = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok((t.shape().to_vec(), data))
        };
        let (workers, classes, height, width) = (
            get("workers")?,
            get("classes")?,
            get("height")?,
            get("width")?,
        );
        // Files written before models took features hold pixels.
        let input = match meta.get("input") {
            None => InputKind::Pixels,
            Some(v) => InputKind::parse(v).ok_or_else(|| {
                bad(format!(
                    "metadata `input` is `{v}`; expected `pixels` or `features`"
                ))
            })?,
        };
        let (wshape, weight) = tensor("weight")?;
        let (bshape, bias) = tensor("bias")?;
        let rows = workers
            .checked_mul(classes)
            .ok_or_else(|| bad("absurd shape".into()))?;
        let features = height
            .checked_mul(width)
            .ok_or_else(|| bad("absurd shape".into()))?;
        if wshape != [rows, features] || bshape != [rows] {
            return Err(bad(format!(
                "wrong shape: weight {wshape:?} and bias {bshape:?}, expected [{rows}, {features}] and [{rows}] for {workers} workers x {classes} classes of {height}x{width}"
            )));
        }
        let model = Ensemble {
            workers,
            classes,
            height,
            width,
            input,
            weight,
            bias,
        };
        model.validate(path)?;
        Ok(model)
    }
}
