//! CSV output: fields quoted when they must be, rows formatted in parallel blocks and written
//! atomically, and the votes writer.

use super::VoteTable;
use crate::data::parquet::{is_parquet, write_table, Column};
use crate::error::{Error, Result};
use crate::output::write_atomic;
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// Appends `s` as a CSV field, quoted when it must be.
pub fn push_field(out: &mut Vec<u8>, s: &str) {
    let needs = s.is_empty()
        || s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        || s.starts_with([' ', '\t'])
        || s.ends_with([' ', '\t']);
    if !needs {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Writes `header` then rows `0..n`, formatted in parallel blocks by `row(i, buf)` (each call
/// appends one line, newline included), through [`write_atomic`].
pub fn write_rows<F>(path: &Path, header: &str, n: usize, row: F) -> Result<()>
where
    F: Fn(usize, &mut Vec<u8>) + Sync,
{
    const BLOCK: usize = 1 << 16;
    write_atomic(path, |w| {
        w.write_all(header.as_bytes())
            .map_err(|e| Error::io(path, e))?;
        let mut done = 0;
        // Format a few blocks at a time in parallel, then write them in order.
        let batch = BLOCK * rayon::current_num_threads().max(1) * 2;
        while done < n {
            let end = (done + batch).min(n);
            let blocks: Vec<Vec<u8>> = (done..end)
                .into_par_iter()
                .step_by(BLOCK)
                .map(|s| {
                    let mut buf = Vec::with_capacity(BLOCK * 24);
                    for i in s..(s + BLOCK).min(end) {
                        row(i, &mut buf);
                    }
                    buf
                })
                .collect();
            for b in &blocks {
                w.write_all(b).map_err(|e| Error::io(path, e))?;
            }
            done = end;
        }
        Ok(())
    })
}

/// Writes a votes file (`task,worker,label`, plus `confidence` when any answer has one; empty
/// for the answers without) atomically; as Parquet when the name ends in `.parquet` (a missing
/// confidence is a null there).
pub fn write_votes(path: &Path, table: &VoteTable) -> Result<()> {
    table.validate()?;
    let with_conf = table.confidence.par_iter().any(|c| !c.is_nan());
    if is_parquet(path) {
        let t = table;
        let mut cols = vec![
            Column::names("task", &t.tasks, |i| t.task[i]),
            Column::names("worker", &t.workers, |i| t.worker[i]),
            Column::names("label", &t.classes, |i| t.label[i]),
        ];
        if with_conf {
            cols.push(Column::float_or_null("confidence", |i| t.confidence[i]));
        }
        return write_table(path, t.len(), &cols);
    }
    let header = if with_conf {
        "task,worker,label,confidence\n"
    } else {
        "task,worker,label\n"
    };
    write_rows(path, header, table.len(), |i, buf| {
        push_field(buf, &table.tasks[table.task[i] as usize]);
        buf.push(b',');
        push_field(buf, &table.workers[table.worker[i] as usize]);
        buf.push(b',');
        push_field(buf, &table.classes[table.label[i] as usize]);
        match table.confidence[i] {
            c if with_conf && !c.is_nan() => {
                let _ = write!(buf, ",{c}");
            }
            _ if with_conf => buf.push(b','),
            _ => {}
        }
        buf.push(b'\n');
    })
}
