//! Replaying a capture file through the engine: the offline half of synprobe.

#[cfg(feature = "bpf")]
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use crate::analysis::Analyzer;
use crate::capture::{CaptureError, CaptureReader, LinkType};
use crate::engine::{Engine, EngineConfig, FrameStats, Front, Judge, Report};
use crate::error::{ConfigError, Error, Result};
use crate::matcher::{ClosedAttempt, MatchStats, Spent};
use crate::time::Timestamp;

/// A BPF filter (tcpdump syntax) applied to frames before analysis, compiled by libpcap once per link type.
/// Needs the `bpf` feature.
#[cfg(feature = "bpf")]
pub struct BpfFilter {
    expr: String,
    programs: HashMap<u32, pcap::BpfProgram>,
}

#[cfg(feature = "bpf")]
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

/// Without the `bpf` feature no filter can be compiled: asking for one is an error, and no filter exists.
#[cfg(not(feature = "bpf"))]
enum BpfFilter {}

#[cfg(not(feature = "bpf"))]
impl BpfFilter {
    fn new(expr: &str) -> Result<Self> {
        Err(Error::FilterUnsupported {
            expr: expr.to_string(),
        })
    }

    fn matches(&mut self, _link: LinkType, _data: &[u8]) -> bool {
        match *self {}
    }
}

/// What to replay and how.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// A BPF expression frames must match (needs the `bpf` feature: without it, replaying with a filter is an
    /// [`Error::FilterUnsupported`]).
    pub filter: Option<String>,
    /// Only report attempts to or from this address.
    pub host: Option<IpAddr>,
    /// Only report attempts to this server port.
    pub port: Option<u16>,
    /// Engine settings.
    pub engine: EngineConfig,
}

impl ReplayOptions {
    /// Check the settings: the engine's ([`EngineConfig::validate`]). [`replay`] and [`replay_parallel`] do, before
    /// reading.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        self.engine.validate()
    }

    /// Whether `--host`/`--port` select this report.
    fn selects(&self, r: &Report) -> bool {
        let k = &r.attempt.probe.key;
        let host_ok = self.host.is_none_or(|h| k.server == h || k.client == h);
        let port_ok = self.port.is_none_or(|p| k.server_port.0 == p);
        host_ok && port_ok
    }
}

/// What [`read_frames`] hands on.
enum ReadEvent<'a> {
    /// The capture's first frame has this time (whether the filter keeps it or not).
    First(Timestamp),
    /// A frame the filter kept.
    Frame(crate::capture::Frame<'a>),
    /// Bytes of the file read so far, every 65,536 frames.
    Progress(u64),
}

/// Read every frame of `reader`, counting times and filtered frames into `stats`, and hand on what
/// [`ReadEvent`] lists; `on` returns whether to read on. Returns the damage that stopped the reading.
fn read_frames<R: Read>(
    reader: &mut CaptureReader<R>,
    filter: &mut Option<BpfFilter>,
    stats: &mut ReplayStats,
    mut on: impl FnMut(ReadEvent<'_>) -> bool,
) -> Option<CaptureError> {
    let mut frames_since_progress = 0u32;
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => return None,
            Err(e) => return Some(e),
        };
        if stats.first_ts.is_none() {
            stats.first_ts = Some(frame.ts);
            if !on(ReadEvent::First(frame.ts)) {
                return None;
            }
        }
        stats.last_ts = Some(frame.ts);
        if let Some(f) = filter.as_mut() {
            if !f.matches(frame.link, frame.data) {
                stats.filtered_out += 1;
                continue;
            }
        }
        if !on(ReadEvent::Frame(frame)) {
            return None;
        }
        frames_since_progress += 1;
        if frames_since_progress >= 65_536 {
            frames_since_progress = 0;
            if !on(ReadEvent::Progress(reader.bytes_read())) {
                return None;
            }
        }
    }
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
    let mut engine = Engine::new(options.engine)?;
    let mut filter = options.filter.as_deref().map(BpfFilter::new).transpose()?;
    let mut stats = ReplayStats::default();
    let mut deliver = |engine: &mut Engine, stats: &mut ReplayStats| {
        while let Some(r) = engine.pop_report() {
            if options.selects(&r) {
                on_report(&r, stats);
            } else {
                stats.not_selected += 1;
            }
            r.recycle();
        }
    };
    // The callback below needs the stats too (`on_report` sees them): they are kept apart and merged.
    let mut read = ReplayStats::default();
    let failure = read_frames(reader, &mut filter, &mut read, |r| {
        match r {
            ReadEvent::First(ts) => stats.first_ts = Some(ts),
            ReadEvent::Frame(frame) => {
                let _ = engine.push_frame(frame.link, frame.ts, frame.data, frame.orig_len);
                deliver(&mut engine, &mut stats);
            }
            ReadEvent::Progress(bytes) => on_progress(bytes),
        }
        true
    });
    stats.last_ts = read.last_ts;
    stats.filtered_out = read.filtered_out;
    engine.finish();
    deliver(&mut engine, &mut stats);
    crate::pool::empty();
    stats.frames = *engine.frame_stats();
    stats.frames.frames += stats.filtered_out;
    stats.matching = *engine.match_stats();
    stats.bytes_read = reader.bytes_read();
    Ok((stats, failure))
}

