//! `synprobe check` (the Nagios plugin) and `synprobe watch` against real Linux stacks and firewalls, in a lab
//! of network namespaces: `client -- r1 -- r2 -- server`. Needs root (CI runs it as root; elsewhere it says
//! SKIP). Every probe goes to the lab's own addresses.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use synprobe_tests::lab::{root_or_skip, Lab};
use synprobe_tests::synprobe_bin;

const OPEN: u16 = 80;
const CLOSED: u16 = 81;
const RST_AT_R1: u16 = 82;
const DROP_AT_R1: u16 = 87;

fn rule(lab: &Lab, ns: &str, chain: &str, port: u16, target: &[&str]) {
    let port = port.to_string();
    let mut args = vec!["-A", chain, "-p", "tcp", "--dport", port.as_str(), "-j"];
    args.extend_from_slice(target);
    lab.iptables(ns, false, &args);
}

/// `synprobe check ARGS…` in the client namespace (30 s at most).
fn check(lab: &Lab, args: &[&str]) -> Output {
    let bin = synprobe_bin();
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    lab.run_in(
        lab.client_ns(),
        bin.to_str().expect("path"),
        &all,
        Duration::from_secs(30),
    )
}

/// The status line and the perfdata, after asserting the exit code and the check_tcp-style first line.
fn status(out: &Output, code: i32, state: &str) -> (String, Vec<(String, f64)>) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let line = stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        line.starts_with(&format!("TCP {state} - ")),
        "{line}\nstderr: {stderr}"
    );
    let perf = line
        .split_once(" | ")
        .map(|(_, p)| {
            p.split(' ')
                .map(|item| {
                    let (label, rest) = item.split_once('=').expect("label=value");
                    let fields: Vec<&str> = rest.split(';').collect();
                    assert!((4..=5).contains(&fields.len()), "perfdata item {item}");
                    let value = fields[0].trim_end_matches('s').parse().expect("a number");
                    (label.to_string(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    (line, perf)
}

fn perf(items: &[(String, f64)], label: &str) -> Option<f64> {
    items.iter().find(|(l, _)| l == label).map(|(_, v)| *v)
}

#[test]
fn check_gives_nagios_states_exit_codes_and_perfdata() {
    if !root_or_skip("check_gives_nagios_states_exit_codes_and_perfdata") {
        return;
    }
    let lab = Lab::new(2);
    let server: IpAddr = lab.server_v4().into();
    let server6: IpAddr = lab.server_v6().into();
    let r1: IpAddr = lab.router_v4(1).into();
    let r1_ns = lab.router_ns(1).to_string();
    rule(
        &lab,
        &r1_ns,
        "FORWARD",
        RST_AT_R1,
        &["REJECT", "--reject-with", "tcp-reset"],
    );
    rule(&lab, &r1_ns, "FORWARD", DROP_AT_R1, &["DROP"]);
    let _open = lab.listen(lab.server_ns(), server, OPEN);
    let _open6 = lab.listen(lab.server_ns(), server6, OPEN);
    let host = server.to_string();

    let out = check(&lab, &["-H", &host, "-p", "80"]);
    let (line, p) = status(&out, 0, "OK");
    assert!(line.contains(" - open: "), "{line}");
    assert!(line.contains("(high confidence)"), "{line}");
    let time = perf(&p, "time").expect("time perfdata");
    assert!(time > 0.0 && time < 1.0, "{line}");
    assert!(line.contains("time=") && line.contains(";;;0;10"), "{line}");
    assert_eq!(perf(&p, "target_hops"), Some(3.0), "{line}");
    assert_eq!(perf(&p, "rejecter_hops"), None, "{line}");
    println!("{line}");

    let out = check(&lab, &["-H", &host, "-p", &RST_AT_R1.to_string()]);
    let (line, p) = status(&out, 2, "CRITICAL");
    assert!(line.contains(" - firewall-rst: "), "{line}");
    assert!(line.contains(&format!("rejecter {r1} at hop 1")), "{line}");
    assert_eq!(perf(&p, "rejecter_hops"), Some(1.0), "{line}");
    println!("{line}");

    let out = check(
        &lab,
        &[
            "-H",
            &host,
            "-p",
            &CLOSED.to_string(),
            "--state",
            "closed=warning",
        ],
    );
    let (line, p) = status(&out, 1, "WARNING");
    assert!(line.contains(" - closed: "), "{line}");
    assert!(
        line.contains(&format!("rejecter {server} at hop 3")),
        "{line}"
    );
    assert_eq!(perf(&p, "rejecter_hops"), Some(3.0), "{line}");
    println!("{line}");
    let (line, _) = status(&check(&lab, &["-H", &host, "-p", "81"]), 2, "CRITICAL");
    assert!(line.contains(" - closed: "), "{line}");

    // A short -t: the verdict on a silently dropped port comes within it.
    let started = Instant::now();
    let out = check(
        &lab,
        &["-H", &host, "-p", &DROP_AT_R1.to_string(), "-t", "2"],
    );
    let took = started.elapsed();
    let (line, p) = status(&out, 2, "CRITICAL");
    assert!(line.contains(" - filtered: "), "{line}");
    assert!(took < Duration::from_millis(2600), "took {took:?}: {line}");
    assert!(perf(&p, "time").expect("time") <= 2.0, "{line}");
    println!("{line} (took {took:?})");
    // The default -t 10 leaves room for the full plan (the TTL walk names the last hop that answered).
    let started = Instant::now();
    let out = check(&lab, &["-H", &host, "-p", &DROP_AT_R1.to_string()]);
    let took = started.elapsed();
    let (line, _) = status(&out, 2, "CRITICAL");
    assert!(line.contains(" - filtered: "), "{line}");
    assert!(
        took < Duration::from_millis(10_600),
        "took {took:?}: {line}"
    );
    println!("{line} (took {took:?})");

    // A name with two addresses: the first of the family, said in the line.
    lab.hosts(
        lab.client_ns(),
        &[("web.lab", server), ("web.lab", server6)],
    );
    let order = lab.resolve(lab.client_ns(), "web.lab");
    assert_eq!(order.len(), 2, "{order:?}");
    let (line, _) = status(&check(&lab, &["-H", "web.lab", "-p", "80"]), 0, "OK");
    assert!(
        line.contains(&format!(
            "web.lab is {} (the first of its 2 addresses)",
            order[0]
        )),
        "{line}"
    );
    let (line, _) = status(&check(&lab, &["-H", "web.lab", "-p", "80", "-6"]), 0, "OK");
    assert!(line.contains(&format!("web.lab is {server6} |")), "{line}");

    // Local problems, and only they, are UNKNOWN (3): bad arguments, an address of the wrong family.
    for bad in [
        &["-H", host.as_str()][..],
        &["-H", host.as_str(), "-p", "80", "--state", "closed=maybe"],
        &["-H", host.as_str(), "-p", "0"],
        &["-H", host.as_str(), "-p", "80", "-t", "zero"],
        &["-H", "2001:db8::1", "-p", "80", "-4"],
    ] {
        let out = check(&lab, bad);
        status(&out, 3, "UNKNOWN");
    }
}

/// A running `synprobe watch`, its stdout lines arriving on a channel.
struct Watching {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watching {
    fn start(lab: &Lab, args: &[&str]) -> Watching {
        let mut child = lab
            .command(lab.client_ns(), synprobe_bin().to_str().expect("path"))
            .arg("watch")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("synprobe starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watching {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line that satisfies `want`, within `wait`.
    fn wait_for(&mut self, wait: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no such line within {wait:?}; so far:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// SIGINT, then the exit code and the rest of stdout.
    fn interrupt(mut self) -> (Option<i32>, Vec<String>, String) {
        let status = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("watch did not stop on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let rest: Vec<String> = self.lines.iter().collect();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        (code, rest, err)
    }
}

#[test]
fn watch_prints_the_first_state_then_changes_then_the_history_on_sigint() {
    if !root_or_skip("watch_prints_the_first_state_then_changes_then_the_history_on_sigint") {
        return;
    }
    let lab = Lab::new(2);
    let server: IpAddr = lab.server_v4().into();
    let host = server.to_string();
    let r1_ns = lab.router_ns(1).to_string();
    let _open = lab.listen(lab.server_ns(), server, OPEN);

    // Human lines.
    let mut w = Watching::start(&lab, &[&host, "80,81", "--every", "1"]);
    let first80 = w.wait_for(Duration::from_secs(30), |l| {
        l.contains(&format!("{host}:80 (new) → open"))
    });
    let first81 = w.wait_for(Duration::from_secs(30), |l| {
        l.contains(&format!("{host}:81 (new) → closed by {host} at hop 3"))
    });
    println!("{first80}\n{first81}");
    rule(
        &lab,
        &r1_ns,
        "FORWARD",
        CLOSED,
        &["REJECT", "--reject-with", "tcp-reset"],
    );
    let change = w.wait_for(Duration::from_secs(30), |l| {
        l.contains(&format!("{host}:81 closed by {host} at hop 3"))
    });
    assert!(
        change.contains(&format!("→ firewall-rst by {} at hop 1:", lab.router_v4(1))),
        "{change}"
    );
    println!("{change}");
    let (code, rest, err) = w.interrupt();
    assert_eq!(code, Some(130), "{err}\n{}", rest.join("\n"));
    let history = rest.join("\n");
    assert!(history.contains("History ("), "{history}");
    assert!(
        history.contains(&format!("{host}:81: 1 change(s)")),
        "{history}"
    );
    assert!(
        history.contains(&format!("{host}:80: 0 change(s)")),
        "{history}"
    );
    println!("{history}");

    // JSON: the same, as objects; the open port flaps after two changes with --flap-changes 2.
    let mut w = Watching::start(
        &lab,
        &[&host, "80", "--every", "1", "--json", "--flap-changes", "2"],
    );
    let parse = |l: &str| serde_json::from_str::<Value>(l).expect("JSON");
    let first = parse(&w.wait_for(Duration::from_secs(30), |l| l.contains("\"change\"")));
    assert_eq!(first["schema_version"], 2);
    assert_eq!(first["target"], host.as_str());
    assert_eq!(first["port"], 80);
    assert!(first["old"].is_null());
    assert_eq!(first["new"]["verdict"], "open");
    assert_eq!(first["flapping"], false);
    assert!(first["time"].as_f64().is_some_and(|t| t > 1.7e9));
    rule(&lab, &r1_ns, "FORWARD", OPEN, &["DROP"]);
    let dropped = parse(&w.wait_for(Duration::from_secs(40), |l| l.contains("filtered")));
    assert_eq!(dropped["old"]["verdict"], "open");
    assert_eq!(dropped["new"]["verdict"], "filtered");
    assert_eq!(dropped["flapping"], false);
    lab.iptables(
        &r1_ns,
        false,
        &["-D", "FORWARD", "-p", "tcp", "--dport", "80", "-j", "DROP"],
    );
    let back = parse(&w.wait_for(Duration::from_secs(40), |l| {
        parse(l)["new"]["verdict"] == "open"
    }));
    assert_eq!(back["old"]["verdict"], "filtered");
    assert_eq!(back["flapping"], true, "{back}");
    let (code, rest, err) = w.interrupt();
    assert_eq!(code, Some(130), "{err}");
    println!(
        "{}\n{}",
        json_lines(&[&first, &dropped, &back]),
        rest.join("\n")
    );
    let history = parse(rest.last().expect("the history object"));
    assert_eq!(history["type"], "history");
    assert_eq!(history["schema_version"], 2);
    let port = &history["ports"][0];
    assert_eq!(port["change_count"], 2);
    assert_eq!(port["flapping"], true);
    assert_eq!(port["current"]["verdict"], "open");
    assert_eq!(port["changes"].as_array().map(Vec::len), Some(2));
}

/// The objects, one per line.
fn json_lines(lines: &[&Value]) -> String {
    lines
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
