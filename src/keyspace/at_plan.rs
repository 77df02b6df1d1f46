//! What planning a new pass reads from the source, in one statement (one round trip a
//! table, where it took four): the upper bound, the rows past the clock, the transactions
//! running, the heap's size. One statement takes its snapshot before it reads anything,
//! so the order the rules of docs/consistency.md need holds inside it: the upper bound is
//! read at the snapshot, and `pg_locks` and `pg_relation_size` are read after it — a
//! transaction the upper bound did not see is still listed as running unless it has
//! committed by then (and then every window of the pass, which reads later, sees it), and
//! a row the upper bound saw lies in a block the heap's size counts.

use super::blocks::{heap_sql, HeapFacts};
use super::bounds::{beyond_clock_sql, max_cursor_sql, BeyondClock};
use super::late_commits::{running_sql, Running};
use super::KeySpace;
use crate::db::ident::QualifiedName;
use crate::db::{DbError, PgResultExt, Side};

/// What a new pass's plan reads from the source at once.
#[derive(Debug)]
pub struct AtPlan {
    /// The source's max cursor (capped at the cursor's clock, if it follows one).
    pub upper: Option<String>,
    /// Rows more than a day past the clock, if any.
    pub beyond: Option<BeyondClock>,
    /// The transactions running after the upper bound was read.
    pub running: Running,
    /// The heap's size and statistics.
    pub heap: HeapFacts,
}

/// Reads [`AtPlan`] in one statement.
pub fn read(
    client: &mut postgres::Client,
    table: &QualifiedName,
    ks: &KeySpace,
) -> Result<AtPlan, DbError> {
    let rows = client.query_typed(&statement(table, ks), &[]).on(
        Side::Source,
        "reading the pass's bounds and the running transactions",
    )?;
    let first = rows.first().ok_or_else(|| {
        DbError::other(
            Side::Source,
            crate::db::DbErrorKind::Other,
            "reading the pass's bounds",
            "the statement returned no row",
        )
    })?;
    Ok(AtPlan {
        upper: first.get(0),
        beyond: BeyondClock::from_row(first.get(1), first.get(2)),
        heap: HeapFacts {
            scannable: first.get(3),
            blocks: first.get(4),
            reltuples: first.get(5),
            relpages: first.get(6),
        },
        running: Running::from_rows(rows.iter().map(|r| (r.get(7), r.get(8), r.get(9)))),
    })
}

/// The statement: one row per running transaction (at least one row), each with the
/// bounds and the heap's facts.
fn statement(table: &QualifiedName, ks: &KeySpace) -> String {
    let beyond = beyond_clock_sql(table, ks)
        .unwrap_or_else(|| "SELECT 0::bigint AS rows, NULL::text AS example".into());
    format!(
        "WITH running(vxid, xid, standby_xmin) AS ({}) \
         SELECT ({}) AS largest, b.rows, b.example, h.scannable, h.blocks, h.reltuples, h.relpages, \
                r.vxid, r.xid, r.standby_xmin \
         FROM ({beyond}) b CROSS JOIN ({}) h LEFT JOIN running r ON true",
        running_sql(),
        max_cursor_sql(table, ks),
        heap_sql(table),
    )
}
