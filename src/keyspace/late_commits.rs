//! Defence against late-committing transactions (docs/consistency.md). A cursor watermark
//! alone misses a row whose transaction was open while a pass read its range and committed
//! afterwards with a cursor below the next pass's start. So:
//!
//! 1. when a pass is planned, after its upper bound is read, pgsync records the source
//!    transactions running at that moment (every transaction with an xid holds a lock on it:
//!    `pg_locks`, readable by any role — `pg_current_snapshot()` does not list a running
//!    transaction whose xid is at or above the snapshot's xmax);
//! 2. when the pass finishes, each of them becomes *pending* with a floor = the pass's lower
//!    bound (it may have committed rows after their window was read, or may still do so);
//! 3. the next pass checks the pending ones *before* reading its upper bound: it starts no
//!    later than the floor of every pending transaction; finished ones (visible to all of
//!    its windows) are dropped, running ones are kept and checked again next time;
//! 4. every lower bound taken from a watermark is moved back by `--lookback`, for
//!    transactions that began after the previous pass was planned.

use super::Position;
use crate::db::{DbError, PgResultExt, Side};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// A source transaction that may still bring rows below the watermark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTx {
    /// Transaction id (32-bit, as `pg_locks` shows it).
    pub xid: u64,
    /// No pass may start after this position until the transaction has been seen finished.
    pub floor: Position,
}

/// The transactions (with an xid) running on the source's cluster now.
pub fn running(client: &mut postgres::Client) -> Result<BTreeSet<u64>, DbError> {
    let rows = client
        .query(
            "SELECT DISTINCT transactionid::text::bigint FROM pg_catalog.pg_locks \
             WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted",
            &[],
        )
        .on(Side::Source, "listing running source transactions")?;
    Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
}

/// How a lookback applies to a cursor type: an interval for date/time types, a number of
/// milliseconds for numeric types (epoch-millisecond cursors), nothing otherwise.
pub fn lookback_expr(sql_type: &str, lookback: Duration) -> Option<String> {
    if lookback.is_zero() {
        return None;
    }
    let t = sql_type.to_ascii_lowercase();
    if t.starts_with("timestamp") || t == "date" {
        Some(format!("interval '{} milliseconds'", lookback.as_millis()))
    } else if ["smallint", "integer", "bigint", "real", "double precision"].contains(&t.as_str())
        || t.starts_with("numeric")
    {
        Some(format!("{}", lookback.as_millis()))
    } else {
        None
    }
}

/// Moves a watermark position back by the lookback (computed by the source, in its types).
pub fn apply_lookback(
    client: &mut postgres::Client,
    pos: Position,
    sql_type: &str,
    lookback: Duration,
) -> Result<Position, DbError> {
    let (Position::AfterCursor(v), Some(expr)) = (&pos, lookback_expr(sql_type, lookback)) else {
        return Ok(pos);
    };
    let sql = format!("SELECT ($1::text::{sql_type} - {expr})::{sql_type}::text");
    let back: String = client
        .query_one(&sql, &[v])
        .on(Side::Source, "applying the lookback")?
        .get(0);
    Ok(Position::BeforeCursor(back))
}

/// The earliest of a lower bound and some floors (compared by the source, in its types).
pub fn earliest(
    client: &mut postgres::Client,
    base: Position,
    floors: &[Position],
    sql_type: &str,
) -> Result<Position, DbError> {
    if floors.is_empty() {
        return Ok(base);
    }
    let mut values = Vec::new();
    for p in std::iter::once(&base).chain(floors) {
        match p {
            Position::Start | Position::NullsAfter(_) => return Ok(Position::Start),
            Position::BeforeCursor(v)
            | Position::AfterCursor(v)
            | Position::AfterKey { cursor: v, .. } => values.push(v.clone()),
        }
    }
    let sql = format!("SELECT min(x::{sql_type})::text FROM unnest($1::text[]) AS x");
    let min: Option<String> = client
        .query_one(&sql, &[&values])
        .on(Side::Source, "choosing the pass start")?
        .get(0);
    Ok(min.map_or(Position::Start, Position::BeforeCursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookback_is_an_interval_for_times_and_milliseconds_for_numbers() {
        let five = Duration::from_secs(300);
        assert_eq!(
            lookback_expr("timestamp with time zone", five).unwrap(),
            "interval '300000 milliseconds'"
        );
        assert_eq!(lookback_expr("bigint", five).unwrap(), "300000");
        assert_eq!(lookback_expr("numeric(20,0)", five).unwrap(), "300000");
        assert_eq!(lookback_expr("uuid", five), None);
        assert_eq!(lookback_expr("bigint", Duration::ZERO), None);
    }
}
