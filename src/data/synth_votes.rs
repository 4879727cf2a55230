//! Simulated crowds for tests and benchmarks: workers of varied skill answer tasks of known class.
//!
//! - **Classes** have unequal priors (weights drawn in [0.5, 1.5)).
//! - **Workers**: a fraction `spammers` (default 10%) are spammers: half answer uniformly at
//!   random, half always give one class. The others have a confusion matrix: per true class, the
//!   right answer with probability `a_c` (the worker's accuracy, drawn in [0.5, 0.95), varied per
//!   class by +-0.1), and the error mass split between one class it mistakes this one for (half)
//!   and the other classes (evenly).
//! - **Tasks**: each gets `per_task` distinct workers drawn uniformly.
//! - **Determinism**: worker `w` depends only on `(seed, w)` and task `t` only on `(seed, t)`, so
//!   the output is the same whatever the thread count. Tasks are named `0..N`, workers `w0..wW`,
//!   classes `0..C`.

use super::synth::Rng;
use super::votes::{write_rows, VoteTable};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::Path;

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrowdConfig {
    pub tasks: usize,
    pub workers: usize,
    pub per_task: usize,
    pub classes: usize,
    pub seed: u64,
    /// Fraction of workers who are spammers.
    pub spammers: f32,
}

impl CrowdConfig {
    pub fn new(tasks: usize, workers: usize, per_task: usize, classes: usize, seed: u64) -> Self {
        CrowdConfig {
            tasks,
            workers,
            per_task,
            classes,
            seed,
            spammers: 0.1,
        }
    }

    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.tasks == 0 || self.workers == 0 || self.per_task == 0 {
            return bad("tasks, workers and answers per task must be at least 1".into());
        }
        if self.classes < 2 || self.classes > 1 << 16 {
            return bad(format!("classes must be 2..=65536, not {}", self.classes));
        }
        if self.per_task > self.workers {
            return bad(format!(
                "{} answers per task need at least as many workers (got {})",
                self.per_task, self.workers
            ));
        }
        if (self.tasks as u128) * (self.per_task as u128) >= u32::MAX as u128 {
            return bad("tasks x answers per task must stay below 2^32".into());
        }
        if self.workers >= u32::MAX as usize {
            return bad("too many workers".into());
        }
        if (self.workers as u128) * (self.classes as u128).pow(2) > 1 << 30 {
            return bad(format!(
                "{} workers x {} classes^2 confusion entries is too many to simulate",
                self.workers, self.classes
            ));
        }
        if !(0.0..=1.0).contains(&self.spammers) {
            return bad("the spammer fraction must be in [0, 1]".into());
        }
        Ok(())
    }
}

/// Kinds of simulated worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerKind {
    Skilled,
    RandomSpammer,
    /// Always answers this class.
    ConstantSpammer(u32),
}

/// A simulated crowd's answers, in columns: answer `t * per_task + j` is on task `t`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynthCrowd {
    pub config: Option<CrowdConfig>,
    /// True class per task.
    pub truth: Vec<u32>,
    pub worker: Vec<u32>,
    pub label: Vec<u32>,
    pub kinds: Vec<WorkerKind>,
    /// Per worker: the probability its answer is right, on a task drawn from the class priors.
    pub accuracy: Vec<f32>,
}

fn mix(seed: u64, kind: u64, i: u64) -> Rng {
    let mut r = Rng::new(
        seed ^ kind.wrapping_mul(0xA076_1D64_78BD_642F) ^ i.wrapping_mul(0xE703_7ED1_A0B4_28DB),
    );
    r.next_u64();
    r
}

