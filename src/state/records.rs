//! The records kept in the state store. Every record is stored behind a version tag (see
//! `codec`); a field added in a later release means a new version number and a conversion
//! from the old one in `codec::decode`.

use crate::keyspace::{Position, Slice};
use serde::{Deserialize, Serialize};

/// Identity of the job this state belongs to (never holds a password).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// `source user@host:port/db -> dest …, table schema.name, cursor c`.
    pub identity: String,
    /// When the job was first seen (unix seconds).
    pub created_unix: u64,
}

/// A pass: its bounds, its slices, and how far each slice has committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRecord {
    /// Pass number, from 1.
    #[serde(rename = "pass")]
    pub number: u64,
    /// Lower bound (exclusive) of the pass.
    pub lower: Position,
    /// Inclusive upper cursor bound (source max cursor at the pass start; `None` for an
    /// empty source or one whose cursors are all NULL).
    pub upper: Option<String>,
    /// The slices, in key order.
    pub slices: Vec<Slice>,
    /// How far each slice has committed (same length as `slices`; record version 3).
    /// Slices are copied one after the other, or several at once with `--jobs`.
    pub progress: Vec<SliceProgress>,
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

/// How far one slice of a pass has committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceProgress {
    /// Committed position inside the slice (its lower bound until a window commits).
    pub position: Position,
    /// Every row of the slice is committed.
    pub done: bool,
    /// Number of the slice's last committed window (`None`: none yet, or not known).
    pub last_window: Option<u64>,
}

impl SliceProgress {
    /// A slice nothing of which is committed yet.
    pub fn untouched(slice: &Slice) -> Self {
        SliceProgress {
            position: slice.lower.clone(),
            done: false,
            last_window: None,
        }
    }
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

/// A pass record as release 0.2.0 wrote it (record version 2): one slice at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRecordV2 {
    /// See `PassRecord`.
    pub pass: u64,
    /// See `PassRecord`.
    pub lower: Position,
    /// See `PassRecord`.
    pub upper: Option<String>,
    /// See `PassRecord`.
    pub slices: Vec<Slice>,
    /// Index of the slice being copied (== slices.len() when all are done).
    pub current_slice: usize,
    /// Committed position inside the current slice.
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
    /// See `PassRecord`.
    pub apply: ApplyMode,
}

impl From<PassRecordV2> for PassRecord {
    fn from(v2: PassRecordV2) -> Self {
        let progress = v2
            .slices
            .iter()
            .enumerate()
            .map(|(i, slice)| match i.cmp(&v2.current_slice) {
                std::cmp::Ordering::Less => SliceProgress {
                    position: slice.lower.clone(),
                    done: true,
                    last_window: None,
                },
                std::cmp::Ordering::Equal if v2.position != slice.lower => SliceProgress {
                    position: v2.position.clone(),
                    done: false,
                    // Windows were numbered in order: the last one committed was this slice's.
                    last_window: v2.next_window.checked_sub(1),
                },
                _ => SliceProgress::untouched(slice),
            })
            .collect();
        PassRecord {
            number: v2.pass,
            lower: v2.lower,
            upper: v2.upper,
            slices: v2.slices,
            progress,
            next_window: v2.next_window,
            rows_read: v2.rows_read,
            rows_written: v2.rows_written,
            windows_committed: v2.windows_committed,
            windows_reconciled: v2.windows_reconciled,
            started_unix: v2.started_unix,
            seconds_before: v2.seconds_before,
            apply: v2.apply,
        }
    }
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
    /// See `PassRecordV2`.
    pub current_slice: usize,
    /// See `PassRecordV2`.
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

impl From<PassRecordV1> for PassRecordV2 {
    fn from(v1: PassRecordV1) -> Self {
        PassRecordV2 {
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
        self.progress.iter().all(|p| p.done)
    }

    /// The first slice not done (== slices.len() when all are).
    pub fn current_slice(&self) -> usize {
        self.progress
            .iter()
            .position(|p| !p.done)
            .unwrap_or(self.progress.len())
    }

    /// Slices done.
    pub fn slices_done(&self) -> usize {
        self.progress.iter().filter(|p| p.done).count()
    }

    /// Everything up to this position is committed: the committed position of the first
    /// slice not done (the pass's end when all are). With `--jobs`, later slices may be
    /// further along.
    pub fn position(&self) -> Position {
        match self.progress.iter().find(|p| !p.done) {
            Some(p) => p.position.clone(),
            None => self.end(),
        }
    }

    /// Where the next pass starts once this one is done: after its upper bound (rows with
    /// a NULL cursor are read again by every pass).
    pub fn end(&self) -> Position {
        match (&self.upper, &self.lower) {
            (Some(upper), _) => Position::AfterCursor(upper.clone()),
            // Only NULL cursors, read by blocks: the next pass reads them all again.
            (None, Position::AtBlock(_)) => Position::Start,
            (None, lower) => lower.clone(),
        }
    }

    /// Where a pass known only from this point on would start, ranked so that a later
    /// point ranks higher: (first slice not done, its last committed window).
    pub fn resume_point(&self) -> (u64, Position) {
        let k = self.current_slice();
        let last = self
            .progress
            .get(k)
            .and_then(|p| p.last_window)
            .map_or(0, |w| w + 1);
        (
            ((k as u64) << 40) | last.min((1 << 40) - 1),
            self.position(),
        )
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
    pub pending: Vec<crate::keyspace::late_commits::PendingTx>,
}

/// The source transactions in progress when a pass was planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassSnapshot {
    /// The pass.
    pub pass: u64,
    /// Transaction ids in progress at its snapshot.
    pub xip: Vec<u64>,
}

/// How a side was connected on the job's last run (for `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideConnection {
    /// The sslmode asked for.
    pub sslmode: String,
    /// What the server reported: `TLSv1.3 TLS_AES_256_GCM_SHA384`, or `none`.
    pub encryption: String,
}

/// Both sides' connections on the job's last run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connections {
    /// The source.
    pub source: SideConnection,
    /// The destination.
    pub destination: SideConnection,
}

/// The current (or last) diff pass (`--mode diff`): what it compared, how many of its
/// differing windows are applied. A crash mid-pass costs a comparison, never a re-copy:
/// the next pass compares again, and windows applied before the crash compare equal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiffRecord {
    /// The pass it followed (the cursor pass's number).
    pub pass: u64,
    /// Windows compared.
    pub windows: u64,
    /// Windows whose checksums differed.
    pub differing_windows: u64,
    /// Differing windows applied (each one destination transaction).
    pub windows_applied: u64,
    /// Rows inserted or changed.
    pub rows_written: u64,
    /// Rows deleted (keys the source no longer has).
    pub rows_deleted: u64,
    /// Every differing window was applied.
    pub finished: bool,
    /// When it was last recorded (unix seconds).
    pub recorded_unix: u64,
}
