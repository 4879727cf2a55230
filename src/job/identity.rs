//! What a classify job is (so that shards and resumed runs can tell whether they belong to the
//! same job) and the counts behind its summary (so that a resumed run or a merge reports the same
//! accuracy as one uninterrupted run).

use super::digest;
use crate::classify::ClassifyStats;
use crate::data::stream::ItemStream;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The identity of a classify job: the same tool, model, data and chunking give the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobId {
    /// The microtask version that wrote the votes.
    pub version: String,
    /// sha256 of the model file.
    pub model_sha256: String,
    /// How the votes name the model's workers (`<name>/<r>`): the model file's stem.
    pub model_name: String,
    /// Whether images of another size were resized (`--resize`).
    pub resize: bool,
    /// The data's fingerprint (see [`digest::data_fingerprint`]).
    pub data: String,
    /// Items in the whole data set.
    pub items: usize,
    /// Items per microtask: shard boundaries and journal commits fall on its multiples.
    pub chunk_items: usize,
}

impl JobId {
    /// The identity of classifying `spec` (opened as `stream`) with the model at `model`, its
    /// workers named `<model_name>/<r>`, images resized or not.
    pub fn new(
        model: &Path,
        model_name: &str,
        resize: bool,
        spec: &str,
        stream: &ItemStream,
        chunk_items: usize,
    ) -> Result<JobId> {
        Ok(JobId {
            version: env!("CARGO_PKG_VERSION").to_string(),
            model_sha256: digest::file_sha256(model)?,
            model_name: model_name.to_string(),
            resize,
            data: digest::data_fingerprint(spec, &stream.name)?,
            items: stream.len,
            chunk_items,
        })
    }

    /// What differs from `other`, in words (empty when they are the same job).
    pub fn differences(&self, other: &JobId) -> Vec<String> {
        let mut d = Vec::new();
        if self.version != other.version {
            d.push(format!(
                "microtask version {} vs {}",
                self.version, other.version
            ));
        }
        if self.model_sha256 != other.model_sha256 {
            d.push(format!(
                "another model (sha256 {} vs {})",
                short(&self.model_sha256),
                short(&other.model_sha256)
            ));
        }
        if self.model_name != other.model_name {
            d.push(format!(
                "workers named {}/<r> vs {}/<r>",
                self.model_name, other.model_name
            ));
        }
        if self.resize != other.resize {
            d.push(format!(
                "--resize {} vs {}",
                on_off(self.resize),
                on_off(other.resize)
            ));
        }
        if self.data != other.data || self.items != other.items {
            d.push(format!(
                "other data ({} items, {} vs {} items, {})",
                self.items,
                short(&self.data),
                other.items,
                short(&other.data)
            ));
        }
        if self.chunk_items != other.chunk_items {
            d.push(format!(
                "microtasks of {} vs {} items",
                self.chunk_items, other.chunk_items
            ));
        }
        d
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(24)]
}

/// The counts a classify summary is made of; they add up across chunks and shards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub items: u64,
    pub labelled: u64,
    pub worker_correct: Vec<u64>,
    pub majority_correct: u64,
}

impl Counts {
    pub fn of(stats: &ClassifyStats) -> Counts {
        Counts {
            items: stats.items,
            labelled: stats.labelled,
            worker_correct: stats.worker_correct.clone(),
            majority_correct: stats.majority_correct,
        }
    }

    /// Stats that start from these counts (a resumed run goes on from them).
    pub fn to_stats(&self, workers: usize) -> ClassifyStats {
        let mut worker_correct = self.worker_correct.clone();
        worker_correct.resize(workers, 0);
        ClassifyStats {
            items: self.items,
            workers,
            labelled: self.labelled,
            worker_correct,
            majority_correct: self.majority_correct,
            ..Default::default()
        }
    }

    pub fn add(&mut self, other: &Counts) {
        self.items += other.items;
        self.labelled += other.labelled;
        if self.worker_correct.len() < other.worker_correct.len() {
            self.worker_correct.resize(other.worker_correct.len(), 0);
        }
        for (a, b) in self.worker_correct.iter_mut().zip(&other.worker_correct) {
            *a += b;
        }
        self.majority_correct += other.majority_correct;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobId {
        JobId {
            version: "0".into(),
            model_sha256: "m".into(),
            model_name: "digits".into(),
            resize: false,
            data: "d".into(),
            items: 10,
            chunk_items: 5,
        }
    }

    #[test]
    fn a_renamed_model_or_resize_is_another_job() {
        assert!(job().differences(&job()).is_empty());
        let renamed = JobId {
            model_name: "digits-copy".into(),
            ..job()
        };
        assert_eq!(
            job().differences(&renamed),
            ["workers named digits/<r> vs digits-copy/<r>"]
        );
        let resized = JobId {
            resize: true,
            ..job()
        };
        assert_eq!(job().differences(&resized), ["--resize off vs on"]);
    }
}
