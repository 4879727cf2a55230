//! Backend choice: `auto`, `cpu`, `gpu`, `hybrid`.

use super::cpu::CpuBackend;
use super::Backend;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
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

pub fn select(kind: BackendKind) -> Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Cpu => Ok(Box::new(CpuBackend::new("--backend cpu"))),
        BackendKind::Auto => Ok(Box::new(CpuBackend::new("no GPU backend built yet"))),
        BackendKind::Gpu | BackendKind::Hybrid => {
            Err(Error::Gpu("GPU backend not built yet".into()))
        }
    }
}
