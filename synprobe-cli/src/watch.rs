//! `synprobe watch HOST PORTS`: probe on an interval with one prober, print a line when a port's verdict or
//! rejecter changes, flag flapping, and print the history on SIGINT/SIGTERM.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration as StdDuration, Instant, SystemTime};

use clap::{Args, ValueHint};
use serde_json::{json, Value};
use synprobe_core::live::{drop_privileges, Prober, ProberConfig, RunError};
use synprobe_core::record::{evidence_records, SCHEMA_VERSION};
use synprobe_core::session::{SessionConfig, TargetReport};
use synprobe_core::{parse_ports, Duration, Rejecter, Timestamp, Verdict};

use crate::advice::Advised;
use crate::exit;
use crate::probe::{
    fail, headline_after_target, jobs_for, resolve_in_order, stop_on_signals, within_max_targets,
};
use crate::render::rejecter_at;

/// Arguments of `synprobe watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Host name or address. A name is resolved once, to all its addresses, and each is watched.
    #[arg(value_hint = ValueHint::Hostname)]
    host: String,
    /// Ports: 443, 80,443 or 8000-8010.
    ports: String,
    /// Seconds between the starts of two rounds (at least 1; a round that takes longer is followed at once).
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_every)]
    every: f64,
    /// JSON Lines: one object per change, and the history at the end (schema in docs/json.md).
    #[arg(long)]
    json: bool,
    /// The window for flapping, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600.0, value_parser = crate::parse_secs)]
    flap_window: f64,
    /// A port is FLAPPING when it changed at least this many times within --flap-window.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    flap_changes: u32,
    #[command(flatten)]
    family: crate::probe::FamilyArgs,
    /// Send just the SYN (and its retransmissions) each round and judge on what comes back.
    #[arg(long)]
    quick: bool,
    /// Capture on this interface instead of the one the route uses.
    #[arg(short = 'i', long, value_name = "IFACE")]
    interface: Option<String>,
    /// Refuse to watch more address/port pairs than this.
    #[arg(long, default_value_t = 64)]
    max_targets: usize,
}

fn parse_every(s: &str) -> Result<f64, String> {
    let v = crate::parse_secs(s)?;
    if v < 1.0 {
        return Err("rounds must be at least 1 second apart".into());
    }
    Ok(v)
}

/// What a port's state is for change detection: the verdict and who refused (its address and kind; a hop
/// count that could not be told in one round is not a change).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    /// The verdict.
    pub verdict: Verdict,
    /// Who refused, if anyone.
    pub rejecter: Option<Rejecter>,
}

impl Status {
    /// The status of a report.
    pub fn of(r: &TargetReport) -> Self {
        Status {
            verdict: r.judgement.verdict,
            rejecter: r.judgement.rejecter,
        }
    }

    fn same_as(&self, other: &Status) -> bool {
        let who = |s: &Status| s.rejecter.map(|r| (r.addr, r.kind));
        self.verdict == other.verdict && who(self) == who(other)
    }

    fn json(&self) -> Value {
        json!({ "verdict": self.verdict.as_str(), "rejecter": self.rejecter })
    }
}

/// "firewall-rst by 198.18.0.2 at hop 1", or just the verdict when nobody refused.
impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rejecter {
            Some(r) => write!(f, "{} by {}", self.verdict, rejecter_at(r)),
            None => write!(f, "{}", self.verdict),
        }
    }
}

/// A line to print: a port's first state (`old` None) or a change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// When the round that saw it ended.
    pub at: Timestamp,
    /// The address.
    pub target: IpAddr,
    /// The port.
    pub port: u16,
    /// The state before (None: the first round).
    pub old: Option<Status>,
    /// The state now.
    pub new: Status,
    /// Changes of this port within the flap window, this one included (0 for the first state).
    pub recent: usize,
    /// Whether that is at least the flapping threshold.
    pub flapping: bool,
}

/// One port's history.
#[derive(Debug, Clone)]
pub struct PortHistory {
    /// The first state seen, and when.
    pub first: (Timestamp, Status),
    /// Every change: when, from, to.
    pub changes: Vec<(Timestamp, Status, Status)>,
    /// How many of the changes were flagged FLAPPING.
    pub flapping_changes: usize,
}

