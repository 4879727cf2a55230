//! `microtask._engine`: the Rust engine behind the Python package `microtask`.
//!
//! The Python side (`microtask/`) turns pandas and NumPy inputs into dense arrays and back into
//! crowd-kit's pandas objects; this module only moves arrays in and out of the library, with the
//! GIL released while the engine runs ([`engine::run`]) and the library's errors as Python
//! exceptions ([`engine::to_py`]).

mod aggregation;
mod engine;
mod input;
#[cfg(feature = "methods")]
mod methods;
mod model;

use pyo3::prelude::*;

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(aggregation::aggregate_codes, m)?)?;
    m.add_function(wrap_pyfunction!(aggregation::methods, m)?)?;
    m.add_function(wrap_pyfunction!(aggregation::default_method, m)?)?;
    m.add_function(wrap_pyfunction!(model::train, m)?)?;
    m.add_class::<model::Model>()?;
    Ok(())
}
