//! The items of one classify call, typed: u8 pixels (scaled by 1/255 in the product) or f16/f32
//! features (taken as given). Rows of `model.features()` values, item after item.

use crate::error::{Error, Result};
use std::ops::Range;

/// A batch of items in one of the element types the kernels read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Items<'a> {
    /// Pixels, one byte each; the kernels scale them by 1/255.
    U8(&'a [u8]),
    /// Features as IEEE half-precision bit patterns (NumPy's `<f2`, `half::f16::to_bits`).
    F16(&'a [u16]),
    /// Features as IEEE single precision.
    F32(&'a [f32]),
}

impl<'a> From<&'a [u8]> for Items<'a> {
    fn from(v: &'a [u8]) -> Self {
        Items::U8(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Items<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Items::U8(v)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Items<'a> {
    fn from(v: &'a [u8; N]) -> Self {
        Items::U8(v)
    }
}

impl<'a> From<&'a [u16]> for Items<'a> {
    fn from(v: &'a [u16]) -> Self {
        Items::F16(v)
    }
}

impl<'a> From<&'a [f32]> for Items<'a> {
    fn from(v: &'a [f32]) -> Self {
        Items::F32(v)
    }
}

impl<'a> Items<'a> {
    /// Values (not bytes, not items).
    pub fn len(&self) -> usize {
        match self {
            Items::U8(v) => v.len(),
            Items::F16(v) => v.len(),
            Items::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per value.
    pub fn value_size(&self) -> usize {
        match self {
            Items::U8(_) => 1,
            Items::F16(_) => 2,
            Items::F32(_) => 4,
        }
    }

    /// `u8`, `f16` or `f32`, as messages and the CLI spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Items::U8(_) => "u8",
            Items::F16(_) => "f16",
            Items::F32(_) => "f32",
        }
    }

    /// The values as little-endian bytes (the host's order; every supported host is little-endian
    /// for the types NumPy writes as `<f2`/`<f4`).
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Items::U8(v) => v,
            Items::F16(v) => bytemuck::cast_slice(v),
            Items::F32(v) => bytemuck::cast_slice(v),
        }
    }

    /// The values `range` (value indices, not items).
    pub fn slice(&self, range: Range<usize>) -> Items<'a> {
        match *self {
            Items::U8(v) => Items::U8(&v[range]),
            Items::F16(v) => Items::F16(&v[range]),
            Items::F32(v) => Items::F32(&v[range]),
        }
    }

    /// The factor the product is scaled by: 1/255 for pixels, 1 for features.
    pub fn scale(&self) -> f32 {
        match self {
            Items::U8(_) => 1.0 / 255.0,
            _ => 1.0,
        }
    }

    /// Values per packed u32 word on the way to the GPU: 4 bytes, 2 halves or 1 float.
    pub fn per_word(&self) -> usize {
        4 / self.value_size()
    }

    /// Rows of `d` values: `len / d`, or an error when they do not divide.
    pub fn rows(&self, d: usize) -> Result<usize> {
        if d == 0 || !self.len().is_multiple_of(d) {
            return Err(Error::Invalid(format!(
                "items of {} {} values do not divide into rows of {d} features",
                self.len(),
                self.type_name()
            )));
        }
        Ok(self.len() / d)
    }

    /// Reads `bytes` (little-endian values of `size` bytes: 1, 2 or 4) as items, without a copy
    /// when they are aligned for the type (a mapped file always is: NumPy aligns its data to 16
    /// or 64 bytes), else into `spare`.
    pub fn from_bytes(size: usize, bytes: &'a [u8], spare: &'a mut Vec<u32>) -> Result<Self> {
        if !bytes.len().is_multiple_of(size.max(1)) {
            return Err(Error::Invalid(format!(
                "{} bytes are not whole values of {size} bytes",
                bytes.len()
            )));
        }
        Ok(match size {
            1 => Items::U8(bytes),
            2 => Items::F16(
                bytemuck::try_cast_slice(bytes).unwrap_or_else(|_| copy_aligned(bytes, spare)),
            ),
            4 => Items::F32(
                bytemuck::try_cast_slice(bytes).unwrap_or_else(|_| copy_aligned(bytes, spare)),
            ),
            _ => {
                return Err(Error::Invalid(format!(
                    "values of {size} bytes: the kernels read u8, f16 and f32"
                )))
            }
        })
    }
}

/// Copies `bytes` into `spare` (4-aligned) and views them as `T`.
fn copy_aligned<'a, T: bytemuck::Pod>(bytes: &[u8], spare: &'a mut Vec<u32>) -> &'a [T] {
    spare.clear();
    spare.resize(bytes.len().div_ceil(4), 0);
    let dst: &mut [u8] = bytemuck::cast_slice_mut(spare);
    dst[..bytes.len()].copy_from_slice(bytes);
    bytemuck::cast_slice(&bytemuck::cast_slice::<u32, u8>(spare)[..bytes.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_from_bytes_view_or_copy() {
        let v: Vec<f32> = vec![1.0, -2.5, 3.25];
        let bytes: &[u8] = bytemuck::cast_slice(&v);
        let mut spare = Vec::new();
        assert_eq!(
            Items::from_bytes(4, bytes, &mut spare).unwrap(),
            Items::F32(&v)
        );
        // One byte past a 4-aligned start: not aligned for f16 or f32, so copied.
        let mut backing = [0u32; 4];
        let shifted: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut backing)[..13];
        shifted[1..].copy_from_slice(bytes);
        let mut spare = Vec::new();
        let got = Items::from_bytes(4, &shifted[1..], &mut spare).unwrap();
        assert_eq!(got, Items::F32(&v));
        let mut spare = Vec::new();
        let h = Items::from_bytes(2, &shifted[1..], &mut spare).unwrap();
        assert_eq!((h.len(), h.type_name(), h.per_word()), (6, "f16", 2));
        assert!(Items::from_bytes(4, &bytes[..5], &mut Vec::new()).is_err());
        assert!(Items::F32(&v).rows(2).is_err());
        assert_eq!(Items::F32(&v).slice(1..3), Items::F32(&v[1..3]));
    }
}
