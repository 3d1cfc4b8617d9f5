//! `synprobe exporter` in the lab (`client -- r1 -- r2 -- server`): a real Prometheus scrapes it through
//! blackbox_exporter's multi-target relabeling, and the verdicts are read back through Prometheus's query API;
//! 50 concurrent scrapes of different targets all get the right answer; a target outside --allow gets 403 and
//! no packet. The exporter and Prometheus both run in the client's namespace and talk over its 127.0.0.1.
//! Needs root (CI runs it as root; elsewhere it says SKIP) and Debian's `prometheus` package for the first test
//! (scripts/install-deps.sh installs it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use synprobe_tests::lab::{root_or_skip, Lab};
use synprobe_tests::{synprobe_bin, TempDir};

const OPEN: u16 = 80;
const CLOSED: u16 = 81;
const RST_AT_R2: u16 = 82;
const ICMP_PORT_AT_R1: u16 = 84;
const DROP_AT_R1: u16 = 87;

const EXPORTER: &str = "127.0.0.1:9799";

/// A process of the test's, killed when dropped (the lab would kill it with its namespace anyway).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `curl` in the client's namespace: the status code and the body.
fn get(lab: &Lab, url: &str, extra: &[&str]) -> (u16, String) {
    let out = lab
        .command(lab.client_ns(), "curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Rules for every scenario: an RST forged by r2, an ICMP port unreachable from r1, a DROP at r1.
fn scenario_lab() -> Lab {
    let lab = Lab::new(2);
    let (r1, r2) = (lab.router_ns(1).to_string(), lab.router_ns(2).to_string());
    let rule = |ns: &str, port: &str, target: &[&str]| {
        let mut args = vec!["-A", "FORWARD", "-p", "tcp", "--dport", port, "-j"];
        args.extend_from_slice(target);
        lab.iptables(ns, false, &args);
    };
    rule(
        &r2,
        &format!("{RST_AT_R2}"),
        &["REJECT", "--reject-with", "tcp-reset"],
    );
    rule(
        &r1,
        &format!("{ICMP_PORT_AT_R1}"),
        &["REJECT", "--reject-with", "icmp-port-unreachable"],
    );
    rule(&r1, &format!("{DROP_AT_R1}"), &["DROP"]);
    lab
}

/// Start the exporter in the client's namespace, allowed only the server's address, and wait until healthy.
fn start_exporter(lab: &Lab, dir: &Path, extra: &[&str]) -> Running {
    let bin = synprobe_bin();
    let log = std::fs::File::create(dir.join("exporter.log")).expect("a log file");
    let allow = format!("{}/32", lab.server_v4());
    let child = lab
        .command(lab.client_ns(), bin.to_str().expect("path"))
        .args(["exporter", "--listen", EXPORTER, "--allow", &allow, "-v"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the exporter starts");
    let running = Running(child);
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if get(lab, &format!("http://{EXPORTER}/-/healthy"), &[]).0 == 200 {
            return running;
        }
        assert!(
            Instant::now() < until,
            "the exporter did not come up: {}",
            std::fs::read_to_string(dir.join("exporter.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of a metric line without labels or with exactly these labels, in an exposition text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn probe_url(target: &str) -> String {
    format!("http://{EXPORTER}/probe?target={target}")
}

#[test]
fn prometheus_scrapes_verdicts_through_the_relabeling_pattern() {
    if !root_or_skip("prometheus_scrapes_verdicts_through_the_relabeling_pattern") {
        return;
    }
    let prometheus = Path::new("/usr/bin/prometheus");
    if !prometheus.exists() {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI must have /usr/bin/prometheus (scripts/install-deps.sh)"
        );
        eprintln!("SKIP prometheus_scrapes_verdicts_through_the_relabeling_pattern: no /usr/bin/prometheus");
        return;
    }
    let lab = scenario_lab();
    let server: IpAddr = lab.server_v4().into();
    let _open = lab.listen(lab.server_ns(), server, OPEN);
    let dir = TempDir::new("exporter-prom");
    let _exporter = start_exporter(&lab, dir.path(), &[]);
    let expected: [(u16, Option<&str>); 5] = [
        (OPEN, None),
        (CLOSED, Some("closed")),
        (RST_AT_R2, Some("firewall-rst")),
        (ICMP_PORT_AT_R1, Some("icmp-rejected")),
        (DROP_AT_R1, Some("filtered")),
    ];
    let targets: Vec<String> = expected
        .iter()
        .map(|(p, _)| format!("'{server}:{p}'"))
        .collect();
    // blackbox_exporter's multi-target pattern: the target becomes the `target` parameter and the instance
    // label, and the exporter is scraped in its place.
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n\
         \x20 - job_name: synprobe\n\
         \x20   metrics_path: /probe\n\
         \x20   params:\n      module: [default]\n\
         \x20   static_configs:\n      - targets: [{}]\n\
         \x20   relabel_configs:\n\
         \x20     - source_labels: [__address__]\n        target_label: __param_target\n\
         \x20     - source_labels: [__param_target]\n        target_label: instance\n\
         \x20     - target_label: __address__\n        replacement: {EXPORTER}\n\
         \x20 - job_name: synprobe_exporter\n\
         \x20   static_configs:\n      - targets: ['{EXPORTER}']\n",
        targets.join(", ")
    );
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, &config).expect("the config is written");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("a log file");
    let _prom = Running(
        lab.command(lab.client_ns(), "/usr/bin/prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:9090")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts"),
    );
    let query = |q: &str| -> Vec<Value> {
        let (code, body) = get(
            &lab,
            "http://127.0.0.1:9090/api/v1/query",
            &["-G", "--data-urlencode", &format!("query={q}")],
        );
        if code != 200 {
            return Vec::new();
        }
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    };
    // instance -> value, for a query whose series carry an instance label.
    let by_instance = |q: &str| -> HashMap<String, String> {
        query(q)
            .iter()
            .filter_map(|s| {
                Some((
                    s["metric"]["instance"].as_str()?.to_string(),
                    s["value"][1].as_str()?.to_string(),
                ))
            })
            .collect()
    };
    let until = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    loop {
        let success = by_instance("probe_success{job=\"synprobe\"}");
        let reasons: HashMap<String, String> = query("probe_failure_info{job=\"synprobe\"} == 1")
            .iter()
            .filter_map(|s| {
                Some((
                    s["metric"]["instance"].as_str()?.to_string(),
                    s["metric"]["reason"].as_str()?.to_string(),
                ))
            })
            .collect();
        let mut wrong = Vec::new();
        for (port, reason) in expected {
            let instance = format!("{server}:{port}");
            let want_success = if reason.is_none() { "1" } else { "0" };
            if success.get(&instance).map(String::as_str) != Some(want_success)
                || reasons.get(&instance).map(String::as_str) != reason
            {
                wrong.push(format!(
                    "{instance}: probe_success {:?} reason {:?}, expected {want_success} {reason:?}",
                    success.get(&instance),
                    reasons.get(&instance)
                ));
            }
        }
        if wrong.is_empty() {
            break;
        }
        last = wrong.join("\n");
        assert!(
            Instant::now() < until,
            "Prometheus never showed the expected verdicts:\n{last}\nexporter log:\n{}\nprometheus log (tail):\n{}",
            std::fs::read_to_string(dir.path().join("exporter.log")).unwrap_or_default(),
            tail(&dir.path().join("prometheus.log"))
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = last;
    // The verdict gauges and the rejecter's place, as Prometheus stored them.
    let verdicts = query("probe_synprobe_verdict{job=\"synprobe\"} == 1");
    assert_eq!(verdicts.len(), 5, "{verdicts:?}");
    let rst = format!("{server}:{RST_AT_R2}");
    assert_eq!(
        by_instance("probe_synprobe_rejecter_hops")
            .get(&rst)
            .map(String::as_str),
        Some("2"),
        "the forged RST comes from r2, 2 hops away"
    );
    assert_eq!(
        by_instance("probe_synprobe_rejecter_is_target")
            .get(&rst)
            .map(String::as_str),
        Some("0")
    );
    assert_eq!(
        by_instance("probe_synprobe_target_hops")
            .get(&format!("{server}:{CLOSED}"))
            .map(String::as_str),
        Some("3")
    );
    assert_eq!(
        by_instance("probe_ip_protocol")
            .get(&rst)
            .map(String::as_str),
        Some("4")
    );
    // The exporter's own metrics, scraped by Prometheus too (once a scrape of /metrics follows the probes).
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let probes = query("sum(synprobe_exporter_probes_total)");
        let total: f64 = probes
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if total >= 5.0 {
            break;
        }
        assert!(Instant::now() < until, "{probes:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let up = by_instance("up{job=\"synprobe\"}");
    assert!(up.values().all(|v| v == "1") && up.len() == 5, "{up:?}");
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[test]
fn only_allowed_targets_are_probed_unprivileged_in_both_families() {
    if !root_or_skip("only_allowed_targets_are_probed_unprivileged_in_both_families") {
        return;
    }
    let lab = scenario_lab();
    // A name for r2 (a lab address outside --allow), known before the exporter starts.
    lab.hosts(lab.client_ns(), &[("r2.lab.test", lab.router_v4(2).into())]);
    let dir = TempDir::new("exporter-403");
    let v6_allow = format!("{}/128", lab.server_v6());
    let _exporter = start_exporter(&lab, dir.path(), &["--allow", &v6_allow]);
    // Watch the client's link for any SYN while asking for r2 by address and by name.
    let capture = dir.path().join("syns.pcap");
    let _tcpdump = Running(
        lab.command(lab.client_ns(), "tcpdump")
            .args(["-i", lab.client_iface(), "-U", "-w"])
            .arg(&capture)
            .arg("tcp[tcpflags] & tcp-syn != 0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump starts"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let r2 = lab.router_v4(2);
    for target in [format!("{r2}:80"), "r2.lab.test:80".to_string()] {
        let (code, body) = get(&lab, &probe_url(&target), &[]);
        assert_eq!(code, 403, "{target}: {body}");
    }
    // Bad requests are 400, not probes.
    assert_eq!(get(&lab, &format!("http://{EXPORTER}/probe"), &[]).0, 400);
    let server = lab.server_v4();
    assert_eq!(
        get(&lab, &probe_url(&format!("{server}:81&module=nope")), &[]).0,
        400
    );
    let (_, own) = get(&lab, &format!("http://{EXPORTER}/metrics"), &[]);
    assert_eq!(
        sample(&own, "synprobe_exporter_forbidden_total"),
        Some(2.0),
        "{own}"
    );
    std::thread::sleep(Duration::from_millis(500));
    drop(_tcpdump);
    let read = lab.exec(
        lab.client_ns(),
        &["tcpdump", "-nr", capture.to_str().expect("path")],
    );
    let syns = String::from_utf8_lossy(&read.stdout).to_string();
    assert!(
        syns.trim().is_empty(),
        "no SYN may leave for a refused target:\n{syns}"
    );
    // The exporter runs without privilege after start-up, and still probes (the sockets were opened before).
    let status = std::fs::read_to_string(format!("/proc/{}/status", _exporter.0.id()))
        .expect("the exporter's status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field("CapEff:"), "0000000000000000", "{status}");
    assert!(!field("Uid:").starts_with("0\t"), "{status}");
    let (_, body) = get(&lab, &probe_url(&format!("{server}:81")), &[]);
    assert_eq!(sample(&body, "probe_success"), Some(0.0), "{body}");
    assert_eq!(
        sample(&body, "probe_failure_info{reason=\"closed\"}"),
        Some(1.0),
        "{body}"
    );
    // IPv6 over the same exporter: its own raw socket, opened at start too.
    let (code, body) = get(&lab, &probe_url(&format!("[{}]:81", lab.server_v6())), &[]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(sample(&body, "probe_ip_protocol"), Some(6.0), "{body}");
    assert_eq!(
        sample(&body, "probe_failure_info{reason=\"closed\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "probe_synprobe_target_hops"),
        Some(3.0),
        "{body}"
    );
}

#[test]
fn fifty_concurrent_scrapes_of_different_targets_all_answer_right() {
    if !root_or_skip("fifty_concurrent_scrapes_of_different_targets_all_answer_right") {
        return;
    }
    let lab = scenario_lab();
    let server: IpAddr = lab.server_v4().into();
    let (r1, r2, host) = (
        lab.router_ns(1).to_string(),
        lab.router_ns(2).to_string(),
        lab.server_ns().to_string(),
    );
    // 50 targets over five scenarios, each scenario on its own range of ports. ICMP errors are rate-limited per
    // router and destination (kernel defaults: a burst of about 6, then 1 a second), and concurrent probes share
    // those buckets: the full plan's TTL walk of a firewall-rst target draws a time-exceeded from r1 and one
    // from r2, an icmp-rejected target its port unreachable. So the targets whose answer is an ICMP error are
    // spread over r1, r2 and the server, at most 5 errors per sender: 3 firewall-rst at r2 (full plan), 8
    // icmp-rejected (2 at r1, 2 at r2, 4 on the server; the quick plan: the first SYN's error is the answer).
    // Open, closed and filtered need no ICMP (quick plan). With more, the buckets run dry and a rejected port
    // reads as filtered: a limit of the routers, stated in the README.
    let rules: [(&str, &str, &str, &[&str]); 4] = [
        (
            &r2,
            "FORWARD",
            "2000:2002",
            &["REJECT", "--reject-with", "tcp-reset"],
        ),
        (
            &r1,
            "FORWARD",
            "3000:3001",
            &["REJECT", "--reject-with", "icmp-port-unreachable"],
        ),
        (
            &r2,
            "FORWARD",
            "3002:3003",
            &["REJECT", "--reject-with", "icmp-port-unreachable"],
        ),
        (&r1, "FORWARD", "4000:4014", &["DROP"]),
    ];
    for (ns, chain, ports, target) in rules {
        let mut args = vec!["-A", chain, "-p", "tcp", "--dport", ports, "-j"];
        args.extend_from_slice(target);
        lab.iptables(ns, false, &args);
    }
    lab.iptables(
        &host,
        false,
        &[
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "3004:3007",
            "-j",
            "REJECT",
            "--reject-with",
            "icmp-port-unreachable",
        ],
    );
    let mut listeners = Vec::new();
    let mut cases: Vec<(u16, &str, &str)> = Vec::new();
    for p in 1000..1012 {
        listeners.push(lab.listen(lab.server_ns(), server, p));
        cases.push((p, "quick", "open"));
    }
    for p in 1100..1112 {
        cases.push((p, "quick", "closed"));
    }
    for p in 2000..2003 {
        cases.push((p, "default", "firewall-rst"));
    }
    for p in 3000..3008 {
        cases.push((p, "quick", "icmp-rejected"));
    }
    for p in 4000..4015 {
        cases.push((p, "quick", "filtered"));
    }
    assert_eq!(cases.len(), 50);
    let dir = TempDir::new("exporter-50");
    let _exporter = start_exporter(&lab, dir.path(), &[]);
    // All 50 at once: one curl process per scrape, started together, each with a 5 s scrape timeout.
    let started = Instant::now();
    let children: Vec<(u16, &str, &str, Child)> = cases
        .iter()
        .map(|&(port, module, verdict)| {
            let url = format!("{}&module={module}", probe_url(&format!("{server}:{port}")));
            let child = lab
                .command(lab.client_ns(), "curl")
                .args([
                    "-sS",
                    "--max-time",
                    "20",
                    "-H",
                    "X-Prometheus-Scrape-Timeout-Seconds: 5",
                ])
                .args(["-w", "\n%{http_code}", &url])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("curl starts");
            (port, module, verdict, child)
        })
        .collect();
    let mut wrong = Vec::new();
    for (port, module, verdict, child) in children {
        let out = child.wait_with_output().expect("curl ends");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        let success = if verdict == "open" { 1.0 } else { 0.0 };
        let reason_ok = verdict == "open" && !body.contains("probe_failure_info")
            || sample(body, &format!("probe_failure_info{{reason=\"{verdict}\"}}")) == Some(1.0);
        if code.trim() != "200"
            || sample(body, "probe_success") != Some(success)
            || !reason_ok
            || sample(
                body,
                &format!("probe_synprobe_verdict{{verdict=\"{verdict}\"}}"),
            ) != Some(1.0)
        {
            wrong.push(format!(
                "{port} ({module}, expected {verdict}): HTTP {code}\n{body}"
            ));
        }
    }
    let took = started.elapsed();
    assert!(
        wrong.is_empty(),
        "{} wrong answer(s):\n{}\nexporter log:\n{}",
        wrong.len(),
        wrong.join("\n"),
        std::fs::read_to_string(dir.path().join("exporter.log")).unwrap_or_default()
    );
    // Concurrent, not one after another: 20 filtered targets alone take 2.5 s or more each in a row.
    assert!(took < Duration::from_secs(15), "50 scrapes took {took:?}");
    let (_, own) = get(&lab, &format!("http://{EXPORTER}/metrics"), &[]);
    assert_eq!(
        sample(&own, "synprobe_exporter_probes_in_flight"),
        Some(0.0),
        "{own}"
    );
    assert_eq!(
        sample(&own, "synprobe_exporter_probes_total{result=\"filtered\"}"),
        Some(15.0),
        "{own}"
    );
}

#[test]
fn scrapes_beyond_max_concurrent_get_503() {
    if !root_or_skip("scrapes_beyond_max_concurrent_get_503") {
        return;
    }
    let lab = scenario_lab();
    let server = lab.server_v4();
    let dir = TempDir::new("exporter-503");
    let _exporter = start_exporter(&lab, dir.path(), &["--max-concurrent", "2"]);
    // Two silent targets hold both slots for about 2 s; the third scrape meanwhile is refused.
    let slow: Vec<Child> = (0..2)
        .map(|_| {
            lab.command(lab.client_ns(), "curl")
                .args(["-sS", "-o", "/dev/null", "--max-time", "20"])
                .arg(format!(
                    "{}&module=quick",
                    probe_url(&format!("{server}:{DROP_AT_R1}"))
                ))
                .stdin(Stdio::null())
                .spawn()
                .expect("curl starts")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let (code, body) = get(&lab, &probe_url(&format!("{server}:{CLOSED}")), &[]);
    assert_eq!(code, 503, "{body}");
    for mut c in slow {
        let _ = c.wait();
    }
    let (code, body) = get(&lab, &probe_url(&format!("{server}:{CLOSED}")), &[]);
    assert_eq!(code, 200, "{body}");
    let (_, own) = get(&lab, &format!("http://{EXPORTER}/metrics"), &[]);
    assert_eq!(
        sample(&own, "synprobe_exporter_overloaded_total"),
        Some(1.0),
        "{own}"
    );
}

#[test]
fn modules_and_the_scrape_timeout_decide_the_probe() {
    if !root_or_skip("modules_and_the_scrape_timeout_decide_the_probe") {
        return;
    }
    let lab = scenario_lab();
    let (v4, v6) = (lab.server_v4(), lab.server_v6());
    lab.hosts(
        lab.client_ns(),
        &[
            ("server.lab.test", v4.into()),
            ("server.lab.test", v6.into()),
            ("v6only.lab.test", v6.into()),
        ],
    );
    let dir = TempDir::new("exporter-modules");
    let config = dir.path().join("synprobe.toml");
    std::fs::write(
        &config,
        "[modules.v4]\nplan = \"quick\"\npreferred_ip_protocol = \"ip4\"\nip_protocol_fallback = false\n\
         timeout = 1.5\n",
    )
    .expect("the config is written");
    let v6_allow = format!("{v6}/128");
    let _exporter = start_exporter(
        &lab,
        dir.path(),
        &[
            "--allow",
            &v6_allow,
            "--config",
            config.to_str().expect("path"),
        ],
    );
    let scrape = |target: &str, module: &str, timeout: &str| {
        let url = format!("{}&module={module}", probe_url(target));
        let header = format!("X-Prometheus-Scrape-Timeout-Seconds: {timeout}");
        let (code, body) = get(&lab, &url, &["-H", &header]);
        assert_eq!(code, 200, "{target} {module}: {body}");
        body
    };
    // The default module prefers IPv6 (as blackbox_exporter); `v4` prefers IPv4 and has no fallback.
    let body = scrape(&format!("server.lab.test:{CLOSED}"), "default", "10");
    assert_eq!(sample(&body, "probe_ip_protocol"), Some(6.0), "{body}");
    assert!(
        sample(&body, "probe_dns_lookup_time_seconds").is_some_and(|t| t > 0.0),
        "{body}"
    );
    let body = scrape(&format!("server.lab.test:{CLOSED}"), "v4", "10");
    assert_eq!(sample(&body, "probe_ip_protocol"), Some(4.0), "{body}");
    assert_eq!(
        sample(&body, "probe_failure_info{reason=\"closed\"}"),
        Some(1.0),
        "{body}"
    );
    let body = scrape(&format!("v6only.lab.test:{CLOSED}"), "v4", "10");
    assert_eq!(sample(&body, "probe_success"), Some(0.0), "{body}");
    assert!(
        !body.contains("probe_synprobe_verdict"),
        "no probe without an IPv4 address: {body}"
    );
    // The scrape's timeout minus the 0.5 s offset bounds a silent port's probe (the full plan would wait 3.5 s
    // for its SYN alone); the module's own timeout (1.5 s) bounds it when the scrape allows more.
    let body = scrape(&format!("{v4}:{DROP_AT_R1}"), "default", "1");
    let took = sample(&body, "probe_duration_seconds").expect("a duration");
    assert!(took < 0.9, "{took} s: {body}");
    assert_eq!(
        sample(&body, "probe_failure_info{reason=\"filtered\"}"),
        Some(1.0),
        "{body}"
    );
    let body = scrape(&format!("{v4}:{DROP_AT_R1}"), "v4", "30");
    let took = sample(&body, "probe_duration_seconds").expect("a duration");
    assert!(took < 2.0, "{took} s: {body}");
}
