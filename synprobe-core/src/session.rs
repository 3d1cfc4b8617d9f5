//! A live diagnosis of one address and port: the probing plan as a sans-IO state machine.
//!
//! The [`Session`] decides what to send and when; it is told the time, fed the frames the capture saw (its own
//! SYNs included), and hands out packets to send. It never touches a socket or a clock, so the plan is tested
//! on frames built in memory, and the live driver ([`crate::live`]) only moves bytes.
//!
//! The plan:
//! 1. **Baseline and main SYN at once**: an ICMP echo (the target's distance even when every port is
//!    filtered), a SYN to a baseline port (default 1, almost always closed: the host's own stack answers, and
//!    the SYN carries a non-zero TOS so the answer shows whether the stack echoes it), and the main SYN.
//! 2. **Retransmissions** of the main SYN on an adaptive timeout: four times the first measured round trip,
//!    between 200 ms and 3 s (1 s before anything was measured), doubling each time.
//! 3. **Discriminators**, as the main answer needs them (not with `quick`): for an RST, a TOS-marked SYN to the
//!    port (a Linux stack echoes the TOS, netfilter's REJECT sends 0), a SYN with a bad TCP checksum (an end
//!    host drops it; a middlebox that does not validate answers), and a TTL walk (SYNs with TTL 1..n: the
//!    time-exceeded sources name the hops, and the first TTL that draws the RST shows where it came from);
//!    for silence, a TTL walk to find after which hop the SYNs vanish.
//! 4. The **verdict**: the engine's judgement of the main attempt, in the light of every other attempt of the
//!    session, sharpened by the walk.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::analysis::{AnalyzerConfig, TtlReading};
use crate::build::{echo, IpSpec, TcpSpec};
use crate::engine::{Engine, EngineConfig, Report};
use crate::matcher::MatchConfig;
use crate::model::{HopCount, Observed, ReplyKind};
use crate::record::{other_packet_record, packet_records, PacketRecord};
use crate::time::{Duration, Timestamp};
use crate::verdict::{Confidence, Evidence, Judgement, Rejecter, Verdict};
use crate::wire::{TcpFlags, Transport};

/// What a probe is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "step", content = "value")]
pub enum Purpose {
    /// ICMP echo: the target's distance and round trip.
    Echo,
    /// A SYN to another port of the target, to learn how its own stack answers.
    Baseline(u16),
    /// The SYN to the port in question.
    Main,
    /// The same SYN with a non-zero TOS / traffic class.
    Tos,
    /// A SYN with a deliberately wrong TCP checksum.
    BadChecksum,
    /// A SYN with this TTL / hop limit.
    TtlWalk(u8),
}

impl Purpose {
    /// A short description, used as the packet comment in pcapng files.
    pub fn describe(&self) -> String {
        match self {
            Purpose::Echo => "baseline: ICMP echo (the target's distance)".into(),
            Purpose::Baseline(p) => {
                format!("baseline: SYN to port {p} (how the target's own stack answers)")
            }
            Purpose::Main => "main SYN".into(),
            Purpose::Tos => "discriminator: SYN with a non-zero TOS (does the RST echo it?)".into(),
            Purpose::BadChecksum => {
                "discriminator: SYN with a bad TCP checksum (end hosts drop it)".into()
            }
            Purpose::TtlWalk(t) => format!("discriminator: TTL walk, SYN with TTL {t}"),
        }
    }
}

/// A packet the session wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The whole IP datagram (IPv4 or IPv6 header included, checksums set).
    pub datagram: Vec<u8>,
    /// Destination.
    pub dst: IpAddr,
    /// TTL / hop limit (also in the datagram; IPv6 senders set it as a socket option).
    pub ttl: u8,
    /// TOS / traffic class (likewise).
    pub tos: u8,
    /// Why it is sent.
    pub purpose: Purpose,
}

/// Settings of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Send only the main SYN (and its retransmissions) and judge on what comes back.
    pub quick: bool,
    /// Retransmissions of the main SYN before calling it unanswered (default 2).
    pub retries: u32,
    /// Ports for baseline SYNs (default `[1]`; empty: none).
    pub baseline_ports: Vec<u16>,
    /// Send an ICMP echo as a baseline (default true).
    pub echo: bool,
    /// The non-zero TOS / traffic class of discriminator and baseline SYNs (default 0x10).
    pub tos: u8,
    /// TTL of ordinary probes (default 64).
    pub ttl: u8,
    /// Highest TTL of the TTL walk (default 30).
    pub max_ttl: u8,
    /// Packets this session may send at most (default 64).
    pub budget: u32,
    /// Round-trip timeout bounds.
    pub min_rto: Duration,
    /// Upper bound of the round-trip timeout.
    pub max_rto: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            quick: false,
            retries: 2,
            baseline_ports: vec![1],
            echo: true,
            tos: 0x10,
            ttl: 64,
            max_ttl: 30,
            budget: 64,
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_millis(3000),
        }
    }
}

/// One hop seen by the TTL walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathHop {
    /// The probe TTL that drew this answer.
    pub ttl: u8,
    /// Who answered (time-exceeded source, or the RST / SYN-ACK / ICMP sender), None for silence.
    pub addr: Option<IpAddr>,
    /// What came back: `time-exceeded`, `rst`, `syn-ack`, `unreachable`, `silence`.
    pub answer: &'static str,
}

