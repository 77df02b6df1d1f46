//! One pass of a job, from decision to finished watermark: reconcile the state with the
//! destination's receipts, plan (or continue) the pass and record the plan, prepare the
//! destination (table, receipts, staging), then copy and checkpoint window after window.

use crate::catalog::{self, compare, ddl};
use crate::copy::{self, staging, upsert, WindowPlan};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::failpoint;
use crate::plan::late_commits::{self, PendingTx};
use crate::plan::{bounds, slices, Position};
use crate::progress::{unix_now, Progress};
use crate::reconcile::{reconcile, StartPoint};
use crate::session::Session;
use crate::state::records::{
    ApplyMode, Holdback, JobRecord, PassRecord, PassSnapshot, PassStats, Watermark,
};
use crate::state::StateError;
use crate::window_loop;
use std::time::Instant;

/// How a pass may begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Continue an unfinished pass, else start a new one.
    Single,
    /// Continue an unfinished pass, else fail with `NothingToResume`.
    Resume,
}

impl PassSummary {
    /// A run that copied nothing.
    fn nothing(pass: u64, continued: bool) -> Self {
        PassSummary {
            pass,
            rows_read: 0,
            rows_written: 0,
            windows: 0,
            seconds: 0.0,
            finished: true,
            continued,
        }
    }
}

/// What a run of a pass did.
#[derive(Debug, Clone)]
pub struct PassSummary {
    /// Pass number.
    pub pass: u64,
    /// Rows read in this run.
    pub rows_read: u64,
    /// Rows inserted or changed in this run.
    pub rows_written: u64,
    /// Windows committed in this run.
    pub windows: u64,
    /// Seconds of this run.
    pub seconds: f64,
    /// False when stopped by SIGINT/SIGTERM before the end of the pass.
    pub finished: bool,
    /// The run continued an unfinished pass (rather than planning a new one).
    pub continued: bool,
}

/// What the next run would do, computed like `run` but without writing anything.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The pass as it would be planned (or continued).
    pub pass: PassRecord,
    /// It continues an unfinished pass.
    pub continued: bool,
    /// What reconciliation corrected, if anything.
    pub note: Option<String>,
}

/// Plans the next pass without recording it or touching the destination.
pub fn preview(session: &Session) -> Result<Preview, Error> {
    let mut src = session.source.get()?;
    let mut dst = session.dest.get()?;
    let receipt = session.receipts.last(&mut dst, &session.spec.job_id)?;
    let recorded = session.state.pass().unwrap_or(None);
    let decided = reconcile(recorded, receipt);
    let (pass, continued) = match decided.start {
        StartPoint::Continue(p) => (p, true),
        StartPoint::Rebuild {
            pass,
            from,
            upper,
            next_window,
        } => (
            plan_rebuild(session, &mut src, pass, from, upper, next_window)?,
            true,
        ),
        StartPoint::New { pass, lower } => (
            plan_new_pass(session, &mut src, &mut dst, pass, lower)?.0,
            false,
        ),
    };
    Ok(Preview {
        pass,
        continued,
        note: decided.note,
    })
}

