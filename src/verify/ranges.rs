//! Windows as cursor conditions an index on the cursor can serve: one window, a run of
//! consecutive windows, any of a list of them (the drill-down's filters).

use super::checksum::Checksums;
use crate::db::ident::typed_literal;

/// Above this many runs of consecutive differing windows, the drill-down tests a row's
/// window number instead of OR-ing cursor ranges.
const RANGE_RUNS: usize = 8;

/// Runs of consecutive numbers in an ascending list, as (first, last) pairs (pure); the
/// NULL-cursor window (-1) is a run of its own.
pub fn runs(windows: &[i64]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &w in windows {
        match out.last_mut() {
            Some((first, last)) if *first >= 0 && w == *last + 1 => *last = w,
            _ => out.push((w, w)),
        }
    }
    out
}

impl Checksums<'_> {
    /// The rows of a window as a cursor range the cursor's index can serve (the same rows
    /// as `window_of(row) = window`: `width_bucket` puts `c` in window `i` when
    /// `bounds[i-1] <= c < bounds[i]`).
    pub fn window_condition(&self, window: i64) -> String {
        let c = self.cursor();
        if window < 0 {
            return format!("{c} IS NULL");
        }
        let ct = &self.ks.cursor.1;
        let i = window as usize;
        let mut parts = vec![format!("{c} IS NOT NULL")];
        if i > 0 {
            if let Some(lower) = self.bounds.get(i - 1) {
                parts.push(format!("{c} >= {}", typed_literal(lower, ct)));
            }
        }
        if let Some(upper) = self.bounds.get(i) {
            parts.push(format!("{c} < {}", typed_literal(upper, ct)));
        }
        parts.join(" AND ")
    }

    /// Any of the given windows (ascending): runs of consecutive windows as one cursor range
    /// each (index-friendly; all the windows of the range are one condition); more than
    /// `RANGE_RUNS` runs as a window number test (one `width_bucket` a row, not one range
    /// test a run).
    pub fn any_window(&self, windows: &[i64]) -> String {
        let runs = runs(windows);
        if runs.len() > RANGE_RUNS {
            let list = windows.iter().map(i64::to_string).collect::<Vec<_>>();
            return format!(
                "({}) = ANY('{{{}}}'::int[])",
                self.window_of(),
                list.join(",")
            );
        }
        runs.iter()
            .map(|&(first, last)| format!("({})", self.windows_condition(first, last)))
            .collect::<Vec<_>>()
            .join(" OR ")
    }

    /// Windows `first..=last` as one cursor condition (window -1, NULL cursors, alone).
    fn windows_condition(&self, first: i64, last: i64) -> String {
        if first < 0 || first == last {
            return self.window_condition(first);
        }
        let c = self.cursor();
        let ct = &self.ks.cursor.1;
        let mut parts = vec![format!("{c} IS NOT NULL")];
        if first > 0 {
            if let Some(lower) = self.bounds.get(first as usize - 1) {
                parts.push(format!("{c} >= {}", typed_literal(lower, ct)));
            }
        }
        if let Some(upper) = self.bounds.get(last as usize) {
            parts.push(format!("{c} < {}", typed_literal(upper, ct)));
        }
        parts.join(" AND ")
    }
}
