//! A live diagnosis of one address and its ports: the probing plan as a sans-IO state machine.
//!
//! The [`Session`] decides what to send and when; it is told the time, fed the frames the capture saw (its own
//! SYNs included), and hands out packets to send. It never touches a socket or a clock, so the plan is tested
//! on frames built in memory, and the live driver ([`crate::live`]) only moves bytes.
//!
//! The plan is built to live with routers as they ship: Linux (and most routers) send ICMP errors to one
//! destination from a small token bucket, a burst of a few and then about one a second, shared by time-exceeded
//! and route errors (a route error is charged twice). So:
//! 1. **The main SYN of every port goes first**, then the facts about the address, learned once and shared by
//!    all its ports: an ICMP echo (the target's distance even when every port is filtered) and a TOS-marked SYN
//!    to a baseline port (default 1, almost always closed: the host's own stack answers, and the TOS shows
//!    whether that stack echoes it).
//! 2. **Retransmissions** of each main SYN on an adaptive timeout: four times the first measured round trip,
//!    between 200 ms and 3 s (1 s before anything was measured), doubling each time. A port is called silent
//!    only [`SessionConfig::first_answer_wait`] after its first SYN (a router gives up on a neighbour that does
//!    not answer ARP after 3 s, and only then sends "host unreachable"), unless its walk shows the SYNs vanish
//!    before the last router. An ICMP routing error about
//!    the address (from any probe of it) settles every port that has no answer of its own: they are not
//!    retransmitted or walked, and the judgement carries the error over to them.
//! 3. **Discriminators**, as each port's answer needs them (not with `quick`): for an RST, a TOS-marked SYN to
//!    the port (a Linux stack echoes the TOS, netfilter's REJECT sends 0), a SYN with a bad TCP checksum (an
//!    end host drops it; a middlebox that does not validate answers), and two TTL-limited SYNs that **locate**
//!    the RST: with the TTL of the RST's own distance and one less. A router whose REJECT rule forges RSTs
//!    answers the first with time-exceeded from its own address (at hop 1 too); a backend behind a port forward
//!    shows itself by a time-exceeded from the target's own address one hop before it. For silence, a TTL walk
//!    to the last router before the target shows after which hop the SYNs vanish.
//! 4. **Pacing**: every TTL-limited SYN draws on the ICMP bucket of the router it expires at. The session keeps
//!    a model of each hop's bucket ([`SessionConfig::icmp_burst`], [`SessionConfig::icmp_interval`]) and holds
//!    probes back until their router has a token. A hop that stays silent where the SYNs demonstrably passed it
//!    is asked again a second later, together with a control SYN to the baseline port, rather than read as a
//!    drop; what stays missing is said in the evidence and lowers the confidence.
//! 5. The **verdict** of each port: the engine's judgement of its main attempt, in the light of every other
//!    attempt to the address, sharpened by the discriminators.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::analysis::{AnalyzerConfig, TtlReading};
use crate::build::{echo, IpSpec, TcpSpec};
use crate::engine::{Engine, EngineConfig, Report};
use crate::error::{check, ConfigError};
pub use crate::findings::FullConnect;
use crate::findings::{Advice, Cause, DropPoint, Finding, WalkAnswer, WalkStep};
use crate::host::{ListenCounters, PortListeners};
use crate::matcher::{is_route_wide, MatchConfig};
use crate::model::{HopCount, Observed, ReplyKind};
use crate::time::{Duration, Timestamp};
use crate::trace::{other_packet_record, packet_records, PacketRecord};
use crate::verdict::{Confidence, Judgement, Rejecter, RejecterKind, Verdict};
use crate::wire::{IcmpErrorKind, TcpFlags, Transport, Unreachable};

mod simulate;
pub use simulate::simulate;
#[cfg(test)]
pub(crate) mod testnet;

/// What a probe is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "step", content = "value")]
#[non_exhaustive]
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
    /// A SYN to the port with this TTL / hop limit (locating an RST, or where SYNs vanish).
    TtlWalk(u8),
    /// A SYN to the baseline port with this TTL: does that hop send time-exceeded at all (a control for a
    /// silent hop of a walk)?
    PathWalk(u8),
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
            Purpose::PathWalk(t) => {
                format!("control: SYN to the baseline port with TTL {t} (does hop {t} answer?)")
            }
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
    /// Packets each port may cost at most, and the address's shared probes likewise (default 64).
    pub budget: u32,
    /// Round-trip timeout bounds.
    pub min_rto: Duration,
    /// Upper bound of the round-trip timeout.
    pub max_rto: Duration,
    /// ICMP errors the plan expects a router to send to us in one burst (default 4: Linux allows a burst of
    /// about 6 and charges a route error twice, so 4 leaves room for the errors the main SYNs draw).
    pub icmp_burst: u32,
    /// How long a router takes to earn one more ICMP error for us (default 1 s, Linux's
    /// `net.ipv4.icmp_ratelimit`; IPv6's is at most as long).
    pub icmp_interval: Duration,
    /// How long an unanswered main SYN is waited for, from its first transmission, before the port is called
    /// silent (default 3.5 s: a router, or a target forwarding the port, gives up on a neighbour that does not
    /// answer ARP or neighbour solicitation after 3 s, and only then sends "host unreachable").
    pub first_answer_wait: Duration,
    /// Ask a silent hop of a TTL walk again, about a second later, before believing its silence (default
    /// true: its ICMP bucket may have been empty). A sweep's representatives, whose routers' buckets the plan
    /// has charged with everything the sweep drew, do without.
    pub confirm_silent_hops: bool,
    /// Spend fewer of the routers' ICMP tokens (default false; a sweep's representatives, which share them,
    /// set it): an RST from the distance of the address's echo replies is not located with TTL-limited SYNs
    /// (nothing lies between it and the target, and a backend behind a port forward would answer from one
    /// hop farther), and a silent port's walk starts at the last router, going lower only if it is silent
    /// there too.
    pub economical_walks: bool,
    /// Double the wait before each retransmission of a main SYN (default true). Without, every retransmission
    /// waits one timeout: a sweep's representatives beside a rate-limited ICMP sender retry once per refill of
    /// its bucket.
    pub backoff: bool,
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
            icmp_burst: 4,
            icmp_interval: Duration::from_millis(1000),
            first_answer_wait: Duration::from_millis(3500),
            confirm_silent_hops: true,
            economical_walks: false,
            backoff: true,
        }
    }
}

impl SessionConfig {
    /// Check the settings: `ttl`, `max_ttl`, `budget` and `icmp_burst` at least 1; `min_rto`, `max_rto` and
    /// `first_answer_wait` longer than zero, and `min_rto` not above `max_rto`; `icmp_interval` not negative; no
    /// baseline port 0. (`retries` 0 sends the SYN once; `tos` 0 turns the TOS discriminator off.)
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::at_least_one("session.ttl", self.ttl)?;
        check::at_least_one("session.max_ttl", self.max_ttl)?;
        check::at_least_one("session.budget", self.budget)?;
        check::at_least_one("session.icmp_burst", self.icmp_burst)?;
        check::positive("session.min_rto", self.min_rto)?;
        check::positive("session.max_rto", self.max_rto)?;
        if self.min_rto > self.max_rto {
            return Err(ConfigError::Inverted {
                low: "session.min_rto",
                low_value: self.min_rto,
                high: "session.max_rto",
                high_value: self.max_rto,
            });
        }
        check::positive("session.first_answer_wait", self.first_answer_wait)?;
        check::not_negative("session.icmp_interval", self.icmp_interval)?;
        if self.baseline_ports.contains(&0) {
            return Err(ConfigError::PortZero {
                setting: "session.baseline_ports",
            });
        }
        Ok(())
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

/// The diagnosis of one address and port: the judgement, and what the live run adds to it. The JSON object
/// `synprobe HOST PORT --json` prints per target is [`crate::record::ProbeRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct TargetReport {
    /// The name the user gave, when it was a host name.
    pub host: Option<String>,
    /// The address probed.
    pub target: IpAddr,
    /// The port probed.
    pub port: u16,
    /// The source address used.
    pub source: IpAddr,
    /// The verdict, its findings and its context: the same model a replay judges with.
    pub judgement: Judgement,
    /// The TTL walk, when one was made.
    pub path: Vec<PathHop>,
    /// Packets sent for this port (its share of the address's shared probes included).
    pub probes_sent: u32,
    /// From the first packet sent to the verdict (the plan's end), excluding process start-up.
    pub time_to_verdict: Duration,
    /// Every packet sent and received, Wireshark style.
    pub packets: Vec<PacketRecord>,
    /// For an address of this host: what its listening sockets mean for the port (null otherwise).
    pub listeners: Option<PortListeners>,
    /// With `--connect`, for a port that answered SYN-ACK: what a full connection met (null otherwise).
    pub connect: Option<FullConnect>,
}

/// What this host knows about one of its own ports, for a local target (see [`Session::note_local`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalFacts {
    listeners: PortListeners,
    /// How much the listen-queue counters rose during the run (the whole namespace's).
    rise: ListenCounters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// A port's own probe (index into `ports`).
    Port(usize),
    /// A probe about the address, shared by its ports.
    Address,
}

#[derive(Debug, Clone)]
struct Sent {
    purpose: Purpose,
    owner: Owner,
    /// Destination port (0 for the echo).
    port: u16,
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
    Rst {
        ttl: u8,
    },
    Unreachable {
        from: IpAddr,
        code: Unreachable,
        /// Hop of the sender, by the error's TTL.
        hop: u8,
        /// The TTL the quoted datagram had left where it was turned back.
        quote_ttl: u8,
    },
    TimeExceeded {
        from: IpAddr,
    },
    EchoReply {
        ttl: u8,
    },
}

