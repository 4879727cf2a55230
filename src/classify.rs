//! The classify job: stream items through a backend and write the votes file
//! (`task,worker,label,confidence`), overlapping reading, compute and writing on three threads.
//!
//! Votes name things so that they can be joined on: `task` is the item's id (its path in an
//! image folder, its row index otherwise), `worker` is `<model name>/<r>` (so model workers
//! never collide with people), `label` is the class's name (its folder name, else its number).
//! With `--probs-out`, every worker's class probabilities are written too ([`crate::probs`]).

use crate::aggregate::majority::conf_fixed;
use crate::aggregate::majority::pick;
use crate::backend::{Backend, Items, Predictions};
use crate::data::npy::Dtype;
use crate::data::stream::{Chunk, ItemStream, Pixels};
use crate::data::votes::push_field;
use crate::error::{Error, Result};
use crate::model::{Ensemble, InputKind, MAX_CLASSES};
use crate::parquet_out::ParquetProbs;
use crate::probs::{self, ProbsFormat};
use rayon::prelude::*;
use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;

/// Items per chunk handed from the reader to the backend (about 50 MB of 28x28 pixels).
pub const CHUNK_ITEMS: usize = 1 << 16;

/// Tests only (`test-hooks` feature): the reader panics on reaching this chunk (0-based),
/// standing in for a reader or decoder bug, so that a test can check that the job fails and
/// leaves no votes file. `usize::MAX`: never.
#[cfg(feature = "test-hooks")]
pub static PANIC_READER_AT_CHUNK: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(usize::MAX);

/// What a classify run did, with accuracy when the items are labelled.
#[derive(Debug, Clone, Default)]
pub struct ClassifyStats {
    pub items: u64,
    pub workers: usize,
    pub labelled: u64,
    /// Per worker: correct votes on labelled items.
    pub worker_correct: Vec<u64>,
    /// Correct majority votes (per item, over the workers) on labelled items.
    pub majority_correct: u64,
    pub seconds: f64,
    /// Seconds the reader, the backend and the writer were busy (they overlap).
    pub read_seconds: f64,
    pub compute_seconds: f64,
    pub write_seconds: f64,
    /// Every vote, in item order (only kept when asked for).
    pub predictions: Predictions,
}

impl ClassifyStats {
    pub fn items_per_second(&self) -> f64 {
        self.items as f64 / self.seconds.max(1e-9)
    }

    pub fn worker_accuracy(&self, r: usize) -> Option<f64> {
        (self.labelled > 0).then(|| self.worker_correct[r] as f64 / self.labelled as f64)
    }

    pub fn majority_accuracy(&self) -> Option<f64> {
        (self.labelled > 0).then(|| self.majority_correct as f64 / self.labelled as f64)
    }

    /// The stage that bounds the run (the one busy longest).
    pub fn bound_by(&self) -> &'static str {
        let stages = [
            (self.read_seconds, "reading/decoding input"),
            (self.compute_seconds, "compute"),
            (self.write_seconds, "writing votes"),
        ];
        stages
            .iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or("compute", |s| s.1)
    }
}

/// The majority of one item's R votes, with the same tie rule as `tally`.
pub fn item_majority(labels: &[u32], conf: &[f32], classes: usize) -> u32 {
    if let [only] = labels {
        return *only;
    }
    let mut counts = [0u32; MAX_CLASSES];
    let mut sums = [0u32; MAX_CLASSES];
    for (&l, &c) in labels.iter().zip(conf) {
        counts[l as usize] += 1;
        sums[l as usize] = sums[l as usize].saturating_add(conf_fixed(c));
    }
    pick(&counts[..classes], &sums[..classes]).label
}

/// A vote's confidence in millionths: the six decimals a votes file holds.
pub fn confidence_micros(value: f32) -> u32 {
    (value.clamp(0.0, 1.0) as f64 * 1e6).round() as u32
}

/// Appends `value` in [0, 1] with six decimals.
fn push_confidence(buf: &mut Vec<u8>, value: f32) {
    let micro = confidence_micros(value);
    buf.extend_from_slice(itoa::Buffer::new().format(micro / 1_000_000).as_bytes());
    buf.push(b'.');
    let frac = micro % 1_000_000;
    let mut digits = [b'0'; 6];
    for (k, d) in digits.iter_mut().enumerate() {
        *d = b'0' + (frac / 10u32.pow(5 - k as u32) % 10) as u8;
    }
    buf.extend_from_slice(&digits);
}

