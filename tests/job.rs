//! The classify job beyond one process, as a user runs it: shards (from `--shard`, Slurm and
//! Kubernetes variables) merged into the bytes of one run, merge refusing what does not fit, and
//! runs killed at random moments resumed into the bytes of an uninterrupted run.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Items of the test data: 4 microtasks of 65536 (the last one short), slow enough to generate
/// (synth:) that a run lasts a few seconds and commits a few times.
const DATA: &str = "synth:200000:7";
/// Big enough that a run outlasts the kill times (synth: makes 200k items in a blink).
/// The kill-and-resume test's items and kills (issue 12: five kills during a 5M-item run).
const RESUME_DATA: &str = "synth:5000000:7";
const KILLS: usize = 5;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn train(dir: &Path, name: &str, seed: &str) -> PathBuf {
    let model = dir.join(name);
    let o = microtask(&[
        "train",
        "--data",
        "synth:600",
        "--workers",
        "3",
        "--epochs",
        "1",
        "--seed",
        seed,
        "--out",
        s(&model),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    model
}

fn classify(extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_microtask"));
    c.arg("classify").args(["--backend", "cpu"]).args(extra);
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
        "SLURM_ARRAY_TASK_COUNT",
        "JOB_COMPLETION_INDEX",
    ] {
        c.env_remove(var);
    }
    c.envs(env.iter().copied());
    c.output().expect("microtask runs")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    stdout(o)
}

/// The accuracy lines of a classify or merge summary.
fn accuracy_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.contains("accuracy")).collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for n in names(from) {
        std::fs::copy(from.join(&n), to.join(&n)).unwrap();
    }
}

