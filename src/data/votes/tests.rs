//! Unit tests of the votes reader, writer and key helpers.

use super::interner::{hash_bytes, load_le, same_key};
use super::read::sort_class_names;
use super::*;
use crate::error::Error;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn reads_and_maps() {
    let d = tempfile::tempdir().unwrap();
    let a = write(
        d.path(),
        "a.csv",
        "task,worker,label\nt1,w1,10\nt1,w2,2\nt2,w1,2\n",
    );
    let b = write(
        d.path(),
        "b.csv",
        "worker,task,label,confidence\r\nw3,t2,9,0.5\r\n\r\nw1,t3,\"10\",\n",
    );
    let v = read_votes(&[a, b]).unwrap();
    let t = &v.table;
    assert_eq!(t.classes, vec!["2", "9", "10"]);
    assert_eq!(t.tasks, vec!["t1", "t2", "t3"]);
    assert_eq!(t.workers, vec!["w1", "w2", "w3"]);
    assert_eq!(t.task, vec![0, 0, 1, 1, 2]);
    assert_eq!(t.worker, vec![0, 1, 0, 2, 0]);
    assert_eq!(t.label, vec![2, 0, 0, 1, 2]);
    // No confidence column, or an empty field: no confidence (NaN).
    let shown: Vec<String> = t.confidence.iter().map(|c| c.to_string()).collect();
    assert_eq!(shown, ["NaN", "NaN", "NaN", "0.5", "NaN"]);
    t.validate().unwrap();
}

#[test]
fn a_second_header_line_is_an_error_naming_its_line() {
    let d = tempfile::tempdir().unwrap();
    let joined = write(
        d.path(),
        "ab.csv",
        "task,worker,label\nt1,w1,1\nTask,Worker,Label\nt2,w1,2\n",
    );
    let e = read_votes(&[joined]).unwrap_err().to_string();
    assert!(
        e.contains("ab.csv:3:") && e.contains("second header line"),
        "{e}"
    );
    let reordered = write(
        d.path(),
        "cd.csv",
        "task,worker,label\nt1,w1,1\nt2,w1,2\nworker,task,label\n",
    );
    let e = read_votes(&[reordered]).unwrap_err().to_string();
    assert!(e.contains("cd.csv:4:"), "{e}");
}

#[test]
fn parallel_chunks_agree_with_one_piece() {
    // Several chunks, tasks recurring across chunks: ids follow first appearance.
    let d = tempfile::tempdir().unwrap();
    let mut s = String::from("task,worker,label\n");
    let n = 700_000u64;
    let task = |i: u64| {
        if i.is_multiple_of(3) {
            i / 3
        } else {
            (i * 7919) % 40_000
        }
    };
    for i in 0..n {
        s.push_str(&format!("t{},w{},{}\n", task(i), (i * 7) % 101, i % 5));
    }
    let a = write(d.path(), "a.csv", &s);
    let v = read_votes(&[&a]).unwrap();
    let t = &v.table;
    assert_eq!(t.len() as u64 + v.duplicates, n);
    let mut first = std::collections::HashSet::new();
    let mut order = Vec::new();
    for i in 0..n {
        let k = task(i);
        if first.insert(k) {
            order.push(k);
        }
    }
    assert_eq!(t.n_tasks(), order.len());
    for (id, k) in order.iter().enumerate() {
        assert_eq!(t.tasks[id], format!("t{k}"));
    }
    assert_eq!(t.workers[0], "w0");
    assert_eq!(t.workers[1], "w7");
    assert_eq!(t.classes, vec!["0", "1", "2", "3", "4"]);
    t.validate().unwrap();
    // Rows keep their strings (check through the names).
    let mut seen = std::collections::HashSet::new();
    for r in 0..t.len() {
        seen.insert((
            t.tasks[t.task[r] as usize].clone(),
            t.workers[t.worker[r] as usize].clone(),
        ));
    }
    assert_eq!(seen.len(), t.len(), "no duplicate (task, worker) left");
}

#[test]
fn duplicates_keep_the_last() {
    let d = tempfile::tempdir().unwrap();
    let a = write(
        d.path(),
        "a.csv",
        "task,worker,label\nt,w,a\nt,v,a\nt,w,b\n",
    );
    let b = write(d.path(), "b.csv", "task,worker,label\nt,w,c\n");
    let v = read_votes(&[a, b]).unwrap();
    assert_eq!(v.duplicates, 2);
    assert_eq!(v.rows, 4);
    let t = &v.table;
    assert_eq!(t.len(), 2);
    assert_eq!(t.workers[t.worker[1] as usize], "w");
    assert_eq!(t.classes[t.label[1] as usize], "c");
}

