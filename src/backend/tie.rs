//! The majority vote's tie rule, shared by both tally kernels (CPU twin and WGSL) and the classify
//! job's in-line vote: most votes, then the higher fixed-point confidence sum, then the lowest
//! label. Re-exported by `aggregate::majority`, where the rule is documented for users; it lives
//! here so that the backends need not import upward.

use super::TaskLabel;

/// Summed confidences used to break vote ties are kept in fixed point (`round(conf * SCALE)` as
/// u32) on both CPU and GPU, so the tie rule gives the same answer on both: WGSL has no atomic
/// float add. One task may hold up to 65,535 answers of confidence 1 before the sum saturates.
pub const CONF_FIXED_SCALE: f32 = 65536.0;

/// The fixed-point confidence of one answer, as both CPU and GPU compute it.
pub fn conf_fixed(conf: f32) -> u32 {
    (conf.clamp(0.0, 1.0) * CONF_FIXED_SCALE).round() as u32
}

/// Picks the winner from one task's histogram (`counts`, `sums` per class).
pub fn pick(counts: &[u32], sums: &[u32]) -> TaskLabel {
    let mut best = 0;
    let mut total = 0u32;
    for k in 0..counts.len() {
        total += counts[k];
        if (counts[k], sums[k]) > (counts[best], sums[best]) {
            best = k;
        }
    }
    TaskLabel {
        label: best as u32,
        confidence: if total == 0 {
            0.0
        } else {
            counts[best] as f32 / total as f32
        },
        answers: total,
    }
}
