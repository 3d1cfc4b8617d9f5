//! Sweeps (`synprobe HOST 1-65535`) against a lab whose every port's truth is known, with every kernel default
//! kept (ICMP rate limits included): listeners; a REJECT tcp-reset rule, an ICMP port-unreachable rule over more
//! ports than the host's ICMP burst, and DROP rules on the host; a router two hops out forging RSTs for a few
//! ports, the first router dropping one port and rejecting another with ICMP; a Docker-style port forward to a
//! container where nothing listens. Every port of the range must come back, each with its verdict, its
//! rejecter's address and kind. The lab is `client -- r1 -- r2 -- server` (the server 3 hops away, the container
//! one hop beyond). Needs root (CI runs it as root; elsewhere it says SKIP).

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;
use synprobe_tests::lab::{root_or_skip, Lab};
use synprobe_tests::live::probe;

const FORWARDED: u16 = 8080;

/// What the lab makes of each port: verdict, and the rejecter's (address, hops, kind).
struct Truth {
    server: IpAddr,
    r1: IpAddr,
    r2: IpAddr,
}

impl Truth {
    fn of(&self, port: u16) -> (&'static str, Option<(IpAddr, u64, &'static str)>) {
        match port {
            22 | 80 | 443 => ("open", None),
            3306 => ("firewall-rst", Some((self.server, 3, "target"))),
            5432..=5439 => ("icmp-rejected", Some((self.server, 3, "target"))),
            6379 | 9000..=9009 | 445 => ("filtered", None),
            25 | 135..=139 => ("firewall-rst", Some((self.r2, 2, "router"))),
            23 => ("icmp-rejected", Some((self.r1, 1, "router"))),
            FORWARDED => ("closed", Some((self.server, 4, "backend"))),
            _ => ("closed", Some((self.server, 3, "target"))),
        }
    }
}

fn rule(lab: &Lab, ns: &str, v6: bool, chain: &str, ports: &str, target: &[&str]) {
    let mut args = vec![
        "-A",
        chain,
        "-p",
        "tcp",
        "-m",
        "multiport",
        "--dports",
        ports,
        "-j",
    ];
    args.extend_from_slice(target);
    lab.iptables(ns, v6, &args);
}

/// The lab of the module documentation; returns it with the truth and the listeners (kept alive).
fn sweep_lab(v6: bool) -> (Lab, Truth, Vec<Box<dyn std::any::Any>>) {
    let lab = Lab::new(2);
    let truth = if v6 {
        Truth {
            server: lab.server_v6().into(),
            r1: lab.router_v6(1).into(),
            r2: lab.router_v6(2).into(),
        }
    } else {
        Truth {
            server: lab.server_v4().into(),
            r1: lab.router_v4(1).into(),
            r2: lab.router_v4(2).into(),
        }
    };
    let (port_unreach, admin) = if v6 {
        ("icmp6-port-unreachable", "icmp6-adm-prohibited")
    } else {
        ("icmp-port-unreachable", "icmp-admin-prohibited")
    };
    let (host, r1, r2) = (
        lab.server_ns().to_string(),
        lab.router_ns(1).to_string(),
        lab.router_ns(2).to_string(),
    );
    let reset = ["REJECT", "--reject-with", "tcp-reset"];
    rule(&lab, &host, v6, "INPUT", "3306", &reset);
    rule(
        &lab,
        &host,
        v6,
        "INPUT",
        "5432:5439",
        &["REJECT", "--reject-with", port_unreach],
    );
    rule(&lab, &host, v6, "INPUT", "6379,9000:9009", &["DROP"]);
    rule(&lab, &r2, v6, "FORWARD", "25,135:139", &reset);
    rule(&lab, &r1, v6, "FORWARD", "445", &["DROP"]);
    rule(
        &lab,
        &r1,
        v6,
        "FORWARD",
        "23",
        &["REJECT", "--reject-with", admin],
    );
    let web = lab.container("web");
    web.publish(&lab, FORWARDED, 81);
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    for p in [22, 80, 443] {
        keep.push(Box::new(lab.listen(&host, truth.server, p)));
    }
    keep.push(Box::new(web));
    (lab, truth, keep)
}

