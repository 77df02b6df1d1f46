//! The first step of the drill-down: each side sends the row hash of each of the differing
//! windows' rows (one hash computed a row as the window sums do, no sort on the server: on
//! PostgreSQL 14+ a bytea per chunk of heap blocks, one message for thousands of rows, 14
//! bytes a row with its heap place; older servers a binary COPY, 8 bytes and one message a
//! row), and pgsync folds them
//! into fine buckets by the hash's low bits — a count and an XOR of the hashes per bucket, a
//! fixed array whatever the table's size. A row equal on both sides has the same hash, so
//! lands in the same bucket on both; a row missing on one side changes its bucket's count,
//! and a row with other contents changes two buckets (its old hash's on one side, its new
//! hash's on the other); keys are unique, so no two rows of one side cancel out. The
//! buckets whose count or XOR differ hold every differing row's version on each side, and
//! only their rows are read again — by their heap places where the server sent them
//! (`places.rs`), else by a scan filtered on the bucket (`rows_in_buckets_sql`) — and
//! merged by key.
//! (Bucketing by the key's hash instead costs a second hash a row and 16 bytes: 1.4× the
//! time of this step, docs/performance.md.)

use super::checksum::Checksums;
use super::places::{Places, RECORD};
use crate::db::{DbError, DbErrorKind, PgResultExt, Side};
use crate::error::Error;
use std::io::{BufReader, Read};

/// Fewest and most buckets (powers of two): ~4 rows a bucket in between, 12 bytes each.
const MIN_BUCKETS: u64 = 1 << 10;
const MAX_BUCKETS: u64 = 1 << 20;

/// One side's buckets: rows and XOR of row hashes per bucket.
pub struct Buckets {
    counts: Vec<u32>,
    xors: Vec<u64>,
}

/// How many buckets for about `rows` rows: a power of two, ~4 rows each, within bounds.
pub fn bucket_count(rows: u64) -> u64 {
    (rows / 4)
        .next_power_of_two()
        .clamp(MIN_BUCKETS, MAX_BUCKETS)
}

/// The buckets (as `row hash & (count - 1)`) whose rows differ between the two sides.
pub fn differing(s: &Buckets, d: &Buckets) -> Vec<i64> {
    (0..s.counts.len())
        .filter(|&i| s.counts[i] != d.counts[i] || s.xors[i] != d.xors[i])
        .map(|i| i as i64)
        .collect()
}

/// Blocks per statement on PostgreSQL 14+ (~60k rows of a table like the benchmark's,
/// ~0.5 MB of hashes).
const CHUNK_BLOCKS: u64 = 1_024;

const DOING: &str = "reading the row hashes of differing windows";

/// One side's buckets for the rows of `windows`, and where those rows lie in its heap
/// (PostgreSQL 14+ and a heap of its own; `None` otherwise, or when they could not be kept).
pub fn read(
    client: &mut postgres::Client,
    side: Side,
    checks: &Checksums<'_>,
    windows: &[i64],
    count: u64,
) -> Result<(Buckets, Option<Places>), Error> {
    let mut buckets = Buckets {
        counts: vec![0; count as usize],
        xors: vec![0; count as usize],
    };
    let (tid_ranges, blocks) = super::scan::heap_blocks(client, side, checks)?;
    if !tid_ranges {
        read_copy(client, side, &checks.hashes_sql(windows), &mut buckets)?;
        return Ok((buckets, None));
    }
    let mut places = Places::create();
    let mut from = 0;
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
            buckets.add(u64::from_be_bytes(record[..8].try_into().expect("8 bytes")));
        }
        if places.as_mut().is_some_and(|p| !p.append(&records)) {
            places = None;
        }
        match to {
            Some(t) => from = t,
            None => return Ok((buckets, places)),
        }
    }
}

impl Buckets {
    /// Rows folded in.
    pub fn rows(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    fn add(&mut self, row_hash: u64) {
        let i = (row_hash & (self.counts.len() as u64 - 1)) as usize;
        self.counts[i] += 1;
        self.xors[i] ^= row_hash;
    }
}

/// Folds a `COPY (SELECT row_hash …) TO STDOUT (FORMAT binary)` into `buckets`.
fn read_copy(
    client: &mut postgres::Client,
    side: Side,
    copy_sql: &str,
    buckets: &mut Buckets,
) -> Result<(), Error> {
    let reader = client.copy_out(copy_sql).on(side, DOING)?;
    fold_copy(BufReader::with_capacity(1 << 16, reader), buckets).map_err(|e| match e {
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

/// Folds a binary COPY stream of one int8 column into `buckets` (pure over `input`).
fn fold_copy(mut input: impl Read, buckets: &mut Buckets) -> Result<(), Folding> {
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
    loop {
        input.read_exact(&mut tuple[..2]).map_err(Folding::Io)?;
        match i16::from_be_bytes([tuple[0], tuple[1]]) {
            -1 => return Ok(()),
            1 => {}
            n => return Err(Folding::Bad(format!("a row of {n} fields, not 1"))),
        }
        input.read_exact(&mut tuple[2..]).map_err(Folding::Io)?;
        let len = i32::from_be_bytes(tuple[2..6].try_into().expect("4 bytes"));
        if len != 8 {
            return Err(Folding::Bad(format!("a hash of {len} bytes, not 8")));
        }
        buckets.add(u64::from_be_bytes(
            tuple[6..14].try_into().expect("8 bytes"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_counts_are_powers_of_two_within_bounds() {
        assert_eq!(bucket_count(0), MIN_BUCKETS);
        assert_eq!(bucket_count(2_000_000), 1 << 19);
        assert_eq!(bucket_count(u64::MAX / 2), MAX_BUCKETS);
        let s = Buckets {
            counts: vec![1, 2, 0, 1],
            xors: vec![5, 6, 0, 9],
        };
        let d = Buckets {
            counts: vec![1, 1, 0, 1],
            xors: vec![5, 6, 0, 8],
        };
        assert_eq!(differing(&s, &d), vec![1, 3]);
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
        let mut b = Buckets {
            counts: vec![0; 1024],
            xors: vec![0; 1024],
        };
        fold_copy(&stream[..], &mut b).unwrap();
        // Hashes 5 and 1029 share bucket 5 (1029 & 1023).
        assert_eq!((b.counts[5], b.xors[5]), (2, 5 ^ 1029));
        assert_eq!((b.counts[6], b.xors[6]), (1, 6));
        assert!(matches!(
            fold_copy(&stream[..30], &mut b),
            Err(Folding::Io(_))
        ));
        assert!(matches!(
            fold_copy(&b"PGCOPY\n"[..], &mut b),
            Err(Folding::Io(_))
        ));
        let mut wrong = stream.clone();
        wrong[0] = b'X';
        assert!(matches!(
            fold_copy(&wrong[..], &mut b),
            Err(Folding::Bad(_))
        ));
    }
}
