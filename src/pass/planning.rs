//! Planning a pass: a new one (lookback, late-commit floors, upper bound, apply mode,
//! slices), the rest of one known only from the receipts, and the holdback it leaves.

use super::destination::destination_rows;
use crate::copy;
use crate::error::Error;
use crate::job::Job;
use crate::keyspace::late_commits::{self, PendingTx};
use crate::keyspace::{self, at_plan, blocks, bounds, slices, Position};
use crate::runtime::output::unix_now;
use crate::state::records::{ApplyMode, Holdback, PassRecord, PassSnapshot, SliceProgress};
use crate::state::StateError;

/// Rows a slice keeps at least when `--jobs` asks for more slices and windows are sized by
/// time: their first windows are 10,000 rows, then up to four times the one before, so a
/// smaller slice is one or two windows of its own, each paying a window's round trips and
/// commit, for no parallelism a worker would not get from the next table or slice.
const MIN_SLICE_ROWS_BY_TIME: u64 = 50_000;
/// How long a plan waits for the transactions running at it to end (those that do need no
/// holdback).
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// Plans a new pass: the lower bound is the watermark moved back by the lookback (or the
/// destination fallback), lowered further to the floor of every pending transaction
/// (docs/consistency.md). Pending transactions seen finished here are dropped; running ones
/// are carried to the next plan.
pub(super) fn plan_new_pass(
    job: &Job,
    (src, dst): (&mut postgres::Client, &mut postgres::Client),
    pass: u64,
    lower: Option<Position>,
    dest_exists: Option<bool>,
) -> Result<(PassRecord, PassSnapshot, Holdback), Error> {
    let spec = &job.spec;
    let cursor_type = &job.ks.cursor.1;
    // Whether the destination table exists: known already (a set's round read it for every
    // table), or asked once.
    let mut known = dest_exists;
    let mut exists = |dst: &mut postgres::Client| -> Result<bool, Error> {
        if known.is_none() {
            known = Some(bounds::destination_exists(dst, &spec.table)?);
        }
        Ok(known.unwrap_or_default())
    };
    let lower = match lower {
        Some(l) if bounds::past_clock(src, &job.ks, &l)? => {
            super::warn(
                job,
                &format!(
                    "source: the watermark ({l}) is past the source's clock: an earlier pgsync followed a \
                     far-future cursor there, and later changes were not copied; going on from the \
                     destination's latest row before the clock"
                ),
            );
            let exists = exists(dst)?;
            bounds::destination_fallback(dst, &spec.table, &job.ks, exists)?
        }
        Some(l) => {
            late_commits::apply_lookback(src, l, (cursor_type, job.ks.clock), spec.lookback)?
        }
        None => {
            let exists = exists(dst)?;
            bounds::destination_fallback(dst, &spec.table, &job.ks, exists)?
        }
    };
    // An unreadable holdback is an error, never "nothing pending": its floors are what keeps
    // a late commit in reach.
    let pending = job.state.holdback()?.pending;
    // The upper bound, then (in the same statement, after its snapshot) the transactions
    // running: keyspace/at_plan.rs.
    let at_plan = at_plan::read(src, &spec.table, &job.ks)?;
    let floors: Vec<Position> = pending.iter().map(|p| p.floor.clone()).collect();
    // A pending transaction seen finished here is visible to every window of this pass.
    let carried: Vec<PendingTx> = pending
        .into_iter()
        .filter(|p| at_plan.running.includes(p.xid))
        .collect();
    let upper = at_plan.upper;
    if let Some(beyond) = at_plan.beyond {
        super::warn(
            job,
            &format!(
                "source: {} row(s) have a cursor more than a day past the source's clock (the first: {}); \
                 a pass copies rows up to the source's clock, so they wait until it reaches them — correct \
                 the values (a sentinel such as 9999-12-31 or infinity?), or choose another cursor column",
                beyond.rows, beyond.example
            ),
        );
    }
    // Whatever runs after the upper bound was read may commit rows behind this pass's windows.
    let xip = late_commits::still_running_after(src, at_plan.running.tokens, SETTLE)?
        .into_iter()
        .collect();
    let lower = late_commits::earliest(src, lower, &floors, cursor_type)?;
    // A pass from the very start into an empty destination can append: every row it meets
    // is new there, and the receipts apply each window once (docs/performance.md).
    let apply = if lower != Position::Start || !copy::append_supported(&job.shape, &job.ks) {
        ApplyMode::Upsert
    } else {
        let exists = exists(dst)?;
        match destination_rows(dst, &spec.table, exists)? {
            None => ApplyMode::AppendKeyLater,
            Some(false) => ApplyMode::Append,
            Some(true) => ApplyMode::Upsert,
        }
    };
    let record = plan_pass(job, src, pass, lower, upper, apply, Some(at_plan.heap))?;
    Ok((
        record,
        PassSnapshot { pass, xip },
        Holdback { pending: carried },
    ))
}

