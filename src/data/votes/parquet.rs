//! Votes in a Parquet file: the columns `task`, `worker` and `label` (any order, case-insensitive)
//! and optionally `confidence`; other columns are not read. Ids may be strings (also
//! dictionary-encoded, as pandas writes categoricals) or integers of any width (read as the names
//! their decimal digits spell, so a Parquet file and its CSV give the same table). Confidence is a
//! float in [0, 1]; a null confidence is a missing one (NaN), as an empty CSV field is; a null id is an
//! error naming its row. Row groups are read in parallel, each into one chunk with its own
//! interners, as the CSV parser's pieces are.

use super::interner::Interner;
use super::parallel::{Chunk, TOO_MANY_IDS};
use crate::data::parquet::error;
use crate::error::{Error, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use rayon::prelude::*;
use std::fs::File;
use std::path::Path;

/// Rows decoded at a time.
const BATCH: usize = 1 << 16;

/// The values of one id column as byte strings.
enum Text<'a> {
    Str(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
    Signed(Vec<i64>),
    Unsigned(Vec<u64>),
    /// Dictionary-encoded: row `i` is value `keys[i]`.
    Dict(Vec<usize>, Box<Text<'a>>),
}

impl<'a> Text<'a> {
    fn of(col: &'a dyn Array) -> Option<Text<'a>> {
        macro_rules! ints {
            ($variant:ident, $t:ty, $as:ty) => {
                Text::$variant(
                    col.as_primitive::<$t>()
                        .values()
                        .iter()
                        .map(|&v| v as $as)
                        .collect(),
                )
            };
        }
        Some(match col.data_type() {
            DataType::Utf8 => Text::Str(col.as_string::<i32>()),
            DataType::LargeUtf8 => Text::Large(col.as_string::<i64>()),
            DataType::Utf8View => Text::View(col.as_string_view()),
            DataType::Int8 => ints!(Signed, Int8Type, i64),
            DataType::Int16 => ints!(Signed, Int16Type, i64),
            DataType::Int32 => ints!(Signed, Int32Type, i64),
            DataType::Int64 => ints!(Signed, Int64Type, i64),
            DataType::UInt8 => ints!(Unsigned, UInt8Type, u64),
            DataType::UInt16 => ints!(Unsigned, UInt16Type, u64),
            DataType::UInt32 => ints!(Unsigned, UInt32Type, u64),
            DataType::UInt64 => ints!(Unsigned, UInt64Type, u64),
            DataType::Dictionary(_, _) => {
                let d = col.as_any_dictionary_opt()?;
                Text::Dict(
                    d.normalized_keys(),
                    Box::new(Text::of(d.values().as_ref())?),
                )
            }
            _ => return None,
        })
    }

    /// Calls `f` with row `i`'s bytes.
    fn with<R>(&self, i: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Text::Str(a) => f(a.value(i).as_bytes()),
            Text::Large(a) => f(a.value(i).as_bytes()),
            Text::View(a) => f(a.value(i).as_bytes()),
            Text::Signed(v) => f(itoa::Buffer::new().format(v[i]).as_bytes()),
            Text::Unsigned(v) => f(itoa::Buffer::new().format(v[i]).as_bytes()),
            Text::Dict(keys, values) => values.with(keys[i], f),
        }
    }
}

/// The first null row of `col`, if any.
fn first_null(col: &dyn Array) -> Option<usize> {
    let nulls = col.logical_nulls()?;
    (0..col.len()).find(|&i| nulls.is_null(i))
}

/// Appends the ids of `col`'s values to `out`, interning them; `row0` is the file row of its
/// first value (for messages).
fn intern_column(
    col: &ArrayRef,
    name: &str,
    interner: &mut Interner,
    out: &mut Vec<u32>,
    row0: usize,
) -> std::result::Result<(), String> {
    if let Some(i) = first_null(col.as_ref()) {
        return Err(format!("row {}: empty {name}", row0 + i + 1));
    }
    let text = Text::of(col.as_ref()).ok_or_else(|| {
        format!(
            "the {name} column is {}: expected strings or integers",
            col.data_type()
        )
    })?;
    out.reserve(col.len());
    for i in 0..col.len() {
        let id = text.with(i, |b| {
            if b.is_empty() {
                Err(format!("row {}: empty {name}", row0 + i + 1))
            } else {
                interner.intern(b).ok_or_else(|| TOO_MANY_IDS.to_string())
            }
        })?;
        out.push(id);
    }
    Ok(())
}

/// Appends the confidences of `col` (a null is a missing confidence: NaN).
fn confidences(col: &ArrayRef, out: &mut Vec<f32>, row0: usize) -> std::result::Result<(), String> {
    let values: Vec<f32> = match col.data_type() {
        DataType::Float32 => col.as_primitive::<Float32Type>().values().to_vec(),
        DataType::Float64 => col
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .map(|&v| v as f32)
            .collect(),
        other => return Err(format!("the confidence column is {other}: expected floats")),
    };
    let nulls = col.logical_nulls();
    for (i, v) in values.into_iter().enumerate() {
        let v = match &nulls {
            Some(n) if n.is_null(i) => {
                out.push(f32::NAN);
                continue;
            }
            _ => v,
        };
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return Err(format!(
                "row {}: confidence {v} is not a number in [0, 1]",
                row0 + i + 1
            ));
        }
        out.push(v);
    }
    Ok(())
}

/// Where the columns are in a projected batch.
#[derive(Clone, Copy)]
struct Layout {
    task: usize,
    worker: usize,
    label: usize,
    confidence: Option<usize>,
}

fn add_batch(
    c: &mut Chunk,
    batch: &RecordBatch,
    at: Layout,
    row0: usize,
) -> std::result::Result<(), String> {
    intern_column(
        batch.column(at.task),
        "task",
        &mut c.tasks,
        &mut c.task,
        row0,
    )?;
    intern_column(
        batch.column(at.worker),
        "worker",
        &mut c.workers,
        &mut c.worker,
        row0,
    )?;
    intern_column(
        batch.column(at.label),
        "label",
        &mut c.labels,
        &mut c.label,
        row0,
    )?;
    if let Some(k) = at.confidence {
        confidences(batch.column(k), &mut c.confidence, row0)?;
    }
    Ok(())
}

/// Reads one row group into a chunk.
fn read_group(
    path: &Path,
    meta: &ArrowReaderMetadata,
    mask: &ProjectionMask,
    at: Layout,
    group: usize,
    row0: usize,
) -> Result<Chunk> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
        .with_projection(mask.clone())
        .with_row_groups(vec![group])
        .with_batch_size(BATCH)
        .build()
        .map_err(|e| error(path, e))?;
    let rows = meta.metadata().row_group(group).num_rows().max(0) as usize;
    let mut c = Chunk {
        task: Vec::with_capacity(rows),
        worker: Vec::with_capacity(rows),
        label: Vec::with_capacity(rows),
        confidence: Vec::new(),
        tasks: Interner::default(),
        workers: Interner::default(),
        labels: Interner::default(),
    };
    let mut row = row0;
    for batch in reader {
        let batch = batch.map_err(|e| Error::format(path, format!("Parquet: {e}")))?;
        add_batch(&mut c, &batch, at, row).map_err(|p| Error::format(path, p))?;
        row += batch.num_rows();
    }
    Ok(c)
}

