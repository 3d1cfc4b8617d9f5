//! Replays a capture through synprobe-core (no output) and prints what the engine saw: frames, attempts, the most
//! attempts in flight at once, time taken. For sizing the matcher's table and checking a generated file.
//!
//! `cargo run --release -p synprobe-bench --example replay_stats -- /tmp/synprobe-bench/1m.pcap`

use std::path::PathBuf;
use std::time::Instant;

use synprobe_core::capture::CaptureReader;
use synprobe_core::{replay, ReplayOptions, Summary};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: replay_stats FILE")?
        .into();
    let mut reader = CaptureReader::open(&path)?;
    let mut summary = Summary::default();
    let started = Instant::now();
    let (stats, damage) = replay(
        &mut reader,
        &ReplayOptions::default(),
        |r, _| summary.add(r),
        |_| {},
    )?;
    let secs = started.elapsed().as_secs_f64();
    let m = &stats.matching;
    println!(
        "{} frames in {secs:.3} s ({:.2} M frames/s); {} attempts, peak {} in flight, {} evicted; {} server:port rows",
        stats.frames.frames,
        stats.frames.frames as f64 / secs / 1e6,
        m.attempts,
        m.peak_in_flight,
        m.evicted,
        summary.rows().len(),
    );
    if let Some(e) = damage {
        println!("damaged: {e}");
    }
    Ok(())
}
