//! Users' own data in, their own ids out: image folders of any layout, ids and worker names
//! people can join on, full probabilities, honest inputs. Each test runs the binary as a user
//! would.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const MODEL: &str = "assets/mnist-5workers.safetensors";

/// Copies the first `n` MNIST test PNGs of class folder `digit` into `dir`, named by `name(k)`.
fn copy_pngs(digit: u32, n: usize, dir: &Path, name: impl Fn(usize, &str) -> PathBuf) {
    let src = shared_data().join(format!("mnist-png/test/{digit}"));
    let mut files: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for (k, f) in files.iter().take(n).enumerate() {
        let to = dir.join(name(k, &f.file_name().unwrap().to_string_lossy()));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(f, to).unwrap();
    }
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn classify(args: &[&str]) -> std::process::Output {
    let mut all = vec!["classify", "--model", MODEL, "--backend", "cpu"];
    all.extend_from_slice(args);
    microtask(&all)
}

#[test]
fn a_flat_folder_of_unlabelled_pngs_gives_votes_by_file_name_and_no_accuracy() {
    let dir = tempdir();
    let flat = dir.path().join("my_digits");
    for digit in 0..10 {
        copy_pngs(digit, 20, &flat, |k, _| {
            format!("{}.png", digit as usize * 20 + k + 1).into()
        });
    }
    let votes = dir.path().join("v.csv");
    let o = classify(&[
        "--data",
        flat.to_str().unwrap(),
        "--out",
        votes.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("accuracy 0"), "no accuracy is printed: {out}");
    assert!(
        out.contains("no accuracy") && out.contains("not in a class folder"),
        "{out}"
    );
    let rows = csv_rows(&votes);
    assert_eq!(rows.len(), 1000);
    // Numeric names keep their numeric order: 1.png, 2.png, ..., 200.png.
    assert_eq!(rows[0][0], "1.png");
    assert_eq!(rows[5][0], "2.png");
    assert_eq!(rows[999][0], "200.png");
    assert_eq!(rows[0][1], "mnist-5workers/0");
    assert_eq!(rows[4][1], "mnist-5workers/4");
    // `1.png`..`20.png` are zeros: most votes say so, whatever the files are called.
    let zeros = rows[..100].iter().filter(|r| r[2] == "0").count();
    assert!(zeros >= 90, "{zeros} of 100 votes on zeros say 0");
}

#[test]
fn nested_folders_give_relative_paths_and_odd_folders_no_made_up_accuracy() {
    let dir = tempdir();
    let root = dir.path().join("d");
    copy_pngs(3, 5, &root, |_, f| format!("3/{f}").into());
    copy_pngs(7, 5, &root, |_, f| format!("7/deeper/{f}").into());
    let votes = dir.path().join("v.csv");
    let o = classify(&[
        "--data",
        root.to_str().unwrap(),
        "--out",
        votes.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("majority vote: accuracy"),
        "{}",
        stdout(&o)
    );
    let tasks: Vec<String> = csv_rows(&votes).into_iter().map(|r| r[0].clone()).collect();
    assert!(tasks
        .iter()
        .any(|t| t.starts_with("7/deeper/") && t.ends_with(".png")));
    assert!(tasks
        .iter()
        .any(|t| t.starts_with("3/") && !t.contains("deeper")));

    // One folder that is not a class beside 3/ and 7/: unlabelled, with the reason.
    copy_pngs(1, 2, &root, |_, f| format!("other/{f}").into());
    let o = classify(&["--data", root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("accuracy 0"), "{out}");
    assert!(
        out.contains("folder `other` is not one of the model's classes"),
        "{out}"
    );
}

#[test]
fn images_of_another_size_are_refused_naming_both_sizes_unless_resized() {
    let dir = tempdir();
    let root = dir.path().join("rgb");
    std::fs::create_dir_all(&root).unwrap();
    for k in 0..3u8 {
        let img = image::RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 4) as u8, k * 80])
        });
        img.save(root.join(format!("{k}.png"))).unwrap();
    }
    let o = classify(&["--data", root.to_str().unwrap()]);
    assert_clean_failure(&o, &["0.png", "64x64", "28x28", "--resize"]);
    let votes = dir.path().join("v.csv");
    let o = classify(&[
        "--data",
        root.to_str().unwrap(),
        "--resize",
        "--out",
        votes.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("triangle"), "the filter is stated");
    assert_eq!(csv_rows(&votes).len(), 3 * 5);
}

/// A folder of 8x8 RGB images in class folders `red/` and `blue/` (noisy, so training works).
fn colour_folder(root: &Path, per_class: u32) {
    let mut rng = microtask::data::synth::Rng::new(3);
    for (name, rgb) in [("red", [200u8, 30, 30]), ("blue", [30u8, 30, 200])] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..per_class {
            let img = image::RgbImage::from_fn(8, 8, |_, _| {
                image::Rgb(rgb.map(|v| v.saturating_add(rng.below(50) as u8)))
            });
            img.save(dir.join(format!("{k}.png"))).unwrap();
        }
    }
}

