//! Receipts: a small pgsync-owned table in the destination (default `pgsync.receipts`).
//! The transaction that applies a window also inserts its receipt, so the destination
//! itself proves which windows are in, even when the local state lost its last write.
//! Created only once a sync really starts (never on bad input).

use super::receipt_row::{parse_receipt, receipt_values, RECEIPT_COLUMNS};
use crate::db::ident::{literal, quote, QualifiedName};
use crate::db::{DbError, PgResultExt, Side};
use crate::keyspace::Position;
use postgres::types::Type;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Proof that one window committed, as stored in the destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
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
    pub rows_read: u64,
    /// Rows inserted or changed.
    pub rows_written: u64,
    /// Where the pass could go on from if the local state were lost: every window up to
    /// this point was committed when this window started (`None` in receipts written
    /// before release 0.3).
    pub resume: Option<Resume>,
}

/// A point up to which a pass is committed, with a rank that grows as the pass advances.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    /// Rank: a higher rank is a later point of the same pass.
    pub rank: u64,
    pub from: Position,
}

/// What the receipts say about a job's latest pass.
#[derive(Debug, Clone, PartialEq)]
pub struct PassReceipts {
    /// The receipt with the highest window number.
    pub last: Receipt,
    /// The last receipt of each slice that has one (slices with windows, in slice order).
    pub slices: Vec<Receipt>,
    /// Some receipt says the pass finished.
    pub finished: bool,
    /// The highest-ranked resume point among the receipts, if any has one.
    pub resume: Option<Resume>,
    /// Receipts per slice index (empty when not read): a slice may have committed several
    /// windows the state missed.
    pub windows_per_slice: std::collections::BTreeMap<usize, u64>,
}

impl PassReceipts {
    /// Builds the summary from the last receipt of each slice and the best resume point.
    pub fn from_slices(slices: Vec<Receipt>, resume: Option<Resume>) -> Option<Self> {
        let last = slices.iter().max_by_key(|r| r.window)?.clone();
        Some(PassReceipts {
            finished: slices.iter().any(|r| r.pass_finished),
            last,
            slices,
            resume,
            windows_per_slice: Default::default(),
        })
    }

    /// The last receipt of a slice.
    pub fn slice(&self, index: usize) -> Option<&Receipt> {
        self.slices.iter().find(|r| r.slice == index)
    }

    /// Where a pass known only from its receipts goes on from: the best resume point, or
    /// (receipts of a release that copied slices strictly in order) the last window's end.
    pub fn resume_from(&self) -> Position {
        self.resume
            .as_ref()
            .map_or_else(|| self.last.end.clone(), |r| r.from.clone())
    }
}

/// One job's rows of [`Receipts::latest_of`], as they are read.
#[derive(Default)]
struct Parts {
    slices: Vec<Receipt>,
    windows_per_slice: BTreeMap<usize, u64>,
    resume: Option<Resume>,
}

/// The receipts table of a destination.
#[derive(Debug, Clone)]
pub struct Receipts {
    pub table: QualifiedName,
    /// The table was last seen with this release's columns (`exists` says so, and `ensure`
    /// then needs no round trip).
    current: Arc<AtomicBool>,
}

const DOING: &str = "writing the receipts table";

impl Receipts {
    pub fn new(table: QualifiedName) -> Self {
        Receipts {
            table,
            current: Arc::default(),
        }
    }

    /// Whether the table exists yet (and, remembered for `ensure`, whether it has this
    /// release's columns).
    pub fn exists(&self, client: &mut postgres::Client) -> Result<bool, DbError> {
        let (exists, current) = self.found(client, "looking for the receipts table")?;
        self.current.store(current, Ordering::Relaxed);
        Ok(exists)
    }

    /// Whether it exists and has this release's columns: one round trip.
    fn found(&self, client: &mut postgres::Client, doing: &str) -> Result<(bool, bool), DbError> {
        let row = client
            .query_typed_one(
                "SELECT to_regclass($1) IS NOT NULL, EXISTS (SELECT 1 FROM pg_attribute \
                   WHERE attrelid = to_regclass($1) AND attname = 'resume_rank' AND NOT attisdropped)",
                &[(&self.table.sql(), Type::TEXT)],
            )
            .on(Side::Destination, doing)?;
        Ok((row.get(0), row.get(1)))
    }

