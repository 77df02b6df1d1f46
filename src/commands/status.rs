//! `pgsync status`: a read-only view of the job's state — plan, windows committed, position,
//! watermark, last pass and last error — for people, or as JSON with `--json`. Reads only
//! the local state store (no database connection).

use super::Outcome;
use crate::error::Error;
use crate::job::JobSpec;
use crate::progress::rate;
use crate::session::open_state;
use serde::Serialize;

/// What `status --json` prints.
#[derive(Debug, Serialize)]
pub struct StatusView {
    /// Job identity (no password).
    pub job: String,
    /// Job id (names state and receipts).
    pub job_id: String,
    /// The current or last pass, if any.
    pub pass: Option<PassView>,
    /// Lower bound of the next pass.
    pub watermark: Option<String>,
    /// Last finished pass.
    pub last_pass: Option<LastPassView>,
    /// Last error reported by a run.
    pub last_error: Option<String>,
    /// Source transactions holding the next pass's start back (late commits).
    pub pending_transactions: Vec<u64>,
}

/// The pass in the state.
#[derive(Debug, Serialize)]
pub struct PassView {
    /// Number.
    pub number: u64,
    /// Finished or not.
    pub finished: bool,
    /// Slices done / total.
    pub slices_done: usize,
    /// Total slices.
    pub slices_total: usize,
    /// Windows committed.
    pub windows_committed: u64,
    /// Estimated windows in the pass.
    pub windows_estimated: u64,
    /// Rows read so far.
    pub rows_read: u64,
    /// Estimated rows in the pass.
    pub rows_estimated: u64,
    /// Committed position.
    pub position: String,
    /// Upper bound.
    pub upper: Option<String>,
    /// Windows recovered from the destination's receipts.
    pub windows_reconciled: u64,
    /// Start time (unix seconds).
    pub started_unix: u64,
}

/// The last finished pass.
#[derive(Debug, Serialize)]
pub struct LastPassView {
    /// Number.
    pub number: u64,
    /// Rows read.
    pub rows_read: u64,
    /// Rows written.
    pub rows_written: u64,
    /// Windows.
    pub windows: u64,
    /// Seconds.
    pub seconds: f64,
    /// Rows per second.
    pub rows_per_second: f64,
    /// End time (unix seconds).
    pub finished_unix: u64,
}

/// Prints the status.
pub fn run(spec: &JobSpec, json: bool) -> Result<Outcome, Error> {
    let (_store, state) = open_state(spec)?;
    let window_rows = spec.window_rows.max(1);
    let view = StatusView {
        job: spec.identity.clone(),
        job_id: spec.job_id.clone(),
        pass: state.pass()?.map(|p| PassView {
            number: p.pass,
            finished: p.is_finished(),
            slices_done: p.current_slice.min(p.slices.len()),
            slices_total: p.slices.len(),
            windows_committed: p.windows_committed,
            windows_estimated: p
                .estimated_rows()
                .div_ceil(window_rows)
                .max(p.windows_committed),
            rows_read: p.rows_read,
            rows_estimated: p.estimated_rows(),
            position: p.position.to_string(),
            upper: p.upper.clone(),
            windows_reconciled: p.windows_reconciled,
            started_unix: p.started_unix,
        }),
        watermark: state.watermark()?.map(|w| w.position.to_string()),
        last_pass: state.last_pass()?.map(|l| LastPassView {
            number: l.pass,
            rows_read: l.rows_read,
            rows_written: l.rows_written,
            windows: l.windows,
            seconds: l.seconds,
            rows_per_second: rate(l.rows_read, l.seconds),
            finished_unix: l.finished_unix,
        }),
        last_error: state.last_error()?,
        pending_transactions: state.holdback()?.pending.iter().map(|p| p.xid).collect(),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&view).unwrap_or_default()
        );
    } else {
        print!("{}", human(&view));
    }
    Ok(Outcome::Done)
}

fn human(v: &StatusView) -> String {
    let mut out = format!("job:        {}\njob id:     {}\n", v.job, v.job_id);
    match &v.pass {
        None => out.push_str("pass:       none yet\n"),
        Some(p) => out.push_str(&format!(
            "pass:       {} ({})\nslices:     {}/{}\nwindows:    {} committed of ~{}\nrows:       {} read of ~{}\nposition:   {}\nupper:      {}\n",
            p.number,
            if p.finished { "finished" } else { "unfinished: `pgsync resume` continues it" },
            p.slices_done,
            p.slices_total,
            p.windows_committed,
            p.windows_estimated,
            p.rows_read,
            p.rows_estimated,
            p.position,
            p.upper.as_deref().unwrap_or("-"),
        )),
    }
    out.push_str(&format!(
        "watermark:  {}\n",
        v.watermark.as_deref().unwrap_or("-")
    ));
    if let Some(l) = &v.last_pass {
        out.push_str(&format!(
            "last pass:  {}: {} rows read, {} written, {} windows, {:.1}s, {:.0} rows/s\n",
            l.number, l.rows_read, l.rows_written, l.windows, l.seconds, l.rows_per_second
        ));
    }
    if !v.pending_transactions.is_empty() {
        out.push_str(&format!(
            "held back:  {} source transaction(s) open or committed since the last snapshot (late commits)\n",
            v.pending_transactions.len()
        ));
    }
    if let Some(e) = &v.last_error {
        out.push_str(&format!("last error: {e}\n"));
    }
    out
}