/// What the output rows call items, workers and classes, CSV-escaped once.
#[derive(Debug, Clone)]
pub struct VoteNames {
    /// Item ids when they are not the row index.
    pub ids: Option<Arc<Vec<String>>>,
    /// Per worker, its field: `<model name>/<r>`.
    pub workers: Vec<Vec<u8>>,
    /// Per class, its field: its name, else its number.
    pub classes: Vec<Vec<u8>>,
}

impl VoteNames {
    /// Names for `model`'s votes on items with `ids` (`None`: the row index); `model_name` is
    /// usually the model file's stem.
    pub fn new(model: &Ensemble, model_name: &str, ids: Option<Arc<Vec<String>>>) -> Self {
        let field = |s: &str| {
            let mut f = Vec::new();
            push_field(&mut f, s);
            f
        };
        VoteNames {
            ids,
            workers: (0..model.workers)
                .map(|r| field(&worker_name(model_name, r)))
                .collect(),
            classes: model
                .class_names_or_numbers()
                .iter()
                .map(|c| field(c))
                .collect(),
        }
    }

    /// Appends item `i`'s task field.
    fn push_task(&self, buf: &mut Vec<u8>, num: &mut itoa::Buffer, i: usize) {
        match &self.ids {
            Some(ids) => push_field(buf, &ids[i]),
            None => buf.extend_from_slice(num.format(i).as_bytes()),
        }
    }
}

/// The name of worker `r` of the model called `model_name`: `<model_name>/<r>`.
pub fn worker_name(model_name: &str, r: usize) -> String {
    format!("{model_name}/{r}")
}

/// Appends the votes of items `start..` as CSV rows `task,worker,label,confidence`; `labels`
/// and `conf` hold one vote per item and worker of `names`.
pub fn format_votes(
    buf: &mut Vec<u8>,
    start: usize,
    names: &VoteNames,
    labels: &[u32],
    conf: &[f32],
) {
    let r = names.workers.len().max(1);
    let mut num = itoa::Buffer::new();
    for (i, (labels, conf)) in labels.chunks_exact(r).zip(conf.chunks_exact(r)).enumerate() {
        for w in 0..r {
            names.push_task(buf, &mut num, start + i);
            buf.push(b',');
            buf.extend_from_slice(&names.workers[w]);
            buf.push(b',');
            match names.classes.get(labels[w] as usize) {
                Some(name) => buf.extend_from_slice(name),
                None => buf.extend_from_slice(num.format(labels[w]).as_bytes()),
            }
            buf.push(b',');
            push_confidence(buf, conf[w]);
            buf.push(b'\n');
        }
    }
}

/// Items per piece formatted by one thread.
const PIECE: usize = 8192;

/// Formats a chunk's votes in parallel pieces, in item order.
fn format_votes_parallel(start: usize, pred: &Predictions, names: &VoteNames) -> Vec<Vec<u8>> {
    let r = pred.workers.max(1);
    pred.labels
        .par_chunks(PIECE * r)
        .zip(pred.confidence.par_chunks(PIECE * r))
        .enumerate()
        .map(|(p, (labels, conf))| {
            let mut buf = Vec::with_capacity(labels.len() * 24);
            format_votes(&mut buf, start + p * PIECE, names, labels, conf);
            buf
        })
        .collect()
}

/// Formats a chunk's probabilities (`items * workers * classes`) in parallel pieces.
fn format_probs_parallel(
    start: usize,
    probs: &[f32],
    names: &VoteNames,
    format: ProbsFormat,
) -> Vec<Vec<u8>> {
    let (r, c) = (names.workers.len().max(1), names.classes.len().max(1));
    probs
        .par_chunks(PIECE * r * c)
        .enumerate()
        .map(|(p, part)| {
            let mut buf = Vec::new();
            match format {
                ProbsFormat::Npy => probs::push_npy(&mut buf, part),
                // Columns, not bytes: see the writer thread.
                ProbsFormat::Parquet => {}
                ProbsFormat::Csv => {
                    let mut num = itoa::Buffer::new();
                    probs::push_csv(
                        &mut buf,
                        start + p * PIECE,
                        part,
                        c,
                        &names.workers,
                        &mut |i, b| names.push_task(b, &mut num, i),
                    )
                }
            }
            buf
        })
        .collect()
}

/// Where `--probs-out` goes: a writer and its format.
pub struct ProbsOut<'w> {
    pub writer: &'w mut (dyn Write + Send),
    pub format: ProbsFormat,
}

