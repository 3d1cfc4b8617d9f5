//! The wire model: one captured frame parsed into an owned, `Copy` summary of what the engine reasons about.
//!
//! Parsing uses etherparse's lax slicing, so a frame cut short by the capture's snap length still yields what
//! it holds; the datagram quoted inside an ICMP error is parsed leniently too (routers may quote only the first
//! 8 bytes of TCP: the ports and the sequence number). Untrusted bytes are never indexed without a length check:
//! a frame that does not parse is a [`ParseError`], which the engine counts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use serde::{Deserialize, Serialize};

use crate::capture::LinkType;

/// TCP flag bits as they appear in byte 13 of the TCP header (plus NS from byte 12, as bit 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE (ECN echo).
    pub const ECE: u16 = 0x040;
    /// CWR (congestion window reduced).
    pub const CWR: u16 = 0x080;
    /// NS (ECN nonce, historic).
    pub const NS: u16 = 0x100;

    /// Whether every bit of `mask` is set.
    pub fn has(self, mask: u16) -> bool {
        self.0 & mask == mask
    }
    /// SYN without ACK: a connection attempt.
    pub fn is_syn_only(self) -> bool {
        self.has(Self::SYN) && !self.has(Self::ACK) && !self.has(Self::RST)
    }
    /// SYN+ACK: the server accepts.
    pub fn is_syn_ack(self) -> bool {
        self.has(Self::SYN | Self::ACK) && !self.has(Self::RST)
    }
    /// RST set.
    pub fn is_rst(self) -> bool {
        self.has(Self::RST)
    }

    /// The flags in Wireshark's order and spelling: `SYN, ACK`.
    pub fn names(self) -> String {
        const ORDER: [(u16, &str); 9] = [
            (TcpFlags::FIN, "FIN"),
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::ACK, "ACK"),
            (TcpFlags::URG, "URG"),
            (TcpFlags::ECE, "ECE"),
            (TcpFlags::CWR, "CWR"),
            (TcpFlags::NS, "NS"),
        ];
        let mut out = String::new();
        for (bit, name) in ORDER {
            if self.0 & bit != 0 {
                if !out.is_empty() {
                    out.push_str(", ");
                }
                out.push_str(name);
            }
        }
        if out.is_empty() {
            out.push_str("<None>");
        }
        out
    }
}

/// The IP layer of a frame: addresses and the header fields that fingerprint the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IpMeta {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6) as received.
    pub ttl: u8,
    /// The TOS byte (IPv4) or traffic class (IPv6): DSCP in the upper six bits, ECN in the lower two.
    pub tos: u8,
    /// IPv4 identification (0 for IPv6).
    pub ident: u16,
    /// IPv4 don't-fragment bit (false for IPv6).
    pub df: bool,
    /// IPv6 flow label (None for IPv4).
    pub flow_label: Option<u32>,
}

impl IpMeta {
    /// Whether this is IPv6.
    pub fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }
}

/// Up to 40 bytes of raw TCP options, kept as they were on the wire (their order matters for fingerprints and
/// for Wireshark-style display). Decoded on demand.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpOptions {
    len: u8,
    bytes: [u8; 40],
}

/// One decoded TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcpOption {
    /// End of option list (kind 0).
    End,
    /// No-operation padding (kind 1).
    Nop,
    /// Maximum segment size (kind 2).
    Mss(u16),
    /// Window scale shift count (kind 3).
    WindowScale(u8),
    /// SACK permitted (kind 4).
    SackPermitted,
    /// SACK blocks (kind 5), by count.
    Sack(u8),
    /// Timestamps (kind 8): value and echo reply.
    Timestamps(u32, u32),
    /// Any other kind, or a malformed option (length past the end).
    Unknown(u8),
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            len: 0,
            bytes: [0; 40],
        }
    }
}

impl TcpOptions {
    /// Keep up to 40 bytes of raw options (a longer input is cut: TCP allows no more).
    pub fn from_bytes(raw: &[u8]) -> Self {
        let mut bytes = [0u8; 40];
        let n = raw.len().min(40);
        bytes[..n].copy_from_slice(&raw[..n]);
        TcpOptions {
            len: n as u8,
            bytes,
        }
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    /// Iterate the decoded options in wire order; stops after End or a malformed option.
    pub fn iter(&self) -> TcpOptionIter<'_> {
        TcpOptionIter {
            rest: self.as_bytes(),
        }
    }
    /// The MSS option, if present.
    pub fn mss(&self) -> Option<u16> {
        self.iter().find_map(|o| match o {
            TcpOption::Mss(v) => Some(v),
            _ => None,
        })
    }
    /// The window-scale shift, if present.
    pub fn window_scale(&self) -> Option<u8> {
        self.iter().find_map(|o| match o {
            TcpOption::WindowScale(v) => Some(v),
            _ => None,
        })
    }
    /// Whether SACK is permitted.
    pub fn sack_permitted(&self) -> bool {
        self.iter().any(|o| o == TcpOption::SackPermitted)
    }
    /// The timestamps option, if present.
    pub fn timestamps(&self) -> Option<(u32, u32)> {
        self.iter().find_map(|o| match o {
            TcpOption::Timestamps(a, b) => Some((a, b)),
            _ => None,
        })
    }
    /// The option kinds in order, as a compact fingerprint such as `M,S,T,N,W`.
    pub fn layout(&self) -> String {
        let parts: Vec<&str> = self
            .iter()
            .map(|o| match o {
                TcpOption::End => "E",
                TcpOption::Nop => "N",
                TcpOption::Mss(_) => "M",
                TcpOption::WindowScale(_) => "W",
                TcpOption::SackPermitted => "S",
                TcpOption::Sack(_) => "K",
                TcpOption::Timestamps(..) => "T",
                TcpOption::Unknown(_) => "?",
            })
            .collect();
        parts.join(",")
    }
}

impl std::fmt::Debug for TcpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for TcpOptions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.layout())
    }
}

impl<'de> Deserialize<'de> for TcpOptions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only the layout is serialized; deserializing yields no options (the layout is informational).
        let _ = String::deserialize(d)?;
        Ok(TcpOptions::default())
    }
}

