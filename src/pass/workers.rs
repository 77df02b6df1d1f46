//! The windows of a pass. `--jobs` workers (one by default) each take the next slice that
//! is neither done nor taken and copy its windows in key order, on their own source and
//! destination connections; slices are disjoint, so workers never touch the same rows.
//! With built-in cursor and key types each worker reads its slice ahead on a thread of its
//! own (`copy::readahead`) while its destination side commits; otherwise windows are read
//! and applied in turn (`copy::apply_window`). Every window follows the checkpoint
//! protocol; the pass record is shared behind a lock (the `Ledger`), which alone gives out
//! window numbers and records progress.

use crate::copy::readahead::{ReadAhead, ReadPlan};
use crate::copy::{self, staging, WindowAt, WindowOutcome, WindowPlan};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::job::Job;
use crate::protocol::checkpoint;
use crate::protocol::receipts::{Receipt, Resume};
use crate::runtime::output::Progress;
use crate::runtime::shutdown;
use crate::state::records::{ApplyMode, PassRecord, WindowRecord, WindowStatus};
use postgres::types::Type;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a run of the window loop ended.
pub struct Ran {
    /// Every slice is done; false when stopped by SIGINT/SIGTERM.
    pub finished: bool,
    /// Time the workers spent on bookkeeping, summed over the workers (`PassTimings::
    /// checkpoints` says what it holds).
    pub bookkeeping: Duration,
}

/// Runs the pass's remaining windows with up to `job.spec.jobs` workers, then writes
/// the receipt that closes the pass when no window's receipt did.
pub fn run(
    job: &Job,
    pass: &mut PassRecord,
    plan: &WindowPlan<'_>,
    progress: &mut Progress,
    started: Instant,
) -> Result<Ran, Error> {
    let left = pass.progress.iter().filter(|p| !p.done).count();
    let workers = job.spec.jobs.clamp(1, left.max(1));
    let ledger = Ledger {
        job,
        workers,
        started,
        rows_before: pass.rows_read,
        inner: Mutex::new(Inner {
            taken: vec![false; pass.slices.len()],
            pass: pass.clone(),
            progress,
            last_live: Instant::now(),
            stop: false,
            closed: false,
            bookkeeping: Duration::ZERO,
        }),
    };
    let results: Vec<Result<bool, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| ledger.worker(plan)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(Error::Interrupted)))
            .collect()
    });
    let inner = ledger.inner.into_inner().unwrap_or_else(|e| e.into_inner());
    *pass = inner.pass;
    let mut bookkeeping = inner.bookkeeping;
    let mut finished = true;
    for result in results {
        finished &= result?;
    }
    if finished && pass.is_finished() && !inner.closed {
        let closing = Instant::now();
        close_pass(job, pass, plan)?;
        bookkeeping += closing.elapsed();
    }
    Ok(Ran {
        finished: finished && pass.is_finished(),
        bookkeeping,
    })
}

/// The pass shared by the workers.
struct Ledger<'a, 'p> {
    job: &'a Job,
    /// Workers running (they share the read-ahead memory).
    workers: usize,
    started: Instant,
    rows_before: u64,
    inner: Mutex<Inner<'p>>,
}

struct Inner<'p> {
    pass: PassRecord,
    /// Slices a worker has taken.
    taken: Vec<bool>,
    progress: &'p mut Progress,
    last_live: Instant,
    /// A worker failed: the others stop after their current window.
    stop: bool,
    /// A committed window's receipt said the pass finished.
    closed: bool,
    /// Checkpoint time so far (`Ran::bookkeeping`).
    bookkeeping: Duration,
}

/// How a worker reads its slices.
enum Reading {
    /// On a read-ahead thread per slice (column index and type of cursor and key).
    Ahead(Vec<(usize, Type)>),
    /// Window by window on this source connection.
    InTurn(Box<crate::db::pool::Conn>),
}

/// What a worker needs to start a window.
struct Start {
    record: WindowRecord,
    slice: crate::keyspace::Slice,
    last_slice: bool,
    resume: Resume,
    apply: ApplyMode,
    upper: Option<String>,
}

