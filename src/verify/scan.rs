//! The window-checksum scan of one side, in chunks of heap blocks (TID range scans,
//! PostgreSQL 14+): each chunk is one short statement — bounded statement time on a large
//! source — and reports progress; the chunks' per-window counts and sums add up exactly (in
//! 128-bit integers) to the table's. The last chunk is open-ended, so rows in blocks added
//! during the scan are not missed. Older servers get one statement for the whole table.

use super::checksum::Checksums;
use super::Sums;
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use postgres::types::Type;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Blocks scanned so far and in all, shared by both sides for progress.
#[derive(Default)]
pub struct ScanProgress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

/// Scans one side, adding each chunk's window sums.
pub fn scan(
    client: &mut postgres::Client,
    side: Side,
    checks: &Checksums<'_>,
    chunk_blocks: u64,
    progress: &ScanProgress,
) -> Result<Sums, Error> {
    let doing = "computing window checksums";
    let row = client
        .query_typed_one(
            "SELECT current_setting('server_version_num')::int >= 140000, \
                    pg_relation_size($1::text::regclass) / current_setting('block_size')::bigint",
            &[(&checks.shape.table.sql(), Type::TEXT)],
        )
        .on(side, doing)?;
    let (tid_ranges, blocks): (bool, i64) = (row.get(0), row.get(1));
    let blocks = blocks.max(0) as u64;
    progress.total.fetch_add(blocks, Ordering::SeqCst);
    if !tid_ranges {
        let sums = read(client, side, &checks.windows_sql())?;
        progress.done.fetch_add(blocks, Ordering::SeqCst);
        return Ok(into_text(sums));
    }
    let mut total: HashMap<i64, (i64, i128)> = HashMap::new();
    let mut from = 0;
    loop {
        let to = (from + chunk_blocks < blocks).then_some(from + chunk_blocks);
        for (w, (c, h)) in read(client, side, &checks.windows_in_blocks_sql(from, to))? {
            let e = total.entry(w).or_insert((0, 0));
            e.0 += c;
            e.1 += h;
        }
        progress
            .done
            .fetch_add(to.unwrap_or(blocks).saturating_sub(from), Ordering::SeqCst);
        match to {
            Some(t) => from = t,
            None => return Ok(into_text(total)),
        }
    }
}

fn read(
    client: &mut postgres::Client,
    side: Side,
    sql: &str,
) -> Result<HashMap<i64, (i64, i128)>, Error> {
    let rows = client
        .query_typed(sql, &[])
        .on(side, "computing window checksums")?;
    rows.iter()
        .map(|r| {
            let sum: String = r.get(2);
            let sum = sum.parse::<i128>().map_err(|_| {
                crate::db::DbError::other(
                    side,
                    crate::db::DbErrorKind::Other,
                    "computing window checksums",
                    format!("unexpected sum {sum}"),
                )
            })?;
            Ok((i64::from(r.get::<_, i32>(0)), (r.get::<_, i64>(1), sum)))
        })
        .collect()
}

fn into_text(sums: HashMap<i64, (i64, i128)>) -> Sums {
    sums.into_iter()
        .map(|(w, (c, h))| (w, (c, h.to_string())))
        .collect()
}
