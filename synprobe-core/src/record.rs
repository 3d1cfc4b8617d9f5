//! The JSON Lines contract: the records `synprobe replay --json` writes (one per attempt, then one summary).
//! `schema_version` changes only when a field changes meaning or disappears; new fields may be added.
//! The schema is documented in docs/json.md.

use std::net::IpAddr;

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
            next_steps: j.next_steps.clone(),
            packets: if packets {
                packet_records(r, t0)
            } else {
                Vec::new()
            },
        }
    }
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
