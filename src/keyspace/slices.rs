//! Slices of about `--slice-rows` rows, cut from the planner's statistics (the cursor
//! column's `pg_stats` histogram and `pg_class.reltuples`) and sized with EXPLAIN estimates.
//! Never a count(*), never a sort of the table: planning costs milliseconds at any size.

use super::bounds::lower_cursor;
use super::{KeySpace, Position, Slice, SliceKind};
use crate::db::ident::{typed_literal, QualifiedName};
use crate::db::{DbError, PgResultExt, Side};
use postgres::types::Type;

/// At most this many slices per pass, whatever the statistics say.
const MAX_SLICES: usize = 10_000;

/// Cuts `(lower, upper]` into slices of about `sizing.slice_rows` rows, and at least
/// `sizing.min_slices` of `sizing.min_rows` rows or more when the statistics allow (so that
/// `--jobs` workers have slices to share; none when `upper` is `None` or the range is
/// empty), then a NULL-cursor slice when `nulls`. A `lower` inside the NULL-cursor rows
/// yields only the rest of that slice.
pub fn plan(
    client: &mut postgres::Client,
    table: &QualifiedName,
    ks: &KeySpace,
    lower: &Position,
    upper: Option<&str>,
    sizing: super::Sizing,
    nulls: bool,
) -> Result<Vec<Slice>, DbError> {
    let mut slices = Vec::new();
    let range_left = match (lower, upper) {
        (Position::NullsAfter(_), _) | (_, None) => None,
        // Nothing moved since the last pass: skip the empty range.
        (Position::AfterCursor(v), Some(u)) if v == u => None,
        (_, Some(u)) => Some(u),
    };
    if let Some(upper) = range_left {
        let mut slice_rows = sizing.slice_rows;
        if sizing.min_slices > 1 {
            let kind = SliceKind::Range {
                upper: upper.to_string(),
            };
            let range_rows = estimate(client, table, &ks.remaining(lower, &kind))?;
            slice_rows = slice_rows.min((range_rows / sizing.min_slices).max(sizing.min_rows));
        }
        let cuts = histogram_cuts(client, table, ks, lower, upper, slice_rows.max(1))?;
        for (lower, kind) in range_slices(lower, cuts, upper) {
            let estimated_rows = estimate(client, table, &ks.remaining(&lower, &kind))?;
            slices.push(Slice {
                lower,
                kind,
                estimated_rows,
            });
        }
    }
    if nulls || matches!(lower, Position::NullsAfter(_)) {
        let from = match lower {
            Position::NullsAfter(k) => Position::NullsAfter(k.clone()),
            _ => Position::NullsAfter(None),
        };
        let kind = SliceKind::NullCursor;
        let estimated_rows = estimate(client, table, &ks.remaining(&from, &kind))?;
        slices.push(Slice {
            lower: from,
            kind,
            estimated_rows,
        });
    }
    Ok(slices)
}

/// Histogram bounds strictly inside (lower, upper), in the cursor type's order, thinned so
/// that each slice holds about `slice_rows` rows. Empty when the column has no statistics
/// yet. (The text column is named `bound`: an output column named `b` would make `ORDER BY
/// b` sort the text, and `10000` before `9000`.)
pub fn histogram_cuts(
    client: &mut postgres::Client,
    table: &QualifiedName,
    ks: &KeySpace,
    lower: &Position,
    upper: &str,
    slice_rows: u64,
) -> Result<Vec<String>, DbError> {
    let ct = &ks.cursor.1;
    let lower_sql = lower_cursor(lower).map_or("true".to_string(), |v| {
        format!("b > {}", typed_literal(v, ct))
    });
    let sql = format!(
        "WITH h AS (SELECT histogram_bounds::text::{ct}[] AS bounds FROM pg_stats \
           WHERE schemaname = $1 AND tablename = $2 AND attname = $3 LIMIT 1), \
         r AS (SELECT greatest(reltuples, 0)::float8 AS rows FROM pg_class WHERE oid = $4::text::regclass) \
         SELECT b::text AS bound, (SELECT rows FROM r) / greatest(cardinality(h.bounds) - 1, 1) \
         FROM h CROSS JOIN LATERAL unnest(h.bounds) AS b \
         WHERE {lower_sql} AND b < {} ORDER BY b",
        typed_literal(upper, ct)
    );
    let regclass = table.sql();
    let rows = client
        .query_typed(
            &sql,
            &[
                (&table.schema, Type::TEXT),
                (&table.name, Type::TEXT),
                (&ks.cursor.0, Type::TEXT),
                (&regclass, Type::TEXT),
            ],
        )
        .on(Side::Source, "reading planner statistics")?;
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let rows_per_bucket: f64 = first.get(1);
    let bounds: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(thin(bounds, rows_per_bucket, slice_rows))
}

/// Keeps every k-th histogram bound so that a slice holds about `slice_rows` rows (pure).
pub fn thin(bounds: Vec<String>, rows_per_bucket: f64, slice_rows: u64) -> Vec<String> {
    let step = ((slice_rows as f64 / rows_per_bucket.max(1.0)).ceil() as usize).max(1);
    let mut cuts: Vec<String> = bounds.into_iter().skip(step - 1).step_by(step).collect();
    cuts.dedup();
    cuts.truncate(MAX_SLICES);
    cuts
}

/// The range slices of `(lower, upper]` given increasing cuts strictly inside it (pure):
/// the first starts at `lower`, each next one right after the previous cut, the last ends
/// at `upper` — contiguous, no overlap, nothing left out (fuzzed: `slice_cover`).
pub fn range_slices(
    lower: &Position,
    cuts: Vec<String>,
    upper: &str,
) -> Vec<(Position, SliceKind)> {
    let mut from = lower.clone();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    for cut in cuts.into_iter().chain(std::iter::once(upper.to_string())) {
        out.push((
            std::mem::replace(&mut from, Position::AfterCursor(cut.clone())),
            SliceKind::Range { upper: cut },
        ));
    }
    out
}

/// The planner's row estimate for `SELECT … WHERE cond` (EXPLAIN, not a count).
fn estimate(
    client: &mut postgres::Client,
    table: &QualifiedName,
    cond: &str,
) -> Result<u64, DbError> {
    let sql = format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM {} WHERE {cond}",
        table.sql()
    );
    let messages = client
        .simple_query(&sql)
        .on(Side::Source, "estimating rows")?;
    let text = messages.iter().find_map(|m| match m {
        postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    let rows = text
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v[0]["Plan"]["Plan Rows"].as_f64())
        .unwrap_or(0.0);
    Ok(rows.max(0.0) as u64)
}
