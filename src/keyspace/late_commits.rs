//! Defence against late-committing transactions (docs/consistency.md). A cursor watermark
//! alone misses a row whose transaction was open while a pass read its range and committed
//! afterwards with a cursor below the next pass's start. So:
//!
//! 1. when a pass is planned, after its upper bound is read (in the same statement, after
//!    its snapshot: `keyspace/at_plan.rs`), pgsync records the transactions
//!    of the source table's database running at that moment — every one, written yet or not
//!    (each holds a lock on its virtual transaction id, and on its xid once it has one:
//!    `pg_locks`, readable by any role; `pg_current_snapshot()` does not list a running
//!    transaction whose xid is at or above the snapshot's xmax), plus prepared ones; on a
//!    hot standby, which shows none of the primary's transactions, a barrier: its
//!    snapshot's xmax, running until its xmin passes it. Those that end within a short
//!    wait, before any window reads, are dropped: every window sees their rows;
//! 2. when the pass finishes, each of the rest becomes *pending* with a floor = the pass's
//!    lower bound (it may have committed rows after their window was read, or may still do so);
//! 3. the next pass checks the pending ones against the transactions listed at its plan
//!    (before any of its windows reads): it starts no later than the floor of every pending
//!    transaction; finished ones (visible to all of its windows) are dropped, running ones
//!    are kept and checked again next time;
//! 4. every lower bound taken from a watermark is moved back by `--lookback`, for clock skew
//!    between writers that set the cursor from their clocks: a transaction that began after
//!    the previous plan writes cursors from a clock at least that plan's max cursor.
//!
//! Transactions are kept as 64-bit tokens: an xid as itself (below 2^32), a virtual
//! transaction id `b/n` as `2^63 | b << 32 | n`, a standby barrier as `2^62 | xmax` (see
//! [`vxid_token`], [`describe`], [`Running::includes`]).

use super::clock::{self, CursorClock, EpochUnit};
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
/// A standby's barrier: every transaction below this xid (a snapshot's xmax at a plan).
const STANDBY_BARRIER: u64 = 1 << 62;
const XID_BITS: u64 = (1 << 62) - 1;

/// The token of a virtual transaction id as `pg_locks` shows it (`backend/local`).
pub fn vxid_token(vxid: &str) -> Option<u64> {
    let (backend, local) = vxid.split_once('/')?;
    let backend: u32 = backend.parse().ok().filter(|b| *b < 1 << 30)?;
    let local: u32 = local.parse().ok()?;
    Some(VIRTUAL | u64::from(backend) << 32 | u64::from(local))
}

/// A token as people read it: `xid:1234`, `vxid:3/17`, or `standby-xmax:5678`.
pub fn describe(token: u64) -> String {
    if token & VIRTUAL != 0 {
        format!("vxid:{}/{}", (token & !VIRTUAL) >> 32, token & 0xffff_ffff)
    } else if token & STANDBY_BARRIER != 0 {
        format!("standby-xmax:{}", token & XID_BITS)
    } else {
        format!("xid:{token}")
    }
}

/// The source's transactions running now, as tokens, and how to tell later whether one
/// still runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Running {
    /// On a primary, each running transaction; on a hot standby, one barrier (below).
    pub tokens: BTreeSet<u64>,
    /// On a hot standby: its snapshot's xmin, the oldest transaction of the primary it
    /// knows to be running.
    standby_xmin: Option<u64>,
}

impl Running {
    /// Whether a token recorded earlier still runs: a transaction still listed, or a
    /// standby barrier (an xmax recorded at a plan) that the standby's xmin has not passed
    /// yet — some transaction that was running then has not been replayed as ended.
    pub fn includes(&self, token: u64) -> bool {
        if token & VIRTUAL == 0 && token & STANDBY_BARRIER != 0 {
            // Read from a primary now (a promoted standby): its transactions are listed.
            return self
                .standby_xmin
                .is_some_and(|xmin| xmin < token & XID_BITS);
        }
        self.tokens.contains(&token)
    }
}

