//! Progress of a pass on stderr (rows, estimate, rows/s, ETA): redrawn in place on a
//! terminal, or one line every `--progress-interval` seconds when stderr is not a terminal
//! — as text or, with `--log-format json`, one JSON object per line; nothing with `--quiet`.

use crate::runtime::output::{rate, unix_now, Output};
use crate::runtime::set_progress::SetProgress;
use crate::state::records::PassRecord;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Reports a pass's progress.
pub struct Progress {
    out: Output,
    tty: bool,
    started: Instant,
    last: Option<Instant>,
    rows_at_start: u64,
    drawn: bool,
    /// A table of a set: its figures go to the set's line instead.
    set: Option<(std::sync::Arc<SetProgress>, String)>,
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
            set: None,
        }
    }

    /// A reporter feeding the progress of the set `table` belongs to.
    pub fn in_set(set: std::sync::Arc<SetProgress>, table: String, pass: &PassRecord) -> Self {
        set.started(&table, pass.rows_read, pass.estimated_rows());
        Progress {
            set: Some((set, table)),
            ..Progress::new(Output::default(), pass.rows_read)
        }
    }

    /// Called after each checkpoint.
    pub fn update(&mut self, pass: &PassRecord) {
        if let Some((set, table)) = &self.set {
            set.update(table, pass.rows_read, pass.estimated_rows());
            return;
        }
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
                "ts": unix_now(), "level": "info", "event": "progress", "pass": pass.number,
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
            pass.number,
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
