//! synprobe: "connection refused" — who refused, and why? The command line over synprobe-core.

mod advice;
mod check;
mod exit;
mod exporter;
mod manual;
mod palette;
mod probe;
mod progress;
mod render;
mod verbose;
mod watch;

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand, ValueHint};

use crate::palette::ColorWhen;

/// Explain refused TCP connections from the packets: open, closed by the host (or by a backend behind a port
/// forward), RST forged by a firewall (at which hop), ICMP rejection, unreachable route, or silently dropped.
///
/// `sudo synprobe HOST PORTS` probes live (raw SYNs paced to routers' ICMP rate limits, TTL-limited SYNs that
/// locate the answer, TOS and checksum discriminators; for this host's own address, its listening sockets);
/// `synprobe replay FILE` analyses an existing capture without privilege.
#[derive(Parser, Debug)]
#[command(
    name = "synprobe",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = exit::help()
)]
struct Cli {
    #[command(flatten)]
    probe: ProbeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse an existing capture (pcap or pcapng, any common link type); needs no privilege.
    ///
    /// Prints one line per connection attempt (time, client → server:port, verdict, the deciding evidence),
    /// the findings with next steps, and a summary per server:port.
    #[command(after_help = exit::help())]
    Replay(ReplayArgs),
    /// Serve probes to Prometheus: `GET /probe?target=HOST:PORT[&module=NAME]` (blackbox_exporter style).
    ///
    /// Needs CAP_NET_RAW once at start (the raw sockets and the capture are opened then, shared by every scrape,
    /// and privileges are dropped). Only targets inside --allow are probed; others get HTTP 403. Also serves
    /// /metrics (the exporter's own) and /-/healthy. Stops on SIGINT/SIGTERM.
    Exporter(exporter::ExporterArgs),
    /// Print a completion script for a shell.
    ///
    /// bash: `synprobe completions bash > ~/.local/share/bash-completion/completions/synprobe`;
    /// zsh: `synprobe completions zsh > ~/.zfunc/_synprobe` (with ~/.zfunc in $fpath);
    /// fish: `synprobe completions fish > ~/.config/fish/completions/synprobe.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    ///
    /// Read it with `synprobe man | man -l -`; install it with
    /// `synprobe man | sudo tee /usr/local/share/man/man1/synprobe.1 >/dev/null`.
    Man,
    /// A Nagios / Icinga plugin in check_tcp's conventions: `TCP OK - …`, perfdata, exit 0/1/2/3.
    ///
    /// One status line naming the verdict and who refused (`TCP CRITICAL - firewall-rst: …`), Nagios perfdata
    /// after ` | ` (`time=0.012345s;W;C;0;T target_hops=3;;;0 rejecter_hops=1;;;0`), and the exit code of the
    /// state: 0 OK, 1 WARNING, 2 CRITICAL; 3 UNKNOWN only for a local problem (bad arguments, missing privilege,
    /// a name that does not resolve, no route or capture device), never for a probe result.
    #[command(after_help = check::help())]
    Check(check::CheckArgs),
    /// Probe on an interval and print a line only when a port's verdict or rejecter changes; flag flapping.
    ///
    /// One prober, opened once (then privileges are dropped), probes every port each round. The first round
    /// prints each port's state; later rounds print `time host:port old → new` and the evidence when the verdict
    /// or the rejecter changes, with FLAPPING when a port changed at least --flap-changes times within
    /// --flap-window. SIGINT/SIGTERM print the history of every port and exit 130.
    #[command(after_help = exit::help())]
    Watch(watch::WatchArgs),
}

/// How much to say on stderr, and whether to colour stdout. Shared by live probing and replay.
#[derive(Args, Debug, Clone, Copy)]
struct OutputArgs {
    /// Colour the report: `auto` when stdout is a terminal and NO_COLOR is not set. JSON is never coloured.
    #[arg(
        long,
        visible_alias = "colour",
        value_enum,
        value_name = "WHEN",
        default_value_t = ColorWhen::Auto
    )]
    color: ColorWhen,
    /// Nothing on stderr but errors: no progress bar, no warnings.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Say more on stderr: -v what is being done (capture interfaces, the identity after dropping privileges,
    /// replay speed), -vv every step (each packet of the plan).
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
}