/// On a primary: every transaction of this database's sessions (other than this session
/// and the job's own read-only source sessions, which share its application_name, and
/// autovacuum where the role may see which sessions are autovacuum) — sessions of other
/// databases cannot write this database's rows — and its prepared transactions. On a hot
/// standby, whose `pg_locks` shows none of the primary's transactions (and whose snapshot
/// lists none of them either: they are kept as sub-transactions): its snapshot's xmin and
/// xmax, every database's. The functions behind the views `pg_locks`, `pg_stat_activity` and
/// `pg_prepared_xacts` are read directly (the same rows; the columns used are shown to any
/// role): planning the views' joins cost the server ~1.5 ms of the ~2 ms a plan's
/// statement took, once per table of a set.
const RUNNING: &str = "\
    SELECT l.virtualxid, l.transactionid::text::bigint, NULL::bigint \
    FROM pg_catalog.pg_lock_status() l JOIN pg_catalog.pg_stat_get_activity(NULL) a ON a.pid = l.pid \
    WHERE NOT pg_is_in_recovery() \
      AND l.locktype IN ('virtualxid', 'transactionid') AND l.mode = 'ExclusiveLock' AND l.granted \
      AND a.datid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database()) \
      AND l.pid <> pg_backend_pid() \
      AND a.application_name IS DISTINCT FROM current_setting('application_name') \
      AND coalesce(a.backend_type, '') NOT IN ('autovacuum worker', 'walsender') \
    UNION ALL \
    SELECT NULL, p.transaction::text::bigint, NULL FROM pg_catalog.pg_prepared_xact() p \
    WHERE p.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database()) \
      AND NOT pg_is_in_recovery() \
    UNION ALL \
    SELECT NULL, pg_snapshot_xmax(s)::text::bigint, pg_snapshot_xmin(s)::text::bigint \
    FROM pg_current_snapshot() s WHERE pg_is_in_recovery()";

/// The transactions running now that may write the source table ([`RUNNING`]).
pub fn running(client: &mut postgres::Client) -> Result<Running, DbError> {
    let rows = client
        .query_typed(RUNNING, &[])
        .on(Side::Source, "listing running source transactions")?;
    Ok(Running::from_rows(
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))),
    ))
}

/// [`RUNNING`]'s statement, to be read inside another one (`keyspace::at_plan`): columns
/// `vxid text, xid bigint, standby_xmin bigint`.
pub fn running_sql() -> &'static str {
    RUNNING
}

impl Running {
    /// Folds rows of [`RUNNING`] (`(virtualxid, xid, standby xmin)`); a row of NULLs adds
    /// nothing.
    pub fn from_rows<'a>(
        rows: impl Iterator<Item = (Option<&'a str>, Option<i64>, Option<i64>)>,
    ) -> Running {
        let mut running = Running::default();
        for (vxid, xid, standby_xmin) in rows {
            match (vxid.and_then(vxid_token), xid, standby_xmin) {
                (_, Some(xmax), Some(xmin)) => {
                    running.standby_xmin = Some(xmin as u64);
                    // Nothing below xmin runs; whatever runs is below xmax.
                    if xmin < xmax {
                        running
                            .tokens
                            .insert(STANDBY_BARRIER | (xmax as u64 & XID_BITS));
                    }
                }
                (Some(token), _, _) => {
                    running.tokens.insert(token);
                }
                (None, Some(xid), None) => {
                    running.tokens.insert(xid as u64);
                }
                (None, None, _) => {}
            }
        }
        running
    }
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
        xip.retain(|t| now.includes(*t));
    }
}

/// How a lookback applies to a cursor type: an interval for date/time types; for numeric
/// types, the cursor's epoch unit (`unit`) or else milliseconds; nothing otherwise.
pub fn lookback_expr(
    sql_type: &str,
    lookback: Duration,
    unit: Option<EpochUnit>,
) -> Option<String> {
    if lookback.is_zero() {
        return None;
    }
    let t = sql_type.to_ascii_lowercase();
    if t.starts_with("timestamp") || t == "date" {
        Some(format!("interval '{} milliseconds'", lookback.as_millis()))
    } else if clock::is_numeric(&t) {
        Some(match unit {
            Some(EpochUnit::Seconds) => lookback.as_secs_f64().ceil().to_string(),
            Some(EpochUnit::Micros) => lookback.as_micros().to_string(),
            Some(EpochUnit::Millis) | None => lookback.as_millis().to_string(),
        })
    } else {
        None
    }
}

