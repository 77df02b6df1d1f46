//! The command line (clap derive): the contract's positionals (`SOURCE DEST TABLE… [USER]`,
//! database names or URLs) and options, shared by every subcommand. `-h` is `--hostname`
//! as in the prototype, so clap's own `-h` is disabled and help is `--help` only. The one
//! I/O here is reading the `--config` file (`config.rs` turns it into arguments).
//! Resolution into a job happens in `job/`.

mod config;
mod duration;
mod selection;
pub mod table_config;

use crate::db::tls::SslMode;
use crate::keyspace::clock::CursorClockArg;
use clap::{ArgAction, Args, Parser, Subcommand};
use duration::parse_duration;
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
    /// TOML file of options (long names as keys, e.g. `chunksize = 50000`, `state-dir = "/var/lib/pgsync"`).
    /// Precedence: command line > PGSYNC_* environment > this file > defaults.
    #[arg(long, global = true, env = "PGSYNC_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// Parses the command line, then fills the options it left at their defaults from the
/// `--config` file: flag > environment > file > default.
pub fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match parse_from(args) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

/// `parse` on given arguments (tests).
pub fn parse_from(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    parse_with_env(args, &|name| {
        std::env::var_os(name).filter(|v| !v.is_empty())
    })
}

/// `parse_from` with the environment as a function (tests). When SOURCE and DEST are
/// missing, `PGSYNC_SOURCE` and `PGSYNC_DEST`, or else the `--config` file's `source` and
/// `dest`, stand in for them (so no connection string, password included, needs to be on
/// the command line): `pgsync single transactions`.
pub fn parse_with_env(
    args: Vec<std::ffi::OsString>,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Cli, clap::Error> {
    use clap::CommandFactory;
    match Cli::command().try_get_matches_from(&args) {
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => {
            let from_file = || {
                let text = std::fs::read_to_string(config::config_path(&args, env)?).ok()?;
                config::source_dest(&text).ok().flatten()
            };
            let (source, dest) = match (env("PGSYNC_SOURCE"), env("PGSYNC_DEST")) {
                (Some(s), Some(d)) => (s, d),
                _ => match from_file() {
                    Some((s, d)) => (s.into(), d.into()),
                    None => return Err(e),
                },
            };
            let names: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let Some(sub) = args
                .iter()
                .skip(1)
                .find_map(|a| a.to_str().filter(|a| names.iter().any(|n| n == a)))
            else {
                return Err(e);
            };
            let sub = sub.to_string();
            with_config(config::insert_after_subcommand(
                &args,
                &sub,
                vec![source, dest],
            ))
        }
        _ => with_config(args),
    }
}

/// Parses, then fills what the command line left at its defaults from the `--config` file.
fn with_config(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().try_get_matches_from(&args)?;
    let Some((sub, sub_matches)) = matches.subcommand() else {
        return Cli::from_arg_matches(&matches);
    };
    let Some(path) = sub_matches
        .get_one::<std::path::PathBuf>("config")
        .or(matches.get_one("config"))
    else {
        return Cli::from_arg_matches(&matches);
    };
    let invalid = |msg: String| Cli::command().error(clap::error::ErrorKind::InvalidValue, msg);
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("cannot read config file {}: {e}", path.display())))?;
    let given = |id: &str| {
        use clap::parser::ValueSource;
        matches!(
            sub_matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let options = config::option_ids(&Cli::command(), sub);
    let known = |id: &str| options.iter().any(|o| o == id);
    let extra = config::file_args(&text, sub, known, given)
        .map_err(|e| invalid(format!("config file {}: {e}", path.display())))?;
    let mut cli = Cli::try_parse_from(config::insert_after_subcommand(&args, sub, extra))?;
    if let Some(job) = cli.command.job_args_mut() {
        job.table_settings = table_config::parse(&text)
            .map_err(|e| invalid(format!("config file {}: {e}", path.display())))?;
    }
    Ok(cli)
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
    #[command(
        disable_help_flag = true,
        after_help = "Example:\n  pgsync single shop_prod shop_copy transactions postgres -h db1.internal\n  pgsync single -c 50000 postgres://reader@src/shop postgres://writer@dst/shop public.transactions"
    )]
    Single(JobArgs),
    /// Repeat `single` every --delay seconds until SIGINT/SIGTERM.
    #[command(
        disable_help_flag = true,
        after_help = "Example:\n  pgsync continuous --delay 30 --config /etc/pgsync/transactions.toml shop_prod shop_copy transactions"
    )]
    Continuous(JobArgs),
    /// Continue the unfinished pass recorded for this job; fails when there is none.
    #[command(
        disable_help_flag = true,
        after_help = "Example:\n  pgsync resume shop_prod shop_copy transactions   # after a crash, SIGINT or SIGKILL"
    )]
    Resume(JobArgs),
    /// Compare source and destination per window with server-side checksums; exit 0 equal, 1 different, 2 error.
    #[command(
        disable_help_flag = true,
        after_help = "Example:\n  pgsync verify shop_prod shop_copy transactions            # exit 0 equal, 1 different, 2 error\n  pgsync verify --all --json --max-rows 20 shop_prod shop_copy transactions\n  pgsync verify --repair shop_prod shop_copy transactions"
    )]
    Verify(VerifyArgs),
    /// Show the recorded plan, windows committed/total, watermark and last pass (no database access).
    #[command(
        disable_help_flag = true,
        after_help = "Example:\n  pgsync status shop_prod shop_copy transactions\n  pgsync status --json shop_prod shop_copy transactions   # also while a sync runs"
    )]
    Status(StatusArgs),
    /// Show what the next pass would do (bounds, estimated rows, slices) without writing anything.
    #[command(
        disable_help_flag = true,
        after_help = "Example:\n  pgsync plan --slice-rows 5000000 shop_prod shop_copy transactions"
    )]
    Plan(JobArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(disable_help_flag = true)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    #[command(disable_help_flag = true)]
    Man,
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
    /// Heap blocks per checksum statement (8 kB each): bounds each statement's time on a large
    /// table; a table of one chunk is one plain scan.
    #[arg(long, env = "PGSYNC_CHUNK_BLOCKS", default_value_t = 131_072, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_blocks: u64,
    /// Hash each row's text instead of its values: compares representations (e.g. 1.0 and
    /// 1.00 differ), about 3x slower. Used anyway for types without a built-in hash.
    #[arg(long)]
    pub text_hash: bool,
    /// Re-sync the differing rows (delete rows absent from the source), then verify again.
    #[arg(long)]
    pub repair: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// SOURCE DEST TABLE… [USERNAME] and the options every subcommand shares.
#[derive(Debug, Args, Clone)]
pub struct JobArgs {
    /// Source: a database name, a postgres:// URL or a conninfo string ("host=… dbname=…");
    /// with PGSYNC_SOURCE and PGSYNC_DEST set (or `source` and `dest` in --config), both may be left out.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Destination: a database name, a postgres:// URL or a conninfo string.
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// Tables: names, schema.name, or patterns ('public.*', 'sales.order_?'), same on both
    /// sides; quote mixed case: '"MyTable"'. A last bare name after exactly one table is the
    /// user name (the seed's `SOURCE DEST TABLE USERNAME`): with several tables, use -U.
    #[arg(value_name = "TABLE", required = true, num_args = 1..)]
    pub tables: Vec<String>,
    /// Tables the patterns leave out (repeatable; a name or a pattern).
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// The config file's `[[table]]` sections.
    #[arg(skip)]
    pub table_settings: Vec<table_config::TableSettings>,
    /// Host of bare database names [default: PGHOST, then localhost].
    #[arg(env = "PGSYNC_HOSTNAME", short = 'h', long)]
    pub hostname: Option<String>,
    /// Port of bare database names [default: PGPORT, then 5432].
    #[arg(env = "PGSYNC_PORT", short = 'p', long)]
    pub port: Option<u16>,
    /// User name (same as the USERNAME positional).
    #[arg(env = "PGSYNC_USERNAME", short = 'U', long)]
    pub username: Option<String>,
    /// Password for both sides. Visible to `ps` and kept in shell history: prefer
    /// ~/.pgpass, a service file or PGPASSWORD (docs/operations.md, "Connecting").
    #[arg(env = "PGSYNC_PASSWORD", long)]
    pub password: Option<String>,
    /// Connection service (a section of pg_service.conf) for both sides [default: PGSERVICE].
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// TLS for both sides: disable, allow, prefer, require, verify-ca, verify-full
    /// [default: PGSSLMODE, then prefer].
    #[arg(long, value_name = "MODE", value_parser = parse_sslmode)]
    pub sslmode: Option<SslMode>,
    /// TLS mode of the source only (overrides --sslmode).
    #[arg(long, value_name = "MODE", value_parser = parse_sslmode)]
    pub source_sslmode: Option<SslMode>,
    /// TLS mode of the destination only (overrides --sslmode).
    #[arg(long, value_name = "MODE", value_parser = parse_sslmode)]
    pub dest_sslmode: Option<SslMode>,
    /// Root certificate(s) (PEM) that verify the servers, or `system` for the OS's trusted
    /// roots [default: PGSSLROOTCERT, then ~/.postgresql/root.crt].
    #[arg(long, value_name = "FILE")]
    pub sslrootcert: Option<String>,
    /// Root certificate(s) for the source only (overrides --sslrootcert).
    #[arg(long, value_name = "FILE")]
    pub source_sslrootcert: Option<String>,
    /// Root certificate(s) for the destination only (overrides --sslrootcert).
    #[arg(long, value_name = "FILE")]
    pub dest_sslrootcert: Option<String>,
    /// Client certificate (PEM) for servers that ask for one [default: PGSSLCERT].
    #[arg(long, value_name = "FILE")]
    pub sslcert: Option<String>,
    /// Key of the client certificate (PEM) [default: PGSSLKEY].
    #[arg(long, value_name = "FILE")]
    pub sslkey: Option<String>,
    /// Rows per destination transaction, fixed (= rows per window unless --window-size is
    /// given). Without it, windows are sized by time (--window-target), the first from the
    /// last pass's pace (or 10,000 rows).
    #[arg(env = "PGSYNC_CHUNKSIZE", short = 'c', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunksize: Option<u64>,
    /// Work per window when no fixed size is given: windows grow or shrink (1,000 to 2,000,000
    /// rows, at most 256 MiB) to take about this long at the rate of the last ones.
    #[arg(env = "PGSYNC_WINDOW_TARGET", long, default_value = "2s", value_parser = parse_duration)]
    pub window_target: std::time::Duration,
    /// Seconds between passes in `continuous`.
    #[arg(env = "PGSYNC_DELAY", short = 'd', long, default_value_t = 5)]
    pub delay: u64,
    /// Where the state store lives.
    #[arg(long, env = "PGSYNC_STATE_DIR", default_value = ".pgsync")]
    pub state_dir: PathBuf,
    /// Column that grows when a row changes (orderable type).
    #[arg(env = "PGSYNC_CURSOR_COLUMN", long, default_value = "updated")]
    pub cursor_column: String,
    /// Columns of a unique, NOT NULL index to use as the key when the table has no primary key (comma-separated).
    #[arg(env = "PGSYNC_KEY", long, value_name = "COLUMNS")]
    pub key: Option<String>,
    /// Slices copied at once, each by its own source reader and destination writer (1-32).
    /// The source sees this many concurrent reads; `--max-rate` caps them together.
    #[arg(env = "PGSYNC_JOBS", short = 'j', long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=32))]
    pub jobs: u64,
    /// Throttle: read at most this many rows per second from the source.
    #[arg(env = "PGSYNC_MAX_RATE", long, value_name = "ROWS_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_rate: Option<u64>,
    /// Rows per window, fixed [default: --chunksize, or sized by time].
    #[arg(env = "PGSYNC_WINDOW_SIZE", long, value_parser = clap::value_parser!(u64).range(1..))]
    pub window_size: Option<u64>,
    /// Read a first load (a pass from the start) in (cursor, key) order like every later pass,
    /// not by heap block ranges (TID range scans, PostgreSQL 14+).
    #[arg(env = "PGSYNC_NO_BLOCK_SCAN", long)]
    pub no_block_scan: bool,
    /// Sync a table of more than 100,000 rows whose cursor column starts no index: every
    /// window then scans and sorts the whole table (refused without this flag).
    #[arg(env = "PGSYNC_ALLOW_UNINDEXED_CURSOR", long)]
    pub allow_unindexed_cursor: bool,
    /// After a pass, delete the destination rows whose key the source no longer has (a
    /// key-only comparison of both tables; a cursor cannot see deletes).
    #[arg(env = "PGSYNC_DELETES", long)]
    pub deletes: bool,
    /// How a table is synced: `cursor` (rows whose cursor grew), `diff` (no cursor: both
    /// tables compared by window checksums, then only the differing rows copied or deleted),
    /// `auto` (diff for a table without the cursor column, announced).
    #[arg(env = "PGSYNC_MODE", long, value_enum, default_value_t = SyncMode::Cursor)]
    pub mode: SyncMode,
    /// With --deletes in `continuous`: compare for deletes every N passes.
    #[arg(env = "PGSYNC_DELETES_EVERY", long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub deletes_every: u64,
    /// Approximate rows per slice (planning unit, from planner statistics).
    #[arg(env = "PGSYNC_SLICE_ROWS", long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub slice_rows: u64,
    /// Destination table that holds the window receipts.
    #[arg(env = "PGSYNC_RECEIPTS_TABLE", long, default_value = "pgsync.receipts")]
    pub receipts_table: String,
    /// statement_timeout for source queries, in seconds.
    #[arg(env = "PGSYNC_STATEMENT_TIMEOUT", long, default_value_t = 300)]
    pub statement_timeout: u64,
    /// Overlap re-read below the watermark each pass, for clock skew between writers that set
    /// the cursor from their own clocks (transactions open at a plan are held back anyway):
    /// an interval for date/time cursors, milliseconds for numeric (epoch-ms) cursors; 0 disables.
    /// Examples: 5s, 90s, 250ms, 5min.
    #[arg(env = "PGSYNC_LOOKBACK", long, default_value = "5s", value_parser = parse_duration)]
    pub lookback: std::time::Duration,
    /// What a numeric cursor counts: `auto` (epoch seconds, ms or µs when its values show
    /// it), `none` (a counter), or the unit. A cursor that follows a clock is capped at it.
    #[arg(env = "PGSYNC_CURSOR_CLOCK", long, value_enum, default_value_t = CursorClockArg::Auto)]
    pub cursor_clock: CursorClockArg,
    /// Keep retrying transient failures (lost connections, server restarts, conflicts) for this many seconds.
    #[arg(env = "PGSYNC_RETRY_FOR", long, default_value_t = 300)]
    pub retry_for: u64,
    /// Progress and notes on stderr: `text`, or `json` (one object per line).
    #[arg(long, env = "PGSYNC_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(long, env = "PGSYNC_PROGRESS_INTERVAL", default_value_t = 5)]
    pub progress_interval: u64,
    /// Log every window (its rows and end key).
    #[arg(short = 'v', long, env = "PGSYNC_VERBOSE")]
    pub verbose: bool,
    /// No progress output.
    #[arg(env = "PGSYNC_QUIET", short = 'q', long)]
    pub quiet: bool,
}

/// How a table is synced (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// Rows whose cursor grew since the last pass.
    Cursor,
    /// Compare both tables by checksums; copy and delete the differing rows.
    Diff,
    /// `diff` for a table that lacks the cursor column, `cursor` otherwise.
    Auto,
}

/// Format of what pgsync writes on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

fn parse_sslmode(text: &str) -> Result<SslMode, String> {
    text.parse()
}

#[cfg(test)]
mod tests;
