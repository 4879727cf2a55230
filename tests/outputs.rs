//! Outputs are all or nothing: checked before any work (an output never replaces an input, two
//! outputs never share a file, the folder exists), and a command's outputs change together.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A small model and an IDX data set (with its labels file) in `dir`.
fn model_and_data(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let model = dir.join("m.safetensors");
    let o = microtask(&[
        "train",
        "--data",
        "synth:300",
        "--workers",
        "2",
        "--epochs",
        "1",
        "--out",
        s(&model),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let data = dir.join("d-images-idx3-ubyte");
    let o = microtask(&["export", "--data", "synth:500", "--out", s(&data)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let labels = dir.join("d-labels-idx1-ubyte");
    assert!(labels.exists());
    (model, data, labels)
}

/// Every file of `dir` by name with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn votes_file(dir: &Path) -> PathBuf {
    let v = dir.join("v.csv");
    std::fs::write(&v, "task,worker,label\n1,a,x\n1,b,x\n2,a,y\n2,b,x\n").unwrap();
    v
}

#[test]
fn an_output_that_is_an_input_is_refused_before_any_work() {
    let dir = tempdir();
    let d = dir.path();
    let (model, data, labels) = model_and_data(d);
    let votes = votes_file(d);
    let before = snapshot(d);
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["tally", "--votes", s(&votes), "--out", s(&votes)],
            vec!["--out", "v.csv", "input --votes"],
        ),
        (
            vec![
                "classify",
                "--model",
                s(&model),
                "--data",
                s(&data),
                "--out",
                s(&data),
            ],
            vec!["--out", "input --data"],
        ),
        (
            vec![
                "classify",
                "--model",
                s(&model),
                "--data",
                s(&data),
                "--out",
                s(&model),
            ],
            vec!["--out", "input --model"],
        ),
        (
            vec![
                "classify",
                "--model",
                s(&model),
                "--data",
                s(&data),
                "--out",
                s(&labels),
            ],
            vec!["--out", "d-labels-idx1-ubyte", "its labels"],
        ),
        (
            vec!["train", "--data", s(&data), "--out", s(&labels)],
            vec!["--out", "its labels"],
        ),
        (
            vec!["export", "--data", s(&data), "--out", s(&data)],
            vec!["--out", "input --data"],
        ),
    ];
    for (args, needles) in &cases {
        let o = microtask(args);
        assert_usage_failure(&o, needles);
        assert_eq!(snapshot(d), before, "{args:?} changed a file");
    }
    // The same file under another spelling (and through a link) is still the input.
    let spelled = d.join(".").join("v.csv");
    let link = d.join("link.csv");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&votes, &link).unwrap();
    for out in [spelled, link] {
        if !out.exists() {
            continue;
        }
        let o = microtask(&["tally", "--votes", s(&votes), "--out", s(&out)]);
        assert_usage_failure(&o, &["would overwrite the input --votes"]);
    }
}

#[test]
fn outputs_that_share_a_file_or_lack_a_folder_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let votes = votes_file(d);
    let l = d.join("l.csv");
    let sub = d.join("adir");
    std::fs::create_dir(&sub).unwrap();
    let before = snapshot(d);
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![
                "--out".into(),
                s(&l).into(),
                "--workers-out".into(),
                s(&l).into(),
            ],
            vec!["--out", "--workers-out", "same file"],
        ),
        (
            vec![
                "--out".into(),
                s(&l).into(),
                "--posteriors-out".into(),
                format!("{}/./l.csv", d.display()),
            ],
            vec!["--posteriors-out", "same file"],
        ),
        (
            vec!["--out".into(), format!("{}/nodir/l.csv", d.display())],
            vec!["nodir", "does not exist"],
        ),
        (
            vec![
                "--out".into(),
                s(&l).into(),
                "--workers-out".into(),
                format!("{}/nodir/w.csv", d.display()),
            ],
            vec!["--workers-out", "does not exist"],
        ),
        (
            vec!["--out".into(), s(&sub).into()],
            vec!["adir", "is a directory"],
        ),
    ];
    for (outs, needles) in &cases {
        let mut args = vec!["tally", "--method", "ds", "--votes", s(&votes)];
        args.extend(outs.iter().map(String::as_str));
        let o = microtask(&args);
        assert_usage_failure(&o, needles);
        assert_eq!(snapshot(d), before, "{args:?} wrote a file");
    }
    let o = microtask(&[
        "classify",
        "--model",
        "no-such-model.safetensors",
        "--data",
        "synth:10",
        "--out",
        s(&sub),
    ]);
    assert_usage_failure(&o, &["--out", "is a directory"]);
}

