//! The engine: parse → match → judge, fed one frame at a time. Live probing and replay both drive this.

use serde::{Deserialize, Serialize};

use crate::analysis::{Analyzer, AnalyzerConfig};
use crate::capture::LinkType;
use crate::error::ConfigError;
use crate::matcher::{ClosedAttempt, MatchConfig, MatchStats, Matcher};
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

impl EngineConfig {
    /// Check both halves ([`MatchConfig::validate`], [`AnalyzerConfig::validate`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.matcher.validate()?;
        self.analyzer.validate()
    }
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

impl Report {
    /// Give the strings and vectors of a report that is no longer needed to this thread's pools
    /// ([`crate::pool`]), for the next judgements to reuse.
    pub(crate) fn recycle(self) {
        use crate::pool::give;
        let Report { attempt, judgement } = self;
        give(judgement.findings);
        give(judgement.advice);
        give(attempt.syns);
        give(attempt.replies);
        give(attempt.client_frames);
    }
}

/// Whether an ICMP error's quote can be read as far as it matters: an IP header, and when it quotes TCP, the
/// 8 bytes of ports and sequence number every router must quote. True for every frame that is no ICMP error.
fn quote_is_usable(packet: &crate::wire::Packet) -> bool {
    match packet.icmp_error() {
        Some(e) => e.quote.is_some_and(|q| q.protocol != 6 || q.tcp.is_some()),
        None => true,
    }
}

/// Where the matching half of the engine hands what it found, in order: to the analyzer itself (one thread), or
/// into batches for a second thread ([`crate::replay_parallel`]). The analyzer's results depend only on the
/// order of these calls, so both give the same reports.
pub(crate) trait Judge {
    /// Capture time moved forward to `now`.
    fn advance(&mut self, now: Timestamp);
    /// An ICMP echo reply from `src` with this TTL and flow label.
    fn echo_reply(&mut self, src: std::net::IpAddr, ttl: u8, flow_label: Option<u32>);
    /// An attempt closed (still in the matcher's compact form).
    fn closed(&mut self, attempt: ClosedAttempt);
}

impl Judge for Analyzer {
    fn advance(&mut self, now: Timestamp) {
        Analyzer::advance(self, now);
    }

    fn echo_reply(&mut self, src: std::net::IpAddr, ttl: u8, flow_label: Option<u32>) {
        self.note_echo_reply(src, ttl, flow_label);
    }

    fn closed(&mut self, attempt: ClosedAttempt) {
        self.push_closed(attempt);
    }
}

/// The matching half of the engine: parses frames, counts them, matches replies to attempts and hands what it
/// found to a [`Judge`].
pub(crate) struct Front {
    pub(crate) matcher: Matcher,
    pub(crate) frames: FrameStats,
    pub(crate) last_ts: Option<Timestamp>,
}

impl Front {
    pub(crate) fn new(config: MatchConfig) -> Self {
        Front {
            matcher: Matcher::new(config),
            frames: FrameStats::default(),
            last_ts: None,
        }
    }

