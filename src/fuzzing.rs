//! Entry points for the fuzz targets (`fuzz/fuzz_targets/*`) and for the corpus replay in
//! the ordinary test suite, so the same properties are checked on stable in CI. Each
//! function panics only when a property is violated.

use crate::conninfo::{self, ConnDefaults, Env};
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

/// Any text as SOURCE resolves or fails without panicking, and the printable form never
/// holds the password.
pub fn conninfo_parse(text: &str) {
    let password = "pw-SECRET-7f3a";
    if text.contains(password) {
        return; // the input itself names the secret (as a host or database): nothing to leak
    }
    let flags = ConnDefaults {
        password: Some(password.into()),
        ..Default::default()
    };
    if let Ok(info) = conninfo::resolve("source", text, &flags, &NoEnv) {
        assert!(
            !info.redacted.contains(password),
            "redacted form leaks the password: {}",
            info.redacted
        );
        assert!(!format!("{info:?}").contains(password));
    }
    if let Err(e) = conninfo::resolve(
        "source",
        &format!("postgres://u:{password}@{text}"),
        &flags,
        &NoEnv,
    ) {
        assert!(
            !e.to_string().contains(password),
            "error leaks the password: {e}"
        );
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
        (ok, t.rows(), t.last().cloned())
    };
    let whole = run(bytes.len());
    let pieces = run(usize::from(split % 16) + 1);
    if whole.0 && pieces.0 {
        assert_eq!(whole, pieces, "chunking changed the result");
    }
}
