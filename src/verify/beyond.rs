//! Destination rows past the verified range that the source does not have. The default
//! range ends at the last pass's watermark; pgsync never writes a row the source lacks, so a
//! destination row beyond the watermark whose key the source does not have is a difference
//! too (a row inserted by hand, or deleted at the source after a later copy), though no
//! window covers it. Keys are read from the destination and looked up in the source, 1,000
//! at a time.

use super::checksum::Checksums;
use super::keys::key_in_list;
use super::{RowDiff, RowDiffKind};
use crate::db::ident::{quote, typed_literal};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use std::collections::HashSet;

/// Window number reported for these rows: past the last window.
pub const BEYOND_WATERMARK: i64 = -2;

/// The destination rows with a cursor past `watermark` whose keys the source lacks.
pub fn extra_beyond(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    checks: &Checksums<'_>,
    watermark: &str,
) -> Result<Vec<RowDiff>, Error> {
    let table = checks.shape.table.sql();
    let key_values = checks.key_values();
    let beyond = format!(
        "SELECT {}, {key_values} FROM {table} a WHERE a.{} > {}",
        checks.key_text(),
        quote(&checks.ks.cursor.0),
        typed_literal(watermark, &checks.ks.cursor.1)
    );
    let rows = dst
        .query_typed(&beyond, &[])
        .on(Side::Destination, "reading the rows past the watermark")?;
    let keys: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|r| (r.get(0), (1..r.len()).map(|i| r.get(i)).collect()))
        .collect();
    let mut extra = Vec::new();
    for chunk in keys.chunks(1000) {
        let wanted: Vec<Vec<String>> = chunk.iter().map(|(_, k)| k.clone()).collect();
        let sql = format!(
            "SELECT {} FROM {table} a WHERE {}",
            checks.key_text(),
            key_in_list(checks.ks, "a", &wanted)
        );
        let found: HashSet<String> = src
            .query_typed(&sql, &[])
            .on(Side::Source, "looking up the rows past the watermark")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        extra.extend(
            chunk
                .iter()
                .filter(|(text, _)| !found.contains(text))
                .map(|(text, key)| RowDiff {
                    kind: RowDiffKind::ExtraInDestination,
                    key_text: text.clone(),
                    key: key.clone(),
                    window: BEYOND_WATERMARK,
                }),
        );
    }
    Ok(extra)
}
