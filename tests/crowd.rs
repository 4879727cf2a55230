//! Crowd answers: reading votes, majority vote and Dawid-Skene against crowd-kit's accuracy on
//! real data, quality control, review, synthetic crowds, bad input, and `tally` end to end.

mod common;

use common::*;
use microtask::aggregate::{self, quality, review, DsOptions, Method, Options};
use microtask::backend::cpu::CpuBackend;
use microtask::backend::{Backend, TaskLabel};
use microtask::data::synth_votes::{generate, CrowdConfig};
use microtask::data::votes::{read_gold, read_votes, Gold, VoteTable, NO_LABEL};
use microtask::Error;
use std::path::{Path, PathBuf};

/// crowd-kit 1.4.2's accuracy (MV, DS) on the shared sets (../shared/data/README.md).
const CROWD_KIT: [(&str, f64, f64); 5] = [
    ("rte", 0.8750, 0.9275),
    ("temp", 0.9394, 0.9416),
    ("dog", 0.8116, 0.8426),
    ("product", 0.8966, 0.9397),
    ("sentiment", 0.9320, 0.9600),
];

fn crowd_set(name: &str) -> (PathBuf, PathBuf) {
    let dir = shared_data().join("crowd").join(name);
    let (v, g) = (dir.join("votes.csv"), dir.join("gold.csv"));
    assert!(
        v.is_file() && g.is_file(),
        "crowd set {name} missing at {}",
        dir.display()
    );
    (v, g)
}

