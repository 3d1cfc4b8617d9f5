//! End-to-end tests of the `synprobe` binary: output, JSON contract, exit codes, damaged input.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use synprobe_core::testing::pcaps;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_synprobe"))
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn shared(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    assert!(p.exists(), "missing public capture {}", p.display());
    p
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("synprobe runs")
}

/// For arguments that must be refused before any socket is opened: run without privilege (as nobody when the
/// tests run as root), so that a regression fails to open a raw socket instead of sending a packet anywhere.
fn run_refused(args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = bin();
    if nix_is_root() {
        cmd.uid(65534).gid(65534);
    }
    cmd.args(args).output().expect("synprobe runs")
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
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
    let o = run(&["replay", "--json", "--trace", "--explain", &demo()]);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect();
    let (summary, attempts) = lines.split_last().expect("a summary line");
    assert_eq!(attempts.len(), 8);
    for a in attempts {
        assert_eq!(a["schema_version"], 2);
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

    // Without --explain: the same records, findings as data and no sentences.
    let o = run(&["replay", "--json", "--trace", &demo()]);
    assert_eq!(o.status.code(), Some(0));
    let plain: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect();
    assert_eq!(plain.len(), lines.len());
    for (p, a) in plain.iter().zip(&lines) {
        for key in ["headline", "next_steps"] {
            assert!(p.get(key).is_none(), "{key} without --explain: {p}");
        }
        for (pe, ae) in p["evidence"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .zip(a["evidence"].as_array().unwrap_or(&Vec::new()))
        {
            assert!(pe.get("observed").is_none() && pe.get("implies").is_none());
            let mut ae = ae.clone();
            if let Some(o) = ae.as_object_mut() {
                o.remove("observed");
                o.remove("implies");
            }
            assert_eq!(pe, &ae, "the same finding, less the words");
        }
        assert_eq!(p["verdict"], a["verdict"]);
    }
    let fw = plain.iter().find(|a| a["port"] == 22).expect("port 22");
    assert_eq!(fw["evidence"][0]["code"], "rst-closer-than-synack");
    assert_eq!(fw["evidence"][0]["rst_hops"], 4);
    assert_eq!(fw["evidence"][0]["host_hops"]["min"], 8);
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["schema_version"], 2);
    assert_eq!(summary["attempts"], 8);
    assert_eq!(summary["totals"]["by_verdict"]["firewall-rst"], 2);
    assert_eq!(summary["error"], serde_json::Value::Null);
    assert!(summary["servers"].as_array().expect("servers").len() >= 8);
}

/// `--summary-rows K` keeps the K busiest server:ports and one row for the rest; rows and rest add up to the
/// totals, in JSON and in the table.
#[test]
fn summary_rows_keeps_the_busiest_and_counts_the_rest() {
    let o = run(&["replay", "--json", "--summary-rows", "2", &demo()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let last = stdout(&o).lines().last().expect("summary").to_string();
    let summary: serde_json::Value = serde_json::from_str(&last).expect("json");
    let rows = summary["servers"].as_array().expect("servers");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[..2].iter().all(|r| r["target"].is_string()));
    assert_eq!(
        (&rows[2]["target"], &rows[2]["port"]),
        (&serde_json::Value::Null, &serde_json::Value::Null)
    );
    let attempts: u64 = rows
        .iter()
        .map(|r| r["attempts"].as_u64().expect("n"))
        .sum();
    assert_eq!(attempts, 8);
    assert_eq!(summary["totals"]["attempts"], 8);
    let o = run(&["replay", "--summary-rows", "0", &demo()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("(other server:ports)"),
        "{}",
        stdout(&o)
    );
    let help = stdout(&run(&["replay", "--help"]));
    assert!(help.contains("--summary-rows <K>"), "{help}");
}

/// `--max-in-flight N` bounds the attempts kept open: past it the one due first is judged early and counted as
/// evicted, and every attempt is still reported once. Zero is refused before reading anything.
#[test]
fn max_in_flight_bounds_the_open_attempts() {
    let o = run(&["replay", "--json", &demo()]);
    let last = stdout(&o).lines().last().expect("summary").to_string();
    let whole: serde_json::Value = serde_json::from_str(&last).expect("json");
    assert_eq!(whole["evicted"], 0);
    let o = run(&["replay", "--json", "--max-in-flight", "1", &demo()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let summary: serde_json::Value =
        serde_json::from_str(lines.last().expect("summary")).expect("json");
    assert!(summary["evicted"].as_u64().expect("n") > 0, "{summary}");
    // An evicted attempt's later retransmission opens an attempt of its own: never fewer than before.
    let attempts = summary["attempts"].as_u64().expect("n");
    assert!(
        attempts >= whole["attempts"].as_u64().expect("n"),
        "{summary}"
    );
    assert_eq!(lines.len() as u64 - 1, attempts);
    let o = run(&["replay", "--max-in-flight", "0", &demo()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--max-in-flight"), "{}", stderr(&o));
}

#[test]
fn a_damaged_file_is_analysed_up_to_the_damage_then_exits_65() {
    let Some(dir) = pcaps("a_damaged_file_is_analysed_up_to_the_damage_then_exits_65") else {
        return;
    };
    let f = shared(&dir, "sv_DER-incomplete-header_corrupt.pcap");
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
    let Some(dir) = pcaps("unreadable_inputs_exit_66_with_a_clear_message") else {
        return;
    };
    let o = run(&[
        "replay",
        shared(&dir, "libpcap_pcap-invalid-version-1.pcap")
            .to_str()
            .expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(66));
    assert!(
        stderr(&o).contains("unsupported pcap version 1.4"),
        "{}",
        stderr(&o)
    );
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
    // Settings the core refuses (checked before any socket is opened, so this needs no privilege).
    let o = run(&["127.0.0.1", "9", "--interface", ""]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid configuration: prober.interface must not be empty"),
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
fn a_closed_pipe_is_not_an_error_and_ends_the_replay() {
    let Some(dir) = pcaps("a_closed_pipe_is_not_an_error_and_ends_the_replay") else {
        return;
    };
    // 760 KB of trace: more than synprobe's output buffer and the pipe's hold, so writing fails part-way.
    let f = shared(&dir, "ndpi_synscan.pcap");
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
    // It stops there, as tcpdump does on SIGPIPE, instead of reading the rest of the input for nobody. Fed a
    // 4 MB capture on stdin, it has read only a part when its output closes: the rest cannot be written to it.
    // (Before, it read its input to the end with no one to write for.)
    let capture = answered_syns(30_000);
    assert!(capture.len() > 4_000_000);
    let mut child = bin()
        .args(["replay", "--trace", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&capture));
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("one line");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let fed = writer.join().expect("writer");
    assert_eq!(
        fed.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::BrokenPipe),
        "synprobe read the whole input after its output closed"
    );
}

/// A capture of `n` attempts 5 ms apart, each answered by a SYN-ACK 10 ms later.
fn answered_syns(n: u16) -> Vec<u8> {
    use synprobe_core::build::{IpSpec, TcpSpec, Timeline};
    let client = "198.18.0.2".parse().expect("addr");
    let server = "198.18.9.9".parse().expect("addr");
    let mut t = Timeline::starting_at(1_700_000_000);
    for i in 0..n {
        let syn = TcpSpec::syn(10_000 + i, 443, u32::from(i)).linux_options();
        let at = f64::from(i) * 5.0;
        t.at(at, syn.emit(&IpSpec::new(client, server)).expect("syn"));
        let reply = TcpSpec::syn_ack_to(&syn, 7).emit(&IpSpec::new(server, client).ttl(57));
        t.at(at + 10.0, reply.expect("syn-ack"));
    }
    t.write_pcap(Vec::new()).expect("pcap")
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
    let Some(dir) = pcaps("trace_info_matches_tshark") else {
        return;
    };
    for name in [
        "nmap_tcpconnect_T1_synack.cap",
        "nmap_tcpconnect_T2_rst.cap",
        "sv_kill_router6_icmpv6_unreach.pcap",
    ] {
        let f = shared(&dir, name);
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

/// Run `args` with stdin, stdout and stderr on a pseudo-terminal (util-linux `script`), stdout and stderr
/// merged as a terminal shows them. `None` when `script` is missing.
fn on_terminal(shell_command: &str, env: &[(&str, &str)]) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!(
            "SKIP (part): util-linux `script` is not installed, no pseudo-terminal to test with"
        );
        return None;
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qec", shell_command, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("script runs");
    if !o.status.success() && stderr(&o).contains("pseudo-terminal") {
        eprintln!("SKIP (part): no pseudo-terminal here: {}", stderr(&o));
        return None;
    }
    Some(stdout(&o))
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn bin_path() -> String {
    sh_quote(env!("CARGO_BIN_EXE_synprobe"))
}

/// The backticked names in the first column of the first table after `heading` in docs/json.md.
fn documented_fields(doc: &str, heading: &str) -> Vec<String> {
    let rest = &doc[doc
        .find(heading)
        .unwrap_or_else(|| panic!("docs/json.md has no heading {heading}"))..];
    let mut fields = Vec::new();
    let mut in_table = false;
    for line in rest.lines().skip(1) {
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        in_table = true;
        let first = line.split('|').nth(1).unwrap_or("").trim();
        if first == "field" || first.starts_with("---") {
            continue;
        }
        fields.extend(
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .filter(|f| !f.is_empty()),
        );
    }
    assert!(fields.len() >= 3, "{heading}: too few fields: {fields:?}");
    fields
}

/// The fields `--explain` adds: `observed` and `implies` in each evidence item, the others in the record.
fn assert_explained(what: &str, v: &serde_json::Value, fields: &[String]) {
    for f in fields {
        if f == "observed" || f == "implies" {
            for e in v["evidence"].as_array().expect("evidence") {
                assert!(e[f].is_string(), "{what}'s evidence lacks `{f}`: {v}");
            }
        } else {
            assert!(v.get(f).is_some(), "{what} lacks the field `{f}`: {v}");
        }
    }
}

fn assert_fields(what: &str, v: &serde_json::Value, fields: &[String]) {
    for f in fields {
        assert!(
            v.get(f).is_some(),
            "{what} lacks the documented field `{f}`: {v}"
        );
    }
}

#[test]
fn every_field_docs_json_lists_for_replay_is_present() {
    let doc = std::fs::read_to_string(repo("docs/json.md")).expect("docs/json.md");
    let attempt_fields = documented_fields(&doc, "## `\"type\": \"attempt\"`");
    let packet_fields = documented_fields(&doc, "### `packets[]`");
    let summary_fields = documented_fields(&doc, "## `\"type\": \"summary\"`");
    let row_example = doc
        .lines()
        .find_map(|l| l.strip_prefix("A row: `"))
        .and_then(|l| l.split('`').next())
        .expect("docs/json.md gives an example row");
    let row: serde_json::Value =
        serde_json::from_str(row_example).expect("the example row is JSON");
    let row_fields: Vec<String> = row.as_object().expect("object").keys().cloned().collect();
    let explain_fields = documented_fields(&doc, "### With `--explain`");
    for key in ["schema_version", "type", "evidence", "packets", "closure"] {
        assert!(
            attempt_fields.iter().any(|f| f == key),
            "{key}: {attempt_fields:?}"
        );
    }
    for key in ["headline", "next_steps", "observed", "implies"] {
        assert!(
            explain_fields.iter().any(|f| f == key),
            "{key}: {explain_fields:?}"
        );
    }
    for key in ["file", "not_ip", "stray_icmp", "totals", "servers", "error"] {
        assert!(
            summary_fields.iter().any(|f| f == key),
            "{key}: {summary_fields:?}"
        );
    }
    assert!(
        packet_fields.iter().any(|f| f == "flow_label"),
        "{packet_fields:?}"
    );

    let o = run(&["replay", "--json", "--trace", "--explain", &demo()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let (summary, attempts) = lines.split_last().expect("summary");
    for a in attempts {
        assert_fields("an attempt", a, &attempt_fields);
        assert_explained("an attempt", a, &explain_fields);
        assert!(["timed-out", "end-of-input", "superseded", "evicted"]
            .contains(&a["closure"].as_str().expect("closure")));
        assert!(
            a["time"].as_f64().expect("time") > 1.7e9,
            "seconds since the epoch"
        );
        assert!(a["next_steps"]
            .as_array()
            .expect("next_steps")
            .iter()
            .all(|s| s.is_string()));
        for p in a["packets"].as_array().expect("packets") {
            assert_fields("a packet", p, &packet_fields);
            assert!(["syn", "reply", "ours", "other"].contains(&p["role"].as_str().expect("role")));
        }
    }
    let syns: u64 = attempts
        .iter()
        .map(|a| a["syns"].as_u64().expect("syns"))
        .sum();
    assert_eq!(syns, 10, "8 attempts, the filtered one sent 3 SYNs");
    let v6 = attempts.iter().find(|a| a["port"] == 81).expect("port 81");
    assert!(v6["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .any(|p| p["flow_label"].is_u64()));
    assert_fields("the summary", summary, &summary_fields);
    assert_eq!(summary["file"], demo());
    assert_eq!(summary["frames"], 17);
    assert_eq!(summary["retransmissions"], 2);
    assert_fields("the totals row", &summary["totals"], &row_fields);
    for r in summary["servers"].as_array().expect("servers") {
        assert_fields("a server row", r, &row_fields);
    }
    // The damaged file's error object.
    let Some(dir) = pcaps("every_field_docs_json_lists_for_replay_is_present") else {
        return;
    };
    let f = shared(&dir, "sv_DER-incomplete-header_corrupt.pcap");
    let o = run(&["replay", "--json", f.to_str().expect("path")]);
    let last: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().last().expect("summary")).expect("json");
    assert!(last["error"]["message"].is_string(), "{last}");
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Run synprobe live against 127.0.0.1 inside a fresh network namespace (only its own loopback exists), as
/// root. `None` (after saying SKIP) when that is impossible outside CI.
fn live_on_private_loopback(args: &str) -> Option<Output> {
    let skip = |why: String| {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "live tests must run in CI (as root): {why}"
        );
        eprintln!("SKIP (live part): {why}; run as root to include it");
        None
    };
    if effective_uid() != Some(0) {
        return skip("not root".into());
    }
    let o = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            &format!("ip link set lo up && exec {} {args}", bin_path()),
        ])
        .output();
    match o {
        Ok(o) if !stderr(&o).contains("unshare failed") => Some(o),
        Ok(o) => skip(format!("cannot make a network namespace: {}", stderr(&o))),
        Err(e) => skip(format!("cannot run unshare: {e}")),
    }
}

#[test]
fn every_field_docs_json_lists_for_live_probes_is_present_and_colour_works_live() {
    let doc = std::fs::read_to_string(repo("docs/json.md")).expect("docs/json.md");
    let probe_fields = documented_fields(&doc, "## `synprobe HOST PORTS --json`");
    let packet_fields = documented_fields(&doc, "### `packets[]`");
    for key in [
        "schema_version",
        "type",
        "source",
        "path",
        "probes_sent",
        "time_to_verdict_ms",
    ] {
        assert!(
            probe_fields.iter().any(|f| f == key),
            "{key}: {probe_fields:?}"
        );
    }
    let explain_fields = documented_fields(&doc, "### With `--explain`");
    let Some(o) = live_on_private_loopback("127.0.0.1 9 --json --explain --color always") else {
        return;
    };
    assert_eq!(o.status.code(), Some(10), "closed: {}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains('\x1b'), "JSON is never coloured: {out}");
    let r: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_fields("a probe report", &r, &probe_fields);
    assert_explained("a probe report", &r, &explain_fields);
    assert_eq!(r["schema_version"], 2);
    assert_eq!(r["type"], "probe");
    assert_eq!(r["host"], serde_json::Value::Null, "an address, not a name");
    assert_eq!(r["source"], "127.0.0.1");
    assert_eq!(r["verdict"], "closed");
    assert!(r["probes_sent"].as_u64().expect("probes_sent") >= 1);
    assert!(
        r["time_to_verdict_ms"]
            .as_f64()
            .expect("time_to_verdict_ms")
            >= 0.0
    );
    for hop in r["path"].as_array().expect("path") {
        assert!(hop["ttl"].is_u64() && hop.get("addr").is_some() && hop["answer"].is_string());
    }
    let packets = r["packets"].as_array().expect("packets");
    assert!(!packets.is_empty());
    for p in packets {
        assert_fields("a live packet", p, &packet_fields);
    }

    // The human report, coloured on request; -vv names each packet's step of the plan.
    let o = live_on_private_loopback("127.0.0.1 9 --color always -vv").expect("ran once already");
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("\x1b[1m\x1b[33mclosed\x1b[0m"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("synprobe: debug: ") && err.contains("sent main SYN"),
        "{err}"
    );
    assert!(err.contains("now uid 65534"), "{err}");
    let o = live_on_private_loopback("127.0.0.1 9 --color never").expect("ran once already");
    assert!(!stdout(&o).contains('\x1b'), "{}", stdout(&o));
    assert!(stdout(&o).contains("127.0.0.1 port 9: closed [high confidence]"));
    assert_eq!(stderr(&o), "", "nothing on stderr without -v");
}

#[test]
fn bash_completion_is_valid_and_completes_subcommands_and_flags() {
    let o = run(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let script = stdout(&o);
    assert!(script.contains("replay") && script.contains("--quick"));
    let dir = std::env::temp_dir().join(format!("synprobe-compl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("synprobe.bash");
    std::fs::write(&file, &script).expect("write");
    let check = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash runs");
    assert!(check.status.success(), "bash -n: {}", stderr(&check));
    // Load it and ask for completions the way bash does.
    let complete = |words: &str| {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {f}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
                 _synprobe synprobe \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 echo \"${{COMPREPLY[*]}}\"",
                f = sh_quote(file.to_str().expect("path"))
            ))
            .output()
            .expect("bash runs");
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let top = complete("synprobe ''");
    for word in [
        "replay",
        "completions",
        "man",
        "--quick",
        "--json",
        "--color",
    ] {
        assert!(
            top.split_whitespace().any(|w| w == word),
            "{word} in: {top}"
        );
    }
    let replay = complete("synprobe replay --t");
    assert!(
        replay.contains("--trace") && replay.contains("--timeout"),
        "{replay}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zsh_fish_and_other_completions_are_generated() {
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(
            script.contains("quick") && script.contains("replay"),
            "{shell}"
        );
    }
    // Syntax-check where the shell is installed.
    for (shell, flag) in [("zsh", "-n"), ("fish", "--no-execute")] {
        if Command::new(shell).arg("--version").output().is_err() {
            eprintln!("SKIP (part): {shell} is not installed, its completion script is not syntax-checked");
            continue;
        }
        let mut child = Command::new(shell)
            .arg(flag)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("shell runs");
        let script = run(&["completions", shell]).stdout;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&script)
            .expect("write");
        let o = child.wait_with_output().expect("wait");
        assert!(o.status.success(), "{shell} {flag}: {}", stderr(&o));
    }
    assert_eq!(run(&["completions"]).status.code(), Some(2));
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_page_is_roff_documenting_options_commands_and_exit_codes() {
    let o = run(&["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = stdout(&o);
    let th = page
        .lines()
        .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
        .expect("a first request");
    assert!(th.starts_with(".TH synprobe 1"), "{th}");
    assert!(page.is_ascii(), "troff input is ASCII");
    for needle in [
        "\\fB\\-\\-quick\\fR",
        "\\fB\\-\\-color\\fR",
        ".SH \"SYNPROBE REPLAY\"",
        "\\fB\\-\\-filter\\fR",
        ".SH \"EXIT STATUS\"",
        ".TP\n\\fB77\\fR\n",
        ".TP\n\\fB65\\fR\n",
        ".SH ENVIRONMENT",
        "NO_COLOR",
    ] {
        assert!(page.contains(needle), "the man page lacks {needle:?}");
    }
    assert_eq!(run(&["man", "extra"]).status.code(), Some(2));
    // Rendered by groff as `man` would, with every warning on.
    let Ok(mut groff) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIP (part): groff is not installed (apt-get install groff-base), the page is not rendered");
        return;
    };
    groff
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("write");
    let o = groff.wait_with_output().expect("groff");
    assert!(o.status.success());
    assert_eq!(stderr(&o), "", "groff warnings");
    let text = stdout(&o).replace("\u{2010}", "-").replace("\u{2212}", "-");
    // Overstrike bold from grotty: strip "x\bx".
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    // groff justifies lines by widening spaces: compare with runs of spaces folded.
    let plain = plain
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "--quick",
        "EXIT STATUS",
        "77",
        "synprobe replay",
        "client → server:port",
    ] {
        assert!(
            plain.contains(needle),
            "rendered page lacks {needle:?}:\n{plain}"
        );
    }
}

#[test]
fn exit_codes_agree_in_readme_help_and_man_page() {
    let readme = std::fs::read_to_string(repo("README.md")).expect("README.md");
    let readme_rows = readme_table(&readme, "## Exit codes");
    let help = stdout(&run(&["--help"]));
    let help_rows = help_table(&help, "Exit codes:");
    let man = stdout(&run(&["man"]));
    let man_codes: Vec<u8> = man[man.find(".SH \"EXIT STATUS\"").expect("EXIT STATUS")..]
        .lines()
        .filter_map(|l| l.strip_prefix("\\fB")?.strip_suffix("\\fR")?.parse().ok())
        .collect();
    let codes = |rows: &[(u8, String)]| {
        let mut c: Vec<u8> = rows.iter().map(|r| r.0).collect();
        c.sort_unstable();
        c
    };
    let mut man_sorted = man_codes.clone();
    man_sorted.sort_unstable();
    assert_eq!(codes(&readme_rows), codes(&help_rows), "README vs --help");
    assert_eq!(codes(&help_rows), man_sorted, "--help vs the man page");
    assert_eq!(
        codes(&readme_rows),
        vec![0, 2, 10, 11, 12, 13, 14, 65, 66, 68, 74, 77, 130]
    );
    // The verdict codes name the same verdict everywhere.
    for verdict in [
        "closed",
        "firewall-rst",
        "icmp-rejected",
        "unreachable",
        "filtered",
    ] {
        let in_readme = readme_rows
            .iter()
            .find(|r| r.1.contains(&format!("probe: {verdict}")));
        let in_help = help_rows
            .iter()
            .find(|r| r.1.contains(&format!("probe: {verdict}")));
        assert_eq!(
            in_readme.map(|r| r.0),
            in_help.map(|r| r.0),
            "{verdict}: README {in_readme:?}, --help {in_help:?}"
        );
    }
    // `replay --help` carries the same table.
    assert!(stdout(&run(&["replay", "--help"]))
        .contains(&help[help.find("Exit codes:").expect("table")..]));
}

#[test]
fn subcommands_leave_replay_and_the_probe_arguments_alone() {
    let o = run(&["replay", "--color", "never", &demo()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("firewall-rst (high)"));
    // A probe still needs both HOST and PORTS.
    let o = run_refused(&["198.18.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("<PORTS>"), "{}", stderr(&o));
    assert_eq!(run_refused(&[]).status.code(), Some(2));
    // Probe flags do not mix with subcommands.
    assert_eq!(run_refused(&["--quick", "man"]).status.code(), Some(2));
}

fn has_escape(s: &str) -> bool {
    s.contains("\x1b[")
}

#[test]
fn colour_follows_the_flag_no_color_and_the_terminal() {
    let d = demo();
    let always = run(&["replay", "--color", "always", &d]);
    assert_eq!(always.status.code(), Some(0));
    let coloured = stdout(&always);
    assert!(
        coloured.contains("\x1b[1m\x1b[31mfirewall-rst\x1b[0m (high)"),
        "{coloured}"
    );
    assert!(
        coloured.contains("\x1b[1m\x1b[32mopen\x1b[0m"),
        "open is green"
    );
    assert!(
        coloured.contains("\x1b[1mSummary by server:port\x1b[0m"),
        "headings bold"
    );
    // Colour changes nothing else: stripped, it is the plain report, columns aligned alike.
    let plain = stdout(&run(&["replay", &d]));
    let mut stripped = String::new();
    let mut rest = coloured.as_str();
    while let Some(i) = rest.find("\x1b[") {
        stripped.push_str(&rest[..i]);
        let end = rest[i..].find('m').expect("an SGR sequence ends with m");
        rest = &rest[i + end + 1..];
    }
    stripped.push_str(rest);
    assert_eq!(stripped, plain);
    // A pipe, --color never, and NO_COLOR with auto: no escapes.
    assert!(!has_escape(&plain), "a pipe is not coloured");
    assert!(!has_escape(&stdout(&run(&[
        "replay", "--color", "never", &d
    ]))));
    let o = bin()
        .args(["replay", "--color", "auto", &d])
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    assert!(!has_escape(&stdout(&o)));
    // JSON, never.
    let json = stdout(&run(&[
        "replay", "--json", "--trace", "--color", "always", &d,
    ]));
    assert!(!has_escape(&json), "JSON is never coloured");
    assert_eq!(
        run(&["replay", "--color", "sometimes", &d]).status.code(),
        Some(2)
    );

    // On a terminal: auto colours, NO_COLOR turns it off, --color always wins over NO_COLOR.
    let cmd = format!("{} replay {}", bin_path(), sh_quote(&d));
    let Some(tty) = on_terminal(&cmd, &[]) else {
        return;
    };
    assert!(tty.contains("\x1b[1m\x1b[31mfirewall-rst\x1b[0m"), "{tty}");
    let tty = on_terminal(&cmd, &[("NO_COLOR", "1")]).expect("script");
    assert!(
        tty.contains("firewall-rst (high)") && !has_escape(&tty),
        "{tty}"
    );
    let tty = on_terminal(&format!("{cmd} --color never"), &[]).expect("script");
    assert!(
        tty.contains("firewall-rst (high)") && !has_escape(&tty),
        "{tty}"
    );
    let tty = on_terminal(&format!("{cmd} --color always"), &[("NO_COLOR", "1")]).expect("script");
    assert!(has_escape(&tty), "{tty}");
}

#[test]
fn nothing_extra_on_stderr_when_it_is_a_pipe() {
    let d = demo();
    for args in [
        vec!["replay", d.as_str()],
        vec!["replay", "--json", d.as_str()],
        vec!["replay", "--quiet", d.as_str()],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(
            stderr(&o),
            "",
            "{args:?}: no progress bar or note on a pipe"
        );
    }
    // A replay fed slowly (longer than the bar's delay) still writes nothing to a piped stderr.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(head -c 200 {d}; sleep 1.3; tail -c +201 {d}) | {} replay -",
            bin_path(),
            d = sh_quote(&d)
        ))
        .output()
        .expect("sh runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert!(stdout(&o).contains("firewall-rst (high)"));
    // --quiet keeps errors.
    let o = run(&["replay", "-q", "/nonexistent/capture.pcap"]);
    assert_eq!(o.status.code(), Some(66));
    assert!(stderr(&o).contains("cannot open /nonexistent/capture.pcap"));
}

#[test]
fn a_slow_replay_shows_a_progress_bar_on_a_terminal_unless_quiet() {
    let d = sh_quote(&demo());
    let slow = |flags: &str| {
        format!(
            "(head -c 200 {d}; sleep 1.3; tail -c +201 {d}) | {} replay {flags} - >/dev/null",
            bin_path()
        )
    };
    let Some(tty) = on_terminal(&slow(""), &[]) else {
        return;
    };
    assert!(
        tty.contains("synprobe: replaying") && tty.contains("read"),
        "{tty:?}"
    );
    let tty = on_terminal(&slow("--quiet"), &[]).expect("script");
    assert!(!tty.contains("replaying"), "{tty:?}");
    // A quick replay finishes before the bar is due.
    let tty = on_terminal(&format!("{} replay {d} >/dev/null", bin_path()), &[]).expect("script");
    assert!(!tty.contains("replaying"), "{tty:?}");
}

#[test]
fn verbose_replay_names_the_format_and_the_speed() {
    let o = run(&["replay", "-v", &demo()]);
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert!(
        err.contains("synprobe: reading ") && err.contains("pcap 2.4, microsecond timestamps"),
        "{err}"
    );
    assert!(
        err.contains("17 frames, 1610 bytes in") && err.contains("frames/s"),
        "{err}"
    );
    assert!(!err.contains("debug:"), "-v is info only: {err}");
    let err = stderr(&run(&["replay", "-vv", &demo()]));
    assert!(err.contains("synprobe: debug: "), "{err}");
    assert_eq!(run(&["replay", "-q", "-v", &demo()]).status.code(), Some(2));
    // stdout is the same with or without -v.
    assert_eq!(
        stdout(&run(&["replay", "-vv", &demo()])),
        stdout(&run(&["replay", &demo()]))
    );
}

#[test]
fn probe_argument_errors_exit_2_and_an_address_of_the_wrong_family_68() {
    // All refused before any socket is opened: nothing is sent, root or not.
    for (args, needle) in [
        (vec!["127.0.0.1", "0"], "port"),
        (vec!["127.0.0.1", "70000"], "port"),
        (
            vec!["127.0.0.1", "1-16", "--max-targets", "8"],
            "--max-targets 8",
        ),
        (
            vec!["127.0.0.1", "80", "--baseline-port", "x"],
            "--baseline-port",
        ),
        (vec!["127.0.0.1", "80", "--color", "sometimes"], "sometimes"),
        (vec!["127.0.0.1", "80", "-q", "-v"], "--quiet"),
    ] {
        let o = run_refused(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("Error {"),
            "no Debug dumps: {}",
            stderr(&o)
        );
    }
    let o = run_refused(&["127.0.0.1", "80", "-6"]);
    assert_eq!(o.status.code(), Some(68), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("127.0.0.1 has no IPv6 address (without -6"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_output_that_cannot_be_written_exits_74() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("SKIP an_output_that_cannot_be_written_exits_74: no /dev/full");
        return;
    };
    let o = bin()
        .args(["replay", "--trace", &demo()])
        .stdout(full)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(74), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("synprobe: cannot write the output: No space left on device"),
        "{}",
        stderr(&o)
    );
}

/// Rows `| code | meaning |` of the first table in README.md after `heading`.
fn readme_table(readme: &str, heading: &str) -> Vec<(u8, String)> {
    readme[readme.find(heading).expect("README has the table")..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let mut cells = l.split('|').skip(1);
            let code = cells.next()?.trim().parse().ok()?;
            Some((code, cells.next()?.trim().to_string()))
        })
        .collect()
}

/// Rows `code meaning` of an exit-code table in `--help` output, after `heading`.
fn help_table(help: &str, heading: &str) -> Vec<(u8, String)> {
    help[help.find(heading).expect("the table's heading")..]
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (code, meaning) = l.trim_start().split_once(' ')?;
            Some((code.parse().ok()?, meaning.trim().to_string()))
        })
        .collect()
}

#[test]
fn check_usage_errors_are_unknown_on_stdout_and_its_states_agree_with_the_readme() {
    for args in [
        &["check", "-H", "198.18.0.1"][..],
        &["check", "-p", "80"],
        &[
            "check",
            "-H",
            "198.18.0.1",
            "-p",
            "80",
            "--state=closed=maybe",
        ],
        &["check", "-H", "198.18.0.1", "-p", "80", "--state=shut=ok"],
        &["check", "-H", "198.18.0.1", "-p", "70000"],
        &["check", "-H", "198.18.0.1", "-p", "80", "-t", "0"],
        &["check", "-H", "198.18.0.1", "-p", "80", "--nonsense"],
        // A local problem found before any packet: an address of the other family.
        &["check", "-H", "2001:db8::1", "-p", "80", "-4"],
    ] {
        let o = run_refused(args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.starts_with("TCP UNKNOWN - "), "{args:?}: {out}");
        assert_eq!(out.lines().count(), 1, "{out}");
    }
    let help = run_refused(&["check", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    let rows = help_table(&stdout(&help), "Exit codes (Nagios plugin states):");
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    let readme = std::fs::read_to_string(repo("README.md")).expect("README.md");
    let readme_rows = readme_table(&readme, "Exit codes of `synprobe check`");
    assert_eq!(readme_rows, rows, "README vs synprobe check --help");
    let man = stdout(&run_refused(&["man"]));
    for needle in [
        ".SH \"SYNPROBE CHECK\"",
        ".SH \"SYNPROBE WATCH\"",
        "\\-\\-flap\\-window",
    ] {
        assert!(man.contains(needle), "the man page lacks {needle:?}");
    }
}

#[test]
fn watch_argument_errors_exit_2_and_a_wrong_family_68() {
    for args in [
        &["watch", "198.18.0.1"][..],
        &["watch", "198.18.0.1", "80", "--every", "0.5"],
        &["watch", "198.18.0.1", "80", "--flap-changes", "0"],
        &["watch", "198.18.0.1", "80-90x"],
        // The probe command's --max-targets rule, before any packet.
        &["watch", "198.18.0.1", "1-10", "--max-targets", "5"],
    ] {
        let o = run_refused(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let o = run_refused(&["watch", "2001:db8::1", "80", "-4"]);
    assert_eq!(o.status.code(), Some(68), "{}", stderr(&o));
    assert!(stderr(&o).contains("has no IPv4 address"), "{}", stderr(&o));
}
