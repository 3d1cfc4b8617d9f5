//! Findings as data: what the packets showed, with their numbers, and the typed context of a judgement's
//! headline ([`Cause`]) and next steps ([`Advice`]).
//!
//! Judging ([`crate::analysis`], [`crate::session`]) builds only these values; the words for an operator are
//! written by [`crate::explain`]. In JSON a finding is an object with its `code` and its fields
//! (`{"code": "rst-closer-than-synack", "rst_hops": 4, "host_hops": {"min": 8, "max": 8}}`); durations are
//! written as fractional milliseconds in fields ending in `_ms`.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::model::HopCount;
use crate::time::Duration;
use crate::wire::Unreachable;

/// What kind of device a rejecter is, relative to the target. Serialized in kebab-case (`backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RejecterKind {
    /// The target host itself: its own TCP stack, or a firewall rule on it.
    Target,
    /// A device on the path in front of the target (a router, firewall or middlebox), possibly answering with
    /// the target's address.
    Router,
    /// A backend behind a port forward on the target (Docker `-p`, a Kubernetes NodePort, any DNAT, a load
    /// balancer): one hop beyond the target, answering through it with the target's address.
    Backend,
    /// The sending host itself (hop 0): its own OUTPUT rules refused the SYN before it left.
    Sender,
}

impl RejecterKind {
    /// The kebab-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RejecterKind::Target => "target",
            RejecterKind::Router => "router",
            RejecterKind::Backend => "backend",
            RejecterKind::Sender => "sender",
        }
    }
}

/// What a received TTL says about its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

/// The distances seen in one kind of reply: `{"min": 7, "max": 9}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HopRange {
    /// The nearest.
    pub min: HopCount,
    /// The farthest.
    pub max: HopCount,
}

/// A set of initial TTLs (32, 64, 128, 255), written in JSON as an array: `[64, 128]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InitialTtls(pub(crate) u8);

impl InitialTtls {
    const ALL: [(u8, u8); 4] = [(1, 32), (2, 64), (4, 128), (8, 255)];

    fn bit(initial: u8) -> u8 {
        match initial {
            32 => 1,
            64 => 2,
            128 => 4,
            _ => 8,
        }
    }

    /// Add an initial TTL.
    pub fn insert(&mut self, initial: u8) {
        self.0 |= Self::bit(initial);
    }

    /// Whether the set holds `initial`.
    pub fn contains(self, initial: u8) -> bool {
        self.0 & Self::bit(initial) != 0
    }

    /// The initial TTLs, smallest first.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        Self::ALL
            .into_iter()
            .filter(move |(bit, _)| self.0 & bit != 0)
            .map(|(_, ttl)| ttl)
    }
}

impl Serialize for InitialTtls {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for InitialTtls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut set = InitialTtls::default();
        for ttl in Vec::<u8>::deserialize(d)? {
            set.insert(ttl);
        }
        Ok(set)
    }
}

/// Which of the host's own replies a finding compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HostReplies {
    /// Its SYN-ACKs.
    SynAcks,
    /// Its ICMP echo replies (and, where they agree, its other RSTs).
    EchoReplies,
    /// Its other RSTs.
    OtherRsts,
}

/// What came back for one SYN of a TTL walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum WalkAnswer {
    /// ICMP time exceeded from a router.
    TimeExceeded,
    /// An RST.
    Rst,
    /// A SYN-ACK.
    SynAck,
    /// An ICMP unreachable.
    Unreachable,
    /// Nothing.
    Silence,
}

impl WalkAnswer {
    /// The kebab-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            WalkAnswer::TimeExceeded => "time-exceeded",
            WalkAnswer::Rst => "rst",
            WalkAnswer::SynAck => "syn-ack",
            WalkAnswer::Unreachable => "unreachable",
            WalkAnswer::Silence => "silence",
        }
    }
}

/// One SYN of a TTL walk and its answer: `{"ttl": 3, "answer": "time-exceeded", "from": "198.18.1.2"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WalkStep {
    /// The SYN's TTL.
    pub ttl: u8,
    /// What came back.
    pub answer: WalkAnswer,
    /// The sender of an ICMP answer (null otherwise).
    pub from: Option<IpAddr>,
}

/// How far a silent port's SYNs were seen to travel, from the last router of the TTL walk that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DropPoint {
    /// The next hop is the target: the target itself (or a rule on it) drops the SYNs.
    Target,
    /// The next hop answers other TTL-limited SYNs, not these: they vanish right after the last router.
    AfterHop,
    /// The next hop answers no TTL-limited SYN at all: where beyond the last router cannot be told.
    Unknown,
}

/// What an ordinary TCP connection (the kernel's own `connect()`, after the probe) met: the opt-in check behind
/// a SYN proxy, which answers every SYN itself and connects to the service only after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FullConnect {
    /// The handshake completed and the connection stayed up (or was closed normally): the service accepts.
    Accepted,
    /// The handshake completed, then the connection was reset: nothing behind the proxy accepted it.
    ResetAfterHandshake,
    /// The SYN was refused outright (ECONNREFUSED).
    Refused,
    /// No answer within the wait.
    TimedOut,
    /// Another error (unreachable, prohibited…).
    Failed,
}

