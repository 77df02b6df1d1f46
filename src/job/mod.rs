//! Resolves parsed arguments into a validated `JobSpec`: connection settings for both
//! sides, the qualified table and cursor names, sizes, and the job id that names the job's
//! state and receipts. It reads the environment and, for the connections, the files libpq
//! would (password file, service file, certificates); it connects to nothing.

mod cursor_use;
pub mod databases;
pub mod open;
pub mod status;

pub use open::Job;

use crate::cli::table_config::TableSettings;
use crate::cli::{JobArgs, SyncMode};
use crate::db::conninfo::{self, ConnDefaults, ConnInfo, Env};
use crate::db::ident::{parse_column, QualifiedName};
use crate::db::pool::SourceLimits;
use crate::error::Error;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a command needs to know about its job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub source: ConnInfo,
    pub dest: ConnInfo,
    /// Table (same name on both sides).
    pub table: QualifiedName,
    /// The cursor column (in diff mode, once opened: the key's first column, which cuts
    /// the windows).
    pub cursor: String,
    /// How the table is synced (`--mode`; `Auto` is decided when the job opens).
    pub mode: SyncMode,
    /// Rows per window (= per destination transaction) when fixed; `None`: sized by time.
    pub window_rows: Option<u64>,
    /// Work per window when sized by time.
    pub window_target: Duration,
    /// Approximate rows per slice.
    pub slice_rows: u64,
    /// A pass from the start reads heap block ranges (not `--no-block-scan`).
    pub block_scan: bool,
    /// Go on with a large table whose cursor starts no index (`--allow-unindexed-cursor`).
    pub allow_unindexed_cursor: bool,
    /// `--deletes`: sweep for deleted rows every this many passes.
    pub deletes_every: Option<u64>,
    /// Pause between passes in continuous mode.
    pub delay: Duration,
    pub state_dir: PathBuf,
    /// Receipts table in the destination.
    pub receipts_table: QualifiedName,
    pub limits: SourceLimits,
    /// Human-readable identity (no password).
    pub identity: String,
    /// Stable id derived from the identity.
    pub job_id: String,
    /// How long transient failures are retried before giving up.
    pub retry_for: Duration,
    /// Overlap re-read below each watermark (late commits).
    pub lookback: Duration,
    /// What a numeric cursor counts (`--cursor-clock`).
    pub cursor_clock: crate::keyspace::clock::CursorClockArg,
    /// Key columns to use instead of the primary key (`--key`).
    pub key: Option<Vec<String>>,
    /// Source read throttle, rows per second.
    pub max_rate: Option<u64>,
    /// Slices copied at once (`--jobs`).
    pub jobs: usize,
    /// How progress and notes are written.
    pub output: crate::runtime::output::Output,
    /// The config file's `[[table]]` sections (`for_table` applies the one naming a table).
    pub table_settings: Vec<TableSettings>,
}

impl JobSpec {
    /// The window size a pass starts with; sized by time, from `pace` when an earlier pass
    /// measured one.
    pub fn window_size(
        &self,
        pace: Option<crate::state::pace::Pace>,
    ) -> crate::copy::window_size::WindowSize {
        use crate::copy::window_size::WindowSize;
        match self.window_rows {
            Some(rows) => WindowSize::fixed(rows),
            None => WindowSize::by_time(self.window_target, pace),
        }
    }

    /// Rows of a pass's first window (sized by time: from `pace` when an earlier pass
    /// measured one).
    pub fn first_window_rows(&self, pace: Option<crate::state::pace::Pace>) -> u64 {
        self.window_size(pace).rows()
    }

    /// Resolves arguments (flags > PG* variables > defaults).
    pub fn resolve(args: &JobArgs, env: &dyn Env) -> Result<Self, Error> {
        let (tables, username_pos) = args.selection();
        let user = match (&username_pos, &args.username) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::Usage(format!(
                    "USERNAME {a:?} and -U {b:?} disagree; give one"
                )));
            }
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let flags = ConnDefaults {
            host: args.hostname.clone(),
            port: args.port,
            user,
            password: args.password.clone(),
            service: args.service.clone(),
            sslmode: args.sslmode,
            sslrootcert: args.sslrootcert.clone(),
            sslcert: args.sslcert.clone(),
            sslkey: args.sslkey.clone(),
        };
        let source_flags = ConnDefaults {
            sslmode: args.source_sslmode.or(args.sslmode),
            sslrootcert: args.source_sslrootcert.clone().or(args.sslrootcert.clone()),
            ..flags.clone()
        };
        let dest_flags = ConnDefaults {
            sslmode: args.dest_sslmode.or(args.sslmode),
            sslrootcert: args.dest_sslrootcert.clone().or(args.sslrootcert.clone()),
            ..flags
        };
        let source = conninfo::resolve("source", &args.source, &source_flags, env)?;
        let dest = conninfo::resolve("destination", &args.dest, &dest_flags, env)?;
        let table = QualifiedName::parse(&tables[0]).map_err(Error::Usage)?;
        let cursor = parse_column(&args.cursor_column).map_err(Error::Usage)?;
        let receipts_table = QualifiedName::parse(&args.receipts_table).map_err(Error::Usage)?;
        let key = args.key.as_deref().map(parse_key).transpose()?;
        if receipts_table == table && source.redacted == dest.redacted {
            return Err(Error::Usage(
                "source and destination are the same table".into(),
            ));
        }
        if source.redacted == dest.redacted {
            return Err(Error::Usage(format!(
                "source and destination are the same database ({}); pgsync copies between databases",
                source.redacted
            )));
        }
        let output = crate::runtime::output::Output {
            quiet: args.quiet,
            json: args.log_format == crate::cli::LogFormat::Json,
            interval: Duration::from_secs(args.progress_interval),
            verbose: args.verbose,
        };
        let identity = identity(&source, &dest, &table, &cursor, args.mode);
        let spec = JobSpec {
            mode: args.mode,
            job_id: job_id(&identity),
            identity,
            source,
            dest,
            table,
            cursor,
            window_rows: args.window_size.or(args.chunksize),
            window_target: args.window_target,
            slice_rows: args.slice_rows,
            block_scan: !args.no_block_scan,
            allow_unindexed_cursor: args.allow_unindexed_cursor,
            deletes_every: args.deletes.then_some(args.deletes_every),
            delay: Duration::from_secs(args.delay),
            state_dir: args.state_dir.clone(),
            receipts_table,
            limits: SourceLimits {
                statement_timeout: Duration::from_secs(args.statement_timeout.max(1)),
                lock_timeout: Duration::from_secs(5),
            },
            retry_for: Duration::from_secs(args.retry_for),
            lookback: args.lookback,
            cursor_clock: args.cursor_clock,
            key,
            max_rate: args.max_rate,
            jobs: args.jobs as usize,
            output,
            table_settings: args.table_settings.clone(),
        };
        // The table's own [[table]] settings, if any.
        let table = spec.table.clone();
        spec.for_table(table)
    }
}

