//! The first step of the drill-down: each side sends the row hash of each of the differing
//! windows' rows (one hash computed a row as the window sums do, no sort on the server: on
//! PostgreSQL 14+ a bytea per chunk of heap blocks, one message for thousands of rows, 14
//! bytes a row with its heap place; older servers a binary COPY, 8 bytes and one message a
//! row), and pgsync folds them
//! into fine buckets by the hash's low bits — one array for both sides, whatever the
//! table's size: per bucket, the XOR of the row hashes of both sides (a row equal on both
//! sides cancels out) and the source's rows minus the destination's, in a wrapping byte.
//! A row missing on one side leaves its hash in its bucket; a row with other contents
//! leaves two (its old hash's bucket and its new one's); keys are unique, so two rows of
//! one side never cancel out (that would take two different rows with one 64-bit hash).
//! The buckets left non-zero hold every differing row's version on each side, and only
//! their rows are read again — by their heap places where the server sent them
//! (`places.rs`), else by a scan filtered on the bucket (`rows_in_buckets_sql`) — and
//! merged by key. ~1 row a bucket: few rows are read again for each difference.
//! (Bucketing by the key's hash instead costs a second hash a row and 16 bytes: 1.4× the
//! time of this step, docs/performance.md.)

use super::checksum::Checksums;
use super::places::{Places, RECORD};
use crate::db::{DbError, DbErrorKind, PgResultExt, Side};
use crate::error::Error;
use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Fewest and most buckets (powers of two): ~1 row of each side a bucket in between, 9
/// bytes each (18 MiB at most).
const MIN_BUCKETS: u64 = 1 << 10;
const MAX_BUCKETS: u64 = 1 << 21;

/// Both sides' rows folded by bucket (filled by both sides' readers at once).
pub struct Buckets {
    xors: Vec<AtomicU64>,
    counts: Vec<AtomicU8>,
}

/// How many buckets for about `rows` rows a side: a power of two, ~1 row each, within
/// bounds.
pub fn bucket_count(rows: u64) -> u64 {
    rows.next_power_of_two().clamp(MIN_BUCKETS, MAX_BUCKETS)
}

