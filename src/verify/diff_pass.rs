//! A diff pass (`--mode diff`): sync without trusting a cursor. Both tables are compared
//! as `verify --all` compares them — count and hash sum per key window on both servers at
//! once, the differing windows drilled down to keys — and the differing windows are applied
//! in key order, consecutive ones batched up to ~1,000 keys, each batch in one destination
//! transaction: the source's current version of its missing and
//! different rows (COPY by key → staging → the sync's upsert, which leaves equal rows
//! untouched, so triggers fire once per real change), and the deletion of its rows whose
//! key the source still lacks when the batch is applied.
//!
//! Concurrency (docs/consistency.md, "Diff passes"): every row applied is read from the
//! source inside its batch's step, after the comparison; a row the source changes or
//! deletes after that read differs at the next pass, which brings it. A key is deleted
//! only when the source lacks it at the moment its batch is applied, so a row inserted
//! after the comparison is never removed for long, and a deleted row is never brought back
//! by a read older than its deletion. Applying a batch twice changes nothing; a pass cut
//! short is finished by the next, which compares again.

use super::repair::{copy_sql, delete_sql};
use super::{RowDiff, RowDiffKind, VerifyOptions};
use crate::catalog;
use crate::copy::{staging, upsert};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::job::databases::Databases;
use crate::job::Job;
use crate::runtime::failpoint;
use crate::state::records::DiffRecord;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Rows per compared window unless `--window-size` says otherwise (the source's histogram
/// bounds the count of windows: at most as many as its statistics target).
pub const WINDOW_ROWS: u64 = 20_000;
/// Keys per COPY, lookup and DELETE statement.
const KEYS_PER_STATEMENT: usize = 1_000;

/// What a diff pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiffSummary {
    /// The record as stored (windows, differing windows, rows written and deleted).
    pub record: DiffRecord,
    /// Source rows compared.
    pub rows_compared: i64,
    /// Rows read from the source by key (the only row data that crossed the network).
    pub rows_copied: u64,
    /// Time comparing (checksums and drill-down).
    pub compare: Duration,
    /// Time applying the differing windows.
    pub apply: Duration,
}

/// One differing window's work.
#[derive(Default)]
struct WindowWork {
    /// Keys to copy from the source (missing or different in the destination).
    copy: Vec<Vec<String>>,
    /// Keys to delete unless the source has them again when the window is applied.
    gone: Vec<Vec<String>>,
}

/// Compares both tables and applies every differing window; `None` when interrupted
/// (SIGINT/SIGTERM) between or during windows (the windows applied so far stay).
pub fn run(job: &Job, pass: u64) -> Result<Option<DiffSummary>, Error> {
    let db = job.databases();
    let started = Instant::now();
    let options = VerifyOptions {
        all: true,
        from: None,
        to: None,
        window_rows: job.spec.window_rows.unwrap_or(WINDOW_ROWS),
        progress: false,
        chunk_blocks: super::scan::CHUNK_BLOCKS,
        text_hash: false,
        keys_only: false,
        skip_window_sums: most_windows_differed(job),
        whole_first: nothing_differed(job),
    };
    let report = super::run(&job.spec, &db, &options)?;
    let work = by_window(&report.differing_rows);
    let mut summary = DiffSummary {
        rows_compared: report.source_rows,
        compare: started.elapsed(),
        record: DiffRecord {
            pass,
            windows: report.windows as u64,
            differing_windows: work.len() as u64,
            recorded_unix: crate::runtime::output::unix_now(),
            ..DiffRecord::default()
        },
        ..DiffSummary::default()
    };
    // Flushed: after a crash, `resume` knows the pass was cut short.
    job.state.record_diff(&summary.record)?;
    job.state.flush()?;
    let applying = Instant::now();
    let mut src = db.source.get()?;
    let mut dst = db.dest.get()?;
    staging::create(&mut dst, &db.shape, false)?;
    let upsert_sql = upsert::upsert_sql(
        &db.shape,
        &catalog::columns_without_equality(&mut dst, &db.shape),
    );
    for (windows, batch) in batches(work) {
        if crate::runtime::shutdown::requested() {
            return Ok(None);
        }
        let Some(applied) = apply(&mut src, &mut dst, &db, &upsert_sql, &batch)? else {
            return Ok(None);
        };
        let r = &mut summary.record;
        r.windows_applied += windows;
        r.rows_written += applied.written;
        r.rows_deleted += applied.deleted;
        r.recorded_unix = crate::runtime::output::unix_now();
        summary.rows_copied += applied.copied;
        job.state.record_diff(r)?;
    }
    summary.record.finished = true;
    job.state.record_diff(&summary.record)?;
    job.state.flush()?;
    summary.apply = applying.elapsed();
    Ok(Some(summary))
}

/// Whether the last diff pass found most windows differing (changes spread over the
/// table): then this one drills every window down at once, without summing windows first
/// (one scan fewer; when nothing differs any more, the next pass sums windows again).
fn most_windows_differed(job: &Job) -> bool {
    job.state
        .diff_pass()
        .unwrap_or(None)
        .is_some_and(|d| d.windows > 0 && d.differing_windows * 2 > d.windows)
}

