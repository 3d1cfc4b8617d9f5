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
//! IPv6 duplicate address detection is off, and [`Lab::new`] returns only
//! once every veth is up with its IPv6 link-local address, so both families
//! work from the first packet. By default the per-destination ICMP rate limits
//! (`net.ipv4.icmp_ratelimit`, `net.ipv6.icmp.ratelimit`) are set to 0 in
//! every namespace so repeated probes get deterministic answers;
//! [`LabBuilder::kernel_icmp_ratelimit`] keeps the kernel defaults instead (a
//! burst of 6 errors towards one destination, then 1 per second for IPv4 and
//! 1 per 100 ms for IPv6).
//!
//! # Naming and clean-up
//!
//! Namespaces are called `sp<pid>x<counter>-<node>` (for example
//! `sp4242x0-client`, `sp4242x0-r1`, `sp4242x0-server`), so labs built by
//! parallel test threads and processes never collide. Dropping a [`Lab`] kills
//! every process still running in its namespaces and deletes them (which also
//! removes the veths), also while unwinding from a failed assertion. Namespaces
//! left behind by a process that died without unwinding are removed by
//! [`Lab::sweep_stale`], which the first lab of every process runs
//! automatically. Set `SYNPROBE_LAB_KEEP=1` to keep a lab's namespaces after
//! the test for inspection (the next run sweeps them).
//!
//! Everything here needs root and the `ip` and `ss` (iproute2), `kill`
//! (procps) and `python3` programs; guard
//! each test with [`root_or_skip`]. Firewall rules go through `iptables` /
//! `ip6tables` (the nf_tables backend Debian installs and the legacy backend
//! both work inside namespaces) or `nft`.

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
            eprintln!(
                "SKIP {test}: needs root and network namespaces (run as root, e.g. sudo -E cargo test)"
            );
            eprintln!("     reason: {reason}");
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
    kernel_icmp_ratelimit: bool,
}

impl LabBuilder {
    /// Number of routers between client and server, `0..=MAX_ROUTERS`
    /// (default 2).
    #[must_use]
    pub fn routers(mut self, routers: usize) -> Self {
        self.routers = routers;
        self
    }

    /// Keep the kernel's default per-destination ICMP rate limits instead of
    /// disabling them (default: disabled, so every probe gets its answer).
    #[must_use]
    pub fn kernel_icmp_ratelimit(mut self, keep: bool) -> Self {
        self.kernel_icmp_ratelimit = keep;
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
            namespaces: Vec::new(),
        };
        // Namespaces are recorded as soon as they exist, so a panic below
        // drops `lab` and removes them.
        for node in 0..self.routers + 2 {
            let ns = format!("{}-{}", lab.id, lab.node_name(node));
            create_netns(&ns).unwrap_or_else(|e| panic!("{e}"));
            lab.namespaces.push(ns);
        }
        for node in 0..lab.namespaces.len() {
            lab.configure_sysctls(node, self.kernel_icmp_ratelimit);
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
    /// client, r1 ..= rN, server; only those created so far.
    namespaces: Vec<String>,
}

impl Lab {
    /// Builds a lab with `routers` routers (`0..=MAX_ROUTERS`) and the default
    /// settings; see [`LabBuilder::build`].
    pub fn new(routers: usize) -> Lab {
        Lab::builder().routers(routers).build()
    }

    /// A builder with the default settings (2 routers, ICMP rate limits off).
    pub fn builder() -> LabBuilder {
        LabBuilder {
            routers: 2,
            kernel_icmp_ratelimit: false,
        }
    }

    /// Deletes lab namespaces (`sp<pid>x<n>-<node>`) whose creating process no
    /// longer exists, after killing the processes still inside them. Returns
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
        let mut child = self
            .command(ns, "python3")
            .args(["-c", LISTENER_PY, &addr.to_string(), &port.to_string()])
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
            loop {
                let links = checked(
                    Command::new("ip").args(["-n", ns, "-o", "link", "show"]),
                    None,
                );
                let addrs = checked(
                    Command::new("ip")
                        .args(["-n", ns, "-6", "-o", "addr", "show", "scope", "link"]),
                    None,
                );
                let links = String::from_utf8_lossy(&links.stdout);
                let addrs = String::from_utf8_lossy(&addrs.stdout);
                let ready = ifaces.iter().all(|iface| {
                    let named = |line: &&str| {
                        line.split_whitespace().nth(1).is_some_and(|n| {
                            n.trim_end_matches(':').split('@').next() == Some(*iface)
                        })
                    };
                    links.lines().filter(named).any(|l| l.contains("state UP"))
                        && addrs
                            .lines()
                            .filter(named)
                            .any(|l| !l.contains("tentative"))
                });
                if ready {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "links in {ns} not ready after {READY_TIMEOUT:?}:\n{links}{addrs}"
                );
                thread::sleep(Duration::from_millis(10));
            }
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

    fn configure_sysctls(&self, node: usize, kernel_icmp_ratelimit: bool) {
        let mut settings = vec![
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ];
        if !kernel_icmp_ratelimit {
            settings.extend(["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"]);
        }
        if self.is_router(node) {
            settings.extend(["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
        }
        let mut args = vec!["sysctl", "-qw"];
        args.extend(settings);
        self.exec_ok(&self.namespaces[node], &args);
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

impl Drop for Lab {
    fn drop(&mut self) {
        if std::env::var(KEEP_ENV).is_ok_and(|v| v == "1") {
            eprintln!(
                "lab: {KEEP_ENV}=1, keeping namespaces {:?}",
                self.namespaces
            );
            return;
        }
        for ns in &self.namespaces {
            kill_netns_processes(ns);
        }
        for ns in &self.namespaces {
            if let Err(e) = delete_netns(ns) {
                eprintln!("lab: cannot delete namespace {ns}: {e}");
            }
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
