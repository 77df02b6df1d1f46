//! Checks of how the source's cursor can be read: an index that starts with it (a large
//! table without one is refused, naming the `CREATE INDEX CONCURRENTLY` to run, unless
//! `--allow-unindexed-cursor`; a small one is warned about), and a key that includes it.

use crate::catalog::{self, TableShape};
use crate::error::Error;
use crate::job::JobSpec;

/// Above this many rows (planner estimate), a cursor that starts no index refuses the job
/// unless `--allow-unindexed-cursor`: below it, a scan per window costs little.
const UNINDEXED_ROWS: u64 = 100_000;

/// Refuses or warns about how the cursor of `shape` can be read (a cursor job's).
pub(super) fn check(spec: &JobSpec, shape: &TableShape) -> Result<(), Error> {
    if !shape.cursor_indexed {
        // The cursor, then the key columns it is not one of (a table partitioned by its
        // cursor has the cursor in its key).
        let columns = std::iter::once(spec.cursor.as_str()).chain(
            shape
                .primary_key
                .iter()
                .map(String::as_str)
                .filter(|k| *k != spec.cursor),
        );
        // A partitioned table takes no CONCURRENTLY index (its partitions do, one by one).
        let statement = format!(
            "CREATE INDEX{} ON {} ({})",
            if shape.partitioned {
                ""
            } else {
                " CONCURRENTLY"
            },
            spec.table,
            catalog::join_quoted(columns, None)
        );
        if shape.estimated_rows > UNINDEXED_ROWS as f64 && !spec.allow_unindexed_cursor {
            return Err(catalog::CatalogError::CursorUnindexed {
                table: spec.table.clone(),
                column: spec.cursor.clone(),
                rows: shape.estimated_rows.max(0.0) as u64,
                statement,
            }
            .into());
        }
        let message = format!(
            "source: no index starts with column {:?}; every window will scan the table. Create one: {statement}",
            spec.cursor,
        );
        crate::runtime::output::note(&spec.output, "warn", &message);
    }
    if shape.primary_key.contains(&spec.cursor) {
        let message = format!(
            "source: the key ({}) includes the cursor column {:?} (as a table partitioned by its cursor must): an update that moves the cursor gives the row a new key, and the destination keeps the old version (`verify` reports it). Fine for rows that are only inserted; otherwise name a unique key without the cursor with --key",
            shape.key_list(None),
            spec.cursor
        );
        crate::runtime::output::note(&spec.output, "warn", &message);
    }
    Ok(())
}
