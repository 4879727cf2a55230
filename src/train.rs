//! Training of softmax workers by minibatch Adam (the seed's Keras recipe: Dense(10) + softmax,
//! cross-entropy, Adam lr 0.001, batch 32). Workers train in parallel, each on its own shard with
//! its own seed, so their votes differ.

use crate::data::items::Items;
use crate::data::npy::{Dtype, NpyMatrix};
use crate::data::synth::Rng;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Ensemble, InputKind};
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch: 32,
            learning_rate: 0.001,
            seed: 1,
        }
    }
}

/// Number of classes in a labelled data set (highest label + 1, or its class names; at least 2).
pub fn class_count(set: &Dataset) -> Result<usize> {
    let labels = set.labels.as_ref().ok_or_else(|| {
        Error::Invalid(format!(
            "{}: training needs labels, and this data set has none{}",
            set.source,
            set.unlabelled
                .as_ref()
                .map_or(String::new(), |why| format!(": {why}"))
        ))
    })?;
    Ok(classes_of(labels, &set.source)?.max(set.class_names.len()))
}

/// Highest label + 1 (at least 2), within the model's limit; `source` names the data.
fn classes_of(labels: &[u8], source: &str) -> Result<usize> {
    let classes = labels
        .iter()
        .copied()
        .max()
        .map_or(2, |m| (m as usize + 1).max(2));
    if classes > crate::model::MAX_CLASSES {
        return Err(Error::Invalid(format!(
            "{}: labels go up to {}, but a model has at most {} classes",
            source,
            classes - 1,
            crate::model::MAX_CLASSES
        )));
    }
    Ok(classes)
}

/// Trains `workers` softmax workers, worker `r` on shard `r` of `set`; `progress` is called with
/// the number of items processed so far (summed over workers) as training advances.
pub fn train_ensemble(
    set: &Dataset,
    workers: usize,
    config: &TrainConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Ensemble> {
    if workers == 0 {
        return Err(Error::Invalid("--workers must be at least 1".into()));
    }
    if !(config.learning_rate.is_finite() && config.learning_rate > 0.0) {
        return Err(Error::Invalid(format!(
            "the learning rate must be a positive number, not {}",
            config.learning_rate
        )));
    }
    if set.len() < workers {
        return Err(Error::Invalid(format!(
            "{}: {} items cannot be split into {workers} training shards",
            set.source,
            set.len()
        )));
    }
    let classes = class_count(set)?;
    let rows = Rows {
        items: Items::U8(&set.pixels),
        labels: set.labels.as_deref().unwrap_or_default(),
        height: set.height,
        width: set.width,
        channels: set.channels,
        class_names: &set.class_names,
    };
    train_rows(&rows, classes, workers, config, progress)
}

/// Trains on the rows of a `.npy` matrix: u8 pixels (scaled by 1/255) or f16/f32 features (as
/// given), one label per row. The model takes items of 1 x `cols` values of that kind.
pub fn train_matrix(
    m: &NpyMatrix,
    labels: &[u8],
    workers: usize,
    config: &TrainConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Ensemble> {
    let source = m.path.display();
    if workers == 0 {
        return Err(Error::Invalid("--workers must be at least 1".into()));
    }
    if labels.len() != m.rows || m.rows < workers {
        return Err(Error::Invalid(format!(
            "{source}: {} rows and {} labels cannot be split into {workers} training shards",
            m.rows,
            labels.len()
        )));
    }
    m.check_finite(0..m.rows)?;
    let mut spare = Vec::new();
    let items = Items::from_bytes(m.dtype.size(), m.rows_bytes(0..m.rows), &mut spare)?;
    let classes = classes_of(labels, &source.to_string())?;
    let rows = Rows {
        items,
        labels,
        height: 1,
        width: m.cols,
        channels: 1,
        class_names: &[],
    };
    let mut model = train_rows(&rows, classes, workers, config, progress)?;
    if m.dtype != Dtype::U8 {
        model.input = InputKind::Features;
    }
    Ok(model)
}

/// What training reads: `labels.len()` items of `height * width` values each, with their labels.
struct Rows<'a> {
    items: Items<'a>,
    labels: &'a [u8],
    height: usize,
    width: usize,
    channels: usize,
    /// Class names from named class folders; empty when the classes are numbers.
    class_names: &'a [String],
}

impl Rows<'_> {
    /// Item `i` as f32 into `out`: pixels scaled by 1/255, features as given.
    fn fill(&self, i: usize, out: &mut [f32]) {
        let d = out.len();
        let at = i * d..(i + 1) * d;
        match self.items {
            Items::U8(v) => {
                for (x, &p) in out.iter_mut().zip(&v[at]) {
                    *x = p as f32 * (1.0 / 255.0);
                }
            }
            Items::F16(v) => {
                for (x, &h) in out.iter_mut().zip(&v[at]) {
                    *x = half::f16::from_bits(h).to_f32();
                }
            }
            Items::F32(v) => out.copy_from_slice(&v[at]),
        }
    }
}

