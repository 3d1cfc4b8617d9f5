//! The logic of synprobe's fuzz targets, kept in one place.
//!
//! Each `fuzz_targets/<name>.rs` calls the function of the same name here, and synprobe-core's
//! `tests/fuzz_corpus.rs` includes this very file (with `#[path]`) to run the same functions over every file
//! in `fuzz/corpus/<name>/`: CI replays the corpora on the stable toolchain, without cargo-fuzz. So this file
//! uses nothing but synprobe-core's public API, serde_json and std (all a synprobe-core test has).
//!
//! A function here panics only when synprobe-core breaks a promise: a panic inside the library on hostile
//! bytes, or one of the invariants asserted below (counts that must add up, bounds that must hold).

use std::collections::HashSet;
use std::io::Read;

use synprobe_core::analysis::AnalyzerConfig;
use synprobe_core::capture::{CaptureReader, MAX_BLOCK_LEN};
use synprobe_core::matcher::MatchConfig;
use synprobe_core::record::AttemptRecord;
use synprobe_core::trace::{attempt_lines, frame_line, SeqBases};
use synprobe_core::{
    Closure, Duration, Engine, EngineConfig, FrameRole, LinkType, Observed, Packet, ParseError,
    Report, Summary, Timestamp, MAX_PORTS,
};

/// The link types a selector byte picks from: the eleven synprobe reads, then five it does not.
pub const LINKS: [LinkType; 16] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::RAW_12,
    LinkType::RAW_14,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::ETHERNET_MPACKET,
    LinkType(9),
    LinkType(105),
    LinkType(127),
    LinkType(147),
    LinkType(u32::MAX),
];

/// How many of [`LINKS`] (the first ones) synprobe reads.
pub const SUPPORTED_LINKS: usize = 11;

/// The link type a selector byte stands for.
pub fn link(selector: u8) -> LinkType {
    LINKS[usize::from(selector) % LINKS.len()]
}

/// The selector byte of a link type in [`LINKS`] (for writing seeds).
pub fn link_selector(link: LinkType) -> Option<u8> {
    LINKS
        .iter()
        .position(|l| *l == link)
        .and_then(|i| u8::try_from(i).ok())
}

/// Target `parse_frame`: the first byte selects the link type (see [`LINKS`]), the rest is the frame.
///
/// A supported link type never gives `UnsupportedLink`, an unsupported one always does; a parsed packet can be
/// rendered (trace line, JSON) whatever it holds.
pub fn parse_frame(data: &[u8]) {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let link = link(selector);
    let supported = usize::from(selector) % LINKS.len() < SUPPORTED_LINKS;
    let parsed = synprobe_core::parse_frame(link, frame);
    // The direct path for Ethernet/IPv4/TCP frames gives what etherparse's lax slicing gives.
    assert_eq!(
        parsed,
        synprobe_core::wire::parse_frame_lax(link, frame),
        "the direct parse path and etherparse's differ"
    );
    match parsed {
        Ok(packet) => {
            assert!(supported, "{link} is not read, yet a frame parsed");
            check_packet(&packet);
            let seen = Observed {
                frame: 1,
                ts: Timestamp(0),
                len: frame.len() as u32,
                packet,
            };
            for role in [FrameRole::Syn, FrameRole::Reply, FrameRole::Ours] {
                let _ = frame_line(&seen, role, &SeqBases::default(), false, Timestamp(0));
            }
        }
        Err(ParseError::UnsupportedLink(l)) => {
            assert!(!supported, "{link} is read, yet refused as unsupported");
            assert_eq!(l, link);
        }
        Err(e) => {
            assert!(supported, "{link} is not read, yet the frame gave {e}");
            let _ = e.to_string();
        }
    }
}

