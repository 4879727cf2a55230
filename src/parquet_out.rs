//! A classify job's outputs as Parquet (`--out NAME.parquet`, `--probs-out NAME.parquet`):
//!
//! - votes: `task`, `worker`, `label`, `confidence`: the CSV's columns, with `task` the row index
//!   (`Int64`) or the item id (string), `worker` `<model name>/<r>` (string), `label` the class's
//!   number (`Int64`) or name (string), and `confidence` (`Float32`) the six decimals the CSV
//!   holds, so that `tally` reads the same answers from either file;
//! - probabilities: `task`, `worker`, then one `Float32` column per class, named by the class.
//!
//! Neither is journaled: a Parquet file ends with a footer that indexes every row group, so it is
//! written whole through a temporary file, and `--resume` refuses it as it refuses `.gz`.

use crate::backend::Predictions;
use crate::classify::{confidence_micros, ClassifyStats, VoteNames, VotesSink};
use crate::data::parquet::{canonical_ints, unescape_field, ParquetOut};
use crate::error::{Error, Result};
use arrow_array::{ArrayRef, Float32Array, Int64Array, StringArray};
use arrow_schema::{DataType, Field};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// A confidence in millionths as the float a CSV reader parses from its six decimals.
pub fn micros_to_f32(micros: u32) -> f32 {
    (micros as f64 / 1e6) as f32
}

/// The task column: item ids when the items have them, else the row index.
struct Tasks(Option<Arc<Vec<String>>>);

impl Tasks {
    fn field(&self) -> Field {
        let t = if self.0.is_some() {
            DataType::Utf8
        } else {
            DataType::Int64
        };
        Field::new("task", t, false)
    }

    /// The task of each of `rows` rows from item `start`, `per_item` rows an item.
    fn array(&self, start: usize, rows: usize, per_item: usize) -> ArrayRef {
        let item = |j: usize| start + j / per_item.max(1);
        match &self.0 {
            Some(ids) => Arc::new(StringArray::from_iter_values(
                (0..rows).map(|j| ids[item(j)].as_str()),
            )),
            None => Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|j| item(j) as i64),
            )),
        }
    }
}

fn workers_array(workers: &[String], rows: usize) -> ArrayRef {
    let r = workers.len().max(1);
    Arc::new(StringArray::from_iter_values(
        (0..rows).map(|j| workers[j % r].as_str()),
    ))
}

/// The votes' columns once the names are known (at the header).
struct VotesColumns<'a> {
    out: ParquetOut<&'a mut (dyn Write + Send)>,
    tasks: Tasks,
    workers: Vec<String>,
    /// Class names, or the integers they spell.
    classes: Result<Vec<i64>, Vec<String>>,
}

/// Votes into a Parquet file, one record batch per chunk.
pub struct ParquetVotes<'a> {
    writer: Option<&'a mut (dyn Write + Send)>,
    path: &'a Path,
    columns: Option<VotesColumns<'a>>,
}

impl<'a> ParquetVotes<'a> {
    pub fn new(writer: &'a mut (dyn Write + Send), path: &'a Path) -> Self {
        ParquetVotes {
            writer: Some(writer),
            path,
            columns: None,
        }
    }

    fn not_started(&self) -> Error {
        Error::Invalid(format!(
            "{}: Parquet votes written before the header",
            self.path.display()
        ))
    }
}

