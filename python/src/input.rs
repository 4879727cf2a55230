//! NumPy arrays as the library's items: uint8 pixels for a pixel model, float16/float32 features
//! for a feature model, read in place when C-contiguous.

use crate::engine::invalid;
use microtask::data::items::Items;
use microtask::model::{Ensemble, InputKind};
use numpy::{
    Element, PyArrayDescrMethods, PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use std::borrow::Cow;

/// A checked `(n, features)` array of one of the element types the kernels read.
pub enum Rows<'py> {
    U8(PyReadonlyArray2<'py, u8>),
    /// float16, viewed as its bit patterns (NumPy's `x.view(np.uint16)`, no copy).
    F16(PyReadonlyArray2<'py, u16>),
    F32(PyReadonlyArray2<'py, f32>),
}

/// The values of [`Rows`], borrowed from the array or, when it is not C-contiguous, a row-major
/// copy. `Send`, so the engine reads them with the GIL released.
pub enum Values<'a> {
    U8(Cow<'a, [u8]>),
    F16(Cow<'a, [u16]>),
    F32(Cow<'a, [f32]>),
}

impl<'py> Rows<'py> {
    /// `x` checked against `model`: 2-D, `model.features()` wide, and of the model's input kind
    /// (uint8 for pixels; float16 or float32 for features), in native byte order.
    pub fn of(x: &Bound<'py, PyAny>, model: &Ensemble) -> PyResult<Rows<'py>> {
        let d = model.features();
        let wanted = match model.input {
            InputKind::Pixels => "uint8 pixels",
            InputKind::Features => "float16 or float32 features",
        };
        let arr = x.cast::<PyUntypedArray>().map_err(|_| {
            PyTypeError::new_err(format!(
                "x must be a NumPy array of {wanted}, not {}",
                type_name(x)
            ))
        })?;
        if arr.ndim() != 2 {
            return Err(invalid(format!(
                "x must be 2-D (items x {d} features), got a {}-D array of shape {:?}; \
                 reshape it with x.reshape(len(x), -1)",
                arr.ndim(),
                arr.shape()
            )));
        }
        let dtype = arr.dtype();
        let name = dtype.str().map(|s| s.to_string()).unwrap_or_default();
        let (kind, size) = (dtype.kind(), dtype.itemsize());
        let given = match (kind, size) {
            (b'u', 1) => Some(InputKind::Pixels),
            (b'f', 2 | 4) => Some(InputKind::Features),
            _ => None,
        };
        if given != Some(model.input) {
            let hint = match (model.input, kind) {
                (InputKind::Features, b'f') => "; convert it with x.astype(np.float32)",
                (InputKind::Features, _) => {
                    "; this model was trained on features (a float .npy matrix)"
                }
                (InputKind::Pixels, b'f') => {
                    "; this model was trained on pixels (uint8 images); a model for float \
                     features is trained on a float16/float32 matrix"
                }
                (InputKind::Pixels, _) => "",
            };
            return Err(PyTypeError::new_err(format!(
                "x holds {name} values, but the model takes {wanted}{hint}"
            )));
        }
        if dtype.is_native_byteorder() == Some(false) {
            return Err(PyTypeError::new_err(format!(
                "x holds {name} values in the other byte order; convert it with \
                 x.astype(x.dtype.newbyteorder('='))"
            )));
        }
        if arr.shape()[1] != d {
            return Err(invalid(format!(
                "x has {} features per row, the model expects {d} ({})",
                arr.shape()[1],
                model.shape_text()
            )));
        }
        Ok(match (kind, size) {
            (b'u', _) => Rows::U8(x.extract()?),
            // The same bytes as uint16: the library reads half floats as their bits.
            (_, 2) => Rows::F16(x.call_method1("view", ("uint16",))?.extract()?),
            _ => Rows::F32(x.extract()?),
        })
    }

    /// Items (rows).
    pub fn len(&self) -> usize {
        match self {
            Rows::U8(v) => v.shape()[0],
            Rows::F16(v) => v.shape()[0],
            Rows::F32(v) => v.shape()[0],
        }
    }

    pub fn values(&self) -> Values<'_> {
        match self {
            Rows::U8(v) => Values::U8(contiguous(v)),
            Rows::F16(v) => Values::F16(contiguous(v)),
            Rows::F32(v) => Values::F32(contiguous(v)),
        }
    }
}

impl Values<'_> {
    pub fn items(&self) -> Items<'_> {
        match self {
            Values::U8(v) => Items::U8(v),
            Values::F16(v) => Items::F16(v),
            Values::F32(v) => Items::F32(v),
        }
    }
}

/// The array's values without a copy when it is C-contiguous, else a row-major copy (a
/// Fortran-ordered array is contiguous too, but column after column: copied).
pub fn contiguous<'a, T: Element + Copy>(view: &'a PyReadonlyArray2<'_, T>) -> Cow<'a, [T]> {
    match view.as_slice() {
        Ok(s) if view.is_c_contiguous() => Cow::Borrowed(s),
        _ => Cow::Owned(view.as_array().iter().copied().collect()),
    }
}

pub fn type_name(x: &Bound<'_, PyAny>) -> String {
    x.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an unknown type".into())
}
