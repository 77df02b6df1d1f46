//! One pass of a job, from decision to finished watermark: reconcile the state with the
//! destination's receipts, plan (or continue) the pass and record the plan, prepare the
//! destination (table, receipts, staging), then copy and checkpoint window after window.

use crate::catalog;
use crate::copy::WindowPlan;
use crate::db::Side;
use crate::error::Error;
use crate::job::Job;
use crate::protocol::reconcile::{reconcile, StartPoint};
use crate::runtime::failpoint;
use crate::runtime::output::unix_now;
use crate::state::records::{ApplyMode, JobRecord, PassRecord, PassStats, Watermark};
use crate::state::StateError;
use destination::{advance_key_sequence, build_deferred_key, prepare_destination};
use planning::{holdback_after, plan_new_pass, plan_rebuild};
use progress::Progress;
use std::time::{Duration, Instant};

mod destination;
mod planning;
mod progress;
mod shared;
mod slice;
mod throttle;
mod workers;

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
            finished: true,
            continued,
            timings: PassTimings::default(),
        }
    }
}

/// Where a run's time went (`-v` prints it).
#[derive(Debug, Clone, Copy, Default)]
pub struct PassTimings {
    /// Reconciling the state with the receipts, planning or continuing the pass, and
    /// recording the plan.
    pub planning: Duration,
    /// Creating or checking the destination table, the receipts table and staging.
    pub preparing: Duration,
    /// The window loop, checkpoints included (for a table of a set, its workers' waits for
    /// one of the set's slots too).
    pub windows: Duration,
    /// Within `windows`, summed over the workers: building the receipt, the in-flight
    /// record, handing the checkpoint to the state's flusher (and waiting for it when it
    /// falls behind), the receipt that closes a pass. The receipt itself travels with the
    /// COMMIT, so its cost is the COMMIT's.
    pub checkpoints: Duration,
    /// Building the primary key of a destination loaded without it.
    pub key_build: Duration,
    /// Recording the finished watermark and pruning the pass's receipts.
    pub finishing: Duration,
    /// Round trips to either server made by the window loop (`db::round_trips`); `None` for
    /// a table of a set, whose passes run at once and share the process's counter.
    pub round_trips: Option<u64>,
}

impl PassTimings {
    pub fn total(&self) -> Duration {
        self.planning + self.preparing + self.windows + self.key_build + self.finishing
    }

    /// Planning and checkpointing (the cost of crash safety and of planning) as a
    /// fraction of the run.
    pub fn overhead(&self) -> f64 {
        let total = self.total().as_secs_f64();
        if total > 0.0 {
            (self.planning + self.checkpoints + self.finishing).as_secs_f64() / total
        } else {
            0.0
        }
    }
}

/// What a run of a pass did.
#[derive(Debug, Clone)]
pub struct PassSummary {
    pub pass: u64,
    /// Rows read in this run.
    pub rows_read: u64,
    /// Rows inserted or changed in this run.
    pub rows_written: u64,
    /// Windows committed in this run.
    pub windows: u64,
    /// False when stopped by SIGINT/SIGTERM before the end of the pass.
    pub finished: bool,
    /// The run continued an unfinished pass (rather than planning a new one).
    pub continued: bool,
    /// Where the time went.
    pub timings: PassTimings,
}

