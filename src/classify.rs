//! The classify job: stream items through a backend and write the votes file
//! (`task,worker,label,confidence`), overlapping reading, compute and writing on three threads.
//!
//! Votes name things so that they can be joined on: `task` is the item's id (its path in an
//! image folder, its row index otherwise), `worker` is `<model name>/<r>` (so model workers
//! never collide with people), `label` is the class's name (its folder name, else its number).
//! With `--probs-out`, every worker's class probabilities are written too ([`crate::probs`]).

use crate::aggregate::majority::conf_fixed;
use crate::aggregate::majority::pick;
use crate::backend::{Backend, Predictions};
use crate::data::stream::{Chunk, ItemStream, Pixels};
use crate::data::votes::push_field;
use crate::error::{Error, Result};
use crate::model::{Ensemble, MAX_CLASSES};
use crate::probs::{self, ProbsFormat};
use rayon::prelude::*;
use std::io::Write;
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

/// Appends the decimal digits of `v`.
fn push_uint(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Appends `value` in [0, 1] with six decimals.
fn push_confidence(buf: &mut Vec<u8>, value: f32) {
    let micro = (value.clamp(0.0, 1.0) as f64 * 1e6).round() as u32;
    push_uint(buf, (micro / 1_000_000) as u64);
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
    /// Names for `model`'s votes on `stream`'s items; `model_name` is usually the model file's
    /// stem.
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
    fn push_task(&self, buf: &mut Vec<u8>, i: usize) {
        match &self.ids {
            Some(ids) => push_field(buf, &ids[i]),
            None => push_uint(buf, i as u64),
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
    for (i, (labels, conf)) in labels.chunks_exact(r).zip(conf.chunks_exact(r)).enumerate() {
        for w in 0..r {
            names.push_task(buf, start + i);
            buf.push(b',');
            buf.extend_from_slice(&names.workers[w]);
            buf.push(b',');
            match names.classes.get(labels[w] as usize) {
                Some(name) => buf.extend_from_slice(name),
                None => push_uint(buf, labels[w] as u64),
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
                ProbsFormat::Csv => probs::push_csv(
                    &mut buf,
                    start + p * PIECE,
                    part,
                    c,
                    &names.workers,
                    &|i, b| names.push_task(b, i),
                ),
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
        self.run_with_probs(stream, out, None)
    }

    /// [`ClassifyJob::run`], also writing every worker's class probabilities to `probs` when
    /// given (computed on the CPU: see [`crate::probs`]).
    pub fn run_with_probs(
        &self,
        mut stream: ItemStream,
        out: Option<&mut (dyn Write + Send)>,
        probs: Option<ProbsOut<'_>>,
    ) -> Result<ClassifyStats> {
        let model = self.model;
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
        let n_items = stream.len;
        let started = Instant::now();
        let mut stats = ClassifyStats {
            workers: model.workers,
            worker_correct: vec![0; model.workers],
            ..Default::default()
        };
        let (chunk_tx, chunk_rx) = sync_channel::<Result<Chunk>>(2);
        let (pred_tx, pred_rx) = sync_channel::<(Chunk, Predictions, Vec<f32>)>(2);
        // Pixel buffers go back from the writer to the reader for reuse.
        let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let chunk_items = self.chunk_items.max(1);
        let with_probs = probs.is_some();
        let mut read_seconds = 0.0;
        let (read, compute) = std::thread::scope(|s| -> Result<(f64, f64)> {
            let reader = s.spawn(move || {
                // The microtasks (stable ids, item ranges) are the chunks read in order.
                for task in crate::task::microtasks(stream.len, chunk_items) {
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
                let mut out = out;
                let mut probs = probs;
                let votes_err =
                    |e: std::io::Error| Error::Invalid(format!("cannot write votes: {e}"));
                let probs_err =
                    |e: std::io::Error| Error::Invalid(format!("cannot write probabilities: {e}"));
                if let Some(w) = out.as_mut() {
                    w.write_all(b"task,worker,label,confidence\n")
                        .map_err(votes_err)?;
                }
                if let Some(p) = probs.as_mut() {
                    match p.format {
                        ProbsFormat::Npy => probs::write_npy_header(
                            &mut *p.writer,
                            n_items,
                            model.workers,
                            model.classes,
                        ),
                        ProbsFormat::Csv => p
                            .writer
                            .write_all(&probs::csv_header(&model.class_names_or_numbers())),
                    }
                    .map_err(probs_err)?;
                }
                for (chunk, pred, chunk_probs) in pred_rx {
                    let t = Instant::now();
                    tally_chunk(stats, &chunk, &pred, model.classes, keep);
                    if let Some(w) = out.as_mut() {
                        for piece in format_votes_parallel(chunk.start, &pred, names) {
                            w.write_all(&piece).map_err(votes_err)?;
                        }
                    }
                    if let Some(p) = probs.as_mut() {
                        let pieces =
                            format_probs_parallel(chunk.start, &chunk_probs, names, p.format);
                        for piece in pieces {
                            p.writer.write_all(&piece).map_err(probs_err)?;
                        }
                    }
                    stats.items += chunk_len(&chunk, model) as u64;
                    (self.progress)(stats.items);
                    stats.write_seconds += t.elapsed().as_secs_f64();
                    if let Pixels::Owned(buffer) = chunk.pixels {
                        let _ = free_tx.send(buffer);
                    }
                }
                Ok(())
            });
            let mut compute_seconds = 0.0;
            let mut outcome = Ok(());
            for chunk in chunk_rx {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                };
                let t = Instant::now();
                let mut pred = Predictions::with_capacity(chunk_len(&chunk, model), model.workers);
                let mut chunk_probs = Vec::new();
                let done = if with_probs {
                    probs::classify_with_probs(
                        model,
                        &chunk.pixels[..],
                        &mut pred,
                        &mut chunk_probs,
                    )
                } else {
                    self.backend.classify(model, &chunk.pixels[..], &mut pred)
                };
                if let Err(e) = done {
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

fn chunk_len(chunk: &Chunk, model: &Ensemble) -> usize {
    chunk.pixels.len() / model.features()
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
