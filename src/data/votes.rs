//! Votes (answers): `task,worker,label[,confidence]`, mapped to dense integer ids.
//!
//! # The votes CSV format
//! - A header line is required. It names the columns `task`, `worker` and `label` (any order,
//!   case-insensitive) and optionally `confidence`; other columns are allowed and ignored.
//! - Task, worker and label are strings (crowd-kit's format). They are mapped to dense ids in
//!   order of first appearance (tasks, workers); the outputs use the original strings.
//! - `confidence` is a number in `[0, 1]`; when the column is absent or the field is empty, the
//!   answer has none (NaN in [`VoteTable::confidence`]). Majority vote breaks ties with the
//!   confidences, counting a missing one as the mean of the others (`aggregate::majority`);
//!   Dawid-Skene ignores them.
//! - A second header line (as `cat a.csv b.csv` makes) is an error naming its line: pass each
//!   file to `--votes` instead.
//! - Fields may be quoted (`"a,b"`, `""` for a quote inside); unquoted fields are trimmed of
//!   surrounding spaces; blank lines are skipped; `\r\n` line ends are accepted.
//! - Every row must have as many fields as the header; a bad row is an [`Error::Row`] naming the
//!   file and its 1-based line.
//! - An empty file, or a header with no answers after it, is an error.
//!
//! # Several files
//! [`read_votes`] reads several files into one table with shared id maps: a task or worker named in
//! two files is the same task or worker.
//!
//! # Duplicate answers
//! When the same worker answers the same task more than once (in one file or across files), the
//! **last** answer is kept (file order, then line order) and the earlier ones are dropped and
//! counted in [`LoadedVotes::duplicates`]. This lets a later file (answers that came back from a
//! review round) correct an earlier one.
//!
//! # Classes
//! The classes are the sorted set of all label strings: sorted numerically when every label is an
//! integer (`2` before `10`), else by their bytes. Class `k` of the table is `classes[k]`.

use crate::error::{Error, Result};
use crate::output::write_atomic;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Marks "no label" in per-task label arrays (e.g. tasks without gold).
pub const NO_LABEL: u32 = u32::MAX;

/// Answers in columns, with dense ids; the name tables map ids back to the original strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VoteTable {
    pub task: Vec<u32>,
    pub worker: Vec<u32>,
    pub label: Vec<u32>,
    /// NaN when the source gave no confidence.
    pub confidence: Vec<f32>,
    pub tasks: Vec<String>,
    pub workers: Vec<String>,
    pub classes: Vec<String>,
}

impl VoteTable {
    pub fn len(&self) -> usize {
        self.task.len()
    }

    pub fn is_empty(&self) -> bool {
        self.task.is_empty()
    }

    pub fn n_tasks(&self) -> usize {
        self.tasks.len()
    }

    pub fn n_workers(&self) -> usize {
        self.workers.len()
    }

    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    /// Checks that every id is within its name table and that the columns have one length.
    pub fn validate(&self) -> Result<()> {
        let n = self.task.len();
        if self.worker.len() != n || self.label.len() != n || self.confidence.len() != n {
            return Err(Error::Invalid(format!(
                "vote table columns differ in length: task {}, worker {}, label {}, confidence {}",
                n,
                self.worker.len(),
                self.label.len(),
                self.confidence.len()
            )));
        }
        let bad = |col: &[u32], limit: usize| col.par_iter().any(|&v| v as usize >= limit);
        if bad(&self.task, self.n_tasks())
            || bad(&self.worker, self.n_workers())
            || bad(&self.label, self.n_classes())
        {
            return Err(Error::Invalid(
                "vote table holds an id outside its name tables".into(),
            ));
        }
        Ok(())
    }

    /// Task name -> task id.
    pub fn task_index(&self) -> HashMap<&str, u32, FxBuild> {
        name_index(&self.tasks)
    }

    /// Class name -> class id.
    pub fn class_index(&self) -> HashMap<&str, u32, FxBuild> {
        name_index(&self.classes)
    }

    /// Answers grouped by task: `(start, order)` where the answers of task `t` are
    /// `order[start[t]..start[t + 1]]` (indices into the columns, in row order).
    pub fn by_task(&self) -> (Vec<u32>, Vec<u32>) {
        group_by(&self.task, self.n_tasks())
    }

