//! `pgsync continuous`: a pass, a pause of `--delay`, again, until SIGINT/SIGTERM.
//! Transient failures (connection lost, server restarting, conflicts) are retried with a
//! capped exponential backoff; anything else stops with the error.

use super::{report, Outcome};
use crate::error::Error;
use crate::job::JobSpec;
use crate::pass::{self, Mode, PassSummary};
use crate::session::Session;
use crate::shutdown;
use std::time::Duration;

/// Longest pause between retries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Runs passes until interrupted.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    let delay = spec.delay;
    let mut session = Session::open(spec)?;
    let mut backoff = Duration::from_secs(1);
    loop {
        let result = pass::run(&mut session, Mode::Single);
        remember_error(&session, &result);
        let pause = match result {
            Ok(summary) => {
                if report(&summary) == Outcome::Interrupted {
                    return Ok(Outcome::Interrupted);
                }
                backoff = Duration::from_secs(1);
                delay
            }
            Err(Error::Interrupted) => return Ok(Outcome::Interrupted),
            Err(e) if e.is_transient() => {
                eprintln!("pgsync: {e}; retrying in {}s", backoff.as_secs());
                let pause = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                pause
            }
            Err(e) => return Err(e),
        };
        if !shutdown::sleep(pause) {
            return Ok(Outcome::Interrupted);
        }
    }
}

/// Stores the last error (or clears it after a good pass) for `status`; best effort.
pub fn remember_error(session: &Session, result: &Result<PassSummary, Error>) {
    let message = match result {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    let _ = session.state.set_last_error(message.as_deref());
}
