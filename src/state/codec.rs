//! The byte format of state records: a 3-byte tag (`P`, `S`, record version) followed by a
//! bincode 2 body with a pinned configuration and a size limit. `decode` returns
//! `StateError::Corrupt` for anything it cannot read — never a panic, never a huge
//! allocation (fuzzed by `fuzz/fuzz_targets/state_decode.rs`).
//!
//! Versions: 1 (0.1.0), 2 (adds `PassRecord::apply`), 3 (per-slice progress for `--jobs`).
//! Records whose layout did not change decode from any; `decode_pass` converts older pass
//! records.

use super::records::{PassRecord, PassRecordV1, PassRecordV2};
use super::StateError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Version of the records written by this release.
pub const RECORD_VERSION: u8 = 3;
const MAGIC: [u8; 2] = *b"PS";
/// Largest record body accepted (a plan with 10,000 slices fits comfortably).
const LIMIT: usize = 16 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<LIMIT>()
}

/// Encodes a record with the current version tag.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.push(RECORD_VERSION);
    // Encoding plain data into a Vec cannot fail; a failure here is a programming error.
    let body =
        bincode::serde::encode_to_vec(record, config()).expect("state records always encode");
    out.extend_from_slice(&body);
    out
}

/// The version of a stored record, checked against what this build reads.
fn version(key: &str, bytes: &[u8]) -> Result<u8, StateError> {
    if bytes.len() < 3 || bytes[..2] != MAGIC {
        return Err(StateError::Corrupt {
            key: key.to_string(),
            reason: "missing record tag".into(),
        });
    }
    match bytes[2] {
        v @ 1..=RECORD_VERSION => Ok(v),
        v if v > RECORD_VERSION => Err(StateError::TooNew {
            key: key.to_string(),
            version: v,
            supported: RECORD_VERSION,
        }),
        v => Err(StateError::Corrupt {
            key: key.to_string(),
            reason: format!("unknown record version {v}"),
        }),
    }
}

fn body<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        key: key.to_string(),
        reason,
    };
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(&bytes[3..], config())
        .map_err(|e| corrupt(e.to_string()))?;
    if used != bytes.len() - 3 {
        return Err(corrupt(format!(
            "{} trailing bytes",
            bytes.len() - 3 - used
        )));
    }
    Ok(value)
}

/// Decodes a record stored under `key` (any version whose layout is today's).
pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StateError> {
    version(key, bytes)?;
    body(key, bytes)
}

/// Decodes a pass record of any supported version.
pub fn decode_pass(key: &str, bytes: &[u8]) -> Result<PassRecord, StateError> {
    match version(key, bytes)? {
        1 => body::<PassRecordV1>(key, bytes).map(|v1| PassRecordV2::from(v1).into()),
        2 => body::<PassRecordV2>(key, bytes).map(PassRecord::from),
        _ => body(key, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{Position, Slice, SliceKind};

    fn sample() -> PassRecord {
        PassRecord {
            number: 3,
            lower: Position::AfterKey {
                cursor: "10".into(),
                key: vec!["x".into()],
            },
            upper: Some("99".into()),
            slices: vec![Slice {
                lower: Position::Start,
                kind: SliceKind::NullCursor,
                estimated_rows: 7,
            }],
            progress: vec![crate::state::records::SliceProgress {
                position: Position::NullsAfter(None),
                done: false,
                last_window: Some(3),
            }],
            next_window: 4,
            rows_read: 1,
            rows_written: 2,
            windows_committed: 3,
            windows_reconciled: 0,
            started_unix: 5,
            seconds_before: 0.5,
            apply: crate::state::records::ApplyMode::Append,
        }
    }

    #[test]
    fn records_round_trip() {
        let rec = sample();
        assert_eq!(decode_pass("pass", &encode(&rec)).unwrap(), rec);
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let good = encode(&sample());
        for cut in 0..good.len() {
            assert!(
                decode::<PassRecord>("pass", &good[..cut]).is_err(),
                "prefix {cut} decoded"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode::<PassRecord>("pass", &trailing).is_err());
        // A length prefix claiming gigabytes must fail on the limit, not allocate.
        let huge = [b'P', b'S', RECORD_VERSION, 3, 0xfc, 0xff, 0xff, 0xff, 0xff];
        assert!(decode::<PassRecord>("pass", &huge).is_err());
    }

    #[test]
    fn a_newer_version_is_refused_with_its_number() {
        let mut bytes = encode(&sample());
        bytes[2] = RECORD_VERSION + 1;
        assert!(
            matches!(decode::<PassRecord>("pass", &bytes), Err(StateError::TooNew { version, .. }) if version == RECORD_VERSION + 1)
        );
    }

    #[test]
    fn a_version_2_pass_converts_to_per_slice_progress() {
        use crate::state::records::{ApplyMode, SliceProgress};
        let slice = |lower: Position, upper: &str| Slice {
            lower,
            kind: SliceKind::Range {
                upper: upper.into(),
            },
            estimated_rows: 5,
        };
        let mid = Position::AfterKey {
            cursor: "15".into(),
            key: vec!["k".into()],
        };
        let v2 = PassRecordV2 {
            pass: 2,
            lower: Position::Start,
            upper: Some("30".into()),
            slices: vec![
                slice(Position::Start, "10"),
                slice(Position::AfterCursor("10".into()), "20"),
                slice(Position::AfterCursor("20".into()), "30"),
            ],
            current_slice: 1,
            position: mid.clone(),
            next_window: 6,
            rows_read: 9,
            rows_written: 9,
            windows_committed: 6,
            windows_reconciled: 0,
            started_unix: 1,
            seconds_before: 0.0,
            apply: ApplyMode::Append,
        };
        let mut bytes = encode(&v2);
        bytes[2] = 2;
        let p = decode_pass("pass", &bytes).unwrap();
        assert_eq!((p.current_slice(), p.position()), (1, mid.clone()));
        assert!(p.progress[0].done);
        assert_eq!(
            p.progress[1],
            SliceProgress {
                position: mid,
                done: false,
                last_window: Some(5)
            }
        );
        assert_eq!(p.progress[2], SliceProgress::untouched(&p.slices[2]));
        assert_eq!((p.next_window, p.apply), (6, ApplyMode::Append));
    }
}
