//! A throwaway network-namespace lab for end-to-end tests of synprobe.
//!
//! [`Lab::new`] builds a chain of Linux network namespaces joined by veth pairs:
//!
//! ```text
//! client[east0] --- [west0]r1[east0] --- ... --- [west0]rN[east0] --- [west0]server
//! ```
//!
//! with `N` = 0..=[`MAX_ROUTERS`] routers (`west0` faces the client side,
//! `east0` the server side).
//!
//! Every namespace gets its loopback up; every link carries IPv4 and IPv6;
//! routers forward both families; default routes point along the chain towards
//! the server (and routers have explicit routes back towards the client).
//! The hop distance from the client to the server is `routers + 1`.
//!
//! # Address plan
//!
//! Link `k` joins node `k` (west end) and node `k + 1` (east end), counting
//! the client as node 0 and the server as node `routers + 1`:
//!
//! | link `k`        | west end (`east0`)     | east end (`west0`)     |
//! |-----------------|------------------------|------------------------|
//! | IPv4 `/24`      | `198.18.k.1`           | `198.18.k.2`           |
//! | IPv6 `/64`      | `2001:db8:0:k::1`      | `2001:db8:0:k::2`      |
//!
//! So the client is `198.18.0.1`, router `i` answers from `198.18.(i-1).2`
//! (its client-facing address, which is the source of the ICMP errors it sends
//! to the client), and the server is `198.18.N.2`. Only the benchmarking range
//! `198.18.0.0/15` and the documentation prefix `2001:db8::/32` are used, and
//! nothing is ever configured in the root namespace: veths are created directly
//! inside the lab's namespaces, so no packet can leave the lab.
//!
//! # Kernel settings
//!
//! Every sysctl keeps the kernel's default, as on a freshly booted machine,
//! except two the lab needs: IPv6 duplicate address detection is off, and
//! routers (and a server with containers) forward both families.
//! [`Lab::new`] returns only once every veth is up with its IPv6 link-local
//! address, so both families work from the first packet.
//!
//! In particular the per-destination ICMP rate limits stay as shipped
//! (`net.ipv4.icmp_ratelimit=1000`, `net.ipv6.icmp.ratelimit=100`): one
//! token bucket per router and client address, shared by every error type. A
//! router answers back-to-back probes with at most 6 errors, then 1 per second
//! (IPv4) or 1 per 100 ms (IPv6); IPv4 route errors (`unreachable`/`prohibit`
//! routes) are charged twice, so only 2 come at once and none at all while
//! the client keeps probing faster than once a second. See
//! `tests/LAB_FACTS.md`, "ICMP rate limits". A test that fires many probes at
//! one router must pace them or expect silence. Only a test that studies the
//! limits themselves may switch them off with
//! [`LabBuilder::icmp_ratelimit_off_for_study`].
//!
//! # Deployments
//!
//! Beyond the bare chain, a lab can look like the machines synprobe meets:
//!
//! - [`Lab::container`]: a Docker-style container namespace behind the
//!   server, with [`Container::publish`] adding Docker's DNAT port forward.
//! - Rule sets as real tools install them, on any namespace:
//!   [`Lab::kube_proxy_no_endpoints`], [`Lab::firewalld_default_zone`],
//!   [`Lab::ufw_default`], [`Lab::nft_reject_tcp_reset`],
//!   [`Lab::drop_time_exceeded`], [`Lab::synproxy`].
//! - A full accept queue: [`Lab::listen_without_accepting`] and
//!   [`Lab::fill_accept_queue`].
//! - Names: [`Lab::hosts`] makes host names resolve inside a namespace.
//!
//! # Naming and clean-up
//!
//! Namespaces are called `sp<pid>x<counter>-<node>` (for example
//! `sp4242x0-client`, `sp4242x0-r1`, `sp4242x0-server`, and a container
//! `sp4242x0-web`), so labs built by parallel test threads and processes never
//! collide. Dropping a [`Lab`] kills every process still running in its
//! namespaces (containers included) and deletes them (which also removes the
//! veths) and their `/etc/netns/<ns>` directories (see [`Lab::hosts`]), also
//! while unwinding from a failed assertion. Namespaces left behind by a
//! process that died without unwinding are removed by
//! [`Lab::sweep_stale`], which the first lab of every process runs
//! automatically. Set `SYNPROBE_LAB_KEEP=1` to keep a lab's namespaces after
//! the test for inspection (the next run sweeps them).
//!
//! Everything here needs root and the `ip` and `ss` (iproute2), `kill`
//! (procps) and `python3` programs; guard
//! each test with [`root_or_skip`]. Firewall rules go through `iptables` /
//! `ip6tables` (the nf_tables backend Debian installs and the legacy backend
//! both work inside namespaces) or `nft`; [`Lab::fill_accept_queue`]'s test
//! reads counters with `nstat`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// First characters of every namespace name the lab creates.
pub const NS_PREFIX: &str = "sp";

/// The largest number of routers a lab can have.
pub const MAX_ROUTERS: usize = 4;

/// Name of the interface facing the client side, in every namespace but the
/// client's.
pub const WEST_IF: &str = "west0";

/// Name of the interface facing the server side, in every namespace but the
/// server's (the client's only interface).
pub const EAST_IF: &str = "east0";

/// Environment variable that, when set to `1`, keeps a lab's namespaces after
/// the [`Lab`] is dropped.
pub const KEEP_ENV: &str = "SYNPROBE_LAB_KEEP";

/// How long [`Lab::listen`] waits for the listener to come up.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Programs the lab runs, with arguments that make them succeed quietly;
/// checked by [`root_or_skip`].
const REQUIRED_TOOLS: [(&str, &str); 4] = [
    ("ip", "-V"),
    ("ss", "-V"),
    ("kill", "-l"),
    ("python3", "--version"),
];

/// The sysctls that make a namespace forward both families.
const FORWARDING: [&str; 2] = ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"];

/// Node names a container may not take (they are the chain's).
const RESERVED_NAMES: [&str; 3] = ["client", "server", "probe"];

/// The most containers one lab can have.
pub const MAX_CONTAINERS: usize = 8;

/// Interface of the server facing container `k` is `dock<k>`; its index is
/// `DOCK_IFINDEX_BASE + k` (distinct from its peer's, see [`EAST_IFINDEX`]).
const DOCK_IFINDEX_BASE: u32 = 30;

/// Name of a container's only interface.
pub const CONTAINER_IF: &str = "eth0";

/// Interface index of [`CONTAINER_IF`] in every container; differs from every
/// `dock<k>` index (30..=37), see [`EAST_IFINDEX`].
const CONTAINER_IFINDEX: &str = "40";

/// Directory whose `<ns>/` files `ip netns exec <ns>` bind-mounts over `/etc`.
const ETC_NETNS: &str = "/etc/netns";

/// How long [`Lab::fill_accept_queue`] waits for each `connect()`.
const FILL_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// How long [`Lab::ping`] and [`Lab::ping_ttl`] wait for an answer.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How long [`LabBuilder::build`] waits for every link to be usable.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Interface index of every `east0`. It must differ from [`WEST_IFINDEX`]:
/// with the default numbering both ends of the client's veth get ifindex 2,
/// and then the IPv6 link-local address of one end appeared only ~1 s after
/// link-up (most likely because the kernel handles the carrier change of a
/// device whose ifindex equals its peer's as non-urgent), so the first IPv6
/// packet waited ~1 s for neighbour discovery.
const EAST_IFINDEX: &str = "10";
/// Interface index of every `west0`; see [`EAST_IFINDEX`].
const WEST_IFINDEX: &str = "20";

/// Listener run by [`Lab::listen`]: argv = host port. Prints `listening <port>`
/// once `listen()` returned, then `accepted <peer>` for every connection, which
/// it closes at once.
const LISTENER_PY: &str = r#"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if family == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((host, port))
s.listen(128)
print("listening", s.getsockname()[1], flush=True)
while True:
    conn, peer = s.accept()
    print("accepted", peer[0], peer[1], flush=True)
    conn.close()
"#;

/// Listener run by [`Lab::listen_without_accepting`]: argv = host port
/// backlog. Prints `listening <port>` once `listen(backlog)` returned, then
/// never calls `accept()`, so completed connections pile up in the accept
/// queue until it is full.
const LISTENER_NO_ACCEPT_PY: &str = r#"
import socket, sys, time
host, port, backlog = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if family == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((host, port))
s.listen(backlog)
print("listening", s.getsockname()[1], flush=True)
while True:
    time.sleep(3600)
"#;

/// Helper of [`Lab::fill_accept_queue`]: argv = host port count timeout.
/// Makes `count` sequential `connect()`s, keeps every socket that connected
/// open, prints `held <n>` and then sleeps until killed.
const FILL_PY: &str = r#"
import socket, sys, time
host, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
held = []
for _ in range(count):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        held.append(s)
    except OSError:
        s.close()
print("held", len(held), flush=True)
while True:
    time.sleep(3600)
"#;

