//! microtask: turns a big labelling job into microtasks and runs them fast.
//!
//! Data flows one way: `data` -> `task` -> `model` -> `backend` -> `aggregate` -> `pipeline`;
//! results flow back up as values.

pub mod backend;
pub mod data;
pub mod error;
pub mod model;
pub mod output;

pub use error::{Error, Result};