/// The diagnosis of one address and port: the JSON object `synprobe HOST PORT --json` prints per target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetReport {
    /// Always [`crate::record::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `probe`.
    #[serde(rename = "type")]
    pub record_type: &'static str,
    /// The name the user gave, when it was a host name.
    pub host: Option<String>,
    /// The address probed.
    pub target: IpAddr,
    /// The port probed.
    pub port: u16,
    /// The source address used.
    pub source: IpAddr,
    /// The verdict.
    pub verdict: Verdict,
    /// How sure.
    pub confidence: Confidence,
    /// One sentence for an operator.
    pub headline: String,
    /// Who answered instead of (or as) the service.
    pub rejecter: Option<Rejecter>,
    /// The target's distance (first router = 1), when known.
    pub target_hops: Option<u8>,
    /// Round-trip time of the deciding reply, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Observations, the deciding one first.
    pub evidence: Vec<Evidence>,
    /// What to do next.
    pub next_steps: Vec<String>,
    /// The TTL walk, when one was made.
    pub path: Vec<PathHop>,
    /// Packets sent.
    pub probes_sent: u32,
    /// Milliseconds from the first packet sent to the verdict (the plan's end), excluding process start-up.
    pub time_to_verdict_ms: f64,
    /// Every packet sent and received, Wireshark style.
    pub packets: Vec<PacketRecord>,
}

#[derive(Debug, Clone)]
struct Sent {
    purpose: Purpose,
    sport: u16,
    isn: u32,
    ttl: u8,
    /// Times the packet was handed out (first send and retransmissions).
    sent: Vec<Timestamp>,
    /// When its answer (if any) arrived, and what it was.
    answer: Option<(Timestamp, Answer)>,
    /// When the session stops waiting for it.
    deadline: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    SynAck,
    Rst { ttl: u8 },
    Unreachable { from: IpAddr },
    TimeExceeded { from: IpAddr },
    EchoReply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Probing,
    Discriminating,
    Done,
}

/// The probing plan for one address and port. See the module documentation.
pub struct Session {
    target: IpAddr,
    port: u16,
    source: IpAddr,
    host: Option<String>,
    cfg: SessionConfig,
    rng: u64,
    next_sport: u16,
    echo_id: u16,
    phase: Phase,
    probes: Vec<Sent>,
    by_sport: HashMap<u16, usize>,
    frames: Vec<Observed>,
    srtt: Option<Duration>,
    sent_count: u32,
    budget_hit: bool,
    t0: Option<Timestamp>,
    /// When the plan finished (or the last time it was polled).
    last_poll: Timestamp,
}

impl Session {
    /// A session probing `target:port` from `source`. Source ports are taken from `sport_base` upwards (give
    /// each concurrent session its own block of 64); `seed` makes ISNs and IDs unpredictable.
    pub fn new(
        target: IpAddr,
        port: u16,
        source: IpAddr,
        cfg: SessionConfig,
        sport_base: u16,
        seed: u64,
    ) -> Self {
        Session {
            target,
            port,
            source,
            host: None,
            rng: seed | 1,
            next_sport: sport_base,
            echo_id: (seed >> 16) as u16 | 1,
            cfg,
            phase: Phase::Start,
            probes: Vec::new(),
            by_sport: HashMap::new(),
            frames: Vec::new(),
            srtt: None,
            sent_count: 0,
            budget_hit: false,
            t0: None,
            last_poll: Timestamp::default(),
        }
    }

    /// Remember the host name the user gave (for the report).
    pub fn with_host(mut self, host: Option<String>) -> Self {
        self.host = host;
        self
    }

    /// The address probed.
    pub fn target(&self) -> IpAddr {
        self.target
    }