impl PortHistory {
    /// The state now.
    pub fn current(&self) -> Status {
        self.changes.last().map_or(self.first.1, |c| c.2)
    }

    /// Changes within `window` before `at` (at included).
    fn recent(&self, at: Timestamp, window: Duration) -> usize {
        self.changes
            .iter()
            .filter(|c| at.since(c.0) <= window)
            .count()
    }
}

/// Change detection and flapping, fed with each round's statuses and the time: no clock, no I/O.
#[derive(Debug, Clone)]
pub struct Watch {
    window: Duration,
    flap_changes: usize,
    ports: BTreeMap<(IpAddr, u16), PortHistory>,
}

impl Watch {
    /// A port is flapping when it changed at least `flap_changes` times within `window`.
    pub fn new(window: Duration, flap_changes: usize) -> Self {
        Watch {
            window,
            flap_changes: flap_changes.max(1),
            ports: BTreeMap::new(),
        }
    }

    /// Take one port's status from a round that ended at `at`; the line to print, if any.
    pub fn observe(
        &mut self,
        at: Timestamp,
        target: IpAddr,
        port: u16,
        status: Status,
    ) -> Option<Change> {
        let Some(h) = self.ports.get_mut(&(target, port)) else {
            self.ports.insert(
                (target, port),
                PortHistory {
                    first: (at, status),
                    changes: Vec::new(),
                    flapping_changes: 0,
                },
            );
            return Some(Change {
                at,
                target,
                port,
                old: None,
                new: status,
                recent: 0,
                flapping: false,
            });
        };
        let old = h.current();
        if old.same_as(&status) {
            return None;
        }
        h.changes.push((at, old, status));
        let recent = h.recent(at, self.window);
        let flapping = recent >= self.flap_changes;
        if flapping {
            h.flapping_changes += 1;
        }
        Some(Change {
            at,
            target,
            port,
            old: Some(old),
            new: status,
            recent,
            flapping,
        })
    }

    /// Whether a port is flapping at `at`.
    pub fn is_flapping(&self, at: Timestamp, h: &PortHistory) -> bool {
        h.recent(at, self.window) >= self.flap_changes
    }

    /// Every port's history, by address and port.
    pub fn ports(&self) -> impl Iterator<Item = (&(IpAddr, u16), &PortHistory)> {
        self.ports.iter()
    }
}

/// `198.18.0.9:80`, `[2001:db8::9]:80`.
fn host_port(target: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(target, port).to_string()
}

/// `2026-12-05T09:10:05Z` (UTC, to the second).
pub fn utc(t: Timestamp) -> String {
    let secs = t.as_nanos().div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn secs(t: Timestamp) -> f64 {
    t.as_nanos() as f64 / 1e9
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_parts(d.as_secs() as i64, d.subsec_nanos())
}

/// The human line of a change: time, `host:port old → new`, the evidence headline, and FLAPPING.
fn change_line(c: &Change, r: &TargetReport, window: f64) -> String {
    let old = c.old.map_or("(new)".to_string(), |o| o.to_string());
    let mut line = format!(
        "{} {} {old} → {}: {} [{}]",
        utc(c.at),
        host_port(c.target, c.port),
        c.new,
        headline_after_target(r),
        r.judgement.confidence
    );
    if c.flapping {
        line.push_str(&format!(" FLAPPING ({} changes in {} s)", c.recent, window));
    }
    line
}

/// The JSON object of a change.
fn change_json(c: &Change, r: &TargetReport) -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "type": "change",
        "time": secs(c.at),
        "host": r.host,
        "target": c.target,
        "port": c.port,
        "old": c.old.map(|o| o.json()),
        "new": c.new.json(),
        "confidence": r.judgement.confidence,
        "target_hops": r.judgement.target_hops.map(|h| h.0),
        "rtt_ms": r.judgement.rtt_ms(),
        "evidence": evidence_records(&r.judgement, None),
        "changes_in_window": c.recent,
        "flapping": c.flapping,
    })
}

