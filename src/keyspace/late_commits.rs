//! Defence against late-committing transactions (docs/consistency.md). A cursor watermark
//! alone misses a row whose transaction was open while a pass read its range and committed
//! afterwards with a cursor below the next pass's start. So:
//!
//! 1. when a pass is planned, after its upper bound is read, pgsync records the transactions
//!    of the source table's database running at that moment — every one, written yet or not
//!    (each holds a lock on its virtual transaction id, and on its xid once it has one:
//!    `pg_locks`, readable by any role; `pg_current_snapshot()` does not list a running
//!    transaction whose xid is at or above the snapshot's xmax), plus prepared ones;
//!    Those that end within a short wait, before any window reads, are dropped: every
//!    window sees their rows;
//! 2. when the pass finishes, each of the rest becomes *pending* with a floor = the pass's
//!    lower bound (it may have committed rows after their window was read, or may still do so);
//! 3. the next pass checks the pending ones *before* reading its upper bound: it starts no
//!    later than the floor of every pending transaction; finished ones (visible to all of
//!    its windows) are dropped, running ones are kept and checked again next time;
//! 4. every lower bound taken from a watermark is moved back by `--lookback`, for clock skew
//!    between writers that set the cursor from their clocks: a transaction that began after
//!    the previous plan writes cursors from a clock at least that plan's max cursor.
//!
//! Transactions are kept as 64-bit tokens: an xid as itself (below 2^32), a virtual
//! transaction id `b/n` as `2^63 | b << 32 | n` (see [`vxid_token`], [`describe`]).

use super::Position;
use crate::db::{DbError, PgResultExt, Side};
use postgres::types::Type;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// A source transaction that may still bring rows below the watermark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTx {
    /// The transaction's token: an xid or a virtual transaction id ([`describe`]).
    pub xid: u64,
    /// No pass may start after this position until the transaction has been seen finished.
    pub floor: Position,
}

const VIRTUAL: u64 = 1 << 63;

/// The token of a virtual transaction id as `pg_locks` shows it (`backend/local`).
pub fn vxid_token(vxid: &str) -> Option<u64> {
    let (backend, local) = vxid.split_once('/')?;
    let backend: u32 = backend.parse().ok().filter(|b| *b < 1 << 31)?;
    let local: u32 = local.parse().ok()?;
    Some(VIRTUAL | u64::from(backend) << 32 | u64::from(local))
}

/// A token as people read it: `xid:1234` or `vxid:3/17`.
pub fn describe(token: u64) -> String {
    if token & VIRTUAL == 0 {
        format!("xid:{token}")
    } else {
        format!("vxid:{}/{}", (token & !VIRTUAL) >> 32, token & 0xffff_ffff)
    }
}

/// Every transaction of this database's sessions (other than this session and the job's
/// own read-only source sessions, which share its application_name) and of autovacuum
/// where the role may see which sessions are autovacuum. Sessions of other databases
/// cannot write this database's rows.
const RUNNING: &str = "\
    SELECT l.virtualxid, l.transactionid::text::bigint \
    FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
    WHERE l.locktype IN ('virtualxid', 'transactionid') AND l.mode = 'ExclusiveLock' AND l.granted \
      AND a.datname = current_database() AND l.pid <> pg_backend_pid() \
      AND a.application_name IS DISTINCT FROM current_setting('application_name') \
      AND coalesce(a.backend_type, '') NOT IN ('autovacuum worker', 'walsender') \
    UNION ALL \
    SELECT NULL, transaction::text::bigint FROM pg_catalog.pg_prepared_xacts \
    WHERE database = current_database()";

/// The transactions running now in the source table's database ([`RUNNING`]), as tokens.
pub fn running(client: &mut postgres::Client) -> Result<BTreeSet<u64>, DbError> {
    let rows = client
        .query_typed(RUNNING, &[])
        .on(Side::Source, "listing running source transactions")?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let vxid: Option<&str> = r.get(0);
            let xid: Option<i64> = r.get(1);
            vxid.and_then(vxid_token).or(xid.map(|x| x as u64))
        })
        .collect())
}

/// Of `xip` (running when a pass was planned), those still running after waiting up to
/// `wait` for them to end. One that ended before any window of the pass reads is visible to
/// every window, so the pass itself brings its rows: it need not be held back. Under a
/// steady stream of short write transactions this keeps the next pass from re-reading this
/// one's range.
pub fn still_running_after(
    client: &mut postgres::Client,
    mut xip: BTreeSet<u64>,
    wait: Duration,
) -> Result<BTreeSet<u64>, DbError> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if xip.is_empty() || std::time::Instant::now() >= deadline {
            return Ok(xip);
        }
        std::thread::sleep(Duration::from_millis(10));
        let now = running(client)?;
        xip.retain(|t| now.contains(t));
    }
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
        .query_typed_one(&sql, &[(v, Type::TEXT)])
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
            Position::Start | Position::NullsAfter(_) | Position::AtBlock(_) => {
                return Ok(Position::Start)
            }
            Position::BeforeCursor(v)
            | Position::AfterCursor(v)
            | Position::AfterKey { cursor: v, .. } => values.push(v.clone()),
        }
    }
    let sql = format!("SELECT min(x::{sql_type})::text FROM unnest($1::text[]) AS x");
    let min: Option<String> = client
        .query_typed_one(&sql, &[(&values, Type::TEXT_ARRAY)])
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

    #[test]
    fn virtual_and_plain_transaction_ids_keep_apart_and_read_back() {
        let v = vxid_token("3/4294967295").unwrap();
        assert!(v > u64::from(u32::MAX));
        assert_eq!(describe(v), "vxid:3/4294967295");
        assert_eq!(describe(4_000_000_000), "xid:4000000000");
        assert_ne!(vxid_token("0/7"), Some(7));
        for bad in ["", "3", "3/", "/4", "-1/5", "3/x", "2147483648/1"] {
            assert_eq!(vxid_token(bad), None, "{bad}");
        }
    }
}
