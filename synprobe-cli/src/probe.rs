//! `synprobe HOST PORTS`: live deep analysis.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use synprobe_core::explain::Explain;
use synprobe_core::live::{drop_privileges, write_pcapng, Job, Prober, ProberConfig, RunError};
use synprobe_core::record::{ProbeRecord, SweepRecord};
use synprobe_core::session::{SessionConfig, TargetReport};
use synprobe_core::sweep::{is_sweep, SweepConfig};
use synprobe_core::{parse_ports, Duration, Error};

use crate::advice::Advised;
use crate::exit;
use crate::palette::Palette;
use crate::ProbeArgs;

/// `-4` / `-6`: which addresses of a host name to take.
#[derive(clap::Args, Debug, Clone, Copy)]
pub(crate) struct FamilyArgs {
    /// Only IPv4 addresses of the host.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Only IPv6 addresses of the host.
    #[arg(short = '6')]
    pub ipv6: bool,
}

/// Resolve a host to every address it has (a literal address stays itself), sorted.
fn resolve(host: &str, v4: bool, v6: bool) -> Result<Vec<IpAddr>, String> {
    let mut addrs = resolve_in_order(host, v4, v6)?;
    addrs.sort();
    Ok(addrs)
}

/// Resolve a host to every address it has of the chosen family (`v4`, `v6`, or both when neither), in the
/// resolver's order, each once (a literal address stays itself). The error says what to do.
pub(crate) fn resolve_in_order(host: &str, v4: bool, v6: bool) -> Result<Vec<IpAddr>, String> {
    let host_part = host.trim_start_matches('[').trim_end_matches(']');
    let mut addrs: Vec<IpAddr> = Vec::new();
    match host_part.parse::<IpAddr>() {
        Ok(a) => addrs.push(a),
        Err(_) => {
            let found = (host_part, 0).to_socket_addrs().map_err(|e| {
                format!("cannot resolve {host}: {e} (check the name, or give an address)")
            })?;
            for a in found.map(|s| s.ip()) {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
    }
    addrs.retain(|a| (!v4 && !v6) || (v4 && a.is_ipv4()) || (v6 && a.is_ipv6()));
    if addrs.is_empty() {
        let (fam, flag) = if v4 { ("IPv4", "-4") } else { ("IPv6", "-6") };
        return Err(format!(
            "{host} has no {fam} address (without {flag}, its other addresses are probed)"
        ));
    }
    Ok(addrs)
}

/// One job per address and port; `host` is kept as the name when it is not a literal address.
pub(crate) fn jobs_for(host: &str, addrs: &[IpAddr], ports: &[u16]) -> Vec<Job> {
    let host_name = host.parse::<IpAddr>().is_err().then(|| host.to_string());
    addrs
        .iter()
        .flat_map(|a| {
            ports.iter().map(|p| Job {
                host: host_name.clone(),
                target: *a,
                port: *p,
            })
        })
        .collect()
}

/// The `--max-targets` rule: more address/port pairs than `max` is a usage error, said on stderr. A range of
/// ports on one address is a sweep ([`is_sweep`]) and counts once.
pub(crate) fn within_max_targets(addrs: usize, ports: usize, max: usize) -> bool {
    let sweep = is_sweep(ports);
    let pairs = if sweep { addrs } else { addrs * ports };
    if pairs > max {
        eprintln!(
            "synprobe: {pairs} {} is more than --max-targets {max}: name fewer, or raise it",
            if sweep {
                "addresses to sweep"
            } else {
                "address/port pairs"
            }
        );
        return false;
    }
    true
}

/// A flag that SIGINT and SIGTERM raise, for [`Prober::run`]'s `stop`.
pub(crate) fn stop_on_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    stop
}

/// The headline of a live report without its leading "ADDRESS port PORT: ", for lines that name the target
/// themselves.
pub(crate) fn headline_after_target(r: &TargetReport) -> String {
    let headline = Explain::of_target(r).headline(&r.judgement);
    let prefix = format!("{} port {}: ", r.target, r.port);
    headline
        .strip_prefix(&prefix)
        .map_or_else(|| headline.clone(), str::to_string)
}

pub fn run(args: &ProbeArgs) -> io::Result<u8> {
    let (Some(host), Some(port_list)) = (&args.host, &args.ports) else {
        eprintln!(
            "synprobe: name a host and ports, e.g. `sudo synprobe example.com 443` (see --help)"
        );
        return Ok(exit::USAGE);
    };
    let ports = match parse_ports(port_list) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("synprobe: {e}");
            return Ok(exit::USAGE);
        }
    };
    let addrs = match resolve(host, args.family.ipv4, args.family.ipv6) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("synprobe: {e}");
            return Ok(exit::NO_TARGET);
        }
    };
    if host.parse::<IpAddr>().is_err() {
        let list: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
        tracing::info!("{host} resolves to {}", list.join(", "));
    }
    let jobs = jobs_for(host, &addrs, &ports);
    let sweep = is_sweep(ports.len());
    if !within_max_targets(addrs.len(), ports.len(), args.max_targets) {
        return Ok(exit::USAGE);
    }
    let mut session = SessionConfig {
        quick: args.quick,
        retries: args.retries.unwrap_or(if args.quick { 1 } else { 2 }),
        tos: args.tos,
        max_ttl: args.max_ttl,
        budget: args.budget,
        echo: !args.no_echo,
        ..SessionConfig::default()
    };
    if let Some(b) = &args.baseline_port {
        match parse_ports(b) {
            Ok(p) => session.baseline_ports = p,
            Err(e) => {
                eprintln!("synprobe: --baseline-port: {e}");
                return Ok(exit::USAGE);
            }
        }
    }
    session.max_rto = Duration::from_secs_f64(args.max_wait);
    // A --max-wait below the default shortest wait lowers that too (the core refuses min_rto > max_rto).
    session.min_rto = session.min_rto.min(session.max_rto);
    let rate = args.rate.unwrap_or(if sweep { 100_000 } else { 500 });
    let sweep_cfg = SweepConfig {
        session: SessionConfig {
            min_rto: SweepConfig::default().session.min_rto.min(session.max_rto),
            ..session.clone()
        },
        max_pps: rate,
        // The grouped text report shows the packets only with --trace.
        packets: args.json || args.trace,
        ..SweepConfig::default()
    };
    let config = ProberConfig {
        session,
        sweep: sweep_cfg,
        interface: args.interface.clone(),
        max_pps: rate,
        connect: args.connect,
        // The frames are for the pcapng file and the -vv trace of the plan.
        keep_frames: args.write.is_some() || args.output.verbose >= 2,
    };
    if sweep {
        tracing::info!(
            "sweeping {} port(s) of {} address(es): one SYN each, then the deeper steps once per kind of answer, {} packet(s)/s at most",
            ports.len(),
            addrs.len(),
            rate
        );
    } else {
        tracing::info!(
            "{} address/port pair(s), {} plan, at most {} packet(s) each, {} packet(s)/s",
            jobs.len(),
            if args.quick { "quick" } else { "full" },
            args.budget,
            rate
        );
    }
    let mut prober = match Prober::open(config, &jobs) {
        Ok(p) => p,
        Err(e) => return Ok(fail(&e)),
    };
    let mut pcapng_file = match &args.write {
        Some(path) => {
            // Created before privileges are dropped (the directory may be root's), then handed to the user
            // who ran sudo, so the capture is theirs. It is written once the verdicts are known, so that each
            // packet's comment can say which verdict it supported.
            let file = match File::create(path) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!(
                        "synprobe: cannot create {}: {e} (check that its directory exists and is writable)",
                        path.display()
                    );
                    return Ok(exit::CANNOT_WRITE);
                }
            };
            if let Err(e) = give_to_invoking_user(&file) {
                warn(
                    args,
                    format_args!(
                        "cannot hand {} to the invoking user: {e} (chown it yourself)",
                        path.display()
                    ),
                );
            }
            Some((path.clone(), file))
        }
        None => None,
    };
    // The sockets and captures are open: nothing more needs root.
    let who = match drop_privileges() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("synprobe: {}", Advised(&e));
            return Ok(exit::NO_PERMISSION);
        }
    };
    if tracing::enabled!(tracing::Level::INFO) {
        let caps = std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .filter(|l| l.starts_with("CapEff:") || l.starts_with("CapPrm:"))
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        tracing::info!(
            "capturing on {}; privileges dropped: now uid {} gid {} ({caps})",
            prober.interfaces().join(", "),
            who.uid,
            who.gid
        );
    }
    let stop = stop_on_signals();
    let links = prober.link_types();
    let started = Instant::now();
    let (outcome, failure) = match prober.run(jobs, &stop) {
        Ok(o) => (o, None),
        Err(RunError {
            error,
            partial: Some(partial),
        }) => (*partial, Some(error)),
        Err(RunError { error, .. }) => return Ok(fail(&error)),
    };
    tracing::info!(
        "{} verdict(s) in {:.1} ms, {} packet(s) sent, {} frame(s) captured for them",
        outcome.reports.len(),
        started.elapsed().as_secs_f64() * 1e3,
        outcome.reports.iter().map(|r| r.probes_sent).sum::<u32>(),
        outcome.frames.len()
    );
    if tracing::enabled!(tracing::Level::DEBUG) {
        if let Some(t0) = outcome.frames.first().map(|f| f.ts) {
            for f in &outcome.frames {
                tracing::debug!(
                    "{:>9.3} ms  {}",
                    f.ts.since(t0).as_secs_f64() * 1e3,
                    f.note.strip_prefix("synprobe ").unwrap_or(&f.note)
                );
            }
        }
    }
    // What was captured is written out whatever happened.
    if let Some((path, file)) = pcapng_file.take() {
        let comment = format!("synprobe {host} {port_list}");
        if let Err(e) = write_pcapng(BufWriter::new(file), &links, &outcome, &comment) {
            eprintln!("synprobe: cannot write {}: {e}", path.display());
        }
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let palette = Palette::for_stdout(args.output.color);
    if sweep {
        // The reports come in job order: each address's ports together.
        for mine in outcome.reports.chunk_by(|a, b| a.target == b.target) {
            if args.json {
                for r in mine {
                    serde_json::to_writer(&mut out, &ProbeRecord::new(r, args.explain))
                        .map_err(io::Error::other)?;
                    writeln!(out)?;
                }
                if let Some(rec) = SweepRecord::new(mine) {
                    serde_json::to_writer(&mut out, &rec).map_err(io::Error::other)?;
                    writeln!(out)?;
                }
            } else {
                sweep_human(&mut out, mine, args.trace, palette)?;
            }
        }
    } else {
        for r in &outcome.reports {
            if args.json {
                serde_json::to_writer(&mut out, &ProbeRecord::new(r, args.explain))
                    .map_err(io::Error::other)?;
                writeln!(out)?;
            } else {
                human(&mut out, r, args.trace, palette)?;
            }
        }
    }
    out.flush()?;
    if outcome.dropped.0 + outcome.dropped.1 > 0 {
        warn(
            args,
            format_args!(
                "the capture dropped {} packet(s) (kernel buffer) and the interface {}: the verdicts may miss replies; probe fewer ports at once, or lower --rate",
                outcome.dropped.0, outcome.dropped.1
            ),
        );
    }
    if let Some(reason) = failure {
        eprintln!(
            "synprobe: the run stopped early: {}; the verdicts above judge what was seen until then",
            Advised(&reason)
        );
        return Ok(exit::NO_TARGET);
    }
    if outcome.interrupted {
        eprintln!("synprobe: interrupted: the verdicts above judge what was seen until then");
        return Ok(exit::INTERRUPTED);
    }
    Ok(outcome
        .reports
        .iter()
        .map(|r| exit::for_verdict(r.judgement.verdict))
        .max()
        .unwrap_or(exit::OK))
}