/// Durations in JSON: fractional milliseconds.
pub(crate) mod millis {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_millis_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration((f64::deserialize(d)? * 1e6).round() as i64))
    }

    pub(crate) mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use crate::time::Duration;

        pub(crate) fn serialize<S: Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&d.as_millis_f64()),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            Ok(Option::<f64>::deserialize(d)?.map(|ms| Duration((ms * 1e6).round() as i64)))
        }
    }
}

pub(crate) use millis::option as millis_option;

/// One observation, with its numbers. Serialized as an object whose `code` is the kebab-case name of the
/// variant (the codes docs/json.md lists), followed by the variant's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Finding {
    /// A SYN-ACK came back.
    SynAck {
        /// Its sender.
        from: IpAddr,
        /// Its TTL.
        ttl: TtlReading,
    },
    /// The SYN-ACK does not acknowledge ISN+1.
    InexactAck,
    /// The SYN-ACK came from farther than the address's echo replies: a port forward's backend.
    SynAckBeyondAddress {
        /// The SYN-ACK's distance.
        synack_hops: HopCount,
        /// The echo replies' distance.
        echo_hops: HopCount,
    },
    /// An RST for the same SYN came as well.
    RstAndSynAck,
    /// The SYN-ACK advertises a window of 0: a SYN proxy.
    SynAckWindowZero,
    /// An RST came back.
    Rst {
        /// Its sender.
        from: IpAddr,
        /// Its TTL.
        ttl: TtlReading,
        /// Its round-trip time (`after_ms`).
        #[serde(rename = "after_ms", with = "millis::option")]
        after: Option<Duration>,
    },
    /// The RST's initial TTL is not one the host's own replies have.
    RstInitialTtlDiffers {
        /// The RST's initial TTL.
        rst_initial: u8,
        /// The host's replies compared with.
        host_replies: HostReplies,
        /// Their initial TTLs.
        host_initials: InitialTtls,
        /// How many of them (SYN-ACKs; 0 for echo replies).
        host_count: u32,
    },
    /// The RST came from the address's own distance (its echo replies'), its SYN-ACKs from farther.
    RstAtEchoDistance {
        /// The RST's distance.
        rst_hops: HopCount,
        /// The SYN-ACKs' distances.
        synack_hops: HopRange,
    },
    /// The RST came from closer than the host's SYN-ACKs.
    RstCloserThanSynack {
        /// The RST's distance.
        rst_hops: HopCount,
        /// The SYN-ACKs' distances.
        host_hops: HopRange,
    },
    /// The RST came from farther than the host's SYN-ACKs.
    RstFartherThanSynack {
        /// The RST's distance.
        rst_hops: HopCount,
        /// The SYN-ACKs' distances.
        host_hops: HopRange,
    },
    /// The RST came from the distance and initial TTL of the host's SYN-ACKs.
    RstSameDistance {
        /// The distance.
        rst_hops: HopCount,
        /// SYN-ACKs compared with.
        synack_count: u32,
    },
    /// The RST has IPv6 flow label 0 where the host's other packets carry one.
    RstFlowLabelZero {
        /// Which of the host's packets carry flow labels.
        labelled: HostReplies,
    },
    /// The RST came from closer than the host's echo replies.
    RstCloserThanEcho {
        /// The RST's distance.
        rst_hops: HopCount,
        /// The echo replies' distances.
        echo_hops: HopRange,
    },
    /// The RST came from the distance of the host's echo replies (other RSTs from farther are a port forward's
    /// backends).
    RstAtEchoOnly {
        /// The RST's distance.
        rst_hops: HopCount,
        /// The echo replies' distances.
        echo_hops: HopRange,
    },
    /// Other RSTs from the address came from farther.
    RstCloserThanOtherRsts {
        /// This RST's distance.
        rst_hops: HopCount,
        /// The farthest other RST's distance.
        other_hops: HopCount,
    },
    /// Other RSTs from the address came from the same distance.
    RstConsistent {
        /// How many.
        others: u32,
    },
    /// A TOS-marked SYN to the port drew an RST with TOS 0, where RSTs for other ports echo it.
    PortTosZero {
        /// The port.
        port: u16,
    },
    /// A TOS-marked SYN to the port drew an RST that echoed the TOS.
    PortTosEchoed {
        /// The port.
        port: u16,
    },
    /// The RST echoed the SYN's TOS.
    RstTosEchoed {
        /// The SYN's TOS byte.
        syn_tos: u8,
    },
    /// The RST has TOS 0 where the SYN had a non-zero one.
    RstTosZero {
        /// The SYN's TOS byte.
        syn_tos: u8,
        /// Whether other RSTs from the host echo the TOS.
        others_echo: bool,
    },
    /// The host's SYN-ACKs show a Linux stack (option layout) at the RST's distance.
    RstTosZeroLinuxHost,
    /// The RST carries a non-zero IPv6 flow label.
    RstFlowLabel {
        /// The flow label.
        flow_label: u32,
    },
    /// The RST does not acknowledge ISN+1.
    RstInexactAck {
        /// What it acknowledges.
        ack: u32,
        /// ISN+1.
        expected: u32,
    },
    /// No SYN-ACK from the address to compare with.
    NoBaseline,
    /// No TOS or flow-label test told the host's stack from a rule on it.
    HostRulePossible,
    /// An ICMP destination unreachable came back.
    IcmpUnreachable {
        /// Its code.
        icmp_code: Unreachable,
        /// Its sender.
        from: IpAddr,
        /// The sender: `sender` (this host), `target` or `router`.
        from_kind: RejecterKind,
        /// Its TTL.
        ttl: TtlReading,
    },
    /// The ICMP error quotes our SYN with TTL left.
    IcmpQuote {
        /// The TTL left in the quote.
        quoted_ttl: u8,
        /// The TTL the SYN was sent with.
        sent_ttl: u8,
        /// Bytes of TCP quoted.
        tcp_bytes: u16,
    },
    /// ICMP time exceeded.
    TimeExceeded {
        /// Its sender.
        from: IpAddr,
        /// The sender's kind.
        from_kind: RejecterKind,
        /// Its TTL.
        ttl: TtlReading,
        /// The TTL the SYN was sent with (below 30: a deliberate TTL-limited probe).
        sent_ttl: u8,
    },
    /// Another ICMP error.
    IcmpError {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        icmp_code: u8,
        /// Its sender.
        from: IpAddr,
        /// The sender's kind.
        from_kind: RejecterKind,
        /// Its TTL.
        ttl: TtlReading,
    },
    /// The SYN is not in the capture (the attempt was rebuilt from an ICMP quote).
    SynNotCaptured,
    /// The ICMP error quotes another sequence number.
    IcmpInexactQuote,
    /// No reply to the SYNs.
    Silence {
        /// SYNs sent.
        syns: u32,
        /// From the first SYN to the last (`span_ms`).
        #[serde(rename = "span_ms", with = "millis")]
        span: Duration,
        /// Waited after the last (`waited_ms`).
        #[serde(rename = "waited_ms", with = "millis")]
        waited: Duration,
    },
    /// The host answered other SYNs of the capture.
    HostAnswersElsewhere {
        /// Its distance.
        host_hops: HopCount,
    },
    /// The capture ended soon after the last SYN.
    CaptureEnded {
        /// From the last SYN to the end (`waited_ms`).
        #[serde(rename = "waited_ms", with = "millis")]
        waited: Duration,
    },
    /// The attempt was evicted early.
    Evicted,
    /// An ICMP routing error about the whole address, drawn by a SYN to another port.
    RouteErrorForAddress {
        /// Its code.
        icmp_code: Unreachable,
        /// Its sender.
        from: IpAddr,
        /// The sender's distance.
        hops: HopCount,
        /// The address it concerns.
        target: IpAddr,
        /// The port of the SYN that drew it.
        port: u16,
    },
    /// This port's SYNs drew no answer of their own (ICMP rate limit).
    SilenceRateLimited {
        /// SYNs sent.
        syns: u32,
    },
    /// A live run's TOS-marked SYN drew an RST that echoed it.
    TosProbeEchoed {
        /// The TOS byte sent.
        tos: u8,
    },
    /// A SYN with a bad TCP checksum was answered with an RST.
    BadChecksumAnswered,
    /// Hops that sent no time-exceeded for SYNs that went past them.
    WalkHopSilent {
        /// Their distances.
        hops: Vec<HopCount>,
    },
    /// The packet budget was spent.
    Budget {
        /// The budget.
        budget: u32,
    },
    /// A full TCP connection was accepted.
    ConnectAccepted,
    /// A full TCP connection completed its handshake, then was reset.
    ConnectReset,
    /// A full TCP connection did not complete.
    ConnectFailed {
        /// What it met.
        outcome: FullConnect,
    },
    /// This host's sockets on the port listen on other addresses only.
    LocalListensElsewhere {
        /// The port.
        port: u16,
        /// The address probed.
        target: IpAddr,
        /// Where the sockets listen.
        listeners: Vec<SocketAddr>,
    },
    /// No socket of this host listens on the port.
    LocalNoListener {
        /// The port.
        port: u16,
    },
    /// The listening socket's accept queue is full.
    LocalBacklogFull {
        /// The socket.
        listener: SocketAddr,
        /// Connections waiting.
        queued: u32,
        /// Its accept queue.
        backlog: u32,
        /// How much ListenOverflows rose during the probe.
        overflows: u64,
    },
    /// A socket of this host listens for the address.
    LocalListener {
        /// The socket.
        listener: SocketAddr,
        /// Whether the port answered SYN-ACK.
        port_open: bool,
    },
    /// ListenOverflows rose during the probe.
    LocalListenOverflows {
        /// By how much.
        overflows: u64,
    },
    /// TTL walk: the SYN with the RST's TTL expired at a router.
    TtlWalkRstAtRouter {
        /// The router.
        router: IpAddr,
        /// Its hop (and the RST's distance).
        hops: HopCount,
    },
    /// TTL walk: one hop before the RST's sender, the SYN expired at the target's own address.
    TtlWalkRstBehindTarget {
        /// The target.
        target: IpAddr,
        /// The port.
        port: u16,
        /// The target's hop.
        target_hops: HopCount,
        /// The RST's distance.
        rst_hops: HopCount,
    },
    /// The TTL walk around the RST's distance, where it decided nothing.
    TtlWalk {
        /// The SYNs with TTL one less than the RST's distance, and equal.
        steps: Vec<WalkStep>,
        /// The RST's distance.
        rst_hops: HopCount,
    },
    /// Another probe named the device at the RST's hop.
    HopNamedByOtherProbe {
        /// The target.
        target: IpAddr,
        /// The device.
        addr: IpAddr,
        /// Its hop.
        hops: HopCount,
    },
    /// The device at the RST's hop did not answer the TTL-limited SYN.
    RejecterUnnamed {
        /// Its hop.
        hops: HopCount,
    },
    /// The TTL walk of a silent port.
    TtlWalkSilence {
        /// Every SYN of the walk.
        steps: Vec<WalkStep>,
        /// The last router that answered, and its hop (null when none did).
        last_router: Option<IpAddr>,
        /// Its hop.
        last_hops: Option<HopCount>,
        /// Where the SYNs vanish after it.
        dropped: DropPoint,
    },
    /// The target answered ICMP echo or another port.
    EchoAnswered {
        /// The target.
        target: IpAddr,
        /// Its distance.
        hops: HopCount,
    },
    /// The capture saw neither the SYN nor a reply.
    NotCaptured,
    /// A port of a sweep judged with the deeper probes of another port whose first-pass SYN was answered the
    /// same way (an RST from the same distance with the same TOS behaviour, or silence in the same run).
    SweepSameAs {
        /// The port probed deeply.
        port: u16,
        /// This port's own SYNs drew no answer in the sweep.
        silent_here: bool,
    },
    /// The first and last port of a silent run of a sweep, probed deeply, did not end the same way: where the
    /// ports between are dropped is not known.
    SweepRunMixed {
        /// The run's first port.
        first: u16,
        /// The run's last port.
        last: u16,
    },
}