/// Resolves a name inside a namespace for [`Lab::resolve`]: argv = name.
/// Prints one address per line, in `getaddrinfo` order, or `error <text>`.
const RESOLVE_PY: &str = r#"
import socket, sys
try:
    seen = []
    for info in socket.getaddrinfo(sys.argv[1], None, proto=socket.IPPROTO_TCP):
        if info[4][0] not in seen:
            seen.append(info[4][0])
    print("\n".join(seen))
except OSError as e:
    print("error", e)
"#;

/// One `connect()` attempt for [`Lab::connect`]: argv = host port timeout.
/// Prints `connected`, `timeout`, or the errno name.
const CONNECT_PY: &str = r#"
import errno, socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(timeout)
try:
    s.connect((host, port))
    print("connected")
except socket.timeout:
    print("timeout")
except OSError as e:
    print(errno.errorcode.get(e.errno, "errno%d" % e.errno))
"#;

/// One ICMP echo request for [`Lab::ping_ttl`]: argv = dst ttl timeout.
/// Prints `reply <src>`, `error <src> <type> <code>` (an ICMP error quoting
/// this echo request), or `timeout`.
const PING_PY: &str = r#"
import os, select, socket, struct, sys, time
dst, ttl, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
v6 = ":" in dst
if v6:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    request, reply, errors = 128, 129, (1, 2, 3, 4)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    request, reply, errors = 8, 0, (3, 11, 12)
ident = os.getpid() & 0xFFFF

def checksum(b):
    total = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

message = struct.pack("!BBHHH", request, 0, 0, ident, 1) + b"synprobe-lab"
if not v6:  # the kernel fills in ICMPv6 checksums, not ICMP ones
    message = message[:2] + struct.pack("!H", checksum(message)) + message[4:]
s.sendto(message, (dst, 0))
deadline = time.monotonic() + timeout
while True:
    left = deadline - time.monotonic()
    if left <= 0 or not select.select([s], [], [], left)[0]:
        print("timeout")
        break
    data, peer = s.recvfrom(4096)
    if not v6:  # IPv4 raw sockets deliver the IP header too
        data = data[(data[0] & 15) * 4:]
    kind, code = data[0], data[1]
    if kind == reply and struct.unpack("!H", data[4:6])[0] == ident:
        print("reply", peer[0])
        break
    if kind in errors:
        quoted = data[8:]
        offset = 40 if v6 else (quoted[0] & 15) * 4
        echo = quoted[offset:offset + 6]
        if len(echo) == 6 and echo[0] == request and struct.unpack("!H", echo[4:6])[0] == ident:
            print("error", peer[0], kind, code)
            break
"#;

/// Serializes `ip netns add`/`del` within this process: concurrent first-time
/// calls race on mounting `/run/netns`.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

/// Per-process counter that makes lab names unique.
static NEXT_LAB: AtomicUsize = AtomicUsize::new(0);

/// Returns `true` when lab tests can run here: the effective uid is 0, network
/// namespaces can be created, and `ip`, `ss`, `kill` and `python3` exist.
///
/// Otherwise prints `SKIP <test>: needs root and network namespaces (run as
/// root, e.g. sudo -E cargo test)` and the reason to stderr and returns
/// `false`, so the test can return early. When the environment variable `CI`
/// is `true` it panics instead: in CI the lab tests must always run.
pub fn root_or_skip(test: &str) -> bool {
    match lab_support() {
        Ok(()) => true,
        Err(reason) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: lab tests must run in CI (CI=true), but cannot: {reason}");
            }
            // Straight to stderr, not through eprintln!, which the test harness captures: the SKIP shows in a
            // plain `cargo test`.
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!(
                    "SKIP {test}: needs root and network namespaces (run as root, e.g. sudo -E cargo test)\n     reason: {reason}\n"
                ),
            );
            false
        }
    }
}

/// Checks (once per process) whether labs can be built.
fn lab_support() -> Result<(), String> {
    static SUPPORT: OnceLock<Result<(), String>> = OnceLock::new();
    SUPPORT
        .get_or_init(|| {
            match effective_uid() {
                Some(0) => {}
                Some(uid) => return Err(format!("effective uid is {uid}, not 0")),
                None => return Err("cannot read the effective uid from /proc/self/status".into()),
            }
            for (tool, version_arg) in REQUIRED_TOOLS {
                let ok = Command::new(tool)
                    .arg(version_arg)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    return Err(format!("`{tool}` is missing or broken"));
                }
            }
            let probe = format!("{}-probe", next_lab_id());
            create_netns(&probe).map_err(|e| format!("cannot create a network namespace: {e}"))?;
            delete_netns(&probe)
                .map_err(|e| format!("cannot delete network namespace {probe}: {e}"))
        })
        .clone()
}

/// The effective uid, from the second field of the `Uid:` line of
/// `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// A fresh `sp<pid>x<counter>` lab id.
fn next_lab_id() -> String {
    format!(
        "{NS_PREFIX}{}x{}",
        std::process::id(),
        NEXT_LAB.fetch_add(1, Ordering::Relaxed)
    )
}

/// If `ns` is a lab namespace name (`sp<pid>x<counter>-<node>`), the pid of
/// the process that created it.
fn lab_owner(ns: &str) -> Option<u32> {
    let rest = ns.strip_prefix(NS_PREFIX)?;
    let (pid, rest) = rest.split_once('x')?;
    let (counter, node) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(pid) && digits(counter) && !node.is_empty() {
        pid.parse().ok()
    } else {
        None
    }
}

fn lock_netns() -> std::sync::MutexGuard<'static, ()> {
    NETNS_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn create_netns(ns: &str) -> Result<(), String> {
    let _guard = lock_netns();
    command_result(Command::new("ip").args(["netns", "add", ns]), None).map(drop)
}

fn delete_netns(ns: &str) -> Result<(), String> {
    let _guard = lock_netns();
    command_result(Command::new("ip").args(["netns", "del", ns]), None).map(drop)
}

/// SIGKILLs every process whose network namespace is `ns`.
fn kill_netns_processes(ns: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return;
    };
    let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|p| p.parse::<u32>().is_ok_and(|pid| pid != std::process::id()))
        .map(str::to_owned)
        .collect();
    if !pids.is_empty() {
        // Some may have exited meanwhile; `kill` then fails for those only.
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `cmd` (feeding `stdin` if given); `Err` with a readable description
/// when it cannot start or exits unsuccessfully.
fn command_result(cmd: &mut Command, stdin: Option<&str>) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write the stdin of {shown}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot wait for {shown}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(describe_failure(&shown, &out))
    }
}