/// Iterator over [`TcpOptions`].
pub struct TcpOptionIter<'a> {
    rest: &'a [u8],
}

impl Iterator for TcpOptionIter<'_> {
    type Item = TcpOption;
    fn next(&mut self) -> Option<TcpOption> {
        let (&kind, tail) = self.rest.split_first()?;
        match kind {
            0 => {
                self.rest = &[];
                Some(TcpOption::End)
            }
            1 => {
                self.rest = tail;
                Some(TcpOption::Nop)
            }
            _ => {
                let Some(&len) = tail.first() else {
                    self.rest = &[];
                    return Some(TcpOption::Unknown(kind));
                };
                let len = usize::from(len);
                if len < 2 || len > self.rest.len() {
                    self.rest = &[];
                    return Some(TcpOption::Unknown(kind));
                }
                let body = &self.rest[2..len];
                self.rest = &self.rest[len..];
                Some(match (kind, body.len()) {
                    (2, 2) => TcpOption::Mss(u16::from_be_bytes([body[0], body[1]])),
                    (3, 1) => TcpOption::WindowScale(body[0]),
                    (4, 0) => TcpOption::SackPermitted,
                    (5, n) => TcpOption::Sack((n / 8) as u8),
                    (8, 8) => TcpOption::Timestamps(
                        u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                        u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
                    ),
                    _ => TcpOption::Unknown(kind),
                })
            }
        }
    }
}

/// A TCP segment's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcpMeta {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window.
    pub window: u16,
    /// Options as on the wire.
    pub options: TcpOptions,
    /// Payload length in bytes (from the IP length, not from what was captured).
    pub payload_len: u32,
}

/// The TCP header quoted inside an ICMP error. Routers must quote at least 8 bytes: ports and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QuotedTcp {
    /// Source port of the quoted segment (our probe's source port).
    pub src_port: u16,
    /// Destination port of the quoted segment.
    pub dst_port: u16,
    /// Sequence number of the quoted segment (our probe's ISN).
    pub seq: u32,
    /// Flags, when at least 14 bytes of TCP were quoted.
    pub flags: Option<TcpFlags>,
}

/// The IP datagram quoted inside an ICMP error (the packet that caused the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quote {
    /// Source of the quoted datagram.
    pub src: IpAddr,
    /// Destination of the quoted datagram.
    pub dst: IpAddr,
    /// The quoted TTL / hop limit: what was left of it where the error was raised.
    pub ttl: u8,
    /// The quoted TOS / traffic class.
    pub tos: u8,
    /// IP protocol number of the quoted payload.
    pub protocol: u8,
    /// The quoted TCP header, when the quoted datagram is TCP with at least 8 bytes quoted.
    pub tcp: Option<QuotedTcp>,
    /// How many bytes of the transport header and payload were quoted.
    pub transport_bytes: u16,
}

/// What kind of ICMP error, with the code kept as a total enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "code")]
#[non_exhaustive]
pub enum IcmpErrorKind {
    /// ICMPv4 type 3 / ICMPv6 type 1.
    DestinationUnreachable(Unreachable),
    /// ICMPv4 type 11 / ICMPv6 type 3, with the code (0: TTL exceeded in transit; 1: reassembly).
    TimeExceeded(u8),
    /// ICMPv6 type 2 (packet too big).
    PacketTooBig,
    /// ICMPv4 type 12 / ICMPv6 type 4.
    ParameterProblem(u8),
    /// ICMPv4 type 4 (deprecated).
    SourceQuench,
    /// ICMPv4 type 5.
    Redirect(u8),
}

/// The code of a destination-unreachable error, for ICMPv4 and ICMPv6 alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Unreachable {
    /// v4 0: network unreachable.
    Net,
    /// v4 1: host unreachable.
    Host,
    /// v4 2: protocol unreachable.
    Protocol,
    /// v4 3: port unreachable.
    Port,
    /// v4 4: fragmentation needed and DF set.
    FragmentationNeeded,
    /// v4 5: source route failed.
    SourceRouteFailed,
    /// v4 6: destination network unknown.
    NetUnknown,
    /// v4 7: destination host unknown.
    HostUnknown,
    /// v4 8: source host isolated.
    SourceIsolated,
    /// v4 9: network administratively prohibited.
    NetProhibited,
    /// v4 10: host administratively prohibited.
    HostProhibited,
    /// v4 11: network unreachable for TOS.
    NetTos,
    /// v4 12: host unreachable for TOS.
    HostTos,
    /// v4 13: communication administratively prohibited (filtered).
    AdminProhibited,
    /// v4 14: host precedence violation.
    HostPrecedence,
    /// v4 15: precedence cutoff in effect.
    PrecedenceCutoff,
    /// v6 0: no route to destination.
    V6NoRoute,
    /// v6 1: communication with destination administratively prohibited.
    V6AdminProhibited,
    /// v6 2: beyond scope of source address.
    V6BeyondScope,
    /// v6 3: address unreachable.
    V6AddressUnreachable,
    /// v6 4: port unreachable.
    V6PortUnreachable,
    /// v6 5: source address failed ingress/egress policy.
    V6SourcePolicy,
    /// v6 6: reject route to destination.
    V6RejectRoute,
    /// A code this version does not know (v4 or v6 per the packet).
    Unknown(u8),
}

impl Unreachable {
    /// From an ICMPv4 destination-unreachable code.
    pub fn from_v4(code: u8) -> Self {
        use Unreachable::*;
        match code {
            0 => Net,
            1 => Host,
            2 => Protocol,
            3 => Port,
            4 => FragmentationNeeded,
            5 => SourceRouteFailed,
            6 => NetUnknown,
            7 => HostUnknown,
            8 => SourceIsolated,
            9 => NetProhibited,
            10 => HostProhibited,
            11 => NetTos,
            12 => HostTos,
            13 => AdminProhibited,
            14 => HostPrecedence,
            15 => PrecedenceCutoff,
            c => Unknown(c),
        }
    }