impl VotesSink for ParquetVotes<'_> {
    fn write(&mut self, _bytes: &[u8]) -> Result<()> {
        Err(Error::Invalid(
            "a Parquet votes file takes columns, not CSV rows".into(),
        ))
    }

    fn header(&mut self, names: &VoteNames) -> Result<()> {
        let writer = self.writer.take().ok_or_else(|| self.not_started())?;
        let tasks = Tasks(names.ids.clone());
        let classes: Vec<String> = names.classes.iter().map(|c| unescape_field(c)).collect();
        let classes = canonical_ints(&classes).ok_or(classes);
        let label = match classes {
            Ok(_) => DataType::Int64,
            Err(_) => DataType::Utf8,
        };
        let fields = vec![
            tasks.field(),
            Field::new("worker", DataType::Utf8, false),
            Field::new("label", label, false),
            Field::new("confidence", DataType::Float32, false),
        ];
        self.columns = Some(VotesColumns {
            out: ParquetOut::new(writer, self.path, fields)?,
            tasks,
            workers: names.workers.iter().map(|w| unescape_field(w)).collect(),
            classes,
        });
        Ok(())
    }

    fn votes(&mut self, start: usize, pred: &Predictions, _names: &VoteNames) -> Result<()> {
        let Some(c) = self.columns.as_mut() else {
            return Err(self.not_started());
        };
        let n = pred.labels.len();
        let labels = pred.labels.iter().map(|&l| l as usize);
        let label: ArrayRef = match &c.classes {
            Ok(ints) => Arc::new(Int64Array::from_iter_values(
                labels.map(|l| ints.get(l).copied().unwrap_or(l as i64)),
            )),
            Err(names) => Arc::new(StringArray::from_iter(
                labels.map(|l| names.get(l).map(String::as_str)),
            )),
        };
        let conf = Float32Array::from_iter_values(
            pred.confidence
                .iter()
                .map(|&v| micros_to_f32(confidence_micros(v))),
        );
        c.out.write(vec![
            c.tasks.array(start, n, pred.workers),
            workers_array(&c.workers, n),
            label,
            Arc::new(conf),
        ])
    }

    fn finish(&mut self) -> Result<()> {
        match self.columns.as_mut() {
            Some(c) => c.out.finish(),
            None => Err(self.not_started()),
        }
    }

    fn chunk_done(&mut self, _end: usize, _stats: &ClassifyStats) -> Result<()> {
        Ok(())
    }
}

/// Every worker's class probabilities into a Parquet file: a row per item and worker.
pub struct ParquetProbs<'a> {
    out: ParquetOut<&'a mut (dyn Write + Send)>,
    tasks: Tasks,
    workers: Vec<String>,
    classes: usize,
}

impl<'a> ParquetProbs<'a> {
    pub fn new(
        writer: &'a mut (dyn Write + Send),
        names: &VoteNames,
        classes: usize,
    ) -> Result<Self> {
        let tasks = Tasks(names.ids.clone());
        let mut fields = vec![tasks.field(), Field::new("worker", DataType::Utf8, false)];
        fields.extend(
            names
                .classes
                .iter()
                .map(|c| Field::new(unescape_field(c), DataType::Float32, false)),
        );
        Ok(ParquetProbs {
            out: ParquetOut::new(writer, Path::new("probabilities"), fields)?,
            tasks,
            workers: names.workers.iter().map(|w| unescape_field(w)).collect(),
            classes,
        })
    }

    /// Appends the probabilities (`items * workers * classes`) of the items `start..`.
    pub fn write(&mut self, start: usize, probs: &[f32]) -> Result<()> {
        let c = self.classes.max(1);
        let rows = probs.len() / c;
        let mut columns = vec![
            self.tasks.array(start, rows, self.workers.len()),
            workers_array(&self.workers, rows),
        ];
        for k in 0..c {
            let p = Float32Array::from_iter_values(probs.iter().skip(k).step_by(c).copied());
            columns.push(Arc::new(p));
        }
        self.out.write(columns)
    }

    /// Writes the footer.
    pub fn finish(mut self) -> Result<()> {
        self.out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidences_match_what_a_csv_reader_parses() {
        // Every value of six decimals: the float from millionths is the one the CSV text gives.
        for micros in 0..=1_000_000u32 {
            let text = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
            let parsed: f32 = text.parse().unwrap();
            assert_eq!(micros_to_f32(micros), parsed, "{text}");
        }
    }
}
