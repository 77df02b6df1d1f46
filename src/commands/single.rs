//! `pgsync single`: one incremental pass, then exit. An unfinished plan (after a crash or
//! an interrupt) is continued first, then a new pass from its end brings the rest.

use super::{run_and_report, sweep_deletes_if_due, Outcome};
use crate::error::Error;
use crate::job::Job;
use crate::job::JobSpec;
use crate::pass::Mode;

/// Runs one pass.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    let mut job = Job::open(spec)?;
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
    if !sweep_deletes_if_due(&job, &summary, 1)? {
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
