//! Step 1 of a window: the source side. One `COPY (SELECT … ORDER BY cursor, key LIMIT n)
//! TO STDOUT (FORMAT binary)` per window: rows leave the source as the server encodes them
//! and are never parsed here. SELECT only: nothing is written on the source.

use crate::catalog::TableShape;
use crate::keyspace::{KeySpace, Position, SliceKind};

/// The COPY statement that reads the next window after `pos` in a slice.
pub fn window_copy_sql(
    shape: &TableShape,
    ks: &KeySpace,
    pos: &Position,
    kind: &SliceKind,
    limit: u64,
) -> String {
    format!(
        "COPY (SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {limit}) TO STDOUT (FORMAT binary)",
        shape.column_list(None),
        shape.table.sql(),
        ks.remaining(pos, kind),
        ks.order_by(kind)
    )
}
