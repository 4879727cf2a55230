//! Model-aware consensus (`tally --model-probs`) and what to label next (`--review-out` by the
//! value of one more answer) on a synthetic humans-plus-model job; bad model files.
//! The MNIST comparison with cleanlab's CROWDLAB is scripts/model_consensus.py.

mod common;

use common::*;
use microtask::aggregate::methods::SplitMix;
use microtask::aggregate::{self, fitted, quality, review, Method, ModelProbs, Options};
use microtask::backend::cpu::CpuBackend;
use microtask::data::votes::{read_votes, Gold, VoteTable};
use std::path::{Path, PathBuf};

const K: usize = 4;

/// An `.npy` of f32 with the given shape.
fn npy(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    values.iter().for_each(|v| b.extend(v.to_le_bytes()));
    b
}

/// `items` items of K classes; 30 annotators of accuracy 0.45 to 0.8 give 1 or 2 answers to
/// each of the first `answered` items; a 2-member model right about 80% of the time, somewhat
/// overconfident. Returns (votes CSV, probs [items, 2, K], truth).
fn job(items: usize, answered: usize, seed: u64) -> (String, Vec<f32>, Vec<u32>) {
    let mut rng = SplitMix::new(seed);
    let acc: Vec<f64> = (0..30).map(|_| 0.45 + 0.35 * rng.uniform()).collect();
    let mut votes = String::from("task,worker,label\n");
    let mut probs = Vec::with_capacity(items * 2 * K);
    let mut truth = Vec::with_capacity(items);
    for t in 0..items {
        let y = (rng.next_u64() % K as u64) as u32;
        truth.push(y);
        if t < answered {
            let first = rng.next_u64() % 30;
            let n = 1 + rng.next_u64() % 2;
            for j in 0..n {
                let w = (first + 7 * j) % 30;
                let l = if rng.uniform() < acc[w as usize] {
                    y
                } else {
                    (y + 1 + (rng.next_u64() % (K as u64 - 1)) as u32) % K as u32
                };
                votes += &format!("{t},a{w},{l}\n");
            }
        }
        for _ in 0..2 {
            let logits: Vec<f64> = (0..K)
                .map(|c| 3.0 * rng.normal() * 0.6 + if c as u32 == y { 2.2 } else { 0.0 })
                .collect();
            let m = logits.iter().copied().fold(f64::MIN, f64::max);
            let e: Vec<f64> = logits.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            probs.extend(e.iter().map(|v| (v / s) as f32));
        }
    }
    (votes, probs, truth)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

fn accuracy(table: &VoteTable, labels: &[u32], truth: &[u32]) -> f64 {
    let right = labels
        .iter()
        .enumerate()
        .filter(|(t, &l)| {
            let item: usize = table.tasks[*t].parse().expect("numeric task");
            truth[item] == l
        })
        .count();
    right as f64 / labels.len() as f64
}

#[test]
fn the_model_lifts_the_consensus_and_review_ranks_by_value() {
    let d = tempdir();
    let (votes, probs, truth) = job(3000, 2700, 11);
    let v = write(d.path(), "votes.csv", votes.as_bytes());
    let p = write(d.path(), "probs.npy", &npy(&[3000, 2, K], &probs));
    let table = read_votes(&[&v]).expect("votes").table;
    let model = ModelProbs::read(&p).expect("probs");
    let backend = CpuBackend::new("tests");

    let humans = aggregate::aggregate(&table, None, &Options::new(Method::Bayes), &backend)
        .expect("humans only");
    let with = fitted::aggregate(&table, None, Method::Bayes, Some(&model)).expect("with model");
    let labels = |a: &aggregate::Aggregate| a.labels.iter().map(|l| l.label).collect::<Vec<_>>();
    let model_alone: Vec<u32> = (0..table.n_tasks())
        .map(|t| {
            let item: usize = table.tasks[t].parse().expect("numeric");
            let row = &model.probs[item * K..item * K + K];
            let best = (0..K).fold(0, |b, c| if row[c] > row[b] { c } else { b });
            table
                .classes
                .iter()
                .position(|n| n == &best.to_string())
                .expect("class") as u32
        })
        .collect();
    let (h, m, w) = (
        accuracy(&table, &labels(&humans), &truth),
        accuracy(&table, &model_alone, &truth),
        accuracy(&table, &labels(&with), &truth),
    );
    println!("humans {h:.4}, model {m:.4}, humans + model {w:.4}");
    assert!(
        w > h + 0.05 && w > m + 0.02,
        "humans {h}, model {m}, both {w}"
    );
    let part = with.with_model.as_ref().expect("model part");
    assert!(part.weight > 0.1 && part.weight < 10.0, "{}", part.weight);
    assert_eq!(part.covered_tasks, table.n_tasks());
    assert_eq!(part.unanswered.len(), 300);
    assert!(part.unanswered_posteriors.iter().all(|p| p.is_finite()));

    // Review: by value, most valuable first, unanswered tasks among them.
    let acc = quality::mean_accuracy(&quality::workers(&table, &with, None));
    let items = review::by_value(&with, 0.95, K, acc);
    assert!(items.windows(2).all(|p| p[0].value >= p[1].value));
    assert!(items.iter().any(|r| !r.answered) && items.iter().any(|r| r.answered));
    assert!(items.iter().all(|r| r.value.is_finite() && r.value >= 0.0));

    // The CLI end to end: the same figures, a review file with unanswered rows.
    let (out, rev, work) = (
        d.path().join("l.csv"),
        d.path().join("r.csv"),
        d.path().join("w.csv"),
    );
    let o = microtask(&[
        "tally",
        "--votes",
        v.to_str().unwrap(),
        "--model-probs",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--review-out",
        rev.to_str().unwrap(),
        "--review-below",
        "0.95",
        "--workers-out",
        work.to_str().unwrap(),
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("json");
    assert_eq!(j["method"], "bayes");
    assert_eq!(j["model_unanswered"], 300);
    let review = std::fs::read_to_string(&rev).expect("review");
    assert!(review.starts_with("task,label,confidence,answers,suggested_answers,value\n"));
    assert!(review
        .lines()
        .skip(1)
        .any(|l| l.split(',').nth(3) == Some("0")));
    for f in [&out, &rev, &work] {
        let text = std::fs::read_to_string(f).expect("output");
        assert!(!text.to_lowercase().contains("nan"), "{}", f.display());
    }
}

#[test]
fn model_probs_refused_cleanly() {
    let d = tempdir();
    let (votes, probs, _) = job(50, 50, 3);
    let v = write(d.path(), "votes.csv", votes.as_bytes());
    let good = write(d.path(), "probs.npy", &npy(&[50, 2, K], &probs));
    let out = d.path().join("l.csv");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "tally",
            "--votes",
            v.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        microtask(&a)
    };
    let o = run(&["--model-probs", good.to_str().unwrap(), "--method", "ds"]);
    assert_clean_failure(&o, &["--model-probs", "bayes"]);
    let short = write(d.path(), "short.npy", &npy(&[50, 2, K], &probs[..10]));
    assert_clean_failure(
        &run(&["--model-probs", short.to_str().unwrap()]),
        &["short.npy", "bytes"],
    );
    let three = write(d.path(), "three.npy", &npy(&[50, 3], &vec![0.3f32; 150]));
    assert_clean_failure(
        &run(&["--model-probs", three.to_str().unwrap()]),
        &["class '3'"],
    );
    let other_ids = write(d.path(), "few.npy", &npy(&[0, K], &[]));
    assert_clean_failure(
        &run(&["--model-probs", other_ids.to_str().unwrap()]),
        &["no task"],
    );
    assert!(!out.exists(), "no output after a refusal");
}

#[test]
fn gold_is_clamped_with_a_model_too() {
    let (votes, probs, truth) = job(400, 400, 5);
    let d = tempdir();
    let v = write(d.path(), "votes.csv", votes.as_bytes());
    let p = write(d.path(), "probs.npy", &npy(&[400, 2, K], &probs));
    let table = read_votes(&[&v]).expect("votes").table;
    let model = ModelProbs::read(&p).expect("probs");
    let gold = Gold::from_labels(
        (0..table.n_tasks())
            .map(|t| {
                let item: usize = table.tasks[t].parse().expect("numeric");
                let name = truth[item].to_string();
                match table.classes.iter().position(|c| *c == name) {
                    Some(c) if t % 4 == 0 => c as u32,
                    _ => u32::MAX,
                }
            })
            .collect(),
    );
    let a = fitted::aggregate(&table, Some(&gold), Method::Bayes, Some(&model)).expect("fit");
    for (t, l) in a.labels.iter().enumerate() {
        if let Some(g) = gold.get(t) {
            assert_eq!(l.label, g);
            assert_eq!(l.confidence, 1.0);
        }
    }
    let u = a.unclamped.as_ref().expect("unclamped");
    assert!(u
        .iter()
        .enumerate()
        .all(|(t, &x)| (x == u32::MAX) == gold.get(t).is_none()));
}
