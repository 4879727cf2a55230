//! The Kubernetes manifests in `deploy/k8s/` as a cluster would run them (there is no cluster
//! here): the Indexed Job's own command line, with Kubernetes' `$(VAR)` expansion of its env,
//! run once per completion index with `JOB_COMPLETION_INDEX` set, then the merge Job's command:
//! the merged votes are the bytes of one run. The Job's settings (indexed, completions =
//! `--shards`, the exit codes of its pod failure policy) are checked against the binary.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/k8s");
const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/mnist-5workers.safetensors"
);
const DATA: &str = "synth:200000:7";

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(DEPLOY).join(name)).expect("manifest")
}

/// The values of `key: value` lines (comments and indentation aside): enough for these files.
fn values(yaml: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}:");
    yaml.lines()
        .map(|l| l.trim().trim_start_matches("- "))
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
        .collect()
}

fn one(yaml: &str, key: &str) -> String {
    let v = values(yaml, key);
    assert_eq!(v.len(), 1, "{key}: {v:?}");
    v[0].clone()
}

/// The container's command (a JSON-style flow list) with `$(NAME)` replaced as Kubernetes does,
/// from `env`.
fn command(yaml: &str, env: &[(&str, &str)]) -> Vec<String> {
    let list: Vec<String> = serde_json::from_str(&one(yaml, "command")).expect("command list");
    let names = values(yaml, "name");
    for (k, _) in env {
        assert!(names.iter().any(|n| n == k), "the manifest sets no {k}");
    }
    list.into_iter()
        .map(|a| {
            env.iter()
                .fold(a, |a, (k, v)| a.replace(&format!("$({k})"), v))
        })
        .collect()
}

/// Runs a manifest command: `microtask` is the built binary; the CPU backend is added so that
/// every pod and the one-machine run compute the same bytes.
fn run(cmd: &[String], index: Option<usize>) -> std::process::Child {
    assert_eq!(cmd[0], "microtask");
    let mut c = Command::new(env!("CARGO_BIN_EXE_microtask"));
    c.args(&cmd[1..]).args(["--backend", "cpu"]);
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "JOB_COMPLETION_INDEX",
    ] {
        c.env_remove(var);
    }
    if let Some(i) = index {
        c.env("JOB_COMPLETION_INDEX", i.to_string());
    }
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c.spawn().expect("microtask runs")
}

fn wait(c: std::process::Child) -> Output {
    c.wait_with_output().expect("microtask ends")
}

#[test]
fn indexed_job_settings_match_the_binary() {
    let job = read("classify-indexed-job.yaml");
    assert_eq!(one(&job, "completionMode"), "Indexed");
    let n = one(&job, "completions");
    assert_eq!(one(&job, "parallelism"), n);
    let cmd = command(&job, &[]);
    let at = cmd.iter().position(|a| a == "--shards").expect("--shards");
    assert_eq!(cmd[at + 1], n, "--shards must equal completions");
    assert!(cmd.iter().any(|a| a == "--resume"), "a retried pod resumes");
    // FailIndex on usage errors (exit 2), Ignore (retry) on an interrupted run.
    let actions = values(&job, "action");
    let codes = values(&job, "values");
    assert_eq!(actions[..2], ["FailIndex", "Ignore"]);
    assert_eq!(
        codes[..2],
        ["[2]", &format!("[{}]", microtask::error::INTERRUPTED_EXIT)]
    );
    assert!(values(&job, "backoffLimitPerIndex")[0]
        .parse::<u32>()
        .is_ok());
}

#[test]
fn indexed_job_pods_then_the_merge_job_give_the_bytes_of_one_run() {
    let d = tempfile::tempdir().unwrap();
    let (shards, merged, one_run) = (
        d.path().join("shards"),
        d.path().join("votes.csv"),
        d.path().join("one.csv"),
    );
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let job = read("classify-indexed-job.yaml");
    let n: usize = one(&job, "completions").parse().unwrap();
    let env = [("MODEL", MODEL), ("DATA", DATA), ("OUT", &s(&shards))];
    let cmd = command(&job, &env);
    // The pods run at once, as with parallelism = completions.
    let pods: Vec<_> = (0..n).map(|i| run(&cmd, Some(i))).collect();
    for (i, p) in pods.into_iter().enumerate() {
        let o = wait(p);
        assert!(o.status.success(), "pod {i}: {}", stderr(&o));
        assert!(stderr(&o).contains("from the Kubernetes completion index"));
    }
    // A pod retried on a finished index does nothing.
    let o = wait(run(&cmd, Some(1)));
    assert!(
        o.status.success() && stdout(&o).contains("already done"),
        "{}",
        stderr(&o)
    );
    // An index beyond completions is a usage error: exit 2, which the policy does not retry.
    let o = wait(run(&cmd, Some(n)));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    let merge = command(
        &read("merge-job.yaml"),
        &[("OUT", &s(&shards)), ("MERGED", &s(&merged))],
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_microtask"));
    let o = c.args(&merge[1..]).output().unwrap();
    assert!(o.status.success(), "merge: {}", stderr(&o));
    let o = microtask(&[
        "classify",
        "--backend",
        "cpu",
        "--model",
        MODEL,
        "--data",
        DATA,
        "--out",
        &s(&one_run),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&merged).unwrap() == std::fs::read(&one_run).unwrap());
}
