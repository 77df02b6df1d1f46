//! The windows of a pass, one after the other, each applied, committed and checkpointed.
//! With built-in cursor and key types the source is read ahead on its own thread
//! (`copy::readahead`), so it keeps reading while the destination commits; otherwise, and
//! for the rest of a pass whose append met a row already there, windows are read and applied
//! in turn (`copy::apply_window`). Either way the checkpoint protocol is the same.

use crate::checkpoint;
use crate::copy::readahead::{ReadAhead, ReadPlan};
use crate::copy::{self, WindowAt, WindowOutcome, WindowPlan};
use crate::error::Error;
use crate::progress::Progress;
use crate::session::Session;
use crate::shutdown;
use crate::state::records::{ApplyMode, PassRecord, WindowRecord, WindowStatus};
use std::time::{Duration, Instant};

/// Runs the pass's remaining windows. Returns false when stopped by SIGINT/SIGTERM.
pub fn run(
    session: &Session,
    pass: &mut PassRecord,
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    plan: &mut WindowPlan<'_>,
    progress: &mut Progress,
    started: Instant,
) -> Result<bool, Error> {
    let rows_before = pass.rows_read;
    let mut pace = Pace {
        session,
        started,
        rows_before,
        last_live: Instant::now(),
    };
    if let Some(watched) = copy::watched_columns(&session.shape, &session.ks) {
        if !pass.is_finished() {
            let reader = ReadAhead::start(
                session.source.get()?,
                ReadPlan {
                    shape: session.shape.clone(),
                    ks: session.ks.clone(),
                    slices: pass.slices.clone(),
                    start_slice: pass.current_slice,
                    start: pass.position.clone(),
                    window_rows: plan.window_rows,
                    watched,
                },
            );
            let streamed = drive(session, pass, progress, &mut pace, |at, hook| {
                copy::apply_streamed(dst, plan, at, &reader, hook)
            });
            match streamed {
                Err(Error::Db(e))
                    if plan.apply == ApplyMode::Append
                        && e.code.as_deref() == Some(copy::UNIQUE_VIOLATION) =>
                {
                    // A row moved forward during the load and was met again: the rest of
                    // the pass goes through the upsert, window by window.
                    drop(reader);
                    plan.apply = ApplyMode::Upsert;
                    pass.apply = ApplyMode::Upsert;
                    session.state.record_pass(pass)?;
                }
                other => return other,
            }
        }
    }
    drive(session, pass, progress, &mut pace, |at, hook| {
        copy::apply_window(src, dst, plan, at, hook)
    })
}

/// The windows in order, each applied by `apply` (read-ahead or read-then-apply), then
/// checkpointed. False when interrupted.
fn drive<A>(
    session: &Session,
    pass: &mut PassRecord,
    progress: &mut Progress,
    pace: &mut Pace<'_>,
    mut apply: A,
) -> Result<bool, Error>
where
    A: FnMut(
        &WindowAt<'_>,
        &mut dyn FnMut(&WindowOutcome) -> Result<(), Error>,
    ) -> Result<WindowOutcome, Error>,
{
    while !pass.is_finished() {
        if shutdown::requested() {
            return Ok(false);
        }
        let (slice, mut window) = next_window(pass);
        let at = window_at(pass, &slice);
        let state = &session.state;
        let applied = apply(&at, &mut |o| record_in_flight(state, &mut window, o));
        if !after_window(session, pass, &mut window, applied, progress, pace)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The slice and the in-flight record of the pass's next window.
fn next_window(pass: &PassRecord) -> (crate::plan::Slice, WindowRecord) {
    let record = WindowRecord {
        pass: pass.pass,
        window: pass.next_window,
        slice: pass.current_slice,
        lower: pass.position.clone(),
        end: pass.position.clone(),
        slice_done: false,
        rows_read: 0,
        rows_written: 0,
        status: WindowStatus::InFlight,
    };
    (pass.slices[pass.current_slice].clone(), record)
}

fn window_at<'a>(pass: &'a PassRecord, slice: &'a crate::plan::Slice) -> WindowAt<'a> {
    WindowAt {
        pass: pass.pass,
        window: pass.next_window,
        slice_index: pass.current_slice,
        slice,
        last_slice: pass.current_slice + 1 == pass.slices.len(),
        pass_upper: pass.upper.as_deref(),
        from: &pass.position,
    }
}

/// Records the window as in flight, once its end is known, before the destination COMMIT.
fn record_in_flight(
    state: &crate::state::JobState,
    window: &mut WindowRecord,
    o: &WindowOutcome,
) -> Result<(), Error> {
    window.end = o.end.clone();
    window.slice_done = o.slice_done;
    state.record_window(window).map_err(Error::from)
}

/// Throttle and live-status timing shared by both loops.
struct Pace<'a> {
    session: &'a Session,
    started: Instant,
    rows_before: u64,
    last_live: Instant,
}

/// Checkpoints a committed window, reports progress, keeps `--max-rate`. False: interrupted.
fn after_window(
    session: &Session,
    pass: &mut PassRecord,
    window: &mut WindowRecord,
    applied: Result<WindowOutcome, Error>,
    progress: &mut Progress,
    pace: &mut Pace<'_>,
) -> Result<bool, Error> {
    let outcome = match applied {
        Ok(o) => o,
        Err(Error::Interrupted) => return Ok(false),
        Err(e) => return Err(e),
    };
    checkpoint::commit(&session.state, pass, window, &outcome)?;
    progress.update(pass);
    if pace.last_live.elapsed() >= Duration::from_secs(1) {
        crate::status::write_live(&pace.session.spec, &session.state);
        pace.last_live = Instant::now();
    }
    if let Some(rate) = session.spec.max_rate {
        // --max-rate: stay at or under the rows/s asked for, measured over this run.
        let due = Duration::from_secs_f64((pass.rows_read - pace.rows_before) as f64 / rate as f64);
        if !shutdown::sleep(due.saturating_sub(pace.started.elapsed())) {
            return Ok(false);
        }
    }
    Ok(true)
}