/// Moves a watermark position back by the lookback (computed by the source, in its types).
pub fn apply_lookback(
    client: &mut postgres::Client,
    pos: Position,
    (sql_type, clock): (&str, Option<CursorClock>),
    lookback: Duration,
) -> Result<Position, DbError> {
    let unit = match clock {
        Some(CursorClock::Epoch(unit)) => Some(unit),
        _ => None,
    };
    let (Position::AfterCursor(v), Some(expr)) = (&pos, lookback_expr(sql_type, lookback, unit))
    else {
        return Ok(pos);
    };
    // An integer cursor moves back here (no round trip); any other type on the source.
    if let Some(back) = integer_minus(sql_type, v, &expr) {
        return Ok(Position::BeforeCursor(back));
    }
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

/// `value - amount` for an integer cursor type, as the server would print it; `None` for
/// other types, or when the server should decide (text it would parse differently, a result
/// out of the type's range: its error).
fn integer_minus(sql_type: &str, value: &str, amount: &str) -> Option<String> {
    let range = clock::integer_range(sql_type)?;
    let back = value
        .parse::<i64>()
        .ok()?
        .checked_sub(amount.parse::<i64>().ok()?)?;
    range.contains(&back).then(|| back.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookback_is_an_interval_for_times_and_the_epoch_unit_or_milliseconds_for_numbers() {
        let five = Duration::from_secs(300);
        assert_eq!(
            lookback_expr("timestamp with time zone", five, None).unwrap(),
            "interval '300000 milliseconds'"
        );
        assert_eq!(lookback_expr("bigint", five, None).unwrap(), "300000");
        assert_eq!(
            lookback_expr("numeric(20,0)", five, None).unwrap(),
            "300000"
        );
        let seconds = Some(EpochUnit::Seconds);
        assert_eq!(lookback_expr("integer", five, seconds).unwrap(), "300");
        let short = Duration::from_millis(250);
        assert_eq!(lookback_expr("integer", short, seconds).unwrap(), "1");
        let micros = Some(EpochUnit::Micros);
        assert_eq!(lookback_expr("bigint", five, micros).unwrap(), "300000000");
        assert_eq!(lookback_expr("uuid", five, None), None);
        assert_eq!(lookback_expr("bigint", Duration::ZERO, None), None);
    }

    #[test]
    fn an_integer_cursor_moves_back_without_the_server_unless_out_of_range() {
        assert_eq!(
            integer_minus("bigint", "1533945600000", "5000").as_deref(),
            Some("1533945595000")
        );
        assert_eq!(
            integer_minus("integer", "10", "5000").as_deref(),
            Some("-4990")
        );
        assert_eq!(integer_minus("integer", "-2147483000", "5000"), None);
        assert_eq!(
            integer_minus("bigint", "-9223372036854775800", "5000"),
            None
        );
        assert_eq!(integer_minus("numeric(20,0)", "10", "5"), None);
        assert_eq!(integer_minus("bigint", " 10", "5"), None);
    }

    #[test]
    fn a_standby_barrier_runs_until_the_standby_xmin_passes_it() {
        let at = |xmin| Running {
            tokens: BTreeSet::new(),
            standby_xmin: Some(xmin),
        };
        let barrier = STANDBY_BARRIER | 100;
        assert!(at(99).includes(barrier));
        assert!(!at(100).includes(barrier));
        assert!(!Running::default().includes(barrier));
        let primary = Running {
            tokens: BTreeSet::from([7, vxid_token("3/4").unwrap()]),
            standby_xmin: None,
        };
        assert!(primary.includes(7) && primary.includes(vxid_token("3/4").unwrap()));
        assert!(!primary.includes(8));
    }

    #[test]
    fn virtual_and_plain_transaction_ids_keep_apart_and_read_back() {
        let v = vxid_token("3/4294967295").unwrap();
        assert!(v > u64::from(u32::MAX));
        assert_eq!(describe(v), "vxid:3/4294967295");
        assert_eq!(describe(4_000_000_000), "xid:4000000000");
        assert_ne!(vxid_token("0/7"), Some(7));
        assert_eq!(describe(STANDBY_BARRIER | 77), "standby-xmax:77");
        for bad in ["", "3", "3/", "/4", "-1/5", "3/x", "1073741824/1"] {
            assert_eq!(vxid_token(bad), None, "{bad}");
        }
    }
}
