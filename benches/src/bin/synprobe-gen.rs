//! Writes a realistic classic pcap of N frames and its ground truth as JSON beside it.
//!
//! `synprobe-gen --packets 5000000 --seed 1 /tmp/big.pcap` writes /tmp/big.pcap and /tmp/big.truth.json.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use synprobe_bench::{generate, Config};

/// Write a realistic capture (SYN probes and every kind of answer among established traffic, DNS, strays) and
/// the counts `synprobe replay` must report on it.
#[derive(Parser, Debug)]
#[command(name = "synprobe-gen")]
struct Args {
    /// The pcap file to write.
    out: PathBuf,
    /// Frames to write.
    #[arg(long, default_value_t = 20_000)]
    packets: u64,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Average frames per second of capture time.
    #[arg(long, default_value_t = 20_000)]
    pps: u32,
    /// Where to write the ground truth (default: the pcap's path with `.truth.json`).
    #[arg(long)]
    truth: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = Config {
        packets: args.packets,
        seed: args.seed,
        packets_per_sec: args.pps,
        ..Config::default()
    };
    let truth_path = args
        .truth
        .clone()
        .unwrap_or_else(|| args.out.with_extension("truth.json"));
    let run = || -> std::io::Result<()> {
        let out = BufWriter::with_capacity(1 << 20, File::create(&args.out)?);
        let truth = generate(&config, out)?;
        let mut t = BufWriter::new(File::create(&truth_path)?);
        serde_json::to_writer_pretty(&mut t, &truth).map_err(std::io::Error::other)?;
        writeln!(t)?;
        t.flush()
    };
    match run() {
        Ok(()) => {
            eprintln!(
                "synprobe-gen: wrote {} and {}",
                args.out.display(),
                truth_path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("synprobe-gen: cannot write {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}
