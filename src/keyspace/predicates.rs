//! Keyset windows on (cursor, primary key). A window is "the next N rows after a position,
//! in (cursor, key) order, within the slice" — `WHERE (c, k) > ($c, $k) AND c <= $upper
//! ORDER BY c, k LIMIT N` — never OFFSET or ROW_NUMBER over a range.
//!
//! Why ties are safe: the order (cursor, key) is total because the key is unique, so the
//! row after a position is well defined even when thousands of rows share one cursor value.
//! A window that ends in the middle of a run of equal cursors ends at a (cursor, key) pair;
//! the next window starts strictly after that pair and picks up the rest of the run. No row
//! is in two windows and none falls between two.
//!
//! The window's end is learned from the rows just copied (the last row staged), so cutting
//! a window costs no extra query on the source.
//!
//! A first load may instead read the heap by block ranges (`SliceKind::Blocks`): a window is
//! a TID range scan of whole blocks, its end known before it is read. Why that loses and
//! duplicates nothing is in docs/consistency.md.

use super::{KeySpace, Position, SliceKind};
use crate::db::ident::{quote, typed_literal};

impl KeySpace {
    /// SQL condition for the rows of a slice that are after `pos`.
    pub fn remaining(&self, pos: &Position, kind: &SliceKind) -> String {
        let (c, ct) = (&quote(&self.cursor.0), &self.cursor.1);
        let upper = match kind {
            SliceKind::Range { upper } => format!("{c} <= {}", typed_literal(upper, ct)),
            SliceKind::NullCursor => format!("{c} IS NULL"),
            SliceKind::Blocks { end, upper, .. } => {
                return self.blocks(block_of(pos), *end, upper.as_deref())
            }
        };
        let after = match pos {
            Position::Start | Position::NullsAfter(None) => None,
            Position::BeforeCursor(v) => Some(format!("{c} >= {}", typed_literal(v, ct))),
            Position::AfterCursor(v) => Some(format!("{c} > {}", typed_literal(v, ct))),
            Position::AfterKey { cursor, key } => {
                let lit = typed_literal(cursor, ct);
                // `c >= v` is implied by the row comparison but lets an index on the cursor
                // alone serve the scan.
                Some(format!(
                    "{c} >= {lit} AND ({c}, {}) > ({lit}, {})",
                    self.key_columns(),
                    self.key_literals(key)
                ))
            }
            Position::NullsAfter(Some(key)) => Some(format!(
                "({}) > ({})",
                self.key_columns(),
                self.key_literals(key)
            )),
            // Not a point of the key space: nothing of it is known done.
            Position::AtBlock(_) => None,
        };
        match after {
            Some(a) => format!("{a} AND {upper}"),
            None => upper,
        }
    }

    /// The rows of blocks `from..end` (a TID range scan) whose cursor is at most `upper` or
    /// NULL: rows past the pass's upper bound changed after it was planned and are the next
    /// pass's.
    pub fn blocks(&self, from: u64, end: u64, upper: Option<&str>) -> String {
        let (c, ct) = (&quote(&self.cursor.0), &self.cursor.1);
        let cursor = match upper {
            Some(u) => format!("({c} <= {} OR {c} IS NULL)", typed_literal(u, ct)),
            None => format!("{c} IS NULL"),
        };
        format!("ctid >= '({from},0)'::tid AND ctid < '({end},0)'::tid AND {cursor}")
    }

    /// The blocks of the window of about `window_rows` rows after `pos` in a block slice:
    /// `(first, end)`, end exclusive, at least one block.
    pub fn block_window(pos: &Position, kind: &SliceKind, window_rows: u64) -> Option<(u64, u64)> {
        let SliceKind::Blocks {
            end,
            rows_per_block,
            ..
        } = kind
        else {
            return None;
        };
        let blocks = window_rows.div_ceil((*rows_per_block).max(1)).max(1);
        let from = block_of(pos);
        Some((from, from.saturating_add(blocks).min(*end)))
    }

    /// ORDER BY list for a slice: (cursor, key), key alone among null cursors, none (heap
    /// order) in blocks.
    pub fn order_by(&self, kind: &SliceKind) -> Option<String> {
        match kind {
            SliceKind::Range { .. } => {
                Some(format!("{}, {}", quote(&self.cursor.0), self.key_columns()))
            }
            SliceKind::NullCursor => Some(self.key_columns()),
            SliceKind::Blocks { .. } => None,
        }
    }

