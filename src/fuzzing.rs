//! Entry points for the fuzz targets (`fuzz/fuzz_targets/*`) and for the corpus replay in
//! the ordinary test suite, so the same properties are checked on stable in CI. Each
//! function panics only when a property is violated.

use crate::db::conninfo::{self, ConnDefaults, Env};
use crate::db::ident::QualifiedName;
use crate::state::codec;
use crate::state::records::{JobRecord, PassRecord, PassStats, Watermark, WindowRecord};

/// Arbitrary bytes decode to a record or an error — never a panic or a huge allocation —
/// and whatever decodes re-encodes to the same bytes.
pub fn state_decode(bytes: &[u8]) {
    // Compared as bytes, not values: a decoded f64 may be NaN, which equals nothing.
    fn check<T: serde::Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) {
        if let Ok(rec) = codec::decode::<T>("fuzz", bytes) {
            let again = codec::encode(&rec);
            let twice = codec::decode::<T>("fuzz", &again).map(|r| codec::encode(&r));
            assert_eq!(
                twice.ok(),
                Some(again),
                "re-encoded record does not round-trip"
            );
        }
    }
    check::<PassRecord>(bytes);
    check::<WindowRecord>(bytes);
    check::<Watermark>(bytes);
    check::<PassStats>(bytes);
    check::<JobRecord>(bytes);
    check::<String>(bytes);
    if let Ok(rec) = codec::decode_pass("fuzz", bytes) {
        let again = codec::encode(&rec);
        let twice = codec::decode_pass("fuzz", &again).map(|r| codec::encode(&r));
        assert_eq!(twice.ok(), Some(again), "pass record does not round-trip");
    }
}

struct NoEnv;
impl Env for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

/// Any text as SOURCE resolves or fails without panicking, and neither the printable form
/// nor an error ever holds the password — planted in every position a password can take:
/// the `--password` flag, a URL's userinfo, a URL's `?password=`, a conninfo `password=`.
pub fn conninfo_parse(text: &str) {
    let password = "pw-SECRET-7f3a";
    if text.contains(password) || text.contains("pw-SECRET") {
        return; // the input itself names the secret (as a host or database): nothing to leak
    }
    let flags = ConnDefaults {
        password: Some(password.into()),
        ..Default::default()
    };
    let no_flags = ConnDefaults::default();
    let planted = [
        (text.to_string(), &flags),
        (format!("postgres://u:{password}@{text}"), &no_flags),
        (format!("postgres://{text}?password={password}"), &no_flags),
        (
            format!("postgres://h/d?password={password}&{text}"),
            &no_flags,
        ),
        (format!("password={password} {text}"), &no_flags),
        (format!("{text} password='{password}'"), &no_flags),
    ];
    for (input, flags) in &planted {
        match conninfo::resolve("source", input, flags, &NoEnv) {
            Ok(info) => {
                let shown = format!("{info} {info:?} {:?}", info.warnings);
                assert!(
                    !shown.contains(password),
                    "printable form leaks the password: {shown}"
                );
            }
            Err(e) => {
                let shown = format!("{e} {e:?}");
                assert!(
                    !shown.contains(password),
                    "error leaks the password: {shown}"
                );
            }
        }
    }
}

/// Any text as TABLE parses or fails; what parses prints as SQL that parses back to itself.
pub fn ident_parse(text: &str) {
    if let Ok(name) = QualifiedName::parse(text) {
        let again = QualifiedName::parse(&name.sql()).expect("quoted form parses");
        assert_eq!(again, name);
    }
}

/// Arbitrary bytes fed to the COPY tail tracker in arbitrary chunks: an error or a result,
/// never a panic; the same bytes give the same answer whatever the chunking.
pub fn copy_tail(data: &[u8]) {
    use crate::copy::tail::TailTracker;
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let run = |chunk: usize| {
        let mut t = TailTracker::new(vec![0, 2]);
        let ok = bytes
            .chunks(chunk.max(1))
            .try_for_each(|c| t.feed(c))
            .is_ok();
        let last: Option<Vec<Option<Vec<u8>>>> = t
            .last()
            .map(|fields| fields.into_iter().map(|f| f.map(<[u8]>::to_vec)).collect());
        (ok, t.rows(), last)
    };
    let whole = run(bytes.len());
    let pieces = run(usize::from(split % 16) + 1);
    if whole.0 && pieces.0 {
        assert_eq!(whole, pieces, "chunking changed the result");
    }
}

/// The planner's arithmetic on a model with integer cursors: rows (with ties), a lower
/// bound and an upper bound, histogram bounds thinned into cuts, slices assembled from
/// them — every row inside the range lands in exactly one slice, none outside in any.
pub fn slice_cover(data: &[u8]) {
    use crate::keyspace::slices::{range_slices, thin};
    use crate::keyspace::{Position, SliceKind};
    if data.len() < 4 {
        return;
    }
    let rows: Vec<i64> = data[4..].iter().map(|b| i64::from(*b % 64)).collect();
    let upper = i64::from(data[0] % 64);
    let lower = match data[1] % 3 {
        0 => Position::Start,
        1 => Position::AfterCursor((i64::from(data[2] % 64)).to_string()),
        _ => Position::BeforeCursor((i64::from(data[2] % 64)).to_string()),
    };
    let lower_value = match &lower {
        Position::AfterCursor(v) | Position::BeforeCursor(v) => v.parse::<i64>().ok(),
        _ => None,
    };
    // Histogram bounds as pg_stats would give them: sorted, inside (lower, upper).
    let mut bounds: Vec<i64> = rows
        .iter()
        .copied()
        .filter(|c| lower_value.is_none_or(|l| *c > l) && *c < upper)
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let cuts = thin(
        bounds.iter().map(|b| b.to_string()).collect(),
        1.0 + f64::from(data[3] % 8),
        u64::from(data[3]) + 1,
    );
    let slices = range_slices(&lower, cuts, &upper.to_string());
    let after = |p: &Position, c: i64| match p {
        Position::Start => true,
        Position::AfterCursor(v) => c > v.parse::<i64>().unwrap_or(i64::MAX),
        Position::BeforeCursor(v) => c >= v.parse::<i64>().unwrap_or(i64::MAX),
        _ => false,
    };
    for c in rows {
        let in_range = after(&lower, c) && c <= upper;
        let hits = slices
            .iter()
            .filter(|(from, kind)| matches!(kind, SliceKind::Range { upper: u } if after(from, c) && c <= u.parse::<i64>().unwrap_or(i64::MIN)))
            .count();
        assert_eq!(
            hits,
            usize::from(in_range),
            "cursor {c} is in {hits} slices (in range: {in_range})"
        );
    }
}