/// One step of the matching half's output, for the judging half (see [`Judge`]).
enum Step {
    Advance(Timestamp),
    Echo(IpAddr, u8, Option<u32>),
    /// The next attempt of [`Batch::attempts`].
    Closed,
}

/// Steps sent from the matching thread to the judging thread at once.
struct Batch {
    steps: Vec<Step>,
    attempts: Vec<ClosedAttempt>,
    /// Time of the capture's first frame, in the batch that saw it.
    first_ts: Option<Timestamp>,
    /// Bytes of the file read so far, every 65,536 frames.
    progress: Option<u64>,
    /// On the way back: the overflow boxes of the attempts judged, to be freed by the matching thread that
    /// allocated them.
    spent: Vec<Spent>,
}

impl Batch {
    fn with_capacity() -> Self {
        Batch {
            steps: Vec::with_capacity(BATCH_STEPS),
            attempts: Vec::with_capacity(BATCH_ATTEMPTS),
            first_ts: None,
            progress: None,
            spent: Vec::new(),
        }
    }
}

/// Steps per batch: enough that handing a batch over costs little per step, few enough that the judging thread
/// starts early and the batches in the channel take little memory.
const BATCH_STEPS: usize = 256;
/// Attempts per batch (each is a few hundred bytes).
const BATCH_ATTEMPTS: usize = 64;
/// Batches in the channel: the matching thread waits when the judging thread falls this far behind.
const BATCHES_IN_FLIGHT: usize = 4;

/// The [`Judge`] of the matching thread: collects steps into batches and sends them to the judging thread.
struct Batcher {
    batch: Batch,
    tx: mpsc::SyncSender<Batch>,
    /// Batches the judging thread has emptied, to be filled again: their memory is allocated once, on this
    /// thread, instead of once per batch (and freed on the other thread).
    emptied: mpsc::Receiver<Batch>,
    /// The judging thread is gone (it panicked): stop reading.
    hung_up: bool,
}

impl Batcher {
    fn new(tx: mpsc::SyncSender<Batch>, emptied: mpsc::Receiver<Batch>) -> Self {
        Batcher {
            batch: Batch::with_capacity(),
            tx,
            emptied,
            hung_up: false,
        }
    }

    fn flush(&mut self) {
        let mut next = self
            .emptied
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity());
        next.spent.clear();
        let batch = std::mem::replace(&mut self.batch, next);
        if !self.hung_up && self.tx.send(batch).is_err() {
            self.hung_up = true;
        }
    }

    fn pushed(&mut self) {
        if self.batch.steps.len() >= BATCH_STEPS || self.batch.attempts.len() >= BATCH_ATTEMPTS {
            self.flush();
        }
    }
}

