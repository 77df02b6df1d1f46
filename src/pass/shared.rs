//! The pass shared by the `--jobs` workers, behind one lock: which slices are taken, the
//! window numbers it gives out, the checkpoint of each committed window, progress and the
//! live status. Nothing here talks to a database; the state store is the only I/O.

use super::progress::Progress;
use crate::copy::WindowOutcome;
use crate::error::Error;
use crate::job::Job;
use crate::keyspace::{Position, Slice};
use crate::protocol::checkpoint;
use crate::protocol::receipts::{Receipt, Resume};
use crate::state::records::{ApplyMode, PassRecord, WindowRecord, WindowStatus};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The pass and what the workers share about it.
pub struct SharedPass<'a, 'p> {
    job: &'a Job,
    inner: Mutex<PassUnderLock<'p>>,
}

/// What the lock guards.
struct PassUnderLock<'p> {
    pass: PassRecord,
    /// Slices a worker has taken.
    taken: Vec<bool>,
    progress: &'p mut Progress,
    last_live: Instant,
    /// A worker failed or was interrupted: the others stop after their current window.
    stop: bool,
    /// A committed window's receipt said the pass finished.
    closed: bool,
    /// Bookkeeping time so far, summed over the workers.
    bookkeeping: Duration,
}

/// What a run of the workers leaves: the pass as they advanced it, whether a window's
/// receipt closed it, and the bookkeeping time.
pub struct Left {
    pub pass: PassRecord,
    /// A window's receipt said the pass finished.
    pub closed: bool,
    /// Time spent on in-flight records, receipts and checkpoints, summed over the workers.
    pub bookkeeping: Duration,
}

/// What a worker knows about the window it starts.
pub struct WindowStart {
    /// Its in-flight record (number, slice, lower bound).
    pub record: WindowRecord,
    pub slice: Slice,
    /// Every other slice is done: when this window ends its slice, it ends the pass.
    pub last_slice: bool,
    /// Where the pass could go on from without the local state.
    pub resume: Resume,
    /// How the pass applies windows now.
    pub apply: ApplyMode,
    /// The pass's upper bound.
    pub upper: Option<String>,
}

impl WindowStart {
    /// The receipt of this window once `outcome` is known; it commits with the rows.
    pub fn receipt(&self, outcome: &WindowOutcome) -> Receipt {
        Receipt {
            pass: self.record.pass,
            window: self.record.window,
            slice: self.record.slice,
            end: outcome.end.clone(),
            slice_done: outcome.slice_done,
            pass_finished: outcome.slice_done && self.last_slice,
            pass_upper: self.upper.clone(),
            rows_read: outcome.rows_read,
            rows_written: outcome.rows_written,
            resume: Some(self.resume.clone()),
        }
    }
}

impl<'a, 'p> SharedPass<'a, 'p> {
    /// Shares `pass` among the workers of `job`.
    pub fn new(job: &'a Job, pass: PassRecord, progress: &'p mut Progress) -> Self {
        SharedPass {
            job,
            inner: Mutex::new(PassUnderLock {
                taken: vec![false; pass.slices.len()],
                pass,
                progress,
                last_live: Instant::now(),
                stop: false,
                closed: false,
                bookkeeping: Duration::ZERO,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PassUnderLock<'p>> {
        // A worker that panicked poisons the lock; `workers::run` reports the panic, and the
        // pass is only read afterwards to be recorded (the receipts decide on resume).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The workers are done: what they left.
    pub fn into_left(self) -> Left {
        let inner = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        Left {
            pass: inner.pass,
            closed: inner.closed,
            bookkeeping: inner.bookkeeping,
        }
    }

    /// Tells the other workers to stop after their current window.
    pub fn stop_all(&self) {
        self.lock().stop = true;
    }

    /// A worker asked the others to stop.
    pub fn stopped(&self) -> bool {
        self.lock().stop
    }

    /// Takes the first slice neither done nor taken.
    pub fn take_slice(&self) -> Option<usize> {
        let mut inner = self.lock();
        if inner.stop {
            return None;
        }
        let index =
            (0..inner.taken.len()).find(|&i| !inner.taken[i] && !inner.pass.progress[i].done)?;
        inner.taken[index] = true;
        Some(index)
    }

    /// A slice and its last committed position.
    pub fn slice_from(&self, index: usize) -> (Slice, Position) {
        let inner = self.lock();
        let p = &inner.pass;
        (p.slices[index].clone(), p.progress[index].position.clone())
    }

    /// Gives the slice's next window its number and in-flight record.
    pub fn start_window(&self, index: usize) -> WindowStart {
        let mut inner = self.lock();
        let pass = &mut inner.pass;
        let number = pass.next_window;
        pass.next_window += 1;
        let lower = pass.progress[index].position.clone();
        let (rank, from) = pass.resume_point();
        WindowStart {
            record: WindowRecord {
                pass: pass.number,
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

    /// Checkpoints a window whose COMMIT returned (checkpoint-protocol.md steps 2 and 3),
    /// reports progress, and returns the rows the pass has read. `bookkeeping` is the
    /// window's own bookkeeping time, added to the checkpoint's.
    pub fn checkpoint(
        &self,
        window: &mut WindowRecord,
        outcome: &WindowOutcome,
        ends_pass: bool,
        bookkeeping: Duration,
    ) -> Result<u64, Error> {
        let job = self.job;
        let mut inner = self.lock();
        let inner = &mut *inner;
        let checkpointing = Instant::now();
        checkpoint::commit(&job.state, &mut inner.pass, window, outcome)?;
        inner.bookkeeping += bookkeeping + checkpointing.elapsed();
        inner.closed |= ends_pass;
        inner.progress.update(&inner.pass);
        if inner.last_live.elapsed() >= Duration::from_secs(1) {
            crate::job::status::write_live(&job.spec, &job.state);
            inner.last_live = Instant::now();
        }
        Ok(inner.pass.rows_read)
    }

    /// A window met a row already in the target: the pass continues as upsert (another
    /// worker may have switched it already).
    pub fn switch_to_upsert(&self) -> Result<(), Error> {
        let mut inner = self.lock();
        if inner.pass.apply == ApplyMode::Upsert {
            return Ok(());
        }
        inner.pass.apply = ApplyMode::Upsert;
        self.job.state.record_pass(&inner.pass)?;
        Ok(())
    }
}
