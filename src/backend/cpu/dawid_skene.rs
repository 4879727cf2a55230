//! Dawid-Skene EM kernels on the CPU: the twins of the E-step and M-step compute shaders.
//!
//! Everything is a function of plain slices in a data-parallel shape a WGSL kernel mirrors:
//! - **E-step**, one invocation per task: the task's log-posterior is the log-prior plus, for each
//!   of its answers, one row of the answering worker's log-confusion matrix; softmax; gold tasks
//!   are clamped to their class.
//! - **M-step**, one invocation per worker: the worker's confusion counts are the sums of the
//!   posteriors of the tasks it answered, per label given.
//!
//! The estimate (counts to parameters) and the EM driver are `aggregate::dawid_skene`'s; the
//! layouts are [`crate::backend::answers`]'s (C classes, W workers, T tasks):
//! - `log_conf[(w * C + l) * C + c]` = ln P(worker `w` answers `l` | true class `c`): a worker's
//!   confusion matrix is stored "answer-major", so one answer `(w, l)` reads one contiguous row
//!   of C values, at `row = w * C + l`. Confusion counts use the same layout.
//! - `post[t * C + c]` = P(task `t` is of class `c` | answers).
//!
//! # Precision
//! Single precision throughout, as on the GPU. `exp` and `ln` are polynomial approximations with
//! relative error below 3e-7 (WGSL's built-ins are allowed a few ulp); log-likelihoods are summed
//! in f64. Posteriors match an f64 reference within 2e-6 (tested), so a GPU twin should agree
//! with these within about 1e-5 and give the same labels except at true near-ties.
//!
//! The CPU steps ([`super::CpuDsSteps`]) use [`e_m_step_fused`]: the E-step of a block of tasks
//! immediately adds their posteriors into that block's confusion counts (the M-step's sums,
//! grouped by task instead of by worker), which saves a second pass over the answers.
//! [`e_step`] + [`m_step`] compute the same thing in the GPU's shape; tests check that they agree.

use crate::backend::answers::{TaskAnswers, NO_CLAMP};
use rayon::prelude::*;

/// Tasks per parallel block.
const TASK_BLOCK: usize = 4096;

/// e^x, relative error below 3e-7 for x in [-87, 88]; 0 below -87. Branch-free, vectorises.
/// Cody-Waite: x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor polynomial to degree 6.
#[inline(always)]
pub fn exp_approx(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    const LN2_HI: f32 = 0.693_359_4; // exact in few bits, so n * LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = if x < -87.0 { -87.0 } else { x };
    let rn = xc * std::f32::consts::LOG2_E + MAGIC;
    let n = rn - MAGIC;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let ni = (rn.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits((ni.wrapping_add(127) as u32) << 23);
    let e = p * scale;
    if x < -87.0 {
        0.0
    } else {
        e
    }
}

/// ln(z) for z > 0 (normal numbers), relative error below 1e-7.
#[inline(always)]
pub fn ln_approx(z: f32) -> f32 {
    let bits = z.to_bits() as i32;
    // z = 2^e * m with m in [sqrt(1/2), sqrt(2)).
    let off = bits.wrapping_sub(0x3f35_04f3); // bits of sqrt(1/2)
    let e = off >> 23;
    let m = f32::from_bits((bits.wrapping_sub(e << 23)) as u32);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let lnm = 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (0.2 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0)))));
    e as f32 * std::f32::consts::LN_2 + lnm
}

/// Dynamic-width scores: `log_prior + sum of the answers' log_conf rows`.
fn scores_dyn(c: usize, log_prior: &[f32], log_conf: &[f32], rows: &[u32], s: &mut [f32]) {
    let s = &mut s[..c];
    s.copy_from_slice(&log_prior[..c]);
    for &r in rows {
        let base = r as usize * c;
        for (v, l) in s.iter_mut().zip(&log_conf[base..base + c]) {
            *v += l;
        }
    }
}

