//! A model's class probabilities for `tally --model-probs`: an `.npy` of f32, `[N, R, C]` (the
//! shape `classify --probs-out` writes: N items, R ensemble members, C classes) or `[N, C]`,
//! joined to the tasks of a vote table.
//!
//! - **Rows**: row `i` is the item whose task id is `i` (the task ids `classify` gives its votes:
//!   the item index). A task whose id is not a row index gets no model evidence (counted); rows
//!   with no task in the votes are the tasks nobody has answered yet ([`Joined::unanswered`]).
//! - **Ensemble**: the R members' probabilities are averaged (the ensemble's prediction).
//! - **Classes**: column `c` is the class named `c` in the votes. A class of the votes that is
//!   not a column index is an error; columns no answer used are dropped and each row
//!   renormalised over the votes' classes.
//! - **Logs**: probabilities are floored at [`FLOOR`] before their log, so a model that gave a
//!   class exactly 0 cannot veto every answer.
//!
//! The reader is a minimal one (little-endian f32, C order, format versions 1 to 3), kept here
//! until the shared `.npy` reader lands in `data/`.

use crate::data::votes::VoteTable;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Smallest probability taken at face value.
pub const FLOOR: f64 = 1e-6;

/// A model's probabilities, the ensemble averaged: `rows x classes`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelProbs {
    pub source: PathBuf,
    pub rows: usize,
    pub classes: usize,
    pub probs: Vec<f32>,
}

/// [`ModelProbs`] in the ids of a vote table.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// `tasks x classes` of the table: ln P(class | item), floored; zero rows where not covered.
    pub log_probs: Vec<f64>,
    pub covered: Vec<bool>,
    /// Tasks of the table with a row.
    pub covered_tasks: usize,
    /// Rows with no task in the table (nobody answered them yet).
    pub unanswered: Vec<u32>,
    /// `unanswered x classes`, as `log_probs`.
    pub unanswered_log_probs: Vec<f64>,
}

