//! Wireshark-style trace lines: number, relative time, source → destination, protocol, length and Info as
//! tshark prints it (`51234 → 443 [SYN] Seq=0 Win=64240 Len=0 MSS=1460 SACK_PERM WS=128`), followed by the IP
//! fields that fingerprint the sender (TTL, TOS, IP ID, DF, flow label) and, for ICMP errors, the quoted header.

use std::fmt::Write as _;

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::model::{Attempt, FrameRole, Observed};
use crate::time::Timestamp;
use crate::wire::{IcmpErrorKind, IpMeta, Packet, TcpMeta, TcpOption, Transport};

/// Relative-sequence bases for the two directions of one attempt, as Wireshark computes them: the SYN's
/// sequence number for the side that sent a SYN, else the first sequence number seen minus one.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqBases {
    client: Option<u32>,
    server: Option<u32>,
    /// Window-scale shifts (client, server), when both the SYN and the SYN-ACK offered one (RFC 7323).
    scale: Option<(u8, u8)>,
}

impl SeqBases {
    /// Bases for an attempt's frames.
    pub fn of(attempt: &Attempt) -> Self {
        let mut bases = SeqBases {
            client: Some(attempt.probe.isn.0),
            server: None,
            scale: None,
        };
        let client_ws = attempt.probe.options.window_scale();
        for (_, seen) in attempt.frames() {
            if let Some(t) = seen.packet.tcp() {
                if is_from_server(attempt, seen) && t.flags.is_syn_ack() && bases.scale.is_none() {
                    if let (Some(c), Some(s)) = (client_ws, t.options.window_scale()) {
                        bases.scale = Some((c.min(14), s.min(14)));
                    }
                }
                if is_from_server(attempt, seen) && bases.server.is_none() {
                    bases.server = Some(if t.flags.has(crate::wire::TcpFlags::SYN) {
                        t.seq
                    } else {
                        t.seq.wrapping_sub(1)
                    });
                }
            }
        }
        bases
    }
}

/// Whether a frame of the attempt travels from the server to the client (addresses and ports: on loopback the
/// addresses alone are the same both ways).
pub fn is_from_server(attempt: &Attempt, seen: &Observed) -> bool {
    let k = &attempt.probe.key;
    match seen.packet.tcp() {
        Some(t) => {
            seen.packet.ip.src == k.server
                && seen.packet.ip.dst == k.client
                && t.src_port == k.server_port.0
                && t.dst_port == k.client_port.0
        }
        None => false,
    }
}

/// The tshark Info column for a TCP segment, given the relative-sequence bases of its direction and the other.
pub fn tcp_info(
    t: &TcpMeta,
    own_base: Option<u32>,
    peer_base: Option<u32>,
    own_scale: Option<u8>,
) -> String {
    let mut s = String::with_capacity(96);
    let _ = write!(s, "{} → {} [{}]", t.src_port, t.dst_port, t.flags.names());
    let seq = own_base.map_or(t.seq, |b| t.seq.wrapping_sub(b));
    let _ = write!(s, " Seq={seq}");
    if t.flags.has(crate::wire::TcpFlags::ACK) {
        let ack = peer_base.map_or(t.ack, |b| t.ack.wrapping_sub(b));
        let _ = write!(s, " Ack={ack}");
    }
    // Windows of SYN segments are never scaled; later ones are, once both sides offered scaling.
    let window = match own_scale {
        Some(shift) if !t.flags.has(crate::wire::TcpFlags::SYN) => u64::from(t.window) << shift,
        _ => u64::from(t.window),
    };
    let _ = write!(s, " Win={window} Len={}", t.payload_len);
    for o in t.options.iter() {
        match o {
            TcpOption::Mss(v) => {
                let _ = write!(s, " MSS={v}");
            }
            TcpOption::SackPermitted => s.push_str(" SACK_PERM"),
            TcpOption::Timestamps(a, b) => {
                let _ = write!(s, " TSval={a} TSecr={b}");
            }
            TcpOption::WindowScale(w) => {
                let _ = write!(s, " WS={}", 1u32 << w.min(14));
            }
            _ => {}
        }
    }
    s
}