impl JobSpec {
    /// The same job's settings for another table (one table of a set: its own identity,
    /// id, state records and receipts).
    /// A `[[table]]` section naming it overrides the job's cursor, key, lookback and sizes.
    pub fn for_table(&self, table: QualifiedName) -> Result<JobSpec, Error> {
        let mut spec = JobSpec {
            table,
            ..self.clone()
        };
        for s in &self.table_settings {
            if QualifiedName::parse(&s.name).map_err(Error::Usage)? != spec.table {
                continue;
            }
            if let Some(c) = &s.cursor_column {
                spec.cursor = parse_column(c).map_err(Error::Usage)?;
            }
            if let Some(k) = &s.key {
                spec.key = Some(parse_key(k)?);
            }
            spec.lookback = s.lookback.unwrap_or(spec.lookback);
            spec.cursor_clock = s.cursor_clock.unwrap_or(spec.cursor_clock);
            spec.window_rows = s.window_rows.or(spec.window_rows);
            spec.window_target = s.window_target.unwrap_or(spec.window_target);
            spec.slice_rows = s.slice_rows.unwrap_or(spec.slice_rows);
            spec.mode = s.mode.unwrap_or(spec.mode);
        }
        spec.identity = identity(
            &spec.source,
            &spec.dest,
            &spec.table,
            &spec.cursor,
            spec.mode,
        );
        spec.job_id = job_id(&spec.identity);
        Ok(spec)
    }

    /// The job synced by diff, its windows cut on `window_column` (the key's first): its
    /// own identity (state and receipts apart from a cursor job's), no lookback (each pass
    /// compares the whole table, so nothing relies on the cursor pass's re-reads).
    pub fn into_diff(mut self, window_column: &str) -> JobSpec {
        self.mode = SyncMode::Diff;
        self.cursor = window_column.to_string();
        self.lookback = Duration::ZERO;
        self.identity = identity(
            &self.source,
            &self.dest,
            &self.table,
            window_column,
            SyncMode::Diff,
        );
        self.job_id = job_id(&self.identity);
        self
    }

    /// The start of the identity of every table's job between these two databases.
    pub fn identity_prefix(&self) -> String {
        format!("{} -> {} table ", self.source.redacted, self.dest.redacted)
    }
}

/// `--key a,b` as column names.
fn parse_key(list: &str) -> Result<Vec<String>, Error> {
    list.split(',')
        .map(parse_column)
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Usage)
}

/// A job's identity: both databases (no password), the table, and the cursor — or `by
/// diff` for a table synced by comparison (whatever column cuts its windows).
fn identity(
    source: &ConnInfo,
    dest: &ConnInfo,
    table: &QualifiedName,
    cursor: &str,
    mode: SyncMode,
) -> String {
    let how = match mode {
        SyncMode::Diff => DIFF_IDENTITY.to_string(),
        SyncMode::Cursor | SyncMode::Auto => format!("cursor {cursor}"),
    };
    format!(
        "{} -> {} table {} {how}",
        source.redacted, dest.redacted, table
    )
}

/// How a diff job's identity ends (after the table).
pub const DIFF_IDENTITY: &str = "by diff";

/// 64-bit FNV-1a of the identity, as 16 hex digits: stable across releases and platforms
/// (std's hasher is not), so state and receipts keep their names.
pub fn job_id(identity: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in identity.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn job_id_is_stable_and_distinguishes_jobs() {
        assert_eq!(super::job_id(""), "cbf29ce484222325");
        assert_ne!(
            super::job_id("a -> b table t"),
            super::job_id("a -> b table u")
        );
    }
}

/// What a set reads for all its tables at a round's start, one statement per kind: a
/// table's first pass of the round takes its own (a later pass or a retry reads again).
#[derive(Debug)]
pub struct Prefetched {
    /// The receipts of the table's latest pass.
    pub receipts: Option<crate::protocol::receipts::PassReceipts>,
    /// Whether the destination table exists.
    pub dest_exists: bool,
}