/// What holds for any parsed packet.
fn check_packet(p: &Packet) {
    assert_eq!(
        p.ip.src.is_ipv6(),
        p.ip.dst.is_ipv6(),
        "one family per header"
    );
    assert_eq!(p.ip.flow_label.is_some(), p.ip.is_v6());
    if let Some(t) = p.tcp() {
        assert!(t.options.as_bytes().len() <= 40);
        let _ = (t.options.layout(), t.flags.names(), t.options.mss());
    }
    if let Some(q) = p.icmp_error().and_then(|e| e.quote) {
        assert_eq!(q.src.is_ipv6(), q.dst.is_ipv6(), "one family per quote");
        if q.tcp.is_some() {
            assert_eq!(q.protocol, 6);
            assert!(q.transport_bytes >= 8);
        }
    }
    let _ = synprobe_core::trace::icmp_info(p);
    assert!(serde_json::to_string(p).is_ok());
}

/// Where the `engine` target's clock starts: 2023-11-14, in nanoseconds.
pub const ENGINE_START: Timestamp = Timestamp(1_700_000_000_000_000_000);

/// The engine settings a config byte stands for; 0 is the default configuration.
///
/// Bits 0-1 pick the table cap (and the baseline table cap), bits 2-3 the analyzer's hold-back bound, bit 4
/// turns off following retransmissions, bits 5-6 pick the timeout (3 s, 1 ms, 0, 1 hour), bit 7 sets the
/// analyzer's lookahead to 0.
pub fn engine_config(byte: u8) -> EngineConfig {
    let matcher = MatchConfig::default();
    let analyzer = AnalyzerConfig::default();
    let caps = |default: usize| [default, 1, 2, 16];
    let timeouts = [
        matcher.timeout,
        Duration::from_millis(1),
        // The shortest timeout the engine accepts (zero is refused).
        Duration(1),
        Duration::from_millis(3_600_000),
    ];
    EngineConfig {
        matcher: MatchConfig {
            max_in_flight: caps(matcher.max_in_flight)[usize::from(byte & 3)],
            timeout: timeouts[usize::from((byte >> 5) & 3)],
            follow_retransmissions: byte & 0x10 == 0,
        },
        analyzer: AnalyzerConfig {
            max_pending: [analyzer.max_pending, 0, 1, 8][usize::from((byte >> 2) & 3)],
            max_servers: caps(analyzer.max_servers)[usize::from(byte & 3)],
            lookahead: if byte & 0x80 == 0 {
                analyzer.lookahead
            } else {
                Duration(0)
            },
            live: byte & 0x40 != 0,
        },
    }
}

/// One frame of an `engine` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineRecord<'a> {
    /// Link type selector (see [`link`]).
    pub link: u8,
    /// Capture-time step from the previous frame in milliseconds; `i16::MAX` jumps to the largest timestamp,
    /// `i16::MIN` to the smallest.
    pub step_ms: i16,
    /// The frame.
    pub data: &'a [u8],
}

impl EngineRecord<'_> {
    /// Capture time of this frame, given the previous frame's.
    pub fn time(&self, previous: Timestamp) -> Timestamp {
        match self.step_ms {
            i16::MAX => Timestamp(i64::MAX),
            i16::MIN => Timestamp(i64::MIN),
            ms => previous.plus(Duration::from_millis(i64::from(ms))),
        }
    }
}

/// Split the next record off an `engine` input: link selector (1 byte), step (i16 LE), length (u16 LE), then
/// that many bytes of frame (fewer if the input ends first). `None` when fewer than 5 bytes are left.
pub fn next_record<'a>(rest: &mut &'a [u8]) -> Option<EngineRecord<'a>> {
    let (head, tail) = rest.split_first_chunk::<5>()?;
    let len = usize::from(u16::from_le_bytes([head[3], head[4]])).min(tail.len());
    let (data, after) = tail.split_at(len);
    *rest = after;
    Some(EngineRecord {
        link: head[0],
        step_ms: i16::from_le_bytes([head[1], head[2]]),
        data,
    })
}

