//! A receipt as the receipts table holds it: written as SQL values (`receipt_values`, in
//! the order of `RECEIPT_COLUMNS`), read back from the JSON a row prints as
//! (`parse_receipt`, which reads rows of earlier releases too).

use super::receipts::{Receipt, Resume};
use crate::db::ident::literal;
use crate::db::{DbError, DbErrorKind, Side};
use crate::keyspace::Position;
use serde::Deserialize;

/// A receipts row as `to_jsonb(r)` prints it; rows of an earlier release have no resume
/// columns. Other columns (`job`, `committed_at`) are ignored.
#[derive(Deserialize)]
struct ReceiptRow {
    pass: u64,
    window_no: u64,
    slice: usize,
    end_position: Position,
    slice_done: bool,
    pass_finished: bool,
    pass_upper: Option<String>,
    rows_read: u64,
    rows_written: u64,
    #[serde(default)]
    resume_rank: Option<u64>,
    #[serde(default)]
    resume_from: Option<Position>,
}

/// A receipt from its row as JSON (`to_jsonb(r)`); a row that does not parse is an error,
/// never skipped (skipping could resume a pass from an older point, or start it over).
pub(super) fn parse_receipt(text: &str) -> Result<Receipt, DbError> {
    let row: ReceiptRow = serde_json::from_str(text).map_err(|e| {
        DbError::other(
            Side::Destination,
            DbErrorKind::Corrupt,
            "reading receipts",
            format!("a receipt does not parse ({e}): {text}"),
        )
    })?;
    let resume = match (row.resume_rank, row.resume_from) {
        (Some(rank), Some(from)) => Some(Resume { rank, from }),
        _ => None,
    };
    Ok(Receipt {
        pass: row.pass,
        window: row.window_no,
        slice: row.slice,
        end: row.end_position,
        slice_done: row.slice_done,
        pass_finished: row.pass_finished,
        pass_upper: row.pass_upper,
        rows_read: row.rows_read,
        rows_written: row.rows_written,
        resume,
    })
}

/// The receipts table's columns a receipt sets, in `receipt_values`' order.
pub(super) const RECEIPT_COLUMNS: &str =
    "job, pass, window_no, slice, end_position, slice_done, pass_finished, \
     pass_upper, rows_read, rows_written, resume_rank, resume_from";

/// A receipt's values as SQL literals, `rows_written` given as an expression.
pub(super) fn receipt_values(job: &str, r: &Receipt, rows_written: &str) -> String {
    let json = |p: &Position| literal(&serde_json::to_string(p).unwrap_or_default());
    let (rank, from) = r
        .resume
        .as_ref()
        .map_or(("NULL".to_string(), "NULL".to_string()), |x| {
            (x.rank.to_string(), format!("{}::jsonb", json(&x.from)))
        });
    format!(
        "{}, {}, {}, {}, {}::jsonb, {}, {}, {}, {}, {rows_written}, {rank}, {from}",
        literal(job),
        r.pass,
        r.window,
        r.slice,
        json(&r.end),
        r.slice_done,
        r.pass_finished,
        r.pass_upper.as_deref().map_or("NULL".to_string(), literal),
        r.rows_read,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_of_both_releases_parse() {
        let old = r#"{"job": "j", "pass": 2, "window_no": 7, "slice": 1, "end_position": {"AfterCursor": "10"},
            "slice_done": true, "pass_finished": false, "pass_upper": "20", "rows_read": 5, "rows_written": 4,
            "committed_at": "2026-11-25T01:00:00+00:00"}"#;
        let r = parse_receipt(old).unwrap();
        assert_eq!((r.pass, r.window, r.slice, r.resume), (2, 7, 1, None));
        assert_eq!(r.end, Position::AfterCursor("10".into()));
        let new = old.replace(
            r#""rows_written": 4,"#,
            r#""rows_written": 4, "resume_rank": 1099511627777, "resume_from": "Start","#,
        );
        let r = parse_receipt(&new).unwrap();
        assert_eq!(
            r.resume,
            Some(Resume {
                rank: (1 << 40) + 1,
                from: Position::Start
            })
        );
        let corrupt = parse_receipt(r#"{"pass": 1}"#).unwrap_err();
        assert_eq!(corrupt.kind, DbErrorKind::Corrupt);
        assert!(corrupt.message.contains("window_no"), "{}", corrupt.message);
    }
}
