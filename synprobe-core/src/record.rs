//! The JSON Lines contract: the records `synprobe replay --json` writes (one per attempt, then one summary).
//! `schema_version` changes only when a field changes meaning or disappears; new fields may be added.
//! The schema is documented in docs/json.md.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::engine::Report;
use crate::explain::Explain;
use crate::findings::{Finding, FullConnect};
use crate::host::PortListeners;
use crate::model::Closure;
use crate::replay::ReplayStats;
use crate::session::{PathHop, TargetReport};
use crate::summary::SummaryRow;
use crate::time::{Duration, Timestamp};
use crate::trace::put_ipv4;
pub use crate::trace::{other_packet_record, packet_records, AddrText, PacketRecord};
use crate::verdict::{Confidence, Judgement, Rejecter, Verdict};

/// The version of the JSON records.
pub const SCHEMA_VERSION: u32 = 2;

/// One finding in a record: its `code` and its fields (see [`Finding`]), and with `--explain` the sentences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// The finding, as data.
    #[serde(flatten)]
    pub finding: Finding,
    /// With `--explain`: what the packets show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// With `--explain`: what that means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implies: Option<String>,
}

/// [`EvidenceRecord`] without a copy of the finding, for the writer.
#[derive(Serialize)]
struct EvidenceRef<'a> {
    #[serde(flatten)]
    finding: &'a Finding,
    observed: String,
    implies: String,
}

/// The findings of a judgement as records, with the words when `words` is given.
pub fn evidence_records(j: &Judgement, words: Option<&Explain>) -> Vec<EvidenceRecord> {
    j.findings
        .iter()
        .map(|f| EvidenceRecord {
            finding: f.clone(),
            observed: words.map(|w| w.observed(f)),
            implies: words.map(|w| w.implies(f)),
        })
        .collect()
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
    /// With `--explain`: one sentence for an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
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
    /// Findings, most decisive first.
    pub evidence: Vec<EvidenceRecord>,
    /// With `--explain`: what to do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_steps: Option<Vec<String>>,
    /// The frames (with `--trace`), else empty.
    pub packets: Vec<PacketRecord>,
}

impl AttemptRecord {
    /// Build the record of a report; `t0` is the capture's first frame time; `packets` includes the frames;
    /// `explain` adds the sentences (headline, next steps, each finding's observation and meaning).
    pub fn new(r: &Report, t0: Timestamp, packets: bool, explain: bool) -> Self {
        let a = &r.attempt;
        let j = &r.judgement;
        let words = explain.then(|| Explain::of_report(r));
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
            headline: words.map(|w| w.headline(j)),
            rejecter: j.rejecter,
            target_hops: j.target_hops.map(|h| h.0),
            rtt_ms: j.rtt_ms(),
            syns: a.syn_count,
            replies: a.reply_count,
            closure: a.closure,
            evidence: evidence_records(j, words.as_ref()),
            next_steps: words.map(|w| w.next_steps(j)),
            packets: if packets {
                packet_records(a, t0)
            } else {
                Vec::new()
            },
        }
    }
}

/// The diagnosis of one address and port by a live run (`"type": "probe"`): what `synprobe HOST PORTS --json`
/// prints, one per line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeRecord {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `probe`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// The name the user gave, when it was a host name.
    pub host: Option<String>,
    /// The address probed.
    pub target: IpAddr,
    /// The port probed.
    pub port: u16,
    /// The source address used.
    pub source: IpAddr,
    /// The verdict.
    pub verdict: Verdict,
    /// How sure.
    pub confidence: Confidence,
    /// With `--explain`: one sentence for an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// Who answered instead of (or as) the service.
    pub rejecter: Option<Rejecter>,
    /// The target's distance (first router = 1; this host itself = 0), when known.
    pub target_hops: Option<u8>,
    /// Round-trip time of the deciding reply, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Findings, the deciding one first.
    pub evidence: Vec<EvidenceRecord>,
    /// With `--explain`: what to do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_steps: Option<Vec<String>>,
    /// The TTL walk, when one was made.
    pub path: Vec<PathHop>,
    /// Packets sent for this port (its share of the address's shared probes included).
    pub probes_sent: u32,
    /// Milliseconds from the first packet sent to the verdict, excluding process start-up.
    pub time_to_verdict_ms: f64,
    /// Every packet sent and received, Wireshark style.
    pub packets: Vec<PacketRecord>,
    /// For an address of this host: what its listening sockets mean for the port (null otherwise).
    pub listeners: Option<PortListeners>,
    /// With `--connect`, for a port that answered SYN-ACK: what a full connection met (null otherwise).
    pub connect: Option<FullConnect>,
}

