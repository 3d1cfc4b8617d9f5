//! `synprobe replay` on a generated capture reports exactly the generator's ground truth: attempts by verdict,
//! retransmitted attempts and retransmissions, replies, strays, resets of established connections.

use synprobe_bench::{generate, Config, Counts};
use synprobe_core::capture::CaptureReader;
use synprobe_core::{replay, ReplayOptions, Summary};

fn replayed(bytes: &[u8]) -> Counts {
    let mut reader = CaptureReader::new(bytes).expect("a generated capture reads");
    let mut summary = Summary::default();
    let (stats, damage) = replay(
        &mut reader,
        &ReplayOptions::default(),
        |report, _| summary.add(report),
        |_| {},
    )
    .expect("replay");
    assert!(
        damage.is_none(),
        "the generated file is damaged: {damage:?}"
    );
    assert_eq!(
        (
            stats.frames.not_ip,
            stats.frames.malformed,
            stats.frames.fragments
        ),
        (0, 0, 0),
        "every generated frame parses"
    );
    let totals = summary.totals();
    Counts {
        frames: stats.frames.frames,
        attempts: totals.attempts,
        by_verdict: totals.by_verdict,
        retransmitted_attempts: totals.retransmitted,
        retransmissions: stats.matching.retransmissions,
        replies: stats.matching.replies,
        stray_tcp: stats.matching.stray_tcp,
        stray_icmp: stats.matching.stray_icmp,
        other_resets: stats.matching.other_resets,
        late_replies: stats.matching.late_replies,
        rebuilt_from_icmp: stats.matching.rebuilt_from_icmp,
        evicted: stats.matching.evicted,
    }
}

#[test]
fn replay_reports_exactly_the_generated_truth() {
    let config = Config {
        packets: 20_000,
        seed: 7,
        ..Config::default()
    };
    let mut bytes = Vec::new();
    let truth = generate(&config, &mut bytes).expect("generate");
    // The file holds every kind of outcome and stray, so the comparison below means something.
    let c = &truth.counts;
    assert_eq!(
        c.by_verdict.len(),
        6,
        "every verdict occurs: {:?}",
        c.by_verdict
    );
    assert!(
        c.retransmitted_attempts > 0 && c.stray_tcp > 0 && c.stray_icmp > 0 && c.other_resets > 0
    );
    assert!(
        truth.mix.minimal_quotes > 0 && truth.mix.ipv6_attempts > 0 && truth.mix.ecn_attempts > 0
    );
    assert_eq!(replayed(&bytes), truth.counts);
}

#[test]
fn another_seed_and_rate_also_matches() {
    let config = Config {
        packets: 8_000,
        seed: 99,
        packets_per_sec: 2_000,
        ..Config::default()
    };
    let mut bytes = Vec::new();
    let truth = generate(&config, &mut bytes).expect("generate");
    assert_eq!(replayed(&bytes), truth.counts);
}
