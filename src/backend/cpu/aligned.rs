//! The weights as the CPU kernels read them: a copy that starts on a 64-byte cache line. A
//! `Vec<f32>` starts wherever the allocator puts it (16 bytes past a page for big ones with
//! glibc), so a weight row of a tile could straddle one more line than needed, and classify
//! speed moved by 8% with unrelated changes that shifted the allocation.

use bytemuck::{Pod, Zeroable};

/// One cache line of floats.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// `len` floats starting on a 64-byte boundary.
pub struct AlignedWeights {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedWeights {
    pub fn new(values: &[f32]) -> Self {
        let mut lines = vec![Line([0.0; 16]); values.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<Line, f32>(&mut lines)[..values.len()].copy_from_slice(values);
        AlignedWeights {
            lines,
            len: values.len(),
        }
    }

    pub fn as_slice(&self) -> &[f32] {
        &bytemuck::cast_slice::<Line, f32>(&self.lines)[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_start_on_a_cache_line_and_keep_their_values() {
        for n in [0, 1, 15, 16, 17, 7850] {
            let v: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let a = AlignedWeights::new(&v);
            assert_eq!(a.as_slice(), &v[..]);
            assert_eq!(a.as_slice().as_ptr() as usize % 64, 0);
        }
    }
}
