//! [`read_votes`]: votes files -> one [`VoteTable`] (global ids, class order, duplicates).

use super::dedupe::dedupe;
use super::interner::Interner;
use super::parallel::{read_one, Chunk, TOO_MANY_IDS};
use super::record::read_file;
use super::VoteTable;
use crate::data::mapped::Mapping;
use crate::data::parquet::is_parquet;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A vote table read from files, with what the reader noticed.
#[derive(Debug, Clone, Default)]
pub struct LoadedVotes {
    pub table: VoteTable,
    /// Earlier answers dropped because the same worker answered the same task again later.
    pub duplicates: u64,
    /// Data rows read (before dropping duplicates).
    pub rows: u64,
}

/// Reads one or more votes files into one table with shared id maps. See the module docs for the
/// format, the duplicate rule and the class order.
pub fn read_votes<P: AsRef<Path>>(paths: &[P]) -> Result<LoadedVotes> {
    if paths.is_empty() {
        return Err(Error::Invalid("no votes file given".into()));
    }
    // Parse every file into chunks with chunk-local ids, then give global ids to all at once.
    let mut chunks: Vec<Chunk> = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if is_parquet(path) {
            chunks.extend(super::parquet::read_one(path)?);
        } else {
            let body = Body::open(path)?;
            chunks.extend(read_one(path, body.bytes())?);
        }
    }
    let too_many = || Error::Invalid(format!("{TOO_MANY_IDS} in {} files", paths.len()));
    let ids = |pick: fn(&Chunk) -> &Interner| {
        let locals: Vec<&Interner> = chunks.iter().map(pick).collect();
        dedupe(&locals)
    };
    let (task_maps, task_names) = ids(|c| &c.tasks).ok_or_else(too_many)?;
    let (worker_maps, worker_names) = ids(|c| &c.workers).ok_or_else(too_many)?;
    let (label_maps, label_names) = ids(|c| &c.labels).ok_or_else(too_many)?;
    let rows: usize = chunks.iter().map(|c| c.task.len()).sum();
    let mut table = VoteTable {
        task: vec![0; rows],
        worker: vec![0; rows],
        label: vec![0; rows],
        confidence: vec![f32::NAN; rows],
        tasks: task_names,
        workers: worker_names,
        classes: Vec::new(),
    };
    {
        let mut outs = Vec::with_capacity(chunks.len());
        let (mut t, mut w, mut l, mut f) = (
            &mut table.task[..],
            &mut table.worker[..],
            &mut table.label[..],
            &mut table.confidence[..],
        );
        for c in &chunks {
            let n = c.task.len();
            let (t0, t1) = t.split_at_mut(n);
            let (w0, w1) = w.split_at_mut(n);
            let (l0, l1) = l.split_at_mut(n);
            let (f0, f1) = f.split_at_mut(n);
            outs.push((t0, w0, l0, f0));
            (t, w, l, f) = (t1, w1, l1, f1);
        }
        outs.into_par_iter()
            .zip(chunks.par_iter())
            .enumerate()
            .for_each(|(i, ((t, w, l, f), c))| {
                let (mt, mw, ml) = (&task_maps[i], &worker_maps[i], &label_maps[i]);
                for (o, &id) in t.iter_mut().zip(&c.task) {
                    *o = mt[id as usize];
                }
                for (o, &id) in w.iter_mut().zip(&c.worker) {
                    *o = mw[id as usize];
                }
                for (o, &id) in l.iter_mut().zip(&c.label) {
                    *o = ml[id as usize];
                }
                if !c.confidence.is_empty() {
                    f.copy_from_slice(&c.confidence);
                }
            });
    }
    drop(chunks);
    sort_classes(&mut table, label_names);
    let duplicates = drop_duplicates(&mut table);
    Ok(LoadedVotes {
        table,
        duplicates,
        rows: rows as u64,
    })
}

/// A votes file's bytes: a regular file is memory-mapped (no copy of a file that can be
/// gigabytes, the pages come straight from the page cache); a pipe or other stream is read.
enum Body {
    Mapped(Option<Arc<Mapping>>),
    Read(Vec<u8>),
}

impl Body {
    fn open(path: &Path) -> Result<Body> {
        let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
        Ok(if regular {
            Body::Mapped(Mapping::open(path)?)
        } else {
            Body::Read(read_file(path)?)
        })
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Body::Mapped(m) => m.as_deref().map_or(&[], Mapping::bytes),
            Body::Read(v) => v,
        }
    }
}

/// Orders class names: numerically when all are integers, else by bytes.
pub(super) fn sort_class_names(names: &mut [String]) {
    let numeric: Option<Vec<i128>> = names.iter().map(|n| n.parse::<i128>().ok()).collect();
    if numeric.is_some() {
        names.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<i128>().unwrap_or(0),
                b.parse::<i128>().unwrap_or(0),
            );
            x.cmp(&y).then_with(|| a.cmp(b))
        });
    } else {
        names.sort();
    }
}

/// Sets `table.classes` to the sorted names and remaps the label column.
fn sort_classes(table: &mut VoteTable, first_seen: Vec<String>) {
    let mut sorted = first_seen.clone();
    sort_class_names(&mut sorted);
    let pos: HashMap<&str, u32> = sorted
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let remap: Vec<u32> = first_seen.iter().map(|n| pos[n.as_str()]).collect();
    table
        .label
        .par_iter_mut()
        .for_each(|l| *l = remap[*l as usize]);
    table.classes = sorted;
}

/// Drops all but the last answer of each (task, worker) pair; returns how many were dropped.
fn drop_duplicates(table: &mut VoteTable) -> u64 {
    let (start, order) = table.by_task();
    let worker = &table.worker;
    // Per task: positions (in `order`) of answers that a later answer of the same worker replaces.
    let dropped: Vec<u32> = (0..table.n_tasks())
        .into_par_iter()
        .flat_map_iter(|t| {
            let g = &order[start[t] as usize..start[t + 1] as usize];
            let mut out = Vec::new();
            if g.len() > 1 {
                if g.len() <= 32 {
                    for (a, &i) in g.iter().enumerate() {
                        if g[a + 1..]
                            .iter()
                            .any(|&j| worker[j as usize] == worker[i as usize])
                        {
                            out.push(i);
                        }
                    }
                } else {
                    let mut s: Vec<(u32, u32)> =
                        g.iter().map(|&i| (worker[i as usize], i)).collect();
                    s.sort_unstable();
                    for p in s.windows(2) {
                        if p[0].0 == p[1].0 {
                            out.push(p[0].1);
                        }
                    }
                }
            }
            out
        })
        .collect();
    if dropped.is_empty() {
        return 0;
    }
    let mut keep = vec![true; table.len()];
    for &i in &dropped {
        keep[i as usize] = false;
    }
    let retain = |col: &mut Vec<u32>| {
        let mut k = keep.iter();
        col.retain(|_| *k.next().unwrap_or(&true));
    };
    retain(&mut table.task);
    retain(&mut table.worker);
    retain(&mut table.label);
    let mut k = keep.iter();
    table.confidence.retain(|_| *k.next().unwrap_or(&true));
    dropped.len() as u64
}

/// Paths for messages: `a.csv, b.csv`.
pub fn describe_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
