//! A window staged in its destination transaction: the rows are in (appended to the target,
//! or in the staging table, upserted by the statement that carries the receipt), its end is
//! known, nothing is committed. The caller records the window as in flight, then commits it
//! with its receipt — checkpoint-protocol.md step 1, rows and receipt in one transaction.
//! Dropped uncommitted, it rolls back.

use crate::db::txn::Txn;
use crate::db::{DbError, DbErrorKind, PgResultExt, Side};
use crate::error::Error;
use crate::keyspace::Position;
use crate::runtime::failpoint;

/// What a window did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowOutcome {
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows inserted or changed in the destination (of a window upserted at its commit:
    /// known once committed).
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
    upserts_at_commit: bool,
}

impl<'a> StagedWindow<'a> {
    pub(super) fn new(txn: Txn<'a>, outcome: WindowOutcome, upserts_at_commit: bool) -> Self {
        StagedWindow {
            txn,
            outcome,
            upserts_at_commit,
        }
    }

    /// The rows wait in the staging table: the statement given to `commit_with` must
    /// upsert them and return the rows it wrote (`Receipts::insert_applying_sql`).
    pub fn upserts_at_commit(&self) -> bool {
        self.upserts_at_commit
    }

    /// What the window will have done once committed.
    pub fn outcome(&self) -> &WindowOutcome {
        &self.outcome
    }

    /// Runs `receipt_sql` and COMMIT in one round trip.
    pub fn commit_with(self, receipt_sql: &str) -> Result<WindowOutcome, Error> {
        failpoint::hit(failpoint::BEFORE_DEST_COMMIT);
        let mut outcome = self.outcome;
        let doing = if self.upserts_at_commit {
            "upserting and committing a window"
        } else {
            "committing a window"
        };
        let returned = self
            .txn
            .commit_with(receipt_sql)
            .on(Side::Destination, doing)?;
        if self.upserts_at_commit {
            outcome.rows_written = returned.and_then(|n| n.parse().ok()).ok_or_else(|| {
                Error::Db(DbError::other(
                    Side::Destination,
                    DbErrorKind::Corrupt,
                    doing,
                    "the upsert's statement returned no row count",
                ))
            })?;
        }
        failpoint::hit(failpoint::AFTER_DEST_COMMIT);
        Ok(outcome)
    }
}
