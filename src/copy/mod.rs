//! The data path of one window, one file per step in order: `source` (COPY out of the
//! source), `staging` (COPY into a temp table on the destination), `upsert` (into the
//! target, skipping rows that are already equal). On a fresh load (`ApplyMode::Append`)
//! the COPY goes straight into the target and `tail` learns the window's end from the
//! stream; `window_end` is the one rule for where a window ends. `stage_window` (or
//! `stage_streamed`, fed by `readahead`) leaves the rows in an open destination transaction
//! and returns it as a `StagedWindow`; the caller records the window, then commits it with
//! its receipt (`staged.rs`). Checkpointing is the caller's next step.

pub mod printer;
pub mod readahead;
pub mod source;
pub mod staged;
pub mod staging;
pub mod tail;
pub mod upsert;
pub mod window_end;
pub mod window_size;

use crate::catalog::TableShape;
use crate::db::txn::Txn;
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::keyspace::{KeySpace, Position, SliceKind};
use crate::state::records::ApplyMode;
use postgres::types::Type;
use readahead::{FromReader, ReadAhead};
pub use staged::{StagedWindow, WindowOutcome};
use staging::Piped;
use tail::TailTracker;
use window_end::{after_last_row, window_end};

/// Everything fixed for the windows of a pass.
#[derive(Clone, Copy)]
pub struct WindowPlan<'a> {
    pub shape: &'a TableShape,
    pub ks: &'a KeySpace,
    /// The statement that moves the staging table's rows into the target.
    pub upsert_sql: &'a str,
    /// Rows of the next window (fixed, or sized by time).
    pub window: &'a std::sync::Arc<window_size::WindowSize>,
}

/// A worker's destination connection, with the `COPY … FROM STDIN` statement it prepared:
/// prepared once per connection rather than once per window (a prepare is a round trip).
pub struct DestConn<'c> {
    pub client: &'c mut postgres::Client,
    copy_in: Option<(String, postgres::Statement)>,
}

impl<'c> DestConn<'c> {
    pub fn new(client: &'c mut postgres::Client) -> Self {
        DestConn {
            client,
            copy_in: None,
        }
    }

    /// The prepared `COPY target (columns) FROM STDIN (FORMAT binary)`.
    fn copy_in(&mut self, target: &str, shape: &TableShape) -> Result<postgres::Statement, Error> {
        let sql = copy_in_sql(target, shape);
        if let Some((prepared, statement)) = &self.copy_in {
            if *prepared == sql {
                return Ok(statement.clone());
            }
        }
        let statement = self
            .client
            .prepare(&sql)
            .on(Side::Destination, "preparing a window's COPY")?;
        crate::db::round_trips(1);
        self.copy_in = Some((sql, statement.clone()));
        Ok(statement)
    }
}

/// What staging a window gave.
pub enum Staged<'a> {
    /// The rows are in, uncommitted.
    Ready(StagedWindow<'a>),
    /// SIGINT/SIGTERM arrived mid-window; the transaction was rolled back.
    Interrupted,
}

/// An append met a row already in the target (a row moved forward during the load): the
/// window is rolled back, and the pass goes on as upsert.
pub fn met_existing_row(e: &Error) -> bool {
    let unique_violation = postgres::error::SqlState::UNIQUE_VIOLATION.code();
    matches!(e, Error::Db(db) if db.code.as_deref() == Some(unique_violation))
}

/// Whether a table's windows can be appended: the append path reads a window's end from the
/// COPY stream, which needs built-in types (same OID everywhere) for cursor and key.
pub fn append_supported(shape: &TableShape, ks: &KeySpace) -> bool {
    watched_columns(shape, ks).is_some()
}

/// Column index and type of the cursor and key columns, when all are built-in types.
pub fn watched_columns(shape: &TableShape, ks: &KeySpace) -> Option<Vec<(usize, Type)>> {
    std::iter::once(&ks.cursor.0)
        .chain(ks.key.iter().map(|(n, _)| n))
        .map(|name| {
            // Positions in the COPY stream, which carries the copied columns only.
            let (index, column) = shape.copied().enumerate().find(|(_, c)| &c.name == name)?;
            Some((index, Type::from_oid(column.type_oid)?))
        })
        .collect()
}

