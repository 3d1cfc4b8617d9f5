//! Building packets: the SYNs synprobe sends, and (for tests, examples and the capture generator) the replies a
//! stack, a firewall or a router would send back. Every builder emits a complete IP datagram with valid
//! checksums; [`ethernet`] wraps one in an Ethernet II frame.
//!
//! ```
//! use synprobe_core::build::{IpSpec, TcpSpec};
//! let ip = IpSpec::new("198.18.0.2".parse().unwrap(), "198.18.2.2".parse().unwrap()).ttl(64).tos(0x10);
//! let syn = TcpSpec::syn(40000, 443, 0x1234_5678).linux_options();
//! let bytes = syn.emit(&ip).unwrap();
//! let packet = synprobe_core::parse_frame(synprobe_core::LinkType::RAW, &bytes).unwrap();
//! assert_eq!(packet.tcp().unwrap().dst_port, 443);
//! ```

use std::net::IpAddr;

use etherparse::{
    IpDscp, IpEcn, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv6Extensions, Ipv6FlowLabel,
    Ipv6Header, PacketBuilder, TcpHeader,
};

use crate::error::{Error, Result};
use crate::wire::{TcpFlags, TcpOptions};

/// The IP header of a packet to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSpec {
    /// Source address.
    pub src: IpAddr,
    /// Destination address (same family as `src`).
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// TOS byte / traffic class (DSCP and ECN).
    pub tos: u8,
    /// IPv4 identification.
    pub ident: u16,
    /// IPv4 don't-fragment bit.
    pub df: bool,
    /// IPv6 flow label (20 bits).
    pub flow_label: u32,
}

impl IpSpec {
    /// TTL 64, TOS 0, ID 0, DF set, flow label 0.
    pub fn new(src: IpAddr, dst: IpAddr) -> Self {
        IpSpec {
            src,
            dst,
            ttl: 64,
            tos: 0,
            ident: 0,
            df: true,
            flow_label: 0,
        }
    }
    /// Set the TTL / hop limit.
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }
    /// Set the TOS byte / traffic class.
    pub fn tos(mut self, tos: u8) -> Self {
        self.tos = tos;
        self
    }
    /// Set the IPv4 identification.
    pub fn ident(mut self, ident: u16) -> Self {
        self.ident = ident;
        self
    }
    /// Set the IPv6 flow label (masked to 20 bits).
    pub fn flow_label(mut self, label: u32) -> Self {
        self.flow_label = label & 0xf_ffff;
        self
    }
    /// Set or clear DF.
    pub fn df(mut self, df: bool) -> Self {
        self.df = df;
        self
    }
    /// The same header with source and destination swapped.
    pub fn reversed(mut self) -> Self {
        std::mem::swap(&mut self.src, &mut self.dst);
        self
    }

    fn headers(&self, protocol: IpNumber) -> Result<IpHeaders> {
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut h = Ipv4Header::new(0, self.ttl, protocol, s.octets(), d.octets())
                    .map_err(|e| Error::Build(e.to_string()))?;
                h.dscp = IpDscp::try_new(self.tos >> 2).map_err(|e| Error::Build(e.to_string()))?;
                h.ecn = IpEcn::try_new(self.tos & 3).map_err(|e| Error::Build(e.to_string()))?;
                h.identification = self.ident;
                h.dont_fragment = self.df;
                Ok(IpHeaders::Ipv4(h, Ipv4Extensions::default()))
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => Ok(IpHeaders::Ipv6(
                Ipv6Header {
                    traffic_class: self.tos,
                    flow_label: Ipv6FlowLabel::try_new(self.flow_label & 0xf_ffff)
                        .map_err(|e| Error::Build(e.to_string()))?,
                    payload_length: 0,
                    next_header: protocol,
                    hop_limit: self.ttl,
                    source: s.octets(),
                    destination: d.octets(),
                },
                Ipv6Extensions::default(),
            )),
            _ => Err(Error::Build(format!(
                "source {} and destination {} are not of the same address family",
                self.src, self.dst
            ))),
        }
    }
}

/// The TCP header of a segment to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSpec {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window.
    pub window: u16,
    /// Raw options (padded to a multiple of 4 with NOPs when emitted).
    pub options: TcpOptions,
    /// Payload length (zero bytes are sent).
    pub payload_len: usize,
}

