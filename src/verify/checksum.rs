//! The server-side checksum queries, identical text on both sides. A row's hash is
//! `hash_record_extended(ROW(columns in the source's order), 0)` (64 bits, each value hashed
//! by its type's own hash function: values equal by their type's `=` hash equally) when every
//! column is of a built-in type with such a function; otherwise, or with `--text-hash`,
//! `hashtextextended(ROW(…)::text, 0)` (the sessions pin DateStyle, TimeZone,
//! extra_float_digits… so equal values print equally). A window's
//! checksum is its row count and the exact (numeric) sum of its rows' hashes. Windows are
//! cursor ranges between histogram bounds (`width_bucket`), so one scan per side checks them
//! all. Drill-down reads the differing windows' rows as (key, hash) streams in one order on
//! both sides and merges them.

use crate::catalog::{join_quoted, TableShape};
use crate::db::ident::{quote, typed_literal};
use crate::keyspace::KeySpace;

/// Heap blocks `[from, to)` (`to: None`: to the end) as a TID range condition (table
/// alias `a`; PostgreSQL 14+ scans only those blocks).
fn blocks_condition(from: u64, to: Option<u64>) -> String {
    match to {
        Some(to) => format!("a.ctid >= '({from},0)'::tid AND a.ctid < '({to},0)'::tid"),
        None => format!("a.ctid >= '({from},0)'::tid"),
    }
}

/// The cursor range being verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Range {
    /// Inclusive lower cursor bound.
    pub from: Option<String>,
    /// Inclusive upper cursor bound.
    pub to: Option<String>,
    /// Include rows whose cursor IS NULL (as window -1).
    pub nulls: bool,
}

/// How a row is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowHash {
    /// `hash_record_extended`: about 3x faster than hashing the row's text.
    Record,
    /// `hashtextextended` of the row's text: any type, compares representations.
    Text,
    /// The key's text alone (`--deletes`: which keys each side has, not what the rows hold).
    Key,
    /// The key's values alone, by `hash_record_extended` (when the key's types allow it).
    KeyRecord,
}

impl RowHash {
    /// Whether every column can be hashed as a record identically in any database:
    /// built-in types (same OID and hash function everywhere) other than the OID-valued
    /// ones (`oid`, `reg*`), whose values differ between databases. Enums, domains and
    /// extension types are user types and get the text hash. Whether each type really has
    /// an extended hash function is checked on the servers (`probe_sql`).
    pub fn record_eligible(shape: &TableShape) -> bool {
        shape.columns.iter().all(|c| {
            let base = c.sql_type.trim_end_matches("[]");
            c.type_oid < 16_384 && base != "oid" && !base.starts_with("reg")
        })
    }

    /// A query that fails when some column type has no extended hash function.
    pub fn probe_sql(shape: &TableShape) -> String {
        let nulls = shape
            .columns
            .iter()
            .map(|c| format!("NULL::{}", c.sql_type))
            .collect::<Vec<_>>()
            .join(", ");
        format!("SELECT hash_record_extended(ROW({nulls}), 0)")
    }
}

/// Builds the queries for one table.
pub struct Checksums<'a> {
    /// Table shape (source column order defines the row text).
    pub shape: &'a TableShape,
    pub ks: &'a KeySpace,
    /// Window bounds (ascending cursor values, as text).
    pub bounds: &'a [String],
    pub range: &'a Range,
    /// How rows are hashed.
    pub row_hash: RowHash,
}

