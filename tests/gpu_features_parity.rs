//! The GPU's feature kernels (`shaders/classify_logits.wgsl`: f16 packed two per word, f32 one)
//! against their CPU twins, as tests/gpu_parity.rs does for u8 pixels: both logits kernels,
//! several batch sizes, awkward shapes, hybrid mode, and a model kept resident across item types.
//!
//! Every test opens any adapter, the software one (lavapipe) included; with none it prints why it
//! is skipped and passes, unless MICROTASK_REQUIRE_GPU=1 makes it fail.
//!
//! Labels must be equal except at true near-ties: (item, worker) pairs whose top two logits (in
//! f64 here) are within 1e-4 + 1e-6 x the sum of |x w| of each other, where the two sides' summing
//! orders (16 strided lanes on the CPU, one fused chain per 256 features on the GPU) can flip the
//! argmax. Those are counted and must stay rare. Confidences must agree within 1e-5.

use microtask::backend::cpu::CpuBackend;
use microtask::backend::gpu::testing::backend_or_skip;
use microtask::backend::gpu::{GpuOptions, HybridBackend, LogitsKernel, OnDeviceError};
use microtask::backend::{Backend, Items, Predictions};
use microtask::data::synth::Rng;
use microtask::model::Ensemble;

/// A GPU backend for `test` with `opts`, or a skip.
macro_rules! gpu_or_skip {
    ($test:expr, $opts:expr) => {
        match backend_or_skip($test, $opts) {
            Some(b) => b,
            None => return,
        }
    };
}

fn opts(kernel: LogitsKernel, batch: Option<usize>) -> GpuOptions {
    GpuOptions {
        kernel,
        batch,
        on_device_error: OnDeviceError::Fail,
        ..Default::default()
    }
}

fn random_model(workers: usize, classes: usize, d: usize, seed: u64) -> Ensemble {
    let mut rng = Rng::new(seed);
    let mut m = Ensemble::zeros(workers, classes, 1, d);
    m.weight.iter_mut().for_each(|v| *v = rng.range(-0.1, 0.1));
    m.bias.iter_mut().for_each(|v| *v = rng.range(-0.5, 0.5));
    m
}

/// Embedding-like features (roughly standard normal) as f32 and as f16 bit patterns.
fn random_features(n: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<u16>) {
    let mut rng = Rng::new(seed ^ 0x5EED);
    let f: Vec<f32> = (0..n * d)
        .map(|_| (0..4).map(|_| rng.range(-1.7, 1.7)).sum::<f32>() / 2.0)
        .collect();
    let h = f
        .iter()
        .map(|&v| half::f16::from_f32(v).to_bits())
        .collect();
    (f, h)
}

fn values(items: Items<'_>) -> Vec<f64> {
    match items {
        Items::F16(h) => h
            .iter()
            .map(|&b| half::f16::from_bits(b).to_f64())
            .collect(),
        Items::F32(f) => f.iter().map(|&v| v as f64).collect(),
        Items::U8(p) => p.iter().map(|&v| v as f64 / 255.0).collect(),
    }
}

/// Whether the top two f64 logits of `item` for worker `r` are within what the two summing
/// orders can move them.
fn is_near_tie(model: &Ensemble, item: &[f64], r: usize) -> bool {
    let (c, d) = (model.classes, model.features());
    let mut scale = 0f64;
    let mut z: Vec<f64> = (0..c)
        .map(|k| {
            let row = &model.weight[(r * c + k) * d..(r * c + k + 1) * d];
            let terms = item.iter().zip(row).map(|(&x, &w)| x * w as f64);
            let (s, a) = terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()));
            scale = scale.max(a);
            s + model.bias[r * c + k] as f64
        })
        .collect();
    z.sort_by(|a, b| b.total_cmp(a));
    z.len() > 1 && z[0] - z[1] < 1e-4 + 1e-6 * scale
}

fn run(backend: &dyn Backend, model: &Ensemble, items: Items<'_>) -> Predictions {
    let mut p = Predictions::default();
    backend
        .classify_items(model, items, &mut p)
        .unwrap_or_else(|e| panic!("{}: {e}", backend.describe()));
    p
}

