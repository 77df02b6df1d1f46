//! The commit-then-checkpoint step (docs/checkpoint-protocol.md). After the destination
//! COMMIT of a window (rows + receipt), the window is marked committed and the pass advanced
//! in ONE sled batch, handed to the state's flusher thread, which applies and flushes
//! batches in order (`state/flusher.rs`). This module is the only writer of committed
//! progress.

use crate::copy::WindowOutcome;
use crate::runtime::failpoint;
use crate::state::records::{PassRecord, WindowRecord, WindowStatus};
use crate::state::{JobState, StateError};

/// Advances the window's slice past a committed window (pure). Window numbers are given
/// out when a window starts (`PassRecord::next_window`), not here.
pub fn advance(pass: &mut PassRecord, window: &WindowRecord, outcome: &WindowOutcome) {
    pass.rows_read += outcome.rows_read;
    pass.rows_written += outcome.rows_written;
    pass.windows_committed += 1;
    if let Some(slice) = pass.progress.get_mut(window.slice) {
        slice.position = outcome.end.clone();
        slice.done = outcome.slice_done;
        slice.last_window = Some(window.window);
    }
}

/// checkpoint-protocol.md steps 2 and 3: the committed window and the advanced pass as one
/// batch, handed to the flusher thread, which writes and flushes batches in order. Must
/// only be called after the destination COMMIT returned.
pub fn commit(
    state: &JobState,
    pass: &mut PassRecord,
    window: &mut WindowRecord,
    outcome: &WindowOutcome,
) -> Result<(), StateError> {
    window.status = WindowStatus::Committed;
    window.rows_read = outcome.rows_read;
    window.rows_written = outcome.rows_written;
    advance(pass, window, outcome);
    state.checkpoint(window, pass)?;
    failpoint::hit(failpoint::AFTER_CHECKPOINT);
    Ok(())
}