    /// From an ICMPv6 destination-unreachable code.
    pub fn from_v6(code: u8) -> Self {
        use Unreachable::*;
        match code {
            0 => V6NoRoute,
            1 => V6AdminProhibited,
            2 => V6BeyondScope,
            3 => V6AddressUnreachable,
            4 => V6PortUnreachable,
            5 => V6SourcePolicy,
            6 => V6RejectRoute,
            c => Unknown(c),
        }
    }

    /// Whether the code says the address cannot be reached at all, whatever the port: no route, host or network
    /// unreachable, address unreachable, a reject route.
    pub fn is_routing(self) -> bool {
        use Unreachable::*;
        matches!(
            self,
            Net | Host
                | NetUnknown
                | HostUnknown
                | NetTos
                | HostTos
                | V6NoRoute
                | V6AddressUnreachable
                | V6RejectRoute
        )
    }

    /// Whether the code says a filter refused the packet (as opposed to a routing failure).
    pub fn is_rejection(self) -> bool {
        use Unreachable::*;
        matches!(
            self,
            Protocol
                | Port
                | SourceIsolated
                | NetProhibited
                | HostProhibited
                | AdminProhibited
                | HostPrecedence
                | PrecedenceCutoff
                | V6AdminProhibited
                | V6PortUnreachable
                | V6SourcePolicy
                | V6RejectRoute
        )
    }

    /// The text Wireshark shows for this code, e.g. `Port unreachable`.
    pub fn description(self) -> String {
        use Unreachable::*;
        match self {
            Net => "Network unreachable".into(),
            Host => "Host unreachable".into(),
            Protocol => "Protocol unreachable".into(),
            Port => "Port unreachable".into(),
            FragmentationNeeded => "Fragmentation needed".into(),
            SourceRouteFailed => "Source route failed".into(),
            NetUnknown => "Destination network unknown".into(),
            HostUnknown => "Destination host unknown".into(),
            SourceIsolated => "Source host isolated".into(),
            NetProhibited => "Network administratively prohibited".into(),
            HostProhibited => "Host administratively prohibited".into(),
            NetTos => "Network unreachable for TOS".into(),
            HostTos => "Host unreachable for TOS".into(),
            AdminProhibited => "Communication administratively filtered".into(),
            HostPrecedence => "Host precedence violation".into(),
            PrecedenceCutoff => "Precedence cutoff in effect".into(),
            V6NoRoute => "no route to destination".into(),
            V6AdminProhibited => "administratively prohibited".into(),
            V6BeyondScope => "beyond scope of source address".into(),
            V6AddressUnreachable => "address unreachable".into(),
            V6PortUnreachable => "port unreachable".into(),
            V6SourcePolicy => "source address failed ingress/egress policy".into(),
            V6RejectRoute => "reject route to destination".into(),
            Unknown(c) => format!("Unknown code {c}"),
        }
    }

    /// The iptables/ip6tables `--reject-with` spelling or route type that produces this code on Linux, if any.
    pub fn linux_source(self) -> Option<&'static str> {
        use Unreachable::*;
        Some(match self {
            Net => "REJECT --reject-with icmp-net-unreachable, or no route on that router",
            Host => "an `unreachable` route, a neighbour that does not answer ARP, or REJECT --reject-with icmp-host-unreachable",
            Protocol => "REJECT --reject-with icmp-proto-unreachable",
            Port => "REJECT (its default --reject-with icmp-port-unreachable)",
            NetProhibited => "REJECT --reject-with icmp-net-prohibited",
            HostProhibited => "REJECT --reject-with icmp-host-prohibited",
            AdminProhibited => "REJECT --reject-with icmp-admin-prohibited, or a `prohibit` route",
            V6NoRoute => "no route (or an `unreachable` route), or ip6tables REJECT --reject-with icmp6-no-route",
            V6AdminProhibited => "ip6tables REJECT --reject-with icmp6-adm-prohibited, or a `prohibit` route",
            V6AddressUnreachable => "a neighbour that does not answer neighbour discovery, or REJECT --reject-with icmp6-addr-unreachable",
            V6PortUnreachable => "ip6tables REJECT (its default --reject-with icmp6-port-unreachable)",
            V6RejectRoute => "a reject route",
            _ => return None,
        })
    }
}

/// An ICMP or ICMPv6 error and what it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IcmpError {
    /// The kind and code.
    pub kind: IcmpErrorKind,
    /// Raw type byte.
    pub icmp_type: u8,
    /// Raw code byte.
    pub code: u8,
    /// The quoted datagram, when at least its IP header could be read.
    pub quote: Option<Quote>,
}

/// What the transport layer of a frame holds, as far as the engine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
#[non_exhaustive]
pub enum Transport {
    /// A TCP segment.
    Tcp(TcpMeta),
    /// An ICMP/ICMPv6 error.
    IcmpError(IcmpError),
    /// An ICMP/ICMPv6 echo request or reply.
    Echo {
        /// True for a reply.
        reply: bool,
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// Other ICMP/ICMPv6 (neighbour discovery, router advertisements, ...), by type and code.
    IcmpOther {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
    },
    /// UDP (ports only).
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Payload length.
        payload_len: u32,
    },
    /// Any other IP protocol (a transport header that is damaged or cut short is a [`ParseError::Malformed`]).
    #[serde(with = "protocol_field")]
    Other(u8),
}

/// [`Transport::Other`] as `{"type": "other", "protocol": 17}`: an internally tagged enum cannot carry a bare
/// number (serde refuses to serialize it).
mod protocol_field {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Protocol {
        protocol: u8,
    }

    pub(super) fn serialize<S: Serializer>(protocol: &u8, s: S) -> Result<S::Ok, S::Error> {
        Protocol {
            protocol: *protocol,
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        Protocol::deserialize(d).map(|p| p.protocol)
    }
}

/// One parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Packet {
    /// The IP layer.
    pub ip: IpMeta,
    /// The transport layer.
    pub transport: Transport,
}

