//! The command line end to end, as a user runs it.

mod common;

use common::*;
use std::path::Path;

fn votes_accuracy(votes: &Path, labels: &[u8], worker: usize) -> f64 {
    let text = std::fs::read_to_string(votes).unwrap();
    let mut correct = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        // Workers are named `<model file stem>/<r>`.
        let r = f[1].rsplit_once('/').map_or(f[1], |(_, r)| r);
        let (task, w, label): (usize, usize, u8) = (
            f[0].parse().unwrap(),
            r.parse().unwrap(),
            f[2].parse().unwrap(),
        );
        if w == worker && labels[task] == label {
            correct += 1;
        }
    }
    correct as f64 / labels.len() as f64
}

#[test]
fn run_with_no_arguments_reports_workers_and_majority() {
    let o = microtask(&["run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "worker 0",
        "worker 4",
        "majority vote",
        "items/s",
        "backend",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn one_worker_trained_on_mnist_reaches_92_percent_and_png_matches_idx() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    let m = model.to_str().unwrap();
    let o = microtask(&[
        "train",
        "--data",
        &mnist("train-images-idx3-ubyte.gz"),
        "--workers",
        "1",
        "--epochs",
        "10",
        "--out",
        m,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let votes = dir.path().join("v.csv");
    let o = microtask(&[
        "classify",
        "--model",
        m,
        "--data",
        &mnist("t10k-images-idx3-ubyte.gz"),
        "--out",
        votes.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let labels =
        microtask::data::idx::load_labels(Path::new(&mnist("t10k-labels-idx1-ubyte.gz"))).unwrap();
    let acc = votes_accuracy(&votes, &labels, 0);
    assert!(acc >= 0.92, "accuracy {acc}");

    let png_votes = dir.path().join("png.csv");
    let png = shared_data().join("mnist-png/test");
    let o = microtask(&[
        "classify",
        "--model",
        m,
        "--data",
        png.to_str().unwrap(),
        "--out",
        png_votes.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The same votes; the task is the row index for IDX and the path for the folder.
    let after_task = |path: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        let rows: Vec<String> = text
            .lines()
            .skip(1)
            .map(|l| l.split_once(',').unwrap().1.to_string())
            .collect();
        rows
    };
    assert!(
        after_task(&votes) == after_task(&png_votes),
        "PNG votes differ from IDX votes"
    );
    let png_text = std::fs::read_to_string(&png_votes).unwrap();
    let first = png_text.lines().nth(1).unwrap();
    assert!(first.starts_with("7/60000.png,m/0,"), "{first}");
}

#[test]
fn five_workers_majority_is_at_least_as_good_as_the_mean_worker() {
    let dir = tempdir();
    let model = dir.path().join("m5.safetensors");
    let m = model.to_str().unwrap();
    let o = microtask(&[
        "train",
        "--data",
        &mnist("train-images-idx3-ubyte.gz"),
        "--workers",
        "5",
        "--epochs",
        "10",
        "--out",
        m,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = microtask(&[
        "classify",
        "--model",
        m,
        "--data",
        &mnist("t10k-images-idx3-ubyte.gz"),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let value = |prefix: &str| -> Vec<f64> {
        out.lines()
            .filter(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect()
    };
    let workers = value("worker");
    assert_eq!(workers.len(), 5, "{out}");
    let mean = workers.iter().sum::<f64>() / 5.0;
    let majority = value("majority vote")[0];
    assert!(majority >= mean, "majority {majority} < mean worker {mean}");
}

#[test]
fn bad_inputs_exit_1_with_a_clear_error_and_no_output_file() {
    let dir = tempdir();
    let d = dir.path();
    let model = d.join("m.safetensors");
    let o = microtask(&[
        "train",
        "--data",
        "synth:300",
        "--workers",
        "1",
        "--epochs",
        "1",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = model.to_str().unwrap();
    let out = d.join("votes.csv");
    let out_s = out.to_str().unwrap();

    // Truncated gzip.
    let gz = std::fs::read(mnist("t10k-images-idx3-ubyte.gz")).unwrap();
    let cut = d.join("cut-images-idx3-ubyte.gz");
    std::fs::write(&cut, &gz[..gz.len() / 3]).unwrap();
    let o = microtask(&[
        "classify",
        "--model",
        m,
        "--data",
        cut.to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert_clean_failure(&o, &["cut-images-idx3-ubyte.gz", "truncated"]);
    assert!(!out.exists());

    // Wrong magic number.
    let wrong = d.join("wrong");
    std::fs::write(&wrong, [0u8; 64]).unwrap();
    let o = microtask(&[
        "classify",
        "--model",
        m,
        "--data",
        wrong.to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert_clean_failure(&o, &["wrong", "magic number 0"]);

    // A header that claims more items than the file holds.
    let mut raw = Vec::new();
    microtask::data::idx::write_images(&mut raw, &microtask::data::synth::generate(4, 1)).unwrap();
    raw[4..8].copy_from_slice(&4_000_000_000u32.to_be_bytes());
    let liar = d.join("liar");
    std::fs::write(&liar, &raw).unwrap();
    let o = microtask(&[
        "classify",
        "--model",
        m,
        "--data",
        liar.to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert_clean_failure(&o, &["liar", "truncated"]);

    // An image folder with one image of another size.
    for (name, side) in [("a.png", 28), ("b.png", 14)] {
        std::fs::create_dir_all(d.join("imgs/3")).unwrap();
        image::GrayImage::new(side, side)
            .save(d.join("imgs/3").join(name))
            .unwrap();
    }
    let o = microtask(&[
        "classify",
        "--model",
        m,
        "--data",
        d.join("imgs").to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert_clean_failure(&o, &["b.png", "14x14"]);

    // Items of another size than the model's.
    let o = microtask(&[
        "classify",
        "--model",
        m,
        "--data",
        d.join("imgs/3").to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert_eq!(o.status.code(), Some(1));

    // A model file with NaN, and one that is not a model at all.
    let mut bad = microtask::model::Ensemble::load(&model).unwrap();
    bad.bias[0] = f32::NAN;
    let nan = d.join("nan.safetensors");
    std::fs::write(&nan, bad.to_bytes().unwrap()).unwrap();
    let o = microtask(&[
        "classify",
        "--model",
        nan.to_str().unwrap(),
        "--data",
        "synth:10",
        "--out",
        out_s,
    ]);
    assert_clean_failure(&o, &["nan.safetensors", "NaN"]);
    let o = microtask(&[
        "classify",
        "--model",
        wrong.to_str().unwrap(),
        "--data",
        "synth:10",
        "--out",
        out_s,
    ]);
    assert_clean_failure(&o, &["wrong", "safetensors"]);
    assert!(!out.exists(), "no votes file after failures");
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn usage_errors_exit_2() {
    let o = microtask(&["classify", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    let o = microtask(&[
        "train",
        "--data",
        "synth:10",
        "--out",
        "/nonexistent-dir/m.safetensors",
        "--workers",
        "1",
        "--epochs",
        "1",
    ]);
    // A missing output folder is found before any work: a usage error.
    assert_usage_failure(&o, &["/nonexistent-dir/m.safetensors"]);
}

/// An environment in which wgpu finds no adapter at all (no Vulkan driver file, no GL).
fn without_adapters(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_microtask"))
        .args(args)
        .env("WGPU_BACKEND", "vulkan")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .output()
        .expect("the microtask binary runs")
}

#[test]
fn without_any_gpu_driver_run_falls_back_to_rayon_and_gpu_is_refused() {
    let o = without_adapters(&["run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("backend    : cpu (rayon"), "{out}");
    assert!(
        out.contains("no adapters found"),
        "the report says why: {out}"
    );
    let o = without_adapters(&[
        "classify",
        "--backend",
        "gpu",
        "--model",
        "assets/mnist-5workers.safetensors",
        "--data",
        "synth:10",
    ]);
    assert_clean_failure(&o, &["no GPU adapter", "--backend cpu"]);
}

#[test]
fn gpu_and_hybrid_votes_equal_cpu_votes_on_mnist() {
    let Some(_) = microtask::backend::gpu::testing::context_or_skip("cli gpu votes") else {
        return;
    };
    let dir = tempdir();
    let votes = |backend: &str| -> Vec<(String, f64)> {
        let path = dir.path().join(format!("{backend}.csv"));
        let o = microtask(&[
            "classify",
            "--model",
            "assets/mnist-5workers.safetensors",
            "--data",
            &mnist("t10k-images-idx3-ubyte.gz"),
            "--backend",
            backend,
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let (head, conf) = l.rsplit_once(',').unwrap();
                (head.to_string(), conf.parse().unwrap())
            })
            .collect()
    };
    let cpu = votes("cpu");
    assert_eq!(cpu.len(), 50_000);
    for backend in ["gpu", "hybrid"] {
        let other = votes(backend);
        assert_eq!(other.len(), cpu.len());
        let mut near_ties = 0;
        for ((a, ca), (b, cb)) in cpu.iter().zip(&other) {
            if a != b {
                // Only a true near-tie may differ: both sides at most 0.5001 confident.
                assert!(*ca <= 0.5001 && *cb <= 0.5001, "{backend}: {a} vs {b}");
                near_ties += 1;
            } else {
                assert!((ca - cb).abs() <= 1.5e-6, "{backend}: {a}: {ca} vs {cb}");
            }
        }
        println!("{backend}: {near_ties} near-ties differ of {}", cpu.len());
    }
}

#[test]
fn batch_above_the_device_limit_is_refused() {
    let Some(_) = microtask::backend::gpu::testing::context_or_skip("cli --batch limit") else {
        return;
    };
    let o = microtask(&[
        "classify",
        "--backend",
        "gpu",
        "--batch",
        "1000000000",
        "--model",
        "assets/mnist-5workers.safetensors",
        "--data",
        "synth:10",
    ]);
    assert_clean_failure(&o, &["--batch 1000000000", "at most"]);
    let o = microtask(&[
        "classify",
        "--backend",
        "gpu",
        "--slots",
        "0",
        "--model",
        "assets/mnist-5workers.safetensors",
        "--data",
        "synth:10",
    ]);
    // 0 slots means nothing: clap refuses it (exit 2, the flag named).
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--slots"), "{}", stderr(&o));
}

#[test]
fn bench_json_reports_every_backend_and_the_ring_against_one_slot() {
    let dir = tempdir();
    let plot = dir.path().join("b.svg");
    let o = microtask(&[
        "bench",
        "--items",
        "3000",
        "--software-gpu-items",
        "3000",
        "--reps",
        "1",
        "--json",
        "--peers-dir",
        dir.path().to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let backends = v["backends"].as_array().unwrap();
    assert_eq!(backends[0]["backend"], "cpu");
    assert!(backends[0]["items_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["tally"][0]["backend"], "cpu");
    // No peers.py in an empty folder and no --peers: the peers are left out, not faked.
    assert_eq!(v["peers"].as_array().unwrap().len(), 0);
    assert!(stderr(&o).contains("peers skipped"), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg"));
    let gpu = microtask::backend::gpu::testing::gpu_required() || v["gpu_note"].is_null();
    if gpu {
        let names: Vec<&str> = backends
            .iter()
            .map(|b| b["backend"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["cpu", "gpu", "gpu (1 slot)", "hybrid"]);
        assert_eq!(backends[1]["slots"], 3);
        assert_eq!(backends[2]["slots"], 1);
        assert!(backends[1]["device_busy"].as_f64().unwrap() > 0.0);
        assert_eq!(v["ring_vs_one"]["pairs"], 5);
    }
}
