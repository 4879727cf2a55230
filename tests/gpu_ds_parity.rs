//! Dawid-Skene on the GPU (WGSL kernels) against the CPU twins, on the shared crowd sets and a
//! synthetic crowd of 100,000 tasks.
//!
//! Every test opens any adapter, the software one (lavapipe) included. With none, the test
//! prints why it is skipped and passes, unless MICROTASK_REQUIRE_GPU=1 (CI) makes it fail. The
//! GPU backend is built with `OnDeviceError::Fail`, so a device problem fails the test instead
//! of quietly running the CPU twins.
//!
//! Stated tolerances:
//! - **Labels** are equal except at true near-ties: tasks whose top two CPU posteriors are
//!   within 1e-6 of each other, where an ulp can flip the argmax. Those are counted, printed,
//!   and must stay rare.
//! - **Posteriors** agree within 1e-5 (absolute) after one E-step from the same parameters (on
//!   lavapipe they are bit-identical: same polynomials, same summation order), and within 1e-4
//!   after 20 EM iterations. The fit's M-step sums the same numbers in another order (the CPU's
//!   fused step adds per-block copies of the counts, the GPU sums by worker), and EM carries
//!   the last-bit differences on: the CPU against itself, with one thread and with all of them,
//!   differs by the same order (printed beside the GPU's figure).
//! - **Log-likelihoods** agree within 1e-7 relative after one E-step, 1e-6 after a fit;
//!   **confusion counts** within 1e-5 relative (or absolute below 1); **class totals** within
//!   1e-6 relative.

mod common;

use common::shared_data;
use microtask::aggregate::{self, DsOptions, Method, Options};
use microtask::backend::cpu::dawid_skene as ds;
use microtask::backend::cpu::CpuBackend;
use microtask::backend::gpu::dawid_skene::{self as gds, DsSession};
use microtask::backend::gpu::testing::{backend_or_skip, context_or_skip};
use microtask::backend::gpu::{GpuBackend, GpuOptions, OnDeviceError};
use microtask::backend::{ds_by_worker, Backend, TaskAnswers, NO_CLAMP};
use microtask::data::synth::Rng;
use microtask::data::synth_votes::{generate, CrowdConfig};
use microtask::data::votes::{read_gold, read_votes, Gold, VoteTable};
use std::time::{Duration, Instant};

/// Posteriors after one E-step from the same parameters.
const POST_TOL: f32 = 1e-5;
/// Posteriors after 20 EM iterations.
const FIT_POST_TOL: f32 = 1e-4;
const TIE_GAP: f32 = 1e-6;
const CROWD_SETS: [&str; 5] = ["rte", "temp", "dog", "product", "sentiment"];

fn gpu_or_skip(test: &str) -> Option<GpuBackend> {
    backend_or_skip(
        test,
        GpuOptions {
            on_device_error: OnDeviceError::Fail,
            ..GpuOptions::default()
        },
    )
}

fn crowd_set(name: &str) -> (VoteTable, Gold) {
    let dir = shared_data().join("crowd").join(name);
    let votes = read_votes(&[dir.join("votes.csv")]).unwrap().table;
    let gold = read_gold(&dir.join("gold.csv"), &votes).unwrap();
    (votes, gold)
}

fn synthetic() -> VoteTable {
    generate(&CrowdConfig::new(100_000, 1000, 5, 10, 11))
        .unwrap()
        .to_table()
}

/// The gap between the two largest values of `p`.
fn top_gap(p: &[f32]) -> f32 {
    let (mut a, mut b) = (f32::MIN, f32::MIN);
    for &v in p {
        if v > a {
            b = a;
            a = v;
        } else if v > b {
            b = v;
        }
    }
    a - b
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, |m, d| if d > m { d } else { m })
}

/// Answers grouped by task with every `clamp_every`-th task clamped to a class (0 = none).
struct Problem {
    classes: usize,
    workers: usize,
    start: Vec<u32>,
    row: Vec<u32>,
    clamp: Vec<u32>,
}

