//! Flags shared by the commands that run kernels: which backend, and how the GPU batches.

use super::numbers;
use super::values::BackendArg;
use microtask::backend::gpu::{GpuOptions, DEFAULT_SLOTS};
use microtask::backend::select::select_with;
use microtask::backend::Backend;

#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArgs {
    /// Where to run: auto (a hardware GPU if there is one, else the CPU), cpu (rayon, never
    /// touches wgpu), gpu (any adapter, including a software one such as lavapipe), hybrid (CPU
    /// threads and the GPU pull batches from one queue). `microtask info` shows what is found.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// Items per GPU batch. Default: chosen from the adapter's limits; a value above a device
    /// limit is refused.
    #[arg(long, value_parser = numbers::at_least_one)]
    pub batch: Option<usize>,
    /// GPU batches in flight (upload, compute and readback overlap across them).
    #[arg(long, default_value_t = DEFAULT_SLOTS, value_parser = numbers::at_least_one)]
    pub slots: usize,
}

impl DeviceArgs {
    pub fn backend(&self) -> microtask::Result<Box<dyn Backend>> {
        let opts = GpuOptions {
            batch: self.batch,
            slots: self.slots,
            ..GpuOptions::default()
        };
        select_with(self.backend.into(), &opts)
    }
}