    /// Answers grouped by worker, like [`VoteTable::by_task`].
    pub fn by_worker(&self) -> (Vec<u32>, Vec<u32>) {
        group_by(&self.worker, self.n_workers())
    }
}

fn name_index(names: &[String]) -> HashMap<&str, u32, FxBuild> {
    let mut map = HashMap::with_capacity_and_hasher(names.len(), FxBuild::default());
    for (i, n) in names.iter().enumerate() {
        map.insert(n.as_str(), i as u32);
    }
    map
}

/// Stable counting sort of row indices by `key` (`key[i] < groups`): returns `(start, order)`.
pub fn group_by(key: &[u32], groups: usize) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; groups + 1];
    for &k in key {
        start[k as usize + 1] += 1;
    }
    for i in 0..groups {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut order = vec![0u32; key.len()];
    for (i, &k) in key.iter().enumerate() {
        let f = &mut fill[k as usize];
        order[*f as usize] = i as u32;
        *f += 1;
    }
    (start, order)
}

/// A vote table read from files, with what the reader noticed.
#[derive(Debug, Clone, Default)]
pub struct LoadedVotes {
    pub table: VoteTable,
    /// Earlier answers dropped because the same worker answered the same task again later.
    pub duplicates: u64,
    /// Data rows read (before dropping duplicates).
    pub rows: u64,
}

