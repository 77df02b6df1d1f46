//! `verify --repair`: re-sync exactly the differing rows. Rows missing or different in the
//! destination are copied again from the source (COPY → staging → the sync's upsert); rows
//! only in the destination (deleted at the source) are deleted. Each batch of 1,000 keys is
//! one destination transaction; every step is idempotent, so an interrupted repair is
//! finished by running it again.

use super::keys::key_in_list;
use super::{RowDiff, RowDiffKind};
use crate::catalog;
use crate::copy::{staging, upsert};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::job::databases::Databases;
use serde::Serialize;

/// What a repair changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairSummary {
    /// Rows inserted or updated from the source.
    pub rows_written: u64,
    /// Destination rows deleted (absent from the source).
    pub rows_deleted: u64,
}

/// Repairs the given differences.
pub fn repair(db: &Databases, diffs: &[RowDiff]) -> Result<RepairSummary, Error> {
    let mut src = db.source.get()?;
    let mut dst = db.dest.get()?;
    let shape = &db.shape;
    staging::create(&mut dst, shape, false)?;
    let upsert_sql = upsert::upsert_sql(shape, &catalog::columns_without_equality(&mut dst, shape));
    let mut summary = RepairSummary::default();
    let copy_again: Vec<Vec<String>> = diffs
        .iter()
        .filter(|d| {
            matches!(
                d.kind,
                RowDiffKind::MissingInDestination | RowDiffKind::Different
            )
        })
        .map(|d| d.key.clone())
        .collect();
    for chunk in copy_again.chunks(1000) {
        let mut txn = dst
            .transaction()
            .on(Side::Destination, "starting a repair transaction")?;
        if staging::stage(&mut src, &mut txn, &copy_sql(db, chunk), shape)?
            == staging::Piped::Interrupted
        {
            // SIGINT/SIGTERM: the chunks repaired so far are committed; this one rolls back.
            return Ok(summary);
        }
        summary.rows_written += txn
            .execute(&upsert_sql, &[])
            .on(Side::Destination, "repairing rows")?;
        txn.commit().on(Side::Destination, "committing a repair")?;
    }
    let delete: Vec<Vec<String>> = diffs
        .iter()
        .filter(|d| d.kind == RowDiffKind::ExtraInDestination)
        .map(|d| d.key.clone())
        .collect();
    summary.rows_deleted = delete_keys(&mut dst, db, &delete)?;
    Ok(summary)
}

/// Deletes the destination rows with these keys, 1,000 keys a statement (each its own
/// transaction, one round trip); the rows deleted.
pub fn delete_keys(
    dst: &mut postgres::Client,
    db: &Databases,
    keys: &[Vec<String>],
) -> Result<u64, Error> {
    let mut deleted = 0;
    for chunk in keys.chunks(1000) {
        deleted += crate::db::rows_affected(dst, &delete_sql(db, chunk))
            .on(Side::Destination, "deleting rows absent from the source")?;
    }
    Ok(deleted)
}

/// The source COPY of the rows with these keys (binary, the table's copied columns).
pub fn copy_sql(db: &Databases, keys: &[Vec<String>]) -> String {
    format!(
        "COPY (SELECT {} FROM {} a WHERE {}) TO STDOUT (FORMAT binary)",
        db.shape.column_list(Some("a")),
        db.shape.table.sql(),
        key_in_list(&db.ks, "a", keys)
    )
}

/// The DELETE of the destination rows with these keys.
pub fn delete_sql(db: &Databases, keys: &[Vec<String>]) -> String {
    format!(
        "DELETE FROM {} a WHERE {}",
        db.shape.table.sql(),
        key_in_list(&db.ks, "a", keys)
    )
}