impl Buckets {
    /// `count` empty buckets (a power of two).
    pub fn new(count: u64) -> Buckets {
        Buckets {
            xors: (0..count).map(|_| AtomicU64::new(0)).collect(),
            counts: (0..count).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// The buckets (as `row hash & (count - 1)`) whose rows differ between the two sides.
    pub fn differing(&self) -> Vec<i64> {
        (0..self.xors.len())
            .filter(|&i| {
                self.xors[i].load(Ordering::Relaxed) != 0
                    || self.counts[i].load(Ordering::Relaxed) != 0
            })
            .map(|i| i as i64)
            .collect()
    }

    /// Folds one row of `side` in.
    fn add(&self, side: Side, row_hash: u64) {
        let i = (row_hash & (self.xors.len() as u64 - 1)) as usize;
        self.xors[i].fetch_xor(row_hash, Ordering::Relaxed);
        match side {
            Side::Source => self.counts[i].fetch_add(1, Ordering::Relaxed),
            Side::Destination => self.counts[i].fetch_sub(1, Ordering::Relaxed),
        };
    }
}

/// Blocks per statement on PostgreSQL 14+ (~60k rows of a table like the benchmark's,
/// ~0.5 MB of hashes).
const CHUNK_BLOCKS: u64 = 1_024;

const DOING: &str = "reading the row hashes of differing windows";

/// Folds one side's rows of `windows` into `buckets`: how many rows, and where they lie in
/// its heap (PostgreSQL 14+ and a heap of its own; `None` otherwise, or when they could not
/// be kept).
pub fn read(
    client: &mut postgres::Client,
    side: Side,
    checks: &Checksums<'_>,
    windows: &[i64],
    buckets: &Buckets,
) -> Result<(u64, Option<Places>), Error> {
    let (tid_ranges, blocks) = super::scan::heap_blocks(client, side, checks)?;
    if !tid_ranges {
        let rows = read_copy(client, side, &checks.hashes_sql(windows), buckets)?;
        return Ok((rows, None));
    }
    let mut places = Places::create();
    let (mut from, mut rows) = (0, 0);
    loop {
        // The last chunk is open-ended: rows in blocks added meanwhile are not missed.
        let to = (from + CHUNK_BLOCKS < blocks).then_some(from + CHUNK_BLOCKS);
        let records: Option<Vec<u8>> = client
            .query_typed_one(&checks.row_hashes_sql(windows, from, to), &[])
            .on(side, DOING)?
            .get(0);
        let records = records.unwrap_or_default();
        if !records.len().is_multiple_of(RECORD) {
            let what = format!("{} bytes of row hashes and places", records.len());
            return Err(DbError::other(side, DbErrorKind::Other, DOING, what).into());
        }
        for record in records.chunks_exact(RECORD) {
            buckets.add(
                side,
                u64::from_be_bytes(record[..8].try_into().expect("8 bytes")),
            );
            rows += 1;
        }
        if places.as_mut().is_some_and(|p| !p.append(&records)) {
            places = None;
        }
        match to {
            Some(t) => from = t,
            None => return Ok((rows, places)),
        }
    }
}

/// Folds a `COPY (SELECT row_hash …) TO STDOUT (FORMAT binary)` into `buckets`: its rows.
fn read_copy(
    client: &mut postgres::Client,
    side: Side,
    copy_sql: &str,
    buckets: &Buckets,
) -> Result<u64, Error> {
    let reader = client.copy_out(copy_sql).on(side, DOING)?;
    fold_copy(BufReader::with_capacity(1 << 16, reader), side, buckets).map_err(|e| match e {
        Folding::Io(e) => crate::copy::staging::classify_io(side, DOING, e).into(),
        Folding::Bad(what) => DbError::other(side, DbErrorKind::Other, DOING, what).into(),
    })
}

/// Why a COPY stream could not be folded.
#[derive(Debug)]
enum Folding {
    Io(std::io::Error),
    Bad(String),
}

/// Folds a binary COPY stream of one int8 column, `side`'s, into `buckets` (pure over
/// `input`): its rows.
fn fold_copy(mut input: impl Read, side: Side, buckets: &Buckets) -> Result<u64, Folding> {
    let mut header = [0u8; 19];
    input.read_exact(&mut header).map_err(Folding::Io)?;
    if &header[..11] != b"PGCOPY\n\xff\r\n\0" {
        return Err(Folding::Bad("not a binary COPY stream".into()));
    }
    let extension = u32::from_be_bytes([header[15], header[16], header[17], header[18]]);
    std::io::copy(
        &mut (&mut input).take(u64::from(extension)),
        &mut std::io::sink(),
    )
    .map_err(Folding::Io)?;
    let mut tuple = [0u8; 14];
    let mut rows = 0;
    loop {
        input.read_exact(&mut tuple[..2]).map_err(Folding::Io)?;
        match i16::from_be_bytes([tuple[0], tuple[1]]) {
            -1 => return Ok(rows),
            1 => {}
            n => return Err(Folding::Bad(format!("a row of {n} fields, not 1"))),
        }
        input.read_exact(&mut tuple[2..]).map_err(Folding::Io)?;
        let len = i32::from_be_bytes(tuple[2..6].try_into().expect("4 bytes"));
        if len != 8 {
            return Err(Folding::Bad(format!("a hash of {len} bytes, not 8")));
        }
        buckets.add(
            side,
            u64::from_be_bytes(tuple[6..14].try_into().expect("8 bytes")),
        );
        rows += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(buckets: &Buckets, i: usize) -> (u8, u64) {
        (
            buckets.counts[i].load(Ordering::Relaxed),
            buckets.xors[i].load(Ordering::Relaxed),
        )
    }

    #[test]
    fn equal_rows_cancel_out_and_each_difference_leaves_its_buckets() {
        assert_eq!(bucket_count(0), MIN_BUCKETS);
        assert_eq!(bucket_count(2_000_000), 1 << 21);
        assert_eq!(bucket_count(300_000), 1 << 19);
        assert_eq!(bucket_count(u64::MAX / 2), MAX_BUCKETS);
        let b = Buckets::new(8);
        // Equal on both sides (two rows sharing bucket 1): nothing left.
        for side in [Side::Source, Side::Destination] {
            b.add(side, 0x11);
            b.add(side, 0x21);
        }
        assert_eq!(b.differing(), Vec::<i64>::new());
        // Missing in the destination; changed (old hash 0x13 there, new 0x24 here); extra.
        b.add(Side::Source, 0x32);
        b.add(Side::Source, 0x24);
        b.add(Side::Destination, 0x13);
        b.add(Side::Destination, 0x47);
        assert_eq!(b.differing(), vec![2, 3, 4, 7]);
        assert_eq!(folded(&b, 2), (1, 0x32));
        assert_eq!(folded(&b, 3), (255, 0x13));
    }

    #[test]
    fn a_binary_copy_stream_folds_into_buckets() {
        let mut stream = b"PGCOPY\n\xff\r\n\0".to_vec();
        stream.extend_from_slice(&0u32.to_be_bytes());
        stream.extend_from_slice(&2u32.to_be_bytes());
        stream.extend_from_slice(b"xx"); // a header extension, skipped
        for row in [5u64, 1029, 6] {
            stream.extend_from_slice(&1i16.to_be_bytes());
            stream.extend_from_slice(&8i32.to_be_bytes());
            stream.extend_from_slice(&row.to_be_bytes());
        }
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        let b = Buckets::new(1024);
        assert_eq!(fold_copy(&stream[..], Side::Source, &b).unwrap(), 3);
        // Hashes 5 and 1029 share bucket 5 (1029 & 1023).
        assert_eq!(folded(&b, 5), (2, 5 ^ 1029));
        assert_eq!(folded(&b, 6), (1, 6));
        assert!(matches!(
            fold_copy(&stream[..30], Side::Source, &b),
            Err(Folding::Io(_))
        ));
        assert!(matches!(
            fold_copy(&b"PGCOPY\n"[..], Side::Source, &b),
            Err(Folding::Io(_))
        ));
        let mut wrong = stream.clone();
        wrong[0] = b'X';
        assert!(matches!(
            fold_copy(&wrong[..], Side::Source, &b),
            Err(Folding::Bad(_))
        ));
    }
}
