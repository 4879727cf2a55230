//! The classify job: stream items through a backend and write the votes file
//! (`task,worker,label,confidence`), overlapping reading, compute and writing on three threads.

use crate::aggregate::majority::conf_fixed;
use crate::aggregate::majority::pick;
use crate::backend::{Backend, Items, Predictions};
use crate::data::npy::Dtype;
use crate::data::stream::{Chunk, ItemStream, Pixels};
use crate::error::{Error, Result};
use crate::model::{Ensemble, InputKind, MAX_CLASSES};
use rayon::prelude::*;
use std::io::Write;
use std::sync::mpsc::sync_channel;
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

/// Appends `value` in [0, 1] with six decimals.
fn push_confidence(buf: &mut Vec<u8>, value: f32) {
    let micro = (value.clamp(0.0, 1.0) as f64 * 1e6).round() as u32;
    buf.extend_from_slice(itoa::Buffer::new().format(micro / 1_000_000).as_bytes());
    buf.push(b'.');
    let frac = micro % 1_000_000;
    let mut digits = [b'0'; 6];
    for (k, d) in digits.iter_mut().enumerate() {
        *d = b'0' + (frac / 10u32.pow(5 - k as u32) % 10) as u8;
    }
    buf.extend_from_slice(&digits);
}

/// Appends the votes of items `start..` as CSV rows `task,worker,label,confidence`; `labels`
/// and `conf` hold `workers` votes per item.
pub fn format_votes(buf: &mut Vec<u8>, start: usize, workers: usize, labels: &[u32], conf: &[f32]) {
    let r = workers.max(1);
    let mut num = itoa::Buffer::new();
    for (i, (labels, conf)) in labels.chunks_exact(r).zip(conf.chunks_exact(r)).enumerate() {
        for w in 0..r {
            buf.extend_from_slice(num.format(start + i).as_bytes());
            buf.push(b',');
            buf.extend_from_slice(num.format(w).as_bytes());
            buf.push(b',');
            buf.extend_from_slice(num.format(labels[w]).as_bytes());
            buf.push(b',');
            push_confidence(buf, conf[w]);
            buf.push(b'\n');
        }
    }
}

/// Formats a chunk's votes in parallel pieces, in item order.
fn format_votes_parallel(start: usize, pred: &Predictions) -> Vec<Vec<u8>> {
    const PIECE: usize = 8192;
    let r = pred.workers.max(1);
    pred.labels
        .par_chunks(PIECE * r)
        .zip(pred.confidence.par_chunks(PIECE * r))
        .enumerate()
        .map(|(p, (labels, conf))| {
            let mut buf = Vec::with_capacity(labels.len() * 24);
            format_votes(&mut buf, start + p * PIECE, r, labels, conf);
            buf
        })
        .collect()
}

/// Options of one classify run.
pub struct ClassifyJob<'a> {
    pub backend: &'a dyn Backend,
    pub model: &'a Ensemble,
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
        mut stream: ItemStream,
        out: Option<&mut (dyn Write + Send)>,
    ) -> Result<ClassifyStats> {
        let model = self.model;
        check_input(&stream, model)?;
        let value_size = stream.dtype().size();
        if stream.features() != model.features() {
            return Err(Error::Invalid(format!(
                "{}: items are {}x{} but the model expects {}x{}",
                stream.name, stream.height, stream.width, model.height, model.width
            )));
        }
        let started = Instant::now();
        let mut stats = ClassifyStats {
            workers: model.workers,
            worker_correct: vec![0; model.workers],
            ..Default::default()
        };
        let (chunk_tx, chunk_rx) = sync_channel::<Result<Chunk>>(2);
        let (pred_tx, pred_rx) = sync_channel::<(Chunk, Predictions)>(2);
        // Pixel buffers go back from the writer to the reader for reuse.
        let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let chunk_items = self.chunk_items.max(1);
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
                if let Some(w) = out.as_mut() {
                    w.write_all(b"task,worker,label,confidence\n")
                        .map_err(|e| Error::Invalid(format!("cannot write votes: {e}")))?;
                }
                for (chunk, pred) in pred_rx {
                    let t = Instant::now();
                    tally_chunk(stats, &chunk, &pred, model.classes, keep);
                    if let Some(w) = out.as_mut() {
                        for piece in format_votes_parallel(chunk.start, &pred) {
                            w.write_all(&piece)
                                .map_err(|e| Error::Invalid(format!("cannot write votes: {e}")))?;
                        }
                    }
                    stats.items += chunk_len(&chunk, model, value_size) as u64;
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
                let classified = Items::from_bytes(value_size, &chunk.pixels, &mut spare)
                    .and_then(|items| self.backend.classify_items(model, items, &mut pred));
                if let Err(e) = classified {
                    outcome = Err(e);
                    break;
                }
                compute_seconds += t.elapsed().as_secs_f64();
                if pred_tx.send((chunk, pred)).is_err() {
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
        let mut buf = Vec::new();
        format_votes(&mut buf, 98, pred.workers, &pred.labels, &pred.confidence);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "98,0,3,0.500000\n98,1,0,1.000000\n99,0,12,0.000000\n99,1,7,0.123457\n"
        );
        let pieces = format_votes_parallel(0, &pred).concat();
        assert!(pieces.starts_with(b"0,0,3,0.500000\n"));
    }
}
