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
    /// How windows are applied (record version 2; version-1 passes were all `Upsert`).
    pub apply: ApplyMode,
}

/// How the windows of a pass reach the target table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyMode {
    /// Staging table + upsert that skips equal rows: any pass.
    Upsert,
    /// COPY straight into the target: a pass from the start into an empty destination.
    /// A window that meets a row already there (unique violation) is redone with `Upsert`.
    Append,
    /// Like `Append`, into a destination pgsync created without its primary key; the key
    /// is built once when the pass ends (rows moved during the load are deduplicated then).
    AppendKeyLater,
}

/// A pass record as release 0.1.0 wrote it (record version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRecordV1 {
    /// See `PassRecord`.
    pub pass: u64,
    /// See `PassRecord`.
    pub lower: Position,
    /// See `PassRecord`.
    pub upper: Option<String>,
    /// See `PassRecord`.
    pub slices: Vec<Slice>,
    /// See `PassRecord`.
    pub current_slice: usize,
    /// See `PassRecord`.
    pub position: Position,
    /// See `PassRecord`.
    pub next_window: u64,
    /// See `PassRecord`.
    pub rows_read: u64,
    /// See `PassRecord`.
    pub rows_written: u64,
    /// See `PassRecord`.
    pub windows_committed: u64,
    /// See `PassRecord`.
    pub windows_reconciled: u64,
    /// See `PassRecord`.
    pub started_unix: u64,
    /// See `PassRecord`.
    pub seconds_before: f64,
}

impl From<PassRecordV1> for PassRecord {
    fn from(v1: PassRecordV1) -> Self {
        PassRecord {
            pass: v1.pass,
            lower: v1.lower,
            upper: v1.upper,
            slices: v1.slices,
            current_slice: v1.current_slice,
            position: v1.position,
            next_window: v1.next_window,
            rows_read: v1.rows_read,
            rows_written: v1.rows_written,
            windows_committed: v1.windows_committed,
            windows_reconciled: v1.windows_reconciled,
            started_unix: v1.started_unix,
            seconds_before: v1.seconds_before,
            apply: ApplyMode::Upsert,
        }
    }
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
