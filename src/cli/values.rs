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
    Mv,
    /// Weighted majority vote: workers weighted by gold accuracy, else by agreement with the
    /// majority (Wawa).
    Wmv,
    /// Dawid-Skene EM: a confusion matrix per worker and class priors (smoothed).
    Ds,
    /// Dawid-Skene exactly as crowd-kit's DawidSkene (no smoothing, its start and stopping rule).
    DsCrowdkit,
    /// One accuracy per worker (crowd-kit's OneCoinDawidSkene).
    #[value(name = "onecoin")]
    OneCoin,
    /// GLAD: worker skill and task difficulty (crowd-kit's GLAD).
    Glad,
    /// MACE: each worker either knows the answer or spams (crowd-kit's MACE).
    Mace,
    /// Zero-based skill: a weighted vote with learned skills (crowd-kit's ZeroBasedSkill).
    Zbs,
    /// Karger-Oh-Shah message passing, two classes only (crowd-kit's KOS).
    Kos,
    /// Bayesian classifier combination (the default): a Dirichlet prior on every worker's
    /// confusion matrix, set from the data by maximum evidence.
    #[default]
    Bayes,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Mv => Method::Mv,
            MethodArg::Wmv => Method::Wmv,
            MethodArg::Ds => Method::Ds,
            MethodArg::DsCrowdkit => Method::DsCrowdkit,
            MethodArg::OneCoin => Method::OneCoin,
            MethodArg::Glad => Method::Glad,
            MethodArg::Mace => Method::Mace,
            MethodArg::Zbs => Method::Zbs,
            MethodArg::Kos => Method::Kos,
            MethodArg::Bayes => Method::Bayes,
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
