//! Reasoning over what came back: initial-TTL inference, hop distances, per-server baselines, and the
//! verdict on each attempt.
//!
//! The central question is whether an RST came from the target's own TCP stack. A forged RST from a device on
//! the path has travelled fewer hops (a higher received TTL), or comes from a stack with another initial TTL,
//! than the target's SYN-ACKs; a netfilter REJECT rule does not echo the SYN's TOS byte and sends IPv6 flow
//! label 0, where a Linux stack's own RST echoes the TOS and carries a flow label. The [`Analyzer`] collects a
//! baseline per server address from every attempt in the capture and judges each attempt against it.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::HashTable;

use crate::error::{check, ConfigError};
pub use crate::findings::TtlReading;
use crate::findings::{Advice, Cause, Finding, HopRange, HostReplies, IcmpSender, InitialTtls};
pub use crate::matcher::rtt_of;
use crate::matcher::{ClosedAttempt, Spent};
use crate::matcher::{Lesson, LessonReply};
use crate::model::{Attempt, Closure, HopCount, Reply, ReplyKind};
use crate::time::Duration;
use crate::verdict::{Confidence, Judgement, Rejecter, RejecterKind, Verdict};

type Hasher = foldhash::fast::RandomState;

/// Add one to a counter of the baselines, which stays at `u32::MAX` instead of wrapping (a counter only ever
/// says "none", "some" or "how many at least").
fn bump(n: &mut u32) {
    *n = n.saturating_add(1);
}

// A baseline keeps only what a judgement reads, in the narrowest form that reads the same: counts that a finding
// reports stay saturating `u32`s, signs that are only ever asked "any?" are flags. The table holds up to
// `max_servers` (65,536) of them, so every byte of a baseline is 64 KiB of the table.

/// Distances seen in one kind of reply from one address.
#[derive(Debug, Clone, Copy, Default)]
struct HopSet {
    count: u32,
    min: u8,
    max: u8,
    initials: InitialTtls,
    /// Whether one of them carried a non-zero IPv6 flow label.
    flow_labelled: bool,
}

impl HopSet {
    fn add(&mut self, r: TtlReading, flow_label: Option<u32>) {
        if self.count == 0 {
            self.min = r.hops.0;
            self.max = r.hops.0;
        } else {
            self.min = self.min.min(r.hops.0);
            self.max = self.max.max(r.hops.0);
        }
        bump(&mut self.count);
        self.initials.insert(r.initial);
        if flow_label.is_some_and(|l| l != 0) {
            self.flow_labelled = true;
        }
    }
    fn has_initial(&self, initial: u8) -> bool {
        self.initials.contains(initial)
    }
    fn range(&self) -> HopRange {
        HopRange {
            min: HopCount(self.min),
            max: HopCount(self.max),
        }
    }
}

/// RSTs from one address that share a distance and initial TTL.
#[derive(Debug, Clone, Copy, Default)]
struct RstCluster {
    count: u32,
    initial: u8,
    hops: u8,
    /// Whether one of them echoed the non-zero TOS of its SYN.
    tos_echoed: bool,
    /// Whether one of them carried a non-zero IPv6 flow label.
    flow_labelled: bool,
}

const MAX_CLUSTERS: usize = 4;

/// How the RSTs for one port of a server treated a non-zero TOS: whether one echoed it, whether one sent 0.
#[derive(Debug, Clone, Copy, Default)]
struct PortTos {
    port: u16,
    hops: u8,
    echoed: bool,
    zeroed: bool,
}

/// Ports per server whose TOS behaviour is remembered.
const MAX_PORT_TOS: usize = 64;

/// What one server address has shown across the capture.
///
/// Its first RST cluster sits inline: most servers have none or one. What few servers show (more RST clusters,
/// TOS behaviour per port, a routing error) is boxed, so that the others pay one pointer for it.
#[derive(Debug, Clone, Default)]
struct ServerBaseline {
    synack: HopSet,
    echo: HopSet,
    /// The first RST cluster; a count of 0 (never the count of a cluster, which starts at its first RST) if none.
    first_rst: RstCluster,
    /// A SYN-ACK's options were laid out as only Linux lays them out.
    synack_linux: bool,
    rare: Option<Box<RareBaseline>>,
}

/// The part of a [`ServerBaseline`] that few servers show.
#[derive(Debug, Clone, Default)]
struct RareBaseline {
    /// The RST clusters after the first (at most [`MAX_CLUSTERS`] - 1).
    more_rsts: Vec<RstCluster>,
    port_tos: Vec<PortTos>,
    /// The first ICMP error about the whole address: it applies to every port without an answer of its own.
    route_error: Option<RouteError>,
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
    /// The RST clusters, in the order they were met.
    fn rsts(&self) -> impl Iterator<Item = &RstCluster> {
        let more = self.rare.as_ref().map_or(&[][..], |r| &r.more_rsts);
        std::iter::once(&self.first_rst)
            .filter(|c| c.count > 0)
            .chain(more)
    }

    fn port_tos(&self) -> &[PortTos] {
        self.rare.as_ref().map_or(&[], |r| &r.port_tos)
    }

    fn route_error(&self) -> Option<RouteError> {
        self.rare.as_ref().and_then(|r| r.route_error)
    }

