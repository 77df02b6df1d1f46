//! Output for people and log collectors, on stderr: the output options, notes and warnings
//! as text or, with `--log-format json`, one JSON object per line (the `log` logger too);
//! nothing with `--quiet`. A pass's progress lines are `pass/progress.rs`.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Rows per second, guarding against tiny durations.
pub fn rate(rows: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        rows as f64 / seconds
    } else {
        0.0
    }
}

/// How output is written (from `-q`, `--log-format`, `--progress-interval`, `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Nothing but errors and results.
    pub quiet: bool,
    /// JSON lines instead of text.
    pub json: bool,
    /// Between progress lines when stderr is not a terminal.
    pub interval: Duration,
    /// A line per window.
    pub verbose: bool,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            quiet: false,
            json: false,
            interval: Duration::from_secs(5),
            verbose: false,
        }
    }
}

/// Writes a note or warning (`level`: "info" or "warn") through the `log` facade, so the
/// installed logger decides the format and the level filter.
pub fn note(out: &Output, level: &str, message: &str) {
    if out.quiet {
        return;
    }
    if level == "warn" {
        log::warn!("{message}");
    } else {
        log::info!("{message}");
    }
}

/// The process's logger (`log` facade): stderr, text or JSON lines; warnings and notes by
/// default, also debug messages (the driver's server NOTICEs among them) with `-v`,
/// nothing with `-q`. The first call wins.
pub fn install_logger(out: &Output) {
    let level = if out.quiet {
        log::LevelFilter::Off
    } else if out.verbose {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    if log::set_boxed_logger(Box::new(StderrLogger {
        json: out.json,
        level,
    }))
    .is_ok()
    {
        log::set_max_level(level);
    }
}

struct StderrLogger {
    json: bool,
    level: log::LevelFilter,
}

impl log::Log for StderrLogger {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        // Below info, only pgsync's own messages: the driver logs every statement (with its
        // parameters, i.e. row values) and sled its internals at debug.
        meta.level() <= self.level
            && (meta.level() <= log::Level::Info || meta.target().starts_with("pgsync"))
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = if self.json {
            let level = record.level().as_str().to_ascii_lowercase();
            serde_json::json!({ "ts": unix_now(), "level": level, "message": record.args().to_string() }).to_string()
        } else if record.level() == log::Level::Warn {
            format!("pgsync: warning: {}", record.args())
        } else if record.level() == log::Level::Error {
            format!("pgsync: error: {}", record.args())
        } else {
            format!("pgsync: {}", record.args())
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    fn flush(&self) {}
}
