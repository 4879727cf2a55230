//! microtask: turns a big labelling job into microtasks and runs them fast.
//!
//! Data flows one way: `data` -> `task` -> `model` -> `backend` -> `aggregate` -> `pipeline`;
//! results flow back up as values.

pub mod aggregate;
pub mod backend;
pub mod bench;
pub mod classify;
pub mod data;
pub mod error;
pub mod job;
pub mod model;
pub mod ordered_sum;
pub mod output;
pub mod parquet_out;
pub mod pipeline;
pub mod probs;
pub mod task;
pub mod train;

pub use error::{Error, Result};