impl Problem {
    fn of(votes: &VoteTable, clamp_every: usize) -> Problem {
        let c = votes.n_classes();
        let (start, order) = votes.by_task();
        let row = order
            .iter()
            .map(|&i| votes.worker[i as usize] * c as u32 + votes.label[i as usize])
            .collect();
        let clamp = (0..votes.n_tasks())
            .map(|t| {
                if clamp_every > 0 && t % clamp_every == 0 {
                    (t % c) as u32
                } else {
                    NO_CLAMP
                }
            })
            .collect();
        Problem {
            classes: c,
            workers: votes.n_workers(),
            start,
            row,
            clamp,
        }
    }

    fn answers(&self) -> TaskAnswers<'_> {
        TaskAnswers {
            classes: self.classes,
            start: &self.start,
            row: &self.row,
            clamp: &self.clamp,
        }
    }
}

/// Random parameters: log-probabilities that are not normalised (the kernels do not care),
/// spread wide enough to make confident and uncertain tasks.
fn random_model(c: usize, w: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let lp = (0..c).map(|_| -rng.range(0.5, 3.0)).collect();
    let lc = (0..w * c * c).map(|_| -rng.range(0.01, 5.0)).collect();
    (lp, lc)
}

/// One E-step and one M-step on both sides from the same inputs; returns a report line.
fn step_parity(ctx: &microtask::backend::gpu::GpuContext, name: &str, p: &Problem) -> String {
    let a = p.answers();
    let (c, w, t) = (p.classes, p.workers, a.tasks());
    let (lp, lc) = random_model(c, w, 7 + c as u64);
    // E-step.
    let mut cpu_post = vec![0f32; t * c];
    let cpu_ll = ds::e_step(a, &lp, &lc, &mut cpu_post);
    let s = DsSession::new(ctx, a, w, Duration::from_secs(300)).unwrap();
    let gpu_ll = s.e_step(&lp, &lc).unwrap();
    let gpu_post = s.posteriors().unwrap();
    let d = max_abs_diff(&cpu_post, &gpu_post);
    let mut flips = 0;
    let mut ties = 0;
    for (pc, pg) in cpu_post.chunks_exact(c).zip(gpu_post.chunks_exact(c)) {
        if aggregate::majority::argmax(pc) != aggregate::majority::argmax(pg) {
            if top_gap(pc) <= TIE_GAP {
                ties += 1;
            } else {
                flips += 1;
            }
        }
    }
    let ll_rel = ((cpu_ll - gpu_ll) / cpu_ll).abs();
    assert!(d <= POST_TOL, "{name}: E-step posteriors differ by {d}");
    assert_eq!(flips, 0, "{name}: E-step labels differ away from ties");
    assert!(
        ll_rel < 1e-7,
        "{name}: E-step log-likelihood {cpu_ll} vs {gpu_ll}"
    );
    for (ti, &g) in p.clamp.iter().enumerate() {
        if g != NO_CLAMP {
            assert_eq!(gpu_post[ti * c + g as usize], 1.0, "{name}: clamp of {ti}");
        }
    }
    // M-step from the CPU's posteriors.
    let (ws, wt, wl) = ds_by_worker(a, w);
    let mut cpu_counts = vec![0f32; w * c * c];
    ds::m_step(c, &ws, &wt, &wl, &cpu_post, &mut cpu_counts);
    let cpu_totals = ds::class_totals(c, &cpu_post);
    s.set_posteriors(&cpu_post).unwrap();
    let mut gpu_counts = vec![0f32; w * c * c];
    let mut gpu_totals = vec![0f64; c];
    s.m_sums(&mut gpu_counts, &mut gpu_totals).unwrap();
    let mut worst_count = 0f32;
    for (x, y) in cpu_counts.iter().zip(&gpu_counts) {
        worst_count = worst_count.max((x - y).abs() / x.abs().max(1.0));
    }
    assert!(
        worst_count <= 1e-5,
        "{name}: M-step counts differ by {worst_count}"
    );
    for (x, y) in cpu_totals.iter().zip(&gpu_totals) {
        assert!(
            (x - y).abs() <= 1e-6 * x.abs().max(1.0),
            "{name}: class totals {x} vs {y}"
        );
    }
    format!(
        "{name:12} {t:6} tasks {c:2} classes: E-step max |dpost| {d:.1e}, ll rel {ll_rel:.1e}, \
         label flips at ties {ties}; M-step counts max rel {worst_count:.1e}\n"
    )
}