/// Reads the window after `from` in a slice of `kind` from the source and stages it in a
/// new destination transaction: appended to the target (`mode` not `Upsert`), or through
/// the staging table and the upsert.
pub fn stage_window<'d>(
    source: &mut postgres::Client,
    dest: &'d mut DestConn<'_>,
    plan: &WindowPlan<'_>,
    mode: ApplyMode,
    from: &Position,
    kind: &SliceKind,
) -> Result<Staged<'d>, Error> {
    let limit = plan.window.rows();
    let copy_sql = source::window_copy_sql(plan.shape, plan.ks, from, kind, limit);
    let watched = match mode {
        ApplyMode::Upsert => None,
        _ => watched_columns(plan.shape, plan.ks),
    };
    let target = match watched {
        Some(_) => plan.shape.table.sql(),
        None => staging::STAGE.to_string(),
    };
    let copy_in = dest.copy_in(&target, plan.shape)?;
    let mut txn =
        Txn::begin(&mut *dest.client).on(Side::Destination, "starting a window transaction")?;
    let Some(watched) = watched else {
        let Piped::Rows(rows) = staging::pipe(source, &mut *txn, &copy_sql, &copy_in, None)? else {
            return Ok(Staged::Interrupted);
        };
        let (end, slice_done) = window_end(kind, from, rows, limit, || {
            staging::last_position(&mut *txn, plan.ks, kind)
        })?;
        return written(txn, (rows, 0), end, slice_done, false);
    };
    let mut tail = TailTracker::new(watched.iter().map(|(i, _)| *i).collect());
    let Piped::Rows(rows) = staging::pipe(source, &mut *txn, &copy_sql, &copy_in, Some(&mut tail))?
    else {
        return Ok(Staged::Interrupted);
    };
    let (end, slice_done) = window_end(kind, from, rows, limit, || {
        after_last_row(
            &mut txn,
            Side::Destination,
            &watched,
            (plan.ks, kind),
            &tail,
        )
    })?;
    written(txn, (rows, 0), end, slice_done, true)
}

/// Stages the next window as the read-ahead thread delivers it: the same transaction as
/// `stage_window`, fed from the channel instead of a source COPY.
pub fn stage_streamed<'d>(
    dest: &'d mut DestConn<'_>,
    plan: &WindowPlan<'_>,
    mode: ApplyMode,
    reader: &ReadAhead,
) -> Result<Staged<'d>, Error> {
    let doing = "writing a window";
    let appended = mode != ApplyMode::Upsert;
    let target = if appended {
        plan.shape.table.sql()
    } else {
        staging::STAGE.to_string()
    };
    let copy_in = dest.copy_in(&target, plan.shape)?;
    let mut txn =
        Txn::begin(&mut *dest.client).on(Side::Destination, "starting a window transaction")?;
    let mut writer = txn.copy_in(&copy_in).on(Side::Destination, doing)?;
    crate::db::round_trips(1);
    let mut bytes = 0u64;
    let (rows, end, slice_done) = loop {
        match reader.recv() {
            FromReader::Data(chunk) => {
                bytes += chunk.len() as u64;
                std::io::Write::write_all(&mut writer, &chunk)
                    .map_err(|e| staging::classify_io(Side::Destination, doing, e))?
            }
            FromReader::End {
                rows,
                end,
                slice_done,
            } => break (rows, end, slice_done),
            FromReader::Interrupted => return Ok(Staged::Interrupted),
            FromReader::Failed(e) => return Err(e),
        }
    };
    let copied = writer.finish().on(Side::Destination, doing)?;
    crate::db::round_trips(1);
    debug_assert_eq!(
        copied, rows,
        "the destination took every row the reader counted"
    );
    written(txn, (rows, bytes), end, slice_done, appended)
}

fn copy_in_sql(target: &str, shape: &TableShape) -> String {
    format!(
        "COPY {target} ({}) FROM STDIN (FORMAT binary)",
        shape.column_list(None)
    )
}

/// The window's rows in the target (appended already), or staged for the upsert that runs
/// with the receipt and COMMIT (`StagedWindow::upserts_at_commit`): one round trip fewer.
fn written(
    txn: Txn<'_>,
    (rows_read, bytes): (u64, u64),
    end: Position,
    slice_done: bool,
    appended: bool,
) -> Result<Staged<'_>, Error> {
    let outcome = WindowOutcome {
        rows_read,
        rows_written: if appended { rows_read } else { 0 },
        end,
        slice_done,
        bytes,
    };
    Ok(Staged::Ready(StagedWindow::new(txn, outcome, !appended)))
}