impl ProbeRecord {
    /// The record of a live run's report; `explain` adds the sentences.
    pub fn new(r: &TargetReport, explain: bool) -> Self {
        let j = &r.judgement;
        let words = explain.then(|| Explain::of_target(r));
        ProbeRecord {
            schema_version: SCHEMA_VERSION,
            record_type: "probe".into(),
            host: r.host.clone(),
            target: r.target,
            port: r.port,
            source: r.source,
            verdict: j.verdict,
            confidence: j.confidence,
            headline: words.map(|w| w.headline(j)),
            rejecter: j.rejecter,
            target_hops: j.target_hops.map(|h| h.0),
            rtt_ms: j.rtt_ms(),
            evidence: evidence_records(j, words.as_ref()),
            next_steps: words.map(|w| w.next_steps(j)),
            path: r.path.clone(),
            probes_sent: r.probes_sent,
            time_to_verdict_ms: r.time_to_verdict.max(Duration(0)).as_millis_f64(),
            packets: r.packets.clone(),
            listeners: r.listeners.clone(),
            connect: r.connect,
        }
    }
}

/// Append the JSON of `AttemptRecord::new(r, t0, packets, explain)` to `out`: byte for byte what
/// `serde_json::to_writer` writes for that record, without building it. `replay --json` writes one of these per
/// attempt, so this is on the hot path. Numbers, addresses, names and findings are written by serde_json
/// itself, strings by an escaper with serde_json's rules; the tests below hold the whole to serde's output.
pub fn write_attempt_json(
    out: &mut Vec<u8>,
    r: &Report,
    t0: Timestamp,
    packets: bool,
    explain: bool,
) {
    fn value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
        // Writing to a Vec cannot fail, and none of these values fails to serialize.
        let _ = v.serialize(&mut serde_json::Serializer::new(out));
    }
    let a = &r.attempt;
    let j = &r.judgement;
    let k = &a.probe.key;
    let words = explain.then(|| Explain::of_report(r));
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
    if let Some(w) = &words {
        out.extend_from_slice(br#","headline":"#);
        json_string(out, &w.headline(j));
    }
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
    value(out, &j.rtt_ms());
    out.extend_from_slice(br#","syns":"#);
    value(out, &a.syn_count);
    out.extend_from_slice(br#","replies":"#);
    value(out, &a.reply_count);
    out.extend_from_slice(br#","closure":"#);
    value(out, &a.closure);
    out.extend_from_slice(br#","evidence":["#);
    for (i, f) in j.findings.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match &words {
            Some(w) => value(
                out,
                &EvidenceRef {
                    finding: f,
                    observed: w.observed(f),
                    implies: w.implies(f),
                },
            ),
            None => value(out, f),
        }
    }
    out.push(b']');
    if let Some(w) = &words {
        out.extend_from_slice(br#","next_steps":["#);
        for (i, step) in w.next_steps(j).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_string(out, step);
        }
        out.push(b']');
    }
    out.extend_from_slice(br#","packets":"#);
    if packets {
        value(out, &packet_records(a, t0));
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

/// Ports of a sweep that share a verdict, a rejecter and a cause: one line of the grouped report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepGroup {
    /// The verdict.
    pub verdict: Verdict,
    /// The lowest confidence among the ports.
    pub confidence: Confidence,
    /// Who answered instead of (or as) the service.
    pub rejecter: Option<Rejecter>,
    /// Why, as data (the first port's cause; every port of the group has the same).
    pub cause: crate::findings::Cause,
    /// How many ports.
    pub count: u32,
    /// The ports, ranges compressed as a port list is written (`25,135-139`).
    pub ports: String,
    /// The first port of the group: its record has the evidence.
    pub first: u16,
}

impl SweepGroup {
    /// Group a sweep's reports (of one address) by verdict, rejecter and cause: open ports first, then by
    /// verdict, then the largest groups first.
    pub fn of(reports: &[TargetReport]) -> Vec<SweepGroup> {
        let mut groups: Vec<(SweepGroup, Vec<u16>)> = Vec::new();
        for r in reports {
            let j = &r.judgement;
            let found = groups.iter_mut().find(|(g, _)| {
                g.verdict == j.verdict && g.rejecter == j.rejecter && g.cause == j.cause
            });
            match found {
                Some((g, ports)) => {
                    g.count += 1;
                    g.confidence = g.confidence.min(j.confidence);
                    ports.push(r.port);
                }
                None => groups.push((
                    SweepGroup {
                        verdict: j.verdict,
                        confidence: j.confidence,
                        rejecter: j.rejecter,
                        cause: j.cause.clone(),
                        count: 1,
                        ports: String::new(),
                        first: r.port,
                    },
                    vec![r.port],
                )),
            }
        }
        let mut out: Vec<SweepGroup> = groups
            .into_iter()
            .map(|(mut g, mut ports)| {
                ports.sort_unstable();
                g.first = ports[0];
                g.ports = compress_ports(&ports);
                g
            })
            .collect();
        out.sort_by(|a, b| {
            (
                a.verdict != Verdict::Open,
                a.verdict,
                std::cmp::Reverse(a.count),
                a.first,
            )
                .cmp(&(
                    b.verdict != Verdict::Open,
                    b.verdict,
                    std::cmp::Reverse(b.count),
                    b.first,
                ))
        });
        out
    }
}

/// Ascending ports written as a port list, ranges compressed: `[22, 80, 81, 82]` is `22,80-82`.
pub fn compress_ports(ports: &[u16]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ports.len() {
        let start = ports[i];
        let mut end = start;
        while i + 1 < ports.len() && ports[i + 1] == end.wrapping_add(1) && ports[i + 1] > end {
            i += 1;
            end = ports[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

/// The closing line of a sweep's JSON (`"type": "sweep"`): the ports of one address grouped by verdict,
/// rejecter and cause. Each port has its own `probe` record before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `sweep`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// The name the user gave, when it was a host name.
    pub host: Option<String>,
    /// The address swept.
    pub target: IpAddr,
    /// Ports swept.
    pub ports: u32,
    /// Packets sent for the whole sweep.
    pub probes_sent: u64,
    /// Milliseconds from the first packet sent to the last verdict.
    pub time_ms: f64,
    /// The groups, open first.
    pub groups: Vec<SweepGroup>,
}

impl SweepRecord {
    /// The record of one address's reports.
    pub fn new(reports: &[TargetReport]) -> Option<SweepRecord> {
        let first = reports.first()?;
        Some(SweepRecord {
            schema_version: SCHEMA_VERSION,
            record_type: "sweep".into(),
            host: first.host.clone(),
            target: first.target,
            ports: reports.len() as u32,
            probes_sent: reports.iter().map(|r| u64::from(r.probes_sent)).sum(),
            time_ms: reports
                .iter()
                .map(|r| r.time_to_verdict.as_millis_f64())
                .fold(0.0, f64::max),
            groups: SweepGroup::of(reports),
        })
    }
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
    /// The busiest server:ports, one row each, then the rest row if it has attempts ([`crate::Summary::rows`]).
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
            for explain in [false, true] {
                let want = serde_json::to_vec(&AttemptRecord::new(r, t0, packets, explain))
                    .expect("serializes");
                let mut got = Vec::new();
                write_attempt_json(&mut got, r, t0, packets, explain);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "packets: {packets}, explain: {explain}"
                );
            }
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
        // Every optional field absent, findings with lists and addresses of both families, no findings.
        let mut odd = reports[0].clone();
        odd.judgement.rtt = Some(Duration(-1));
        odd.judgement.rejecter = None;
        odd.judgement.target_hops = None;
        odd.judgement
            .findings
            .extend(crate::findings::tests::examples());
        check(&odd, t0);
        odd.judgement.rtt = None;
        odd.judgement.findings.clear();
        odd.judgement.advice.clear();
        check(&odd, Timestamp(-5));
    }

    /// One judged attempt in schema 2, without and with `--explain`: numbers as numbers, no sentences unless
    /// asked, and the record reads back as it was written.
    #[test]
    fn a_forged_rst_in_schema_2() {
        let reports = reports();
        let r = reports
            .iter()
            .find(|r| r.judgement.verdict == Verdict::FirewallRst)
            .expect("a forged RST");
        let t0 = Timestamp(1_763_700_000_000_000_000);
        let plain: serde_json::Value =
            serde_json::to_value(AttemptRecord::new(r, t0, false, false)).expect("serializes");
        assert_eq!(plain["schema_version"], 2);
        assert_eq!(plain["verdict"], "firewall-rst");
        assert_eq!(plain["rejecter"]["hops"], 4);
        assert_eq!(
            plain["evidence"][0],
            serde_json::json!({"code": "rst-closer-than-synack", "rst_hops": 4, "host_hops": {"min": 8, "max": 8}})
        );
        assert_eq!(plain["evidence"][1]["code"], "rst");
        assert_eq!(plain["evidence"][1]["ttl"]["received"], 61);
        assert_eq!(plain["evidence"][1]["after_ms"], 9.0);
        for key in ["headline", "next_steps"] {
            assert!(
                plain.get(key).is_none(),
                "{key} without --explain: {plain:#}"
            );
        }
        assert!(!plain.to_string().contains("observed"));

        let explained = AttemptRecord::new(r, t0, false, true);
        let json: serde_json::Value = serde_json::to_value(&explained).expect("serializes");
        assert_eq!(
            json["headline"],
            "198.18.9.9 port 22: RST forged by a firewall at hop 4 in front of the host at hop 8, not by the host (it used the host's address)"
        );
        assert_eq!(
            json["evidence"][0]["implies"],
            "a device 4 hop(s) closer than the host forged the RST"
        );
        assert_eq!(
            json["evidence"][0]["observed"],
            "the RST came from 4 hop(s) away, the host's SYN-ACKs from 8 hop(s)"
        );
        assert_eq!(json["evidence"][0]["rst_hops"], 4);
        assert!(!json["next_steps"]
            .as_array()
            .expect("next steps")
            .is_empty());
        let back: AttemptRecord = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, explained);
        let back: AttemptRecord = serde_json::from_value(plain).expect("reads back");
        assert_eq!(back, AttemptRecord::new(r, t0, false, false));
    }
}
