//! Replays the committed fuzz seeds (`fuzz/corpus/<target>/*`) through the same library
//! entry points the fuzz targets call, so CI checks the properties on stable.

use std::path::Path;

fn replay(target: &str, run: impl Fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn state_decode_seeds_hold_the_property() {
    replay("state_decode", pgsync::fuzzing::state_decode);
}

#[test]
fn conninfo_parse_seeds_hold_the_property() {
    replay("conninfo_parse", |b| {
        pgsync::fuzzing::conninfo_parse(&String::from_utf8_lossy(b))
    });
}

#[test]
fn ident_parse_seeds_hold_the_property() {
    replay("ident_parse", |b| {
        pgsync::fuzzing::ident_parse(&String::from_utf8_lossy(b))
    });
}

#[test]
fn copy_tail_seeds_hold_the_property() {
    replay("copy_tail", pgsync::fuzzing::copy_tail);
}

#[test]
fn slice_cover_seeds_hold_the_property() {
    replay("slice_cover", pgsync::fuzzing::slice_cover);
}
