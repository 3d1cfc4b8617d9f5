//! Reasoning over what came back: initial-TTL inference, hop distances, per-server baselines, and the
//! verdict on each attempt.
//!
//! The central question is whether an RST came from the target's own TCP stack. A forged RST from a device on
//! the path has travelled fewer hops (a higher received TTL), or comes from a stack with another initial TTL,
//! than the target's SYN-ACKs; a netfilter REJECT rule does not echo the SYN's TOS byte and sends IPv6 flow
//! label 0, where a Linux stack's own RST echoes the TOS and carries a flow label. The [`Analyzer`] collects a
//! baseline per server address from every attempt in the capture and judges each attempt against it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::model::{Attempt, Closure, HopCount, Reply, ReplyKind};
use crate::time::Duration;
use crate::verdict::{Confidence, Evidence, Judgement, Rejecter, Verdict};

type Hasher = foldhash::fast::RandomState;

/// What a received TTL says about its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TtlReading {
    /// The TTL as received.
    pub received: u8,
    /// The sender's most likely initial TTL: the smallest common default (32, 64, 128, 255) not below it.
    pub initial: u8,
    /// The sender's distance: routers crossed plus one.
    pub hops: HopCount,
}

impl TtlReading {
    /// Read a received TTL / hop limit.
    pub fn of(received: u8) -> Self {
        let initial = match received {
            0..=32 => 32,
            33..=64 => 64,
            65..=128 => 128,
            _ => 255,
        };
        TtlReading {
            received,
            initial,
            hops: HopCount((initial - received).saturating_add(1)),
        }
    }

    fn describe(&self) -> String {
        format!(
            "TTL {} (initial {}, {} hop{} away)",
            self.received,
            self.initial,
            self.hops.0,
            if self.hops.0 == 1 { "" } else { "s" }
        )
    }
}

/// Distances seen in one kind of reply from one address.
#[derive(Debug, Clone, Copy, Default)]
struct HopSet {
    count: u32,
    min: u8,
    max: u8,
    /// Bit per initial TTL: 32, 64, 128, 255.
    initials: u8,
    flow_nonzero: u32,
    flow_zero: u32,
    min_rtt: Option<Duration>,
}

fn initial_bit(initial: u8) -> u8 {
    match initial {
        32 => 1,
        64 => 2,
        128 => 4,
        _ => 8,
    }
}

impl HopSet {
    fn add(&mut self, r: TtlReading, flow_label: Option<u32>, rtt: Option<Duration>) {
        if self.count == 0 {
            self.min = r.hops.0;
            self.max = r.hops.0;
        } else {
            self.min = self.min.min(r.hops.0);
            self.max = self.max.max(r.hops.0);
        }
        self.count = self.count.saturating_add(1);
        self.initials |= initial_bit(r.initial);
        match flow_label {
            Some(0) => self.flow_zero += 1,
            Some(_) => self.flow_nonzero += 1,
            None => {}
        }
        if let Some(rtt) = rtt {
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        }
    }
    fn has_initial(&self, initial: u8) -> bool {
        self.initials & initial_bit(initial) != 0
    }
    fn describe_initials(&self) -> String {
        let names: Vec<&str> = [(1u8, "32"), (2, "64"), (4, "128"), (8, "255")]
            .iter()
            .filter(|(bit, _)| self.initials & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        names.join("/")
    }
    fn describe_hops(&self) -> String {
        if self.min == self.max {
            format!("{}", self.min)
        } else {
            format!("{}-{}", self.min, self.max)
        }
    }
}

/// RSTs from one address that share a distance and initial TTL.
#[derive(Debug, Clone, Copy, Default)]
struct RstCluster {
    initial: u8,
    hops: u8,
    count: u32,
    /// RSTs that echoed a non-zero TOS of their SYN / that answered a non-zero-TOS SYN with TOS 0.
    tos_echoed: u32,
    tos_zeroed: u32,
    flow_nonzero: u32,
    flow_zero: u32,
}

const MAX_CLUSTERS: usize = 4;

/// What one server address has shown across the capture.
#[derive(Debug, Clone, Default)]
struct ServerBaseline {
    synack: HopSet,
    echo: HopSet,
    rsts: Vec<RstCluster>,
}

impl ServerBaseline {
    fn learn_rst(&mut self, attempt: &Attempt, reply: &Reply) {
        let r = TtlReading::of(reply.seen.packet.ip.ttl);
        let tos = tos_behaviour(attempt.probe.tos, reply.seen.packet.ip.tos);
        let idx = match self
            .rsts
            .iter()
            .position(|c| c.initial == r.initial && c.hops == r.hops.0)
        {
            Some(i) => i,
            None if self.rsts.len() < MAX_CLUSTERS => {
                self.rsts.push(RstCluster {
                    initial: r.initial,
                    hops: r.hops.0,
                    ..RstCluster::default()
                });
                self.rsts.len() - 1
            }
            None => return,
        };
        let c = &mut self.rsts[idx];
        c.count = c.count.saturating_add(1);
        match tos {
            TosBehaviour::Echoed => c.tos_echoed += 1,
            TosBehaviour::Zeroed => c.tos_zeroed += 1,
            _ => {}
        }
        match reply.seen.packet.ip.flow_label {
            Some(0) => c.flow_zero += 1,
            Some(_) => c.flow_nonzero += 1,
            None => {}
        }
    }

