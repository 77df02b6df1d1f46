//! `pgsync resume`: continue the unfinished pass of this job (as the state and the
//! destination's receipts record it); a clear error when there is none.

use super::{report, Outcome};
use crate::error::Error;
use crate::job::Job;
use crate::job::JobSpec;
use crate::pass::Mode;

/// Continues the unfinished pass.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    let mut job = Job::open(spec)?;
    let summary = super::run_pass_with_retries(&mut job, Mode::Resume)?;
    Ok(report(&summary))
}
