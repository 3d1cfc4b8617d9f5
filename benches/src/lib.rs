//! Benchmark helpers for synprobe: a deterministic generator of realistic captures with their ground truth
//! ([`generate()`]), used by the `synprobe-gen` binary, the truth test (tests/truth.rs) and the whole-program
//! benchmark (run-hyperfine.sh).

pub mod generate;

pub use generate::{generate, Config, Counts, Mix, Truth};
