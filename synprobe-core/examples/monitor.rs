//! A small monitor built on synprobe-core's live prober: probes a list of `HOST:PORT` every few seconds and
//! prints a line only when a verdict changes (the first round prints every target).
//!
//! ```text
//! cargo build -p synprobe-core --example monitor
//! sudo target/debug/examples/monitor --every 10 192.0.2.7:443 192.0.2.7:22 '[2001:db8::7]:443'
//! 14:02:10Z 192.0.2.7:443  (new) -> open [high]: 192.0.2.7 port 443: open: ...
//! 14:02:10Z 192.0.2.7:22  (new) -> firewall-rst [high]: ...
//! 14:05:40Z 192.0.2.7:443  open -> closed [medium]: ...
//! ```
//!
//! Options: `--every SECS` (default 10), `--rounds N` (stop after N rounds; default: run until killed),
//! `--quick` (send only the SYN and its retransmissions, no discriminators). It needs CAP_NET_RAW to open its
//! sockets and captures, then drops to the user who ran sudo (or `nobody`) for the rest of its life: the
//! sockets stay open across rounds.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use synprobe_core::explain::Explain;
use synprobe_core::live::{drop_privileges, Job, Prober, ProberConfig};
use synprobe_core::session::TargetReport;
use synprobe_core::{Error, Verdict};

const USAGE: &str = "usage: monitor [--every SECS] [--rounds N] [--quick] HOST:PORT...";

struct Options {
    every: Duration,
    rounds: Option<u64>,
    quick: bool,
    jobs: Vec<Job>,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        every: Duration::from_secs(10),
        rounds: None,
        quick: false,
        jobs: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--every" => {
                let secs: f64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|s: &f64| *s >= 0.1)
                    .ok_or("--every takes a number of seconds (at least 0.1)")?;
                opts.every = Duration::from_secs_f64(secs);
            }
            "--rounds" => {
                opts.rounds = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("--rounds takes a number")?,
                );
            }
            "--quick" => opts.quick = true,
            target => opts.jobs.extend(jobs_for(target)?),
        }
    }
    // A name and an address (or two names) may be the same target: probe it once.
    let mut seen = std::collections::HashSet::new();
    opts.jobs.retain(|j| seen.insert((j.target, j.port)));
    if opts.jobs.is_empty() {
        return Err("name at least one HOST:PORT".into());
    }
    Ok(opts)
}

/// Every address of `HOST:PORT` (`[v6]:port` for an IPv6 literal), one job each.
fn jobs_for(target: &str) -> Result<Vec<Job>, String> {
    let (host, _) = target
        .rsplit_once(':')
        .ok_or_else(|| format!("{target}: expected HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let named = host.parse::<IpAddr>().is_err().then(|| host.to_string());
    let addrs = target
        .to_socket_addrs()
        .map_err(|e| format!("{target}: {e}"))?;
    Ok(addrs
        .map(|a| Job {
            host: named.clone(),
            target: a.ip(),
            port: a.port(),
        })
        .collect())
}

/// Wall-clock time of day, UTC, for the log lines.
fn clock() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}Z",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

fn name(r: &TargetReport) -> String {
    match r.target {
        IpAddr::V6(a) => format!("[{a}]:{}", r.port),
        IpAddr::V4(a) => format!("{a}:{}", r.port),
    }
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("monitor: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = ProberConfig::default();
    config.session.quick = opts.quick;
    let mut prober = match Prober::open(config, &opts.jobs) {
        Ok(p) => p,
        Err(e @ Error::Privilege { .. }) => {
            // The library says what failed; what to do about it is the program's to say.
            eprintln!(
                "monitor: {e}: run it with sudo, or setcap cap_net_raw,cap_net_admin+ep on it"
            );
            return ExitCode::from(77);
        }
        Err(e) => {
            eprintln!("monitor: {e}");
            return ExitCode::from(68);
        }
    };
    // The sockets and captures are open; nothing more needs root.
    if let Err(e) = drop_privileges() {
        eprintln!("monitor: {e}");
        return ExitCode::from(77);
    }
    let never = AtomicBool::new(false);
    let mut last: HashMap<(IpAddr, u16), Verdict> = HashMap::new();
    let mut round = 0u64;
    loop {
        round += 1;
        let outcome = match prober.run(opts.jobs.clone(), &never) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("monitor: round {round}: {e}");
                return ExitCode::from(68);
            }
        };
        for r in &outcome.reports {
            let j = &r.judgement;
            let before = last.insert((r.target, r.port), j.verdict);
            if before != Some(j.verdict) {
                // The verdict and the code of the deciding finding are data; the sentence is written for people.
                println!(
                    "{} {}  {} -> {} [{}] ({}): {}",
                    clock(),
                    name(r),
                    before.map_or("(new)", Verdict::as_str),
                    j.verdict,
                    j.confidence,
                    j.findings.first().map_or("-", |f| f.code()),
                    Explain::of_target(r).headline(j)
                );
            }
        }
        if opts.rounds.is_some_and(|n| round >= n) {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(opts.every);
    }
}
