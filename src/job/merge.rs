//! A folder of shards, checked and joined: every shard of one split present once, all of the
//! same job, their item ranges end to end, every part file as its manifest describes it. The
//! merged file is the first part's header and every part's rows in order: the bytes one run over
//! all the items writes.

use super::identity::Counts;
use super::manifest::Manifest;
use super::shard::Shard;
use crate::error::{Error, Result};
use crate::output::write_atomic;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Missing shards named in a message; the rest are counted.
const MISSING_NAMED: usize = 20;

/// The checked shards of a folder, in order.
#[derive(Debug)]
pub struct ShardSet {
    /// (manifest, part file), shard 0 first.
    pub parts: Vec<(Manifest, PathBuf)>,
}

impl ShardSet {
    /// Reads and checks every shard in `dir`; refuses (naming them) missing, duplicate,
    /// overlapping, mismatched or altered shards.
    pub fn open(dir: &Path) -> Result<ShardSet> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        let mut manifests: Vec<(String, Manifest)> = Vec::new();
        let mut parts: Vec<(Shard, String)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match Shard::from_file_name(&name) {
                Some((_, "json")) => manifests.push((name.clone(), Manifest::read(&entry.path())?)),
                Some((s, _)) => parts.push((s, name)),
                None => {}
            }
        }
        manifests.sort_by(|a, b| a.0.cmp(&b.0));
        let bad = |problem: String| Error::format(dir, problem);
        let Some((first_name, first)) = manifests.first() else {
            return Err(bad(match parts.first() {
                Some((_, p)) => format!("no shard is finished: {p} has no manifest"),
                None => "no shards here (part-I-of-N.json manifests)".into(),
            }));
        };
        let mut problems = Vec::new();
        for (name, m) in &manifests[1..] {
            let mut why = m.job.differences(&first.job);
            if m.shard.count != first.shard.count {
                why.push(format!(
                    "a split into {} shards, not {}",
                    m.shard.count, first.shard.count
                ));
            }
            if !why.is_empty() {
                problems.push(format!(
                    "{name} does not match {first_name}: {}",
                    why.join(", ")
                ));
            }
        }
        if !problems.is_empty() {
            return Err(bad(format!("mismatched shards: {}", problems.join("; "))));
        }
        // Which manifest claims which shard: by its content, not only its name.
        let mut by_index: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for (name, m) in &manifests {
            if Some((m.shard, "json")) != Shard::from_file_name(name) {
                problems.push(format!("{name} says it is shard {}", m.shard));
            }
            by_index.entry(m.shard.index).or_default().push(name);
        }
        let count = first.shard.count;
        for (i, names) in &by_index {
            if names.len() > 1 {
                problems.push(format!("duplicate shard {i}/{count}: {}", names.join(", ")));
            }
        }
        // Named up to a few: a manifest may claim any count (2^60 shards would be named forever).
        let absent = count - by_index.range(..count).count();
        let mut missing: Vec<String> = (0..count)
            .filter(|i| !by_index.contains_key(i))
            .take(MISSING_NAMED)
            .map(|i| {
                let s = Shard { index: i, count };
                let unfinished = parts.iter().any(|(p, _)| *p == s);
                format!(
                    "{}{}",
                    s.file_name("json"),
                    if unfinished {
                        " (its part file is there: unfinished)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        if absent > missing.len() {
            missing.push(format!("and {} more", absent - missing.len()));
        }
        if !missing.is_empty() {
            problems.push(format!("missing shards of {count}: {}", missing.join(", ")));
        }
        if !problems.is_empty() {
            return Err(bad(problems.join("; ")));
        }
        let mut ordered: Vec<&(String, Manifest)> = manifests.iter().collect();
        ordered.sort_by_key(|(_, m)| m.shard.index);
        let mut at = 0;
        for (name, m) in &ordered {
            if m.start != at || m.end < m.start {
                problems.push(format!(
                    "{name} covers items {}..{} but the shards before it end at {at} ({})",
                    m.start,
                    m.end,
                    if m.start < at { "overlapping" } else { "a gap" }
                ));
            }
            at = m.end.max(at);
        }
        if at != first.job.items {
            problems.push(format!(
                "the shards cover items 0..{at} of {}",
                first.job.items
            ));
        }
        let mut checked = Vec::new();
        for (name, m) in &ordered {
            let part = dir.join(m.shard.file_name("csv"));
            match m.check_part(&part)? {
                Some(why) => problems.push(format!("{name}: {why}")),
                None => checked.push((m.clone(), part)),
            }
        }
        if !problems.is_empty() {
            return Err(bad(problems.join("; ")));
        }
        Ok(ShardSet { parts: checked })
    }

    /// The part files, in order.
    pub fn files(&self) -> Vec<PathBuf> {
        self.parts.iter().map(|(_, p)| p.clone()).collect()
    }

    /// The summary counts of all the shards together.
    pub fn counts(&self) -> Counts {
        let mut total = Counts::default();
        for (m, _) in &self.parts {
            total.add(&m.counts);
        }
        total
    }

    /// Writes the merged votes file at `out` (atomically): the header once, then every part's
    /// rows in shard order.
    pub fn merge(&self, out: &Path) -> Result<()> {
        write_atomic(out, |w| {
            let mut header: Option<String> = None;
            for (_, part) in &self.parts {
                let io = |e| Error::io(part, e);
                let mut r = BufReader::with_capacity(1 << 20, File::open(part).map_err(io)?);
                let mut first = String::new();
                r.read_line(&mut first).map_err(io)?;
                match &header {
                    None => {
                        w.write_all(first.as_bytes())
                            .map_err(|e| Error::io(out, e))?;
                        header = Some(first);
                    }
                    Some(h) if *h != first => {
                        return Err(Error::format(
                            part,
                            format!("its header {first:?} differs from the first part's {h:?}"),
                        ))
                    }
                    Some(_) => {}
                }
                copy(&mut r, w, part, out)?;
            }
            Ok(())
        })
    }
}

fn copy(r: &mut impl Read, w: &mut impl Write, from: &Path, to: &Path) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::io(from, e))?;
        if n == 0 {
            return Ok(());
        }
        w.write_all(&buf[..n]).map_err(|e| Error::io(to, e))?;
    }
}

/// Votes files as given, with each folder of shards replaced by its checked part files.
pub fn expand_votes(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend(ShardSet::open(p)?.files());
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}
