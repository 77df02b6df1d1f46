//! `pgsync verify`: compare, report, and with `--repair` fix the differing rows and compare
//! again. Exit 0 equal, 1 differences found, 2 could not verify (the diff(1) convention).

use super::retry::{self, Retried};
use super::Outcome;
use crate::error::Error;
use crate::job::databases::{open_pools, Databases};
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
    let (outcome, text) = verify_with(spec, &db, cmd)?;
    print!("{text}");
    Ok(outcome)
}

/// Verifies (and repairs) one table on open databases; the outcome and what to print (the
/// report, or its JSON document and a newline).
fn verify_with(
    spec: &JobSpec,
    db: &Databases,
    cmd: &VerifyCommand,
) -> Result<(Outcome, String), Error> {
    let compare = || retried(spec, || verify::run(spec, db, &cmd.options));
    let Some(before) = compare()? else {
        return Ok((Outcome::VerifyInterrupted, String::new()));
    };
    let mut text = String::new();
    if !cmd.json {
        text += &report::human(&before, cmd.max_rows);
    }
    if !cmd.repair || before.is_equal() {
        if cmd.json {
            text += &format!("{}\n", report::json(&before));
        }
        return Ok((outcome(&before), text));
    }
    let diffs: Vec<_> = before.real_differences().cloned().collect();
    let fixed = repair::repair(db, &diffs)?;
    let Some(after) = compare()? else {
        return Ok((Outcome::VerifyInterrupted, text));
    };
    if cmd.json {
        text += &format!("{}\n", report::json_repaired(&before, &fixed, &after));
    } else {
        text += &format!(
            "repair: {} rows copied again, {} rows deleted; verifying again\n",
            fixed.rows_written, fixed.rows_deleted
        );
        text += &report::human(&after, cmd.max_rows);
    }
    Ok((outcome(&after), text))
}

/// Verifies every table of a set, by name: a report and a result line per table, then a
/// summary. Exit 0 when all are equal, 1 when any differs, 2 when any could not be verified
/// (the others are still verified). With `--json`, one document `{"tables": [{"table",
/// "result" | "error"}]}`.
pub fn run_set(set: &crate::set::TableSet, cmd: &VerifyCommand) -> Result<Outcome, Error> {
    let while_verifying = |e: Error| Error::WhileVerifying(Box::new(e));
    let (source, dest) = open_pools(&set.base, 4).map_err(while_verifying)?;
    let mut members = set
        .members(&mut *source.get().map_err(|e| while_verifying(e.into()))?)
        .map_err(while_verifying)?;
    members.sort_by_key(|m| m.spec.table.to_string());
    let (mut equal, mut differ, mut failed, mut docs) = (0, 0, Vec::new(), Vec::new());
    for m in &members {
        let table = m.spec.table.to_string();
        let result = Databases::check(&m.spec, source.clone(), dest.clone())
            .and_then(|db| verify_with(&m.spec, &db, cmd));
        let line = match result {
            Ok((Outcome::VerifyInterrupted, _)) => return Ok(Outcome::VerifyInterrupted),
            Ok((outcome, text)) => {
                let same = outcome == Outcome::Done;
                if same {
                    equal += 1
                } else {
                    differ += 1
                }
                if cmd.json {
                    let result: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    docs.push(serde_json::json!({ "table": table, "result": result }));
                } else {
                    print!("{text}");
                }
                format!("{table}: {}", if same { "equal" } else { "differs" })
            }
            Err(e) => {
                let line = format!("{table}: could not verify: {e} — {}", e.hint());
                docs.push(serde_json::json!({ "table": table, "error": e.to_string() }));
                failed.push((table, e));
                line
            }
        };
        if !cmd.json {
            println!("{line}");
        }
    }
    if cmd.json {
        println!("{}", serde_json::json!({ "tables": docs }));
    } else {
        println!(
            "verify: {} tables: {equal} equal, {differ} differ, {} could not be verified",
            members.len(),
            failed.len()
        );
    }
    if !failed.is_empty() {
        let of = members.len();
        return Err(while_verifying(Error::TablesFailed { failed, of }));
    }
    Ok(if differ > 0 {
        Outcome::DifferencesFound
    } else {
        Outcome::Done
    })
}

fn outcome(r: &verify::VerifyReport) -> Outcome {
    if r.is_equal() {
        Outcome::Done
    } else {
        Outcome::DifferencesFound
    }
}