impl Checksums<'_> {
    pub fn cursor(&self) -> String {
        format!("a.{}", quote(&self.ks.cursor.0))
    }

    /// Hash of a whole row.
    pub fn row_hash(&self) -> String {
        let row = join_quoted(
            self.shape.columns.iter().map(|c| c.name.as_str()),
            Some("a"),
        );
        match self.row_hash {
            RowHash::Record => format!("hash_record_extended(ROW({row}), 0)"),
            RowHash::Text => format!("hashtextextended(ROW({row})::text, 0)"),
            RowHash::Key | RowHash::KeyRecord => self.key_hash(0),
        }
    }

    /// Text of a row's primary key, e.g. `(42,eu)`.
    pub fn key_text(&self) -> String {
        format!(
            "ROW({})::text",
            join_quoted(self.ks.key.iter().map(|(n, _)| n.as_str()), Some("a"))
        )
    }

    /// The key columns as text, one expression each (table alias `a`).
    pub fn key_values(&self) -> String {
        super::keys::text_values(self.ks, "a")
    }

    /// Window number of a row.
    pub fn window_of(&self) -> String {
        let c = self.cursor();
        let bucket = if self.bounds.is_empty() {
            "0".to_string()
        } else {
            let items = self
                .bounds
                .iter()
                .map(|b| typed_literal(b, &self.ks.cursor.1))
                .collect::<Vec<_>>()
                .join(", ");
            format!("width_bucket({c}, ARRAY[{items}])")
        };
        format!("CASE WHEN {c} IS NULL THEN -1 ELSE {bucket} END")
    }

    pub fn range_condition(&self) -> String {
        let c = self.cursor();
        let ct = &self.ks.cursor.1;
        let mut parts = Vec::new();
        if let Some(f) = &self.range.from {
            parts.push(format!("{c} >= {}", typed_literal(f, ct)));
        }
        if let Some(t) = &self.range.to {
            parts.push(format!("{c} <= {}", typed_literal(t, ct)));
        }
        let ranged = if parts.is_empty() {
            format!("{c} IS NOT NULL")
        } else {
            parts.join(" AND ")
        };
        if self.range.nulls {
            format!("({c} IS NULL OR ({ranged}))")
        } else {
            ranged
        }
    }

    /// Count and hash sum per window over the whole range: one scan.
    pub fn windows_sql(&self) -> String {
        self.sums_sql(None)
    }

    /// `windows_sql` restricted to heap blocks `[from, to)` (`to: None`: to the end), a TID
    /// range scan on PostgreSQL 14+: per-window sums of block ranges add up to the table's.
    pub fn windows_in_blocks_sql(&self, from: u64, to: Option<u64>) -> String {
        self.sums_sql(Some(&blocks_condition(from, to)))
    }

    /// `(window, count, sum)` rows of the range's rows (in `blocks`, when given). (Grouping
    /// by a constant column besides the window cost ~50% more, measured on PostgreSQL 15.)
    fn sums_sql(&self, blocks: Option<&str>) -> String {
        let condition = blocks.map_or(String::new(), |b| format!("{b} AND "));
        format!(
            "SELECT w, count(*), sum(h)::text FROM (SELECT {} AS w, {} AS h FROM {} a WHERE {condition}{}) x GROUP BY w",
            self.window_of(),
            self.row_hash(),
            self.shape.table.sql(),
            self.range_condition()
        )
    }

    /// A 64-bit hash of a row's key with `seed`: of its values when rows are record-hashed
    /// (every type has an extended hash function; cheaper than printing the key), else of
    /// its text.
    fn key_hash(&self, seed: u8) -> String {
        match self.row_hash {
            RowHash::Record | RowHash::KeyRecord => {
                let keys = join_quoted(self.ks.key.iter().map(|(n, _)| n.as_str()), Some("a"));
                format!("hash_record_extended(ROW({keys}), {seed})")
            }
            RowHash::Text | RowHash::Key => {
                format!("hashtextextended({}, {seed})", self.key_text())
            }
        }
    }

    /// The row hash of every row of the given windows, as a binary COPY (no sort: the
    /// buckets are folded by pgsync, `row_buckets`).
    pub fn hashes_sql(&self, windows: &[i64]) -> String {
        format!(
            "COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)",
            self.row_hash(),
            self.rows_of(windows, None)
        )
    }

    /// `table a WHERE …` for the rows of `windows` (in `blocks`, when given).
    fn rows_of(&self, windows: &[i64], blocks: Option<&str>) -> String {
        let blocks = blocks.map_or(String::new(), |b| format!("{b} AND "));
        format!(
            "{} a WHERE {blocks}{} AND ({})",
            self.shape.table.sql(),
            self.range_condition(),
            self.any_window(windows)
        )
    }

    /// `hashes_sql`'s row hashes for the rows in heap blocks `[from, to)` (`to: None`: to
    /// the end), each followed by the row's place in the heap, as one bytea of 14-byte
    /// records (8-byte big-endian hash, 6-byte `tidsend(ctid)`): one message for thousands
    /// of rows. The place lets the drill-down read the differing buckets' rows back by TID
    /// (`rows_at_sql`) instead of scanning the table again.
    pub fn row_hashes_sql(&self, windows: &[i64], from: u64, to: Option<u64>) -> String {
        format!(
            "SELECT string_agg(int8send({}) || tidsend(a.ctid), ''::bytea) FROM {}",
            self.row_hash(),
            self.rows_of(windows, Some(&blocks_condition(from, to)))
        )
    }

    /// The rows of the given windows whose bucket (`row hash & mask`) is listed, in one
    /// statement, ordered so that both sides can be merged as streams: `(hash of the key,
    /// key text COLLATE "C", key values, row hash, window, tidsend(ctid))`, by the first
    /// two. Byte order of the key text (collation C) and the 64-bit key hash compare the
    /// same in Rust as on the server.
    pub fn rows_in_buckets_sql(&self, windows: &[i64], mask: u64, buckets: &[i64]) -> String {
        let list = buckets
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        self.merge_rows(
            windows,
            &format!(
                "({} & {mask}) = ANY('{{{list}}}'::bigint[])",
                self.row_hash()
            ),
        )
    }

    /// `rows_in_buckets_sql`'s columns and order for the rows at the given heap places
    /// (`tidsend` bytes, as `row_hashes_sql` sent them): a TID scan, no pass over the table.
    /// The caller checks that each place still holds the row it hashed.
    pub fn rows_at_sql(&self, windows: &[i64], tids: &[[u8; 6]]) -> String {
        let list = tids
            .iter()
            .map(|t| {
                let block = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
                let offset = u16::from_be_bytes([t[4], t[5]]);
                format!("\"({block},{offset})\"")
            })
            .collect::<Vec<_>>()
            .join(",");
        self.merge_rows(windows, &format!("a.ctid = ANY('{{{list}}}'::tid[])"))
    }

    fn merge_rows(&self, windows: &[i64], filter: &str) -> String {
        format!(
            "SELECT {}, ({}) COLLATE \"C\", ARRAY[{}], {}, ({})::bigint, tidsend(a.ctid) \
             FROM {} AND {filter} ORDER BY 1, 2",
            self.key_hash(0),
            self.key_text(),
            self.key_values(),
            self.row_hash(),
            self.window_of(),
            self.rows_of(windows, None),
        )
    }

    /// `[from, to)` bounds of a window, for reports.
    pub fn window_bounds(&self, window: i64) -> (Option<String>, Option<String>) {
        if window < 0 {
            return (None, None);
        }
        let i = window as usize;
        let lower = if i == 0 {
            self.range.from.clone()
        } else {
            self.bounds.get(i - 1).cloned()
        };
        let upper = self.bounds.get(i).cloned();
        (lower, upper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Column;
    use crate::db::ident::QualifiedName;

    fn fixture() -> (TableShape, KeySpace) {
        let col = |n: &str, t: &str| Column {
            name: n.into(),
            sql_type: t.into(),
            not_null: true,
            ..Default::default()
        };
        let shape = TableShape {
            table: QualifiedName::parse("t").unwrap(),
            columns: vec![
                col("id", "integer"),
                col("updated", "bigint"),
                col("v", "text"),
            ],
            primary_key: vec!["id".into()],
            has_user_triggers: false,
            estimated_rows: 0.0,
            cursor_indexed: true,
            key_deferred: false,
            partitioned: false,
        };
        let ks = KeySpace {
            cursor: ("updated".into(), "bigint".into()),
            key: vec![("id".into(), "integer".into())],
            clock: None,
        };
        (shape, ks)
    }

    #[test]
    fn one_scan_groups_rows_into_histogram_windows() {
        let (shape, ks) = fixture();
        let bounds = vec!["10".to_string(), "20".to_string()];
        let range = Range {
            from: None,
            to: Some("99".into()),
            nulls: false,
        };
        let c = Checksums {
            shape: &shape,
            ks: &ks,
            bounds: &bounds,
            range: &range,
            row_hash: RowHash::Text,
        };
        assert_eq!(
            c.windows_sql(),
            r#"SELECT w, count(*), sum(h)::text FROM (SELECT CASE WHEN a."updated" IS NULL THEN -1 ELSE width_bucket(a."updated", ARRAY['10'::bigint, '20'::bigint]) END AS w, hashtextextended(ROW(a."id", a."updated", a."v")::text, 0) AS h FROM "public"."t" a WHERE a."updated" <= '99'::bigint) x GROUP BY w"#
        );
        assert_eq!(c.window_bounds(0), (None, Some("10".into())));
        assert_eq!(c.window_bounds(2), (Some("20".into()), None));
        // The same windows as width_bucket, as ranges an index on the cursor serves.
        assert_eq!(
            c.window_condition(0),
            r#"a."updated" IS NOT NULL AND a."updated" < '10'::bigint"#
        );
        assert_eq!(
            c.window_condition(1),
            r#"a."updated" IS NOT NULL AND a."updated" >= '10'::bigint AND a."updated" < '20'::bigint"#
        );
        assert_eq!(
            c.window_condition(2),
            r#"a."updated" IS NOT NULL AND a."updated" >= '20'::bigint"#
        );
        assert_eq!(c.window_condition(-1), r#"a."updated" IS NULL"#);
        let rows = c.rows_in_buckets_sql(&[-1, 1], 1023, &[7, 9]);
        assert!(
            rows.contains(r#"((a."updated" IS NULL) OR (a."updated" IS NOT NULL AND a."updated" >= '10'::bigint AND a."updated" < '20'::bigint))"#),
            "{rows}"
        );
        assert!(
            rows.contains(
                r#"AND (hashtextextended(ROW(a."id", a."updated", a."v")::text, 0) & 1023) = ANY('{7,9}'::bigint[])"#
            ),
            "{rows}"
        );
        // Consecutive windows are one range; many runs, a window number test.
        assert_eq!(
            super::super::ranges::runs(&[-1, 0, 1, 2, 5, 7, 8]),
            vec![(-1, -1), (0, 2), (5, 5), (7, 8)]
        );
        let hashes = c.hashes_sql(&[0, 1, 2]);
        assert_eq!(
            hashes,
            r#"COPY (SELECT hashtextextended(ROW(a."id", a."updated", a."v")::text, 0) FROM "public"."t" a WHERE a."updated" <= '99'::bigint AND ((a."updated" IS NOT NULL))) TO STDOUT (FORMAT binary)"#
        );
        assert!(c
            .hashes_sql(&[1, 2])
            .contains(r#"((a."updated" IS NOT NULL AND a."updated" >= '10'::bigint))"#));
        let many: Vec<i64> = (0..20).map(|w| w * 2).collect();
        assert!(c.hashes_sql(&many).contains("END) = ANY('{0,2,4,"));
        assert!(
            rows.starts_with(
                r#"SELECT hashtextextended(ROW(a."id")::text, 0), (ROW(a."id")::text) COLLATE "C""#
            ),
            "{rows}"
        );
        assert!(rows.ends_with("ORDER BY 1, 2"), "{rows}");
        // Rows read back by their heap places: block and offset from tidsend's 6 bytes.
        let at = c.rows_at_sql(&[1], &[[0, 0, 1, 2, 0, 7], [0, 0, 0, 0, 0, 1]]);
        assert!(
            at.contains(r#"AND a.ctid = ANY('{"(258,7)","(0,1)"}'::tid[]) ORDER BY 1, 2"#),
            "{at}"
        );
        assert!(at.contains(", tidsend(a.ctid) FROM "), "{at}");
    }
}
