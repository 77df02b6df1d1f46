//! Dispatch: each subcommand runs and returns an `Outcome`; `main` turns it into the exit
//! code (0 done, 130 interrupted) or prints the error (exit 2).

pub mod continuous;
pub mod plan;
pub mod resume;
pub mod retry;
pub mod set_run;
pub mod single;
pub mod status;
pub mod verify;

use crate::cli::Command;
use crate::db::conninfo::ProcessEnv;
use crate::error::Error;
use crate::job::Job;
use crate::job::JobSpec;
use crate::pass::{self, Mode, PassSummary};
use crate::runtime::output::rate;
use crate::set::TableSet;
use retry::Retried;

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Work done (exit 0).
    Done,
    /// Differences found (verify; exit 1).
    DifferencesFound,
    /// Stopped by SIGINT/SIGTERM after a clean checkpoint (exit 130; `resume` continues).
    Interrupted,
    /// Stopped by SIGINT/SIGTERM with nothing to continue: a verify (exit 130).
    VerifyInterrupted,
}

/// Resolves a command's job arguments and installs the logger its output options ask for.
fn resolve(args: &crate::cli::JobArgs) -> Result<JobSpec, Error> {
    let spec = JobSpec::resolve(args, &ProcessEnv)?;
    crate::runtime::output::install_logger(&spec.output);
    for warning in spec.source.warnings.iter().chain(&spec.dest.warnings) {
        crate::runtime::output::note(&spec.output, "warn", warning);
    }
    Ok(spec)
}

/// `resolve`, and the set of tables the arguments name when they name more than one table.
fn resolve_set(args: &crate::cli::JobArgs) -> Result<(JobSpec, Option<TableSet>), Error> {
    let spec = resolve(args)?;
    let set = TableSet::from_args(&spec, args)?;
    Ok((spec, set))
}

/// Runs a parsed command.
pub fn run(command: Command) -> Result<Outcome, Error> {
    match command {
        Command::Single(args) => match resolve_set(&args)? {
            (spec, None) => single::run(spec),
            (_, Some(set)) => single::run_set(&set),
        },
        Command::Continuous(args) => match resolve_set(&args)? {
            (spec, None) => continuous::run(spec),
            (_, Some(set)) => continuous::run_set(&set),
        },
        Command::Resume(args) => match resolve_set(&args)? {
            (spec, None) => resume::run(spec),
            (_, Some(set)) => resume::run_set(&set),
        },
        Command::Status(args) => match resolve_set(&args.job)? {
            (spec, None) => status::run(&spec, args.json),
            (_, Some(set)) => status::run_set(&set, args.json),
        },
        Command::Plan(args) => match resolve_set(&args)? {
            (spec, None) => plan::run(spec),
            (_, Some(set)) => plan::run_set(&set),
        },
        Command::Completions { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "pgsync", &mut std::io::stdout());
            Ok(Outcome::Done)
        }
        Command::Man => {
            let cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| Error::Usage(format!("cannot write the man page: {e}")))?;
            Ok(Outcome::Done)
        }
        Command::Verify(args) => {
            let (spec, set) = resolve_set(&args.job)?;
            let options = crate::verify::VerifyOptions {
                all: args.all,
                from: args.from.clone(),
                to: args.to.clone(),
                window_rows: args.job.window_size.unwrap_or(100_000),
                progress: !args.job.quiet,
                chunk_blocks: args.chunk_blocks,
                text_hash: args.text_hash,
                keys_only: false,
                skip_window_sums: false,
                whole_first: false,
            };
            let cmd = verify::VerifyCommand {
                options,
                max_rows: args.max_rows,
                repair: args.repair,
                json: args.json,
            };
            match set {
                None => verify::run(&spec, &cmd),
                Some(set) => verify::run_set(&set, &cmd),
            }
        }
    }
}

/// Runs a pass, retrying transient failures (connection lost, server restarting,
/// serialization failures, deadlocks) with capped exponential back-off for up to
/// `--retry-for`; every retry continues from the last checkpoint. Permanent errors return
/// at once.
pub fn run_pass_with_retries(job: &mut Job, mode: Mode) -> Result<Retried<PassSummary>, Error> {
    run_planned_with_retries(job, mode, None)
}

/// As `run_pass_with_retries`, the first attempt copying the pass `planned` already (its
/// planning's error, if it failed, counts as the first attempt's).
pub fn run_planned_with_retries(
    job: &mut Job,
    mode: Mode,
    planned: Option<Result<pass::Planned, Error>>,
) -> Result<Retried<PassSummary>, Error> {
    let output = job.spec.output;
    let retry_for = job.spec.retry_for;
    let mut planned = planned;
    retry::with_retries(
        &mut retry::RealClock,
        retry_for,
        || {
            let result = match planned.take() {
                Some(planned) => planned.and_then(|p| pass::copy(job, p)),
                None => pass::run(job, mode),
            };
            continuous::remember_error(job, &result);
            result
        },
        |e, pause| {
            let message = format!(
                "{e}; retrying in {:.1}s from the last checkpoint",
                pause.as_secs_f64()
            );
            crate::runtime::output::note(&output, "warn", &message);
        },
    )
}

