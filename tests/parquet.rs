//! Parquet outputs and inputs as a user meets them: `classify`, `synth-votes` and `tally` write
//! `.parquet` names as Parquet, `tally` reads them into the same answers as their CSV twins, and
//! pandas and pyarrow read every file (and write files `tally` reads).

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/mnist-5workers.safetensors"
);

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn ok(args: &[&str]) -> String {
    let o = microtask(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

fn classify(data: &str, out: &Path) {
    ok(&[
        "classify",
        "--backend",
        "cpu",
        "--model",
        MODEL,
        "--data",
        data,
        "--out",
        s(out),
    ]);
}

fn tally(votes: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "tally",
        "--backend",
        "cpu",
        "--votes",
        s(votes),
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(&args);
}

fn is_parquet(p: &Path) -> bool {
    std::fs::read(p).is_ok_and(|b| b.len() > 8 && b.starts_with(b"PAR1") && b.ends_with(b"PAR1"))
}

#[test]
fn classify_votes_as_parquet_tally_to_the_same_labels_as_csv() {
    let d = tempfile::tempdir().unwrap();
    let (csv, pq) = (d.path().join("v.csv"), d.path().join("v.parquet"));
    classify("synth:70000:3", &csv);
    classify("synth:70000:3", &pq);
    assert!(is_parquet(&pq));
    for method in ["mv", "ds"] {
        let (a, b) = (d.path().join("a.csv"), d.path().join("b.csv"));
        let (pa, pb) = (d.path().join("pa.csv"), d.path().join("pb.csv"));
        tally(&csv, &a, &["--method", method, "--posteriors-out", s(&pa)]);
        tally(&pq, &b, &["--method", method, "--posteriors-out", s(&pb)]);
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{method}"
        );
        assert_eq!(
            std::fs::read(&pa).unwrap(),
            std::fs::read(&pb).unwrap(),
            "{method}"
        );
    }
}

#[test]
fn synth_votes_as_parquet_read_back_as_the_csv() {
    let d = tempfile::tempdir().unwrap();
    let (csv, pq) = (d.path().join("v.csv"), d.path().join("v.parquet"));
    for out in [&csv, &pq] {
        ok(&[
            "synth-votes",
            "--tasks",
            "3000",
            "--classes",
            "3",
            "--out",
            s(out),
        ]);
    }
    assert!(is_parquet(&pq));
    let (a, b) = (d.path().join("a.csv"), d.path().join("b.csv"));
    tally(
        &csv,
        &a,
        &[
            "--method",
            "ds",
            "--workers-out",
            s(&d.path().join("wa.csv")),
        ],
    );
    tally(
        &pq,
        &b,
        &[
            "--method",
            "ds",
            "--workers-out",
            s(&d.path().join("wb.csv")),
        ],
    );
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let (wa, wb) = (d.path().join("wa.csv"), d.path().join("wb.csv"));
    assert_eq!(std::fs::read(wa).unwrap(), std::fs::read(wb).unwrap());
}

#[test]
fn parquet_where_it_cannot_be_is_refused_before_any_work() {
    let d = tempfile::tempdir().unwrap();
    let v = d.path().join("v.csv");
    ok(&["synth-votes", "--tasks", "100", "--out", s(&v)]);
    let out = d.path().join("l.csv");
    for flag in ["--workers-out", "--review-out"] {
        let p = d.path().join("x.parquet");
        let mut args = vec!["tally", "--votes", s(&v), "--out", s(&out), flag, s(&p)];
        if flag == "--review-out" {
            args.extend(["--review-below", "0.9"]);
        }
        assert_usage_failure(&microtask(&args), &[flag, "CSV only"]);
        assert!(!out.exists() && !p.exists());
    }
    let g = d.path().join("g.parquet");
    let o = microtask(&["synth-votes", "--out", s(&v), "--gold-out", s(&g)]);
    assert_usage_failure(&o, &["--gold-out", "CSV only"]);
    let pq = d.path().join("c.parquet");
    let o = microtask(&[
        "classify",
        "--model",
        MODEL,
        "--data",
        "synth:10",
        "--out",
        s(&pq),
        "--resume",
    ]);
    assert_usage_failure(&o, &["--resume", ".parquet", "not journaled"]);
    let shards = d.path().join("shards");
    let o = microtask(&["merge", s(&shards), "--out", s(&pq)]);
    assert_usage_failure(&o, &["--out", "merge writes the CSV"]);
    assert!(!pq.exists());
}

#[test]
fn a_bad_parquet_votes_file_is_named() {
    let d = tempfile::tempdir().unwrap();
    let fake = d.path().join("fake.parquet");
    std::fs::write(&fake, "task,worker,label\n1,2,3\n").unwrap();
    let o = microtask(&[
        "tally",
        "--votes",
        s(&fake),
        "--out",
        s(&d.path().join("l.csv")),
    ]);
    assert_clean_failure(&o, &["fake.parquet"]);
    // A labels file has no worker column.
    let v = d.path().join("v.csv");
    ok(&["synth-votes", "--tasks", "100", "--out", s(&v)]);
    let labels = d.path().join("labels.parquet");
    tally(&v, &labels, &[]);
    assert!(is_parquet(&labels));
    let o = microtask(&[
        "tally",
        "--votes",
        s(&labels),
        "--out",
        s(&d.path().join("l.csv")),
    ]);
    assert_clean_failure(&o, &["labels.parquet", "no `worker` column"]);
}

/// A Python that imports pyarrow and pandas: `MICROTASK_PYTHON`, the venv
/// `scripts/ci-python-deps.sh` makes (`target/py`), the shared bench venv, or `python3`.
fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut candidates: Vec<PathBuf> = std::env::var_os("MICROTASK_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push(root.join("target/py/bin/python"));
    candidates.push(root.join("../shared/bench/.venv/bin/python"));
    candidates.push("python3".into());
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import pyarrow, pandas"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

const CHECK: &str = r#"
import sys
import numpy as np, pandas as pd, pyarrow.parquet as pq
d = sys.argv[1]

def same(csv, parquet, floats):
    c, p = pd.read_csv(f"{d}/{csv}"), pd.read_parquet(f"{d}/{parquet}")
    assert list(c.columns) == list(p.columns), (csv, list(c.columns), list(p.columns))
    assert len(c) == len(p) and len(c) > 0, (csv, len(c), len(p))
    for col in c.columns:
        if (col not in ("task", "worker")) if isinstance(floats, str) else (col in floats):
            assert np.allclose(c[col].values, p[col].values, rtol=0, atol=1e-6), (csv, col)
        else:
            assert (c[col].values == p[col].values).all(), (csv, col)
    return p

v = same("votes.csv", "votes.parquet", ["confidence"])
assert str(pq.read_table(f"{d}/votes.parquet").schema.field("task").type) == "int64"
assert pq.ParquetFile(f"{d}/votes.parquet").metadata.num_rows == len(v)
same("labels.csv", "labels.parquet", ["confidence"])
same("post.csv", "post.parquet", "all-but-task")
same("probs.csv", "probs.parquet", "all-but-task-worker")
s = same("synth.csv", "synth.parquet", [])
assert pd.api.types.is_string_dtype(s["worker"]) and s["task"].dtype == "int64", s.dtypes

# Files as pandas writes them: strings, a categorical, a missing confidence.
pd.DataFrame({
    "Task": ["a", "a", "b", "b"],
    "worker": pd.Categorical(["x", "y", "x", "y"]),
    "label": ["cat", "dog", "dog", "dog"],
    "confidence": [0.9, None, 1.0, 0.5],
    "note": ["ignored"] * 4,
}).to_parquet(f"{d}/from_pandas.parquet")
print("ok")
"#;

#[test]
fn pandas_and_pyarrow_read_the_files_and_write_files_tally_reads() {
    let Some(py) = python() else {
        assert!(
            !in_ci(),
            "CI needs a Python with pyarrow and pandas: run scripts/ci-python-deps.sh \
             (or set MICROTASK_PYTHON)"
        );
        let _ = std::io::stderr().write_all(
            b"pandas_and_pyarrow_read_the_files: skipped: no Python with pyarrow and pandas \
              (scripts/ci-python-deps.sh makes one; or set MICROTASK_PYTHON)\n",
        );
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n);
    for (votes, probs) in [
        ("votes.csv", "probs.csv"),
        ("votes.parquet", "probs.parquet"),
    ] {
        let (votes, probs) = (p(votes), p(probs));
        let data = "synth:5000:2";
        ok(&[
            "classify",
            "--backend",
            "cpu",
            "--model",
            MODEL,
            "--data",
            data,
            "--out",
            s(&votes),
            "--probs-out",
            s(&probs),
        ]);
    }
    for (labels, post) in [
        ("labels.csv", "post.csv"),
        ("labels.parquet", "post.parquet"),
    ] {
        let post = p(post);
        let extra = ["--method", "ds", "--posteriors-out", s(&post)];
        tally(&p("votes.csv"), &p(labels), &extra);
    }
    for out in ["synth.csv", "synth.parquet"] {
        ok(&["synth-votes", "--tasks", "500", "--out", s(&p(out))]);
    }
    let o = Command::new(&py)
        .args(["-c", CHECK, s(d.path())])
        .output()
        .expect("python runs");
    assert!(
        o.status.success() && stdout(&o).contains("ok"),
        "{}: {}",
        py.display(),
        stderr(&o)
    );
    // The same answers as CSV (a null confidence is an empty field): the same labels.
    let csv = p("from_pandas.csv");
    std::fs::write(
        &csv,
        "task,worker,label,confidence\na,x,cat,0.9\na,y,dog,\nb,x,dog,1.0\nb,y,dog,0.5\n",
    )
    .unwrap();
    for method in ["mv", "ds"] {
        tally(
            &p("from_pandas.parquet"),
            &p("l1.csv"),
            &["--method", method],
        );
        tally(&csv, &p("l2.csv"), &["--method", method]);
        let labels = std::fs::read_to_string(p("l1.csv")).unwrap();
        assert_eq!(
            labels,
            std::fs::read_to_string(p("l2.csv")).unwrap(),
            "{method}"
        );
        assert!(labels.contains("\nb,dog,"), "{labels}");
    }
}
