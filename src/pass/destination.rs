//! The destination side of a pass: create the table when missing (with its key, or
//! without it for a load that builds it at the end), the receipts table, the
//! upsert statement; and building a deferred primary key.

use super::warn;
use crate::catalog::{self, compare, ddl};
use crate::copy::upsert;
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::job::Job;
use crate::runtime::failpoint;
use crate::state::records::ApplyMode;
use postgres::types::Type;

/// Creates the destination table when missing (one transaction) and the receipts table;
/// returns the upsert statement (each worker creates the staging table it reads from).
pub(super) fn prepare_destination(
    job: &mut Job,
    dst: &mut postgres::Client,
    apply: ApplyMode,
) -> Result<String, Error> {
    let table = &job.spec.table;
    let key_deferred = match catalog::load(dst, Side::Destination, table, None)? {
        Some(mut existing) => {
            if let Some(key) = job.spec.key.as_deref() {
                catalog::use_key(dst, Side::Destination, &mut existing, key)?;
            }
            compare::same_shape(&job.shape, &existing)?;
            job.shape.has_user_triggers = existing.has_user_triggers;
            existing.key_deferred
        }
        None => {
            let schema_exists: bool = dst
                .query_typed_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                    &[(&table.schema, Type::TEXT)],
                )
                .on(Side::Destination, "looking for the destination schema")?
                .get(0);
            let with_key = apply != ApplyMode::AppendKeyLater;
            // With the enums the table uses that the destination lacks: one transaction (the
            // statements of one simple query run as one implicit transaction: all or none),
            // in one round trip.
            let sql =
                ddl::create_table_sql(&job.shape, !schema_exists, with_key, &job.types_to_create);
            crate::db::create_if_missing(dst, &sql)
                .on(Side::Destination, "creating the destination table")?;
            job.shape.has_user_triggers = false;
            !with_key
        }
    };
    // A key left unbuilt by an earlier run (crash during the load's end) is built before any
    // upsert needs it; only a load without key that is still running goes on without it.
    if key_deferred && apply != ApplyMode::AppendKeyLater {
        build_deferred_key(job, dst)?;
    }
    job.receipts.ensure(dst)?;
    let text_compared = catalog::columns_without_equality(dst, &job.shape);
    Ok(upsert::upsert_sql(&job.shape, &text_compared))
}

/// Builds the primary key of a destination loaded without it, in one transaction that also
/// removes the marker. Rows appended twice (moved forward during the load) make the first
/// attempt fail with a unique violation; their older copies are removed and it runs again.
pub(super) fn build_deferred_key(job: &Job, dst: &mut postgres::Client) -> Result<(), Error> {
    let doing = "building the destination's primary key";
    let shape = &job.shape;
    let mut txn = dst.transaction().on(Side::Destination, doing)?;
    match txn.batch_execute(&ddl::add_key_sql(shape)) {
        Ok(()) => {}
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
            drop(txn);
            txn = dst.transaction().on(Side::Destination, doing)?;
            let removed = txn
                .execute(&ddl::dedupe_sql(shape, &job.spec.cursor), &[])
                .on(Side::Destination, doing)?;
            txn.batch_execute(&ddl::add_key_sql(shape))
                .on(Side::Destination, doing)?;
            warn(
                job,
                &format!("removed {removed} older copies of rows that moved during the load"),
            );
        }
        Err(e) => return Err(crate::db::DbError::from_pg(Side::Destination, doing, e).into()),
    }
    failpoint::hit(failpoint::BEFORE_KEY_COMMIT);
    txn.commit().on(Side::Destination, doing)?;
    Ok(())
}

/// Whether the destination table has rows; `None` when it does not exist (yet: `exists`).
pub(super) fn destination_rows(
    dst: &mut postgres::Client,
    table: &crate::db::ident::QualifiedName,
    exists: bool,
) -> Result<Option<bool>, Error> {
    let doing = "looking at the destination table";
    if !exists {
        return Ok(None);
    }
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", table.sql());
    Ok(Some(
        dst.query_typed_one(&sql, &[])
            .on(Side::Destination, doing)?
            .get(0),
    ))
}
