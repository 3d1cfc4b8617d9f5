//! The owned, serializable model of a connection attempt: the probe that was sent, the replies that came
//! back, and the attempt that ties them together.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::wire::{IcmpErrorKind, Packet, TcpFlags, TcpOptions, Transport, Unreachable};

/// A TCP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Port(pub u16);

/// A TCP initial sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Isn(pub u32);

impl Isn {
    /// The acknowledgment number a genuine answer to this SYN carries: ISN + 1.
    pub fn expected_ack(self) -> u32 {
        self.0.wrapping_add(1)
    }
}

/// An IPv4 TTL or IPv6 hop limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ttl(pub u8);

/// A distance along the path, counted as in traceroute: the first router is hop 1, and a host behind `n`
/// routers is at hop `n + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HopCount(pub u8);

impl fmt::Display for HopCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The four-tuple of a connection attempt, seen from the side that sent the SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowKey {
    /// The address that sent the SYN.
    pub client: IpAddr,
    /// The address the SYN was sent to.
    pub server: IpAddr,
    /// The SYN's source port.
    pub client_port: Port,
    /// The SYN's destination port.
    pub server_port: Port,
}

/// A frame as it was seen: where in the capture, when, how long, and what it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// 1-based frame number in the capture (or in the live run).
    pub frame: u64,
    /// Capture time.
    pub ts: Timestamp,
    /// Length of the frame on the wire, in bytes.
    pub len: u32,
    /// The parsed frame.
    pub packet: Packet,
}

/// What was sent: the first SYN of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Addresses and ports.
    #[serde(flatten)]
    pub key: FlowKey,
    /// The SYN's sequence number.
    pub isn: Isn,
    /// TTL / hop limit the SYN carried.
    pub ttl: Ttl,
    /// TOS byte / traffic class the SYN carried.
    pub tos: u8,
    /// IPv6 flow label, if IPv6.
    pub flow_label: Option<u32>,
    /// TCP flags of the SYN (ECE+CWR on an ECN-setup SYN).
    pub flags: TcpFlags,
    /// TCP options of the SYN.
    pub options: TcpOptions,
    /// When the first SYN was seen.
    pub ts: Timestamp,
}

/// What kind of reply a frame is, relative to the attempt it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
#[non_exhaustive]
pub enum ReplyKind {
    /// SYN+ACK: the port is open.
    SynAck,
    /// RST (normally RST+ACK).
    Rst,
    /// An ICMP/ICMPv6 destination unreachable, with its code.
    Unreachable(Unreachable),
    /// ICMP time exceeded / ICMPv6 hop limit exceeded.
    TimeExceeded,
    /// Another ICMP error about the probe (packet too big, parameter problem, source quench, redirect).
    OtherIcmp,
}

/// A reply matched to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The frame.
    #[serde(flatten)]
    pub seen: Observed,
    /// What it says.
    pub kind: ReplyKind,
    /// False when the ports match but the reply does not acknowledge the SYN exactly (a TCP reply whose ack is
    /// not ISN+1, or an ICMP error quoting another sequence number). Such replies are kept as evidence, marked.
    pub exact: bool,
}

impl Reply {
    /// Classify a packet that arrived on an attempt's reversed four-tuple or quoted it.
    pub(crate) fn classify(packet: &Packet) -> Option<ReplyKind> {
        match &packet.transport {
            Transport::Tcp(t) if t.flags.is_rst() => Some(ReplyKind::Rst),
            Transport::Tcp(t) if t.flags.is_syn_ack() => Some(ReplyKind::SynAck),
            Transport::IcmpError(e) => Some(match e.kind {
                IcmpErrorKind::DestinationUnreachable(code) => ReplyKind::Unreachable(code),
                IcmpErrorKind::TimeExceeded(_) => ReplyKind::TimeExceeded,
                _ => ReplyKind::OtherIcmp,
            }),
            _ => None,
        }
    }

    /// The sender's address.
    pub fn source(&self) -> IpAddr {
        self.seen.packet.ip.src
    }

    /// The TTL / hop limit the reply arrived with.
    pub fn ttl(&self) -> Ttl {
        Ttl(self.seen.packet.ip.ttl)
    }
}

/// How an attempt left the matcher's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Closure {
    /// Its reply window (the timeout after its last SYN) passed.
    TimedOut,
    /// The capture ended before its reply window passed.
    EndOfInput,
    /// A new SYN on the same four-tuple with another ISN replaced it.
    Superseded,
    /// The table was full: it was pushed out early (counted as an eviction).
    Evicted,
}

/// One connection attempt: a SYN, its retransmissions (same four-tuple and ISN), and every reply to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The first SYN.
    pub probe: Probe,
    /// How many SYNs were sent in all (1 + retransmissions).
    pub syn_count: u32,
    /// When the last SYN was seen.
    pub last_syn: Timestamp,
    /// The SYN frames (the first few; `syn_count` has the full count).
    pub syns: Vec<Observed>,
    /// The replies, in arrival order (the first few; `reply_count` has the full count).
    pub replies: Vec<Reply>,
    /// How many replies arrived in all.
    pub reply_count: u32,
    /// Later frames from the client on the same four-tuple: the handshake's ACK, or the RST a client's kernel
    /// sends for a SYN-ACK it did not expect. Kept for the trace; marked as ours.
    pub client_frames: Vec<Observed>,
    /// How the attempt left the table.
    pub closure: Closure,
    /// Capture time at which it left the table.
    pub closed_at: Timestamp,
}

impl Attempt {
    /// Number of SYN retransmissions.
    pub fn retransmissions(&self) -> u32 {
        self.syn_count.saturating_sub(1)
    }

    /// The decisive reply: the first exact SYN-ACK, else the first exact RST, else the first exact ICMP
    /// unreachable, else the first exact time-exceeded, else the first inexact TCP reply.
    pub fn decisive_reply(&self) -> Option<&Reply> {
        let first = |pred: &dyn Fn(&Reply) -> bool| self.replies.iter().find(|r| pred(r));
        first(&|r| r.exact && r.kind == ReplyKind::SynAck)
            .or_else(|| first(&|r| r.exact && r.kind == ReplyKind::Rst))
            .or_else(|| first(&|r| r.exact && matches!(r.kind, ReplyKind::Unreachable(_))))
            .or_else(|| first(&|r| r.exact && r.kind == ReplyKind::TimeExceeded))
            .or_else(|| first(&|r| r.exact && r.kind == ReplyKind::OtherIcmp))
            .or_else(|| {
                first(&|r| !r.exact && matches!(r.kind, ReplyKind::Rst | ReplyKind::SynAck))
            })
    }

    /// Every frame of the attempt in capture order: SYNs, replies and the client's later frames.
    pub fn frames(&self) -> Vec<(FrameRole, &Observed)> {
        let mut all: Vec<(FrameRole, &Observed)> = self
            .syns
            .iter()
            .map(|o| (FrameRole::Syn, o))
            .chain(self.replies.iter().map(|r| (FrameRole::Reply, &r.seen)))
            .chain(self.client_frames.iter().map(|o| (FrameRole::Ours, o)))
            .collect();
        all.sort_by_key(|(_, o)| (o.frame, o.ts));
        all
    }
}

/// The part a frame plays in an attempt, for traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FrameRole {
    /// A SYN of the attempt (first or retransmission).
    Syn,
    /// A reply to it.
    Reply,
    /// A later frame from the client's own stack (ACK, or the RST a kernel sends for an unexpected SYN-ACK).
    Ours,
    /// A frame of a live run that belongs to no TCP attempt (an ICMP echo and its reply).
    Other,
}