/// Runs a pass with retries and prints its summary line; the summary, or `None` when the
/// pass was interrupted (during a window or a back-off pause).
pub fn run_and_report(job: &mut Job, mode: Mode) -> Result<Option<PassSummary>, Error> {
    match run_pass_with_retries(job, mode)? {
        Retried::Done(summary) => Ok((report(&summary) == Outcome::Done).then_some(summary)),
        Retried::Interrupted => Ok(None),
    }
}

/// After a finished pass: a diff job's diff pass (every pass), else the `--deletes` sweep
/// when it is due (the `round`-th pass of this run, every `--deletes-every` passes); each
/// retried like a pass, with its line. `false` when interrupted.
pub fn after_pass(job: &Job, summary: &PassSummary, round: u64) -> Result<bool, Error> {
    if !summary.finished {
        return Ok(true);
    }
    if job.spec.mode == crate::cli::SyncMode::Diff {
        return diff_pass(job, summary.pass);
    }
    let Some(every) = job.spec.deletes_every else {
        return Ok(true);
    };
    if !round.is_multiple_of(every) {
        return Ok(true);
    }
    let db = job.databases();
    let swept = retried(job, "the deletes", || {
        crate::verify::deletes::sweep(&job.spec, &db)
    })?;
    match swept {
        Retried::Done(d) => {
            println!(
                "{}pass {} deletes: {} rows deleted (keys the source no longer has), {} windows compared in {:.2}s",
                table_prefix(job), summary.pass, d.rows_deleted, d.windows, d.seconds
            );
            Ok(true)
        }
        Retried::Interrupted => Ok(false),
    }
}

/// A diff job's diff pass after its cursor pass `pass`, retried, with its line (and its
/// timings with `-v`). `false` when interrupted.
fn diff_pass(job: &Job, pass: u64) -> Result<bool, Error> {
    let diffed = retried(job, "the diff pass", || {
        crate::verify::diff_pass::run(job, pass)
    })?;
    let Retried::Done(Some(d)) = diffed else {
        return Ok(false);
    };
    let r = &d.record;
    let seconds = (d.compare + d.apply).as_secs_f64();
    println!(
        "{}pass {pass} diff: {} rows compared in {} windows, {} differed: {} rows written, {} deleted in {seconds:.2}s",
        table_prefix(job),
        d.rows_compared,
        r.windows,
        r.differing_windows,
        r.rows_written,
        r.rows_deleted,
    );
    log::debug!(
        "{}pass {pass} diff timings: comparing {:.1} ms, applying {:.1} ms; {} rows read from the source by key",
        table_prefix(job),
        d.compare.as_secs_f64() * 1000.0,
        d.apply.as_secs_f64() * 1000.0,
        d.rows_copied
    );
    Ok(true)
}

/// `attempt` retried on transient failures for `--retry-for`, each retry announced.
fn retried<T>(
    job: &Job,
    what: &str,
    attempt: impl FnMut() -> Result<T, Error>,
) -> Result<Retried<T>, Error> {
    let output = job.spec.output;
    retry::with_retries(
        &mut retry::RealClock,
        job.spec.retry_for,
        attempt,
        |e, pause| {
            let message = format!("{e}; retrying {what} in {:.1}s", pause.as_secs_f64());
            crate::runtime::output::note(&output, "warn", &message);
        },
    )
}

/// `table: ` before a line of a set's table; nothing for a job of one table.
fn table_prefix(job: &Job) -> String {
    match job.share {
        Some(_) => format!("{}: ", job.spec.table),
        None => String::new(),
    }
}

/// The one-line summary printed on stdout after a pass.
pub fn summary_line(s: &PassSummary) -> String {
    if s.finished && s.windows == 0 {
        return format!("pass {}: nothing new to copy", s.pass);
    }
    let mut line = format!(
        "pass {} {}: {} rows read, {} rows written, {} windows in {:.2}s ({:.0} rows/s)",
        s.pass,
        if s.finished { "done" } else { "interrupted" },
        s.rows_read,
        s.rows_written,
        s.windows,
        s.seconds(),
        rate(s.rows_read, s.seconds())
    );
    if !s.timings.key_build.is_zero() {
        line += &format!(
            ", primary key built in {:.2}s",
            s.timings.key_build.as_secs_f64()
        );
    }
    line
}

/// Where a pass's time went, for `-v`: the cost of planning and checkpoints against the
/// rest.
pub fn timings_line(s: &PassSummary) -> String {
    let t = &s.timings;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    format!(
        "pass {} timings: planning {:.1} ms, preparing the destination {:.1} ms, windows {:.1} ms \
         (checkpoints {:.1} ms{}), key build {:.1} ms, finishing \
         {:.1} ms; planning and checkpoints {:.1}% of {:.2}s",
        s.pass,
        ms(t.planning),
        ms(t.preparing),
        ms(t.windows),
        ms(t.checkpoints),
        t.round_trips.map_or(String::new(), |n| format!(
            "; {n} round trips, {:.1} a window",
            n as f64 / s.windows.max(1) as f64
        )),
        ms(t.key_build),
        ms(t.finishing),
        t.overhead() * 100.0,
        t.total().as_secs_f64()
    )
}

/// Maps a pass summary to an outcome, printing its line on stdout (the result of the
/// command, so `--quiet`, which silences progress and notes, keeps it).
pub fn report(summary: &PassSummary) -> Outcome {
    println!("{}", summary_line(summary));
    log::debug!("{}", timings_line(summary));
    if summary.finished {
        Outcome::Done
    } else {
        Outcome::Interrupted
    }
}
