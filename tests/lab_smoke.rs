//! Smoke tests of the network-namespace lab itself (`synprobe_tests::lab`).
//!
//! Run as root: `sudo -E cargo test -p synprobe-tests --test lab_smoke`.
//! Without root every test prints a SKIP line and passes, unless `CI=true`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use synprobe_tests::lab::{
    root_or_skip, ConnectOutcome, Lab, Listener, NftHook, PingOutcome, MAX_ROUTERS,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Namespace names currently known to `ip netns`.
fn netns_names() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Waits briefly until `listener` has counted `n` accepted connections.
fn wait_accepted(listener: &Listener, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(3);
    while listener.accepted() < n && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    listener.accepted()
}

/// Both server addresses of `lab` with `port`.
fn server_addrs(lab: &Lab, port: u16) -> [SocketAddr; 2] {
    [
        SocketAddr::new(lab.server_v4().into(), port),
        SocketAddr::new(lab.server_v6().into(), port),
    ]
}

#[test]
fn every_router_count_routes_both_families() {
    if !root_or_skip("every_router_count_routes_both_families") {
        return;
    }
    for routers in 0..=MAX_ROUTERS {
        let lab = Lab::new(routers);
        assert_eq!(lab.hops(), routers + 1);
        assert_eq!(lab.namespaces().len(), routers + 2);
        for dst in [IpAddr::from(lab.server_v4()), lab.server_v6().into()] {
            assert!(
                lab.ping(lab.client_ns(), dst),
                "{routers} routers: client cannot ping {dst}"
            );
        }
        // ...and back: the server reaches the client.
        for dst in [IpAddr::from(lab.client_v4()), lab.client_v6().into()] {
            assert!(
                lab.ping(lab.server_ns(), dst),
                "{routers} routers: server cannot ping {dst}"
            );
        }
    }
}

#[test]
fn router_addresses_are_the_icmp_error_sources() {
    if !root_or_skip("router_addresses_are_the_icmp_error_sources") {
        return;
    }
    let lab = Lab::new(3);
    for dst in [IpAddr::from(lab.server_v4()), lab.server_v6().into()] {
        let time_exceeded = if dst.is_ipv6() { 3 } else { 11 };
        for hop in 1..=lab.routers() {
            let expected = if dst.is_ipv6() {
                IpAddr::from(lab.router_v6(hop))
            } else {
                IpAddr::from(lab.router_v4(hop))
            };
            let ttl = u8::try_from(hop).expect("small hop count");
            assert_eq!(
                lab.ping_ttl(lab.client_ns(), dst, ttl),
                PingOutcome::Error {
                    from: expected,
                    icmp_type: time_exceeded,
                    code: 0
                },
                "TTL {hop} towards {dst}"
            );
        }
        // One more hop reaches the server itself.
        let ttl = u8::try_from(lab.hops()).expect("small hop count");
        assert_eq!(
            lab.ping_ttl(lab.client_ns(), dst, ttl),
            PingOutcome::Reply(dst)
        );
    }
}

#[test]
fn listener_accepts_and_closed_port_is_refused() {
    if !root_or_skip("listener_accepts_and_closed_port_is_refused") {
        return;
    }
    let lab = Lab::new(2);
    let listeners: Vec<Listener> = server_addrs(&lab, 8080)
        .iter()
        .map(|a| lab.listen(lab.server_ns(), a.ip(), a.port()))
        .collect();
    for listener in &listeners {
        assert_eq!(
            lab.connect(lab.client_ns(), listener.addr(), CONNECT_TIMEOUT),
            ConnectOutcome::Connected,
            "connect to {}",
            listener.addr()
        );
        assert_eq!(wait_accepted(listener, 1), 1, "{}", listener.addr());
    }
    for closed in server_addrs(&lab, 8081) {
        assert_eq!(
            lab.connect(lab.client_ns(), closed, CONNECT_TIMEOUT),
            ConnectOutcome::Refused,
            "connect to closed {closed}"
        );
    }
    // A stopped listener's port is closed again.
    for listener in listeners {
        let addr = listener.addr();
        listener.stop();
        assert_eq!(
            lab.connect(lab.client_ns(), addr, CONNECT_TIMEOUT),
            ConnectOutcome::Refused
        );
    }
}