    /// Creates schema and table when missing; adds the columns of later releases to a
    /// table an earlier release created. No round trip when `exists` just found it current.
    pub fn ensure(&self, client: &mut postgres::Client) -> Result<(), DbError> {
        if self.current.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (exists, current) = self.found(client, DOING)?;
        if exists {
            if !current {
                let sql = format!(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS resume_rank bigint, \
                     ADD COLUMN IF NOT EXISTS resume_from jsonb",
                    self.table.sql()
                );
                client.batch_execute(&sql).on(Side::Destination, DOING)?;
            }
            self.current.store(true, Ordering::Relaxed);
            return Ok(());
        }
        let schema_exists: bool = client
            .query_typed_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[(&self.table.schema, Type::TEXT)],
            )
            .on(Side::Destination, DOING)?
            .get(0);
        // Two jobs creating it at once (the tables of a set, two processes) take turns; the
        // second may still collide (its catalog lookup predates the first's commit) and then
        // runs once more, finding schema and table there (`db::create_if_missing`).
        let mut sql = format!(
            "SELECT pg_advisory_xact_lock(hashtext({}));",
            literal(&format!("pgsync receipts {}", self.table.sql()))
        );
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
               resume_rank bigint, resume_from jsonb, committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job, pass, window_no))",
            self.table.sql()
        ));
        crate::db::create_if_missing(client, &sql).on(Side::Destination, DOING)?;
        self.current.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The statement that inserts a receipt: the window's transaction sends it with its
    /// COMMIT (`db::txn::Txn::commit_with`).
    pub fn insert_sql(&self, job: &str, r: &Receipt) -> String {
        format!(
            "INSERT INTO {} ({RECEIPT_COLUMNS}) VALUES ({})",
            self.table.sql(),
            receipt_values(job, r, &r.rows_written.to_string())
        )
    }

    /// The statement that upserts a staged window (`upsert`, an `INSERT … ON CONFLICT`)
    /// and inserts its receipt, counting the rows the upsert wrote into the receipt, and
    /// returns that count: the window's rows and receipt in one statement, sent with its
    /// COMMIT (`copy::StagedWindow::upserts_at_commit`). `r.rows_written` is not used.
    pub fn insert_applying_sql(&self, job: &str, r: &Receipt, upsert: &str) -> String {
        format!(
            "WITH applied AS ({upsert} RETURNING 1) INSERT INTO {} ({RECEIPT_COLUMNS}) \
             SELECT {} FROM applied RETURNING rows_written",
            self.table.sql(),
            receipt_values(job, r, "count(*)")
        )
    }

    /// What the receipts say about the job's latest pass; `None` when there are none (or
    /// no table). Rows are read as JSON so that a table of an earlier release (without the
    /// resume columns) reads the same.
    pub fn latest(
        &self,
        client: &mut postgres::Client,
        job: &str,
    ) -> Result<Option<PassReceipts>, DbError> {
        Ok(self
            .latest_of(client, &[job.to_string()])?
            .remove(job)
            .flatten())
    }

    /// [`Receipts::latest`] of several jobs (a set's tables) in one statement.
    pub fn latest_of(
        &self,
        client: &mut postgres::Client,
        jobs: &[String],
    ) -> Result<BTreeMap<String, Option<PassReceipts>>, DbError> {
        let mut found: BTreeMap<String, Parts> =
            jobs.iter().map(|j| (j.clone(), Parts::default())).collect();
        if !self.exists(client)? {
            return Ok(found.into_keys().map(|j| (j, None)).collect());
        }
        let t = self.table.sql();
        let of_pass = format!(
            "FROM {t} r WHERE job = ANY($1) AND pass = (SELECT max(m.pass) FROM {t} m WHERE m.job = r.job)"
        );
        let doing = "reading receipts";
        // In one statement: the last receipt of each job's slices, with the slice's count of
        // receipts (`kind` 0), and each job's receipt with the best resume point (`kind` 1).
        let rows = client
            .query_typed(
                &format!(
                    "(SELECT DISTINCT ON (job, slice) 0 AS kind, to_jsonb(r)::text, \
                      count(*) OVER (PARTITION BY job, slice), job {of_pass} ORDER BY job, slice, window_no DESC) \
                     UNION ALL \
                     (SELECT DISTINCT ON (job) 1, to_jsonb(r)::text, 0, job {of_pass} \
                      AND to_jsonb(r)->'resume_rank' <> 'null' \
                      ORDER BY job, (to_jsonb(r)->>'resume_rank')::bigint DESC)"
                ),
                &[(&jobs, Type::TEXT_ARRAY)],
            )
            .on(Side::Destination, doing)?;
        for row in &rows {
            let receipt = parse_receipt(&row.get::<_, String>(1))?;
            let Some(parts) = found.get_mut(row.get::<_, &str>(3)) else {
                continue;
            };
            if row.get::<_, i32>(0) == 0 {
                parts
                    .windows_per_slice
                    .insert(receipt.slice, row.get::<_, i64>(2) as u64);
                parts.slices.push(receipt);
            } else {
                parts.resume = receipt.resume;
            }
        }
        Ok(found
            .into_iter()
            .map(|(job, mut parts)| {
                parts.slices.sort_by_key(|r| r.slice);
                let windows_per_slice = parts.windows_per_slice;
                let latest =
                    PassReceipts::from_slices(parts.slices, parts.resume).map(|p| PassReceipts {
                        windows_per_slice,
                        ..p
                    });
                (job, latest)
            })
            .collect())
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
            .query_typed_opt(&sql, &[(&job, Type::TEXT)])
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
        // Typed parameters: one round trip (no prepare first).
        client
            .query_typed(&sql, &[(&job, Type::TEXT), (&(pass as i64), Type::INT8)])
            .on(Side::Destination, "pruning old receipts")?;
        Ok(())
    }
}