impl Finding {
    /// The stable machine-readable code, e.g. `rst-closer-than-synack` (docs/json.md lists them).
    pub fn code(&self) -> &'static str {
        use Finding::*;
        match self {
            SynAck { .. } => "syn-ack",
            InexactAck => "inexact-ack",
            SynAckBeyondAddress { .. } => "syn-ack-beyond-address",
            RstAndSynAck => "rst-and-syn-ack",
            SynAckWindowZero => "syn-ack-window-zero",
            Rst { .. } => "rst",
            RstInitialTtlDiffers { .. } => "rst-initial-ttl-differs",
            RstAtEchoDistance { .. } => "rst-at-echo-distance",
            RstCloserThanSynack { .. } => "rst-closer-than-synack",
            RstFartherThanSynack { .. } => "rst-farther-than-synack",
            RstSameDistance { .. } => "rst-same-distance",
            RstFlowLabelZero { .. } => "rst-flow-label-zero",
            RstCloserThanEcho { .. } => "rst-closer-than-echo",
            RstAtEchoOnly { .. } => "rst-at-echo-only",
            RstCloserThanOtherRsts { .. } => "rst-closer-than-other-rsts",
            RstConsistent { .. } => "rst-consistent",
            PortTosZero { .. } => "port-tos-zero",
            PortTosEchoed { .. } => "port-tos-echoed",
            RstTosEchoed { .. } => "rst-tos-echoed",
            RstTosZero { .. } => "rst-tos-zero",
            RstTosZeroLinuxHost => "rst-tos-zero-linux-host",
            RstFlowLabel { .. } => "rst-flow-label",
            RstInexactAck { .. } => "rst-inexact-ack",
            NoBaseline => "no-baseline",
            HostRulePossible => "host-rule-possible",
            IcmpUnreachable { .. } => "icmp-unreachable",
            IcmpQuote { .. } => "icmp-quote",
            TimeExceeded { .. } => "time-exceeded",
            IcmpError { .. } => "icmp-error",
            SynNotCaptured => "syn-not-captured",
            IcmpInexactQuote => "icmp-inexact-quote",
            Silence { .. } => "silence",
            HostAnswersElsewhere { .. } => "host-answers-elsewhere",
            CaptureEnded { .. } => "capture-ended",
            Evicted => "evicted",
            RouteErrorForAddress { .. } => "route-error-for-address",
            SilenceRateLimited { .. } => "silence-rate-limited",
            TosProbeEchoed { .. } => "tos-probe-echoed",
            BadChecksumAnswered => "bad-checksum-answered",
            WalkHopSilent { .. } => "walk-hop-silent",
            Budget { .. } => "budget",
            ConnectAccepted => "connect-accepted",
            ConnectReset => "connect-reset",
            ConnectFailed { .. } => "connect-failed",
            LocalListensElsewhere { .. } => "local-listens-elsewhere",
            LocalNoListener { .. } => "local-no-listener",
            LocalBacklogFull { .. } => "local-backlog-full",
            LocalListener { .. } => "local-listener",
            LocalListenOverflows { .. } => "local-listen-overflows",
            TtlWalkRstAtRouter { .. } => "ttl-walk-rst-at-router",
            TtlWalkRstBehindTarget { .. } => "ttl-walk-rst-behind-target",
            TtlWalk { .. } => "ttl-walk",
            HopNamedByOtherProbe { .. } => "hop-named-by-other-probe",
            RejecterUnnamed { .. } => "rejecter-unnamed",
            TtlWalkSilence { .. } => "ttl-walk-silence",
            EchoAnswered { .. } => "echo-answered",
            NotCaptured => "not-captured",
            SweepSameAs { .. } => "sweep-same-as",
            SweepRunMixed { .. } => "sweep-run-mixed",
        }
    }

    /// Whether this finding shows that an RST was not sent by the target's own stack.
    pub fn shows_forgery(&self) -> bool {
        matches!(
            self,
            Finding::PortTosZero { .. }
                | Finding::RstInitialTtlDiffers { .. }
                | Finding::RstCloserThanSynack { .. }
                | Finding::RstCloserThanEcho { .. }
                | Finding::RstCloserThanOtherRsts { .. }
                | Finding::RstTosZero { .. }
                | Finding::RstFlowLabelZero { .. }
        )
    }
}