/// Dynamic-width softmax into `p` (or one-hot on `clamp`); returns the log-likelihood term.
fn softmax_dyn(s: &[f32], clamp: u32, p: &mut [f32]) -> f32 {
    if clamp != NO_CLAMP {
        let g = clamp as usize;
        p.fill(0.0);
        p[g] = 1.0;
        return s[g];
    }
    let m = s.iter().fold(f32::MIN, |m, &v| if v > m { v } else { m });
    for (pk, &v) in p.iter_mut().zip(s) {
        *pk = exp_approx(v - m);
    }
    let z: f32 = p.iter().sum();
    let inv = 1.0 / z;
    p.iter_mut().for_each(|v| *v *= inv);
    m + ln_approx(z)
}

/// Fixed-width softmax over `K` classes held in `P >= K` lanes (`P` a multiple of 4; the padding
/// lanes hold a very negative score, so their exponential is 0). Written lane-wise so that the
/// max, the exponentials and the sum vectorise. Writes `p[..K]`; returns the log-likelihood term.
#[inline(always)]
fn softmax_fixed<const K: usize, const P: usize>(
    s: &mut [f32; P],
    clamp: u32,
    p: &mut [f32],
) -> f32 {
    let p = &mut p[..K];
    if clamp != NO_CLAMP {
        let g = clamp as usize;
        p.fill(0.0);
        p[g] = 1.0;
        return s[g];
    }
    let mut mv = [f32::MIN; 4];
    for k in (0..P).step_by(4) {
        for j in 0..4 {
            let v = s[k + j];
            mv[j] = if v > mv[j] { v } else { mv[j] };
        }
    }
    let m01 = if mv[1] > mv[0] { mv[1] } else { mv[0] };
    let m23 = if mv[3] > mv[2] { mv[3] } else { mv[2] };
    let m = if m23 > m01 { m23 } else { m01 };
    let mut zv = [0f32; 4];
    for k in (0..P).step_by(4) {
        for j in 0..4 {
            let e = exp_approx(s[k + j] - m);
            s[k + j] = e;
            zv[j] += e;
        }
    }
    let z = (zv[0] + zv[1]) + (zv[2] + zv[3]);
    let inv = 1.0 / z;
    for k in 0..K {
        p[k] = s[k] * inv;
    }
    m + ln_approx(z)
}

/// Score of a padding lane: exp of it minus any real score is 0.
const PAD_SCORE: f32 = -1e30;

/// One task's E-step: posterior into `p[..classes]`, returns its log-likelihood term. `K = 0`
/// is the dynamic-width path (uses `scratch`); else `K` classes in `P` lanes with `lp_pad` the
/// padded log-prior.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn e_task<const K: usize, const P: usize>(
    c: usize,
    lp_pad: &[f32; P],
    log_prior: &[f32],
    log_conf: &[f32],
    rows: &[u32],
    clamp: u32,
    p: &mut [f32],
    scratch: &mut [f32],
) -> f32 {
    if K == 0 {
        scores_dyn(c, log_prior, log_conf, rows, scratch);
        softmax_dyn(&scratch[..c], clamp, &mut p[..c])
    } else {
        let mut s = *lp_pad;
        for &r in rows {
            let base = r as usize * K;
            if let Ok(l) = <&[f32; K]>::try_from(&log_conf[base..base + K]) {
                for k in 0..K {
                    s[k] += l[k];
                }
            }
        }
        softmax_fixed::<K, P>(&mut s, clamp, p)
    }
}

fn pad_prior<const P: usize>(log_prior: &[f32]) -> [f32; P] {
    let mut lp = [PAD_SCORE; P];
    let n = P.min(log_prior.len());
    lp[..n].copy_from_slice(&log_prior[..n]);
    lp
}