/// FxHash-style hasher with a final mix: fast for short keys, good enough spread in the low bits.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(FX_K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, mut bytes: &[u8]) {
        while bytes.len() >= 8 {
            self.add(u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])));
            bytes = &bytes[8..];
        }
        if !bytes.is_empty() {
            self.add(load_le(bytes) ^ ((bytes.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high bits (where the multiply put the entropy) into the low ones.
        let h = self.hash;
        (h ^ (h >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (h >> 29)
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;

/// The columns a header names.
#[derive(Debug, Clone, Copy)]
struct Layout {
    fields: usize,
    task: usize,
    worker: usize,
    label: usize,
    confidence: Option<usize>,
}

/// One CSV record parser for votes and gold files. Returns the position after the record
/// (past its line end) and fills `fields`. Unquoted fields are trimmed of spaces and tabs.
fn next_record<'a>(
    buf: &'a [u8],
    mut pos: usize,
    end: usize,
    fields: &mut Vec<Cow<'a, [u8]>>,
) -> std::result::Result<usize, &'static str> {
    fields.clear();
    loop {
        // One field.
        let mut p = pos;
        while p < end && (buf[p] == b' ' || buf[p] == b'\t') {
            p += 1;
        }
        if p < end && buf[p] == b'"' {
            p += 1;
            let s = p;
            let mut owned: Option<Vec<u8>> = None;
            loop {
                if p >= end {
                    return Err("unterminated quoted field");
                }
                if buf[p] == b'"' {
                    if p + 1 < end && buf[p + 1] == b'"' {
                        let o = owned.get_or_insert_with(|| buf[s..p].to_vec());
                        o.push(b'"');
                        p += 2;
                        continue;
                    }
                    break;
                }
                if let Some(o) = owned.as_mut() {
                    o.push(buf[p]);
                }
                p += 1;
            }
            let field = match owned {
                Some(o) => Cow::Owned(o),
                None => Cow::Borrowed(&buf[s..p]),
            };
            p += 1; // closing quote
            while p < end && (buf[p] == b' ' || buf[p] == b'\t' || buf[p] == b'\r') {
                p += 1;
            }
            fields.push(field);
            if p >= end {
                return Ok(end);
            }
            match buf[p] {
                b',' => pos = p + 1,
                b'\n' => return Ok(p + 1),
                _ => return Err("unexpected character after a closing quote"),
            }
        } else {
            let s = p;
            while p < end && buf[p] != b',' && buf[p] != b'\n' {
                p += 1;
            }
            let mut e = p;
            while e > s && matches!(buf[e - 1], b' ' | b'\t' | b'\r') {
                e -= 1;
            }
            fields.push(Cow::Borrowed(&buf[s..e]));
            if p >= end {
                return Ok(end);
            }
            if buf[p] == b'\n' {
                return Ok(p + 1);
            }
            pos = p + 1;
        }
    }
}

fn is_blank(fields: &[Cow<[u8]>]) -> bool {
    fields.len() == 1 && fields[0].is_empty()
}

fn line_of(buf: &[u8], offset: usize) -> u64 {
    buf[..offset.min(buf.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}

fn show(field: &[u8]) -> String {
    let s = String::from_utf8_lossy(field);
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.into_owned()
    }
}

/// Reads the header: returns the column layout and the offset where the data starts.
fn read_header(
    path: &Path,
    buf: &[u8],
    start: usize,
    required: &[&str],
    optional: &[&str],
) -> Result<(Vec<Option<usize>>, usize, usize)> {
    let mut fields = Vec::new();
    let mut pos = start;
    let wanted: Vec<&str> = required.iter().chain(optional).copied().collect();
    let usage = format!(
        "expected a header line naming the columns {}{}",
        required.join(","),
        if optional.is_empty() {
            String::new()
        } else {
            format!("[,{}]", optional.join(","))
        }
    );
    while pos < buf.len() {
        let line_start = pos;
        pos = next_record(buf, pos, buf.len(), &mut fields).map_err(|p| Error::Row {
            path: path.to_path_buf(),
            line: line_of(buf, line_start),
            problem: format!("header: {p}"),
        })?;
        if is_blank(&fields) {
            continue;
        }
        let names: Vec<String> = fields
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase())
            .collect();
        let mut cols = vec![None; wanted.len()];
        for (i, name) in names.iter().enumerate() {
            if let Some(k) = wanted.iter().position(|w| w == name) {
                if cols[k].is_some() {
                    return Err(Error::Row {
                        path: path.to_path_buf(),
                        line: line_of(buf, line_start),
                        problem: format!("header names the column `{name}` twice"),
                    });
                }
                cols[k] = Some(i);
            }
        }
        if cols[..required.len()].iter().any(Option::is_none) {
            return Err(Error::Row {
                path: path.to_path_buf(),
                line: line_of(buf, line_start),
                problem: format!("{usage}; found `{}`", show(&buf[line_start..pos]).trim()),
            });
        }
        return Ok((cols, names.len(), pos));
    }
    Err(Error::format(path, format!("empty file: {usage}")))
}

/// Bytes `b` (at most 8) as a little-endian integer, without a call to `memcpy`: overlapping
/// fixed-size loads hold the same bytes at the same places.
#[inline(always)]
fn load_le(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 4 {
        let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
        let hi = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]) as u64;
        lo | (hi << ((n - 4) * 8))
    } else if n > 0 {
        (b[0] as u64) | ((b[n / 2] as u64) << (n / 2 * 8)) | ((b[n - 1] as u64) << ((n - 1) * 8))
    } else {
        0
    }
}

#[inline(always)]
fn word(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Hash of a short byte string (FxHash-style words, then a final mix).
#[inline]
fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = (b.len() as u64).wrapping_mul(FX_K);
    let mut at = 0;
    while at + 8 <= b.len() {
        h = (h.rotate_left(5) ^ word(b, at)).wrapping_mul(FX_K);
        at += 8;
    }
    if at < b.len() {
        h = (h.rotate_left(5) ^ load_le(&b[at..])).wrapping_mul(FX_K);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Byte-string equality without a call to `memcmp` for the short keys ids usually are.
#[inline(always)]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n <= 8 {
        load_le(a) == load_le(b)
    } else if n <= 16 {
        word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8)
    } else {
        a == b
    }
}

/// Interns byte strings: ids in order of first appearance, keys copied into one arena, an
/// open-addressing table of `(hash tag, id)` with the full hashes kept (so growing and merging
/// never rehash keys).
#[derive(Default)]
struct Interner {
    /// Per slot: `(high 32 bits of the hash) << 32 | (id + 1)`, 0 = empty; a power of two long.
    slots: Vec<u64>,
    hashes: Vec<u64>,
    /// Key `i` is `arena[offs[i]..offs[i + 1]]`.
    offs: Vec<usize>,
    arena: Vec<u8>,
    /// The last key interned (rows often repeat the previous row's task).
    last: Option<u32>,
    /// Direct-mapped cache for keys of at most 8 bytes: `(key bytes as an integer,
    /// (id + 1) << 8 | length)`. Worker and label ids recur on every row; this spares them the
    /// hash and the table probe.
    small: Vec<(u64, u64)>,
}

const SMALL_CACHE: usize = 1024;

impl Interner {
    fn len(&self) -> usize {
        self.hashes.len()
    }

    #[inline(always)]
    fn key(&self, id: usize) -> &[u8] {
        &self.arena[self.offs[id]..self.offs[id + 1]]
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(64);
        let mask = cap - 1;
        let mut slots = vec![0u64; cap];
        for (id, &h) in self.hashes.iter().enumerate() {
            let mut i = h as usize & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = (h & 0xffff_ffff_0000_0000) | (id as u64 + 1);
        }
        self.slots = slots;
    }

    /// The id of `key` (hash `h`), adding it when new. `None` past 2^32 - 2 keys.
    #[inline]
    fn intern_hashed(&mut self, key: &[u8], h: u64) -> Option<u32> {
        if self.offs.is_empty() {
            self.offs.push(0);
        }
        if (self.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let tag = h & 0xffff_ffff_0000_0000;
        let mut i = h as usize & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                let id = u32::try_from(self.len())
                    .ok()
                    .filter(|&v| v < u32::MAX - 1)?;
                self.slots[i] = tag | (id as u64 + 1);
                self.hashes.push(h);
                self.arena.extend_from_slice(key);
                self.offs.push(self.arena.len());
                return Some(id);
            }
            if s & 0xffff_ffff_0000_0000 == tag {
                let id = (s as u32 - 1) as usize;
                if same_key(self.key(id), key) {
                    return Some(id as u32);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The id of `key` (hash `h`) if present.
    fn find(&self, key: &[u8], h: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = h & 0xffff_ffff_0000_0000;
        let mut i = h as usize & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if s & 0xffff_ffff_0000_0000 == tag {
                let id = (s as u32 - 1) as usize;
                if same_key(self.key(id), key) {
                    return Some(id as u32);
                }
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn intern(&mut self, key: &[u8]) -> Option<u32> {
        if let Some(last) = self.last {
            if same_key(self.key(last as usize), key) {
                return Some(last);
            }
        }
        let id = if key.len() <= 8 {
            let v = load_le(key);
            let n = key.len() as u64;
            let slot = ((v ^ n).wrapping_mul(FX_K) >> 54) as usize & (SMALL_CACHE - 1);
            if self.small.is_empty() {
                self.small = vec![(0, 0); SMALL_CACHE];
            }
            let (cv, meta) = self.small[slot];
            if cv == v && meta & 0xff == n && meta >> 8 != 0 {
                (meta >> 8) as u32 - 1
            } else {
                let id = self.intern_hashed(key, hash_bytes(key))?;
                self.small[slot] = (v, ((id as u64 + 1) << 8) | n);
                id
            }
        } else {
            self.intern_hashed(key, hash_bytes(key))?
        };
        self.last = Some(id);
        Some(id)
    }
}

/// Global ids for the keys of several interners (chunks in file order): ids in order of first
/// appearance, as if one interner had seen all rows. Returns per interner its local id -> global
/// id map, and the names by global id.
///
/// Parallel and cache-friendly: keys are split into shards by hash; each shard finds, for each of
/// its keys, the first (chunk, local id) holding it; new keys are then numbered chunk by chunk.
fn dedupe(locals: &[&Interner]) -> Option<(Vec<Vec<u32>>, Vec<String>)> {
    let total: usize = locals.iter().map(|l| l.len()).sum();
    let shards: usize = if total < 1 << 14 { 1 } else { 64 };
    let shard_of = |h: u64| ((h >> 40) as usize) & (shards - 1);
    // Local ids of each interner, bucketed by shard (ascending within a bucket).
    let buckets: Vec<Vec<Vec<u32>>> = locals
        .par_iter()
        .map(|l| {
            let mut b = vec![Vec::new(); shards];
            for (i, &h) in l.hashes.iter().enumerate() {
                b[shard_of(h)].push(i as u32);
            }
            b
        })
        .collect();
    // Per shard: for each (interner, local id) in order, the first (interner, local id) with the
    // same key. Entries are listed interner by interner.
    let firsts: Vec<Vec<(u32, u32)>> = (0..shards)
        .into_par_iter()
        .map(|sh| {
            let n: usize = buckets.iter().map(|b| b[sh].len()).sum();
            let mut seen = Interner::default();
            let mut owner: Vec<(u32, u32)> = Vec::new();
            let mut out = Vec::with_capacity(n);
            for (li, l) in locals.iter().enumerate() {
                for &id in &buckets[li][sh] {
                    let g = seen.intern_hashed(l.key(id as usize), l.hashes[id as usize])?;
                    if g as usize == owner.len() {
                        owner.push((li as u32, id));
                    }
                    out.push(owner[g as usize]);
                }
            }
            Some(out)
        })
        .collect::<Option<_>>()?;
    // Back to per-interner arrays: first[li][id].
    let mut cursor = vec![0usize; shards];
    let mut starts: Vec<Vec<usize>> = Vec::with_capacity(locals.len());
    for b in &buckets {
        starts.push(cursor.clone());
        for (sh, c) in cursor.iter_mut().enumerate() {
            *c += b[sh].len();
        }
    }
    let first: Vec<Vec<(u32, u32)>> = (0..locals.len())
        .into_par_iter()
        .map(|li| {
            let mut f = vec![(0u32, 0u32); locals[li].len()];
            for sh in 0..shards {
                let ids = &buckets[li][sh];
                let s = starts[li][sh];
                for (k, &id) in ids.iter().enumerate() {
                    f[id as usize] = firsts[sh][s + k];
                }
            }
            f
        })
        .collect();
    // Number the new keys interner by interner, in local id order.
    let news: Vec<usize> = first
        .par_iter()
        .enumerate()
        .map(|(li, f)| {
            f.iter()
                .enumerate()
                .filter(|&(id, &o)| o == (li as u32, id as u32))
                .count()
        })
        .collect();
    let unique: usize = news.iter().sum();
    if unique >= u32::MAX as usize {
        return None;
    }
    let mut base = Vec::with_capacity(locals.len());
    let mut acc = 0usize;
    for n in &news {
        base.push(acc);
        acc += n;
    }
    let own: Vec<Vec<u32>> = first
        .par_iter()
        .enumerate()
        .map(|(li, f)| {
            let mut next = base[li] as u32;
            f.iter()
                .enumerate()
                .map(|(id, &o)| {
                    if o == (li as u32, id as u32) {
                        next += 1;
                        next - 1
                    } else {
                        u32::MAX
                    }
                })
                .collect()
        })
        .collect();
    let maps: Vec<Vec<u32>> = first
        .par_iter()
        .zip(own.par_iter())
        .map(|(f, o)| {
            f.iter()
                .zip(o)
                .map(|(&(l0, i0), &g)| {
                    if g != u32::MAX {
                        g
                    } else {
                        own[l0 as usize][i0 as usize]
                    }
                })
                .collect()
        })
        .collect();
    let mut names = vec![String::new(); unique];
    {
        let mut rest: &mut [String] = &mut names;
        let mut parts = Vec::with_capacity(locals.len());
        for n in &news {
            let (a, b) = rest.split_at_mut(*n);
            parts.push(a);
            rest = b;
        }
        parts.into_par_iter().enumerate().for_each(|(li, out)| {
            let l = locals[li];
            let mut k = 0;
            for (id, &g) in own[li].iter().enumerate() {
                if g != u32::MAX {
                    out[k] = String::from_utf8_lossy(l.key(id)).into_owned();
                    k += 1;
                }
            }
        });
    }
    Some((maps, names))
}

const TOO_MANY_IDS: &str = "more than 2^32 - 2 distinct tasks, workers or labels";

/// One chunk's parsed answers with chunk-local ids.
struct Chunk {
    task: Vec<u32>,
    worker: Vec<u32>,
    label: Vec<u32>,
    confidence: Vec<f32>,
    tasks: Interner,
    workers: Interner,
    labels: Interner,
}

type ChunkError = (usize, String);

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
fn split_at_lines(buf: &[u8], start: usize, parts: usize) -> Vec<(usize, usize)> {
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

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn skip_bom(buf: &[u8]) -> usize {
    if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    }
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
        let buf = read_file(path)?;
        chunks.extend(read_one(path, &buf)?);
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

/// Parses one file into chunks with chunk-local ids.
fn read_one(path: &Path, buf: &[u8]) -> Result<Vec<Chunk>> {
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

/// Orders class names: numerically when all are integers, else by bytes.
pub fn sort_class_names(names: &mut [String]) {
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

/// Name -> id lookup over a name table, built in parallel (names split into shards by hash).
pub struct NameIndex {
    /// Per shard: a table of its names and their ids in the name table.
    shards: Vec<(Interner, Vec<u32>)>,
}

impl NameIndex {
    const SHARDS: usize = 32;

    pub fn new(names: &[String]) -> Self {
        let hashes: Vec<u64> = names.par_iter().map(|n| hash_bytes(n.as_bytes())).collect();
        let shards = (0..Self::SHARDS)
            .into_par_iter()
            .map(|sh| {
                let mut table = Interner::default();
                let mut ids = Vec::new();
                for (i, &h) in hashes.iter().enumerate() {
                    if (h >> 59) as usize == sh {
                        // Names are distinct, so every one is new in its shard.
                        if table.intern_hashed(names[i].as_bytes(), h).is_some() {
                            ids.push(i as u32);
                        }
                    }
                }
                (table, ids)
            })
            .collect();
        NameIndex { shards }
    }

    pub fn get(&self, key: &[u8]) -> Option<u32> {
        let h = hash_bytes(key);
        let (table, ids) = &self.shards[(h >> 59) as usize];
        table.find(key, h).map(|i| ids[i as usize])
    }
}

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
/// for the answers without) atomically.
pub fn write_votes(path: &Path, table: &VoteTable) -> Result<()> {
    table.validate()?;
    let with_conf = table.confidence.par_iter().any(|c| !c.is_nan());
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

/// Paths for messages: `a.csv, b.csv`.
pub fn describe_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_and_maps() {
        let d = tempfile::tempdir().unwrap();
        let a = write(
            d.path(),
            "a.csv",
            "task,worker,label\nt1,w1,10\nt1,w2,2\nt2,w1,2\n",
        );
        let b = write(
            d.path(),
            "b.csv",
            "worker,task,label,confidence\r\nw3,t2,9,0.5\r\n\r\nw1,t3,\"10\",\n",
        );
        let v = read_votes(&[a, b]).unwrap();
        let t = &v.table;
        assert_eq!(t.classes, vec!["2", "9", "10"]);
        assert_eq!(t.tasks, vec!["t1", "t2", "t3"]);
        assert_eq!(t.workers, vec!["w1", "w2", "w3"]);
        assert_eq!(t.task, vec![0, 0, 1, 1, 2]);
        assert_eq!(t.worker, vec![0, 1, 0, 2, 0]);
        assert_eq!(t.label, vec![2, 0, 0, 1, 2]);
        // No confidence column, or an empty field: no confidence (NaN).
        let shown: Vec<String> = t.confidence.iter().map(|c| c.to_string()).collect();
        assert_eq!(shown, ["NaN", "NaN", "NaN", "0.5", "NaN"]);
        t.validate().unwrap();
    }

    #[test]
    fn a_second_header_line_is_an_error_naming_its_line() {
        let d = tempfile::tempdir().unwrap();
        let joined = write(
            d.path(),
            "ab.csv",
            "task,worker,label\nt1,w1,1\nTask,Worker,Label\nt2,w1,2\n",
        );
        let e = read_votes(&[joined]).unwrap_err().to_string();
        assert!(
            e.contains("ab.csv:3:") && e.contains("second header line"),
            "{e}"
        );
        let reordered = write(
            d.path(),
            "cd.csv",
            "task,worker,label\nt1,w1,1\nt2,w1,2\nworker,task,label\n",
        );
        let e = read_votes(&[reordered]).unwrap_err().to_string();
        assert!(e.contains("cd.csv:4:"), "{e}");
    }

    #[test]
    fn parallel_chunks_agree_with_one_piece() {
        // Several chunks, tasks recurring across chunks: ids follow first appearance.
        let d = tempfile::tempdir().unwrap();
        let mut s = String::from("task,worker,label\n");
        let n = 700_000u64;
        let task = |i: u64| {
            if i.is_multiple_of(3) {
                i / 3
            } else {
                (i * 7919) % 40_000
            }
        };
        for i in 0..n {
            s.push_str(&format!("t{},w{},{}\n", task(i), (i * 7) % 101, i % 5));
        }
        let a = write(d.path(), "a.csv", &s);
        let v = read_votes(&[&a]).unwrap();
        let t = &v.table;
        assert_eq!(t.len() as u64 + v.duplicates, n);
        let mut first = std::collections::HashSet::new();
        let mut order = Vec::new();
        for i in 0..n {
            let k = task(i);
            if first.insert(k) {
                order.push(k);
            }
        }
        assert_eq!(t.n_tasks(), order.len());
        for (id, k) in order.iter().enumerate() {
            assert_eq!(t.tasks[id], format!("t{k}"));
        }
        assert_eq!(t.workers[0], "w0");
        assert_eq!(t.workers[1], "w7");
        assert_eq!(t.classes, vec!["0", "1", "2", "3", "4"]);
        t.validate().unwrap();
        // Rows keep their strings (check through the names).
        let mut seen = std::collections::HashSet::new();
        for r in 0..t.len() {
            seen.insert((
                t.tasks[t.task[r] as usize].clone(),
                t.workers[t.worker[r] as usize].clone(),
            ));
        }
        assert_eq!(seen.len(), t.len(), "no duplicate (task, worker) left");
    }

    #[test]
    fn duplicates_keep_the_last() {
        let d = tempfile::tempdir().unwrap();
        let a = write(
            d.path(),
            "a.csv",
            "task,worker,label\nt,w,a\nt,v,a\nt,w,b\n",
        );
        let b = write(d.path(), "b.csv", "task,worker,label\nt,w,c\n");
        let v = read_votes(&[a, b]).unwrap();
        assert_eq!(v.duplicates, 2);
        assert_eq!(v.rows, 4);
        let t = &v.table;
        assert_eq!(t.len(), 2);
        assert_eq!(t.workers[t.worker[1] as usize], "w");
        assert_eq!(t.classes[t.label[1] as usize], "c");
    }

    #[test]
    fn bad_rows_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            ("task,worker,label\nt,w,1\nt,w\n", 3),
            ("task,worker,label\n\nt,w,1\n,w,1\n", 4),
            ("task,worker,label,confidence\nt,w,1,1.5\n", 2),
            ("task,worker,label\nt,w,\"1\n", 2),
            ("t,w,1\n", 1),
        ];
        for (text, line) in cases {
            let p = write(d.path(), "bad.csv", text);
            match read_votes(&[&p]) {
                Err(Error::Row { line: l, path, .. }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert_eq!(path, p);
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        for text in ["", "\n\n", "task,worker,label\n", "task,worker,label\n\n"] {
            let p = write(d.path(), "empty.csv", text);
            let e = read_votes(&[&p]).unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{text:?}: {e}");
        }
    }

    #[test]
    fn writer_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let t = VoteTable {
            task: vec![0, 1],
            worker: vec![1, 0],
            label: vec![1, 0],
            confidence: vec![0.25, 1.0],
            tasks: vec!["a,b".into(), " x".into()],
            workers: vec!["q\"w".into(), "w".into()],
            classes: vec!["1".into(), "2".into()],
        };
        let p = d.path().join("v.csv");
        write_votes(&p, &t).unwrap();
        let back = read_votes(&[&p]).unwrap().table;
        assert_eq!(back.tasks, t.tasks);
        assert_eq!(back.classes, t.classes);
        assert_eq!(back.label, t.label);
        assert_eq!(back.confidence, t.confidence);
        assert_eq!(back.workers, vec!["w", "q\"w"]);
    }

    #[test]
    fn numeric_class_order() {
        let mut v: Vec<String> = ["10", "-1", "2", "02"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sort_class_names(&mut v);
        assert_eq!(v, vec!["-1", "02", "2", "10"]);
        let mut v: Vec<String> = ["b", "10", "a"].iter().map(|s| s.to_string()).collect();
        sort_class_names(&mut v);
        assert_eq!(v, vec!["10", "a", "b"]);
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn short_key_helpers() {
        let keys: Vec<Vec<u8>> = (0..=20)
            .flat_map(|n| {
                [
                    (0..n).map(|i| b'a' + i as u8).collect::<Vec<u8>>(),
                    (0..n).map(|i| b'a' + (i as u8 * 7) % 26).collect(),
                ]
            })
            .collect();
        for a in &keys {
            if a.len() <= 8 {
                let mut x = [0u8; 8];
                x[..a.len()].copy_from_slice(a);
                assert_eq!(load_le(a), u64::from_le_bytes(x));
            }
            for b in &keys {
                assert_eq!(same_key(a, b), a == b, "{a:?} {b:?}");
                if a == b {
                    assert_eq!(hash_bytes(a), hash_bytes(b));
                }
            }
        }
    }
}
