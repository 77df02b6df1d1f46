//! `pgsync verify`: compare, report, and with `--repair` fix the differing rows and compare
//! again. Exit 0 equal, 1 differences found, 2 could not verify (the diff(1) convention).

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

/// Runs verify.
pub fn run(spec: &JobSpec, cmd: &VerifyCommand) -> Result<Outcome, Error> {
    let db = Databases::open(spec)?;
    let before = verify::run(spec, &db, &cmd.options)?;
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
    let after = verify::run(spec, &db, &cmd.options)?;
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