/// A TTL-limited SYN waiting for its router to have an ICMP token.
#[derive(Debug, Clone, Copy)]
struct Planned {
    owner: Owner,
    purpose: Purpose,
    port: u16,
    ttl: u8,
    not_before: Timestamp,
}

/// The plan's model of one router's ICMP token bucket for us.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The main SYN and its retransmissions.
    Probing,
    /// First discriminators out.
    Discriminating,
    /// Silent hops asked again, controls out.
    Confirming,
    Done,
}

#[derive(Debug, Clone)]
struct PortPlan {
    port: u16,
    phase: Phase,
    /// Index of the main SYN in `probes`.
    main: usize,
    sent: u32,
    budget_hit: bool,
    done_at: Option<Timestamp>,
}

/// A route error about the address: it concerns every port (see [`Session`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RouteError {
    from: IpAddr,
    code: Unreachable,
}

/// The probing plan for one address and its ports. See the module documentation.
pub struct Session {
    target: IpAddr,
    source: IpAddr,
    host: Option<String>,
    cfg: SessionConfig,
    rng: u64,
    /// Source ports still free: `[next, end)`.
    next_sport: u16,
    end_sport: u16,
    echo_id: u16,
    started: bool,
    local: bool,
    probes: Vec<Sent>,
    by_sport: HashMap<u16, usize>,
    frames: Vec<Observed>,
    srtt: Option<Duration>,
    ports: Vec<PortPlan>,
    address_sent: u32,
    address_budget_hit: bool,
    buckets: HashMap<u8, Bucket>,
    deferred: VecDeque<Planned>,
    t0: Option<Timestamp>,
    /// When the plan finished (or the last time it was polled).
    last_poll: Timestamp,
    local_facts: HashMap<u16, LocalFacts>,
    connects: HashMap<u16, FullConnect>,
}

/// A sans-IO probing plan for one address, as the live driver ([`crate::live`]) and [`simulate`] run it: a
/// [`Session`] (a few ports, every discriminator for each) or a [`crate::sweep::Sweep`] (a range of ports: a fast
/// first pass, the discriminators once per kind of answer).
pub trait Plan {
    /// The address probed.
    fn target(&self) -> IpAddr;
    /// Advance the plan to `now`: the packets to send now, and when to call again (None when done).
    fn poll(&mut self, now: Timestamp) -> (Vec<Outgoing>, Option<Timestamp>);
    /// Whether a captured frame concerns this plan (it then takes it).
    fn on_frame(&mut self, seen: &Observed) -> bool;
    /// Whether the plan is finished.
    fn is_done(&self) -> bool;
    /// The diagnoses, one per port in ascending order of the ports given. Call when done (or to give up early:
    /// what is known is judged).
    fn reports(&mut self) -> Vec<TargetReport>;
    /// The port a frame this plan took concerns (None: a probe about the whole address).
    fn port_of(&self, seen: &Observed) -> Option<u16>;
    /// A comment for a frame this plan took (pcapng annotations): which probe, which step of the plan.
    fn describe(&self, seen: &Observed) -> String;
    /// Another plan running at the same time sent a TTL-limited SYN that expires `hop` hops away at `at`: the
    /// router there spends a token of the ICMP bucket it keeps for us, whichever plan asked (see
    /// [`charge_ttl_limited`]).
    fn note_icmp_spent(&mut self, hop: u8, at: Timestamp);
}

/// After plan `from` of `plans` handed out `out` at `now`: charge each of its TTL-limited SYNs to every other
/// plan's model of the routers' ICMP buckets. Routers keep one bucket per destination (us), so plans probing
/// at the same time share it; plans to different targets are charged too (their first hops are usually the
/// same routers), which errs on the side of waiting.
pub fn charge_ttl_limited<P: Plan + ?Sized>(
    plans: &mut [&mut P],
    from: usize,
    out: &[Outgoing],
    now: Timestamp,
) {
    for o in out {
        if let Purpose::TtlWalk(hop) | Purpose::PathWalk(hop) = o.purpose {
            for (k, other) in plans.iter_mut().enumerate() {
                if k != from {
                    other.note_icmp_spent(hop, now);
                }
            }
        }
    }
}

impl Plan for Session {
    fn target(&self) -> IpAddr {
        Session::target(self)
    }
    fn poll(&mut self, now: Timestamp) -> (Vec<Outgoing>, Option<Timestamp>) {
        Session::poll(self, now)
    }
    fn on_frame(&mut self, seen: &Observed) -> bool {
        Session::on_frame(self, seen)
    }
    fn is_done(&self) -> bool {
        Session::is_done(self)
    }
    fn reports(&mut self) -> Vec<TargetReport> {
        Session::reports(self)
    }
    fn port_of(&self, seen: &Observed) -> Option<u16> {
        Session::port_of(self, seen)
    }
    fn describe(&self, seen: &Observed) -> String {
        Session::describe(self, seen)
    }
    fn note_icmp_spent(&mut self, hop: u8, at: Timestamp) {
        Session::note_icmp_spent(self, hop, at)
    }
}

/// Source ports one session needs for `ports` ports under `cfg` (give each concurrent session its own range).
pub fn source_ports_needed(ports: usize, cfg: &SessionConfig) -> u32 {
    (ports as u32 + 1).saturating_mul(cfg.budget.max(1))
}

impl Session {
    /// A session probing `ports` of `target` from `source`. Source ports are taken from `sport_base` upwards,
    /// [`source_ports_needed`] of them at most (give each concurrent session its own range); `seed` makes ISNs
    /// and IDs unpredictable. Refuses settings [`SessionConfig::validate`] refuses.
    pub fn new(
        target: IpAddr,
        ports: &[u16],
        source: IpAddr,
        cfg: SessionConfig,
        sport_base: u16,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let span = source_ports_needed(ports.len(), &cfg);
        let end = u32::from(sport_base).saturating_add(span).min(65_536);
        let mut s = Session {
            target,
            source,
            host: None,
            rng: seed | 1,
            next_sport: sport_base,
            end_sport: (end - 1) as u16,
            echo_id: (seed >> 16) as u16 | 1,
            cfg,
            started: false,
            local: false,
            probes: Vec::new(),
            by_sport: HashMap::new(),
            frames: Vec::new(),
            srtt: None,
            ports: Vec::new(),
            address_sent: 0,
            address_budget_hit: false,
            buckets: HashMap::new(),
            deferred: VecDeque::new(),
            t0: None,
            last_poll: Timestamp::default(),
            local_facts: HashMap::new(),
            connects: HashMap::new(),
        };
        let mut seen: Vec<u16> = Vec::new();
        for &p in ports {
            if !seen.contains(&p) {
                seen.push(p);
                s.ports.push(PortPlan {
                    port: p,
                    phase: Phase::Probing,
                    main: usize::MAX,
                    sent: 0,
                    budget_hit: false,
                    done_at: None,
                });
            }
        }
        Ok(s)
    }

    /// Remember the host name the user gave (for the reports).
    pub fn with_host(mut self, host: Option<String>) -> Self {
        self.host = host;
        self
    }

    /// The target is an address of this host: distances count from 0 (this host), and no TTL-limited probe is
    /// sent (nothing lies between).
    pub fn local(mut self, local: bool) -> Self {
        self.local = local;
        self
    }

    /// For a local target: what the host's own sockets say about `port` ([`PortListeners::classify`]), and how
    /// much its listen-queue counters (ListenOverflows, ListenDrops) rose during the run. The reports then name
    /// the cause where the packets only show its effect.
    pub fn note_local(&mut self, port: u16, listeners: PortListeners, rise: ListenCounters) {
        self.local_facts
            .insert(port, LocalFacts { listeners, rise });
    }

    /// A frame from outside this session to judge with (a sweep's first pass: the SYN-ACKs of the address's
    /// open ports tell its distance). It joins the frames the reports are judged from, before this session's
    /// own; it answers none of its probes.
    pub fn note_context(&mut self, seen: &Observed) {
        self.frames.push(*seen);
    }

    /// An ICMP error sent to us by the router (or host) `hop` hops away at `at`, drawn by probes outside this
    /// session (a sweep's first pass): it spent a token of that router's bucket, which the plan's pacing models.
    pub fn note_icmp_spent(&mut self, hop: u8, at: Timestamp) {
        self.take_token(hop, at);
    }

    /// The ports whose main SYN drew a SYN-ACK (candidates for a full connection).
    pub fn ports_answered_syn_ack(&self) -> Vec<u16> {
        self.ports
            .iter()
            .filter(|p| {
                self.probes
                    .get(p.main)
                    .is_some_and(|m| matches!(m.answer, Some((_, Answer::SynAck))))
            })
            .map(|p| p.port)
            .collect()
    }

    /// What a full connection to `port` met (the live edge makes it, after the plan; see [`FullConnect`]).
    pub fn note_connect(&mut self, port: u16, outcome: FullConnect) {
        self.connects.insert(port, outcome);
    }

    /// The address probed.
    pub fn target(&self) -> IpAddr {
        self.target
    }

    /// The ports probed, in the order reports come.
    pub fn ports(&self) -> Vec<u16> {
        self.ports.iter().map(|p| p.port).collect()
    }

