#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pgsync::fuzzing::state_decode(data));
