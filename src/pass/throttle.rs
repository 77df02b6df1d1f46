//! `--max-rate`: all workers of a run together stay at or under the rows per second asked
//! for, measured from the start of the run's windows.

use crate::runtime::shutdown;
use std::time::{Duration, Instant};

/// The rate limit of one run.
pub struct Throttle {
    /// Rows per second at most; `None`: no limit.
    max_rate: Option<u64>,
    started: Instant,
    /// Rows the pass had read before this run.
    rows_before: u64,
}

impl Throttle {
    /// A limit of `max_rate` rows/s from now, for a pass that had read `rows_before` rows.
    pub fn new(max_rate: Option<u64>, started: Instant, rows_before: u64) -> Self {
        Throttle {
            max_rate,
            started,
            rows_before,
        }
    }

    /// How long to wait, once the pass has read `rows_read` rows, to be back at the rate.
    pub fn due(&self, rows_read: u64, elapsed: Duration) -> Duration {
        let Some(rate) = self.max_rate.filter(|&r| r > 0) else {
            return Duration::ZERO;
        };
        let rows = rows_read.saturating_sub(self.rows_before);
        Duration::from_secs_f64(rows as f64 / rate as f64).saturating_sub(elapsed)
    }

    /// Waits until the pass is back at the rate; false when SIGINT/SIGTERM cut the wait.
    pub fn wait(&self, rows_read: u64) -> bool {
        let due = self.due(rows_read, self.started.elapsed());
        due.is_zero() || shutdown::sleep(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_the_rows_of_this_run_fit_the_rate() {
        let t = Throttle::new(Some(100), Instant::now(), 1_000);
        assert_eq!(
            t.due(1_200, Duration::from_millis(500)),
            Duration::from_millis(1_500)
        );
        assert_eq!(t.due(1_200, Duration::from_secs(3)), Duration::ZERO);
    }

    #[test]
    fn no_limit_never_waits() {
        let t = Throttle::new(None, Instant::now(), 0);
        assert_eq!(t.due(u64::MAX, Duration::ZERO), Duration::ZERO);
    }
}