/// Cumulative distribution tables: `cum[(w * C + truth) * C + answer]`.
fn workers(cfg: &CrowdConfig, prior: &[f32]) -> (Vec<f32>, Vec<WorkerKind>, Vec<f32>) {
    let c = cfg.classes;
    let rows: Vec<(Vec<f32>, WorkerKind, f32)> = (0..cfg.workers)
        .into_par_iter()
        .map(|w| {
            let mut rng = mix(cfg.seed, 1, w as u64);
            let mut m = vec![0f32; c * c];
            let u = rng.uniform();
            let kind = if u < cfg.spammers * 0.5 {
                WorkerKind::RandomSpammer
            } else if u < cfg.spammers {
                WorkerKind::ConstantSpammer(rng.below(c as u64) as u32)
            } else {
                WorkerKind::Skilled
            };
            match kind {
                WorkerKind::RandomSpammer => m.fill(1.0 / c as f32),
                WorkerKind::ConstantSpammer(k) => {
                    for t in 0..c {
                        m[t * c + k as usize] = 1.0;
                    }
                }
                WorkerKind::Skilled => {
                    let a = rng.range(0.5, 0.95);
                    for t in 0..c {
                        let row = &mut m[t * c..t * c + c];
                        let at = (a + rng.range(-0.1, 0.1)).clamp(1.0 / c as f32, 0.99);
                        let err = 1.0 - at;
                        let mut confused = rng.below(c as u64 - 1) as usize;
                        if confused >= t {
                            confused += 1;
                        }
                        let spread = if c > 2 {
                            err * 0.5 / (c - 2) as f32
                        } else {
                            0.0
                        };
                        for (k, v) in row.iter_mut().enumerate() {
                            *v = if k == t {
                                at
                            } else if k == confused {
                                if c > 2 {
                                    err * 0.5
                                } else {
                                    err
                                }
                            } else {
                                spread
                            };
                        }
                    }
                }
            }
            let acc: f32 = (0..c).map(|t| prior[t] * m[t * c + t]).sum();
            for t in 0..c {
                let mut s = 0.0;
                for v in &mut m[t * c..t * c + c] {
                    s += *v;
                    *v = s;
                }
                m[t * c + c - 1] = f32::INFINITY; // always caught by the last class
            }
            (m, kind, acc)
        })
        .collect();
    let mut cum = Vec::with_capacity(cfg.workers * c * c);
    let mut kinds = Vec::with_capacity(cfg.workers);
    let mut acc = Vec::with_capacity(cfg.workers);
    for (m, k, a) in rows {
        cum.extend_from_slice(&m);
        kinds.push(k);
        acc.push(a);
    }
    (cum, kinds, acc)
}

#[inline]
fn draw(cum: &[f32], u: f32) -> u32 {
    cum.iter().position(|&v| u < v).unwrap_or(cum.len() - 1) as u32
}

/// Simulates the crowd described by `cfg`.
pub fn generate(cfg: &CrowdConfig) -> Result<SynthCrowd> {
    cfg.check()?;
    let (c, k, nw) = (cfg.classes, cfg.per_task, cfg.workers);
    let mut prng = mix(cfg.seed, 0, 0);
    let weights: Vec<f32> = (0..c).map(|_| prng.range(0.5, 1.5)).collect();
    let total: f32 = weights.iter().sum();
    let prior: Vec<f32> = weights.iter().map(|w| w / total).collect();
    let mut prior_cum = Vec::with_capacity(c);
    let mut s = 0.0;
    for p in &prior {
        s += p;
        prior_cum.push(s);
    }
    prior_cum[c - 1] = f32::INFINITY;
    let (cum, kinds, accuracy) = workers(cfg, &prior);

    let mut truth = vec![0u32; cfg.tasks];
    let mut worker = vec![0u32; cfg.tasks * k];
    let mut label = vec![0u32; cfg.tasks * k];
    const BLOCK: usize = 8192;
    truth
        .par_chunks_mut(BLOCK)
        .zip(worker.par_chunks_mut(BLOCK * k))
        .zip(label.par_chunks_mut(BLOCK * k))
        .enumerate()
        .for_each(|(b, ((tr, wo), la))| {
            let mut perm: Vec<u32> = Vec::new();
            for (i, tt) in tr.iter_mut().enumerate() {
                let t = b * BLOCK + i;
                let mut rng = mix(cfg.seed, 2, t as u64);
                let class = draw(&prior_cum, rng.uniform());
                *tt = class;
                let ws = &mut wo[i * k..i * k + k];
                if k * 4 <= nw {
                    // Rejection: few answers among many workers.
                    for j in 0..k {
                        loop {
                            let w = rng.below(nw as u64) as u32;
                            if !ws[..j].contains(&w) {
                                ws[j] = w;
                                break;
                            }
                        }
                    }
                } else {
                    // Partial Fisher-Yates.
                    if perm.len() != nw {
                        perm = (0..nw as u32).collect();
                    }
                    for j in 0..k {
                        let r = j + rng.below((nw - j) as u64) as usize;
                        perm.swap(j, r);
                        ws[j] = perm[j];
                    }
                }
                for j in 0..k {
                    let w = ws[j] as usize;
                    let row = &cum[(w * c + class as usize) * c..][..c];
                    la[i * k + j] = draw(row, rng.uniform());
                }
            }
        });
    Ok(SynthCrowd {
        config: Some(*cfg),
        truth,
        worker,
        label,
        kinds,
        accuracy,
    })
}

