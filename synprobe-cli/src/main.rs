//! synprobe: "connection refused" — who refused, and why? The command line over synprobe-core.

mod exit;
mod render;

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Explain refused TCP connections from the packets: open, closed by the host, RST forged by a firewall (at
/// which hop), ICMP rejection, unreachable route, or silently dropped.
#[derive(Parser, Debug)]
#[command(name = "synprobe", version, about, after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse an existing capture (pcap or pcapng, any common link type); needs no privilege.
    ///
    /// Prints one line per connection attempt (time, client → server:port, verdict, the deciding evidence),
    /// the findings with next steps, and a summary per server:port.
    #[command(after_help = exit::HELP)]
    Replay(ReplayArgs),
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The capture file (pcap or pcapng; the format is read from the file, not its name). `-` reads stdin.
    file: PathBuf,
    /// Only frames matching this BPF expression (tcpdump syntax), e.g. "host 192.0.2.7".
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// Only attempts to or from this address.
    #[arg(long, value_name = "ADDR")]
    host: Option<IpAddr>,
    /// Only attempts to this server port.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Print every frame that took part, Wireshark style, under its attempt (with --json: a `packets` list).
    #[arg(long)]
    trace: bool,
    /// Write JSON Lines: one object per attempt, then one summary object (schema in docs/json.md).
    #[arg(long)]
    json: bool,
    /// Seconds to wait after an attempt's last SYN before calling it unanswered.
    #[arg(long, value_name = "SECS", default_value_t = 3.0, value_parser = parse_timeout)]
    timeout: f64,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.001..=3600.0).contains(&v) {
        return Err("the timeout must be between 0.001 and 3600 seconds".into());
    }
    Ok(v)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::code(exit::OK)
                }
                _ => exit::code(exit::USAGE),
            };
        }
    };
    let result = match cli.command {
        Command::Replay(args) => render::replay(&args),
    };
    match result {
        Ok(code) => exit::code(code),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::code(exit::OK),
        Err(e) => {
            let _ = writeln!(io::stderr(), "synprobe: cannot write the output: {e}");
            exit::code(exit::CANNOT_WRITE)
        }
    }
}
