//! GPU kernels against their CPU twins: classify (with the pipelined scheduler, hybrid mode and
//! the CPU fallback) and the majority tally.
//!
//! Every test opens any adapter, the software one (lavapipe) included. With none, the test
//! prints why it is skipped and passes, unless MICROTASK_REQUIRE_GPU=1 (CI) makes it fail.
//!
//! Labels must be equal except at true near-ties: (item, worker) pairs whose top two logits
//! are within 1e-4 of each other (computed in f64 here), where an ulp of difference in the sum
//! can flip the argmax. Those are counted, printed and must stay rare. Confidences must agree
//! within 1e-5. Tally labels and answer counts must be exactly equal.

mod common;

use microtask::backend::cpu::{majority, CpuBackend};
use microtask::backend::gpu::tally::TallyLimits;
use microtask::backend::gpu::testing::backend_or_skip;
use microtask::backend::gpu::{GpuOptions, HybridBackend, OnDeviceError};
use microtask::backend::{Backend, Predictions};
use microtask::data::synth::Rng;
use microtask::data::votes::VoteTable;
use microtask::model::{Ensemble, MAX_CLASSES};
use microtask::Error;

/// A GPU backend for `test` with `opts`, or a skip.
macro_rules! gpu_or_skip {
    ($test:expr, $opts:expr) => {
        match backend_or_skip($test, $opts) {
            Some(b) => b,
            None => return,
        }
    };
}

fn opts(batch: Option<usize>) -> GpuOptions {
    GpuOptions {
        batch,
        ..Default::default()
    }
}

/// A random ensemble; worker weights small enough that softmax is not saturated.
fn random_model(workers: usize, classes: usize, h: usize, w: usize, seed: u64) -> Ensemble {
    let mut rng = Rng::new(seed);
    let mut m = Ensemble::zeros(workers, classes, h, w);
    for v in &mut m.weight {
        *v = rng.range(-0.05, 0.05);
    }
    for v in &mut m.bias {
        *v = rng.range(-0.5, 0.5);
    }
    m
}

fn random_items(n: usize, d: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ 0xABCD);
    (0..n * d)
        .map(|_| {
            // Mostly dark pixels with bright strokes, like digits; some exact 0 and 255.
            match rng.below(4) {
                0 => 0,
                1 => 255,
                _ => rng.below(256) as u8,
            }
        })
        .collect()
}

/// f64 logits of item `i`, worker `r`: the reference for spotting near-ties.
fn logits_f64(model: &Ensemble, item: &[u8], r: usize) -> Vec<f64> {
    let (c, d) = (model.classes, model.features());
    (0..c)
        .map(|k| {
            let row = &model.weight[(r * c + k) * d..(r * c + k + 1) * d];
            let s: f64 = item
                .iter()
                .zip(row)
                .map(|(&x, &w)| x as f64 * w as f64)
                .sum();
            s / 255.0 + model.bias[r * c + k] as f64
        })
        .collect()
}

fn is_near_tie(model: &Ensemble, item: &[u8], r: usize) -> bool {
    let mut z = logits_f64(model, item, r);
    z.sort_by(|a, b| b.total_cmp(a));
    z.len() > 1 && z[0] - z[1] < 1e-4
}

/// Compares GPU (or hybrid) predictions with the CPU's; returns the near-tie disagreements.
fn compare(
    what: &str,
    model: &Ensemble,
    items: &[u8],
    cpu: &Predictions,
    gpu: &Predictions,
) -> usize {
    let d = model.features();
    let r = model.workers;
    assert_eq!(gpu.workers, r, "{what}: workers");
    assert_eq!(gpu.labels.len(), cpu.labels.len(), "{what}: label rows");
    assert_eq!(gpu.confidence.len(), cpu.confidence.len(), "{what}: rows");
    let mut near_ties = 0;
    for idx in 0..cpu.labels.len() {
        let (i, w) = (idx / r, idx % r);
        let item = &items[i * d..(i + 1) * d];
        if cpu.labels[idx] != gpu.labels[idx] {
            assert!(
                is_near_tie(model, item, w),
                "{what}: item {i} worker {w}: cpu label {} gpu label {} and not a near-tie \
                 (logits {:?})",
                cpu.labels[idx],
                gpu.labels[idx],
                logits_f64(model, item, w)
            );
            near_ties += 1;
            continue;
        }
        let (a, b) = (cpu.confidence[idx], gpu.confidence[idx]);
        assert!(
            (a - b).abs() <= 1e-5,
            "{what}: item {i} worker {w}: confidence cpu {a} gpu {b}"
        );
    }
    if near_ties > 0 {
        println!("{what}: {near_ties} near-tie label(s) differ");
    }
    near_ties
}