fn backend() -> CpuBackend {
    CpuBackend::new("tests")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Aggregates without letting the method see gold, then scores on gold.
fn accuracy(votes: &VoteTable, gold: &Gold, method: Method) -> (f64, usize) {
    let agg = aggregate::aggregate(votes, None, &Options::new(method), &backend()).unwrap();
    let s = quality::score(&agg, gold);
    (s.accuracy(), agg.iterations)
}

#[test]
fn mv_and_ds_match_crowd_kit_on_real_data() {
    let mut report = String::new();
    let mut failures = Vec::new();
    for (name, ck_mv, ck_ds) in CROWD_KIT {
        let (v, g) = crowd_set(name);
        let loaded = read_votes(&[&v]).unwrap();
        let votes = &loaded.table;
        let gold = read_gold(&g, votes).unwrap();
        let (mv, _) = accuracy(votes, &gold, Method::Mv);
        let (wmv, _) = accuracy(votes, &gold, Method::Wmv);
        let (ds, iters) = accuracy(votes, &gold, Method::Ds);
        report.push_str(&format!(
            "{name:10} tasks {:5} answers {:6} dup {:3} gold {:5}: mv {mv:.4} (crowd-kit {ck_mv:.4}) \
             wmv {wmv:.4} ds {ds:.4} (crowd-kit {ck_ds:.4}, {iters} iters)\n",
            votes.n_tasks(),
            votes.len(),
            loaded.duplicates,
            gold.tasks
        ));
        if mv < ck_mv - 0.005 {
            failures.push(format!("{name}: mv {mv:.4} < crowd-kit {ck_mv:.4} - 0.005"));
        }
        if ds < ck_ds - 0.005 {
            failures.push(format!("{name}: ds {ds:.4} < crowd-kit {ck_ds:.4} - 0.005"));
        }
    }
    eprint!("{report}");
    assert!(failures.is_empty(), "{failures:?}\n{report}");
}

#[test]
fn ds_with_gold_clamps_and_scores_honestly() {
    let (v, g) = crowd_set("rte");
    let votes = read_votes(&[&v]).unwrap().table;
    let gold = read_gold(&g, &votes).unwrap();
    // Half the gold is given to the fit; all of it scores.
    let mut half = gold.clone();
    for (t, l) in half.label.iter_mut().enumerate() {
        if t % 2 == 1 {
            *l = NO_LABEL;
        }
    }
    let half = Gold::from_labels(half.label);
    let agg =
        aggregate::aggregate(&votes, Some(&half), &Options::new(Method::Ds), &backend()).unwrap();
    for t in 0..votes.n_tasks() {
        if let Some(gl) = half.get(t) {
            assert_eq!(agg.labels[t].label, gl, "clamped task keeps its gold label");
            assert_eq!(agg.labels[t].confidence, 1.0);
        }
    }
    let s = quality::score(&agg, &gold);
    assert_eq!(s.tasks, gold.tasks);
    assert!(s.accuracy() < 0.999, "unclamped labels are scored");
    assert!(s.accuracy() > 0.9, "{}", s.accuracy());
    // Workers: gold accuracy and DS estimates are in [0, 1] and roughly agree overall.
    let w = quality::workers(&votes, &agg, Some(&gold));
    assert_eq!(w.len(), votes.n_workers());
    assert_eq!(
        w.iter().map(|q| q.answers as usize).sum::<usize>(),
        votes.len()
    );
    let (mut est, mut gacc, mut n) = (0.0, 0.0, 0.0);
    for q in &w {
        assert!((0.0..=1.0).contains(&q.estimated_accuracy));
        assert!((0.0..=1.0).contains(&q.agreement));
        if let Some(a) = q.gold_accuracy() {
            est += q.estimated_accuracy as f64 * q.answers as f64;
            gacc += a as f64 * q.answers as f64;
            n += q.answers as f64;
        }
    }
    assert!(((est - gacc) / n).abs() < 0.05, "{} {}", est / n, gacc / n);
    // WMV with gold weights is at least as good as MV here.
    let wmv =
        aggregate::aggregate(&votes, Some(&gold), &Options::new(Method::Wmv), &backend()).unwrap();
    let mv = aggregate::aggregate(&votes, None, &Options::new(Method::Mv), &backend()).unwrap();
    assert!(quality::score(&wmv, &gold).accuracy() >= quality::score(&mv, &gold).accuracy());
}

#[test]
fn ds_iterations_and_tolerance() {
    let (v, _) = crowd_set("dog");
    let votes = read_votes(&[&v]).unwrap().table;
    let run = |max_iters, tol| {
        let opts = Options {
            method: Method::Ds,
            ds: DsOptions {
                max_iters,
                tol,
                ..DsOptions::default()
            },
            posteriors: false,
        };
        aggregate::aggregate(&votes, None, &opts, &backend()).unwrap()
    };
    let exact = run(7, 0.0);
    assert_eq!(exact.iterations, 7);
    let conv = run(500, 1e-6);
    assert!(
        conv.iterations < 500 && conv.iterations > 1,
        "{}",
        conv.iterations
    );
    // EM does not lower the (smoothed) likelihood much from one iteration to the next.
    let (a, b) = (run(3, 0.0), run(4, 0.0));
    assert!(b.log_likelihood.unwrap() >= a.log_likelihood.unwrap() - 1e-3);
    let zero = run(0, 0.0);
    assert_eq!(zero.iterations, 0);
    assert!(zero.log_likelihood.is_none());
    for agg in [&exact, &conv, &zero] {
        let p = agg.posteriors.as_ref().unwrap();
        assert!(p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    }
}

#[test]
fn ds_recovers_a_synthetic_crowd_better_than_mv() {
    let crowd = generate(&CrowdConfig::new(100_000, 200, 5, 4, 11)).unwrap();
    let votes = crowd.to_table();
    let gold = Gold::from_labels(crowd.truth.clone());
    let (mv, _) = accuracy(&votes, &gold, Method::Mv);
    let (wmv, _) = accuracy(&votes, &gold, Method::Wmv);
    let (ds, _) = accuracy(&votes, &gold, Method::Ds);
    eprintln!("synthetic 100k x 5, 4 classes: mv {mv:.4} wmv {wmv:.4} ds {ds:.4}");
    assert!(ds > mv + 0.02, "ds {ds} mv {mv}");
    assert!(wmv >= mv - 0.005, "wmv {wmv} mv {mv}");
    // DS estimates of worker accuracy track the simulated truth.
    let agg = aggregate::aggregate(&votes, None, &Options::new(Method::Ds), &backend()).unwrap();
    let w = quality::workers(&votes, &agg, None);
    let err: f32 = w
        .iter()
        .zip(&crowd.accuracy)
        .map(|(q, a)| (q.estimated_accuracy - a).abs())
        .sum::<f32>()
        / w.len() as f32;
    assert!(err < 0.05, "mean |estimated - true accuracy| = {err}");
    let model = agg.model.unwrap();
    let err2: f32 = (0..votes.n_workers())
        .map(|i| (model.worker_accuracy(i) - crowd.accuracy[i]).abs())
        .sum::<f32>()
        / votes.n_workers() as f32;
    assert!(err2 < 0.05, "model worker accuracy error {err2}");
}

#[test]
fn ds_with_a_large_model_uses_the_by_worker_m_step() {
    // 20,000 workers x 40 classes: per-block copies of the counts would dwarf the 15,000
    // answers, so the driver takes the separate E-step + by-worker M-step path.
    let crowd = generate(&CrowdConfig::new(3000, 20_000, 5, 40, 3)).unwrap();
    let votes = crowd.to_table();
    let gold = Gold::from_labels(crowd.truth.clone());
    let (mv, _) = accuracy(&votes, &gold, Method::Mv);
    let opts = Options {
        method: Method::Ds,
        ds: DsOptions {
            max_iters: 5,
            tol: 0.0,
            ..DsOptions::default()
        },
        posteriors: false,
    };
    let agg = aggregate::aggregate(&votes, None, &opts, &backend()).unwrap();
    assert_eq!(agg.iterations, 5);
    assert!(agg.log_likelihood.unwrap().is_finite());
    let ds = quality::score(&agg, &gold).accuracy();
    assert!(ds >= mv - 0.02, "ds {ds} mv {mv}");
    assert!(agg
        .posteriors
        .unwrap()
        .iter()
        .all(|p| p.is_finite() && (0.0..=1.0).contains(p)));
}

#[test]
fn review_lists_low_confidence_tasks_in_order() {
    let (v, _) = crowd_set("temp");
    let votes = read_votes(&[&v]).unwrap().table;
    let agg = aggregate::aggregate(&votes, None, &Options::new(Method::Ds), &backend()).unwrap();
    let items = review::review(&agg.labels, 0.9, votes.n_classes(), 0.8);
    assert_eq!(items.len(), review::count_below(&agg.labels, 0.9));
    assert!(!items.is_empty());
    for p in items.windows(2) {
        assert!(p[0].confidence <= p[1].confidence);
    }
    for r in &items {
        assert!(r.confidence < 0.9);
        assert!((1..=review::MAX_SUGGESTED).contains(&r.suggested));
    }
}

#[test]
fn edge_cases_give_sensible_results() {
    let d = tempfile::tempdir().unwrap();
    // A task with one answer; a worker who answers everything the same; a label only in the
    // second file.
    let a = write(
        d.path(),
        "a.csv",
        "task,worker,label\nt1,good,x\nt1,same,x\nt1,other,x\nt2,good,y\nt2,same,x\nt2,other,y\n\
         t3,good,x\nt3,same,x\nt3,other,x\nt4,same,x\n",
    );
    let b = write(
        d.path(),
        "b.csv",
        "task,worker,label\nt5,good,z\nt5,other,z\nt5,same,x\n",
    );
    let loaded = read_votes(&[&a, &b]).unwrap();
    let votes = &loaded.table;
    assert_eq!(votes.classes, vec!["x", "y", "z"]);
    // kos takes two classes only.
    for method in Method::ALL.into_iter().filter(|&m| m != Method::Kos) {
        let agg = aggregate::aggregate(votes, None, &Options::new(method), &backend()).unwrap();
        let name = |t: usize| votes.classes[agg.labels[t].label as usize].as_str();
        assert_eq!(name(0), "x", "{method}");
        assert_eq!(name(1), "y", "{method}");
        assert_eq!(name(4), "z", "{method}");
        // t4 has one answer (from the constant worker): labelled with it, 1 answer.
        assert_eq!(name(3), "x", "{method}");
        assert_eq!(agg.labels[3].answers, 1);
        for l in &agg.labels {
            assert!(l.confidence.is_finite() && l.confidence > 0.0 && l.confidence <= 1.0);
        }
        let w = quality::workers(votes, &agg, None);
        assert!(w.iter().all(|q| q.estimated_accuracy.is_finite()));
    }
    // Everybody answers the same for everything: one class, no NaN.
    let same = write(
        d.path(),
        "same.csv",
        "task,worker,label\n1,a,k\n1,b,k\n2,a,k\n3,b,k\n",
    );
    let votes = read_votes(&[&same]).unwrap().table;
    for method in Method::ALL {
        let agg = aggregate::aggregate(&votes, None, &Options::new(method), &backend()).unwrap();
        assert!(agg
            .labels
            .iter()
            .all(|l| l.label == 0 && l.confidence == 1.0));
    }
}

#[test]
fn gold_handling() {
    let d = tempfile::tempdir().unwrap();
    let v = write(
        d.path(),
        "v.csv",
        "task,worker,label\na,w1,1\na,w2,1\nb,w1,2\nb,w2,1\n",
    );
    let votes = read_votes(&[&v]).unwrap().table;
    // A gold task absent from the votes: ignored and counted.
    let g = write(d.path(), "g.csv", "task,label\na,1\nzzz,2\nb,2\n");
    let gold = read_gold(&g, &votes).unwrap();
    assert_eq!((gold.tasks, gold.absent), (2, 1));
    // None of the gold tasks in the votes: an error.
    let g = write(d.path(), "g2.csv", "task,label\nq,1\n");
    let e = read_gold(&g, &votes).unwrap_err().to_string();
    assert!(e.contains("none of its 1 gold tasks"), "{e}");
    // A gold label that no vote used: an error naming the line.
    let g = write(d.path(), "g3.csv", "task,label\na,1\nb,3\n");
    match read_gold(&g, &votes) {
        Err(Error::Row { line, problem, .. }) => {
            assert_eq!(line, 3);
            assert!(
                problem.contains("not among the votes' classes"),
                "{problem}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Two different gold labels for one task.
    let g = write(d.path(), "g4.csv", "task,label\na,1\na,2\n");
    assert!(matches!(
        read_gold(&g, &votes),
        Err(Error::Row { line: 3, .. })
    ));
}

#[test]
fn bad_votes_files() {
    let d = tempfile::tempdir().unwrap();
    let empty = write(d.path(), "empty.csv", "");
    let e = read_votes(&[&empty]).unwrap_err().to_string();
    assert!(e.contains("empty.csv") && e.contains("empty file"), "{e}");
    let header = write(d.path(), "header.csv", "task,worker,label\n");
    let e = read_votes(&[&header]).unwrap_err().to_string();
    assert!(e.contains("header.csv") && e.contains("no answers"), "{e}");
    let bad = write(
        d.path(),
        "bad.csv",
        "task,worker,label\nt1,w1,1\nt2,w1,1\nt3;w1;1\n",
    );
    match read_votes(&[&bad]) {
        Err(e @ Error::Row { .. }) => {
            let s = e.to_string();
            assert!(s.contains("bad.csv:4:"), "{s}");
        }
        other => panic!("{other:?}"),
    }
    // The error names the second file when it is the bad one.
    let good = write(d.path(), "good.csv", "task,worker,label\nt1,w1,1\n");
    let e = read_votes(&[&good, &bad]).unwrap_err().to_string();
    assert!(e.contains("bad.csv:4:"), "{e}");
    let noheader = write(d.path(), "noheader.csv", "t1,w1,1\n");
    let e = read_votes(&[&noheader]).unwrap_err().to_string();
    assert!(e.contains("noheader.csv:1:") && e.contains("header"), "{e}");
}

#[test]
fn duplicate_answers_keep_the_last() {
    let d = tempfile::tempdir().unwrap();
    let a = write(
        d.path(),
        "a.csv",
        "task,worker,label\nt,w1,0\nt,w2,0\nt,w3,1\nt,w1,1\n",
    );
    let loaded = read_votes(&[&a]).unwrap();
    assert_eq!(loaded.duplicates, 1);
    assert_eq!(loaded.table.len(), 3);
    let agg =
        aggregate::aggregate(&loaded.table, None, &Options::new(Method::Mv), &backend()).unwrap();
    // w1's last answer (1) counts: 1 wins 2-1.
    assert_eq!(loaded.table.classes[agg.labels[0].label as usize], "1");
    // A review round's answers in a second file replace the first ones.
    let b = write(d.path(), "b.csv", "task,worker,label\nt,w3,0\n");
    let loaded = read_votes(&[&a, &b]).unwrap();
    assert_eq!(loaded.duplicates, 2);
    let agg = backend().majority(&loaded.table).unwrap();
    assert_eq!(
        agg[0],
        TaskLabel {
            label: 0,
            confidence: 2.0 / 3.0,
            answers: 3
        }
    );
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn tally_cli_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    let (v, g) = crowd_set("rte");
    let out = d.path().join("labels.csv");
    let workers = d.path().join("workers.csv");
    let rev = d.path().join("review.csv");
    let post = d.path().join("post.csv");
    let o = microtask(&[
        "tally",
        "--votes",
        v.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--method",
        "ds",
        "--gold",
        g.to_str().unwrap(),
        "--gold-score-only",
        "--workers-out",
        workers.to_str().unwrap(),
        "--review-out",
        rev.to_str().unwrap(),
        "--review-below",
        "0.8",
        "--posteriors-out",
        post.to_str().unwrap(),
        "--json",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["method"], "ds");
    assert_eq!(j["tasks"], 800);
    assert_eq!(j["answers"], 8000);
    assert!(j["accuracy"].as_f64().unwrap() >= 0.9275 - 0.005, "{j}");
    assert!(j["iterations"].as_u64().unwrap() >= 1);
    assert!(j["log_likelihood"].as_f64().unwrap() < 0.0);
    assert!(j["seconds"].as_f64().unwrap() >= 0.0);
    let l = lines(&out);
    assert_eq!(l[0], "task,label,confidence,answers");
    assert_eq!(l.len(), 801);
    assert!(l[1].starts_with("266,"), "original task ids: {}", l[1]);
    assert!(l[1].ends_with(",10"), "10 answers: {}", l[1]);
    let w = lines(&workers);
    assert_eq!(
        w[0],
        "worker,answers,agreement,estimated_accuracy,gold_answers,gold_accuracy"
    );
    assert_eq!(w.len(), 165);
    let r = lines(&rev);
    assert_eq!(
        r[0],
        "task,label,confidence,answers,suggested_answers,value"
    );
    assert_eq!(r.len() as u64 - 1, j["under_review"].as_u64().unwrap());
    assert_eq!(lines(&post)[0], "task,0,1");

    // Text report, the default method (bayes, issue 11); two votes files.
    let (v2, _) = crowd_set("temp");
    let o = microtask(&[
        "tally",
        "--votes",
        v.to_str().unwrap(),
        "--votes",
        v2.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("method bayes"), "{}", stdout(&o));
    assert_eq!(lines(&out).len(), 1 + 800 + 462);
}

#[test]
fn tally_cli_bad_input_exits_1_without_output() {
    let d = tempfile::tempdir().unwrap();
    let good = write(
        d.path(),
        "good.csv",
        "task,worker,label\nt1,w1,1\nt1,w2,1\n",
    );
    let bad = write(d.path(), "bad.csv", "task,worker,label\nt1,w1,1\nt2\n");
    let empty = write(d.path(), "empty.csv", "");
    let header = write(d.path(), "header.csv", "task,worker,label\n");
    let badgold = write(d.path(), "gold.csv", "task,label\nt1,7\n");
    let out = d.path().join("labels.csv");
    let o = out.to_str().unwrap();
    let missing = d.path().join("missing.csv");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--votes", bad.to_str().unwrap()], "bad.csv:3:"),
        (vec!["--votes", empty.to_str().unwrap()], "empty.csv"),
        (vec!["--votes", header.to_str().unwrap()], "header.csv"),
        (
            vec![
                "--votes",
                good.to_str().unwrap(),
                "--gold",
                badgold.to_str().unwrap(),
            ],
            "gold.csv:2:",
        ),
        (vec!["--votes", missing.to_str().unwrap()], "missing.csv"),
    ];
    for method in ["mv", "wmv", "ds"] {
        for (args, needle) in &cases {
            let mut all = vec!["tally", "--out", o, "--method", method];
            all.extend(args);
            let r = microtask(&all);
            assert_eq!(r.status.code(), Some(1), "{all:?}: {}", stderr(&r));
            let e = stderr(&r);
            assert!(e.contains(needle), "{all:?}: {e}");
            // The error is one line (a GPU probe may print its own notes before it).
            let last = e.trim().lines().last().unwrap_or("");
            assert!(last.starts_with("error: ") && last.contains(needle), "{e}");
            assert!(!out.exists(), "no output after {all:?}");
        }
    }
    // Usage errors exit 2.
    let r = microtask(&["tally", "--votes", good.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let r = microtask(&[
        "tally",
        "--votes",
        good.to_str().unwrap(),
        "--out",
        o,
        "--review-out",
        "r.csv",
    ]);
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn synth_votes_cli_writes_votes_and_gold() {
    let d = tempfile::tempdir().unwrap();
    let v = d.path().join("v.csv");
    let g = d.path().join("g.csv");
    let args = [
        "synth-votes",
        "--tasks",
        "2000",
        "--workers",
        "30",
        "--per-task",
        "3",
        "--classes",
        "3",
        "--seed",
        "5",
        "--out",
        v.to_str().unwrap(),
        "--gold-out",
        g.to_str().unwrap(),
    ];
    let o = microtask(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = std::fs::read(&v).unwrap();
    assert_eq!(microtask(&args).status.code(), Some(0));
    assert_eq!(std::fs::read(&v).unwrap(), first, "same seed, same file");
    let loaded = read_votes(&[&v]).unwrap();
    assert_eq!(loaded.table.len(), 6000);
    assert_eq!(loaded.duplicates, 0);
    let gold = read_gold(&g, &loaded.table).unwrap();
    assert_eq!(gold.tasks, 2000);
    let (ds, _) = accuracy(&loaded.table, &gold, Method::Ds);
    assert!(ds > 0.8, "{ds}");
    // Impossible: more answers per task than workers.
    let o = microtask(&[
        "synth-votes",
        "--tasks",
        "10",
        "--workers",
        "2",
        "--per-task",
        "3",
        "--out",
        v.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
}

/// Bad input to every method, through the CLI with every output: one answer, one class, a worker
/// with one answer, gold contradicting every answer: a result with no NaN or infinity in any
/// file; an empty file: a clear error and no output. kos on more than two classes: a clear error.
#[test]
fn every_method_on_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, Option<&str>); 4] = [
        ("one answer", "task,worker,label\nt,w,x\n", None),
        (
            "one class",
            "task,worker,label\n1,a,k\n1,b,k\n2,a,k\n",
            None,
        ),
        (
            "a worker with one answer",
            "task,worker,label\n1,a,x\n1,b,x\n2,a,y\n2,b,y\n3,a,x\n3,b,y\n3,c,y\n",
            None,
        ),
        (
            "gold against every answer",
            "task,worker,label\n1,a,x\n1,b,x\n2,a,x\n2,b,x\n3,a,y\n3,b,y\n",
            Some("task,label\n1,y\n2,y\n3,x\n"),
        ),
    ];
    let arg = |p: &Path| p.to_str().unwrap().to_string();
    for m in Method::ALL {
        for (i, (what, votes, gold)) in cases.iter().enumerate() {
            let v = write(d.path(), &format!("v{i}.csv"), votes);
            let outs: Vec<PathBuf> = ["l", "w", "r", "p"]
                .iter()
                .map(|f| d.path().join(format!("{f}-{}-{i}.csv", m.name())))
                .collect();
            let mut a: Vec<String> = [
                "tally",
                "--method",
                m.name(),
                "--backend",
                "cpu",
                "--review-below",
                "1",
            ]
            .map(String::from)
            .to_vec();
            a.extend(["--votes".into(), arg(&v), "--out".into(), arg(&outs[0])]);
            a.extend(["--workers-out".into(), arg(&outs[1])]);
            a.extend(["--review-out".into(), arg(&outs[2])]);
            a.extend(["--posteriors-out".into(), arg(&outs[3])]);
            if let Some(g) = gold {
                let g = write(d.path(), &format!("g{i}.csv"), g);
                a.extend(["--gold".into(), arg(&g)]);
            }
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let o = microtask(&a);
            assert!(o.status.success(), "{m} on {what}: {}", stderr(&o));
            for f in &outs {
                let text = std::fs::read_to_string(f).unwrap().to_lowercase();
                assert!(
                    !text.contains("nan") && !text.contains("inf"),
                    "{m} on {what}: {}:\n{text}",
                    f.display()
                );
            }
        }
        let empty = write(d.path(), "empty.csv", "task,worker,label\n");
        let out = d.path().join(format!("empty-{}.csv", m.name()));
        let o = microtask(&[
            "tally",
            "--method",
            m.name(),
            "--votes",
            empty.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{m} on an empty file");
        assert!(stderr(&o).contains("no answers"), "{m}: {}", stderr(&o));
        assert!(!out.exists());
    }
    let three = write(
        d.path(),
        "three.csv",
        "task,worker,label\n1,a,x\n1,b,y\n2,a,z\n",
    );
    let o = microtask(&[
        "tally",
        "--method",
        "kos",
        "--votes",
        three.to_str().unwrap(),
        "--out",
        d.path().join("k.csv").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("two classes"), "{}", stderr(&o));
}
