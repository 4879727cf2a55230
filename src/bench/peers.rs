//! The peers (NumPy, ONNX Runtime): `peers.py` run as a subprocess in its venv, one JSON object
//! per line on its stdout.

use super::report::Peer;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where peers.py lives and which Python runs it.
#[derive(Debug, Clone)]
pub struct PeersConfig {
    /// Folder of peers.py (and its .venv).
    pub dir: PathBuf,
    /// Use the system python3 when the folder has no .venv.
    pub system_python: bool,
}

/// Runs peers.py with `args` (what to time: `--items N`, or `--dtype D --npy FILE`), `reps`
/// timed runs each; an error says why they could not run.
pub(crate) fn run(cfg: &PeersConfig, args: &[String], reps: usize) -> Result<Vec<Peer>> {
    let venv = cfg.dir.join(".venv/bin/python3");
    let python = if venv.exists() {
        venv
    } else if cfg.system_python {
        PathBuf::from("python3")
    } else {
        return Err(Error::Invalid(format!(
            "{} is missing (run `bash {}` once, or pass --peers to use the system python3)",
            venv.display(),
            cfg.dir.join("setup.sh").display()
        )));
    };
    let script = cfg.dir.join("peers.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(args)
        .args(["--reps", &reps.to_string()])
        .output()
        .map_err(|e| {
            Error::Invalid(format!(
                "running {} {}: {e}",
                python.display(),
                script.display()
            ))
        })?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )));
    }
    parse(&script, &String::from_utf8_lossy(&out.stdout))
}

/// The peers' figures from peers.py's stdout (lines that are not JSON objects are its chatter).
fn parse(script: &Path, stdout: &str) -> Result<Vec<Peer>> {
    let mut peers = Vec::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| Error::format(script, e.to_string()))?;
        if let (Some(p), Some(ips)) = (v["peer"].as_str(), v["items_per_s"].as_f64()) {
            peers.push(Peer {
                peer: p.into(),
                items_per_s: ips,
                version: v["version"].as_str().map(String::from),
            });
        }
    }
    Ok(peers)
}