fn run(backend: &dyn Backend, model: &Ensemble, items: &[u8]) -> Predictions {
    let mut p = Predictions::default();
    backend
        .classify(model, items, &mut p)
        .unwrap_or_else(|e| panic!("{}: {e}", backend.describe()));
    p
}

fn check(what: &str, gpu: &dyn Backend, model: &Ensemble, items: &[u8]) -> usize {
    let cpu = run(&CpuBackend::new("reference"), model, items);
    let got = run(gpu, model, items);
    compare(what, model, items, &cpu, &got)
}

#[test]
fn classify_matches_cpu_on_awkward_sizes() {
    let gpu = gpu_or_skip!("classify_matches_cpu_on_awkward_sizes", opts(None));
    // A small forced batch: sizes above one batch and not a multiple of it.
    let small = gpu.with_options(opts(Some(64))).unwrap();
    let odd = gpu.with_options(opts(Some(100))).unwrap();
    println!("{}", gpu.describe());
    let mut near = 0;
    let mut total = 0;
    for &(workers, classes, h, w) in &[(1, 10, 28, 28), (7, 10, 28, 28), (3, 5, 3, 5)] {
        let model = random_model(workers, classes, h, w, 11 + workers as u64);
        for &n in &[1usize, 63, 64, 65, 300, 1000] {
            let items = random_items(n, h * w, n as u64);
            let tag = format!("R={workers} C={classes} D={} N={n}", h * w);
            near += check(&format!("{tag} default batch"), &gpu, &model, &items);
            near += check(&format!("{tag} batch 64"), &small, &model, &items);
            near += check(&format!("{tag} batch 100"), &odd, &model, &items);
            total += 3 * n * workers;
        }
    }
    println!("near-tie disagreements: {near} of {total} votes");
    assert!(
        near * 10_000 <= total,
        "too many near-tie disagreements: {near} of {total}"
    );
}

#[test]
fn classify_features_not_a_multiple_of_four() {
    let gpu = gpu_or_skip!("classify_features_not_a_multiple_of_four", opts(Some(50)));
    for &(h, w) in &[(1, 1), (1, 2), (1, 3), (1, 5), (3, 7), (7, 9), (17, 19)] {
        let model = random_model(2, 3, h, w, (h * w) as u64);
        let items = random_items(130, h * w, 5);
        let near = check(&format!("D={}", h * w), &gpu, &model, &items);
        assert!(near <= 1);
    }
}

#[test]
fn classify_ties_go_to_the_lowest_class() {
    let gpu = gpu_or_skip!("classify_ties_go_to_the_lowest_class", opts(None));
    // Classes 2 and 3 of every worker are the same row: every item is an exact tie between
    // them whenever they lead; all-zero items tie every class with equal bias.
    let mut model = random_model(7, 6, 4, 4, 3);
    let d = model.features();
    for r in 0..7 {
        let (a, b) = ((r * 6 + 2) * d, (r * 6 + 3) * d);
        let row: Vec<f32> = model.weight[a..a + d].iter().map(|v| v + 0.2).collect();
        model.weight[a..a + d].copy_from_slice(&row);
        model.weight[b..b + d].copy_from_slice(&row);
        model.bias[r * 6 + 2] = 1.0;
        model.bias[r * 6 + 3] = 1.0;
    }
    let mut items = random_items(200, d, 9);
    items[..d * 10].fill(0);
    let cpu = run(&CpuBackend::new("reference"), &model, &items);
    let got = run(&gpu, &model, &items);
    assert_eq!(cpu.labels, got.labels, "exact ties must break the same way");
    assert!(
        got.labels.iter().all(|&l| l != 3),
        "class 3 never beats its twin, class 2"
    );
    compare("ties", &model, &items, &cpu, &got);

    // A zero model: every class ties, label 0 with probability 1/C.
    let zero = Ensemble::zeros(3, 4, 2, 2);
    let items = random_items(65, 4, 1);
    let got = run(&gpu, &zero, &items);
    assert!(got.labels.iter().all(|&l| l == 0));
    assert!(got.confidence.iter().all(|&p| (p - 0.25).abs() < 1e-7));
}