#[test]
fn rgb_training_with_named_classes_and_a_byte_reproducible_model() {
    let dir = tempdir();
    let root = dir.path().join("colours");
    colour_folder(&root, 30);
    let train = |out: &Path| {
        microtask(&[
            "train",
            "--data",
            root.to_str().unwrap(),
            "--channels",
            "3",
            "--workers",
            "2",
            "--epochs",
            "20",
            "--batch",
            "4",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (a, b) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    for p in [&a, &b] {
        let o = train(p);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "two trainings give different bytes"
    );
    let model = microtask::model::Ensemble::load(&a).unwrap();
    assert_eq!((model.height, model.width, model.channels), (8, 8, 3));
    assert_eq!(model.input, microtask::model::InputKind::Pixels);
    assert_eq!(model.class_names, ["blue", "red"]);

    let votes = dir.path().join("v.csv");
    let o = microtask(&[
        "classify",
        "--model",
        a.to_str().unwrap(),
        "--data",
        root.to_str().unwrap(),
        "--backend",
        "cpu",
        "--out",
        votes.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("majority vote: accuracy 1.0000"),
        "{}",
        stdout(&o)
    );
    let rows = csv_rows(&votes);
    assert!(rows.iter().all(|r| r[1].starts_with("a/")));
    assert!(rows
        .iter()
        .all(|r| r[0].split('/').next() == Some(r[2].as_str())));

    // IDX and synth: data hold grayscale images: asking for 3 channels is an error.
    let o = microtask(&[
        "train",
        "--data",
        "synth:100",
        "--channels",
        "3",
        "--out",
        dir.path().join("x.safetensors").to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["synth:100", "grayscale"]);
}

#[test]
fn probabilities_as_npy_and_csv_sum_to_one_and_agree_with_the_votes() {
    let dir = tempdir();
    let votes = dir.path().join("v.csv");
    let npy = dir.path().join("p.npy");
    let n = 300;
    let o = classify(&[
        "--data",
        &format!("synth:{n}:4"),
        "--out",
        votes.to_str().unwrap(),
        "--probs-out",
        npy.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&npy).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(
        header.contains(&format!("'shape': ({n}, 5, 10)")),
        "{header}"
    );
    assert_eq!((10 + len) % 64, 0);
    let probs: Vec<f32> = bytes[10 + len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(probs.len(), n * 5 * 10);
    let rows = csv_rows(&votes);
    for (p, vote) in probs.chunks_exact(10).zip(&rows) {
        let sum: f32 = p.iter().sum();
        assert!((sum - 1.0).abs() <= 1e-5, "{sum}");
        // Argmax, ties to the lowest class.
        let top = (0..10).fold(0, |b, c| if p[c] > p[b] { c } else { b });
        assert_eq!(vote[2], top.to_string());
        assert_eq!(vote[3], format!("{:.6}", p[top]));
    }
    // The votes are those of a run without --probs-out.
    let plain = dir.path().join("plain.csv");
    let o = classify(&[
        "--data",
        &format!("synth:{n}:4"),
        "--out",
        plain.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let labels = |r: &Vec<Vec<String>>| -> Vec<String> { r.iter().map(|v| v[2].clone()).collect() };
    assert_eq!(labels(&csv_rows(&plain)), labels(&rows));

    // CSV for other names: task,worker,<class>...
    let csv = dir.path().join("p.csv");
    let o = classify(&["--data", "synth:3:4", "--probs-out", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("task,worker,0,1,2,3,4,5,6,7,8,9\n"));
    let first: Vec<f32> = csv_rows(&csv)[0][2..]
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(first, probs[..10]);
}

#[test]
fn old_model_files_without_channels_or_input_still_load() {
    let model = microtask::model::Ensemble::load(Path::new(MODEL)).unwrap();
    assert_eq!(
        (model.channels, model.input),
        (1, microtask::model::InputKind::Pixels)
    );
    assert!(model.class_names.is_empty());
}

#[test]
fn numeric_flags_are_checked_by_clap() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "train",
                "--data",
                "synth:10",
                "--out",
                "x",
                "--learning-rate",
                "NaN",
            ],
            "--learning-rate",
        ),
        (
            &[
                "train",
                "--data",
                "synth:10",
                "--out",
                "x",
                "--learning-rate",
                "inf",
            ],
            "--learning-rate",
        ),
        (
            &["train", "--data", "synth:10", "--out", "x", "--epochs", "0"],
            "--epochs",
        ),
        (
            &[
                "train",
                "--data",
                "synth:10",
                "--out",
                "x",
                "--channels",
                "2",
            ],
            "--channels",
        ),
        (&["run", "--gold-every", "0"], "--gold-every"),
        (&["run", "--review-below", "1.5"], "--review-below"),
        (
            &["tally", "--votes", "v", "--out", "o", "--tol", "NaN"],
            "--tol",
        ),
        (
            &["tally", "--votes", "v", "--out", "o", "--smoothing", "0"],
            "--smoothing",
        ),
        (&["bench", "--reps", "0"], "--reps"),
        (
            &["synth-votes", "--out", "o", "--spammers=-0.1"],
            "--spammers",
        ),
    ];
    for (args, flag) in cases {
        let o = microtask(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{args:?}: {}", stderr(&o));
    }
}

/// Accuracy of a labels file (`task,label,...`) against `truth` (task = row index).
fn labels_accuracy(path: &Path, truth: &[u8]) -> f64 {
    let rows = csv_rows(path);
    let correct = rows
        .iter()
        .filter(|r| truth[r[0].parse::<usize>().unwrap()].to_string() == r[1])
        .count();
    correct as f64 / truth.len() as f64
}

/// People and a model on MNIST's test items: 1 to 3 simulated annotators per item (no confidence
/// column), one model worker (with confidences). `mv` must be at least as accurate as a plain count
/// (crowd-kit's MV, ties to the lowest class) and `wmv` at least as accurate as Wawa (weights =
/// agreement with that count). With `MICROTASK_SCENARIO_OUT=DIR` the files are kept there (for
/// `crowdkit_peer.py`).
#[test]
fn people_plus_a_model_mv_and_wmv_are_at_least_as_good_as_a_plain_count() {
    let dir = tempdir();
    let keep = std::env::var_os("MICROTASK_SCENARIO_OUT").map(PathBuf::from);
    let out = keep.clone().unwrap_or_else(|| dir.path().to_path_buf());
    std::fs::create_dir_all(&out).unwrap();
    let truth =
        microtask::data::idx::load_labels(Path::new(&mnist("t10k-labels-idx1-ubyte.gz"))).unwrap();

    // One model worker: worker 0 of the shipped ensemble.
    let one = out.join("digits.safetensors");
    let model = microtask::model::Ensemble::load(Path::new(MODEL)).unwrap();
    model.worker(0).save(&one).unwrap();
    let model_votes = out.join("model.csv");
    let o = microtask(&[
        "classify",
        "--model",
        one.to_str().unwrap(),
        "--data",
        &mnist("t10k-images-idx3-ubyte.gz"),
        "--backend",
        "cpu",
        "--out",
        model_votes.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // 60 annotators of accuracy 0.55..0.95; each item gets 1 to 3 of them; a wrong answer is
    // one of the other 9 classes at random.
    let mut rng = microtask::data::synth::Rng::new(2026);
    let skill: Vec<f32> = (0..60).map(|_| rng.range(0.55, 0.95)).collect();
    let mut crowd = String::from("task,worker,label\n");
    let mut gold = String::from("task,label\n");
    let mut answers: Vec<Vec<(String, u32)>> = Vec::new();
    for (i, &t) in truth.iter().enumerate() {
        let k = 1 + rng.below(3) as usize;
        let mut who: Vec<usize> = Vec::new();
        while who.len() < k {
            let w = rng.below(60) as usize;
            if !who.contains(&w) {
                who.push(w);
            }
        }
        let mut item = Vec::new();
        for w in who {
            let label = if rng.range(0.0, 1.0) < skill[w] {
                t as u32
            } else {
                (t as u32 + 1 + rng.below(9) as u32) % 10
            };
            crowd.push_str(&format!("{i},h{w},{label}\n"));
            item.push((format!("h{w}"), label));
        }
        answers.push(item);
        gold.push_str(&format!("{i},{t}\n"));
    }
    let (crowd_path, gold_path) = (out.join("crowd.csv"), out.join("gold.csv"));
    std::fs::write(&crowd_path, crowd).unwrap();
    std::fs::write(&gold_path, gold).unwrap();

    // crowd-kit's MV: most answers, ties to the lowest class; model answers counted alike. Then
    // Wawa: each worker weighted by its agreement with that vote.
    let model_rows = csv_rows(&model_votes);
    let items: Vec<Vec<(String, u32)>> = answers
        .iter()
        .zip(&model_rows)
        .map(|(people, m)| {
            let mut all: Vec<(String, u32)> = Vec::new();
            all.push((m[1].clone(), m[2].parse().unwrap()));
            all.extend(people.iter().cloned());
            all
        })
        .collect();
    let argmax =
        |score: &[f64; 10]| (0..10).fold(0, |b, c| if score[c] > score[b] { c } else { b });
    let count_vote: Vec<usize> = items
        .iter()
        .map(|a| {
            let mut score = [0f64; 10];
            a.iter().for_each(|(_, l)| score[*l as usize] += 1.0);
            argmax(&score)
        })
        .collect();
    let mut agree: std::collections::HashMap<&str, (f64, f64)> = Default::default();
    for (a, &v) in items.iter().zip(&count_vote) {
        for (w, l) in a {
            let e = agree.entry(w.as_str()).or_default();
            e.0 += (*l as usize == v) as u32 as f64;
            e.1 += 1.0;
        }
    }
    let wawa: Vec<usize> = items
        .iter()
        .map(|a| {
            let mut score = [0f64; 10];
            for (w, l) in a {
                let (ok, n) = agree[w.as_str()];
                score[*l as usize] += ok / n;
            }
            argmax(&score)
        })
        .collect();
    let accuracy = |labels: &[usize]| -> f64 {
        labels
            .iter()
            .zip(&truth)
            .filter(|(l, &t)| **l == t as usize)
            .count() as f64
            / truth.len() as f64
    };
    let (plain, wawa) = (accuracy(&count_vote), accuracy(&wawa));

    let tally = |method: &str| -> f64 {
        let labels = out.join(format!("{method}.csv"));
        let o = microtask(&[
            "tally",
            "--votes",
            model_votes.to_str().unwrap(),
            crowd_path.to_str().unwrap(),
            "--method",
            method,
            "--backend",
            "cpu",
            "--out",
            labels.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        labels_accuracy(&labels, &truth)
    };
    let (mv, wmv) = (tally("mv"), tally("wmv"));
    println!("people + model: mv {mv:.4} (plain count {plain:.4}), wmv {wmv:.4} (Wawa {wawa:.4})");
    assert!(mv >= plain, "mv {mv} < plain count {plain}");
    assert!(wmv >= wawa, "wmv {wmv} < Wawa {wawa}");
}

/// Runs the binary without `XDG_RUNTIME_DIR` (cargo's `[env]` sets one for the tests).
fn without_runtime_dir(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_microtask"))
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("the microtask binary runs")
}

#[test]
fn no_mesa_runtime_dir_noise_without_xdg_runtime_dir() {
    let dir = tempdir();
    let votes = dir.path().join("v.csv");
    std::fs::write(&votes, "task,worker,label\n1,a,0\n1,b,1\n").unwrap();
    let out = dir.path().join("o.csv");
    let runs: [&[&str]; 3] = [
        // A small tally never looks for adapters.
        &[
            "tally",
            "--votes",
            votes.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        // `auto` looks for a hardware GPU (the drivers are loaded).
        &[
            "run",
            "--data",
            "synth:600",
            "--workers",
            "1",
            "--epochs",
            "1",
        ],
        &["classify", "--model", MODEL, "--data", "synth:10"],
    ];
    for args in runs {
        let o = without_runtime_dir(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("XDG_RUNTIME_DIR"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    // A small tally says why it did not look for a GPU.
    let o = without_runtime_dir(&[
        "tally",
        "--votes",
        votes.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        stdout(&o).contains("fewer than the 1000000"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_figure_on_no_items_is_not_printed() {
    // Every test item a gold question: no "other items" to score Dawid-Skene+gold on.
    let o = microtask(&[
        "run",
        "--data",
        "synth:600",
        "--workers",
        "1",
        "--epochs",
        "1",
        "--gold-every",
        "1",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("dawid-skene "), "{out}");
    assert!(!out.contains("dawid-skene+gold"), "{out}");
    assert!(
        out.contains("model/0"),
        "run names its workers model/<r>: {out}"
    );
}

#[test]
fn votes_joined_with_cat_are_refused_naming_the_second_header_line() {
    let dir = tempdir();
    let joined = dir.path().join("ab.csv");
    std::fs::write(
        &joined,
        "task,worker,label\n1,a,0\n1,b,1\ntask,worker,label,confidence\n2,m/0,1,0.9\n",
    )
    .unwrap();
    let out = dir.path().join("labels.csv");
    let o = microtask(&[
        "tally",
        "--votes",
        joined.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["ab.csv:4", "second header line"]);
    assert!(!out.exists());
}

#[test]
fn probabilities_are_written_by_whole_runs_only() {
    let dir = tempdir();
    let probs = dir.path().join("p.npy");
    let o = classify(&[
        "--data",
        "synth:10",
        "--shard",
        "0/2",
        "--out",
        dir.path().join("parts").to_str().unwrap(),
        "--probs-out",
        probs.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--probs-out"), "{}", stderr(&o));
    assert!(!probs.exists());
    // The same file for votes and probabilities: refused before any work.
    let o = classify(&[
        "--data",
        "synth:10",
        "--out",
        probs.to_str().unwrap(),
        "--probs-out",
        probs.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!probs.exists());
}
