//! The window-checksum scan of one side (`both`: the two sides at once, with progress on a
//! terminal), in chunks of heap blocks (TID range scans, PostgreSQL 14+): each chunk is
//! one statement of bounded time on a large source, and reports progress; the chunks'
//! per-window counts and sums add up exactly (in 128-bit integers) to the table's. The last
//! chunk is open-ended, so rows in blocks added during the scan are not missed. A table of
//! one chunk or less, or an older server, gets one plain statement (a TID range scan costs
//! ~30% more per block than a sequential scan). Also the whole range's count and sum on
//! both sides (`whole_both`, `equal_whole`: no windows), which a diff pass after a quiet one
//! asks first.

use super::checksum::Checksums;
use super::Sums;
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Heap blocks per checksum statement by default (1 GiB; `verify --chunk-blocks`).
pub const CHUNK_BLOCKS: u64 = 131_072;

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
    let (tid_ranges, blocks) = heap_blocks(client, side, checks)?;
    progress.total.fetch_add(blocks, Ordering::SeqCst);
    // One plain statement when the table fits in one chunk: a sequential scan (parallel
    // where the server chooses) costs less per block than a TID range scan.
    if !tid_ranges || blocks <= chunk_blocks {
        let sums = read(client, side, &checks.windows_sql())?;
        progress.done.fetch_add(blocks, Ordering::SeqCst);
        return Ok(sums);
    }
    let mut total = Sums::new();
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
            None => return Ok(total),
        }
    }
}

/// Whether this side can read the table by TID ranges (PostgreSQL 14+, a heap of its own:
/// `keyspace::blocks::HeapFacts`), and its heap blocks there.
pub fn heap_blocks(
    client: &mut postgres::Client,
    side: Side,
    checks: &Checksums<'_>,
) -> Result<(bool, u64), Error> {
    let facts = crate::keyspace::blocks::heap_facts(client, side, &checks.shape.table)?;
    Ok((facts.scannable, facts.blocks.max(0) as u64))
}

/// One statement's `window → (count, sum)`.
fn read(client: &mut postgres::Client, side: Side, sql: &str) -> Result<Sums, Error> {
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
            let window = i64::from(r.get::<_, i32>(0));
            Ok((window, (r.get::<_, i64>(1), sum)))
        })
        .collect()
}

/// The window sums of both sides, scanned at once in block chunks, with progress on a
/// terminal (blocks done of all, rows/s) unless quiet; nothing when stderr is piped.
pub fn both(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    checks: &Checksums<'_>,
    opts: &super::VerifyOptions,
) -> Result<(Sums, Sums), Error> {
    use std::io::{IsTerminal, Write};
    let progress = ScanProgress::default();
    let started = Instant::now();
    let show = opts.progress && std::io::stderr().is_terminal();
    let (s, d) = std::thread::scope(|scope| {
        let a = scope.spawn(|| scan(src, Side::Source, checks, opts.chunk_blocks, &progress));
        let b = scope.spawn(|| scan(dst, Side::Destination, checks, opts.chunk_blocks, &progress));
        while show && !(a.is_finished() && b.is_finished()) {
            let (done, total) = (
                progress.done.load(std::sync::atomic::Ordering::SeqCst),
                progress.total.load(std::sync::atomic::Ordering::SeqCst),
            );
            let _ = write!(
                std::io::stderr(),
                "\r\x1b[2Kverify: {:.0}% of {} blocks on both sides, {:.0}s",
                100.0 * done as f64 / total.max(1) as f64,
                total,
                started.elapsed().as_secs_f64()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        if show {
            let _ = writeln!(std::io::stderr());
        }
        (super::joined(a), super::joined(b))
    });
    Ok((s?, d?))
}

/// A side's row count and exact sum of row hashes.
pub type Whole = (i64, i128);

/// The range's row count and sum of row hashes on each side, both at once, one plain
/// statement a side (no windows: a diff pass after one that found nothing differing asks
/// this first, and sums windows only when it differs).
pub fn whole_both(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    checks: &Checksums<'_>,
) -> Result<(Whole, Whole), Error> {
    let sql = format!(
        "SELECT 0, count(*), coalesce(sum({}), 0)::text FROM {} a WHERE {}",
        checks.row_hash(),
        checks.shape.table.sql(),
        checks.range_condition()
    );
    let whole = |client: &mut postgres::Client, side| -> Result<Whole, Error> {
        Ok(read(client, side, &sql)?.remove(&0).unwrap_or((0, 0)))
    };
    let (s, d) = std::thread::scope(|scope| {
        let a = scope.spawn(|| whole(src, Side::Source));
        (super::joined(a), whole(dst, Side::Destination))
    });
    Ok((s?, d?))
}

/// With `whole_first`, both sides' whole-range counts (the rows of each) when their counts
/// and sums are equal; `None` when they differ or were not asked.
pub fn equal_whole(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    checks: &Checksums<'_>,
    opts: &super::VerifyOptions,
) -> Result<Option<(i64, i64)>, Error> {
    if !opts.whole_first {
        return Ok(None);
    }
    let scanning = Instant::now();
    let (s, d) = whole_both(src, dst, checks)?;
    log::debug!(
        "verify: whole-range checksums of both sides in {:.1} ms ({})",
        scanning.elapsed().as_secs_f64() * 1000.0,
        if s == d {
            "equal"
        } else {
            "different: summing windows"
        }
    );
    Ok((s == d).then_some((s.0, d.0)))
}
