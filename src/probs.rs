//! Every worker's class probabilities (`classify --probs-out`): the full softmax, which the
//! classify kernels reduce to the top class and its probability.
//!
//! They are computed on the CPU, from the CPU backend's own logits kernel, and the votes of such
//! a run are taken from the same softmax (argmax, ties to the lowest class; confidence = that
//! class's probability), so that the two outputs agree exactly. The GPU kernels read back only
//! the top class: a run with `--probs-out` classifies on the CPU whatever backend was asked for.
//!
//! Written as NumPy's `.npy` (`[N, R, C]` little-endian f32) or as CSV
//! `task,worker,<class>...` (one row per item and worker, shortest round-trip decimals).

use crate::backend::cpu::{block_logits, BLOCK_ITEMS};
use crate::backend::Predictions;
use crate::data::items::Items;
use crate::data::npy::{header_bytes, Dtype};
use crate::data::votes::push_field;
use crate::error::Result;
use crate::model::Ensemble;
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// The file format of `--probs-out`, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbsFormat {
    /// `.npy`: `[N, R, C]` f32.
    Npy,
    /// Any other name: CSV `task,worker,<class>...`.
    Csv,
    /// `.parquet`: the CSV's columns as Parquet ([`crate::parquet_out`]).
    Parquet,
}

impl ProbsFormat {
    pub fn for_path(path: &Path) -> ProbsFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("npy") => ProbsFormat::Npy,
            Some(e) if e.eq_ignore_ascii_case("parquet") => ProbsFormat::Parquet,
            _ => ProbsFormat::Csv,
        }
    }
}

/// Classifies `items` on the CPU: appends the votes to `out` (as `Backend::classify` does) and
/// every worker's class probabilities to `probs` (`n * workers * classes`: item, then worker,
/// then class).
pub fn classify_with_probs<'b>(
    model: &Ensemble,
    items: impl Into<Items<'b>>,
    out: &mut Predictions,
    probs: &mut Vec<f32>,
) -> Result<()> {
    let (d, r, c) = (model.features(), model.workers, model.classes);
    let items = items.into();
    let n = items.rows(d)?;
    out.workers = r;
    let (start, pstart) = (out.labels.len(), probs.len());
    out.labels.resize(start + n * r, 0);
    out.confidence.resize(start + n * r, 0.0);
    probs.resize(pstart + n * r * c, 0.0);
    if r == 0 {
        return Ok(());
    }
    let blocks: Vec<Items> = (0..n)
        .step_by(BLOCK_ITEMS)
        .map(|i| items.slice(i * d..(i + BLOCK_ITEMS).min(n) * d))
        .collect();
    blocks
        .into_par_iter()
        .zip(out.labels[start..].par_chunks_mut(BLOCK_ITEMS * r))
        .zip(out.confidence[start..].par_chunks_mut(BLOCK_ITEMS * r))
        .zip(probs[pstart..].par_chunks_mut(BLOCK_ITEMS * r * c))
        .for_each_init(
            || (Vec::new(), Vec::new()),
            |(logits, x), (((block, labels), conf), p)| {
                block_logits(model, block, logits, x);
                // The logits are `n x (R*C)`, the probabilities the same layout.
                for (k, (z, p)) in logits
                    .chunks_exact(c)
                    .zip(p.chunks_exact_mut(c))
                    .enumerate()
                {
                    let w = k % r;
                    let (label, top) = softmax(z, &model.bias[w * c..(w + 1) * c], p);
                    labels[k] = label;
                    conf[k] = top;
                }
            },
        );
    Ok(())
}

/// `p = softmax(z + bias)`; returns the argmax (ties to the lowest class) and its probability.
fn softmax(z: &[f32], bias: &[f32], p: &mut [f32]) -> (u32, f32) {
    let mut best = 0;
    for k in 0..p.len() {
        p[k] = z[k] + bias[k];
        if p[k] > p[best] {
            best = k;
        }
    }
    let top = p[best];
    let mut sum = 0.0f32;
    for pk in p.iter_mut() {
        *pk = (*pk - top).exp();
        sum += *pk;
    }
    let inv = 1.0 / sum;
    p.iter_mut().for_each(|v| *v *= inv);
    (best as u32, p[best])
}

