//! What a bench run classifies, and how the peers get the very same items: u8 pixels (the
//! source tiled to N rows in memory, as peers.py tiles the MNIST test set), or f16/f32 features
//! in a `.npy` file (the user's `--npy`, else embedding-like features written to a temporary
//! file, which stays in the page cache) read memory-mapped, as `classify` reads them, and timed by
//! the peers from the same file with `peers.py --npy`.

use super::timing::{random_model_of, tile};
use super::BenchConfig;
use crate::backend::Items;
use crate::data::npy::{self, Dtype, NpyMatrix};
use crate::data::synth::Rng;
use crate::error::{Error, Result};
use crate::model::{Ensemble, InputKind};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Rows generated per task when writing features.
const GENERATE_ROWS: usize = 8192;

pub(crate) struct Workload {
    pub model: Ensemble,
    held: Held,
    /// peers.py's flags for the same items.
    pub peer_args: Vec<String>,
    /// Where the items come from, for the report.
    pub source: String,
    /// A generated file, removed when the run ends.
    _temp: Option<TempFile>,
}

enum Held {
    Pixels(Vec<u8>),
    Mapped(NpyMatrix),
}

impl Workload {
    /// Pixels from `cfg.data` (or the MNIST test set) for u8; features from `cfg.npy` or a
    /// generated file for f16/f32.
    pub fn prepare(cfg: &BenchConfig, say: &dyn Fn(&str)) -> Result<Self> {
        match cfg.dtype {
            Dtype::U8 => Self::pixels(cfg),
            _ => Self::features(cfg, say),
        }
    }

    fn pixels(cfg: &BenchConfig) -> Result<Self> {
        if let Some(p) = &cfg.npy {
            return Self::mapped(cfg, p.clone(), None);
        }
        let spec = cfg.data.clone().unwrap_or_else(super::default_data);
        let base = crate::data::load(&spec)?;
        let model = random_model_of(cfg.workers.max(1), 28, 28, 3);
        if base.features() != model.features() {
            return Err(Error::Invalid(format!(
                "{spec}: bench needs 28x28 items, these are {}x{}",
                base.height, base.width
            )));
        }
        Ok(Workload {
            held: Held::Pixels(tile(&base.pixels, model.features(), cfg.items)),
            model,
            peer_args: vec!["--items".into(), cfg.items.to_string()],
            source: spec,
            _temp: None,
        })
    }

    fn features(cfg: &BenchConfig, say: &dyn Fn(&str)) -> Result<Self> {
        if let Some(p) = &cfg.npy {
            return Self::mapped(cfg, p.clone(), None);
        }
        let path = std::env::temp_dir().join(format!(
            "microtask-bench-{}-{}x{}-{}.npy",
            std::process::id(),
            cfg.items,
            cfg.features,
            cfg.dtype.name()
        ));
        say(&format!(
            "writing {} rows of {} {} features to {}...",
            cfg.items,
            cfg.features,
            cfg.dtype.name(),
            path.display()
        ));
        let temp = TempFile(path.clone());
        write_features(&path, cfg.dtype, cfg.items, cfg.features)?;
        Self::mapped(cfg, path, Some(temp))
    }

    /// A `.npy` matrix, mapped; the model takes its kind and width.
    fn mapped(cfg: &BenchConfig, path: PathBuf, temp: Option<TempFile>) -> Result<Self> {
        let m = NpyMatrix::open(&path)?;
        if m.rows == 0 {
            return Err(Error::format(&path, "the data set holds no items"));
        }
        // A user's file is checked like `classify` checks it (outside the timed runs).
        m.check_finite(0..m.rows)?;
        let mut model = random_model_of(cfg.workers.max(1), 1, m.cols, 3);
        if m.dtype != Dtype::U8 {
            model.input = InputKind::Features;
        }
        let held = Held::Mapped(m);
        // Checked once here: `items` can then view the mapping without a copy.
        typed(&held).ok_or_else(|| {
            Error::format(&path, "the data is not aligned for its type in the file")
        })?;
        let dtype = match &held {
            Held::Mapped(m) => m.dtype,
            Held::Pixels(_) => Dtype::U8,
        };
        Ok(Workload {
            model,
            held,
            peer_args: vec![
                "--dtype".into(),
                peer_dtype(dtype).into(),
                "--npy".into(),
                path.display().to_string(),
            ],
            source: path.display().to_string(),
            _temp: temp,
        })
    }

    /// The items, typed.
    pub fn items(&self) -> Items<'_> {
        typed(&self.held).expect("checked in `mapped`")
    }

    /// Items (rows).
    pub fn len(&self) -> usize {
        self.items().len() / self.model.features().max(1)
    }
}

fn typed(held: &Held) -> Option<Items<'_>> {
    match held {
        Held::Pixels(p) => Some(Items::U8(p)),
        Held::Mapped(m) => {
            let bytes = m.rows_bytes(0..m.rows);
            match m.dtype {
                Dtype::U8 => Some(Items::U8(bytes)),
                Dtype::F16 => bytemuck::try_cast_slice(bytes).ok().map(Items::F16),
                Dtype::F32 => bytemuck::try_cast_slice(bytes).ok().map(Items::F32),
            }
        }
    }
}

/// peers.py's `--dtype` value.
fn peer_dtype(d: Dtype) -> &'static str {
    match d {
        Dtype::U8 => "u8",
        Dtype::F16 => "f16",
        Dtype::F32 => "f32",
    }
}

/// `rows` x `d` embedding-like features (about standard normal: a scaled sum of four uniforms,
/// seed 0) as a `.npy` file of `dtype`.
fn write_features(path: &Path, dtype: Dtype, rows: usize, d: usize) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = std::io::BufWriter::new(file);
    let io = |e| Error::io(path, e);
    w.write_all(&npy::header_bytes(dtype.descr(), &[rows, d]))
        .map_err(io)?;
    let starts: Vec<usize> = (0..rows).step_by(GENERATE_ROWS).collect();
    // A few pieces at a time: memory stays small whatever the row count.
    for group in starts.chunks(rayon::current_num_threads().max(1) * 2) {
        let pieces: Vec<Vec<u8>> = group
            .par_iter()
            .map(|&start| {
                let n = GENERATE_ROWS.min(rows - start);
                let mut rng = Rng::new(start as u64);
                let values = (0..n * d).map(|_| {
                    let s: f32 = (0..4).map(|_| rng.uniform()).sum();
                    (s - 2.0) * 3f32.sqrt()
                });
                match dtype {
                    Dtype::F16 => values
                        .flat_map(|v| half::f16::from_f32(v).to_le_bytes())
                        .collect(),
                    _ => values.flat_map(f32::to_le_bytes).collect(),
                }
            })
            .collect();
        for p in pieces {
            w.write_all(&p).map_err(io)?;
        }
    }
    w.flush().map_err(io)
}

/// Removes the file when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_features_read_back_as_a_matrix() {
        let dir = tempfile::tempdir().unwrap();
        for dtype in [Dtype::F16, Dtype::F32] {
            let p = dir.path().join(format!("{}.npy", dtype.name()));
            write_features(&p, dtype, 10_000, 7).unwrap();
            let m = NpyMatrix::open(&p).unwrap();
            assert_eq!((m.rows, m.cols, m.dtype), (10_000, 7, dtype));
            let held = Held::Mapped(m);
            let items = typed(&held).unwrap();
            assert_eq!(items.len(), 70_000);
            if let Items::F32(v) = items {
                let mean = v.iter().sum::<f32>() / v.len() as f32;
                let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / v.len() as f32;
                assert!(
                    mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
                    "{mean} {var}"
                );
            }
        }
    }
}
