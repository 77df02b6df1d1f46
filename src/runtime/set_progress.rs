//! Progress of a job over several tables, on stderr: the tables done and in flight, the rows
//! read of the estimate, the overall rows/s and ETA — one line every `--progress-interval`
//! (redrawn on a terminal), text or JSON; nothing with `--quiet`. The tables' passes feed it
//! instead of printing their own lines.

use super::output::{rate, unix_now, Output};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One table's figures.
#[derive(Debug, Clone, Default)]
struct Table {
    rows_read: u64,
    rows_at_start: u64,
    estimate: u64,
    in_flight: bool,
    done: bool,
}

/// The set's progress, shared by the tables' threads.
#[derive(Debug)]
pub struct SetProgress {
    out: Output,
    tty: bool,
    started: Instant,
    inner: Mutex<(BTreeMap<String, Table>, Option<Instant>)>,
}

impl SetProgress {
    /// Tables with their catalog estimates of rows.
    pub fn new(out: Output, tables: &[(String, u64)]) -> Self {
        let map = tables
            .iter()
            .map(|(name, estimate)| {
                let table = Table {
                    estimate: *estimate,
                    ..Table::default()
                };
                (name.clone(), table)
            })
            .collect();
        SetProgress {
            out,
            tty: std::io::stderr().is_terminal() && !out.json,
            started: Instant::now(),
            inner: Mutex::new((map, None)),
        }
    }

    /// A table's pass began, having read `rows_at_start` rows in earlier runs.
    pub fn started(&self, table: &str, rows_at_start: u64, estimate: u64) {
        self.with(table, |t| {
            t.in_flight = true;
            t.rows_at_start = rows_at_start;
            t.rows_read = rows_at_start;
            t.estimate = estimate.max(rows_at_start);
        });
    }

    /// After a window of `table`: rows read by its pass so far.
    pub fn update(&self, table: &str, rows_read: u64, estimate: u64) {
        self.with(table, |t| {
            t.rows_read = rows_read;
            t.estimate = estimate.max(rows_read);
        });
    }

    /// A table is done (or failed): out of flight; its estimate becomes what it read.
    pub fn finished(&self, table: &str) {
        self.with(table, |t| {
            t.in_flight = false;
            t.done = true;
            t.estimate = t.rows_read;
        });
    }

    /// Ends the in-place line.
    pub fn finish(&self) {
        if self.tty && !self.out.quiet {
            let _ = writeln!(std::io::stderr());
        }
    }

    fn with(&self, table: &str, f: impl FnOnce(&mut Table)) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(inner.0.entry(table.to_string()).or_default());
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            self.out.interval
        };
        if self.out.quiet || inner.1.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        inner.1 = Some(Instant::now());
        self.print(&inner.0);
    }

    fn print(&self, tables: &BTreeMap<String, Table>) {
        let done = tables.values().filter(|t| t.done).count();
        let flying: Vec<&str> = tables
            .iter()
            .filter(|(_, t)| t.in_flight)
            .map(|(n, _)| n.as_str())
            .collect();
        let read: u64 = tables.values().map(|t| t.rows_read).sum();
        let new: u64 = tables
            .values()
            .map(|t| t.rows_read - t.rows_at_start.min(t.rows_read))
            .sum();
        let estimate: u64 = tables.values().map(|t| t.estimate.max(t.rows_read)).sum();
        let per_sec = rate(new, self.started.elapsed().as_secs_f64());
        let eta = (per_sec > 0.0).then(|| estimate.saturating_sub(read) as f64 / per_sec);
        let mut err = std::io::stderr();
        if self.out.json {
            let v = serde_json::json!({
                "ts": unix_now(), "level": "info", "event": "progress", "tables": tables.len(),
                "tables_done": done, "in_flight": flying, "rows_read": read,
                "rows_estimated": estimate, "rows_per_second": per_sec.round(),
                "eta_seconds": eta.map(f64::round),
            });
            let _ = writeln!(err, "{v}");
            return;
        }
        let line = format!(
            "tables {done}/{} done, in flight: {}; {read} rows of ~{estimate} ({:.0}%), {per_sec:.0} rows/s, eta {}",
            tables.len(),
            if flying.is_empty() { "-".to_string() } else { flying.join(", ") },
            100.0 * read as f64 / estimate.max(1) as f64,
            eta.map_or("?".to_string(), |e| format!("{e:.0}s")),
        );
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "pgsync: {line}");
        }
    }
}