/// Where a classify job's votes go, chunk by chunk, in item order.
pub trait VotesSink: Send {
    /// Appends formatted votes (the header, then rows).
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// Starts a fresh file: the CSV header by default.
    fn header(&mut self, _names: &VoteNames) -> Result<()> {
        self.write(VOTES_HEADER)
    }
    /// Appends the votes of the items `start..` held in `pred`: CSV rows by default (a columnar
    /// sink takes the columns as they are).
    fn votes(&mut self, start: usize, pred: &Predictions, names: &VoteNames) -> Result<()> {
        for piece in format_votes_parallel(start, pred, names) {
            self.write(&piece)?;
        }
        Ok(())
    }
    /// Called once every chunk is written (a Parquet sink writes its footer).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called after each chunk's rows are written: every item before `end` is written and
    /// `stats` counts them. A journaled sink may commit here.
    fn chunk_done(&mut self, end: usize, stats: &ClassifyStats) -> Result<()>;
}

/// A plain writer as a sink: no commits.
struct PlainSink<'a>(&'a mut (dyn Write + Send));

impl VotesSink for PlainSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.0
            .write_all(bytes)
            .map_err(|e| Error::Invalid(format!("cannot write votes: {e}")))
    }
    fn chunk_done(&mut self, _end: usize, _stats: &ClassifyStats) -> Result<()> {
        Ok(())
    }
}

/// The CSV header of a votes file.
pub const VOTES_HEADER: &[u8] = b"task,worker,label,confidence\n";

/// The items one run covers: a shard of the stream, or all of it, possibly resumed.
pub struct Part<'a> {
    /// The items of the whole part (whole microtasks, except at the end of the stream).
    pub items: Range<usize>,
    /// The first item still to classify: `items.start` for a fresh run (the header is written),
    /// a committed chunk boundary when resuming (rows are appended).
    pub from: usize,
    /// The counts of the items before `from` (restored from a journal), or the default.
    pub stats: ClassifyStats,
    /// When set (by a signal handler), no further chunk is read; the chunks in flight finish.
    pub stop: Option<&'a AtomicBool>,
}

impl Part<'_> {
    /// Every item of a stream of `len` items.
    pub fn all(len: usize) -> Self {
        Part {
            items: 0..len,
            from: 0,
            stats: ClassifyStats::default(),
            stop: None,
        }
    }
}

/// Options of one classify run.
pub struct ClassifyJob<'a> {
    pub backend: &'a dyn Backend,
    pub model: &'a Ensemble,
    /// Workers are named `<model_name>/<r>` in the votes (usually the model file's stem).
    pub model_name: &'a str,
    pub chunk_items: usize,
    /// Keep every vote in the stats (for the `run` pipeline, which aggregates them).
    pub keep_predictions: bool,
    /// Called with the items finished so far.
    pub progress: &'a (dyn Fn(u64) + Sync),
}