impl Packet {
    /// The TCP header, if this is TCP.
    pub fn tcp(&self) -> Option<&TcpMeta> {
        match &self.transport {
            Transport::Tcp(t) => Some(t),
            _ => None,
        }
    }
    /// The ICMP error, if this is one.
    pub fn icmp_error(&self) -> Option<&IcmpError> {
        match &self.transport {
            Transport::IcmpError(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a frame could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// A link type synprobe does not read.
    UnsupportedLink(LinkType),
    /// Not IP (ARP, LLDP, STP, ...): not an error, just not ours.
    NotIp,
    /// The link, IP or transport header is damaged or cut short.
    Malformed(&'static str),
    /// An IP fragment other than the first: it carries no transport header.
    Fragment,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::UnsupportedLink(l) => {
                write!(f, "unsupported link type {} ({})", l.0, l.name())
            }
            ParseError::NotIp => f.write_str("not an IP packet"),
            ParseError::Malformed(what) => write!(f, "malformed {what}"),
            ParseError::Fragment => f.write_str("non-first IP fragment"),
        }
    }
}

/// Parse one captured frame of the given link type.
pub fn parse_frame(link: LinkType, data: &[u8]) -> Result<Packet, ParseError> {
    if link == LinkType::ETHERNET {
        if let Some(p) = ethernet_ipv4_tcp(data) {
            return Ok(p);
        }
    }
    parse_frame_lax(link, data)
}

/// The common case read directly: an untagged Ethernet frame holding a whole, unfragmented IPv4 datagram with
/// no IP options and a whole TCP header. `None` for anything else, which [`parse_frame_lax`] reads; where this
/// gives a packet, it is the one `parse_frame_lax` gives (a property test holds them equal). Four frames in five
/// of a capture are like this, and etherparse's general slicing costs about three times as much.
#[inline]
fn ethernet_ipv4_tcp(data: &[u8]) -> Option<Packet> {
    let ip = data.get(14..)?;
    // EtherType IPv4, version 4 with a 20-byte header, TCP.
    if data[12..14] != [0x08, 0x00] || *ip.first()? != 0x45 || *ip.get(9)? != 6 {
        return None;
    }
    let total = usize::from(be16(ip, 2));
    // The whole datagram captured (Ethernet padding may follow), not a fragment (no more-fragments flag, offset 0).
    if total < 40 || total > ip.len() || be16(ip, 6) & 0x3fff != 0 {
        return None;
    }
    let tcp = &ip[20..total];
    let header_len = usize::from(tcp[12] >> 4) * 4;
    if header_len < 20 || header_len > tcp.len() {
        return None;
    }
    let addr = |at: usize| {
        IpAddr::V4(std::net::Ipv4Addr::new(
            ip[at],
            ip[at + 1],
            ip[at + 2],
            ip[at + 3],
        ))
    };
    Some(Packet {
        ip: IpMeta {
            src: addr(12),
            dst: addr(16),
            ttl: ip[8],
            tos: ip[1],
            ident: be16(ip, 4),
            df: ip[6] & 0x40 != 0,
            flow_label: None,
        },
        transport: Transport::Tcp(tcp_meta(tcp, &tcp[20..header_len], tcp.len() - header_len)),
    })
}

/// A TCP header read from its first 20 bytes in `raw`, with its `options` and the length of its payload.
#[inline(always)]
fn tcp_meta(raw: &[u8], options: &[u8], payload_len: usize) -> TcpMeta {
    TcpMeta {
        src_port: be16(raw, 0),
        dst_port: be16(raw, 2),
        seq: be32(raw, 4).unwrap_or(0),
        ack: be32(raw, 8).unwrap_or(0),
        flags: flags_of(raw),
        window: be16(raw, 14),
        options: TcpOptions::from_bytes(options),
        payload_len: payload_len as u32,
    }
}

/// [`parse_frame`] through etherparse's lax slicing, for every link type and every frame: what `parse_frame`
/// gives for the frames its direct path does not read. Public for the fuzzers and tests, which hold the two equal.
#[doc(hidden)]
pub fn parse_frame_lax(link: LinkType, data: &[u8]) -> Result<Packet, ParseError> {
    let sliced = match link {
        LinkType::ETHERNET => LaxSlicedPacket::from_ethernet(data)
            .map_err(|_| ParseError::Malformed("Ethernet header"))?,
        LinkType::ETHERNET_MPACKET => {
            // 802.3br: a 7-byte preamble and a start-of-mPacket delimiter precede the Ethernet frame.
            let frame = data
                .get(8..)
                .ok_or(ParseError::Malformed("802.3br mPacket header"))?;
            LaxSlicedPacket::from_ethernet(frame)
                .map_err(|_| ParseError::Malformed("Ethernet header"))?
        }
        LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 | LinkType::IPV4 | LinkType::IPV6 => {
            LaxSlicedPacket::from_ip(data).map_err(|_| ParseError::Malformed("IP header"))?
        }
        LinkType::NULL | LinkType::LOOP => {
            let af = data
                .get(..4)
                .ok_or(ParseError::Malformed("loopback header"))?;
            // NULL is in the capturing host's byte order, LOOP in network order: accept both.
            let family = if link == LinkType::LOOP {
                u32::from_be_bytes([af[0], af[1], af[2], af[3]])
            } else {
                let le = u32::from_le_bytes([af[0], af[1], af[2], af[3]]);
                if le <= 0xffff {
                    le
                } else {
                    u32::from_be_bytes([af[0], af[1], af[2], af[3]])
                }
            };
            match family {
                2 | 10 | 24 | 28 | 30 => LaxSlicedPacket::from_ip(&data[4..])
                    .map_err(|_| ParseError::Malformed("IP header"))?,
                _ => return Err(ParseError::NotIp),
            }
        }
        LinkType::LINUX_SLL => {
            let proto = data
                .get(14..16)
                .ok_or(ParseError::Malformed("Linux cooked header"))?;
            LaxSlicedPacket::from_ether_type(
                EtherType(u16::from_be_bytes([proto[0], proto[1]])),
                &data[16..],
            )
        }
        LinkType::LINUX_SLL2 => {
            let proto = data
                .get(0..2)
                .ok_or(ParseError::Malformed("Linux cooked v2 header"))?;
            if data.len() < 20 {
                return Err(ParseError::Malformed("Linux cooked v2 header"));
            }
            LaxSlicedPacket::from_ether_type(
                EtherType(u16::from_be_bytes([proto[0], proto[1]])),
                &data[20..],
            )
        }
        other => return Err(ParseError::UnsupportedLink(other)),
    };
    packet_from_sliced(&sliced)
}

fn packet_from_sliced(sliced: &LaxSlicedPacket<'_>) -> Result<Packet, ParseError> {
    let missing = match &sliced.stop_err {
        Some(_) => ParseError::Malformed("IP header"),
        None => ParseError::NotIp,
    };
    let net = sliced.net.as_ref().ok_or(missing)?;
    let (ip, payload, declared) = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let p = v4.payload();
            if h.fragments_offset().value() != 0 {
                return Err(ParseError::Fragment);
            }
            let declared = usize::from(h.total_len()).checked_sub(usize::from(h.ihl()) * 4);
            (
                IpMeta {
                    src: IpAddr::V4(h.source_addr()),
                    dst: IpAddr::V4(h.destination_addr()),
                    ttl: h.ttl(),
                    tos: (h.dcp().value() << 2) | h.ecn().value(),
                    ident: h.identification(),
                    df: h.dont_fragment(),
                    flow_label: None,
                },
                p,
                declared,
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let p = v6.payload();
            if v6.is_payload_fragmented() && p.fragmented {
                // etherparse marks a first fragment as fragmented too; only a first fragment (offset 0) has our
                // header. A later one holds the middle of a datagram, which must not be read as TCP.
                let later = is_later_v6_fragment(h.next_header().0, v6.extensions().slice());
                if later || p.payload.len() < 8 {
                    return Err(ParseError::Fragment);
                }
            }
            (
                IpMeta {
                    src: IpAddr::V6(h.source_addr()),
                    dst: IpAddr::V6(h.destination_addr()),
                    ttl: h.hop_limit(),
                    tos: h.traffic_class(),
                    ident: 0,
                    df: false,
                    flow_label: Some(h.flow_label().value()),
                },
                p,
                usize::from(h.payload_length()).checked_sub(v6.extensions().slice().len()),
            )
        }
        LaxNetSlice::Arp(_) => return Err(ParseError::NotIp),
    };
    let proto = payload.ip_number.0;
    // Lengths come from the IP header when it declares one (a snap length may have cut the capture short);
    // a zero length (segmentation offload) falls back to what was captured.
    let declared = declared.filter(|&d| d > 0);
    let transport = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => Transport::Tcp(TcpMeta {
            src_port: t.source_port(),
            dst_port: t.destination_port(),
            seq: t.sequence_number(),
            ack: t.acknowledgment_number(),
            flags: flags_of(t.slice()),
            window: t.window_size(),
            options: TcpOptions::from_bytes(t.options()),
            payload_len: declared.map_or(t.payload().len(), |d| {
                d.saturating_sub(t.header_slice().len())
            }) as u32,
        }),
        Some(TransportSlice::Icmpv4(icmp)) => icmp_v4(icmp.type_u8(), icmp.code_u8(), icmp.slice()),
        Some(TransportSlice::Icmpv6(icmp)) => icmp_v6(icmp.type_u8(), icmp.code_u8(), icmp.slice()),
        Some(TransportSlice::Udp(u)) => Transport::Udp {
            src_port: u.source_port(),
            dst_port: u.destination_port(),
            payload_len: declared.map_or(u.payload().len(), |d| d.saturating_sub(8)) as u32,
        },
        _ => {
            // The transport header was cut short or is of another protocol. A truncated ICMP error still
            // matters (its type and code are in the first two bytes), so look at the raw bytes.
            let raw = payload.payload;
            match (proto, raw) {
                (1, [t, c, ..]) => icmp_v4(*t, *c, raw),
                (58, [t, c, ..]) => icmp_v6(*t, *c, raw),
                (6, _) => salvage_tcp(raw, declared)?,
                // A header etherparse found damaged or cut short (an IPv6 extension header chain that loops
                // back to hop-by-hop, a UDP header cut short...): counted, not passed off as another protocol.
                _ => match &sliced.stop_err {
                    Some((_, layer)) => return Err(ParseError::Malformed(layer_name(*layer))),
                    None => Transport::Other(proto),
                },
            }
        }
    };
    Ok(Packet { ip, transport })
}

