//! Where a window ends: the one rule both read paths (staged and read-ahead) follow, and
//! the printing that turns the raw cursor and key bytes of a window's last row into the
//! text a `Position` holds, with the columns' own types.

use super::tail::{RawValue, TailTracker};
use crate::db::{DbError, DbErrorKind, PgResultExt, Side};
use crate::keyspace::{KeySpace, Position, SliceKind};
use postgres::types::{ToSql, Type};

/// The end of a window that read `rows` of at most `limit` rows after `from`, and whether it
/// exhausted its slice. A short window ends its slice: a range slice ends at its upper bound
/// (rows up to it are all read), an empty NULL-cursor window stays where it was; otherwise
/// the window ends after its last row, which `last_row` reads (only then). A block window
/// ends at its last block whatever it read.
pub fn window_end<E>(
    kind: &SliceKind,
    from: &Position,
    rows: u64,
    limit: u64,
    last_row: impl FnOnce() -> Result<Position, E>,
) -> Result<(Position, bool), E> {
    if let Some((_, end)) = KeySpace::block_window(from, kind, limit) {
        let SliceKind::Blocks { end: last, .. } = kind else {
            unreachable!("block_window is Some only for block slices")
        };
        return Ok((Position::AtBlock(end), end >= *last));
    }
    let slice_done = rows < limit;
    let end = match (slice_done, kind) {
        (true, SliceKind::Range { upper }) => Position::AfterCursor(upper.clone()),
        (true, SliceKind::NullCursor) if rows == 0 => from.clone(),
        _ => last_row()?,
    };
    Ok((end, slice_done))
}

/// The position after the last row the tracker saw, printed as text with the columns' own
/// (built-in) types by `client` on `side`: one `SELECT $1::text, …` of typed parameters fed
/// the raw binary values, one round trip (no prepared statement).
pub fn after_last_row(
    client: &mut postgres::Client,
    side: Side,
    watched: &[(usize, Type)],
    (ks, kind): (&KeySpace, &SliceKind),
    tail: &TailTracker,
) -> Result<Position, DbError> {
    let doing = "reading the window's end";
    let raw = tail.last().ok_or_else(|| {
        DbError::other(side, DbErrorKind::Other, doing, "no row in a full window")
    })?;
    let select = (1..=watched.len())
        .map(|i| format!("${i}::text"))
        .collect::<Vec<_>>()
        .join(", ");
    let values: Vec<RawValue<'_>> = raw.into_iter().map(RawValue).collect();
    let params: Vec<(&(dyn ToSql + Sync), Type)> = values
        .iter()
        .zip(watched)
        .map(|(v, (_, t))| (v as &(dyn ToSql + Sync), t.clone()))
        .collect();
    let row = client
        .query_typed(&format!("SELECT {select}"), &params)
        .on(side, doing)?
        .into_iter()
        .next()
        .ok_or_else(|| DbError::other(side, DbErrorKind::Other, doing, "no row printed"))?;
    crate::db::round_trips(1);
    position_of(&row, side, doing, (ks, kind))
}

/// The position after the row whose cursor and key a statement printed as text columns.
pub fn position_of(
    row: &postgres::Row,
    side: Side,
    doing: &str,
    (ks, kind): (&KeySpace, &SliceKind),
) -> Result<Position, DbError> {
    // Among NULL cursors the cursor value is NULL; key columns are never NULL.
    let texts = (0..row.len())
        .map(|i| {
            row.try_get::<_, Option<String>>(i)
                .map(Option::unwrap_or_default)
        })
        .collect::<Result<_, _>>()
        .on(side, doing)?;
    Ok(ks.position_after(kind, texts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> SliceKind {
        SliceKind::Range { upper: "10".into() }
    }

    fn never() -> Result<Position, ()> {
        panic!("the last row is not needed")
    }

    #[test]
    fn a_short_range_window_ends_at_the_slice_upper_bound() {
        let from = Position::Start;
        let (end, done) = window_end(&range(), &from, 3, 5, never).unwrap();
        assert_eq!(end, Position::AfterCursor("10".into()));
        assert!(done);
    }

    #[test]
    fn an_empty_null_cursor_window_stays_where_it_was() {
        let from = Position::Start;
        let (end, done) = window_end(&SliceKind::NullCursor, &from, 0, 5, never).unwrap();
        assert_eq!(end, from);
        assert!(done);
    }

    #[test]
    fn a_block_window_ends_at_its_blocks_however_many_rows_it_read() {
        let kind = SliceKind::Blocks {
            end: 10,
            rows_per_block: 2,
            upper: None,
        };
        let (end, done) = window_end(&kind, &Position::AtBlock(4), 0, 8, never).unwrap();
        assert_eq!((end, done), (Position::AtBlock(8), false));
        let (end, done) = window_end(&kind, &Position::AtBlock(8), 9, 8, never).unwrap();
        assert_eq!((end, done), (Position::AtBlock(10), true));
    }

    #[test]
    fn a_full_window_ends_after_its_last_row() {
        let last = Position::AfterCursor("7".into());
        let (end, done) =
            window_end::<()>(&range(), &Position::Start, 5, 5, || Ok(last.clone())).unwrap();
        assert_eq!(end, last);
        assert!(!done);
    }

    #[test]
    fn a_short_null_cursor_window_ends_after_its_last_row() {
        let last = Position::AfterCursor("7".into());
        let (end, done) = window_end::<()>(&SliceKind::NullCursor, &Position::Start, 2, 5, || {
            Ok(last.clone())
        })
        .unwrap();
        assert_eq!(end, last);
        assert!(done);
    }
}