/// Runs (or continues) one pass.
pub fn run(session: &mut Session, mode: Mode) -> Result<PassSummary, Error> {
    let mut src = session.source.get()?;
    let mut dst = session.dest.get()?;
    let receipt = session.receipts.last(&mut dst, &session.spec.job_id)?;
    let recorded = match session.state.pass() {
        Ok(p) => p,
        Err(e @ StateError::Corrupt { .. }) => {
            warn(session, &format!("{e}; discarding this job's state and rebuilding it from the destination's receipts"));
            session.state.clear()?;
            session.state.set_meta(&JobRecord {
                identity: session.spec.identity.clone(),
                created_unix: unix_now(),
            })?;
            None
        }
        Err(e) => return Err(e.into()),
    };
    let decided = reconcile(recorded, receipt);
    if let Some(note) = &decided.note {
        warn(session, note);
    }
    let mut new_plan = None;
    let continued = !matches!(decided.start, StartPoint::New { .. });
    let mut pass = match decided.start {
        StartPoint::Continue(p) => p,
        StartPoint::Rebuild {
            pass,
            from,
            upper,
            next_window,
        } => plan_rebuild(session, &mut src, pass, from, upper, next_window)?,
        StartPoint::New { pass, lower } => {
            if mode == Mode::Resume {
                if catalog::load(&mut dst, Side::Destination, &session.spec.table, None)?
                    .is_some_and(|d| d.key_deferred)
                {
                    // The load finished but its key was not built (killed during the build).
                    build_deferred_key(session, &mut dst)?;
                    return Ok(PassSummary::nothing(pass.saturating_sub(1), true));
                }
                return Err(StateError::NothingToResume {
                    identity: session.spec.identity.clone(),
                    why: format!(
                        "pass {} finished (or none ever started)",
                        pass.saturating_sub(1)
                    ),
                }
                .into());
            }
            let (p, snapshot, holdback) = plan_new_pass(session, &mut src, &mut dst, pass, lower)?;
            new_plan = Some((snapshot, holdback));
            p
        }
    };
    if pass.slices.is_empty() {
        // Nothing to copy (no new rows): make sure the destination exists, keep the state.
        prepare_destination(session, &mut dst, ApplyMode::Upsert)?;
        return Ok(PassSummary::nothing(pass.pass, continued));
    }
    // checkpoint-protocol.md step 0: the plan is durable before any row moves.
    match &new_plan {
        Some((snapshot, holdback)) => session.state.record_plan(&pass, snapshot, holdback)?,
        None => session.state.record_pass(&pass)?,
    }
    failpoint::hit(failpoint::AFTER_PLAN);
    let upsert_sql = prepare_destination(session, &mut dst, pass.apply)?;
    let plan = WindowPlan {
        shape: &session.shape,
        ks: &session.ks,
        upsert_sql: &upsert_sql,
        receipts: &session.receipts,
        job_id: &session.spec.job_id,
        window_rows: session.spec.window_rows,
        apply: pass.apply,
    };
    let started = Instant::now();
    let (rows_before, written_before, windows_before) =
        (pass.rows_read, pass.rows_written, pass.windows_committed);
    let mut progress = Progress::new(session.spec.output, pass.rows_read);
    crate::status::write_live(&session.spec, &session.state);
    let mut plan = plan;
    let finished = window_loop::run(
        session,
        &mut pass,
        &mut src,
        &mut dst,
        &mut plan,
        &mut progress,
        started,
    )?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    pass.seconds_before += seconds;
    if finished && pass.apply == ApplyMode::AppendKeyLater {
        build_deferred_key(session, &mut dst)?;
    }
    if finished {
        let stats = PassStats {
            pass: pass.pass,
            rows_read: pass.rows_read,
            rows_written: pass.rows_written,
            windows: pass.windows_committed,
            seconds: pass.seconds_before,
            finished_unix: unix_now(),
        };
        let position = pass
            .upper
            .clone()
            .map_or_else(|| pass.lower.clone(), Position::AfterCursor);
        let holdback = holdback_after(session, &pass);
        session.state.finish_pass(
            &pass,
            &Watermark {
                pass: pass.pass,
                position,
            },
            &stats,
            &holdback,
        )?;
        session
            .receipts
            .prune(&mut dst, &session.spec.job_id, pass.pass)?;
    } else {
        session.state.record_pass(&pass)?;
    }
    Ok(PassSummary {
        pass: pass.pass,
        rows_read: pass.rows_read - rows_before,
        rows_written: pass.rows_written - written_before,
        windows: pass.windows_committed - windows_before,
        seconds,
        finished,
        continued,
    })
}