/// The tshark Info column for an ICMP/ICMPv6 error.
pub fn icmp_info(p: &Packet) -> String {
    let v6 = p.ip.is_v6();
    match &p.transport {
        Transport::IcmpError(e) => match e.kind {
            IcmpErrorKind::DestinationUnreachable(code) if v6 => {
                format!("Destination Unreachable ({})", code.description())
            }
            IcmpErrorKind::DestinationUnreachable(code) => {
                format!("Destination unreachable ({})", code.description())
            }
            IcmpErrorKind::TimeExceeded(0) if v6 => {
                "Time Exceeded (hop limit exceeded in transit)".into()
            }
            IcmpErrorKind::TimeExceeded(_) if v6 => {
                "Time Exceeded (fragment reassembly time exceeded)".into()
            }
            IcmpErrorKind::TimeExceeded(0) => {
                "Time-to-live exceeded (Time to live exceeded in transit)".into()
            }
            IcmpErrorKind::TimeExceeded(_) => {
                "Time-to-live exceeded (Fragment reassembly time exceeded)".into()
            }
            IcmpErrorKind::PacketTooBig => "Packet Too Big".into(),
            IcmpErrorKind::ParameterProblem(c) => format!("Parameter problem (code {c})"),
            IcmpErrorKind::SourceQuench => "Source quench (flow control)".into(),
            IcmpErrorKind::Redirect(c) => format!("Redirect (code {c})"),
        },
        Transport::Echo { reply, id, seq } => format!(
            "Echo (ping) {} id=0x{id:04x}, seq={seq}",
            if *reply { "reply" } else { "request" }
        ),
        Transport::IcmpOther { icmp_type, code } => format!("type {icmp_type} code {code}"),
        _ => String::new(),
    }
}

fn ip_fields(ip: &IpMeta) -> String {
    match ip.flow_label {
        Some(fl) => format!("HL={} TC=0x{:02x} FL=0x{fl:05x}", ip.ttl, ip.tos),
        None => format!(
            "TTL={} TOS=0x{:02x} ID={}{}",
            ip.ttl,
            ip.tos,
            ip.ident,
            if ip.df { " DF" } else { "" }
        ),
    }
}

fn protocol(p: &Packet) -> &'static str {
    match (&p.transport, p.ip.is_v6()) {
        (Transport::Tcp(_), _) => "TCP",
        (Transport::Udp { .. }, _) => "UDP",
        (Transport::IcmpError(_) | Transport::Echo { .. } | Transport::IcmpOther { .. }, true) => {
            "ICMPv6"
        }
        (Transport::IcmpError(_) | Transport::Echo { .. } | Transport::IcmpOther { .. }, false) => {
            "ICMP"
        }
        (Transport::Other(_), _) => "IP",
    }
}

/// One trace line for a frame of an attempt. `t0` is the time relative times count from (the first frame of
/// the capture, as in Wireshark).
pub fn frame_line(
    seen: &Observed,
    role: FrameRole,
    bases: &SeqBases,
    server_is_src: bool,
    t0: Timestamp,
) -> String {
    let p = &seen.packet;
    let info = match &p.transport {
        Transport::Tcp(t) => {
            let (own, peer, scale) = if server_is_src {
                (bases.server, bases.client, bases.scale.map(|s| s.1))
            } else {
                (bases.client, bases.server, bases.scale.map(|s| s.0))
            };
            tcp_info(t, own, peer, scale)
        }
        Transport::Udp {
            src_port,
            dst_port,
            payload_len,
        } => {
            format!("{src_port} → {dst_port} Len={payload_len}")
        }
        Transport::Other(proto) => format!("IP protocol {proto}"),
        _ => icmp_info(p),
    };
    let rel = seen.ts.since(t0).as_secs_f64();
    let mut line = format!(
        "{:>6} {:>11.6} {:>15} → {:<15} {:<6} {:>4} {}  [{}]",
        seen.frame,
        rel,
        p.ip.src.to_string(),
        p.ip.dst.to_string(),
        protocol(p),
        seen.len,
        info,
        ip_fields(&p.ip)
    );
    if let Some(q) = p.icmp_error().and_then(|e| e.quote) {
        let _ = write!(line, "  quoting {} → {} TTL={}", q.src, q.dst, q.ttl);
        if let Some(t) = q.tcp {
            let _ = write!(line, " TCP {} → {} Seq={}", t.src_port, t.dst_port, t.seq);
            match t.flags {
                Some(f) => {
                    let _ = write!(line, " [{}]", f.names());
                }
                None => line.push_str(" (8 bytes of TCP)"),
            }
        }
    }
    match role {
        FrameRole::Ours => line.push_str("  (ours: sent by the probing host's own stack)"),
        FrameRole::Syn | FrameRole::Reply | FrameRole::Other => {}
    }
    line
}

