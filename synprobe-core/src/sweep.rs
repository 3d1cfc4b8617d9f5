//! A sweep: every port of a range on one address, as fast as a scanner and judged like a [`Session`].
//!
//! A [`Session`] spends half a dozen packets on each port (a TOS-marked SYN, a bad checksum, TTL-limited SYNs
//! paced by the routers' ICMP buckets): right for "why is 443 refused?", far too slow for 65,535 ports. A sweep
//! answers "which ports of this host are refused, and by whom?" in three steps:
//!
//! 1. **A stateless first pass.** One SYN per port, its ISN a keyed SipHash of its four-tuple (as masscan does),
//!    so an answer is validated by recomputing the hash (an RST or SYN-ACK must acknowledge ISN + 1, an ICMP
//!    error must quote the ISN): nothing is kept per probe, and off-path junk is refused. The SYNs carry the
//!    plan's TOS, so every RST shows at once whether it echoes it (a host's own stack does, netfilter's REJECT
//!    does not). Pacing is a congestion window, as nmap's: it grows with answers, halves when a retransmission
//!    is answered (the first SYN or its answer was lost); [`SweepConfig::max_pps`] caps it. Silent ports are
//!    sent again ([`SessionConfig::retries`]), each try from its own source port.
//! 2. **Kinds of answer.** Ports are grouped by what answered them: SYN-ACKs and ICMP errors speak for
//!    themselves (the error names its sender); RSTs by their sender's distance and TOS behaviour; silent ports
//!    by runs of neighbouring ports (firewall rules cover ranges).
//! 3. **Deeper steps, shared.** One [`Session`] probes a representative of each kind: the lowest port of each
//!    RST kind, the first and last port of each silent run. It locates the RST's sender (a router names
//!    itself, a backend behind a port forward shows itself one hop beyond the target), walks the path of the
//!    silent ones (asking again past the routers' ICMP rate limits, which also turns up ICMP rejections the
//!    first pass lost to them), all paced by its model of the routers' buckets. Every port of a kind takes its
//!    representative's judgement, with a [`Finding::SweepSameAs`] naming it.
//!
//! With [`SessionConfig::quick`] the first pass is all: each port is judged on its own answers and those of
//! the other ports (distances, TOS echo), as a scanner would, without naming forging routers or backends.
//!
//! Memory is a few bytes per port plus the frames of the first pass, bounded by the 65,535 ports of an address.

use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher13;

use crate::build::{IpSpec, TcpSpec};
use crate::error::{check, ConfigError};
use crate::findings::{Finding, TtlReading};
use crate::matcher::is_route_wide;
use crate::model::{HopCount, Observed};
use crate::session::{Outgoing, Plan, Purpose, Session, SessionConfig, TargetReport};
use crate::time::{Duration, Timestamp};
use crate::trace::packet_records;
use crate::verdict::{Confidence, Judgement, Verdict};
use crate::wire::{IcmpErrorKind, TcpFlags, Transport};

/// An address with more ports than this is swept ([`Sweep`]); fewer get a [`Session`] each port.
pub const SWEEP_FROM_PORTS: usize = 16;

/// Whether `ports` ports of one address are a sweep rather than a deep session.
pub fn is_sweep(ports: usize) -> bool {
    ports > SWEEP_FROM_PORTS
}

/// Settings of a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepConfig {
    /// The deep plan of the representatives; its `retries`, `tos`, `ttl` and round-trip bounds also shape the
    /// first pass.
    pub session: SessionConfig,
    /// SYNs of the first pass in flight at the start (default 64); the window grows with answers.
    pub initial_window: u32,
    /// The most SYNs in flight (default 8,192).
    pub max_window: u32,
    /// Packets per second at most for the first pass (default 100,000).
    pub max_pps: u32,
    /// Representatives probed deeply at most (default 32): kinds beyond are judged on the first pass alone.
    pub max_deep: usize,
    /// Fill each report's `packets` (default true); a report of the groups alone does without, and a
    /// 1-65535 sweep's reports take a third of the time.
    pub packets: bool,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            session: SessionConfig {
                min_rto: Duration::from_millis(100),
                ..SessionConfig::default()
            },
            initial_window: 64,
            max_window: 8192,
            max_pps: 100_000,
            max_deep: 32,
            packets: true,
        }
    }
}

impl SweepConfig {
    /// Check the settings: the session's, and every count at least 1, `initial_window` not above `max_window`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.session.validate()?;
        check::at_least_one("sweep.initial_window", self.initial_window)?;
        check::at_least_one("sweep.max_window", self.max_window)?;
        check::at_least_one("sweep.max_pps", self.max_pps)?;
        check::at_least_one("sweep.max_deep", self.max_deep as u32)?;
        if self.initial_window > self.max_window {
            return Err(ConfigError::Inverted {
                low: "sweep.initial_window",
                low_value: Duration(i64::from(self.initial_window)),
                high: "sweep.max_window",
                high_value: Duration(i64::from(self.max_window)),
            });
        }
        Ok(())
    }

    /// Source ports of the first pass: one per try, the extra tries a lossy path earns included.
    fn tries(&self) -> u32 {
        self.session.retries + 1 + EXTRA_TRIES_ON_LOSS
    }
}

/// Tries a silent port gets beyond `retries + 1` once the path is seen to lose packets (a retransmission was
/// answered), as nmap raises its retries when it sees drops.
const EXTRA_TRIES_ON_LOSS: u32 = 3;

/// Source ports one sweep needs (give each concurrent plan its own range): one per try of the first pass, and
/// the two deep sessions' (see [`Sweep`]).
pub fn source_ports_needed(cfg: &SweepConfig) -> u32 {
    cfg.tries() + 2 * deep_span(cfg)
}

fn deep_span(cfg: &SweepConfig) -> u32 {
    crate::session::source_ports_needed(cfg.max_deep, &cfg.session)
}

