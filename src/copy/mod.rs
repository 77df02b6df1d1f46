//! The data path of one window, one file per step in order: `source` (COPY out of the
//! source), `staging` (COPY into a temp table on the destination), `upsert` (into the
//! target, skipping rows that are already equal). `apply_window` runs the steps and the
//! receipt in ONE destination transaction and commits it; checkpointing is the caller's
//! next step (see `checkpoint.rs`).

pub mod source;
pub mod staging;
pub mod upsert;

use crate::catalog::TableShape;
use crate::db::{PgResultExt, Side};
use crate::failpoint;
use crate::plan::{KeySpace, Position, Slice, SliceKind};
use crate::receipts::{Receipt, Receipts};
pub use staging::StageError;

/// What the window did.
#[derive(Debug, Clone)]
pub struct WindowOutcome {
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows inserted or changed in the destination.
    pub rows_written: u64,
    /// Position after the window.
    pub end: Position,
    /// The window exhausted its slice.
    pub slice_done: bool,
}

/// Everything fixed for the windows of a pass.
pub struct WindowPlan<'a> {
    /// Target shape.
    pub shape: &'a TableShape,
    /// Key space.
    pub ks: &'a KeySpace,
    /// The upsert statement.
    pub upsert_sql: &'a str,
    /// Receipts table.
    pub receipts: &'a Receipts,
    /// Job id (receipt key).
    pub job_id: &'a str,
    /// Rows per window.
    pub window_rows: u64,
}

/// Where in the pass the window sits.
pub struct WindowAt<'a> {
    /// Pass number.
    pub pass: u64,
    /// Window number.
    pub window: u64,
    /// Slice index.
    pub slice_index: usize,
    /// The slice.
    pub slice: &'a Slice,
    /// The slice is the pass's last.
    pub last_slice: bool,
    /// The pass's upper bound.
    pub pass_upper: Option<&'a str>,
    /// Position the window starts after.
    pub from: &'a Position,
}

/// Copies one window and commits it with its receipt. `before_commit` runs after the end
/// of the window is known and before COMMIT (the caller records the window as in flight).
pub fn apply_window(
    source: &mut postgres::Client,
    dest: &mut postgres::Client,
    plan: &WindowPlan<'_>,
    at: &WindowAt<'_>,
    before_commit: impl FnOnce(&WindowOutcome) -> Result<(), crate::error::Error>,
) -> Result<WindowOutcome, crate::error::Error> {
    let kind = &at.slice.kind;
    let copy_sql = source::window_copy_sql(plan.shape, plan.ks, at.from, kind, plan.window_rows);
    let mut txn = dest
        .transaction()
        .on(Side::Destination, "starting a window transaction")?;
    let rows_read = staging::stage(source, &mut txn, &copy_sql, plan.shape)?;
    let slice_done = rows_read < plan.window_rows;
    let end = match (slice_done, kind) {
        (false, _) => staging::last_position(&mut txn, plan.ks, kind)?,
        (true, SliceKind::Range { upper }) => Position::AfterCursor(upper.clone()),
        (true, SliceKind::NullCursor) if rows_read > 0 => {
            staging::last_position(&mut txn, plan.ks, kind)?
        }
        (true, SliceKind::NullCursor) => at.from.clone(),
    };
    let rows_written = txn
        .execute(plan.upsert_sql, &[])
        .on(Side::Destination, "upserting a window")?;
    let outcome = WindowOutcome {
        rows_read,
        rows_written,
        end,
        slice_done,
    };
    let receipt = Receipt {
        pass: at.pass,
        window: at.window,
        slice: at.slice_index,
        end: outcome.end.clone(),
        slice_done,
        pass_finished: slice_done && at.last_slice,
        pass_upper: at.pass_upper.map(str::to_string),
        rows_read,
        rows_written,
    };
    plan.receipts.insert(&mut txn, plan.job_id, &receipt)?;
    before_commit(&outcome)?;
    failpoint::hit(failpoint::BEFORE_DEST_COMMIT);
    // checkpoint-protocol.md step 1: rows and receipt commit together.
    txn.commit().on(Side::Destination, "committing a window")?;
    failpoint::hit(failpoint::AFTER_DEST_COMMIT);
    Ok(outcome)
}
