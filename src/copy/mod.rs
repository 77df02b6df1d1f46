//! The data path of one window, one file per step in order: `source` (COPY out of the
//! source), `staging` (COPY into a temp table on the destination), `upsert` (into the
//! target, skipping rows that are already equal). On a fresh load (`ApplyMode::Append`)
//! the COPY goes straight into the target and `tail` learns the window's end from the
//! stream. `apply_window` runs the steps and the receipt in ONE destination transaction and
//! commits it; checkpointing is the caller's next step (see `checkpoint.rs`).

pub mod readahead;
pub mod source;
pub mod staging;
pub mod tail;
pub mod upsert;

use crate::catalog::TableShape;
use crate::db::txn::Txn;
use crate::db::{DbError, DbErrorKind, PgResultExt, Side};
use crate::error::Error;
use crate::keyspace::{KeySpace, Position, Slice, SliceKind};
use crate::protocol::receipts::{Receipt, Receipts, Resume};
use crate::runtime::failpoint;
use crate::state::records::ApplyMode;
use postgres::types::{ToSql, Type};
use readahead::{Msg, ReadAhead};
pub use staging::StageError;
use tail::{RawValue, TailTracker};

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
    /// Time spent in the window's transaction on bookkeeping: building the receipt and
    /// the caller's in-flight record (reported by `-v`, not stored).
    pub bookkeeping: std::time::Duration,
}

/// SQLSTATE of a unique violation: an append met a row already in the target.
pub const UNIQUE_VIOLATION: &str = "23505";

/// Everything fixed for the windows of a pass.
#[derive(Clone, Copy)]
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
    /// How windows are applied.
    pub apply: ApplyMode,
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
    /// Every other slice of the pass is done: when this window ends its slice, it ends
    /// the pass.
    pub last_slice: bool,
    /// Where the pass could go on from without the local state (see `Receipt::resume`).
    pub resume: Option<Resume>,
    /// The pass's upper bound.
    pub pass_upper: Option<&'a str>,
    /// Position the window starts after.
    pub from: &'a Position,
}

/// Whether a table's windows can be appended: the append path reads a window's end from the
/// COPY stream, which needs built-in types (same OID everywhere) for cursor and key.
pub fn append_supported(shape: &TableShape, ks: &KeySpace) -> bool {
    position_types(shape, ks).is_some()
}

fn position_types(shape: &TableShape, ks: &KeySpace) -> Option<Vec<(usize, Type)>> {
    std::iter::once(&ks.cursor.0)
        .chain(ks.key.iter().map(|(n, _)| n))
        .map(|name| {
            let index = shape.columns.iter().position(|c| &c.name == name)?;
            Some((index, Type::from_oid(shape.columns[index].type_oid)?))
        })
        .collect()
}

/// Copies one window and commits it with its receipt. `before_commit` runs after the end
/// of the window is known and before COMMIT (the caller records the window as in flight).
/// An append that meets a row already in the target is rolled back and redone as an upsert.
pub fn apply_window(
    source: &mut postgres::Client,
    dest: &mut postgres::Client,
    plan: &WindowPlan<'_>,
    at: &WindowAt<'_>,
    before_commit: impl FnOnce(&WindowOutcome) -> Result<(), Error>,
) -> Result<WindowOutcome, Error> {
    let mut hook = Some(before_commit);
    if plan.apply != ApplyMode::Upsert {
        match one_window(source, dest, plan, at, true, &mut hook) {
            Err(Error::Db(e)) if e.code.as_deref() == Some(UNIQUE_VIOLATION) && hook.is_some() => {}
            other => return other,
        }
    }
    one_window(source, dest, plan, at, false, &mut hook)
}

fn one_window<F: FnOnce(&WindowOutcome) -> Result<(), Error>>(
    source: &mut postgres::Client,
    dest: &mut postgres::Client,
    plan: &WindowPlan<'_>,
    at: &WindowAt<'_>,
    append: bool,
    hook: &mut Option<F>,
) -> Result<WindowOutcome, Error> {
    let kind = &at.slice.kind;
    let copy_sql = source::window_copy_sql(plan.shape, plan.ks, at.from, kind, plan.window_rows);
    let mut txn = Txn::begin(dest).on(Side::Destination, "starting a window transaction")?;
    let watched = if append {
        position_types(plan.shape, plan.ks)
    } else {
        None
    };
    let mut tail = watched
        .as_ref()
        .map(|w| TailTracker::new(w.iter().map(|(i, _)| *i).collect()));
    let rows_read = match tail.as_mut() {
        Some(t) => {
            let copy_in = format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                plan.shape.table.sql(),
                plan.shape.column_list(None)
            );
            staging::pipe(source, &mut *txn, &copy_sql, &copy_in, Some(t))?
        }
        None => staging::stage(source, &mut *txn, &copy_sql, plan.shape)?,
    };
    let slice_done = rows_read < plan.window_rows;
    let end = match (slice_done, kind) {
        (true, SliceKind::Range { upper }) => Position::AfterCursor(upper.clone()),
        (true, SliceKind::NullCursor) if rows_read == 0 => at.from.clone(),
        _ => match (&tail, &watched) {
            (Some(t), Some(w)) => tail_position(&mut txn, plan.ks, kind, t, w)?,
            _ => staging::last_position(&mut *txn, plan.ks, kind)?,
        },
    };
    seal(txn, plan, at, rows_read, end, tail.is_some(), hook)
}

