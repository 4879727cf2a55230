//! The parallel votes parser: a file body split at line ends into pieces, each parsed into
//! columns with its own chunk-local interners.

use super::interner::Interner;
use super::record::{is_blank, line_of, next_record, read_header, show, skip_bom};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::Path;

/// The columns a header names.
#[derive(Debug, Clone, Copy)]
struct Layout {
    fields: usize,
    task: usize,
    worker: usize,
    label: usize,
    confidence: Option<usize>,
}

pub(super) const TOO_MANY_IDS: &str = "more than 2^32 - 2 distinct tasks, workers or labels";

/// One chunk's parsed answers with chunk-local ids.
pub(super) struct Chunk {
    pub(super) task: Vec<u32>,
    pub(super) worker: Vec<u32>,
    pub(super) label: Vec<u32>,
    pub(super) confidence: Vec<f32>,
    pub(super) tasks: Interner,
    pub(super) workers: Interner,
    pub(super) labels: Interner,
}

pub(super) type ChunkError = (usize, String);

fn parse_confidence(field: &[u8]) -> Option<f32> {
    if field.is_empty() {
        return Some(f32::NAN);
    }
    let v: f32 = std::str::from_utf8(field).ok()?.parse().ok()?;
    (v.is_finite() && (0.0..=1.0).contains(&v)).then_some(v)
}

fn parse_chunk<'a>(
    buf: &'a [u8],
    start: usize,
    end: usize,
    layout: Layout,
) -> std::result::Result<Chunk, ChunkError> {
    if let Err(e) = std::str::from_utf8(&buf[start..end]) {
        return Err((
            start + e.valid_up_to(),
            "the file is not valid UTF-8".into(),
        ));
    }
    let rows_guess = (end - start) / 10 + 1;
    let mut c = Chunk {
        task: Vec::with_capacity(rows_guess),
        worker: Vec::with_capacity(rows_guess),
        label: Vec::with_capacity(rows_guess),
        confidence: Vec::new(),
        tasks: Interner::default(),
        workers: Interner::default(),
        labels: Interner::default(),
    };
    let mut fields: Vec<Cow<'a, [u8]>> = Vec::with_capacity(layout.fields.max(4));
    let mut pos = start;
    while pos < end {
        let row = pos;
        pos = next_record(buf, pos, end, &mut fields).map_err(|p| (row, p.to_string()))?;
        if is_blank(&fields) {
            continue;
        }
        // A header in any column order (another file's, joined with `cat`).
        if ["task", "worker", "label"].iter().all(|name| {
            fields
                .iter()
                .any(|f| f.eq_ignore_ascii_case(name.as_bytes()))
        }) {
            return Err((
                row,
                "a second header line (files joined with `cat`?): pass each file to --votes".into(),
            ));
        }
        if fields.len() != layout.fields {
            return Err((
                row,
                format!(
                    "expected {} fields as in the header, found {}",
                    layout.fields,
                    fields.len()
                ),
            ));
        }
        for (name, col) in [
            ("task", layout.task),
            ("worker", layout.worker),
            ("label", layout.label),
        ] {
            if fields[col].is_empty() {
                return Err((row, format!("empty {name}")));
            }
        }
        if let Some(col) = layout.confidence {
            match parse_confidence(&fields[col]) {
                Some(v) => c.confidence.push(v),
                None => {
                    return Err((
                        row,
                        format!(
                            "confidence `{}` is not a number in [0, 1]",
                            show(&fields[col])
                        ),
                    ))
                }
            }
        }
        let too_many = || (row, TOO_MANY_IDS.to_string());
        c.task
            .push(c.tasks.intern(&fields[layout.task]).ok_or_else(too_many)?);
        c.worker.push(
            c.workers
                .intern(&fields[layout.worker])
                .ok_or_else(too_many)?,
        );
        c.label.push(
            c.labels
                .intern(&fields[layout.label])
                .ok_or_else(too_many)?,
        );
    }
    Ok(c)
}

/// Splits `buf[start..]` into about `parts` pieces at line ends.
pub(super) fn split_at_lines(buf: &[u8], start: usize, parts: usize) -> Vec<(usize, usize)> {
    let len = buf.len() - start;
    let mut out = Vec::with_capacity(parts);
    let mut s = start;
    for i in 1..=parts {
        if s >= buf.len() {
            break;
        }
        let mut e = if i == parts {
            buf.len()
        } else {
            (start + len * i / parts).max(s)
        };
        while e < buf.len() && buf[e - 1] != b'\n' {
            e += 1;
        }
        out.push((s, e));
        s = e;
    }
    out
}

/// Parses one file into chunks with chunk-local ids.
pub(super) fn read_one(path: &Path, buf: &[u8]) -> Result<Vec<Chunk>> {
    let (cols, fields, body) = read_header(
        path,
        buf,
        skip_bom(buf),
        &["task", "worker", "label"],
        &["confidence"],
    )?;
    let layout = Layout {
        fields,
        task: cols[0].unwrap_or(0),
        worker: cols[1].unwrap_or(0),
        label: cols[2].unwrap_or(0),
        confidence: cols[3],
    };
    // Quoted fields may hold line ends: such files are parsed in one piece. Others in pieces of
    // about 2 MB, so that each piece's tables stay in cache.
    let has_quotes = buf[body..].contains(&b'"');
    let parts = if has_quotes {
        1
    } else {
        ((buf.len() - body) / (2 << 20)).max(1)
    };
    let ranges = split_at_lines(buf, body, parts);
    let chunks: Vec<std::result::Result<Chunk, ChunkError>> = ranges
        .par_iter()
        .map(|&(s, e)| parse_chunk(buf, s, e, layout))
        .collect();
    let mut parsed = Vec::with_capacity(chunks.len());
    for c in chunks {
        parsed.push(c.map_err(|(offset, problem)| Error::Row {
            path: path.to_path_buf(),
            line: line_of(buf, offset),
            problem,
        })?);
    }
    if parsed.iter().all(|c| c.task.is_empty()) {
        return Err(Error::format(
            path,
            "no answers after the header (expected rows task,worker,label[,confidence])",
        ));
    }
    Ok(parsed)
}
