//! The pace a job's windows went at, per way of applying them: a pass's first window sized
//! by time starts from it instead of a blind guess (copy/window_size.rs). Informational: a
//! missing or unreadable pace only means a first window of the default size.

use super::keys::PACES;
use super::records::ApplyMode;
use super::JobState;
use serde::{Deserialize, Serialize};

/// An upsert (staging COPY + upsert) is assumed this many times slower per row than an
/// append (COPY straight in) until one was measured. Measured here (2M-row field table,
/// uuid key, 10% changed): ~580k rows/s appending against ~130k rows/s upserting through
/// 10 ms round trips, ~4.5×.
pub const UPSERT_SLOWDOWN: f64 = 4.0;

/// Rows per second and bytes per row (0: not measured) of a pass's largest window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pace {
    /// Rows applied per second of the worker's time (reading, applying, committing).
    pub rows_per_sec: f64,
    /// Binary COPY bytes per row.
    pub bytes_per_row: u64,
}

/// The last pace measured appending and upserting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Paces {
    /// `Append` and `AppendKeyLater` passes.
    pub append: Option<Pace>,
    /// `Upsert` passes.
    pub upsert: Option<Pace>,
}

impl Paces {
    /// The pace to expect applying by `mode`: the last measured that way; for an upsert
    /// with only an append measured, that pace over [`UPSERT_SLOWDOWN`].
    pub fn expected(&self, mode: ApplyMode) -> Option<Pace> {
        match mode {
            ApplyMode::Append | ApplyMode::AppendKeyLater => self.append,
            ApplyMode::Upsert => self.upsert.or_else(|| {
                self.append.map(|p| Pace {
                    rows_per_sec: p.rows_per_sec / UPSERT_SLOWDOWN,
                    ..p
                })
            }),
        }
    }

    /// These paces with `pace` measured applying by `mode`.
    pub fn with(mut self, mode: ApplyMode, pace: Pace) -> Paces {
        match mode {
            ApplyMode::Append | ApplyMode::AppendKeyLater => self.append = Some(pace),
            ApplyMode::Upsert => self.upsert = Some(pace),
        }
        self
    }
}

impl JobState {
    /// The paces earlier passes measured (none when missing or unreadable).
    pub fn paces(&self) -> Paces {
        self.get(PACES).ok().flatten().unwrap_or_default()
    }

    /// Records the paces (not flushed: informational).
    pub fn record_paces(&self, paces: &Paces) -> Result<(), super::StateError> {
        self.put(PACES, paces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPEND: Pace = Pace {
        rows_per_sec: 400_000.0,
        bytes_per_row: 112,
    };

    #[test]
    fn an_upsert_expects_its_own_pace_or_the_append_pace_slowed() {
        let paces = Paces::default();
        assert_eq!(paces.expected(ApplyMode::Upsert), None);
        let paces = paces.with(ApplyMode::AppendKeyLater, APPEND);
        assert_eq!(paces.expected(ApplyMode::Append), Some(APPEND));
        let slowed = paces.expected(ApplyMode::Upsert).unwrap();
        assert_eq!(slowed.rows_per_sec, 100_000.0);
        assert_eq!(slowed.bytes_per_row, 112);
        let upsert = Pace {
            rows_per_sec: 50_000.0,
            bytes_per_row: 120,
        };
        let paces = paces.with(ApplyMode::Upsert, upsert);
        assert_eq!(paces.expected(ApplyMode::Upsert), Some(upsert));
        assert_eq!(paces.expected(ApplyMode::AppendKeyLater), Some(APPEND));
    }
}
