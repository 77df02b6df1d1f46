//! Receipts: a small pgsync-owned table in the destination (default `pgsync.receipts`).
//! The transaction that applies a window also inserts its receipt, so the destination
//! itself proves which windows are in, even when the local state lost its last write.
//! Created only once a sync really starts (never on bad input).

use crate::db::ident::{literal, quote, QualifiedName};
use crate::db::{DbError, PgResultExt, Side};
use crate::plan::Position;

/// Proof that one window committed, as stored in the destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// Pass number.
    pub pass: u64,
    /// Window number within the pass.
    pub window: u64,
    /// Slice index in the plan that cut the window.
    pub slice: usize,
    /// Position after the window.
    pub end: Position,
    /// The window exhausted its slice.
    pub slice_done: bool,
    /// The window was the pass's last.
    pub pass_finished: bool,
    /// The pass's upper cursor bound (None: the pass had only NULL cursors).
    pub pass_upper: Option<String>,
    /// Rows read.
    pub rows_read: u64,
    /// Rows inserted or changed.
    pub rows_written: u64,
}

/// The receipts table of a destination.
#[derive(Debug, Clone)]
pub struct Receipts {
    /// Its qualified name.
    pub table: QualifiedName,
}

const DOING: &str = "writing the receipts table";

impl Receipts {
    /// Whether the table exists yet.
    pub fn exists(&self, client: &mut postgres::Client) -> Result<bool, DbError> {
        let sql = "SELECT to_regclass($1) IS NOT NULL";
        Ok(client
            .query_one(sql, &[&self.table.sql()])
            .on(Side::Destination, "looking for the receipts table")?
            .get(0))
    }

    /// Creates schema and table when missing.
    pub fn ensure(&self, client: &mut postgres::Client) -> Result<(), DbError> {
        if self.exists(client)? {
            return Ok(());
        }
        let schema_exists: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[&self.table.schema],
            )
            .on(Side::Destination, DOING)?
            .get(0);
        let mut sql = String::new();
        if !schema_exists {
            sql.push_str(&format!(
                "CREATE SCHEMA IF NOT EXISTS {};",
                quote(&self.table.schema)
            ));
        }
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} (\
               job text NOT NULL, pass bigint NOT NULL, window_no bigint NOT NULL, slice integer NOT NULL, \
               end_position jsonb NOT NULL, slice_done boolean NOT NULL, pass_finished boolean NOT NULL, \
               pass_upper text, rows_read bigint NOT NULL, rows_written bigint NOT NULL, \
               committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job, pass, window_no))",
            self.table.sql()
        ));
        client.batch_execute(&sql).on(Side::Destination, DOING)
    }

    /// Inserts a receipt inside the window's own transaction.
    pub fn insert(
        &self,
        txn: &mut postgres::Transaction<'_>,
        job: &str,
        r: &Receipt,
    ) -> Result<(), DbError> {
        let end = serde_json::to_string(&r.end).unwrap_or_default();
        let sql = format!(
            "INSERT INTO {} (job, pass, window_no, slice, end_position, slice_done, pass_finished, pass_upper, rows_read, rows_written) \
             VALUES ({}, {}, {}, {}, {}::jsonb, {}, {}, {}, {}, {})",
            self.table.sql(),
            literal(job),
            r.pass,
            r.window,
            r.slice,
            literal(&end),
            r.slice_done,
            r.pass_finished,
            r.pass_upper.as_deref().map_or("NULL".to_string(), literal),
            r.rows_read,
            r.rows_written
        );
        txn.batch_execute(&sql).on(Side::Destination, DOING)
    }

    /// The latest receipt of a job, `None` when there is none (or no table).
    pub fn last(
        &self,
        client: &mut postgres::Client,
        job: &str,
    ) -> Result<Option<Receipt>, DbError> {
        if !self.exists(client)? {
            return Ok(None);
        }
        let sql = format!(
            "SELECT pass, window_no, slice, end_position::text, slice_done, pass_finished, pass_upper, rows_read, rows_written \
             FROM {} WHERE job = $1 ORDER BY pass DESC, window_no DESC LIMIT 1",
            self.table.sql()
        );
        let row = client
            .query_opt(&sql, &[&job])
            .on(Side::Destination, "reading receipts")?;
        Ok(row.and_then(|r| {
            let end: String = r.get(3);
            Some(Receipt {
                pass: r.get::<_, i64>(0) as u64,
                window: r.get::<_, i64>(1) as u64,
                slice: r.get::<_, i32>(2) as usize,
                end: serde_json::from_str(&end).ok()?,
                slice_done: r.get(4),
                pass_finished: r.get(5),
                pass_upper: r.get(6),
                rows_read: r.get::<_, i64>(7) as u64,
                rows_written: r.get::<_, i64>(8) as u64,
            })
        }))
    }

    /// The upper bound of the job's last finished pass, per the receipts.
    pub fn last_finished_upper(
        &self,
        client: &mut postgres::Client,
        job: &str,
    ) -> Result<Option<String>, DbError> {
        if !self.exists(client)? {
            return Ok(None);
        }
        let sql = format!(
            "SELECT pass_upper FROM {} WHERE job = $1 AND pass_finished ORDER BY pass DESC LIMIT 1",
            self.table.sql()
        );
        let row = client
            .query_opt(&sql, &[&job])
            .on(Side::Destination, "reading receipts")?;
        Ok(row.and_then(|r| r.get(0)))
    }

    /// Deletes a job's receipts of passes before `pass` (the latest pass's receipts stay).
    pub fn prune(
        &self,
        client: &mut postgres::Client,
        job: &str,
        pass: u64,
    ) -> Result<(), DbError> {
        let sql = format!(
            "DELETE FROM {} WHERE job = $1 AND pass < $2",
            self.table.sql()
        );
        client
            .execute(&sql, &[&job, &(pass as i64)])
            .on(Side::Destination, "pruning old receipts")?;
        Ok(())
    }
}