    /// The port probed.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the plan is finished.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn random(&mut self) -> u32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 16) as u32
    }

    fn rto(&self) -> Duration {
        match self.srtt {
            Some(r) => {
                Duration((r.0.saturating_mul(4)).clamp(self.cfg.min_rto.0, self.cfg.max_rto.0))
            }
            None => Duration::from_millis(1000).min(self.cfg.max_rto),
        }
    }

    /// Advance the plan to `now`: the packets to send now, and when to call again (None when done).
    pub fn poll(&mut self, now: Timestamp) -> (Vec<Outgoing>, Option<Timestamp>) {
        if self.phase != Phase::Done {
            self.last_poll = self.last_poll.max(now);
        }
        let mut out = Vec::new();
        loop {
            match self.phase {
                Phase::Start => {
                    self.t0 = Some(now);
                    if !self.cfg.quick {
                        if self.cfg.echo {
                            self.push_echo(now, &mut out);
                        }
                        for p in self.cfg.baseline_ports.clone() {
                            if p != self.port {
                                self.push_syn(
                                    now,
                                    Purpose::Baseline(p),
                                    p,
                                    self.cfg.ttl,
                                    self.cfg.tos,
                                    false,
                                    &mut out,
                                );
                            }
                        }
                    }
                    self.push_syn(
                        now,
                        Purpose::Main,
                        self.port,
                        self.cfg.ttl,
                        0,
                        false,
                        &mut out,
                    );
                    self.phase = Phase::Probing;
                }
                Phase::Probing => {
                    self.retransmit_main(now, &mut out);
                    if self.quick_done() || self.all_settled(now) {
                        if self.cfg.quick {
                            self.phase = Phase::Done;
                        } else {
                            self.plan_discriminators(now, &mut out);
                            self.phase = Phase::Discriminating;
                        }
                        continue;
                    }
                    break;
                }
                Phase::Discriminating => {
                    if self.all_settled(now) {
                        self.phase = Phase::Done;
                        continue;
                    }
                    break;
                }
                Phase::Done => return (out, None),
            }
        }
        (out, self.next_deadline(now).or(Some(now)))
    }

    fn quick_done(&self) -> bool {
        self.cfg.quick && self.main().is_some_and(|m| m.answer.is_some())
    }

    fn main(&self) -> Option<&Sent> {
        self.probes.iter().find(|p| p.purpose == Purpose::Main)
    }

    fn all_settled(&self, now: Timestamp) -> bool {
        let required_done = self
            .probes
            .iter()
            .filter(|p| !Self::optional(p.purpose))
            .all(|p| p.answer.is_some() || now >= p.deadline);
        // A probe that normally draws no answer (the bad checksum) gets a short grace once everything else has
        // settled, not a full timeout: an answer to it would come within a round trip like the others.
        let grace = self.optional_grace();
        required_done
            && self
                .probes
                .iter()
                .filter(|p| Self::optional(p.purpose))
                .all(|p| {
                    p.answer.is_some()
                        || now >= p.deadline
                        || p.sent.first().is_some_and(|&t| now >= t.plus(grace))
                })
    }

    fn optional(purpose: Purpose) -> bool {
        purpose == Purpose::BadChecksum
    }

    fn optional_grace(&self) -> Duration {
        self.srtt.map_or(self.rto(), |r| {
            Duration(r.0 * 2 + 2_000_000).min(self.rto())
        })
    }

    /// The next time something is due: the earliest deadline still ahead of `now` of an unanswered probe.
    fn next_deadline(&self, now: Timestamp) -> Option<Timestamp> {
        let grace = self.optional_grace();
        self.probes
            .iter()
            .filter(|p| p.answer.is_none())
            .map(|p| match p.sent.first() {
                Some(&t) if Self::optional(p.purpose) => p.deadline.min(t.plus(grace)),
                _ => p.deadline,
            })
            .filter(|&d| d > now)
            .min()
    }

    fn spend(&mut self) -> bool {
        if self.sent_count >= self.cfg.budget {
            self.budget_hit = true;
            return false;
        }
        self.sent_count += 1;
        true
    }

    fn ip(&self, ttl: u8, tos: u8) -> IpSpec {
        IpSpec::new(self.source, self.target).ttl(ttl).tos(tos)
    }

    #[allow(clippy::too_many_arguments)]
    fn push_syn(
        &mut self,
        now: Timestamp,
        purpose: Purpose,
        dport: u16,
        ttl: u8,
        tos: u8,
        bad_checksum: bool,
        out: &mut Vec<Outgoing>,
    ) {
        if !self.spend() {
            return;
        }
        let sport = self.next_sport;
        self.next_sport = self.next_sport.wrapping_add(1).max(1024);
        let isn = self.random();
        let ident = self.random() as u16;
        let syn = TcpSpec::syn(sport, dport, isn).linux_options();
        let Ok(mut datagram) = syn.emit(&self.ip(ttl, tos).ident(ident)) else {
            return;
        };
        if bad_checksum {
            let tcp_at = if self.target.is_ipv6() { 40 } else { 20 };
            if let Some(b) = datagram.get_mut(tcp_at + 16) {
                *b ^= 0x5a;
            }
        }
        let deadline = now.plus(self.rto());
        self.by_sport.insert(sport, self.probes.len());
        self.probes.push(Sent {
            purpose,
            sport,
            isn,
            ttl,
            sent: vec![now],
            answer: None,
            deadline,
        });
        out.push(Outgoing {
            datagram,
            dst: self.target,
            ttl,
            tos,
            purpose,
        });
    }

    fn push_echo(&mut self, now: Timestamp, out: &mut Vec<Outgoing>) {
        if !self.spend() {
            return;
        }
        let Ok(datagram) = echo(&self.ip(self.cfg.ttl, 0), false, self.echo_id, 1) else {
            return;
        };
        self.probes.push(Sent {
            purpose: Purpose::Echo,
            sport: 0,
            isn: 0,
            ttl: self.cfg.ttl,
            sent: vec![now],
            answer: None,
            deadline: now.plus(self.rto()),
        });
        out.push(Outgoing {
            datagram,
            dst: self.target,
            ttl: self.cfg.ttl,
            tos: 0,
            purpose: Purpose::Echo,
        });
    }

    fn retransmit_main(&mut self, now: Timestamp, out: &mut Vec<Outgoing>) {
        let rto = self.rto();
        let retries = self.cfg.retries;
        let Some(i) = self.probes.iter().position(|p| p.purpose == Purpose::Main) else {
            return;
        };
        let due = {
            let m = &self.probes[i];
            m.answer.is_none() && now >= m.deadline && (m.sent.len() as u32) <= retries
        };
        if !due || !self.spend() {
            return;
        }
        let measured = self.srtt.is_some();
        let m = &mut self.probes[i];
        // Back off exponentially from a measured timeout; with nothing measured, retry every second (as nmap
        // does), so an unanswered SYN is not waited on longer than it needs.
        let backoff = if measured {
            1i64 << m.sent.len().min(6)
        } else {
            1
        };
        m.sent.push(now);
        m.deadline = now.plus(Duration(
            rto.0.saturating_mul(backoff).min(self.cfg.max_rto.0 * 2),
        ));
        let (sport, isn, ttl) = (m.sport, m.isn, m.ttl);
        let syn = TcpSpec::syn(sport, self.port, isn).linux_options();
        if let Ok(datagram) = syn.emit(&self.ip(ttl, 0)) {
            out.push(Outgoing {
                datagram,
                dst: self.target,
                ttl,
                tos: 0,
                purpose: Purpose::Main,
            });
        }
    }

    fn plan_discriminators(&mut self, now: Timestamp, out: &mut Vec<Outgoing>) {
        let main_answer = self.main().and_then(|m| m.answer.map(|a| a.1));
        match main_answer {
            Some(Answer::Rst { ttl }) => {
                if self.cfg.tos != 0 {
                    self.push_syn(
                        now,
                        Purpose::Tos,
                        self.port,
                        self.cfg.ttl,
                        self.cfg.tos,
                        false,
                        out,
                    );
                }
                self.push_syn(
                    now,
                    Purpose::BadChecksum,
                    self.port,
                    self.cfg.ttl,
                    0,
                    true,
                    out,
                );
                let hops = TtlReading::of(ttl).hops.0;
                let limit = hops.saturating_add(1).min(self.cfg.max_ttl);
                if hops > 1 {
                    for t in 1..=limit {
                        self.push_syn(now, Purpose::TtlWalk(t), self.port, t, 0, false, out);
                    }
                }
            }
            None => {
                // Up to the target's distance when its echo reply showed it, else 16 hops.
                let limit = self
                    .echo_hops()
                    .map_or(self.cfg.max_ttl.min(16), |h| h.min(self.cfg.max_ttl));
                for t in 1..=limit {
                    self.push_syn(now, Purpose::TtlWalk(t), self.port, t, 0, false, out);
                }
            }
            _ => {}
        }
    }

    fn echo_hops(&self) -> Option<u8> {
        self.frames.iter().find_map(|f| match f.packet.transport {
            Transport::Echo {
                reply: true, id, ..
            } if id == self.echo_id && f.packet.ip.src == self.target => {
                Some(TtlReading::of(f.packet.ip.ttl).hops.0)
            }
            _ => None,
        })
    }

    /// A comment for a frame this session took (pcapng annotations): which probe, which step of the plan.
    pub fn describe(&self, seen: &Observed) -> String {
        let p = &seen.packet;
        let port_of = |sport: u16| self.by_sport.get(&sport).map(|&i| self.probes[i].purpose);
        let (dir, purpose) = match &p.transport {
            // By ports, not addresses: on loopback the source and the target are the same address.
            Transport::Tcp(t)
                if p.ip.src == self.source && self.by_sport.contains_key(&t.src_port) =>
            {
                ("sent", port_of(t.src_port))
            }
            Transport::Tcp(t) => ("reply to", port_of(t.dst_port)),
            Transport::IcmpError(e) => (
                "ICMP error about",
                e.quote
                    .and_then(|q| q.tcp)
                    .and_then(|t| port_of(t.src_port)),
            ),
            Transport::Echo { reply: false, .. } => ("sent", Some(Purpose::Echo)),
            Transport::Echo { .. } => ("reply to", Some(Purpose::Echo)),
            _ => ("", None),
        };
        match purpose {
            Some(pp) => format!(
                "synprobe {}:{}: {dir} {}",
                self.target,
                self.port,
                pp.describe()
            ),
            None => format!("synprobe {}:{}", self.target, self.port),
        }
    }

    /// Whether a captured frame concerns this session (it then takes it).
    pub fn on_frame(&mut self, seen: &Observed) -> bool {
        let p = &seen.packet;
        let relevant = match &p.transport {
            Transport::Tcp(t) => {
                (p.ip.src == self.source
                    && p.ip.dst == self.target
                    && self.by_sport.contains_key(&t.src_port))
                    || (p.ip.src == self.target
                        && p.ip.dst == self.source
                        && self.by_sport.contains_key(&t.dst_port))
            }
            Transport::IcmpError(e) => e.quote.is_some_and(|q| {
                q.src == self.source
                    && q.dst == self.target
                    && q.tcp
                        .is_some_and(|t| self.by_sport.contains_key(&t.src_port))
            }),
            Transport::Echo { id, .. } => {
                *id == self.echo_id && (p.ip.src == self.target || p.ip.dst == self.target)
            }
            _ => false,
        };
        if !relevant {
            return false;
        }
        self.learn(seen);
        self.frames.push(*seen);
        true
    }

    fn learn(&mut self, seen: &Observed) {
        let p = &seen.packet;
        let (idx, answer) = match &p.transport {
            Transport::Tcp(t)
                if p.ip.src == self.target && self.by_sport.contains_key(&t.dst_port) =>
            {
                let Some(&i) = self.by_sport.get(&t.dst_port) else {
                    return;
                };
                if !t.flags.has(TcpFlags::ACK) || t.ack != self.probes[i].isn.wrapping_add(1) {
                    return;
                }
                let a = if t.flags.is_syn_ack() {
                    Answer::SynAck
                } else if t.flags.is_rst() {
                    Answer::Rst { ttl: p.ip.ttl }
                } else {
                    return;
                };
                (i, a)
            }
            Transport::Tcp(t) if p.ip.src == self.source => {
                // Our own SYN as the capture saw it: the truest send time for round trips.
                if let Some(&i) = self.by_sport.get(&t.src_port) {
                    if t.flags.is_syn_only() && t.seq == self.probes[i].isn {
                        if let Some(last) = self.probes[i].sent.last_mut() {
                            if seen.ts.since(*last).0.abs() < 1_000_000_000 {
                                *last = seen.ts;
                            }
                        }
                    }
                }
                return;
            }
            Transport::IcmpError(e) => {
                let Some(qt) = e.quote.and_then(|q| q.tcp) else {
                    return;
                };
                let Some(&i) = self.by_sport.get(&qt.src_port) else {
                    return;
                };
                if qt.seq != self.probes[i].isn {
                    return;
                }
                let a = match e.kind {
                    crate::wire::IcmpErrorKind::TimeExceeded(_) => {
                        Answer::TimeExceeded { from: p.ip.src }
                    }
                    _ => Answer::Unreachable { from: p.ip.src },
                };
                (i, a)
            }
            Transport::Echo { reply: true, .. } => {
                let Some(i) = self.probes.iter().position(|x| x.purpose == Purpose::Echo) else {
                    return;
                };
                (i, Answer::EchoReply)
            }
            _ => return,
        };
        let probe = &mut self.probes[idx];
        if probe.answer.is_none() {
            probe.answer = Some((seen.ts, answer));
            if let Some(&sent) = probe.sent.last() {
                let rtt = seen.ts.since(sent);
                if rtt.0 > 0 && self.srtt.is_none() {
                    self.srtt = Some(rtt);
                    // The first measurement: waits set before it (1 s) shrink to what the path needs.
                    let rto = self.rto();
                    for p in self.probes.iter_mut().filter(|p| p.answer.is_none()) {
                        if let Some(&last) = p.sent.last() {
                            let backoff = 1i64 << (p.sent.len() - 1).min(6);
                            p.deadline = p
                                .deadline
                                .min(last.plus(Duration(rto.0.saturating_mul(backoff))));
                        }
                    }
                }
            }
        }
    }

    /// The diagnosis. Call when [`Session::is_done`] (or to give up early: what is known is judged).
    pub fn report(&mut self) -> TargetReport {
        // Judge the frames with the wait the plan really gave the main SYN after its last transmission, so the
        // evidence tells how long it was unanswered.
        let end = self.last_poll;
        let main_last = self
            .main()
            .and_then(|m| m.sent.last().copied())
            .unwrap_or(end);
        let waited = end.since(main_last).max(Duration(1_000_000));
        let mut engine = Engine::new(EngineConfig {
            matcher: MatchConfig {
                timeout: waited,
                follow_retransmissions: false,
                ..MatchConfig::default()
            },
            analyzer: AnalyzerConfig::default(),
        });
        for f in &self.frames {
            engine.push_observed(*f);
        }
        engine.advance(end.plus(Duration(1)));
        engine.finish();
        let mut reports: HashMap<(u16, u32), Report> = HashMap::new();
        while let Some(r) = engine.pop_report() {
            reports.insert(
                (r.attempt.probe.key.client_port.0, r.attempt.probe.isn.0),
                r,
            );
        }
        let t0 = self.t0.unwrap_or_default();
        let mut packets: Vec<PacketRecord> = Vec::new();
        for r in reports.values() {
            packets.extend(packet_records(r, t0));
        }
        for f in &self.frames {
            if !packets.iter().any(|p| p.frame == f.frame) {
                packets.push(other_packet_record(f, t0));
            }
        }
        packets.sort_by_key(|p| p.frame);
        packets.dedup_by_key(|p| p.frame);
        let report_of = |purpose: Purpose| {
            self.probes
                .iter()
                .find(|p| p.purpose == purpose)
                .and_then(|p| reports.get(&(p.sport, p.isn)))
        };
        let main = report_of(Purpose::Main);
        let mut j = match main {
            Some(r) => r.judgement.clone(),
            None => self.unseen_judgement(),
        };
        // A TOS-marked SYN that showed a REJECT rule where the main SYN could not tell.
        if let Some(tos) = report_of(Purpose::Tos) {
            let tj = &tos.judgement;
            if j.verdict == Verdict::Closed && tj.verdict == Verdict::FirewallRst {
                j = tj.clone();
            } else if j.verdict == Verdict::Closed
                && tj.evidence.iter().any(|e| e.code == "rst-tos-echoed")
                && j.confidence < Confidence::High
            {
                j.confidence = if j.target_hops.is_some() {
                    Confidence::High
                } else {
                    Confidence::Medium
                };
                j.evidence
                    .retain(|e| e.code != "host-rule-possible" && e.code != "no-baseline");
                j.evidence.push(Evidence::new(
                    "tos-probe-echoed",
                    format!(
                        "a SYN with TOS 0x{:02x} drew an RST that echoed it",
                        self.cfg.tos
                    ),
                    "the host's own stack answered: a netfilter REJECT rule sends TOS 0",
                ));
            }
        }
        if let Some(bad) = report_of(Purpose::BadChecksum) {
            if bad
                .attempt
                .decisive_reply()
                .is_some_and(|r| r.kind == ReplyKind::Rst)
            {
                j.evidence.push(Evidence::new(
                    "bad-checksum-answered",
                    "a SYN with a wrong TCP checksum was answered with an RST",
                    "an end host's stack drops such a SYN: a middlebox that does not validate checksums answered",
                ));
                if j.verdict == Verdict::Closed {
                    j.verdict = Verdict::FirewallRst;
                    j.confidence = Confidence::Medium;
                    j.headline = format!(
                        "{} port {}: RST forged by a middlebox (it answered a SYN with a bad checksum)",
                        self.target, self.port
                    );
                    if let Some(r) = j.rejecter.as_mut() {
                        r.is_target = false;
                    }
                }
            }
        }
        let path = self.walk_path();
        self.apply_walk(&mut j, &path);
        if self.budget_hit {
            j.evidence.push(Evidence::new(
                "budget",
                format!("the packet budget of {} was spent", self.cfg.budget),
                "some discriminators were not sent (raise it with --budget)",
            ));
        }
        TargetReport {
            schema_version: crate::record::SCHEMA_VERSION,
            record_type: "probe",
            host: self.host.clone(),
            target: self.target,
            port: self.port,
            source: self.source,
            verdict: j.verdict,
            confidence: j.confidence,
            headline: j.headline,
            rejecter: j.rejecter,
            target_hops: j.target_hops.map(|h| h.0),
            rtt_ms: j.rtt_ms,
            evidence: j.evidence,
            next_steps: j
                .next_steps
                .into_iter()
                .map(std::borrow::Cow::into_owned)
                .collect(),
            path,
            probes_sent: self.sent_count,
            time_to_verdict_ms: self.last_poll.since(t0).as_millis_f64().max(0.0),
            packets,
        }
    }

    fn unseen_judgement(&self) -> Judgement {
        Judgement {
            verdict: Verdict::Filtered,
            confidence: Confidence::Low,
            headline: format!(
                "{} port {}: no frame of the probe was captured",
                self.target, self.port
            ),
            rejecter: None,
            target_hops: None,
            rtt_ms: None,
            evidence: vec![Evidence::new(
                "not-captured",
                "the capture saw neither our SYN nor any reply",
                "the capture may be on the wrong interface (use --interface)",
            )],
            next_steps: vec![
                "Run again with --interface set to the interface the route uses".into(),
            ],
        }
    }

    fn walk_path(&self) -> Vec<PathHop> {
        let mut path: Vec<PathHop> = self
            .probes
            .iter()
            .filter_map(|p| match p.purpose {
                Purpose::TtlWalk(t) => Some(PathHop {
                    ttl: t,
                    addr: match p.answer {
                        Some((_, Answer::TimeExceeded { from } | Answer::Unreachable { from })) => {
                            Some(from)
                        }
                        Some((_, Answer::Rst { .. } | Answer::SynAck)) => Some(self.target),
                        _ => None,
                    },
                    answer: match p.answer {
                        Some((_, Answer::TimeExceeded { .. })) => "time-exceeded",
                        Some((_, Answer::Unreachable { .. })) => "unreachable",
                        Some((_, Answer::Rst { .. })) => "rst",
                        Some((_, Answer::SynAck)) => "syn-ack",
                        _ => "silence",
                    },
                }),
                _ => None,
            })
            .collect();
        path.sort_by_key(|h| h.ttl);
        path
    }

    fn apply_walk(&self, j: &mut Judgement, path: &[PathHop]) {
        if path.is_empty() {
            return;
        }
        let hop_list: Vec<String> = path
            .iter()
            .map(|h| match h.addr {
                Some(a) => format!("{}:{} {}", h.ttl, h.answer, a),
                None => format!("{}:silence", h.ttl),
            })
            .collect();
        let last_router = path
            .iter()
            .filter(|h| h.answer == "time-exceeded")
            .max_by_key(|h| h.ttl);
        let first_rst = path.iter().find(|h| h.answer == "rst");
        match j.verdict {
            Verdict::Closed | Verdict::FirewallRst => {
                let Some(first) = first_rst else { return };
                let rst_hops = self
                    .probes
                    .iter()
                    .find(|p| p.purpose == Purpose::TtlWalk(first.ttl))
                    .and_then(|p| match p.answer {
                        Some((_, Answer::Rst { ttl })) => Some(TtlReading::of(ttl).hops.0),
                        _ => None,
                    });
                let router_before = path
                    .iter()
                    .find(|h| h.ttl + 1 == first.ttl && h.answer == "time-exceeded");
                match (rst_hops, router_before) {
                    // The RST left a device one hop before the first TTL that drew it, and that TTL's
                    // predecessor expired at a router: the router forwards no SYN on, its REJECT rule answers.
                    (Some(h), Some(router)) if h + 1 == first.ttl && h == router.ttl => {
                        let addr = router.addr.unwrap_or(self.target);
                        j.evidence.insert(
                            0,
                            Evidence::new(
                                "ttl-walk-rst-at-router",
                                format!(
                                    "TTL walk: the SYN with TTL {h} expired at {addr} (hop {h}); from TTL {} on, an RST came back sent {h} hop(s) away",
                                    first.ttl
                                ),
                                format!("router {addr} at hop {h} answers with a forged RST instead of forwarding the SYN"),
                            ),
                        );
                        j.verdict = Verdict::FirewallRst;
                        j.confidence = Confidence::High;
                        j.rejecter = Some(Rejecter {
                            addr,
                            hops: Some(HopCount(h)),
                            is_target: false,
                        });
                        j.headline = format!(
                            "{} port {}: RST forged by router {addr} at hop {h} (it uses the target's address), not by the host",
                            self.target, self.port
                        );
                        j.next_steps.insert(
                            0,
                            format!(
                                "On {addr}: find the rule answering port {}: `iptables -S FORWARD | grep -i reject`, `nft list ruleset | grep -i reject`",
                                self.port
                            )
                            .into(),
                        );
                    }
                    _ => {
                        j.evidence.push(Evidence::new(
                            "ttl-walk",
                            format!("TTL walk: {}", hop_list.join(", ")),
                            format!("the RST first came back for TTL {}", first.ttl),
                        ));
                    }
                }
            }
            Verdict::Filtered => {
                let target_hops = self.echo_hops();
                let observed = format!("TTL walk: {}", hop_list.join(", "));
                match last_router {
                    Some(r) => {
                        let addr = r.addr.map_or("?".to_string(), |a| a.to_string());
                        let implies = match target_hops {
                            Some(h) if r.ttl + 1 < h => format!(
                                "the SYNs vanish after hop {} ({addr}), before the target at hop {h}: a DROP rule at hop {} or the next device",
                                r.ttl,
                                r.ttl
                            ),
                            Some(h) => format!(
                                "every router up to hop {} ({addr}) forwarded the SYN; the target at hop {h} (or a rule on it) drops it",
                                r.ttl
                            ),
                            None => format!("the SYNs vanish after hop {} ({addr})", r.ttl),
                        };
                        j.evidence.insert(0, Evidence::new("ttl-walk-silence", observed, implies));
                        j.headline = format!(
                            "{} port {}: silently dropped after hop {} ({addr})",
                            self.target, self.port, r.ttl
                        );
                        if j.confidence < Confidence::High && target_hops.is_some() {
                            j.confidence = Confidence::High;
                        }
                    }
                    None => j.evidence.push(Evidence::new(
                        "ttl-walk-silence",
                        observed,
                        "no router answered either: the first hop drops the SYNs, or routers do not send time-exceeded",
                    )),
                }
                if let Some(h) = target_hops {
                    j.target_hops = Some(HopCount(h));
                    j.evidence.push(Evidence::new(
                        "echo-answered",
                        format!("the target answered ICMP echo from {h} hop(s) away"),
                        "the host is up: the port's SYNs are filtered",
                    ));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{echo as build_echo, icmp_error, IpSpec, QuoteLen, TcpSpec};
    use crate::live::simulate;
    use crate::wire::parse_frame;
    use crate::LinkType;

    const CLIENT: &str = "198.18.0.2";
    const TARGET: &str = "198.18.3.2";

    fn a(s: &str) -> IpAddr {
        s.parse().expect("address")
    }
    fn router(hop: u8) -> IpAddr {
        a(&format!("198.18.{hop}.1"))
    }

    /// What sits in front of or on the target, for port 81 (other ports: the host's stack, closed; 80 open).
    #[derive(Clone, Copy, PartialEq)]
    enum Rule {
        None,
        RejectRstAtRouter(u8),
        RejectRstOnHost,
        DropAtRouter(u8),
        IcmpAdminAtRouter(u8),
    }

    /// Linux as the lab measured it: routers decrement TTL before their FORWARD rules; every reply starts at
    /// TTL 64; the stack's RST echoes the DSCP, REJECT sends 0; end hosts and REJECT drop bad checksums.
    fn network(hops: u8, rule: Rule) -> impl FnMut(&Outgoing) -> Vec<(Duration, Vec<u8>)> {
        move |o: &Outgoing| {
            let ms = |x: i64| Duration::from_millis(x);
            let p = parse_frame(LinkType::RAW, &o.datagram).expect("parses");
            let back = |from: IpAddr, from_hop: u8| IpSpec::new(from, a(CLIENT)).ttl(65 - from_hop);
            // A router's FORWARD rule sees what survived its TTL check: SYNs with TTL > its hop.
            let dport = p.tcp().map(|t| t.dst_port);
            let intercepted_at = match rule {
                Rule::RejectRstAtRouter(h) | Rule::DropAtRouter(h) | Rule::IcmpAdminAtRouter(h)
                    if dport == Some(81) =>
                {
                    h
                }
                _ => hops,
            };
            // Time exceeded at the router where the TTL runs out, before any rule further on.
            if o.ttl <= intercepted_at && o.ttl < hops {
                let mut quoted = o.datagram.clone();
                quoted[8] = 1;
                let e = icmp_error(&back(router(o.ttl), o.ttl), 11, 0, &quoted, QuoteLen::Full)
                    .expect("te");
                return vec![(ms(i64::from(o.ttl)), e)];
            }
            if let Transport::Echo {
                reply: false,
                id,
                seq,
            } = p.transport
            {
                return vec![(
                    ms(8),
                    build_echo(&back(a(TARGET), hops), true, id, seq).expect("echo"),
                )];
            }
            let Some(t) = p.tcp() else { return vec![] };
            let spec = TcpSpec::syn(t.src_port, t.dst_port, t.seq);
            let valid = crate::build::TcpSpec::syn(t.src_port, t.dst_port, t.seq)
                .linux_options()
                .emit(
                    &IpSpec::new(a(CLIENT), a(TARGET))
                        .ttl(o.ttl)
                        .tos(o.tos)
                        .ident(p.ip.ident),
                )
                .expect("rebuild")
                == o.datagram;
            if t.dst_port == 81 {
                match rule {
                    Rule::RejectRstAtRouter(h) if o.ttl > h && valid => {
                        return vec![(
                            ms(2),
                            TcpSpec::rst_to(&spec)
                                .emit(&back(a(TARGET), h))
                                .expect("rst"),
                        )]
                    }
                    Rule::DropAtRouter(h) if o.ttl > h => return vec![],
                    Rule::IcmpAdminAtRouter(h) if o.ttl > h => {
                        let mut quoted = o.datagram.clone();
                        quoted[8] = o.ttl - h;
                        let e = icmp_error(&back(router(h), h), 3, 13, &quoted, QuoteLen::Full)
                            .expect("icmp");
                        return vec![(ms(2), e)];
                    }
                    Rule::RejectRstOnHost if valid => {
                        return vec![(
                            ms(8),
                            TcpSpec::rst_to(&spec)
                                .emit(&back(a(TARGET), hops))
                                .expect("rst"),
                        )]
                    }
                    Rule::RejectRstOnHost => return vec![],
                    _ => {}
                }
            }
            if !valid {
                return vec![];
            }
            if t.dst_port == 80 {
                let sa = TcpSpec::syn_ack_to(&spec, 42)
                    .emit(&back(a(TARGET), hops))
                    .expect("sa");
                return vec![(ms(8), sa)];
            }
            let echoed = o.tos & 0xfc;
            vec![(
                ms(8),
                TcpSpec::rst_to(&spec)
                    .emit(&back(a(TARGET), hops).tos(echoed))
                    .expect("rst"),
            )]
        }
    }

    fn run(port: u16, hops: u8, rule: Rule, cfg: SessionConfig) -> TargetReport {
        let s = Session::new(a(TARGET), port, a(CLIENT), cfg, 40000, 7);
        simulate(s, network(hops, rule))
    }

    #[test]
    fn open_port() {
        let r = run(80, 4, Rule::None, SessionConfig::default());
        assert_eq!((r.verdict, r.confidence), (Verdict::Open, Confidence::High));
        assert_eq!(r.target_hops, Some(4));
        assert!(r.path.is_empty(), "no walk for an open port");
        assert!(r.packets.iter().any(|p| p.summary.contains("[SYN, ACK]")));
    }

    #[test]
    fn closed_port_is_the_hosts_stack_with_high_confidence() {
        let r = run(81, 4, Rule::None, SessionConfig::default());
        assert_eq!(
            (r.verdict, r.confidence),
            (Verdict::Closed, Confidence::High),
            "{:#?}",
            r.evidence
        );
        let rej = r.rejecter.expect("host");
        assert!(rej.is_target);
        assert_eq!(rej.hops, Some(HopCount(4)));
        assert_eq!(r.target_hops, Some(4));
    }

    #[test]
    fn a_routers_forged_rst_is_named_by_the_ttl_walk() {
        let r = run(81, 4, Rule::RejectRstAtRouter(2), SessionConfig::default());
        assert_eq!(
            (r.verdict, r.confidence),
            (Verdict::FirewallRst, Confidence::High),
            "{:#?}",
            r.evidence
        );
        let rej = r.rejecter.expect("router");
        assert_eq!(
            (rej.addr, rej.hops, rej.is_target),
            (router(2), Some(HopCount(2)), false)
        );
        assert_eq!(r.target_hops, Some(4));
        assert_eq!(r.evidence[0].code, "ttl-walk-rst-at-router");
        assert_eq!(
            r.path.iter().find(|h| h.ttl == 2).and_then(|h| h.addr),
            Some(router(2))
        );
        assert_eq!(
            r.path.iter().find(|h| h.ttl == 3).map(|h| h.answer),
            Some("rst")
        );
    }

    #[test]
    fn a_reject_rule_on_the_host_is_told_from_its_stack_by_the_tos_echo() {
        let r = run(81, 4, Rule::RejectRstOnHost, SessionConfig::default());
        assert_eq!(r.verdict, Verdict::FirewallRst, "{:#?}", r.evidence);
        let rej = r.rejecter.expect("host");
        assert!(rej.is_target);
        assert_eq!(rej.hops, Some(HopCount(4)));
        assert_eq!(r.target_hops, Some(4));
    }

    #[test]
    fn a_drop_at_a_router_is_located_by_the_walk() {
        let r = run(81, 4, Rule::DropAtRouter(2), SessionConfig::default());
        assert_eq!(
            (r.verdict, r.confidence),
            (Verdict::Filtered, Confidence::High),
            "{:#?}",
            r.evidence
        );
        assert!(r.headline.contains("after hop 2"), "{}", r.headline);
        assert_eq!(r.target_hops, Some(4));
        assert!(r.rejecter.is_none());
        // Three SYNs to the port: the main one and two retransmissions.
        let mains = r
            .packets
            .iter()
            .filter(|p| p.summary.contains("→ 81 [SYN]") && p.ttl == 64)
            .count();
        assert!(mains >= 3, "{mains}");
    }

    #[test]
    fn icmp_admin_prohibited_names_the_router() {
        let r = run(81, 4, Rule::IcmpAdminAtRouter(1), SessionConfig::default());
        assert_eq!(r.verdict, Verdict::IcmpRejected);
        let rej = r.rejecter.expect("router");
        assert_eq!((rej.addr, rej.hops), (router(1), Some(HopCount(1))));
    }

    #[test]
    fn quick_sends_only_the_main_syn() {
        let cfg = SessionConfig {
            quick: true,
            ..SessionConfig::default()
        };
        let r = run(81, 4, Rule::RejectRstAtRouter(2), cfg);
        assert_eq!(r.probes_sent, 1);
        assert_eq!(
            r.verdict,
            Verdict::Closed,
            "one RST with nothing to compare: closed, low"
        );
        assert_eq!(r.confidence, Confidence::Low);
    }

    #[test]
    fn the_budget_caps_what_is_sent() {
        let cfg = SessionConfig {
            budget: 4,
            ..SessionConfig::default()
        };
        let r = run(81, 10, Rule::RejectRstAtRouter(6), cfg);
        assert_eq!(r.probes_sent, 4);
        assert!(r.evidence.iter().any(|e| e.code == "budget"));
    }
}
