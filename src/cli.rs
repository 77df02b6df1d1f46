//! The command line (clap derive), parsing only: the contract's seed-style positionals and
//! options, shared by every subcommand. `-h` is `--hostname` as in the seed, so clap's own
//! `-h` is disabled and help is `--help` only. Resolution into a job happens in `job.rs`.

use clap::{ArgAction, Args, Parser, Subcommand};
use std::path::PathBuf;

/// Incremental, crash-safe copy of a PostgreSQL table into another database.
#[derive(Debug, Parser)]
#[command(name = "pgsync", version, disable_help_flag = true, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Print help.
    #[arg(long, action = ArgAction::Help, global = true)]
    pub help: Option<bool>,
}

const EXAMPLES: &str = "Examples:
  pgsync single   shop_prod shop_copy transactions postgres -h db1.internal
  pgsync single   postgres://reader@src:5432/shop postgres://writer@dst/shop public.transactions
  pgsync continuous --delay 30 shop_prod shop_copy transactions
  pgsync resume   shop_prod shop_copy transactions
  pgsync status --json shop_prod shop_copy transactions
  pgsync verify --repair shop_prod shop_copy transactions";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One incremental pass (plan, copy windows, checkpoint), then exit. Continues an unfinished plan first.
    #[command(disable_help_flag = true)]
    Single(JobArgs),
    /// Repeat `single` every --delay seconds until SIGINT/SIGTERM.
    #[command(disable_help_flag = true)]
    Continuous(JobArgs),
    /// Continue the unfinished pass recorded for this job; fails when there is none.
    #[command(disable_help_flag = true)]
    Resume(JobArgs),
    /// Compare source and destination per window with server-side checksums; exit 0 equal, 1 different, 2 error.
    #[command(disable_help_flag = true)]
    Verify(VerifyArgs),
    /// Show the recorded plan, windows committed/total, watermark and last pass (no database access).
    #[command(disable_help_flag = true)]
    Status(StatusArgs),
}

/// `status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The job.
    #[command(flatten)]
    pub job: JobArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// `verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The job.
    #[command(flatten)]
    pub job: JobArgs,
    /// Verify the whole table (NULL cursors included), not only up to the last pass's watermark.
    #[arg(long)]
    pub all: bool,
    /// Lowest cursor value to verify (inclusive).
    #[arg(long)]
    pub from: Option<String>,
    /// Highest cursor value to verify (inclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Most differing rows to print (the total is always given).
    #[arg(long, default_value_t = 100)]
    pub max_rows: usize,
    /// Re-sync the differing rows (delete rows absent from the source), then verify again.
    #[arg(long)]
    pub repair: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// SOURCE DEST TABLE [USERNAME] and the options every subcommand shares.
#[derive(Debug, Args, Clone)]
pub struct JobArgs {
    /// Source database name, or a postgres:// URL.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Destination database name, or a postgres:// URL.
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// Table: name or schema.name (same on both sides); quote mixed case: '"MyTable"'.
    #[arg(value_name = "TABLE")]
    pub table: String,
    /// User name for both sides (or -U; default PGUSER, then the OS user).
    #[arg(value_name = "USERNAME")]
    pub username_pos: Option<String>,
    /// Host of bare database names [default: PGHOST, then localhost].
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Port of bare database names [default: PGPORT, then 5432].
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// User name (same as the USERNAME positional).
    #[arg(short = 'U', long)]
    pub username: Option<String>,
    /// Password for both sides (prefer PGPASSWORD or a URL kept out of shell history).
    #[arg(long)]
    pub password: Option<String>,
    /// Rows per destination transaction (= rows per window unless --window-size is given).
    #[arg(short = 'c', long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunksize: u64,
    /// Seconds between passes in `continuous`.
    #[arg(short = 'd', long, default_value_t = 5)]
    pub delay: u64,
    /// Where the state store lives.
    #[arg(long, env = "PGSYNC_STATE_DIR", default_value = ".pgsync")]
    pub state_dir: PathBuf,
    /// Column that grows when a row changes (orderable type).
    #[arg(long, default_value = "updated")]
    pub cursor_column: String,
    /// Columns of a unique, NOT NULL index to use as the key when the table has no primary key (comma-separated).
    #[arg(long, value_name = "COLUMNS")]
    pub key: Option<String>,
    /// Throttle: read at most this many rows per second from the source.
    #[arg(long, value_name = "ROWS_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_rate: Option<u64>,
    /// Rows per window [default: --chunksize].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub window_size: Option<u64>,
    /// Approximate rows per slice (planning unit, from planner statistics).
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub slice_rows: u64,
    /// Destination table that holds the window receipts.
    #[arg(long, default_value = "pgsync.receipts")]
    pub receipts_table: String,
    /// statement_timeout for source queries, in seconds.
    #[arg(long, default_value_t = 300)]
    pub statement_timeout: u64,
    /// Overlap re-read below the watermark each pass, for transactions that commit late:
    /// an interval for date/time cursors, milliseconds for numeric (epoch-ms) cursors; 0 disables.
    /// Examples: 5min, 90s, 250ms, 1h.
    #[arg(long, default_value = "5min", value_parser = parse_duration)]
    pub lookback: std::time::Duration,
    /// Keep retrying transient failures (lost connections, server restarts, conflicts) for this many seconds.
    #[arg(long, default_value_t = 300)]
    pub retry_for: u64,
    /// No progress output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Parses `250ms`, `90s`, `5min`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 250ms, 90s, 5min or 1h"))?;
    let ms = match unit.trim() {
        "ms" => n,
        "" | "s" => n * 1000,
        "min" | "m" => n * 60_000,
        "h" => n * 3_600_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use ms, s, min or h"
            ))
        }
    };
    Ok(std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_parse_with_units() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(
            super::parse_duration("250ms"),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(super::parse_duration("0"), Ok(Duration::ZERO));
        assert!(super::parse_duration("5 parsecs").is_err());
    }
}