/// Whether an IPv6 extension header chain (`first` is the IPv6 header's next header) holds a fragment header with
/// a non-zero offset. Walks the raw bytes with a check at every step: etherparse's extension iterator trusts the
/// chain and reads past its end on some damaged ones (an `unsafe` precondition it does not check).
fn is_later_v6_fragment(first: u8, chain: &[u8]) -> bool {
    let (mut kind, mut rest) = (first, chain);
    while let Some(&next) = rest.first() {
        let len = match kind {
            44 if be16(rest, 2) >> 3 != 0 => return true,
            44 => 8,
            // Authentication header: its length is in 4-byte words, minus 2.
            51 => (usize::from(rest.get(1).copied().unwrap_or(0)) + 2) * 4,
            _ => (usize::from(rest.get(1).copied().unwrap_or(0)) + 1) * 8,
        };
        kind = next;
        rest = rest.get(len..).unwrap_or_default();
    }
    false
}

/// A TCP header etherparse would not slice. Cut short by the capture's snap length (a SYN's options past a
/// 54- or 68-byte snaplen): the fixed 20 bytes still say everything the matcher needs, and the options that were
/// captured are kept. Damaged (a data offset below 5, or past the end of the segment the IP header declares),
/// or fewer than 20 bytes: malformed.
fn salvage_tcp(raw: &[u8], declared: Option<usize>) -> Result<Transport, ParseError> {
    let malformed = ParseError::Malformed("TCP header");
    let Some(fixed) = raw.first_chunk::<20>() else {
        return Err(malformed);
    };
    let header_len = usize::from(fixed[12] >> 4) * 4;
    if header_len < 20 || declared.is_some_and(|d| header_len > d) {
        return Err(malformed);
    }
    let options = raw.get(20..header_len.min(raw.len())).unwrap_or_default();
    Ok(Transport::Tcp(tcp_meta(
        raw,
        options,
        declared.map_or(0, |d| d.saturating_sub(header_len)),
    )))
}

