//! Parquet output: votes, labels, probabilities and posteriors files are written as Parquet when
//! their name ends in `.parquet` (tables here; a classify job's columns in
//! [`crate::parquet_out`]; the votes reader in `votes/parquet.rs`).
//!
//! The columns are those of the CSV files, with types: an id column (task, worker, label) is
//! `Int64` when every name in it is an integer written the canonical way (`7`, not `07` or `+7`,
//! so that reading it back gives the same names), else a string column; confidences and
//! probabilities are `Float32` (a missing confidence is a null), answer counts `Int64`. Snappy
//! compression, row groups of [`ROW_GROUP`] rows. The file goes through [`write_atomic`] like
//! every output, so it is all or nothing.

use crate::error::{Error, Result};
use crate::output::{write_atomic, OutputWriter};
use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per row group (and per batch handed to the writer).
pub const ROW_GROUP: usize = 1 << 20;

/// Whether an output or input named `path` is a Parquet file.
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Refuses a `.parquet` name for an output that is written as CSV only (before any work).
pub fn csv_only(flag: &str, path: Option<&Path>) -> Result<()> {
    match path {
        Some(p) if is_parquet(p) => Err(Error::Usage(format!(
            "{flag} {}: this output is CSV only (Parquet is for votes, labels and posteriors)",
            p.display()
        ))),
        _ => Ok(()),
    }
}

/// A Parquet error as the library's error: an OS error stays one, naming the file.
pub fn error(path: &Path, e: ParquetError) -> Error {
    match e {
        ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => Error::io(path, *io),
            Err(other) => Error::format(path, other.to_string()),
        },
        other => Error::format(path, format!("Parquet: {other}")),
    }
}

/// A Parquet file being written into an output's temporary file, batch by batch.
pub struct ParquetOut<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
    /// The file, for messages.
    path: PathBuf,
}

impl<W: Write + Send> ParquetOut<W> {
    pub fn new(w: W, path: &Path, fields: Vec<Field>) -> Result<Self> {
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP))
            .build();
        let writer = ArrowWriter::try_new(w, Arc::clone(&schema), Some(props))
            .map_err(|e| error(path, e))?;
        Ok(ParquetOut {
            writer,
            schema,
            path: path.to_path_buf(),
        })
    }

    /// Appends rows: one array per field, of one length.
    pub fn write(&mut self, columns: Vec<ArrayRef>) -> Result<()> {
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|e| Error::Invalid(format!("{}: {e}", self.path.display())))?;
        self.writer.write(&batch).map_err(|e| error(&self.path, e))
    }

    /// Writes the footer; the output's writer then flushes and fsyncs the file.
    pub fn finish(&mut self) -> Result<()> {
        self.writer.finish().map_err(|e| error(&self.path, e))?;
        Ok(())
    }
}

/// The integers `names` spell when every one is an integer written the canonical way.
pub fn canonical_ints(names: &[String]) -> Option<Vec<i64>> {
    let canonical = |s: &String| {
        let v: i64 = s.parse().ok()?;
        (itoa::Buffer::new().format(v) == s).then_some(v)
    };
    names.iter().map(canonical).collect()
}

/// A CSV field back to its text (the inverse of `votes::push_field`).
pub fn unescape_field(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => text.into_owned(),
    }
}

/// The names of an id column, as integers when all of them are canonical integers.
pub struct Names<'a> {
    names: &'a [String],
    ints: Option<Vec<i64>>,
}

impl<'a> Names<'a> {
    pub fn new(names: &'a [String]) -> Self {
        Names {
            names,
            ints: canonical_ints(names),
        }
    }

    pub fn data_type(&self) -> DataType {
        match self.ints {
            Some(_) => DataType::Int64,
            None => DataType::Utf8,
        }
    }

