//! Learns the last row of a binary COPY stream as it flows through, for the append path
//! (which has no staging table to ask). It walks the framing only — header, per tuple a
//! field count, per field a length and the bytes — and keeps the raw bytes of the few
//! fields that make a row's position (cursor and key). Values are never decoded here;
//! `window_end::after_last_row` has a database print them as text. Malformed input is an
//! error, never a panic (fuzzed: `fuzz/fuzz_targets/copy_tail.rs`).

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// The binary COPY signature, the header's first bytes.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

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

/// One watched field of a row: its bytes, or SQL NULL. The buffer is reused row after row.
#[derive(Debug, Clone, Default)]
struct Field {
    null: bool,
    bytes: Vec<u8>,
}

impl Field {
    fn value(&self) -> Option<&[u8]> {
        (!self.null).then_some(self.bytes.as_slice())
    }

    /// Holds `value` (or NULL), reusing the buffer.
    fn set(&mut self, value: Option<&[u8]>) {
        self.null = value.is_none();
        self.bytes.clear();
        self.bytes.extend_from_slice(value.unwrap_or_default());
    }
}

/// Follows a binary COPY stream, remembering the watched fields of the last complete row.
/// Nothing is allocated per row: the fixed-size parts collect in an array, and the watched
/// fields of the current and the last row are two sets of buffers that swap at a row's end.
pub struct TailTracker {
    /// The watched field positions, each once.
    watched: Vec<usize>,
    /// For each position asked for, its slot in `watched` (a column may be asked for twice:
    /// a cursor that is also part of the key, as in a table partitioned by its cursor).
    order: Vec<usize>,
    step: Step,
    pending: [u8; 19],
    pending_len: usize,
    field: usize,
    fields: usize,
    current: Vec<Field>,
    last: Vec<Field>,
    rows: u64,
}

