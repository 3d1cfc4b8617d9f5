//! The JSON Lines contract: the records `synprobe replay --json` writes (one per attempt, then one summary).
//! `schema_version` changes only when a field changes meaning or disappears; new fields may be added.
//! The schema is documented in docs/json.md.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::engine::Report;
use crate::model::{Closure, FrameRole, Observed};
use crate::replay::ReplayStats;
use crate::summary::SummaryRow;
use crate::time::Timestamp;
use crate::trace::{frame_line, is_from_server, SeqBases};
use crate::verdict::{Confidence, Evidence, Rejecter, Verdict};

/// The version of the JSON records.
pub const SCHEMA_VERSION: u32 = 1;

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

/// One judged attempt (`"type": "attempt"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `attempt`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// Time of the first SYN, seconds since the Unix epoch.
    pub time: f64,
    /// The address that sent the SYN.
    pub client: IpAddr,
    /// Its source port.
    pub client_port: u16,
    /// The address the SYN went to.
    pub target: IpAddr,
    /// The port it went to.
    pub port: u16,
    /// The verdict.
    pub verdict: Verdict,
    /// How sure.
    pub confidence: Confidence,
    /// One sentence for an operator.
    pub headline: String,
    /// Who answered: null for `open` and `filtered`.
    pub rejecter: Option<Rejecter>,
    /// The target's distance in hops (first router = 1), when known.
    pub target_hops: Option<u8>,
    /// Round-trip time of the deciding reply in milliseconds.
    pub rtt_ms: Option<f64>,
    /// SYNs sent (1 + retransmissions).
    pub syns: u32,
    /// Replies matched.
    pub replies: u32,
    /// How the attempt ended in the matcher.
    pub closure: Closure,
    /// Observations, most decisive first.
    pub evidence: Vec<Evidence>,
    /// What to do next.
    pub next_steps: Vec<String>,
    /// The frames (with `--trace`), else empty.
    pub packets: Vec<PacketRecord>,
}

impl AttemptRecord {
    /// Build the record of a report; `t0` is the capture's first frame time; `packets` includes the frames.
    pub fn new(r: &Report, t0: Timestamp, packets: bool) -> Self {
        let a = &r.attempt;
        let j = &r.judgement;
        AttemptRecord {
            schema_version: SCHEMA_VERSION,
            record_type: "attempt".into(),
            time: a.probe.ts.as_nanos() as f64 / 1e9,
            client: a.probe.key.client,
            client_port: a.probe.key.client_port.0,
            target: a.probe.key.server,
            port: a.probe.key.server_port.0,
            verdict: j.verdict,
            confidence: j.confidence,
            headline: j.headline.clone(),
            rejecter: j.rejecter,
            target_hops: j.target_hops.map(|h| h.0),
            rtt_ms: j.rtt_ms,
            syns: a.syn_count,
            replies: a.reply_count,
            closure: a.closure,
            evidence: j.evidence.clone(),
            next_steps: j.next_steps.iter().map(|s| s.to_string()).collect(),
            packets: if packets {
                packet_records(r, t0)
            } else {
                Vec::new()
            },
        }
    }
}

