//! Command-line mirrors of the library's choice enums: clap's derive stays out of the library.
//! Each variant's doc comment is its `--help` text.

use microtask::aggregate::Method;
use microtask::backend::BackendKind;

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendArg {
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

impl From<BackendArg> for BackendKind {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Auto => BackendKind::Auto,
            BackendArg::Cpu => BackendKind::Cpu,
            BackendArg::Gpu => BackendKind::Gpu,
            BackendArg::Hybrid => BackendKind::Hybrid,
        }
    }
}

/// `tally --method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MethodArg {
    /// Majority vote: most answers wins; ties to the higher summed confidence (an answer without
    /// one counts as the mean of those with one), then the lowest class.
    #[default]
    Mv,
    /// Weighted majority vote: workers weighted by gold accuracy, else by agreement with the
    /// majority (Wawa).
    Wmv,
    /// Dawid-Skene EM: a confusion matrix per worker and class priors.
    Ds,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Mv => Method::Mv,
            MethodArg::Wmv => Method::Wmv,
            MethodArg::Ds => Method::Ds,
        }
    }
}

/// `bench --dtype`: the items' element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DtypeArg {
    /// u8 pixels (scaled by 1/255): the MNIST test images tiled to --items.
    #[default]
    U8,
    /// f16 features (as given), read memory-mapped from a .npy file.
    F16,
    /// f32 features (as given), read memory-mapped from a .npy file.
    F32,
}

impl From<DtypeArg> for microtask::data::npy::Dtype {
    fn from(d: DtypeArg) -> Self {
        use microtask::data::npy::Dtype;
        match d {
            DtypeArg::U8 => Dtype::U8,
            DtypeArg::F16 => Dtype::F16,
            DtypeArg::F32 => Dtype::F32,
        }
    }
}
