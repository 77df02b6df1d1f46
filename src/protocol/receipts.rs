//! Receipts: a small pgsync-owned table in the destination (default `pgsync.receipts`).
//! The transaction that applies a window also inserts its receipt, so the destination
//! itself proves which windows are in, even when the local state lost its last write.
//! Created only once a sync really starts (never on bad input).

use crate::db::ident::{literal, quote, QualifiedName};
use crate::db::{DbError, DbErrorKind, PgResultExt, Side};
use crate::keyspace::Position;
use postgres::types::Type;
use serde::Deserialize;
use std::collections::BTreeMap;

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
}

const DOING: &str = "writing the receipts table";

impl Receipts {
    /// Whether the table exists yet.
    pub fn exists(&self, client: &mut postgres::Client) -> Result<bool, DbError> {
        let sql = "SELECT to_regclass($1) IS NOT NULL";
        Ok(client
            .query_typed_one(sql, &[(&self.table.sql(), Type::TEXT)])
            .on(Side::Destination, "looking for the receipts table")?
            .get(0))
    }

    /// Creates schema and table when missing; adds the columns of later releases to a
    /// table an earlier release created.
    pub fn ensure(&self, client: &mut postgres::Client) -> Result<(), DbError> {
        // Whether it exists and has this release's columns: one round trip.
        let found = client
            .query_typed_one(
                "SELECT to_regclass($1) IS NOT NULL, EXISTS (SELECT 1 FROM pg_attribute \
                   WHERE attrelid = to_regclass($1) AND attname = 'resume_rank' AND NOT attisdropped)",
                &[(&self.table.sql(), Type::TEXT)],
            )
            .on(Side::Destination, DOING)?;
        if found.get::<_, bool>(0) {
            let current: bool = found.get(1);
            if !current {
                let sql = format!(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS resume_rank bigint, \
                     ADD COLUMN IF NOT EXISTS resume_from jsonb",
                    self.table.sql()
                );
                client.batch_execute(&sql).on(Side::Destination, DOING)?;
            }
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
        crate::db::create_if_missing(client, &sql).on(Side::Destination, DOING)
    }

    /// The statement that inserts a receipt: the window's transaction sends it with its
    /// COMMIT (`db::txn::Txn::commit_with`).
    pub fn insert_sql(&self, job: &str, r: &Receipt) -> String {
        let json = |p: &Position| literal(&serde_json::to_string(p).unwrap_or_default());
        let (rank, from) = r
            .resume
            .as_ref()
            .map_or(("NULL".to_string(), "NULL".to_string()), |x| {
                (x.rank.to_string(), format!("{}::jsonb", json(&x.from)))
            });
        format!(
            "INSERT INTO {} (job, pass, window_no, slice, end_position, slice_done, pass_finished, pass_upper, \
             rows_read, rows_written, resume_rank, resume_from) \
             VALUES ({}, {}, {}, {}, {}::jsonb, {}, {}, {}, {}, {}, {rank}, {from})",
            self.table.sql(),
            literal(job),
            r.pass,
            r.window,
            r.slice,
            json(&r.end),
            r.slice_done,
            r.pass_finished,
            r.pass_upper.as_deref().map_or("NULL".to_string(), literal),
            r.rows_read,
            r.rows_written
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
        client
            .execute(&sql, &[&job, &(pass as i64)])
            .on(Side::Destination, "pruning old receipts")?;
        Ok(())
    }
}

/// A receipts row as `to_jsonb(r)` prints it; rows of an earlier release have no resume
/// columns. Other columns (`job`, `committed_at`) are ignored.
#[derive(Deserialize)]
struct ReceiptRow {
    pass: u64,
    window_no: u64,
    slice: usize,
    end_position: Position,
    slice_done: bool,
    pass_finished: bool,
    pass_upper: Option<String>,
    rows_read: u64,
    rows_written: u64,
    #[serde(default)]
    resume_rank: Option<u64>,
    #[serde(default)]
    resume_from: Option<Position>,
}

/// A receipt from its row as JSON (`to_jsonb(r)`); a row that does not parse is an error,
/// never skipped (skipping could resume a pass from an older point, or start it over).
fn parse_receipt(text: &str) -> Result<Receipt, DbError> {
    let row: ReceiptRow = serde_json::from_str(text).map_err(|e| {
        DbError::other(
            Side::Destination,
            DbErrorKind::Corrupt,
            "reading receipts",
            format!("a receipt does not parse ({e}): {text}"),
        )
    })?;
    let resume = match (row.resume_rank, row.resume_from) {
        (Some(rank), Some(from)) => Some(Resume { rank, from }),
        _ => None,
    };
    Ok(Receipt {
        pass: row.pass,
        window: row.window_no,
        slice: row.slice,
        end: row.end_position,
        slice_done: row.slice_done,
        pass_finished: row.pass_finished,
        pass_upper: row.pass_upper,
        rows_read: row.rows_read,
        rows_written: row.rows_written,
        resume,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_of_both_releases_parse() {
        let old = r#"{"job": "j", "pass": 2, "window_no": 7, "slice": 1, "end_position": {"AfterCursor": "10"},
            "slice_done": true, "pass_finished": false, "pass_upper": "20", "rows_read": 5, "rows_written": 4,
            "committed_at": "2026-11-25T01:00:00+00:00"}"#;
        let r = parse_receipt(old).unwrap();
        assert_eq!((r.pass, r.window, r.slice, r.resume), (2, 7, 1, None));
        assert_eq!(r.end, Position::AfterCursor("10".into()));
        let new = old.replace(
            r#""rows_written": 4,"#,
            r#""rows_written": 4, "resume_rank": 1099511627777, "resume_from": "Start","#,
        );
        let r = parse_receipt(&new).unwrap();
        assert_eq!(
            r.resume,
            Some(Resume {
                rank: (1 << 40) + 1,
                from: Position::Start
            })
        );
        let corrupt = parse_receipt(r#"{"pass": 1}"#).unwrap_err();
        assert_eq!(corrupt.kind, DbErrorKind::Corrupt);
        assert!(corrupt.message.contains("window_no"), "{}", corrupt.message);
    }
}
