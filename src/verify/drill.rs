//! Drill-down, for the windows whose checksums differ, in two statements per side (both
//! sides at once), whatever the number of windows — on a heap whose order is unrelated to
//! the cursor a window's rows lie all over the table, so a statement per window would read
//! the table once per window:
//!
//! 1. the row hash of each of the differing windows' rows, streamed unsorted and folded
//!    into fine buckets by the hash, both sides into one array where equal rows cancel out
//!    (`row_buckets.rs`: ~1 row of each side a bucket, at most 2^21 buckets);
//! 2. the rows of the differing buckets only, as (hash of the key, key text, key values, row
//!    hash, window), ordered by the first two on each server — read back by their heap
//!    places when few (`places.rs`), each checked to be the version hashed there, else (or
//!    when one moved) by a scan filtered on the bucket; the two streams are merged here,
//!    and each key found on one side only, or with another row hash, is a differing row.
//!    ~60 bytes a row on the wire, memory flat: the streams pass through bounded channels.
//!    The key text compared byte for byte (collation C) orders equally here and on the
//!    server.

use super::checksum::Checksums;
use super::keys::present;
use super::places::{Expected, Places};
use super::row_buckets;
use super::{joined, RowDiff, RowDiffKind};
use crate::db::{DbError, Side};
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
    let folded = row_buckets::Buckets::new(count);
    let (s, d) = std::thread::scope(|scope| {
        let folded = &folded;
        let a = scope.spawn(|| row_buckets::read(src, Side::Source, checks, windows, folded));
        let b = row_buckets::read(dst, Side::Destination, checks, windows, folded);
        (joined(a), b)
    });
    let ((s_rows, s_places), (d_rows, d_places)) = (s?, d?);
    let totals = (s_rows, d_rows);
    let buckets = folded.differing();
    drop(folded);
    log::debug!(
        "drill-down: {} of {count} buckets of {} windows differ, found in {:.1} ms",
        buckets.len(),
        windows.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    if buckets.is_empty() {
        return Ok(totals);
    }
    crate::runtime::failpoint::hit(crate::runtime::failpoint::DRILL_AFTER_HASHES);
    let mask = count - 1;
    let select = |places: Option<Places>| places.and_then(|p| p.select(mask, &buckets));
    let by_place = match std::thread::scope(|scope| {
        let a = scope.spawn(|| Ok(select(s_places)));
        Ok::<_, Error>((joined(a)?, select(d_places)))
    })? {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    if let Some((a, b)) = by_place {
        let before = out.len();
        let (sql_a, sql_b) = (
            checks.rows_at_sql(windows, &a.tids()),
            checks.rows_at_sql(windows, &b.tids()),
        );
        match merge_sides(src, dst, [(&sql_a, Some(a)), (&sql_b, Some(b))], out) {
            Err(Fetch::Moved) => {
                // A row changed since it was hashed: read the buckets as they are now.
                log::debug!(
                    "drill-down: a row moved since it was hashed; scanning for the buckets"
                );
                out.truncate(before);
            }
            Err(Fetch::Failed(e)) => return Err(e),
            Ok(()) => return Ok(totals),
        }
    }
    let sql = checks.rows_in_buckets_sql(windows, mask, &buckets);
    merge_sides(src, dst, [(&sql, None), (&sql, None)], out).map_err(|e| match e {
        Fetch::Failed(e) => e,
        Fetch::Moved => unreachable!("rows read by a scan are not checked against places"),
    })?;
    Ok(totals)
}

/// Why a side's rows stopped.
enum Fetch {
    Failed(Error),
    /// A row read by its heap place was not the one hashed there (`places.rs`).
    Moved,
}

/// Streams both sides' rows of the differing buckets (by `sql`, each side's own; with the
/// rows `Expected` at their places when read by place) and merges them into `out`.
fn merge_sides(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    [(sql_s, expect_s), (sql_d, expect_d)]: [(&str, Option<Expected>); 2],
    out: &mut Vec<RowDiff>,
) -> Result<(), Fetch> {
    std::thread::scope(|scope| {
        let (stx, srx) = sync_channel(DEPTH);
        let (dtx, drx) = sync_channel(DEPTH);
        let a = scope.spawn(move || read(src, Side::Source, sql_s, expect_s, stx));
        let b = scope.spawn(move || read(dst, Side::Destination, sql_d, expect_d, dtx));
        let merged = merge(&mut Stream::new(srx), &mut Stream::new(drx), out);
        // A failed merge drops the receivers, which ends the readers.
        let readers = joined(a).and_then(|()| joined(b));
        merged?;
        readers.map_err(Fetch::Failed)
    })
}

/// Streams one side's rows in batches; a failure, or a row not at its expected place, is
/// the last message (so this returns Ok).
fn read(
    client: &mut postgres::Client,
    side: Side,
    sql: &str,
    expect: Option<Expected>,
    tx: SyncSender<Result<Vec<Seen>, Fetch>>,
) -> Result<(), Error> {
    let doing = "reading the rows of differing windows";
    let failed = |e: postgres::Error| Fetch::Failed(DbError::from_pg(side, doing, e).into());
    let rows = match client.query_raw(sql, Vec::<String>::new()) {
        Ok(rows) => rows,
        Err(e) => {
            let _ = tx.send(Err(failed(e)));
            return Ok(());
        }
    };
    let mut rows = rows.map(|r| {
        let tid: Vec<u8> = r.get(5);
        let seen = Seen {
            key_hash: r.get(0),
            key_text: r.get(1),
            key: r.get(2),
            row_hash: r.get(3),
            window: r.get(4),
        };
        Ok((seen, tid))
    });
    let mut batch = Vec::with_capacity(BATCH);
    let mut matched = 0;
    loop {
        let message = match rows.next() {
            Ok(Some((row, tid))) => {
                if let Some(expect) = &expect {
                    if !expect.holds(&tid, row.row_hash) {
                        let _ = tx.send(Err(Fetch::Moved));
                        return Ok(());
                    }
                    matched += 1;
                }
                batch.push(row);
                if batch.len() < BATCH {
                    continue;
                }
                Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
            }
            Ok(None) if expect.as_ref().is_some_and(|e| e.len() != matched) => {
                Err(Fetch::Moved) // some row no longer at its place
            }
            Ok(None) => {
                let _ = tx.send(Ok(batch));
                return Ok(());
            }
            Err(e) => Err(failed(e)),
        };
        let last = message.is_err();
        if tx.send(message).is_err() || last {
            return Ok(());
        }
    }
}

/// One side's rows, as the readers deliver them.
struct Stream {
    rx: Receiver<Result<Vec<Seen>, Fetch>>,
    ahead: VecDeque<Seen>,
}

impl Stream {
    fn new(rx: Receiver<Result<Vec<Seen>, Fetch>>) -> Self {
        Stream {
            rx,
            ahead: VecDeque::new(),
        }
    }

    /// The next row, without taking it; `None` at the end.
    fn peek(&mut self) -> Result<Option<&Seen>, Fetch> {
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

fn merge(s: &mut Stream, d: &mut Stream, out: &mut Vec<RowDiff>) -> Result<(), Fetch> {
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
