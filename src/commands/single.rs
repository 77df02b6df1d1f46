//! `pgsync single`: one incremental pass, then exit. An unfinished plan (after a crash or
//! an interrupt) is continued first, then a new pass from its end brings the rest.

use super::{run_and_report, Outcome};
use crate::error::Error;
use crate::job::Job;
use crate::job::JobSpec;
use crate::pass::Mode;

/// Runs one pass.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    let mut job = Job::open(spec)?;
    let Some(summary) = run_and_report(&mut job, Mode::Single)? else {
        return Ok(Outcome::Interrupted);
    };
    if summary.continued {
        // The unfinished plan is done; now the pass that was asked for.
        if run_and_report(&mut job, Mode::Single)?.is_none() {
            return Ok(Outcome::Interrupted);
        }
    }
    Ok(Outcome::Done)
}
