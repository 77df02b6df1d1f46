//! A window staged in its destination transaction: the rows are in (appended to the target,
//! or upserted from the staging table), its end is known, nothing is committed. The caller
//! records the window as in flight, then commits it with its receipt — checkpoint-protocol.md
//! step 1, rows and receipt in one transaction. Dropped uncommitted, it rolls back.

use crate::db::txn::Txn;
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::keyspace::Position;
use crate::runtime::failpoint;

/// What a window did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowOutcome {
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows inserted or changed in the destination.
    pub rows_written: u64,
    /// Position after the window.
    pub end: Position,
    /// The window exhausted its slice.
    pub slice_done: bool,
    /// Bytes of binary COPY it carried (0: not measured on this path).
    pub bytes: u64,
}

/// A window's rows in an open destination transaction.
pub struct StagedWindow<'a> {
    txn: Txn<'a>,
    outcome: WindowOutcome,
}

impl<'a> StagedWindow<'a> {
    pub(super) fn new(txn: Txn<'a>, outcome: WindowOutcome) -> Self {
        StagedWindow { txn, outcome }
    }

    /// What the window will have done once committed.
    pub fn outcome(&self) -> &WindowOutcome {
        &self.outcome
    }

    /// Runs `receipt_sql` and COMMIT in one round trip.
    pub fn commit_with(self, receipt_sql: &str) -> Result<WindowOutcome, Error> {
        failpoint::hit(failpoint::BEFORE_DEST_COMMIT);
        self.txn
            .commit_with(receipt_sql)
            .on(Side::Destination, "committing a window")?;
        failpoint::hit(failpoint::AFTER_DEST_COMMIT);
        Ok(self.outcome)
    }
}