/// Calls `$f::<K, P>` with `K` the class count (2..=16) and `P` it rounded up to 4 lanes, or
/// `$f::<0, 0>` (dynamic width) for other class counts.
macro_rules! dispatch_classes {
    ($c:expr, $f:ident, $($arg:expr),*) => {
        match $c {
            2 => $f::<2, 4>($($arg),*),
            3 => $f::<3, 4>($($arg),*),
            4 => $f::<4, 4>($($arg),*),
            5 => $f::<5, 8>($($arg),*),
            6 => $f::<6, 8>($($arg),*),
            7 => $f::<7, 8>($($arg),*),
            8 => $f::<8, 8>($($arg),*),
            9 => $f::<9, 12>($($arg),*),
            10 => $f::<10, 12>($($arg),*),
            11 => $f::<11, 12>($($arg),*),
            12 => $f::<12, 12>($($arg),*),
            13 => $f::<13, 16>($($arg),*),
            14 => $f::<14, 16>($($arg),*),
            15 => $f::<15, 16>($($arg),*),
            16 => $f::<16, 16>($($arg),*),
            _ => $f::<0, 0>($($arg),*),
        }
    };
}

fn e_step_k<const K: usize, const P: usize>(
    a: TaskAnswers,
    log_prior: &[f32],
    log_conf: &[f32],
    post: &mut [f32],
) -> f64 {
    let c = a.classes;
    let lp_pad = pad_prior::<P>(log_prior);
    let lls = post
        .par_chunks_mut(TASK_BLOCK * c)
        .enumerate()
        .map(|(b, out)| {
            let mut s = vec![0f32; c];
            let mut ll = 0f64;
            let t0 = b * TASK_BLOCK;
            for (i, p) in out.chunks_exact_mut(c).enumerate() {
                let t = t0 + i;
                let rows = &a.row[a.start[t] as usize..a.start[t + 1] as usize];
                ll += e_task::<K, P>(c, &lp_pad, log_prior, log_conf, rows, a.clamp[t], p, &mut s)
                    as f64;
            }
            ll
        });
    crate::ordered_sum::sum_pieces(lls)
}

/// E-step: writes every task's posterior into `post` (`tasks * classes`) and returns the
/// log-likelihood of the answers (gold tasks: the log joint with their class).
pub fn e_step(a: TaskAnswers, log_prior: &[f32], log_conf: &[f32], post: &mut [f32]) -> f64 {
    assert_eq!(post.len(), a.tasks() * a.classes, "posterior buffer size");
    dispatch_classes!(a.classes, e_step_k, a, log_prior, log_conf, post)
}

/// M-step sums, grouped by worker (the GPU's shape): `counts[(w * C + l) * C + c]` = sum over
/// the worker's answers with label `l` of `post[task * C + c]`. Overwrites `counts`.
pub fn m_step(
    classes: usize,
    worker_start: &[u32],
    worker_task: &[u32],
    worker_label: &[u32],
    post: &[f32],
    counts: &mut [f32],
) {
    let c = classes;
    counts
        .par_chunks_mut(c * c)
        .enumerate()
        .for_each(|(w, cw)| {
            cw.fill(0.0);
            let (s, e) = (worker_start[w] as usize, worker_start[w + 1] as usize);
            for i in s..e {
                let (t, l) = (worker_task[i] as usize, worker_label[i] as usize);
                let p = &post[t * c..t * c + c];
                let dst = &mut cw[l * c..l * c + c];
                for k in 0..c {
                    dst[k] += p[k];
                }
            }
        });
}

/// Sum of posteriors per class (the class-prior counts).
pub fn class_totals(classes: usize, post: &[f32]) -> Vec<f64> {
    let tables = post.par_chunks(TASK_BLOCK * classes).map(|blk| {
        let mut tot = vec![0f64; classes];
        for p in blk.chunks_exact(classes) {
            for (t, &v) in tot.iter_mut().zip(p) {
                *t += v as f64;
            }
        }
        tot
    });
    crate::ordered_sum::add_tables(tables, classes)
}

/// Counts (by answer row) and class totals accumulated over blocks of tasks.
struct Acc {
    counts: Vec<f32>,
    totals: Vec<f64>,
    ll: f64,
}

/// Blocks of tasks for the fused step (each owns a copy of the counts), summed in order: a
/// fixed count, not one by the thread count, so that every machine computes the same sums.
fn blocks(tasks: usize) -> usize {
    const BLOCKS: usize = 16;
    BLOCKS.min(tasks.div_ceil(TASK_BLOCK)).max(1)
}