/// Plans the rest of a pass known only from the receipts (state lost): slices again from
/// the last committed end. When nothing of it is left, the next pass starts where it ended.
fn plan_rebuild(
    session: &Session,
    src: &mut postgres::Client,
    pass: u64,
    from: Position,
    upper: Option<String>,
    next_window: u64,
) -> Result<PassRecord, Error> {
    let mut p = plan_pass(session, src, pass, from.clone(), upper, ApplyMode::Upsert)?;
    p.next_window = next_window;
    if p.slices.is_empty() {
        let lower = match from {
            Position::NullsAfter(_) => p
                .upper
                .clone()
                .map_or(Position::Start, Position::AfterCursor),
            other => other,
        };
        let upper = bounds::source_upper(src, &session.spec.table, &session.ks)?;
        p = plan_pass(session, src, pass + 1, lower, upper, ApplyMode::Upsert)?;
    }
    Ok(p)
}

/// Plans a new pass: the lower bound is the watermark moved back by the lookback (or the
/// destination fallback), lowered further to the floor of every pending transaction
/// (docs/consistency.md). Pending transactions seen finished here are dropped; running ones
/// are carried to the next plan.
fn plan_new_pass(
    session: &Session,
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    pass: u64,
    lower: Option<Position>,
) -> Result<(PassRecord, PassSnapshot, Holdback), Error> {
    let spec = &session.spec;
    let cursor_type = &session.ks.cursor.1;
    let lower = match lower {
        Some(l) => late_commits::apply_lookback(src, l, cursor_type, spec.lookback)?,
        None => bounds::destination_fallback(dst, &spec.table, &session.ks)?,
    };
    let pending = match session.state.holdback() {
        Ok(h) => h.pending,
        Err(StateError::Corrupt { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    // Checked before the upper bound is read: a transaction seen finished here is visible
    // to every window of this pass.
    let running_before = late_commits::running(src)?;
    let floors: Vec<Position> = pending.iter().map(|p| p.floor.clone()).collect();
    let carried: Vec<PendingTx> = pending
        .into_iter()
        .filter(|p| running_before.contains(&p.xid))
        .collect();
    let upper = bounds::source_upper(src, &spec.table, &session.ks)?;
    // Read after the upper bound: whatever runs now may commit rows behind this pass's windows.
    let xip = late_commits::running(src)?.into_iter().collect();
    let lower = late_commits::earliest(src, lower, &floors, cursor_type)?;
    // A pass from the very start into an empty destination can append: every row it meets
    // is new there, and the receipts apply each window once (docs/performance.md).
    let apply = if lower != Position::Start || !copy::append_supported(&session.shape, &session.ks)
    {
        ApplyMode::Upsert
    } else {
        match destination_rows(dst, &spec.table)? {
            None => ApplyMode::AppendKeyLater,
            Some(false) => ApplyMode::Append,
            Some(true) => ApplyMode::Upsert,
        }
    };
    let record = plan_pass(session, src, pass, lower, upper, apply)?;
    Ok((
        record,
        PassSnapshot { pass, xip },
        Holdback { pending: carried },
    ))
}

/// The holdback once a pass has finished: what was pending still is, plus every source
/// transaction that was running when the pass was planned, floored at the pass's lower
/// bound (it may have committed rows after their window was read, or may still).
fn holdback_after(session: &Session, pass: &PassRecord) -> Holdback {
    let mut holdback = session.state.holdback().unwrap_or_default();
    if let Some(snapshot) = session
        .state
        .snapshot()
        .ok()
        .flatten()
        .filter(|s| s.pass == pass.pass)
    {
        for xid in snapshot.xip {
            if !holdback.pending.iter().any(|p| p.xid == xid) {
                holdback.pending.push(PendingTx {
                    xid,
                    floor: pass.lower.clone(),
                });
            }
        }
    }
    holdback
}

/// Plans a pass from `lower` to `upper` (slices from planner statistics).
fn plan_pass(
    session: &Session,
    src: &mut postgres::Client,
    pass: u64,
    lower: Position,
    upper: Option<String>,
    apply: ApplyMode,
) -> Result<PassRecord, Error> {
    let spec = &session.spec;
    let cursor_nullable = session
        .shape
        .column(&spec.cursor)
        .is_some_and(|c| !c.not_null);
    let nulls = cursor_nullable && bounds::source_has_null_cursors(src, &spec.table, &session.ks)?;
    let slices = slices::plan(
        src,
        &spec.table,
        &session.ks,
        &lower,
        upper.as_deref(),
        spec.slice_rows,
        nulls,
    )?;
    let position = slices
        .first()
        .map_or_else(|| lower.clone(), |s| s.lower.clone());
    Ok(PassRecord {
        pass,
        lower,
        upper,
        slices,
        current_slice: 0,
        position,
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

/// Builds the primary key of a destination loaded without it, in one transaction that also
/// removes the marker. Rows appended twice (moved forward during the load) make the first
/// attempt fail with a unique violation; their older copies are removed and it runs again.
fn build_deferred_key(session: &Session, dst: &mut postgres::Client) -> Result<(), Error> {
    let doing = "building the destination's primary key";
    let shape = &session.shape;
    let mut txn = dst.transaction().on(Side::Destination, doing)?;
    match txn.batch_execute(&ddl::add_key_sql(shape)) {
        Ok(()) => {}
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
            drop(txn);
            txn = dst.transaction().on(Side::Destination, doing)?;
            let removed = txn
                .execute(&ddl::dedupe_sql(shape, &session.spec.cursor), &[])
                .on(Side::Destination, doing)?;
            txn.batch_execute(&ddl::add_key_sql(shape))
                .on(Side::Destination, doing)?;
            warn(
                session,
                &format!("removed {removed} older copies of rows that moved during the load"),
            );
        }
        Err(e) => return Err(crate::db::DbError::from_pg(Side::Destination, doing, e).into()),
    }
    failpoint::hit(failpoint::BEFORE_KEY_COMMIT);
    txn.commit().on(Side::Destination, doing)?;
    Ok(())
}

/// Whether the destination table has rows; `None` when it does not exist yet.
fn destination_rows(
    dst: &mut postgres::Client,
    table: &crate::db::ident::QualifiedName,
) -> Result<Option<bool>, Error> {
    let doing = "looking at the destination table";
    let exists: bool = dst
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.sql()])
        .on(Side::Destination, doing)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", table.sql());
    Ok(Some(
        dst.query_one(&sql, &[])
            .on(Side::Destination, doing)?
            .get(0),
    ))
}

/// Creates the destination table when missing (one transaction), the receipts table, and
/// the session's staging table; returns the upsert statement.
fn prepare_destination(
    session: &mut Session,
    dst: &mut postgres::Client,
    apply: ApplyMode,
) -> Result<String, Error> {
    let table = &session.spec.table;
    let key_deferred = match catalog::load(dst, Side::Destination, table, None)? {
        Some(mut existing) => {
            if let Some(key) = session.spec.key.as_deref() {
                catalog::use_key(dst, Side::Destination, &mut existing, key)?;
            }
            compare::same_shape(&session.shape, &existing)?;
            session.shape.has_user_triggers = existing.has_user_triggers;
            existing.key_deferred
        }
        None => {
            let schema_exists: bool = dst
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                    &[&table.schema],
                )
                .on(Side::Destination, "looking for the destination schema")?
                .get(0);
            let mut txn = dst
                .transaction()
                .on(Side::Destination, "creating the destination table")?;
            let with_key = apply != ApplyMode::AppendKeyLater;
            txn.batch_execute(&ddl::create_table_sql(
                &session.shape,
                !schema_exists,
                with_key,
            ))
            .on(Side::Destination, "creating the destination table")?;
            txn.commit()
                .on(Side::Destination, "creating the destination table")?;
            session.shape.has_user_triggers = false;
            !with_key
        }
    };
    // A key left unbuilt by an earlier run (crash during the load's end) is built before any
    // upsert needs it; only a load without key that is still running goes on without it.
    if key_deferred && apply != ApplyMode::AppendKeyLater {
        build_deferred_key(session, dst)?;
    }
    session.receipts.ensure(dst)?;
    let text_compared = catalog::columns_without_equality(dst, &session.shape);
    staging::create(dst, &session.shape)?;
    Ok(upsert::upsert_sql(&session.shape, &text_compared))
}

fn warn(session: &Session, message: &str) {
    crate::progress::note(&session.spec.output, "warn", message);
}
