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
    fn check<T: serde::Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) {
        if let Ok(rec) = codec::decode::<T>("fuzz", bytes) {
            let again = codec::encode(&rec);
            assert!(
                codec::decode::<T>("fuzz", &again).is_ok(),
                "re-encoded record does not decode"
            );
        }
    }
    check::<PassRecord>(bytes);
    check::<WindowRecord>(bytes);
    check::<Watermark>(bytes);
    check::<PassStats>(bytes);
    check::<JobRecord>(bytes);
    check::<String>(bytes);
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