fn reduce_acc(parts: Vec<Acc>, counts: &mut [f32], totals: &mut [f64]) -> f64 {
    counts.fill(0.0);
    totals.fill(0.0);
    let mut ll = 0.0;
    // Sum the per-block count arrays in parallel over slices of the counts.
    let parts_ref = &parts;
    counts
        .par_chunks_mut(1 << 14)
        .enumerate()
        .for_each(|(i, dst)| {
            let (o, n) = (i << 14, dst.len());
            for p in parts_ref {
                for (d, s) in dst.iter_mut().zip(&p.counts[o..o + n]) {
                    *d += s;
                }
            }
        });
    for p in &parts {
        ll += p.ll;
        totals.iter_mut().zip(&p.totals).for_each(|(x, y)| *x += y);
    }
    ll
}

fn flush(tot: &mut [f32], totals: &mut [f64]) {
    for (t, v) in totals.iter_mut().zip(tot.iter_mut()) {
        *t += *v as f64;
        *v = 0.0;
    }
}

fn fused_k<const K: usize, const P: usize>(
    a: TaskAnswers,
    log_prior: Option<(&[f32], &[f32])>,
    post: &mut [f32],
    counts: &mut [f32],
    totals: &mut [f64],
) -> f64 {
    let c = a.classes;
    let tasks = a.tasks();
    let nb = blocks(tasks);
    let per = tasks.div_ceil(nb).max(1);
    let ncounts = counts.len();
    let lp_pad = pad_prior::<P>(log_prior.map(|(lp, _)| lp).unwrap_or(&[]));
    let wide = Wide::detect();
    let parts: Vec<Acc> = post
        .par_chunks_mut(per * c)
        .enumerate()
        .map(|(b, out)| {
            let blk = Block {
                a,
                log_prior,
                lp_pad: &lp_pad,
                t0: b * per,
                ncounts,
            };
            blk.run_on::<K, P>(wide, out)
        })
        .collect();
    reduce_acc(parts, counts, totals)
}

/// The instruction set the fused step is compiled for: the same operations in the same order
/// on every choice (Rust never fuses a multiply and an add), so the results are bit-identical;
/// wider registers only run the lanes of a task's softmax and its count rows together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    not(target_arch = "x86_64"),
    expect(dead_code, reason = "the wide variants exist on x86-64 only")
)]
enum Wide {
    Avx512,
    Avx2,
    Baseline,
}

impl Wide {
    fn detect() -> Wide {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") {
                return Wide::Avx512;
            }
            if is_x86_feature_detected!("avx2") {
                return Wide::Avx2;
            }
        }
        Wide::Baseline
    }
}

/// One block of tasks of the fused step.
struct Block<'a> {
    a: TaskAnswers<'a>,
    log_prior: Option<(&'a [f32], &'a [f32])>,
    lp_pad: &'a [f32],
    t0: usize,
    ncounts: usize,
}

