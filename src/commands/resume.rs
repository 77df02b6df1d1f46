//! `pgsync resume`: continue the unfinished pass of this job (as the state and the
//! destination's receipts record it); a clear error when there is none. A diff job whose
//! diff pass was cut short runs a pass again (`single`): it compares first, so what the cut
//! pass applied is not applied twice.

use super::{run_and_report, Outcome};
use crate::error::Error;
use crate::job::Job;
use crate::job::JobSpec;
use crate::pass::Mode;

/// Continues the unfinished pass.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    let mut job = Job::open(spec)?;
    if diff_unfinished(&job) {
        return super::single::run_job(job);
    }
    Ok(match run_and_report(&mut job, Mode::Resume)? {
        Some(_) => Outcome::Done,
        None => Outcome::Interrupted,
    })
}

/// Continues every table of a set that has an unfinished pass.
pub fn run_set(set: &crate::set::TableSet) -> Result<Outcome, Error> {
    let run = super::set_run::SetRun::open(set)?;
    let started = std::time::Instant::now();
    let outcomes = run.round(Mode::Resume, 1)?;
    super::set_run::conclude(set, outcomes, started, Mode::Resume)
}

/// A diff job whose last diff pass did not apply every differing window.
pub fn diff_unfinished(job: &Job) -> bool {
    job.spec.mode == crate::cli::SyncMode::Diff
        && job
            .state
            .diff_pass()
            .unwrap_or(None)
            .is_some_and(|d| !d.finished)
}
