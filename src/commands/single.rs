//! `pgsync single`: one incremental pass, then exit. An unfinished plan (after a crash or
//! an interrupt) is continued first, then a new pass from its end brings the rest.

use super::{report, Outcome};
use crate::error::Error;
use crate::job::Job;
use crate::job::JobSpec;
use crate::pass::Mode;

/// Runs one pass.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    let mut job = Job::open(spec)?;
    let summary = super::run_pass_with_retries(&mut job, Mode::Single)?;
    let outcome = report(&summary);
    if outcome == Outcome::Done && summary.continued {
        // The unfinished plan is done; now the pass that was asked for.
        let summary = super::run_pass_with_retries(&mut job, Mode::Single)?;
        return Ok(report(&summary));
    }
    Ok(outcome)
}
