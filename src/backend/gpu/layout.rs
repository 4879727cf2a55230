//! Data shared with the WGSL kernels: uniform parameter blocks, vote and result records, tile
//! sizes. Every item here has a twin in `shaders/*.wgsl`; change both sides together.

use bytemuck::{Pod, Zeroable};

/// Items per `logits` workgroup (x dimension of the dispatch).
/// Keep in sync with `TILE_ITEMS` in shaders/classify.wgsl.
pub const TILE_ITEMS: u32 = 64;
/// Weight rows per `logits` workgroup (y dimension of the dispatch).
/// Keep in sync with `TILE_ROWS` in shaders/classify.wgsl.
pub const TILE_ROWS: u32 = 16;
/// Features per step of the `logits` kernel (a multiple of 4: whole packed words).
/// Keep in sync with `TILE_K` in shaders/classify.wgsl.
pub const TILE_K: u32 = 32;
/// Items per invocation of `logits_regs` (the register-blocked kernel for software adapters).
/// Keep in sync with `REG_ITEMS` in shaders/classify.wgsl.
pub const REG_ITEMS: u32 = 8;
/// Weight rows per `logits_regs` workgroup (one chunk of rows per y of the dispatch).
/// Keep in sync with `REG_ROWS` in shaders/classify.wgsl.
pub const REG_ROWS: u32 = 10;
/// Invocations per `logits_regs` workgroup. Keep in sync with `REG_GROUP` and the
/// `@workgroup_size` of `logits_regs` in shaders/classify.wgsl.
pub const REG_GROUP: u32 = 16;
/// Invocations per `softmax` workgroup. Keep in sync with `SOFTMAX_GROUP` in shaders/classify.wgsl.
pub const SOFTMAX_GROUP: u32 = 64;
/// Invocations per `accumulate`/`pick` workgroup. Keep in sync with `TALLY_GROUP` in
/// shaders/tally.wgsl.
pub const TALLY_GROUP: u32 = 64;

/// Uniform block of the classify kernels.
/// Keep in sync with `struct ClassifyParams` in shaders/classify.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct ClassifyParams {
    pub n_items: u32,
    pub features: u32,
    /// u32 words per packed item row: `features.div_ceil(4)`.
    pub words: u32,
    /// `workers * classes`.
    pub rows: u32,
    pub classes: u32,
    pub workers: u32,
    /// `1.0 / 255.0` as the CPU twin computes it.
    pub inv255: f32,
    pub _pad: u32,
}

/// Uniform block of the tally kernels.
/// Keep in sync with `struct TallyParams` in shaders/tally.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct TallyParams {
    pub n_votes: u32,
    pub n_tasks: u32,
    pub classes: u32,
    pub _pad: u32,
}

/// One answer as the tally kernel reads it.
/// Keep in sync with `struct Vote` in shaders/tally.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct GpuVote {
    /// Task id relative to the first task of the chunk.
    pub task: u32,
    pub label: u32,
    /// `f32::to_bits` of the confidence (a NaN must reach the shader as a NaN).
    pub conf_bits: u32,
}

/// One tallied task as the tally kernel writes it.
/// Keep in sync with `struct TaskOut` in shaders/tally.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct GpuTaskLabel {
    pub label: u32,
    pub confidence: f32,
    pub answers: u32,
}

/// Splits `groups` workgroups into an `(x, y)` dispatch with `x <= max_per_dim`; the kernels
/// recover the linear index as `gid.x + gid.y * x * group_size`. Invocations past the end see an
/// index beyond the data and return.
pub fn dispatch_2d(groups: u32, max_per_dim: u32) -> (u32, u32) {
    let max = max_per_dim.max(1);
    if groups <= max {
        (groups.max(1), 1)
    } else {
        (max, groups.div_ceil(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_the_wgsl_sizes() {
        assert_eq!(std::mem::size_of::<ClassifyParams>(), 32);
        assert_eq!(std::mem::size_of::<TallyParams>(), 16);
        assert_eq!(std::mem::size_of::<GpuVote>(), 12);
        assert_eq!(std::mem::size_of::<GpuTaskLabel>(), 12);
    }

    #[test]
    fn dispatch_2d_covers_every_group() {
        assert_eq!(dispatch_2d(0, 65535), (1, 1));
        assert_eq!(dispatch_2d(10, 65535), (10, 1));
        let (x, y) = dispatch_2d(200_000, 65535);
        assert!(x <= 65535 && x as u64 * y as u64 >= 200_000);
    }
}
