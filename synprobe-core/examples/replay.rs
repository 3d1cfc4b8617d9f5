//! Replay a capture file (pcap or pcapng) and count the verdicts: the smallest useful embedding of the replay
//! half of synprobe-core.
//!
//! `cargo run -p synprobe-core --example replay -- examples/demo.pcap`
//!
//! ```text
//! examples/demo.pcap: 17 frames, 8 attempt(s)
//!   open                2
//!   closed              1
//!   firewall-rst        2
//!   ...
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use synprobe_core::capture::CaptureReader;
use synprobe_core::{replay, ReplayOptions, Verdict};

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: replay CAPTURE (pcap or pcapng)");
        return ExitCode::from(2);
    };
    let mut reader = match CaptureReader::open(&path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::from(66);
        }
    };
    let mut counts: BTreeMap<Verdict, u64> = Verdict::ALL.iter().map(|v| (*v, 0)).collect();
    let result = replay(
        &mut reader,
        &ReplayOptions::default(),
        |report, _stats| *counts.entry(report.judgement.verdict).or_default() += 1,
        |_bytes_read| {},
    );
    let (stats, damage) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::from(66);
        }
    };
    println!(
        "{}: {} frames, {} attempt(s)",
        path.display(),
        stats.frames.frames,
        counts.values().sum::<u64>()
    );
    for (verdict, n) in &counts {
        println!("  {:<16} {n:>6}", verdict.as_str());
    }
    match damage {
        // What came before the damage was counted above.
        Some(e) => {
            eprintln!("replay: {} is damaged: {e}", path.display());
            ExitCode::from(65)
        }
        None => ExitCode::SUCCESS,
    }
}
