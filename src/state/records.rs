//! The records kept in the state store. Every record is stored behind a version tag (see
//! `codec`); a field added in a later release means a new version number and a conversion
//! from the old one in `codec::decode`.

use crate::plan::{Position, Slice};
use serde::{Deserialize, Serialize};

/// Identity of the job this state belongs to (never holds a password).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// `source user@host:port/db -> dest …, table schema.name, cursor c`.
    pub identity: String,
    /// When the job was first seen (unix seconds).
    pub created_unix: u64,
}

/// A pass: its bounds, its slices, and how far it has committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRecord {
    /// Pass number, from 1.
    pub pass: u64,
    /// Lower bound (exclusive) of the pass.
    pub lower: Position,
    /// Inclusive upper cursor bound (source max cursor at the pass start; `None` for an
    /// empty source or one whose cursors are all NULL).
    pub upper: Option<String>,
    /// The slices, in key order.
    pub slices: Vec<Slice>,
    /// Index of the slice being copied (== slices.len() when all are done).
    pub current_slice: usize,
    /// Committed position inside the current slice.
    pub position: Position,
    /// Number the next window will get.
    pub next_window: u64,
    /// Rows read from the source so far in this pass.
    pub rows_read: u64,
    /// Rows inserted or changed in the destination so far.
    pub rows_written: u64,
    /// Windows committed so far in this pass.
    pub windows_committed: u64,
    /// Windows found committed in the destination's receipts that the state had missed.
    pub windows_reconciled: u64,
    /// Pass start (unix seconds).
    pub started_unix: u64,
    /// Seconds spent copying in earlier runs of this pass (before a crash or interrupt).
    pub seconds_before: f64,
}

impl PassRecord {
    /// True when every slice is done.
    pub fn is_finished(&self) -> bool {
        self.current_slice >= self.slices.len()
    }

    /// Sum of the slices' estimates.
    pub fn estimated_rows(&self) -> u64 {
        self.slices.iter().map(|s| s.estimated_rows).sum()
    }
}

/// Where a window stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowStatus {
    /// Cut and being applied; not known to be committed.
    InFlight,
    /// Committed in the destination (receipt written) and checkpointed.
    Committed,
}

/// One window of a pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// Pass number.
    pub pass: u64,
    /// Window number within the pass.
    pub window: u64,
    /// Slice index.
    pub slice: usize,
    /// Start (exclusive).
    pub lower: Position,
    /// End (inclusive) as learned from the rows copied.
    pub end: Position,
    /// This window exhausted its slice.
    pub slice_done: bool,
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows inserted or changed in the destination.
    pub rows_written: u64,
    /// Status.
    pub status: WindowStatus,
}

/// Where the next pass starts: set when a pass finishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watermark {
    /// The pass that finished.
    pub pass: u64,
    /// The next pass's lower bound.
    pub position: Position,
}

/// Figures of the last finished pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassStats {
    /// Pass number.
    pub pass: u64,
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows inserted or changed in the destination.
    pub rows_written: u64,
    /// Windows committed.
    pub windows: u64,
    /// Seconds spent copying.
    pub seconds: f64,
    /// When it finished (unix seconds).
    pub finished_unix: u64,
}

/// Transactions that may still bring rows below the watermark (docs/consistency.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Holdback {
    /// Pending transactions with their floors.
    pub pending: Vec<crate::plan::late_commits::PendingTx>,
}

/// The source transactions in progress when a pass was planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassSnapshot {
    /// The pass.
    pub pass: u64,
    /// Transaction ids in progress at its snapshot.
    pub xip: Vec<u64>,
}