/// GPU against CPU on `items`; returns the near-tie label differences.
fn check(what: &str, gpu: &dyn Backend, model: &Ensemble, items: Items<'_>) -> usize {
    let cpu = run(&CpuBackend::new("reference"), model, items);
    let got = run(gpu, model, items);
    let (d, r) = (model.features(), model.workers);
    let x = values(items);
    assert_eq!(got.labels.len(), cpu.labels.len(), "{what}: rows");
    let mut near_ties = 0;
    for idx in 0..cpu.labels.len() {
        let (i, w) = (idx / r, idx % r);
        if cpu.labels[idx] != got.labels[idx] {
            assert!(
                is_near_tie(model, &x[i * d..(i + 1) * d], w),
                "{what}: item {i} worker {w}: cpu label {} gpu label {}, not a near-tie",
                cpu.labels[idx],
                got.labels[idx]
            );
            near_ties += 1;
            continue;
        }
        let (a, b) = (cpu.confidence[idx], got.confidence[idx]);
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

#[test]
fn f16_and_f32_features_match_the_cpu_on_both_kernels() {
    let test = "f16_and_f32_features_match_the_cpu_on_both_kernels";
    let tiled = gpu_or_skip!(test, opts(LogitsKernel::Tiled, Some(300)));
    let regs = tiled
        .with_options(opts(LogitsKernel::Registers, Some(300)))
        .unwrap();
    let small = tiled
        .with_options(opts(LogitsKernel::Registers, Some(7)))
        .unwrap();
    let mut near_ties = 0;
    let mut votes = 0;
    // D = 512 and 768 as embeddings are; odd widths pad a half word; 1030 spans KBLOCK folds.
    for (workers, classes, d) in [
        (1, 10, 512),
        (5, 10, 768),
        (3, 7, 33),
        (2, 13, 1030),
        (1, 2, 1),
    ] {
        let model = random_model(workers, classes, d, d as u64);
        for n in [1usize, 63, 65, 700] {
            let (f, h) = random_features(n, d, (n * d) as u64);
            for (name, items) in [("f32", Items::F32(&f)), ("f16", Items::F16(&h))] {
                let what = format!("{name} R{workers} C{classes} D{d} n{n}");
                let a = run(&tiled, &model, items);
                let b = run(&regs, &model, items);
                let c = run(&small, &model, items);
                // The two logits kernels sum in the same order: the same bits.
                assert_eq!(a, b, "{what}: tiled vs registers");
                assert_eq!(b, c, "{what}: batch 300 vs 7");
                near_ties += check(&what, &regs, &model, items);
                votes += n * workers;
            }
        }
    }
    println!("{near_ties} near-tie differences in {votes} votes");
    assert!(near_ties * 1000 <= votes, "too many near-ties: {near_ties}");
}

#[test]
fn f16_features_are_their_f32_values_on_the_gpu() {
    let test = "f16_features_are_their_f32_values_on_the_gpu";
    let gpu = gpu_or_skip!(test, opts(LogitsKernel::Auto, None));
    let model = random_model(5, 10, 512, 1);
    let (_, h) = random_features(500, 512, 2);
    let f: Vec<f32> = h
        .iter()
        .map(|&b| half::f16::from_bits(b).to_f32())
        .collect();
    assert_eq!(
        run(&gpu, &model, Items::F16(&h)),
        run(&gpu, &model, Items::F32(&f))
    );
}

#[test]
fn one_backend_switches_between_pixels_and_features() {
    // The resident model and slots are kept per item type: switching must re-upload, not reuse
    // buffers laid out for another packing.
    let test = "one_backend_switches_between_pixels_and_features";
    let gpu = gpu_or_skip!(test, opts(LogitsKernel::Auto, Some(128)));
    let model = random_model(2, 10, 784, 3);
    let (f, h) = random_features(200, 784, 4);
    let mut rng = Rng::new(5);
    let pixels: Vec<u8> = (0..200 * 784).map(|_| rng.below(256) as u8).collect();
    for round in 0..2 {
        for items in [Items::F32(&f), Items::U8(&pixels), Items::F16(&h)] {
            let what = format!("round {round} {}", items.type_name());
            check(&what, &gpu, &model, items);
        }
    }
}

#[test]
fn hybrid_classifies_features_like_the_cpu() {
    let test = "hybrid_classifies_features_like_the_cpu";
    let gpu = gpu_or_skip!(test, opts(LogitsKernel::Auto, Some(256)));
    let hybrid = HybridBackend::new(gpu);
    let model = random_model(1, 10, 512, 6);
    let (f, h) = random_features(5000, 512, 7);
    check("hybrid f32", &hybrid, &model, Items::F32(&f));
    check("hybrid f16", &hybrid, &model, Items::F16(&h));
}

#[test]
fn feature_rows_that_do_not_divide_are_refused() {
    let test = "feature_rows_that_do_not_divide_are_refused";
    let gpu = gpu_or_skip!(test, opts(LogitsKernel::Auto, None));
    let model = random_model(1, 10, 512, 8);
    let mut p = Predictions::default();
    let err = gpu
        .classify_items(&model, Items::F32(&[0.0; 513]), &mut p)
        .unwrap_err();
    assert!(err.to_string().contains("513 f32 values"), "{err}");
    assert!(p.labels.is_empty());
}
