//! How many rows the next window takes. Fixed when the user says so (`--chunksize`,
//! `--window-size`); otherwise sized by time: each committed window reports its rows, bytes
//! and the time since the worker's previous commit, and the next window aims at
//! `--window-target` of work at that rate — so a link's round trips are paid once per that
//! much work, and a crash still loses at most one window. A pass's first window starts from
//! the pace an earlier pass of the job measured (`state::pace`), or from
//! `FIRST_WINDOW_ROWS` without one. Bounded by a row cap and a byte cap (the staging table
//! and the destination transaction of one window), and by a growth factor per window so one
//! fast window does not overshoot. Shared by a pass's workers and their read-ahead threads.

use crate::state::pace::Pace;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Rows of the first window of a pass sized by time when no earlier pace is known.
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
    /// The size comes from a measured pace (this pass's committed window or an earlier
    /// pass's), not the first guess.
    informed: AtomicBool,
    /// Rows and pace of the pass's largest window measured so far.
    largest: Mutex<Option<(u64, Pace)>>,
}

impl WindowSize {
    /// Every window takes `rows` rows.
    pub fn fixed(rows: u64) -> Self {
        WindowSize {
            rows: AtomicU64::new(rows.max(1)),
            target: None,
            informed: AtomicBool::new(false),
            largest: Mutex::new(None),
        }
    }

    /// Windows of about `target` of work each, the first from `pace` when an earlier pass
    /// measured one ([`first_rows`]), else `FIRST_WINDOW_ROWS`.
    pub fn by_time(target: Duration, pace: Option<Pace>) -> Self {
        WindowSize {
            rows: AtomicU64::new(pace.map_or(FIRST_WINDOW_ROWS, |p| first_rows(p, target))),
            target: Some(target),
            informed: AtomicBool::new(pace.is_some()),
            largest: Mutex::new(None),
        }
    }

    /// Windows are sized by time (each about the target's work), not a fixed row count.
    pub fn sized_by_time(&self) -> bool {
        self.target.is_some()
    }

    /// The size comes from a measured pace (before, it is the first guess).
    pub fn informed(&self) -> bool {
        self.informed.load(Ordering::Relaxed)
    }

    /// Rows the next window takes.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// The pace of the pass's largest window measured — the one that best amortised a
    /// window's fixed costs, as a next pass's first window would. Sized by time only:
    /// `observe` measures nothing for a fixed size.
    pub fn pace(&self) -> Option<Pace> {
        self.largest.lock().ok()?.map(|(_, pace)| pace)
    }

    /// A committed window of `rows` rows and `bytes` bytes (0: not measured) took
    /// `elapsed` since the worker's previous commit.
    pub fn observe(&self, rows: u64, bytes: u64, elapsed: Duration) {
        let Some(target) = self.target else { return };
        self.informed.store(true, Ordering::Relaxed);
        let current = self.rows();
        self.rows.store(
            next_rows(current, rows, bytes, elapsed, target),
            Ordering::Relaxed,
        );
        if rows >= MIN_ROWS && elapsed >= Duration::from_millis(5) {
            let pace = Pace {
                rows_per_sec: rows as f64 / elapsed.as_secs_f64(),
                bytes_per_row: bytes / rows,
            };
            if let Ok(mut largest) = self.largest.lock() {
                if largest.is_none_or(|(most, _)| rows >= most) {
                    *largest = Some((rows, pace));
                }
            }
        }
    }
}

/// A pass's first window at an earlier pass's `pace` (pure): the target's rows at that pace,
/// as every later window aims at, within the row and byte caps.
pub fn first_rows(pace: Pace, target: Duration) -> u64 {
    let rows = (pace.rows_per_sec * target.as_secs_f64()) as u64;
    let byte_cap = MAX_BYTES
        .checked_div(pace.bytes_per_row)
        .unwrap_or(MAX_ROWS);
    rows.min(byte_cap).clamp(MIN_ROWS, MAX_ROWS)
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
    fn a_time_sized_window_is_informed_once_a_commit_reports_and_a_fixed_one_never() {
        let sized = WindowSize::by_time(TWO, None);
        assert!(!sized.informed());
        assert_eq!(sized.rows(), FIRST_WINDOW_ROWS);
        sized.observe(10_000, 0, Duration::from_millis(100));
        assert!(sized.informed());
        let fixed = WindowSize::fixed(500);
        fixed.observe(500, 0, Duration::from_millis(100));
        assert!(!fixed.informed());
        assert_eq!(fixed.pace(), None);
    }

    #[test]
    fn an_earlier_pace_sizes_the_first_window_at_the_target() {
        let pace = Pace {
            rows_per_sec: 100_000.0,
            bytes_per_row: 112,
        };
        let sized = WindowSize::by_time(TWO, Some(pace));
        assert!(sized.informed());
        assert_eq!(sized.rows(), 200_000);
        // 4 KiB rows: the byte cap (65,536 rows) holds.
        let wide = Pace {
            rows_per_sec: 1_000_000.0,
            bytes_per_row: 4096,
        };
        assert_eq!(first_rows(wide, TWO), 65_536);
        // A crawl still takes the fewest rows a window takes.
        let crawl = Pace {
            rows_per_sec: 10.0,
            bytes_per_row: 0,
        };
        assert_eq!(first_rows(crawl, TWO), MIN_ROWS);
    }

    #[test]
    fn the_pace_kept_is_the_largest_windows() {
        let sized = WindowSize::by_time(TWO, None);
        assert_eq!(sized.pace(), None);
        sized.observe(10_000, 1_120_000, Duration::from_millis(500));
        sized.observe(40_000, 4_480_000, Duration::from_millis(400));
        // A small tail, quicker per row or not, does not replace it.
        sized.observe(2_000, 0, Duration::from_millis(5));
        let pace = sized.pace().unwrap();
        assert_eq!(pace.rows_per_sec, 100_000.0);
        assert_eq!(pace.bytes_per_row, 112);
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
