//! Backend choice: `auto`, `cpu`, `gpu`, `hybrid`.
//!
//! - `auto`: a hardware GPU when there is one (or the adapter `WGPU_ADAPTER_NAME` names), else
//!   the CPU (rayon), with the reason in `describe()`.
//! - `gpu`: any adapter that runs compute shaders, including a software one (lavapipe); a clear
//!   `Error::Gpu` when there is none.
//! - `cpu`: rayon; never touches wgpu.
//! - `hybrid`: CPU threads and the GPU pull batches from one queue; needs an adapter like `gpu`.

use super::cpu::CpuBackend;
use super::gpu::{AdapterChoice, GpuBackend, GpuOptions, HybridBackend};
use super::Backend;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// A hardware GPU when there is one, else the CPU (rayon).
    #[default]
    Auto,
    /// The CPU (rayon); never touches wgpu.
    Cpu,
    /// Any GPU adapter, including a software one (lavapipe); fails when there is none.
    Gpu,
    /// CPU threads and the GPU pull batches from one queue.
    Hybrid,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::Gpu => "gpu",
            BackendKind::Hybrid => "hybrid",
        }
    }
}

/// The backend `kind` asks for, with default GPU options.
pub fn select(kind: BackendKind) -> Result<Box<dyn Backend>> {
    select_with(kind, &GpuOptions::default())
}

/// The backend `kind` asks for; `opts` tunes the GPU side (`--batch`, `--slots`).
pub fn select_with(kind: BackendKind, opts: &GpuOptions) -> Result<Box<dyn Backend>> {
    let origin = format!("--backend {}", kind.name());
    match kind {
        BackendKind::Cpu => Ok(Box::new(CpuBackend::new(origin))),
        BackendKind::Auto => match GpuBackend::new(AdapterChoice::Hardware, opts.clone(), origin) {
            Ok(gpu) => Ok(Box::new(gpu)),
            // Bad options are the user's to fix, not a reason to switch devices.
            Err(e @ Error::Invalid(_)) => Err(e),
            Err(e) => Ok(Box::new(CpuBackend::new(format!(
                "--backend auto: {}",
                strip_gpu_prefix(&e)
            )))),
        },
        BackendKind::Gpu => Ok(Box::new(gpu(opts, origin)?)),
        BackendKind::Hybrid => Ok(Box::new(HybridBackend::new(gpu(opts, origin)?))),
    }
}

/// The backend `--backend gpu` runs, as its own type for callers that derive batch and slot
/// variants from it (bench).
pub fn gpu(opts: &GpuOptions, origin: impl Into<String>) -> Result<GpuBackend> {
    GpuBackend::new(AdapterChoice::Any, opts.clone(), origin)
}

fn strip_gpu_prefix(e: &Error) -> String {
    match e {
        Error::Gpu(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_never_needs_a_device() {
        let b = select(BackendKind::Cpu).unwrap();
        assert!(b.describe().starts_with("cpu"));
    }

    #[test]
    fn bad_slots_are_refused_before_any_device_work() {
        let opts = GpuOptions {
            slots: 0,
            ..Default::default()
        };
        assert!(matches!(
            select_with(BackendKind::Gpu, &opts),
            Err(Error::Invalid(_))
        ));
    }
}
