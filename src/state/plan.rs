//! A pass's plan: the pass record with the late-commit snapshot and holdback taken when it
//! was planned, written as one batch through the flusher (checkpoint-protocol.md step 0).

use super::records::{Holdback, PassRecord, PassSnapshot};
use super::{codec, keys, JobState, StateError};

impl JobState {
    /// Pending late-commit transactions.
    pub fn holdback(&self) -> Result<Holdback, StateError> {
        Ok(self.get(keys::HOLDBACK)?.unwrap_or_default())
    }

    /// The snapshot recorded with the current pass.
    pub fn snapshot(&self) -> Result<Option<PassSnapshot>, StateError> {
        self.get(keys::SNAPSHOT)
    }

    /// Stores a new plan with its snapshot and the holdback left after planning, atomically:
    /// handed to the flusher, which writes and flushes it while the caller prepares the
    /// destination; [`JobState::wait_durable`] before anything commits
    /// (checkpoint-protocol.md step 0).
    pub fn record_plan(
        &self,
        pass: &PassRecord,
        snapshot: &PassSnapshot,
        holdback: &Holdback,
    ) -> Result<(), StateError> {
        self.settle()?;
        let mut batch = sled::Batch::default();
        batch.insert(keys::PASS, codec::encode(pass));
        batch.insert(keys::SNAPSHOT, codec::encode(snapshot));
        batch.insert(keys::HOLDBACK, codec::encode(holdback));
        self.hand_over(batch)
    }

    /// Waits until everything of this job handed to the flusher is written and flushed.
    pub fn wait_durable(&self) -> Result<(), StateError> {
        self.settle()
    }
}
