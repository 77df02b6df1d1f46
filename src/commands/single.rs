//! `pgsync single`: one incremental pass, then exit. An unfinished plan (after a crash or
//! an interrupt) is continued first, then a new pass from its end brings the rest.

use super::{after_pass, run_and_report, Outcome};
use crate::error::Error;
use crate::job::Job;
use crate::job::JobSpec;
use crate::pass::Mode;

/// Runs one pass.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    run_job(Job::open(spec)?)
}

/// Runs one pass of an open job (a diff job: its cursor pass, then its diff pass).
pub fn run_job(mut job: Job) -> Result<Outcome, Error> {
    let Some(mut summary) = run_and_report(&mut job, Mode::Single)? else {
        return Ok(Outcome::Interrupted);
    };
    if summary.continued {
        // The unfinished plan is done; now the pass that was asked for.
        match run_and_report(&mut job, Mode::Single)? {
            Some(next) => summary = next,
            None => return Ok(Outcome::Interrupted),
        }
    }
    if !after_pass(&job, &summary, 1)? {
        return Ok(Outcome::Interrupted);
    }
    Ok(Outcome::Done)
}

/// One pass of every table of a set (`commands/set_run.rs`).
pub fn run_set(set: &crate::set::TableSet) -> Result<Outcome, Error> {
    let run = super::set_run::SetRun::open(set)?;
    let started = std::time::Instant::now();
    let outcomes = run.round(Mode::Single, 1)?;
    super::set_run::conclude(set, outcomes, started, Mode::Single)
}
