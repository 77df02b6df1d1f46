//! `pgsync single`: one pass — continue an unfinished plan if there is one, else plan a new
//! pass from the committed watermark — then exit.

use super::{report, Outcome};
use crate::error::Error;
use crate::job::JobSpec;
use crate::pass::Mode;
use crate::session::Session;

/// Runs one pass.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    let mut session = Session::open(spec)?;
    let summary = super::run_pass_with_retries(&mut session, Mode::Single)?;
    Ok(report(&summary))
}
