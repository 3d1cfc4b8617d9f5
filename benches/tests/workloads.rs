//! `synprobe replay` on the independent workloads of `benches/gen-workloads.py` (a Python generator that shares
//! no code with synprobe) reports exactly their ground truth: a masscan-like scan and a datacenter tap.
//! Small sizes here; `benches/run-hyperfine.sh` checks the full-size files the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use synprobe_bench::replay_summary;
use synprobe_core::capture::CaptureReader;

/// The counts `synprobe replay` reports, under the names of its JSON summary (and of the truth files).
fn replayed(path: &Path) -> Value {
    let mut reader = CaptureReader::open(path).expect("a generated capture opens");
    let (stats, summary) = replay_summary(&mut reader);
    let totals = summary.totals();
    let m = &stats.matching;
    json!({
        "frames": stats.frames.frames,
        "not_ip": stats.frames.not_ip,
        "malformed": stats.frames.malformed,
        "attempts": totals.attempts,
        "by_verdict": totals.by_verdict,
        "retransmitted_attempts": totals.retransmitted,
        "retransmissions": m.retransmissions,
        "replies": m.replies,
        "stray_tcp": m.stray_tcp,
        "stray_icmp": m.stray_icmp,
        "other_resets": m.other_resets,
        "late_replies": m.late_replies,
        "rebuilt_from_icmp": m.rebuilt_from_icmp,
        "evicted": m.evicted,
    })
}

/// Generate `args` into a fresh directory; `None` (after a visible SKIP) when python3 is missing outside CI.
fn generate(name: &str, args: &[&str]) -> Option<(PathBuf, Value)> {
    let dir =
        std::env::temp_dir().join(format!("synprobe-workloads-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcap = dir.join(format!("{name}.pcap"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("gen-workloads.py");
    let out = match Command::new("python3")
        .arg(&script)
        .args(args)
        .arg(&pcap)
        .output()
    {
        Ok(o) => o,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            println!("SKIP {name}: python3 cannot run ({e}); install python3 to run this test");
            return None;
        }
        Err(e) => panic!("python3 is needed under CI=true: {e}"),
    };
    assert!(
        out.status.success(),
        "gen-workloads.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth: Value = serde_json::from_slice(
        &std::fs::read(pcap.with_extension("truth.json")).expect("truth file"),
    )
    .expect("truth json");
    Some((pcap, truth["counts"].clone()))
}

fn check(name: &str, args: &[&str], verdicts: usize) {
    let Some((pcap, truth)) = generate(name, args) else {
        return;
    };
    let got = replayed(&pcap);
    let want = truth.as_object().expect("counts");
    assert!(want.len() >= 10, "{want:?}");
    for (k, v) in want {
        assert!(
            got.get(k).is_some(),
            "the truth has a count replay does not report: {k}"
        );
        assert_eq!(&got[k], v, "{name}: {k}");
    }
    assert_eq!(
        want["by_verdict"].as_object().map(|m| m.len()),
        Some(verdicts),
        "{want:?}"
    );
    let _ = std::fs::remove_dir_all(pcap.parent().expect("dir"));
}

#[test]
fn a_scan_of_distinct_addresses_matches_its_truth() {
    check("scan", &["scan", "--syns", "20000", "--seed", "3"], 3);
}

#[test]
fn a_datacenter_tap_matches_its_truth() {
    check("mesh", &["mesh", "--frames", "60000", "--seed", "3"], 5);
}
