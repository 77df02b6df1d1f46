//! `pgsync verify`: compare, report, and with `--repair` fix the differing rows and compare
//! again. Exit 0 equal, 1 differences found, 2 could not verify (the diff(1) convention).

use super::retry::{self, Retried};
use super::Outcome;
use crate::error::Error;
use crate::job::open::Databases;
use crate::job::JobSpec;
use crate::verify::{self, repair, report, VerifyOptions};

/// Options of the command beyond the range.
#[derive(Debug, Clone)]
pub struct VerifyCommand {
    /// What to compare.
    pub options: VerifyOptions,
    /// Most differing rows to print.
    pub max_rows: usize,
    /// Fix what differs, then verify again.
    pub repair: bool,
    /// JSON output.
    pub json: bool,
}

/// Runs verify. A failure names verify in its advice (`Error::WhileVerifying`).
pub fn run(spec: &JobSpec, cmd: &VerifyCommand) -> Result<Outcome, Error> {
    verify_and_repair(spec, cmd).map_err(|e| Error::WhileVerifying(Box::new(e)))
}

/// `attempt`, retried on transient failures (a dropped connection…) for `--retry-for`, as a
/// sync is; `None`: SIGINT/SIGTERM during a pause.
fn retried<T>(
    spec: &JobSpec,
    attempt: impl FnMut() -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    let done = retry::with_retries(
        &mut retry::RealClock,
        spec.retry_for,
        attempt,
        |e, pause| {
            let message = format!("{e}; verifying again in {:.1}s", pause.as_secs_f64());
            crate::runtime::output::note(&spec.output, "warn", &message);
        },
    )?;
    Ok(match done {
        Retried::Done(value) => Some(value),
        Retried::Interrupted => None,
    })
}

fn verify_and_repair(spec: &JobSpec, cmd: &VerifyCommand) -> Result<Outcome, Error> {
    // Opening is not retried, as for a sync: a wrong host or password fails at once.
    let db = Databases::open(spec)?;
    let compare = || retried(spec, || verify::run(spec, &db, &cmd.options));
    let Some(before) = compare()? else {
        return Ok(Outcome::VerifyInterrupted);
    };
    if !cmd.json {
        print!("{}", report::human(&before, cmd.max_rows));
    }
    if !cmd.repair || before.is_equal() {
        if cmd.json {
            println!("{}", report::json(&before));
        }
        return Ok(outcome(&before));
    }
    let diffs: Vec<_> = before.real_differences().cloned().collect();
    let fixed = repair::repair(&db, &diffs)?;
    let Some(after) = compare()? else {
        return Ok(Outcome::VerifyInterrupted);
    };
    if cmd.json {
        println!("{}", report::json_repaired(&before, &fixed, &after));
    } else {
        println!(
            "repair: {} rows copied again, {} rows deleted; verifying again",
            fixed.rows_written, fixed.rows_deleted
        );
        print!("{}", report::human(&after, cmd.max_rows));
    }
    Ok(outcome(&after))
}

fn outcome(r: &verify::VerifyReport) -> Outcome {
    if r.is_equal() {
        Outcome::Done
    } else {
        Outcome::DifferencesFound
    }
}