/// The header etherparse stopped at, in the words of [`ParseError::Malformed`].
fn layer_name(layer: etherparse::err::Layer) -> &'static str {
    use etherparse::err::Layer;
    match layer {
        Layer::TcpHeader => "TCP header",
        Layer::UdpHeader | Layer::UdpPayload => "UDP header",
        Layer::Icmpv4 | Layer::Icmpv6 | Layer::Icmpv4Timestamp | Layer::Icmpv4TimestampReply => {
            "ICMP header"
        }
        Layer::IpAuthHeader
        | Layer::Ipv6ExtHeader
        | Layer::Ipv6HopByHopHeader
        | Layer::Ipv6DestOptionsHeader
        | Layer::Ipv6RouteHeader
        | Layer::Ipv6FragHeader => "IP extension header",
        _ => "IP payload",
    }
}

fn flags_of(tcp: &[u8]) -> TcpFlags {
    let hi = tcp.get(12).map_or(0, |b| u16::from(b & 1) << 8);
    let lo = tcp.get(13).map_or(0, |b| u16::from(*b));
    TcpFlags(hi | lo)
}

fn icmp_v4(icmp_type: u8, code: u8, raw: &[u8]) -> Transport {
    let kind = match icmp_type {
        0 | 8 => {
            return Transport::Echo {
                reply: icmp_type == 0,
                id: be16(raw, 4),
                seq: be16(raw, 6),
            }
        }
        3 => IcmpErrorKind::DestinationUnreachable(Unreachable::from_v4(code)),
        4 => IcmpErrorKind::SourceQuench,
        5 => IcmpErrorKind::Redirect(code),
        11 => IcmpErrorKind::TimeExceeded(code),
        12 => IcmpErrorKind::ParameterProblem(code),
        _ => return Transport::IcmpOther { icmp_type, code },
    };
    Transport::IcmpError(IcmpError {
        kind,
        icmp_type,
        code,
        quote: raw.get(8..).and_then(parse_quote),
    })
}

fn icmp_v6(icmp_type: u8, code: u8, raw: &[u8]) -> Transport {
    let kind = match icmp_type {
        128 | 129 => {
            return Transport::Echo {
                reply: icmp_type == 129,
                id: be16(raw, 4),
                seq: be16(raw, 6),
            }
        }
        1 => IcmpErrorKind::DestinationUnreachable(Unreachable::from_v6(code)),
        2 => IcmpErrorKind::PacketTooBig,
        3 => IcmpErrorKind::TimeExceeded(code),
        4 => IcmpErrorKind::ParameterProblem(code),
        _ => return Transport::IcmpOther { icmp_type, code },
    };
    Transport::IcmpError(IcmpError {
        kind,
        icmp_type,
        code,
        quote: raw.get(8..).and_then(parse_quote),
    })
}

fn be16(raw: &[u8], at: usize) -> u16 {
    match raw.get(at..at + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    }
}

fn be32(raw: &[u8], at: usize) -> Option<u32> {
    raw.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parse the datagram quoted in an ICMP error. Lenient: the quote may be cut anywhere after the IP header.
/// A quote of an ICMP error (an error about an error) is returned with `tcp: None`.
fn parse_quote(quoted: &[u8]) -> Option<Quote> {
    let sliced = LaxSlicedPacket::from_ip(quoted).ok()?;
    let (src, dst, ttl, tos, payload) = match sliced.net.as_ref()? {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.ttl(),
                (h.dcp().value() << 2) | h.ecn().value(),
                v4.payload(),
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                h.hop_limit(),
                h.traffic_class(),
                v6.payload(),
            )
        }
        LaxNetSlice::Arp(_) => return None,
    };
    let protocol = payload.ip_number.0;
    let bytes = payload.payload;
    let tcp = if protocol == 6 {
        match (be32(bytes, 0), be32(bytes, 4)) {
            (Some(ports), Some(seq)) => Some(QuotedTcp {
                src_port: (ports >> 16) as u16,
                dst_port: ports as u16,
                seq,
                flags: bytes.get(13).map(|_| flags_of(bytes)),
            }),
            _ => None,
        }
    } else {
        None
    };
    Some(Quote {
        src,
        dst,
        ttl,
        tos,
        protocol,
        tcp,
        transport_bytes: bytes.len().min(usize::from(u16::MAX)) as u16,
    })
}

