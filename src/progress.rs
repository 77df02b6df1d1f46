//! Progress for people: rows read, estimate, rows/s and ETA on stderr, redrawn in place on a
//! terminal, one line every few seconds when piped, nothing with `--quiet`. No business
//! logic lives here.

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

/// Reports a pass's progress.
pub struct Progress {
    quiet: bool,
    tty: bool,
    started: Instant,
    last: Instant,
    rows_at_start: u64,
    drawn: bool,
}

impl Progress {
    /// A reporter for a pass that has already read `rows_at_start` rows in earlier runs.
    pub fn new(quiet: bool, rows_at_start: u64) -> Self {
        let now = Instant::now();
        Progress {
            quiet,
            tty: std::io::stderr().is_terminal(),
            started: now,
            last: now,
            rows_at_start,
            drawn: false,
        }
    }

    /// Called after each checkpoint.
    pub fn update(&mut self, pass: &PassRecord) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        if self.quiet || self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        let per_sec = rate(pass.rows_read.saturating_sub(self.rows_at_start), secs);
        let estimate = pass.estimated_rows().max(pass.rows_read);
        let eta = if per_sec > 0.0 {
            format!("{:.0}s", (estimate - pass.rows_read) as f64 / per_sec)
        } else {
            "?".into()
        };
        let line = format!(
            "pass {} slice {}/{}: {} rows of ~{} ({:.0}%), {} windows, {:.0} rows/s, eta {eta}",
            pass.pass,
            (pass.current_slice + 1).min(pass.slices.len()),
            pass.slices.len(),
            pass.rows_read,
            estimate,
            100.0 * pass.rows_read as f64 / estimate.max(1) as f64,
            pass.windows_committed,
            per_sec
        );
        let mut err = std::io::stderr();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            self.drawn = true;
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
