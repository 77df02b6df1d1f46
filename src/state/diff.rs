//! The diff pass's record (`--mode diff`): written after the comparison and after each
//! applied batch of windows, so `status` shows how far a running or interrupted diff pass got.

use super::keys::DIFF_PASS;
use super::records::DiffRecord;
use super::{JobState, StateError};

impl JobState {
    /// The current (or last) diff pass.
    pub fn diff_pass(&self) -> Result<Option<DiffRecord>, StateError> {
        self.get(DIFF_PASS)
    }

    /// Records the diff pass's progress (not flushed: the destination's contents decide
    /// what the next pass does).
    pub fn record_diff(&self, record: &DiffRecord) -> Result<(), StateError> {
        self.put(DIFF_PASS, record)
    }
}