#[test]
fn localhost_listener_is_reachable_only_locally() {
    if !root_or_skip("localhost_listener_is_reachable_only_locally") {
        return;
    }
    let lab = Lab::new(1);
    let server = lab.server_ns();
    let local4 = lab.listen(server, Ipv4Addr::LOCALHOST.into(), 8082);
    let local6 = lab.listen(server, Ipv6Addr::LOCALHOST.into(), 8082);
    for local in [&local4, &local6] {
        assert_eq!(
            lab.connect(server, local.addr(), CONNECT_TIMEOUT),
            ConnectOutcome::Connected
        );
    }
    for remote in server_addrs(&lab, 8082) {
        assert_eq!(
            lab.connect(lab.client_ns(), remote, CONNECT_TIMEOUT),
            ConnectOutcome::Refused,
            "{remote} must look closed from the client"
        );
    }
    assert_eq!(wait_accepted(&local4, 1), 1);
    assert_eq!(wait_accepted(&local6, 1), 1);
}

#[test]
fn ephemeral_port_listener_reports_its_port() {
    if !root_or_skip("ephemeral_port_listener_reports_its_port") {
        return;
    }
    let lab = Lab::new(0);
    let listener = lab.listen(lab.server_ns(), Ipv4Addr::UNSPECIFIED.into(), 0);
    assert_ne!(listener.port(), 0);
    let dst = SocketAddr::new(lab.server_v4().into(), listener.port());
    assert_eq!(
        lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT),
        ConnectOutcome::Connected
    );
}

/// iptables target arguments for IPv4 and IPv6.
type Targets = [&'static [&'static str]; 2];

#[test]
fn firewall_and_route_helpers_change_the_outcome() {
    if !root_or_skip("firewall_and_route_helpers_change_the_outcome") {
        return;
    }
    let lab = Lab::new(2);
    let (r1, r2, server) = (lab.router_ns(1), lab.router_ns(2), lab.server_ns());
    let _open = [
        lab.listen(server, Ipv4Addr::UNSPECIFIED.into(), 90),
        lab.listen(server, Ipv6Addr::UNSPECIFIED.into(), 90),
    ];
    let refused = || [ConnectOutcome::Refused, ConnectOutcome::Refused];
    let failed = |v4: &str, v6: &str| {
        [
            ConnectOutcome::Failed(v4.into()),
            ConnectOutcome::Failed(v6.into()),
        ]
    };
    // port, namespace, chain, [v4, v6] target arguments, [v4, v6] outcome
    let cases: [(u16, &str, &str, Targets, [ConnectOutcome; 2]); 5] = [
        (
            91,
            r2,
            "FORWARD",
            [&["REJECT", "--reject-with", "tcp-reset"]; 2],
            refused(),
        ),
        (
            92,
            server,
            "INPUT",
            [&["REJECT", "--reject-with", "tcp-reset"]; 2],
            refused(),
        ),
        (
            93,
            r1,
            "FORWARD",
            [
                &["REJECT", "--reject-with", "icmp-port-unreachable"],
                &["REJECT", "--reject-with", "icmp6-port-unreachable"],
            ],
            refused(),
        ),
        (
            94,
            r1,
            "FORWARD",
            [
                &["REJECT", "--reject-with", "icmp-admin-prohibited"],
                &["REJECT", "--reject-with", "icmp6-adm-prohibited"],
            ],
            failed("EHOSTUNREACH", "EACCES"),
        ),
        (
            95,
            r1,
            "FORWARD",
            [&["DROP"]; 2],
            [ConnectOutcome::TimedOut, ConnectOutcome::TimedOut],
        ),
    ];
    for (port, ns, chain, targets, expected) in cases {
        let dport = port.to_string();
        let dsts = server_addrs(&lab, port);
        for family in 0..2 {
            let mut rule = vec!["-A", chain, "-p", "tcp", "--dport", &dport, "-j"];
            rule.extend_from_slice(targets[family]);
            lab.iptables(ns, family == 1, &rule);
            // Only the silent drop waits for the timeout; keep that one short.
            let timeout = if expected[family] == ConnectOutcome::TimedOut {
                Duration::from_secs(1)
            } else {
                CONNECT_TIMEOUT
            };
            let outcome = lab.connect(lab.client_ns(), dsts[family], timeout);
            assert_eq!(
                outcome, expected[family],
                "{targets:?} in {ns} {chain}, connect to {}",
                dsts[family]
            );
        }
    }
    // The listener behind the firewall rules is still reachable on its own port.
    for dst in server_addrs(&lab, 90) {
        assert_eq!(
            lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT),
            ConnectOutcome::Connected
        );
    }
    // Unreachable / prohibit routes on r1 for the server address.
    let (v4, v6) = (
        format!("{}/32", lab.server_v4()),
        format!("{}/128", lab.server_v6()),
    );
    for (kind, expected) in [
        ("unreachable", failed("EHOSTUNREACH", "ENETUNREACH")),
        ("prohibit", failed("EHOSTUNREACH", "EACCES")),
    ] {
        lab.route(r1, &["add", kind, &v4]);
        lab.route(r1, &["add", kind, &v6]);
        for (dst, expected) in server_addrs(&lab, 90).into_iter().zip(expected) {
            assert_eq!(
                lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT),
                expected,
                "route {kind} on r1, connect to {dst}"
            );
        }
        lab.route(r1, &["del", &v4]);
        lab.route(r1, &["del", &v6]);
    }
}

