//! `pgsync resume`: continue the unfinished pass of this job (as the state and the
//! destination's receipts record it); a clear error when there is none.

use super::{run_and_report, Outcome};
use crate::error::Error;
use crate::job::Job;
use crate::job::JobSpec;
use crate::pass::Mode;

/// Continues the unfinished pass.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    let mut job = Job::open(spec)?;
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
