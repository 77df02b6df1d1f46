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

use super::{KeySpace, Position, SliceKind};
use crate::db::ident::{quote, typed_literal};

impl KeySpace {
    /// SQL condition for the rows of a slice that are after `pos`.
    pub fn remaining(&self, pos: &Position, kind: &SliceKind) -> String {
        let (c, ct) = (&quote(&self.cursor.0), &self.cursor.1);
        let upper = match kind {
            SliceKind::Range { upper } => format!("{c} <= {}", typed_literal(upper, ct)),
            SliceKind::NullCursor => format!("{c} IS NULL"),
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
        };
        match after {
            Some(a) => format!("{a} AND {upper}"),
            None => upper,
        }
    }

    /// ORDER BY list for a slice: (cursor, key), or key alone among null cursors.
    pub fn order_by(&self, kind: &SliceKind) -> String {
        match kind {
            SliceKind::Range { .. } => format!("{}, {}", quote(&self.cursor.0), self.key_columns()),
            SliceKind::NullCursor => self.key_columns(),
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

    /// The position just after a row, from its `position_select` values.
    pub fn position_after(&self, kind: &SliceKind, mut values: Vec<String>) -> Position {
        let key = values.split_off(1);
        match kind {
            SliceKind::Range { .. } => Position::AfterKey {
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
        assert_eq!(ks().order_by(&SliceKind::NullCursor), r#""id", "Part""#);
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
}