    /// The target's distance as its own replies show it (SYN-ACKs first, then echo replies).
    fn target_hops(&self) -> Option<HopCount> {
        if self.synack.count > 0 {
            Some(HopCount(self.synack.max))
        } else if self.echo.count > 0 {
            Some(HopCount(self.echo.max))
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TosBehaviour {
    /// The SYN carried TOS 0: nothing to learn.
    NotTested,
    /// The reply carried the SYN's DSCP.
    Echoed,
    /// The reply carried DSCP 0 where the SYN had a non-zero one.
    Zeroed,
    /// Something else (rewritten on the path?).
    Other,
}

fn tos_behaviour(syn_tos: u8, reply_tos: u8) -> TosBehaviour {
    let (syn, reply) = (syn_tos >> 2, reply_tos >> 2);
    if syn == 0 {
        TosBehaviour::NotTested
    } else if reply == syn {
        TosBehaviour::Echoed
    } else if reply == 0 {
        TosBehaviour::Zeroed
    } else {
        TosBehaviour::Other
    }
}

/// Analyzer limits.
#[derive(Debug, Clone, Copy)]
pub struct AnalyzerConfig {
    /// Attempts held back waiting for a baseline (an RST from an address that has not yet shown a SYN-ACK) before
    /// the oldest is judged with what is known (default 4096).
    pub max_pending: usize,
    /// Server addresses with a baseline; beyond it new addresses get none (default 65,536).
    pub max_servers: usize,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            max_pending: 4096,
            max_servers: 1 << 16,
        }
    }
}

/// Judges closed attempts against per-server baselines built from the whole capture.
///
/// Attempts come out in the order they went in; an RST attempt from an address with no SYN-ACK yet is held back
/// (within [`AnalyzerConfig::max_pending`]) so that a SYN-ACK later in the capture can still serve as its
/// baseline.
pub struct Analyzer {
    config: AnalyzerConfig,
    baselines: HashMap<IpAddr, ServerBaseline, Hasher>,
    pending: VecDeque<Attempt>,
    ready: VecDeque<(Attempt, Judgement)>,
    baselines_refused: u64,
}

impl Analyzer {
    /// An analyzer with the given limits.
    pub fn new(config: AnalyzerConfig) -> Self {
        Analyzer {
            config,
            baselines: HashMap::with_hasher(Hasher::default()),
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            baselines_refused: 0,
        }
    }

    /// An ICMP echo reply from `src`: its distance joins the baseline (weaker than a SYN-ACK).
    pub fn note_echo_reply(&mut self, src: IpAddr, ttl: u8, flow_label: Option<u32>) {
        if let Some(b) = self.baseline_mut(src) {
            b.echo.add(TtlReading::of(ttl), flow_label, None);
        }
    }