impl Block<'_> {
    fn run_on<const K: usize, const P: usize>(&self, wide: Wide, out: &mut [f32]) -> Acc {
        #[cfg(target_arch = "x86_64")]
        match wide {
            // SAFETY: `Wide::detect` found these features on this CPU.
            Wide::Avx512 => return unsafe { self.run_avx512::<K, P>(out) },
            Wide::Avx2 => return unsafe { self.run_avx2::<K, P>(out) },
            Wide::Baseline => {}
        }
        let _ = wide;
        self.run::<K, P>(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn run_avx512<const K: usize, const P: usize>(&self, out: &mut [f32]) -> Acc {
        self.run::<K, P>(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2<const K: usize, const P: usize>(&self, out: &mut [f32]) -> Acc {
        self.run::<K, P>(out)
    }

    /// The E-step of the block's tasks (when a model is given) and their posteriors added into
    /// the block's own copy of the counts.
    #[inline(always)]
    fn run<const K: usize, const P: usize>(&self, out: &mut [f32]) -> Acc {
        let c = self.a.classes;
        let n = if K == 0 { c } else { K };
        let (start, row, clamp) = (self.a.start, self.a.row, self.a.clamp);
        let mut lp_pad = [PAD_SCORE; P];
        lp_pad.copy_from_slice(&self.lp_pad[..P]);
        let mut acc = Acc {
            counts: vec![0f32; self.ncounts],
            totals: vec![0f64; c],
            ll: 0.0,
        };
        let mut s = vec![0f32; c];
        // Class totals: summed in f32 over runs of tasks, then added in f64.
        let mut tot = vec![0f32; c];
        for (i, p) in out.chunks_exact_mut(c).enumerate() {
            let t = self.t0 + i;
            let rows = &row[start[t] as usize..start[t + 1] as usize];
            if let Some((lp, lc)) = self.log_prior {
                acc.ll += e_task::<K, P>(c, &lp_pad, lp, lc, rows, clamp[t], p, &mut s) as f64;
            }
            let p = &p[..n];
            let tot = &mut tot[..n];
            for k in 0..n {
                tot[k] += p[k];
            }
            if i % 1024 == 1023 {
                flush(tot, &mut acc.totals);
            }
            if K > 0 {
                if let Ok(p) = <&[f32; K]>::try_from(p) {
                    for &r in rows {
                        let base = r as usize * K;
                        if let Ok(dst) = <&mut [f32; K]>::try_from(&mut acc.counts[base..base + K])
                        {
                            for k in 0..K {
                                dst[k] += p[k];
                            }
                        }
                    }
                }
            } else {
                for &r in rows {
                    let base = r as usize * n;
                    let dst = &mut acc.counts[base..base + n];
                    for k in 0..n {
                        dst[k] += p[k];
                    }
                }
            }
        }
        flush(&mut tot, &mut acc.totals);
        acc
    }
}

/// E-step and the M-step's sums in one pass over tasks: writes posteriors into `post`, the
/// confusion counts into `counts` (`workers * C * C`, same layout as `log_conf`), the class
/// totals into `totals`; returns the log-likelihood. Equal to [`e_step`] then [`m_step`] and
/// [`class_totals`] up to float summation order.
pub fn e_m_step_fused(
    a: TaskAnswers,
    log_prior: &[f32],
    log_conf: &[f32],
    post: &mut [f32],
    counts: &mut [f32],
    totals: &mut [f64],
) -> f64 {
    assert_eq!(post.len(), a.tasks() * a.classes, "posterior buffer size");
    dispatch_classes!(
        a.classes,
        fused_k,
        a,
        Some((log_prior, log_conf)),
        post,
        counts,
        totals
    )
}

/// The M-step's sums from given posteriors, grouped by task (used for the first M-step, from the
/// majority-vote initialisation).
pub fn accumulate(a: TaskAnswers, post: &mut [f32], counts: &mut [f32], totals: &mut [f64]) {
    dispatch_classes!(a.classes, fused_k, a, None, post, counts, totals);
}

/// Floats the fused step allocates for its per-block copies of the counts.
pub fn fused_scratch(classes: usize, workers: usize, tasks: usize) -> usize {
    blocks(tasks) * workers * classes * classes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_ln_are_accurate() {
        let mut worst = 0f64;
        let mut x = -86.0f32;
        while x <= 0.0 {
            let (a, b) = (exp_approx(x) as f64, (x as f64).exp());
            worst = worst.max(((a - b) / b).abs());
            x += 0.0137;
        }
        assert!(worst < 3e-7, "exp {worst}");
        assert_eq!(exp_approx(-200.0), 0.0);
        assert_eq!(exp_approx(f32::NEG_INFINITY), 0.0);
        let mut worst = 0f64;
        let mut z = 1e-30f32;
        while z < 1e30 {
            let (a, b) = (ln_approx(z) as f64, (z as f64).ln());
            worst = worst.max((a - b).abs() / b.abs().max(1.0));
            z *= 1.0123;
        }
        assert!(worst < 3e-7, "ln {worst}");
    }

    /// A small random problem: 5 classes, 7 workers, tasks with 1..4 answers.
    type Problem = (
        Vec<u32>,
        Vec<u32>,
        Vec<u32>,
        Vec<u32>,
        Vec<u32>,
        Vec<f32>,
        Vec<f32>,
    );

    fn problem(c: usize) -> Problem {
        let (tasks, workers) = (10_000usize, 7usize);
        let mut rng = crate::data::synth::Rng::new(3);
        let mut start = vec![0u32];
        let (mut tw, mut tl) = (vec![], vec![]);
        for _ in 0..tasks {
            let k = 1 + rng.below(4) as usize;
            for _ in 0..k {
                tw.push(rng.below(workers as u64) as u32);
                tl.push(rng.below(c as u64) as u32);
            }
            start.push(tw.len() as u32);
        }
        let row: Vec<u32> = tw.iter().zip(&tl).map(|(w, l)| w * c as u32 + l).collect();
        let clamp: Vec<u32> = (0..tasks)
            .map(|t| {
                if t % 10 == 0 {
                    (t % c) as u32
                } else {
                    NO_CLAMP
                }
            })
            .collect();
        let lp: Vec<f32> = (0..c).map(|k| -(1.0 + k as f32 * 0.1)).collect();
        let lc: Vec<f32> = (0..workers * c * c)
            .map(|_| -rng.range(0.05, 4.0))
            .collect();
        (start, row, tw, tl, clamp, lp, lc)
    }

    #[test]
    fn fused_equals_separate_steps() {
        for c in [2usize, 5, 10, 11] {
            let (start, row, tw, tl, clamp, lp, lc) = problem(c);
            let a = TaskAnswers {
                classes: c,
                start: &start,
                row: &row,
                clamp: &clamp,
            };
            let t = a.tasks();
            let mut post = vec![0f32; t * c];
            let ll = e_step(a, &lp, &lc, &mut post);
            // By worker.
            let task_of: Vec<u32> = (0..t as u32)
                .flat_map(|i| {
                    std::iter::repeat_n(i, (start[i as usize + 1] - start[i as usize]) as usize)
                })
                .collect();
            let (ws, order) = crate::data::votes::group_by(&tw, 7);
            let wt: Vec<u32> = order.iter().map(|&i| task_of[i as usize]).collect();
            let wl: Vec<u32> = order.iter().map(|&i| tl[i as usize]).collect();
            let mut counts = vec![0f32; 7 * c * c];
            m_step(c, &ws, &wt, &wl, &post, &mut counts);
            let totals = class_totals(c, &post);

            let mut post2 = vec![0f32; t * c];
            let mut counts2 = vec![0f32; 7 * c * c];
            let mut totals2 = vec![0f64; c];
            let ll2 = e_m_step_fused(a, &lp, &lc, &mut post2, &mut counts2, &mut totals2);
            assert!((ll - ll2).abs() < 1e-6 * ll.abs(), "{ll} {ll2}");
            assert_eq!(post, post2);
            for (x, y) in counts.iter().zip(&counts2) {
                assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} {y}");
            }
            for (x, y) in totals.iter().zip(&totals2) {
                assert!((x - y).abs() < 1e-6 * x.abs().max(1.0));
            }
            // Posteriors sum to one, clamped tasks are one-hot, and match an f64 reference.
            for ti in 0..t {
                let p = &post[ti * c..ti * c + c];
                assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                if clamp[ti] != NO_CLAMP {
                    assert_eq!(p[clamp[ti] as usize], 1.0);
                } else {
                    let mut s: Vec<f64> = lp.iter().map(|&v| v as f64).collect();
                    for i in start[ti]..start[ti + 1] {
                        let r = row[i as usize] as usize;
                        for k in 0..c {
                            s[k] += lc[r * c + k] as f64;
                        }
                    }
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                    for k in 0..c {
                        assert!(((s[k] - m).exp() / z - p[k] as f64).abs() < 2e-6);
                    }
                }
            }
        }
    }
}
