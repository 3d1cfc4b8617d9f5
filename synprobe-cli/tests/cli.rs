//! End-to-end tests of the `synprobe` binary: output, JSON contract, exit codes, damaged input.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_synprobe"))
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn shared(name: &str) -> PathBuf {
    let p = repo("../shared/pcaps").join(name);
    assert!(p.exists(), "missing public capture {}", p.display());
    p
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("synprobe runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn demo() -> String {
    repo("examples/demo.pcap").display().to_string()
}

#[test]
fn the_bundled_demo_shows_every_verdict() {
    let o = run(&["replay", &demo()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for (attempt, verdict) in [
        ("198.18.9.9:443 ", "open (high)"),
        ("198.18.9.9:8080 ", "closed (medium)"),
        ("198.18.9.9:22 ", "firewall-rst (high)"),
        ("198.18.9.9:3306 ", "icmp-rejected (high)"),
        ("198.18.9.9:25 ", "filtered (high)"),
        ("198.18.77.7:80 ", "unreachable (high)"),
        ("[2001:db8:9::9]:81 ", "firewall-rst (medium)"),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(attempt))
            .unwrap_or_else(|| panic!("no line for {attempt}:\n{out}"));
        assert!(
            line.contains(verdict),
            "{attempt}: expected {verdict} in {line}"
        );
    }
    assert!(
        out.contains("RST forged by a firewall at hop 4 in front of the host at hop 8"),
        "{out}"
    );
    assert!(out.contains("Summary by server:port"));
}

#[test]
fn json_lines_follow_the_documented_schema() {
    let o = run(&["replay", "--json", "--trace", &demo()]);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect();
    let (summary, attempts) = lines.split_last().expect("a summary line");
    assert_eq!(attempts.len(), 8);
    for a in attempts {
        assert_eq!(a["schema_version"], 1);
        assert_eq!(a["type"], "attempt");
        for key in [
            "time",
            "client",
            "client_port",
            "target",
            "port",
            "verdict",
            "confidence",
            "headline",
            "rejecter",
            "target_hops",
            "rtt_ms",
            "syns",
            "replies",
            "closure",
            "evidence",
            "next_steps",
            "packets",
        ] {
            assert!(a.get(key).is_some(), "attempt record lacks {key}: {a}");
        }
        assert!(
            !a["packets"].as_array().expect("packets").is_empty(),
            "--trace fills packets"
        );
        for e in a["evidence"].as_array().expect("evidence") {
            assert!(e["code"].is_string() && e["observed"].is_string() && e["implies"].is_string());
        }
    }
    let fw = attempts.iter().find(|a| a["port"] == 22).expect("port 22");
    assert_eq!(fw["verdict"], "firewall-rst");
    assert_eq!(fw["rejecter"]["hops"], 4);
    assert_eq!(fw["rejecter"]["is_target"], false);
    assert_eq!(fw["target_hops"], 8);
    let host_rule = attempts.iter().find(|a| a["port"] == 81).expect("port 81");
    assert_eq!(host_rule["rejecter"]["is_target"], true);
    assert_eq!(host_rule["rejecter"]["hops"], host_rule["target_hops"]);
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["schema_version"], 1);
    assert_eq!(summary["attempts"], 8);
    assert_eq!(summary["totals"]["by_verdict"]["firewall-rst"], 2);
    assert_eq!(summary["error"], serde_json::Value::Null);
    assert!(summary["servers"].as_array().expect("servers").len() >= 8);
}

#[test]
fn a_damaged_file_is_analysed_up_to_the_damage_then_exits_65() {
    let f = shared("sv_DER-incomplete-header_corrupt.pcap");
    let o = run(&["replay", f.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(65));
    assert!(
        stdout(&o).contains("open (high)"),
        "the handshake before the damage is printed"
    );
    let err = stderr(&o);
    assert!(
        err.contains("offset 5035") && err.contains("4325376"),
        "{err}"
    );
    let o = run(&["replay", "--json", f.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(65));
    let last: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().last().expect("summary")).expect("json");
    assert_eq!(last["error"]["offset"], 5035);
}

#[test]
fn unreadable_inputs_exit_66_with_a_clear_message() {
    let o = run(&[
        "replay",
        shared("libpcap_pcap-invalid-version-1.pcap")
            .to_str()
            .expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(66));
    assert!(
        stderr(&o).contains("unsupported pcap version 1.4"),
        "{}",
        stderr(&o)
    );
    let o = run(&["replay", "/nonexistent/capture.pcap"]);
    assert_eq!(o.status.code(), Some(66));
    assert!(
        stderr(&o).contains("cannot open /nonexistent/capture.pcap"),
        "{}",
        stderr(&o)
    );
    let dir = std::env::temp_dir().join(format!("synprobe-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").expect("write");
    let o = run(&["replay", empty.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(66));
    assert!(stderr(&o).contains("empty"), "{}", stderr(&o));
    let text = dir.join("notes.pcap");
    std::fs::write(&text, b"GET / HTTP/1.1\r\n").expect("write");
    let o = run(&["replay", text.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(66));
    assert!(
        stderr(&o).contains("not a pcap or pcapng file"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["replay"]).status.code(), Some(2));
    assert_eq!(run(&["replay", "--bogus", &demo()]).status.code(), Some(2));
    assert_eq!(
        run(&["replay", "--timeout", "-1", &demo()]).status.code(),
        Some(2)
    );
    let o = run(&["replay", "--filter", "port port", &demo()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not a valid BPF expression"),
        "{}",
        stderr(&o)
    );
    let help = run(&["replay", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Exit codes:") && stdout(&help).contains("65"));
}

#[test]
fn filter_host_and_port_select_attempts() {
    let count = |args: &[&str]| {
        let o = run(args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
            .lines()
            .filter(|l| l.contains(" → ") && l.contains("("))
            .count()
    };
    let d = demo();
    assert_eq!(count(&["replay", &d]), 8);
    assert_eq!(count(&["replay", "--filter", "ip6", &d]), 2);
    assert_eq!(count(&["replay", "--port", "22", &d]), 1);
    assert_eq!(count(&["replay", "--host", "198.18.77.7", &d]), 1);
}

#[test]
fn stdin_is_read_with_a_dash() {
    let mut child = bin()
        .args(["replay", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let bytes = std::fs::read(repo("examples/demo.pcap")).expect("demo");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&bytes)
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("firewall-rst (high)"));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let f = shared("ndpi_synscan.pcap");
    let mut child = bin()
        .args(["replay", "--trace", f.to_str().expect("path")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("one line");
    // The reader is dropped here: the pipe closes while synprobe still writes.
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The trace's Info column is tshark's, field for field (tshark comes from Debian's package; CI installs it).
#[test]
fn trace_info_matches_tshark() {
    let Ok(probe) = Command::new("tshark").arg("--version").output() else {
        assert!(
            std::env::var("CI").is_err(),
            "tshark is installed in CI (scripts/install-deps.sh)"
        );
        eprintln!("SKIP trace_info_matches_tshark: tshark is not installed");
        return;
    };
    assert!(probe.status.success());
    for name in [
        "nmap_tcpconnect_T1_synack.cap",
        "nmap_tcpconnect_T2_rst.cap",
        "sv_kill_router6_icmpv6_unreach.pcap",
    ] {
        let f = shared(name);
        let t = Command::new("tshark")
            .args([
                "-n",
                "-r",
                f.to_str().expect("path"),
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "_ws.col.Info",
            ])
            .output()
            .expect("tshark runs");
        let tshark: std::collections::HashMap<String, String> = String::from_utf8_lossy(&t.stdout)
            .lines()
            .filter_map(|l| {
                l.split_once('\t')
                    .map(|(n, i)| (n.to_string(), i.trim().to_string()))
            })
            .collect();
        let o = run(&["replay", "--json", "--trace", f.to_str().expect("path")]);
        let mut compared = 0;
        for line in stdout(&o).lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            for p in v["packets"].as_array().into_iter().flatten() {
                let frame = p["frame"].to_string();
                let ours = p["summary"].as_str().expect("summary");
                let theirs = tshark.get(&frame).expect("tshark has the frame");
                // tshark prefixes analysis flags such as "[TCP Retransmission]" or "[TCP Port numbers reused]".
                let theirs_core = theirs
                    .rsplit("] ")
                    .next()
                    .filter(|_| theirs.starts_with('['))
                    .unwrap_or(theirs);
                assert!(
                    ours.contains(theirs_core),
                    "{name} frame {frame}:\n ours:   {ours}\n tshark: {theirs}"
                );
                compared += 1;
            }
        }
        assert!(compared >= 5, "{name}: compared {compared} frames");
    }
}
