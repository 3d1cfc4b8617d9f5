//! Fuzz target `parse_ports`: see `synprobe_fuzz::parse_ports` (the same function replays the corpus in
//! synprobe-core/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| synprobe_fuzz::parse_ports(data));