    /// Whether the plan is finished.
    pub fn is_done(&self) -> bool {
        self.started && self.ports.iter().all(|p| p.phase == Phase::Done)
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
        if !self.is_done() {
            self.last_poll = self.last_poll.max(now);
        }
        let mut out = Vec::new();
        if !self.started {
            self.start(now, &mut out);
        }
        self.release_deferred(now, &mut out);
        for i in 0..self.ports.len() {
            self.advance_port(i, now, &mut out);
        }
        // Probes a port planned just now may already have their tokens.
        self.release_deferred(now, &mut out);
        if self.is_done() {
            return (out, None);
        }
        (out, self.next_deadline(now).or(Some(now)))
    }

    fn start(&mut self, now: Timestamp, out: &mut Vec<Outgoing>) {
        self.started = true;
        self.t0 = Some(now);
        // The main SYNs first: an ICMP error they draw spends the router's first tokens.
        for i in 0..self.ports.len() {
            let port = self.ports[i].port;
            if let Some(idx) = self.push_syn(
                now,
                Owner::Port(i),
                Purpose::Main,
                port,
                self.cfg.ttl,
                0,
                false,
                out,
            ) {
                self.ports[i].main = idx;
            } else {
                self.ports[i].phase = Phase::Done;
            }
        }
        if self.cfg.quick {
            return;
        }
        if self.cfg.echo {
            self.push_echo(now, out);
        }
        for p in self.cfg.baseline_ports.clone() {
            if !self.ports.iter().any(|x| x.port == p) {
                self.push_syn(
                    now,
                    Owner::Address,
                    Purpose::Baseline(p),
                    p,
                    self.cfg.ttl,
                    self.cfg.tos,
                    false,
                    out,
                );
            }
        }
    }

    fn advance_port(&mut self, i: usize, now: Timestamp, out: &mut Vec<Outgoing>) {
        loop {
            match self.ports[i].phase {
                Phase::Probing => {
                    if self.route_error().is_none() {
                        self.retransmit_main(i, now, out);
                    }
                    if !self.main_settled(i, now) {
                        return;
                    }
                    if self.cfg.quick {
                        self.finish_port(i, now);
                        return;
                    }
                    // The discriminators need the address's facts (its distance).
                    if !self.address_settled(now) {
                        return;
                    }
                    self.plan_discriminators(i, now, out);
                    self.ports[i].phase = Phase::Discriminating;
                }
                Phase::Discriminating => {
                    if !self.port_settled(i, now) {
                        return;
                    }
                    if self.cfg.economical_walks && self.walk_lower(i, now) {
                        return;
                    }
                    // Silent hops asked again, where there are any; then the port waits for them.
                    self.plan_confirmations(i, now);
                    self.ports[i].phase = Phase::Confirming;
                }
                Phase::Confirming => {
                    if self.port_settled(i, now) && self.neighbour_wait_over(i, now) {
                        self.finish_port(i, now);
                    }
                    return;
                }
                Phase::Done => return,
            }
        }
    }

    fn finish_port(&mut self, i: usize, now: Timestamp) {
        self.ports[i].phase = Phase::Done;
        self.ports[i].done_at = Some(now);
    }

    fn main_settled(&self, i: usize, now: Timestamp) -> bool {
        let Some(m) = self.probes.get(self.ports[i].main) else {
            return true;
        };
        if m.answer.is_some() || self.route_error().is_some() {
            return true;
        }
        let retries_done = m.sent.len() as u32 > self.cfg.retries || self.ports[i].budget_hit;
        retries_done && now >= m.deadline
    }

    /// Whether a silent port may be called silent: a router (or the target, forwarding the port to a backend)
    /// may still be resolving its neighbour, and answers "host unreachable" only once ARP has failed, 3 s after
    /// the first SYN. Not needed once the walk shows the SYNs vanish before the last router.
    fn neighbour_wait_over(&self, i: usize, now: Timestamp) -> bool {
        let Some(m) = self.probes.get(self.ports[i].main) else {
            return true;
        };
        if m.answer.is_some() || self.route_error().is_some() {
            return true;
        }
        let last_router = self
            .walk_answers(i)
            .iter()
            .filter(|(_, a)| matches!(a, Some(Answer::TimeExceeded { .. })))
            .map(|(t, _)| *t)
            .max();
        // The SYNs reached router r but not router r + 1, which does answer other TTL-limited SYNs: they never
        // got as far as the last router (hop h - 1), the one that could still be resolving a neighbour.
        let vanish_early = match (last_router, self.target_hops()) {
            (Some(r), Some(h)) => r + 1 < h && self.hop_ever_answered(r + 1),
            _ => false,
        };
        vanish_early
            || m.sent
                .first()
                .is_some_and(|&t| now >= t.plus(self.cfg.first_answer_wait))
    }

    /// The echo and the baseline SYNs have their answers, or their time is up.
    fn address_settled(&self, now: Timestamp) -> bool {
        self.probes
            .iter()
            .filter(|p| matches!(p.purpose, Purpose::Echo | Purpose::Baseline(_)))
            .all(|p| p.answer.is_some() || now >= p.deadline || self.route_error().is_some())
    }

    /// Every probe of port `i` (and every control it waits for) has its answer or its time is up, and none is
    /// still held back for a token.
    fn port_settled(&self, i: usize, now: Timestamp) -> bool {
        if self
            .deferred
            .iter()
            .any(|d| d.owner == Owner::Port(i) || matches!(d.purpose, Purpose::PathWalk(_)))
        {
            return false;
        }
        let grace = self.optional_grace();
        // A main SYN left unanswered by a router's rate limit needs no waiting once the address's routing error
        // is known: that error is its answer.
        let inherited = self.route_error().is_some();
        self.probes
            .iter()
            .filter(|p| p.owner == Owner::Port(i) || matches!(p.purpose, Purpose::PathWalk(_)))
            .all(|p| {
                p.answer.is_some()
                    || (inherited && p.purpose == Purpose::Main)
                    || now >= p.deadline
                    || (p.purpose == Purpose::BadChecksum
                        && p.sent.first().is_some_and(|&t| now >= t.plus(grace)))
            })
    }

    /// A probe that normally draws no answer (the bad checksum) gets a short grace once sent, not a full
    /// timeout: an answer to it would come within a round trip like the others.
    fn optional_grace(&self) -> Duration {
        self.srtt.map_or(self.rto(), |r| {
            Duration(r.0 * 2 + 2_000_000).min(self.rto())
        })
    }

    /// The next time something is due: the earliest deadline still ahead of `now` of an unanswered probe, or
    /// of a probe held back for a token.
    fn next_deadline(&self, now: Timestamp) -> Option<Timestamp> {
        let grace = self.optional_grace();
        let probes =
            self.probes
                .iter()
                .filter(|p| p.answer.is_none())
                .map(|p| match p.sent.first() {
                    Some(&t) if p.purpose == Purpose::BadChecksum => p.deadline.min(t.plus(grace)),
                    _ => p.deadline,
                });
        let held = self
            .deferred
            .iter()
            .map(|d| self.token_time(d).max(d.not_before));
        let first_wait = self
            .t0
            .filter(|_| {
                self.ports.iter().any(|p| {
                    p.phase != Phase::Done
                        && self.probes.get(p.main).is_some_and(|m| m.answer.is_none())
                })
            })
            .map(|t0| t0.plus(self.cfg.first_answer_wait));
        probes
            .chain(held)
            .chain(first_wait)
            .filter(|&d| d > now)
            .min()
    }

    /// Spend one packet of `owner`'s budget.
    fn spend(&mut self, owner: Owner) -> bool {
        let budget = self.cfg.budget;
        let (sent, hit) = match owner {
            Owner::Port(i) => {
                let p = &mut self.ports[i];
                (&mut p.sent, &mut p.budget_hit)
            }
            Owner::Address => (&mut self.address_sent, &mut self.address_budget_hit),
        };
        if *sent >= budget || self.next_sport >= self.end_sport {
            *hit = true;
            return false;
        }
        *sent += 1;
        true
    }

    fn ip(&self, ttl: u8, tos: u8) -> IpSpec {
        IpSpec::new(self.source, self.target).ttl(ttl).tos(tos)
    }

    /// Send a SYN; returns its index in `probes`.
    #[allow(clippy::too_many_arguments)]
    fn push_syn(
        &mut self,
        now: Timestamp,
        owner: Owner,
        purpose: Purpose,
        dport: u16,
        ttl: u8,
        tos: u8,
        bad_checksum: bool,
        out: &mut Vec<Outgoing>,
    ) -> Option<usize> {
        if !self.spend(owner) {
            return None;
        }
        let sport = self.next_sport;
        self.next_sport += 1;
        let isn = self.random();
        let ident = self.random() as u16;
        let syn = TcpSpec::syn(sport, dport, isn).linux_options();
        let Ok(mut datagram) = syn.emit(&self.ip(ttl, tos).ident(ident)) else {
            return None;
        };
        if bad_checksum {
            let tcp_at = if self.target.is_ipv6() { 40 } else { 20 };
            if let Some(b) = datagram.get_mut(tcp_at + 16) {
                *b ^= 0x5a;
            }
        }
        let idx = self.probes.len();
        self.by_sport.insert(sport, idx);
        self.probes.push(Sent {
            purpose,
            owner,
            port: dport,
            sport,
            isn,
            ttl,
            sent: vec![now],
            answer: None,
            deadline: now.plus(self.rto()),
        });
        out.push(Outgoing {
            datagram,
            dst: self.target,
            ttl,
            tos,
            purpose,
        });
        Some(idx)
    }

