//! Step 1 of a window: the source side. One `COPY (SELECT … ORDER BY cursor, key LIMIT n)
//! TO STDOUT (FORMAT binary)` per window (or `WHERE ctid` block range, for a first load): rows leave the source as the server encodes them
//! and are never parsed here. SELECT only: nothing is written on the source.

use crate::catalog::TableShape;
use crate::keyspace::{KeySpace, Position, SliceKind};

/// The COPY statement that reads the next window after `pos` in a slice: the next `limit`
/// rows in (cursor, key) order, or the next blocks of a block slice in heap order.
pub fn window_copy_sql(
    shape: &TableShape,
    ks: &KeySpace,
    pos: &Position,
    kind: &SliceKind,
    limit: u64,
) -> String {
    let select = match (KeySpace::block_window(pos, kind, limit), kind) {
        (Some((from, end)), SliceKind::Blocks { upper, .. }) => format!(
            "SELECT {} FROM {} WHERE {}",
            shape.column_list(None),
            shape.table.sql(),
            ks.blocks(from, end, upper.as_deref())
        ),
        _ => format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {limit}",
            shape.column_list(None),
            shape.table.sql(),
            ks.remaining(pos, kind),
            ks.order_by(kind).unwrap_or_default()
        ),
    };
    format!("COPY ({select}) TO STDOUT (FORMAT binary)")
}