/// Encode an `engine` input (for seeds): the config byte, then the records.
pub fn engine_input(config: u8, records: &[EngineRecord<'_>]) -> Vec<u8> {
    let mut out = vec![config];
    for r in records {
        let len = u16::try_from(r.data.len()).unwrap_or(u16::MAX);
        out.push(r.link);
        out.extend_from_slice(&r.step_ms.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&r.data[..usize::from(len)]);
    }
    out
}

/// Target `engine`: a config byte (see [`engine_config`]), then frames (see [`next_record`]) pushed through an
/// [`Engine`] with capture times that go forward, back, and to the ends of time. Every report is rendered as
/// the CLI renders it (JSON record with packets, trace lines, summary).
///
/// Checked: the engine never holds more attempts than its caps allow; after `finish` nothing is left open,
/// every attempt opened was reported exactly once, no frame belongs to two attempts, and the counters add up.
pub fn engine(data: &[u8]) {
    let Some((&config_byte, mut rest)) = data.split_first() else {
        return;
    };
    let config = engine_config(config_byte);
    let cap = config.matcher.max_in_flight.max(1) + config.analyzer.max_pending;
    let mut engine = Engine::new(config).expect("valid settings");
    let mut ts = ENGINE_START;
    let mut t0 = None;
    let mut reports: Vec<Report> = Vec::new();
    let mut pushed = 0u64;
    while let Some(record) = next_record(&mut rest) {
        ts = record.time(ts);
        t0.get_or_insert(ts);
        let wire_len = record.data.len() as u32;
        let _ = engine.push_frame(link(record.link), ts, record.data, wire_len);
        pushed += 1;
        assert!(
            engine.open_attempts() <= cap,
            "{} attempts open, more than the caps allow ({cap})",
            engine.open_attempts()
        );
        reports.extend(std::iter::from_fn(|| engine.pop_report()));
    }
    engine.finish();
    reports.extend(std::iter::from_fn(|| engine.pop_report()));
    assert_eq!(engine.open_attempts(), 0, "attempts left open after finish");
    check_counts(&engine, &reports, pushed);
    render(&reports, t0.unwrap_or_default());
}

/// The counters of a finished engine agree with its reports.
pub fn check_counts(engine: &Engine, reports: &[Report], pushed: u64) {
    let f = engine.frame_stats();
    assert_eq!(f.frames, pushed);
    assert_eq!(
        f.frames,
        f.ip + f.not_ip + f.malformed + f.unsupported_link + f.fragments,
        "every frame counted once: {f:?}"
    );
    let m = engine.match_stats();
    assert_eq!(
        reports.len() as u64,
        m.attempts,
        "every attempt reported once"
    );
    let sum = |of: fn(&Report) -> u64| reports.iter().map(of).sum::<u64>();
    assert_eq!(sum(|r| u64::from(r.attempt.syn_count)), m.syns);
    assert_eq!(sum(|r| u64::from(r.attempt.reply_count)), m.replies);
    assert_eq!(
        sum(|r| u64::from(r.attempt.retransmissions())),
        m.retransmissions
    );
    // A rebuilt attempt may meet its own SYN later (captured after the ICMP error); then it has one.
    assert!(sum(|r| u64::from(r.attempt.syn_count == 0)) <= m.rebuilt_from_icmp);
    assert!(m.attempts - m.rebuilt_from_icmp <= sum(|r| u64::from(r.attempt.syn_count > 0)));
    assert_eq!(
        sum(|r| u64::from(r.attempt.closure == Closure::Evicted)),
        m.evicted
    );
    assert!(m.inexact_replies <= m.replies);
    let mut frames = HashSet::new();
    for r in reports {
        let a = &r.attempt;
        assert!(a.syns.len() as u64 <= u64::from(a.syn_count));
        assert!(a.replies.len() as u64 <= u64::from(a.reply_count));
        for seen in a.syns.iter().chain(a.replies.iter().map(|r| &r.seen)) {
            assert!(
                frames.insert(seen.frame),
                "frame {} belongs to two attempts",
                seen.frame
            );
        }
    }
}

/// Render reports as the CLI does: JSON records with packets, trace lines, a summary.
pub fn render(reports: &[Report], t0: Timestamp) {
    let mut summary = Summary::default();
    for r in reports {
        for explain in [false, true] {
            let record = AttemptRecord::new(r, t0, true, explain);
            assert!(serde_json::to_string(&record).is_ok());
        }
        let _ = attempt_lines(&r.attempt, t0);
        summary.add(r);
    }
    assert!(serde_json::to_string(&summary.rows()).is_ok());
    assert!(serde_json::to_string(&summary.totals()).is_ok());
}

/// A frame copied out of a reader, to compare two reads of the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    /// Link type.
    pub link: LinkType,
    /// Capture time.
    pub ts: Timestamp,
    /// Captured bytes.
    pub data: Vec<u8>,
    /// Length on the wire.
    pub orig_len: u32,
    /// File offset of the record.
    pub offset: u64,
}

