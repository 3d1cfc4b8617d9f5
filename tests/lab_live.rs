//! Live probing against real Linux stacks, firewalls and routes, in a lab of network namespaces:
//! `client -- r1 -- r2 -- server` (the server 3 hops away). Every scenario of the issue sits on its own port or
//! address, and one `synprobe` run probes them all concurrently, so several targets at once are tested too.
//! Needs root (CI runs it as root; elsewhere it says SKIP).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use synprobe_tests::lab::{root_or_skip, Lab};
use synprobe_tests::live::{check, probe, reports};
use synprobe_tests::{synprobe_bin, TempDir};

const OPEN: u16 = 80;
const CLOSED: u16 = 81;
const RST_AT_R2: u16 = 82;
const RST_ON_HOST: u16 = 83;
const ICMP_PORT_AT_R1: u16 = 84;
const ICMP_ADMIN_AT_R1: u16 = 85;
const ICMP_HOST_ON_HOST: u16 = 86;
const DROP_AT_R1: u16 = 87;
const DROP_ON_HOST: u16 = 88;
const LOCALHOST_ONLY: u16 = 89;
const ICMP_PORT_ON_HOST: u16 = 90;
const ICMP_ADMIN_ON_HOST: u16 = 91;

fn rule(lab: &Lab, ns: &str, v6: bool, chain: &str, port: u16, target: &[&str]) {
    let port = port.to_string();
    let mut args = vec!["-A", chain, "-p", "tcp", "--dport", port.as_str(), "-j"];
    args.extend_from_slice(target);
    lab.iptables(ns, v6, &args);
}

/// Build the lab and its rules for one address family; returns the lab and the route-test addresses.
fn scenario_lab(v6: bool) -> (Lab, IpAddr, IpAddr) {
    let lab = Lab::new(2);
    let (r1, r2, host) = (
        lab.router_ns(1).to_string(),
        lab.router_ns(2).to_string(),
        lab.server_ns().to_string(),
    );
    let (port_unreach, admin, host_prohib) = if v6 {
        (
            "icmp6-port-unreachable",
            "icmp6-adm-prohibited",
            "icmp6-adm-prohibited",
        )
    } else {
        (
            "icmp-port-unreachable",
            "icmp-admin-prohibited",
            "icmp-host-prohibited",
        )
    };
    rule(
        &lab,
        &r2,
        v6,
        "FORWARD",
        RST_AT_R2,
        &["REJECT", "--reject-with", "tcp-reset"],
    );
    rule(
        &lab,
        &host,
        v6,
        "INPUT",
        RST_ON_HOST,
        &["REJECT", "--reject-with", "tcp-reset"],
    );
    rule(
        &lab,
        &r1,
        v6,
        "FORWARD",
        ICMP_PORT_AT_R1,
        &["REJECT", "--reject-with", port_unreach],
    );
    rule(
        &lab,
        &r1,
        v6,
        "FORWARD",
        ICMP_ADMIN_AT_R1,
        &["REJECT", "--reject-with", admin],
    );
    rule(
        &lab,
        &host,
        v6,
        "INPUT",
        ICMP_HOST_ON_HOST,
        &["REJECT", "--reject-with", host_prohib],
    );
    rule(
        &lab,
        &host,
        v6,
        "INPUT",
        ICMP_PORT_ON_HOST,
        &["REJECT", "--reject-with", port_unreach],
    );
    rule(
        &lab,
        &host,
        v6,
        "INPUT",
        ICMP_ADMIN_ON_HOST,
        &["REJECT", "--reject-with", admin],
    );
    rule(&lab, &r1, v6, "FORWARD", DROP_AT_R1, &["DROP"]);
    rule(&lab, &host, v6, "INPUT", DROP_ON_HOST, &["DROP"]);
    // Absent addresses on the server's link, with an `unreachable` and a `prohibit` route on r1.
    let (unreach, prohibit): (IpAddr, IpAddr) = if v6 {
        (
            "2001:db8:0:2::77".parse().expect("addr"),
            "2001:db8:0:2::78".parse().expect("addr"),
        )
    } else {
        (
            "198.18.2.77".parse().expect("addr"),
            "198.18.2.78".parse().expect("addr"),
        )
    };
    let plen = if v6 { "128" } else { "32" };
    lab.route(&r1, &["add", "unreachable", &format!("{unreach}/{plen}")]);
    lab.route(&r1, &["add", "prohibit", &format!("{prohibit}/{plen}")]);
    (lab, unreach, prohibit)
}