/// Whether the last diff pass finished and found nothing differing (a quiet table): then
/// this one compares the whole table first (one plain scan a side, as cheap as a comparison
/// gets) and sums windows only when that differs — one scan more for the first pass after
/// changes resume.
fn nothing_differed(job: &Job) -> bool {
    job.state
        .diff_pass()
        .unwrap_or(None)
        .is_some_and(|d| d.finished && d.windows > 0 && d.differing_windows == 0)
}

/// The differing rows grouped by window, in window order.
fn by_window(diffs: &[RowDiff]) -> BTreeMap<i64, WindowWork> {
    let mut work: BTreeMap<i64, WindowWork> = BTreeMap::new();
    for d in diffs {
        let w = work.entry(d.window).or_default();
        match d.kind {
            RowDiffKind::ExtraInDestination => w.gone.push(d.key.clone()),
            // Missing, different, or seen only in the destination by the scan but found in
            // the source by the lookup after it (inserted meanwhile): the source's version.
            RowDiffKind::MissingInDestination
            | RowDiffKind::Different
            | RowDiffKind::ChangedSinceLastPass => w.copy.push(d.key.clone()),
        }
    }
    work
}

/// Consecutive differing windows (in key order) gathered until a batch holds
/// `KEYS_PER_STATEMENT` keys or more: each batch is one destination transaction, with the
/// number of windows it holds. One transaction a window cost 0.9 s for 100 windows at 2M
/// rows; a batch is still a key range, so the argument for one window holds for it.
fn batches(work: BTreeMap<i64, WindowWork>) -> Vec<(u64, WindowWork)> {
    let mut out: Vec<(u64, WindowWork)> = Vec::new();
    for (_, w) in work {
        match out.last_mut() {
            Some((n, b)) if b.copy.len() + b.gone.len() < KEYS_PER_STATEMENT => {
                *n += 1;
                b.copy.extend(w.copy);
                b.gone.extend(w.gone);
            }
            _ => out.push((1, w)),
        }
    }
    out
}

/// What applying one batch changed.
struct Applied {
    copied: u64,
    written: u64,
    deleted: u64,
}

/// One batch of windows in one destination transaction: stage the source's rows by key,
/// upsert them, delete the keys the source still lacks, commit. `None`: interrupted (rolled
/// back).
fn apply(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    db: &Databases,
    upsert_sql: &str,
    window: &WindowWork,
) -> Result<Option<Applied>, Error> {
    // Looked up before the transaction opens: the destination's transaction stays short.
    let gone = still_absent(src, db, &window.gone)?;
    let mut txn = dst
        .transaction()
        .on(Side::Destination, "starting a diff window's transaction")?;
    let mut copied = 0;
    for chunk in window.copy.chunks(KEYS_PER_STATEMENT) {
        match staging::stage(src, &mut txn, &copy_sql(db, chunk), &db.shape)? {
            staging::Piped::Rows(n) => copied += n,
            staging::Piped::Interrupted => return Ok(None),
        }
    }
    let written = if copied > 0 {
        txn.execute(upsert_sql, &[])
            .on(Side::Destination, "applying a diff window's rows")?
    } else {
        0
    };
    let mut deleted = 0;
    for chunk in gone.chunks(KEYS_PER_STATEMENT) {
        deleted += txn
            .execute(&delete_sql(db, chunk), &[])
            .on(Side::Destination, "deleting rows the source no longer has")?;
    }
    failpoint::hit(failpoint::DIFF_BEFORE_COMMIT);
    txn.commit()
        .on(Side::Destination, "committing a diff window")?;
    failpoint::hit(failpoint::DIFF_AFTER_COMMIT);
    Ok(Some(Applied {
        copied,
        written,
        deleted,
    }))
}

/// The keys among `keys` that the source does not have now.
fn still_absent(
    src: &mut postgres::Client,
    db: &Databases,
    keys: &[Vec<String>],
) -> Result<Vec<Vec<String>>, Error> {
    let doing = "looking up keys before deleting them";
    let present = super::keys::present(src, Side::Source, doing, &db.shape.table, &db.ks, keys)?;
    Ok(keys
        .iter()
        .filter(|k| !present.contains(*k))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_windows_are_batched_up_to_a_thousand_keys() {
        let keys = |n: usize| vec![vec!["1".to_string()]; n];
        let work: BTreeMap<i64, WindowWork> = [
            (0, 600, 0),
            (1, 300, 200),
            (2, 10, 0),
            (5, 999, 0),
            (7, 1, 1),
        ]
        .into_iter()
        .map(|(w, copy, gone)| {
            let work = WindowWork {
                copy: keys(copy),
                gone: keys(gone),
            };
            (w, work)
        })
        .collect();
        let sizes: Vec<(u64, usize)> = batches(work)
            .iter()
            .map(|(n, b)| (*n, b.copy.len() + b.gone.len()))
            .collect();
        assert_eq!(sizes, vec![(2, 1_100), (2, 1_009), (1, 2)]);
    }
}