/// The history, as text: per port, its first state, every change, the count and whether it flaps now.
fn write_history(
    out: &mut impl Write,
    watch: &Watch,
    at: Timestamp,
    rounds: u64,
) -> io::Result<()> {
    writeln!(out, "History ({rounds} round(s)):")?;
    for ((target, port), h) in watch.ports() {
        writeln!(
            out,
            "  {}: {} change(s), {} flagged FLAPPING; {}; now {}",
            host_port(*target, *port),
            h.changes.len(),
            h.flapping_changes,
            if watch.is_flapping(at, h) {
                "FLAPPING"
            } else {
                "not flapping"
            },
            h.current()
        )?;
        writeln!(out, "    {} (new) → {}", utc(h.first.0), h.first.1)?;
        for (t, old, new) in &h.changes {
            writeln!(out, "    {} {old} → {new}", utc(*t))?;
        }
    }
    Ok(())
}

/// The history, as one JSON object.
fn history_json(watch: &Watch, at: Timestamp, rounds: u64) -> Value {
    let ports: Vec<Value> = watch
        .ports()
        .map(|((target, port), h)| {
            let changes: Vec<Value> = h
                .changes
                .iter()
                .map(
                    |(t, old, new)| json!({"time": secs(*t), "old": old.json(), "new": new.json()}),
                )
                .collect();
            json!({
                "target": target,
                "port": port,
                "first": {"time": secs(h.first.0), "status": h.first.1.json()},
                "changes": changes,
                "change_count": h.changes.len(),
                "flapping_changes": h.flapping_changes,
                "flapping": watch.is_flapping(at, h),
                "current": h.current().json(),
            })
        })
        .collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "type": "history",
        "time": secs(at),
        "rounds": rounds,
        "ports": ports,
    })
}

/// Run the watch until SIGINT/SIGTERM; exit code 130 then (after the history), or the probe's setup error.
pub fn run(args: &WatchArgs) -> io::Result<u8> {
    let ports = match parse_ports(&args.ports) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("synprobe: {e}");
            return Ok(exit::USAGE);
        }
    };
    let addrs = match resolve_in_order(&args.host, args.family.ipv4, args.family.ipv6) {
        Ok(mut a) => {
            a.sort();
            a
        }
        Err(e) => {
            eprintln!("synprobe: {e}");
            return Ok(exit::NO_TARGET);
        }
    };
    let jobs = jobs_for(&args.host, &addrs, &ports);
    if !within_max_targets(addrs.len(), ports.len(), args.max_targets) {
        return Ok(exit::USAGE);
    }
    let config = ProberConfig {
        session: SessionConfig {
            quick: args.quick,
            retries: if args.quick { 1 } else { 2 },
            ..SessionConfig::default()
        },
        interface: args.interface.clone(),
        keep_frames: false,
        ..ProberConfig::default()
    };
    let mut prober = match Prober::open(config, &jobs) {
        Ok(p) => p,
        Err(e) => return Ok(fail(&e)),
    };
    // The sockets and captures are open for the whole watch: nothing more needs root.
    if let Err(e) = drop_privileges() {
        eprintln!("synprobe: {}", Advised(&e));
        return Ok(exit::NO_PERMISSION);
    }
    let stop = stop_on_signals();
    let every = StdDuration::from_secs_f64(args.every);
    let mut watch = Watch::new(
        Duration::from_secs_f64(args.flap_window),
        args.flap_changes as usize,
    );
    let mut rounds = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match prober.run(jobs.clone(), &stop) {
            // A round cut short by the signal judged too little to call a change.
            Ok(o) if o.interrupted => {}
            Ok(o) => {
                rounds += 1;
                let at = now();
                let mut out = io::stdout().lock();
                for r in &o.reports {
                    if let Some(c) = watch.observe(at, r.target, r.port, Status::of(r)) {
                        if args.json {
                            serde_json::to_writer(&mut out, &change_json(&c, r))
                                .map_err(io::Error::other)?;
                            writeln!(out)?;
                        } else {
                            writeln!(out, "{}", change_line(&c, r, args.flap_window))?;
                        }
                    }
                }
                out.flush()?;
            }
            Err(RunError { error, .. }) => {
                eprintln!(
                    "synprobe: {}: this round is skipped, the next one is tried",
                    Advised(&error)
                );
            }
        }
        while !stop.load(Ordering::Relaxed) {
            let left = every.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(StdDuration::from_millis(100)));
        }
    }
    let at = now();
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &history_json(&watch, at, rounds))
            .map_err(io::Error::other)?;
        writeln!(out)?;
    } else {
        write_history(&mut out, &watch, at, rounds)?;
    }
    out.flush()?;
    Ok(exit::INTERRUPTED)
}

