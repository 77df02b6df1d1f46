//! `--deletes`: a cursor cannot see a deleted row, so after a pass both tables are compared
//! by key alone — verify's windows of count + sum of key hashes on both sides at once, the
//! differing windows read as keys — and the destination rows whose key the source no longer
//! has, anywhere in the table, are deleted.
//!
//! Safe on a live source (docs/consistency.md, "Deletes"): a row is deleted only when the
//! source lacked its key when looked up after the comparison; a key the source inserts again
//! later carries a newer cursor and comes back with the next pass. Each batch is one
//! transaction; deleting rows already gone changes nothing, so a sweep cut short by a crash
//! is finished by the next one.

use super::{RowDiffKind, VerifyOptions};
use crate::error::Error;
use crate::job::databases::Databases;
use crate::job::JobSpec;
use std::time::Instant;

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteSummary {
    /// Destination rows deleted.
    pub rows_deleted: u64,
    /// Windows compared.
    pub windows: usize,
    /// Seconds the sweep took.
    pub seconds: f64,
}

/// Deletes the destination rows whose key the source no longer has.
pub fn sweep(spec: &JobSpec, db: &Databases) -> Result<DeleteSummary, Error> {
    let started = Instant::now();
    // The whole table: a row synced by an earlier pass may lie past today's watermark (the
    // source's largest cursors were deleted since).
    let options = VerifyOptions {
        all: true,
        from: None,
        to: None,
        window_rows: 100_000,
        progress: false,
        chunk_blocks: super::scan::CHUNK_BLOCKS,
        text_hash: false,
        keys_only: true,
        skip_window_sums: false,
        whole_first: false,
    };
    let report = super::run(spec, db, &options)?;
    // Rows the source still has elsewhere (their cursor moved past the range) were turned
    // into `ChangedSinceLastPass` by the lookup; only keys absent from the source are left.
    let gone: Vec<Vec<String>> = report
        .differing_rows
        .iter()
        .filter(|d| d.kind == RowDiffKind::ExtraInDestination)
        .map(|d| d.key.clone())
        .collect();
    let rows_deleted = super::repair::delete_keys(&mut *db.dest.get()?, db, &gone)?;
    Ok(DeleteSummary {
        rows_deleted,
        windows: report.windows,
        seconds: started.elapsed().as_secs_f64(),
    })
}