    /// `c::text, k1::text, …` — the select list that reads a row's position as text.
    pub fn position_select(&self) -> String {
        std::iter::once(&self.cursor.0)
            .chain(self.key.iter().map(|(n, _)| n))
            .map(|n| format!("{}::text", quote(n)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The position just after a row, from its `position_select` values (key-space slices;
    /// a block window's end is its last block, known before it is read).
    pub fn position_after(&self, kind: &SliceKind, mut values: Vec<String>) -> Position {
        let key = values.split_off(1);
        match kind {
            SliceKind::Range { .. } | SliceKind::Blocks { .. } => Position::AfterKey {
                cursor: values.remove(0),
                key,
            },
            SliceKind::NullCursor => Position::NullsAfter(Some(key)),
        }
    }

    fn key_columns(&self) -> String {
        self.key
            .iter()
            .map(|(n, _)| quote(n))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_literals(&self, values: &[String]) -> String {
        self.key
            .iter()
            .zip(values)
            .map(|((_, t), v)| typed_literal(v, t))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The first block not yet done at a position of a block slice.
fn block_of(pos: &Position) -> u64 {
    match pos {
        Position::AtBlock(b) => *b,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks() -> KeySpace {
        KeySpace {
            cursor: ("updated".into(), "bigint".into()),
            key: vec![
                ("id".into(), "uuid".into()),
                ("Part".into(), "integer".into()),
            ],
            clock: None,
        }
    }

    #[test]
    fn after_key_uses_a_row_comparison_bounded_by_the_slice() {
        let pos = Position::AfterKey {
            cursor: "5".into(),
            key: vec!["a".into(), "1".into()],
        };
        let sql = ks().remaining(&pos, &SliceKind::Range { upper: "9".into() });
        assert_eq!(
            sql,
            r#""updated" >= '5'::bigint AND ("updated", "id", "Part") > ('5'::bigint, 'a'::uuid, '1'::integer) AND "updated" <= '9'::bigint"#
        );
    }

    #[test]
    fn null_cursor_slices_are_keyed_by_primary_key_alone() {
        let sql = ks().remaining(
            &Position::NullsAfter(Some(vec!["a".into(), "2".into()])),
            &SliceKind::NullCursor,
        );
        assert_eq!(
            sql,
            r#"("id", "Part") > ('a'::uuid, '2'::integer) AND "updated" IS NULL"#
        );
        assert_eq!(
            ks().order_by(&SliceKind::NullCursor).unwrap(),
            r#""id", "Part""#
        );
    }

    #[test]
    fn start_and_tie_rereading_bounds() {
        let kind = SliceKind::Range { upper: "9".into() };
        assert_eq!(
            ks().remaining(&Position::Start, &kind),
            r#""updated" <= '9'::bigint"#
        );
        assert_eq!(
            ks().remaining(&Position::BeforeCursor("7".into()), &kind),
            r#""updated" >= '7'::bigint AND "updated" <= '9'::bigint"#
        );
    }

    #[test]
    fn position_after_splits_cursor_and_key() {
        let p = ks().position_after(
            &SliceKind::Range { upper: "9".into() },
            vec!["5".into(), "a".into(), "1".into()],
        );
        assert_eq!(
            p,
            Position::AfterKey {
                cursor: "5".into(),
                key: vec!["a".into(), "1".into()]
            }
        );
    }

    #[test]
    fn block_windows_are_tid_ranges_bounded_by_the_slice_and_the_pass_upper() {
        let kind = SliceKind::Blocks {
            end: 100,
            rows_per_block: 25,
            upper: Some("9".into()),
        };
        let at = |b| Position::AtBlock(b);
        assert_eq!(KeySpace::block_window(&at(0), &kind, 1000), Some((0, 40)));
        assert_eq!(KeySpace::block_window(&at(0), &kind, 1), Some((0, 1)));
        assert_eq!(
            KeySpace::block_window(&at(80), &kind, 1000),
            Some((80, 100))
        );
        assert_eq!(
            KeySpace::block_window(&at(0), &SliceKind::NullCursor, 9),
            None
        );
        assert_eq!(
            ks().remaining(&at(80), &kind),
            r#"ctid >= '(80,0)'::tid AND ctid < '(100,0)'::tid AND ("updated" <= '9'::bigint OR "updated" IS NULL)"#
        );
        assert_eq!(
            ks().blocks(0, 3, None),
            r#"ctid >= '(0,0)'::tid AND ctid < '(3,0)'::tid AND "updated" IS NULL"#
        );
        assert_eq!(ks().order_by(&kind), None);
    }
}