    /// Take a closed attempt: learn from it, then judge whatever is ready.
    pub fn push(&mut self, attempt: Attempt) {
        self.learn(&attempt);
        self.pending.push_back(attempt);
        self.release(false);
    }

    /// Judge everything held back (end of input).
    pub fn finish(&mut self) {
        self.release(true);
    }

    /// The next judged attempt, in the order attempts were pushed.
    pub fn pop(&mut self) -> Option<(Attempt, Judgement)> {
        self.ready.pop_front()
    }

    /// Attempts held back waiting for a baseline.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Server addresses that got no baseline because the table was full.
    pub fn baselines_refused(&self) -> u64 {
        self.baselines_refused
    }

    /// Judge one attempt against what is known now, without queueing it.
    pub fn judge(&self, attempt: &Attempt) -> Judgement {
        let empty = ServerBaseline::default();
        let b = self
            .baselines
            .get(&attempt.probe.key.server)
            .unwrap_or(&empty);
        judge(attempt, b)
    }

    fn baseline_mut(&mut self, addr: IpAddr) -> Option<&mut ServerBaseline> {
        if !self.baselines.contains_key(&addr) && self.baselines.len() >= self.config.max_servers {
            self.baselines_refused += 1;
            return None;
        }
        Some(self.baselines.entry(addr).or_default())
    }

    fn learn(&mut self, attempt: &Attempt) {
        let Some(reply) = attempt.decisive_reply().copied() else {
            return;
        };
        if !reply.exact || reply.source() != attempt.probe.key.server {
            return;
        }
        let rtt = rtt_of(attempt, &reply);
        let Some(b) = self.baseline_mut(attempt.probe.key.server) else {
            return;
        };
        match reply.kind {
            ReplyKind::SynAck => b.synack.add(
                TtlReading::of(reply.seen.packet.ip.ttl),
                reply.seen.packet.ip.flow_label,
                rtt,
            ),
            ReplyKind::Rst => b.learn_rst(attempt, &reply),
            _ => {}
        }
    }

    fn must_wait(&self, attempt: &Attempt) -> bool {
        match attempt.decisive_reply() {
            Some(r) if r.kind == ReplyKind::Rst => self
                .baselines
                .get(&attempt.probe.key.server)
                .is_none_or(|b| b.synack.count == 0),
            _ => false,
        }
    }