/// Writes the `.npy` header of an `[n, r, c]` f32 array.
pub fn write_npy_header(w: &mut dyn Write, n: usize, r: usize, c: usize) -> std::io::Result<()> {
    w.write_all(&header_bytes(Dtype::F32.descr(), &[n, r, c]))
}

/// Appends probabilities (`items * workers * classes`) as little-endian f32.
pub fn push_npy(buf: &mut Vec<u8>, probs: &[f32]) {
    buf.reserve(probs.len() * 4);
    for v in probs {
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

/// The CSV header `task,worker,<class>...`.
pub fn csv_header(class_names: &[String]) -> Vec<u8> {
    let mut buf = b"task,worker".to_vec();
    for name in class_names {
        buf.push(b',');
        push_field(&mut buf, name);
    }
    buf.push(b'\n');
    buf
}

/// Appends CSV rows `task,worker,<p>...` for items `start..`: `id(i)` gives item `i`'s task
/// field, `workers[r]` worker `r`'s field (both already CSV-escaped).
pub fn push_csv(
    buf: &mut Vec<u8>,
    start: usize,
    probs: &[f32],
    classes: usize,
    workers: &[Vec<u8>],
    id: &mut dyn FnMut(usize, &mut Vec<u8>),
) {
    let r = workers.len().max(1);
    for (k, p) in probs.chunks_exact(classes.max(1)).enumerate() {
        id(start + k / r, buf);
        buf.push(b',');
        buf.extend_from_slice(&workers[k % r]);
        for v in p {
            let _ = write!(buf, ",{v}");
        }
        buf.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_numpys() {
        let mut buf = Vec::new();
        write_npy_header(&mut buf, 10000, 5, 10).unwrap();
        assert_eq!(buf.len() % 64, 0);
        let dict = std::str::from_utf8(&buf[10..]).unwrap();
        assert!(
            dict.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (10000, 5, 10), }")
        );
    }

    #[test]
    fn probabilities_sum_to_one_and_their_argmax_is_the_vote() {
        let mut model = Ensemble::zeros(3, 4, 2, 3);
        let mut rng = crate::data::synth::Rng::new(7);
        model
            .weight
            .iter_mut()
            .for_each(|w| *w = rng.range(-2.0, 2.0));
        model
            .bias
            .iter_mut()
            .for_each(|b| *b = rng.range(-1.0, 1.0));
        // Worker 2 gives equal logits: its vote must go to the lowest class.
        model.weight[2 * 4 * 6..].fill(0.0);
        model.bias[8..].fill(0.5);
        let items: Vec<u8> = (0..300 * 6).map(|_| rng.below(256) as u8).collect();
        let (mut pred, mut probs) = (Predictions::default(), Vec::new());
        classify_with_probs(&model, &items, &mut pred, &mut probs).unwrap();
        assert_eq!(probs.len(), 300 * 3 * 4);
        let mut cpu = Predictions::default();
        crate::backend::Backend::classify(
            &crate::backend::cpu::CpuBackend::default(),
            &model,
            &items,
            &mut cpu,
        )
        .unwrap();
        for (k, p) in probs.chunks_exact(4).enumerate() {
            let sum: f32 = p.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{sum}");
            let top = (0..4).fold(0, |b, c| if p[c] > p[b] { c } else { b });
            assert_eq!(pred.labels[k], top as u32);
            assert_eq!(pred.confidence[k], p[top]);
            assert_eq!(pred.labels[k], cpu.labels[k], "the CPU backend's vote");
            assert!((pred.confidence[k] - cpu.confidence[k]).abs() < 1e-6);
        }
        assert!(pred.labels.chunks_exact(3).all(|v| v[2] == 0));
    }
}