    pub(crate) fn push_frame(
        &mut self,
        link: LinkType,
        ts: Timestamp,
        data: &[u8],
        wire_len: u32,
        judge: &mut impl Judge,
    ) -> Result<(), ParseError> {
        self.frames.frames += 1;
        let frame = self.frames.frames;
        self.advance(ts, judge);
        match parse_frame(link, data) {
            Ok(packet) if !quote_is_usable(&packet) => {
                // An ICMP error whose quoted datagram is garbage, or cut short before the TCP ports and sequence
                // number, can answer no attempt: its headers are damaged or cut short.
                self.frames.malformed += 1;
                Err(ParseError::Malformed("datagram quoted in an ICMP error"))
            }
            Ok(packet) => {
                self.frames.ip += 1;
                self.observe(
                    Observed {
                        frame,
                        ts,
                        len: wire_len,
                        packet,
                    },
                    judge,
                );
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

    pub(crate) fn advance(&mut self, now: Timestamp, judge: &mut impl Judge) {
        self.last_ts = Some(self.last_ts.map_or(now, |t| t.max(now)));
        self.matcher.advance(now);
        self.drain(judge);
        judge.advance(now);
    }

    pub(crate) fn observe(&mut self, seen: Observed, judge: &mut impl Judge) {
        if let Transport::Echo { reply: true, .. } = seen.packet.transport {
            let ip = &seen.packet.ip;
            judge.echo_reply(ip.src, ip.ttl, ip.flow_label);
        }
        self.matcher.observe(&seen);
        self.drain(judge);
    }

    pub(crate) fn drain(&mut self, judge: &mut impl Judge) {
        while let Some(a) = self.matcher.pop_closed_compact() {
            judge.closed(a);
        }
    }
}

/// Parses frames, matches replies to attempts, and judges each attempt. Sans-IO: push frames with their capture
/// time, pop reports.
///
/// ```
/// use synprobe_core::{Engine, EngineConfig, LinkType, Timestamp};
/// let mut engine = Engine::new(EngineConfig::default()).expect("the default settings are valid");
/// # let frames: Vec<(Timestamp, Vec<u8>)> = Vec::new();
/// for (ts, bytes) in &frames {
///     engine.push_frame(LinkType::ETHERNET, *ts, bytes, bytes.len() as u32);
///     while let Some(report) = engine.pop_report() {
///         println!("{} {:?}", report.judgement.verdict, report.judgement.findings);
///     }
/// }
/// engine.finish();
/// while let Some(report) = engine.pop_report() {
///     let words = synprobe_core::explain::Explain::of_report(&report);
///     println!("{}", words.headline(&report.judgement));
/// }
/// ```
pub struct Engine {
    front: Front,
    analyzer: Analyzer,
    /// Set by [`Engine::finish`] until every attempt has been closed and handed to the analyzer: the attempts
    /// still in flight are closed one at a time as reports are popped, so that a large capture's last tens of
    /// thousands of attempts are never all held (and judged) at once.
    finishing: Option<Timestamp>,
}

impl Engine {
    /// An engine with the given settings, once [`EngineConfig::validate`] accepts them.
    pub fn new(config: EngineConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Engine::with_valid(config))
    }

    /// An engine with settings known to be valid (built in the crate, not taken from a caller).
    pub(crate) fn with_valid(config: EngineConfig) -> Self {
        debug_assert!(config.validate().is_ok());
        Engine {
            front: Front::new(config.matcher),
            analyzer: Analyzer::new(config.analyzer),
            finishing: None,
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
        self.complete_finish();
        self.front
            .push_frame(link, ts, data, wire_len, &mut self.analyzer)
    }

    /// Push a frame that was already parsed (the live prober keeps its own frame numbers).
    pub fn push_observed(&mut self, seen: Observed) {
        self.complete_finish();
        self.front.frames.frames += 1;
        self.front.frames.ip += 1;
        self.front.advance(seen.ts, &mut self.analyzer);
        self.front.observe(seen, &mut self.analyzer);
    }

    /// Move capture time forward without a frame (a live run's clock while nothing arrives).
    pub fn advance(&mut self, now: Timestamp) {
        self.complete_finish();
        self.front.advance(now, &mut self.analyzer);
    }

    /// End of input: close and judge everything still open. The reports come out of [`Engine::pop_report`] in
    /// the same order as if all were closed and judged here; they are closed and judged as they are popped.
    pub fn finish(&mut self) {
        self.complete_finish();
        self.front.drain(&mut self.analyzer);
        self.finishing = Some(self.front.last_ts.unwrap_or_default());
    }

    /// The next judged attempt, if one is ready.
    pub fn pop_report(&mut self) -> Option<Report> {
        loop {
            if let Some((attempt, judgement)) = self.analyzer.pop() {
                return Some(Report { attempt, judgement });
            }
            let now = self.finishing?;
            match self.front.matcher.finish_next(now) {
                Some(a) => self.analyzer.push(a),
                None => {
                    self.analyzer.finish();
                    self.finishing = None;
                }
            }
        }
    }

    /// Whatever a pending [`Engine::finish`] has not closed and judged yet, at once (before anything else
    /// happens to the engine, so that it behaves as if `finish` had done it all).
    fn complete_finish(&mut self) {
        if let Some(now) = self.finishing.take() {
            while let Some(a) = self.front.matcher.finish_next(now) {
                self.analyzer.push(a);
            }
            self.analyzer.finish();
        }
    }

    /// Frame counters.
    pub fn frame_stats(&self) -> &FrameStats {
        &self.front.frames
    }

    /// Matching counters.
    pub fn match_stats(&self) -> &MatchStats {
        self.front.matcher.stats()
    }

    /// Attempts in flight plus attempts held back for an RST's lookahead (none once [`Engine::finish`] is called).
    pub fn open_attempts(&self) -> usize {
        if self.finishing.is_some() {
            return 0;
        }
        self.front.matcher.in_flight() + self.analyzer.pending()
    }

    /// The latest capture time seen.
    pub fn now(&self) -> Option<Timestamp> {
        self.front.last_ts
    }
}
