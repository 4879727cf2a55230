//! The ensemble of dense softmax workers: one weight matrix of `workers * classes` rows.
//!
//! Row `r * classes + c` of `weight` (length `features`) and entry `r * classes + c` of `bias`
//! belong to worker `r`, class `c`. An item is `height x width x channels` values, row-major with
//! the channels innermost (RGB pixels interleaved); pixels enter as `u8 / 255`, features as given.
//!
//! Saved as one `.safetensors` file with tensors `bias` (F32, `[R*C]`) and `weight` (F32,
//! `[R*C, D]`), and metadata, in this order: `workers`, `classes`, `height`, `width`, `channels`,
//! `input` (`pixels` or `features`) and, for classes with names, `class_names` (a JSON list).
//! The header is written here in that fixed order (safetensors' own writer takes the metadata
//! as a hash map, whose order changes from run to run), so the same model gives the same bytes.
//! Files without `channels`/`input` (written before they existed) load as 1 channel of pixels.
//! NumPy/PyTorch users read it with `safetensors.numpy.load_file` and reshape `weight` to
//! `[R, C, D]`.

use crate::data::{Classes, ImageOptions};
use crate::error::{Error, Result};
use safetensors::tensor::Dtype;
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
    /// Values per pixel: 1 (grayscale) or 3 (RGB); 1 for feature vectors.
    pub channels: usize,
    pub input: InputKind,
    /// Names of the classes (class `k` is `class_names[k]`) when they came from named folders;
    /// empty when the classes are the numbers `0..classes`.
    pub class_names: Vec<String>,
    /// `[workers * classes, features]`, row-major.
    pub weight: Vec<f32>,
    /// `[workers * classes]`.
    pub bias: Vec<f32>,
}

impl Ensemble {
    /// A zero model of grayscale pixels.
    pub fn zeros(workers: usize, classes: usize, height: usize, width: usize) -> Self {
        Self::zeros_for(workers, classes, height, width, 1)
    }

    /// A zero model of pixels with `channels` values each.
    pub fn zeros_for(
        workers: usize,
        classes: usize,
        height: usize,
        width: usize,
        channels: usize,
    ) -> Self {
        let rows = workers * classes;
        Ensemble {
            workers,
            classes,
            height,
            width,
            channels,
            input: InputKind::Pixels,
            class_names: Vec::new(),
            weight: vec![0.0; rows * height * width * channels],
            bias: vec![0.0; rows],
        }
    }

