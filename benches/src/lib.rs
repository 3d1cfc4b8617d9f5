//! Benchmark helpers for synprobe: a deterministic generator of realistic captures with their ground truth
//! ([`generate()`]), used by the `synprobe-gen` binary, the truth test (tests/truth.rs) and the whole-program
//! benchmark (run-hyperfine.sh).

pub mod generate;

pub use generate::{generate, Config, Counts, Mix, Truth};

use std::io::Read;

use synprobe_core::capture::CaptureReader;
use synprobe_core::{replay, ReplayOptions, ReplayStats, Summary};

/// Replay a whole capture with the default options into a summary: what the truth tests compare with a
/// generator's counts. Panics if the file is damaged (a generated file never is).
pub fn replay_summary<R: Read>(reader: &mut CaptureReader<R>) -> (ReplayStats, Summary) {
    let mut summary = Summary::default();
    let (stats, damage) = replay(
        reader,
        &ReplayOptions::default(),
        |report, _| summary.add(report),
        |_| {},
    )
    .expect("replay");
    assert!(
        damage.is_none(),
        "the generated file is damaged: {damage:?}"
    );
    (stats, summary)
}
