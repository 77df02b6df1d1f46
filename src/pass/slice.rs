//! One slice's windows, in key order, each through checkpoint-protocol.md step 1 and
//! then steps 2–3. `copy_slice` reads top to bottom: stage the rows, record the window as
//! in flight, commit rows and receipt together, checkpoint.

use super::shared::SharedPass;
use super::throttle::Throttle;
use crate::copy::readahead::ReadAhead;
use crate::copy::{self, DestConn, Staged, WindowPlan};
use crate::error::Error;
use crate::job::Job;
use crate::keyspace::{Position, SliceKind};
use crate::runtime::shutdown;
use crate::state::records::ApplyMode;
use std::time::Instant;

/// How a slice's run of windows ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceEnd {
    /// Every window of the slice is committed.
    Done,
    /// SIGINT/SIGTERM, or another worker failed: stopped after the last checkpoint.
    Stopped,
    /// An append met a row already in the target (a row moved forward during the load);
    /// nothing of that window was recorded. The pass goes on as upsert from the slice's
    /// last committed window.
    MetExistingRow,
}

/// Where a worker's windows come from.
pub enum WindowReader<'r> {
    /// A read-ahead thread reading the slice from its last committed window.
    Ahead(ReadAhead),
    /// The worker's own source connection, one window at a time (cursor or key types the
    /// read-ahead cannot print).
    InTurn(&'r mut postgres::Client),
}

impl WindowReader<'_> {
    fn stage<'d>(
        &mut self,
        dest: &'d mut DestConn<'_>,
        plan: &WindowPlan<'_>,
        mode: ApplyMode,
        from: &Position,
        kind: &SliceKind,
    ) -> Result<Staged<'d>, Error> {
        match self {
            // The reader follows the slice itself, from where it was started.
            WindowReader::Ahead(reader) => copy::stage_streamed(dest, plan, mode, reader),
            WindowReader::InTurn(source) => {
                copy::stage_window(source, dest, plan, mode, from, kind)
            }
        }
    }
}

/// The rest of slice `index`'s windows.
pub fn copy_slice(
    job: &Job,
    shared: &SharedPass<'_, '_>,
    throttle: &Throttle,
    plan: &WindowPlan<'_>,
    index: usize,
    reader: &mut WindowReader<'_>,
    dest: &mut DestConn<'_>,
) -> Result<SliceEnd, Error> {
    // Windows sized by time measure each from the previous commit: with read-ahead the
    // source's next read overlaps this commit, so that is the pace of the pipeline.
    let mut since_commit = Instant::now();
    loop {
        if shutdown::requested() || shared.stopped() {
            return Ok(SliceEnd::Stopped);
        }
        let mut start = shared.start_window(index);
        // Step 1a: the rows, in an open destination transaction.
        let staged = match reader.stage(
            dest,
            plan,
            start.apply,
            &start.record.lower,
            &start.slice.kind,
        ) {
            Ok(Staged::Ready(staged)) => staged,
            Ok(Staged::Interrupted) => return Ok(SliceEnd::Stopped),
            Err(e) if start.apply == ApplyMode::Append && copy::met_existing_row(&e) => {
                return Ok(SliceEnd::MetExistingRow)
            }
            Err(e) => return Err(e),
        };
        // Step 1b: the window is in flight, with its end, before anything commits.
        let bookkeeping = Instant::now();
        let expected = staged.outcome();
        start.record.end = expected.end.clone();
        start.record.slice_done = expected.slice_done;
        job.state.record_window(&start.record)?;
        let receipt = start.receipt(expected);
        let receipt_sql = if staged.upserts_at_commit() {
            job.receipts
                .insert_applying_sql(&job.spec.job_id, &receipt, plan.upsert_sql)
        } else {
            job.receipts.insert_sql(&job.spec.job_id, &receipt)
        };
        let bookkeeping = bookkeeping.elapsed();
        // Step 1c: rows (upserted from staging now, or appended already) and receipt
        // COMMIT in one round trip.
        let outcome = staged.commit_with(&receipt_sql)?;
        plan.window.observe(
            outcome.rows_read,
            outcome.bytes,
            std::mem::replace(&mut since_commit, Instant::now()).elapsed(),
        );
        // Steps 2 and 3: mark it committed, advance the pass, flush.
        let rows_read = shared.checkpoint(
            &mut start.record,
            &outcome,
            receipt.pass_finished,
            bookkeeping,
        )?;
        if !throttle.wait(rows_read) {
            return Ok(SliceEnd::Stopped);
        }
        if outcome.slice_done {
            return Ok(SliceEnd::Done);
        }
    }
}