    /// The column of the names of `ids`.
    pub fn array(&self, ids: impl Iterator<Item = u32>) -> ArrayRef {
        match &self.ints {
            Some(v) => Arc::new(Int64Array::from_iter_values(ids.map(|i| v[i as usize]))),
            None => Arc::new(StringArray::from_iter_values(
                ids.map(|i| self.names[i as usize].as_str()),
            )),
        }
    }
}

/// One column of a table written row by row: its name and how to get row `i`'s value.
pub enum Column<'a> {
    /// An id column: `id(i)` indexes `names`.
    Names(&'a str, Names<'a>, Box<dyn Fn(usize) -> u32 + Sync + 'a>),
    Float(&'a str, Box<dyn Fn(usize) -> f32 + Sync + 'a>),
    /// Floats with NaN written as null.
    FloatOrNull(&'a str, Box<dyn Fn(usize) -> f32 + Sync + 'a>),
    Int(&'a str, Box<dyn Fn(usize) -> i64 + Sync + 'a>),
}

impl<'a> Column<'a> {
    pub fn names(
        name: &'a str,
        names: &'a [String],
        id: impl Fn(usize) -> u32 + Sync + 'a,
    ) -> Self {
        Column::Names(name, Names::new(names), Box::new(id))
    }

    pub fn float(name: &'a str, value: impl Fn(usize) -> f32 + Sync + 'a) -> Self {
        Column::Float(name, Box::new(value))
    }

    pub fn float_or_null(name: &'a str, value: impl Fn(usize) -> f32 + Sync + 'a) -> Self {
        Column::FloatOrNull(name, Box::new(value))
    }

    pub fn int(name: &'a str, value: impl Fn(usize) -> i64 + Sync + 'a) -> Self {
        Column::Int(name, Box::new(value))
    }

    fn field(&self) -> Field {
        match self {
            Column::Names(n, names, _) => Field::new(*n, names.data_type(), false),
            Column::Float(n, _) => Field::new(*n, DataType::Float32, false),
            Column::FloatOrNull(n, _) => Field::new(*n, DataType::Float32, true),
            Column::Int(n, _) => Field::new(*n, DataType::Int64, false),
        }
    }

    fn array(&self, rows: std::ops::Range<usize>) -> ArrayRef {
        match self {
            Column::Names(_, names, id) => names.array(rows.map(id)),
            Column::Float(_, f) => Arc::new(Float32Array::from_iter_values(rows.map(f))),
            Column::FloatOrNull(_, f) => Arc::new(Float32Array::from_iter(
                rows.map(|i| Some(f(i)).filter(|v| !v.is_nan())),
            )),
            Column::Int(_, f) => Arc::new(Int64Array::from_iter_values(rows.map(f))),
        }
    }
}

/// Writes rows `0..n` of `columns` as a Parquet file at `path`, atomically.
pub fn write_table(path: &Path, n: usize, columns: &[Column<'_>]) -> Result<()> {
    write_atomic(path, |w: &mut OutputWriter| {
        let mut out = ParquetOut::new(w, path, columns.iter().map(Column::field).collect())?;
        for start in (0..n).step_by(ROW_GROUP) {
            let rows = start..(start + ROW_GROUP).min(n);
            out.write(columns.iter().map(|c| c.array(rows.clone())).collect())?;
        }
        out.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_unescape() {
        for (field, text) in [
            ("a", "a"),
            ("\"a,b\"", "a,b"),
            ("\"q\"\"w\"", "q\"w"),
            ("\"\"", ""),
        ] {
            assert_eq!(unescape_field(field.as_bytes()), text);
        }
    }

    #[test]
    fn canonical_integers_only_become_int64() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Names::new(&s(&["0", "-3", "12"])).data_type(),
            DataType::Int64
        );
        for odd in [&["1", "07"][..], &["+1"], &["1", "a"], &[" 1"]] {
            assert_eq!(Names::new(&s(odd)).data_type(), DataType::Utf8, "{odd:?}");
        }
    }
}
