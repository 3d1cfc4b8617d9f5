//! Fuzz target `capture_reader`: see `synprobe_fuzz::capture_reader` (the same function replays the corpus in
//! synprobe-core/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| synprobe_fuzz::capture_reader(data));