/// The sender of an ICMP error, as a headline names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IcmpSender {
    /// Its address.
    pub addr: IpAddr,
    /// `sender` (this host), `target` or `router`.
    pub kind: RejecterKind,
    /// Its distance as its TTL shows it.
    pub hops: HopCount,
}

/// What a judgement's headline says, as data: [`crate::explain`] writes the sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Cause {
    /// The host accepted the connection.
    Open,
    /// A SYN proxy answered; the service behind it is not confirmed.
    OpenAtSynProxy,
    /// A SYN proxy answered, and the service behind it accepted a full connection.
    OpenBehindSynProxy,
    /// The host's own stack refused: nothing listens.
    Closed,
    /// A firewall rule on the host itself sent the RST.
    RstRuleOnHost,
    /// A device on the path forged the RST.
    RstForgedOnPath {
        /// The RST's distance.
        rst_hops: HopCount,
        /// The target's, when known.
        target_hops: Option<HopCount>,
    },
    /// A middlebox answered a SYN with a bad checksum.
    RstForgedByMiddlebox,
    /// A router found by the TTL walk forged the RST.
    RstAtRouter {
        /// The router.
        router: IpAddr,
        /// Its hop.
        hops: HopCount,
    },
    /// The port is forwarded to a backend one hop beyond the target, which refused.
    ForwardedBackendRefused {
        /// A firewall rule at the backend (else its stack).
        by_rule: bool,
    },
    /// A SYN proxy completed the handshake, then the connection was reset.
    ClosedBehindSynProxy,
    /// The service listens on other addresses of this host only.
    ListensElsewhere {
        /// Where it listens.
        listeners: Vec<SocketAddr>,
    },
    /// A firewall rule on this host (its OUTPUT chain) rejected the SYN.
    RejectedBySender {
        /// This host's address.
        addr: IpAddr,
        /// The ICMP code.
        icmp_code: Unreachable,
    },
    /// An ICMP rejection.
    Rejected {
        /// Who sent it.
        by: IcmpSender,
        /// The ICMP code.
        icmp_code: Unreachable,
    },
    /// The target forwards the port to a backend that does not answer.
    ForwardedBackendGone {
        /// The target.
        by: IcmpSender,
        /// The ICMP code.
        icmp_code: Unreachable,
    },
    /// An ICMP routing error.
    Unreachable {
        /// Who sent it.
        by: IcmpSender,
        /// The ICMP code.
        icmp_code: Unreachable,
    },
    /// The SYN's TTL ran out.
    Expired {
        /// Where.
        at: IcmpSender,
    },
    /// Another ICMP error turned the SYN back.
    IcmpError {
        /// Who sent it.
        by: IcmpSender,
    },
    /// An ICMP error about the whole address, drawn by another port.
    RouteError {
        /// Its sender.
        from: IpAddr,
        /// The sender's distance.
        hops: HopCount,
        /// The ICMP code.
        icmp_code: Unreachable,
    },
    /// Every SYN went unanswered.
    Filtered,
    /// The SYNs vanish after a hop of the TTL walk.
    DroppedAfterHop {
        /// The last router that answered.
        router: IpAddr,
        /// Its hop.
        hops: HopCount,
        /// Where they vanish.
        dropped: DropPoint,
    },
    /// The listen backlog is full.
    BacklogFull {
        /// Connections waiting.
        queued: u32,
        /// The accept queue.
        backlog: u32,
    },
    /// No frame of the probe was captured.
    NotCaptured,
}