impl ModelProbs {
    /// Reads an `.npy` file of f32, `[N, R, C]` or `[N, C]`.
    pub fn read(path: &Path) -> Result<ModelProbs> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<ModelProbs> {
        let bad = |p: String| Error::format(path, p);
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err(bad("not an .npy file (no \\x93NUMPY magic)".into()));
        }
        let (hlen, at) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            v => return Err(bad(format!(".npy format version {v} is not supported"))),
        };
        let header = bytes
            .get(at..at + hlen)
            .map(String::from_utf8_lossy)
            .ok_or_else(|| bad("the .npy header is cut short".into()))?;
        let field = |key: &str| -> Option<&str> {
            let i = header.find(&format!("'{key}'"))?;
            let rest = header[i + key.len() + 2..].trim_start();
            Some(rest.strip_prefix(':')?.trim_start())
        };
        let descr = field("descr").unwrap_or("");
        if !(descr.starts_with("'<f4'") || descr.starts_with("'float32'")) {
            return Err(bad(format!(
                "dtype {} is not little-endian float32 ('<f4')",
                descr.split(',').next().unwrap_or("?")
            )));
        }
        if field("fortran_order").is_some_and(|v| v.starts_with("True")) {
            return Err(bad("Fortran-ordered arrays are not supported".into()));
        }
        let shape_text = field("shape")
            .and_then(|v| v.strip_prefix('('))
            .and_then(|v| v.split(')').next())
            .ok_or_else(|| bad("the .npy header has no shape".into()))?;
        let shape: Vec<usize> = shape_text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad(format!("shape ({shape_text}) is not a list of sizes")))?;
        let (rows, members, classes) = match shape[..] {
            [n, r, c] => (n, r, c),
            [n, c] => (n, 1, c),
            _ => {
                return Err(bad(format!(
                    "shape ({shape_text}): expected [items, members, classes] or [items, classes]"
                )))
            }
        };
        if members == 0 || classes < 2 {
            return Err(bad(format!(
                "shape ({shape_text}): no members or fewer than two classes"
            )));
        }
        let data = &bytes[at + hlen..];
        let want = rows
            .checked_mul(members * classes)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| bad(format!("shape ({shape_text}) is too large")))?;
        if data.len() != want {
            return Err(bad(format!(
                "shape ({shape_text}) needs {want} bytes of data, the file has {}",
                data.len()
            )));
        }
        let value = |i: usize| {
            f32::from_le_bytes([
                data[4 * i],
                data[4 * i + 1],
                data[4 * i + 2],
                data[4 * i + 3],
            ])
        };
        let mut probs = vec![0f32; rows * classes];
        probs
            .par_chunks_mut(classes)
            .enumerate()
            .try_for_each(|(n, row)| {
                for r in 0..members {
                    for (c, p) in row.iter_mut().enumerate() {
                        let v = value((n * members + r) * classes + c);
                        if !(0.0..=1.0).contains(&v) {
                            return Err(n);
                        }
                        *p += v / members as f32;
                    }
                }
                Ok(())
            })
            .map_err(|n| bad(format!("row {n}: a probability outside [0, 1] (or NaN)")))?;
        Ok(ModelProbs {
            source: path.to_path_buf(),
            rows,
            classes,
            probs,
        })
    }

    /// Joins the rows to `votes`' tasks and classes (see the module docs).
    pub fn join(&self, votes: &VoteTable) -> Result<Joined> {
        let k = votes.n_classes();
        let column: Vec<usize> = votes
            .classes
            .iter()
            .map(|name| match name.trim().parse::<usize>() {
                Ok(c) if c < self.classes => Ok(c),
                _ => Err(Error::Invalid(format!(
                    "{}: the votes' class '{name}' is not one of the model's columns 0..{}",
                    self.source.display(),
                    self.classes
                ))),
            })
            .collect::<Result<_>>()?;
        let log_row = |row: usize, out: &mut [f64]| {
            let p = &self.probs[row * self.classes..(row + 1) * self.classes];
            let total: f64 = column.iter().map(|&c| p[c] as f64).sum();
            for (o, &c) in out.iter_mut().zip(&column) {
                let v = if total > 0.0 {
                    p[c] as f64 / total
                } else {
                    1.0 / k as f64
                };
                *o = v.max(FLOOR).ln();
            }
        };
        let row_of: Vec<Option<usize>> = votes
            .tasks
            .par_iter()
            .map(|name| name.trim().parse::<usize>().ok().filter(|&r| r < self.rows))
            .collect();
        let mut log_probs = vec![0.0; votes.n_tasks() * k];
        log_probs
            .par_chunks_mut(k.max(1))
            .zip(&row_of)
            .for_each(|(out, r)| {
                if let Some(r) = r {
                    log_row(*r, out);
                }
            });
        let covered: Vec<bool> = row_of.iter().map(Option::is_some).collect();
        let covered_tasks = covered.iter().filter(|&&c| c).count();
        if covered_tasks == 0 {
            return Err(Error::Invalid(format!(
                "{}: no task of the votes is a row of the model's {} (task ids must be row indexes)",
                self.source.display(),
                self.rows
            )));
        }
        let mut answered = vec![false; self.rows];
        row_of.iter().flatten().for_each(|&r| answered[r] = true);
        let unanswered: Vec<u32> = (0..self.rows as u32)
            .filter(|&r| !answered[r as usize])
            .collect();
        let mut unanswered_log_probs = vec![0.0; unanswered.len() * k];
        unanswered_log_probs
            .par_chunks_mut(k.max(1))
            .zip(&unanswered)
            .for_each(|(out, &r)| log_row(r as usize, out));
        Ok(Joined {
            log_probs,
            covered,
            covered_tasks,
            unanswered,
            unanswered_log_probs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(shape: &str, values: &[f32]) -> Vec<u8> {
        let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.as_bytes());
        values.iter().for_each(|v| b.extend(v.to_le_bytes()));
        b
    }

    #[test]
    fn reads_members_and_joins_by_task_id() {
        // 3 items, 2 members, 2 classes.
        let b = npy(
            "(3, 2, 2)",
            &[0.9, 0.1, 0.7, 0.3, 0.2, 0.8, 0.4, 0.6, 0.5, 0.5, 0.5, 0.5],
        );
        let m = ModelProbs::parse(Path::new("p.npy"), &b).expect("parse");
        assert_eq!((m.rows, m.classes), (3, 2));
        assert!((m.probs[0] - 0.8).abs() < 1e-6 && (m.probs[3] - 0.7).abs() < 1e-6);
        let votes = VoteTable {
            task: vec![0, 1],
            worker: vec![0, 0],
            label: vec![0, 1],
            confidence: vec![1.0; 2],
            tasks: vec!["1".into(), "x".into()],
            workers: vec!["w".into()],
            classes: vec!["0".into(), "1".into()],
        };
        let j = m.join(&votes).expect("join");
        assert_eq!(j.covered, vec![true, false]);
        assert_eq!(j.unanswered, vec![0, 2]);
        assert!((j.log_probs[1].exp() - 0.7).abs() < 1e-6);
        let mut bad = votes.clone();
        bad.classes = vec!["0".into(), "cat".into()];
        assert!(m.join(&bad).unwrap_err().to_string().contains("'cat'"));
    }

    #[test]
    fn bad_files_are_refused() {
        let p = Path::new("p.npy");
        assert!(ModelProbs::parse(p, b"hello").is_err());
        let short = npy("(3, 2)", &[0.5; 5]);
        assert!(ModelProbs::parse(p, &short)
            .unwrap_err()
            .to_string()
            .contains("bytes"));
        let nan = npy("(1, 2)", &[f32::NAN, 0.5]);
        assert!(ModelProbs::parse(p, &nan).is_err());
        let one_d = npy("(4,)", &[0.5; 4]);
        assert!(ModelProbs::parse(p, &one_d).is_err());
    }
}
