//! The engine: parse → match → judge, fed one frame at a time. Live probing and replay both drive this.

use serde::{Deserialize, Serialize};

use crate::analysis::{Analyzer, AnalyzerConfig};
use crate::capture::LinkType;
use crate::matcher::{MatchConfig, MatchStats, Matcher};
use crate::model::{Attempt, Observed};
use crate::time::Timestamp;
use crate::verdict::Judgement;
use crate::wire::{parse_frame, ParseError, Transport};

/// Engine settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineConfig {
    /// Matching (timeout, table cap).
    pub matcher: MatchConfig,
    /// Judging (hold-back queue, baseline table cap).
    pub analyzer: AnalyzerConfig,
}

/// Frame counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FrameStats {
    /// Frames pushed.
    pub frames: u64,
    /// Frames that parsed as IP.
    pub ip: u64,
    /// Frames that were not IP (ARP, LLDP, ...).
    pub not_ip: u64,
    /// Frames whose headers were damaged or cut short.
    pub malformed: u64,
    /// Frames of a link type synprobe does not read.
    pub unsupported_link: u64,
    /// Non-first IP fragments (no transport header).
    pub fragments: u64,
}

/// One judged attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The attempt and its packets.
    pub attempt: Attempt,
    /// The verdict and its evidence.
    pub judgement: Judgement,
}

/// Parses frames, matches replies to attempts, and judges each attempt. Sans-IO: push frames with their capture
/// time, pop reports.
///
/// ```
/// use synprobe_core::{Engine, EngineConfig, LinkType, Timestamp};
/// let mut engine = Engine::new(EngineConfig::default());
/// # let frames: Vec<(Timestamp, Vec<u8>)> = Vec::new();
/// for (ts, bytes) in &frames {
///     engine.push_frame(LinkType::ETHERNET, *ts, bytes, bytes.len() as u32);
///     while let Some(report) = engine.pop_report() {
///         println!("{}", report.judgement.headline);
///     }
/// }
/// engine.finish();
/// while let Some(report) = engine.pop_report() {
///     println!("{}", report.judgement.headline);
/// }
/// ```
pub struct Engine {
    matcher: Matcher,
    analyzer: Analyzer,
    frames: FrameStats,
    last_ts: Option<Timestamp>,
}

impl Engine {
    /// An engine with the given settings.
    pub fn new(config: EngineConfig) -> Self {
        Engine {
            matcher: Matcher::new(config.matcher),
            analyzer: Analyzer::new(config.analyzer),
            frames: FrameStats::default(),
            last_ts: None,
        }
    }

    /// Push one captured frame: `data` is what was captured, `wire_len` its length on the wire.
    /// Returns the parse error for a frame that could not be used (it is counted either way).
    pub fn push_frame(
        &mut self,
        link: LinkType,
        ts: Timestamp,
        data: &[u8],
        wire_len: u32,
    ) -> Result<(), ParseError> {
        self.frames.frames += 1;
        let frame = self.frames.frames;
        self.advance(ts);
        match parse_frame(link, data) {
            Ok(packet) => {
                self.frames.ip += 1;
                self.observe(Observed {
                    frame,
                    ts,
                    len: wire_len,
                    packet,
                });
                Ok(())
            }
            Err(e) => {
                match e {
                    ParseError::NotIp => self.frames.not_ip += 1,
                    ParseError::Malformed(_) => self.frames.malformed += 1,
                    ParseError::UnsupportedLink(_) => self.frames.unsupported_link += 1,
                    ParseError::Fragment => self.frames.fragments += 1,
                }
                Err(e)
            }
        }
    }

    /// Push a frame that was already parsed (the live prober keeps its own frame numbers).
    pub fn push_observed(&mut self, seen: Observed) {
        self.frames.frames += 1;
        self.frames.ip += 1;
        self.advance(seen.ts);
        self.observe(seen);
    }

    /// Move capture time forward without a frame (a live run's clock while nothing arrives).
    pub fn advance(&mut self, now: Timestamp) {
        self.last_ts = Some(self.last_ts.map_or(now, |t| t.max(now)));
        self.matcher.advance(now);
        self.drain_matcher();
        self.analyzer.advance(now);
    }

    /// End of input: close and judge everything still open.
    pub fn finish(&mut self) {
        let now = self.last_ts.unwrap_or_default();
        self.matcher.finish(now);
        self.drain_matcher();
        self.analyzer.finish();
    }

    /// The next judged attempt, if one is ready.
    pub fn pop_report(&mut self) -> Option<Report> {
        self.analyzer
            .pop()
            .map(|(attempt, judgement)| Report { attempt, judgement })
    }

    /// Frame counters.
    pub fn frame_stats(&self) -> &FrameStats {
        &self.frames
    }

    /// Matching counters.
    pub fn match_stats(&self) -> &MatchStats {
        self.matcher.stats()
    }

    /// Attempts in flight plus attempts held back for a baseline.
    pub fn open_attempts(&self) -> usize {
        self.matcher.in_flight() + self.analyzer.pending()
    }

    /// The latest capture time seen.
    pub fn now(&self) -> Option<Timestamp> {
        self.last_ts
    }

    fn observe(&mut self, seen: Observed) {
        if let Transport::Echo { reply: true, .. } = seen.packet.transport {
            let ip = &seen.packet.ip;
            self.analyzer.note_echo_reply(ip.src, ip.ttl, ip.flow_label);
        }
        self.matcher.observe(&seen);
        self.drain_matcher();
    }

    fn drain_matcher(&mut self) {
        while let Some(a) = self.matcher.pop_closed() {
            self.analyzer.push(a);
        }
    }
}