#[test]
fn gz_export_is_compressed_with_its_labels_and_reads_back() {
    let dir = tempdir();
    let out = dir.path().join("t-images-idx3-ubyte.gz");
    let o = microtask(&["export", "--data", "synth:200:3", "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let labels = dir.path().join("t-labels-idx1-ubyte.gz");
    for f in [&out, &labels] {
        assert_eq!(
            &std::fs::read(f).unwrap()[..2],
            &[0x1f, 0x8b],
            "{f:?} is gzip"
        );
    }
    let set = microtask::data::load(s(&out)).unwrap();
    let raw = microtask::data::load("synth:200:3").unwrap();
    assert_eq!(set.pixels, raw.pixels);
    assert_eq!(set.labels, raw.labels);
    // A name that cannot carry labels says so.
    let o = microtask(&[
        "export",
        "--data",
        "synth:10",
        "--out",
        s(&dir.path().join("plain.idx")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no labels file"), "{}", stderr(&o));
}

#[test]
fn os_errors_name_their_cause_once() {
    let e = microtask::Error::io(
        "votes.csv",
        std::io::Error::from_raw_os_error(28), // ENOSPC
    );
    let text = e.to_string();
    assert!(text.starts_with("votes.csv: "), "{text}");
    assert!(
        std::error::Error::source(&e).is_none(),
        "the cause is in the message, not again in the chain"
    );
}

/// A tiny random generator (xorshift) so that the kill times vary run to run but can be replayed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn a_killed_multi_output_tally_leaves_all_outputs_old_or_all_new() {
    let dir = tempdir();
    let d = dir.path();
    let votes = d.join("votes.csv");
    let o = microtask(&[
        "synth-votes",
        "--tasks",
        "200000",
        "--workers",
        "200",
        "--classes",
        "4",
        "--out",
        s(&votes),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = ["labels.csv", "workers.csv", "review.csv", "post.csv"];
    let args = |dir: &Path, method: &str| -> Vec<String> {
        let mut a: Vec<String> = ["tally", "--votes", s(&votes), "--method", method]
            .iter()
            .map(|x| x.to_string())
            .collect();
        for (flag, name) in ["--out", "--workers-out", "--review-out", "--posteriors-out"]
            .iter()
            .zip(names)
        {
            a.push(flag.to_string());
            a.push(s(&dir.join(name)).to_string());
        }
        a.extend([
            "--review-below".into(),
            "0.9".into(),
            "--backend".into(),
            "cpu".into(),
        ]);
        a
    };
    let run = |a: &[String]| {
        let o = Command::new(env!("CARGO_BIN_EXE_microtask"))
            .args(a)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    // The old outputs (majority vote) and the new ones (Dawid-Skene), each made once.
    let (old_dir, new_dir, work) = (d.join("old"), d.join("new"), d.join("work"));
    for p in [&old_dir, &new_dir, &work] {
        std::fs::create_dir(p).unwrap();
    }
    run(&args(&old_dir, "mv"));
    let t = Instant::now();
    run(&args(&new_dir, "ds"));
    let full = t.elapsed();
    let read = |dir: &Path| -> Vec<Vec<u8>> {
        names
            .iter()
            .map(|n| std::fs::read(dir.join(n)).unwrap_or_default())
            .collect()
    };
    let (old, new) = (read(&old_dir), read(&new_dir));
    assert_ne!(old, new);

    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill times from seed {seed}, full run {full:?}");
    let (mut saw_old, mut saw_new) = (0, 0);
    for _ in 0..12 {
        for (n, bytes) in names.iter().zip(&old) {
            std::fs::write(work.join(n), bytes).unwrap();
        }
        let at = Duration::from_micros(next(&mut seed) % (full.as_micros() as u64 * 11 / 10 + 1));
        let mut child = Command::new(env!("CARGO_BIN_EXE_microtask"))
            .args(args(&work, "ds"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // The next command that checks these outputs completes a commit the kill cut short
        // (between two renames); this one then fails on its missing input, having done nothing.
        let mut recover = args(&work, "ds");
        recover[2] = s(&work.join("no-such-votes.csv")).to_string();
        let o = Command::new(env!("CARGO_BIN_EXE_microtask"))
            .args(&recover)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let now = read(&work);
        if now == old {
            saw_old += 1;
        } else if now == new {
            saw_new += 1;
        } else {
            let which: Vec<_> = names
                .iter()
                .zip(now.iter().zip(&new))
                .map(|(n, (a, b))| format!("{n}: {}", if a == b { "new" } else { "old?" }))
                .collect();
            panic!("killed after {at:?}: outputs mixed: {which:?}");
        }
    }
    eprintln!("all old {saw_old} times, all new {saw_new} times");
    // The temporary files of the killed runs go with the next run.
    run(&args(&work, "ds"));
    let left: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    assert_eq!(read(&work), new);
}
