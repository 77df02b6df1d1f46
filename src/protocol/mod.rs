//! The crash-safety protocol (docs/checkpoint-protocol.md), in ten lines:
//!
//! 1. A window's rows and its receipt commit in ONE destination transaction (`copy`).
//! 2. Only after that COMMIT returned is the window marked committed in the state store,
//!    together with the pass's advanced slice, in one batch (`checkpoint`).
//! 3. The batch is flushed in the background, in order; a kill may lose the last few.
//! 4. A lost, stale or corrupt state is never trusted over the destination: on start, the
//!    receipts of the latest pass decide where each slice resumes (`reconcile`).
//! 5. Without any state, the receipts alone give the resume point (`receipts`).
//! 6. Applying a window twice changes nothing (the upsert skips equal rows), so a window
//!    committed but not checkpointed is re-read, never double-applied in effect.

pub mod checkpoint;
mod receipt_row;
pub mod receipts;
pub mod reconcile;