fn describe_failure(shown: &str, out: &Output) -> String {
    format!(
        "{shown} failed ({}):\n--- stderr ---\n{}--- stdout ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// Runs `cmd` and panics with its stderr and stdout when it fails.
fn checked(cmd: &mut Command, stdin: Option<&str>) -> Output {
    command_result(cmd, stdin).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads a pipe to its end on a helper thread.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error just ends the capture early.
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Configures a [`Lab`] before building it; see [`Lab::builder`].
#[derive(Debug, Clone)]
pub struct LabBuilder {
    routers: usize,
    icmp_ratelimit_off: bool,
}

impl LabBuilder {
    /// Number of routers between client and server, `0..=MAX_ROUTERS`
    /// (default 2).
    #[must_use]
    pub fn routers(mut self, routers: usize) -> Self {
        self.routers = routers;
        self
    }

    /// Switches the per-destination ICMP rate limits off in every namespace
    /// (`net.ipv4.icmp_ratelimit=0`, `net.ipv6.icmp.ratelimit=0`), containers
    /// included.
    ///
    /// Only for a test that studies the rate limits themselves (for example
    /// to compare a paced probe run with an unlimited one). Every other test
    /// runs with the kernel defaults, as real routers do, and must cope with
    /// the silence they cause; by default the limits stay as shipped.
    #[must_use]
    pub fn icmp_ratelimit_off_for_study(mut self) -> Self {
        self.icmp_ratelimit_off = true;
        self
    }

    /// Creates the namespaces, links, addresses and routes.
    ///
    /// # Panics
    ///
    /// If `routers > MAX_ROUTERS` or any setup command fails; whatever was
    /// created so far is removed again.
    pub fn build(self) -> Lab {
        assert!(
            self.routers <= MAX_ROUTERS,
            "a lab has at most {MAX_ROUTERS} routers, not {}",
            self.routers
        );
        static SWEEP: OnceLock<usize> = OnceLock::new();
        SWEEP.get_or_init(Lab::sweep_stale);

        let mut lab = Lab {
            id: next_lab_id(),
            routers: self.routers,
            icmp_ratelimit_off: self.icmp_ratelimit_off,
            namespaces: Vec::new(),
            containers: Mutex::new(Vec::new()),
        };
        // Namespaces are recorded as soon as they exist, so a panic below
        // drops `lab` and removes them.
        for node in 0..self.routers + 2 {
            let ns = format!("{}-{}", lab.id, lab.node_name(node));
            create_netns(&ns).unwrap_or_else(|e| panic!("{e}"));
            lab.namespaces.push(ns);
        }
        for node in 0..lab.namespaces.len() {
            lab.configure_sysctls(node);
        }
        for node in 0..=lab.routers {
            let peer = &lab.namespaces[node + 1];
            let mut cmd = Command::new("ip");
            cmd.args(["-n", &lab.namespaces[node], "link", "add", EAST_IF])
                .args([
                    "index",
                    EAST_IFINDEX,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    WEST_IF,
                ])
                .args(["index", WEST_IFINDEX, "netns", peer]);
            checked(&mut cmd, None);
        }
        for node in 0..lab.namespaces.len() {
            lab.ip_batch(node, &lab.interface_script(node));
        }
        for node in 0..lab.namespaces.len() {
            lab.ip_batch(node, &lab.route_script(node));
        }
        lab.wait_ready();
        lab
    }
}

/// A running lab: a chain of network namespaces, deleted on drop.
///
/// Routers are numbered from 1 (router `i` is hop `i` from the client); the
/// server is hop [`Lab::hops`].
#[derive(Debug)]
pub struct Lab {
    id: String,
    routers: usize,
    /// Whether [`LabBuilder::icmp_ratelimit_off_for_study`] was asked for.
    icmp_ratelimit_off: bool,
    /// client, r1 ..= rN, server; only those created so far.
    namespaces: Vec<String>,
    /// Namespaces of the containers made by [`Lab::container`], in order
    /// (container `k` uses link `198.19.k.0/24`).
    containers: Mutex<Vec<String>>,
}

impl Lab {
    /// Builds a lab with `routers` routers (`0..=MAX_ROUTERS`) and the default
    /// settings; see [`LabBuilder::build`].
    pub fn new(routers: usize) -> Lab {
        Lab::builder().routers(routers).build()
    }

    /// A builder with the default settings (2 routers, every sysctl but
    /// DAD and forwarding at the kernel's default).
    pub fn builder() -> LabBuilder {
        LabBuilder {
            routers: 2,
            icmp_ratelimit_off: false,
        }
    }

    /// Deletes lab namespaces (`sp<pid>x<n>-<node>`, containers included)
    /// whose creating process no longer exists, after killing the processes
    /// still inside them, and their `/etc/netns/<ns>` directories. Returns
    /// how many namespaces were deleted. Never touches labs of live processes.
    pub fn sweep_stale() -> usize {
        let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
            return 0;
        };
        let mut deleted = 0;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(ns) = line.split_whitespace().next() else {
                continue;
            };
            let Some(owner) = lab_owner(ns) else {
                continue;
            };
            if owner == std::process::id() || Path::new(&format!("/proc/{owner}")).exists() {
                continue;
            }
            kill_netns_processes(ns);
            match delete_netns(ns) {
                Ok(()) => deleted += 1,
                Err(e) => eprintln!("lab: cannot sweep stale namespace {ns}: {e}"),
            }
            remove_etc_netns(ns);
        }
        // `/etc/netns` directories whose namespace is already gone.
        if let Ok(dir) = std::fs::read_dir(ETC_NETNS) {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let Some(ns) = name.to_str() else { continue };
                if lab_owner(ns).is_some_and(|owner| {
                    owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists()
                }) {
                    remove_etc_netns(ns);
                }
            }
        }
        deleted
    }

    /// This lab's unique id, the common prefix of its namespace names
    /// (`sp<pid>x<counter>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Number of routers between client and server.
    pub fn routers(&self) -> usize {
        self.routers
    }

    /// Hop distance from the client to the server: `routers() + 1`.
    pub fn hops(&self) -> usize {
        self.routers + 1
    }

    /// All namespace names: client, routers in order, server.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// The client's namespace.
    pub fn client_ns(&self) -> &str {
        &self.namespaces[0]
    }

    /// The namespace of router `i` (`1..=routers()`, hop `i` from the client).
    ///
    /// # Panics
    ///
    /// If `i` is not in `1..=routers()`.
    pub fn router_ns(&self, i: usize) -> &str {
        self.check_router(i);
        &self.namespaces[i]
    }

    /// The server's namespace.
    pub fn server_ns(&self) -> &str {
        &self.namespaces[self.routers + 1]
    }

    /// The namespace `hop` hops from the client: router `hop`, or the server
    /// when `hop == hops()`.
    ///
    /// # Panics
    ///
    /// If `hop` is not in `1..=hops()`.
    pub fn hop_ns(&self, hop: usize) -> &str {
        assert!(
            (1..=self.hops()).contains(&hop),
            "hop {hop} is not in 1..={}",
            self.hops()
        );
        &self.namespaces[hop]
    }

    /// The client's only interface ([`EAST_IF`]), e.g. for capturing.
    pub fn client_iface(&self) -> &'static str {
        EAST_IF
    }

    /// The client's IPv4 address, `198.18.0.1`.
    pub fn client_v4(&self) -> Ipv4Addr {
        link_v4(0, 1)
    }

    /// The client's IPv6 address, `2001:db8::1`.
    pub fn client_v6(&self) -> Ipv6Addr {
        link_v6(0, 1)
    }

    /// The server's IPv4 address, `198.18.<routers>.2`.
    pub fn server_v4(&self) -> Ipv4Addr {
        link_v4(self.routers, 2)
    }

    /// The server's IPv6 address, `2001:db8:0:<routers>::2`.
    pub fn server_v6(&self) -> Ipv6Addr {
        link_v6(self.routers, 2)
    }

    /// IPv4 address of router `i` on its client-facing interface,
    /// `198.18.<i-1>.2`: the source of the ICMP errors (time exceeded,
    /// unreachable) it sends to the client.
    ///
    /// # Panics
    ///
    /// If `i` is not in `1..=routers()`.
    pub fn router_v4(&self, i: usize) -> Ipv4Addr {
        self.check_router(i);
        link_v4(i - 1, 2)
    }

    /// IPv6 address of router `i` on its client-facing interface,
    /// `2001:db8:0:<i-1>::2`: the source of the ICMPv6 errors it sends to the
    /// client.
    ///
    /// # Panics
    ///
    /// If `i` is not in `1..=routers()`.
    pub fn router_v6(&self, i: usize) -> Ipv6Addr {
        self.check_router(i);
        link_v6(i - 1, 2)
    }

    /// An IPv4 address on the server's link that no host owns,
    /// `198.18.<routers>.99`. With at least one router, a SYN to it makes the
    /// last router answer ICMP host unreachable after its ARP attempts time
    /// out (about 3 s); with 0 routers the client's own stack fails the
    /// connection with no packet in reply.
    pub fn absent_v4(&self) -> Ipv4Addr {
        link_v4(self.routers, 99)
    }

    /// The IPv6 counterpart of [`Lab::absent_v4`], `2001:db8:0:<routers>::99`
    /// (ICMPv6 address unreachable from the last router after about 3 s).
    pub fn absent_v6(&self) -> Ipv6Addr {
        link_v6(self.routers, 0x99)
    }

    /// A [`Command`] that runs `program` inside namespace `ns`
    /// (`ip netns exec <ns> <program>`), to add arguments to and spawn. Any
    /// process still running in the namespace is killed when the lab drops.
    pub fn command(&self, ns: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]);
        cmd
    }

    /// Runs `args[0]` with the remaining arguments inside `ns` and returns its
    /// output, whatever its exit status.
    ///
    /// # Panics
    ///
    /// If `args` is empty or `ip netns exec` cannot be started.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        let (program, rest) = args.split_first().expect("exec needs a program name");
        self.command(ns, program)
            .args(rest)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `ip netns exec {ns} {args:?}`: {e}"))
    }

    /// Like [`Lab::exec`], but panics with stderr and stdout unless the
    /// command succeeds.
    pub fn exec_ok(&self, ns: &str, args: &[&str]) -> Output {
        let out = self.exec(ns, args);
        assert!(
            out.status.success(),
            "{}",
            describe_failure(&format!("`ip netns exec {ns} {}`", args.join(" ")), &out)
        );
        out
    }

    /// Runs `program args…` inside `ns`, killing it (and anything it spawned
    /// in its process group) once `timeout` has passed.
    ///
    /// Returns the collected output either way. After a timeout the exit
    /// status is the SIGKILL one (`status.code()` is `None`) and a line
    /// starting with `[lab] timed out` is appended to stderr.
    ///
    /// # Panics
    ///
    /// If the command cannot be started.
    pub fn run_in(&self, ns: &str, program: &str, args: &[&str], timeout: Duration) -> Output {
        let mut child = self
            .command(ns, program)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{program}` in {ns}: {e}"));
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child
                .try_wait()
                .unwrap_or_else(|e| panic!("cannot wait for `{program}` in {ns}: {e}"))
            {
                break status;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                kill_process_group(&mut child);
                break child
                    .wait()
                    .unwrap_or_else(|e| panic!("cannot reap `{program}` in {ns}: {e}"));
            }
            thread::sleep(Duration::from_millis(5));
        };
        let stdout = stdout.join().expect("stdout reader thread panicked");
        let mut stderr = stderr.join().expect("stderr reader thread panicked");
        if timed_out {
            let note = format!("\n[lab] timed out after {timeout:?}: killed `{program}` in {ns}\n");
            stderr.extend_from_slice(note.as_bytes());
        }
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// Sets sysctl `key` to `value` inside `ns` (e.g.
    /// `("net.ipv4.tcp_syncookies", "0")`).
    ///
    /// # Panics
    ///
    /// If `sysctl` fails.
    pub fn sysctl(&self, ns: &str, key: &str, value: &str) {
        self.exec_ok(ns, &["sysctl", "-qw", &format!("{key}={value}")]);
    }

    /// Runs `iptables -w <rule>` (or `ip6tables` when `v6`) inside `ns`, e.g.
    /// `["-A", "FORWARD", "-p", "tcp", "--dport", "81", "-j", "REJECT",
    /// "--reject-with", "tcp-reset"]`.
    ///
    /// # Panics
    ///
    /// If the command fails (bad rule, missing extension).
    pub fn iptables(&self, ns: &str, v6: bool, rule: &[&str]) {
        let tool = if v6 { "ip6tables" } else { "iptables" };
        let mut args = vec![tool, "-w"];
        args.extend_from_slice(rule);
        self.exec_ok(ns, &args);
    }

    /// Loads an nftables script (`nft -f -`) inside `ns`, e.g.
    /// `"add table inet t\nadd chain inet t fw { type filter hook forward priority 0; }\n…"`.
    ///
    /// # Panics
    ///
    /// If `nft` rejects the script.
    pub fn nft(&self, ns: &str, script: &str) {
        checked(self.command(ns, "nft").args(["-f", "-"]), Some(script));
    }

    /// Runs `ip -n <ns> route <args>`, e.g. `["add", "unreachable",
    /// "198.18.2.2/32"]` or `["add", "prohibit", "2001:db8:0:2::2/128"]` (the
    /// family follows from the address).
    ///
    /// # Panics
    ///
    /// If the command fails.
    pub fn route(&self, ns: &str, args: &[&str]) {
        checked(
            Command::new("ip").args(["-n", ns, "route"]).args(args),
            None,
        );
    }

    /// Sends one ICMP(v6) echo request from `ns` to `dst` and returns whether
    /// an echo reply came back within 2 s.
    pub fn ping(&self, ns: &str, dst: IpAddr) -> bool {
        matches!(self.ping_ttl(ns, dst, 64), PingOutcome::Reply(_))
    }

    /// Sends one ICMP(v6) echo request with TTL / hop limit `ttl` from `ns` to
    /// `dst` and reports the first answer within 2 s: the echo reply, or an
    /// ICMP error quoting the request (e.g. time exceeded from the router
    /// where the TTL ran out).
    ///
    /// # Panics
    ///
    /// If the helper cannot be run or prints something unexpected.
    pub fn ping_ttl(&self, ns: &str, dst: IpAddr, ttl: u8) -> PingOutcome {
        let out = self.run_in(
            ns,
            "python3",
            &[
                "-c",
                PING_PY,
                &dst.to_string(),
                &ttl.to_string(),
                &PING_TIMEOUT.as_secs_f64().to_string(),
            ],
            PING_TIMEOUT + Duration::from_secs(10),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["timeout"] => return PingOutcome::Timeout,
            ["reply", from] => {
                if let Ok(from) = from.parse() {
                    return PingOutcome::Reply(from);
                }
            }
            ["error", from, icmp_type, code] => {
                if let (Ok(from), Ok(icmp_type), Ok(code)) =
                    (from.parse(), icmp_type.parse(), code.parse())
                {
                    return PingOutcome::Error {
                        from,
                        icmp_type,
                        code,
                    };
                }
            }
            _ => {}
        }
        panic!("{}", describe_failure("ping helper", &out))
    }

    /// Makes one ordinary TCP `connect()` from `ns` to `dst` and reports how it
    /// ended, giving up after `timeout`.
    ///
    /// Allow at least 2 s for ICMPv6 rejections: in the lab the ICMPv6 error
    /// answering the first SYN arrives while `connect()` still holds the
    /// socket lock, so the kernel records it only as a soft error and fails
    /// the connection when the error for the SYN retransmitted after 1 s
    /// arrives. (IPv4 ICMP errors and RSTs end `connect()` at once.)
    ///
    /// # Panics
    ///
    /// If the helper cannot be run or prints something unexpected.
    pub fn connect(&self, ns: &str, dst: SocketAddr, timeout: Duration) -> ConnectOutcome {
        let host = dst.ip().to_string();
        let port = dst.port().to_string();
        let secs = format!("{:.3}", timeout.as_secs_f64());
        let out = self.run_in(
            ns,
            "python3",
            &["-c", CONNECT_PY, &host, &port, &secs],
            timeout + Duration::from_secs(10),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        match text.trim() {
            "connected" => ConnectOutcome::Connected,
            "ECONNREFUSED" => ConnectOutcome::Refused,
            "timeout" => ConnectOutcome::TimedOut,
            errno if errno.starts_with('E') && !errno.contains(char::is_whitespace) => {
                ConnectOutcome::Failed(errno.to_owned())
            }
            _ => panic!("{}", describe_failure("connect helper", &out)),
        }
    }

    /// Starts a TCP listener on `addr:port` inside `ns` and returns once the
    /// socket is listening (confirmed with `ss -ltn` in that namespace).
    ///
    /// `addr` may be a loopback address (`127.0.0.1`, `::1`: the "bound to
    /// localhost only" case), an address of `ns`, or unspecified (`0.0.0.0`,
    /// `::`); an IPv6 socket is v6-only, so listen twice for both families.
    /// Port 0 picks a free port; see [`Listener::addr`]. Connections are
    /// accepted and closed at once, and counted. The listener is killed when
    /// the [`Listener`] or the lab drops.
    ///
    /// # Panics
    ///
    /// If the listener does not come up within 10 s (the panic message
    /// carries its stderr, e.g. an `EADDRNOTAVAIL` bind error).
    pub fn listen(&self, ns: &str, addr: IpAddr, port: u16) -> Listener {
        self.spawn_listener(
            ns,
            addr,
            port,
            &["-c", LISTENER_PY, &addr.to_string(), &port.to_string()],
        )
    }

    /// Runs `python3 <args>` in `ns` as a listener that prints `listening
    /// <port>` and `accepted …` lines, and waits until it listens.
    fn spawn_listener(&self, ns: &str, addr: IpAddr, port: u16, args: &[&str]) -> Listener {
        let mut child = self
            .command(ns, "python3")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start a listener in {ns}: {e}"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = spawn_listener_reader(child.stdout.take(), ready_tx, Arc::clone(&accepted));
        let mut listener = Listener {
            child,
            ns: ns.to_owned(),
            addr: SocketAddr::new(addr, port),
            accepted,
            reader: Some(reader),
        };
        match ready_rx.recv_timeout(LISTEN_TIMEOUT) {
            Ok(bound) => listener.addr.set_port(bound),
            Err(_) => {
                let _ = listener.child.kill();
                let mut err = String::new();
                if let Some(mut pipe) = listener.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut err);
                }
                panic!("listener on {addr} port {port} in {ns} did not start:\n{err}");
            }
        }
        self.wait_listening(ns, listener.addr);
        listener
    }

    /// Polls `ss -ltn` in `ns` until a socket listens on `addr`.
    fn wait_listening(&self, ns: &str, addr: SocketAddr) {
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        loop {
            let out = self.exec_ok(ns, &["ss", "-ltnH"]);
            let table = String::from_utf8_lossy(&out.stdout);
            if table.lines().any(|l| ss_line_listens_on(l, addr)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on {addr} in {ns} after {LISTEN_TIMEOUT:?}; ss -ltn says:\n{table}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every veth is operationally up and has a usable
    /// (non-tentative) IPv6 link-local address, which neighbour discovery
    /// needs.
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        for (node, ns) in self.namespaces.iter().enumerate() {
            let mut ifaces = Vec::new();
            if node > 0 {
                ifaces.push(WEST_IF);
            }
            if node <= self.routers {
                ifaces.push(EAST_IF);
            }
            wait_links_ready(ns, &ifaces, deadline);
        }
    }

    fn check_router(&self, i: usize) {
        assert!(
            (1..=self.routers).contains(&i),
            "router {i} does not exist: this lab has routers 1..={}",
            self.routers
        );
    }

    fn node_name(&self, node: usize) -> String {
        match node {
            0 => "client".to_owned(),
            n if n == self.routers + 1 => "server".to_owned(),
            n => format!("r{n}"),
        }
    }

    fn is_router(&self, node: usize) -> bool {
        (1..=self.routers).contains(&node)
    }

    fn configure_sysctls(&self, node: usize) {
        self.base_sysctls(&self.namespaces[node], self.is_router(node));
    }

    /// DAD off, forwarding on when `forward`, ICMP rate limits off only for a
    /// lab built with [`LabBuilder::icmp_ratelimit_off_for_study`]; every
    /// other sysctl stays at the kernel's default.
    fn base_sysctls(&self, ns: &str, forward: bool) {
        let mut settings = vec![
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ];
        if self.icmp_ratelimit_off {
            settings.extend(["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"]);
        }
        if forward {
            settings.extend(FORWARDING);
        }
        let mut args = vec!["sysctl", "-qw"];
        args.extend(settings);
        self.exec_ok(ns, &args);
    }

    /// `ip -batch` lines that bring up `lo` and address `node`'s veths.
    fn interface_script(&self, node: usize) -> String {
        let mut s = String::from("link set lo up\n");
        let mut iface = |name: &str, link: usize, host: u8| {
            let _ = writeln!(s, "addr add {}/24 dev {name}", link_v4(link, host));
            let _ = writeln!(
                s,
                "addr add {}/64 dev {name} nodad",
                link_v6(link, host.into())
            );
            let _ = writeln!(s, "link set {name} up");
        };
        if node > 0 {
            iface(WEST_IF, node - 1, 2);
        }
        if node <= self.routers {
            iface(EAST_IF, node, 1);
        }
        s
    }

    /// `ip -batch` lines with `node`'s routes: default towards the server (the
    /// server's towards the client), and on routers explicit routes to the
    /// links behind their client-side neighbour.
    fn route_script(&self, node: usize) -> String {
        let mut s = String::new();
        let (v4_gw, v6_gw) = if node <= self.routers {
            (link_v4(node, 2), link_v6(node, 2))
        } else {
            (link_v4(node - 1, 1), link_v6(node - 1, 1))
        };
        let _ = writeln!(s, "route add default via {v4_gw}");
        let _ = writeln!(s, "route add default via {v6_gw}");
        if self.is_router(node) {
            let (west_v4, west_v6) = (link_v4(node - 1, 1), link_v6(node - 1, 1));
            for link in 0..node - 1 {
                let _ = writeln!(s, "route add {}/24 via {west_v4}", link_v4(link, 0));
                let _ = writeln!(s, "route add {}/64 via {west_v6}", link_v6(link, 0));
            }
        }
        s
    }

    fn ip_batch(&self, node: usize, script: &str) {
        let ns = &self.namespaces[node];
        checked(
            Command::new("ip").args(["-n", ns, "-batch", "-"]),
            Some(script),
        );
    }
}

/// Deployments: containers, rule sets as real tools install them, a full
/// accept queue, and names.
impl Lab {
    /// Creates a Docker-style container namespace `<lab id>-<name>` behind
    /// the server and returns its handle.
    ///
    /// Container `k` (0 for the first one, up to [`MAX_CONTAINERS`]) hangs on
    /// a veth `dock<k>` of the server with `198.19.k.1/24` and
    /// `2001:db8:ff:k::1/64`; the container's [`CONTAINER_IF`] has
    /// `198.19.k.2` and `2001:db8:ff:k::2` and default routes via the server,
    /// and the server forwards both families. So the first container is
    /// `198.19.0.2` / `2001:db8:ff::2` behind `dock0`. The routers' default
    /// routes point towards the server, so the client could reach the
    /// container's address directly; [`Container::publish`] adds Docker's
    /// filter rules, which (as on a Docker host) forward only published
    /// ports to it.
    ///
    /// [`Lab::listen`] works in [`Container::namespace`], including on
    /// `127.0.0.1` / `::1` ("bound to localhost inside the container").
    /// The namespace is deleted with the lab.
    ///
    /// # Panics
    ///
    /// If `name` is not 1-8 lowercase ASCII letters or digits, clashes with a
    /// node of the chain (`client`, `server`, `r<i>`) or another container,
    /// if the lab already has [`MAX_CONTAINERS`] containers, or a setup
    /// command fails.
    pub fn container(&self, name: &str) -> Container {
        assert!(
            (1..=8).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "container name {name:?} must be 1-8 lowercase letters or digits"
        );
        let router_like = name
            .strip_prefix('r')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        assert!(
            !RESERVED_NAMES.contains(&name) && !router_like,
            "container name {name:?} is taken by the lab's chain"
        );
        let ns = format!("{}-{name}", self.id);
        let index = {
            let mut containers = self
                .containers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            assert!(
                !containers.contains(&ns),
                "this lab already has a container {name:?}"
            );
            assert!(
                containers.len() < MAX_CONTAINERS,
                "a lab has at most {MAX_CONTAINERS} containers"
            );
            create_netns(&ns).unwrap_or_else(|e| panic!("{e}"));
            // Recorded at once, so the lab's drop deletes it whatever fails below.
            containers.push(ns.clone());
            containers.len() - 1
        };
        let container = Container {
            name: name.to_owned(),
            ns,
            index,
        };
        let server = self.server_ns().to_owned();
        self.base_sysctls(&container.ns, false);
        self.exec_ok(&server, &["sysctl", "-qw", FORWARDING[0], FORWARDING[1]]);
        let dock = container.host_iface();
        let dock_index =
            (DOCK_IFINDEX_BASE + u32::try_from(index).expect("few containers")).to_string();
        checked(
            Command::new("ip")
                .args(["-n", &server, "link", "add", &dock, "index", &dock_index])
                .args(["type", "veth", "peer", "name", CONTAINER_IF])
                .args(["index", CONTAINER_IFINDEX, "netns", &container.ns]),
            None,
        );
        let mut host_side = String::new();
        let _ = writeln!(
            host_side,
            "addr add {}/24 dev {dock}",
            container.gateway_v4()
        );
        let _ = writeln!(
            host_side,
            "addr add {}/64 dev {dock} nodad",
            container.gateway_v6()
        );
        let _ = writeln!(host_side, "link set {dock} up");
        checked(
            Command::new("ip").args(["-n", &server, "-batch", "-"]),
            Some(&host_side),
        );
        let mut inside = String::from("link set lo up\n");
        let _ = writeln!(inside, "addr add {}/24 dev {CONTAINER_IF}", container.v4());
        let _ = writeln!(
            inside,
            "addr add {}/64 dev {CONTAINER_IF} nodad",
            container.v6()
        );
        let _ = writeln!(inside, "link set {CONTAINER_IF} up");
        let _ = writeln!(inside, "route add default via {}", container.gateway_v4());
        let _ = writeln!(inside, "route add default via {}", container.gateway_v6());
        checked(
            Command::new("ip").args(["-n", &container.ns, "-batch", "-"]),
            Some(&inside),
        );
        self.docker_base_rules(&container);
        wait_links_ready(&server, &[&dock], Instant::now() + READY_TIMEOUT);
        wait_links_ready(
            &container.ns,
            &[CONTAINER_IF],
            Instant::now() + READY_TIMEOUT,
        );
        container
    }

    /// Namespaces of the containers made so far, in creation order.
    pub fn container_namespaces(&self) -> Vec<String> {
        self.containers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Docker's own chains on the server for `container`'s bridge (what
    /// `dockerd` installs with `iptables: true`, `ip6tables: true`), both
    /// families: nat `DOCKER` hooked from PREROUTING and OUTPUT for local
    /// destinations, MASQUERADE for the bridge's subnet, filter FORWARD
    /// policy DROP with `DOCKER-USER`, the established-accept and the
    /// `DOCKER` chain that [`Container::publish`] fills.
    fn docker_base_rules(&self, container: &Container) {
        let server = self.server_ns();
        let dock = container.host_iface();
        for v6 in [false, true] {
            let subnet = if v6 {
                format!("{}/64", container.subnet_v6())
            } else {
                format!("{}/24", container.subnet_v4())
            };
            let loopback = if v6 { "::1/128" } else { "127.0.0.0/8" };
            let mut script = String::from("*nat\n");
            if container.index == 0 {
                script.push_str(":DOCKER - [0:0]\n");
                script.push_str("-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n");
                let _ = writeln!(
                    script,
                    "-A OUTPUT ! -d {loopback} -m addrtype --dst-type LOCAL -j DOCKER"
                );
            }
            let _ = writeln!(
                script,
                "-A POSTROUTING -s {subnet} ! -o {dock} -j MASQUERADE"
            );
            let _ = writeln!(script, "-A DOCKER -i {dock} -j RETURN");
            script.push_str("COMMIT\n*filter\n");
            if container.index == 0 {
                script.push_str(":FORWARD DROP [0:0]\n:DOCKER - [0:0]\n:DOCKER-USER - [0:0]\n");
                script.push_str("-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\n");
            }
            let _ = writeln!(
                script,
                "-A FORWARD -o {dock} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
            );
            let _ = writeln!(script, "-A FORWARD -o {dock} -j DOCKER");
            let _ = writeln!(script, "-A FORWARD -i {dock} ! -o {dock} -j ACCEPT");
            let _ = writeln!(script, "-A FORWARD -i {dock} -o {dock} -j ACCEPT");
            script.push_str("COMMIT\n");
            self.iptables_restore(server, v6, &script);
        }
    }

    /// Feeds `script` to `iptables-restore --noflush` (`ip6tables-restore`
    /// when `v6`) inside `ns`.
    ///
    /// # Panics
    ///
    /// If the restore fails.
    pub fn iptables_restore(&self, ns: &str, v6: bool, script: &str) {
        let tool = if v6 {
            "ip6tables-restore"
        } else {
            "iptables-restore"
        };
        checked(
            self.command(ns, tool).args(["-w", "--noflush"]),
            Some(script),
        );
    }

    /// Installs what kube-proxy (iptables mode) installs on a node for a
    /// NodePort Service `default/web` on `node_port` with no endpoints, both
    /// families:
    ///
    /// ```text
    /// -A INPUT   -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
    /// -A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
    /// -A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web has no endpoints" -m addrtype --dst-type LOCAL -p tcp -m tcp --dport <node_port> -j REJECT --reject-with icmp-port-unreachable
    /// ```
    ///
    /// (IPv6: `icmp6-port-unreachable`), the jump chains and rule shape of
    /// kube-proxy's `pkg/proxy/iptables/proxier.go`. Call once per namespace
    /// (a second call adds a second jump).
    ///
    /// # Panics
    ///
    /// If a rule is refused.
    pub fn kube_proxy_no_endpoints(&self, ns: &str, node_port: u16) {
        for v6 in [false, true] {
            let reject = if v6 {
                "icmp6-port-unreachable"
            } else {
                "icmp-port-unreachable"
            };
            let mut script = String::from("*filter\n:KUBE-EXTERNAL-SERVICES - [0:0]\n");
            for hook in ["INPUT", "FORWARD"] {
                let _ = writeln!(
                    script,
                    "-I {hook} 1 -m conntrack --ctstate NEW -m comment --comment \
                     \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"
                );
            }
            let _ = writeln!(
                script,
                "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"default/web has no endpoints\" \
                 -m addrtype --dst-type LOCAL -p tcp -m tcp --dport {node_port} \
                 -j REJECT --reject-with {reject}"
            );
            script.push_str("COMMIT\n");
            self.iptables_restore(ns, v6, &script);
        }
    }

    /// Installs firewalld's default zone (`public`) as its nftables backend
    /// does, allowing TCP ports `allowed` (firewalld's stock `public` zone
    /// allows ssh, i.e. 22, and dhcpv6-client):
    ///
    /// ```text
    /// table inet firewalld {
    ///   chain filter_INPUT { type filter hook input priority filter + 10; policy accept;
    ///     ct state { established, related } accept
    ///     ct status dnat accept
    ///     iifname "lo" accept
    ///     ct state invalid drop
    ///     jump filter_INPUT_dispatch
    ///     reject with icmpx admin-prohibited }
    ///   chain filter_INPUT_dispatch { goto filter_IN_public }
    ///   chain filter_IN_public { jump filter_IN_public_pre; jump filter_IN_public_log;
    ///     jump filter_IN_public_deny; jump filter_IN_public_allow; jump filter_IN_public_post;
    ///     meta l4proto { icmp, ipv6-icmp } accept }
    ///   chain filter_IN_public_allow { tcp dport <port> accept … }
    /// }
    /// ```
    ///
    /// (the chain layout of firewalld's `src/firewall/core/nftables.py`,
    /// trimmed to the input path; neighbour discovery passes as ICMPv6).
    /// A new TCP connection to any other port gets ICMP(v6) administratively
    /// prohibited from this namespace.
    ///
    /// # Panics
    ///
    /// If `nft` refuses the table (e.g. it exists already).
    pub fn firewalld_default_zone(&self, ns: &str, allowed: &[u16]) {
        let mut script = String::from(
            "table inet firewalld {\n\
             chain filter_INPUT {\n\
             type filter hook input priority filter + 10; policy accept;\n\
             ct state { established, related } accept\n\
             ct status dnat accept\n\
             iifname \"lo\" accept\n\
             ct state invalid drop\n\
             jump filter_INPUT_dispatch\n\
             reject with icmpx admin-prohibited\n\
             }\n\
             chain filter_INPUT_dispatch {\n\
             goto filter_IN_public\n\
             }\n\
             chain filter_IN_public {\n\
             jump filter_IN_public_pre\n\
             jump filter_IN_public_log\n\
             jump filter_IN_public_deny\n\
             jump filter_IN_public_allow\n\
             jump filter_IN_public_post\n\
             meta l4proto { icmp, ipv6-icmp } accept\n\
             }\n\
             chain filter_IN_public_pre {\n}\n\
             chain filter_IN_public_log {\n}\n\
             chain filter_IN_public_deny {\n}\n\
             chain filter_IN_public_post {\n}\n\
             chain filter_IN_public_allow {\n\
             ip6 daddr fe80::/64 udp dport 546 accept\n",
        );
        for port in allowed {
            let _ = writeln!(script, "tcp dport {port} accept");
        }
        script.push_str("}\n}\n");
        self.nft(ns, &script);
    }

    /// Installs ufw's default policy (`ufw enable` with `default deny
    /// incoming`) in `ns`, both families, plus `ufw allow <p>/tcp` for each
    /// of `allow` and `ufw reject <p>/tcp` for each of `reject`:
    ///
    /// - INPUT policy DROP; `ufw-before-input` accepts `lo`,
    ///   RELATED,ESTABLISHED, the ICMP types of ufw's `before.rules`
    ///   (destination-unreachable, time-exceeded, parameter-problem,
    ///   echo-request; for IPv6 also packet-too-big and neighbour
    ///   discovery, as `before6.rules`), drops INVALID, then jumps to
    ///   `ufw-user-input`;
    /// - `ufw-user-input`: `-p tcp --dport P -j ACCEPT` for an allowed port,
    ///   `-p tcp --dport P -j REJECT --reject-with tcp-reset` for a rejected
    ///   one (ufw's `user.rules` shape);
    /// - everything else falls through to the DROP policy: no answer.
    ///
    /// # Panics
    ///
    /// If a rule is refused.
    pub fn ufw_default(&self, ns: &str, allow: &[u16], reject: &[u16]) {
        for v6 in [false, true] {
            let (before, user) = if v6 {
                ("ufw6-before-input", "ufw6-user-input")
            } else {
                ("ufw-before-input", "ufw-user-input")
            };
            let mut s = format!(
                "*filter\n:INPUT DROP [0:0]\n:{before} - [0:0]\n:{user} - [0:0]\n\
                 -A INPUT -j {before}\n\
                 -A {before} -i lo -j ACCEPT\n\
                 -A {before} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
                 -A {before} -m conntrack --ctstate INVALID -j DROP\n"
            );
            let icmp: &[&str] = if v6 {
                &[
                    "destination-unreachable",
                    "packet-too-big",
                    "time-exceeded",
                    "parameter-problem",
                    "echo-request",
                    "router-advertisement",
                    "neighbor-solicitation",
                    "neighbor-advertisement",
                ]
            } else {
                &[
                    "destination-unreachable",
                    "time-exceeded",
                    "parameter-problem",
                    "echo-request",
                ]
            };
            for kind in icmp {
                if v6 {
                    let _ = writeln!(s, "-A {before} -p icmpv6 --icmpv6-type {kind} -j ACCEPT");
                } else {
                    let _ = writeln!(s, "-A {before} -p icmp --icmp-type {kind} -j ACCEPT");
                }
            }
            let _ = writeln!(s, "-A {before} -j {user}");
            for port in allow {
                let _ = writeln!(s, "-A {user} -p tcp --dport {port} -j ACCEPT");
            }
            for port in reject {
                let _ = writeln!(
                    s,
                    "-A {user} -p tcp --dport {port} -j REJECT --reject-with tcp-reset"
                );
            }
            s.push_str("COMMIT\n");
            self.iptables_restore(ns, v6, &s);
        }
    }

    /// Adds nftables `tcp dport <port> reject with tcp reset` to the
    /// `forward` chain (a router's, e.g. r1) or the `input` chain (a host's)
    /// of table `inet synprobe_lab` in `ns`, creating table and chain if
    /// needed. Both families.
    ///
    /// # Panics
    ///
    /// If `nft` refuses the script.
    pub fn nft_reject_tcp_reset(&self, ns: &str, hook: NftHook, port: u16) {
        let chain = match hook {
            NftHook::Forward => "forward",
            NftHook::Input => "input",
        };
        self.nft(
            ns,
            &format!(
                "add table inet synprobe_lab\n\
                 add chain inet synprobe_lab {chain}_filter {{ type filter hook {chain} priority 0; }}\n\
                 add rule inet synprobe_lab {chain}_filter tcp dport {port} reject with tcp reset\n"
            ),
        );
    }

    /// Makes `ns` (a router) send no ICMP time exceeded and no ICMPv6 time
    /// exceeded, as some ISPs' routers do: OUTPUT rules
    /// `-p icmp --icmp-type time-exceeded -j DROP` and
    /// `-p icmpv6 --icmpv6-type time-exceeded -j DROP`. Packets still
    /// forward, and a probe whose TTL runs out there gets no answer.
    ///
    /// # Panics
    ///
    /// If a rule is refused.
    pub fn drop_time_exceeded(&self, ns: &str) {
        self.iptables(
            ns,
            false,
            &[
                "-A",
                "OUTPUT",
                "-p",
                "icmp",
                "--icmp-type",
                "time-exceeded",
                "-j",
                "DROP",
            ],
        );
        self.iptables(
            ns,
            true,
            &[
                "-A",
                "OUTPUT",
                "-p",
                "icmpv6",
                "--icmpv6-type",
                "time-exceeded",
                "-j",
                "DROP",
            ],
        );
    }

    /// Puts TCP `port` of `ns` behind SYNPROXY, both families, the way the
    /// iptables-extensions man page and RHEL's DDoS guides set it up:
    ///
    /// ```text
    /// -t raw -A PREROUTING -p tcp --dport <port> --syn -j CT --notrack
    /// -A INPUT -p tcp --dport <port> -m conntrack --ctstate INVALID,UNTRACKED -j SYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460
    /// -A INPUT -p tcp --dport <port> -m conntrack --ctstate INVALID -j DROP
    /// sysctl net.netfilter.nf_conntrack_tcp_loose=0
    /// ```
    ///
    /// SYNPROXY answers the SYN itself with a syncookie SYN-ACK and opens the
    /// connection to the local listener only once the client's ACK arrives,
    /// so the SYN-ACK comes whether or not anything listens.
    ///
    /// # Panics
    ///
    /// If a rule or the sysctl is refused.
    pub fn synproxy(&self, ns: &str, port: u16) {
        self.sysctl(ns, "net.netfilter.nf_conntrack_tcp_loose", "0");
        for v6 in [false, true] {
            let script = format!(
                "*raw\n\
                 -A PREROUTING -p tcp --dport {port} --syn -j CT --notrack\n\
                 COMMIT\n\
                 *filter\n\
                 -A INPUT -p tcp --dport {port} -m conntrack --ctstate INVALID,UNTRACKED \
                 -j SYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460\n\
                 -A INPUT -p tcp --dport {port} -m conntrack --ctstate INVALID -j DROP\n\
                 COMMIT\n"
            );
            self.iptables_restore(ns, v6, &script);
        }
    }

    /// Starts a TCP listener on `addr:port` inside `ns` that calls
    /// `listen(backlog)` and never `accept()`s, and returns once it
    /// listens. Linux queues at most `backlog + 1` completed connections;
    /// after that it drops new SYNs (counted as `TcpExtListenOverflows` and
    /// `TcpExtListenDrops`), so a client sees no answer at all. Fill the
    /// queue with [`Lab::fill_accept_queue`]. [`Listener::accepted`] stays 0.
    ///
    /// # Panics
    ///
    /// As [`Lab::listen`].
    pub fn listen_without_accepting(
        &self,
        ns: &str,
        addr: IpAddr,
        port: u16,
        backlog: u32,
    ) -> Listener {
        self.spawn_listener(
            ns,
            addr,
            port,
            &[
                "-c",
                LISTENER_NO_ACCEPT_PY,
                &addr.to_string(),
                &port.to_string(),
                &backlog.to_string(),
            ],
        )
    }

    /// Opens `count` TCP connections one after the other from `ns` to `dst`
    /// (each `connect()` given 0.5 s) and keeps those that connected open
    /// until the returned [`HeldConnections`] or the lab drops. Against a
    /// [`Lab::listen_without_accepting`] listener with backlog `b`, `b + 1`
    /// connect and the rest time out; the accept queue is then full.
    ///
    /// # Panics
    ///
    /// If the helper cannot be started or does not report within its time.
    pub fn fill_accept_queue(&self, ns: &str, dst: SocketAddr, count: usize) -> HeldConnections {
        let mut child = self
            .command(ns, "python3")
            .args([
                "-c",
                FILL_PY,
                &dst.ip().to_string(),
                &dst.port().to_string(),
            ])
            .args([
                count.to_string(),
                format!("{:.3}", FILL_CONNECT_TIMEOUT.as_secs_f64()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the connection holder in {ns}: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take();
        thread::spawn(move || {
            let Some(stdout) = stdout else { return };
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("held ") {
                    let _ = tx.send(n.trim().parse::<usize>().unwrap_or(0));
                }
            }
        });
        let wait = FILL_CONNECT_TIMEOUT * u32::try_from(count).unwrap_or(u32::MAX)
            + Duration::from_secs(10);
        let Ok(established) = rx.recv_timeout(wait) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the connection holder in {ns} did not report within {wait:?}");
        };
        HeldConnections { child, established }
    }

    /// Makes host names resolve inside `ns`: writes `/etc/netns/<ns>/hosts`
    /// (which `ip netns exec`, and so [`Lab::command`], [`Lab::exec`] and
    /// [`Lab::run_in`], bind-mounts over `/etc/hosts`) with `localhost` and
    /// one line per entry. Several entries may share a name (a live and a
    /// dead address for `web.lab`); resolvers return them in file order.
    /// Replaces what an earlier call wrote. Removed when the lab drops.
    ///
    /// # Panics
    ///
    /// If the file cannot be written.
    pub fn hosts(&self, ns: &str, entries: &[(&str, IpAddr)]) {
        let dir = Path::new(ETC_NETNS).join(ns);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let mut text = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n");
        for (name, addr) in entries {
            let _ = writeln!(text, "{addr}\t{name}");
        }
        let file = dir.join("hosts");
        std::fs::write(&file, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    }

    /// Resolves `name` inside `ns` with `getaddrinfo` (so through
    /// [`Lab::hosts`]' file) and returns the distinct addresses in the order
    /// the resolver gave them; empty if it does not resolve.
    ///
    /// # Panics
    ///
    /// If the helper cannot be run.
    pub fn resolve(&self, ns: &str, name: &str) -> Vec<IpAddr> {
        let out = self.run_in(
            ns,
            "python3",
            &["-c", RESOLVE_PY, name],
            Duration::from_secs(10),
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

/// Where [`Lab::nft_reject_tcp_reset`] puts its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NftHook {
    /// The `forward` hook: a router rejecting traffic passing through it.
    Forward,
    /// The `input` hook: a host rejecting traffic to itself.
    Input,
}

/// A Docker-style container namespace behind the server; see
/// [`Lab::container`]. Deleted with its [`Lab`].
#[derive(Debug, Clone)]
pub struct Container {
    name: String,
    ns: String,
    /// `k` of link `198.19.k.0/24`.
    index: usize,
}

impl Container {
    /// The name it was created with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its namespace, `<lab id>-<name>`, for [`Lab::listen`],
    /// [`Lab::exec`] and friends.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The server's interface towards it, `dock<k>`.
    pub fn host_iface(&self) -> String {
        format!("dock{}", self.index)
    }

    /// Its IPv4 address, `198.19.<k>.2`.
    pub fn v4(&self) -> Ipv4Addr {
        container_v4(self.index, 2)
    }

    /// Its IPv6 address, `2001:db8:ff:<k>::2`.
    pub fn v6(&self) -> Ipv6Addr {
        container_v6(self.index, 2)
    }

    /// The server's address on its link and its default gateway,
    /// `198.19.<k>.1`.
    pub fn gateway_v4(&self) -> Ipv4Addr {
        container_v4(self.index, 1)
    }

    /// The server's IPv6 address on its link and its default gateway,
    /// `2001:db8:ff:<k>::1`.
    pub fn gateway_v6(&self) -> Ipv6Addr {
        container_v6(self.index, 1)
    }

    /// An address on its link that nobody owns, `198.19.<k>.99`: where a
    /// DNAT rule left behind by a stopped container points, see
    /// [`Container::publish_stale`].
    pub fn absent_v4(&self) -> Ipv4Addr {
        container_v4(self.index, 99)
    }

    /// The IPv6 counterpart of [`Container::absent_v4`],
    /// `2001:db8:ff:<k>::99`.
    pub fn absent_v6(&self) -> Ipv6Addr {
        container_v6(self.index, 0x99)
    }

    fn subnet_v4(&self) -> Ipv4Addr {
        container_v4(self.index, 0)
    }

    fn subnet_v6(&self) -> Ipv6Addr {
        container_v6(self.index, 0)
    }

    /// Publishes `container_port` on the server's `host_port`, as
    /// `docker run -p <host_port>:<container_port>` does (without
    /// docker-proxy), both families:
    ///
    /// ```text
    /// -t nat -A DOCKER ! -i dock<k> -p tcp -m tcp --dport <host_port> -j DNAT --to-destination 198.19.<k>.2:<container_port>
    /// -A DOCKER -d 198.19.<k>.2/32 ! -i dock<k> -o dock<k> -p tcp -m tcp --dport <container_port> -j ACCEPT
    /// ```
    ///
    /// (IPv6: `[2001:db8:ff:<k>::2]:<container_port>`).
    ///
    /// # Panics
    ///
    /// If a rule is refused.
    pub fn publish(&self, lab: &Lab, host_port: u16, container_port: u16) {
        self.dnat(
            lab,
            host_port,
            self.v4().into(),
            self.v6().into(),
            container_port,
        );
    }

    /// Like [`Container::publish`], but to [`Container::absent_v4`] /
    /// [`Container::absent_v6`]: the rule a stopped container leaves behind
    /// when nothing cleaned it up. The server then forwards the SYN to an
    /// address nobody answers neighbour discovery for.
    ///
    /// # Panics
    ///
    /// If a rule is refused.
    pub fn publish_stale(&self, lab: &Lab, host_port: u16, container_port: u16) {
        self.dnat(
            lab,
            host_port,
            self.absent_v4().into(),
            self.absent_v6().into(),
            container_port,
        );
    }

    fn dnat(&self, lab: &Lab, host_port: u16, to4: IpAddr, to6: IpAddr, port: u16) {
        let dock = self.host_iface();
        for (v6, to) in [(false, to4), (true, to6)] {
            let (dest, plen) = match to {
                IpAddr::V4(a) => (format!("{a}:{port}"), 32),
                IpAddr::V6(a) => (format!("[{a}]:{port}"), 128),
            };
            let script = format!(
                "*nat\n\
                 -A DOCKER ! -i {dock} -p tcp -m tcp --dport {host_port} -j DNAT --to-destination {dest}\n\
                 COMMIT\n\
                 *filter\n\
                 -A DOCKER -d {to}/{plen} ! -i {dock} -o {dock} -p tcp -m tcp --dport {port} -j ACCEPT\n\
                 COMMIT\n"
            );
            lab.iptables_restore(lab.server_ns(), v6, &script);
        }
    }
}

/// Connections held open by [`Lab::fill_accept_queue`]; closed on drop.
#[derive(Debug)]
pub struct HeldConnections {
    child: Child,
    established: usize,
}

impl HeldConnections {
    /// How many of the attempted connections completed the handshake.
    pub fn established(&self) -> usize {
        self.established
    }

    /// Closes them now (same as dropping).
    pub fn close(self) {}
}

impl Drop for HeldConnections {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::env::var(KEEP_ENV).is_ok_and(|v| v == "1") {
            eprintln!(
                "lab: {KEEP_ENV}=1, keeping namespaces {:?}",
                self.namespaces
            );
            return;
        }
        let containers = self
            .containers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let all: Vec<&String> = self.namespaces.iter().chain(&containers).collect();
        for ns in &all {
            kill_netns_processes(ns);
        }
        for ns in &all {
            if let Err(e) = delete_netns(ns) {
                eprintln!("lab: cannot delete namespace {ns}: {e}");
            }
            remove_etc_netns(ns);
        }
    }
}

/// Removes `/etc/netns/<ns>` (written by [`Lab::hosts`]) if it exists.
fn remove_etc_netns(ns: &str) {
    let dir = Path::new(ETC_NETNS).join(ns);
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("lab: cannot remove {}: {e}", dir.display());
        }
    }
}

/// `198.18.<link>.<host>`.
fn link_v4(link: usize, host: u8) -> Ipv4Addr {
    let link = u8::try_from(link).expect("link index fits in an octet");
    Ipv4Addr::new(198, 18, link, host)
}

/// `2001:db8:0:<link>::<host>`.
fn link_v6(link: usize, host: u16) -> Ipv6Addr {
    let link = u16::try_from(link).expect("link index fits in 16 bits");
    Ipv6Addr::new(0x2001, 0xdb8, 0, link, 0, 0, 0, host)
}

/// `198.19.<k>.<host>`: link of container `k`.
fn container_v4(k: usize, host: u8) -> Ipv4Addr {
    let k = u8::try_from(k).expect("container index fits in an octet");
    Ipv4Addr::new(198, 19, k, host)
}

/// `2001:db8:ff:<k>::<host>`: link of container `k`.
fn container_v6(k: usize, host: u16) -> Ipv6Addr {
    let k = u16::try_from(k).expect("container index fits in 16 bits");
    Ipv6Addr::new(0x2001, 0xdb8, 0xff, k, 0, 0, 0, host)
}

/// Whether a line of `ss -ltnH` output shows a socket listening on `addr`.
fn ss_line_listens_on(line: &str, addr: SocketAddr) -> bool {
    // State Recv-Q Send-Q Local-Address:Port Peer-Address:Port [Process]
    let Some(local) = line.split_whitespace().nth(3) else {
        return false;
    };
    let Some((host, port)) = local.rsplit_once(':') else {
        return false;
    };
    if port.parse() != Ok(addr.port()) {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next().unwrap_or(host);
    host == "*" || host.parse::<IpAddr>() == Ok(addr.ip())
}

/// SIGKILLs the process group led by `child` (see `process_group(0)`), or just
/// `child` if that fails.
fn kill_process_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = child.kill();
    }
}

/// Reads the listener's stdout: reports the bound port once, then counts
/// accepted connections.
fn spawn_listener_reader(
    stdout: Option<ChildStdout>,
    ready: mpsc::Sender<u16>,
    accepted: Arc<AtomicUsize>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let Some(stdout) = stdout else { return };
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = line.strip_prefix("listening ") {
                if let Ok(port) = port.trim().parse() {
                    // The receiver is gone only if `listen` already gave up.
                    let _ = ready.send(port);
                }
            } else if line.starts_with("accepted ") {
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        }
    })
}

/// The answer to an ICMP echo request; see [`Lab::ping_ttl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingOutcome {
    /// An echo reply from this address.
    Reply(IpAddr),
    /// An ICMP or ICMPv6 error quoting the request.
    Error {
        /// Source address of the error.
        from: IpAddr,
        /// ICMP type (IPv4: 3 unreachable, 11 time exceeded; IPv6: 1
        /// unreachable, 3 time exceeded).
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
    /// No answer within 2 s.
    Timeout,
}

/// How an ordinary TCP `connect()` ended; see [`Lab::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// The handshake completed.
    Connected,
    /// `ECONNREFUSED`: a RST came back, or an ICMP error the kernel maps to
    /// "refused" (port unreachable).
    Refused,
    /// No answer before the timeout.
    TimedOut,
    /// Any other error, by errno name (e.g. `EHOSTUNREACH`, `ENETUNREACH`).
    Failed(String),
}

/// A TCP listener started by [`Lab::listen`]; killed on drop.
#[derive(Debug)]
pub struct Listener {
    child: Child,
    ns: String,
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    reader: Option<JoinHandle<()>>,
}

impl Listener {
    /// The address and port it listens on (the actual port if 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The namespace it runs in.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Process id of the listener.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many connections it has accepted so far (a connection shows up
    /// here shortly after the handshake, not at the same instant).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stops the listener now (same as dropping it); its port is closed
    /// when this returns.
    pub fn stop(self) {}
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Fails harmlessly if the lab already killed it.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Waits until `ifaces` of `ns` are up with a usable (non-tentative) IPv6
/// link-local address, panicking once `deadline` has passed; see
/// [`Lab::wait_ready`].
fn wait_links_ready(ns: &str, ifaces: &[&str], deadline: Instant) {
    loop {
        let links = checked(
            Command::new("ip").args(["-n", ns, "-o", "link", "show"]),
            None,
        );
        let addrs = checked(
            Command::new("ip").args(["-n", ns, "-6", "-o", "addr", "show", "scope", "link"]),
            None,
        );
        let links = String::from_utf8_lossy(&links.stdout);
        let addrs = String::from_utf8_lossy(&addrs.stdout);
        let ready = ifaces.iter().all(|iface| {
            let named = |line: &&str| {
                line.split_whitespace()
                    .nth(1)
                    .is_some_and(|n| n.trim_end_matches(':').split('@').next() == Some(*iface))
            };
            links.lines().filter(named).any(|l| l.contains("state UP"))
                && addrs
                    .lines()
                    .filter(named)
                    .any(|l| !l.contains("tentative"))
        });
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "links in {ns} not ready after {READY_TIMEOUT:?}:\n{links}{addrs}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_owner_parses_lab_names_only() {
        assert_eq!(lab_owner("sp4242x0-client"), Some(4242));
        assert_eq!(lab_owner("sp4242x17-r3"), Some(4242));
        assert_eq!(lab_owner("sp4242x0-probe"), Some(4242));
        assert_eq!(lab_owner("sp4242x-client"), None);
        assert_eq!(lab_owner("spx0-client"), None);
        assert_eq!(lab_owner("sp4242x0-"), None);
        assert_eq!(lab_owner("sp42a2x0-client"), None);
        assert_eq!(lab_owner("blue"), None);
    }

    #[test]
    fn ss_lines_match_addresses() {
        let v4: SocketAddr = "198.18.2.2:80".parse().expect("literal");
        let v6: SocketAddr = "[2001:db8:0:2::2]:80".parse().expect("literal");
        let any6: SocketAddr = "[::]:80".parse().expect("literal");
        let line = |local: &str| format!("LISTEN 0      128     {local}      0.0.0.0:*");
        assert!(ss_line_listens_on(&line("198.18.2.2:80"), v4));
        assert!(!ss_line_listens_on(&line("198.18.2.2:8080"), v4));
        assert!(!ss_line_listens_on(&line("127.0.0.1:80"), v4));
        assert!(ss_line_listens_on(&line("[2001:db8:0:2::2]:80"), v6));
        assert!(ss_line_listens_on(&line("[::]:80"), any6));
        assert!(ss_line_listens_on(&line("*:80"), any6));
    }

    #[test]
    fn address_plan() {
        assert_eq!(link_v4(2, 2), Ipv4Addr::new(198, 18, 2, 2));
        assert_eq!(
            link_v6(1, 2),
            "2001:db8:0:1::2".parse::<Ipv6Addr>().expect("literal")
        );
    }
}
