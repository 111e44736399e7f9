#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| worldfit::fuzzing::filesystem_layer(data));