#[cfg(test)]
mod tests {
    use synprobe_core::RejecterKind;

    use super::*;

    fn router(addr: &str, hops: u8) -> Rejecter {
        Rejecter {
            addr: addr.parse().expect("an address"),
            hops: Some(synprobe_core::HopCount(hops)),
            is_target: false,
            kind: RejecterKind::Router,
        }
    }

    fn status(verdict: Verdict, rejecter: Option<Rejecter>) -> Status {
        Status { verdict, rejecter }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_parts(1_764_926_400 + s, 0)
    }

    #[test]
    fn the_first_round_prints_every_port_and_then_only_changes() {
        let mut w = Watch::new(Duration::from_secs_f64(600.0), 3);
        let t: IpAddr = "198.18.0.9".parse().expect("address");
        let open = status(Verdict::Open, None);
        let first = w.observe(at(0), t, 80, open).expect("the first state");
        assert_eq!(first.old, None);
        assert!(!first.flapping);
        assert!(w.observe(at(0), t, 81, open).is_some());
        assert_eq!(w.observe(at(60), t, 80, open), None);
        let rst = status(Verdict::FirewallRst, Some(router("198.18.0.2", 1)));
        let c = w.observe(at(120), t, 80, rst).expect("a change");
        assert_eq!((c.old, c.new, c.recent), (Some(open), rst, 1));
        // The same rejecter with a hop count not told this round is no change; another rejecter is.
        let mut no_hops = router("198.18.0.2", 1);
        no_hops.hops = None;
        assert_eq!(
            w.observe(at(180), t, 80, status(Verdict::FirewallRst, Some(no_hops))),
            None
        );
        let other = status(Verdict::FirewallRst, Some(router("198.18.1.2", 2)));
        assert!(w.observe(at(240), t, 80, other).is_some());
        let (_, h) = w.ports().next().expect("port 80");
        assert_eq!(h.changes.len(), 2);
        assert_eq!(h.current(), other);
        assert_eq!(h.first, (at(0), open));
    }

    #[test]
    fn flapping_needs_n_changes_within_the_window() {
        let mut w = Watch::new(Duration::from_secs_f64(600.0), 3);
        let t: IpAddr = "2001:db8::9".parse().expect("address");
        let open = status(Verdict::Open, None);
        let filtered = status(Verdict::Filtered, None);
        w.observe(at(0), t, 443, open);
        let c1 = w.observe(at(100), t, 443, filtered).expect("change");
        let c2 = w.observe(at(200), t, 443, open).expect("change");
        assert!(!c1.flapping && !c2.flapping);
        let c3 = w.observe(at(300), t, 443, filtered).expect("change");
        assert!(c3.flapping, "{c3:?}");
        assert_eq!(c3.recent, 3);
        // Long after, one change alone is not flapping: the older ones left the window.
        let c4 = w.observe(at(2000), t, 443, open).expect("change");
        assert!(!c4.flapping);
        assert_eq!(c4.recent, 1);
        let (_, h) = w.ports().next().expect("port");
        assert_eq!(h.flapping_changes, 1);
        assert!(!w.is_flapping(at(2000), h));
        assert_eq!(h.changes.len(), 4);
        // The window's edge is inside it.
        let mut w = Watch::new(Duration::from_secs_f64(10.0), 2);
        w.observe(at(0), t, 1, open);
        w.observe(at(0), t, 1, filtered);
        assert!(w.observe(at(10), t, 1, open).expect("change").flapping);
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(utc(Timestamp::from_parts(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            utc(Timestamp::from_parts(1_764_926_405, 999)),
            "2025-12-05T09:20:05Z"
        );
        assert_eq!(
            utc(Timestamp::from_parts(951_782_400, 0)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn statuses_read_as_verdict_and_rejecter() {
        assert_eq!(status(Verdict::Open, None).to_string(), "open");
        assert_eq!(
            status(Verdict::FirewallRst, Some(router("198.18.0.2", 1))).to_string(),
            "firewall-rst by 198.18.0.2 at hop 1"
        );
        assert_eq!(
            host_port("2001:db8::9".parse().expect("a"), 80),
            "[2001:db8::9]:80"
        );
        let j = status(Verdict::Closed, None).json();
        assert_eq!(j["verdict"], "closed");
        assert!(j["rejecter"].is_null());
    }
}