/// Live probing (needs CAP_NET_RAW: run with sudo).
#[derive(Args, Debug)]
struct ProbeArgs {
    /// Host name or address. A name is resolved to all its addresses, and each is probed.
    #[arg(required = true, value_hint = ValueHint::Hostname)]
    host: Option<String>,
    /// Ports: 443, 80,443 or 8000-8010. More than 16 ports on an address are swept (1-65535 works as is): one
    /// SYN each, then the deeper steps once per kind of answer, reported grouped by verdict and rejecter.
    #[arg(required = true)]
    ports: Option<String>,
    #[command(flatten)]
    family: probe::FamilyArgs,
    /// Send just the SYN (and its retransmissions) and judge on what comes back; for a sweep, the first pass
    /// alone (as a scanner: no forging router or backend is named, confidences are lower).
    #[arg(long)]
    quick: bool,
    /// After the probe, open one ordinary TCP connection to each port that answered SYN-ACK: behind a SYN proxy
    /// (which answers every SYN itself) it tells whether the service accepts or resets.
    #[arg(long)]
    connect: bool,
    /// JSON Lines: one object per address and port (schema in docs/json.md).
    #[arg(long)]
    json: bool,
    /// With --json: add the sentences (headline, next steps, each finding's observed/implies) to the data.
    #[arg(long)]
    explain: bool,
    /// Print every packet sent and received, Wireshark style.
    #[arg(long)]
    trace: bool,
    /// Write every probe and reply to this pcapng file, annotated per packet.
    #[arg(short = 'w', long = "write", value_name = "FILE", value_hint = ValueHint::FilePath)]
    write: Option<PathBuf>,
    /// Capture on this interface instead of the one the route uses.
    #[arg(short = 'i', long, value_name = "IFACE")]
    interface: Option<String>,
    /// Ports for baseline SYNs (how the host's own stack answers); default 1.
    #[arg(long, value_name = "PORTS")]
    baseline_port: Option<String>,
    /// Do not send the ICMP echo baseline.
    #[arg(long)]
    no_echo: bool,
    /// Retransmissions of the SYN before calling it unanswered (default 2; 1 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=6))]
    retries: Option<u32>,
    /// TOS / traffic class of the discriminator SYN (0 disables that test).
    #[arg(long, default_value_t = 0x10)]
    tos: u8,
    /// Highest TTL of the TTL walk.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u8).range(1..=64))]
    max_ttl: u8,
    /// Packets one address/port may cost at most.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1000))]
    budget: u32,
    /// Packets per second at most, over the whole run (default 500; a sweep of more than 16 ports paces itself
    /// by its answers, up to 100,000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate: Option<u32>,
    /// Longest wait for a reply, in seconds (the wait adapts to the measured round trip below it).
    #[arg(long, value_name = "SECS", default_value_t = 3.0, value_parser = parse_secs)]
    max_wait: f64,
    /// Refuse runs of more address/port pairs than this (a range of more than 16 ports on one address is a
    /// sweep, and counts once).
    #[arg(long, default_value_t = 64)]
    max_targets: usize,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// The capture file (pcap or pcapng; the format is read from the file, not its name). `-` reads stdin.
    #[arg(value_hint = ValueHint::FilePath)]
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
    /// With --json: add the sentences (headline, next steps, each finding's observed/implies) to the data.
    #[arg(long)]
    explain: bool,
    /// Seconds to wait after an attempt's last SYN before calling it unanswered.
    #[arg(long, value_name = "SECS", default_value_t = 3.0, value_parser = parse_secs)]
    timeout: f64,
    /// Rows of the summary by server:port: the K busiest, found with a heavy-hitter sketch (Space-Saving) in
    /// memory that does not grow with the number of server:ports; the rest in one row. Totals stay exact.
    #[arg(long, value_name = "K", default_value_t = synprobe_core::Summary::DEFAULT_ROWS)]
    summary_rows: usize,
    /// The most attempts kept open at once (each waits out --timeout, and 1 s more for a retransmission). Past
    /// it, the attempt due to close first is judged early (`evicted`, counted in the summary). The bound on
    /// replay's memory on captures of fast scans: about 250 bytes an attempt.
    #[arg(long, value_name = "N", default_value_t = synprobe_core::matcher::MatchConfig::default().max_in_flight as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_in_flight: u32,
    #[command(flatten)]
    output: OutputArgs,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.001..=3600.0).contains(&v) {
        return Err("it must be between 0.001 and 3600 seconds".into());
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
                _ if std::env::args().nth(1).as_deref() == Some("check") => {
                    exit::code(check::usage_error(&e))
                }
                _ => exit::code(exit::USAGE),
            };
        }
    };
    let result = match &cli.command {
        Some(Command::Replay(args)) => {
            verbose::init(args.output.verbose);
            render::replay(args)
        }
        Some(Command::Exporter(args)) => {
            verbose::init(args.verbose);
            exporter::run(args)
        }
        Some(Command::Completions { shell }) => manual::completions(*shell, Cli::command()),
        Some(Command::Man) => manual::man_page(Cli::command()),
        Some(Command::Check(args)) => Ok(check::run(args)),
        Some(Command::Watch(args)) => watch::run(args),
        None => {
            verbose::init(cli.probe.output.verbose);
            probe::run(&cli.probe)
        }
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
