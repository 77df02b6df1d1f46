//! Step 2 of a window: the destination's staging table. A temporary table shaped like the
//! target (`LIKE`, plus a sequence column that records arrival order when a window's end
//! is read from it), emptied at every commit. The source's COPY stream is piped into `COPY … FROM STDIN (FORMAT binary)`
//! with `std::io::copy`: memory stays flat whatever the window size.

use super::tail::TailTracker;
use crate::catalog::TableShape;
use crate::db::{DbError, DbErrorKind, PgResultExt, Side};
use crate::keyspace::{KeySpace, Position, SliceKind};
use crate::runtime::shutdown;
use std::io::{self, Read};

/// Name of the staging table (temporary, so per session).
pub const STAGE: &str = "pgsync_stage";
/// Arrival-order column of the staging table.
const SEQ: &str = "pgsync_arrival";

/// How a pipe ended when no database failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piped {
    /// The destination took this many rows.
    Rows(u64),
    /// SIGINT/SIGTERM arrived mid-window: the COPY was aborted and the caller's transaction
    /// rolls back.
    Interrupted,
}

/// Creates the session's staging table; with `arrival_order`, a sequence column records
/// the order rows came in (`last_position` needs it; the read-ahead learns a window's end
/// from the stream, and its rows are cheaper to stage without it).
pub fn create(
    client: &mut postgres::Client,
    shape: &TableShape,
    arrival_order: bool,
) -> Result<(), DbError> {
    // A new session has no temp schema yet: the DROP's "does not exist" notice is muted.
    let mut sql = format!(
        "SET client_min_messages = warning; DROP TABLE IF EXISTS pg_temp.{STAGE}; \
         RESET client_min_messages; CREATE TEMP TABLE {STAGE} (LIKE {}) ON COMMIT DELETE ROWS",
        shape.table.sql()
    );
    if arrival_order {
        sql.push_str(&format!("; ALTER TABLE {STAGE} ADD COLUMN {SEQ} bigserial"));
    }
    client
        .batch_execute(&sql)
        .on(Side::Destination, "creating the staging table")
}

/// Pipes the source COPY into the staging table (its COPY prepared here: one round trip).
pub fn stage(
    source: &mut postgres::Client,
    txn: &mut impl postgres::GenericClient,
    copy_out_sql: &str,
    shape: &TableShape,
) -> Result<Piped, DbError> {
    let copy_in = txn
        .prepare(&super::copy_in_sql(STAGE, shape))
        .on(Side::Destination, "writing a window")?;
    crate::db::round_trips(1);
    pipe(source, txn, copy_out_sql, &copy_in, None)
}

/// Pipes a source `COPY … TO STDOUT` into a destination `COPY … FROM STDIN` (prepared
/// by the caller) with `std::io::copy` (bounded buffers, no row parsing), optionally
/// showing the bytes to a tail tracker.
pub fn pipe(
    source: &mut postgres::Client,
    txn: &mut impl postgres::GenericClient,
    copy_out_sql: &str,
    copy_in: &postgres::Statement,
    tail: Option<&mut TailTracker>,
) -> Result<Piped, DbError> {
    let reader = source
        .copy_out(copy_out_sql)
        .on(Side::Source, "reading a window")?;
    let mut reader = WatchedReader {
        inner: reader,
        failed: None,
        tail,
    };
    let mut writer = txn
        .copy_in(copy_in)
        .on(Side::Destination, "writing a window")?;
    if let Err(write_err) = io::copy(&mut reader, &mut writer) {
        // Dropping the writer aborts the COPY; the caller's transaction then rolls back.
        return match reader.failed.take() {
            Some(ReadFailure::Interrupted) => Ok(Piped::Interrupted),
            Some(ReadFailure::Io(e)) => Err(classify_io(Side::Source, "reading a window", e)),
            None => Err(classify_io(
                Side::Destination,
                "writing a window",
                write_err,
            )),
        };
    }
    let rows = writer.finish().on(Side::Destination, "writing a window")?;
    // COPY out prepared then started; COPY in started and ended.
    crate::db::round_trips(4);
    Ok(Piped::Rows(rows))
}

/// The COPY adapters wrap the driver's error in an io::Error: unwrap it so the SQLSTATE
/// (statement timeout, terminated backend…) decides, not a guess.
pub fn classify_io(side: Side, doing: &str, e: io::Error) -> DbError {
    let kind = e.kind();
    match e
        .into_inner()
        .map(|inner| inner.downcast::<postgres::Error>())
    {
        Some(Ok(pg)) => DbError::from_pg(side, doing, *pg),
        Some(Err(other)) => {
            DbError::other(side, DbErrorKind::ConnectionLost, doing, other.to_string())
        }
        None => DbError::other(side, DbErrorKind::ConnectionLost, doing, format!("{kind}")),
    }
}

/// The position of the last row staged (arrival order = the source's ORDER BY).
pub fn last_position(
    txn: &mut impl postgres::GenericClient,
    ks: &KeySpace,
    kind: &SliceKind,
) -> Result<Position, DbError> {
    let sql = format!(
        "SELECT {} FROM {STAGE} ORDER BY {SEQ} DESC LIMIT 1",
        ks.position_select()
    );
    let doing = "reading the window's end";
    let row = txn
        .query_typed_one(&sql, &[])
        .on(Side::Destination, doing)?;
    crate::db::round_trips(1);
    super::window_end::position_of(&row, Side::Destination, doing, (ks, kind))
}

enum ReadFailure {
    Interrupted,
    Io(io::Error),
}

/// Remembers whether a copy failed on the read (source) side, stops on shutdown, and
/// shows the bytes to the tail tracker.
struct WatchedReader<'t, R> {
    inner: R,
    failed: Option<ReadFailure>,
    tail: Option<&'t mut TailTracker>,
}

impl<R: Read> Read for WatchedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if shutdown::requested() {
            self.failed = Some(ReadFailure::Interrupted);
            return Err(io::Error::other("interrupted"));
        }
        let n = self.inner.read(buf).map_err(|e| {
            // Keep the driver's error (and its SQLSTATE); io::copy gets its text.
            let text = e.to_string();
            self.failed = Some(ReadFailure::Io(e));
            io::Error::other(text)
        })?;
        if let Some(tail) = self.tail.as_deref_mut() {
            if let Err(e) = tail.feed(&buf[..n]) {
                self.failed = Some(ReadFailure::Io(io::Error::other(e.to_string())));
                return Err(io::Error::other(e.to_string()));
            }
        }
        Ok(n)
    }
}
