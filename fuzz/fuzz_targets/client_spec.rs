#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| secc_fuzz::client_spec(data));