#[test]
fn nft_rules_apply_inside_the_lab() {
    if !root_or_skip("nft_rules_apply_inside_the_lab") {
        return;
    }
    let lab = Lab::new(1);
    lab.nft(
        lab.router_ns(1),
        "add table inet lab\n\
         add chain inet lab forward_filter { type filter hook forward priority 0; }\n\
         add rule inet lab forward_filter tcp dport 96 reject with tcp reset\n",
    );
    for dst in server_addrs(&lab, 96) {
        assert_eq!(
            lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT),
            ConnectOutcome::Refused
        );
    }
}

#[test]
fn run_in_kills_on_timeout() {
    if !root_or_skip("run_in_kills_on_timeout") {
        return;
    }
    let lab = Lab::new(0);
    let started = Instant::now();
    let out = lab.run_in(
        lab.client_ns(),
        "sh",
        &["-c", "echo begun; sleep 30 & sleep 30"],
        Duration::from_millis(300),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "run_in waited too long"
    );
    assert!(!out.status.success());
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "begun\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("[lab] timed out"));

    let out = lab.run_in(lab.client_ns(), "true", &[], Duration::from_secs(5));
    assert!(out.status.success());
}

#[test]
fn drop_deletes_namespaces_and_kills_processes() {
    if !root_or_skip("drop_deletes_namespaces_and_kills_processes") {
        return;
    }
    let lab = Lab::new(2);
    let names = lab.namespaces().to_vec();
    let listener = lab.listen(lab.server_ns(), lab.server_v4().into(), 8083);
    let pid = listener.pid();
    // Leak the listener handle: the lab alone must kill the process.
    std::mem::forget(listener);
    let present = netns_names();
    assert!(
        names.iter().all(|n| present.contains(n)),
        "{names:?} not in {present:?}"
    );
    drop(lab);
    let present = netns_names();
    for name in &names {
        assert!(!present.contains(name), "{name} still listed after drop");
        assert!(
            !Path::new("/run/netns").join(name).exists(),
            "{name} still mounted"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    // Killed and, having no parent waiting for it yet, at most a zombie.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    };
    while alive() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(), "listener {pid} survived the lab");
}

#[test]
fn drop_cleans_up_after_a_panicking_test() {
    if !root_or_skip("drop_cleans_up_after_a_panicking_test") {
        return;
    }
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::new(1);
        let names = lab.namespaces().to_vec();
        std::panic::panic_any(names);
    });
    let names = result
        .expect_err("the closure panics")
        .downcast::<Vec<String>>()
        .expect("panic payload is the namespace list");
    let present = netns_names();
    assert!(
        names.iter().all(|n| !present.contains(n)),
        "{names:?} survived"
    );
}