/// What reading a whole capture gave: the frames, then the error that ended it (message and offset), or the
/// error that refused the header.
pub type ReadOutcome = Result<(Vec<OwnedFrame>, Option<(String, Option<u64>)>), String>;

/// A source that hands out at most `step` bytes per read, as a pipe may.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Read every frame of `reader`, feeding each to `each`; check what must hold of the frames and the error.
fn read_capture<R: Read>(
    reader: Result<CaptureReader<R>, synprobe_core::capture::CaptureError>,
    input_len: usize,
    mut each: impl FnMut(&synprobe_core::capture::Frame<'_>),
) -> ReadOutcome {
    let mut reader = reader.map_err(|e| e.to_string())?;
    let mut frames = Vec::new();
    let mut last_offset = None;
    let failure = loop {
        match reader.next_frame() {
            Ok(Some(f)) => {
                assert!(f.data.len() <= MAX_BLOCK_LEN as usize);
                assert!(f.offset as usize + f.data.len() <= input_len);
                assert!(last_offset < Some(f.offset), "offsets go forward");
                last_offset = Some(f.offset);
                each(&f);
                frames.push(OwnedFrame {
                    link: f.link,
                    ts: f.ts,
                    data: f.data.to_vec(),
                    orig_len: f.orig_len,
                    offset: f.offset,
                });
            }
            Ok(None) => break None,
            Err(e) => {
                let offset = e.offset();
                assert!(offset.is_some_and(|o| o as usize <= input_len));
                break Some((e.to_string(), offset));
            }
        }
    };
    assert!(
        matches!(reader.next_frame(), Ok(None)),
        "finished stays finished"
    );
    assert!(reader.bytes_read() as usize <= input_len);
    Ok((frames, failure))
}

/// Target `capture_reader`: the input is a whole capture file. It is read with `CaptureReader::new`, every frame
/// going through an [`Engine`] as `synprobe replay` does, and read again through a 16-byte buffer from a source
/// that trickles a few bytes per read: both reads must give the same frames and the same error.
pub fn capture_reader(data: &[u8]) {
    let mut engine = Engine::new(EngineConfig::default()).expect("valid settings");
    let mut pushed = 0u64;
    let mut reports = Vec::new();
    let whole = read_capture(CaptureReader::new(data), data.len(), |f| {
        let _ = engine.push_frame(f.link, f.ts, f.data, f.orig_len);
        pushed += 1;
        reports.extend(std::iter::from_fn(|| engine.pop_report()));
    });
    engine.finish();
    reports.extend(std::iter::from_fn(|| engine.pop_report()));
    check_counts(&engine, &reports, pushed);
    let t0 = reports.first().map_or(Timestamp(0), |r| r.attempt.probe.ts);
    render(&reports, t0);
    let source = Trickle {
        data,
        step: 1 + data.len() % 7,
    };
    let trickled = read_capture(
        CaptureReader::with_buffer_size(source, 16),
        data.len(),
        |_| {},
    );
    assert_eq!(whole, trickled, "the buffer size changed what was read");
}

/// Target `parse_ports`: the input as text (lossy UTF-8). An accepted list is non-empty, ascending, distinct,
/// within 1..=65535 and [`MAX_PORTS`], and parses back to itself; a refusal says what it refused.
pub fn parse_ports(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match synprobe_core::parse_ports(&text) {
        Ok(ports) => {
            assert!(!ports.is_empty() && ports.len() <= MAX_PORTS);
            assert!(ports[0] >= 1);
            assert!(ports.windows(2).all(|w| w[0] < w[1]));
            let again: Vec<String> = ports.iter().map(u16::to_string).collect();
            assert_eq!(
                synprobe_core::parse_ports(&again.join(",")).ok(),
                Some(ports)
            );
        }
        Err(e) => {
            assert!(e.input.chars().count() <= 80);
            assert!(e.to_string().contains("is not a port list"));
        }
    }
}
