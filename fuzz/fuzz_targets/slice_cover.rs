#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pgsync::fuzzing::slice_cover(data));