/// Parses one Parquet votes file into chunks (one per row group) with chunk-local ids.
pub(super) fn read_one(path: &Path) -> Result<Vec<Chunk>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| error(path, e))?;
    let fields = meta.schema().fields();
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    let find = |want: &str| -> Result<Option<usize>> {
        let found: Vec<usize> = (0..names.len())
            .filter(|&i| names[i].eq_ignore_ascii_case(want))
            .collect();
        match found[..] {
            [] => Ok(None),
            [i] => Ok(Some(i)),
            _ => Err(Error::format(
                path,
                format!("more than one `{want}` column"),
            )),
        }
    };
    let need = |want: &str| -> Result<usize> {
        find(want)?.ok_or_else(|| {
            Error::format(
                path,
                format!(
                    "no `{want}` column (expected task, worker, label[, confidence]; found {})",
                    names.join(", ")
                ),
            )
        })
    };
    let (task, worker, label) = (need("task")?, need("worker")?, need("label")?);
    let confidence = find("confidence")?;
    let mut read: Vec<usize> = [task, worker, label]
        .into_iter()
        .chain(confidence)
        .collect();
    read.sort_unstable();
    // A projected batch holds the chosen columns in file order.
    let at = |i: usize| read.iter().position(|&r| r == i).unwrap_or(0);
    let layout = Layout {
        task: at(task),
        worker: at(worker),
        label: at(label),
        confidence: confidence.map(at),
    };
    let mask = ProjectionMask::roots(meta.parquet_schema(), read.iter().copied());
    let groups = meta.metadata().row_groups();
    let mut starts = Vec::with_capacity(groups.len());
    let mut rows = 0usize;
    for g in groups {
        starts.push(rows);
        rows += g.num_rows().max(0) as usize;
    }
    let chunks: Vec<Result<Chunk>> = starts
        .par_iter()
        .enumerate()
        .map(|(g, &row0)| read_group(path, &meta, &mask, layout, g, row0))
        .collect();
    let chunks: Vec<Chunk> = chunks.into_iter().collect::<Result<_>>()?;
    if chunks.iter().all(|c| c.task.is_empty()) {
        return Err(Error::format(
            path,
            "no answers (expected rows with task, worker, label[, confidence])",
        ));
    }
    Ok(chunks)
}