/// A warning on stderr, unless `--quiet`.
fn warn(args: &ProbeArgs, what: std::fmt::Arguments<'_>) {
    if !args.output.quiet {
        eprintln!("synprobe: warning: {what}");
    }
}

/// Say what stopped the probe and pick its exit code: settings the core refuses 2, missing privilege 77,
/// anything else about the target 68.
pub(crate) fn fail(e: &Error) -> u8 {
    eprintln!("synprobe: {}", Advised(e));
    match e {
        Error::Config(_) => exit::USAGE,
        Error::Privilege { .. } => exit::NO_PERMISSION,
        _ => exit::NO_TARGET,
    }
}

/// When run through sudo, make `file` belong to the user who ran it (SUDO_UID/SUDO_GID).
fn give_to_invoking_user(file: &File) -> nix::Result<()> {
    let id = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    match (id("SUDO_UID"), id("SUDO_GID")) {
        (Some(uid), Some(gid)) if nix::unistd::geteuid().is_root() => nix::unistd::fchown(
            file,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        ),
        _ => Ok(()),
    }
}

/// A sweep's report for one address, as a scan reads: the ports grouped by verdict, rejecter and cause (ranges
/// compressed), then the evidence of each group but the open ports and the host's own closed ports.
fn sweep_human(
    out: &mut impl Write,
    reports: &[TargetReport],
    trace: bool,
    palette: Palette,
) -> io::Result<()> {
    let Some(rec) = SweepRecord::new(reports) else {
        return Ok(());
    };
    let name = match &rec.host {
        Some(h) => format!("{h} ({})", rec.target),
        None => rec.target.to_string(),
    };
    writeln!(
        out,
        "{} {} port(s) swept in {:.2} s, {} packet(s) sent",
        palette.heading(format_args!("{name}:")),
        rec.ports,
        rec.time_ms / 1e3,
        rec.probes_sent
    )?;
    let by_port = |p: u16| reports.iter().find(|r| r.port == p);
    let mut detail: Vec<&TargetReport> = Vec::new();
    for g in &rec.groups {
        let Some(first) = by_port(g.first) else {
            continue;
        };
        let what = headline_after_target(first);
        let ports = if g.ports.len() <= 48 {
            g.ports.clone()
        } else {
            format!("{} ports", g.count)
        };
        // Padded by hand: the colour codes around the verdict are not part of its width.
        let pad = " ".repeat(14usize.saturating_sub(g.verdict.to_string().len()));
        writeln!(
            out,
            "  {}{pad} {ports}: {what} [{} confidence]",
            palette.verdict(g.verdict, g.verdict),
            g.confidence
        )?;
        let ordinary = g.verdict == synprobe_core::Verdict::Open
            || (g.verdict == synprobe_core::Verdict::Closed
                && g.rejecter
                    .is_some_and(|r| r.kind == synprobe_core::RejecterKind::Target));
        if !ordinary {
            detail.push(first);
        }
    }
    if !detail.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            palette.heading("The evidence, per group (the group's first port):")
        )?;
        writeln!(out)?;
        for r in detail {
            human(out, r, trace, palette)?;
        }
    } else {
        writeln!(out)?;
    }
    Ok(())
}