impl TcpSpec {
    /// A SYN with no options, window 64240.
    pub fn syn(src_port: u16, dst_port: u16, isn: u32) -> Self {
        TcpSpec {
            src_port,
            dst_port,
            seq: isn,
            ack: 0,
            flags: TcpFlags(TcpFlags::SYN),
            window: 64240,
            options: TcpOptions::default(),
            payload_len: 0,
        }
    }
    /// The SYN-ACK a server sends for `syn`, with its own ISN.
    pub fn syn_ack_to(syn: &TcpSpec, isn: u32) -> Self {
        TcpSpec {
            src_port: syn.dst_port,
            dst_port: syn.src_port,
            seq: isn,
            ack: syn.seq.wrapping_add(1),
            flags: TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
            window: 65160,
            options: TcpOptions::default(),
            payload_len: 0,
        }
        .linux_options()
    }
    /// The RST+ACK a stack (or netfilter's REJECT) sends for `syn`: seq 0, ack ISN+1, window 0.
    pub fn rst_to(syn: &TcpSpec) -> Self {
        TcpSpec {
            src_port: syn.dst_port,
            dst_port: syn.src_port,
            seq: 0,
            ack: syn.seq.wrapping_add(1),
            flags: TcpFlags(TcpFlags::RST | TcpFlags::ACK),
            window: 0,
            options: TcpOptions::default(),
            payload_len: 0,
        }
    }
    /// Set the flags.
    pub fn flags(mut self, flags: u16) -> Self {
        self.flags = TcpFlags(flags);
        self
    }
    /// Set the window.
    pub fn window(mut self, window: u16) -> Self {
        self.window = window;
        self
    }
    /// Set raw options.
    pub fn options(mut self, raw: &[u8]) -> Self {
        self.options = TcpOptions::from_bytes(raw);
        self
    }
    /// Set the payload length.
    pub fn payload(mut self, len: usize) -> Self {
        self.payload_len = len;
        self
    }
    /// Set the acknowledgment number.
    pub fn ack(mut self, ack: u32) -> Self {
        self.ack = ack;
        self
    }
    /// The options a Linux stack puts on a SYN: MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
    pub fn linux_options(self) -> Self {
        self.options(&[
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ])
    }

    /// Emit the whole IP datagram.
    pub fn emit(&self, ip: &IpSpec) -> Result<Vec<u8>> {
        let mut h = TcpHeader::new(self.src_port, self.dst_port, self.seq, self.window);
        let f = self.flags;
        h.fin = f.has(TcpFlags::FIN);
        h.syn = f.has(TcpFlags::SYN);
        h.rst = f.has(TcpFlags::RST);
        h.psh = f.has(TcpFlags::PSH);
        h.ack = f.has(TcpFlags::ACK);
        h.urg = f.has(TcpFlags::URG);
        h.ece = f.has(TcpFlags::ECE);
        h.cwr = f.has(TcpFlags::CWR);
        h.ns = f.has(TcpFlags::NS);
        h.acknowledgment_number = self.ack;
        let mut raw = self.options.as_bytes().to_vec();
        while raw.len() % 4 != 0 {
            raw.push(1);
        }
        h.set_options_raw(&raw)
            .map_err(|e| Error::Build(e.to_string()))?;
        let builder = PacketBuilder::ip(ip.headers(IpNumber::TCP)?).tcp_header(h);
        let payload = vec![0u8; self.payload_len];
        let mut out = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut out, &payload)
            .map_err(|e| Error::Build(e.to_string()))?;
        Ok(out)
    }
}

/// How much of the offending datagram an ICMP error quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteLen {
    /// The IP header and the first 8 bytes of its payload (the RFC 792 minimum: ports and sequence number).
    Minimal,
    /// As much as fits (Linux and RFC 4443: up to 576 / 1280 bytes in all).
    Full,
}

/// An ICMP (IPv4) or ICMPv6 error from `ip.src` to `ip.dst`, quoting `offending` (a whole IP datagram).
/// `icmp_type`/`code` are raw: for example 3/13 (v4 administratively prohibited), 1/4 (v6 port unreachable),
/// 11/0 (v4 time exceeded).
pub fn icmp_error(
    ip: &IpSpec,
    icmp_type: u8,
    code: u8,
    offending: &[u8],
    quote: QuoteLen,
) -> Result<Vec<u8>> {
    let quoted = match quote {
        QuoteLen::Full => {
            &offending[..offending
                .len()
                .min(if ip.src.is_ipv6() { 1232 } else { 548 })]
        }
        QuoteLen::Minimal => {
            let ihl = match ip.src {
                IpAddr::V4(_) => usize::from(offending.first().map_or(5, |b| b & 0x0f)) * 4,
                IpAddr::V6(_) => 40,
            };
            &offending[..offending.len().min(ihl + 8)]
        }
    };
    let headers = ip.headers(if ip.src.is_ipv6() {
        IpNumber::IPV6_ICMP
    } else {
        IpNumber::ICMP
    })?;
    let mut out = Vec::new();
    let step = PacketBuilder::ip(headers);
    if ip.src.is_ipv6() {
        step.icmpv6_raw(icmp_type, code, [0; 4])
            .write(&mut out, quoted)
            .map_err(|e| Error::Build(e.to_string()))?;
    } else {
        step.icmpv4_raw(icmp_type, code, [0; 4])
            .write(&mut out, quoted)
            .map_err(|e| Error::Build(e.to_string()))?;
    }
    Ok(out)
}

