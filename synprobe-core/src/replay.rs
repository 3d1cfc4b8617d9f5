//! Replaying a capture file through the engine: the offline half of synprobe.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::capture::{CaptureError, CaptureReader, LinkType};
use crate::engine::{Engine, EngineConfig, FrameStats, Report};
use crate::error::{Error, Result};
use crate::matcher::MatchStats;
use crate::time::Timestamp;

/// A BPF filter (tcpdump syntax) applied to frames before analysis, compiled by libpcap once per link type.
pub struct BpfFilter {
    expr: String,
    programs: HashMap<u32, pcap::BpfProgram>,
}

impl BpfFilter {
    /// Check that `expr` compiles (for Ethernet) and keep it for the link types met later.
    pub fn new(expr: &str) -> Result<Self> {
        let mut f = BpfFilter {
            expr: expr.to_string(),
            programs: HashMap::new(),
        };
        f.program(LinkType::ETHERNET)?;
        Ok(f)
    }

    fn program(&mut self, link: LinkType) -> Result<&pcap::BpfProgram> {
        if !self.programs.contains_key(&link.0) {
            let err = |e: pcap::Error| Error::Filter {
                expr: self.expr.clone(),
                reason: e.to_string(),
            };
            let dead = pcap::Capture::dead(pcap::Linktype(link.0 as i32)).map_err(err)?;
            let prog = dead.compile(&self.expr, true).map_err(err)?;
            self.programs.insert(link.0, prog);
        }
        self.programs.get(&link.0).ok_or_else(|| Error::Filter {
            expr: self.expr.clone(),
            reason: "internal: program missing".into(),
        })
    }

    /// Whether the frame passes. A link type the expression cannot be compiled for passes nothing.
    pub fn matches(&mut self, link: LinkType, data: &[u8]) -> bool {
        match self.program(link) {
            Ok(p) => p.filter(data),
            Err(_) => false,
        }
    }
}

/// What to replay and how.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// A BPF expression frames must match.
    pub filter: Option<String>,
    /// Only report attempts to or from this address.
    pub host: Option<IpAddr>,
    /// Only report attempts to this server port.
    pub port: Option<u16>,
    /// Engine settings.
    pub engine: EngineConfig,
}

/// What a replay saw, besides the reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplayStats {
    /// Frame counters.
    pub frames: FrameStats,
    /// Frames the BPF filter left out.
    pub filtered_out: u64,
    /// Matching counters.
    pub matching: MatchStats,
    /// Reports left out by `--host`/`--port`.
    pub not_selected: u64,
    /// Time of the first frame.
    pub first_ts: Option<Timestamp>,
    /// Time of the last frame.
    pub last_ts: Option<Timestamp>,
    /// Bytes of the file read.
    pub bytes_read: u64,
}

/// Replay every frame of `reader` through a new engine, calling `on_report` for each judged attempt (in the
/// order attempts closed). A damaged file is analysed up to the damage: the reports of what was read are
/// delivered, then the capture error is returned beside the stats.
pub fn replay<R: Read>(
    reader: &mut CaptureReader<R>,
    options: &ReplayOptions,
    mut on_report: impl FnMut(&Report, &ReplayStats),
    mut on_progress: impl FnMut(u64),
) -> Result<(ReplayStats, Option<CaptureError>)> {
    let mut filter = options.filter.as_deref().map(BpfFilter::new).transpose()?;
    let mut engine = Engine::new(options.engine);
    let mut stats = ReplayStats::default();
    let mut frames_since_progress = 0u32;
    let mut deliver = |engine: &mut Engine, stats: &mut ReplayStats| {
        while let Some(r) = engine.pop_report() {
            let k = &r.attempt.probe.key;
            let host_ok = options.host.is_none_or(|h| k.server == h || k.client == h);
            let port_ok = options.port.is_none_or(|p| k.server_port.0 == p);
            if host_ok && port_ok {
                on_report(&r, stats);
            } else {
                stats.not_selected += 1;
            }
        }
    };
    let failure = loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        if stats.first_ts.is_none() {
            stats.first_ts = Some(frame.ts);
        }
        stats.last_ts = Some(frame.ts);
        if let Some(f) = filter.as_mut() {
            if !f.matches(frame.link, frame.data) {
                stats.filtered_out += 1;
                continue;
            }
        }
        let _ = engine.push_frame(frame.link, frame.ts, frame.data, frame.orig_len);
        deliver(&mut engine, &mut stats);
        frames_since_progress += 1;
        if frames_since_progress >= 65_536 {
            frames_since_progress = 0;
            on_progress(reader.bytes_read());
        }
    };
    engine.finish();
    deliver(&mut engine, &mut stats);
    stats.frames = *engine.frame_stats();
    stats.frames.frames += stats.filtered_out;
    stats.matching = *engine.match_stats();
    stats.bytes_read = reader.bytes_read();
    Ok((stats, failure))
}