impl Judge for Batcher {
    fn advance(&mut self, now: Timestamp) {
        // The analyzer's state only changes on echo replies and attempts, so advancing twice with nothing in
        // between releases the same attempts, judged the same way, as advancing once to the later time.
        if let Some(Step::Advance(t)) = self.batch.steps.last_mut() {
            *t = now;
            return;
        }
        self.batch.steps.push(Step::Advance(now));
        self.pushed();
    }

    fn echo_reply(&mut self, src: IpAddr, ttl: u8, flow_label: Option<u32>) {
        self.batch.steps.push(Step::Echo(src, ttl, flow_label));
        self.pushed();
    }

    fn closed(&mut self, attempt: ClosedAttempt) {
        self.batch.steps.push(Step::Closed);
        self.batch.attempts.push(attempt);
        self.pushed();
    }
}

/// What the matching thread reports when the input ends.
struct FrontDone {
    stats: ReplayStats,
    failure: Option<CaptureError>,
}

/// As [`replay`], on two threads: the calling thread judges the attempts and calls `on_report` and
/// `on_progress`, while a second thread reads, filters, parses and matches frames. The reports, their order and
/// the stats are exactly those of [`replay`]; only the `ReplayStats` passed to `on_report` differs: in it only
/// `first_ts` and `not_selected` are kept up to date (the returned stats are complete).
pub fn replay_parallel<R: Read + Send>(
    reader: &mut CaptureReader<R>,
    options: &ReplayOptions,
    mut on_report: impl FnMut(&Report, &ReplayStats),
    mut on_progress: impl FnMut(u64),
) -> Result<(ReplayStats, Option<CaptureError>)> {
    options.validate()?;
    // Compile the filter here so that a bad expression is reported before anything is read; the matching thread
    // compiles its own copy (libpcap's programs stay on the thread that made them).
    if let Some(expr) = options.filter.as_deref() {
        BpfFilter::new(expr)?;
    }
    let (tx, rx) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    let (emptied_tx, emptied_rx) = mpsc::channel::<Batch>();
    let mut analyzer = Analyzer::new(options.engine.analyzer);
    analyzer.keep_spent();
    let mut seen = ReplayStats::default();
    std::thread::scope(|scope| {
        let front = std::thread::Builder::new()
            .name("synprobe-match".into())
            .spawn_scoped(scope, move || match_frames(reader, options, tx, emptied_rx))
            .map_err(|source| Error::Io {
                what: "start the thread that reads the capture",
                source,
            })?;
        let mut deliver = |analyzer: &mut Analyzer, seen: &mut ReplayStats| {
            while let Some((attempt, judgement)) = analyzer.pop() {
                let r = Report { attempt, judgement };
                if options.selects(&r) {
                    on_report(&r, seen);
                } else {
                    seen.not_selected += 1;
                }
                r.recycle();
            }
        };
        for mut batch in rx {
            if batch.first_ts.is_some() {
                seen.first_ts = batch.first_ts;
            }
            let mut attempts = batch.attempts.drain(..);
            for step in batch.steps.drain(..) {
                match step {
                    Step::Advance(now) => analyzer.advance(now),
                    Step::Echo(src, ttl, flow_label) => {
                        analyzer.note_echo_reply(src, ttl, flow_label)
                    }
                    Step::Closed => {
                        if let Some(a) = attempts.next() {
                            analyzer.push_closed(a);
                        }
                    }
                }
                // Each report as soon as it is judged: its buffers go back to the pool for the next one.
                deliver(&mut analyzer, &mut seen);
            }
            drop(attempts);
            if let Some(bytes) = batch.progress.take() {
                on_progress(bytes);
            }
            batch.first_ts = None;
            analyzer.take_spent(&mut batch.spent);
            // Back to the matching thread to be filled again (it may have finished: then it is dropped here).
            let _ = emptied_tx.send(batch);
        }
        analyzer.finish();
        deliver(&mut analyzer, &mut seen);
        crate::pool::empty();
        let done = match front.join() {
            Ok(done) => done?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let mut stats = done.stats;
        stats.not_selected = seen.not_selected;
        Ok((stats, done.failure))
    })
}

/// The matching thread of [`replay_parallel`]: everything [`replay`] does before judging.
fn match_frames<R: Read>(
    reader: &mut CaptureReader<R>,
    options: &ReplayOptions,
    tx: mpsc::SyncSender<Batch>,
    emptied: mpsc::Receiver<Batch>,
) -> Result<FrontDone> {
    let mut filter = options.filter.as_deref().map(BpfFilter::new).transpose()?;
    let mut front = Front::new(options.engine.matcher);
    let mut out = Batcher::new(tx, emptied);
    let mut stats = ReplayStats::default();
    let failure = read_frames(reader, &mut filter, &mut stats, |r| {
        match r {
            ReadEvent::First(ts) => out.batch.first_ts = Some(ts),
            ReadEvent::Frame(frame) => {
                let _ =
                    front.push_frame(frame.link, frame.ts, frame.data, frame.orig_len, &mut out);
            }
            ReadEvent::Progress(bytes) => out.batch.progress = Some(bytes),
        }
        // The judging thread is gone (it panicked): stop reading.
        !out.hung_up
    });
    // End of input, as `Engine::finish` does it: what the matcher still holds, then every attempt in flight.
    front.drain(&mut out);
    let now = front.last_ts.unwrap_or_default();
    while let Some(a) = front.matcher.finish_next_closed(now) {
        out.closed(a);
    }
    out.flush();
    stats.frames = front.frames;
    stats.frames.frames += stats.filtered_out;
    stats.matching = *front.matcher.stats();
    stats.bytes_read = reader.bytes_read();
    Ok(FrontDone { stats, failure })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{IpSpec, TcpSpec, Timeline};
    use crate::verdict::Verdict;

    const CLIENT: &str = "198.18.0.2";
    const SERVER: &str = "198.18.2.2";

    fn addr(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    /// A SYN to `port` with `tos` at `ms`, answered 20 ms later from 2 hops away by a SYN-ACK, or by an RST
    /// with TOS `rst_tos`.
    fn exchange(t: &mut Timeline, ms: f64, port: u16, tos: u8, rst_tos: Option<u8>) {
        let syn = TcpSpec::syn(40000 + port, port, 1000 + u32::from(port)).linux_options();
        let out = IpSpec::new(addr(CLIENT), addr(SERVER)).tos(tos);
        t.at(ms, syn.emit(&out).expect("syn"));
        let back = IpSpec::new(addr(SERVER), addr(CLIENT)).ttl(62);
        // The SYN-ACK with a BSD's option layout: a Linux one would show on its own that the host's stack
        // echoes the TOS, and this test is about when the later evidence of that (port 1's RST) counts.
        let bsd = [
            2, 4, 0x05, 0xb4, 1, 3, 3, 6, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0,
        ];
        let reply = match rst_tos {
            None => TcpSpec::syn_ack_to(&syn, 7).options(&bsd).emit(&back),
            Some(x) => TcpSpec::rst_to(&syn).emit(&back.tos(x)),
        };
        t.at(ms + 20.0, reply.expect("reply"));
    }

    /// Without the `bpf` feature a filter is a typed error, before anything is read, on both paths; with it,
    /// an expression libpcap rejects is one.
    #[test]
    fn a_filter_that_cannot_be_applied_is_an_error() {
        let mut t = Timeline::starting_at(1_700_000_000);
        exchange(&mut t, 0.0, 443, 0, None);
        let bytes = t.write_pcap(Vec::new()).expect("pcap");
        let expr = if cfg!(feature = "bpf") {
            "tcp and and"
        } else {
            "tcp"
        };
        let options = ReplayOptions {
            filter: Some(expr.into()),
            ..ReplayOptions::default()
        };
        for parallel in [false, true] {
            let mut reader = CaptureReader::new(&bytes[..]).expect("reads");
            let r = if parallel {
                replay_parallel(&mut reader, &options, |_, _| {}, |_| {})
            } else {
                replay(&mut reader, &options, |_, _| {}, |_| {})
            };
            match r {
                #[cfg(feature = "bpf")]
                Err(Error::Filter { expr: e, .. }) => assert_eq!(e, expr),
                #[cfg(not(feature = "bpf"))]
                Err(Error::FilterUnsupported { expr: e }) => assert_eq!(e, expr),
                other => panic!("expected a filter error, got {other:?}"),
            }
        }
    }

    fn both(t: &Timeline) -> (Vec<Report>, Vec<Report>) {
        let bytes = t.write_pcap(Vec::new()).expect("pcap");
        let run = |parallel: bool| {
            let mut reader = CaptureReader::new(&bytes[..]).expect("reads");
            let mut reports = Vec::new();
            let options = ReplayOptions::default();
            let on_report = |r: &Report, _: &ReplayStats| reports.push(r.clone());
            let (_, damage) = if parallel {
                replay_parallel(&mut reader, &options, on_report, |_| {})
            } else {
                replay(&mut reader, &options, on_report, |_| {})
            }
            .expect("replay");
            assert!(damage.is_none());
            reports
        };
        (run(false), run(true))
    }

    /// The verdict on port 8080's RST (TOS 0 to a SYN marked 0x10: a REJECT rule's, once the TOS-echoing
    /// stack RST for port 1 is seen) when that stack RST comes `later_ms` after it.
    fn rst_verdict(later_ms: f64) -> Verdict {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 443, 0, None);
        exchange(&mut t, 5_000.0, 8080, 0x10, Some(0));
        exchange(&mut t, 5_000.0 + later_ms, 1, 0x10, Some(0x10));
        let (one, two) = both(&t);
        assert_eq!(one, two);
        assert_eq!(one.len(), 3);
        assert_eq!(
            one[1].attempt.probe.key.server_port.0, 8080,
            "order is kept"
        );
        one[1].judgement.verdict
    }

    /// An RST is held back for the analyzer's lookahead (10 s) so that later evidence counts; past it, the
    /// passing of capture time alone releases it, judged with what was known then. The matching thread must
    /// hand that passing of time to the judging thread in order, or the second case would differ.
    #[test]
    fn time_passing_releases_held_verdicts_on_both_threads_alike() {
        assert_eq!(rst_verdict(2_000.0), Verdict::FirewallRst);
        assert_eq!(rst_verdict(25_000.0), Verdict::Closed);
    }

    /// An RST from a server with no SYN-ACK baseline is held for the lookahead only, not until one comes: past
    /// it, capture time alone releases it, and the attempts after it; both threads alike.
    #[test]
    fn an_rst_without_a_baseline_is_released_by_time_on_both_threads_alike() {
        let mut t = Timeline::starting_at(0);
        exchange(&mut t, 0.0, 8080, 0, Some(0));
        let other = IpSpec::new(addr(CLIENT), addr("198.18.3.3"));
        for i in 0..40u16 {
            let syn = TcpSpec::syn(41000 + i, 22, 5 + u32::from(i));
            let ms = 400.0 + f64::from(i) * 500.0;
            t.at(ms, syn.emit(&other).expect("syn"));
            t.at(
                ms + 3.0,
                TcpSpec::syn_ack_to(&syn, 9)
                    .emit(&other.reversed().ttl(60))
                    .expect("syn-ack"),
            );
        }
        // The server's first SYN-ACK, 25 s after its RST: too late to be its baseline.
        exchange(&mut t, 25_000.0, 443, 0, None);
        let (one, two) = both(&t);
        assert_eq!(one, two);
        assert_eq!(one.len(), 42);
        assert_eq!(one[0].attempt.probe.key.server_port.0, 8080);
        assert_eq!(one[0].judgement.verdict, Verdict::Closed);
        assert!(one[0]
            .judgement
            .findings
            .contains(&crate::findings::Finding::NoBaseline));
    }
}
