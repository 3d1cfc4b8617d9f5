//! Fuzz target `parse_frame`: see `synprobe_fuzz::parse_frame` (the same function replays the corpus in
//! synprobe-core/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| synprobe_fuzz::parse_frame(data));
