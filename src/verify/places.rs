//! Where each row hashed by the drill-down's first step lies in its side's heap: 14 bytes a
//! row (the row hash, then `tidsend(ctid)`) appended to a temporary file (owner-only,
//! unlinked as soon as it is open, so it goes away with the process), memory flat. Once the
//! differing buckets are known, the places of their rows are picked out in one sequential
//! read, and the rows are read back by TID (`Checksums::rows_at_sql`) instead of by a
//! second pass over the table filtered on the bucket. A place may hold another row by then
//! (the row was updated, deleted, or its slot reused): `Expected` tells which rows came back
//! as they were hashed, and the drill-down scans for the buckets when one did not.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};

/// Bytes of one record: 8 of hash, 6 of heap place.
pub const RECORD: usize = 14;
/// A side's file stops growing here (~75M rows): beyond it the drill-down scans again.
const MAX_BYTES: u64 = 1 << 30;
/// Rows read back by TID at most: a fiftieth of the rows hashed, within these bounds (one
/// statement, ~14 bytes of SQL a row). With more, a scan filtered on the bucket reads them
/// as cheaply (measured at 2M rows: 5.5% of them took as long by TID as by the scan; 0.55%
/// took a fifth of the time).
const MIN_ROWS: usize = 1_000;
const MAX_ROWS: usize = 250_000;

/// A side's places, being written.
pub struct Places {
    file: BufWriter<File>,
    bytes: u64,
}

/// The rows to read back from one side, by heap place (sorted), with the hash each had.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expected {
    rows: Vec<([u8; 6], i64)>,
}

impl Places {
    /// A new empty file in the temporary directory; `None` when it cannot be made (the
    /// drill-down then scans for the buckets, as without places).
    pub fn create() -> Option<Places> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "pgsync-places-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let file = crate::state::private_file_options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .ok()?;
        let _ = std::fs::remove_file(&path);
        Some(Places {
            file: BufWriter::with_capacity(1 << 16, file),
            bytes: 0,
        })
    }

    /// Appends whole records; `false` once the file is full or a write failed (the places
    /// are then given up).
    pub fn append(&mut self, records: &[u8]) -> bool {
        self.bytes += records.len() as u64;
        self.bytes <= MAX_BYTES && self.file.write_all(records).is_ok()
    }

    /// The places of the rows whose bucket (`hash & mask`) is in `buckets`, or `None` when
    /// there are more than a TID read is worth (`MAX_ROWS`), or the file cannot be read.
    pub fn select(self, mask: u64, buckets: &[i64]) -> Option<Expected> {
        let mut file = self.file.into_inner().ok()?;
        file.seek(SeekFrom::Start(0)).ok()?;
        let hashed = (self.bytes / RECORD as u64) as usize;
        select_from(file, mask, buckets, (hashed / 50).clamp(MIN_ROWS, MAX_ROWS))
    }
}

/// [`Places::select`] over any reader of records (pure over `input`).
fn select_from(mut input: impl Read, mask: u64, buckets: &[i64], most: usize) -> Option<Expected> {
    // One bit a bucket (at most 2^20 buckets: 128 KiB).
    let mut wanted = vec![0u64; (mask as usize >> 6) + 1];
    for &b in buckets {
        wanted[b as usize >> 6] |= 1 << (b & 63);
    }
    let mut rows = Vec::new();
    let mut chunk = vec![0u8; RECORD * 4_096];
    loop {
        let filled = read_full(&mut input, &mut chunk).ok()?;
        for record in chunk[..filled].chunks_exact(RECORD) {
            let hash = i64::from_be_bytes(record[..8].try_into().expect("8 bytes"));
            let bucket = (hash as u64 & mask) as usize;
            if wanted[bucket >> 6] & (1 << (bucket & 63)) != 0 {
                if rows.len() == most {
                    return None;
                }
                rows.push((record[8..].try_into().expect("6 bytes"), hash));
            }
        }
        if filled < chunk.len() {
            break;
        }
    }
    rows.sort_unstable();
    Some(Expected { rows })
}

/// Fills `buf` from `input` as far as it goes; the bytes read (fewer only at the end).
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Expected {
    /// The heap places to read, in heap order.
    pub fn tids(&self) -> Vec<[u8; 6]> {
        self.rows.iter().map(|(t, _)| *t).collect()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the row read at `tid` is the one hashed there.
    pub fn holds(&self, tid: &[u8], hash: i64) -> bool {
        self.rows
            .binary_search_by(|(t, _)| t.as_slice().cmp(tid))
            .is_ok_and(|i| self.rows[i].1 == hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hash: i64, block: u32, offset: u16) -> Vec<u8> {
        let mut r = hash.to_be_bytes().to_vec();
        r.extend_from_slice(&block.to_be_bytes());
        r.extend_from_slice(&offset.to_be_bytes());
        r
    }

    #[test]
    fn the_differing_buckets_rows_are_picked_in_heap_order_and_checked_by_hash() {
        let mut places = Places::create().expect("a temporary file");
        let records: Vec<u8> = [
            record(0x1_0005, 9, 1),
            record(0x2_0003, 2, 4),
            record(-1, 1, 1), // bucket 1023 of 1024
            record(0x3_0005, 1, 2),
        ]
        .concat();
        assert!(places.append(&records[..RECORD * 2]));
        assert!(places.append(&records[RECORD * 2..]));
        let expected = places.select(1023, &[5, 1023]).expect("few rows");
        assert_eq!(expected.len(), 3);
        // Sorted by block, then offset: the heap's order.
        assert_eq!(
            expected.tids(),
            vec![[0, 0, 0, 1, 0, 1], [0, 0, 0, 1, 0, 2], [0, 0, 0, 9, 0, 1]]
        );
        assert!(expected.holds(&[0, 0, 0, 9, 0, 1], 0x1_0005));
        // Another row in that place now, or a place never listed.
        assert!(!expected.holds(&[0, 0, 0, 9, 0, 1], 0x1_0006));
        assert!(!expected.holds(&[0, 0, 0, 2, 0, 4], 0x2_0003));
    }

    #[test]
    fn too_many_rows_or_a_torn_file_give_no_places() {
        let one = record(5, 0, 1);
        let many: Vec<u8> = one.repeat(11);
        assert_eq!(select_from(&many[..], 1023, &[5], 10), None);
        assert_eq!(
            select_from(&many[..], 1023, &[5], 11).map(|e| e.len()),
            Some(11)
        );
        assert_eq!(
            select_from(&many[..], 1023, &[6], 10),
            Some(Expected::default())
        );
        // Appends are whole records: a short tail is not a row.
        let torn = [one.clone(), one[..5].to_vec()].concat();
        assert_eq!(
            select_from(&torn[..], 1023, &[5], 10).map(|e| e.len()),
            Some(1)
        );
    }
}
