//! Live probing: the I/O edge around [`Session`]s. Raw sockets send what the sessions ask for, libpcap captures
//! what comes back (and what we sent), and every captured frame goes through the same engine as a replay.
//!
//! Several targets run concurrently over one set of raw sockets and one capture per interface:
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use synprobe_core::live::{Job, Prober, ProberConfig};
//!
//! # fn main() -> Result<(), synprobe_core::Error> {
//! let jobs = vec![Job::new("192.0.2.10".parse().unwrap(), 443), Job::new("192.0.2.11".parse().unwrap(), 22)];
//! let mut prober = Prober::open(ProberConfig::default(), &jobs)?; // needs CAP_NET_RAW
//! synprobe_core::live::drop_privileges()?;
//! let run = prober.run(jobs, &AtomicBool::new(false))?;
//! for r in &run.reports {
//!     let words = synprobe_core::explain::Explain::of_target(r);
//!     println!("{}:{} {} — {}", r.target, r.port, r.judgement.verdict, words.headline(&r.judgement));
//! }
//! # Ok(())
//! # }
//! ```

pub mod local;
mod privilege;
mod route;
mod send;
pub mod serve;

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

pub use privilege::{drop_privileges, Identity};
pub use route::{interface_for, source_for};
pub use send::{RawSender, Sender};

/// Moved next to [`Session`]: it is sans-IO. Kept here for callers of the old path.
pub use crate::session::simulate;

use crate::capture::{LinkType, PcapNgWriter};
use crate::error::{check, ConfigError, Error, Result};
use crate::model::Observed;
use crate::session::{source_ports_needed, Outgoing, Plan, Session, SessionConfig, TargetReport};
use crate::sweep::{is_sweep, Sweep, SweepConfig};
use crate::time::Timestamp;
use crate::wire::parse_frame;

/// One address and port to diagnose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The host name the user gave, if any.
    pub host: Option<String>,
    /// The address.
    pub target: IpAddr,
    /// The port.
    pub port: u16,
}

impl Job {
    /// A job for an address and port.
    pub fn new(target: IpAddr, port: u16) -> Self {
        Job {
            host: None,
            target,
            port,
        }
    }
}

/// Prober settings.
#[derive(Debug, Clone)]
pub struct ProberConfig {
    /// The plan for each target of an address with a few ports.
    pub session: SessionConfig,
    /// The plan for an address with more ports than [`crate::sweep::SWEEP_FROM_PORTS`]: a sweep.
    pub sweep: SweepConfig,
    /// Capture on this interface instead of the one the route uses.
    pub interface: Option<String>,
    /// Packets per second at most, over all targets (default 500, bursts of 100).
    pub max_pps: u32,
    /// After the plan, open one ordinary TCP connection to every port whose SYN drew a SYN-ACK, to tell
    /// whether the service behind a SYN proxy accepts it (default false).
    pub connect: bool,
    /// Keep every frame the plans took in [`RunOutcome::frames`] (default true), for a pcapng file or a trace
    /// of the plan; a sweep without them needs about half the memory.
    pub keep_frames: bool,
}

impl ProberConfig {
    /// Check the settings: the session's ([`SessionConfig::validate`]), `max_pps` at least 1, and no empty
    /// interface name. [`Prober::open`] does.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        self.session.validate()?;
        self.sweep.validate()?;
        check::at_least_one("prober.max_pps", self.max_pps)?;
        if self.interface.as_deref() == Some("") {
            return Err(ConfigError::Empty {
                setting: "prober.interface",
            });
        }
        Ok(())
    }
}

impl Default for ProberConfig {
    fn default() -> Self {
        ProberConfig {
            session: SessionConfig::default(),
            sweep: SweepConfig::default(),
            interface: None,
            max_pps: 500,
            connect: false,
            keep_frames: true,
        }
    }
}

