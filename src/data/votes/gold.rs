//! Gold labels: [`Gold`] and [`read_gold`].

use super::interner::{same_key, NameIndex};
use super::parallel::{split_at_lines, ChunkError};
use super::record::{is_blank, line_of, next_record, read_file, read_header, show, skip_bom};
use super::{VoteTable, NO_LABEL};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::Path;

/// Gold labels for the tasks of a vote table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gold {
    /// Per task of the table: its gold class, or [`NO_LABEL`].
    pub label: Vec<u32>,
    /// Gold tasks found in the votes.
    pub tasks: usize,
    /// Gold rows whose task does not appear in the votes (ignored).
    pub absent: usize,
}

impl Gold {
    /// Gold from dense classes, one per task (`NO_LABEL` for none).
    pub fn from_labels(label: Vec<u32>) -> Gold {
        let tasks = label.iter().filter(|&&l| l != NO_LABEL).count();
        Gold {
            label,
            tasks,
            absent: 0,
        }
    }

    /// The gold class of `task`, if any.
    pub fn get(&self, task: usize) -> Option<u32> {
        self.label.get(task).copied().filter(|&l| l != NO_LABEL)
    }
}

/// Reads a gold file (`task,label`, header required) against the tasks and classes of `table`.
///
/// - A gold task that does not appear in the votes is ignored and counted in [`Gold::absent`];
///   when none of the gold tasks appears in the votes, that is an error.
/// - A gold label that is not among the votes' classes is an error naming the line (it usually
///   means the gold file uses another label encoding than the votes).
/// - A task listed twice with the same label is fine; with two different labels it is an error.
pub fn read_gold(path: &Path, table: &VoteTable) -> Result<Gold> {
    let buf = read_file(path)?;
    let (cols, nfields, body) = read_header(path, &buf, skip_bom(&buf), &["task", "label"], &[])?;
    let (tc, lc) = (cols[0].unwrap_or(0), cols[1].unwrap_or(1));
    // Built only when a gold row's task is not the one after the previous row's.
    let tasks = std::sync::OnceLock::new();
    let classes = NameIndex::new(&table.classes);
    let parts = if buf[body..].contains(&b'"') {
        1
    } else {
        ((buf.len() - body) / (1 << 20)).max(1)
    };
    // Rows parsed in parallel pieces: (offset, task id or NO_LABEL when absent, class).
    type GoldRows = std::result::Result<Vec<(usize, u32, u32)>, ChunkError>;
    let pieces: Vec<GoldRows> = split_at_lines(&buf, body, parts)
        .par_iter()
        .map(|&(start, end)| {
            if let Err(e) = std::str::from_utf8(&buf[start..end]) {
                return Err((
                    start + e.valid_up_to(),
                    "the file is not valid UTF-8".into(),
                ));
            }
            let mut out = Vec::new();
            let mut fields = Vec::new();
            let mut pos = start;
            // Gold files often list tasks in the votes' order: try the task after the last one
            // before looking the name up.
            let mut next = 0usize;
            while pos < end {
                let row = pos;
                pos = next_record(&buf, pos, end, &mut fields).map_err(|p| (row, p.to_string()))?;
                if is_blank(&fields) {
                    continue;
                }
                if fields.len() != nfields {
                    return Err((
                        row,
                        format!(
                            "expected {nfields} fields as in the header, found {}",
                            fields.len()
                        ),
                    ));
                }
                let (task, label) = (&fields[tc], &fields[lc]);
                if task.is_empty() || label.is_empty() {
                    return Err((row, "empty task or label".into()));
                }
                let Some(c) = classes.get(label) else {
                    return Err((
                        row,
                        format!(
                            "gold label `{}` is not among the votes' classes ({})",
                            show(label),
                            show(table.classes.join(", ").as_bytes())
                        ),
                    ));
                };
                let t = match table.tasks.get(next) {
                    Some(n) if same_key(n.as_bytes(), task) => Some(next as u32),
                    _ => tasks.get_or_init(|| NameIndex::new(&table.tasks)).get(task),
                };
                next = t.map_or(0, |t| t as usize + 1);
                out.push((row, t.unwrap_or(NO_LABEL), c));
            }
            Ok(out)
        })
        .collect();
    let err = |offset: usize, problem: String| Error::Row {
        path: path.to_path_buf(),
        line: line_of(&buf, offset),
        problem,
    };
    let mut gold = Gold {
        label: vec![NO_LABEL; table.n_tasks()],
        tasks: 0,
        absent: 0,
    };
    let mut rows = 0usize;
    for piece in pieces {
        let piece = piece.map_err(|(o, p)| err(o, p))?;
        rows += piece.len();
        for (offset, t, c) in piece {
            if t == NO_LABEL {
                gold.absent += 1;
                continue;
            }
            let slot = &mut gold.label[t as usize];
            if *slot == NO_LABEL {
                *slot = c;
                gold.tasks += 1;
            } else if *slot != c {
                return Err(err(
                    offset,
                    format!(
                        "task `{}` has two different gold labels",
                        show(table.tasks[t as usize].as_bytes())
                    ),
                ));
            }
        }
    }
    if rows == 0 {
        return Err(Error::format(
            path,
            "no gold rows after the header (expected rows task,label)",
        ));
    }
    if gold.tasks == 0 {
        return Err(Error::format(
            path,
            format!("none of its {rows} gold tasks appears in the votes"),
        ));
    }
    Ok(gold)
}