#[test]
fn concurrent_labs_do_not_interfere() {
    if !root_or_skip("concurrent_labs_do_not_interfere") {
        return;
    }
    let workers: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                let lab = Lab::new(1 + i % 3);
                let listener = lab.listen(lab.server_ns(), lab.server_v6().into(), 8084);
                assert!(lab.ping(lab.client_ns(), lab.server_v4().into()));
                assert_eq!(
                    lab.connect(lab.client_ns(), listener.addr(), CONNECT_TIMEOUT),
                    ConnectOutcome::Connected
                );
                assert_eq!(wait_accepted(&listener, 1), 1);
                lab.id().to_owned()
            })
        })
        .collect();
    let mut ids: Vec<String> = workers
        .into_iter()
        .map(|w| w.join().expect("lab worker thread"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "lab ids must be unique: {ids:?}");
}

#[test]
fn sweep_stale_removes_namespaces_of_dead_processes() {
    if !root_or_skip("sweep_stale_removes_namespaces_of_dead_processes") {
        return;
    }
    // No process can have a pid above pid_max; our own pid as the counter
    // keeps concurrent test processes apart.
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .expect("read pid_max")
        .trim()
        .parse()
        .expect("pid_max is a number");
    let stale = format!("sp{}x{}-client", pid_max + 1, std::process::id());
    let status = Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .expect("ip netns add runs");
    assert!(status.success(), "create {stale}");
    let live = Lab::new(0);
    Lab::sweep_stale();
    let present = netns_names();
    assert!(!present.contains(&stale), "{stale} was not swept");
    assert!(
        live.namespaces().iter().all(|n| present.contains(n)),
        "a live lab was swept"
    );
}

#[test]
fn absent_host_is_unreachable_from_the_last_router() {
    if !root_or_skip("absent_host_is_unreachable_from_the_last_router") {
        return;
    }
    let lab = Lab::new(1);
    for dst in [IpAddr::from(lab.absent_v4()), lab.absent_v6().into()] {
        let started = Instant::now();
        let outcome = lab.connect(
            lab.client_ns(),
            SocketAddr::new(dst, 80),
            Duration::from_secs(8),
        );
        assert_eq!(
            outcome,
            ConnectOutcome::Failed("EHOSTUNREACH".into()),
            "{dst}"
        );
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "{dst}: neighbour resolution should take about 3 s"
        );
    }
}

