//! Slices of a first load by heap blocks: whether a table can be read by TID range scans,
//! how many blocks it has at plan time, and block ranges sized from its rows per block.
//! Why reading by blocks loses and duplicates nothing is in docs/consistency.md.

use super::{Position, Sizing, Slice, SliceKind};
use crate::db::ident::{literal, QualifiedName};
use crate::db::{DbError, PgResultExt, Side};

/// At most this many slices per pass.
const MAX_SLICES: u64 = 10_000;
/// Blocks counted to learn rows per block when the planner has no statistics yet.
const SAMPLE_BLOCKS: u64 = 32;

/// The heap of a table when a pass is planned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heap {
    /// Blocks in the table's main fork now: every row committed before this moment is in
    /// one of them.
    pub blocks: u64,
    /// Rows per block (planner statistics, or counted in the first blocks).
    pub rows_per_block: f64,
}

/// What the catalog says of a table's heap at plan time ([`heap_sql`]'s row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeapFacts {
    /// TID range scans can read it: PostgreSQL 14+, and a table with a heap of its own (not
    /// a partitioned table or an inheritance parent: their rows live in other relations,
    /// whose block numbers overlap).
    pub scannable: bool,
    /// Blocks in the main fork now.
    pub blocks: i64,
    /// Planner statistics: rows and pages at the last ANALYZE or VACUUM.
    pub reltuples: f64,
    /// See `reltuples`.
    pub relpages: i64,
}

/// The statement reading a table's [`HeapFacts`] (columns `scannable, blocks, reltuples,
/// relpages`), to be read inside the plan's statement (`keyspace::at_plan`).
pub fn heap_sql(table: &QualifiedName) -> String {
    format!(
        "SELECT current_setting('server_version_num')::int >= 140000 AND c.relkind IN ('r', 'm') \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid) AS scannable, \
                (pg_relation_size(c.oid) / current_setting('block_size')::bigint)::bigint AS blocks, \
                c.reltuples::float8 AS reltuples, c.relpages::bigint AS relpages \
         FROM pg_catalog.pg_class c WHERE c.oid = {}::regclass",
        literal(&table.sql())
    )
}

/// The table's blocks now and its rows per block, from its [`HeapFacts`]; `None` when TID
/// range scans cannot read it. Without planner statistics yet, the rows per block are
/// counted in the first blocks.
pub fn heap(
    client: &mut postgres::Client,
    table: &QualifiedName,
    facts: HeapFacts,
) -> Result<Option<Heap>, DbError> {
    if !facts.scannable {
        return Ok(None);
    }
    let blocks = facts.blocks.max(0) as u64;
    let rows_per_block = if facts.reltuples > 0.0 && facts.relpages > 0 {
        facts.reltuples / facts.relpages as f64
    } else if blocks > 0 {
        let sample = blocks.min(SAMPLE_BLOCKS);
        let sql = format!(
            "SELECT count(*) FROM {} WHERE ctid < '({sample},0)'::tid",
            table.sql()
        );
        let rows: i64 = client
            .query_typed_one(&sql, &[])
            .on(Side::Source, "measuring the table's heap")?
            .get(0);
        rows as f64 / sample as f64
    } else {
        0.0
    };
    Ok(Some(Heap {
        blocks,
        rows_per_block,
    }))
}

/// [`HeapFacts`] read on their own (a pass rebuilt from the receipts; `verify`'s chunks of
/// blocks, on either side).
pub fn heap_facts(
    client: &mut postgres::Client,
    side: Side,
    table: &QualifiedName,
) -> Result<HeapFacts, DbError> {
    let row = client
        .query_typed_one(&heap_sql(table), &[])
        .on(side, "measuring the table's heap")?;
    Ok(HeapFacts {
        scannable: row.get(0),
        blocks: row.get(1),
        reltuples: row.get(2),
        relpages: row.get(3),
    })
}

