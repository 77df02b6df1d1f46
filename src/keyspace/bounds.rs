//! The bounds of a pass. Upper: the source's max cursor, read once at the start of the pass
//! (rows that move past it during the pass belong to the next pass). Lower: the committed
//! watermark (from the state store, reconciled with the destination's receipts); without
//! either, the destination's own max cursor with the rows at that value re-read (ties).

use super::{KeySpace, Position};
use crate::db::ident::{quote, QualifiedName};
use crate::db::{DbError, PgResultExt, Side};

/// The source's max cursor as text, `None` for an empty table (or all-NULL cursors).
pub fn source_upper(
    client: &mut postgres::Client,
    table: &QualifiedName,
    ks: &KeySpace,
) -> Result<Option<String>, DbError> {
    let sql = format!(
        "SELECT max({})::text FROM {}",
        quote(&ks.cursor.0),
        table.sql()
    );
    Ok(client
        .query_one(&sql, &[])
        .on(Side::Source, "reading the max cursor")?
        .get(0))
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
        .query_one(&sql, &[])
        .on(Side::Source, "looking for NULL cursors")?
        .get(0))
}

/// Lower bound when neither state nor receipts know one: rows at the destination's max
/// cursor are re-read, since a crash may have left only part of a run of equal values.
pub fn destination_fallback(
    client: &mut postgres::Client,
    table: &QualifiedName,
    ks: &KeySpace,
) -> Result<Position, DbError> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.sql()])
        .on(Side::Destination, "looking for the destination table")?
        .get(0);
    if !exists {
        return Ok(Position::Start);
    }
    let sql = format!(
        "SELECT max({})::text FROM {}",
        quote(&ks.cursor.0),
        table.sql()
    );
    let max: Option<String> = client
        .query_one(&sql, &[])
        .on(Side::Destination, "reading the destination's max cursor")?
        .get(0);
    Ok(max.map_or(Position::Start, Position::BeforeCursor))
}

/// The cursor value a position starts from, if any.
pub fn lower_cursor(pos: &Position) -> Option<&str> {
    match pos {
        Position::Start | Position::NullsAfter(_) => None,
        Position::BeforeCursor(v) | Position::AfterCursor(v) => Some(v),
        Position::AfterKey { cursor, .. } => Some(cursor),
    }
}