/// `sysctl -n <key>` inside `ns`.
fn sysctl_value(lab: &Lab, ns: &str, key: &str) -> String {
    let out = lab.exec_ok(ns, &["sysctl", "-n", key]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn icmp_rate_limits_stay_at_kernel_defaults_unless_studied() {
    if !root_or_skip("icmp_rate_limits_stay_at_kernel_defaults_unless_studied") {
        return;
    }
    let lab = Lab::new(1);
    assert_icmp_ratelimits(&lab, "1000", "100");
    // With the kernel's limits, r1 answers a burst of 20 TTL-1 pings with
    // its burst of errors only: far fewer than 20.
    let dst = IpAddr::from(lab.server_v4());
    let errors = (0..20)
        .filter(|_| {
            matches!(
                lab.ping_ttl(lab.client_ns(), dst, 1),
                PingOutcome::Error { icmp_type: 11, .. }
            )
        })
        .count();
    assert!(errors < 20, "rate limit at r1: {errors} of 20 answered");

    let study = Lab::builder()
        .routers(1)
        .icmp_ratelimit_off_for_study()
        .build();
    assert_icmp_ratelimits(&study, "0", "0");
}

/// Every namespace of `lab`, a container's included, has these IPv4 and IPv6 ICMP rate limits.
fn assert_icmp_ratelimits(lab: &Lab, v4: &str, v6: &str) {
    let container = lab.container("web");
    let mut all = lab.namespaces().to_vec();
    all.push(container.namespace().to_owned());
    for ns in &all {
        assert_eq!(sysctl_value(lab, ns, "net.ipv4.icmp_ratelimit"), v4, "{ns}");
        assert_eq!(sysctl_value(lab, ns, "net.ipv6.icmp.ratelimit"), v6, "{ns}");
    }
}

#[test]
fn container_port_forward_like_docker() {
    if !root_or_skip("container_port_forward_like_docker") {
        return;
    }
    let lab = Lab::new(1);
    let web = lab.container("web");
    assert_eq!(web.v4(), Ipv4Addr::new(198, 19, 0, 2));
    assert_eq!(
        web.v6(),
        "2001:db8:ff::2".parse::<Ipv6Addr>().expect("literal")
    );
    let ns = web.namespace().to_owned();
    assert!(netns_names().contains(&ns));
    let open = [
        lab.listen(&ns, Ipv4Addr::UNSPECIFIED.into(), 8080),
        lab.listen(&ns, Ipv6Addr::UNSPECIFIED.into(), 8080),
    ];
    let _local = [
        lab.listen(&ns, Ipv4Addr::LOCALHOST.into(), 8082),
        lab.listen(&ns, Ipv6Addr::LOCALHOST.into(), 8082),
    ];
    web.publish(&lab, 80, 8080);
    web.publish(&lab, 81, 8081);
    web.publish(&lab, 82, 8082);
    for (i, dst) in server_addrs(&lab, 80).into_iter().enumerate() {
        assert_eq!(
            lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT),
            ConnectOutcome::Connected,
            "published port {dst}"
        );
        assert_eq!(wait_accepted(&open[i], 1), 1, "{dst} reached the container");
    }
    // Nothing listens on 8081, and 8082 only on the container's loopback:
    // the container's stack answers RST either way.
    for dst in server_addrs(&lab, 81)
        .into_iter()
        .chain(server_addrs(&lab, 82))
    {
        assert_eq!(
            lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT),
            ConnectOutcome::Refused,
            "{dst}"
        );
    }
    // Docker's FORWARD policy is DROP: a container port nobody published is
    // not reachable even by routing to the container's address (a published
    // one is, as on a real Docker host).
    let direct = SocketAddr::new(web.v4().into(), 9999);
    assert_eq!(
        lab.connect(lab.client_ns(), direct, Duration::from_secs(1)),
        ConnectOutcome::TimedOut
    );
    drop(lab);
    assert!(!netns_names().contains(&ns), "{ns} survived the lab");
}

#[test]
fn stale_docker_dnat_ends_in_host_unreachable_from_the_server() {
    if !root_or_skip("stale_docker_dnat_ends_in_host_unreachable_from_the_server") {
        return;
    }
    let lab = Lab::new(1);
    let web = lab.container("web");
    web.publish_stale(&lab, 80, 8080);
    for dst in server_addrs(&lab, 80) {
        let started = Instant::now();
        let outcome = lab.connect(lab.client_ns(), dst, Duration::from_secs(8));
        assert_eq!(
            outcome,
            ConnectOutcome::Failed("EHOSTUNREACH".into()),
            "{dst}"
        );
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "{dst}: neighbour resolution on dock0 should take about 3 s"
        );
    }
}

#[test]
fn kube_proxy_rejects_a_node_port_without_endpoints() {
    if !root_or_skip("kube_proxy_rejects_a_node_port_without_endpoints") {
        return;
    }
    let lab = Lab::new(1);
    lab.kube_proxy_no_endpoints(lab.server_ns(), 30080);
    for dst in server_addrs(&lab, 30080) {
        assert_eq!(
            lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT),
            ConnectOutcome::Refused,
            "{dst}"
        );
    }
}