#[test]
fn shards_merge_into_the_bytes_of_one_run_and_merge_refuses_what_does_not_fit() {
    let dir = tempdir();
    let d = dir.path();
    let model = train(d, "m.safetensors", "1");
    let one = d.join("one.csv");
    let whole = ok(&classify(
        &["--model", s(&model), "--data", DATA, "--out", s(&one)],
        &[],
    ));
    let shards = d.join("shards");
    // Shards 0 and 1 from the flag, 2 from a Slurm array (--array=10-13), 3 from a Kubernetes
    // Indexed Job.
    let base = ["--model", s(&model), "--data", DATA, "--out", s(&shards)];
    for i in 0..2 {
        let shard = format!("{i}/4");
        let mut args = base.to_vec();
        args.extend(["--shard", &shard]);
        ok(&classify(&args, &[]));
    }
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "12"),
        ("SLURM_ARRAY_TASK_MIN", "10"),
        ("SLURM_ARRAY_TASK_STEP", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ];
    let o = classify(&base, &slurm);
    ok(&o);
    assert!(
        stderr(&o).contains("shard 2/4 (from the Slurm array)"),
        "{}",
        stderr(&o)
    );
    let mut k8s = base.to_vec();
    k8s.extend(["--shards", "4"]);
    let o = classify(&k8s, &[("JOB_COMPLETION_INDEX", "3")]);
    ok(&o);
    assert!(stderr(&o).contains("shard 3/4"), "{}", stderr(&o));
    assert_eq!(
        names(&shards),
        (0..4)
            .flat_map(|i| [format!("part-{i}-of-4.csv"), format!("part-{i}-of-4.json")])
            .collect::<Vec<_>>()
    );

    // Re-running a finished shard does nothing.
    let part0 = shards.join("part-0-of-4.csv");
    let before = std::fs::metadata(&part0).unwrap().modified().unwrap();
    let mut again = base.to_vec();
    again.extend(["--shard", "0/4"]);
    let out = ok(&classify(&again, &[]));
    assert!(out.contains("already done"), "{out}");
    assert_eq!(
        std::fs::metadata(&part0).unwrap().modified().unwrap(),
        before
    );

    let merged = d.join("merged.csv");
    let out = ok(&microtask(&["merge", s(&shards), "--out", s(&merged)]));
    assert!(
        std::fs::read(&merged).unwrap() == std::fs::read(&one).unwrap(),
        "the merged file differs from one run"
    );
    assert_eq!(accuracy_lines(&out), accuracy_lines(&whole), "{out}");

    // tally reads the shard folder as it reads the one-run file.
    let (l1, l2) = (d.join("l1.csv"), d.join("l2.csv"));
    ok(&microtask(&[
        "tally",
        "--votes",
        s(&one),
        "--out",
        s(&l1),
        "--backend",
        "cpu",
    ]));
    ok(&microtask(&[
        "tally",
        "--votes",
        s(&shards),
        "--out",
        s(&l2),
        "--backend",
        "cpu",
    ]));
    assert_eq!(std::fs::read(&l1).unwrap(), std::fs::read(&l2).unwrap());

    // A shard of another model: classify refuses to mix it in, and merge refuses it.
    let other = train(d, "other.safetensors", "2");
    let mut mixed = vec!["--model", s(&other), "--data", DATA, "--out", s(&shards)];
    mixed.extend(["--shard", "1/4"]);
    assert_usage_failure(
        &classify(&mixed, &[]),
        &["part-1-of-4.json", "another model"],
    );
    let foreign = d.join("foreign");
    let mut args = vec!["--model", s(&other), "--data", DATA, "--out", s(&foreign)];
    args.extend(["--shard", "1/4"]);
    ok(&classify(&args, &[]));

    let refused = |name: &str, change: &dyn Fn(&Path), needles: &[&str]| {
        let case = d.join(name);
        copy_dir(&shards, &case);
        change(&case);
        let out = d.join(format!("{name}.csv"));
        let o = microtask(&["merge", s(&case), "--out", s(&out)]);
        assert_clean_failure(&o, needles);
        assert!(!out.exists(), "{name}: merge wrote a file");
        let o = microtask(&["tally", "--votes", s(&case), "--out", s(&out)]);
        assert_clean_failure(&o, needles);
    };
    refused(
        "missing",
        &|c| std::fs::remove_file(c.join("part-2-of-4.json")).unwrap(),
        &["missing", "part-2-of-4.json", "unfinished"],
    );
    refused(
        "mismatched",
        &|c| {
            for ext in ["csv", "json"] {
                let n = format!("part-1-of-4.{ext}");
                std::fs::copy(foreign.join(&n), c.join(&n)).unwrap();
            }
        },
        &["part-1-of-4.json", "another model"],
    );
    refused(
        "other-split",
        &|c| {
            let text = std::fs::read_to_string(c.join("part-3-of-4.json")).unwrap();
            std::fs::write(c.join("part-0-of-2.json"), text).unwrap();
        },
        &["part-0-of-2.json", "says it is shard 3/4"],
    );
    refused(
        "duplicate",
        &|c| {
            let text = std::fs::read_to_string(c.join("part-1-of-4.json")).unwrap();
            std::fs::write(c.join("part-2-of-4.json"), text).unwrap();
        },
        &["duplicate shard 1/4", "part-2-of-4.json"],
    );
    refused(
        "overlapping",
        &|c| {
            let p = c.join("part-2-of-4.json");
            let text = std::fs::read_to_string(&p).unwrap();
            let start = format!("\"start\": {}", 2 * 65536);
            assert!(text.contains(&start), "{text}");
            std::fs::write(&p, text.replace(&start, "\"start\": 100000")).unwrap();
        },
        &["part-2-of-4.json", "overlapping"],
    );
    refused(
        "altered",
        &|c| {
            let p = c.join("part-0-of-4.csv");
            let mut bytes = std::fs::read(&p).unwrap();
            let at = bytes.len() / 2;
            bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
            std::fs::write(&p, bytes).unwrap();
        },
        &["part-0-of-4.csv", "sha256"],
    );
}