fn matrix(v6: bool) {
    let (lab, unreach, prohibit) = scenario_lab(v6);
    let server: IpAddr = if v6 {
        lab.server_v6().into()
    } else {
        lab.server_v4().into()
    };
    let r1: IpAddr = if v6 {
        lab.router_v6(1).into()
    } else {
        lab.router_v4(1).into()
    };
    let r2: IpAddr = if v6 {
        lab.router_v6(2).into()
    } else {
        lab.router_v4(2).into()
    };
    let _open = lab.listen(lab.server_ns(), server, OPEN);
    let loopback: IpAddr = if v6 {
        "::1".parse().expect("addr")
    } else {
        "127.0.0.1".parse().expect("addr")
    };
    let _local = lab.listen(lab.server_ns(), loopback, LOCALHOST_ONLY);
    let dir = TempDir::new(if v6 { "lab6" } else { "lab4" });
    let pcapng = dir.path().join("run.pcapng");
    let target = server.to_string();
    let out = probe(
        &lab,
        &[
            &target,
            "80-91",
            "--json",
            "--explain",
            "-w",
            pcapng.to_str().expect("path"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let all = reports(&out);
    assert_eq!(all.len(), 12, "one report per port; stderr: {stderr}");
    let at = |port: u16| {
        all.get(&(target.clone(), port))
            .unwrap_or_else(|| panic!("no report for {port}"))
    };
    check(at(OPEN), "open", None);
    assert_eq!(at(OPEN)["target_hops"], 3);
    check(at(CLOSED), "closed", Some((server, 3, true)));
    check(at(LOCALHOST_ONLY), "closed", Some((server, 3, true)));
    check(at(RST_AT_R2), "firewall-rst", Some((r2, 2, false)));
    assert_eq!(at(RST_AT_R2)["target_hops"], 3);
    check(at(RST_ON_HOST), "firewall-rst", Some((server, 3, true)));
    assert_eq!(at(RST_ON_HOST)["target_hops"], 3);
    check(at(ICMP_PORT_AT_R1), "icmp-rejected", Some((r1, 1, false)));
    check(at(ICMP_ADMIN_AT_R1), "icmp-rejected", Some((r1, 1, false)));
    check(
        at(ICMP_HOST_ON_HOST),
        "icmp-rejected",
        Some((server, 3, true)),
    );
    check(
        at(ICMP_PORT_ON_HOST),
        "icmp-rejected",
        Some((server, 3, true)),
    );
    check(
        at(ICMP_ADMIN_ON_HOST),
        "icmp-rejected",
        Some((server, 3, true)),
    );
    check(at(DROP_AT_R1), "filtered", None);
    assert!(
        at(DROP_AT_R1)["headline"]
            .as_str()
            .expect("headline")
            .contains("after hop 1"),
        "{}",
        at(DROP_AT_R1)
    );
    check(at(DROP_ON_HOST), "filtered", None);
    assert!(
        at(DROP_ON_HOST)["headline"]
            .as_str()
            .expect("headline")
            .contains("after hop 2"),
        "{}",
        at(DROP_ON_HOST)
    );
    assert_eq!(at(DROP_ON_HOST)["target_hops"], 3);
    // Exit code: the highest verdict class (filtered).
    assert_eq!(out.status.code(), Some(14), "stderr: {stderr}");

    // Routes: an `unreachable` and a `prohibit` route on r1.
    let out = probe(&lab, &[&unreach.to_string(), "443", "--json", "--explain"]);
    let r = reports(&out);
    check(
        r.values().next().expect("a report"),
        "unreachable",
        Some((r1, 1, false)),
    );
    assert_eq!(out.status.code(), Some(13));
    let out = probe(&lab, &[&prohibit.to_string(), "443", "--json", "--explain"]);
    let r = reports(&out);
    check(
        r.values().next().expect("a report"),
        "icmp-rejected",
        Some((r1, 1, false)),
    );
    assert_eq!(out.status.code(), Some(12));

    // The pcapng: tshark reads it, it carries per-packet comments, and a replay judges as the live run did.
    check_pcapng(&pcapng, &all, &target);
}

fn check_pcapng(pcapng: &Path, live: &HashMap<(String, u16), Value>, target: &str) {
    let tshark = std::process::Command::new("tshark")
        .args([
            "-r",
            pcapng.to_str().expect("path"),
            "-T",
            "fields",
            "-e",
            "frame.comment",
        ])
        .output();
    match tshark {
        Ok(o) => {
            assert!(
                o.status.success(),
                "tshark reads the pcapng: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let comments = String::from_utf8_lossy(&o.stdout);
            assert!(
                comments.contains("main SYN"),
                "per-packet comments: {comments}"
            );
            assert!(comments.contains("TTL walk"), "{comments}");
            assert!(
                comments.contains("verdict: firewall-rst"),
                "the verdict each packet supported: {comments}"
            );
        }
        Err(_) => assert!(std::env::var("CI").is_err(), "tshark is installed in CI"),
    }
    let replay = std::process::Command::new(synprobe_bin())
        .args(["replay", "--json", pcapng.to_str().expect("path")])
        .output()
        .expect("replay runs");
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let mut checked = 0;
    for line in String::from_utf8_lossy(&replay.stdout).lines() {
        let v: Value = serde_json::from_str(line).expect("json");
        if v["type"] != "attempt" || v["target"] != target {
            continue;
        }
        let port = v["port"].as_u64().expect("port") as u16;
        let Some(live_report) = live.get(&(target.to_string(), port)) else {
            continue;
        };
        // The main SYN of each port: the first with TTL 64 and TOS 0 (its client port).
        if v["client_port"].as_u64() == live_first_client_port(live_report, port) {
            assert_eq!(
                v["verdict"], live_report["verdict"],
                "replay of port {port}: {v}\nlive: {live_report}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "compared {checked} main attempts");
}

/// The client port of the live run's main SYN to `port` (the first SYN with TTL 64 and TOS 0 to it).
fn live_first_client_port(report: &Value, port: u16) -> Option<u64> {
    report["packets"].as_array()?.iter().find_map(|p| {
        let s = p["summary"].as_str()?;
        let tail = format!(" → {port} [SYN]");
        if p["role"] != "syn" || p["ttl"] != 64 || p["tos"] != 0 || !s.contains(&tail) {
            return None;
        }
        // "… TCP 74 51234 → 81 [SYN] …": the number before the arrow.
        let before = s.split(&tail).next()?;
        before.split_whitespace().last()?.parse().ok()
    })
}

#[test]
fn ipv4_every_scenario() {
    if !root_or_skip("ipv4_every_scenario") {
        return;
    }
    matrix(false);
}

#[test]
fn ipv6_every_scenario() {
    if !root_or_skip("ipv6_every_scenario") {
        return;
    }
    matrix(true);
}

#[test]
fn without_cap_net_raw_the_error_names_sudo_and_setcap() {
    if !root_or_skip("without_cap_net_raw_the_error_names_sudo_and_setcap") {
        return;
    }
    let lab = Lab::new(1);
    let bin = synprobe_bin();
    let target = lab.server_v4().to_string();
    let out = lab.run_in(
        lab.client_ns(),
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            bin.to_str().expect("path"),
            &target,
            "80",
        ],
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(
        err.contains("sudo") && err.contains("setcap cap_net_raw,cap_net_admin+ep"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn privileges_are_dropped_to_the_invoking_user_and_output_is_theirs() {
    if !root_or_skip("privileges_are_dropped_to_the_invoking_user_and_output_is_theirs") {
        return;
    }
    let lab = Lab::new(1);
    let bin = synprobe_bin();
    let dir = TempDir::new("priv");
    let file = dir.path().join("run.pcapng");
    let target = lab.server_v4().to_string();
    let out = lab
        .command(lab.client_ns(), bin.to_str().expect("path"))
        .args([
            &target,
            "81",
            "--quick",
            "-v",
            "-w",
            file.to_str().expect("path"),
        ])
        .env("SUDO_UID", "4242")
        .env("SUDO_GID", "4343")
        .output()
        .expect("synprobe runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "closed port: {err}");
    assert!(err.contains("now uid 4242 gid 4343"), "{err}");
    assert!(
        err.contains("CapEff: 0000000000000000") && err.contains("CapPrm: 0000000000000000"),
        "{err}"
    );
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&file).expect("the pcapng exists");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (4242, 4343),
        "the capture belongs to the invoking user"
    );
    // Without SUDO_UID, root becomes nobody.
    let out = lab
        .command(lab.client_ns(), bin.to_str().expect("path"))
        .args([&target, "81", "--quick", "-v"])
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .output()
        .expect("synprobe runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("now uid 65534"), "{err}");
}

#[test]
fn loopback_names_and_our_own_rst() {
    if !root_or_skip("loopback_names_and_our_own_rst") {
        return;
    }
    let lab = Lab::new(1);
    let server: IpAddr = lab.server_v4().into();
    let _open = lab.listen(lab.server_ns(), server, OPEN);
    // Loopback inside the client's namespace: the kernel's own closed port.
    let out = probe(&lab, &["127.0.0.1", "9", "--json", "--explain"]);
    let r = reports(&out);
    check(
        r.values().next().expect("report"),
        "closed",
        Some(("127.0.0.1".parse().expect("addr"), 0, true)),
    );
    // A host name resolves to all its addresses (ip netns exec mounts /etc/netns/<ns>/hosts over /etc/hosts).
    let etc = Path::new("/etc/netns").join(lab.client_ns());
    std::fs::create_dir_all(&etc).expect("/etc/netns/<ns>");
    let hosts = format!(
        "{} lab-server\n{} lab-server\n",
        lab.server_v4(),
        lab.server_v6()
    );
    std::fs::write(etc.join("hosts"), hosts).expect("hosts file");
    let both = probe(&lab, &["lab-server", "81", "--json", "--explain"]);
    let v4_only = probe(&lab, &["lab-server", "81", "--json", "--explain", "-4"]);
    let _ = std::fs::remove_dir_all(&etc);
    let r = reports(&both);
    assert_eq!(r.len(), 2, "both addresses of the name: {r:?}");
    assert!(r
        .values()
        .all(|v| v["host"] == "lab-server" && v["verdict"] == "closed"));
    let only4 = reports(&v4_only);
    assert_eq!(only4.len(), 1);
    assert!(only4
        .keys()
        .all(|(t, _)| t.parse::<IpAddr>().is_ok_and(|a| a.is_ipv4())));
    // An open port: our kernel answers the unexpected SYN-ACK with its own RST, marked as ours in the trace.
    let out = probe(&lab, &[&server.to_string(), "80", "--json", "--explain"]);
    let r = reports(&out);
    let open = r.values().next().expect("report");
    assert_eq!(open["verdict"], "open");
    let ours: Vec<&Value> = open["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .filter(|p| p["role"] == "ours")
        .collect();
    assert!(
        !ours.is_empty()
            && ours
                .iter()
                .all(|p| p["summary"].as_str().is_some_and(|s| s.contains("[RST]"))),
        "{open}"
    );
}

#[test]
fn ctrl_c_leaves_a_complete_pcapng_and_a_partial_report() {
    if !root_or_skip("ctrl_c_leaves_a_complete_pcapng_and_a_partial_report") {
        return;
    }
    let (lab, _, _) = scenario_lab(false);
    let dir = TempDir::new("sigint");
    let file = dir.path().join("partial.pcapng");
    let target = lab.server_v4().to_string();
    let child = lab
        .command(lab.client_ns(), synprobe_bin().to_str().expect("path"))
        .args([
            &target,
            &DROP_ON_HOST.to_string(),
            "--json",
            "--explain",
            "-w",
            file.to_str().expect("path"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("synprobe starts");
    std::thread::sleep(Duration::from_millis(400));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("synprobe ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let r = reports(&out);
    assert_eq!(r.len(), 1, "the partial report is printed");
    if let Ok(t) = std::process::Command::new("tshark")
        .args(["-r", file.to_str().expect("path")])
        .output()
    {
        assert!(
            t.status.success(),
            "tshark reads the interrupted capture: {}",
            String::from_utf8_lossy(&t.stderr)
        );
        assert!(String::from_utf8_lossy(&t.stdout).contains("[SYN]"));
    }
    let replay = std::process::Command::new(synprobe_bin())
        .args(["replay", file.to_str().expect("path")])
        .output()
        .expect("replay");
    assert_eq!(
        replay.status.code(),
        Some(0),
        "the interrupted pcapng is complete"
    );
}