#[test]
fn firewalld_default_zone_prohibits_unlisted_ports() {
    if !root_or_skip("firewalld_default_zone_prohibits_unlisted_ports") {
        return;
    }
    let lab = Lab::new(1);
    let server = lab.server_ns();
    let _listeners: Vec<Listener> = [22, 8080]
        .into_iter()
        .flat_map(|port| server_addrs(&lab, port))
        .map(|a| lab.listen(server, a.ip(), a.port()))
        .collect();
    lab.firewalld_default_zone(server, &[22]);
    for dst in server_addrs(&lab, 22) {
        assert_eq!(
            lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT),
            ConnectOutcome::Connected,
            "{dst}"
        );
    }
    let [v4, v6] = server_addrs(&lab, 8080);
    assert_eq!(
        lab.connect(lab.client_ns(), v4, CONNECT_TIMEOUT),
        ConnectOutcome::Failed("EHOSTUNREACH".into())
    );
    assert_eq!(
        lab.connect(lab.client_ns(), v6, CONNECT_TIMEOUT),
        ConnectOutcome::Failed("EACCES".into())
    );
    assert!(
        lab.ping(lab.client_ns(), lab.server_v6().into()),
        "ICMP is allowed"
    );
}

#[test]
fn ufw_default_drops_rejects_and_allows() {
    if !root_or_skip("ufw_default_drops_rejects_and_allows") {
        return;
    }
    let lab = Lab::new(1);
    let server = lab.server_ns();
    let _listeners: Vec<Listener> = [22, 24]
        .into_iter()
        .flat_map(|port| server_addrs(&lab, port))
        .map(|a| lab.listen(server, a.ip(), a.port()))
        .collect();
    lab.ufw_default(server, &[22], &[23]);
    for family in 0..2 {
        let at = |port| server_addrs(&lab, port)[family];
        assert_eq!(
            lab.connect(lab.client_ns(), at(22), CONNECT_TIMEOUT),
            ConnectOutcome::Connected
        );
        assert_eq!(
            lab.connect(lab.client_ns(), at(23), CONNECT_TIMEOUT),
            ConnectOutcome::Refused
        );
        // Not listed: the DROP policy, even though something listens.
        assert_eq!(
            lab.connect(lab.client_ns(), at(24), Duration::from_secs(1)),
            ConnectOutcome::TimedOut
        );
    }
    assert!(
        lab.ping(lab.client_ns(), lab.server_v4().into()),
        "echo-request allowed"
    );
    assert!(
        lab.ping(lab.client_ns(), lab.server_v6().into()),
        "echo-request allowed"
    );
}

#[test]
fn nft_tcp_reset_on_the_first_hop_and_on_the_host() {
    if !root_or_skip("nft_tcp_reset_on_the_first_hop_and_on_the_host") {
        return;
    }
    let lab = Lab::new(2);
    let _open: Vec<Listener> = server_addrs(&lab, 97)
        .iter()
        .map(|a| lab.listen(lab.server_ns(), a.ip(), a.port()))
        .collect();
    lab.nft_reject_tcp_reset(lab.router_ns(1), NftHook::Forward, 96);
    lab.nft_reject_tcp_reset(lab.server_ns(), NftHook::Input, 97);
    for dst in server_addrs(&lab, 96)
        .into_iter()
        .chain(server_addrs(&lab, 97))
    {
        assert_eq!(
            lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT),
            ConnectOutcome::Refused,
            "{dst}"
        );
    }
}

#[test]
fn router_without_time_exceeded_is_silent() {
    if !root_or_skip("router_without_time_exceeded_is_silent") {
        return;
    }
    let lab = Lab::new(2);
    lab.drop_time_exceeded(lab.router_ns(1));
    for dst in [IpAddr::from(lab.server_v4()), lab.server_v6().into()] {
        assert_eq!(
            lab.ping_ttl(lab.client_ns(), dst, 1),
            PingOutcome::Timeout,
            "{dst}"
        );
        let r2 = if dst.is_ipv6() {
            IpAddr::from(lab.router_v6(2))
        } else {
            lab.router_v4(2).into()
        };
        assert!(
            matches!(lab.ping_ttl(lab.client_ns(), dst, 2), PingOutcome::Error { from, .. } if from == r2),
            "r2 still answers TTL 2 towards {dst}"
        );
        assert_eq!(
            lab.ping_ttl(lab.client_ns(), dst, 3),
            PingOutcome::Reply(dst)
        );
    }
}