/// One next step for an operator, as data: [`crate::explain`] writes the sentence (with the attempt's target
/// and port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "advice", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Advice {
    /// TCP is fine: look above it.
    LookAboveTcp,
    /// A full connection tells what is behind a SYN proxy.
    ConnectThroughProxy,
    /// Look for the SYN proxy's rules and the service on the host.
    FindSynProxy,
    /// Check for a listener on the target.
    CheckListener,
    /// Check a stopped service.
    ServiceStopped,
    /// A service bound to loopback only.
    LoopbackBind,
    /// A full backlog on Windows answers RST.
    WindowsBacklog,
    /// A REJECT rule on the target host.
    HostRejectRule,
    /// A REJECT rule on the device that sent the RST.
    PathRejectRule,
    /// Cloud security groups and ACLs.
    CloudPolicies,
    /// Test from beyond the firewall.
    TestBeyondFirewall,
    /// An OUTPUT REJECT rule on this host.
    SenderOutputRule {
        /// This host.
        addr: IpAddr,
    },
    /// Local security software.
    LocalSecuritySoftware,
    /// Find the REJECT rule or prohibit route on the sender.
    FindRejectRule {
        /// The ICMP error's sender.
        addr: IpAddr,
    },
    /// Allow the port before the REJECT rule.
    AllowBeforeRule,
    /// kube-proxy rejects a Service without endpoints.
    KubeProxyNoEndpoints,
    /// Find where the target forwards the port.
    FindPortForward {
        /// The target.
        addr: IpAddr,
    },
    /// Is the backend up?
    BackendUp,
    /// Which route applies on the sender.
    RouteGet {
        /// The ICMP error's sender.
        addr: IpAddr,
    },
    /// Is the target up on its link?
    NeighbourCheck,
    /// Trace the path for a loop.
    TracePath,
    /// Check the path MTU.
    CheckMtu,
    /// The target is local: this host's firewall.
    LocalFirewall,
    /// A DROP rule, blackhole route or a host down.
    DropOrBlackhole,
    /// A full listen backlog on Linux drops SYNs.
    LinuxBacklog,
    /// Run synprobe live (left out of a live run's words).
    RunLive,
    /// Look for the DROP rule.
    FindDropRule,
    /// Which route applies on the sender of an address-wide error.
    RouteGetAddress {
        /// The ICMP error's sender.
        addr: IpAddr,
    },
    /// A prohibit route or policy on the sender.
    ProhibitRoute {
        /// The ICMP error's sender.
        addr: IpAddr,
    },
    /// The service behind a SYN proxy is not listening.
    ProxyServiceDown,
    /// The SYN proxy's rules.
    ProxyRules,
    /// Bind the service to the address probed.
    Rebind {
        /// Where it listens now.
        listeners: Vec<SocketAddr>,
    },
    /// The service does not accept fast enough.
    AcceptLoop,
    /// The rule on the router that forged the RST.
    RouterRejectRule {
        /// The router.
        router: IpAddr,
    },
    /// Where the port is forwarded (containers, NAT, Kubernetes).
    FindForwardedBackend,
    /// Inside the backend.
    InsideBackend,
    /// Kubernetes endpoints or a load balancer's targets.
    BackendEndpoints,
    /// Capture on the right interface.
    UseInterface,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn sock(s: &str) -> SocketAddr {
        s.parse().expect("test socket address")
    }

    /// One of every finding, with numbers of both kinds (IPv4 and IPv6, lists, optional fields set and not).
    pub(crate) fn examples() -> Vec<Finding> {
        use Finding::*;
        let ttl = TtlReading::of(57);
        let range = HopRange {
            min: HopCount(7),
            max: HopCount(9),
        };
        let mut initials = InitialTtls::default();
        initials.insert(64);
        initials.insert(128);
        let walk = vec![
            WalkStep {
                ttl: 3,
                answer: WalkAnswer::TimeExceeded,
                from: Some(a("198.18.1.2")),
            },
            WalkStep {
                ttl: 4,
                answer: WalkAnswer::Silence,
                from: None,
            },
        ];
        let all = vec![
            SynAck {
                from: a("198.18.9.9"),
                ttl,
            },
            InexactAck,
            SynAckBeyondAddress {
                synack_hops: HopCount(9),
                echo_hops: HopCount(8),
            },
            RstAndSynAck,
            SynAckWindowZero,
            Rst {
                from: a("2001:db8::9"),
                ttl,
                after: Some(Duration(9_125_000)),
            },
            Rst {
                from: a("198.18.9.9"),
                ttl,
                after: None,
            },
            RstInitialTtlDiffers {
                rst_initial: 64,
                host_replies: HostReplies::SynAcks,
                host_initials: initials,
                host_count: 3,
            },
            RstInitialTtlDiffers {
                rst_initial: 255,
                host_replies: HostReplies::EchoReplies,
                host_initials: initials,
                host_count: 1,
            },
            RstAtEchoDistance {
                rst_hops: HopCount(8),
                synack_hops: range,
            },
            RstCloserThanSynack {
                rst_hops: HopCount(4),
                host_hops: range,
            },
            RstFartherThanSynack {
                rst_hops: HopCount(12),
                host_hops: range,
            },
            RstSameDistance {
                rst_hops: HopCount(8),
                synack_count: 2,
            },
            RstFlowLabelZero {
                labelled: HostReplies::SynAcks,
            },
            RstFlowLabelZero {
                labelled: HostReplies::OtherRsts,
            },
            RstCloserThanEcho {
                rst_hops: HopCount(3),
                echo_hops: range,
            },
            RstAtEchoOnly {
                rst_hops: HopCount(3),
                echo_hops: range,
            },
            RstCloserThanOtherRsts {
                rst_hops: HopCount(3),
                other_hops: HopCount(8),
            },
            RstConsistent { others: 4 },
            PortTosZero { port: 8080 },
            PortTosEchoed { port: 81 },
            RstTosEchoed { syn_tos: 0x10 },
            RstTosZero {
                syn_tos: 0x10,
                others_echo: true,
            },
            RstTosZero {
                syn_tos: 0x48,
                others_echo: false,
            },
            RstTosZeroLinuxHost,
            RstFlowLabel {
                flow_label: 0xabcde,
            },
            RstInexactAck {
                ack: 7,
                expected: 1001,
            },
            NoBaseline,
            HostRulePossible,
            IcmpUnreachable {
                icmp_code: Unreachable::AdminProhibited,
                from: a("198.18.1.1"),
                from_kind: RejecterKind::Router,
                ttl: TtlReading::of(63),
            },
            IcmpUnreachable {
                icmp_code: Unreachable::Unknown(99),
                from: a("198.18.0.2"),
                from_kind: RejecterKind::Sender,
                ttl: TtlReading::of(64),
            },
            IcmpQuote {
                quoted_ttl: 62,
                sent_ttl: 64,
                tcp_bytes: 8,
            },
            TimeExceeded {
                from: a("198.18.1.2"),
                from_kind: RejecterKind::Router,
                ttl: TtlReading::of(63),
                sent_ttl: 2,
            },
            TimeExceeded {
                from: a("198.18.9.9"),
                from_kind: RejecterKind::Target,
                ttl: TtlReading::of(63),
                sent_ttl: 64,
            },
            IcmpError {
                icmp_type: 12,
                icmp_code: 0,
                from: a("198.18.1.2"),
                from_kind: RejecterKind::Router,
                ttl: TtlReading::of(62),
            },
            SynNotCaptured,
            IcmpInexactQuote,
            Silence {
                syns: 3,
                span: Duration::from_millis(3000),
                waited: Duration::from_millis(3500),
            },
            HostAnswersElsewhere {
                host_hops: HopCount(8),
            },
            CaptureEnded {
                waited: Duration::from_millis(1250),
            },
            Evicted,
            RouteErrorForAddress {
                icmp_code: Unreachable::Host,
                from: a("198.18.1.1"),
                hops: HopCount(2),
                target: a("198.18.9.9"),
                port: 443,
            },
            SilenceRateLimited { syns: 2 },
            TosProbeEchoed { tos: 0x10 },
            BadChecksumAnswered,
            WalkHopSilent {
                hops: vec![HopCount(2), HopCount(3)],
            },
            Budget { budget: 64 },
            ConnectAccepted,
            ConnectReset,
            ConnectFailed {
                outcome: FullConnect::TimedOut,
            },
            LocalListensElsewhere {
                port: 8080,
                target: a("198.18.0.2"),
                listeners: vec![sock("127.0.0.1:8080"), sock("[::1]:8080")],
            },
            LocalNoListener { port: 9 },
            LocalBacklogFull {
                listener: sock("0.0.0.0:80"),
                queued: 129,
                backlog: 128,
                overflows: 12,
            },
            LocalListener {
                listener: sock("[::]:22"),
                port_open: true,
            },
            LocalListener {
                listener: sock("0.0.0.0:22"),
                port_open: false,
            },
            LocalListenOverflows { overflows: 3 },
            TtlWalkRstAtRouter {
                router: a("198.18.1.2"),
                hops: HopCount(2),
            },
            TtlWalkRstBehindTarget {
                target: a("198.18.9.9"),
                port: 8080,
                target_hops: HopCount(3),
                rst_hops: HopCount(4),
            },
            TtlWalk {
                steps: walk.clone(),
                rst_hops: HopCount(4),
            },
            HopNamedByOtherProbe {
                target: a("198.18.9.9"),
                addr: a("198.18.1.3"),
                hops: HopCount(3),
            },
            RejecterUnnamed { hops: HopCount(3) },
            TtlWalkSilence {
                steps: walk.clone(),
                last_router: Some(a("198.18.1.2")),
                last_hops: Some(HopCount(3)),
                dropped: DropPoint::AfterHop,
            },
            TtlWalkSilence {
                steps: walk,
                last_router: None,
                last_hops: None,
                dropped: DropPoint::Unknown,
            },
            EchoAnswered {
                target: a("198.18.9.9"),
                hops: HopCount(4),
            },
            NotCaptured,
            SweepSameAs {
                port: 22,
                silent_here: false,
            },
            SweepRunMixed {
                first: 9000,
                last: 9009,
            },
        ];
        // Every variant is among them: a new variant fails to compile here until it has an example.
        let index = |f: &Finding| -> usize {
            match f {
                SynAck { .. } => 0,
                InexactAck => 1,
                SynAckBeyondAddress { .. } => 2,
                RstAndSynAck => 3,
                SynAckWindowZero => 4,
                Rst { .. } => 5,
                RstInitialTtlDiffers { .. } => 6,
                RstAtEchoDistance { .. } => 7,
                RstCloserThanSynack { .. } => 8,
                RstFartherThanSynack { .. } => 9,
                RstSameDistance { .. } => 10,
                RstFlowLabelZero { .. } => 11,
                RstCloserThanEcho { .. } => 12,
                RstCloserThanOtherRsts { .. } => 13,
                RstConsistent { .. } => 14,
                PortTosZero { .. } => 15,
                PortTosEchoed { .. } => 16,
                RstTosEchoed { .. } => 17,
                RstTosZero { .. } => 18,
                RstTosZeroLinuxHost => 19,
                RstFlowLabel { .. } => 20,
                RstInexactAck { .. } => 21,
                NoBaseline => 22,
                HostRulePossible => 23,
                IcmpUnreachable { .. } => 24,
                IcmpQuote { .. } => 25,
                TimeExceeded { .. } => 26,
                IcmpError { .. } => 27,
                SynNotCaptured => 28,
                IcmpInexactQuote => 29,
                Silence { .. } => 30,
                HostAnswersElsewhere { .. } => 31,
                CaptureEnded { .. } => 32,
                Evicted => 33,
                RouteErrorForAddress { .. } => 34,
                SilenceRateLimited { .. } => 35,
                TosProbeEchoed { .. } => 36,
                BadChecksumAnswered => 37,
                WalkHopSilent { .. } => 38,
                Budget { .. } => 39,
                ConnectAccepted => 40,
                ConnectReset => 41,
                ConnectFailed { .. } => 42,
                LocalListensElsewhere { .. } => 43,
                LocalNoListener { .. } => 44,
                LocalBacklogFull { .. } => 45,
                LocalListener { .. } => 46,
                LocalListenOverflows { .. } => 47,
                TtlWalkRstAtRouter { .. } => 48,
                TtlWalkRstBehindTarget { .. } => 49,
                TtlWalk { .. } => 50,
                HopNamedByOtherProbe { .. } => 51,
                RejecterUnnamed { .. } => 52,
                TtlWalkSilence { .. } => 53,
                EchoAnswered { .. } => 54,
                NotCaptured => 55,
                SweepSameAs { .. } => 56,
                SweepRunMixed { .. } => 57,
                RstAtEchoOnly { .. } => 58,
            }
        };
        let covered: std::collections::BTreeSet<usize> = all.iter().map(index).collect();
        assert_eq!(covered.len(), 59, "an example of every finding");
        all
    }

    #[test]
    fn every_finding_serializes_with_its_code_and_its_numbers_and_reads_back() {
        let mut codes = std::collections::BTreeSet::new();
        for f in examples() {
            let json = serde_json::to_value(&f).expect("serializes");
            assert_eq!(json["code"], f.code(), "{json}");
            codes.insert(f.code());
            let back: Finding = serde_json::from_value(json.clone()).expect("reads back");
            assert_eq!(back, f, "{json}");
            // Numbers as numbers: no field is a sentence.
            for (key, value) in json.as_object().expect("an object") {
                if let Some(s) = value.as_str() {
                    assert!(!s.contains(' '), "{key} is a sentence: {json}");
                }
            }
        }
        assert_eq!(codes.len(), 59);
    }

    #[test]
    fn findings_write_their_numbers_with_units() {
        let json = |f: &Finding| serde_json::to_value(f).expect("serializes");
        assert_eq!(
            json(&Finding::RstCloserThanSynack {
                rst_hops: HopCount(4),
                host_hops: HopRange {
                    min: HopCount(8),
                    max: HopCount(8)
                },
            }),
            serde_json::json!({"code": "rst-closer-than-synack", "rst_hops": 4, "host_hops": {"min": 8, "max": 8}})
        );
        assert_eq!(
            json(&Finding::Rst {
                from: a("198.18.9.9"),
                ttl: TtlReading::of(61),
                after: Some(Duration(9_125_000)),
            }),
            serde_json::json!({"code": "rst", "from": "198.18.9.9",
                "ttl": {"received": 61, "initial": 64, "hops": 4}, "after_ms": 9.125})
        );
        assert_eq!(
            json(&Finding::Silence {
                syns: 3,
                span: Duration::from_millis(3000),
                waited: Duration(1_500_000),
            }),
            serde_json::json!({"code": "silence", "syns": 3, "span_ms": 3000.0, "waited_ms": 1.5})
        );
        let mut initials = InitialTtls::default();
        initials.insert(128);
        initials.insert(64);
        assert_eq!(
            serde_json::to_value(initials).expect("serializes"),
            serde_json::json!([64, 128])
        );
        assert_eq!(
            json(&Finding::IcmpUnreachable {
                icmp_code: Unreachable::AdminProhibited,
                from: a("198.18.1.1"),
                from_kind: RejecterKind::Router,
                ttl: TtlReading::of(63),
            })["icmp_code"],
            "admin-prohibited"
        );
    }
}
