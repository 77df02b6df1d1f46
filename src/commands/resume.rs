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