impl TailTracker {
    /// Watches the fields at these positions (in the COPY column list), in this order; a
    /// position may repeat.
    pub fn new(asked: Vec<usize>) -> Self {
        let mut watched: Vec<usize> = Vec::with_capacity(asked.len());
        let order = asked
            .iter()
            .map(|field| match watched.iter().position(|w| w == field) {
                Some(slot) => slot,
                None => {
                    watched.push(*field);
                    watched.len() - 1
                }
            })
            .collect();
        let n = watched.len();
        TailTracker {
            watched,
            order,
            step: Step::Header,
            pending: [0; 19],
            pending_len: 0,
            field: 0,
            fields: 0,
            current: vec![Field::default(); n],
            last: vec![Field::default(); n],
            rows: 0,
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Between two rows (or before the first): the stream may be cut here.
    pub fn at_row_boundary(&self) -> bool {
        self.step == Step::Count && self.pending_len == 0
    }

    /// The watched fields of the last complete row (`None` in a field = SQL NULL).
    pub fn last(&self) -> Option<Vec<Option<&[u8]>>> {
        (self.rows > 0).then(|| {
            self.order
                .iter()
                .map(|&slot| self.last[slot].value())
                .collect()
        })
    }

    /// The slot of a field, if it is watched.
    fn slot(&self, field: usize) -> Option<usize> {
        self.watched.iter().position(|w| *w == field)
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), TailError> {
        while !bytes.is_empty() {
            if self.step == Step::Count && self.pending_len == 0 {
                if let Some(used) = self.whole_row(bytes) {
                    bytes = &bytes[used..];
                    continue;
                }
            }
            match self.step {
                Step::Header | Step::Count | Step::Length => {
                    let need = match self.step {
                        Step::Header => 19,
                        Step::Count => 2,
                        _ => 4,
                    };
                    let take = (need - self.pending_len).min(bytes.len());
                    self.pending[self.pending_len..self.pending_len + take]
                        .copy_from_slice(&bytes[..take]);
                    self.pending_len += take;
                    bytes = &bytes[take..];
                    if self.pending_len == need {
                        self.pending_len = 0;
                        let fixed = self.pending;
                        self.on_fixed(&fixed[..need])?;
                    }
                }
                Step::Extension(left) | Step::Data(left) => {
                    let take = (left as usize).min(bytes.len());
                    if let Step::Data(_) = self.step {
                        if let Some(slot) = self.slot(self.field) {
                            self.current[slot].bytes.extend_from_slice(&bytes[..take]);
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

    /// The fast path: a row that lies whole in `bytes` is read in one go, and the bytes it
    /// used are returned. `None` — a row cut by the end of `bytes`, the trailer, or anything
    /// malformed — leaves it to the step-by-step path, which starts the row over (a row's
    /// start clears the watched fields this may have half filled).
    fn whole_row(&mut self, bytes: &[u8]) -> Option<usize> {
        let count = i16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]);
        if count < 0 {
            return None;
        }
        let mut at = 2;
        for field in 0..count as usize {
            let len = i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
            at += 4;
            let value = match len {
                -1 => None,
                n if n < 0 => return None,
                n => {
                    let value = bytes.get(at..at + n as usize)?;
                    at += n as usize;
                    Some(value)
                }
            };
            if let Some(slot) = self.slot(field) {
                self.current[slot].set(value);
            }
        }
        for (slot, w) in self.watched.iter().enumerate() {
            if *w >= count as usize {
                self.current[slot].set(None);
            }
        }
        self.fields = count as usize;
        self.rows += 1;
        std::mem::swap(&mut self.current, &mut self.last);
        Some(at)
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
                    self.current.iter_mut().for_each(|f| f.set(None));
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
                n => {
                    if let Some(slot) = self.slot(self.field) {
                        self.current[slot].null = false;
                    }
                    if n == 0 {
                        self.next_field()
                    } else {
                        Step::Data(n as u32)
                    }
                }
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
        std::mem::swap(&mut self.current, &mut self.last);
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
                vec![Some(&b"cur3"[..]), Some(&b"key-3"[..])]
            );
        }
    }

    #[test]
    fn a_field_asked_for_twice_is_given_twice() {
        // The cursor is also part of the key (a table partitioned by its cursor).
        let bytes = stream(&[
            vec![Some(b"k1"), Some(b"c1")],
            vec![Some(b"k2"), Some(b"c2")],
        ]);
        for chunk in [1, 3, bytes.len()] {
            let mut t = TailTracker::new(vec![1, 0, 1]);
            for piece in bytes.chunks(chunk) {
                t.feed(piece).unwrap();
            }
            assert_eq!(
                t.last().unwrap(),
                vec![Some(&b"c2"[..]), Some(&b"k2"[..]), Some(&b"c2"[..])]
            );
        }
    }

    #[test]
    fn rows_read_whole_and_rows_read_piecewise_agree() {
        // Rows of different lengths: a watched field missing from a short row is NULL, and a
        // long row's value must not leak into the next one, whichever path reads them.
        let long = [7u8; 70_000];
        let bytes = stream(&[
            vec![Some(b"a"), Some(&long), Some(b"c")],
            vec![Some(b"only-one")],
            vec![None, Some(b"b2"), Some(b"c2"), Some(b"d2")],
            vec![Some(b"x"), Some(b"")],
        ]);
        let mut answers = Vec::new();
        for chunk in [1, 5, 64 * 1024, bytes.len()] {
            let mut t = TailTracker::new(vec![2, 1]);
            for piece in bytes.chunks(chunk) {
                t.feed(piece).unwrap();
            }
            let last: Vec<Option<Vec<u8>>> = t
                .last()
                .unwrap()
                .into_iter()
                .map(|f| f.map(<[u8]>::to_vec))
                .collect();
            answers.push((t.rows(), last));
        }
        assert_eq!(answers[0], (4, vec![None, Some(Vec::new())]));
        assert!(answers.iter().all(|a| *a == answers[0]));
    }

    #[test]
    fn nulls_and_empty_values_differ() {
        let mut t = TailTracker::new(vec![0, 1]);
        t.feed(&stream(&[vec![None, Some(b"")]])).unwrap();
        assert_eq!(t.last().unwrap(), vec![None, Some(&[][..])]);
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
