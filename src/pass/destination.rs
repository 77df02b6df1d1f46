//! The destination side of a pass: create the table when missing (with its key, or
//! without it for a load that builds it at the end), the receipts table, the
//! upsert statement; building a deferred primary key; keeping a key's sequence ahead of
//! the copied keys.

use super::warn;
use crate::catalog::{self, compare, ddl};
use crate::copy::upsert;
use crate::db::ident::literal;
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::job::Job;
use crate::runtime::failpoint;
use crate::state::records::ApplyMode;
use postgres::types::Type;

/// What the destination is ready for.
pub(super) struct Prepared {
    /// The upsert statement (each worker creates the staging table it reads from).
    pub upsert_sql: String,
    /// The destination's key column whose sequence must follow the copied keys.
    pub key_sequence: Option<String>,
}

/// Creates the destination table when missing (one transaction) and the receipts table.
pub(super) fn prepare_destination(
    job: &mut Job,
    dst: &mut postgres::Client,
    apply: ApplyMode,
) -> Result<Prepared, Error> {
    let table = &job.spec.table;
    // The job's first pass uses the table as the job's open read it (`--key` applied),
    // a round trip fewer; later passes read it again.
    let existing = match job.dest_at_open.take() {
        Some(at_open) => Some(at_open),
        None => crate::job::databases::destination_table(dst, &job.spec)?,
    };
    let (key_deferred, key_sequence) = match existing {
        Some(existing) => {
            compare::same_shape(&job.shape, &existing)?;
            job.shape.has_user_triggers = existing.has_user_triggers;
            let sequence = existing.key_sequence_column().map(|c| c.name.clone());
            (existing.key_deferred, sequence)
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
            let sequence = job.shape.key_sequence_column().map(|c| c.name.clone());
            (!with_key, sequence)
        }
    };
    // A key left unbuilt by an earlier run (crash during the load's end) is built before any
    // upsert needs it; only a load without key that is still running goes on without it.
    if key_deferred && apply != ApplyMode::AppendKeyLater {
        build_deferred_key(job, dst)?;
    }
    job.receipts.ensure(dst)?;
    let text_compared = catalog::columns_without_equality(dst, &job.shape);
    Ok(Prepared {
        upsert_sql: upsert::upsert_sql(&job.shape, &text_compared),
        key_sequence,
    })
}

/// Moves the sequence of the destination's key column (identity or `serial`) past the
/// largest key copied, so that rows inserted at the destination after the cutover do not
/// collide with copied ones; never moves it back. One statement (the key's index answers
/// `max`), after a pass that wrote rows. A failure (a role without UPDATE on the sequence)
/// is a warning naming the statement to run at the cutover: the pass has committed, and
/// the next one tries again.
pub(super) fn advance_key_sequence(job: &Job, dst: &mut postgres::Client, column: &str) {
    if let Err(e) = try_advance_key_sequence(job, dst, column) {
        warn(
            job,
            &format!(
                "{e}; the next pass tries again, or set it at the cutover: SELECT setval(pg_get_serial_sequence({}, {}), (SELECT max({c}) FROM {t}))",
                literal(&job.spec.table.sql()),
                literal(column),
                t = job.spec.table.sql(),
                c = crate::db::ident::quote(column),
            ),
        );
    }
}

fn try_advance_key_sequence(
    job: &Job,
    dst: &mut postgres::Client,
    column: &str,
) -> Result<(), Error> {
    let sql = format!(
        "SELECT pg_catalog.setval(s.seq, x.m) \
           FROM (SELECT pg_catalog.pg_get_serial_sequence($1, $2)::regclass AS seq) s \
           JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.seq, (SELECT max({c}) AS m FROM {t}) x \
          WHERE q.seqincrement > 0 AND x.m > coalesce(pg_catalog.pg_sequence_last_value(s.seq), q.seqstart - 1)",
        c = crate::db::ident::quote(column),
        t = job.spec.table.sql()
    );
    // The column name goes as it is: pg_get_serial_sequence takes it literally.
    dst.query_typed(
        &sql,
        &[(&job.spec.table.sql(), Type::TEXT), (&column, Type::TEXT)],
    )
    .on(Side::Destination, "advancing the key's sequence")?;
    Ok(())
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