impl SynthCrowd {
    pub fn per_task(&self) -> usize {
        self.worker.len() / self.truth.len().max(1)
    }

    /// Writes `task,worker,label` atomically (as Parquet when the name ends in `.parquet`).
    pub fn write_votes(&self, path: &Path) -> Result<()> {
        if crate::data::parquet::is_parquet(path) {
            // No confidence column, as in the CSV.
            let mut table = self.to_table();
            table.confidence.fill(f32::NAN);
            return crate::data::votes::write_votes(path, &table);
        }
        let k = self.per_task();
        write_rows(path, "task,worker,label\n", self.worker.len(), |i, buf| {
            let mut num = itoa::Buffer::new();
            buf.extend_from_slice(num.format(i / k.max(1)).as_bytes());
            buf.extend_from_slice(b",w");
            buf.extend_from_slice(num.format(self.worker[i]).as_bytes());
            buf.push(b',');
            buf.extend_from_slice(num.format(self.label[i]).as_bytes());
            buf.push(b'\n');
        })
    }

    /// Writes `task,label` (every task's true class) atomically.
    pub fn write_gold(&self, path: &Path) -> Result<()> {
        write_rows(path, "task,label\n", self.truth.len(), |t, buf| {
            let mut num = itoa::Buffer::new();
            buf.extend_from_slice(num.format(t).as_bytes());
            buf.push(b',');
            buf.extend_from_slice(num.format(self.truth[t]).as_bytes());
            buf.push(b'\n');
        })
    }

    /// As a vote table (ids as written: task `t` is `"t"`, worker `w` is `"w<w>"`, class `c` is
    /// `"c"`). Tasks and workers keep their simulated ids, so ids are dense in numeric order and
    /// workers who never answered still have a name.
    pub fn to_table(&self) -> VoteTable {
        let k = self.per_task().max(1);
        let c = self.config.map(|c| c.classes).unwrap_or(0);
        VoteTable {
            task: (0..self.worker.len()).map(|i| (i / k) as u32).collect(),
            worker: self.worker.clone(),
            label: self.label.clone(),
            confidence: vec![1.0; self.worker.len()],
            tasks: (0..self.truth.len()).map(|t| t.to_string()).collect(),
            workers: (0..self.kinds.len()).map(|w| format!("w{w}")).collect(),
            classes: (0..c).map(|c| c.to_string()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let cfg = CrowdConfig::new(20_000, 50, 5, 4, 9);
        let a = generate(&cfg).unwrap();
        let b = generate(&cfg).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.worker.len(), 100_000);
        for t in 0..a.truth.len() {
            let ws = &a.worker[t * 5..t * 5 + 5];
            for j in 0..5 {
                assert!(!ws[..j].contains(&ws[j]));
            }
        }
        assert!(a.label.iter().all(|&l| l < 4));
        // Skilled workers are right more often than chance.
        let right = (0..a.label.len())
            .filter(|&i| a.label[i] == a.truth[i / 5])
            .count();
        assert!(right as f64 / a.label.len() as f64 > 0.55);
        assert!(a.kinds.iter().any(|k| *k != WorkerKind::Skilled));
        // All workers answer when per_task is close to workers.
        let all = generate(&CrowdConfig::new(10, 5, 5, 3, 1)).unwrap();
        for t in 0..10 {
            let mut ws = all.worker[t * 5..t * 5 + 5].to_vec();
            ws.sort();
            assert_eq!(ws, vec![0, 1, 2, 3, 4]);
        }
        assert!(generate(&CrowdConfig::new(10, 3, 5, 3, 1)).is_err());
    }
}