/// The unspecified address of the same family, for defaults.
pub fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{echo, ethernet, icmp_error, IpSpec, QuoteLen, TcpSpec};

    fn v4(a: &str) -> IpAddr {
        a.parse().expect("test address")
    }

    fn client_v4() -> IpSpec {
        IpSpec::new(v4("198.18.0.2"), v4("198.18.2.2"))
            .ttl(64)
            .tos(0x10)
            .ident(4242)
    }
    fn client_v6() -> IpSpec {
        IpSpec::new(v4("2001:db8::2"), v4("2001:db8:2::2"))
            .ttl(64)
            .tos(0x10)
            .flow_label(0x12345)
    }

    #[test]
    fn syn_round_trip_v4_keeps_every_field() {
        let syn = TcpSpec::syn(40000, 443, 0xdead_beef).linux_options();
        let frame = ethernet(&syn.emit(&client_v4()).expect("build"));
        let p = parse_frame(LinkType::ETHERNET, &frame).expect("parse");
        assert_eq!(p.ip.src, v4("198.18.0.2"));
        assert_eq!(p.ip.dst, v4("198.18.2.2"));
        assert_eq!(
            (p.ip.ttl, p.ip.tos, p.ip.ident, p.ip.df),
            (64, 0x10, 4242, true)
        );
        assert_eq!(p.ip.flow_label, None);
        let t = p.tcp().expect("tcp");
        assert_eq!((t.src_port, t.dst_port, t.seq), (40000, 443, 0xdead_beef));
        assert!(t.flags.is_syn_only());
        assert_eq!(t.options.mss(), Some(1460));
        assert_eq!(t.options.window_scale(), Some(7));
        assert!(t.options.sack_permitted());
        assert_eq!(t.options.timestamps(), Some((1, 0)));
        assert_eq!(t.options.layout(), "M,S,T,N,W");
        assert_eq!(
            t.payload_len, 0,
            "Ethernet padding must not count as payload"
        );
    }

    #[test]
    fn syn_round_trip_v6_keeps_traffic_class_and_flow_label() {
        let syn = TcpSpec::syn(40000, 443, 7);
        let p = parse_frame(LinkType::RAW, &syn.emit(&client_v6()).expect("build")).expect("parse");
        assert!(p.ip.is_v6());
        assert_eq!(
            (p.ip.ttl, p.ip.tos, p.ip.flow_label),
            (64, 0x10, Some(0x12345))
        );
        assert_eq!(p.tcp().expect("tcp").seq, 7);
    }

    #[test]
    fn rst_ack_and_syn_ack_flags() {
        let syn = TcpSpec::syn(40000, 81, 100);
        let back = client_v4().reversed();
        let rst = parse_frame(
            LinkType::RAW,
            &TcpSpec::rst_to(&syn).emit(&back).expect("build"),
        )
        .expect("parse");
        let t = rst.tcp().expect("tcp");
        assert!(t.flags.is_rst() && t.flags.has(TcpFlags::ACK));
        assert_eq!((t.seq, t.ack, t.window), (0, 101, 0));
        assert_eq!(t.flags.names(), "RST, ACK");
        let sa = parse_frame(
            LinkType::RAW,
            &TcpSpec::syn_ack_to(&syn, 5).emit(&back).expect("build"),
        )
        .expect("parse");
        assert!(sa.tcp().expect("tcp").flags.is_syn_ack());
    }

    fn quoted_error(ip: &IpSpec, t: u8, c: u8, quote: QuoteLen) -> Packet {
        let syn = TcpSpec::syn(40000, 443, 0x0102_0304).linux_options();
        let offending = syn.emit(&ip.ttl(61)).expect("build");
        let router = IpSpec::new(
            if ip.src.is_ipv6() {
                v4("2001:db8:1::1")
            } else {
                v4("198.18.1.1")
            },
            ip.src,
        )
        .ttl(63);
        parse_frame(
            LinkType::RAW,
            &icmp_error(&router, t, c, &offending, quote).expect("build"),
        )
        .expect("parse")
    }

    #[test]
    fn icmp_v4_unreachable_with_full_and_minimal_quote() {
        for (quote, tcp_bytes, flags) in [(QuoteLen::Full, 40, true), (QuoteLen::Minimal, 8, false)]
        {
            let p = quoted_error(&client_v4(), 3, 13, quote);
            let e = p.icmp_error().expect("icmp error");
            assert_eq!(
                e.kind,
                IcmpErrorKind::DestinationUnreachable(Unreachable::AdminProhibited)
            );
            let q = e.quote.expect("quote");
            assert_eq!(
                (q.src, q.dst, q.ttl, q.protocol),
                (v4("198.18.0.2"), v4("198.18.2.2"), 61, 6)
            );
            assert_eq!(q.transport_bytes, tcp_bytes);
            let qt = q.tcp.expect("quoted tcp");
            assert_eq!(
                (qt.src_port, qt.dst_port, qt.seq),
                (40000, 443, 0x0102_0304)
            );
            assert_eq!(qt.flags.is_some(), flags);
        }
    }

    #[test]
    fn icmp_v6_unreachable_and_time_exceeded() {
        let p = quoted_error(&client_v6(), 1, 4, QuoteLen::Full);
        let e = p.icmp_error().expect("icmpv6 error");
        assert_eq!(
            e.kind,
            IcmpErrorKind::DestinationUnreachable(Unreachable::V6PortUnreachable)
        );
        assert!(Unreachable::V6PortUnreachable.is_rejection());
        assert_eq!(
            e.quote.and_then(|q| q.tcp).map(|t| t.seq),
            Some(0x0102_0304)
        );
        let p = quoted_error(&client_v6(), 3, 0, QuoteLen::Minimal);
        assert_eq!(
            p.icmp_error().expect("error").kind,
            IcmpErrorKind::TimeExceeded(0)
        );
        let p = quoted_error(&client_v4(), 11, 0, QuoteLen::Minimal);
        assert_eq!(
            p.icmp_error().expect("error").kind,
            IcmpErrorKind::TimeExceeded(0)
        );
    }

    #[test]
    fn unknown_codes_are_kept_not_rejected() {
        let p = quoted_error(&client_v4(), 3, 77, QuoteLen::Minimal);
        assert_eq!(
            p.icmp_error().expect("error").kind,
            IcmpErrorKind::DestinationUnreachable(Unreachable::Unknown(77))
        );
        assert!(!Unreachable::Unknown(77).is_rejection());
        assert!(Unreachable::from_v4(13).is_rejection());
        assert!(!Unreachable::from_v4(1).is_rejection());
        assert!(!Unreachable::from_v6(0).is_rejection());
    }

    #[test]
    fn echo_reply_is_recognised() {
        let p = parse_frame(
            LinkType::RAW,
            &echo(&client_v4().reversed(), true, 9, 3).expect("build"),
        )
        .expect("parse");
        assert_eq!(
            p.transport,
            Transport::Echo {
                reply: true,
                id: 9,
                seq: 3
            }
        );
    }

    #[test]
    fn link_types_null_loop_sll_sll2() {
        let ip = TcpSpec::syn(1, 2, 3).emit(&client_v4()).expect("build");
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        assert!(parse_frame(LinkType::NULL, &null)
            .expect("null")
            .tcp()
            .is_some());
        let mut lo = 2u32.to_be_bytes().to_vec();
        lo.extend_from_slice(&ip);
        assert!(parse_frame(LinkType::LOOP, &lo)
            .expect("loop")
            .tcp()
            .is_some());
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 1, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip);
        assert!(parse_frame(LinkType::LINUX_SLL, &sll)
            .expect("sll")
            .tcp()
            .is_some());
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 1, 0,
        ];
        sll2.extend_from_slice(&ip);
        assert!(parse_frame(LinkType::LINUX_SLL2, &sll2)
            .expect("sll2")
            .tcp()
            .is_some());
        assert_eq!(
            parse_frame(LinkType(147), &ip),
            Err(ParseError::UnsupportedLink(LinkType(147)))
        );
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        // Bad IHL, lengths past the end, truncated headers, garbage: every prefix of a real frame too.
        let frame = ethernet(
            &TcpSpec::syn(1, 2, 3)
                .linux_options()
                .emit(&client_v4())
                .expect("build"),
        );
        for n in 0..frame.len() {
            let _ = parse_frame(LinkType::ETHERNET, &frame[..n]);
        }
        let mut bad_ihl = frame.clone();
        bad_ihl[14] = 0x41; // IHL 1
        assert!(parse_frame(LinkType::ETHERNET, &bad_ihl).is_err());
        let mut bad_offset = frame.clone();
        bad_offset[14 + 20 + 12] = 0xf0; // TCP data offset 60 bytes, past the end
        let _ = parse_frame(LinkType::ETHERNET, &bad_offset);
        // An ICMP error quoting another ICMP error, and one quoting garbage.
        let router = IpSpec::new(v4("198.18.1.1"), v4("198.18.0.2"));
        let inner = icmp_error(&router, 3, 3, &[0x45; 28], QuoteLen::Full).expect("build");
        let outer = icmp_error(&router, 3, 1, &inner, QuoteLen::Full).expect("build");
        let p = parse_frame(LinkType::RAW, &outer).expect("parse");
        assert!(p
            .icmp_error()
            .expect("error")
            .quote
            .is_some_and(|q| q.tcp.is_none()));
        let garbage = icmp_error(&router, 3, 1, &[0xff; 30], QuoteLen::Full).expect("build");
        assert!(parse_frame(LinkType::RAW, &garbage)
            .expect("parse")
            .icmp_error()
            .expect("error")
            .quote
            .is_none());
    }

    #[test]
    fn tcp_option_iterator_stops_on_malformed_lengths() {
        let o = TcpOptions::from_bytes(&[2, 4, 5, 0xb4, 3, 0, 1, 8]);
        let all: Vec<TcpOption> = o.iter().collect();
        assert_eq!(all, vec![TcpOption::Mss(1460), TcpOption::Unknown(3)]);
        let o = TcpOptions::from_bytes(&[8, 200, 1, 2]);
        assert_eq!(o.iter().collect::<Vec<_>>(), vec![TcpOption::Unknown(8)]);
        assert_eq!(TcpOptions::from_bytes(&[1, 1, 0, 2, 4]).layout(), "N,N,E");
    }
}

