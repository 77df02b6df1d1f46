//! Output for people and log collectors, on stderr: progress of a pass (rows, estimate,
//! rows/s, ETA) redrawn in place on a terminal, or one line every `--progress-interval`
//! seconds when stderr is not a terminal — as text or, with `--log-format json`, one JSON
//! object per line; notes and warnings in the same format; nothing with `--quiet`.
//! No business logic lives here.

use crate::state::records::PassRecord;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Reports a pass's progress.
pub struct Progress {
    out: Output,
    tty: bool,
    started: Instant,
    last: Option<Instant>,
    rows_at_start: u64,
    drawn: bool,
}

impl Progress {
    /// A reporter for a pass that has already read `rows_at_start` rows in earlier runs.
    pub fn new(out: Output, rows_at_start: u64) -> Self {
        let tty = std::io::stderr().is_terminal() && !out.json;
        Progress {
            out,
            tty,
            started: Instant::now(),
            last: None,
            rows_at_start,
            drawn: false,
        }
    }

    /// Called after each checkpoint.
    pub fn update(&mut self, pass: &PassRecord) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            self.out.interval
        };
        let due = self.last.is_none_or(|t| t.elapsed() >= every);
        if self.out.quiet || !(due || self.out.verbose) {
            return;
        }
        self.last = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64();
        let per_sec = rate(pass.rows_read.saturating_sub(self.rows_at_start), secs);
        let estimate = pass.estimated_rows().max(pass.rows_read);
        let eta = (per_sec > 0.0).then(|| (estimate - pass.rows_read) as f64 / per_sec);
        let slice = pass.slices_done();
        let mut err = std::io::stderr();
        if self.out.json {
            let v = serde_json::json!({
                "ts": unix_now(), "level": "info", "event": "progress", "pass": pass.pass,
                "slice": slice, "slices": pass.slices.len(), "windows": pass.windows_committed,
                "rows_read": pass.rows_read, "rows_written": pass.rows_written, "rows_estimated": estimate,
                "rows_per_second": per_sec.round(), "eta_seconds": eta.map(f64::round),
                "position": pass.position().to_string(),
            });
            let _ = writeln!(err, "{v}");
            return;
        }
        let line = format!(
            "pass {} slices {slice}/{} done: {} rows of ~{estimate} ({:.0}%), {} windows, {:.0} rows/s, eta {}",
            pass.pass,
            pass.slices.len(),
            pass.rows_read,
            100.0 * pass.rows_read as f64 / estimate.max(1) as f64,
            pass.windows_committed,
            per_sec,
            eta.map_or("?".to_string(), |e| format!("{e:.0}s")),
        );
        if self.tty && !self.out.verbose {
            let _ = write!(err, "\r\x1b[2K{line}");
            self.drawn = true;
        } else if self.out.verbose {
            let _ = writeln!(err, "pgsync: {line}; committed up to {}", pass.position());
        } else {
            let _ = writeln!(err, "pgsync: {line}");
        }
    }

    /// Ends the in-place line.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}
