//! `pgsync continuous`: a pass, a pause of `--delay`, again, until SIGINT/SIGTERM.
//! Transient failures (connection lost, server restarting, conflicts) are retried with a
//! capped exponential backoff for up to `--retry-for`; anything else stops with the error.

use super::{after_pass, run_and_report, Outcome};
use crate::error::Error;
use crate::job::Job;
use crate::job::JobSpec;
use crate::pass::{Mode, PassSummary};
use crate::runtime::shutdown;

/// Runs passes until interrupted. Each pass retries transient failures for up to
/// `--retry-for`; a failure that outlasts it, or a permanent one, ends the command.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    let delay = spec.delay;
    let mut job = Job::open(spec)?;
    let mut round = 0u64;
    loop {
        round += 1;
        let Some(summary) = run_and_report(&mut job, Mode::Single)? else {
            return Ok(Outcome::Interrupted);
        };
        if !after_pass(&job, &summary, round)? {
            return Ok(Outcome::Interrupted);
        }
        if !shutdown::sleep(delay) {
            return Ok(Outcome::Interrupted);
        }
    }
}

/// Rounds over a set until interrupted: each round resolves the members again (a table that
/// appeared is picked up); a table's failure is reported and the others go on; a failure of
/// the round itself (the source's catalog unreadable) ends the command unless transient.
pub fn run_set(set: &crate::set::TableSet) -> Result<Outcome, Error> {
    use super::set_run::{conclude, SetRun};
    let run = SetRun::open(set)?;
    let mut round = 0u64;
    loop {
        round += 1;
        let started = std::time::Instant::now();
        let concluded = run
            .round(Mode::Single, round)
            .and_then(|outcomes| conclude(set, outcomes, started, Mode::Single));
        match concluded {
            Ok(Outcome::Done) => {}
            Ok(other) => return Ok(other),
            Err(e @ Error::TablesFailed { .. }) => {
                let message = format!("{e}; the next round tries them again");
                crate::runtime::output::note(&set.base.output, "warn", &message);
            }
            Err(e) if e.is_transient() => {
                let message = format!("{e}; trying again after --delay");
                crate::runtime::output::note(&set.base.output, "warn", &message);
            }
            Err(e) => return Err(e),
        }
        if !shutdown::sleep(set.base.delay) {
            return Ok(Outcome::Interrupted);
        }
    }
}

/// Stores the last error (or clears it after a good pass) for `status`; best effort.
pub fn remember_error(job: &Job, result: &Result<PassSummary, Error>) {
    let message = match result {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    let _ = job.state.set_last_error(message.as_deref());
}