impl ClassifyJob<'_> {
    /// Classifies every item of `stream`; writes votes to `out` when given.
    pub fn run(
        &self,
        stream: ItemStream,
        out: Option<&mut (dyn Write + Send)>,
    ) -> Result<ClassifyStats> {
        let part = Part::all(stream.len);
        match out {
            Some(w) => self.run_part(stream, part, Some(&mut PlainSink(w))),
            None => self.run_part(stream, part, None),
        }
    }

    /// Classifies the items `part.from..part.items.end` of `stream` into `sink`, in chunks that
    /// follow the microtask grid of the whole stream (so that a shard or a resumed run writes
    /// the same bytes as one run over everything).
    pub fn run_part(
        &self,
        stream: ItemStream,
        part: Part<'_>,
        sink: Option<&mut dyn VotesSink>,
    ) -> Result<ClassifyStats> {
        self.run_part_with_probs(stream, part, sink, None)
    }

    /// [`ClassifyJob::run_part`], also writing every worker's class probabilities of the items
    /// `part.from..part.items.end` to `probs` when given (computed on the CPU: see
    /// [`crate::probs`]; the votes then come from the same softmax).
    pub fn run_part_with_probs(
        &self,
        mut stream: ItemStream,
        part: Part<'_>,
        sink: Option<&mut dyn VotesSink>,
        probs: Option<ProbsOut<'_>>,
    ) -> Result<ClassifyStats> {
        let model = self.model;
        check_input(&stream, model)?;
        let value_size = stream.dtype().size();
        if stream.features() != model.features() {
            return Err(Error::Invalid(format!(
                "{}: items are {} but the model takes {}",
                stream.name,
                stream.shape_text(),
                model.shape_text()
            )));
        }
        let names = VoteNames::new(model, self.model_name, stream.ids.clone());
        let names = &names;
        let with_probs = probs.is_some();
        let started = Instant::now();
        let mut stats = part.stats;
        stats.workers = model.workers;
        stats.worker_correct.resize(model.workers, 0);
        let (from, end) = (part.from, part.items.end.min(stream.len));
        let fresh = from == part.items.start;
        stream.seek(from)?;
        let stop = part.stop;
        let (chunk_tx, chunk_rx) = sync_channel::<Result<Chunk>>(2);
        let (pred_tx, pred_rx) = sync_channel::<(Chunk, Predictions, Vec<f32>)>(2);
        // Pixel buffers go back from the writer to the reader for reuse.
        let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let chunk_items = self.chunk_items.max(1);
        let mut read_seconds = 0.0;
        let (read, compute) = std::thread::scope(|s| -> Result<(f64, f64)> {
            let reader = s.spawn(move || {
                // The microtasks (stable ids, item ranges) are the chunks read in order.
                let tasks = crate::task::microtasks(stream.len, chunk_items);
                for mut task in tasks.into_iter().filter(|t| t.items.end > from) {
                    if task.items.start >= end || stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                        break;
                    }
                    task.items = task.items.start.max(from)..task.items.end.min(end);
                    #[cfg(feature = "test-hooks")]
                    if task.id == PANIC_READER_AT_CHUNK.load(std::sync::atomic::Ordering::SeqCst) {
                        panic!("injected reader panic at chunk {} (test)", task.id);
                    }
                    let t = Instant::now();
                    let buffer = free_rx.try_recv().unwrap_or_default();
                    let next = stream.next_chunk_into(task.items.len(), buffer);
                    read_seconds += t.elapsed().as_secs_f64();
                    let sent = match next {
                        Ok(Some(chunk)) => {
                            debug_assert_eq!(chunk.start, task.items.start);
                            chunk_tx.send(Ok(chunk))
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let _ = chunk_tx.send(Err(e));
                            break;
                        }
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                read_seconds
            });
            let stats = &mut stats;
            let keep = self.keep_predictions;
            let writer = s.spawn(move || -> Result<()> {
                let mut sink = sink;
                let mut probs = probs;
                let probs_err =
                    |e: std::io::Error| Error::Invalid(format!("cannot write probabilities: {e}"));
                if let (Some(w), true) = (sink.as_mut(), fresh) {
                    w.header(names)?;
                }
                // A Parquet probabilities file takes columns through its own writer.
                let mut probs_parquet = match probs.take_if(|p| p.format == ProbsFormat::Parquet) {
                    Some(p) => Some(ParquetProbs::new(p.writer, names, model.classes)?),
                    None => None,
                };
                if let Some(p) = probs.as_mut() {
                    match p.format {
                        ProbsFormat::Npy => probs::write_npy_header(
                            &mut *p.writer,
                            end.saturating_sub(from),
                            model.workers,
                            model.classes,
                        ),
                        ProbsFormat::Csv => p
                            .writer
                            .write_all(&probs::csv_header(&model.class_names_or_numbers())),
                        ProbsFormat::Parquet => Ok(()),
                    }
                    .map_err(probs_err)?;
                }
                for (chunk, pred, chunk_probs) in pred_rx {
                    let t = Instant::now();
                    tally_chunk(stats, &chunk, &pred, model.classes, keep);
                    stats.items += chunk_len(&chunk, model, value_size) as u64;
                    // Probabilities first: a journaled sink commits the votes in chunk_done.
                    if let Some(p) = probs_parquet.as_mut() {
                        p.write(chunk.start, &chunk_probs)?;
                    }
                    if let Some(p) = probs.as_mut() {
                        let pieces =
                            format_probs_parallel(chunk.start, &chunk_probs, names, p.format);
                        for piece in pieces {
                            p.writer.write_all(&piece).map_err(probs_err)?;
                        }
                    }
                    if let Some(w) = sink.as_mut() {
                        w.votes(chunk.start, &pred, names)?;
                        w.chunk_done(chunk.start + chunk_len(&chunk, model, value_size), stats)?;
                    }
                    (self.progress)(stats.items);
                    stats.write_seconds += t.elapsed().as_secs_f64();
                    if let Pixels::Owned(buffer) = chunk.pixels {
                        let _ = free_tx.send(buffer);
                    }
                }
                if let Some(w) = sink.as_mut() {
                    w.finish()?;
                }
                if let Some(p) = probs_parquet {
                    p.finish()?;
                }
                Ok(())
            });
            let mut compute_seconds = 0.0;
            let mut outcome = Ok(());
            // Where a chunk's values are copied when they are not aligned for their type.
            let mut spare = Vec::new();
            for chunk in chunk_rx {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                };
                let t = Instant::now();
                let mut pred =
                    Predictions::with_capacity(chunk_len(&chunk, model, value_size), model.workers);
                let mut chunk_probs = Vec::new();
                let classified =
                    Items::from_bytes(value_size, &chunk.pixels, &mut spare).and_then(|items| {
                        if with_probs {
                            probs::classify_with_probs(model, items, &mut pred, &mut chunk_probs)
                        } else {
                            self.backend.classify_items(model, items, &mut pred)
                        }
                    });
                if let Err(e) = classified {
                    outcome = Err(e);
                    break;
                }
                compute_seconds += t.elapsed().as_secs_f64();
                if pred_tx.send((chunk, pred, chunk_probs)).is_err() {
                    break;
                }
            }
            drop(pred_tx);
            // A reader that panicked closed its channel as if the items had ended: without this
            // the job would succeed with the chunks read so far.
            let read = reader.join().map_err(|p| {
                Error::Invalid(format!("the item reader panicked: {}", panic_message(&*p)))
            });
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(Error::Invalid("the votes writer panicked".into())));
            outcome?;
            let read = read?;
            written?;
            Ok((read, compute_seconds))
        })?;
        stats.read_seconds = read;
        stats.compute_seconds = compute;
        stats.seconds = started.elapsed().as_secs_f64();
        Ok(stats)
    }
}