    /// Values per item: `height * width * channels`.
    pub fn features(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The name of class `k` as the outputs write it: its folder name, else its number.
    pub fn class_name(&self, k: usize) -> String {
        self.class_names
            .get(k)
            .cloned()
            .unwrap_or_else(|| k.to_string())
    }

    /// Every class's name (see [`Ensemble::class_name`]).
    pub fn class_names_or_numbers(&self) -> Vec<String> {
        (0..self.classes).map(|k| self.class_name(k)).collect()
    }

    /// How to read an image folder for this model: its channels and size, and its classes as
    /// the folder names that give labels; `resize` scales images of another size.
    pub fn image_options(&self, resize: bool) -> ImageOptions {
        ImageOptions {
            channels: self.channels,
            size: Some((self.height, self.width)),
            resize,
            classes: if self.class_names.is_empty() {
                Classes::Numbered(self.classes)
            } else {
                Classes::Named(self.class_names.clone())
            },
        }
    }

    /// `HxW` for grayscale, `HxWxC` otherwise, as messages show a shape.
    pub fn shape_text(&self) -> String {
        match self.channels {
            1 => format!("{}x{}", self.height, self.width),
            c => format!("{}x{}x{c}", self.height, self.width),
        }
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
        let mut out = Ensemble {
            workers: 0,
            weight: Vec::new(),
            bias: Vec::new(),
            ..first.clone()
        };
        for p in parts {
            let shape = |m: &Ensemble| (m.classes, m.height, m.width, m.channels, m.input);
            if shape(p) != shape(first) || p.class_names != first.class_names {
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
            weight: self.weight[r * c * d..(r + 1) * c * d].to_vec(),
            bias: self.bias[r * c..(r + 1) * c].to_vec(),
            ..self.clone_shape()
        }
    }

    /// The model without its parameters (shape, input, class names).
    fn clone_shape(&self) -> Ensemble {
        Ensemble {
            workers: self.workers,
            classes: self.classes,
            height: self.height,
            width: self.width,
            channels: self.channels,
            input: self.input,
            class_names: self.class_names.clone(),
            weight: Vec::new(),
            bias: Vec::new(),
        }
    }

    /// Checks shapes and values; `path` names the source in the message.
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
        if self.channels == 0 || (self.input == InputKind::Features && self.channels != 1) {
            return bad(format!(
                "model has {} channels of {}; pixels have 1 or more, features 1",
                self.channels,
                self.input.name()
            ));
        }
        if !self.class_names.is_empty() && self.class_names.len() != self.classes {
            return bad(format!(
                "model has {} class names for {} classes",
                self.class_names.len(),
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

    /// The metadata, in the order the file holds it.
    fn metadata(&self) -> Result<Vec<(&'static str, String)>> {
        let mut meta = vec![
            ("workers", self.workers.to_string()),
            ("classes", self.classes.to_string()),
            ("height", self.height.to_string()),
            ("width", self.width.to_string()),
            ("channels", self.channels.to_string()),
            ("input", self.input.name().to_string()),
        ];
        if !self.class_names.is_empty() {
            let names = serde_json::to_string(&self.class_names)
                .map_err(|e| Error::Invalid(format!("cannot serialise the class names: {e}")))?;
            meta.push(("class_names", names));
        }
        Ok(meta)
    }

    /// Serialises to safetensors bytes (see the module docs for the layout): the same model
    /// always gives the same bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let json = |v: &str| serde_json::to_string(v).unwrap_or_default();
        let entries: Vec<String> = self
            .metadata()?
            .iter()
            .map(|(k, v)| format!("{}:{}", json(k), json(v)))
            .collect();
        let (b, w) = (self.bias.len() * 4, self.weight.len() * 4);
        // Tensors in safetensors' own order (same dtype: by name), data in the same order.
        let mut header = format!(
            r#"{{"__metadata__":{{{}}},"bias":{{"dtype":"F32","shape":[{}],"data_offsets":[0,{b}]}},"weight":{{"dtype":"F32","shape":[{},{}],"data_offsets":[{b},{}]}}}}"#,
            entries.join(","),
            self.rows(),
            self.rows(),
            self.features(),
            b + w
        )
        .into_bytes();
        // The data starts 8-byte aligned, padded with spaces as safetensors does.
        header.resize(header.len().div_ceil(8) * 8, b' ');
        let mut out = Vec::with_capacity(8 + header.len() + b + w);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        for v in self.bias.iter().chain(&self.weight) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        Ok(out)
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
        // Absent in files written before these keys existed: 1 channel of pixels, numbered
        // classes.
        let channels = match meta.get("channels") {
            Some(_) => get("channels")?,
            None => 1,
        };
        let input = match meta.get("input") {
            Some(v) => InputKind::parse(v)
                .ok_or_else(|| bad(format!("metadata `input` is `{v}`, not pixels or features")))?,
            None => InputKind::Pixels,
        };
        let class_names: Vec<String> = match meta.get("class_names") {
            Some(v) => serde_json::from_str(v).map_err(|e| {
                bad(format!(
                    "metadata `class_names` is not a list of names: {e}"
                ))
            })?,
            None => Vec::new(),
        };
        let (wshape, weight) = tensor("weight")?;
        let (bshape, bias) = tensor("bias")?;
        let rows = workers
            .checked_mul(classes)
            .ok_or_else(|| bad("absurd shape".into()))?;
        let features = height
            .checked_mul(width)
            .and_then(|f| f.checked_mul(channels))
            .ok_or_else(|| bad("absurd shape".into()))?;
        if wshape != [rows, features] || bshape != [rows] {
            return Err(bad(format!(
                "wrong shape: weight {wshape:?} and bias {bshape:?}, expected [{rows}, {features}] and [{rows}] for {workers} workers x {classes} classes of {height}x{width}x{channels}"
            )));
        }
        let model = Ensemble {
            workers,
            classes,
            height,
            width,
            channels,
            input,
            class_names,
            weight,
            bias,
        };
        model.validate(path)?;
        Ok(model)
    }
}
