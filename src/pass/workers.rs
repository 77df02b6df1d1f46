//! The windows of a pass. `--jobs` workers (one by default) each take the next slice that
//! is neither done nor taken and copy its windows in key order (`slice.rs`), on their own
//! source and destination connections; slices are disjoint, so workers never touch the
//! same rows. With built-in cursor and key types each worker reads its slice ahead on a
//! thread of its own (`copy::readahead`) while its destination side commits; otherwise it
//! reads and applies windows in turn. The pass is shared behind one lock (`shared.rs`).

use super::progress::Progress;
use super::shared::SharedPass;
use super::slice::{copy_slice, SliceEnd, WindowReader};
use super::throttle::Throttle;
use crate::copy::printer::Printer;
use crate::copy::readahead::{ReadAhead, ReadPlan};
use crate::copy::{self, staging, DestConn, WindowPlan};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::job::Job;
use crate::protocol::receipts::{Receipt, Resume};
use crate::state::records::PassRecord;
use postgres::types::Type;
use std::time::{Duration, Instant};

/// How a run of the workers ended.
pub struct WorkersOutcome {
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
) -> Result<WorkersOutcome, Error> {
    let left = pass.progress.iter().filter(|p| !p.done).count();
    let workers = job.spec.jobs.clamp(1, left.max(1));
    let throttle = Throttle::new(job.spec.max_rate, started, pass.rows_read);
    let shared = SharedPass::new(job, pass.clone(), progress);
    let worker = Worker {
        job,
        shared: &shared,
        throttle: &throttle,
        plan,
        workers,
    };
    let results: Vec<Result<bool, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(|| worker.run())).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|payload| Err(panicked(payload.as_ref())))
            })
            .collect()
    });
    let left = shared.into_left();
    *pass = left.pass;
    let mut bookkeeping = left.bookkeeping;
    let mut finished = true;
    for result in results {
        finished &= result?;
    }
    if finished && pass.is_finished() && !left.closed {
        let closing = Instant::now();
        close_pass(job, pass)?;
        bookkeeping += closing.elapsed();
    }
    Ok(WorkersOutcome {
        finished: finished && pass.is_finished(),
        bookkeeping,
    })
}

/// A worker thread's panic, as an error that names it (exit 2, not 130).
fn panicked(payload: &(dyn std::any::Any + Send)) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    Error::WorkerPanicked { side: None, what }
}

/// How a worker reads: ahead, on a thread per slice (cursor and key columns' positions and
/// types), or in turn on its own source connection (types the read-ahead cannot print).
enum Reading {
    Ahead(Vec<(usize, Type)>),
    InTurn(Box<crate::db::pool::Conn>),
}

/// What every worker shares.
struct Worker<'w, 'a, 'p> {
    job: &'a Job,
    shared: &'w SharedPass<'a, 'p>,
    throttle: &'w Throttle,
    plan: &'w WindowPlan<'w>,
    /// Workers running (they share the read-ahead memory).
    workers: usize,
}

impl Worker<'_, '_, '_> {
    /// Slice after slice until none is left. False when stopped; a failure stops the
    /// other workers after their current window.
    fn run(&self) -> Result<bool, Error> {
        // A table of a set waits for one of the set's `--jobs` slots, held until its last slice.
        let _slot = self.job.share.as_ref().map(|s| s.slots.acquire(s.rank));
        let result = self.slices();
        if !matches!(result, Ok(true)) {
            self.shared.stop_all();
        }
        result
    }

    fn slices(&self) -> Result<bool, Error> {
        let job = self.job;
        let mut dest = job.dest.get()?;
        // Read-ahead needs built-in cursor and key types; otherwise the worker reads each
        // window on a source connection of its own, then applies it.
        let mut reading = match copy::watched_columns(&job.shape, &job.ks) {
            Some(watched) => Reading::Ahead(watched),
            None => Reading::InTurn(Box::new(job.source.get()?)),
        };
        staging::create(&mut dest, &job.shape, matches!(reading, Reading::InTurn(_)))?;
        let mut dest = DestConn::new(&mut dest);
        while let Some(index) = self.shared.take_slice() {
            let end = loop {
                let mut reader = match &mut reading {
                    Reading::Ahead(watched) => {
                        WindowReader::Ahead(self.read_ahead(index, watched)?)
                    }
                    Reading::InTurn(source) => WindowReader::InTurn(source),
                };
                let end = copy_slice(
                    job,
                    self.shared,
                    self.throttle,
                    self.plan,
                    index,
                    &mut reader,
                    &mut dest,
                )?;
                drop(reader);
                if end != SliceEnd::MetExistingRow {
                    break end;
                }
                self.shared.switch_to_upsert()?;
            };
            if end == SliceEnd::Stopped {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Starts reading slice `index` ahead from its last committed window.
    fn read_ahead(&self, index: usize, watched: &[(usize, Type)]) -> Result<ReadAhead, Error> {
        let (slice, from) = self.shared.slice_from(index);
        // A second connection prints the ends of windows cut from one statement.
        Ok(ReadAhead::start(
            self.job.source.get()?,
            Some(Printer::checkout(&self.job.source)),
            ReadPlan {
                shape: self.job.shape.clone(),
                ks: self.job.ks.clone(),
                slices: vec![slice],
                start_slice: 0,
                start: from,
                window: self.plan.window.clone(),
                watched: watched.to_vec(),
                readers: self.workers,
            },
        ))
    }
}

/// The receipt that says the pass finished, when its last windows ended their slices at
/// the same time and none could say it: its own transaction, no rows. Its resume point is
/// the finished pass's (`PassRecord::resume_point`: past the last slice, at the pass's end).
fn close_pass(job: &Job, pass: &mut PassRecord) -> Result<(), Error> {
    let (rank, from) = pass.resume_point();
    let receipt = Receipt {
        pass: pass.number,
        window: pass.next_window,
        slice: pass.slices.len(),
        end: pass.end(),
        slice_done: true,
        pass_finished: true,
        pass_upper: pass.upper.clone(),
        rows_read: 0,
        rows_written: 0,
        resume: Some(Resume { rank, from }),
    };
    pass.next_window += 1;
    let mut dest = job.dest.get()?;
    dest.batch_execute(&job.receipts.insert_sql(&job.spec.job_id, &receipt))
        .on(Side::Destination, "closing the pass")?;
    Ok(())
}
