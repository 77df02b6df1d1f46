//! pgsync: incremental, crash-safe copy of a PostgreSQL table into another database.
//!
//! The data path of one window, in reading order (docs/ARCHITECTURE.md has the map):
//! `commands::single` → `pass` → `protocol::reconcile` → `keyspace` (bounds, slices, keyset
//! predicates) → `pass::workers` → `copy` (source → staging → upsert, receipt, one
//! destination transaction) → `protocol::checkpoint` → `state`.
#![warn(missing_docs)]

pub mod catalog;
pub mod cli;
pub mod commands;
pub mod copy;
pub mod db;
pub mod error;
pub mod fuzzing;
pub mod job;
pub mod keyspace;
pub mod pass;
pub mod protocol;
pub mod runtime;
pub mod state;
pub mod verify;
