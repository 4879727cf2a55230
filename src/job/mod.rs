//! The classify job beyond one process: shards (`--shard I/N`, from Slurm or Kubernetes),
//! journaled votes files that resume after `kill -9`, shard manifests, and the merge.
//!
//! The job itself (reader -> backend -> writer threads) is [`crate::classify`]; this module
//! decides which items a run covers and where its rows go.

pub mod digest;
pub mod identity;
pub mod journal;
pub mod manifest;
pub mod merge;
pub mod shard;
pub mod votes_file;

pub use identity::{Counts, JobId};
pub use manifest::Manifest;
pub use merge::ShardSet;
pub use shard::Shard;
pub use votes_file::{ShardRun, VotesFile, Written};
