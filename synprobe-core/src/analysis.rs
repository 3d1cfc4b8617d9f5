//! Reasoning over what came back: initial-TTL inference, hop distances, per-server baselines, and the
//! verdict on each attempt.
//!
//! The central question is whether an RST came from the target's own TCP stack. A forged RST from a device on
//! the path has travelled fewer hops (a higher received TTL), or comes from a stack with another initial TTL,
//! than the target's SYN-ACKs; a netfilter REJECT rule does not echo the SYN's TOS byte and sends IPv6 flow
//! label 0, where a Linux stack's own RST echoes the TOS and carries a flow label. The [`Analyzer`] collects a
//! baseline per server address from every attempt in the capture and judges each attempt against it.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;

use crate::matcher::{ClosedAttempt, Spent};
use crate::model::{Attempt, Closure, HopCount, Reply, ReplyKind};
use crate::record::AddrText;
use crate::time::Duration;
use crate::verdict::{Confidence, Evidence, Judgement, Rejecter, RejecterKind, Verdict};

/// `format!` into a string with room for a typical sentence from the start: judging writes several sentences per
/// attempt, and growing each from the size of its literal parts cost a reallocation or two apiece.
/// The string comes from this thread's pool when a recycled report left one there (see [`crate::pool`]).
macro_rules! sentence {
    ($($arg:tt)*) => {{
        let mut s: String = crate::pool::take(|| String::with_capacity(128));
        let _ = fmt::Write::write_fmt(&mut s, format_args!($($arg)*));
        s
    }};
}

/// A judgement's next steps, in a vector from this thread's pool when there is one.
macro_rules! steps {
    ($($step:expr),* $(,)?) => {{
        let mut v: Vec<Cow<'static, str>> = crate::pool::take(|| Vec::with_capacity(4));
        $(v.push($step);)*
        v
    }};
}

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

    /// "TTL 50 (initial 64, 15 hops away)", written where it is used (no string of its own).
    fn describe(&self) -> impl fmt::Display + '_ {
        DisplayWith(move |f: &mut fmt::Formatter<'_>| {
            write!(
                f,
                "TTL {} (initial {}, {} hop{} away)",
                self.received,
                self.initial,
                self.hops.0,
                if self.hops.0 == 1 { "" } else { "s" }
            )
        })
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
    /// "8" or "7-9", written where it is used.
    fn describe_hops(&self) -> impl fmt::Display + '_ {
        DisplayWith(move |f: &mut fmt::Formatter<'_>| {
            if self.min == self.max {
                write!(f, "{}", self.min)
            } else {
                write!(f, "{}-{}", self.min, self.max)
            }
        })
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

/// How the RSTs for one port of a server treated a non-zero TOS.
#[derive(Debug, Clone, Copy, Default)]
struct PortTos {
    port: u16,
    hops: u8,
    echoed: u32,
    zeroed: u32,
}

/// Ports per server whose TOS behaviour is remembered.
const MAX_PORT_TOS: usize = 64;

/// What one server address has shown across the capture.
#[derive(Debug, Clone, Default)]
struct ServerBaseline {
    synack: HopSet,
    echo: HopSet,
    rsts: Vec<RstCluster>,
    port_tos: Vec<PortTos>,
    /// The first ICMP error about the whole address: it applies to every port without an answer of its own.
    route_error: Option<RouteError>,
    /// SYN-ACKs whose options Linux laid out.
    synack_linux: u32,
}

/// An ICMP unreachable about a whole address, as the baseline keeps it.
#[derive(Debug, Clone, Copy)]
struct RouteError {
    from: IpAddr,
    code: crate::wire::Unreachable,
    ttl: u8,
    port: u16,
}

impl ServerBaseline {
    fn learn_rst(&mut self, port: u16, syn_tos: u8, reply: &LessonReply) {
        let r = TtlReading::of(reply.ttl);
        let tos = tos_behaviour(syn_tos, reply.tos);
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
        if matches!(tos, TosBehaviour::Echoed | TosBehaviour::Zeroed) {
            let slot = match self
                .port_tos
                .iter()
                .position(|p| p.port == port && p.hops == r.hops.0)
            {
                Some(i) => Some(i),
                None if self.port_tos.len() < MAX_PORT_TOS => {
                    self.port_tos.push(PortTos {
                        port,
                        hops: r.hops.0,
                        ..PortTos::default()
                    });
                    Some(self.port_tos.len() - 1)
                }
                None => None,
            };
            if let Some(i) = slot {
                match tos {
                    TosBehaviour::Echoed => self.port_tos[i].echoed += 1,
                    _ => self.port_tos[i].zeroed += 1,
                }
            }
        }
        let c = &mut self.rsts[idx];
        c.count = c.count.saturating_add(1);
        match tos {
            TosBehaviour::Echoed => c.tos_echoed += 1,
            TosBehaviour::Zeroed => c.tos_zeroed += 1,
            _ => {}
        }
        match reply.flow_label {
            Some(0) => c.flow_zero += 1,
            Some(_) => c.flow_nonzero += 1,
            None => {}
        }
    }

    /// The target's distance as its own replies show it: SYN-ACKs, then echo replies. Where SYN-ACKs come
    /// from farther than the address's echo replies, they come through port forwards to backends beyond it, and
    /// the echo replies tell the address's own distance.
    fn target_hops(&self) -> Option<HopCount> {
        if self.synack.count > 0 && self.echo.count > 0 && self.synack.max > self.echo.max {
            Some(HopCount(self.echo.max))
        } else if self.synack.count > 0 {
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
    /// How long (capture time) an RST attempt is held after it ends, so that later attempts to the same host (a
    /// SYN-ACK on another port, a TOS-marked SYN) can inform its verdict (default 10 s).
    pub lookahead: Duration,
    /// The attempts are a live run's own probes (default false): next steps then never suggest a live run, and
    /// an ICMP routing error about an address (a routing code from a router, or a `prohibit` route) is carried
    /// over to the unanswered attempts to every port of it, whose own errors the router's ICMP rate limit
    /// most likely withheld. (A capture of unrelated traffic is not read that way.)
    pub live: bool,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            max_pending: 4096,
            max_servers: 1 << 16,
            lookahead: Duration::from_millis(10_000),
            live: false,
        }
    }
}

/// What the [`Analyzer`] learns about a server from one attempt: the decisive reply, as far as baselines use it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lesson {
    pub(crate) reply: Option<LessonReply>,
    /// The SYN's TOS byte.
    pub(crate) syn_tos: u8,
}

/// The decisive reply, as far as baselines use it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LessonReply {
    pub(crate) kind: ReplyKind,
    pub(crate) exact: bool,
    /// Whether it came from the server itself.
    pub(crate) from_server: bool,
    pub(crate) ttl: u8,
    pub(crate) tos: u8,
    pub(crate) flow_label: Option<u32>,
    /// Its round-trip time ([`rtt_of`]).
    pub(crate) rtt: Option<Duration>,
    /// For an ICMP unreachable about the whole address (a routing code, or a prohibition sent before the SYN
    /// was forwarded: a `prohibit` route), its sender; see [`route_error_of`].
    pub(crate) route_error_from: Option<IpAddr>,
    /// For a SYN-ACK: its options are laid out as only Linux lays them out ([`linux_option_layout`]).
    pub(crate) linux_layout: bool,
}

/// Whether TCP options start as Linux writes a SYN-ACK's: MSS, then SACK-permitted and timestamps packed
/// together with no padding between (`02 04 xx xx 04 02 08 0a`). BSDs, macOS and Windows put NOPs and window
/// scale first. Such a stack echoes the SYN's TOS in its own RSTs.
pub(crate) fn linux_option_layout(options: &[u8]) -> bool {
    matches!(options, [2, 4, _, _, 4, 2, 8, 10, ..])
}