/// Plans the rest of a pass known only from the receipts (state lost): slices again from
/// the last committed end. When nothing of it is left, the next pass starts where it ended.
pub(super) fn plan_rebuild(
    job: &Job,
    src: &mut postgres::Client,
    pass: u64,
    from: Position,
    upper: Option<String>,
    next_window: u64,
) -> Result<PassRecord, Error> {
    let mut p = plan_pass(job, src, pass, from.clone(), upper, ApplyMode::Upsert, None)?;
    p.next_window = next_window;
    if p.slices.is_empty() {
        let lower = match from {
            Position::NullsAfter(_) | Position::AtBlock(_) => p
                .upper
                .clone()
                .map_or(Position::Start, Position::AfterCursor),
            other => other,
        };
        let upper = bounds::source_upper(src, &job.spec.table, &job.ks)?;
        p = plan_pass(job, src, pass + 1, lower, upper, ApplyMode::Upsert, None)?;
    }
    Ok(p)
}

/// The holdback once a pass has finished: what was pending still is, plus every source
/// transaction that was running when the pass was planned, floored at the pass's lower
/// bound (it may have committed rows after their window was read, or may still).
pub(super) fn holdback_after(job: &Job, pass: &PassRecord) -> Result<Holdback, StateError> {
    let mut holdback = job.state.holdback()?;
    if let Some(snapshot) = job.state.snapshot()?.filter(|s| s.pass == pass.number) {
        for xid in snapshot.xip {
            if !holdback.pending.iter().any(|p| p.xid == xid) {
                holdback.pending.push(PendingTx {
                    xid,
                    floor: pass.lower.clone(),
                });
            }
        }
    }
    Ok(holdback)
}

/// Plans a pass from `lower` to `upper` (slices from planner statistics, or heap blocks:
/// `heap`, read with the upper bound, or read here when `None`).
pub(super) fn plan_pass(
    job: &Job,
    src: &mut postgres::Client,
    pass: u64,
    lower: Position,
    upper: Option<String>,
    apply: ApplyMode,
    heap: Option<blocks::HeapFacts>,
) -> Result<PassRecord, Error> {
    let spec = &job.spec;
    // With --jobs, four slices a worker: one slow slice does not leave the others idle;
    // each keeps a window's rows at least (a fixed size), or `MIN_SLICE_ROWS_BY_TIME`.
    let sizing = keyspace::Sizing {
        slice_rows: spec.slice_rows,
        min_slices: if spec.jobs > 1 {
            4 * spec.jobs as u64
        } else {
            1
        },
        min_rows: spec.window_rows.unwrap_or(MIN_SLICE_ROWS_BY_TIME),
    };
    let from_block = match &lower {
        Position::Start => Some(0),
        Position::AtBlock(b) => Some(*b),
        _ => None,
    };
    let heap = match from_block {
        Some(_) if spec.block_scan => {
            let facts = match heap {
                Some(facts) => facts,
                None => blocks::heap_facts(src, crate::db::Side::Source, &spec.table)?,
            };
            blocks::heap(src, &spec.table, facts)?
        }
        _ => None,
    };
    let slices = match (from_block, heap) {
        (Some(from), Some(heap)) => blocks::cut(from, heap, sizing, upper.as_deref()),
        _ => keyset_slices(job, src, &lower, upper.as_deref(), sizing)?,
    };
    let progress = slices.iter().map(SliceProgress::untouched).collect();
    Ok(PassRecord {
        number: pass,
        lower,
        upper,
        slices,
        progress,
        next_window: 0,
        rows_read: 0,
        rows_written: 0,
        windows_committed: 0,
        windows_reconciled: 0,
        started_unix: unix_now(),
        seconds_before: 0.0,
        apply,
    })
}

/// Slices of the key space from `lower` to `upper` (planner statistics), then the rows
/// whose cursor is NULL. A block position here (block scans turned off since) starts over.
fn keyset_slices(
    job: &Job,
    src: &mut postgres::Client,
    lower: &Position,
    upper: Option<&str>,
    sizing: keyspace::Sizing,
) -> Result<Vec<keyspace::Slice>, Error> {
    let spec = &job.spec;
    let lower = match lower {
        Position::AtBlock(_) => &Position::Start,
        other => other,
    };
    let cursor_nullable = job.shape.column(&spec.cursor).is_some_and(|c| !c.not_null);
    let nulls = cursor_nullable && bounds::source_has_null_cursors(src, &spec.table, &job.ks)?;
    Ok(slices::plan(
        src,
        &spec.table,
        &job.ks,
        lower,
        upper,
        sizing,
        nulls,
    )?)
}
