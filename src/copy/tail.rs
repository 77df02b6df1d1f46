//! Learns the last row of a binary COPY stream as it flows through, for the append path
//! (which has no staging table to ask). It walks the framing only — header, per tuple a
//! field count, per field a length and the bytes — and keeps the raw bytes of the few
//! fields that make a row's position (cursor and key). Values are never decoded here; the
//! destination turns them into text (`KeyText`). Malformed input is an error, never a panic
//! (fuzzed: `fuzz/fuzz_targets/copy_tail.rs`).

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The binary COPY stream did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed binary COPY stream: {0}")]
pub struct TailError(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Signature, flags and extension length (19 bytes).
    Header,
    /// Skipping the header extension.
    Extension(u32),
    /// A tuple's 2-byte field count.
    Count,
    /// A field's 4-byte length.
    Length,
    /// A field's bytes.
    Data(u32),
    /// After the trailer (-1 count).
    Done,
}

/// Raw bytes of the watched fields of one row (`None` = SQL NULL).
pub type RawFields = Vec<Option<Vec<u8>>>;

/// Follows a binary COPY stream, remembering the watched fields of the last complete row.
pub struct TailTracker {
    watched: Vec<usize>,
    step: Step,
    pending: Vec<u8>,
    field: usize,
    fields: usize,
    current: RawFields,
    last: Option<RawFields>,
    rows: u64,
}

impl TailTracker {
    /// Watches the fields at these positions (in the COPY column list), in this order.
    pub fn new(watched: Vec<usize>) -> Self {
        let n = watched.len();
        TailTracker {
            watched,
            step: Step::Header,
            pending: Vec::with_capacity(19),
            field: 0,
            fields: 0,
            current: vec![None; n],
            last: None,
            rows: 0,
        }
    }

    /// Complete rows seen.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The watched fields of the last complete row.
    pub fn last(&self) -> Option<&RawFields> {
        self.last.as_ref()
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), TailError> {
        while !bytes.is_empty() {
            match self.step {
                Step::Header | Step::Count | Step::Length => {
                    let need = match self.step {
                        Step::Header => 19,
                        Step::Count => 2,
                        _ => 4,
                    };
                    let take = (need - self.pending.len()).min(bytes.len());
                    self.pending.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.pending.len() == need {
                        let fixed = std::mem::take(&mut self.pending);
                        self.on_fixed(&fixed)?;
                    }
                }
                Step::Extension(left) | Step::Data(left) => {
                    let take = (left as usize).min(bytes.len());
                    if let Step::Data(_) = self.step {
                        if let Some(slot) = self.watched.iter().position(|w| *w == self.field) {
                            self.current[slot]
                                .get_or_insert_with(Vec::new)
                                .extend_from_slice(&bytes[..take]);
                        }
                    }
                    bytes = &bytes[take..];
                    let left = left - take as u32;
                    self.step = match (self.step, left) {
                        (Step::Extension(_), 0) => Step::Count,
                        (Step::Extension(_), l) => Step::Extension(l),
                        (_, 0) => self.next_field(),
                        (_, l) => Step::Data(l),
                    };
                }
                Step::Done => return Err(TailError("bytes after the trailer")),
            }
        }
        Ok(())
    }

    fn on_fixed(&mut self, fixed: &[u8]) -> Result<(), TailError> {
        self.step = match self.step {
            Step::Header => {
                if &fixed[..11] != SIGNATURE {
                    return Err(TailError("bad signature"));
                }
                let ext = u32::from_be_bytes([fixed[15], fixed[16], fixed[17], fixed[18]]);
                if ext > 1 << 20 {
                    return Err(TailError("header extension too long"));
                }
                if ext == 0 {
                    Step::Count
                } else {
                    Step::Extension(ext)
                }
            }
            Step::Count => match i16::from_be_bytes([fixed[0], fixed[1]]) {
                -1 => Step::Done,
                n if n < 0 => return Err(TailError("negative field count")),
                n => {
                    self.fields = n as usize;
                    self.field = 0;
                    self.current.iter_mut().for_each(|f| *f = None);
                    if self.fields == 0 {
                        self.end_row()
                    } else {
                        Step::Length
                    }
                }
            },
            Step::Length => match i32::from_be_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]) {
                -1 => self.next_field(),
                n if n < 0 => return Err(TailError("negative field length")),
                0 => {
                    if let Some(slot) = self.watched.iter().position(|w| *w == self.field) {
                        self.current[slot] = Some(Vec::new());
                    }
                    self.next_field()
                }
                n => Step::Data(n as u32),
            },
            _ => unreachable!("only fixed-size steps collect bytes"),
        };
        Ok(())
    }

    fn next_field(&mut self) -> Step {
        self.field += 1;
        if self.field == self.fields {
            self.end_row()
        } else {
            Step::Length
        }
    }

    fn end_row(&mut self) -> Step {
        self.rows += 1;
        match &mut self.last {
            Some(last) => last.clone_from(&self.current),
            None => self.last = Some(self.current.clone()),
        }
        Step::Count
    }
}

/// A value already in PostgreSQL's binary form, sent as a parameter of the type the
/// statement declares; the destination prints it with `::text`.
#[derive(Debug)]
pub struct RawValue<'a>(pub Option<&'a [u8]>);

impl ToSql for RawValue<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(rows: &[Vec<Option<&[u8]>>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        for row in rows {
            out.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for f in row {
                match f {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(b) => {
                        out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        out.extend_from_slice(b);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn the_last_row_is_found_whatever_the_chunking() {
        let bytes = stream(&[
            vec![Some(b"k1"), Some(b"payload"), Some(b"c1")],
            vec![Some(b"k2"), None, Some(b"")],
            vec![Some(b"key-3"), Some(&[0u8; 300]), Some(b"cur3")],
        ]);
        for chunk in [1, 2, 3, 7, 64, bytes.len()] {
            let mut t = TailTracker::new(vec![2, 0]);
            for piece in bytes.chunks(chunk) {
                t.feed(piece).unwrap();
            }
            assert_eq!(t.rows(), 3);
            assert_eq!(
                t.last().unwrap(),
                &vec![Some(b"cur3".to_vec()), Some(b"key-3".to_vec())]
            );
        }
    }

    #[test]
    fn nulls_and_empty_values_differ() {
        let mut t = TailTracker::new(vec![0, 1]);
        t.feed(&stream(&[vec![None, Some(b"")]])).unwrap();
        assert_eq!(t.last().unwrap(), &vec![None, Some(Vec::new())]);
    }

    #[test]
    fn malformed_streams_are_errors() {
        assert!(TailTracker::new(vec![0])
            .feed(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0")
            .is_err());
        let mut bad_len = stream(&[]);
        bad_len.truncate(19);
        bad_len.extend_from_slice(&1i16.to_be_bytes());
        bad_len.extend_from_slice(&(-7i32).to_be_bytes());
        assert!(TailTracker::new(vec![0]).feed(&bad_len).is_err());
        let mut after = stream(&[]);
        after.push(0);
        assert!(TailTracker::new(vec![0]).feed(&after).is_err());
    }
}
