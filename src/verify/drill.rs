//! Drill-down, for the windows whose checksums differ, in two statements per side (both
//! sides at once), whatever the number of windows — on a heap whose order is unrelated to
//! the cursor a window's rows lie all over the table, so a statement per window would read
//! the table once per window:
//!
//! 1. the row hash of each of the differing windows' rows, streamed unsorted and folded
//!    into fine buckets by the hash (`row_buckets.rs`: ~4 rows a bucket, at most 2^20
//!    buckets);
//! 2. the rows of the differing buckets only, as (hash of the key, key text, key values, row
//!    hash, window), ordered by the first two on each server; the two streams are merged
//!    here, and each key found on one side only, or with another row hash, is a differing
//!    row. ~60 bytes a row on the wire, memory flat: the streams pass through bounded
//!    channels. The key text compared byte for byte (collation C) orders equally here and on
//!    the server.

use super::checksum::Checksums;
use super::keys::present;
use super::row_buckets;
use super::{joined, RowDiff, RowDiffKind};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use postgres::fallible_iterator::FallibleIterator;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Rows per message from a side's reader.
const BATCH: usize = 1_000;
/// Messages in flight per side.
const DEPTH: usize = 4;

/// One row as the merge sees it.
struct Seen {
    key_hash: i64,
    key_text: String,
    key: Vec<String>,
    row_hash: i64,
    window: i64,
}

impl Seen {
    fn order(&self) -> (i64, &[u8]) {
        (self.key_hash, self.key_text.as_bytes())
    }
}

/// Names every differing row of `windows` (about `rows` rows), appending them to `out`;
/// the rows of those windows on each side.
pub fn differing_rows(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    checks: &Checksums<'_>,
    windows: &[i64],
    rows: u64,
    out: &mut Vec<RowDiff>,
) -> Result<(u64, u64), Error> {
    if windows.is_empty() {
        return Ok((0, 0));
    }
    let started = std::time::Instant::now();
    let count = row_buckets::bucket_count(rows);
    let (s, d) = std::thread::scope(|scope| {
        let a = scope.spawn(|| row_buckets::read(src, Side::Source, checks, windows, count));
        let b = row_buckets::read(dst, Side::Destination, checks, windows, count);
        (joined(a), b)
    });
    let (s, d) = (s?, d?);
    let totals = (s.rows(), d.rows());
    let buckets = row_buckets::differing(&s, &d);
    log::debug!(
        "drill-down: {} of {count} buckets of {} windows differ, found in {:.1} ms",
        buckets.len(),
        windows.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    if buckets.is_empty() {
        return Ok(totals);
    }
    let sql = checks.rows_in_buckets_sql(windows, count - 1, &buckets);
    std::thread::scope(|scope| {
        let (stx, srx) = sync_channel(DEPTH);
        let (dtx, drx) = sync_channel(DEPTH);
        let sql = sql.as_str();
        let a = scope.spawn(move || read(src, Side::Source, sql, stx));
        let b = scope.spawn(move || read(dst, Side::Destination, sql, dtx));
        let merged = merge(&mut Stream::new(srx), &mut Stream::new(drx), out);
        // A failed merge drops the receivers, which ends the readers.
        merged?;
        joined(a)?;
        joined(b)
    })?;
    Ok(totals)
}

/// Streams one side's rows in batches; a failure is the last message (so this returns Ok).
fn read(
    client: &mut postgres::Client,
    side: Side,
    sql: &str,
    tx: SyncSender<Result<Vec<Seen>, Error>>,
) -> Result<(), Error> {
    let doing = "reading the rows of differing windows";
    let rows = match client.query_raw(sql, Vec::<String>::new()) {
        Ok(rows) => rows,
        Err(e) => {
            let _ = tx.send(Err(crate::db::DbError::from_pg(side, doing, e).into()));
            return Ok(());
        }
    };
    let mut rows = rows.map(|r| {
        Ok(Seen {
            key_hash: r.get(0),
            key_text: r.get(1),
            key: r.get(2),
            row_hash: r.get(3),
            window: r.get(4),
        })
    });
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match rows.next().on(side, doing) {
            Ok(Some(row)) => {
                batch.push(row);
                if batch.len() == BATCH
                    && tx
                        .send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                        .is_err()
                {
                    return Ok(());
                }
            }
            Ok(None) => {
                let _ = tx.send(Ok(batch));
                return Ok(());
            }
            Err(e) => {
                let _ = tx.send(Err(e.into()));
                return Ok(());
            }
        }
    }
}

/// One side's rows, as the readers deliver them.
struct Stream {
    rx: Receiver<Result<Vec<Seen>, Error>>,
    ahead: VecDeque<Seen>,
}

impl Stream {
    fn new(rx: Receiver<Result<Vec<Seen>, Error>>) -> Self {
        Stream {
            rx,
            ahead: VecDeque::new(),
        }
    }

    /// The next row, without taking it; `None` at the end.
    fn peek(&mut self) -> Result<Option<&Seen>, Error> {
        while self.ahead.is_empty() {
            match self.rx.recv() {
                Ok(batch) => self.ahead.extend(batch?),
                Err(_) => return Ok(None), // the reader finished
            }
        }
        Ok(self.ahead.front())
    }

    fn take(&mut self) -> Option<Seen> {
        self.ahead.pop_front()
    }
}

fn merge(s: &mut Stream, d: &mut Stream, out: &mut Vec<RowDiff>) -> Result<(), Error> {
    let diff = |kind, row: Seen| RowDiff {
        kind,
        key_text: row.key_text,
        key: row.key,
        window: row.window,
    };
    loop {
        let order = match (s.peek()?, d.peek()?) {
            (None, None) => return Ok(()),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => a.order().cmp(&b.order()),
        };
        match order {
            Ordering::Less => {
                out.extend(s.take().map(|r| diff(RowDiffKind::MissingInDestination, r)))
            }
            Ordering::Greater => {
                out.extend(d.take().map(|r| diff(RowDiffKind::ExtraInDestination, r)))
            }
            Ordering::Equal => {
                let (a, b) = (s.take(), d.take());
                if let (Some(a), Some(b)) = (a, b) {
                    if a.row_hash != b.row_hash {
                        out.push(diff(RowDiffKind::Different, a));
                    }
                }
            }
        }
    }
}

/// Rows seen only on one side may exist on the other side outside the verified range (the
/// source row changed after the last pass, so its cursor moved past the watermark): those
/// are "not yet synced", not differences.
pub fn explain_out_of_range(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    checks: &Checksums<'_>,
    diffs: &mut [RowDiff],
) -> Result<(), Error> {
    for (kind, client, side) in [
        (RowDiffKind::ExtraInDestination, &mut *src, Side::Source),
        (
            RowDiffKind::MissingInDestination,
            &mut *dst,
            Side::Destination,
        ),
    ] {
        let keys: Vec<Vec<String>> = diffs
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.key.clone())
            .collect();
        let doing = "looking up rows outside the range";
        let found = present(client, side, doing, &checks.shape.table, checks.ks, &keys)?;
        for d in diffs
            .iter_mut()
            .filter(|d| d.kind == kind && found.contains(&d.key))
        {
            d.kind = match kind {
                RowDiffKind::ExtraInDestination => RowDiffKind::ChangedSinceLastPass,
                _ => RowDiffKind::Different,
            };
        }
    }
    Ok(())
}