#[test]
fn one_e_step_and_one_m_step_match_the_cpu_twins() {
    let Some(ctx) = context_or_skip("one_e_step_and_one_m_step_match_the_cpu_twins") else {
        return;
    };
    let mut report = String::new();
    for name in CROWD_SETS {
        let (votes, _) = crowd_set(name);
        report += &step_parity(&ctx, name, &Problem::of(&votes, 7));
    }
    // Class counts on both sides of the CPU's fixed-width paths (2..=16 classes in 4-lane
    // blocks) and its dynamic one (17).
    for (classes, workers) in [(2, 30), (3, 30), (10, 50), (17, 20)] {
        let votes = generate(&CrowdConfig::new(3000, workers, 4, classes, 5))
            .unwrap()
            .to_table();
        report += &step_parity(
            &ctx,
            &format!("synth c={classes}"),
            &Problem::of(&votes, 10),
        );
    }
    eprint!("{report}");
}

struct Fit {
    labels_differ: usize,
    near_ties: usize,
    max_post_diff: f32,
    /// The CPU fit with one thread against the CPU fit with all threads.
    cpu_self_diff: f32,
    cpu_per_iter: Duration,
    gpu_per_iter: Duration,
}

/// DS on CPU and GPU with the same options (20 iterations, tol 0) through `aggregate`.
fn fit_parity(gpu: &GpuBackend, name: &str, votes: &VoteTable, gold: Option<&Gold>) -> Fit {
    let opts = Options {
        method: Method::Ds,
        ds: DsOptions {
            max_iters: 20,
            tol: 0.0,
            ..DsOptions::default()
        },
        posteriors: true,
    };
    let cpu_backend = CpuBackend::new("test");
    let t = Instant::now();
    let cpu = aggregate::aggregate(votes, gold, &opts, &cpu_backend).unwrap();
    let cpu_time = t.elapsed();
    let sessions = gds::sessions_on_this_thread();
    let t = Instant::now();
    let g = aggregate::aggregate(votes, gold, &opts, gpu as &dyn Backend).unwrap();
    let gpu_time = t.elapsed();
    assert_eq!(
        gds::sessions_on_this_thread(),
        sessions + 1,
        "{name}: the GPU backend's fit did not run on the device"
    );
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| aggregate::aggregate(votes, gold, &opts, &cpu_backend).unwrap());
    assert_eq!(cpu.iterations, 20, "{name}");
    assert_eq!(g.iterations, 20, "{name}");
    let c = votes.n_classes();
    let (pc, pg) = (cpu.posteriors.unwrap(), g.posteriors.unwrap());
    let max_post_diff = max_abs_diff(&pc, &pg);
    let cpu_self_diff = max_abs_diff(&pc, one_thread.posteriors.as_deref().unwrap());
    let (mut labels_differ, mut near_ties) = (0, 0);
    for (t, (lc, lg)) in cpu.labels.iter().zip(&g.labels).enumerate() {
        assert_eq!(lc.answers, lg.answers);
        if lc.label != lg.label {
            if top_gap(&pc[t * c..t * c + c]) <= TIE_GAP {
                near_ties += 1;
            } else {
                labels_differ += 1;
            }
        }
    }
    let (llc, llg) = (cpu.log_likelihood.unwrap(), g.log_likelihood.unwrap());
    assert!(
        ((llc - llg) / llc).abs() < 1e-6,
        "{name}: log-likelihood {llc} vs {llg}"
    );
    Fit {
        labels_differ,
        near_ties,
        max_post_diff,
        cpu_self_diff,
        cpu_per_iter: cpu_time / 20,
        gpu_per_iter: gpu_time / 20,
    }
}