impl<'p> Ledger<'_, 'p> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<'p>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One worker: slice after slice until none is left. False when interrupted.
    fn worker(&self, plan: &WindowPlan<'_>) -> Result<bool, Error> {
        let result = self.slices(plan);
        if !matches!(result, Ok(true)) {
            self.lock().stop = true;
        }
        result
    }

    fn slices(&self, plan: &WindowPlan<'_>) -> Result<bool, Error> {
        let job = self.job;
        let mut dst = job.dest.get()?;
        staging::create(&mut dst, &job.shape)?;
        // Read-ahead needs built-in cursor and key types; otherwise the worker reads each
        // window on a source connection of its own, then applies it.
        let mut reading = match copy::watched_columns(&job.shape, &job.ks) {
            Some(watched) => Reading::Ahead(watched),
            None => Reading::InTurn(Box::new(job.source.get()?)),
        };
        while let Some(index) = self.take_slice() {
            let done = match &mut reading {
                Reading::Ahead(watched) => self.slice_streamed(plan, index, &mut dst, watched)?,
                Reading::InTurn(src) => self.slice_in_turn(plan, index, src, &mut dst)?,
            };
            if !done {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The first slice neither done nor taken.
    fn take_slice(&self) -> Option<usize> {
        let mut inner = self.lock();
        if inner.stop {
            return None;
        }
        let index =
            (0..inner.taken.len()).find(|&i| !inner.taken[i] && !inner.pass.progress[i].done)?;
        inner.taken[index] = true;
        Some(index)
    }

    /// The slice's windows, read ahead. An append that meets a row already in the target
    /// (a row moved forward during the load) switches the pass to upsert and reads the
    /// slice again from its last committed window.
    fn slice_streamed(
        &self,
        plan: &WindowPlan<'_>,
        index: usize,
        dst: &mut postgres::Client,
        watched: &[(usize, Type)],
    ) -> Result<bool, Error> {
        loop {
            let (slice, from) = {
                let inner = self.lock();
                let p = &inner.pass;
                (p.slices[index].clone(), p.progress[index].position.clone())
            };
            let reader = ReadAhead::start(
                self.job.source.get()?,
                ReadPlan {
                    shape: self.job.shape.clone(),
                    ks: self.job.ks.clone(),
                    slices: vec![slice],
                    start_slice: 0,
                    start: from,
                    window_rows: plan.window_rows,
                    watched: watched.to_vec(),
                    readers: self.workers,
                },
            );
            let attempted = std::cell::Cell::new(ApplyMode::Upsert);
            let streamed = self.windows(plan, index, |plan, at, hook| {
                attempted.set(plan.apply);
                copy::apply_streamed(dst, plan, at, &reader, hook)
            });
            match streamed {
                Err(Error::Db(e))
                    if e.code.as_deref() == Some(copy::UNIQUE_VIOLATION)
                        && attempted.get() == ApplyMode::Append =>
                {
                    drop(reader);
                    self.switch_to_upsert()?;
                }
                other => return other,
            }
        }
    }

    /// The slice's windows, each read then applied (types the read-ahead cannot print).
    fn slice_in_turn(
        &self,
        plan: &WindowPlan<'_>,
        index: usize,
        src: &mut postgres::Client,
        dst: &mut postgres::Client,
    ) -> Result<bool, Error> {
        self.windows(plan, index, |plan, at, hook| {
            copy::apply_window(src, dst, plan, at, hook)
        })
    }

    /// The rest of one slice's windows, each applied by `apply`, then checkpointed.
    /// True when the slice is done, false when interrupted.
    fn windows<A>(&self, plan: &WindowPlan<'_>, index: usize, mut apply: A) -> Result<bool, Error>
    where
        A: FnMut(
            &WindowPlan<'_>,
            &WindowAt<'_>,
            &mut dyn FnMut(&WindowOutcome) -> Result<(), Error>,
        ) -> Result<WindowOutcome, Error>,
    {
        loop {
            if shutdown::requested() || self.lock().stop {
                return Ok(false);
            }
            let mut start = self.start_window(index);
            let from = start.record.lower.clone();
            let at = WindowAt {
                pass: start.record.pass,
                window: start.record.window,
                slice_index: index,
                slice: &start.slice,
                last_slice: start.last_slice,
                pass_upper: start.upper.as_deref(),
                from: &from,
                resume: Some(start.resume.clone()),
            };
            let this_plan = WindowPlan {
                apply: start.apply,
                ..*plan
            };
            let state = &self.job.state;
            let outcome = match apply(&this_plan, &at, &mut |o| {
                record_in_flight(state, &mut start.record, o)
            }) {
                Ok(o) => o,
                Err(Error::Interrupted) => return Ok(false),
                Err(e) => return Err(e),
            };
            let ends_pass = start.last_slice && outcome.slice_done;
            if !self.commit(&mut start.record, &outcome, ends_pass)? {
                return Ok(false);
            }
            if outcome.slice_done {
                return Ok(true);
            }
        }
    }

    /// Gives the slice's next window its number and in-flight record.
    fn start_window(&self, index: usize) -> Start {
        let mut inner = self.lock();
        let pass = &mut inner.pass;
        let number = pass.next_window;
        pass.next_window += 1;
        let lower = pass.progress[index].position.clone();
        let (rank, from) = pass.resume_point();
        Start {
            record: WindowRecord {
                pass: pass.pass,
                window: number,
                slice: index,
                lower: lower.clone(),
                end: lower,
                slice_done: false,
                rows_read: 0,
                rows_written: 0,
                status: WindowStatus::InFlight,
            },
            slice: pass.slices[index].clone(),
            last_slice: pass
                .progress
                .iter()
                .enumerate()
                .all(|(i, p)| i == index || p.done),
            resume: Resume { rank, from },
            apply: pass.apply,
            upper: pass.upper.clone(),
        }
    }

    /// Checkpoints a committed window, reports progress, keeps `--max-rate`. False:
    /// interrupted.
    fn commit(
        &self,
        window: &mut WindowRecord,
        outcome: &WindowOutcome,
        ends_pass: bool,
    ) -> Result<bool, Error> {
        let job = self.job;
        let rows_read = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            let checkpointing = Instant::now();
            checkpoint::commit(&job.state, &mut inner.pass, window, outcome)?;
            inner.bookkeeping += outcome.bookkeeping + checkpointing.elapsed();
            inner.closed |= ends_pass;
            inner.progress.update(&inner.pass);
            if inner.last_live.elapsed() >= Duration::from_secs(1) {
                crate::state::live::write_live(&job.spec, &job.state);
                inner.last_live = Instant::now();
            }
            inner.pass.rows_read
        };
        if let Some(rate) = job.spec.max_rate {
            // --max-rate: all workers together stay at or under the rows/s asked for,
            // measured over this run.
            let due = Duration::from_secs_f64((rows_read - self.rows_before) as f64 / rate as f64);
            if !shutdown::sleep(due.saturating_sub(self.started.elapsed())) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A window met a row already in the target: the pass continues as upsert (another
    /// worker may have switched it already).
    fn switch_to_upsert(&self) -> Result<(), Error> {
        let mut inner = self.lock();
        if inner.pass.apply == ApplyMode::Upsert {
            return Ok(());
        }
        inner.pass.apply = ApplyMode::Upsert;
        self.job.state.record_pass(&inner.pass)?;
        Ok(())
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

/// The receipt that says the pass finished, when its last windows ended their slices at
/// the same time and none could say it: its own transaction, no rows.
fn close_pass(job: &Job, pass: &mut PassRecord, plan: &WindowPlan<'_>) -> Result<(), Error> {
    let doing = "closing the pass";
    let mut dst = job.dest.get()?;
    let end = pass.end();
    let receipt = Receipt {
        pass: pass.pass,
        window: pass.next_window,
        slice: pass.slices.len(),
        end: end.clone(),
        slice_done: true,
        pass_finished: true,
        pass_upper: pass.upper.clone(),
        rows_read: 0,
        rows_written: 0,
        resume: Some(Resume {
            rank: (pass.slices.len() as u64) << 40,
            from: end,
        }),
    };
    pass.next_window += 1;
    dst.batch_execute(&plan.receipts.insert_sql(plan.job_id, &receipt))
        .on(Side::Destination, doing)?;
    Ok(())
}