/// The text a panic was raised with, when it is one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

fn chunk_len(chunk: &Chunk, model: &Ensemble, value_size: usize) -> usize {
    chunk.pixels.len() / (model.features() * value_size)
}

/// The items must be what the model takes: pixels (u8) for a pixel model, f16/f32 features of
/// the model's width for a feature model; the error names both. (Pixel shapes are checked with
/// the images' height and width.)
fn check_input(stream: &ItemStream, model: &Ensemble) -> Result<()> {
    let dtype = stream.dtype();
    let kind = if dtype == Dtype::U8 {
        InputKind::Pixels
    } else {
        InputKind::Features
    };
    let width_differs = stream.features() != model.features();
    if kind != model.input || (kind == InputKind::Features && width_differs) {
        return Err(Error::Invalid(format!(
            "{}: items are {} {} {} values each, but the model takes {} of {} values",
            stream.name,
            dtype.name(),
            kind.name(),
            stream.features(),
            model.input.name(),
            model.features()
        )));
    }
    Ok(())
}

fn tally_chunk(
    stats: &mut ClassifyStats,
    chunk: &Chunk,
    pred: &Predictions,
    classes: usize,
    keep: bool,
) {
    let r = pred.workers;
    if keep {
        stats.predictions.workers = r;
        stats.predictions.labels.extend_from_slice(&pred.labels);
        stats
            .predictions
            .confidence
            .extend_from_slice(&pred.confidence);
    }
    for (i, (labels, conf)) in pred
        .labels
        .chunks_exact(r)
        .zip(pred.confidence.chunks_exact(r))
        .enumerate()
    {
        if let Some(truth) = chunk.labels.as_ref().map(|l| l[i] as u32) {
            stats.labelled += 1;
            for (w, &l) in labels.iter().enumerate() {
                stats.worker_correct[w] += (l == truth) as u64;
            }
            stats.majority_correct += (item_majority(labels, conf, classes) == truth) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn votes_are_formatted_with_six_decimals() {
        let pred = Predictions {
            workers: 2,
            labels: vec![3, 0, 12, 7],
            confidence: vec![0.5, 1.0, 0.000_000_4, 0.123_456_7],
        };
        let model = Ensemble::zeros(2, 13, 1, 1);
        let names = VoteNames::new(&model, "m", None);
        let mut buf = Vec::new();
        format_votes(&mut buf, 98, &names, &pred.labels, &pred.confidence);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "98,m/0,3,0.500000\n98,m/1,0,1.000000\n99,m/0,12,0.000000\n99,m/1,7,0.123457\n"
        );
        let pieces = format_votes_parallel(0, &pred, &names).concat();
        assert!(pieces.starts_with(b"0,m/0,3,0.500000\n"));
    }

    #[test]
    fn votes_name_items_by_id_and_classes_by_name() {
        let mut model = Ensemble::zeros(1, 2, 1, 1);
        model.class_names = vec!["cat".into(), "dog, big".into()];
        let ids = Arc::new(vec!["a/1.png".to_string(), "b,2.png".to_string()]);
        let names = VoteNames::new(&model, "my model", Some(ids));
        let mut buf = Vec::new();
        format_votes(&mut buf, 0, &names, &[1, 0], &[0.75, 0.5]);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "a/1.png,my model/0,\"dog, big\",0.750000\n\"b,2.png\",my model/0,cat,0.500000\n"
        );
    }
}
