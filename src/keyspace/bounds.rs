//! The bounds of a pass. Upper: the source's max cursor, read once at the start of the pass
//! (rows that move past it during the pass belong to the next pass) — capped, for a cursor
//! that follows a clock (a time type, or epoch numbers: `clock.rs`), at the source's clock:
//! one row dated 9999-12-31 or `infinity` must not carry the watermark there and freeze
//! every later pass.
//! Rows past the clock wait until it reaches them; those more than a day past it are
//! reported every pass (`beyond_clock`). Lower: the committed
//! watermark (from the state store, reconciled with the destination's receipts); without
//! either, the destination's own max cursor with the rows at that value re-read (ties).

use super::{KeySpace, Position};
use crate::db::ident::{quote, QualifiedName};
use crate::db::{DbError, PgResultExt, Side};
use postgres::types::Type;

/// The source's max cursor as text, `None` for an empty table (or all-NULL cursors); for a
/// cursor that follows a clock, the max among values not past it.
pub fn source_upper(
    client: &mut postgres::Client,
    table: &QualifiedName,
    ks: &KeySpace,
) -> Result<Option<String>, DbError> {
    Ok(client
        .query_typed(&max_cursor_sql(table, ks), &[])
        .on(Side::Source, "reading the max cursor")?
        .first()
        .map(|r| r.get(0)))
}

/// The largest non-NULL cursor as text, capped at the cursor's clock if it has one: by
/// `ORDER BY … DESC LIMIT 1` (what the planner makes of `max()` on an index), which also
/// works for ordered types without a `max` aggregate (uuid keys cut a diff job's windows).
/// The text is named `largest`: an output column named as the cursor would make `ORDER BY`
/// sort the text (`99` after `100`).
pub fn max_cursor_sql(table: &QualifiedName, ks: &KeySpace) -> String {
    let cursor = quote(&ks.cursor.0);
    let cap = ks.clock.map_or(String::new(), |clock| {
        format!(" AND {cursor} <= {}", clock.at_sql(&ks.cursor.1, 0))
    });
    format!(
        "SELECT {cursor}::text AS largest FROM {} WHERE {cursor} IS NOT NULL{cap} ORDER BY {cursor} DESC LIMIT 1",
        table.sql()
    )
}

/// Rows whose cursor is more than a day past the source's clock: how many, and the first
/// one's position (cursor and key, as text) as an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeyondClock {
    /// How many rows.
    pub rows: i64,
    /// The first of them: `(cursor, key…)`.
    pub example: String,
}

/// The statement counting rows more than a day past the cursor's clock — columns `rows
/// bigint, example text` (the first one's position) — or `None` when the cursor follows no
/// clock. Read with the cursor index, so cheap when they are few.
pub fn beyond_clock_sql(table: &QualifiedName, ks: &KeySpace) -> Option<String> {
    let day_ahead = ks.clock?.at_sql(&ks.cursor.1, 1);
    let cursor = quote(&ks.cursor.0);
    let row = std::iter::once(&ks.cursor.0)
        .chain(ks.key.iter().map(|(n, _)| n))
        .map(|n| quote(n))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "SELECT count(*) AS rows, min(ROW({row})::text) AS example FROM {} WHERE {cursor} > {day_ahead}",
        table.sql()
    ))
}

impl BeyondClock {
    /// From [`beyond_clock_sql`]'s row: `None` when no row is past the clock.
    pub fn from_row(rows: i64, example: Option<String>) -> Option<BeyondClock> {
        (rows > 0).then(|| BeyondClock {
            rows,
            example: example.unwrap_or_default(),
        })
    }
}

/// Whether any source row has a NULL cursor (then the pass ends with a NULL-cursor slice).
pub fn source_has_null_cursors(
    client: &mut postgres::Client,
    table: &QualifiedName,
    ks: &KeySpace,
) -> Result<bool, DbError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE {} IS NULL)",
        table.sql(),
        quote(&ks.cursor.0)
    );
    Ok(client
        .query_typed_one(&sql, &[])
        .on(Side::Source, "looking for NULL cursors")?
        .get(0))
}

/// Whether the destination table exists.
pub fn destination_exists(
    client: &mut postgres::Client,
    table: &QualifiedName,
) -> Result<bool, DbError> {
    let exists = destinations_exist(client, std::slice::from_ref(table))?;
    Ok(exists.first().copied().unwrap_or(false))
}

/// Whether each of the destination tables exists, in their order, in one statement.
pub fn destinations_exist(
    client: &mut postgres::Client,
    tables: &[QualifiedName],
) -> Result<Vec<bool>, DbError> {
    let names: Vec<String> = tables.iter().map(QualifiedName::sql).collect();
    let rows = client
        .query_typed(
            "SELECT to_regclass(t) IS NOT NULL FROM unnest($1::text[]) WITH ORDINALITY u(t, i) ORDER BY i",
            &[(&names, Type::TEXT_ARRAY)],
        )
        .on(Side::Destination, "looking for the destination tables")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Lower bound when neither state nor receipts know one (`exists`: whether the destination
/// table does): rows at the destination's max cursor are re-read, since a crash may have
/// left only part of a run of equal values.
pub fn destination_fallback(
    client: &mut postgres::Client,
    table: &QualifiedName,
    ks: &KeySpace,
    exists: bool,
) -> Result<Position, DbError> {
    if !exists {
        return Ok(Position::Start);
    }
    // Capped at the clock like the source's upper bound: a far-future row copied by an
    // earlier pgsync must not become the lower bound.
    let max: Option<String> = client
        .query_typed(&max_cursor_sql(table, ks), &[])
        .on(Side::Destination, "reading the destination's max cursor")?
        .first()
        .map(|r| r.get(0));
    Ok(max.map_or(Position::Start, Position::BeforeCursor))
}

/// Whether a lower bound lies past the source's clock: a watermark that an earlier pgsync
/// (before the clock cap) followed to a far-future row, where every later pass would find
/// nothing. False for cursors that follow no clock.
pub fn past_clock(
    client: &mut postgres::Client,
    ks: &KeySpace,
    pos: &Position,
) -> Result<bool, DbError> {
    let (Some(clock), Some(value)) = (ks.clock, lower_cursor(pos)) else {
        return Ok(false);
    };
    let now = clock.at_sql(&ks.cursor.1, 0);
    // The type comes from the catalog (format_type), never from the user.
    let sql = format!("SELECT $1::text::{} > {now}", ks.cursor.1);
    Ok(client
        .query_typed_one(&sql, &[(&value, Type::TEXT)])
        .on(
            Side::Source,
            "comparing the watermark with the source's clock",
        )?
        .get(0))
}

/// The cursor value a position starts from, if any.
pub fn lower_cursor(pos: &Position) -> Option<&str> {
    match pos {
        Position::Start | Position::NullsAfter(_) | Position::AtBlock(_) => None,
        Position::BeforeCursor(v) | Position::AfterCursor(v) => Some(v),
        Position::AfterKey { cursor, .. } => Some(cursor),
    }
}

/// `Some(replay lag in seconds)` when the source is a hot standby (0 when nothing was
/// replayed yet), `None` on a primary.
pub fn standby_lag(client: &mut postgres::Client) -> Result<Option<f64>, DbError> {
    let row = client
        .query_typed_one(
            "SELECT pg_is_in_recovery(), \
                    coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float8",
            &[],
        )
        .on(Side::Source, "asking whether the source is a standby")?;
    Ok(row.get::<_, bool>(0).then(|| row.get::<_, f64>(1).max(0.0)))
}