    fn push_echo(&mut self, now: Timestamp, out: &mut Vec<Outgoing>) {
        if !self.spend(Owner::Address) {
            return;
        }
        let Ok(datagram) = echo(&self.ip(self.cfg.ttl, 0), false, self.echo_id, 1) else {
            return;
        };
        self.probes.push(Sent {
            purpose: Purpose::Echo,
            owner: Owner::Address,
            port: 0,
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

    fn retransmit_main(&mut self, i: usize, now: Timestamp, out: &mut Vec<Outgoing>) {
        let rto = self.rto();
        let retries = self.cfg.retries;
        let idx = self.ports[i].main;
        let due = self.probes.get(idx).is_some_and(|m| {
            m.answer.is_none() && now >= m.deadline && (m.sent.len() as u32) <= retries
        });
        if !due || !self.spend(Owner::Port(i)) {
            return;
        }
        let port = self.ports[i].port;
        let m = &mut self.probes[idx];
        // Back off exponentially (1 s, 2 s… before anything was measured, as Linux does): a router that charges
        // a route error twice to its one-a-second ICMP bucket answers a SYN every other second at best, and a
        // SYN sent each second would spend its token without ever being answered. The last SYN waits one
        // timeout.
        let last = m.sent.len() as u32 >= retries;
        let backoff = if last || !self.cfg.backoff {
            1
        } else {
            1i64 << m.sent.len().min(6)
        };
        m.sent.push(now);
        m.deadline = now.plus(Duration(
            rto.0.saturating_mul(backoff).min(self.cfg.max_rto.0 * 2),
        ));
        let (sport, isn, ttl) = (m.sport, m.isn, m.ttl);
        let syn = TcpSpec::syn(sport, port, isn).linux_options();
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

    /// The target's distance as the address's own answers show it: the echo reply, else the baseline RST
    /// (0 for an address of this host).
    fn target_hops(&self) -> Option<u8> {
        if self.local {
            return Some(0);
        }
        let by = |pred: &dyn Fn(&Sent) -> bool| {
            self.probes
                .iter()
                .filter(|p| pred(p))
                .find_map(|p| match p.answer {
                    Some((_, Answer::EchoReply { ttl } | Answer::Rst { ttl })) => {
                        Some(TtlReading::of(ttl).hops.0)
                    }
                    _ => None,
                })
        };
        by(&|p| p.purpose == Purpose::Echo)
            .or_else(|| by(&|p| matches!(p.purpose, Purpose::Baseline(_))))
    }

    /// An ICMP routing error about the address, drawn by any of its probes: a routing code from a device other
    /// than the target, or a prohibition sent before the SYN was forwarded (a `prohibit` route: the quoted TTL
    /// was not decremented by the sender, where a FORWARD REJECT rule quotes it decremented).
    fn route_error(&self) -> Option<RouteError> {
        self.probes.iter().find_map(|p| match p.answer {
            Some((
                _,
                Answer::Unreachable {
                    from,
                    code,
                    hop,
                    quote_ttl,
                },
            )) if from != self.target && is_route_wide(code, hop, Some(quote_ttl), p.ttl) => {
                Some(RouteError { from, code })
            }
            _ => None,
        })
    }

    fn plan_discriminators(&mut self, i: usize, now: Timestamp, out: &mut Vec<Outgoing>) {
        let port = self.ports[i].port;
        let main_answer = self
            .probes
            .get(self.ports[i].main)
            .and_then(|m| m.answer.map(|a| a.1));
        let owner = Owner::Port(i);
        match main_answer {
            Some(Answer::Rst { ttl }) => {
                if self.cfg.tos != 0 {
                    self.push_syn(
                        now,
                        owner,
                        Purpose::Tos,
                        port,
                        self.cfg.ttl,
                        self.cfg.tos,
                        false,
                        out,
                    );
                }
                self.push_syn(
                    now,
                    owner,
                    Purpose::BadChecksum,
                    port,
                    self.cfg.ttl,
                    0,
                    true,
                    out,
                );
                if self.local {
                    return;
                }
                // Locate the RST: the TTL of its own distance, and one less.
                let h = TtlReading::of(ttl).hops.0;
                if self.cfg.economical_walks && self.target_hops() == Some(h) {
                    return;
                }
                for t in [h.saturating_sub(1), h] {
                    if t >= 1 && t <= self.cfg.max_ttl {
                        self.plan_ttl(owner, Purpose::TtlWalk(t), port, t, now);
                    }
                }
            }
            None if self.route_error().is_none() && !self.local => {
                // Up to the last router before the target when its distance is known, else 16 hops.
                let limit = match self.target_hops() {
                    Some(h) => h.saturating_sub(1).min(self.cfg.max_ttl),
                    None => self.cfg.max_ttl.min(16),
                };
                let from = if self.cfg.economical_walks && self.target_hops().is_some() {
                    limit
                } else {
                    1
                };
                for t in from..=limit {
                    self.plan_ttl(owner, Purpose::TtlWalk(t), port, t, now);
                }
            }
            _ => {}
        }
    }

    /// With [`SessionConfig::economical_walks`]: a silent port whose walk began at the last router and found
    /// silence there walks the hops below it. Returns whether it planned them.
    fn walk_lower(&mut self, i: usize, now: Timestamp) -> bool {
        let main_silent = self
            .probes
            .get(self.ports[i].main)
            .is_some_and(|m| m.answer.is_none());
        let walk = self.walk_answers(i);
        let Some(&(lowest, None)) = walk.first() else {
            return false;
        };
        if !main_silent || lowest <= 1 || self.route_error().is_some() {
            return false;
        }
        let port = self.ports[i].port;
        for t in 1..lowest {
            self.plan_ttl(Owner::Port(i), Purpose::TtlWalk(t), port, t, now);
        }
        true
    }

    /// After the first discriminators: ask silent hops again (a second later: the router's bucket may have been
    /// empty), with a control SYN to the baseline port where a hop has never answered.
    fn plan_confirmations(&mut self, i: usize, now: Timestamp) {
        let port = self.ports[i].port;
        let owner = Owner::Port(i);
        let walk = self.walk_answers(i);
        if walk.is_empty() || !self.cfg.confirm_silent_hops {
            return;
        }
        let not_before = now.max(
            self.probes
                .iter()
                .filter(|p| p.owner == owner && matches!(p.purpose, Purpose::TtlWalk(_)))
                .filter_map(|p| p.sent.first().copied())
                .max()
                .unwrap_or(now)
                .plus(Duration(self.cfg.icmp_interval.0 + 100_000_000)),
        );
        let main_silent = self
            .probes
            .get(self.ports[i].main)
            .is_some_and(|m| m.answer.is_none());
        let highest_answer = walk
            .iter()
            .filter(|(_, a)| a.is_some())
            .map(|(t, _)| *t)
            .max()
            .unwrap_or(0);
        for &(t, a) in &walk {
            if a.is_some() {
                continue;
            }
            // A silent hop below one that answered: the SYN passed it, so it was rate-limited or sends no
            // time-exceeded. For a silent port, the first silent hop after the last answer is where the SYNs
            // may vanish: ask again, and ask whether that hop answers at all.
            let passed = t < highest_answer;
            let frontier = main_silent && t == highest_answer + 1;
            if !(passed || frontier) {
                continue;
            }
            self.deferred.push_back(Planned {
                owner,
                purpose: Purpose::TtlWalk(t),
                port,
                ttl: t,
                not_before,
            });
            if frontier && !self.hop_ever_answered(t) && !self.control_planned(t) {
                if let Some(&bp) = self.cfg.baseline_ports.first() {
                    self.deferred.push_back(Planned {
                        owner: Owner::Address,
                        purpose: Purpose::PathWalk(t),
                        port: bp,
                        ttl: t,
                        not_before,
                    });
                }
            }
        }
    }

    fn control_planned(&self, t: u8) -> bool {
        self.deferred
            .iter()
            .any(|d| d.purpose == Purpose::PathWalk(t))
            || self
                .probes
                .iter()
                .any(|p| p.purpose == Purpose::PathWalk(t))
    }

    /// Whether a time-exceeded ever came from hop `t`, for any probe of the address.
    fn hop_ever_answered(&self, t: u8) -> bool {
        self.probes.iter().any(|p| {
            matches!(p.purpose, Purpose::TtlWalk(x) | Purpose::PathWalk(x) if x == t)
                && matches!(p.answer, Some((_, Answer::TimeExceeded { .. })))
        })
    }

    /// Port `i`'s TTL-limited SYNs: per TTL, the first answer (None: silence so far).
    fn walk_answers(&self, i: usize) -> Vec<(u8, Option<Answer>)> {
        let mut by_ttl: Vec<(u8, Option<Answer>)> = Vec::new();
        for p in self.probes.iter().filter(|p| p.owner == Owner::Port(i)) {
            let Purpose::TtlWalk(t) = p.purpose else {
                continue;
            };
            let a = p.answer.map(|x| x.1);
            match by_ttl.iter_mut().find(|(x, _)| *x == t) {
                Some(slot) => {
                    if slot.1.is_none() {
                        slot.1 = a;
                    }
                }
                None => by_ttl.push((t, a)),
            }
        }
        by_ttl.sort_by_key(|(t, _)| *t);
        by_ttl
    }

    /// Queue a TTL-limited SYN: it is sent when the router it expires at has a token.
    fn plan_ttl(&mut self, owner: Owner, purpose: Purpose, port: u16, ttl: u8, now: Timestamp) {
        self.deferred.push_back(Planned {
            owner,
            purpose,
            port,
            ttl,
            not_before: now,
        });
    }

    fn bucket(&self, hop: u8) -> Bucket {
        self.buckets.get(&hop).copied().unwrap_or(Bucket {
            tokens: f64::from(self.cfg.icmp_burst),
            at: Timestamp(i64::MIN),
        })
    }

    fn tokens_at(&self, hop: u8, now: Timestamp) -> f64 {
        let b = self.bucket(hop);
        if b.at == Timestamp(i64::MIN) {
            return b.tokens;
        }
        let per_sec = 1.0 / self.cfg.icmp_interval.as_secs_f64().max(1e-3);
        (b.tokens + now.since(b.at).as_secs_f64().max(0.0) * per_sec)
            .min(f64::from(self.cfg.icmp_burst))
    }

    /// When hop `d.ttl` will have a token for `d`.
    fn token_time(&self, d: &Planned) -> Timestamp {
        let b = self.bucket(d.ttl);
        if b.at == Timestamp(i64::MIN) || b.tokens >= 1.0 {
            return b.at.max(d.not_before);
        }
        let missing = 1.0 - b.tokens;
        b.at.plus(Duration::from_secs_f64(
            missing * self.cfg.icmp_interval.as_secs_f64(),
        ))
    }

    fn take_token(&mut self, hop: u8, now: Timestamp) {
        let tokens = self.tokens_at(hop, now) - 1.0;
        self.buckets.insert(hop, Bucket { tokens, at: now });
    }

    fn release_deferred(&mut self, now: Timestamp, out: &mut Vec<Outgoing>) {
        let mut waiting = VecDeque::new();
        while let Some(d) = self.deferred.pop_front() {
            // (A token due now may read 0.999999999: the refill is computed in floating point.)
            if now < d.not_before || self.tokens_at(d.ttl, now) < 1.0 - 1e-6 {
                waiting.push_back(d);
                continue;
            }
            self.take_token(d.ttl, now);
            self.push_syn(now, d.owner, d.purpose, d.port, d.ttl, 0, false, out);
        }
        self.deferred = waiting;
    }

    /// The port a frame this session took concerns (None: a probe about the whole address).
    pub fn port_of(&self, seen: &Observed) -> Option<u16> {
        let idx = self.probe_of(seen)?;
        let p = &self.probes[idx];
        match p.owner {
            Owner::Port(_) => Some(p.port),
            Owner::Address => None,
        }
    }

    /// The probe a frame is or answers.
    fn probe_of(&self, seen: &Observed) -> Option<usize> {
        let p = &seen.packet;
        match &p.transport {
            Transport::Tcp(t) => {
                // By ports as well as addresses: on loopback the source and the target are the same address.
                let ours = p.ip.src == self.source
                    && p.ip.dst == self.target
                    && self
                        .by_sport
                        .get(&t.src_port)
                        .is_some_and(|&i| self.probes[i].port == t.dst_port);
                // A reply must acknowledge the probe's ISN: off-path junk to the same ports is not ours.
                let theirs = p.ip.src == self.target
                    && p.ip.dst == self.source
                    && t.flags.has(TcpFlags::ACK)
                    && self.by_sport.get(&t.dst_port).is_some_and(|&i| {
                        self.probes[i].port == t.src_port
                            && t.ack == self.probes[i].isn.wrapping_add(1)
                    });
                if ours {
                    self.by_sport.get(&t.src_port).copied()
                } else if theirs {
                    self.by_sport.get(&t.dst_port).copied()
                } else {
                    None
                }
            }
            Transport::IcmpError(e) => {
                let q = e.quote.as_ref()?;
                if q.src != self.source || q.dst != self.target {
                    return None;
                }
                match q.tcp {
                    Some(t) => self.by_sport.get(&t.src_port).copied().filter(|&i| {
                        self.probes[i].port == t.dst_port && self.probes[i].isn == t.seq
                    }),
                    // An error about our echo request (ICMP quoted).
                    None if q.protocol == 1 || q.protocol == 58 => {
                        self.probes.iter().position(|x| x.purpose == Purpose::Echo)
                    }
                    None => None,
                }
            }
            Transport::Echo { id, .. } => {
                if *id == self.echo_id && (p.ip.src == self.target || p.ip.dst == self.target) {
                    self.probes.iter().position(|x| x.purpose == Purpose::Echo)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// A comment for a frame this session took (pcapng annotations): which probe, which step of the plan.
    pub fn describe(&self, seen: &Observed) -> String {
        let p = &seen.packet;
        let idx = self.probe_of(seen);
        let dir = match &p.transport {
            Transport::Tcp(t) => match idx {
                Some(i) if t.src_port == self.probes[i].sport && p.ip.src == self.source => "sent",
                _ => "reply to",
            },
            Transport::IcmpError(_) => "ICMP error about",
            Transport::Echo { reply: false, .. } => "sent",
            Transport::Echo { .. } => "reply to",
            _ => "",
        };
        match idx.map(|i| &self.probes[i]) {
            Some(pr) if pr.owner == Owner::Address => {
                format!("synprobe {}: {dir} {}", self.target, pr.purpose.describe())
            }
            Some(pr) => format!(
                "synprobe {}:{}: {dir} {}",
                self.target,
                pr.port,
                pr.purpose.describe()
            ),
            None => format!("synprobe {}", self.target),
        }
    }

    /// Whether a captured frame concerns this session (it then takes it).
    pub fn on_frame(&mut self, seen: &Observed) -> bool {
        let Some(idx) = self.probe_of(seen) else {
            return false;
        };
        self.learn(idx, seen);
        self.frames.push(*seen);
        true
    }

    fn learn(&mut self, idx: usize, seen: &Observed) {
        let p = &seen.packet;
        let answer = match &p.transport {
            Transport::Tcp(t)
                if t.src_port == self.probes[idx].sport && p.ip.src == self.source =>
            {
                // Our own SYN as the capture saw it: the truest send time for round trips.
                if t.flags.is_syn_only() && t.seq == self.probes[idx].isn {
                    if let Some(last) = self.probes[idx].sent.last_mut() {
                        if seen.ts.since(*last).0.abs() < 1_000_000_000 {
                            *last = seen.ts;
                        }
                    }
                }
                return;
            }
            Transport::Tcp(t) => {
                if !t.flags.has(TcpFlags::ACK) || t.ack != self.probes[idx].isn.wrapping_add(1) {
                    return;
                }
                if t.flags.is_syn_ack() {
                    Answer::SynAck
                } else if t.flags.is_rst() {
                    Answer::Rst { ttl: p.ip.ttl }
                } else {
                    return;
                }
            }
            Transport::IcmpError(e) => {
                let Some(q) = e.quote else { return };
                if q.tcp.is_some_and(|t| t.seq != self.probes[idx].isn) {
                    return;
                }
                match e.kind {
                    IcmpErrorKind::TimeExceeded(_) => Answer::TimeExceeded { from: p.ip.src },
                    IcmpErrorKind::DestinationUnreachable(code) => Answer::Unreachable {
                        from: p.ip.src,
                        code,
                        hop: TtlReading::of(p.ip.ttl).hops.0,
                        quote_ttl: q.ttl,
                    },
                    _ => return,
                }
            }
            Transport::Echo { reply: true, .. } => Answer::EchoReply { ttl: p.ip.ttl },
            _ => return,
        };
        // An error that no TTL-limited probe paid for still spent a token of its router.
        if let Answer::Unreachable { .. } | Answer::TimeExceeded { .. } = answer {
            let paid = matches!(
                self.probes[idx].purpose,
                Purpose::TtlWalk(_) | Purpose::PathWalk(_)
            );
            if !paid {
                let hop = match answer {
                    Answer::Unreachable { hop, .. } => hop,
                    _ => TtlReading::of(p.ip.ttl).hops.0,
                };
                self.take_token(hop, seen.ts);
            }
        }
        let first_rtt = self.srtt.is_none();
        let probe = &mut self.probes[idx];
        if probe.answer.is_some() {
            return;
        }
        probe.answer = Some((seen.ts, answer));
        let Some(&sent) = probe.sent.last() else {
            return;
        };
        let rtt = seen.ts.since(sent);
        if rtt.0 > 0 && first_rtt {
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

impl Session {
    /// The diagnoses, one per port in the order given. Call when [`Session::is_done`] (or to give up early:
    /// what is known is judged).
    pub fn reports(&mut self) -> Vec<TargetReport> {
        let end = self.last_poll;
        // Judge the frames with the longest wait the plan really gave a main SYN after its last transmission, so
        // that no answer the plan waited for arrives "late".
        // (and no retransmission, after a backed-off gap, starts an attempt of its own).
        let waited = self
            .ports
            .iter()
            .filter_map(|p| {
                let sent = &self.probes.get(p.main)?.sent;
                let last = sent.last().copied()?;
                let gaps = sent.windows(2).map(|w| w[1].since(w[0]));
                Some(gaps.fold(p.done_at.unwrap_or(end).since(last), Duration::max))
            })
            .max()
            .unwrap_or(Duration(0))
            .max(Duration(1_000_000));
        let mut judged: HashMap<(u16, u32), Report> = HashMap::new();
        judge_live(&self.frames, end, waited, |r| {
            judged.insert(
                (r.attempt.probe.key.client_port.0, r.attempt.probe.isn.0),
                r,
            );
        });
        (0..self.ports.len())
            .map(|i| self.port_report(i, &judged))
            .collect()
    }

    fn port_report(&self, i: usize, judged: &HashMap<(u16, u32), Report>) -> TargetReport {
        let t0 = self.t0.unwrap_or_default();
        let plan = &self.ports[i];
        let port = plan.port;
        let mine = |p: &Sent| p.owner == Owner::Port(i) || p.owner == Owner::Address;
        let mut packets: Vec<PacketRecord> = Vec::new();
        for p in self.probes.iter().filter(|p| mine(p)) {
            if let Some(r) = judged.get(&(p.sport, p.isn)) {
                packets.extend(packet_records(&r.attempt, t0));
            }
        }
        for f in &self.frames {
            let ours = self.probe_of(f).is_some_and(|x| mine(&self.probes[x]));
            if ours && !packets.iter().any(|p| p.frame == f.frame) {
                packets.push(other_packet_record(f, t0));
            }
        }
        packets.sort_by_key(|p| p.frame);
        packets.dedup_by_key(|p| p.frame);
        let report_of = |purpose: Purpose| {
            self.probes
                .iter()
                .find(|p| p.owner == Owner::Port(i) && p.purpose == purpose)
                .and_then(|p| judged.get(&(p.sport, p.isn)))
        };
        let mut j = match report_of(Purpose::Main) {
            Some(r) => r.judgement.clone(),
            None => Judgement::not_captured(),
        };
        // A TOS-marked SYN that showed a REJECT rule where the main SYN could not tell.
        if let Some(tos) = report_of(Purpose::Tos) {
            let tj = &tos.judgement;
            if j.verdict == Verdict::Closed && tj.verdict == Verdict::FirewallRst {
                j = tj.clone();
            } else if j.verdict == Verdict::Closed
                && tj.has("rst-tos-echoed")
                && j.confidence < Confidence::High
            {
                j.confidence = if j.target_hops.is_some() {
                    Confidence::High
                } else {
                    Confidence::Medium
                };
                j.findings
                    .retain(|f| !matches!(f, Finding::HostRulePossible | Finding::NoBaseline));
                j.findings
                    .push(Finding::TosProbeEchoed { tos: self.cfg.tos });
            }
        }
        if let Some(bad) = report_of(Purpose::BadChecksum) {
            if bad
                .attempt
                .decisive_reply()
                .is_some_and(|r| r.kind == ReplyKind::Rst)
            {
                j.findings.push(Finding::BadChecksumAnswered);
                if j.verdict == Verdict::Closed {
                    j.verdict = Verdict::FirewallRst;
                    j.confidence = Confidence::Medium;
                    j.cause = Cause::RstForgedByMiddlebox;
                    if let Some(r) = j.rejecter.as_mut() {
                        r.is_target = false;
                        r.kind = RejecterKind::Router;
                    }
                }
            }
        }
        let walk = self.walk_answers(i);
        let path: Vec<PathHop> = walk
            .iter()
            .map(|&(ttl, a)| PathHop {
                ttl,
                addr: match a {
                    Some(Answer::TimeExceeded { from } | Answer::Unreachable { from, .. }) => {
                        Some(from)
                    }
                    Some(Answer::Rst { .. } | Answer::SynAck) => Some(self.target),
                    _ => None,
                },
                answer: match a {
                    Some(Answer::TimeExceeded { .. }) => "time-exceeded",
                    Some(Answer::Unreachable { .. }) => "unreachable",
                    Some(Answer::Rst { .. }) => "rst",
                    Some(Answer::SynAck) => "syn-ack",
                    _ => "silence",
                },
            })
            .collect();
        let main_answer = self
            .probes
            .get(plan.main)
            .and_then(|m| m.answer.map(|a| a.1));
        match (j.verdict, main_answer) {
            (Verdict::Closed | Verdict::FirewallRst, Some(Answer::Rst { ttl })) => {
                self.locate_rst(port, TtlReading::of(ttl).hops.0, &walk, &mut j)
            }
            (Verdict::Filtered, None) => self.locate_silence(&walk, &mut j),
            _ => {}
        }
        let silent_passed: Vec<HopCount> = {
            let highest = walk
                .iter()
                .filter(|(_, a)| a.is_some())
                .map(|(t, _)| *t)
                .max()
                .unwrap_or(0);
            walk.iter()
                .filter(|(t, a)| a.is_none() && *t < highest)
                .map(|(t, _)| HopCount(*t))
                .collect()
        };
        if !silent_passed.is_empty() {
            j.findings.push(Finding::WalkHopSilent {
                hops: silent_passed,
            });
        }
        if self.local {
            j.target_hops = Some(HopCount(0));
            if let Some(r) = j.rejecter.as_mut() {
                if r.addr == self.target {
                    r.hops = Some(HopCount(0));
                }
            }
        } else if let (Some(h), None) = (self.target_hops(), j.target_hops) {
            j.target_hops = Some(HopCount(h));
        }
        if plan.budget_hit || self.address_budget_hit {
            j.findings.push(Finding::Budget {
                budget: self.cfg.budget,
            });
        }
        let facts = self.local_facts.get(&port);
        if let Some(f) = facts {
            self.apply_local(port, f, &mut j);
        }
        let connect = self.connects.get(&port).copied();
        if let (Some(c), Verdict::Open) = (connect, j.verdict) {
            self.apply_connect(c, &mut j);
        }
        let done = plan.done_at.unwrap_or(self.last_poll);
        TargetReport {
            host: self.host.clone(),
            target: self.target,
            port,
            source: self.source,
            judgement: j,
            path,
            probes_sent: plan.sent + self.address_sent,
            time_to_verdict: done.since(t0).max(Duration(0)),
            packets,
            listeners: facts.map(|f| f.listeners.clone()),
            connect,
        }
    }

    /// What a full connection adds to an open port's verdict (decisive behind a SYN proxy).
    fn apply_connect(&self, c: FullConnect, j: &mut Judgement) {
        let target = self.target;
        let proxy = j.has("syn-ack-window-zero");
        match c {
            FullConnect::Accepted => {
                j.findings.push(Finding::ConnectAccepted);
                if proxy {
                    j.confidence = Confidence::High;
                    j.cause = Cause::OpenBehindSynProxy;
                }
            }
            FullConnect::ResetAfterHandshake | FullConnect::Refused => {
                j.findings.insert(0, Finding::ConnectReset);
                j.verdict = Verdict::Closed;
                j.confidence = if proxy {
                    Confidence::High
                } else {
                    Confidence::Medium
                };
                j.rejecter = Some(Rejecter {
                    addr: target,
                    hops: j.target_hops,
                    is_target: true,
                    kind: RejecterKind::Target,
                });
                j.cause = Cause::ClosedBehindSynProxy;
                j.advice = vec![Advice::ProxyServiceDown, Advice::ProxyRules];
            }
            FullConnect::TimedOut | FullConnect::Failed => {
                j.findings.push(Finding::ConnectFailed { outcome: c })
            }
        }
    }

    /// What this host's own sockets and counters add to the verdict on one of its ports.
    fn apply_local(&self, port: u16, f: &LocalFacts, j: &mut Judgement) {
        let target = self.target;
        let socket = |l: &crate::host::Listener| std::net::SocketAddr::new(l.addr, l.port);
        match (&f.listeners, j.verdict) {
            (PortListeners::OnlyElsewhere { listeners }, Verdict::Closed) => {
                let on: Vec<std::net::SocketAddr> = listeners.iter().map(socket).collect();
                j.findings.insert(
                    0,
                    Finding::LocalListensElsewhere {
                        port,
                        target,
                        listeners: on.clone(),
                    },
                );
                j.confidence = Confidence::High;
                j.cause = Cause::ListensElsewhere {
                    listeners: on.clone(),
                };
                j.advice.insert(0, Advice::Rebind { listeners: on });
            }
            (PortListeners::None, Verdict::Closed) => {
                j.findings.insert(0, Finding::LocalNoListener { port });
                j.confidence = Confidence::High;
            }
            (
                PortListeners::BacklogFull {
                    listener,
                    queued,
                    backlog,
                },
                _,
            ) => {
                j.findings.insert(
                    0,
                    Finding::LocalBacklogFull {
                        listener: socket(listener),
                        queued: *queued,
                        backlog: *backlog,
                        overflows: f.rise.overflows,
                    },
                );
                if j.verdict == Verdict::Filtered {
                    j.confidence = Confidence::High;
                    j.cause = Cause::BacklogFull {
                        queued: *queued,
                        backlog: *backlog,
                    };
                    j.advice.insert(0, Advice::AcceptLoop);
                }
            }
            (PortListeners::Serves { listener }, v) => {
                j.findings.push(Finding::LocalListener {
                    listener: socket(listener),
                    port_open: v == Verdict::Open,
                });
            }
            _ => {}
        }
        if f.rise.overflows > 0
            && j.verdict == Verdict::Filtered
            && !matches!(f.listeners, PortListeners::BacklogFull { .. })
        {
            j.findings.push(Finding::LocalListenOverflows {
                overflows: f.rise.overflows,
            });
        }
    }

    /// Who sent time-exceeded for a SYN with TTL `t`, for any probe of the address.
    fn hop_addr(&self, t: u8) -> Option<IpAddr> {
        self.probes
            .iter()
            .find_map(|p| match (p.purpose, p.answer) {
                (
                    Purpose::TtlWalk(x) | Purpose::PathWalk(x),
                    Some((_, Answer::TimeExceeded { from })),
                ) if x == t => Some(from),
                _ => None,
            })
    }

    /// An RST from `h` hops away, and the port's SYNs with TTL `h - 1` and `h`.
    fn locate_rst(&self, port: u16, h: u8, walk: &[(u8, Option<Answer>)], j: &mut Judgement) {
        let at = |t: u8| walk.iter().find(|(x, _)| *x == t).and_then(|(_, a)| *a);
        let target = self.target;
        match (
            h.checked_sub(1)
                .and_then(|t| (t >= 1).then(|| at(t)))
                .flatten(),
            at(h),
        ) {
            // The SYN that reaches hop h expires there, at a router: that router answers the others with RSTs.
            (_, Some(Answer::TimeExceeded { from })) if from != target => {
                j.findings.insert(
                    0,
                    Finding::TtlWalkRstAtRouter {
                        router: from,
                        hops: HopCount(h),
                    },
                );
                j.verdict = Verdict::FirewallRst;
                j.confidence = Confidence::High;
                j.rejecter = Some(Rejecter {
                    addr: from,
                    hops: Some(HopCount(h)),
                    is_target: false,
                    kind: RejecterKind::Router,
                });
                j.cause = Cause::RstAtRouter {
                    router: from,
                    hops: HopCount(h),
                };
                j.advice
                    .insert(0, Advice::RouterRejectRule { router: from });
            }
            // One hop before the RST's sender, the SYN expired at the target's own address: the target
            // forwards the port (DNAT) to a backend one hop beyond it, whose stack (or rule) refused.
            (Some(Answer::TimeExceeded { from }), _) if from == target => {
                let by_rule = j.verdict == Verdict::FirewallRst;
                let before = h - 1;
                j.findings.insert(
                    0,
                    Finding::TtlWalkRstBehindTarget {
                        target,
                        port,
                        target_hops: HopCount(before),
                        rst_hops: HopCount(h),
                    },
                );
                j.verdict = if by_rule {
                    Verdict::FirewallRst
                } else {
                    Verdict::Closed
                };
                j.confidence = Confidence::High;
                j.target_hops = Some(HopCount(before));
                j.rejecter = Some(Rejecter {
                    addr: target,
                    hops: Some(HopCount(h)),
                    is_target: false,
                    kind: RejecterKind::Backend,
                });
                j.cause = Cause::ForwardedBackendRefused { by_rule };
                j.advice = vec![
                    Advice::FindForwardedBackend,
                    Advice::InsideBackend,
                    Advice::BackendEndpoints,
                ];
            }
            (before, here) => {
                let mut steps = Vec::new();
                if h >= 2 {
                    steps.push(walk_step(h - 1, before));
                }
                steps.push(walk_step(h, here));
                if walk.is_empty() {
                    return;
                }
                j.findings.push(Finding::TtlWalk {
                    steps,
                    rst_hops: HopCount(h),
                });
                // Forged closer than the host, but the router at that hop did not answer: name it if another
                // probe of the address met it, else say what is missing.
                let forged_closer = j.verdict == Verdict::FirewallRst
                    && j.rejecter
                        .is_some_and(|r| !r.is_target && r.kind != RejecterKind::Backend);
                if forged_closer && here.is_none() {
                    match self.hop_addr(h) {
                        Some(addr) if addr != target => {
                            j.rejecter = Some(Rejecter {
                                addr,
                                hops: Some(HopCount(h)),
                                is_target: false,
                                kind: RejecterKind::Router,
                            });
                            j.findings.push(Finding::HopNamedByOtherProbe {
                                target,
                                addr,
                                hops: HopCount(h),
                            });
                            j.confidence = j.confidence.min(Confidence::Medium);
                        }
                        _ => {
                            j.findings
                                .push(Finding::RejecterUnnamed { hops: HopCount(h) });
                            j.confidence = j.confidence.min(Confidence::Medium);
                        }
                    }
                }
            }
        }
    }

    /// A silent port: after which hop its SYNs vanish.
    fn locate_silence(&self, walk: &[(u8, Option<Answer>)], j: &mut Judgement) {
        if walk.is_empty() {
            return;
        }
        let steps: Vec<WalkStep> = walk.iter().map(|&(t, a)| walk_step(t, a)).collect();
        let target_hops = self.target_hops();
        let last = walk
            .iter()
            .filter_map(|&(t, a)| match a {
                Some(Answer::TimeExceeded { from }) => Some((t, from)),
                _ => None,
            })
            .max_by_key(|(t, _)| *t);
        let target = self.target;
        match last {
            Some((r, addr)) => {
                let next = r + 1;
                let at_target = target_hops.is_some_and(|h| next >= h);
                let next_answers = self.hop_ever_answered(next);
                let (dropped, confident) = if at_target {
                    (DropPoint::Target, true)
                } else if next_answers {
                    (DropPoint::AfterHop, true)
                } else {
                    (DropPoint::Unknown, false)
                };
                j.findings.insert(
                    0,
                    Finding::TtlWalkSilence {
                        steps,
                        last_router: Some(addr),
                        last_hops: Some(HopCount(r)),
                        dropped,
                    },
                );
                j.cause = Cause::DroppedAfterHop {
                    router: addr,
                    hops: HopCount(r),
                    dropped,
                };
                if confident && target_hops.is_some() && j.confidence < Confidence::High {
                    j.confidence = Confidence::High;
                }
                if !confident {
                    j.confidence = j.confidence.min(Confidence::Medium);
                }
            }
            None => j.findings.push(Finding::TtlWalkSilence {
                steps,
                last_router: None,
                last_hops: None,
                dropped: DropPoint::Unknown,
            }),
        }
        if let Some(h) = target_hops {
            j.target_hops = Some(HopCount(h));
            if !j.has("host-answers-elsewhere") {
                j.findings.push(Finding::EchoAnswered {
                    target,
                    hops: HopCount(h),
                });
            }
        }
    }
}

/// Judge a live plan's frames with the engine as a replay would (live analysis: a route error concerns every
/// port of its address), waiting `waited` (at least 1 ms) after `end` for late answers: each attempt's report
/// is handed to `each` as it is judged.
pub(crate) fn judge_live(
    frames: &[Observed],
    end: Timestamp,
    waited: Duration,
    mut each: impl FnMut(Report),
) {
    let waited = waited.max(Duration(1_000_000));
    let mut engine = Engine::with_valid(EngineConfig {
        matcher: MatchConfig {
            timeout: waited,
            follow_retransmissions: false,
            ..MatchConfig::default()
        },
        analyzer: AnalyzerConfig {
            live: true,
            ..AnalyzerConfig::default()
        },
    });
    for f in frames {
        engine.push_observed(*f);
    }
    engine.advance(end.plus(waited).plus(Duration(1)));
    engine.finish();
    while let Some(r) = engine.pop_report() {
        each(r);
    }
}

/// One SYN of the TTL walk as a finding shows it (an echo reply, which no SYN draws, as silence).
fn walk_step(ttl: u8, answer: Option<Answer>) -> WalkStep {
    let (answer, from) = match answer {
        Some(Answer::TimeExceeded { from }) => (WalkAnswer::TimeExceeded, Some(from)),
        Some(Answer::Unreachable { from, .. }) => (WalkAnswer::Unreachable, Some(from)),
        Some(Answer::Rst { .. }) => (WalkAnswer::Rst, None),
        Some(Answer::SynAck) => (WalkAnswer::SynAck, None),
        _ => (WalkAnswer::Silence, None),
    };
    WalkStep { ttl, answer, from }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::Explain;

    fn headline(r: &TargetReport) -> String {
        Explain::of_target(r).headline(&r.judgement)
    }

    fn next_steps(r: &TargetReport) -> Vec<String> {
        Explain::of_target(r).next_steps(&r.judgement)
    }
    use super::testnet::*;

    fn run_net(ports: &[u16], mut net: Net, cfg: SessionConfig) -> Vec<TargetReport> {
        let s = Session::new(a(TARGET), ports, a(CLIENT), cfg, 40000, 7).expect("valid settings");
        simulate(s, move |t, o| net.respond(t, o))
    }

    fn run(port: u16, hops: u8, rule: Rule, cfg: SessionConfig) -> TargetReport {
        let net = Net::new(hops).rule(port, rule);
        run_net(&[port], net, cfg).remove(0)
    }

    fn rejecter(r: &TargetReport) -> (IpAddr, Option<HopCount>, bool, RejecterKind) {
        let j = r
            .judgement
            .rejecter
            .unwrap_or_else(|| panic!("a rejecter: {r:#?}"));
        (j.addr, j.hops, j.is_target, j.kind)
    }

    #[test]
    fn open_port() {
        let r = run(80, 4, Rule::None, SessionConfig::default());
        assert_eq!(
            (r.judgement.verdict, r.judgement.confidence),
            (Verdict::Open, Confidence::High)
        );
        assert_eq!(r.judgement.target_hops, Some(HopCount(4)));
        assert!(r.path.is_empty(), "no walk for an open port");
        assert!(r.packets.iter().any(|p| p.summary.contains("[SYN, ACK]")));
    }

    #[test]
    fn the_main_syn_goes_first() {
        let s = Session::new(
            a(TARGET),
            &[81, 82],
            a(CLIENT),
            SessionConfig::default(),
            40000,
            7,
        )
        .expect("valid settings");
        let mut s = s;
        let (out, _) = s.poll(Timestamp(1));
        let purposes: Vec<Purpose> = out.iter().map(|o| o.purpose).collect();
        assert_eq!(
            purposes,
            vec![
                Purpose::Main,
                Purpose::Main,
                Purpose::Echo,
                Purpose::Baseline(1)
            ]
        );
    }

    #[test]
    fn closed_port_is_the_hosts_stack_with_high_confidence() {
        let r = run(81, 4, Rule::None, SessionConfig::default());
        assert_eq!(
            (r.judgement.verdict, r.judgement.confidence),
            (Verdict::Closed, Confidence::High),
            "{:#?}",
            r.judgement.findings
        );
        assert_eq!(
            rejecter(&r),
            (a(TARGET), Some(HopCount(4)), true, RejecterKind::Target)
        );
        assert_eq!(r.judgement.target_hops, Some(HopCount(4)));
    }

    #[test]
    fn a_routers_forged_rst_is_named_by_the_ttl_walk() {
        let r = run(81, 4, Rule::RejectRstAtRouter(2), SessionConfig::default());
        assert_eq!(
            (r.judgement.verdict, r.judgement.confidence),
            (Verdict::FirewallRst, Confidence::High),
            "{:#?}",
            r.judgement.findings
        );
        assert_eq!(
            rejecter(&r),
            (router(2), Some(HopCount(2)), false, RejecterKind::Router)
        );
        assert_eq!(r.judgement.target_hops, Some(HopCount(4)));
        assert_eq!(r.judgement.findings[0].code(), "ttl-walk-rst-at-router");
        assert_eq!(
            r.path.iter().find(|h| h.ttl == 2).and_then(|h| h.addr),
            Some(router(2))
        );
    }

    /// A live run's record in schema 2: the same judgement as data, the sentences only with `--explain`, and
    /// a live run's words (no suggestion to run live).
    #[test]
    fn a_probe_record_in_schema_2() {
        let r = run(81, 4, Rule::RejectRstAtRouter(2), SessionConfig::default());
        let plain =
            serde_json::to_value(crate::record::ProbeRecord::new(&r, false)).expect("serializes");
        assert_eq!(plain["schema_version"], 2);
        assert_eq!(plain["type"], "probe");
        assert_eq!(plain["verdict"], "firewall-rst");
        assert_eq!(plain["target_hops"], 4);
        assert_eq!(
            plain["evidence"][0],
            serde_json::json!({"code": "ttl-walk-rst-at-router", "router": router(2), "hops": 2})
        );
        assert!(plain.get("headline").is_none() && plain.get("next_steps").is_none());
        assert!(!plain.to_string().contains("\"observed\""));
        let explained =
            serde_json::to_value(crate::record::ProbeRecord::new(&r, true)).expect("serializes");
        assert_eq!(explained["headline"], headline(&r));
        assert_eq!(
            explained["next_steps"],
            serde_json::to_value(next_steps(&r)).expect("serializes")
        );
        assert!(explained["evidence"][0]["implies"]
            .as_str()
            .is_some_and(|s| s.contains("answers with a forged RST")));
        assert!(!explained.to_string().contains("sudo synprobe"));
    }

    #[test]
    fn a_forged_rst_at_the_first_hop_names_the_first_router() {
        let r = run(81, 4, Rule::RejectRstAtRouter(1), SessionConfig::default());
        assert_eq!(
            r.judgement.verdict,
            Verdict::FirewallRst,
            "{:#?}",
            r.judgement.findings
        );
        assert_eq!(
            rejecter(&r),
            (router(1), Some(HopCount(1)), false, RejecterKind::Router)
        );
    }

    #[test]
    fn a_reject_rule_on_the_host_is_told_from_its_stack_by_the_tos_echo() {
        let r = run(81, 4, Rule::RejectRstOnHost, SessionConfig::default());
        assert_eq!(
            r.judgement.verdict,
            Verdict::FirewallRst,
            "{:#?}",
            r.judgement.findings
        );
        assert_eq!(
            rejecter(&r),
            (a(TARGET), Some(HopCount(4)), true, RejecterKind::Target)
        );
        assert_eq!(r.judgement.target_hops, Some(HopCount(4)));
    }

    #[test]
    fn a_backend_behind_a_port_forward_is_its_own_rejecter() {
        let r = run(8080, 3, Rule::ForwardedClosed, SessionConfig::default());
        assert_eq!(
            (r.judgement.verdict, r.judgement.confidence),
            (Verdict::Closed, Confidence::High),
            "{:#?}",
            r.judgement.findings
        );
        assert_eq!(
            rejecter(&r),
            (a(TARGET), Some(HopCount(4)), false, RejecterKind::Backend)
        );
        assert_eq!(r.judgement.target_hops, Some(HopCount(3)));
        assert_eq!(r.judgement.findings[0].code(), "ttl-walk-rst-behind-target");
        assert!(next_steps(&r).iter().any(|s| s.contains("docker port")));
    }

    #[test]
    fn a_drop_at_a_router_is_located_by_the_walk() {
        let r = run(81, 4, Rule::DropAtRouter(2), SessionConfig::default());
        assert_eq!(
            (r.judgement.verdict, r.judgement.confidence),
            (Verdict::Filtered, Confidence::High),
            "{:#?}",
            r.judgement.findings
        );
        assert!(headline(&r).contains("after hop 2"), "{}", headline(&r));
        assert_eq!(r.judgement.target_hops, Some(HopCount(4)));
        assert!(r.judgement.rejecter.is_none());
        let mains = r
            .packets
            .iter()
            .filter(|p| p.summary.contains("→ 81 [SYN]") && p.ttl == 64)
            .count();
        assert!(mains >= 3, "the main SYN and two retransmissions: {mains}");
        // The SYNs never reach the last router: no neighbour resolution to wait for.
        let took = r.time_to_verdict.as_secs_f64();
        assert!(
            took < 3.0,
            "no 3.5 s neighbour wait for an early drop: {took} s"
        );
    }

    #[test]
    fn a_drop_at_the_target_waits_for_a_late_host_unreachable() {
        let r = run(81, 4, Rule::DropOnHost, SessionConfig::default());
        assert_eq!(r.judgement.verdict, Verdict::Filtered);
        let took = r.time_to_verdict.as_secs_f64();
        assert!(
            took >= 3.5,
            "the last router may still be resolving ARP: {took} s"
        );
    }

    #[test]
    fn a_drop_on_the_host_behind_a_router_that_sends_no_time_exceeded() {
        let mut net = Net::new(4).rule(81, Rule::DropOnHost);
        net.silent.push(2);
        let r = run_net(&[81], net, SessionConfig::default()).remove(0);
        assert_eq!(
            r.judgement.verdict,
            Verdict::Filtered,
            "{:#?}",
            r.judgement.findings
        );
        assert!(headline(&r).contains("after hop 3"), "{}", headline(&r));
        assert!(
            r.judgement
                .findings
                .iter()
                .any(|e| e.code() == "walk-hop-silent"),
            "{:#?}",
            r.judgement.findings
        );
    }

    #[test]
    fn icmp_admin_prohibited_names_the_router() {
        let r = run(81, 4, Rule::IcmpAdminAtRouter(1), SessionConfig::default());
        assert_eq!(r.judgement.verdict, Verdict::IcmpRejected);
        let (addr, hops, is_target, _) = rejecter(&r);
        assert_eq!(
            (addr, hops, is_target),
            (router(1), Some(HopCount(1)), false)
        );
    }

    #[test]
    fn a_route_error_applies_to_every_port_despite_the_rate_limit() {
        let mut net = Net::new(4);
        net.route_error_at = Some(2);
        let ports = [22, 80, 443, 8080, 8443];
        let reports = run_net(&ports, net, SessionConfig::default());
        assert_eq!(reports.len(), 5);
        for r in &reports {
            assert_eq!(
                r.judgement.verdict,
                Verdict::Unreachable,
                "{}: {:#?}",
                r.port,
                r.judgement.findings
            );
            let (addr, hops, is_target, kind) = rejecter(r);
            assert_eq!(
                (addr, hops, is_target, kind),
                (router(2), Some(HopCount(2)), false, RejecterKind::Router),
                "{}",
                r.port
            );
            assert!(r.path.is_empty(), "no walk towards an unreachable address");
        }
        // A burst of 6 tokens, 2 per route error: three ports had their own answers, two inherited it.
        let inherited = reports
            .iter()
            .filter(|r| r.judgement.findings[0].code() == "route-error-for-address")
            .count();
        assert_eq!(inherited, 2, "{reports:#?}");
        let slowest = reports
            .iter()
            .map(|r| r.time_to_verdict.as_millis_f64())
            .fold(0.0, f64::max);
        let times: Vec<f64> = reports
            .iter()
            .map(|r| r.time_to_verdict.as_millis_f64())
            .collect();
        assert!(
            slowest < 1_000.0,
            "no waiting on silence once the error is known: {times:?} ms"
        );
    }

    #[test]
    fn walks_of_many_ports_are_paced_to_the_routers_buckets() {
        let mut net = Net::new(4);
        for p in 81..=88 {
            net.rules.push((p, Rule::DropAtRouter(3)));
        }
        let ports: Vec<u16> = (81..=88).collect();
        let reports = run_net(&ports, net, SessionConfig::default());
        for r in &reports {
            assert_eq!(r.judgement.verdict, Verdict::Filtered);
            assert!(
                headline(r).contains("after hop 3"),
                "{}: {} {:#?}",
                r.port,
                headline(r),
                r.path
            );
        }
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
            r.judgement.verdict,
            Verdict::Closed,
            "one RST with nothing to compare: closed, low"
        );
        assert_eq!(r.judgement.confidence, Confidence::Low);
    }

    #[test]
    fn the_budget_caps_what_is_sent() {
        let cfg = SessionConfig {
            budget: 2,
            ..SessionConfig::default()
        };
        let r = run(81, 10, Rule::RejectRstAtRouter(6), cfg);
        assert!(r.probes_sent <= 4, "{}", r.probes_sent);
        assert!(r.judgement.findings.iter().any(|e| e.code() == "budget"));
    }
}