/// Worker `r` trains on shard `r` of the rows, all in parallel.
fn train_rows(
    rows: &Rows<'_>,
    classes: usize,
    workers: usize,
    config: &TrainConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Ensemble> {
    let parts: Vec<Ensemble> = crate::task::shards(rows.labels.len(), workers)
        .into_par_iter()
        .enumerate()
        .map(|(r, shard)| {
            let seed = config.seed.wrapping_add(r as u64 * 0x9E37_79B9);
            train_one(rows, shard, classes, config, seed, progress)
        })
        .collect();
    let mut model = Ensemble::concat(&parts)?;
    model.class_names = rows.class_names.to_vec();
    if !model.class_names.is_empty() {
        // One named folder still makes a two-class model (as one numbered class does).
        while model.class_names.len() < model.classes {
            model.class_names.push(model.class_names.len().to_string());
        }
    }
    Ok(model)
}

/// Adam state for one parameter vector.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    fn new(n: usize) -> Self {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    fn step(&mut self, params: &mut [f32], grad: &[f32], lr_t: f32) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        const EPS: f32 = 1e-7;
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *p -= lr_t * *m / (v.sqrt() + EPS);
        }
    }
}

fn train_one(
    rows: &Rows<'_>,
    shard: std::ops::Range<usize>,
    classes: usize,
    config: &TrainConfig,
    seed: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Ensemble {
    let d = rows.height * rows.width * rows.channels;
    let labels = rows.labels;
    let mut model = Ensemble::zeros_for(1, classes, rows.height, rows.width, rows.channels);
    let mut rng = Rng::new(seed);
    // Glorot-uniform start, as Keras does, so workers differ from the first step.
    let limit = (6.0 / (d + classes) as f32).sqrt();
    for w in &mut model.weight {
        *w = rng.range(-limit, limit);
    }
    let (mut adam_w, mut adam_b) = (Adam::new(model.weight.len()), Adam::new(classes));
    let mut order: Vec<usize> = shard.collect();
    let batch = config.batch.max(1);
    let (mut x, mut z) = (vec![0f32; batch * d], vec![0f32; batch * classes]);
    let (mut gw, mut gb) = (vec![0f32; classes * d], vec![0f32; classes]);
    let mut t = 0i32;
    for _ in 0..config.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for chunk in order.chunks(batch) {
            let n = chunk.len();
            for (row, &item) in x.chunks_exact_mut(d).zip(chunk) {
                rows.fill(item, row);
            }
            let xv = ArrayView2::from_shape((n, d), &x[..n * d]).expect("n x d");
            let wv = ArrayView2::from_shape((classes, d), &model.weight[..]).expect("c x d");
            {
                let mut zv =
                    ArrayViewMut2::from_shape((n, classes), &mut z[..n * classes]).expect("n x c");
                ndarray::linalg::general_mat_mul(1.0, &xv, &wv.t(), 0.0, &mut zv);
            }
            // dLoss/dz = softmax(z) - onehot(y), averaged over the batch.
            gb.fill(0.0);
            for (zi, &item) in z.chunks_exact_mut(classes).zip(chunk) {
                let mut top = f32::MIN;
                for (zc, b) in zi.iter_mut().zip(&model.bias) {
                    *zc += b;
                    top = top.max(*zc);
                }
                let mut sum = 0.0;
                for zc in zi.iter_mut() {
                    *zc = (*zc - top).exp();
                    sum += *zc;
                }
                for zc in zi.iter_mut() {
                    *zc /= sum * n as f32;
                }
                zi[labels[item] as usize] -= 1.0 / n as f32;
                for (g, zc) in gb.iter_mut().zip(zi.iter()) {
                    *g += zc;
                }
            }
            {
                let dz = ArrayView2::from_shape((n, classes), &z[..n * classes]).expect("n x c");
                let mut gwv = ArrayViewMut2::from_shape((classes, d), &mut gw[..]).expect("c x d");
                ndarray::linalg::general_mat_mul(1.0, &dz.t(), &xv, 0.0, &mut gwv);
            }
            t += 1;
            let lr_t =
                config.learning_rate * (1.0 - 0.999f32.powi(t)).sqrt() / (1.0 - 0.9f32.powi(t));
            adam_w.step(&mut model.weight, &gw, lr_t);
            adam_b.step(&mut model.bias, &gb, lr_t);
            progress(n as u64);
        }
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_beyond_the_class_limit_are_refused_not_trained() {
        let mut set = crate::data::synth::generate(100, 1);
        set.labels.as_mut().unwrap()[7] = 70;
        let e = train_ensemble(&set, 1, &TrainConfig::default(), &|_| {}).unwrap_err();
        assert!(e.to_string().contains("at most 64 classes"), "{e}");
    }
}