/// All trace lines of an attempt, in capture order. Retransmitted SYNs are marked as Wireshark marks them.
pub fn attempt_lines(attempt: &Attempt, t0: Timestamp) -> Vec<String> {
    let bases = SeqBases::of(attempt);
    let mut first_syn_seen = false;
    attempt
        .frames()
        .into_iter()
        .map(|(role, seen)| {
            let line = frame_line(seen, role, &bases, is_from_server(attempt, seen), t0);
            if role == FrameRole::Syn {
                if first_syn_seen {
                    return line + "  [TCP Retransmission]";
                }
                first_syn_seen = true;
            }
            line
        })
        .collect()
}
/// One frame of an attempt, in a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacketRecord {
    /// Frame number in the capture.
    pub frame: u64,
    /// Seconds since the first frame of the capture.
    pub time: f64,
    /// The part it plays: `syn`, `reply` or `ours`.
    pub role: FrameRole,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// TOS / traffic class.
    pub tos: u8,
    /// IPv4 ID (0 for IPv6).
    pub ip_id: u16,
    /// IPv4 DF bit.
    pub df: bool,
    /// IPv6 flow label (null for IPv4).
    pub flow_label: Option<u32>,
    /// Length on the wire.
    pub len: u32,
    /// The Wireshark-style trace line.
    pub summary: String,
}

impl PacketRecord {
    /// `seen`, playing `role`, with its trace line (`summary`), timed from `t0`.
    fn of(seen: &Observed, role: FrameRole, summary: String, t0: Timestamp) -> PacketRecord {
        let ip = &seen.packet.ip;
        PacketRecord {
            frame: seen.frame,
            time: seen.ts.since(t0).as_secs_f64(),
            role,
            src: ip.src,
            dst: ip.dst,
            ttl: ip.ttl,
            tos: ip.tos,
            ip_id: ip.ident,
            df: ip.df,
            flow_label: ip.flow_label,
            len: seen.len,
            summary: summary.trim().to_string(),
        }
    }
}

/// A frame that belongs to no attempt (an ICMP echo of a live run) as a record.
pub fn other_packet_record(seen: &Observed, t0: Timestamp) -> PacketRecord {
    let line = frame_line(seen, FrameRole::Other, &SeqBases::default(), false, t0);
    PacketRecord::of(seen, FrameRole::Other, line, t0)
}

/// The frames of a report as records.
pub fn packet_records(a: &Attempt, t0: Timestamp) -> Vec<PacketRecord> {
    let bases = SeqBases::of(a);
    a.frames()
        .into_iter()
        .map(|(role, seen): (FrameRole, &Observed)| {
            let line = frame_line(seen, role, &bases, is_from_server(a, seen), t0);
            PacketRecord::of(seen, role, line, t0)
        })
        .collect()
}

/// An address, written as `IpAddr`'s own `Display` writes it (width, fill and precision included), but IPv4 from
/// its octets rather than each octet through `fmt`: judging writes a few addresses into every attempt's sentences
/// and the text report two into every line, and std's formatting of them was a noticeable part of the time.
#[derive(Debug, Clone, Copy)]
pub struct AddrText(pub IpAddr);

impl std::fmt::Display for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => {
                let mut buf = [0u8; 15];
                let end = put_ipv4(a, &mut buf, 0);
                // Digits and dots only: always UTF-8. `pad`, as `Ipv4Addr` does, for a width or precision.
                f.pad(std::str::from_utf8(&buf[..end]).unwrap_or_default())
            }
            IpAddr::V6(a) => std::fmt::Display::fmt(&a, f),
        }
    }
}

/// Write an IPv4 address in dotted decimal, as `Display` writes it, into `buf` from `at` (up to 15 bytes); returns
/// where it ends. (`buf` must have 15 bytes from `at`.)
#[inline]
pub(crate) fn put_ipv4(addr: Ipv4Addr, buf: &mut [u8], at: usize) -> usize {
    let mut n = at;
    for (i, octet) in addr.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            buf[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            buf[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + octet % 10;
        n += 1;
    }
    n
}