/// The direct path for Ethernet/IPv4/TCP frames against etherparse's lax slicing.
#[cfg(test)]
mod direct_path {
    use super::*;
    use crate::build::{ethernet, IpSpec, TcpSpec};
    use proptest::prelude::*;

    fn frame(
        (flags, seq, ack, window): (u16, u32, u32, u16),
        (ttl, tos, ident, df): (u8, u8, u16, bool),
        options: &[u8],
        payload: usize,
        pad: usize,
    ) -> Vec<u8> {
        let ip = IpSpec::new(
            "198.18.0.2".parse().expect("addr"),
            "198.18.2.2".parse().expect("addr"),
        )
        .ttl(ttl)
        .tos(tos)
        .ident(ident)
        .df(df);
        let datagram = TcpSpec::syn(40000, 443, seq)
            .flags(flags & 0x1ff)
            .ack(ack)
            .window(window)
            .options(options)
            .payload(payload)
            .emit(&ip)
            .expect("a TCP segment");
        let mut f = ethernet(&datagram);
        f.resize(f.len() + pad, 0);
        f
    }

    proptest! {
        /// Every field of a well-formed frame comes out as etherparse reads it; a damaged one (any few bytes
        /// changed, or the frame cut anywhere) is either read the same way or left to etherparse.
        #[test]
        fn gives_what_etherparse_gives(
            tcp in any::<(u16, u32, u32, u16)>(),
            ip in any::<(u8, u8, u16, bool)>(),
            options in proptest::collection::vec(any::<u8>(), 0..=40),
            payload in 0usize..80,
            pad in 0usize..24,
            edits in proptest::collection::vec((0usize..160, any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let f = frame(tcp, ip, &options, payload, pad);
            let direct = ethernet_ipv4_tcp(&f);
            prop_assert!(direct.is_some(), "a well-formed frame takes the direct path");
            prop_assert_eq!(direct.map(Ok), Some(parse_frame_lax(LinkType::ETHERNET, &f)));
            let mut damaged = f.clone();
            for (at, byte) in &edits {
                if let Some(b) = damaged.get_mut(*at) {
                    *b = *byte;
                }
            }
            if let Some(direct) = ethernet_ipv4_tcp(&damaged) {
                prop_assert_eq!(Ok(direct), parse_frame_lax(LinkType::ETHERNET, &damaged));
            }
            let short = &f[..cut.index(f.len() + 1)];
            if let Some(direct) = ethernet_ipv4_tcp(short) {
                prop_assert_eq!(Ok(direct), parse_frame_lax(LinkType::ETHERNET, short));
            }
        }
    }

    /// Frames the direct path must leave to etherparse: a VLAN tag, IP options, a fragment, a cut-short
    /// datagram or TCP header, another protocol.
    #[test]
    fn leaves_the_unusual_to_etherparse() {
        let f = frame((0x002, 1, 0, 64240), (64, 0, 1, true), &[], 0, 0);
        assert!(ethernet_ipv4_tcp(&f).is_some());
        let edit = |at: usize, byte: u8| {
            let mut g = f.clone();
            g[at] = byte;
            ethernet_ipv4_tcp(&g)
        };
        assert!(edit(12, 0x81).is_none(), "VLAN");
        assert!(edit(14, 0x46).is_none(), "IP options");
        assert!(edit(14 + 6, 0x20).is_none(), "more fragments");
        assert!(edit(14 + 7, 0x01).is_none(), "fragment offset");
        assert!(edit(14 + 9, 17).is_none(), "UDP");
        assert!(
            edit(14 + 20 + 12, 0x40).is_none(),
            "data offset under 20 bytes"
        );
        assert!(
            edit(14 + 20 + 12, 0x60).is_none(),
            "data offset past the segment"
        );
        assert!(
            ethernet_ipv4_tcp(&f[..14 + 39]).is_none(),
            "datagram cut short"
        );
    }
}
