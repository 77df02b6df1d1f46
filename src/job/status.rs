//! The job's status as data: what `status` prints, built from the state store, and the
//! live snapshot a running sync writes next to the store (`live-<job id>.json`, replaced
//! atomically at most once a second), since sled lets one process open the store at a time.

use crate::job::JobSpec;
use crate::runtime::output::{rate, unix_now};
use crate::state::records::{Connections, DiffRecord};
use crate::state::{JobState, StateError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `status --json` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    pub pending_transactions: Vec<String>,
    /// How each side was connected on the last run (sslmode asked, encryption the server
    /// reported).
    pub connections: Option<Connections>,
    /// Set when the figures come from a running sync's live snapshot.
    pub running: Option<Running>,
    /// A diff job's current or last diff pass (`--mode diff`).
    #[serde(default)]
    pub diff_pass: Option<DiffRecord>,
}

/// A sync in progress, as its live snapshot says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Running {
    /// Its process id.
    pub pid: u32,
    /// When it wrote the snapshot (unix seconds).
    pub updated_unix: u64,
}

/// The pass in the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Builds the status from the job's records.
pub fn view(spec: &JobSpec, state: &JobState) -> Result<StatusView, StateError> {
    Ok(StatusView {
        diff_pass: state.diff_pass()?,
        job: spec.identity.clone(),
        job_id: spec.job_id.clone(),
        pass: state.pass()?.map(|p| PassView {
            number: p.number,
            finished: p.is_finished(),
            slices_done: p.slices_done(),
            slices_total: p.slices.len(),
            windows_committed: p.windows_committed,
            // Windows sized by time: as large as the pass's windows so far.
            windows_estimated: p
                .estimated_rows()
                .div_ceil(match p.windows_committed {
                    0 => spec
                        .first_window_rows(state.paces().expected(p.apply))
                        .max(1),
                    n => (p.rows_read / n).max(1),
                })
                .max(p.windows_committed),
            rows_read: p.rows_read,
            rows_estimated: p.estimated_rows(),
            position: p.position().to_string(),
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
        pending_transactions: state
            .holdback()?
            .pending
            .iter()
            .map(|p| crate::keyspace::late_commits::describe(p.xid))
            .collect(),
        connections: state.connections()?,
        running: None,
    })
}

/// Where a job's live snapshot lives.
pub fn live_path(spec: &JobSpec) -> PathBuf {
    spec.state_dir.join(format!("live-{}.json", spec.job_id))
}

/// Writes the live snapshot (write to a temp file, then rename: readers never see half).
pub fn write_live(spec: &JobSpec, state: &JobState) {
    let Ok(mut v) = view(spec, state) else { return };
    v.running = Some(Running {
        pid: std::process::id(),
        updated_unix: unix_now(),
    });
    let path = live_path(spec);
    let tmp = path.with_extension("json.tmp");
    if let Ok(text) = serde_json::to_string(&v) {
        let written = crate::state::private_file_options()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
        if written.is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

/// Reads the live snapshot, if any.
pub fn read_live(spec: &JobSpec) -> Option<StatusView> {
    serde_json::from_slice(&std::fs::read(live_path(spec)).ok()?).ok()
}