impl Lesson {
    /// The lesson of an unpacked attempt.
    pub(crate) fn of(attempt: &Attempt) -> Lesson {
        Lesson {
            reply: attempt.decisive_reply().map(|r| LessonReply {
                kind: r.kind,
                exact: r.exact,
                from_server: r.source() == attempt.probe.key.server,
                ttl: r.seen.packet.ip.ttl,
                tos: r.seen.packet.ip.tos,
                flow_label: r.seen.packet.ip.flow_label,
                rtt: rtt_of(attempt, r),
                route_error_from: route_error_of(attempt, r),
                linux_layout: r.kind == ReplyKind::SynAck
                    && r.seen
                        .packet
                        .tcp()
                        .is_some_and(|t| linux_option_layout(t.options.as_bytes())),
            }),
            syn_tos: attempt.probe.tos,
        }
    }
}

/// An attempt held back by the [`Analyzer`].
#[expect(
    clippy::large_enum_variant,
    reason = "the compact form is the common one, held inline in the queue's places; the rare unpacked one is boxed"
)]
enum Held {
    /// Pushed unpacked (boxed: these are few, and the queue's places stay the size of the compact form).
    Full(Box<Attempt>),
    /// Pushed in the matcher's compact form; `rst` if its decisive reply is an RST.
    Compact { closed: ClosedAttempt, rst: bool },
}

