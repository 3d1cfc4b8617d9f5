//! `synprobe replay` on a generated capture reports exactly the generator's ground truth: attempts by verdict,
//! retransmitted attempts and retransmissions, replies, strays, resets of established connections.

use synprobe_bench::{generate, replay_summary, Config, Counts};
use synprobe_core::capture::CaptureReader;
use synprobe_core::{replay, ReplayOptions};

fn replayed(bytes: &[u8]) -> Counts {
    let mut reader = CaptureReader::new(bytes).expect("a generated capture reads");
    let (stats, summary) = replay_summary(&mut reader);
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

/// Every report, in order, and every counter of `replay` and of the two-threaded `replay_parallel` (what the
/// CLI runs), on a generated capture with every outcome, enough attempts to fill many batches between the
/// threads, and a slow rate: 40 s of capture time, so that RST verdicts held back for a baseline are released
/// by the passing of time (the analyzer's 10 s lookahead), not only by the hold-back cap or the end of input.
#[test]
fn replay_parallel_gives_exactly_what_replay_gives() {
    use synprobe_core::{replay_parallel, Report};
    let config = Config {
        packets: 20_000,
        seed: 11,
        packets_per_sec: 500,
        ..Config::default()
    };
    let mut bytes = Vec::new();
    generate(&config, &mut bytes).expect("generate");
    let run = |parallel: bool| {
        let mut reader = CaptureReader::new(&bytes[..]).expect("reads");
        let mut reports: Vec<(Report, Option<synprobe_core::Timestamp>)> = Vec::new();
        let mut progress = Vec::new();
        let options = ReplayOptions::default();
        let on_report =
            |r: &Report, s: &synprobe_core::ReplayStats| reports.push((r.clone(), s.first_ts));
        let (stats, damage) = if parallel {
            replay_parallel(&mut reader, &options, on_report, |b| progress.push(b))
        } else {
            replay(&mut reader, &options, on_report, |b| progress.push(b))
        }
        .expect("replay");
        assert!(damage.is_none());
        let stats = serde_json::to_value(stats).expect("stats serialize");
        (reports, stats, progress)
    };
    let (one, one_stats, one_progress) = run(false);
    let (two, two_stats, two_progress) = run(true);
    assert!(one.len() > 3_000, "{} attempts", one.len());
    assert_eq!(one.len(), two.len());
    for (i, (a, b)) in one.iter().zip(&two).enumerate() {
        assert_eq!(a, b, "report {i} differs");
    }
    assert_eq!(one_stats, two_stats);
    assert_eq!(one_progress, two_progress);
}