#[test]
fn bad_rows_name_the_line() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        ("task,worker,label\nt,w,1\nt,w\n", 3),
        ("task,worker,label\n\nt,w,1\n,w,1\n", 4),
        ("task,worker,label,confidence\nt,w,1,1.5\n", 2),
        ("task,worker,label\nt,w,\"1\n", 2),
        ("t,w,1\n", 1),
    ];
    for (text, line) in cases {
        let p = write(d.path(), "bad.csv", text);
        match read_votes(&[&p]) {
            Err(Error::Row { line: l, path, .. }) => {
                assert_eq!(l, line, "{text:?}");
                assert_eq!(path, p);
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    for text in ["", "\n\n", "task,worker,label\n", "task,worker,label\n\n"] {
        let p = write(d.path(), "empty.csv", text);
        let e = read_votes(&[&p]).unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{text:?}: {e}");
    }
}

#[test]
fn writer_round_trips() {
    let d = tempfile::tempdir().unwrap();
    let t = VoteTable {
        task: vec![0, 1],
        worker: vec![1, 0],
        label: vec![1, 0],
        confidence: vec![0.25, 1.0],
        tasks: vec!["a,b".into(), " x".into()],
        workers: vec!["q\"w".into(), "w".into()],
        classes: vec!["1".into(), "2".into()],
    };
    let p = d.path().join("v.csv");
    write_votes(&p, &t).unwrap();
    let back = read_votes(&[&p]).unwrap().table;
    assert_eq!(back.tasks, t.tasks);
    assert_eq!(back.classes, t.classes);
    assert_eq!(back.label, t.label);
    assert_eq!(back.confidence, t.confidence);
    assert_eq!(back.workers, vec!["w", "q\"w"]);
}

#[test]
fn parquet_writer_round_trips() {
    let d = tempfile::tempdir().unwrap();
    let t = VoteTable {
        task: vec![0, 1, 1],
        worker: vec![1, 0, 1],
        label: vec![1, 0, 0],
        confidence: vec![0.25, f32::NAN, 0.5],
        tasks: vec!["a,b".into(), "7".into()],
        workers: vec!["3".into(), "12".into()],
        classes: vec!["1".into(), "2".into()],
    };
    let p = d.path().join("v.parquet");
    write_votes(&p, &t).unwrap();
    assert!(std::fs::read(&p).unwrap().starts_with(b"PAR1"));
    let back = read_votes(&[&p]).unwrap().table;
    assert_eq!(back.tasks, t.tasks);
    assert_eq!(back.classes, t.classes);
    assert_eq!(back.label, t.label);
    // A missing confidence is a null in the file and NaN again when read.
    assert_eq!((back.confidence[0], back.confidence[2]), (0.25, 0.5));
    assert!(back.confidence[1].is_nan());
    // Integer worker names (an Int64 column) come back as the same strings.
    assert_eq!(back.workers, vec!["12", "3"]);
    // Mixed with a CSV file: one id space.
    let c = d.path().join("more.csv");
    std::fs::write(&c, "task,worker,label\n7,3,2\n").unwrap();
    let both = read_votes(&[&p, &c]).unwrap();
    assert_eq!(both.duplicates, 1);
    assert_eq!(both.table.n_tasks(), 2);
}

#[test]
fn numeric_class_order() {
    let mut v: Vec<String> = ["10", "-1", "2", "02"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    sort_class_names(&mut v);
    assert_eq!(v, vec!["-1", "02", "2", "10"]);
    let mut v: Vec<String> = ["b", "10", "a"].iter().map(|s| s.to_string()).collect();
    sort_class_names(&mut v);
    assert_eq!(v, vec!["10", "a", "b"]);
}

#[test]
fn short_key_helpers() {
    let keys: Vec<Vec<u8>> = (0..=20)
        .flat_map(|n| {
            [
                (0..n).map(|i| b'a' + i as u8).collect::<Vec<u8>>(),
                (0..n).map(|i| b'a' + (i as u8 * 7) % 26).collect(),
            ]
        })
        .collect();
    for a in &keys {
        if a.len() <= 8 {
            let mut x = [0u8; 8];
            x[..a.len()].copy_from_slice(a);
            assert_eq!(load_le(a), u64::from_le_bytes(x));
        }
        for b in &keys {
            assert_eq!(same_key(a, b), a == b, "{a:?} {b:?}");
            if a == b {
                assert_eq!(hash_bytes(a), hash_bytes(b));
            }
        }
    }
}
