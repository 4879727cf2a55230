//! Slurm end to end (`scripts/slurm-e2e.sh`): 4 classify shards as `sbatch --array=0-3` of
//! `deploy/slurm/classify-array.sbatch`, the merge of `deploy/slurm/merge.sbatch` with
//! `--dependency=afterok`, the merged votes `cmp`-equal to one run. Needs a running cluster
//! (`scripts/slurm-up.sh`): required in CI (`scripts/ci-slurm.sh` installs and starts it),
//! skipped elsewhere with the reason.

mod common;

use common::*;
use std::io::Write;
use std::process::Command;

fn answers(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn slurm_array_shards_and_a_dependent_merge_give_the_bytes_of_one_run() {
    if !answers("sinfo", &["-h"]) {
        let why = if answers("sbatch", &["--version"]) {
            "no Slurm cluster answers `sinfo` (scripts/slurm-up.sh starts one)"
        } else {
            "Slurm is not installed (apt-get install -y --no-install-recommends slurm-wlm munge, \
             then scripts/slurm-up.sh)"
        };
        assert!(
            !in_ci(),
            "CI needs Slurm: {why}; scripts/ci-slurm.sh does both"
        );
        let line = format!("slurm end-to-end test: skipped: {why}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("microtask-slurm-")
        .tempdir()
        .unwrap();
    let o = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm-e2e.sh"))
        .arg(env!("CARGO_BIN_EXE_microtask"))
        .arg(work.path())
        .output()
        .expect("bash runs");
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{out}");
    let _ = std::io::stderr().write_all(out.as_bytes());
}
