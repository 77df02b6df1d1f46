//! pgsync: incremental, crash-safe copy of a PostgreSQL table into another database.
//!
//! The data path of one window, in reading order (docs/ARCHITECTURE.md has the map):
//! `commands::single` → `pass` → `protocol::reconcile` → `keyspace` (bounds, slices, keyset
//! predicates) → `pass::workers` → `pass::slice` (stage with `copy`, record in flight, commit
//! with the receipt) → `protocol::checkpoint` → `state`.
//!
//! The public modules are what the binary, the integration tests and the fuzz targets use;
//! the rest is `pub(crate)`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub(crate) mod catalog;
pub mod cli;
pub mod commands;
pub(crate) mod copy;
pub mod db;
pub mod error;
pub mod fuzzing;
pub(crate) mod job;
pub(crate) mod keyspace;
pub(crate) mod pass;
pub(crate) mod protocol;
pub mod runtime;
pub(crate) mod set;
pub mod state;
pub(crate) mod verify;