#[test]
fn synproxy_answers_with_or_without_a_listener() {
    if !root_or_skip("synproxy_answers_with_or_without_a_listener") {
        return;
    }
    let lab = Lab::new(1);
    let server = lab.server_ns();
    let open: Vec<Listener> = server_addrs(&lab, 80)
        .iter()
        .map(|a| lab.listen(server, a.ip(), a.port()))
        .collect();
    lab.synproxy(server, 80);
    lab.synproxy(server, 81);
    assert_eq!(
        sysctl_value(&lab, server, "net.netfilter.nf_conntrack_tcp_loose"),
        "0"
    );
    for (i, dst) in server_addrs(&lab, 80).into_iter().enumerate() {
        assert_eq!(
            lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT),
            ConnectOutcome::Connected,
            "{dst}"
        );
        assert_eq!(wait_accepted(&open[i], 1), 1, "{dst} reached the listener");
    }
    // Nothing listens on 81, yet SYNPROXY completes the handshake itself;
    // the RST the stack sends to SYNPROXY's own SYN is passed on to the
    // client, which in the lab arrives before `connect()` has returned.
    for dst in server_addrs(&lab, 81) {
        let outcome = lab.connect(lab.client_ns(), dst, CONNECT_TIMEOUT);
        assert!(
            [
                ConnectOutcome::Connected,
                ConnectOutcome::Failed("ECONNRESET".into())
            ]
            .contains(&outcome),
            "{dst}: {outcome:?}"
        );
    }
}

/// `nstat -az <counter>` in `ns`: the counter's absolute value.
fn nstat(lab: &Lab, ns: &str, counter: &str) -> u64 {
    let out = lab.exec_ok(ns, &["nstat", "-az", counter]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(counter)).then(|| words.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {counter} in nstat output"))
}

#[test]
fn full_accept_queue_drops_new_syns() {
    if !root_or_skip("full_accept_queue_drops_new_syns") {
        return;
    }
    let lab = Lab::new(1);
    let server = lab.server_ns();
    for dst in server_addrs(&lab, 8090) {
        let listener = lab.listen_without_accepting(server, dst.ip(), dst.port(), 0);
        let held = lab.fill_accept_queue(lab.client_ns(), dst, 3);
        assert_eq!(held.established(), 1, "listen(0) queues one connection");
        let before = nstat(&lab, server, "TcpExtListenOverflows");
        assert_eq!(
            lab.connect(lab.client_ns(), dst, Duration::from_millis(500)),
            ConnectOutcome::TimedOut,
            "{dst}"
        );
        assert!(nstat(&lab, server, "TcpExtListenOverflows") > before);
        assert_eq!(listener.accepted(), 0);
        held.close();
    }
}

#[test]
fn hosts_file_resolves_names_inside_a_namespace() {
    if !root_or_skip("hosts_file_resolves_names_inside_a_namespace") {
        return;
    }
    let lab = Lab::new(1);
    let live = IpAddr::from(lab.server_v4());
    let dead = IpAddr::from(lab.absent_v4());
    let v6 = IpAddr::from(lab.server_v6());
    lab.hosts(
        lab.client_ns(),
        &[("web.lab", live), ("web.lab", dead), ("web6.lab", v6)],
    );
    assert_eq!(lab.resolve(lab.client_ns(), "web.lab"), vec![live, dead]);
    assert_eq!(lab.resolve(lab.client_ns(), "web6.lab"), vec![v6]);
    assert!(
        lab.resolve(lab.server_ns(), "web.lab").is_empty(),
        "only in the client"
    );
    let dir = Path::new("/etc/netns").join(lab.client_ns());
    assert!(dir.join("hosts").exists());
    drop(lab);
    assert!(!dir.exists(), "{} survived the lab", dir.display());
}
