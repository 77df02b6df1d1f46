//! How many rows the next window takes. Fixed when the user says so (`--chunksize`,
//! `--window-size`); otherwise sized by time: each committed window reports its rows, bytes
//! and the time since the worker's previous commit, and the next window aims at
//! `--window-target` of work at that rate — so a link's round trips are paid once per that
//! much work, and a crash still loses at most one window. Bounded by a row cap and a byte
//! cap (the staging table and the destination transaction of one window), and by a growth
//! factor per window so one fast window does not overshoot. Shared by a pass's workers and
//! their read-ahead threads (one atomic).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Rows of the first window of a pass sized by time.
pub const FIRST_WINDOW_ROWS: u64 = 10_000;
/// Fewest rows a window sized by time takes.
const MIN_ROWS: u64 = 1_000;
/// Most rows a window takes.
const MAX_ROWS: u64 = 2_000_000;
/// Most bytes (binary COPY) a window sized by time takes.
const MAX_BYTES: u64 = 256 << 20;
/// A window is at most this many times the previous one, and at least 1/this.
const GROWTH: u64 = 4;

/// The window size of a pass.
#[derive(Debug)]
pub struct WindowSize {
    rows: AtomicU64,
    /// `None`: fixed size.
    target: Option<Duration>,
    /// Windows committed and reported so far.
    observed: AtomicU64,
}

impl WindowSize {
    /// Every window takes `rows` rows.
    pub fn fixed(rows: u64) -> Self {
        WindowSize {
            rows: AtomicU64::new(rows.max(1)),
            target: None,
            observed: AtomicU64::new(0),
        }
    }

    /// Windows of about `target` of work each, starting at `FIRST_WINDOW_ROWS`.
    pub fn by_time(target: Duration) -> Self {
        WindowSize {
            rows: AtomicU64::new(FIRST_WINDOW_ROWS),
            target: Some(target),
            observed: AtomicU64::new(0),
        }
    }

    /// Windows are sized by time (each about the target's work), not a fixed row count.
    pub fn sized_by_time(&self) -> bool {
        self.target.is_some()
    }

    /// A committed window has told the pace (before, the size is the first guess).
    pub fn observed(&self) -> bool {
        self.observed.load(Ordering::Relaxed) > 0
    }

    /// Rows the next window takes.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// A committed window of `rows` rows and `bytes` bytes (0: not measured) took
    /// `elapsed` since the worker's previous commit.
    pub fn observe(&self, rows: u64, bytes: u64, elapsed: Duration) {
        let Some(target) = self.target else { return };
        self.observed.fetch_add(1, Ordering::Relaxed);
        let current = self.rows();
        self.rows.store(
            next_rows(current, rows, bytes, elapsed, target),
            Ordering::Relaxed,
        );
    }
}

/// The next window's rows after a window of `rows` rows and `bytes` bytes took `elapsed`,
/// aiming at `target` (pure). A window too small or too quick to time keeps the size.
pub fn next_rows(current: u64, rows: u64, bytes: u64, elapsed: Duration, target: Duration) -> u64 {
    if rows < MIN_ROWS.min(current) || elapsed < Duration::from_millis(5) {
        return current;
    }
    let rate = rows as f64 / elapsed.as_secs_f64();
    let mut next = (rate * target.as_secs_f64()) as u64;
    next = next.clamp(current / GROWTH, current.saturating_mul(GROWTH));
    if bytes > 0 {
        next = next.min(MAX_BYTES / bytes.div_ceil(rows).max(1));
    }
    next.clamp(MIN_ROWS, MAX_ROWS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: Duration = Duration::from_secs(2);

    #[test]
    fn a_fast_link_grows_windows_toward_the_target_at_most_fourfold_each() {
        // 10,000 rows in 0.1 s: 100k rows/s, so 2 s is 200k rows; capped at 4x.
        let n = next_rows(10_000, 10_000, 0, Duration::from_millis(100), TWO);
        assert_eq!(n, 40_000);
        let n = next_rows(40_000, 40_000, 0, Duration::from_millis(400), TWO);
        assert_eq!(n, 160_000);
        let n = next_rows(160_000, 160_000, 0, Duration::from_millis(1600), TWO);
        assert_eq!(n, 200_000);
    }

    #[test]
    fn a_slow_window_shrinks_the_next_and_caps_hold() {
        assert_eq!(
            next_rows(100_000, 100_000, 0, Duration::from_secs(8), TWO),
            25_000
        );
        assert_eq!(
            next_rows(1_000, 1_000, 0, Duration::from_secs(60), TWO),
            MIN_ROWS
        );
        // 1 KiB rows: 256 MiB is 262,144 rows.
        let n = next_rows(
            1_000_000,
            1_000_000,
            1_000_000 * 1024,
            Duration::from_secs(1),
            TWO,
        );
        assert_eq!(n, 262_144);
        assert_eq!(
            next_rows(MAX_ROWS, MAX_ROWS, 0, Duration::from_millis(10), TWO),
            MAX_ROWS
        );
    }

    #[test]
    fn a_time_sized_window_is_observed_once_a_commit_reports_and_a_fixed_one_never() {
        let sized = WindowSize::by_time(TWO);
        assert!(!sized.observed());
        sized.observe(10_000, 0, Duration::from_millis(100));
        assert!(sized.observed());
        let fixed = WindowSize::fixed(500);
        fixed.observe(500, 0, Duration::from_millis(100));
        assert!(!fixed.observed());
    }

    #[test]
    fn a_short_or_instant_window_says_nothing_about_the_rate() {
        assert_eq!(
            next_rows(50_000, 10, 0, Duration::from_secs(1), TWO),
            50_000
        );
        assert_eq!(next_rows(50_000, 50_000, 0, Duration::ZERO, TWO), 50_000);
        let fixed = WindowSize::fixed(7);
        fixed.observe(7, 0, Duration::from_secs(9));
        assert_eq!(fixed.rows(), 7);
    }
}