#[test]
fn classify_appends_like_the_cpu() {
    let gpu = gpu_or_skip!("classify_appends_like_the_cpu", opts(None));
    let model = random_model(2, 10, 28, 28, 5);
    let a = random_items(10, 784, 1);
    let b = random_items(7, 784, 2);
    let mut p = Predictions::default();
    gpu.classify(&model, &a, &mut p).unwrap();
    gpu.classify(&model, &b, &mut p).unwrap();
    gpu.classify(&model, &[], &mut p).unwrap();
    let mut q = Predictions::default();
    CpuBackend::new("reference")
        .classify(&model, &[a, b].concat(), &mut q)
        .unwrap();
    assert_eq!(p.len(), 17);
    assert_eq!(p.labels.len(), q.labels.len());
    // A second model on the same backend replaces the resident one.
    let other = random_model(3, 4, 28, 28, 6);
    let items = random_items(70, 784, 3);
    check("second model", &gpu, &other, &items);
}

#[test]
fn hybrid_matches_cpu() {
    let gpu = gpu_or_skip!("hybrid_matches_cpu", opts(Some(128)));
    let hybrid = HybridBackend::new(gpu);
    println!("{}", hybrid.describe());
    let model = random_model(5, 10, 28, 28, 21);
    let items = random_items(3000, 784, 4);
    let near = check("hybrid", &hybrid, &model, &items);
    assert!(near <= 2);
    let stats = hybrid.last_stats().expect("stats of the last run");
    assert_eq!(stats.gpu_items + stats.cpu_items, 3000);
    println!(
        "hybrid: {} items on the GPU, {} on the CPU",
        stats.gpu_items, stats.cpu_items
    );
}

#[test]
fn device_error_mid_run_finishes_on_the_cpu() {
    let gpu = gpu_or_skip!(
        "device_error_mid_run_finishes_on_the_cpu",
        GpuOptions {
            batch: Some(128),
            inject_fault_at_batch: Some(2),
            ..Default::default()
        }
    );
    let model = random_model(3, 10, 28, 28, 8);
    let items = random_items(1000, 784, 8);
    let cpu = run(&CpuBackend::new("reference"), &model, &items);
    let got = run(&gpu, &model, &items);
    compare("fallback", &model, &items, &cpu, &got);
    let stats = gpu.last_stats().unwrap();
    assert!(stats.fallback.is_some());
    assert_eq!(stats.gpu_items + stats.cpu_items, 1000);
    assert!(stats.cpu_items >= 1000 - 2 * 128, "{stats:?}");
    // Batches done on the CPU are exactly the CPU's.
    let from = 2 * 128 * 3;
    assert_eq!(&got.labels[from..], &cpu.labels[from..]);
    assert_eq!(&got.confidence[from..], &cpu.confidence[from..]);

    // With OnDeviceError::Fail, the run fails and leaves the output as it was.
    let failing = gpu
        .with_options(GpuOptions {
            batch: Some(128),
            inject_fault_at_batch: Some(2),
            on_device_error: OnDeviceError::Fail,
            ..Default::default()
        })
        .unwrap();
    let mut p = Predictions::default();
    let err = failing.classify(&model, &items, &mut p).unwrap_err();
    assert!(matches!(err, Error::Gpu(_)), "{err}");
    assert!(err.to_string().contains("batch 3 of 8"), "{err}");
    assert!(p.labels.is_empty() && p.confidence.is_empty());
}

