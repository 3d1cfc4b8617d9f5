//! Fuzz target `engine`: see `synprobe_fuzz::engine` (the same function replays the corpus in
//! synprobe-core/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| synprobe_fuzz::engine(data));