impl PassSummary {
    /// Seconds this run spent copying windows (the key build and the rest are in
    /// `timings`).
    pub fn seconds(&self) -> f64 {
        self.timings.windows.as_secs_f64()
    }
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
pub fn preview(job: &Job) -> Result<Preview, Error> {
    let mut src = job.source.get()?;
    let mut dst = job.dest.get()?;
    let receipt = job.receipts.latest(&mut dst, &job.spec.job_id)?;
    let recorded = job.state.pass().unwrap_or(None);
    let decided = reconcile(recorded, receipt);
    let (pass, continued) = match decided.start {
        StartPoint::Continue(p) => (p, true),
        StartPoint::Rebuild {
            pass,
            from,
            upper,
            next_window,
        } => (
            plan_rebuild(job, &mut src, pass, from, upper, next_window)?,
            true,
        ),
        StartPoint::New { pass, lower } => (
            plan_new_pass(job, (&mut src, &mut dst), pass, lower, None)?.0,
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
pub fn run(job: &mut Job, mode: Mode) -> Result<PassSummary, Error> {
    let planned = plan(job, mode)?;
    copy(job, planned)
}

/// A pass planned (or continued) and its plan recorded, no row copied yet: what `copy`
/// goes on with. A set plans every table's pass this way before any table copies, so its
/// planning does not compete with the copying for the machine.
pub struct Planned(Planning);

enum Planning {
    /// Nothing to copy: the run is over.
    Over(PassSummary),
    /// Windows to copy.
    Ready {
        pass: PassRecord,
        continued: bool,
        timings: PassTimings,
    },
}

/// Reconciles the state with the destination's receipts, then plans a new pass (or takes
/// up the unfinished one) and records it; its flush to disk is waited for by `copy`.
pub fn plan(job: &mut Job, mode: Mode) -> Result<Planned, Error> {
    let mut timings = PassTimings::default();
    let planning = Instant::now();
    let mut src = job.source.get()?;
    let mut dst = job.dest.get()?;
    let prefetched = job.share.as_ref().and_then(|s| {
        s.prefetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    });
    let dest_exists = prefetched.as_ref().map(|p| p.dest_exists);
    let receipt = match prefetched {
        Some(p) => p.receipts,
        None => job.receipts.latest(&mut dst, &job.spec.job_id)?,
    };
    let recorded = match job.state.pass() {
        Ok(p) => p,
        Err(e @ StateError::Corrupt { .. }) => {
            warn(job, &format!("{e}; discarding this job's state and rebuilding it from the destination's receipts"));
            job.state.clear()?;
            job.state.set_meta(&JobRecord {
                identity: job.spec.identity.clone(),
                created_unix: unix_now(),
            })?;
            None
        }
        Err(e) => return Err(e.into()),
    };
    let decided = reconcile(recorded, receipt);
    if let Some(note) = &decided.note {
        warn(job, note);
    }
    let mut new_plan = None;
    let continued = !matches!(decided.start, StartPoint::New { .. });
    let pass = match decided.start {
        StartPoint::Continue(p) => p,
        StartPoint::Rebuild {
            pass,
            from,
            upper,
            next_window,
        } => plan_rebuild(job, &mut src, pass, from, upper, next_window)?,
        StartPoint::New { pass, lower } => {
            if mode == Mode::Resume {
                if catalog::load(&mut dst, Side::Destination, &job.spec.table, None)?
                    .is_some_and(|d| d.key_deferred)
                {
                    // The load finished but its key was not built (killed during the build).
                    build_deferred_key(job, &mut dst)?;
                    let over = PassSummary::nothing(pass.saturating_sub(1), true);
                    return Ok(Planned(Planning::Over(over)));
                }
                return Err(StateError::NothingToResume {
                    identity: job.spec.identity.clone(),
                    why: format!(
                        "pass {} finished (or none ever started)",
                        pass.saturating_sub(1)
                    ),
                }
                .into());
            }
            let (p, snapshot, holdback) =
                plan_new_pass(job, (&mut src, &mut dst), pass, lower, dest_exists)?;
            new_plan = Some((snapshot, holdback));
            p
        }
    };
    if pass.slices.is_empty() {
        // Nothing to copy (no new rows): make sure the destination exists, keep the state.
        prepare_destination(job, &mut dst, ApplyMode::Upsert)?;
        let over = PassSummary::nothing(pass.number, continued);
        return Ok(Planned(Planning::Over(over)));
    }
    // checkpoint-protocol.md step 0: the plan is durable before any row moves — flushed in
    // the background while the destination is prepared, waited for before the workers start
    // (`copy`; the wait counts as planning).
    match &new_plan {
        Some((snapshot, holdback)) => job.state.record_plan(&pass, snapshot, holdback)?,
        None => job.state.record_pass(&pass)?,
    }
    timings.planning = planning.elapsed();
    Ok(Planned(Planning::Ready {
        pass,
        continued,
        timings,
    }))
}

/// Copies a planned pass: prepares the destination, waits for the plan to be durable, then
/// copies and checkpoints window after window, and records the finished watermark.
pub fn copy(job: &mut Job, planned: Planned) -> Result<PassSummary, Error> {
    let (mut pass, continued, mut timings) = match planned.0 {
        Planning::Over(summary) => return Ok(summary),
        Planning::Ready {
            pass,
            continued,
            timings,
        } => (pass, continued, timings),
    };
    let mut dst = job.dest.get()?;
    let preparing = Instant::now();
    let prepared = prepare_destination(job, &mut dst, pass.apply)?;
    timings.preparing = preparing.elapsed();
    let flushing = Instant::now();
    job.state.wait_durable()?;
    timings.planning += flushing.elapsed();
    failpoint::hit(failpoint::AFTER_PLAN);
    // The workers check out their own connections: this one, first (on a link with latency
    // a new connection costs several round trips).
    drop(dst);
    let paces = job.state.paces();
    let window = std::sync::Arc::new(job.spec.window_size(paces.expected(pass.apply)));
    let plan = WindowPlan {
        shape: &job.shape,
        ks: &job.ks,
        upsert_sql: &prepared.upsert_sql,
        window: &window,
    };
    let started = Instant::now();
    let (rows_before, written_before, windows_before) =
        (pass.rows_read, pass.rows_written, pass.windows_committed);
    let mut progress = match &job.share {
        Some(share) => Progress::in_set(share.progress.clone(), job.spec.table.to_string(), &pass),
        None => Progress::new(job.spec.output, pass.rows_read),
    };
    crate::job::status::write_live(&job.spec, &job.state);
    let round_trips_before = crate::db::round_trips_so_far();
    let ran = workers::run(job, &mut pass, &plan, &mut progress, started)?;
    timings.round_trips = job
        .share
        .is_none()
        .then(|| crate::db::round_trips_so_far() - round_trips_before);
    let finished = ran.finished;
    if let Some(pace) = window.pace() {
        job.state.record_paces(&paces.with(pass.apply, pace))?;
    }
    progress.finish();
    timings.windows = started.elapsed();
    timings.checkpoints = ran.bookkeeping;
    pass.seconds_before += timings.windows.as_secs_f64();
    let mut dst = job.dest.get()?;
    if finished && pass.apply == ApplyMode::AppendKeyLater {
        let building = Instant::now();
        build_deferred_key(job, &mut dst)?;
        timings.key_build = building.elapsed();
    }
    let finishing = Instant::now();
    if finished {
        let stats = PassStats {
            pass: pass.number,
            rows_read: pass.rows_read,
            rows_written: pass.rows_written,
            windows: pass.windows_committed,
            seconds: pass.seconds_before,
            finished_unix: unix_now(),
        };
        let position = pass.end();
        let holdback = holdback_after(job, &pass)?;
        job.state.finish_pass(
            &pass,
            &Watermark {
                pass: pass.number,
                position,
            },
            &stats,
            &holdback,
        )?;
        job.receipts
            .prune(&mut dst, &job.spec.job_id, pass.number)?;
        if let Some(column) = prepared
            .key_sequence
            .as_deref()
            .filter(|_| pass.rows_written > 0)
        {
            advance_key_sequence(job, &mut dst, column);
        }
    } else {
        job.state.record_pass(&pass)?;
    }
    timings.finishing = finishing.elapsed();
    Ok(PassSummary {
        pass: pass.number,
        rows_read: pass.rows_read - rows_before,
        rows_written: pass.rows_written - written_before,
        windows: pass.windows_committed - windows_before,
        finished,
        continued,
        timings,
    })
}

pub(super) fn warn(job: &Job, message: &str) {
    crate::runtime::output::note(&job.spec.output, "warn", message);
}