    fn rare_mut(&mut self) -> &mut RareBaseline {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Forget a routing error about the address (it answers after all).
    fn clear_route_error(&mut self) {
        if let Some(r) = &mut self.rare {
            r.route_error = None;
        }
    }

    fn learn_rst(&mut self, port: u16, syn_tos: u8, reply: &LessonReply) {
        let r = TtlReading::of(reply.ttl);
        let tos = tos_behaviour(syn_tos, reply.tos);
        let found = self
            .rsts()
            .position(|c| c.initial == r.initial && c.hops == r.hops.0);
        let idx = match found {
            Some(i) => i,
            None => {
                let new = RstCluster {
                    initial: r.initial,
                    hops: r.hops.0,
                    ..RstCluster::default()
                };
                let n = self.rsts().count();
                match n {
                    0 => self.first_rst = new,
                    _ if n < MAX_CLUSTERS => self.rare_mut().more_rsts.push(new),
                    _ => return,
                }
                n
            }
        };
        if matches!(tos, TosBehaviour::Echoed | TosBehaviour::Zeroed) {
            let port_tos = &mut self.rare_mut().port_tos;
            let slot = match port_tos
                .iter()
                .position(|p| p.port == port && p.hops == r.hops.0)
            {
                Some(i) => Some(i),
                None if port_tos.len() < MAX_PORT_TOS => {
                    port_tos.push(PortTos {
                        port,
                        hops: r.hops.0,
                        ..PortTos::default()
                    });
                    Some(port_tos.len() - 1)
                }
                None => None,
            };
            if let Some(i) = slot {
                match tos {
                    TosBehaviour::Echoed => port_tos[i].echoed = true,
                    _ => port_tos[i].zeroed = true,
                }
            }
        }
        let c = match idx {
            0 => &mut self.first_rst,
            i => &mut self.rare_mut().more_rsts[i - 1],
        };
        bump(&mut c.count);
        if tos == TosBehaviour::Echoed {
            c.tos_echoed = true;
        }
        if reply.flow_label.is_some_and(|l| l != 0) {
            c.flow_labelled = true;
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

/// No place in [`Baselines`]' list.
const NIL: u32 = u32::MAX;

/// A baseline in [`Baselines`], linked into the list of baselines by last use.
#[derive(Debug)]
struct Place {
    addr: IpAddr,
    baseline: ServerBaseline,
    /// The place used just before (towards the least recently used) and just after this one.
    older: u32,
    newer: u32,
}

/// The baselines of at most `max` server addresses. When it is full, a new address takes the place of the one
/// whose baseline was least recently used (learnt from): baselines age by last use, so a long capture keeps
/// giving baselines to the servers it meets, and what a server showed long ago and never since gives way.
/// Each use is O(1): a hash look-up and a move to the head of a list linked through the places' indices.
///
/// The index holds only places (4 bytes each): an address is found by hashing it and comparing it with the
/// address kept in the place, which a hit reads anyway, instead of in a map of 20-byte address-and-place entries.
#[derive(Debug)]
struct Baselines {
    index: HashTable<u32>,
    hasher: Hasher,
    places: Vec<Place>,
    /// The most and the least recently used place.
    newest: u32,
    oldest: u32,
    max: usize,
    evicted: u64,
}

impl Baselines {
    fn new(max: usize) -> Self {
        Baselines {
            index: HashTable::new(),
            hasher: Hasher::default(),
            places: Vec::new(),
            newest: NIL,
            oldest: NIL,
            max: max.min(NIL as usize),
            evicted: 0,
        }
    }

    /// The place of `addr`, if it has one.
    fn find(&self, addr: &IpAddr) -> Option<u32> {
        let places = &self.places;
        self.index
            .find(self.hasher.hash_one(addr), |&i| {
                places.get(i as usize).is_some_and(|p| p.addr == *addr)
            })
            .copied()
    }

    /// Index place `i` under the address it keeps.
    fn index_place(&mut self, i: u32) {
        let Baselines {
            index,
            hasher,
            places,
            ..
        } = self;
        let hash = |&j: &u32| hasher.hash_one(places[j as usize].addr);
        index.insert_unique(hash(&i), i, hash);
    }

    /// The baseline of `addr`, without counting it as a use.
    fn get(&self, addr: &IpAddr) -> Option<&ServerBaseline> {
        let i = self.find(addr)?;
        self.places.get(i as usize).map(|p| &p.baseline)
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn unlink(&mut self, i: u32) {
        let (older, newer) = {
            let p = &self.places[i as usize];
            (p.older, p.newer)
        };
        match older {
            NIL => self.oldest = newer,
            o => self.places[o as usize].newer = newer,
        }
        match newer {
            NIL => self.newest = older,
            n => self.places[n as usize].older = older,
        }
    }

    fn link_newest(&mut self, i: u32) {
        let p = &mut self.places[i as usize];
        p.older = self.newest;
        p.newer = NIL;
        match self.newest {
            NIL => self.oldest = i,
            n => self.places[n as usize].newer = i,
        }
        self.newest = i;
    }

    /// The baseline of `addr`, made the most recently used; a new one (in the place of the least recently used
    /// when the table is full). None only when the table may hold none.
    fn use_mut(&mut self, addr: IpAddr) -> Option<&mut ServerBaseline> {
        let i = if let Some(i) = self.find(&addr) {
            if self.newest != i {
                self.unlink(i);
                self.link_newest(i);
            }
            i
        } else if self.places.len() < self.max {
            let i = self.places.len() as u32;
            self.places.push(Place {
                addr,
                baseline: ServerBaseline::default(),
                older: NIL,
                newer: NIL,
            });
            self.index_place(i);
            self.link_newest(i);
            i
        } else if self.oldest != NIL {
            let i = self.oldest;
            self.unlink(i);
            let gone = self.places[i as usize].addr;
            if let Ok(entry) = self
                .index
                .find_entry(self.hasher.hash_one(gone), |&j| j == i)
            {
                entry.remove();
            }
            let p = &mut self.places[i as usize];
            p.addr = addr;
            p.baseline = ServerBaseline::default();
            self.index_place(i);
            self.evicted += 1;
            self.link_newest(i);
            i
        } else {
            return None;
        };
        self.places.get_mut(i as usize).map(|p| &mut p.baseline)
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
    /// Attempts held back (an RST attempt for its lookahead, and the attempts that ended after it, which come out
    /// after it) before the oldest is judged with what is known, whatever the capture time (default 4096).
    pub max_pending: usize,
    /// Server addresses with a baseline; beyond it a new address takes the place of the one whose baseline was
    /// least recently used (default 65,536).
    pub max_servers: usize,
    /// How long (capture time) an RST attempt is held after it ends, so that later attempts to the same host (a
    /// SYN-ACK on another port, a TOS-marked SYN) can inform its verdict (default 10 s). It is the most an
    /// attempt's report waits after the attempt ends, whether its server has a baseline or not: a report is never
    /// held longer, so a long-running monitor keeps reporting.
    pub lookahead: Duration,
    /// The attempts are a live run's own probes (default false): an ICMP routing error about an address (a routing code from a router, or a `prohibit` route) is carried
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

impl AnalyzerConfig {
    /// Check the settings: `max_servers` at least 1, `lookahead` not negative. `max_pending` may be 0 (nothing
    /// is held back: every attempt is judged as soon as it closes), and `lookahead` 0 (no wait after an RST).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::at_least_one("analyzer.max_servers", self.max_servers)?;
        check::not_negative("analyzer.lookahead", self.lookahead)
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
/// Attempts come out in the order they went in; an RST attempt is held back for [`AnalyzerConfig::lookahead`] of
/// capture time after it ends (and within [`AnalyzerConfig::max_pending`]), so that a SYN-ACK or a TOS-marked
/// SYN later in the capture can still inform its verdict. Nothing is held longer: every report comes out at most
/// the lookahead after its attempt ended, with or without a baseline for its server.
pub struct Analyzer {
    config: AnalyzerConfig,
    baselines: Baselines,
    pending: VecDeque<Held>,
    ready: VecDeque<(Attempt, Judgement)>,
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
            baselines: Baselines::new(config.max_servers),
            pending: VecDeque::new(),
            ready: VecDeque::new(),
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
            b.echo.add(TtlReading::of(ttl), flow_label);
            b.clear_route_error();
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

    /// Attempts held back (for the lookahead of an RST attempt at or before them).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Baselines given up for a new server's because the table was full (the least recently used each time).
    pub fn baselines_evicted(&self) -> u64 {
        self.baselines.evicted
    }

    /// Server addresses with a baseline now (at most [`AnalyzerConfig::max_servers`]).
    pub fn baselines(&self) -> usize {
        self.baselines.len()
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
        self.baselines.use_mut(addr)
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
                b.rare_mut().route_error.get_or_insert(RouteError {
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
            b.clear_route_error();
        }
        match reply.kind {
            ReplyKind::SynAck => {
                b.synack.add(TtlReading::of(reply.ttl), reply.flow_label);
                if reply.linux_layout {
                    b.synack_linux = true;
                }
            }
            ReplyKind::Rst => b.learn_rst(port, lesson.syn_tos, reply),
            _ => {}
        }
    }

    /// Whether `held` is an RST attempt whose lookahead has not passed yet. (With or without a baseline for its
    /// server: waiting for a SYN-ACK with no time limit would stop every later report behind it.)
    fn must_wait(&self, held: &Held) -> bool {
        let (rst, closed_at) = match held {
            Held::Full(a) => (
                a.decisive_reply().is_some_and(|r| r.kind == ReplyKind::Rst),
                a.closed_at,
            ),
            Held::Compact { closed, rst } => (*rst, closed.closed_at()),
        };
        rst && self.now < closed_at.plus(self.config.lookahead)
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

fn judge(a: &Attempt, b: &ServerBaseline, live: bool) -> Judgement {
    match a.decisive_reply() {
        Some(r) if r.kind == ReplyKind::SynAck => judge_open(a, r, b),
        Some(r) if r.kind == ReplyKind::Rst => judge_rst(a, r, b),
        Some(r) => judge_icmp(a, r, b),
        None => match b.route_error() {
            Some(e) if live => judge_route_error(a, b, e),
            _ => judge_silence(a, b),
        },
    }
}

/// A judgement's findings, starting with `first`, with room for the few more most judgements add.
fn findings_list(first: Finding) -> Vec<Finding> {
    let mut v = crate::pool::take(|| Vec::with_capacity(4));
    v.push(first);
    v
}

/// A judgement's next steps, in a vector from this thread's pool when there is one.
fn advice_list(steps: &[Advice]) -> Vec<Advice> {
    let mut v: Vec<Advice> = crate::pool::take(|| Vec::with_capacity(4));
    v.extend_from_slice(steps);
    v
}

fn judge_open(a: &Attempt, r: &Reply, b: &ServerBaseline) -> Judgement {
    let reading = TtlReading::of(r.seen.packet.ip.ttl);
    // SYN-ACKs from farther than the address's own echo replies come through a port forward.
    let own =
        (b.echo.count > 0 && b.echo.has_initial(reading.initial) && reading.hops.0 > b.echo.max)
            .then_some(HopCount(b.echo.max));
    let rtt = rtt_of(a, r);
    let mut findings = findings_list(Finding::SynAck {
        from: r.source(),
        ttl: reading,
    });
    if !r.exact {
        findings.push(Finding::InexactAck);
    }
    if let Some(h) = own {
        findings.push(Finding::SynAckBeyondAddress {
            synack_hops: reading.hops,
            echo_hops: h,
        });
    }
    if a.replies.iter().any(|x| x.kind == ReplyKind::Rst) {
        findings.push(Finding::RstAndSynAck);
    }
    // A SYN proxy (netfilter SYNPROXY, a DDoS scrubber) answers every SYN itself, with a zero window, and
    // connects to the service only once the handshake completes: its SYN-ACK says nothing about the service.
    let proxy = r.seen.packet.tcp().is_some_and(|t| t.window == 0);
    if proxy {
        findings.push(Finding::SynAckWindowZero);
    }
    let (confidence, cause, advice) = if proxy {
        (
            Confidence::Medium,
            Cause::OpenAtSynProxy,
            advice_list(&[Advice::ConnectThroughProxy, Advice::FindSynProxy]),
        )
    } else {
        (
            if r.exact {
                Confidence::High
            } else {
                Confidence::Low
            },
            Cause::Open,
            advice_list(&[Advice::LookAboveTcp]),
        )
    };
    Judgement {
        verdict: Verdict::Open,
        confidence: if r.exact { confidence } else { Confidence::Low },
        cause,
        rejecter: None,
        target_hops: Some(own.unwrap_or(reading.hops)),
        rtt,
        findings,
        advice,
    }
}

fn judge_rst(a: &Attempt, r: &Reply, b: &ServerBaseline) -> Judgement {
    let ip = &r.seen.packet.ip;
    let reading = TtlReading::of(ip.ttl);
    let rtt = rtt_of(a, r);
    let mut findings = findings_list(Finding::Rst {
        from: r.source(),
        ttl: reading,
        after: rtt,
    });
    // (confidence, same distance as the target?) of the strongest sign of forgery.
    let mut forged: Option<(Confidence, bool)> = None;
    let mut stack_signs = 0u32;
    let mut target_hops = b.target_hops();

    if b.synack.count > 0 {
        let s = &b.synack;
        if !s.has_initial(reading.initial) {
            findings.push(Finding::RstInitialTtlDiffers {
                rst_initial: reading.initial,
                host_replies: HostReplies::SynAcks,
                host_initials: s.initials,
                host_count: s.count,
            });
            forged = Some((Confidence::High, false));
        } else if reading.hops.0 < s.min
            && b.echo.count > 0
            && b.echo.has_initial(reading.initial)
            && (b.echo.min..=b.echo.max).contains(&reading.hops.0)
        {
            findings.push(Finding::RstAtEchoDistance {
                rst_hops: reading.hops,
                synack_hops: s.range(),
            });
            stack_signs += 1;
        } else if reading.hops.0 < s.min {
            let closer = s.min - reading.hops.0;
            findings.push(Finding::RstCloserThanSynack {
                rst_hops: reading.hops,
                host_hops: s.range(),
            });
            let conf = if closer >= 2 {
                Confidence::High
            } else {
                Confidence::Medium
            };
            forged = Some((conf, false));
        } else if reading.hops.0 > s.max {
            findings.push(Finding::RstFartherThanSynack {
                rst_hops: reading.hops,
                host_hops: s.range(),
            });
        } else {
            findings.push(Finding::RstSameDistance {
                rst_hops: reading.hops,
                synack_count: s.count,
            });
            stack_signs += 1;
        }
        if let Some(0) = ip.flow_label {
            if s.flow_labelled && forged.is_none() {
                findings.push(Finding::RstFlowLabelZero {
                    labelled: HostReplies::SynAcks,
                });
                forged = Some((Confidence::Medium, true));
            }
        }
    } else if b.echo.count > 0
        && !b.echo.has_initial(reading.initial)
        && b.rsts()
            .any(|c| c.initial != reading.initial && b.echo.has_initial(c.initial))
    {
        // The host's echo replies and its other RSTs agree on one initial TTL; this RST has another.
        findings.push(Finding::RstInitialTtlDiffers {
            rst_initial: reading.initial,
            host_replies: HostReplies::EchoReplies,
            host_initials: b.echo.initials,
            host_count: b.echo.count,
        });
        forged = Some((Confidence::High, false));
    } else if b.echo.count > 0 && b.echo.has_initial(reading.initial) && reading.hops.0 < b.echo.min
    {
        findings.push(Finding::RstCloserThanEcho {
            rst_hops: reading.hops,
            echo_hops: b.echo.range(),
        });
        forged = Some((Confidence::Medium, false));
    } else if b.echo.count > 0
        && b.echo.has_initial(reading.initial)
        && (b.echo.min..=b.echo.max).contains(&reading.hops.0)
        && b.rsts()
            .any(|c| c.initial == reading.initial && c.hops > reading.hops.0)
    {
        // The target's own distance: an RST from farther is a backend behind a port forward, not this one's
        // sender being closer.
        findings.push(Finding::RstAtEchoOnly {
            rst_hops: reading.hops,
            echo_hops: b.echo.range(),
        });
        stack_signs += 1;
    } else if let Some(far) = b
        .rsts()
        .filter(|c| c.initial == reading.initial)
        .map(|c| c.hops)
        .max()
    {
        if far > reading.hops.0 {
            findings.push(Finding::RstCloserThanOtherRsts {
                rst_hops: reading.hops,
                other_hops: HopCount(far),
            });
            forged = Some((Confidence::Medium, false));
            target_hops = target_hops.or(Some(HopCount(far)));
        } else {
            let others: u32 = b
                .rsts()
                .fold(0u32, |n, c| n.saturating_add(c.count))
                .saturating_sub(1);
            if others > 0 {
                findings.push(Finding::RstConsistent { others });
            }
        }
    }

    // The TOS byte: a Linux stack's own RST echoes the SYN's TOS, netfilter's REJECT sends 0.
    let port = a.probe.key.server_port.0;
    let stack_echoes_elsewhere = b
        .port_tos()
        .iter()
        .any(|p| p.port != port && p.hops == reading.hops.0 && p.echoed);
    match tos_behaviour(a.probe.tos, ip.tos) {
        TosBehaviour::NotTested => {
            // Another SYN to this port, with a TOS, may have told: same port, same distance.
            if let Some(p) = b
                .port_tos()
                .iter()
                .find(|p| p.port == port && p.hops == reading.hops.0)
            {
                if p.zeroed && !p.echoed && stack_echoes_elsewhere {
                    findings.push(Finding::PortTosZero { port });
                    if forged.is_none() {
                        forged = Some((Confidence::High, true));
                    }
                } else if p.echoed && !p.zeroed {
                    findings.push(Finding::PortTosEchoed { port });
                    stack_signs += 1;
                }
            }
        }
        TosBehaviour::Echoed => {
            findings.push(Finding::RstTosEchoed {
                syn_tos: a.probe.tos,
            });
            stack_signs += 1;
        }
        TosBehaviour::Zeroed => {
            let stack_echoes = b
                .rsts()
                .any(|c| c.hops == reading.hops.0 && c.initial == reading.initial && c.tos_echoed);
            findings.push(Finding::RstTosZero {
                syn_tos: a.probe.tos,
                others_echo: stack_echoes,
            });
            // With no RST of the host's to compare: SYN-ACKs from the same distance with Linux's option layout
            // and initial TTL (64) show a Linux stack, which would have echoed the TOS.
            let linux_host = b.synack_linux
                && reading.initial == 64
                && b.synack.has_initial(64)
                && (b.synack.min..=b.synack.max).contains(&reading.hops.0);
            if stack_echoes && forged.is_none() {
                forged = Some((Confidence::High, true));
            } else if linux_host && forged.is_none() {
                findings.push(Finding::RstTosZeroLinuxHost);
                forged = Some((Confidence::Medium, true));
            }
        }
        _ => {}
    }
    if ip.flow_label == Some(0) && forged.is_none() {
        let labelled = b
            .rsts()
            .any(|c| c.hops == reading.hops.0 && c.initial == reading.initial && c.flow_labelled);
        if labelled {
            findings.push(Finding::RstFlowLabelZero {
                labelled: HostReplies::OtherRsts,
            });
            forged = Some((Confidence::Medium, true));
        }
    }
    if let Some(label) = ip.flow_label {
        if label != 0 && forged.is_none() {
            findings.push(Finding::RstFlowLabel { flow_label: label });
            stack_signs += 1;
        }
    }
    if !r.exact {
        let ack = r.seen.packet.tcp().map_or(0, |t| t.ack);
        findings.push(Finding::RstInexactAck {
            ack,
            expected: a.probe.isn.expected_ack(),
        });
    }

    let server = a.probe.key.server;
    match forged {
        Some((confidence, at_target)) => {
            // Consistency with other RSTs says nothing once one of them is shown to be forged.
            findings.retain(|f| !matches!(f, Finding::RstConsistent { .. }));
            // The observation that decided it goes first.
            if let Some(i) = findings.iter().position(Finding::shows_forgery) {
                let decisive = findings.remove(i);
                findings.insert(0, decisive);
            }
            let hops = if at_target {
                target_hops.or(Some(reading.hops))
            } else {
                Some(reading.hops)
            };
            let is_target =
                at_target || r.source() == server && target_hops.is_some_and(|t| Some(t) == hops);
            let confidence = if r.exact { confidence } else { Confidence::Low };
            let (cause, advice) = if at_target {
                (
                    Cause::RstRuleOnHost,
                    advice_list(&[Advice::HostRejectRule, Advice::TestBeyondFirewall]),
                )
            } else {
                (
                    Cause::RstForgedOnPath {
                        rst_hops: reading.hops,
                        target_hops,
                    },
                    advice_list(&[
                        Advice::PathRejectRule,
                        Advice::CloudPolicies,
                        Advice::TestBeyondFirewall,
                    ]),
                )
            };
            Judgement {
                verdict: Verdict::FirewallRst,
                confidence,
                cause,
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
                rtt,
                findings,
                advice,
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
                findings.push(Finding::NoBaseline);
            } else if stack_signs < 2 {
                findings.push(Finding::HostRulePossible);
            }
            let hops = target_hops.or(Some(reading.hops));
            Judgement {
                verdict: Verdict::Closed,
                confidence,
                cause: Cause::Closed,
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
                rtt,
                findings,
                advice: advice_list(&[
                    Advice::CheckListener,
                    Advice::ServiceStopped,
                    Advice::LoopbackBind,
                    Advice::WindowsBacklog,
                ]),
            }
        }
    }
}

fn judge_icmp(a: &Attempt, r: &Reply, b: &ServerBaseline) -> Judgement {
    let server = a.probe.key.server;
    let src = r.source();
    let is_target = src == server;
    // An error from the client's own address: its own firewall (OUTPUT chain) refused the SYN before it left.
    let is_self = src == a.probe.key.client && !is_target;
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
    let kind = if is_self {
        RejecterKind::Sender
    } else if is_target {
        RejecterKind::Target
    } else {
        RejecterKind::Router
    };
    let by = IcmpSender {
        addr: src,
        kind,
        hops: reading.hops,
    };
    let mut findings: Vec<Finding> = crate::pool::take(|| Vec::with_capacity(4));
    let quote = r
        .seen
        .packet
        .icmp_error()
        .and_then(|e| e.quote)
        .filter(|q| q.ttl < a.probe.ttl.0)
        .map(|q| Finding::IcmpQuote {
            quoted_ttl: q.ttl,
            sent_ttl: a.probe.ttl.0,
            tcp_bytes: q.transport_bytes,
        });
    let (verdict, confidence, cause, mut advice) = match r.kind {
        ReplyKind::Unreachable(code) => {
            findings.push(Finding::IcmpUnreachable {
                icmp_code: code,
                from: src,
                from_kind: kind,
                ttl: reading,
            });
            if code.is_rejection() && is_self {
                (
                    Verdict::IcmpRejected,
                    Confidence::High,
                    Cause::RejectedBySender {
                        addr: src,
                        icmp_code: code,
                    },
                    advice_list(&[
                        Advice::SenderOutputRule { addr: src },
                        Advice::LocalSecuritySoftware,
                    ]),
                )
            } else if code.is_rejection() {
                let mut advice = advice_list(&[
                    Advice::FindRejectRule { addr: src },
                    Advice::AllowBeforeRule,
                ]);
                if is_target
                    && matches!(
                        code,
                        crate::wire::Unreachable::Port
                            | crate::wire::Unreachable::V6PortUnreachable
                    )
                {
                    // A TCP stack never answers port unreachable: a rule did, and kube-proxy's is a common one.
                    advice.push(Advice::KubeProxyNoEndpoints);
                }
                (
                    Verdict::IcmpRejected,
                    Confidence::High,
                    Cause::Rejected {
                        by,
                        icmp_code: code,
                    },
                    advice,
                )
            } else if is_target {
                // A host does not call itself unreachable: it tried to forward the SYN (a port forward, DNAT) to a
                // neighbour that never answered ARP / neighbour discovery.
                (
                    Verdict::Unreachable,
                    Confidence::High,
                    Cause::ForwardedBackendGone {
                        by,
                        icmp_code: code,
                    },
                    advice_list(&[Advice::FindPortForward { addr: src }, Advice::BackendUp]),
                )
            } else {
                (
                    Verdict::Unreachable,
                    Confidence::High,
                    Cause::Unreachable {
                        by,
                        icmp_code: code,
                    },
                    advice_list(&[Advice::RouteGet { addr: src }, Advice::NeighbourCheck]),
                )
            }
        }
        ReplyKind::TimeExceeded => {
            let deliberate = a.probe.ttl.0 < 30;
            findings.push(Finding::TimeExceeded {
                from: src,
                from_kind: kind,
                ttl: reading,
                sent_ttl: a.probe.ttl.0,
            });
            (
                Verdict::Unreachable,
                if deliberate {
                    Confidence::Low
                } else {
                    Confidence::Medium
                },
                Cause::Expired { at: by },
                advice_list(&[Advice::TracePath]),
            )
        }
        _ => {
            let e = r.seen.packet.icmp_error();
            findings.push(Finding::IcmpError {
                icmp_type: e.map_or(0, |e| e.icmp_type),
                icmp_code: e.map_or(0, |e| e.code),
                from: src,
                from_kind: kind,
                ttl: reading,
            });
            (
                Verdict::Unreachable,
                Confidence::Low,
                Cause::IcmpError { by },
                advice_list(&[Advice::CheckMtu]),
            )
        }
    };
    if let Some(q) = quote {
        findings.push(q);
    }
    if a.syn_count == 0 {
        findings.push(Finding::SynNotCaptured);
    }
    let confidence = if r.exact {
        confidence
    } else {
        findings.push(Finding::IcmpInexactQuote);
        Confidence::Low
    };
    if verdict == Verdict::IcmpRejected && !is_target && server.is_loopback() {
        advice.push(Advice::LocalFirewall);
    }
    Judgement {
        verdict,
        confidence,
        cause,
        rejecter: Some(Rejecter {
            addr: src,
            hops,
            is_target,
            kind,
        }),
        target_hops,
        rtt,
        findings,
        advice,
    }
}

fn judge_silence(a: &Attempt, b: &ServerBaseline) -> Judgement {
    let waited = a.closed_at.since(a.last_syn);
    let span = a.last_syn.since(a.probe.ts);
    let mut findings = findings_list(Finding::Silence {
        syns: a.syn_count,
        span,
        waited,
    });
    let mut confidence = if a.syn_count >= 2 {
        Confidence::Medium
    } else {
        Confidence::Low
    };
    if let Some(h) = b.target_hops() {
        findings.push(Finding::HostAnswersElsewhere { host_hops: h });
        if a.syn_count >= 2 {
            confidence = Confidence::High;
        }
    }
    if a.closure == Closure::EndOfInput {
        findings.push(Finding::CaptureEnded { waited });
        confidence = Confidence::Low;
    }
    if a.closure == Closure::Evicted {
        findings.push(Finding::Evicted);
        confidence = Confidence::Low;
    }
    Judgement {
        verdict: Verdict::Filtered,
        confidence,
        cause: Cause::Filtered,
        rejecter: None,
        target_hops: b.target_hops(),
        rtt: None,
        findings,
        advice: advice_list(&[
            Advice::DropOrBlackhole,
            Advice::LinuxBacklog,
            Advice::RunLive,
            Advice::FindDropRule,
        ]),
    }
}

/// An unanswered attempt to an address about which an ICMP routing error came (for another port, or the echo):
/// the error applies to it too; its own SYNs most likely met the router's ICMP rate limit.
fn judge_route_error(a: &Attempt, b: &ServerBaseline, e: RouteError) -> Judgement {
    let reading = TtlReading::of(e.ttl);
    let rejection = e.code.is_rejection();
    let mut findings = findings_list(Finding::RouteErrorForAddress {
        icmp_code: e.code,
        from: e.from,
        hops: reading.hops,
        target: a.probe.key.server,
        port: e.port,
    });
    findings.push(Finding::SilenceRateLimited { syns: a.syn_count });
    let advice = advice_list(&[
        Advice::RouteGetAddress { addr: e.from },
        if rejection {
            Advice::ProhibitRoute { addr: e.from }
        } else {
            Advice::NeighbourCheck
        },
    ]);
    Judgement {
        verdict: if rejection {
            Verdict::IcmpRejected
        } else {
            Verdict::Unreachable
        },
        confidence: Confidence::Medium,
        cause: Cause::RouteError {
            from: e.from,
            hops: reading.hops,
            icmp_code: e.code,
        },
        rejecter: Some(Rejecter {
            addr: e.from,
            hops: Some(reading.hops),
            is_target: false,
            kind: RejecterKind::Router,
        }),
        target_hops: b.target_hops(),
        rtt: None,
        findings,
        advice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{icmp_error, IpSpec, QuoteLen, TcpSpec, Timeline};
    use crate::explain::Explain;
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
        assert_eq!(j.findings[0].code(), "rst-closer-than-synack");
        assert!(
            Explain::new(addr(S4), 81)
                .implies(&j.findings[0])
                .contains("4 hop(s) closer"),
            "{:?}",
            j.findings[0]
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
            .findings
            .iter()
            .any(|e| e.code() == "host-rule-possible"));
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
        assert_eq!(j.findings[0].code(), "rst-tos-zero");
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
            j.findings
        );
        assert!(j
            .rejecter
            .is_some_and(|r| r.is_target && r.kind == RejecterKind::Target));
        assert!(j
            .findings
            .iter()
            .any(|e| e.code() == "rst-tos-zero-linux-host"));
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
        assert_eq!(j.findings[0].code(), "rst-initial-ttl-differs");
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
            j.findings
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
        assert!(j.findings.iter().any(|e| e.code() == "no-baseline"));
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
        assert!(Explain::new(addr(S4), 443)
            .headline(&j)
            .contains("Communication administratively filtered"));
        assert!(j
            .findings
            .iter()
            .any(|e| matches!(e, Finding::IcmpQuote { tcp_bytes: 8, .. })));
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
        assert!(lone.findings.iter().any(|e| e.code() == "capture-ended"));
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
        // A lookahead longer than the capture: only max_pending bounds the queue.
        let config = EngineConfig {
            analyzer: AnalyzerConfig {
                max_pending: 5,
                lookahead: Duration::from_millis(1_000_000),
                ..AnalyzerConfig::default()
            },
            ..EngineConfig::default()
        };
        let mut engine = crate::Engine::new(config).expect("valid settings");
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
            "RSTs are held back for their lookahead: {max_open}"
        );
    }

    /// An RST from a server that has shown no SYN-ACK, then other attempts for longer than the lookahead: its
    /// report comes out once capture time passes its end plus the lookahead, with no `finish`, and the reports
    /// behind it right after (a monitor never stalls). A SYN-ACK from its server past the lookahead comes too
    /// late to count.
    #[test]
    fn an_rst_without_a_baseline_is_reported_when_its_lookahead_passes() {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 81, 0, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 61)).expect("rst"))
        });
        for i in 0..30u16 {
            let syn = TcpSpec::syn(41000 + i, 443, 7 + u32::from(i));
            let ms = 500.0 + f64::from(i) * 1000.0;
            t.at(ms, syn.emit(&out(C4, "198.18.7.7")).expect("syn"));
            t.at(
                ms + 5.0,
                TcpSpec::syn_ack_to(&syn, 1)
                    .emit(&back(C4, "198.18.7.7", 60))
                    .expect("sa"),
            );
        }
        exchange(&mut t, 25_000.0, 443, 0, |s| {
            Some(
                TcpSpec::syn_ack_to(s, 7)
                    .emit(&back(C4, S4, 57))
                    .expect("late sa"),
            )
        });
        let mut engine = crate::Engine::new(EngineConfig::default()).expect("valid config");
        let mut out: Vec<(crate::Timestamp, Report)> = Vec::new();
        for (ts, f) in t.ethernet_frames() {
            let _ = engine.push_frame(crate::LinkType::ETHERNET, ts, &f, f.len() as u32);
            while let Some(r) = engine.pop_report() {
                out.push((ts, r));
            }
        }
        let (when, rst) = out.first().expect("the RST's report, before finish");
        assert_eq!(rst.attempt.probe.key.server_port.0, 81, "order is kept");
        let due = rst
            .attempt
            .closed_at
            .plus(AnalyzerConfig::default().lookahead);
        assert!(*when >= due, "not before its lookahead: {when:?} {due:?}");
        assert!(
            when.since(due) <= Duration::from_millis(1000),
            "at the first frame past its lookahead: {when:?} {due:?}"
        );
        assert_eq!(
            (rst.judgement.verdict, rst.judgement.confidence),
            (Verdict::Closed, Confidence::Low)
        );
        assert!(rst.judgement.findings.contains(&Finding::NoBaseline));
        // The attempts behind it came out too, each within the lookahead of its end.
        assert!(out.len() >= 15, "{} reports before finish", out.len());
        for (when, r) in &out {
            assert!(when.since(r.attempt.closed_at) <= Duration::from_millis(11_000));
        }
    }

    fn synack_lesson(ttl: u8) -> Lesson {
        Lesson {
            reply: Some(LessonReply {
                kind: ReplyKind::SynAck,
                exact: true,
                from_server: true,
                ttl,
                tos: 0,
                flow_label: Some(5),
                route_error_from: None,
                linux_layout: true,
            }),
            syn_tos: 0,
        }
    }

    #[test]
    fn a_full_baseline_table_gives_the_least_recently_used_place_to_a_new_server() {
        let mut a = Analyzer::new(AnalyzerConfig {
            max_servers: 2,
            ..AnalyzerConfig::default()
        });
        let (s1, s2, s3) = (addr("198.18.1.1"), addr("198.18.1.2"), addr("198.18.1.3"));
        a.learn_lesson(s1, 443, &synack_lesson(57));
        a.learn_lesson(s2, 443, &synack_lesson(58));
        // s1 is used again: s2 is now the least recently used.
        a.note_echo_reply(s1, 57, None);
        a.learn_lesson(s3, 443, &synack_lesson(59));
        assert_eq!((a.baselines(), a.baselines_evicted()), (2, 1));
        assert!(a.baselines.get(&s2).is_none(), "s2 gave way");
        assert_eq!(a.baselines.get(&s1).map(|b| b.synack.count), Some(1));
        assert_eq!(a.baselines.get(&s3).map(|b| b.synack.max), Some(6));
        // s2 comes back with a fresh baseline, in s1's place (s3 was used after it).
        a.learn_lesson(s2, 443, &synack_lesson(60));
        assert!(a.baselines.get(&s1).is_none());
        assert_eq!(a.baselines.get(&s2).map(|b| b.synack.count), Some(1));
        assert_eq!(a.baselines_evicted(), 2);
    }

    /// A baseline's place is most of the table's memory (up to `max_servers` of them): keep it small.
    #[test]
    fn a_baseline_place_stays_small() {
        use std::mem::size_of;
        assert_eq!(size_of::<HopSet>(), 8);
        assert_eq!(size_of::<RstCluster>(), 8);
        assert_eq!(size_of::<ServerBaseline>(), 40);
        assert_eq!(size_of::<Place>(), 72);
    }

    /// The linked list of last use against a plain list in use order, over random uses.
    #[test]
    fn the_baseline_table_evicts_in_least_recent_use_order() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for max in [0usize, 1, 2, 7, 64] {
            let mut table = Baselines::new(max);
            let mut plain: Vec<IpAddr> = Vec::new(); // least recently used first
            for _ in 0..5_000 {
                let a = IpAddr::V4(std::net::Ipv4Addr::from(next(100) as u32));
                let got = table.use_mut(a).map(|b| b.synack_linux = true);
                assert_eq!(got.is_some(), max > 0);
                if let Some(i) = plain.iter().position(|x| *x == a) {
                    plain.remove(i);
                } else if plain.len() == max && max > 0 {
                    plain.remove(0);
                }
                if max > 0 {
                    plain.push(a);
                }
                let mut walk = Vec::new();
                let mut i = table.oldest;
                while i != NIL {
                    walk.push(table.places[i as usize].addr);
                    i = table.places[i as usize].newer;
                }
                assert_eq!(walk, plain);
                assert_eq!(table.len(), plain.len());
            }
        }
    }

    #[test]
    fn baseline_counters_saturate_instead_of_wrapping() {
        let mut b = ServerBaseline::default();
        let rst = LessonReply {
            kind: ReplyKind::Rst,
            exact: true,
            from_server: true,
            ttl: 57,
            tos: 0x10,
            flow_label: Some(0),
            route_error_from: None,
            linux_layout: false,
        };
        b.learn_rst(81, 0x10, &rst);
        b.first_rst.count = u32::MAX - 1;
        b.synack.add(TtlReading::of(57), Some(0));
        b.synack.count = u32::MAX - 1;
        for _ in 0..3 {
            b.learn_rst(81, 0x10, &rst);
            b.synack.add(TtlReading::of(57), Some(0));
        }
        let c = b.first_rst;
        assert_eq!(
            (c.count, c.tos_echoed, b.port_tos()[0].echoed),
            (u32::MAX, true, true)
        );
        assert_eq!(b.synack.count, u32::MAX);
        // Two clusters at the top: the count of the server's other RSTs stays at the top too, not wrapped.
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 81, 0, |s| {
            Some(TcpSpec::rst_to(s).emit(&back(C4, S4, 57)).expect("rst"))
        });
        let report = run(&t).remove(0);
        let mut b = ServerBaseline::default();
        for ttl in [57, 58] {
            b.learn_rst(81, 0, &LessonReply { ttl, ..rst });
        }
        b.first_rst.count = u32::MAX;
        b.rare_mut().more_rsts[0].count = u32::MAX;
        let clusters: Vec<_> = b.rsts().map(|c| (c.initial, c.hops, c.count)).collect();
        assert_eq!(clusters, [(64, 8, u32::MAX), (64, 7, u32::MAX)]);
        let j = judge(&report.attempt, &b, false);
        assert!(
            j.findings.contains(&Finding::RstConsistent {
                others: u32::MAX - 1
            }),
            "{:?}",
            j.findings
        );
    }
}