/// A run that stopped with an error. What was captured and judged until then is kept when the run had started
/// (`partial`); an error before the first probe has none. `?` turns it into the crate's [`Error`].
#[derive(Debug)]
pub struct RunError {
    /// What failed.
    pub error: Error,
    /// The reports and frames until then, if the run had started.
    pub partial: Option<Box<RunOutcome>>,
}

/// Says what [`RunError::error`] says (and hands on its source), so that it reads as that error.
impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl From<Error> for RunError {
    fn from(error: Error) -> Self {
        RunError {
            error,
            partial: None,
        }
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Self {
        e.error
    }
}

/// A frame a session took, as captured, for the pcapng file.
#[derive(Debug, Clone)]
pub struct CapturedFrame {
    /// Index of the capture (interface) it came from, as in [`Prober::link_types`].
    pub interface: u32,
    /// Capture time.
    pub ts: Timestamp,
    /// The bytes captured.
    pub data: Vec<u8>,
    /// Length on the wire.
    pub orig_len: u32,
    /// Index of the job (and report) it belongs to.
    pub job: usize,
    /// Which probe, which step of the plan.
    pub note: String,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// One report per job, in job order.
    pub reports: Vec<TargetReport>,
    /// Every frame a session took, in capture order (write them with [`write_pcapng`]); empty without
    /// [`ProberConfig::keep_frames`].
    pub frames: Vec<CapturedFrame>,
    /// Packets libpcap dropped (kernel buffer full) and the interface dropped, summed over captures.
    pub dropped: (u64, u64),
    /// Whether the run was stopped early (SIGINT/SIGTERM): the reports judge what was seen so far.
    pub interrupted: bool,
}

/// The plan of one address: a deep session, or a sweep of many ports.
enum Probing {
    Deep(Box<Session>),
    Sweep(Box<Sweep>),
}

impl Probing {
    fn plan(&mut self) -> &mut dyn Plan {
        match self {
            Probing::Deep(s) => s.as_mut(),
            Probing::Sweep(s) => s.as_mut(),
        }
    }

    /// The deep session, when this is one (the connect and local-host steps are theirs).
    fn deep(&self) -> Option<&Session> {
        match self {
            Probing::Deep(s) => Some(s),
            Probing::Sweep(_) => None,
        }
    }

    fn deep_mut(&mut self) -> Option<&mut Session> {
        match self {
            Probing::Deep(s) => Some(s),
            Probing::Sweep(_) => None,
        }
    }

    fn plan_ref(&self) -> &dyn Plan {
        match self {
            Probing::Deep(s) => s.as_ref(),
            Probing::Sweep(s) => s.as_ref(),
        }
    }
}

struct Tap {
    name: String,
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
}

/// Sends probes and captures replies for many targets at once. Open it (with privilege), drop privileges,
/// then run jobs.
pub struct Prober {
    cfg: ProberConfig,
    sender: Box<dyn Sender>,
    taps: Vec<Tap>,
    sources: HashMap<IpAddr, IpAddr>,
    frame: u64,
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_parts(d.as_secs() as i64, d.subsec_nanos())
}

impl Prober {
    /// Resolve routes, open raw sockets and one capture per interface for these jobs. Needs CAP_NET_RAW.
    pub fn open(cfg: ProberConfig, jobs: &[Job]) -> Result<Prober> {
        cfg.validate()?;
        let mut sources = HashMap::new();
        for j in jobs {
            if let std::collections::hash_map::Entry::Vacant(e) = sources.entry(j.target) {
                e.insert(source_for(j.target)?);
            }
        }
        let v6_sources: Vec<IpAddr> = {
            let mut v: Vec<IpAddr> = sources.values().copied().filter(IpAddr::is_ipv6).collect();
            v.sort();
            v.dedup();
            v
        };
        if v6_sources.len() > 1 {
            return Err(Error::MixedIpv6Sources {
                first: v6_sources[0],
                second: v6_sources[1],
            });
        }
        let need_v4 = sources.values().any(IpAddr::is_ipv4);
        let sender = RawSender::open(need_v4, v6_sources.first().copied())?;
        let mut by_iface: HashMap<String, (Vec<IpAddr>, Vec<IpAddr>)> = HashMap::new();
        for (target, source) in &sources {
            // An address of this host is reached over the loopback device, whatever interface carries it.
            let local = target == source;
            let iface = match &cfg.interface {
                Some(i) => i.clone(),
                None if local => interface_for(if target.is_ipv6() {
                    IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
                } else {
                    IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
                })?,
                None => interface_for(*source)?,
            };
            let e = by_iface.entry(iface).or_default();
            e.0.push(*target);
            e.1.push(*source);
        }
        // A sweep's answers come by the tens of thousands a second: a kernel buffer to hold a second of them.
        let sweeping = {
            let mut per: HashMap<IpAddr, usize> = HashMap::new();
            for j in jobs {
                *per.entry(j.target).or_default() += 1;
            }
            per.values().any(|&n| is_sweep(n))
        };
        let buffer = if sweeping { 32 << 20 } else { 1 << 20 };
        let mut taps = Vec::new();
        let mut names: Vec<&String> = by_iface.keys().collect();
        names.sort();
        for name in names {
            let (targets, srcs) = &by_iface[name];
            taps.push(open_tap(name, targets, srcs, buffer)?);
        }
        Ok(Prober {
            cfg,
            sender: Box::new(sender),
            taps,
            sources,
            frame: 0,
        })
    }

    /// The link types of the captures, in order (for a pcapng writer's interfaces).
    pub fn link_types(&self) -> Vec<LinkType> {
        self.taps.iter().map(|t| t.link).collect()
    }

    /// The capture interfaces, in order.
    pub fn interfaces(&self) -> Vec<String> {
        self.taps.iter().map(|t| t.name.clone()).collect()
    }

    /// Run the jobs to their verdicts. Every frame a session takes is kept in the outcome, with a note naming
    /// the probe and the step of the plan; `stop` ends the run early (the reports then judge what was seen, and
    /// the frames so far are still returned). A failure part-way (the capture fails) is a [`RunError`] that keeps
    /// the reports and frames until then.
    pub fn run(
        &mut self,
        jobs: Vec<Job>,
        stop: &AtomicBool,
    ) -> std::result::Result<RunOutcome, RunError> {
        let mut frames: Vec<CapturedFrame> = Vec::new();
        let seed = now().as_nanos() as u64 ^ u64::from(std::process::id()) << 32;
        // One session per address, with all its ports: facts about the address are learned once.
        let mut targets: Vec<(IpAddr, Option<String>, Vec<u16>)> = Vec::new();
        for j in &jobs {
            match targets.iter_mut().find(|t| t.0 == j.target) {
                Some(t) => t.2.push(j.port),
                None => targets.push((j.target, j.host.clone(), vec![j.port])),
            }
        }
        // Each session gets its own range of source ports, so that every reply has exactly one owner.
        let span_of = |ports: usize| {
            if is_sweep(ports) {
                crate::sweep::source_ports_needed(&self.cfg.sweep)
            } else {
                source_ports_needed(ports, &self.cfg.session)
            }
        };
        let need: u32 = targets.iter().map(|t| span_of(t.2.len())).sum();
        const FIRST_PORT: u32 = 10_000;
        if need > 65_535 - FIRST_PORT {
            return Err(Error::SourcePorts {
                pairs: jobs.len(),
                budget: self.cfg.session.budget,
                needed: need,
                available: 65_535 - FIRST_PORT,
            }
            .into());
        }
        let mut base = FIRST_PORT + (seed % u64::from(65_535 - FIRST_PORT - need + 1)) as u32;
        let mut sessions: Vec<Probing> = Vec::new();
        for (i, (target, host, ports)) in targets.into_iter().enumerate() {
            let source = self.sources.get(&target).copied().unwrap_or(target);
            let span = span_of(ports.len());
            let seed = seed.wrapping_mul(i as u64 + 1).rotate_left(17);
            let local = source == target;
            sessions.push(if is_sweep(ports.len()) {
                let cfg = self.cfg.sweep.clone();
                Probing::Sweep(Box::new(
                    Sweep::new(target, &ports, source, cfg, base as u16, seed)
                        .map_err(Error::from)?
                        .with_host(host)
                        .local(local),
                ))
            } else {
                let cfg = self.cfg.session.clone();
                Probing::Deep(Box::new(
                    Session::new(target, &ports, source, cfg, base as u16, seed)
                        .map_err(Error::from)?
                        .with_host(host)
                        .local(local),
                ))
            });
            base += span;
        }
        // Which job a frame belongs to: by address and port, or the address's first job.
        let mut job_index: HashMap<(IpAddr, u16), usize> = HashMap::with_capacity(jobs.len());
        let mut first_job: HashMap<IpAddr, usize> = HashMap::new();
        for (i, j) in jobs.iter().enumerate() {
            job_index.entry((j.target, j.port)).or_insert(i);
            first_job.entry(j.target).or_insert(i);
        }
        let job_of = |target: IpAddr, port: Option<u16>| {
            port.and_then(|p| job_index.get(&(target, p)))
                .or_else(|| first_job.get(&target))
                .copied()
                .unwrap_or(0)
        };
        // For an address of this host, its own listen-queue counters before the run (see `note_local`).
        let counters_before = sessions
            .iter()
            .filter_map(Probing::deep)
            .any(|s| self.sources.get(&s.target()) == Some(&s.target()))
            .then(local::listen_counters)
            .and_then(std::result::Result::ok);
        let mut queue: VecDeque<Outgoing> = VecDeque::new();
        // Bursts of 100 packets, or 10 ms worth at a high rate (a sweep paces itself below it).
        let burst = (f64::from(self.cfg.max_pps) / 100.0).max(100.0);
        let mut tokens = burst;
        let mut last_refill = now();
        let mut interrupted = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            let t = now();
            let mut next: Option<Timestamp> = None;
            for i in 0..sessions.len() {
                if sessions[i].plan_ref().is_done() {
                    continue;
                }
                let (out, deadline) = sessions[i].plan().poll(t);
                // The routers' ICMP buckets for us are shared by every plan of the run.
                let mut plans: Vec<&mut dyn Plan> =
                    sessions.iter_mut().map(Probing::plan).collect();
                crate::session::charge_ttl_limited(&mut plans, i, &out, t);
                queue.extend(out);
                if let Some(d) = deadline {
                    next = Some(next.map_or(d, |n: Timestamp| n.min(d)));
                }
            }
            // Rate limit: a token bucket of max_pps, bursts of 100.
            let elapsed = t.since(last_refill).as_secs_f64().max(0.0);
            tokens = (tokens + elapsed * f64::from(self.cfg.max_pps)).min(burst);
            last_refill = t;
            while tokens >= 1.0 {
                let Some(p) = queue.pop_front() else { break };
                self.sender.send(&p).map_err(|e| Error::Io {
                    what: "send a probe",
                    source: e,
                })?;
                tokens -= 1.0;
            }
            if queue.is_empty() && sessions.iter().all(|s| s.plan_ref().is_done()) {
                break;
            }
            let wait_ms = if !queue.is_empty() {
                2
            } else {
                next.map_or(20, |n| (n.since(now()).0 / 1_000_000).clamp(0, 50))
            };
            self.wait(wait_ms as u16);
            if let Err(e) = self.drain(&mut sessions, &mut frames, &job_of) {
                // Keep what was captured: judge it and hand it back with the error.
                let reports = in_job_order(&jobs, &mut sessions);
                return Err(RunError {
                    error: e,
                    partial: Some(Box::new(RunOutcome {
                        reports,
                        frames,
                        dropped: (0, 0),
                        interrupted: true,
                    })),
                });
            }
        }
        // Frames already in the kernel's buffers still count.
        let _ = self.drain(&mut sessions, &mut frames, &job_of);
        let mut dropped = (0u64, 0u64);
        for tap in &mut self.taps {
            if let Ok(st) = tap.cap.stats() {
                dropped.0 += u64::from(st.dropped);
                dropped.1 += u64::from(st.if_dropped);
            }
        }
        if self.cfg.connect && !interrupted {
            for s in sessions.iter_mut().filter_map(Probing::deep_mut) {
                for port in s.ports_answered_syn_ack() {
                    let outcome = full_connect(s.target(), port, std::time::Duration::from_secs(3));
                    s.note_connect(port, outcome);
                }
            }
        }
        if let Some(before) = counters_before {
            let rise = local::listen_counters()
                .map(|now| now.since(&before))
                .unwrap_or_default();
            for s in sessions
                .iter_mut()
                .filter_map(Probing::deep_mut)
                .filter(|s| self.sources.get(&s.target()) == Some(&s.target()))
            {
                for port in s.ports() {
                    if let Ok(ls) = local::listeners(port) {
                        let meaning = crate::host::PortListeners::classify(&ls, port, s.target());
                        s.note_local(port, meaning, rise);
                    }
                }
            }
        }
        let reports = in_job_order(&jobs, &mut sessions);
        Ok(RunOutcome {
            reports,
            frames,
            dropped,
            interrupted,
        })
    }

    fn wait(&mut self, ms: u16) {
        let mut fds: Vec<nix::poll::PollFd<'_>> = self
            .taps
            .iter()
            .map(|t| nix::poll::PollFd::new(t.cap.as_fd(), nix::poll::PollFlags::POLLIN))
            .collect();
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
    }

    fn drain(
        &mut self,
        sessions: &mut [Probing],
        frames: &mut Vec<CapturedFrame>,
        job_of: &dyn Fn(IpAddr, Option<u16>) -> usize,
    ) -> Result<()> {
        for (iface, tap) in self.taps.iter_mut().enumerate() {
            loop {
                let packet = match tap.cap.next_packet() {
                    Ok(p) => p,
                    Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => break,
                    Err(e) => {
                        return Err(Error::LiveCapture {
                            interface: tap.name.clone(),
                            reason: e.to_string(),
                        })
                    }
                };
                let h = packet.header;
                let ts =
                    Timestamp::from_parts(h.ts.tv_sec, (h.ts.tv_usec as u32).saturating_mul(1000));
                let Ok(parsed) = parse_frame(tap.link, packet.data) else {
                    continue;
                };
                self.frame += 1;
                let seen = Observed {
                    frame: self.frame,
                    ts,
                    len: h.len,
                    packet: parsed,
                };
                for s in sessions.iter_mut().map(Probing::plan) {
                    if s.on_frame(&seen) {
                        if self.cfg.keep_frames {
                            frames.push(CapturedFrame {
                                interface: iface as u32,
                                ts,
                                data: packet.data.to_vec(),
                                orig_len: h.len,
                                job: job_of(s.target(), s.port_of(&seen)),
                                note: s.describe(&seen),
                            });
                        }
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// One ordinary TCP connection through the kernel (no privilege needed): accepted, or reset once the handshake
/// completed (a SYN proxy with nothing behind it), or refused, or silent. The connection is closed at once.
fn full_connect(
    target: IpAddr,
    port: u16,
    wait: std::time::Duration,
) -> crate::session::FullConnect {
    use crate::session::FullConnect;
    use std::io::{ErrorKind, Read};
    let mut stream = match std::net::TcpStream::connect_timeout(&(target, port).into(), wait) {
        Ok(s) => s,
        Err(e) => {
            return match e.kind() {
                ErrorKind::ConnectionRefused => FullConnect::Refused,
                // The reset came before connect() returned: the handshake had completed (SO_ERROR is
                // ECONNRESET, where a refused SYN gives ECONNREFUSED).
                ErrorKind::ConnectionReset => FullConnect::ResetAfterHandshake,
                ErrorKind::TimedOut | ErrorKind::WouldBlock => FullConnect::TimedOut,
                _ => FullConnect::Failed,
            };
        }
    };
    // A proxy connects to the service only now: its reset comes within a round trip or two.
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(500)));
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => FullConnect::ResetAfterHandshake,
        _ => FullConnect::Accepted,
    }
}

/// Every plan's reports, in the order of the jobs they answer.
fn in_job_order(jobs: &[Job], sessions: &mut [Probing]) -> Vec<TargetReport> {
    let mut all: HashMap<(IpAddr, u16), TargetReport> = sessions
        .iter_mut()
        .flat_map(|s| s.plan().reports())
        .map(|r| ((r.target, r.port), r))
        .collect();
    jobs.iter()
        .filter_map(|j| all.remove(&(j.target, j.port)))
        .collect()
}

fn open_tap(name: &str, targets: &[IpAddr], sources: &[IpAddr], buffer: i32) -> Result<Tap> {
    let hosts: Vec<String> = targets.iter().map(|t| format!("host {t}")).collect();
    let dsts: Vec<String> = sources.iter().map(|s| format!("dst host {s}")).collect();
    let filter = format!(
        "(({}) and (tcp or icmp or icmp6)) or ((icmp or icmp6) and ({}))",
        hosts.join(" or "),
        dsts.join(" or ")
    );
    let (cap, link) = open_capture(name, &filter, buffer)?;
    Ok(Tap {
        name: name.to_string(),
        cap,
        link,
    })
}

/// A non-blocking libpcap capture on `name` in immediate mode with a kernel buffer of `buffer` bytes, filtered
/// by `filter` (tcpdump syntax); a refusal for want of privilege is [`Error::Privilege`].
pub(crate) fn open_capture(
    name: &str,
    filter: &str,
    buffer: i32,
) -> Result<(pcap::Capture<pcap::Active>, LinkType)> {
    let cap_err = |e: pcap::Error| {
        let reason = e.to_string();
        if reason.contains("ermission") || reason.contains("not permitted") {
            Error::Privilege {
                what: "open a packet capture",
            }
        } else {
            Error::LiveCapture {
                interface: name.to_string(),
                reason,
            }
        }
    };
    let cap = pcap::Capture::from_device(name)
        .map_err(cap_err)?
        .immediate_mode(true)
        .snaplen(1024)
        .buffer_size(buffer)
        .timeout(1)
        .open()
        .map_err(cap_err)?;
    let mut cap = cap.setnonblock().map_err(cap_err)?;
    cap.filter(filter, true).map_err(cap_err)?;
    let link = LinkType(cap.get_datalink().0 as u32);
    Ok((cap, link))
}

/// Write a run's frames as pcapng: a section naming synprobe (and `comment`, e.g. the command line), one
/// interface per capture, and per packet a comment with the probe, the step of the plan, and the verdict it
/// supported. `tshark -r FILE -T fields -e frame.comment` shows them.
pub fn write_pcapng<W: Write>(
    out: W,
    links: &[LinkType],
    outcome: &RunOutcome,
    comment: &str,
) -> std::io::Result<W> {
    let app = format!("synprobe {}", env!("CARGO_PKG_VERSION"));
    let mut w = PcapNgWriter::with_interfaces(out, links, &app, Some(comment))?;
    for f in &outcome.frames {
        let verdict = outcome
            .reports
            .get(f.job)
            .map(|r| {
                format!(
                    " | verdict: {} ({} confidence)",
                    r.judgement.verdict, r.judgement.confidence
                )
            })
            .unwrap_or_default();
        let note = format!("{}{verdict}", f.note);
        w.write_on(f.interface, f.ts, &f.data, f.orig_len, Some(&note))?;
    }
    w.finish()
}