/// Append the JSON of `AttemptRecord::new(r, t0, packets)` to `out`: byte for byte what `serde_json::to_writer`
/// writes for that record, without building it (no copy of the judgement's strings). `replay --json` writes
/// one of these per attempt, so this is on the hot path. Numbers, addresses and names are written by
/// serde_json itself, strings by an escaper with serde_json's rules; the tests below hold the whole to serde's
/// output.
pub fn write_attempt_json(out: &mut Vec<u8>, r: &Report, t0: Timestamp, packets: bool) {
    fn value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
        // Writing to a Vec cannot fail, and none of these values fails to serialize.
        let _ = v.serialize(&mut serde_json::Serializer::new(out));
    }
    let a = &r.attempt;
    let j = &r.judgement;
    let k = &a.probe.key;
    out.extend_from_slice(br#"{"schema_version":"#);
    value(out, &SCHEMA_VERSION);
    out.extend_from_slice(br#","type":"attempt","time":"#);
    value(out, &(a.probe.ts.as_nanos() as f64 / 1e9));
    out.extend_from_slice(br#","client":"#);
    json_addr(out, k.client);
    out.extend_from_slice(br#","client_port":"#);
    value(out, &k.client_port.0);
    out.extend_from_slice(br#","target":"#);
    json_addr(out, k.server);
    out.extend_from_slice(br#","port":"#);
    value(out, &k.server_port.0);
    out.extend_from_slice(br#","verdict":"#);
    value(out, &j.verdict);
    out.extend_from_slice(br#","confidence":"#);
    value(out, &j.confidence);
    out.extend_from_slice(br#","headline":"#);
    json_string(out, &j.headline);
    out.extend_from_slice(br#","rejecter":"#);
    match &j.rejecter {
        Some(r) => {
            out.extend_from_slice(br#"{"addr":"#);
            json_addr(out, r.addr);
            out.extend_from_slice(br#","hops":"#);
            value(out, &r.hops);
            out.extend_from_slice(br#","is_target":"#);
            value(out, &r.is_target);
            out.extend_from_slice(br#","kind":""#);
            out.extend_from_slice(r.kind.as_str().as_bytes());
            out.extend_from_slice(br#""}"#);
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","target_hops":"#);
    value(out, &j.target_hops.map(|h| h.0));
    out.extend_from_slice(br#","rtt_ms":"#);
    value(out, &j.rtt_ms);
    out.extend_from_slice(br#","syns":"#);
    value(out, &a.syn_count);
    out.extend_from_slice(br#","replies":"#);
    value(out, &a.reply_count);
    out.extend_from_slice(br#","closure":"#);
    value(out, &a.closure);
    out.extend_from_slice(br#","evidence":["#);
    for (i, e) in j.evidence.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"code":"#);
        json_string(out, &e.code);
        out.extend_from_slice(br#","observed":"#);
        json_string(out, &e.observed);
        out.extend_from_slice(br#","implies":"#);
        json_string(out, &e.implies);
        out.push(b'}');
    }
    out.extend_from_slice(br#"],"next_steps":["#);
    for (i, step) in j.next_steps.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(out, step);
    }
    out.extend_from_slice(br#"],"packets":"#);
    if packets {
        value(out, &packet_records(r, t0));
    } else {
        out.extend_from_slice(b"[]");
    }
    out.push(b'}');
}

/// Append an address as the JSON string serde writes for it; IPv4 without `fmt` (a replay writes two or three
/// per attempt, and formatting them was a third of the time of writing the record).
fn json_addr(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            // `"255.255.255.255"` is 17 bytes: written into a buffer, then appended at once.
            let mut buf = [b'"'; 17];
            let end = put_ipv4(a, &mut buf, 1);
            out.extend_from_slice(&buf[..=end]);
        }
        IpAddr::V6(_) => {
            let _ = addr.serialize(&mut serde_json::Serializer::new(out));
        }
    }
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
fn put_ipv4(addr: Ipv4Addr, buf: &mut [u8], at: usize) -> usize {
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

/// Append `s` as a JSON string, escaped exactly as serde_json escapes it: `"` and `\` with a backslash,
/// the control characters with a short escape (`\b \t \n \f \r`) or `\u00xx`, everything else as is.
/// Judgement strings seldom need escaping, so they are checked 16 bytes at a time (a loop the compiler turns
/// into vector compares) and copied in one piece.
fn json_string(out: &mut Vec<u8>, s: &str) {
    /// Whether any of the bytes is below 0x20, a quote or a backslash.
    #[inline(always)]
    fn needs_escape(chunk: &[u8; 16]) -> bool {
        chunk.iter().fold(0u8, |any, &c| {
            any | u8::from(c < 0x20) | u8::from(c == b'"') | u8::from(c == b'\\')
        }) != 0
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if let Some(chunk) = b.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) {
            if !needs_escape(chunk) {
                i += 16;
                continue;
            }
        }
        let c = b[i];
        let short = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0x00..=0x1f => b'u',
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[start..i]);
        if short == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// A frame that belongs to no attempt (an ICMP echo of a live run) as a record.
pub fn other_packet_record(seen: &Observed, t0: Timestamp) -> PacketRecord {
    let ip = &seen.packet.ip;
    PacketRecord {
        frame: seen.frame,
        time: seen.ts.since(t0).as_secs_f64(),
        role: FrameRole::Other,
        src: ip.src,
        dst: ip.dst,
        ttl: ip.ttl,
        tos: ip.tos,
        ip_id: ip.ident,
        df: ip.df,
        flow_label: ip.flow_label,
        len: seen.len,
        summary: frame_line(seen, FrameRole::Other, &SeqBases::default(), false, t0)
            .trim()
            .to_string(),
    }
}

/// The frames of a report as records.
pub fn packet_records(r: &Report, t0: Timestamp) -> Vec<PacketRecord> {
    let a = &r.attempt;
    let bases = SeqBases::of(a);
    a.frames()
        .into_iter()
        .map(|(role, seen): (FrameRole, &Observed)| {
            let ip = &seen.packet.ip;
            let server_is_src = is_from_server(a, seen);
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
                summary: frame_line(seen, role, &bases, server_is_src, t0)
                    .trim()
                    .to_string(),
            }
        })
        .collect()
}

/// The closing summary (`"type": "summary"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRecord {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `summary`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// The file replayed.
    pub file: String,
    /// Frames read (including those a filter left out).
    pub frames: u64,
    /// Frames that were not IP.
    pub not_ip: u64,
    /// Frames with damaged or cut-short headers.
    pub malformed: u64,
    /// Frames of an unsupported link type.
    pub unsupported_link: u64,
    /// Frames the BPF filter left out.
    pub filtered_out: u64,
    /// Attempts reported (after `--host`/`--port`).
    pub attempts: u64,
    /// Attempts with SYN retransmissions.
    pub retransmitted_attempts: u64,
    /// SYN retransmissions in all.
    pub retransmissions: u64,
    /// Replies matched.
    pub replies: u64,
    /// SYN-ACKs and RSTs that matched no attempt.
    pub stray_tcp: u64,
    /// ICMP errors quoting TCP that matched no attempt.
    pub stray_icmp: u64,
    /// Replies that arrived after their attempt had closed (duplicates or answers after the timeout).
    pub late_replies: u64,
    /// RSTs that tear down established connections (not answers to a SYN).
    pub other_resets: u64,
    /// Attempts whose SYN was not captured, rebuilt from the SYN an ICMP error quotes.
    pub rebuilt_from_icmp: u64,
    /// Attempts evicted early because too many were in flight.
    pub evicted: u64,
    /// Totals by verdict over reported attempts.
    pub totals: SummaryRow,
    /// One row per server:port.
    pub servers: Vec<SummaryRow>,
    /// Where the file was damaged, if it was (the analysis covers what came before).
    pub error: Option<FileErrorRecord>,
}

/// A damaged file, in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileErrorRecord {
    /// Byte offset of the damage, when known.
    pub offset: Option<u64>,
    /// What was wrong.
    pub message: String,
}

impl SummaryRecord {
    /// Build the summary record.
    pub fn new(
        file: &str,
        stats: &ReplayStats,
        totals: SummaryRow,
        servers: Vec<SummaryRow>,
        error: Option<FileErrorRecord>,
    ) -> Self {
        SummaryRecord {
            schema_version: SCHEMA_VERSION,
            record_type: "summary".into(),
            file: file.to_string(),
            frames: stats.frames.frames,
            not_ip: stats.frames.not_ip,
            malformed: stats.frames.malformed,
            unsupported_link: stats.frames.unsupported_link,
            filtered_out: stats.filtered_out,
            attempts: totals.attempts,
            retransmitted_attempts: totals.retransmitted,
            retransmissions: stats.matching.retransmissions,
            replies: stats.matching.replies,
            stray_tcp: stats.matching.stray_tcp,
            stray_icmp: stats.matching.stray_icmp,
            late_replies: stats.matching.late_replies,
            other_resets: stats.matching.other_resets,
            rebuilt_from_icmp: stats.matching.rebuilt_from_icmp,
            evicted: stats.matching.evicted,
            totals,
            servers,
            error,
        }
    }
}

#[cfg(test)]
mod json_writer_tests {
    use super::*;
    use crate::build::{icmp_error, IpSpec, QuoteLen, TcpSpec, Timeline};
    use crate::EngineConfig;
    use proptest::prelude::*;

    fn serde_string(s: &str) -> Vec<u8> {
        serde_json::to_vec(s).expect("a string serializes")
    }

    fn ours(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        json_string(&mut v, s);
        v
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for c in (0u32..0x800).filter_map(char::from_u32) {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33] {
                let pad = "ab\u{e9}".repeat(len).chars().take(len).collect::<String>();
                for s in [
                    format!("{c}"),
                    format!("{pad}{c}"),
                    format!("{c}{pad}"),
                    format!("{pad}{c}{pad}{c}"),
                ] {
                    assert_eq!(ours(&s), serde_string(&s), "{s:?}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn any_string_is_escaped_as_serde_json_escapes_it(s in ".*") {
            prop_assert_eq!(ours(&s), serde_string(&s));
        }

        #[test]
        fn addresses_are_written_as_serde_json_writes_them(v4 in any::<u32>(), v6 in any::<u128>()) {
            for addr in [IpAddr::from(v4.to_be_bytes()), IpAddr::from(v6.to_be_bytes())] {
                let mut ours = Vec::new();
                json_addr(&mut ours, addr);
                prop_assert_eq!(ours, serde_json::to_vec(&addr).expect("serializes"));
            }
        }

        /// `AddrText` writes what `IpAddr`'s own `Display` writes, with or without width, fill, alignment and
        /// precision.
        #[test]
        fn addr_text_displays_as_ip_addr_does(v4 in any::<u32>(), v6 in any::<u128>()) {
            for ip in [IpAddr::from(v4.to_be_bytes()), IpAddr::from(v6.to_be_bytes())] {
                let a = AddrText(ip);
                prop_assert_eq!(format!("{a}"), format!("{ip}"));
                prop_assert_eq!(format!("{a:>20}"), format!("{ip:>20}"));
                prop_assert_eq!(format!("{a:*<18}"), format!("{ip:*<18}"));
                prop_assert_eq!(format!("{a:^9.4}"), format!("{ip:^9.4}"));
            }
        }

        #[test]
        fn strings_full_of_escapes_too(s in "[\\x00-\\x1f\"\\\\a\u{e9}\u{1f600}]{0,40}") {
            prop_assert_eq!(ours(&s), serde_string(&s));
        }
    }

    /// Every verdict, an attempt rebuilt from an ICMP quote, retransmissions and the client's own frames.
    fn reports() -> Vec<Report> {
        let addr = |a: &str| -> std::net::IpAddr { a.parse().expect("addr") };
        let mut t = Timeline::starting_at(1_763_700_000);
        for (v6, base) in [(false, 0.0), (true, 20_000.0)] {
            let (c, s, r) = if v6 {
                ("2001:db8::2", "2001:db8:9::9", "2001:db8:4::1")
            } else {
                ("198.18.0.2", "198.18.9.9", "198.18.4.1")
            };
            let out = IpSpec::new(addr(c), addr(s)).tos(0x48).flow_label(7);
            let back = |ttl: u8| {
                IpSpec::new(addr(s), addr(c))
                    .ttl(ttl)
                    .tos(0x48)
                    .flow_label(9)
            };
            let router = IpSpec::new(addr(r), addr(c)).ttl(62);
            let syn = |port: u16| {
                TcpSpec::syn(51_000 + port, port, 1000 + u32::from(port)).linux_options()
            };
            let mut at = |ms: f64, b: Vec<u8>| {
                t.at(base + ms, b);
            };
            at(0.0, syn(443).emit(&out).expect("syn"));
            at(
                18.2,
                TcpSpec::syn_ack_to(&syn(443), 5)
                    .emit(&back(57))
                    .expect("syn-ack"),
            );
            at(
                18.4,
                TcpSpec::syn(51_443, 443, 1001)
                    .flags(crate::wire::TcpFlags::ACK)
                    .emit(&out)
                    .expect("ack"),
            );
            at(100.0, syn(81).emit(&out).expect("syn"));
            at(
                118.0,
                TcpSpec::rst_to(&syn(81)).emit(&back(57)).expect("rst"),
            );
            at(200.0, syn(22).emit(&out).expect("syn"));
            at(
                209.0,
                TcpSpec::rst_to(&syn(22))
                    .emit(&back(61).tos(0).flow_label(0))
                    .expect("rst"),
            );
            let quoted = syn(3306).emit(&out).expect("syn");
            at(300.0, quoted.clone());
            at(
                301.0,
                icmp_error(
                    &router,
                    if v6 { 1 } else { 3 },
                    if v6 { 1 } else { 13 },
                    &quoted,
                    QuoteLen::Full,
                )
                .expect("icmp"),
            );
            let lost = syn(80).emit(&out).expect("syn");
            at(
                400.0,
                icmp_error(
                    &router,
                    if v6 { 1 } else { 3 },
                    if v6 { 0 } else { 1 },
                    &lost,
                    QuoteLen::Minimal,
                )
                .expect("icmp"),
            );
            let dropped = syn(25).emit(&out).expect("syn");
            for ms in [500.0, 1500.0, 3500.0] {
                at(ms, dropped.clone());
            }
        }
        t.judge(EngineConfig::default())
    }

    fn check(r: &Report, t0: Timestamp) {
        for packets in [false, true] {
            let want = serde_json::to_vec(&AttemptRecord::new(r, t0, packets)).expect("serializes");
            let mut got = Vec::new();
            write_attempt_json(&mut got, r, t0, packets);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "packets: {packets}"
            );
        }
    }

    #[test]
    fn attempt_records_are_written_as_serde_json_writes_them() {
        let reports = reports();
        let verdicts: std::collections::BTreeSet<Verdict> =
            reports.iter().map(|r| r.judgement.verdict).collect();
        assert_eq!(verdicts.len(), 6, "{verdicts:?}");
        let t0 = Timestamp(1_763_700_000_000_000_000);
        for r in &reports {
            check(r, t0);
        }
        // Strings that need escaping, numbers that are not finite, every optional field absent.
        let mut odd = reports[0].clone();
        odd.judgement.headline = "quote \" backslash \\ tab \t nul \0 del \u{7f} é 😀".into();
        odd.judgement.evidence[0].observed = "\u{1}\u{1f}\n\r\u{8}\u{c}".into();
        odd.judgement.next_steps.push("".into());
        odd.judgement.rtt_ms = Some(f64::NAN);
        odd.judgement.rejecter = None;
        odd.judgement.target_hops = None;
        check(&odd, t0);
        odd.judgement.rtt_ms = Some(1e-7);
        odd.judgement.evidence.clear();
        odd.judgement.next_steps.clear();
        check(&odd, Timestamp(-5));
    }
}