/// A tiny random generator (xorshift): kill times vary run to run; the seed is printed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn leftovers(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn a_classify_killed_at_random_moments_resumes_into_the_bytes_of_one_run() {
    let dir = tempdir();
    let d = dir.path();
    let model = train(d, "m.safetensors", "1");
    let reference = d.join("reference.csv");
    let t = Instant::now();
    let whole = ok(&classify(
        &[
            "--model",
            s(&model),
            "--data",
            RESUME_DATA,
            "--out",
            s(&reference),
        ],
        &[],
    ));
    let full = t.elapsed();
    let work = d.join("work");
    std::fs::create_dir(&work).unwrap();
    let out = work.join("votes.csv");
    let args = [
        "--model",
        s(&model),
        "--data",
        RESUME_DATA,
        "--out",
        s(&out),
        "--resume",
    ];
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill times from seed {seed}; a whole run takes {full:?}");
    // Five SIGKILLs in one chain of runs, each at a random moment before the work left could
    // be done (a run does at most what its time allows, so `full` minus the time already spent
    // in killed runs bounds what is left from below); then one run finishes the file.
    let (mut spent, mut kills, mut refused, mut full) = (Duration::ZERO, 0, false, full);
    let mut chains = 1;
    while kills < KILLS {
        let left = full.saturating_sub(spent).mul_f64(0.8);
        let at = Duration::from_millis(50 + next(&mut seed) % (left.as_millis() as u64 + 1));
        let mut child = Command::new(env!("CARGO_BIN_EXE_microtask"))
            .arg("classify")
            .args(["--backend", "cpu"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() >= at {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(status) = finished {
            // The machine got faster than when `full` was measured: the chain ended early.
            // Time a whole run again, then start a new chain bounded by it.
            assert!(status.success(), "a run failed: {status}");
            eprintln!("a run finished before its kill at {at:?}: a new chain");
            std::fs::remove_file(&out).unwrap();
            let t = Instant::now();
            ok(&classify(&args, &[]));
            full = t.elapsed();
            std::fs::remove_file(&out).unwrap();
            (spent, kills) = (Duration::ZERO, 0);
            chains += 1;
            assert!(chains <= 10, "ten chains ended before five kills");
            continue;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        kills += 1;
        spent += at;
        assert!(
            !out.exists(),
            "a partial file at the final path after kill {kills} at {at:?}"
        );
        if !refused && work.join(".votes.csv.journal").exists() {
            // Without --resume, the journal is reported, not reused or deleted.
            let o = classify(&args[..6], &[]);
            assert_usage_failure(&o, &[".votes.csv.journal", "--resume"]);
            assert!(work.join(".votes.csv.journal").exists());
            refused = true;
        }
    }
    assert!(
        refused,
        "no kill left a journal: every kill came before the first commit"
    );
    let last = ok(&classify(&args, &[]));
    assert!(out.exists(), "no run finished");
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap(),
        "the resumed file differs from one uninterrupted run"
    );
    assert_eq!(accuracy_lines(&last), accuracy_lines(&whole), "{last}");
    assert!(
        leftovers(&work).is_empty(),
        "left behind: {:?}",
        leftovers(&work)
    );
    // Resuming a finished output starts afresh (no journal): same bytes again.
    ok(&classify(&args, &[]));
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap());
}

#[cfg(unix)]
#[test]
fn sigterm_stops_at_a_chunk_boundary_with_exit_75_and_resume_finishes() {
    let dir = tempdir();
    let d = dir.path();
    let model = train(d, "m.safetensors", "1");
    let reference = d.join("reference.csv");
    ok(&classify(
        &["--model", s(&model), "--data", DATA, "--out", s(&reference)],
        &[],
    ));
    let out = d.join("votes.csv");
    let args = [
        "--model",
        s(&model),
        "--data",
        DATA,
        "--out",
        s(&out),
        "--resume",
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_microtask"))
        .arg("classify")
        .args(["--backend", "cpu"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    if o.status.success() {
        eprintln!("the run finished before SIGTERM arrived");
    } else {
        assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("--resume"), "{err}");
        assert!(!out.exists());
        assert!(d.join(".votes.csv.journal").exists());
        ok(&classify(&args, &[]));
    }
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap());
    assert!(leftovers(d).is_empty(), "left behind: {:?}", leftovers(d));
}
