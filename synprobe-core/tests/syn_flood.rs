//! A SYN flood in a capture keeps the engine's memory bounded: the table of attempts in flight stops at its cap,
//! the oldest attempts are evicted, and every eviction is counted and reported.
//!
//! 1,000,000 distinct unanswered SYNs in a release build (`cargo test --release`); 300,000 in a debug build
//! (about 3 s there, where a million would take 11 s). The peak memory of `synprobe replay` on a 2,000,000-SYN
//! flood is measured in fuzz/README.md.

use synprobe_core::analysis::AnalyzerConfig;
use synprobe_core::build::{icmp_error, IpSpec, QuoteLen, TcpSpec};
use synprobe_core::matcher::MatchConfig;
use synprobe_core::{Closure, Duration, Engine, EngineConfig, LinkType, Timestamp, Verdict};

const CAP: usize = 10_000;

fn syn_count() -> u32 {
    if cfg!(debug_assertions) {
        300_000
    } else {
        1_000_000
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        matcher: MatchConfig {
            max_in_flight: CAP,
            ..MatchConfig::default()
        },
        analyzer: AnalyzerConfig::default(),
    }
}

/// Distinct SYNs made from one template (raw IPv4, Linux options): the n-th has its own source address, port and
/// ISN, so every SYN opens its own attempt. The parser does not check checksums.
struct Flood {
    frame: Vec<u8>,
}

impl Flood {
    fn new() -> Self {
        let ip = IpSpec::new(
            "10.0.0.1".parse().expect("address"),
            "198.18.9.9".parse().expect("address"),
        );
        let frame = TcpSpec::syn(1024, 443, 0x5eed)
            .linux_options()
            .emit(&ip)
            .expect("SYN");
        Flood { frame }
    }

    fn nth(&mut self, n: u32) -> &[u8] {
        let (host, port) = (n / 60_000, (n % 60_000) as u16);
        self.frame[12..16].copy_from_slice(&(0x0a00_0000 + host).to_be_bytes());
        self.frame[20..22].copy_from_slice(&(1024 + port).to_be_bytes());
        self.frame[24..28].copy_from_slice(&n.to_be_bytes());
        &self.frame
    }
}

#[test]
fn a_syn_flood_is_held_to_the_cap_and_evictions_are_counted() {
    let config = config();
    let bound = CAP + config.analyzer.max_pending;
    let mut engine = Engine::new(config).expect("valid settings");
    let mut flood = Flood::new();
    let start = Timestamp(1_700_000_000_000_000_000);
    let (mut reports, mut evicted_reports, mut most_open) = (0u64, 0u64, 0usize);
    let mut take = |engine: &mut Engine| {
        while let Some(r) = engine.pop_report() {
            reports += 1;
            if r.attempt.closure == Closure::Evicted {
                evicted_reports += 1;
            }
            assert_eq!(r.judgement.verdict, Verdict::Filtered);
        }
    };
    let n = syn_count();
    for i in 0..n {
        // 10 µs apart: 400,000 SYNs arrive within one reply window, 40 times the cap.
        let ts = start.plus(Duration(i64::from(i) * 10_000));
        let frame = flood.nth(i);
        engine
            .push_frame(LinkType::RAW, ts, frame, frame.len() as u32)
            .expect("a SYN parses");
        most_open = most_open.max(engine.open_attempts());
        assert!(most_open <= bound, "{most_open} attempts open");
        take(&mut engine);
    }
    engine.finish();
    take(&mut engine);

    let m = engine.match_stats();
    assert_eq!((m.syns, m.attempts), (u64::from(n), u64::from(n)));
    assert_eq!(
        reports, m.attempts,
        "every attempt reported, evicted or not"
    );
    assert_eq!(m.peak_in_flight, CAP as u64);
    assert!(
        m.evicted > u64::from(n) / 2,
        "most attempts were pushed out early: {}",
        m.evicted
    );
    assert_eq!(evicted_reports, m.evicted);
    assert_eq!(engine.open_attempts(), 0);
}

/// Regression (found by the `engine` fuzz target): attempts rebuilt from ICMP errors quoting SYNs that were never
/// captured did not count against the cap, so a flood of such errors grew the table without bound.
#[test]
fn an_icmp_flood_quoting_distinct_syns_is_held_to_the_cap() {
    let cap = 100;
    let mut engine = Engine::new(EngineConfig {
        matcher: MatchConfig {
            max_in_flight: cap,
            ..MatchConfig::default()
        },
        analyzer: AnalyzerConfig::default(),
    })
    .expect("valid settings");
    let client = IpSpec::new(
        "198.18.0.2".parse().expect("address"),
        "198.18.9.9".parse().expect("address"),
    );
    let router = IpSpec::new(
        "198.18.4.1".parse().expect("address"),
        "198.18.0.2".parse().expect("address"),
    );
    let n = 5_000u16;
    for port in 0..n {
        let syn = TcpSpec::syn(10_000 + port, 443, 1)
            .emit(&client)
            .expect("SYN");
        let error = icmp_error(&router, 3, 13, &syn, QuoteLen::Minimal).expect("ICMP");
        let ts = Timestamp(i64::from(port) * 1_000);
        engine
            .push_frame(LinkType::RAW, ts, &error, error.len() as u32)
            .expect("an ICMP error parses");
        assert!(engine.match_stats().peak_in_flight <= cap as u64);
        while engine.pop_report().is_some() {}
    }
    engine.finish();
    let m = engine.match_stats();
    assert_eq!(m.rebuilt_from_icmp, u64::from(n));
    assert_eq!(m.evicted, u64::from(n) - cap as u64);
}