#[test]
fn bad_input_is_refused_clearly() {
    let gpu = gpu_or_skip!("bad_input_is_refused_clearly", opts(Some(1 << 30)));
    let model = random_model(5, 10, 28, 28, 1);
    let items = random_items(10, 784, 1);
    let mut p = Predictions::default();
    let err = gpu
        .classify(&model, &items, &mut p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--batch 1073741824"), "{err}");
    assert!(err.contains("max_"), "the message names the limit: {err}");
    assert!(p.labels.is_empty());

    let gpu = gpu.with_options(opts(None)).unwrap();
    let big = Ensemble::zeros(1, MAX_CLASSES + 1, 2, 2);
    let err = gpu.classify(&big, &[0; 4], &mut p).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(err.to_string().contains("classes"), "{err}");

    let err = gpu.classify(&model, &[0; 785], &mut p).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[test]
fn stage_timings_are_reported() {
    let gpu = gpu_or_skip!("stage_timings_are_reported", opts(Some(256)));
    let model = random_model(5, 10, 28, 28, 2);
    let items = random_items(2000, 784, 2);
    run(&gpu, &model, &items);
    let s = gpu.last_stats().unwrap();
    println!("{}", s.to_json());
    assert_eq!(s.items, 2000);
    assert_eq!(s.batches, 8);
    assert_eq!(s.gpu_items, 2000);
    assert!(s.wall > std::time::Duration::ZERO);
    assert!(s.device_busy <= s.wall + std::time::Duration::from_millis(50));
    assert!((0.0..=1.0).contains(&s.overlap()));
}

/// Random votes with many exact ties in counts and in fixed-point sums, NaN and out-of-range
/// confidences, and values on the rounding boundary of `conf_fixed`.
fn random_votes(tasks: usize, workers: usize, classes: usize, seed: u64) -> VoteTable {
    let mut rng = Rng::new(seed);
    let special = [
        1.0f32,
        0.5,
        0.25,
        0.0,
        -0.5,
        1.5,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.5 / 65536.0,
        1.5 / 65536.0,
        2.5 / 65536.0,
        f32::from_bits((0.5f32 / 65536.0).to_bits() - 1),
        f32::from_bits((0.5f32 / 65536.0).to_bits() + 1),
        1e-40,
    ];
    let mut v = VoteTable {
        tasks: (0..tasks).map(|t| format!("t{t}")).collect(),
        workers: (0..workers).map(|w| format!("w{w}")).collect(),
        classes: (0..classes).map(|c| format!("{c}")).collect(),
        ..Default::default()
    };
    for t in 0..tasks {
        // Some tasks get no answers at all.
        if rng.below(10) == 0 {
            continue;
        }
        for w in 0..workers {
            if rng.below(3) == 0 {
                continue;
            }
            v.task.push(t as u32);
            v.worker.push(w as u32);
            v.label.push(rng.below(classes as u64) as u32);
            let conf = if rng.below(2) == 0 {
                special[rng.below(special.len() as u64) as usize]
            } else {
                rng.uniform()
            };
            v.confidence.push(conf);
        }
    }
    // Shuffle so tasks' answers are interleaved.
    for i in (1..v.task.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.task.swap(i, j);
        v.worker.swap(i, j);
        v.label.swap(i, j);
        v.confidence.swap(i, j);
    }
    v
}

fn assert_tally_equal(
    what: &str,
    cpu: &[microtask::backend::TaskLabel],
    gpu: &[microtask::backend::TaskLabel],
) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: tasks");
    for (t, (a, b)) in cpu.iter().zip(gpu).enumerate() {
        assert_eq!(a.label, b.label, "{what}: task {t}: {a:?} vs {b:?}");
        assert_eq!(a.answers, b.answers, "{what}: task {t}");
        assert!(
            (a.confidence - b.confidence).abs() <= 1e-6,
            "{what}: task {t}: {a:?} vs {b:?}"
        );
    }
}

#[test]
fn tally_matches_cpu_exactly() {
    let gpu = gpu_or_skip!("tally_matches_cpu_exactly", opts(None));
    for &(tasks, workers, classes) in
        &[(1, 1, 1), (63, 3, 2), (64, 7, 4), (65, 5, 3), (5000, 7, 10)]
    {
        let votes = random_votes(tasks, workers, classes, tasks as u64);
        let cpu = majority(&votes);
        let got = gpu.majority(&votes).unwrap();
        assert_tally_equal(&format!("T={tasks} W={workers} C={classes}"), &cpu, &got);
        // Several chunks of tasks and several submits of answers per chunk.
        let limits = TallyLimits {
            tasks_per_chunk: 37,
            votes_per_submit: 50,
        };
        let chunked = gpu.majority_on_device(&votes, limits).unwrap();
        assert_tally_equal(&format!("chunked T={tasks}"), &cpu, &chunked);
    }
    let empty = VoteTable::default();
    assert!(gpu.majority(&empty).unwrap().is_empty());
}

#[test]
fn tally_saturates_like_the_cpu() {
    let gpu = gpu_or_skip!("tally_saturates_like_the_cpu", opts(None));
    // Two labels with 70,000 answers of confidence 1 each: both sums saturate at u32::MAX, so
    // the tie goes to the lower label; a third task checks a near-saturated sum still counts.
    let n = 70_000;
    let mut v = VoteTable {
        tasks: vec!["a".into(), "b".into()],
        workers: vec!["w".into()],
        classes: vec!["0".into(), "1".into(), "2".into()],
        ..Default::default()
    };
    for i in 0..2 * n {
        v.task.push(0);
        v.worker.push(0);
        v.label.push(2 - (i % 2) as u32);
        v.confidence.push(1.0);
    }
    for i in 0..2 * n {
        v.task.push(1);
        v.worker.push(0);
        v.label.push((i % 2) as u32);
        v.confidence.push(if i % 2 == 0 { 1.0 } else { 0.999 });
    }
    let cpu = majority(&v);
    let got = gpu.majority(&v).unwrap();
    assert_tally_equal("saturation", &cpu, &got);
    assert_eq!(got[0].label, 1);
}

#[test]
fn mnist_test_set_matches_cpu() {
    let Some(path) = common::shared_file_or_skip(
        "mnist_test_set_matches_cpu",
        "mnist/t10k-images-idx3-ubyte.gz",
    ) else {
        return;
    };
    let gpu = gpu_or_skip!("mnist_test_set_matches_cpu", opts(None));
    let data = microtask::data::load(&path.to_string_lossy()).unwrap();
    assert_eq!(data.len(), 10_000);
    let model = random_model(5, 10, data.height, data.width, 2024);
    let cpu = run(&CpuBackend::new("reference"), &model, &data.pixels);
    let got = run(&gpu, &model, &data.pixels);
    let near = compare("mnist gpu", &model, &data.pixels, &cpu, &got);
    println!(
        "mnist: {near} near-tie label(s) differ of {}",
        cpu.labels.len()
    );
    assert!(near <= 2);
    let stats = gpu.last_stats().unwrap();
    println!("mnist gpu: {}", stats.to_json());

    let hybrid = HybridBackend::new(gpu.with_options(opts(Some(1024))).unwrap());
    let mixed = run(&hybrid, &model, &data.pixels);
    let near = compare("mnist hybrid", &model, &data.pixels, &cpu, &mixed);
    assert!(near <= 2);
}

#[test]
fn auto_says_why_it_chose() {
    let b = microtask::backend::select(microtask::backend::BackendKind::Auto).unwrap();
    let d = b.describe();
    println!("{d}");
    assert!(
        d.starts_with("gpu: ") || (d.starts_with("cpu") && d.contains("--backend auto:")),
        "{d}"
    );
}

#[test]
fn lost_device_finishes_on_the_cpu() {
    let gpu = gpu_or_skip!("lost_device_finishes_on_the_cpu", opts(Some(128)));
    let model = random_model(2, 10, 28, 28, 4);
    let items = random_items(500, 784, 4);
    // Warm: the model and slots are resident when the device goes away.
    run(&gpu, &model, &items);
    gpu.context().device.destroy();
    let cpu = run(&CpuBackend::new("reference"), &model, &items);
    let got = run(&gpu, &model, &items);
    assert_eq!(
        got, cpu,
        "after the device is gone every row comes from the CPU"
    );
    let votes = random_votes(100, 5, 3, 1);
    assert_tally_equal("lost", &majority(&votes), &gpu.majority(&votes).unwrap());

    let failing = gpu
        .with_options(GpuOptions {
            on_device_error: OnDeviceError::Fail,
            ..Default::default()
        })
        .unwrap();
    let mut p = Predictions::default();
    let err = failing.classify(&model, &items, &mut p).unwrap_err();
    assert!(matches!(err, Error::Gpu(_)), "{err}");
    assert!(p.labels.is_empty());
}