fn human(out: &mut impl Write, r: &TargetReport, trace: bool, palette: Palette) -> io::Result<()> {
    let j = &r.judgement;
    let words = Explain::of_target(r);
    let name = match &r.host {
        Some(h) => format!("{h} ({})", r.target),
        None => r.target.to_string(),
    };
    writeln!(
        out,
        "{} {} [{} confidence]",
        palette.heading(format_args!("{name} port {}:", r.port)),
        palette.verdict(j.verdict, j.verdict),
        j.confidence
    )?;
    writeln!(out, "  {}", headline_after_target(r))?;
    if let Some(rej) = j.rejecter {
        writeln!(out, "  rejecter: {}", crate::render::rejecter_at(rej))?;
    }
    let mut facts = Vec::new();
    if let Some(h) = j.target_hops {
        facts.push(format!("target {h} hop(s) away"));
    }
    if let Some(rtt) = j.rtt_ms() {
        facts.push(format!("rtt {rtt:.2} ms"));
    }
    facts.push(format!("{} packet(s) sent", r.probes_sent));
    facts.push(format!(
        "verdict after {:.1} ms",
        r.time_to_verdict.as_millis_f64()
    ));
    writeln!(out, "  {}", facts.join(", "))?;
    writeln!(out, "  {}", palette.heading("evidence:"))?;
    for f in &j.findings {
        writeln!(out, "    - {}: {}", words.observed(f), words.implies(f))?;
    }
    if !r.path.is_empty() {
        let hops: Vec<String> = r
            .path
            .iter()
            .map(|h| match h.addr {
                Some(a) => format!("{} {a} ({})", h.ttl, h.answer),
                None => format!("{} * (silence)", h.ttl),
            })
            .collect();
        writeln!(out, "  path: {}", hops.join("  "))?;
    }
    writeln!(out, "  {}", palette.heading("next steps:"))?;
    for s in words.next_steps(j) {
        writeln!(out, "    - {s}")?;
    }
    if trace {
        writeln!(out, "  {}", palette.heading("packets:"))?;
        for p in &r.packets {
            writeln!(out, "    {}", p.summary)?;
        }
    }
    writeln!(out)
}