fn check_fit(name: &str, f: &Fit, report: &mut String, failures: &mut Vec<String>) {
    *report += &format!(
        "{name:22} labels differ {} (+{} near-ties within {TIE_GAP:.0e}), max |dpost| {:.1e} \
         (cpu 1 thread vs all: {:.1e}); per iteration: cpu {:.2} ms, gpu {:.2} ms\n",
        f.labels_differ,
        f.near_ties,
        f.max_post_diff,
        f.cpu_self_diff,
        f.cpu_per_iter.as_secs_f64() * 1e3,
        f.gpu_per_iter.as_secs_f64() * 1e3
    );
    if f.labels_differ > 0 {
        failures.push(format!(
            "{name}: {} labels differ away from near-ties",
            f.labels_differ
        ));
    }
    if f.max_post_diff > FIT_POST_TOL {
        failures.push(format!(
            "{name}: posteriors differ by {} > {FIT_POST_TOL}",
            f.max_post_diff
        ));
    }
}

#[test]
fn ds_fit_gives_the_cpu_labels_on_the_crowd_sets() {
    let Some(gpu) = gpu_or_skip("ds_fit_gives_the_cpu_labels_on_the_crowd_sets") else {
        return;
    };
    let (mut report, mut failures) = (String::new(), Vec::new());
    for name in CROWD_SETS {
        let (votes, gold) = crowd_set(name);
        let f = fit_parity(&gpu, name, &votes, None);
        check_fit(name, &f, &mut report, &mut failures);
        if name == "rte" || name == "dog" {
            // With gold clamped: the clamp path of the E-step.
            let f = fit_parity(&gpu, &format!("{name} (gold clamped)"), &votes, Some(&gold));
            check_fit(
                &format!("{name} (gold clamped)"),
                &f,
                &mut report,
                &mut failures,
            );
        }
    }
    eprint!("{}: {}\n{report}", gpu.describe(), gpu.adapter());
    assert!(failures.is_empty(), "{failures:?}\n{report}");
}

#[test]
fn ds_fit_gives_the_cpu_labels_on_100k_synthetic_tasks() {
    let Some(gpu) = gpu_or_skip("ds_fit_gives_the_cpu_labels_on_100k_synthetic_tasks") else {
        return;
    };
    let votes = synthetic();
    assert_eq!(votes.n_tasks(), 100_000);
    let (mut report, mut failures) = (String::new(), Vec::new());
    let f = fit_parity(&gpu, "synthetic 100k", &votes, None);
    check_fit(
        "synthetic 100k x 5, 1000 workers, 10 classes",
        &f,
        &mut report,
        &mut failures,
    );
    eprint!("{report}");
    assert!(failures.is_empty(), "{failures:?}\n{report}");
}

#[test]
fn a_problem_too_large_for_the_device_falls_back_or_fails_by_name() {
    let test = "a_problem_too_large_for_the_device_falls_back_or_fails_by_name";
    let (votes, _) = crowd_set("dog");
    let opts = Options {
        method: Method::Ds,
        ds: DsOptions {
            max_iters: 5,
            tol: 0.0,
            ..DsOptions::default()
        },
        posteriors: true,
    };
    let cpu = aggregate::aggregate(&votes, None, &opts, &CpuBackend::new("test")).unwrap();
    for policy in [OnDeviceError::CpuFallback, OnDeviceError::Fail] {
        let Some(mut ctx) = context_or_skip(test) else {
            return;
        };
        // 807 tasks, 8070 answers: more than this pretend limit takes.
        ctx.limits.max_storage_buffer_binding_size = 8192;
        let gpu = GpuBackend::with_context(
            ctx,
            GpuOptions {
                on_device_error: policy,
                ..GpuOptions::default()
            },
            test,
        )
        .unwrap();
        let sessions = gds::sessions_on_this_thread();
        let r = aggregate::aggregate(&votes, None, &opts, &gpu as &dyn Backend);
        assert_eq!(gds::sessions_on_this_thread(), sessions);
        match (policy, r) {
            (OnDeviceError::CpuFallback, Ok(agg)) => {
                assert_eq!(agg.posteriors, cpu.posteriors);
                assert_eq!(agg.log_likelihood, cpu.log_likelihood);
            }
            (OnDeviceError::Fail, Err(microtask::Error::Gpu(m))) => {
                assert!(
                    m.contains("bytes, more than")
                        && m.contains("max_storage_buffer_binding_size (8192 bytes)"),
                    "{m}"
                );
            }
            (p, r) => panic!("{p:?}: {r:?}"),
        }
    }
}