/// Judges closed attempts against per-server baselines built from the whole capture.
///
/// Attempts come out in the order they went in; an RST attempt from an address with no SYN-ACK yet is held back
/// (within [`AnalyzerConfig::max_pending`]) so that a SYN-ACK later in the capture can still serve as its
/// baseline.
pub struct Analyzer {
    config: AnalyzerConfig,
    baselines: HashMap<IpAddr, ServerBaseline, Hasher>,
    pending: VecDeque<Held>,
    ready: VecDeque<(Attempt, Judgement)>,
    baselines_refused: u64,
    now: crate::time::Timestamp,
    /// The overflow boxes of attempts unpacked here, kept for their own thread when `keep_spent` is set.
    spent: Vec<Spent>,
    keep_spent: bool,
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
            now: crate::time::Timestamp(i64::MIN),
            spent: Vec::new(),
            keep_spent: false,
        }
    }

    /// Keep the overflow boxes of the compact attempts this analyzer unpacks, for [`Analyzer::take_spent`],
    /// instead of freeing them: for a caller whose attempts were matched on another thread.
    pub(crate) fn keep_spent(&mut self) {
        self.keep_spent = true;
    }

    /// Move the overflow boxes kept since the last call into `into`.
    pub(crate) fn take_spent(&mut self, into: &mut Vec<Spent>) {
        into.append(&mut self.spent);
    }

    /// Unpack a compact attempt, keeping its overflow boxes if asked to.
    fn unpack(&mut self, closed: ClosedAttempt) -> Attempt {
        let (attempt, spent) = closed.unpack();
        if let Some(s) = spent.filter(|_| self.keep_spent) {
            self.spent.push(s);
        }
        attempt
    }

    /// Move capture time forward: held attempts whose lookahead has passed are judged.
    pub fn advance(&mut self, now: crate::time::Timestamp) {
        if now > self.now {
            self.now = now;
            self.release(false);
        }
    }

    /// An ICMP echo reply from `src`: its distance joins the baseline (weaker than a SYN-ACK).
    pub fn note_echo_reply(&mut self, src: IpAddr, ttl: u8, flow_label: Option<u32>) {
        if let Some(b) = self.baseline_mut(src) {
            b.echo.add(TtlReading::of(ttl), flow_label, None);
            b.route_error = None;
        }
    }

    /// Take a closed attempt: learn from it, then judge whatever is ready.
    pub fn push(&mut self, attempt: Attempt) {
        self.learn(&attempt);
        self.hold(Held::Full(Box::new(attempt)));
    }

    /// [`Analyzer::push`] for an attempt still in the matcher's compact form: it learns from the compact form and
    /// is held in it (less than half the memory of the unpacked attempt), then unpacked once, to be judged.
    pub(crate) fn push_closed(&mut self, closed: ClosedAttempt) {
        let Some(lesson) = closed.lesson() else {
            // More than the compact first reply: learn from the unpacked attempt.
            let attempt = self.unpack(closed);
            self.push(attempt);
            return;
        };
        self.learn_lesson(closed.server(), closed.server_port(), &lesson);
        let rst = lesson.reply.is_some_and(|r| r.kind == ReplyKind::Rst);
        self.hold(Held::Compact { closed, rst });
    }

    fn hold(&mut self, held: Held) {
        // The queue is a ring that is written all over: let it grow to what it can hold (max_pending + 1, the
        // attempt just pushed) and no further, not to the next power of two.
        if self.pending.len() == self.pending.capacity() {
            let room = self.config.max_pending.saturating_add(1);
            let more = self
                .pending
                .len()
                .max(16)
                .min(room.saturating_sub(self.pending.len()));
            self.pending.reserve_exact(more.max(1));
        }
        self.pending.push_back(held);
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
        judge(attempt, b, self.config.live)
    }

    fn baseline_mut(&mut self, addr: IpAddr) -> Option<&mut ServerBaseline> {
        if !self.baselines.contains_key(&addr) && self.baselines.len() >= self.config.max_servers {
            self.baselines_refused += 1;
            return None;
        }
        Some(self.baselines.entry(addr).or_default())
    }

    fn learn(&mut self, attempt: &Attempt) {
        let k = &attempt.probe.key;
        self.learn_lesson(k.server, k.server_port.0, &Lesson::of(attempt));
    }

    /// Learn from an attempt to `server`:`port`.
    fn learn_lesson(&mut self, server: IpAddr, port: u16, lesson: &Lesson) {
        let Some(reply) = &lesson.reply else {
            return;
        };
        if let (Some(from), ReplyKind::Unreachable(code), true) =
            (reply.route_error_from, reply.kind, reply.exact)
        {
            if let Some(b) = self.baseline_mut(server) {
                b.route_error.get_or_insert(RouteError {
                    from,
                    code,
                    ttl: reply.ttl,
                    port,
                });
            }
            return;
        }
        if !reply.exact || !reply.from_server {
            return;
        }
        let Some(b) = self.baseline_mut(server) else {
            return;
        };
        if matches!(reply.kind, ReplyKind::SynAck | ReplyKind::Rst) {
            // The address answers: an earlier routing error about it no longer holds.
            b.route_error = None;
        }
        match reply.kind {
            ReplyKind::SynAck => {
                b.synack
                    .add(TtlReading::of(reply.ttl), reply.flow_label, reply.rtt);
                if reply.linux_layout {
                    b.synack_linux = b.synack_linux.saturating_add(1);
                }
            }
            ReplyKind::Rst => b.learn_rst(port, lesson.syn_tos, reply),
            _ => {}
        }
    }

    fn must_wait(&self, held: &Held) -> bool {
        let (rst, closed_at, server) = match held {
            Held::Full(a) => (
                a.decisive_reply().is_some_and(|r| r.kind == ReplyKind::Rst),
                a.closed_at,
                a.probe.key.server,
            ),
            Held::Compact { closed, rst } => (*rst, closed.closed_at(), closed.server()),
        };
        rst && (self.now < closed_at.plus(self.config.lookahead)
            || self
                .baselines
                .get(&server)
                .is_none_or(|b| b.synack.count == 0))
    }

    fn release(&mut self, all: bool) {
        while let Some(front) = self.pending.front() {
            if !all && self.pending.len() <= self.config.max_pending && self.must_wait(front) {
                break;
            }
            let attempt = match self.pending.pop_front() {
                Some(Held::Full(a)) => *a,
                Some(Held::Compact { closed, .. }) => self.unpack(closed),
                None => break,
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

fn judge(a: &Attempt, b: &ServerBaseline, live: bool) -> Judgement {
    match a.decisive_reply() {
        Some(r) if r.kind == ReplyKind::SynAck => judge_open(a, r, b),
        Some(r) if r.kind == ReplyKind::Rst => judge_rst(a, r, b, live),
        Some(r) => judge_icmp(a, r, b),
        None => match b.route_error {
            Some(e) if live => judge_route_error(a, b, e),
            _ => judge_silence(a, b, live),
        },
    }
}

/// The sender of an ICMP unreachable that concerns the whole address, not just the attempt's port: a routing
/// code (no route, host or network unreachable) from a device other than the target, or a prohibition sent
/// before the SYN was forwarded: a `prohibit` route quotes the TTL its sender received, where a FORWARD REJECT
/// rule quotes it after its own decrement, and a rule on the target is the target's.
pub(crate) fn route_error_of(a: &Attempt, r: &Reply) -> Option<IpAddr> {
    let ReplyKind::Unreachable(code) = r.kind else {
        return None;
    };
    let src = r.source();
    if src == a.probe.key.server || src == a.probe.key.client {
        return None;
    }
    let quote_ttl = r
        .seen
        .packet
        .icmp_error()
        .and_then(|e| e.quote)
        .map(|q| q.ttl);
    let hop = TtlReading::of(r.seen.packet.ip.ttl).hops.0;
    is_route_wide(code, hop, quote_ttl, a.probe.ttl.0).then_some(src)
}

/// Whether an ICMP unreachable that a device other than the target sent from `hop` hops away, quoting our SYN
/// (sent with TTL `sent_ttl`) with `quote_ttl` left, concerns the whole address: a routing code, or a
/// prohibition sent before the SYN was forwarded (the quoted TTL not yet decremented by its sender).
pub(crate) fn is_route_wide(
    code: crate::wire::Unreachable,
    hop: u8,
    quote_ttl: Option<u8>,
    sent_ttl: u8,
) -> bool {
    let before_forwarding = quote_ttl == Some(sent_ttl.saturating_sub(hop.saturating_sub(1)));
    code.is_routing() || (code.is_rejection() && before_forwarding)
}

/// "198.18.1.59 port 3306", written where it is used.
fn port_desc(a: &Attempt) -> impl fmt::Display + '_ {
    DisplayWith(move |f: &mut fmt::Formatter<'_>| {
        write!(
            f,
            "{} port {}",
            AddrText(a.probe.key.server),
            a.probe.key.server_port.0
        )
    })
}

/// A value written by a closure.
struct DisplayWith<F>(F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for DisplayWith<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

fn judge_open(a: &Attempt, r: &Reply, b: &ServerBaseline) -> Judgement {
    let reading = TtlReading::of(r.seen.packet.ip.ttl);
    // SYN-ACKs from farther than the address's own echo replies come through a port forward.
    let own =
        (b.echo.count > 0 && b.echo.has_initial(reading.initial) && reading.hops.0 > b.echo.max)
            .then_some(HopCount(b.echo.max));
    let rtt = rtt_of(a, r);
    let mut evidence = evidence_list(Evidence::new(
        "syn-ack",
        sentence!(
            "SYN-ACK from {} with {}",
            AddrText(r.source()),
            reading.describe()
        ),
        "the target's TCP stack accepted the connection: something listens on the port",
    ));
    if !r.exact {
        evidence.push(Evidence::new(
            "inexact-ack",
            "the SYN-ACK does not acknowledge ISN+1",
            "it may answer an earlier SYN on the same ports; treat with care",
        ));
    }
    if let Some(h) = own {
        evidence.push(Evidence::new(
            "syn-ack-beyond-address",
            sentence!(
                "the SYN-ACK came from {} hop(s) away, the address's echo replies from {}",
                reading.hops.0,
                h.0
            ),
            "the address forwards the port (a port forward, DNAT, a load balancer) to a backend beyond it, and the backend accepted",
        ));
    }
    if a.replies.iter().any(|x| x.kind == ReplyKind::Rst) {
        evidence.push(Evidence::new(
            "rst-and-syn-ack",
            "an RST for the same SYN was seen as well",
            "two devices answered: something on the path also resets this connection",
        ));
    }
    // A SYN proxy (netfilter SYNPROXY, a DDoS scrubber) answers every SYN itself, with a zero window, and
    // connects to the service only once the handshake completes: its SYN-ACK says nothing about the service.
    let proxy = r.seen.packet.tcp().is_some_and(|t| t.window == 0);
    if proxy {
        evidence.push(Evidence::new(
            "syn-ack-window-zero",
            "the SYN-ACK advertises a receive window of 0",
            "a SYN proxy answered (netfilter SYNPROXY answers with window 0; a host's own listener offers a window): the service behind it is not confirmed",
        ));
    }
    let (confidence, headline, next_steps) = if proxy {
        (
            Confidence::Medium,
            sentence!(
                "{} is open at a SYN proxy: whether the service behind it accepts is not confirmed",
                port_desc(a)
            ),
            steps![
                "A full connection tells: `synprobe --connect` completes one, or `nc -vz HOST PORT` (a reset after the handshake means nothing listens behind the proxy)".into(),
                "On the host: `iptables -S | grep SYNPROXY`, `nft list ruleset | grep synproxy`, and `ss -tlnp` for the service".into(),
            ],
        )
    } else {
        (
            if r.exact { Confidence::High } else { Confidence::Low },
            sentence!("{} is open: the host accepted the connection", port_desc(a)),
            steps![
                "TCP is fine: if the client still fails, look above TCP (TLS, the application's logs, an HTTP proxy)"
                    .into(),
            ],
        )
    };
    Judgement {
        verdict: Verdict::Open,
        confidence: if r.exact { confidence } else { Confidence::Low },
        headline,
        rejecter: None,
        target_hops: Some(own.unwrap_or(reading.hops)),
        rtt_ms: rtt.map(Duration::as_millis_f64),
        evidence,
        next_steps,
    }
}

fn judge_rst(a: &Attempt, r: &Reply, b: &ServerBaseline, live: bool) -> Judgement {
    let ip = &r.seen.packet.ip;
    let reading = TtlReading::of(ip.ttl);
    let rtt = rtt_of(a, r);
    let mut evidence = evidence_list(Evidence::new(
        "rst",
        sentence!(
            "RST from {} with {}{}",
            AddrText(r.source()),
            reading.describe(),
            rtt.map_or(String::new(), |d| sentence!(
                ", after {:.2} ms",
                d.as_millis_f64()
            ))
        ),
        "something refused the SYN with a TCP reset",
    ));
    // (confidence, same distance as the target?) of the strongest sign of forgery.
    let mut forged: Option<(Confidence, bool)> = None;
    let mut stack_signs = 0u32;
    let mut target_hops = b.target_hops();

    if b.synack.count > 0 {
        let s = &b.synack;
        if !s.has_initial(reading.initial) {
            evidence.push(Evidence::new(
                "rst-initial-ttl-differs",
                sentence!(
                    "the RST left its sender with TTL {}, the host's {} SYN-ACK(s) with TTL {}",
                    reading.initial,
                    s.count,
                    s.describe_initials()
                ),
                "a different network stack sent the RST: not the host's own",
            ));
            forged = Some((Confidence::High, false));
        } else if reading.hops.0 < s.min
            && b.echo.count > 0
            && b.echo.has_initial(reading.initial)
            && (b.echo.min..=b.echo.max).contains(&reading.hops.0)
        {
            evidence.push(Evidence::new(
                "rst-at-echo-distance",
                sentence!(
                    "the RST came from the address's own distance ({} hop(s), as its echo replies), its SYN-ACKs from {} hop(s)",
                    reading.hops.0,
                    s.describe_hops()
                ),
                "sent by the address's own host: the SYN-ACKs from farther come through port forwards to backends beyond it",
            ));
            stack_signs += 1;
        } else if reading.hops.0 < s.min {
            let closer = s.min - reading.hops.0;
            evidence.push(Evidence::new(
                "rst-closer-than-synack",
                sentence!(
                    "the RST came from {} hop(s) away, the host's SYN-ACKs from {} hop(s)",
                    reading.hops.0,
                    s.describe_hops()
                ),
                sentence!("a device {closer} hop(s) closer than the host forged the RST"),
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
                sentence!(
                    "the RST came from {} hop(s) away, farther than the host's SYN-ACKs ({} hop(s))",
                    reading.hops.0,
                    s.describe_hops()
                ),
                "the return path changed, or the RST crossed another path: distance cannot decide",
            ));
        } else {
            evidence.push(Evidence::new(
                "rst-same-distance",
                sentence!(
                    "same distance ({} hop(s)) and initial TTL as the host's {} SYN-ACK(s)",
                    reading.hops.0,
                    s.count
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
    } else if b.echo.count > 0
        && !b.echo.has_initial(reading.initial)
        && b.rsts
            .iter()
            .any(|c| c.initial != reading.initial && b.echo.has_initial(c.initial))
    {
        // The host's echo replies and its other RSTs agree on one initial TTL; this RST has another.
        evidence.push(Evidence::new(
            "rst-initial-ttl-differs",
            sentence!(
                "the RST left its sender with TTL {}, the host's echo replies and its other RSTs with TTL {}",
                reading.initial,
                b.echo.describe_initials()
            ),
            "a different network stack sent the RST: not the host's own",
        ));
        forged = Some((Confidence::High, false));
    } else if b.echo.count > 0 && b.echo.has_initial(reading.initial) && reading.hops.0 < b.echo.min
    {
        evidence.push(Evidence::new(
            "rst-closer-than-echo",
            sentence!(
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
                sentence!(
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
                    sentence!("{others} other RST(s) from this address came from the same distance"),
                    "consistent with the host's own stack, but no SYN-ACK to compare distances with",
                ));
            }
        }
    }

    // The TOS byte: a Linux stack's own RST echoes the SYN's TOS, netfilter's REJECT sends 0.
    let port = a.probe.key.server_port.0;
    let stack_echoes_elsewhere = b
        .port_tos
        .iter()
        .any(|p| p.port != port && p.hops == reading.hops.0 && p.echoed > 0);
    match tos_behaviour(a.probe.tos, ip.tos) {
        TosBehaviour::NotTested => {
            // Another SYN to this port, with a TOS, may have told: same port, same distance.
            if let Some(p) = b
                .port_tos
                .iter()
                .find(|p| p.port == port && p.hops == reading.hops.0)
            {
                if p.zeroed > 0 && p.echoed == 0 && stack_echoes_elsewhere {
                    evidence.push(Evidence::new(
                        "port-tos-zero",
                        sentence!(
                            "a TOS-marked SYN to port {port} drew an RST with TOS 0, while the host's RSTs for other ports echo the TOS"
                        ),
                        "RSTs for this port come from a REJECT rule on the host, not from its stack",
                    ));
                    if forged.is_none() {
                        forged = Some((Confidence::High, true));
                    }
                } else if p.echoed > 0 && p.zeroed == 0 {
                    evidence.push(Evidence::new(
                        "port-tos-echoed",
                        sentence!("a TOS-marked SYN to port {port} drew an RST that echoed the TOS"),
                        "the host's own stack answers for this port: a netfilter REJECT rule sends TOS 0",
                    ));
                    stack_signs += 1;
                }
            }
        }
        TosBehaviour::Echoed => {
            evidence.push(Evidence::new(
                "rst-tos-echoed",
                sentence!("the RST echoed the SYN's TOS 0x{:02x}", a.probe.tos),
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
                sentence!("the RST has TOS 0 though the SYN carried 0x{:02x}", a.probe.tos),
                if stack_echoes {
                    "other RSTs from this host echo the TOS: this one came from a REJECT rule, not the stack"
                } else {
                    "netfilter's REJECT sends TOS 0 where a Linux stack echoes it (other systems may not echo)"
                },
            ));
            // With no RST of the host's to compare: SYN-ACKs from the same distance with Linux's option layout
            // and initial TTL (64) show a Linux stack, which would have echoed the TOS.
            let linux_host = b.synack_linux > 0
                && reading.initial == 64
                && b.synack.has_initial(64)
                && (b.synack.min..=b.synack.max).contains(&reading.hops.0);
            if stack_echoes && forged.is_none() {
                forged = Some((Confidence::High, true));
            } else if linux_host && forged.is_none() {
                evidence.push(Evidence::new(
                    "rst-tos-zero-linux-host",
                    "the host's SYN-ACKs come from the same distance with Linux's TCP option layout (MSS, SACK, timestamps packed)",
                    "a Linux stack's own RST echoes the TOS: this RST came from a REJECT rule on the host",
                ));
                forged = Some((Confidence::Medium, true));
            }
        }
        _ => {}
    }
    if ip.flow_label == Some(0) && forged.is_none() {
        let labelled = b.rsts.iter().any(|c| {
            c.hops == reading.hops.0 && c.initial == reading.initial && c.flow_nonzero > 0
        });
        if labelled {
            evidence.push(Evidence::new(
                "rst-flow-label-zero",
                "the RST has IPv6 flow label 0 while other RSTs from this host carry flow labels",
                "netfilter's REJECT sends flow label 0; the host's own stack labels its packets",
            ));
            forged = Some((Confidence::Medium, true));
        }
    }
    if let Some(label) = ip.flow_label {
        if label != 0 && forged.is_none() {
            evidence.push(Evidence::new(
                "rst-flow-label",
                sentence!("the RST carries IPv6 flow label 0x{label:05x}"),
                "netfilter's REJECT sends flow label 0: a stack sent this one",
            ));
            stack_signs += 1;
        }
    }
    if !r.exact {
        let ack = r.seen.packet.tcp().map_or(0, |t| t.ack);
        evidence.push(Evidence::new(
            "rst-inexact-ack",
            sentence!(
                "the RST acknowledges {ack}, not the SYN's ISN+1 ({})",
                a.probe.isn.expected_ack()
            ),
            "a stack answering this SYN acknowledges it exactly: this RST may be injected or stale",
        ));
    }

    let server = a.probe.key.server;
    match forged {
        Some((confidence, at_target)) => {
            // Consistency with other RSTs says nothing once one of them is shown to be forged.
            evidence.retain(|e| e.code != "rst-consistent");
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
                sentence!(
                    "{}: RST from a firewall rule on the host itself, not its TCP stack",
                    port_desc(a)
                )
            } else {
                sentence!(
                    "{}: RST forged by a firewall at hop {}{}, not by the host (it used the host's address)",
                    port_desc(a),
                    reading.hops.0,
                    target_hops.map_or(String::new(), |t| sentence!(" in front of the host at hop {}", t.0))
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
                    kind: if is_target {
                        RejecterKind::Target
                    } else {
                        RejecterKind::Router
                    },
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
                    if live {
                        "read as the host's own RST; a firewall at the same distance or on the host would look alike"
                    } else {
                        "read as the host's own RST; a firewall at the same distance or on the host would look alike (run `sudo synprobe HOST PORT` to test it live)"
                    },
                ));
            } else if stack_signs < 2 {
                evidence.push(Evidence::new(
                    "host-rule-possible",
                    "no TOS- or flow-label test in this capture",
                    if live {
                        "a firewall rule on the host itself would look the same"
                    } else {
                        "a firewall rule on the host itself would look the same (run `sudo synprobe HOST PORT`: it sends a TOS-marked SYN to tell)"
                    },
                ));
            }
            let hops = target_hops.or(Some(reading.hops));
            Judgement {
                verdict: Verdict::Closed,
                confidence,
                headline: sentence!(
                    "{}: closed by the host's own TCP stack: nothing listens on that port and address",
                    port_desc(a)
                ),
                rejecter: Some(Rejecter {
                    addr: r.source(),
                    hops,
                    is_target: r.source() == server,
                    kind: if r.source() == server {
                        RejecterKind::Target
                    } else {
                        RejecterKind::Router
                    },
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
const FORGERY_CODES: [&str; 7] = [
    "port-tos-zero",
    "rst-initial-ttl-differs",
    "rst-closer-than-synack",
    "rst-closer-than-echo",
    "rst-closer-than-other-rsts",
    "rst-tos-zero",
    "rst-flow-label-zero",
];

/// A judgement's evidence, starting with `first`, with room for the few more most judgements add.
fn evidence_list(first: Evidence) -> Vec<Evidence> {
    let mut v = crate::pool::take(|| Vec::with_capacity(4));
    v.push(first);
    v
}

fn closed_steps(a: &Attempt) -> Vec<Cow<'static, str>> {
    let port = a.probe.key.server_port.0;
    steps![
        sentence!("On {}: `ss -tlnp 'sport = :{port}'` shows whether anything listens on port {port}", AddrText(a.probe.key.server)).into(),
        "If the service is stopped: `systemctl status <service>`, then its logs (`journalctl -u <service>`)".into(),
        sentence!(
            "If it listens only on 127.0.0.1 or ::1 (`ss -tln` shows 127.0.0.1:{port}), bind it to 0.0.0.0/:: or the public address"
        ).into(),
        "On Windows a full listen backlog also answers RST (Linux drops the SYNs instead): check the service's accept loop".into(),
    ]
}

fn firewall_rst_steps(a: &Attempt, at_target: bool) -> Vec<Cow<'static, str>> {
    let port = a.probe.key.server_port.0;
    let mut v: Vec<Cow<'static, str>> = crate::pool::take(|| Vec::with_capacity(3));
    if at_target {
        v.push(sentence!(
            "On {}: look for a REJECT --reject-with tcp-reset rule for port {port}: `iptables -S | grep -i reject`, `nft list ruleset | grep -i reject`",
            AddrText(a.probe.key.server)
        ).into());
    } else {
        v.push(sentence!(
            "On the device that sent the RST (see rejecter): look for a REJECT --reject-with tcp-reset rule for port {port} (`iptables -S`, `nft list ruleset`), or a firewall/IPS policy that resets connections"
        ).into());
        v.push("In a cloud: check security groups, network ACLs and load-balancer listeners on the path".into());
    }
    v.push("The service itself may be running fine: test from a host beyond the firewall".into());
    v
}

fn judge_icmp(a: &Attempt, r: &Reply, b: &ServerBaseline) -> Judgement {
    let server = a.probe.key.server;
    let src = r.source();
    let is_target = src == server;
    // An error from the client's own address: its own firewall (OUTPUT chain) refused the SYN before it left.
    let is_self = src == a.probe.key.client && !is_target;
    let (src_text, server_text) = (AddrText(src), AddrText(server));
    let reading = TtlReading::of(r.seen.packet.ip.ttl);
    let rtt = rtt_of(a, r);
    let target_hops = b.target_hops();
    let hops = if is_self {
        Some(HopCount(0))
    } else if is_target {
        target_hops.or(Some(reading.hops))
    } else {
        Some(reading.hops)
    };
    let who = if is_self {
        sentence!("the sending host {src_text} itself")
    } else if is_target {
        sentence!("the target {src_text} itself")
    } else {
        sentence!("{src_text} at hop {}", reading.hops.0)
    };
    let mut evidence: Vec<Evidence> = crate::pool::take(|| Vec::with_capacity(4));
    let quote_note = r
        .seen
        .packet
        .icmp_error()
        .and_then(|e| e.quote)
        .filter(|q| q.ttl < a.probe.ttl.0)
        .map(|q| {
            let crossed = a.probe.ttl.0.saturating_sub(q.ttl);
            let tcp_bytes = q.transport_bytes;
            Evidence::new(
                "icmp-quote",
                sentence!(
                    "it quotes our SYN (TTL {} left of {}, {tcp_bytes} bytes of TCP)",
                    q.ttl,
                    a.probe.ttl.0
                ),
                sentence!("the SYN had crossed about {crossed} router(s) when it was turned back"),
            )
        });
    let (verdict, confidence, headline, mut steps) = match r.kind {
        ReplyKind::Unreachable(code) => {
            let text = code.description();
            evidence.push(Evidence::new(
                "icmp-unreachable",
                sentence!(
                    "ICMP destination unreachable ({text}) from {who}, {}",
                    reading.describe()
                ),
                match code.linux_source() {
                    Some(src) => sentence!("typically produced by {src}"),
                    None => "the packet could not be delivered".to_string(),
                },
            ));
            if code.is_rejection() && is_self {
                (
                    Verdict::IcmpRejected,
                    Confidence::High,
                    sentence!(
                        "{}: rejected by a firewall rule on the sending host {src_text} itself (ICMP {text}); the SYN never left it",
                        port_desc(a)
                    ),
                    steps![
                        sentence!("On {src_text}: look for a REJECT rule in the OUTPUT chain: `iptables -S OUTPUT`, `ip6tables -S OUTPUT`, `nft list ruleset`").into(),
                        "Local security software (a host firewall, a container or VPN policy) can install such rules".into(),
                    ],
                )
            } else if code.is_rejection() {
                let mut steps = steps![
                    sentence!(
                        "On {src_text}: find the REJECT rule (`iptables -S | grep REJECT`, `ip6tables -S`, `nft list ruleset`) or a `prohibit` route (`ip route show type prohibit`)"
                    ).into(),
                    "A REJECT rule answers at once; if the port must be reachable, allow it before that rule".into(),
                ];
                if is_target
                    && matches!(
                        code,
                        crate::wire::Unreachable::Port
                            | crate::wire::Unreachable::V6PortUnreachable
                    )
                {
                    // A TCP stack never answers port unreachable: a rule did, and kube-proxy's is a common one.
                    steps.push("Kubernetes: kube-proxy rejects a Service's port this way while it has no ready endpoint: `kubectl get endpoints -A | grep '<none>'`, then the pods' readiness".into());
                }
                (
                    Verdict::IcmpRejected,
                    Confidence::High,
                    sentence!("{}: rejected by {who} with ICMP {text}", port_desc(a)),
                    steps,
                )
            } else if is_target {
                // A host does not call itself unreachable: it tried to forward the SYN (a port forward, DNAT) to a
                // neighbour that never answered ARP / neighbour discovery.
                (
                    Verdict::Unreachable,
                    Confidence::High,
                    sentence!(
                        "{}: {who} forwards the port to a backend that does not answer ({text}): a port forward to a stopped container or a gone backend",
                        port_desc(a)
                    ),
                    steps![
                        sentence!("On {src_text}: find where the port is forwarded: `iptables -t nat -S | grep -- '--dport {}'`, `nft list ruleset | grep dnat`, `docker ps -a`", a.probe.key.server_port.0).into(),
                        "Is the backend up? `ip neigh` on the target shows FAILED for its address; restart the container, or remove the stale rule".into(),
                    ],
                )
            } else {
                (
                    Verdict::Unreachable,
                    Confidence::High,
                    sentence!("{}: unreachable, {who} reports {text}", port_desc(a)),
                    steps![
                        sentence!("On {src_text}: `ip route get {server_text}` shows which route (or `unreachable` route) applies").into(),
                        sentence!("If the route is right: is {server_text} up, and does it answer ARP/neighbour discovery (`ip neigh`) on its link?").into(),
                    ],
                )
            }
        }
        ReplyKind::TimeExceeded => {
            let deliberate = a.probe.ttl.0 < 30;
            evidence.push(Evidence::new(
                "time-exceeded",
                sentence!("ICMP time exceeded from {who}, {}", reading.describe()),
                if deliberate {
                    sentence!(
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
                sentence!("{}: the SYN expired in transit at {who}", port_desc(a)),
                steps![sentence!(
                    "Trace the path (`mtr -T -P {} {server_text}`) and look for a loop",
                    a.probe.key.server_port.0
                )
                .into()],
            )
        }
        _ => {
            let e = r.seen.packet.icmp_error();
            evidence.push(Evidence::new(
                "icmp-error",
                sentence!(
                    "ICMP error type {} code {} from {who}",
                    e.map_or(0, |e| e.icmp_type),
                    e.map_or(0, |e| e.code)
                ),
                "the SYN could not be delivered as sent",
            ));
            (
                Verdict::Unreachable,
                Confidence::Low,
                sentence!(
                    "{}: an ICMP error from {who} turned the SYN back",
                    port_desc(a)
                ),
                steps![sentence!("Check the path MTU and routing towards {server_text}").into()],
            )
        }
    };
    if let Some(q) = quote_note {
        evidence.push(q);
    }
    if a.syn_count == 0 {
        evidence.push(Evidence::new(
            "syn-not-captured",
            "the SYN itself is not in the capture",
            "the attempt was rebuilt from the SYN quoted in the ICMP error",
        ));
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
    if verdict == Verdict::IcmpRejected && !is_target && server.is_loopback() {
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
            kind: if is_self {
                RejecterKind::Sender
            } else if is_target {
                RejecterKind::Target
            } else {
                RejecterKind::Router
            },
        }),
        target_hops,
        rtt_ms: rtt.map(Duration::as_millis_f64),
        evidence,
        next_steps: steps,
    }
}

fn judge_silence(a: &Attempt, b: &ServerBaseline, live: bool) -> Judgement {
    let waited = a.closed_at.since(a.last_syn);
    let span = a.last_syn.since(a.probe.ts);
    let mut evidence = evidence_list(Evidence::new(
        "silence",
        sentence!(
            "{} SYN(s) over {:.1} s, no reply within {:.1} s of the last",
            a.syn_count,
            span.as_secs_f64(),
            waited.as_secs_f64()
        ),
        "something dropped the SYNs or the replies without a word",
    ));
    let mut confidence = if a.syn_count >= 2 {
        Confidence::Medium
    } else {
        Confidence::Low
    };
    if let Some(h) = b.target_hops() {
        evidence.push(Evidence::new(
            "host-answers-elsewhere",
            sentence!(
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
            sentence!(
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
    let mut next_steps = steps![
        "A DROP rule, a blackhole route, or a host that is down behind a router that sends no ICMP".into(),
        "On a Linux host, a full listen backlog drops SYNs silently too: `nstat -az TcpExtListenOverflows TcpExtListenDrops`, and Recv-Q against Send-Q in `ss -tln`".into(),
        "On the suspected firewall: `iptables -S | grep DROP`, `nft list ruleset | grep drop`; in a cloud, security groups and NACLs".into(),
    ];
    if !live {
        next_steps.insert(
            2,
            sentence!(
                "Run `sudo synprobe {} {}` live: its TTL walk shows after which hop the SYNs vanish",
                AddrText(a.probe.key.server),
                a.probe.key.server_port.0
            )
            .into(),
        );
    }
    Judgement {
        verdict: Verdict::Filtered,
        confidence,
        headline: sentence!("{}: filtered, every SYN went unanswered", port_desc(a)),
        rejecter: None,
        target_hops: b.target_hops(),
        rtt_ms: None,
        evidence,
        next_steps,
    }
}

/// An unanswered attempt to an address about which an ICMP routing error came (for another port, or the echo):
/// the error applies to it too; its own SYNs most likely met the router's ICMP rate limit.
fn judge_route_error(a: &Attempt, b: &ServerBaseline, e: RouteError) -> Judgement {
    let reading = TtlReading::of(e.ttl);
    let (from, server) = (AddrText(e.from), AddrText(a.probe.key.server));
    let text = e.code.description();
    let rejection = e.code.is_rejection();
    let mut evidence = evidence_list(Evidence::new(
        "route-error-for-address",
        sentence!(
            "ICMP destination unreachable ({text}) from {from} at hop {} about {server}, for a SYN to port {}",
            reading.hops.0,
            e.port
        ),
        "a routing error concerns the whole address: every port of it is affected",
    ));
    evidence.push(Evidence::new(
        "silence-rate-limited",
        sentence!(
            "{} SYN(s) to this port drew no answer of their own",
            a.syn_count
        ),
        "routers send ICMP errors to one destination from a small token bucket (a burst, then about one a second): these were most likely not sent for that reason",
    ));
    let mut steps = steps![
        sentence!("On {from}: `ip route get {server}` shows which route (or `unreachable`/`prohibit` route) applies").into(),
    ];
    if rejection {
        steps.push(sentence!("A `prohibit` route or a policy on {from} refuses every packet to {server}: `ip route show type prohibit`, `ip rule`").into());
    } else {
        steps.push(sentence!("If the route is right: is {server} up, and does it answer ARP/neighbour discovery (`ip neigh`) on its link?").into());
    }
    Judgement {
        verdict: if rejection {
            Verdict::IcmpRejected
        } else {
            Verdict::Unreachable
        },
        confidence: Confidence::Medium,
        headline: sentence!(
            "{}: {} by {from} at hop {} ({text}), which answered for another port of the address",
            port_desc(a),
            if rejection { "rejected" } else { "unreachable" },
            reading.hops.0
        ),
        rejecter: Some(Rejecter {
            addr: e.from,
            hops: Some(reading.hops),
            is_target: false,
            kind: RejecterKind::Router,
        }),
        target_hops: b.target_hops(),
        rtt_ms: None,
        evidence,
        next_steps: steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{icmp_error, IpSpec, QuoteLen, TcpSpec, Timeline};
    use crate::{EngineConfig, Report};

    const C4: &str = "198.18.0.2";
    const S4: &str = "198.18.9.9";
    const C6: &str = "2001:db8::2";
    const S6: &str = "2001:db8:9::9";

    fn addr(a: &str) -> IpAddr {
        a.parse().expect("test address")
    }

    fn out(c: &str, s: &str) -> IpSpec {
        IpSpec::new(addr(c), addr(s))
    }
    fn back(c: &str, s: &str, ttl: u8) -> IpSpec {
        IpSpec::new(addr(s), addr(c)).ttl(ttl)
    }
    fn run(t: &Timeline) -> Vec<Report> {
        t.judge(EngineConfig::default())
    }
    fn for_port(reports: &[Report], port: u16) -> &Report {
        reports
            .iter()
            .find(|r| r.attempt.probe.key.server_port.0 == port)
            .expect("a report for the port")
    }

    /// A SYN to `port` from the client with `tos`, and the server-side reply built by `reply`.
    fn exchange(
        t: &mut Timeline,
        ms: f64,
        port: u16,
        tos: u8,
        reply: impl FnOnce(&TcpSpec) -> Option<Vec<u8>>,
    ) {
        let syn = TcpSpec::syn(40000 + port, port, 1000 + u32::from(port)).linux_options();
        t.at(ms, syn.emit(&out(C4, S4).tos(tos)).expect("syn"));
        if let Some(r) = reply(&syn) {
            t.at(ms + 20.0, r);
        }
    }

    #[test]
    fn ttl_reading() {
        assert_eq!(TtlReading::of(57).hops, HopCount(8));
        assert_eq!(TtlReading::of(64).hops, HopCount(1));
        assert_eq!(
            (TtlReading::of(113).initial, TtlReading::of(113).hops),
            (128, HopCount(16))
        );
        assert_eq!(
            (TtlReading::of(250).initial, TtlReading::of(250).hops),
            (255, HopCount(6))
        );
        assert_eq!(TtlReading::of(30).initial, 32);
        assert_eq!(TtlReading::of(0).hops, HopCount(33));
    }

    #[test]
    fn rst_four_hops_closer_than_the_synack_is_forged_even_when_it_comes_first() {
        let mut t = Timeline::starting_at(1_700_000_000);
        // The RST for port 81 is captured before the server's SYN-ACK for 443: the judgement must wait for it.
        exchange(&mut t, 0.0, 81, 0, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 61)).expect("rst"))
        });
        exchange(&mut t, 100.0, 443, 0, |s| {
            Some(
                TcpSpec::syn_ack_to(s, 7)
                    .emit(&back(C4, S4, 57))
                    .expect("syn-ack"),
            )
        });
        let reports = run(&t);
        assert_eq!(reports.len(), 2);
        assert_eq!(
            reports[0].attempt.probe.key.server_port.0, 81,
            "order of attempts is kept"
        );
        let j = &for_port(&reports, 81).judgement;
        assert_eq!(j.verdict, Verdict::FirewallRst);
        assert_eq!(j.confidence, Confidence::High);
        let rej = j.rejecter.expect("rejecter");
        assert_eq!(
            (rej.addr, rej.hops, rej.is_target),
            (addr(S4), Some(HopCount(4)), false)
        );
        assert_eq!(j.target_hops, Some(HopCount(8)));
        assert_eq!(j.evidence[0].code, "rst-closer-than-synack");
        assert!(
            j.evidence[0].implies.contains("4 hop(s) closer"),
            "{:?}",
            j.evidence[0]
        );
        assert_eq!(for_port(&reports, 443).judgement.verdict, Verdict::Open);
    }

    #[test]
    fn rst_at_the_synack_distance_is_closed_and_a_tos_echo_makes_it_certain() {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 443, 0, |s| {
            Some(
                TcpSpec::syn_ack_to(s, 7)
                    .emit(&back(C4, S4, 57))
                    .expect("sa"),
            )
        });
        exchange(&mut t, 100.0, 81, 0, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 57)).expect("rst"))
        });
        exchange(&mut t, 200.0, 82, 0x10, |s| {
            Some(
                TcpSpec::rst_to(s)
                    .emit(&back(C4, S4, 57).tos(0x10))
                    .expect("rst"),
            )
        });
        let reports = run(&t);
        let plain = &for_port(&reports, 81).judgement;
        assert_eq!(
            (plain.verdict, plain.confidence),
            (Verdict::Closed, Confidence::Medium)
        );
        assert!(plain
            .evidence
            .iter()
            .any(|e| e.code == "host-rule-possible"));
        let echoed = &for_port(&reports, 82).judgement;
        assert_eq!(
            (echoed.verdict, echoed.confidence),
            (Verdict::Closed, Confidence::High)
        );
        let rej = echoed.rejecter.expect("the host");
        assert!(rej.is_target);
        assert_eq!(rej.hops, Some(HopCount(8)));
    }

    #[test]
    fn rst_without_the_tos_echo_the_hosts_stack_gives_is_a_rule_on_the_host() {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 443, 0, |s| {
            Some(
                TcpSpec::syn_ack_to(s, 7)
                    .emit(&back(C4, S4, 62))
                    .expect("sa"),
            )
        });
        exchange(&mut t, 100.0, 81, 0x10, |s| {
            Some(
                TcpSpec::rst_to(s)
                    .emit(&back(C4, S4, 62).tos(0x10))
                    .expect("stack rst"),
            )
        });
        exchange(&mut t, 200.0, 8080, 0x10, |s| {
            Some(
                TcpSpec::rst_to(s)
                    .emit(&back(C4, S4, 62))
                    .expect("REJECT rst"),
            )
        });
        let reports = run(&t);
        let j = &for_port(&reports, 8080).judgement;
        assert_eq!(
            (j.verdict, j.confidence),
            (Verdict::FirewallRst, Confidence::High)
        );
        let rej = j.rejecter.expect("rejecter");
        assert!(rej.is_target);
        assert_eq!(rej.hops, j.target_hops);
        assert_eq!(rej.hops, Some(HopCount(3)));
        assert_eq!(j.evidence[0].code, "rst-tos-zero");
        assert_eq!(for_port(&reports, 81).judgement.verdict, Verdict::Closed);
    }

    #[test]
    fn a_later_attempt_within_the_lookahead_informs_an_earlier_rst() {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 443, 0, |s| {
            Some(
                TcpSpec::syn_ack_to(s, 7)
                    .emit(&back(C4, S4, 62))
                    .expect("sa"),
            )
        });
        // The REJECT rule's RST comes first; the stack's TOS-echoing RST for another port 2 s later.
        exchange(&mut t, 5000.0, 8080, 0x10, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 62)).expect("rst"))
        });
        exchange(&mut t, 7000.0, 1, 0x10, |s| {
            Some(
                TcpSpec::rst_to(s)
                    .emit(&back(C4, S4, 62).tos(0x10))
                    .expect("stack rst"),
            )
        });
        let reports = run(&t);
        assert_eq!(
            reports[1].attempt.probe.key.server_port.0, 8080,
            "order is kept"
        );
        let j = &for_port(&reports, 8080).judgement;
        assert_eq!(
            (j.verdict, j.confidence),
            (Verdict::FirewallRst, Confidence::High)
        );
        // Past the lookahead, the verdict is given with what was known then: a SYN-ACK (with a BSD's option
        // layout, which says nothing of a TOS echo) and an RST with TOS 0.
        let mut late = Timeline::starting_at(0);
        exchange(&mut late, 0.0, 443, 0, |s| {
            Some(
                TcpSpec::syn_ack_to(s, 7)
                    .options(&[
                        2, 4, 0x05, 0xb4, 1, 3, 3, 6, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0,
                    ])
                    .emit(&back(C4, S4, 62))
                    .expect("sa"),
            )
        });
        exchange(&mut late, 5000.0, 8080, 0x10, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 62)).expect("rst"))
        });
        exchange(&mut late, 30_000.0, 1, 0x10, |s| {
            Some(
                TcpSpec::rst_to(s)
                    .emit(&back(C4, S4, 62).tos(0x10))
                    .expect("stack rst"),
            )
        });
        let reports = run(&late);
        assert_eq!(for_port(&reports, 8080).judgement.verdict, Verdict::Closed);
    }

    /// ufw's `reject` on a Linux host whose every other port is dropped: no RST of its stack to compare, but its
    /// SYN-ACKs carry Linux's option layout, and Linux's own RST would have echoed the TOS.
    #[test]
    fn a_tos_zero_rst_from_a_linux_host_is_a_rule_on_the_host() {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 80, 0, |s| {
            Some(
                TcpSpec::syn_ack_to(s, 7)
                    .emit(&back(C4, S4, 62))
                    .expect("sa"),
            )
        });
        exchange(&mut t, 100.0, 8443, 0x10, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 62)).expect("rst"))
        });
        let reports = run(&t);
        let j = &for_port(&reports, 8443).judgement;
        assert_eq!(
            (j.verdict, j.confidence),
            (Verdict::FirewallRst, Confidence::Medium),
            "{:#?}",
            j.evidence
        );
        assert!(j
            .rejecter
            .is_some_and(|r| r.is_target && r.kind == RejecterKind::Target));
        assert!(j
            .evidence
            .iter()
            .any(|e| e.code == "rst-tos-zero-linux-host"));
    }

    #[test]
    fn rst_from_a_stack_with_another_initial_ttl_is_forged() {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 443, 0, |s| {
            Some(
                TcpSpec::syn_ack_to(s, 7)
                    .emit(&back(C4, S4, 113))
                    .expect("sa"),
            )
        });
        exchange(&mut t, 100.0, 445, 0, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 60)).expect("rst"))
        });
        let reports = run(&t);
        let j = &for_port(&reports, 445).judgement;
        assert_eq!(
            (j.verdict, j.confidence),
            (Verdict::FirewallRst, Confidence::High)
        );
        assert_eq!(j.evidence[0].code, "rst-initial-ttl-differs");
    }

    #[test]
    fn a_linux_firewall_in_front_of_a_windows_host_is_caught_by_its_initial_ttl() {
        let mut t = Timeline::starting_at(0);
        let ping = crate::build::echo(&out(C4, S4), false, 7, 1).expect("ping");
        t.at(0.0, ping);
        t.at(
            1.0,
            crate::build::echo(&back(C4, S4, 118), true, 7, 1).expect("pong"),
        );
        // The host's own stack (initial 128) answers port 1; a firewall (initial 64) answers port 445.
        exchange(&mut t, 10.0, 1, 0, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 118)).expect("rst"))
        });
        exchange(&mut t, 20.0, 445, 0, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 61)).expect("rst"))
        });
        let reports = run(&t);
        let j = &for_port(&reports, 445).judgement;
        assert_eq!(
            (j.verdict, j.confidence),
            (Verdict::FirewallRst, Confidence::High),
            "{:#?}",
            j.evidence
        );
        assert_eq!(j.rejecter.expect("rejecter").hops, Some(HopCount(4)));
        assert_eq!(
            for_port(&reports, 1).judgement.verdict,
            Verdict::Closed,
            "the host's own RST stays closed"
        );
    }

    #[test]
    fn a_windows_host_at_ttl_128_is_closed_not_forged() {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 3389, 0, |s| {
            Some(
                TcpSpec::syn_ack_to(s, 7)
                    .emit(&back(C4, S4, 118))
                    .expect("sa"),
            )
        });
        exchange(&mut t, 100.0, 81, 0, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 118)).expect("rst"))
        });
        let reports = run(&t);
        let j = &for_port(&reports, 81).judgement;
        assert_eq!(j.verdict, Verdict::Closed);
        assert_eq!(j.target_hops, Some(HopCount(11)));
    }

    #[test]
    fn a_lone_rst_is_closed_with_low_confidence_and_says_why() {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 81, 0, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 61)).expect("rst"))
        });
        let j = &run(&t)[0].judgement;
        assert_eq!(
            (j.verdict, j.confidence),
            (Verdict::Closed, Confidence::Low)
        );
        assert!(j.evidence.iter().any(|e| e.code == "no-baseline"));
    }

    #[test]
    fn ipv6_rst_with_flow_label_zero_where_the_host_labels_its_packets() {
        let mut t = Timeline::starting_at(0);
        let syn = TcpSpec::syn(40000, 443, 1).linux_options();
        t.at(0.0, syn.emit(&out(C6, S6).flow_label(0x111)).expect("syn"));
        t.at(
            1.0,
            TcpSpec::syn_ack_to(&syn, 9)
                .emit(&back(C6, S6, 62).flow_label(0xabcde))
                .expect("sa"),
        );
        let syn2 = TcpSpec::syn(40001, 81, 2).linux_options();
        t.at(
            10.0,
            syn2.emit(&out(C6, S6).flow_label(0x222)).expect("syn"),
        );
        t.at(
            11.0,
            TcpSpec::rst_to(&syn2).emit(&back(C6, S6, 62)).expect("rst"),
        );
        let syn3 = TcpSpec::syn(40002, 82, 3).linux_options();
        t.at(
            20.0,
            syn3.emit(&out(C6, S6).flow_label(0x333)).expect("syn"),
        );
        t.at(
            21.0,
            TcpSpec::rst_to(&syn3)
                .emit(&back(C6, S6, 62).flow_label(0x5555))
                .expect("rst"),
        );
        let reports = run(&t);
        let forged = &for_port(&reports, 81).judgement;
        assert_eq!(
            (forged.verdict, forged.confidence),
            (Verdict::FirewallRst, Confidence::Medium)
        );
        assert!(forged.rejecter.expect("rejecter").is_target);
        let stack = &for_port(&reports, 82).judgement;
        assert_eq!(
            (stack.verdict, stack.confidence),
            (Verdict::Closed, Confidence::High)
        );
    }

    fn icmp_case(from: &str, t: u8, code: u8, quote: QuoteLen, router_ttl: u8) -> Judgement {
        let mut tl = Timeline::starting_at(0);
        let syn = TcpSpec::syn(40000, 443, 77).linux_options();
        let sent = syn.emit(&out(C4, S4)).expect("syn");
        tl.at(0.0, sent.clone());
        let mut quoted = sent;
        quoted[8] = 62; // the TTL left where the error was raised
        let router = IpSpec::new(addr(from), addr(C4)).ttl(router_ttl);
        tl.at(
            3.0,
            icmp_error(&router, t, code, &quoted, quote).expect("icmp"),
        );
        run(&tl).remove(0).judgement
    }

    #[test]
    fn icmp_admin_prohibited_from_a_router_names_the_router_and_hop() {
        let j = icmp_case("198.18.1.1", 3, 13, QuoteLen::Minimal, 63);
        assert_eq!(
            (j.verdict, j.confidence),
            (Verdict::IcmpRejected, Confidence::High)
        );
        let rej = j.rejecter.expect("router");
        assert_eq!(
            (rej.addr, rej.hops, rej.is_target),
            (addr("198.18.1.1"), Some(HopCount(2)), false)
        );
        assert!(j
            .headline
            .contains("Communication administratively filtered"));
        assert!(j
            .evidence
            .iter()
            .any(|e| e.code == "icmp-quote" && e.observed.contains("8 bytes")));
    }

    #[test]
    fn icmp_port_unreachable_from_the_target_itself() {
        let j = icmp_case(S4, 3, 3, QuoteLen::Full, 62);
        assert_eq!(j.verdict, Verdict::IcmpRejected);
        assert!(j.rejecter.expect("target").is_target);
    }

    #[test]
    fn icmp_host_unreachable_is_a_routing_failure() {
        let j = icmp_case("198.18.1.1", 3, 1, QuoteLen::Full, 64);
        assert_eq!(j.verdict, Verdict::Unreachable);
        assert_eq!(j.rejecter.expect("router").hops, Some(HopCount(1)));
    }

    #[test]
    fn time_exceeded_on_a_ttl_limited_probe_is_low_confidence() {
        let mut tl = Timeline::starting_at(0);
        let syn = TcpSpec::syn(40000, 443, 77);
        let sent = syn.emit(&out(C4, S4).ttl(2)).expect("syn");
        tl.at(0.0, sent.clone());
        let router = IpSpec::new(addr("198.18.1.2"), addr(C4)).ttl(63);
        tl.at(
            1.0,
            icmp_error(&router, 11, 0, &sent, QuoteLen::Full).expect("icmp"),
        );
        let j = run(&tl).remove(0).judgement;
        assert_eq!(
            (j.verdict, j.confidence),
            (Verdict::Unreachable, Confidence::Low)
        );
    }

    #[test]
    fn silence_is_filtered_and_certain_when_the_host_answers_elsewhere() {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 443, 0, |s| {
            Some(
                TcpSpec::syn_ack_to(s, 7)
                    .emit(&back(C4, S4, 57))
                    .expect("sa"),
            )
        });
        let syn = TcpSpec::syn(41000, 8443, 5);
        for ms in [100.0, 1100.0, 3100.0] {
            t.at(ms, syn.emit(&out(C4, S4)).expect("syn"));
        }
        t.at(
            20_000.0,
            TcpSpec::syn(42000, 1, 1)
                .emit(&out(C4, "198.18.7.7"))
                .expect("later frame"),
        );
        let reports = run(&t);
        let j = &for_port(&reports, 8443).judgement;
        assert_eq!(
            (j.verdict, j.confidence),
            (Verdict::Filtered, Confidence::High)
        );
        assert_eq!(for_port(&reports, 8443).attempt.syn_count, 3);
        let lone = &for_port(&reports, 1).judgement;
        assert_eq!(
            (lone.verdict, lone.confidence),
            (Verdict::Filtered, Confidence::Low)
        );
        assert!(lone.evidence.iter().any(|e| e.code == "capture-ended"));
    }

    #[test]
    fn the_hold_back_queue_is_bounded() {
        let mut t = Timeline::starting_at(0);
        for i in 0..50u16 {
            // 5 s apart: each attempt leaves the matcher before the next, so only the hold-back queue holds them.
            exchange(&mut t, f64::from(i) * 5000.0, 1000 + i, 0, |s| {
                Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 61)).expect("rst"))
            });
        }
        let config = EngineConfig {
            analyzer: AnalyzerConfig {
                max_pending: 5,
                ..AnalyzerConfig::default()
            },
            ..EngineConfig::default()
        };
        let mut engine = crate::Engine::new(config);
        let mut max_open = 0;
        for (ts, f) in t.ethernet_frames() {
            let _ = engine.push_frame(crate::LinkType::ETHERNET, ts, &f, f.len() as u32);
            while engine.pop_report().is_some() {}
            max_open = max_open.max(engine.open_attempts());
        }
        assert!(
            max_open <= 5 + 1,
            "held back at most max_pending (+ 1 in flight): {max_open}"
        );
        assert!(
            max_open >= 5,
            "RSTs with no baseline are held back: {max_open}"
        );
    }
}