/// An ICMP/ICMPv6 echo request or reply.
pub fn echo(ip: &IpSpec, reply: bool, id: u16, seq: u16) -> Result<Vec<u8>> {
    let headers = ip.headers(if ip.src.is_ipv6() {
        IpNumber::IPV6_ICMP
    } else {
        IpNumber::ICMP
    })?;
    let step = PacketBuilder::ip(headers);
    let mut out = Vec::new();
    let r = match (ip.src.is_ipv6(), reply) {
        (false, false) => step.icmpv4_echo_request(id, seq).write(&mut out, &[]),
        (false, true) => step.icmpv4_echo_reply(id, seq).write(&mut out, &[]),
        (true, false) => step.icmpv6_echo_request(id, seq).write(&mut out, &[]),
        (true, true) => step.icmpv6_echo_reply(id, seq).write(&mut out, &[]),
    };
    r.map_err(|e| Error::Build(e.to_string()))?;
    Ok(out)
}

/// A UDP datagram with `payload_len` zero bytes.
pub fn udp(ip: &IpSpec, src_port: u16, dst_port: u16, payload_len: usize) -> Result<Vec<u8>> {
    let builder = PacketBuilder::ip(ip.headers(IpNumber::UDP)?).udp(src_port, dst_port);
    let mut out = Vec::new();
    builder
        .write(&mut out, &vec![0u8; payload_len])
        .map_err(|e| Error::Build(e.to_string()))?;
    Ok(out)
}

/// Wrap an IP datagram in an Ethernet II frame (fixed locally administered MACs), padded to the 60-byte minimum.
pub fn ethernet(ip_datagram: &[u8]) -> Vec<u8> {
    let ethertype: u16 = if ip_datagram.first().is_some_and(|b| b >> 4 == 6) {
        0x86dd
    } else {
        0x0800
    };
    let mut frame = Vec::with_capacity(14 + ip_datagram.len().max(46));
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(ip_datagram);
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}

/// A capture under construction: IP datagrams at capture times, in order. Feeds an [`Engine`](crate::Engine)
/// directly or writes a pcap file (Ethernet frames), so tests, examples and the generator describe a capture once.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    frames: Vec<(crate::Timestamp, Vec<u8>)>,
    start: i64,
}

impl Timeline {
    /// An empty timeline whose time 0 is `start_secs` seconds after the epoch.
    pub fn starting_at(start_secs: i64) -> Self {
        Timeline {
            frames: Vec::new(),
            start: start_secs,
        }
    }

    /// Add an IP datagram at `ms` milliseconds after the start.
    pub fn at(&mut self, ms: f64, ip_datagram: Vec<u8>) -> &mut Self {
        let ts = crate::Timestamp(self.start * 1_000_000_000 + (ms * 1e6) as i64);
        self.frames.push((ts, ip_datagram));
        self
    }

    /// The frames in time order (frames at the same time keep the order they were added in), as Ethernet
    /// frames with their times.
    pub fn ethernet_frames(&self) -> impl Iterator<Item = (crate::Timestamp, Vec<u8>)> + '_ {
        let mut order: Vec<&(crate::Timestamp, Vec<u8>)> = self.frames.iter().collect();
        order.sort_by_key(|(ts, _)| *ts);
        order.into_iter().map(|(ts, ip)| (*ts, ethernet(ip)))
    }

    /// Run the frames through a new engine and return every report.
    ///
    /// # Panics
    ///
    /// If `config` is one [`crate::EngineConfig::validate`] refuses (this is a helper for tests and examples:
    /// an embedder's program builds its [`crate::Engine`] itself and gets the error).
    pub fn judge(&self, config: crate::EngineConfig) -> Vec<crate::Report> {
        let mut engine = crate::Engine::new(config).expect("Timeline::judge: a valid EngineConfig");
        let mut out = Vec::new();
        for (ts, frame) in self.ethernet_frames() {
            let _ = engine.push_frame(crate::LinkType::ETHERNET, ts, &frame, frame.len() as u32);
            out.extend(std::iter::from_fn(|| engine.pop_report()));
        }
        engine.finish();
        out.extend(std::iter::from_fn(|| engine.pop_report()));
        out
    }

    /// Write the frames as a classic pcap of Ethernet frames (microsecond timestamps).
    pub fn write_pcap<W: std::io::Write>(&self, out: W) -> std::io::Result<W> {
        let mut w =
            crate::capture::PcapWriter::new(out, crate::LinkType::ETHERNET, 262_144, false)?;
        for (ts, frame) in self.ethernet_frames() {
            w.write(ts, &frame, frame.len() as u32)?;
        }
        w.finish()
    }
}