/// The common end of a window: the upsert (unless the rows were appended to the target),
/// the caller's in-flight record, then the receipt and COMMIT in one round trip — one
/// destination transaction.
fn seal<F: FnOnce(&WindowOutcome) -> Result<(), Error>>(
    mut txn: Txn<'_>,
    plan: &WindowPlan<'_>,
    at: &WindowAt<'_>,
    rows_read: u64,
    end: Position,
    appended: bool,
    hook: &mut Option<F>,
) -> Result<WindowOutcome, Error> {
    let slice_done = rows_read < plan.window_rows;
    let rows_written = if appended {
        rows_read
    } else {
        txn.execute(plan.upsert_sql, &[])
            .on(Side::Destination, "upserting a window")?
    };
    let mut outcome = WindowOutcome {
        rows_read,
        rows_written,
        end,
        slice_done,
        bookkeeping: std::time::Duration::ZERO,
    };
    let bookkeeping = std::time::Instant::now();
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
        resume: at.resume.clone(),
    };
    let receipt_sql = plan.receipts.insert_sql(plan.job_id, &receipt);
    if let Some(hook) = hook.take() {
        hook(&outcome)?;
    }
    outcome.bookkeeping = bookkeeping.elapsed();
    failpoint::hit(failpoint::BEFORE_DEST_COMMIT);
    // checkpoint-protocol.md step 1: rows and receipt commit together. The receipt's round
    // trip is the COMMIT's (it is timed with the window, not as bookkeeping).
    txn.commit_with(&receipt_sql)
        .on(Side::Destination, "committing a window")?;
    failpoint::hit(failpoint::AFTER_DEST_COMMIT);
    Ok(outcome)
}

/// Applies the next window as the read-ahead thread delivers it: the same transaction as
/// `apply_window` (rows, receipt, COMMIT), fed from the channel instead of a source COPY.
pub fn apply_streamed(
    dest: &mut postgres::Client,
    plan: &WindowPlan<'_>,
    at: &WindowAt<'_>,
    reader: &ReadAhead,
    before_commit: impl FnOnce(&WindowOutcome) -> Result<(), Error>,
) -> Result<WindowOutcome, Error> {
    let doing = "writing a window";
    let appended = plan.apply != ApplyMode::Upsert;
    let copy_in = if appended {
        format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            plan.shape.table.sql(),
            plan.shape.column_list(None)
        )
    } else {
        format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            staging::STAGE,
            plan.shape.column_list(None)
        )
    };
    let mut txn = Txn::begin(dest).on(Side::Destination, "starting a window transaction")?;
    let mut writer = txn.copy_in(&copy_in).on(Side::Destination, doing)?;
    let (rows, end) = loop {
        match reader.recv() {
            Msg::Data(bytes) => std::io::Write::write_all(&mut writer, &bytes)
                .map_err(|e| Error::Db(staging::classify_io(Side::Destination, doing, e)))?,
            Msg::End { rows, end, .. } => break (rows, end),
            Msg::Failed(e) => return Err(e),
        }
    };
    let copied = writer.finish().on(Side::Destination, doing)?;
    debug_assert_eq!(
        copied, rows,
        "the destination took every row the reader counted"
    );
    let mut hook = Some(before_commit);
    seal(txn, plan, at, rows, end, appended, &mut hook)
}

/// Column index and type of the cursor and key columns, when all are built-in types.
pub fn watched_columns(shape: &TableShape, ks: &KeySpace) -> Option<Vec<(usize, Type)>> {
    position_types(shape, ks)
}

/// The position after the last row appended, from its raw cursor and key bytes: the
/// destination prints them as text through parameters of their own types.
fn tail_position(
    txn: &mut postgres::Client,
    ks: &KeySpace,
    kind: &SliceKind,
    tail: &TailTracker,
    watched: &[(usize, Type)],
) -> Result<Position, Error> {
    let doing = "reading the window's end";
    let raw = tail.last().ok_or_else(|| {
        DbError::other(
            Side::Source,
            DbErrorKind::Other,
            doing,
            "no row in a full window",
        )
    })?;
    let select = (1..=watched.len())
        .map(|i| format!("${i}::text"))
        .collect::<Vec<_>>()
        .join(", ");
    let types: Vec<Type> = watched.iter().map(|(_, t)| t.clone()).collect();
    let stmt = txn
        .prepare_typed(&format!("SELECT {select}"), &types)
        .on(Side::Destination, doing)?;
    let values: Vec<RawValue<'_>> = raw.into_iter().map(RawValue).collect();
    let params: Vec<&(dyn ToSql + Sync)> =
        values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    let row = txn.query_one(&stmt, &params).on(Side::Destination, doing)?;
    let texts = (0..row.len())
        .map(|i| row.get::<_, Option<String>>(i).unwrap_or_default())
        .collect();
    Ok(ks.position_after(kind, texts))
}