    fn release(&mut self, all: bool) {
        while let Some(front) = self.pending.front() {
            if !all && self.pending.len() <= self.config.max_pending && self.must_wait(front) {
                break;
            }
            let Some(attempt) = self.pending.pop_front() else {
                break;
            };
            let j = self.judge(&attempt);
            self.ready.push_back((attempt, j));
        }
    }
}

/// Round-trip time of a reply: from the latest SYN sent before it.
pub fn rtt_of(attempt: &Attempt, reply: &Reply) -> Option<Duration> {
    let sent = attempt
        .syns
        .iter()
        .map(|s| s.ts)
        .filter(|&t| t <= reply.seen.ts)
        .max()?;
    Some(reply.seen.ts.since(sent))
}

fn judge(a: &Attempt, b: &ServerBaseline) -> Judgement {
    match a.decisive_reply() {
        Some(r) if r.kind == ReplyKind::SynAck => judge_open(a, r, b),
        Some(r) if r.kind == ReplyKind::Rst => judge_rst(a, r, b),
        Some(r) => judge_icmp(a, r, b),
        None => judge_silence(a, b),
    }
}

fn port_desc(a: &Attempt) -> String {
    format!("{} port {}", a.probe.key.server, a.probe.key.server_port.0)
}

fn judge_open(a: &Attempt, r: &Reply, _b: &ServerBaseline) -> Judgement {
    let reading = TtlReading::of(r.seen.packet.ip.ttl);
    let rtt = rtt_of(a, r);
    let mut evidence = vec![Evidence::new(
        "syn-ack",
        format!("SYN-ACK from {} with {}", r.source(), reading.describe()),
        "the target's TCP stack accepted the connection: something listens on the port",
    )];
    if !r.exact {
        evidence.push(Evidence::new(
            "inexact-ack",
            "the SYN-ACK does not acknowledge ISN+1",
            "it may answer an earlier SYN on the same ports; treat with care",
        ));
    }
    if a.replies.iter().any(|x| x.kind == ReplyKind::Rst) {
        evidence.push(Evidence::new(
            "rst-and-syn-ack",
            "an RST for the same SYN was seen as well",
            "two devices answered: something on the path also resets this connection",
        ));
    }
    Judgement {
        verdict: Verdict::Open,
        confidence: if r.exact { Confidence::High } else { Confidence::Low },
        headline: format!("{} is open: the host accepted the connection", port_desc(a)),
        rejecter: None,
        target_hops: Some(reading.hops),
        rtt_ms: rtt.map(Duration::as_millis_f64),
        evidence,
        next_steps: vec![
            "TCP is fine: if the client still fails, look above TCP (TLS, the application's logs, an HTTP proxy)"
                .into(),
        ],
    }
}

fn judge_rst(a: &Attempt, r: &Reply, b: &ServerBaseline) -> Judgement {
    let ip = &r.seen.packet.ip;
    let reading = TtlReading::of(ip.ttl);
    let rtt = rtt_of(a, r);
    let mut evidence = vec![Evidence::new(
        "rst",
        format!(
            "RST from {} with {}{}",
            r.source(),
            reading.describe(),
            rtt.map_or(String::new(), |d| format!(
                ", after {:.2} ms",
                d.as_millis_f64()
            ))
        ),
        "something refused the SYN with a TCP reset",
    )];
    // (confidence, same distance as the target?) of the strongest sign of forgery.
    let mut forged: Option<(Confidence, bool)> = None;
    let mut stack_signs = 0u32;
    let mut target_hops = b.target_hops();

    if b.synack.count > 0 {
        let s = &b.synack;
        if !s.has_initial(reading.initial) {
            evidence.push(Evidence::new(
                "rst-initial-ttl-differs",
                format!(
                    "the RST left its sender with TTL {}, the host's {} SYN-ACK(s) with TTL {}",
                    reading.initial,
                    s.count,
                    s.describe_initials()
                ),
                "a different network stack sent the RST: not the host's own",
            ));
            forged = Some((Confidence::High, false));
        } else if reading.hops.0 < s.min {
            let closer = s.min - reading.hops.0;
            evidence.push(Evidence::new(
                "rst-closer-than-synack",
                format!(
                    "the RST came from {} hop(s) away, the host's SYN-ACKs from {} hop(s)",
                    reading.hops.0,
                    s.describe_hops()
                ),
                format!("a device {closer} hop(s) closer than the host forged the RST"),
            ));
            let conf = if closer >= 2 {
                Confidence::High
            } else {
                Confidence::Medium
            };
            forged = Some((conf, false));
        } else if reading.hops.0 > s.max {
            evidence.push(Evidence::new(
                "rst-farther-than-synack",
                format!(
                    "the RST came from {} hop(s) away, farther than the host's SYN-ACKs ({} hop(s))",
                    reading.hops.0,
                    s.describe_hops()
                ),
                "the return path changed, or the RST crossed another path: distance cannot decide",
            ));
        } else {
            evidence.push(Evidence::new(
                "rst-same-distance",
                format!(
                    "same distance ({} hop(s)) and initial TTL as the host's {} SYN-ACK(s)",
                    reading.hops.0, s.count
                ),
                "sent by the host itself: its TCP stack, or a firewall rule on the host",
            ));
            stack_signs += 1;
        }
        if let Some(0) = ip.flow_label {
            if s.flow_nonzero > 0 && forged.is_none() {
                evidence.push(Evidence::new(
                    "rst-flow-label-zero",
                    "the RST has IPv6 flow label 0 while the host's SYN-ACKs carry flow labels",
                    "netfilter's REJECT sends flow label 0; the host's own stack labels its packets",
                ));
                forged = Some((Confidence::Medium, true));
            }
        }
    } else if b.echo.count > 0 && b.echo.has_initial(reading.initial) && reading.hops.0 < b.echo.min
    {
        evidence.push(Evidence::new(
            "rst-closer-than-echo",
            format!(
                "the RST came from {} hop(s) away, the host's echo replies from {} hop(s)",
                reading.hops.0,
                b.echo.describe_hops()
            ),
            "a device closer than the host forged the RST",
        ));
        forged = Some((Confidence::Medium, false));
    } else if let Some(far) = b
        .rsts
        .iter()
        .filter(|c| c.initial == reading.initial)
        .map(|c| c.hops)
        .max()
    {
        if far > reading.hops.0 {
            evidence.push(Evidence::new(
                "rst-closer-than-other-rsts",
                format!(
                    "other RSTs from this address came from {far} hop(s) away, this one from {}",
                    reading.hops.0
                ),
                "two devices answer for this address; the closer one is not the host",
            ));
            forged = Some((Confidence::Medium, false));
            target_hops = target_hops.or(Some(HopCount(far)));
        } else {
            let others: u32 = b
                .rsts
                .iter()
                .map(|c| c.count)
                .sum::<u32>()
                .saturating_sub(1);
            if others > 0 {
                evidence.push(Evidence::new(
                    "rst-consistent",
                    format!("{others} other RST(s) from this address came from the same distance"),
                    "consistent with the host's own stack, but no SYN-ACK to compare distances with",
                ));
            }
        }
    }

    // The TOS byte: a Linux stack's own RST echoes the SYN's TOS, netfilter's REJECT sends 0.
    match tos_behaviour(a.probe.tos, ip.tos) {
        TosBehaviour::Echoed => {
            evidence.push(Evidence::new(
                "rst-tos-echoed",
                format!("the RST echoed the SYN's TOS 0x{:02x}", a.probe.tos),
                "a Linux stack's own RST echoes the TOS; netfilter's REJECT sends 0",
            ));
            stack_signs += 1;
        }
        TosBehaviour::Zeroed => {
            let stack_echoes = b.rsts.iter().any(|c| {
                c.hops == reading.hops.0 && c.initial == reading.initial && c.tos_echoed > 0
            });
            evidence.push(Evidence::new(
                "rst-tos-zero",
                format!("the RST has TOS 0 though the SYN carried 0x{:02x}", a.probe.tos),
                if stack_echoes {
                    "other RSTs from this host echo the TOS: this one came from a REJECT rule, not the stack"
                } else {
                    "netfilter's REJECT sends TOS 0 where a Linux stack echoes it (other systems may not echo)"
                },
            ));
            if stack_echoes && forged.is_none() {
                forged = Some((Confidence::High, true));
            }
        }
        _ => {}
    }
    if let Some(label) = ip.flow_label {
        if label != 0 && forged.is_none() {
            evidence.push(Evidence::new(
                "rst-flow-label",
                format!("the RST carries IPv6 flow label 0x{label:05x}"),
                "netfilter's REJECT sends flow label 0: a stack sent this one",
            ));
            stack_signs += 1;
        }
    }
    if !r.exact {
        let ack = r.seen.packet.tcp().map_or(0, |t| t.ack);
        evidence.push(Evidence::new(
            "rst-inexact-ack",
            format!(
                "the RST acknowledges {ack}, not the SYN's ISN+1 ({})",
                a.probe.isn.expected_ack()
            ),
            "a stack answering this SYN acknowledges it exactly: this RST may be injected or stale",
        ));
    }

    let server = a.probe.key.server;
    match forged {
        Some((confidence, at_target)) => {
            // The observation that decided it goes first.
            if let Some(i) = evidence
                .iter()
                .position(|e| FORGERY_CODES.contains(&e.code.as_ref()))
            {
                let decisive = evidence.remove(i);
                evidence.insert(0, decisive);
            }
            let hops = if at_target {
                target_hops.or(Some(reading.hops))
            } else {
                Some(reading.hops)
            };
            let is_target =
                at_target || r.source() == server && target_hops.is_some_and(|t| Some(t) == hops);
            let confidence = if r.exact { confidence } else { Confidence::Low };
            let headline = if at_target {
                format!(
                    "{}: RST from a firewall rule on the host itself, not its TCP stack",
                    port_desc(a)
                )
            } else {
                format!(
                    "{}: RST forged by a device at hop {} ({}), not by the host{}",
                    port_desc(a),
                    reading.hops.0,
                    r.source(),
                    target_hops.map_or(String::new(), |t| format!(" (hop {})", t.0))
                )
            };
            Judgement {
                verdict: Verdict::FirewallRst,
                confidence,
                headline,
                rejecter: Some(Rejecter {
                    addr: r.source(),
                    hops,
                    is_target,
                }),
                target_hops,
                rtt_ms: rtt.map(Duration::as_millis_f64),
                evidence,
                next_steps: firewall_rst_steps(a, at_target),
            }
        }
        None => {
            let confidence = match (b.synack.count > 0, stack_signs) {
                _ if !r.exact => Confidence::Low,
                (true, n) if n >= 2 => Confidence::High,
                (true, _) => Confidence::Medium,
                (false, n) if n >= 1 => Confidence::Medium,
                (false, _) => Confidence::Low,
            };
            if b.synack.count == 0 {
                evidence.push(Evidence::new(
                    "no-baseline",
                    "no SYN-ACK from this address in the capture to compare the RST's distance with",
                    "read as the host's own RST; a firewall at the same distance or on the host would look alike (run `sudo synprobe HOST PORT` to test it live)",
                ));
            } else if stack_signs < 2 {
                evidence.push(Evidence::new(
                    "host-rule-possible",
                    "no TOS- or flow-label test in this capture",
                    "a firewall rule on the host itself would look the same (run `sudo synprobe HOST PORT`: it sends a TOS-marked SYN to tell)",
                ));
            }
            let hops = target_hops.or(Some(reading.hops));
            Judgement {
                verdict: Verdict::Closed,
                confidence,
                headline: format!(
                    "{}: closed by the host's own TCP stack: nothing listens on that port and address",
                    port_desc(a)
                ),
                rejecter: Some(Rejecter {
                    addr: r.source(),
                    hops,
                    is_target: r.source() == server,
                }),
                target_hops: hops,
                rtt_ms: rtt.map(Duration::as_millis_f64),
                evidence,
                next_steps: closed_steps(a),
            }
        }
    }
}

/// Evidence codes that show an RST was not sent by the target's stack.
const FORGERY_CODES: [&str; 6] = [
    "rst-initial-ttl-differs",
    "rst-closer-than-synack",
    "rst-closer-than-echo",
    "rst-closer-than-other-rsts",
    "rst-tos-zero",
    "rst-flow-label-zero",
];

fn closed_steps(a: &Attempt) -> Vec<String> {
    let port = a.probe.key.server_port.0;
    vec![
        format!("On {}: `ss -tlnp 'sport = :{port}'` shows whether anything listens on port {port}", a.probe.key.server),
        "If the service is stopped: `systemctl status <service>`, then its logs (`journalctl -u <service>`)".into(),
        format!(
            "If it listens only on 127.0.0.1 or ::1 (`ss -tln` shows 127.0.0.1:{port}), bind it to 0.0.0.0/:: or the public address"
        ),
        "If the listen backlog overflows (Recv-Q at or above Send-Q in `ss -tln`), raise the backlog or fix the slow accept loop".into(),
    ]
}

fn firewall_rst_steps(a: &Attempt, at_target: bool) -> Vec<String> {
    let port = a.probe.key.server_port.0;
    let mut v = Vec::new();
    if at_target {
        v.push(format!(
            "On {}: look for a REJECT --reject-with tcp-reset rule for port {port}: `iptables -S | grep -i reject`, `nft list ruleset | grep -i reject`",
            a.probe.key.server
        ));
    } else {
        v.push(format!(
            "On the device that sent the RST (see rejecter): look for a REJECT --reject-with tcp-reset rule for port {port} (`iptables -S`, `nft list ruleset`), or a firewall/IPS policy that resets connections"
        ));
        v.push("In a cloud: check security groups, network ACLs and load-balancer listeners on the path".into());
    }
    v.push("The service itself may be running fine: test from a host beyond the firewall".into());
    v
}

fn judge_icmp(a: &Attempt, r: &Reply, b: &ServerBaseline) -> Judgement {
    let server = a.probe.key.server;
    let src = r.source();
    let is_target = src == server;
    let reading = TtlReading::of(r.seen.packet.ip.ttl);
    let rtt = rtt_of(a, r);
    let target_hops = b.target_hops();
    let hops = if is_target {
        target_hops.or(Some(reading.hops))
    } else {
        Some(reading.hops)
    };
    let who = if is_target {
        format!("the target {src} itself")
    } else {
        format!("{src} at hop {}", reading.hops.0)
    };
    let mut evidence = Vec::new();
    let quote_note = r.seen.packet.icmp_error().and_then(|e| e.quote).map(|q| {
        let crossed = a.probe.ttl.0.saturating_sub(q.ttl);
        let tcp_bytes = q.transport_bytes;
        Evidence::new(
            "icmp-quote",
            format!(
                "it quotes our SYN (TTL {} left of {}, {tcp_bytes} bytes of TCP)",
                q.ttl, a.probe.ttl.0
            ),
            format!("the SYN had crossed about {crossed} router(s) when it was turned back"),
        )
    });
    let (verdict, confidence, headline, mut steps) = match r.kind {
        ReplyKind::Unreachable(code) => {
            let text = code.description();
            evidence.push(Evidence::new(
                "icmp-unreachable",
                format!(
                    "ICMP destination unreachable ({text}) from {who}, {}",
                    reading.describe()
                ),
                match code.linux_source() {
                    Some(src) => format!("typically produced by {src}"),
                    None => "the packet could not be delivered".to_string(),
                },
            ));
            if code.is_rejection() {
                (
                    Verdict::IcmpRejected,
                    Confidence::High,
                    format!("{}: rejected by {who} with ICMP {text}", port_desc(a)),
                    vec![
                        format!(
                            "On {src}: find the REJECT rule (`iptables -S | grep REJECT`, `ip6tables -S`, `nft list ruleset`) or a `prohibit` route (`ip route show type prohibit`)"
                        ),
                        "A REJECT rule answers at once; if the port must be reachable, allow it before that rule".into(),
                    ],
                )
            } else {
                (
                    Verdict::Unreachable,
                    Confidence::High,
                    format!("{}: unreachable, {who} reports {text}", port_desc(a)),
                    vec![
                        format!("On {src}: `ip route get {server}` shows which route (or `unreachable` route) applies"),
                        format!("If the route is right: is {server} up, and does it answer ARP/neighbour discovery (`ip neigh`) on its link?"),
                    ],
                )
            }
        }
        ReplyKind::TimeExceeded => {
            let deliberate = a.probe.ttl.0 < 30;
            evidence.push(Evidence::new(
                "time-exceeded",
                format!("ICMP time exceeded from {who}, {}", reading.describe()),
                if deliberate {
                    format!(
                        "the SYN was sent with TTL {}: a deliberate TTL-limited probe (traceroute), not a verdict on the port",
                        a.probe.ttl.0
                    )
                } else {
                    "the SYN's TTL ran out before the target: a routing loop".to_string()
                },
            ));
            (
                Verdict::Unreachable,
                if deliberate {
                    Confidence::Low
                } else {
                    Confidence::Medium
                },
                format!("{}: the SYN expired in transit at {who}", port_desc(a)),
                vec![format!(
                    "Trace the path (`mtr -T -P {} {server}`) and look for a loop",
                    a.probe.key.server_port.0
                )],
            )
        }
        _ => {
            let e = r.seen.packet.icmp_error();
            evidence.push(Evidence::new(
                "icmp-error",
                format!(
                    "ICMP error type {} code {} from {who}",
                    e.map_or(0, |e| e.icmp_type),
                    e.map_or(0, |e| e.code)
                ),
                "the SYN could not be delivered as sent",
            ));
            (
                Verdict::Unreachable,
                Confidence::Low,
                format!(
                    "{}: an ICMP error from {who} turned the SYN back",
                    port_desc(a)
                ),
                vec![format!("Check the path MTU and routing towards {server}")],
            )
        }
    };
    if let Some(q) = quote_note {
        evidence.push(q);
    }
    let confidence = if r.exact {
        confidence
    } else {
        evidence.push(Evidence::new(
            "icmp-inexact-quote",
            "the ICMP error quotes another sequence number than the SYN's",
            "it may concern an earlier SYN on the same ports",
        ));
        Confidence::Low
    };
    if verdict == Verdict::IcmpRejected && !is_target && is_loopback_like(server) {
        steps.push("The target is local: the rule is in this host's own firewall".into());
    }
    Judgement {
        verdict,
        confidence,
        headline,
        rejecter: Some(Rejecter {
            addr: src,
            hops,
            is_target,
        }),
        target_hops,
        rtt_ms: rtt.map(Duration::as_millis_f64),
        evidence,
        next_steps: steps,
    }
}

fn is_loopback_like(addr: IpAddr) -> bool {
    addr.is_loopback()
}

fn judge_silence(a: &Attempt, b: &ServerBaseline) -> Judgement {
    let waited = a.closed_at.since(a.last_syn);
    let span = a.last_syn.since(a.probe.ts);
    let mut evidence = vec![Evidence::new(
        "silence",
        format!(
            "{} SYN(s) over {:.1} s, no reply within {:.1} s of the last",
            a.syn_count,
            span.as_secs_f64(),
            waited.as_secs_f64()
        ),
        "something dropped the SYNs or the replies without a word",
    )];
    let mut confidence = if a.syn_count >= 2 {
        Confidence::Medium
    } else {
        Confidence::Low
    };
    if let Some(h) = b.target_hops() {
        evidence.push(Evidence::new(
            "host-answers-elsewhere",
            format!(
                "the host answered other SYNs in this capture ({} hop(s) away)",
                h.0
            ),
            "the host is up and reachable: a DROP rule filters this port",
        ));
        if a.syn_count >= 2 {
            confidence = Confidence::High;
        }
    }
    if a.closure == Closure::EndOfInput {
        evidence.push(Evidence::new(
            "capture-ended",
            format!(
                "the capture ended {:.1} s after the last SYN",
                waited.as_secs_f64()
            ),
            "a late reply may simply not have been captured",
        ));
        confidence = Confidence::Low;
    }
    if a.closure == Closure::Evicted {
        evidence.push(Evidence::new(
            "evicted",
            "the attempt was evicted early because too many were in flight",
            "a reply may have come after it was judged",
        ));
        confidence = Confidence::Low;
    }
    Judgement {
        verdict: Verdict::Filtered,
        confidence,
        headline: format!("{}: filtered, every SYN went unanswered", port_desc(a)),
        rejecter: None,
        target_hops: b.target_hops(),
        rtt_ms: None,
        evidence,
        next_steps: vec![
            "A DROP rule, a blackhole route, or a host that is down behind a router that sends no ICMP".into(),
            format!(
                "Run `sudo synprobe {} {}` live: its TTL walk shows after which hop the SYNs vanish",
                a.probe.key.server, a.probe.key.server_port.0
            ),
            "On the suspected firewall: `iptables -S | grep DROP`, `nft list ruleset | grep drop`; in a cloud, security groups and NACLs".into(),
        ],
    }
}
