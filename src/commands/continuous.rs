//! `pgsync continuous`: a pass, a pause of `--delay`, again, until SIGINT/SIGTERM.
//! Transient failures (connection lost, server restarting, conflicts) are retried with a
//! capped exponential backoff for up to `--retry-for`; anything else stops with the error.

use super::{run_and_report, sweep_deletes_if_due, Outcome};
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
        if !sweep_deletes_if_due(&job, &summary, round)? {
            return Ok(Outcome::Interrupted);
        }
        if !shutdown::sleep(delay) {
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