/// Sweep `ports` of the server; every port's record, and the closing sweep record.
fn sweep(lab: &Lab, target: IpAddr, ports: &str) -> (HashMap<u16, Value>, Value) {
    let target = target.to_string();
    let out = probe(lab, &[&target, ports, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut per_port = HashMap::new();
    let mut summary = Value::Null;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        match v["type"].as_str() {
            Some("probe") => {
                let port = v["port"].as_u64().expect("port") as u16;
                assert!(
                    per_port.insert(port, v).is_none(),
                    "port {port} reported twice"
                );
            }
            Some("sweep") => summary = v,
            other => panic!("unexpected record type {other:?}: {line}"),
        }
    }
    assert!(!per_port.is_empty(), "no report; stderr: {stderr}");
    (per_port, summary)
}

fn assert_truth(
    truth: &Truth,
    per_port: &HashMap<u16, Value>,
    range: std::ops::RangeInclusive<u16>,
) {
    let mut wrong = Vec::new();
    for port in range.clone() {
        let Some(r) = per_port.get(&port) else {
            wrong.push(format!("{port}: missing"));
            continue;
        };
        let (verdict, rejecter) = truth.of(port);
        let got_rejecter = (!r["rejecter"].is_null()).then(|| {
            (
                r["rejecter"]["addr"].as_str().unwrap_or("").to_string(),
                r["rejecter"]["hops"].as_u64().unwrap_or(0),
                r["rejecter"]["kind"].as_str().unwrap_or("").to_string(),
            )
        });
        let want_rejecter = rejecter.map(|(a, h, k)| (a.to_string(), h, k.to_string()));
        if r["verdict"] != verdict || got_rejecter != want_rejecter {
            let codes: Vec<&str> = r["evidence"]
                .as_array()
                .map(|e| e.iter().filter_map(|x| x["code"].as_str()).collect())
                .unwrap_or_default();
            wrong.push(format!(
                "{port}: {} {got_rejecter:?}, want {verdict} {want_rejecter:?} ({codes:?})",
                r["verdict"]
            ));
        }
    }
    assert_eq!(
        per_port.len(),
        range.count(),
        "one record per port, no more"
    );
    assert!(
        wrong.is_empty(),
        "{} port(s) wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

fn sweep_is_right(v6: bool, last: u16) {
    let (lab, truth, _keep) = sweep_lab(v6);
    let (per_port, summary) = sweep(&lab, truth.server, &format!("1-{last}"));
    assert_truth(&truth, &per_port, 1..=last);
    assert_eq!(summary["ports"], u64::from(last), "{summary:#}");
    let groups = summary["groups"].as_array().expect("groups");
    let counted: u64 = groups
        .iter()
        .map(|g| g["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        counted,
        u64::from(last),
        "every port in one group: {summary:#}"
    );
    // The forged RSTs are one group, named by the router, with their ports compressed.
    assert!(
        groups.iter().any(|g| g["verdict"] == "firewall-rst"
            && g["rejecter"]["addr"] == truth.r2.to_string()
            && g["ports"] == "25,135-139"),
        "{summary:#}"
    );
}

#[test]
fn sweep_of_ten_thousand_ports_judges_each_right_ipv4() {
    if root_or_skip("sweep_of_ten_thousand_ports_judges_each_right_ipv4") {
        sweep_is_right(false, 10_000);
    }
}

#[test]
fn sweep_of_ten_thousand_ports_judges_each_right_ipv6() {
    if root_or_skip("sweep_of_ten_thousand_ports_judges_each_right_ipv6") {
        sweep_is_right(true, 10_000);
    }
}

#[test]
fn sweep_of_every_port_misses_none_ipv4() {
    if root_or_skip("sweep_of_every_port_misses_none_ipv4") {
        sweep_is_right(false, 65_535);
    }
}

#[test]
fn sweep_report_groups_ports_as_a_scan_reads() {
    if !root_or_skip("sweep_report_groups_ports_as_a_scan_reads") {
        return;
    }
    let (lab, truth, _keep) = sweep_lab(false);
    let out = probe(
        &lab,
        &[&truth.server.to_string(), "1-1000", "--color", "never"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // Exit code: the highest verdict code, filtered (14), as for several ports of a probe.
    assert_eq!(out.status.code(), Some(14), "{text}");
    assert!(text.contains("1000 port(s) swept"), "{text}");
    assert!(text.contains("25,135-139: RST forged by router"), "{text}");
    assert!(text.contains("22,80,443:"), "{text}");
    // The host's own closed ports are one line, not 980.
    let closed_lines = text
        .lines()
        .filter(|l| l.trim_start().starts_with("closed"))
        .count();
    assert_eq!(closed_lines, 1, "{text}");
}

#[test]
fn sweep_of_this_hosts_own_address_counts_from_hop_0() {
    if !root_or_skip("sweep_of_this_hosts_own_address_counts_from_hop_0") {
        return;
    }
    let (lab, truth, _keep) = sweep_lab(false);
    let bin = synprobe_tests::synprobe_bin();
    // From the server itself: the routers' rules are not on the way, the host's are.
    let out = lab.run_in(
        lab.server_ns(),
        bin.to_str().expect("path"),
        &[&truth.server.to_string(), "1-7000", "--json"],
        std::time::Duration::from_secs(60),
    );
    let mut seen = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).expect("JSON");
        if v["type"] != "probe" {
            continue;
        }
        seen += 1;
        let port = v["port"].as_u64().expect("port") as u16;
        let want = match port {
            22 | 80 | 443 => "open",
            3306 => "firewall-rst",
            5432..=5439 => "icmp-rejected",
            6379 => "filtered",
            _ => "closed",
        };
        assert_eq!(v["verdict"], want, "port {port}: {v:#}");
        assert_eq!(v["target_hops"], 0, "port {port}: {v:#}");
        if want != "open" && want != "filtered" {
            assert_eq!(v["rejecter"]["addr"], truth.server.to_string(), "{v:#}");
            assert_eq!(v["rejecter"]["hops"], 0, "port {port}: {v:#}");
        }
    }
    assert_eq!(seen, 7000, "{}", String::from_utf8_lossy(&out.stderr));
}