/// Cuts blocks `from..heap.blocks` into contiguous slices (pure): each
/// slice starts where the previous ended, the last ends at the heap's last block, none
/// overlaps. Rows whose cursor is past `upper` are left to the next pass.
pub fn cut(from: u64, heap: Heap, sizing: Sizing, upper: Option<&str>) -> Vec<Slice> {
    if from >= heap.blocks {
        return Vec::new();
    }
    let per_block = heap.rows_per_block.max(1.0);
    let rows_per_block = per_block.ceil() as u64;
    let left = heap.blocks - from;
    let mut slice_blocks = ((sizing.slice_rows as f64 / per_block).ceil() as u64).max(1);
    if sizing.min_slices > 1 {
        let floor = ((sizing.min_rows as f64 / per_block).ceil() as u64).max(1);
        slice_blocks = slice_blocks.min(left.div_ceil(sizing.min_slices).max(floor));
    }
    let slice_blocks = slice_blocks.max(left.div_ceil(MAX_SLICES));
    (from..heap.blocks)
        .step_by(slice_blocks as usize)
        .map(|start| {
            let end = start.saturating_add(slice_blocks).min(heap.blocks);
            Slice {
                lower: Position::AtBlock(start),
                kind: SliceKind::Blocks {
                    end,
                    rows_per_block,
                    upper: upper.map(str::to_string),
                },
                estimated_rows: ((end - start) as f64 * heap.rows_per_block).round() as u64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizing(slice_rows: u64, min_slices: u64) -> Sizing {
        Sizing {
            slice_rows,
            min_slices,
            min_rows: 1,
        }
    }

    fn ends(slices: &[Slice]) -> Vec<(u64, u64)> {
        slices
            .iter()
            .map(|s| match (&s.lower, &s.kind) {
                (Position::AtBlock(a), SliceKind::Blocks { end, .. }) => (*a, *end),
                other => panic!("not a block slice: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn slices_cover_every_block_once_up_to_the_heap_end() {
        let heap = Heap {
            blocks: 1000,
            rows_per_block: 100.0,
        };
        let s = cut(0, heap, sizing(30_000, 1), Some("9"));
        assert_eq!(
            ends(&s),
            vec![(0, 300), (300, 600), (600, 900), (900, 1000)]
        );
        let SliceKind::Blocks {
            rows_per_block,
            upper,
            ..
        } = &s[0].kind
        else {
            unreachable!()
        };
        assert_eq!((*rows_per_block, upper.as_deref()), (100, Some("9")));
        assert_eq!(s[3].estimated_rows, 10_000);
    }

    #[test]
    fn jobs_get_at_least_their_slices_and_a_resume_starts_mid_heap() {
        let heap = Heap {
            blocks: 1000,
            rows_per_block: 10.0,
        };
        let s = cut(200, heap, sizing(10_000_000, 8), None);
        assert_eq!(s.len(), 8);
        assert_eq!(ends(&s).first(), Some(&(200, 300)));
        assert_eq!(ends(&s).last(), Some(&(900, 1000)));
        assert!(cut(1000, heap, sizing(1000, 1), None).is_empty());
    }

    #[test]
    fn slices_wanted_by_jobs_keep_their_floor_of_rows() {
        let heap = Heap {
            blocks: 1000,
            rows_per_block: 10.0,
        };
        // 10,000 rows, 8 slices wanted, 2,500 rows each at least: 4 slices of 250 blocks.
        let floored = Sizing {
            min_rows: 2_500,
            ..sizing(10_000_000, 8)
        };
        assert_eq!(
            ends(&cut(0, heap, floored, None)),
            vec![(0, 250), (250, 500), (500, 750), (750, 1000)]
        );
        // A table smaller than the floor is one slice.
        let whole = Sizing {
            min_rows: 50_000,
            ..sizing(10_000_000, 8)
        };
        assert_eq!(ends(&cut(0, heap, whole, None)), vec![(0, 1000)]);
        // --slice-rows smaller than the floor still cuts.
        let small = Sizing {
            min_rows: 50_000,
            ..sizing(2_000, 8)
        };
        assert_eq!(cut(0, heap, small, None).len(), 5);
    }

    #[test]
    fn a_tiny_table_gets_whole_blocks() {
        let heap = Heap {
            blocks: 3,
            rows_per_block: 0.0,
        };
        assert_eq!(
            ends(&cut(0, heap, sizing(1, 4), None)),
            vec![(0, 1), (1, 2), (2, 3)]
        );
    }
}
