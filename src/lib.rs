//! pgsync: incremental, crash-safe copy of a PostgreSQL table into another database.
//!
//! The data path of one window, in reading order (docs/ARCHITECTURE.md has the map):
//! `commands::single` → `pass` → `reconcile` → `plan` (bounds, slices, keyset windows) →
//! `copy::source` → `copy::staging` → `copy::upsert` (+ `receipts`, one destination
//! transaction) → `checkpoint` → `state`.
#![warn(missing_docs)]

pub mod catalog;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod conninfo;
pub mod copy;
pub mod db;
pub mod error;
pub mod failpoint;
pub mod fuzzing;
pub mod job;
pub mod pass;
pub mod plan;
pub mod progress;
pub mod receipts;
pub mod reconcile;
pub mod session;
pub mod shutdown;
pub mod state;
pub mod status;
pub mod verify;
pub mod window_loop;