/// What first answered a port's SYN in the first pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    SynAck,
    Rst {
        hops: u8,
        tos_echoed: bool,
    },
    Icmp {
        from: IpAddr,
    },
    /// An ICMP routing error about the whole address.
    RouteError,
}

#[derive(Debug, Clone, Copy)]
struct PortState {
    port: u16,
    /// SYNs sent (tries).
    tries: u8,
    /// Whether the latest try is in flight (counted in the window).
    in_flight: bool,
    /// When the latest try was handed out.
    sent_at: Timestamp,
    answer: Option<First>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    FirstPass,
    Deep,
    Done,
}

/// What the first pass's judging keeps of a port's chosen attempt.
struct Pick {
    judgement: Judgement,
    packets: Vec<crate::trace::PacketRecord>,
    answered: bool,
    try_: u8,
}

/// The kind of a port, for sharing the deeper steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Rst {
        hops: u8,
        tos_echoed: bool,
    },
    /// A run of neighbouring silent ports, by its first port.
    Silent {
        first: u16,
    },
}

/// A sweep of many ports of one address. See the module documentation.
pub struct Sweep {
    target: IpAddr,
    source: IpAddr,
    host: Option<String>,
    local: bool,
    cfg: SweepConfig,
    key: (u64, u64),
    sport_base: u16,
    seed: u64,
    ports: Vec<PortState>,
    /// First-pass order: position `i` sends port index `(i * step + offset) % n`.
    step: usize,
    offset: usize,
    next: usize,
    retry: VecDeque<u32>,
    /// (deadline, port index, try) in send order.
    in_flight: VecDeque<(Timestamp, u32, u8)>,
    outstanding: u32,
    cwnd: f64,
    ssthresh: f64,
    /// Retransmissions that were answered: the path lost their first tries (or the answers).
    drops: u32,
    last_cut: Timestamp,
    srtt: Option<Duration>,
    rttvar: Duration,
    tokens: f64,
    tokens_at: Timestamp,
    frames: Vec<Observed>,
    route_error: bool,
    /// ICMP errors per sender in the first pass (a sender that spent its burst rate-limits the rest).
    icmp_from: HashMap<IpAddr, u32>,
    /// When each ICMP error of the first pass came, and from how far (the deep session's bucket model).
    icmp_spent: Vec<(u8, Timestamp)>,
    phase: Phase,
    /// The deeper steps: one session for the representatives, another (paced by ICMP rate limits) for silent
    /// runs beside the rejections of a sender that spent its ICMP burst.
    deep: Vec<Session>,
    /// The deep sessions' packets, released at the pace the first pass found the path takes.
    deep_queue: VecDeque<Outgoing>,
    /// Representative of each kind, and the kind of each port that has one.
    reps: HashMap<Kind, Vec<u16>>,
    kind_of: HashMap<u16, Kind>,
    t0: Option<Timestamp>,
    last_poll: Timestamp,
    done_at: Option<Timestamp>,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Sweep {
    /// A sweep of `ports` of `target` from `source`. Source ports are taken from `sport_base` upwards,
    /// [`source_ports_needed`] of them; `seed` keys the ISN hash and orders the ports. Refuses settings
    /// [`SweepConfig::validate`] refuses.
    pub fn new(
        target: IpAddr,
        ports: &[u16],
        source: IpAddr,
        cfg: SweepConfig,
        sport_base: u16,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let mut sorted: Vec<u16> = ports.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let n = sorted.len().max(1);
        // A step coprime with n visits every port once, in an order that spreads neighbours apart.
        let mut step = (n as f64 * 0.618_033_99) as usize | 1;
        while gcd(step, n) != 1 {
            step += 1;
        }
        let mut mix = SipHasher13::new_with_keys(seed, !seed);
        mix.write_u64(0x5eed);
        let k0 = mix.finish();
        mix.write_u64(k0);
        let k1 = mix.finish();
        Ok(Sweep {
            target,
            source,
            host: None,
            local: false,
            cwnd: f64::from(cfg.initial_window),
            ssthresh: f64::from(cfg.max_window.min(1024)),
            drops: 0,
            tokens: f64::from(cfg.max_pps.min(1000)),
            cfg,
            key: (k0, k1),
            sport_base,
            seed,
            ports: sorted
                .iter()
                .map(|&port| PortState {
                    port,
                    tries: 0,
                    in_flight: false,
                    sent_at: Timestamp::default(),
                    answer: None,
                })
                .collect(),
            step,
            offset: (k1 as usize) % n,
            next: 0,
            retry: VecDeque::new(),
            in_flight: VecDeque::new(),
            outstanding: 0,
            last_cut: Timestamp(i64::MIN),
            srtt: None,
            rttvar: Duration(0),
            tokens_at: Timestamp(i64::MIN),
            frames: Vec::new(),
            route_error: false,
            icmp_from: HashMap::new(),
            icmp_spent: Vec::new(),
            phase: Phase::FirstPass,
            deep: Vec::new(),
            deep_queue: VecDeque::new(),
            reps: HashMap::new(),
            kind_of: HashMap::new(),
            t0: None,
            last_poll: Timestamp::default(),
            done_at: None,
        })
    }

    /// Remember the host name the user gave (for the reports).
    pub fn with_host(mut self, host: Option<String>) -> Self {
        self.host = host;
        self
    }

    /// The target is an address of this host (see [`Session::local`]): the deeper steps send no TTL-limited
    /// SYN.
    pub fn local(mut self, local: bool) -> Self {
        self.local = local;
        self
    }

    /// The ports swept, ascending.
    pub fn ports(&self) -> Vec<u16> {
        self.ports.iter().map(|p| p.port).collect()
    }

    /// The ports probed deeply, one or two per kind of answer (known once the first pass is over).
    pub fn representatives(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.reps.values().flatten().copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Source ports (tries) reserved for the first pass.
    fn tries(&self) -> u32 {
        self.cfg.tries()
    }

    /// Tries a silent port gets now: `retries + 1`, more once the path has shown it loses packets.
    fn tries_allowed(&self) -> u32 {
        let base = self.cfg.session.retries + 1;
        if self.drops > 0 {
            base + EXTRA_TRIES_ON_LOSS
        } else {
            base
        }
    }

    /// The ISN of the SYN from source port `sport` to `dport`: a keyed hash of the four-tuple.
    fn isn(&self, sport: u16, dport: u16) -> u32 {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        for addr in [self.source, self.target] {
            match addr {
                IpAddr::V4(a) => h.write(&a.octets()),
                IpAddr::V6(a) => h.write(&a.octets()),
            }
        }
        h.write_u16(sport);
        h.write_u16(dport);
        h.finish() as u32
    }

    /// The try a source port of the first pass stands for.
    fn try_of(&self, sport: u16) -> Option<u8> {
        let t = u32::from(sport.checked_sub(self.sport_base)?);
        (t < self.tries()).then_some(t as u8)
    }

    fn index_of(&self, port: u16) -> Option<usize> {
        self.ports.binary_search_by_key(&port, |p| p.port).ok()
    }

    fn rto(&self) -> Duration {
        let s = &self.cfg.session;
        match self.srtt {
            Some(r) => Duration((r.0 + 4 * self.rttvar.0).clamp(s.min_rto.0, s.max_rto.0)),
            None => Duration::from_millis(1000).clamp(s.min_rto, s.max_rto),
        }
    }

    fn syn(&self, port: u16, try_: u8) -> Option<Outgoing> {
        let sport = self.sport_base.wrapping_add(u16::from(try_));
        let isn = self.isn(sport, port);
        let s = &self.cfg.session;
        let ip = IpSpec::new(self.source, self.target)
            .ttl(s.ttl)
            .tos(s.tos)
            .ident((isn >> 16) as u16);
        let datagram = TcpSpec::syn(sport, port, isn)
            .linux_options()
            .emit(&ip)
            .ok()?;
        Some(Outgoing {
            datagram,
            dst: self.target,
            ttl: s.ttl,
            tos: s.tos,
            purpose: Purpose::Main,
        })
    }

    fn send(&mut self, idx: u32, now: Timestamp, out: &mut Vec<Outgoing>) {
        let p = self.ports[idx as usize];
        let try_ = p.tries;
        if let Some(o) = self.syn(p.port, try_) {
            out.push(o);
        }
        let rto = self.rto();
        let st = &mut self.ports[idx as usize];
        st.tries += 1;
        st.in_flight = true;
        st.sent_at = now;
        self.outstanding += 1;
        self.in_flight.push_back((now.plus(rto), idx, try_));
    }

    fn first_pass(&mut self, now: Timestamp, out: &mut Vec<Outgoing>) {
        // Unanswered SYNs whose time is up leave the window; silent ports are tried again.
        let allowed = self.tries_allowed();
        while let Some(&(deadline, idx, try_)) = self.in_flight.front() {
            if deadline > now {
                break;
            }
            self.in_flight.pop_front();
            let st = &mut self.ports[idx as usize];
            if st.in_flight && st.tries == try_ + 1 {
                st.in_flight = false;
                self.outstanding -= 1;
                if st.answer.is_none() && u32::from(st.tries) < allowed && !self.route_error {
                    self.retry.push_back(idx);
                }
            }
        }
        // The rate cap, as a bucket of 10 ms worth of packets.
        let per_sec = f64::from(self.cfg.max_pps);
        let cap = (per_sec / 100.0).max(1.0);
        if self.tokens_at != Timestamp(i64::MIN) {
            self.tokens += now.since(self.tokens_at).as_secs_f64().max(0.0) * per_sec;
        }
        self.tokens = self.tokens.min(cap);
        self.tokens_at = now;
        let n = self.ports.len();
        while (f64::from(self.outstanding) + 1.0) <= self.cwnd.max(1.0) && self.tokens >= 1.0 {
            let idx = if let Some(i) = self.retry.pop_front() {
                i
            } else if self.next < n && !self.route_error {
                let i = (self.next * self.step + self.offset) % n;
                self.next += 1;
                i as u32
            } else {
                break;
            };
            self.send(idx, now, out);
            self.tokens -= 1.0;
        }
        if self.route_error {
            self.retry.clear();
        }
    }

    /// Whether the first pass is over: every port sent, no try in flight or waiting.
    fn first_pass_over(&self) -> bool {
        (self.next >= self.ports.len() || self.route_error)
            && self.retry.is_empty()
            && self.outstanding == 0
    }

    /// Group the ports by kind and start the deep session on the representatives.
    fn start_deep(&mut self) {
        // `quick`: the first pass alone, as a scanner.
        if self.route_error || self.cfg.session.quick {
            return;
        }
        let mut kinds: Vec<(Kind, Vec<u16>)> = Vec::new();
        let mut rst_kind: HashMap<Kind, usize> = HashMap::new();
        let mut run: Option<(u16, u16)> = None;
        let mut runs: Vec<(u16, u16)> = Vec::new();
        for p in &self.ports {
            match p.answer {
                Some(First::Rst { hops, tos_echoed }) => {
                    let k = Kind::Rst { hops, tos_echoed };
                    match rst_kind.get(&k) {
                        Some(&i) => kinds[i].1.push(p.port),
                        None => {
                            rst_kind.insert(k, kinds.len());
                            kinds.push((k, vec![p.port]));
                        }
                    }
                }
                None => {
                    run = Some(match run {
                        Some((first, _)) => (first, p.port),
                        None => (p.port, p.port),
                    });
                    continue;
                }
                _ => {}
            }
            if let Some(r) = run.take() {
                runs.push(r);
            }
        }
        runs.extend(run);
        let mut reps: Vec<u16> = Vec::new();
        for (k, members) in &kinds {
            let rep = members[0];
            self.reps.insert(*k, vec![rep]);
            for &m in members {
                self.kind_of.insert(m, *k);
            }
            reps.push(rep);
        }
        // Larger silent runs first: when there are more kinds than representatives, the most ports are covered.
        runs.sort_by_key(|(a, b)| std::cmp::Reverse(b - a));
        for (first, last) in runs {
            let k = Kind::Silent { first };
            let ends = if first == last {
                vec![first]
            } else {
                vec![first, last]
            };
            if reps.len() + ends.len() > self.cfg.max_deep {
                continue;
            }
            reps.extend(&ends);
            self.reps.insert(k, ends);
            let (lo, hi) = (self.index_of(first), self.index_of(last));
            if let (Some(lo), Some(hi)) = (lo, hi) {
                for p in &self.ports[lo..=hi] {
                    self.kind_of.insert(p.port, k);
                }
            }
        }
        // Kinds past the cap keep their first-pass judgement.
        reps.truncate(self.cfg.max_deep);
        if reps.is_empty() {
            return;
        }
        let mut cfg = self.cfg.session.clone();
        // The representatives share the routers' ICMP tokens: no TTL-limited SYN that cannot tell more.
        cfg.economical_walks = true;
        // The address answered: its neighbour entry is resolved, no router is still asking ARP for it.
        if self.ports.iter().any(|p| p.answer.is_some()) {
            cfg.first_answer_wait = Duration(1);
        }
        // A sender that spent its ICMP burst on the first pass answers about once per `icmp_interval`: a silent
        // run beside its rejections may be more of them, so its representatives go to a session that sends its
        // SYNs again only as fast as that bucket refills. The others need no more tries: the first pass made
        // them.
        let limited: Vec<IpAddr> = self
            .icmp_from
            .iter()
            .filter(|(_, &n)| n >= cfg.icmp_burst)
            .map(|(a, _)| *a)
            .collect();
        let (slow, fast): (Vec<u16>, Vec<u16>) = reps
            .iter()
            .partition(|&&p| self.beside_limited_rejections(p, &limited));
        let mut fast_cfg = cfg.clone();
        fast_cfg.retries = 0;
        fast_cfg.confirm_silent_hops = false;
        // Everything the sweep drew from the routers is charged to the model, and these representatives'
        // answers are known: one token of Linux's burst of 6 is left for the unexpected.
        fast_cfg.icmp_burst = fast_cfg.icmp_burst.max(5);
        let mut slow_cfg = cfg;
        slow_cfg.backoff = false;
        // One token a second, shared by these representatives and the other session's walks.
        slow_cfg.retries = slow_cfg.retries.max(slow.len() as u32 + 2);
        let wait = Duration(slow_cfg.icmp_interval.0 + 100_000_000);
        slow_cfg.min_rto = slow_cfg.min_rto.max(wait);
        slow_cfg.max_rto = slow_cfg.max_rto.max(wait);
        let base = u32::from(self.sport_base) + self.tries();
        for (i, (ports, cfg)) in [(fast, fast_cfg), (slow, slow_cfg)].into_iter().enumerate() {
            if ports.is_empty() {
                continue;
            }
            let from = (base + i as u32 * deep_span(&self.cfg)) as u16;
            let seed = self.seed ^ (0xdee9 + i as u64);
            if let Ok(mut s) = Session::new(self.target, &ports, self.source, cfg, from, seed) {
                for &(hop, at) in &self.icmp_spent {
                    s.note_icmp_spent(hop, at);
                }
                // The SYN-ACKs of a few open ports (with their SYNs) tell the deep engine the host's
                // distance, as they told the first pass's.
                for f in self.context_frames() {
                    s.note_context(&f);
                }
                self.deep
                    .push(s.with_host(self.host.clone()).local(self.local));
            }
        }
    }

    /// Hand out the deep sessions' packets no faster than the first pass's window per round trip (a path that
    /// lost a burst of SYNs loses a burst of discriminators too).
    fn release_deep(&mut self, now: Timestamp, out: &mut Vec<Outgoing>) {
        let rtt = self
            .srtt
            .unwrap_or(Duration::from_millis(100))
            .max(Duration(100_000));
        let per_sec = (self.cwnd / rtt.as_secs_f64()).min(f64::from(self.cfg.max_pps));
        let cap = self.cwnd.max(4.0);
        if self.tokens_at != Timestamp(i64::MIN) {
            self.tokens += now.since(self.tokens_at).as_secs_f64().max(0.0) * per_sec;
        }
        self.tokens = self.tokens.min(cap);
        self.tokens_at = now;
        while self.tokens >= 1.0 {
            let Some(p) = self.deep_queue.pop_front() else {
                break;
            };
            out.push(p);
            self.tokens -= 1.0;
        }
    }

    /// The first-pass frames of up to 8 ports that answered SYN-ACK: their SYNs and answers.
    fn context_frames(&self) -> Vec<Observed> {
        let open: Vec<u16> = self
            .ports
            .iter()
            .filter(|p| p.answer == Some(First::SynAck))
            .take(8)
            .map(|p| p.port)
            .collect();
        if open.is_empty() {
            return Vec::new();
        }
        self.frames
            .iter()
            .filter(|f| match &f.packet.transport {
                Transport::Tcp(t) => open.contains(&t.dst_port) || open.contains(&t.src_port),
                _ => false,
            })
            .copied()
            .collect()
    }

    /// Whether the silent run of representative `port` borders (in port order) a port rejected with ICMP by
    /// one of `limited`.
    fn beside_limited_rejections(&self, port: u16, limited: &[IpAddr]) -> bool {
        let Some(Kind::Silent { first }) = self.kind_of.get(&port).copied() else {
            return false;
        };
        let (Some(lo), Some(mut hi)) = (self.index_of(first), self.index_of(port)) else {
            return false;
        };
        while hi + 1 < self.ports.len() && self.ports[hi + 1].answer.is_none() {
            hi += 1;
        }
        let by_limited = |i: Option<usize>| {
            i.and_then(|i| self.ports.get(i)).is_some_and(
                |p| matches!(p.answer, Some(First::Icmp { from }) if limited.contains(&from)),
            )
        };
        by_limited(lo.checked_sub(1)) || by_limited(Some(hi + 1))
    }

    fn learn(&mut self, idx: usize, try_: u8, seen: &Observed, answer: First) {
        let st = self.ports[idx];
        let latest = st.tries == try_ + 1;
        if latest && st.in_flight {
            self.ports[idx].in_flight = false;
            self.outstanding -= 1;
        }
        if st.answer.is_some() {
            return;
        }
        self.ports[idx].answer = Some(answer);
        if matches!(answer, First::Icmp { .. } | First::RouteError) {
            self.icmp_spent
                .push((TtlReading::of(seen.packet.ip.ttl).hops.0, seen.ts));
        }
        if let First::Icmp { from } = answer {
            let n = self.icmp_from.entry(from).or_insert(0);
            *n = n.saturating_add(1);
        }
        if answer == First::RouteError {
            self.route_error = true;
        }
        if latest {
            let rtt = seen.ts.since(st.sent_at);
            if rtt.0 > 0 {
                match self.srtt {
                    None => {
                        self.srtt = Some(rtt);
                        self.rttvar = Duration(rtt.0 / 2);
                        // The first measurement: the waits set before it (1 s) shrink to what the path needs.
                        let rto = self.rto();
                        for e in self.in_flight.iter_mut() {
                            let sent = self.ports[e.1 as usize].sent_at;
                            e.0 = e.0.min(sent.plus(rto));
                        }
                    }
                    Some(s) => {
                        let err = (rtt.0 - s.0).abs();
                        self.rttvar = Duration((3 * self.rttvar.0 + err) / 4);
                        self.srtt = Some(Duration((7 * s.0 + rtt.0) / 8));
                    }
                }
            }
        }
        if try_ == 0 {
            // Slow start, then one more per window of answers.
            self.cwnd += if self.cwnd < self.ssthresh {
                1.0
            } else {
                1.0 / self.cwnd
            };
            self.cwnd = self.cwnd.min(f64::from(self.cfg.max_window));
        } else if !matches!(answer, First::Icmp { .. }) {
            self.drops = self.drops.saturating_add(1);
            // A retransmission was answered: the first SYN or its answer was lost. Once per round trip.
            let rtt = self.srtt.unwrap_or(Duration::from_millis(100));
            if seen.ts >= self.last_cut.plus(rtt) {
                self.ssthresh = (self.cwnd / 2.0).max(2.0);
                self.cwnd = self.ssthresh;
                self.last_cut = seen.ts;
            }
        }
    }

    /// The first-pass probe a frame is or answers: (port index, try, whether it is our own SYN).
    fn first_pass_probe(&self, seen: &Observed) -> Option<(usize, u8, bool)> {
        let p = &seen.packet;
        match &p.transport {
            // By ports as well as addresses: on loopback the source and the target are the same address.
            Transport::Tcp(t) => {
                if p.ip.src == self.source && p.ip.dst == self.target {
                    if let (Some(try_), Some(idx)) =
                        (self.try_of(t.src_port), self.index_of(t.dst_port))
                    {
                        return Some((idx, try_, true));
                    }
                }
                if p.ip.src == self.target && p.ip.dst == self.source {
                    let try_ = self.try_of(t.dst_port)?;
                    let idx = self.index_of(t.src_port)?;
                    let isn = self.isn(t.dst_port, t.src_port);
                    return (t.flags.has(TcpFlags::ACK) && t.ack == isn.wrapping_add(1))
                        .then_some((idx, try_, false));
                }
                None
            }
            Transport::IcmpError(e) => {
                let q = e.quote.as_ref()?;
                let qt = q.tcp?;
                if q.src != self.source || q.dst != self.target {
                    return None;
                }
                let try_ = self.try_of(qt.src_port)?;
                let idx = self.index_of(qt.dst_port)?;
                (qt.seq == self.isn(qt.src_port, qt.dst_port)).then_some((idx, try_, false))
            }
            _ => None,
        }
    }

    fn answer_of(&self, seen: &Observed) -> Option<First> {
        let p = &seen.packet;
        match &p.transport {
            Transport::Tcp(t) if t.flags.is_syn_ack() => Some(First::SynAck),
            Transport::Tcp(t) if t.flags.is_rst() => {
                let tos = self.cfg.session.tos >> 2;
                Some(First::Rst {
                    hops: TtlReading::of(p.ip.ttl).hops.0,
                    tos_echoed: tos != 0 && p.ip.tos >> 2 == tos,
                })
            }
            Transport::IcmpError(e) => {
                let q = e.quote.as_ref()?;
                match e.kind {
                    IcmpErrorKind::DestinationUnreachable(code)
                        if p.ip.src != self.target
                            && is_route_wide(
                                code,
                                TtlReading::of(p.ip.ttl).hops.0,
                                Some(q.ttl),
                                self.cfg.session.ttl,
                            ) =>
                    {
                        Some(First::RouteError)
                    }
                    _ => Some(First::Icmp { from: p.ip.src }),
                }
            }
            _ => None,
        }
    }

    /// The first pass judged: per port, its answered try's judgement (else its last try's), with the packet
    /// records when they are wanted. Only what the reports use is kept of each attempt.
    fn judge_first_pass(&self, t0: Timestamp) -> Vec<Option<Pick>> {
        let end = self.done_at.unwrap_or(self.last_poll);
        let mut picks: Vec<Option<Pick>> = (0..self.ports.len()).map(|_| None).collect();
        crate::session::judge_live(&self.frames, end, self.rto(), |r| {
            let key = r.attempt.probe.key;
            let (Some(try_), Some(idx)) = (
                self.try_of(key.client_port.0),
                self.index_of(key.server_port.0),
            ) else {
                return;
            };
            if key.server != self.target
                || r.attempt.probe.isn.0 != self.isn(key.client_port.0, key.server_port.0)
            {
                return;
            }
            let answered = r.attempt.decisive_reply().is_some();
            let better = picks[idx].as_ref().is_none_or(|p| {
                (answered && !p.answered) || (answered == p.answered && try_ > p.try_)
            });
            if better {
                picks[idx] = Some(Pick {
                    packets: if self.cfg.packets {
                        packet_records(&r.attempt, t0)
                    } else {
                        Vec::new()
                    },
                    judgement: r.judgement,
                    answered,
                    try_,
                });
            }
        });
        picks
    }

    /// A port of a kind probed deeply through its representatives: their judgement, when they agree.
    fn share(
        &self,
        report: &mut TargetReport,
        reps: &[u16],
        deep: &HashMap<u16, TargetReport>,
        answered: bool,
    ) {
        let rep_reports: Vec<&TargetReport> = reps.iter().filter_map(|r| deep.get(r)).collect();
        let Some(rep) = rep_reports.first() else {
            return;
        };
        let agree = rep_reports.windows(2).all(|w| {
            let (a, b) = (&w[0].judgement, &w[1].judgement);
            a.verdict == b.verdict
                && a.cause == b.cause
                && a.rejecter.map(|r| r.addr) == b.rejecter.map(|r| r.addr)
        });
        if !agree {
            report.judgement.findings.insert(
                0,
                Finding::SweepRunMixed {
                    first: reps[0],
                    last: reps[reps.len() - 1],
                },
            );
            report.judgement.confidence = report.judgement.confidence.min(Confidence::Low);
            return;
        }
        let mut j = rep.judgement.clone();
        j.findings.insert(
            0,
            Finding::SweepSameAs {
                port: rep.port,
                silent_here: !answered,
            },
        );
        if !answered && rep.judgement.verdict != Verdict::Filtered {
            // The representative drew an answer this port never did.
            j.confidence = j.confidence.min(Confidence::Medium);
        }
        j.rtt = report.judgement.rtt;
        report.judgement = j;
        report.path = rep.path.clone();
    }
}

impl Plan for Sweep {
    fn target(&self) -> IpAddr {
        self.target
    }

    fn poll(&mut self, now: Timestamp) -> (Vec<Outgoing>, Option<Timestamp>) {
        if self.phase != Phase::Done {
            self.last_poll = self.last_poll.max(now);
        }
        if self.t0.is_none() {
            self.t0 = Some(now);
        }
        let mut out = Vec::new();
        if self.phase == Phase::FirstPass {
            self.first_pass(now, &mut out);
            if self.first_pass_over() {
                self.start_deep();
                self.phase = Phase::Deep;
            }
        }
        if self.phase == Phase::Deep {
            let mut next: Option<Timestamp> = None;
            for i in 0..self.deep.len() {
                if self.deep[i].is_done() {
                    continue;
                }
                let (o, n) = self.deep[i].poll(now);
                // Both sessions draw on the same routers' ICMP buckets: each TTL-limited SYN of one is charged
                // to the other's model too.
                for p in &o {
                    if let Purpose::TtlWalk(t) | Purpose::PathWalk(t) = p.purpose {
                        for (k, other) in self.deep.iter_mut().enumerate() {
                            if k != i {
                                other.note_icmp_spent(t, now);
                            }
                        }
                    }
                }
                self.deep_queue.extend(o);
                if let Some(n) = n {
                    next = Some(next.map_or(n, |x: Timestamp| x.min(n)));
                }
            }
            self.release_deep(now, &mut out);
            if !self.deep_queue.is_empty() {
                let soon = now.plus(Duration::from_millis(1));
                next = Some(next.map_or(soon, |x: Timestamp| x.min(soon)));
            }
            if next.is_some() {
                return (out, next);
            }
            self.phase = Phase::Done;
            self.done_at = Some(now);
        }
        if self.phase == Phase::Done {
            return (out, None);
        }
        // Next: the earliest deadline in flight, or soon when the window or the rate cap held SYNs back.
        let pending = !self.retry.is_empty() || (self.next < self.ports.len() && !self.route_error);
        let soon = now.plus(Duration::from_millis(1));
        let next = match (self.in_flight.front(), pending) {
            (_, true) => soon,
            (Some(&(d, _, _)), false) => d.max(soon),
            (None, false) => soon,
        };
        (out, Some(next))
    }

    fn on_frame(&mut self, seen: &Observed) -> bool {
        if let Some(i) = self.deep.iter_mut().position(|s| s.on_frame(seen)) {
            // An ICMP rejection one session drew spent a token the other's model must know of (the
            // time-exceeded its TTL-limited SYNs draw are charged when they are sent).
            if let Transport::IcmpError(e) = &seen.packet.transport {
                if matches!(e.kind, IcmpErrorKind::DestinationUnreachable(_)) {
                    let hop = TtlReading::of(seen.packet.ip.ttl).hops.0;
                    for (k, other) in self.deep.iter_mut().enumerate() {
                        if k != i {
                            other.note_icmp_spent(hop, seen.ts);
                        }
                    }
                }
            }
            return true;
        }
        let Some((idx, try_, ours)) = self.first_pass_probe(seen) else {
            return false;
        };
        if ours {
            // Our own SYN as the capture saw it: the truest send time.
            let st = &mut self.ports[idx];
            if st.tries == try_ + 1 && seen.ts.since(st.sent_at).0.abs() < 1_000_000_000 {
                st.sent_at = seen.ts;
            }
        } else if let Some(a) = self.answer_of(seen) {
            self.learn(idx, try_, seen, a);
        }
        self.frames.push(*seen);
        true
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn reports(&mut self) -> Vec<TargetReport> {
        let t0 = self.t0.unwrap_or_default();
        let end = self.done_at.unwrap_or(self.last_poll);
        let mut picks = self.judge_first_pass(t0);
        let deep: HashMap<u16, TargetReport> = self
            .deep
            .iter_mut()
            .flat_map(Session::reports)
            .map(|r| (r.port, r))
            .collect();
        let mut out = Vec::with_capacity(self.ports.len());
        // The judgement of a route error, for the ports it settled before their SYN was sent.
        let route: Option<Judgement> = self
            .ports
            .iter()
            .zip(&picks)
            .find(|(p, _)| p.answer == Some(First::RouteError))
            .and_then(|(_, pick)| pick.as_ref().map(|x| x.judgement.clone()));
        for (i, p) in self.ports.iter().enumerate() {
            let answered = p.answer.is_some();
            let (own, packets) = match (picks[i].take(), &route) {
                (Some(pick), _) => (pick.judgement, pick.packets),
                (None, Some(j)) => (j.clone(), Vec::new()),
                (None, None) => (Judgement::not_captured(), Vec::new()),
            };
            let mut report = TargetReport {
                host: self.host.clone(),
                target: self.target,
                port: p.port,
                source: self.source,
                judgement: own,
                path: Vec::new(),
                probes_sent: u32::from(p.tries),
                time_to_verdict: end.since(t0).max(Duration(0)),
                packets,
                listeners: None,
                connect: None,
            };
            if let Some(kind) = self.kind_of.get(&p.port) {
                let reps = &self.reps[kind];
                match deep.get(&p.port).filter(|_| reps.contains(&p.port)) {
                    Some(mine) => {
                        report.judgement = mine.judgement.clone();
                        report.path = mine.path.clone();
                        report.probes_sent += mine.probes_sent;
                        report.packets.extend(mine.packets.iter().cloned());
                    }
                    None => self.share(&mut report, reps, &deep, answered),
                }
            }
            if self.local {
                // This host's own address: hop 0, as a session counts it.
                let j = &mut report.judgement;
                j.target_hops = Some(HopCount(0));
                if let Some(r) = j.rejecter.as_mut().filter(|r| r.addr == self.target) {
                    r.hops = Some(HopCount(0));
                }
            }
            out.push(report);
        }
        out
    }

    fn port_of(&self, seen: &Observed) -> Option<u16> {
        match self.first_pass_probe(seen) {
            Some((idx, _, _)) => Some(self.ports[idx].port),
            None => self.deep.iter().find_map(|s| s.port_of(seen)),
        }
    }

    fn note_icmp_spent(&mut self, hop: u8, at: Timestamp) {
        if self.deep.is_empty() {
            self.icmp_spent.push((hop, at));
        }
        for s in &mut self.deep {
            s.note_icmp_spent(hop, at);
        }
    }

    fn describe(&self, seen: &Observed) -> String {
        if self.first_pass_probe(seen).is_some() {
            return self.describe_first_pass(seen);
        }
        let s = self
            .deep
            .iter()
            .find(|s| s.port_of(seen).is_some())
            .or(self.deep.first());
        match s {
            Some(s) => format!("{} (a deeper step of the sweep)", s.describe(seen)),
            None => self.describe_first_pass(seen),
        }
    }
}

impl Sweep {
    fn describe_first_pass(&self, seen: &Observed) -> String {
        match self.first_pass_probe(seen) {
            Some((idx, try_, ours)) => format!(
                "synprobe {}:{}: {} sweep SYN, try {}",
                self.target,
                self.ports[idx].port,
                if ours { "sent" } else { "reply to" },
                try_ + 1
            ),
            None => format!("synprobe {}", self.target),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::simulate;
    use crate::session::testnet::{a, router, Net, Rule, CLIENT, TARGET};
    use crate::verdict::RejecterKind;
    use crate::wire::parse_frame;
    use crate::LinkType;

    /// The lab of the issue in miniature: listeners, rules on the host and at two routers, a port forward, and
    /// an ICMP rejection over more ports than the host's ICMP burst.
    fn net() -> Net {
        let mut n = Net::new(3);
        for p in [22, 80, 443] {
            n = n.rule(p, Rule::Open);
        }
        n = n.rule(1000, Rule::RejectRstOnHost);
        for p in 1100..=1107 {
            n = n.rule(p, Rule::IcmpPortOnHost);
        }
        for p in std::iter::once(600).chain(900..=909) {
            n = n.rule(p, Rule::DropOnHost);
        }
        for p in std::iter::once(25).chain(135..=139) {
            n = n.rule(p, Rule::RejectRstAtRouter(2));
        }
        n.rule(445, Rule::DropAtRouter(1))
            .rule(23, Rule::IcmpAdminAtRouter(1))
            .rule(700, Rule::ForwardedClosed)
    }

    /// The truth of a port of [`net`]: verdict, rejecter address and kind.
    fn truth(port: u16) -> (Verdict, Option<(IpAddr, RejecterKind)>) {
        let target = a(TARGET);
        match port {
            22 | 80 | 443 => (Verdict::Open, None),
            1000 => (Verdict::FirewallRst, Some((target, RejecterKind::Target))),
            1100..=1107 => (Verdict::IcmpRejected, Some((target, RejecterKind::Target))),
            600 | 900..=909 | 445 => (Verdict::Filtered, None),
            25 | 135..=139 => (
                Verdict::FirewallRst,
                Some((router(2), RejecterKind::Router)),
            ),
            23 => (
                Verdict::IcmpRejected,
                Some((router(1), RejecterKind::Router)),
            ),
            700 => (Verdict::Closed, Some((target, RejecterKind::Backend))),
            _ => (Verdict::Closed, Some((target, RejecterKind::Target))),
        }
    }

    fn sweep(ports: &[u16], cfg: SweepConfig) -> Sweep {
        Sweep::new(a(TARGET), ports, a(CLIENT), cfg, 40000, 11).expect("valid settings")
    }

    fn assert_truth(reports: &[TargetReport], ports: &[u16]) {
        assert_eq!(
            reports.iter().map(|r| r.port).collect::<Vec<_>>(),
            ports,
            "one report per port, in order"
        );
        let mut wrong = Vec::new();
        for r in reports {
            let j = &r.judgement;
            let got = (j.verdict, j.rejecter.map(|x| (x.addr, x.kind)));
            if got != truth(r.port) {
                wrong.push(format!(
                    "{}: {:?}, want {:?} ({:?})",
                    r.port,
                    got,
                    truth(r.port),
                    j.findings.iter().map(Finding::code).collect::<Vec<_>>()
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn every_port_of_a_range_is_judged_right_with_kernel_rate_limits() {
        let ports: Vec<u16> = (1..=1200).collect();
        let mut n = net();
        let s = sweep(&ports, SweepConfig::default());
        let reports = simulate(s, move |t, o| n.respond(t, o));
        assert_truth(&reports, &ports);
        // Kinds share their deeper steps: the closed ports cost one SYN each, not half a dozen.
        let sent: u32 = reports.iter().map(|r| r.probes_sent).sum();
        assert!(sent < 1200 + 200, "{sent} packets for 1200 ports");
        let same = reports
            .iter()
            .filter(|r| r.judgement.has("sweep-same-as"))
            .count();
        assert!(same > 1000, "{same} ports judged with a representative");
    }

    #[test]
    fn late_answers_overlapping_retransmissions_and_junk_go_to_no_wrong_port() {
        let ports: Vec<u16> = (1..=5000).collect();
        let mut n = net();
        let mut k = 0u32;
        let first_pass_tries = SweepConfig::default().tries();
        let s = sweep(&ports, SweepConfig::default());
        let reports = simulate(s, move |t, o| {
            let mut back = n.respond(t, o);
            k += 1;
            let first_pass = parse_frame(LinkType::RAW, &o.datagram)
                .ok()
                .is_some_and(|p| {
                    p.tcp()
                        .is_some_and(|t| u32::from(t.src_port) < 40_000 + first_pass_tries)
                });
            for (delay, _) in back.iter_mut() {
                // Every third answer of the first pass comes after the retransmission timeout: the try after
                // it overlaps it.
                if first_pass && k % 3 == 0 {
                    *delay = Duration(delay.0 + 150_000_000);
                }
            }
            // Off-path junk for each SYN: an RST and a SYN-ACK to the same ports acknowledging a wrong ISN.
            if let Ok(p) = parse_frame(LinkType::RAW, &o.datagram) {
                if let Some(t) = p.tcp() {
                    let wrong = TcpSpec::syn(t.src_port, t.dst_port, t.seq ^ 0x8000_0001);
                    let ip = IpSpec::new(a(TARGET), a(CLIENT)).ttl(61);
                    back.push((
                        Duration::from_millis(1),
                        TcpSpec::rst_to(&wrong).emit(&ip).expect("rst"),
                    ));
                    back.push((
                        Duration::from_millis(1),
                        TcpSpec::syn_ack_to(&wrong, 7).emit(&ip).expect("syn-ack"),
                    ));
                }
            }
            back
        });
        assert_truth(&reports, &ports);
    }

    #[test]
    fn a_congested_path_shrinks_the_window_and_every_port_is_still_right() {
        // A bottleneck: the path carries at most 20 SYNs in any 10 ms; the rest are lost.
        let ports: Vec<u16> = (1..=3000).collect();
        let mut n = net();
        let mut recent: VecDeque<Timestamp> = VecDeque::new();
        let cfg = SweepConfig {
            initial_window: 256,
            ..SweepConfig::default()
        };
        let reports = simulate(sweep(&ports, cfg), move |t, o| {
            while recent.front().is_some_and(|&x| t.since(x).0 > 10_000_000) {
                recent.pop_front();
            }
            if recent.len() >= 20 {
                return vec![];
            }
            recent.push_back(t);
            n.respond(t, o)
        });
        assert_truth(&reports, &ports);
        let retried = reports.iter().filter(|r| r.probes_sent > 1).count();
        assert!(retried > 0, "the lost SYNs were sent again");
    }

    #[test]
    fn a_route_error_settles_every_port_and_stops_the_pass() {
        let ports: Vec<u16> = (1..=5000).collect();
        let mut n = Net::new(3);
        n.route_error_at = Some(2);
        let cfg = SweepConfig {
            initial_window: 8,
            ..SweepConfig::default()
        };
        let reports = simulate(sweep(&ports, cfg), move |t, o| n.respond(t, o));
        assert_eq!(reports.len(), 5000);
        assert!(reports
            .iter()
            .all(|r| r.judgement.verdict == Verdict::Unreachable));
        let sent: u32 = reports.iter().map(|r| r.probes_sent).sum();
        assert!(sent < 500, "the pass stopped at the error: {sent} SYNs");
    }

    #[test]
    fn settings_are_checked() {
        let bad = SweepConfig {
            initial_window: 10,
            max_window: 5,
            ..SweepConfig::default()
        };
        assert!(Sweep::new(a(TARGET), &[1, 2], a(CLIENT), bad, 1000, 1).is_err());
        let zero = SweepConfig {
            max_pps: 0,
            ..SweepConfig::default()
        };
        assert!(zero.validate().is_err());
    }
}
