//! A realistic capture with its ground truth, for the truth test and the benchmarks.
//!
//! [`generate`] writes a classic pcap (Ethernet, microsecond timestamps) of exactly [`Config::packets`] frames,
//! deterministically from [`Config::seed`], and returns the [`Truth`]: what `synprobe replay` must report on it.
//! Every frame is built with synprobe-core's own builders (`synprobe_core::build`), so checksums are valid and
//! frames are padded to the 60-byte Ethernet minimum.
//!
//! The traffic, at about [`Config::packets_per_sec`] frames a second:
//!
//! - about 24% SYNs (first SYNs and retransmissions) from a few thousand clients (10% IPv6; 5% ECN-setup SYNs; a
//!   few DSCP-marked) to a few thousand servers, each server at a fixed distance and initial TTL (64, 128, 255)
//!   with a handful of service ports. Each attempt is answered 40% SYN-ACK (30% of them followed by the client's
//!   ACK, or by the RST of a scanner's kernel), 30% RST+ACK (most from the server's own stack at its distance; a
//!   fifth, for servers behind a firewall that has already been seen answering SYN-ACKs, forged by that firewall
//!   a few hops before the server), 10% ICMP/ICMPv6 destination unreachable quoting the SYN (from a router or the
//!   target; 30% of ICMPv4 errors quote only 8 bytes of TCP), 20% silence with SYN retransmissions after 1 s and
//!   3 s as Linux sends them. Replies come back after the server's round-trip time (1 ms to 250 ms);
//! - about 56% data segments (100 to 1400 bytes of payload) of established connections whose handshakes are not
//!   in the capture, and now and then an RST tearing one down;
//! - DNS queries and answers over UDP, ICMP port unreachables quoting UDP, and a few deliberate strays: SYN-ACKs
//!   and RSTs answering SYNs that are not in the capture, and ICMP "fragmentation needed"/"packet too big"
//!   errors quoting data segments.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use synprobe_core::build::{ethernet, icmp_error, udp, IpSpec, QuoteLen, TcpSpec};
use synprobe_core::capture::PcapWriter;
use synprobe_core::wire::{TcpFlags, TcpOptions};
use synprobe_core::{LinkType, Timestamp, Verdict};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Frames to write (exactly).
    pub packets: u64,
    /// Seed of the pseudo-random generator: the same seed, the same file.
    pub seed: u64,
    /// Capture start, in seconds since the Unix epoch.
    pub start_secs: i64,
    /// Average frame rate.
    pub packets_per_sec: u32,
    /// IPv4 servers (IPv6 servers are a tenth of this).
    pub servers: u32,
    /// IPv4 clients (IPv6 clients are a tenth of this).
    pub clients: u32,
    /// Established connections carrying data at any time.
    pub flows: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            packets: 20_000,
            seed: 1,
            start_secs: 1_763_700_000,
            packets_per_sec: 20_000,
            servers: 3_000,
            clients: 2_000,
            flows: 2_048,
        }
    }
}

/// The counts `synprobe replay` reports, named as in its JSON summary record (`docs/json.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Frames in the file.
    pub frames: u64,
    /// Connection attempts (a SYN and its retransmissions).
    pub attempts: u64,
    /// Attempts by verdict (verdicts with no attempt left out, as in the summary's `by_verdict`).
    pub by_verdict: BTreeMap<Verdict, u64>,
    /// Attempts with at least one SYN retransmission.
    pub retransmitted_attempts: u64,
    /// SYN retransmissions in all.
    pub retransmissions: u64,
    /// Replies matched to attempts (SYN-ACKs, RSTs, ICMP errors).
    pub replies: u64,
    /// SYN-ACKs and RSTs answering SYNs that are not in the capture.
    pub stray_tcp: u64,
    /// ICMP errors quoting TCP segments that belong to no attempt.
    pub stray_icmp: u64,
    /// RSTs tearing down established connections.
    pub other_resets: u64,
    /// Replies after their attempt ended (none are generated).
    pub late_replies: u64,
    /// Attempts rebuilt from ICMP quotes (none are generated).
    pub rebuilt_from_icmp: u64,
    /// Attempts evicted from a full table (none at the default cap).
    pub evicted: u64,
}

/// What the file is made of, frame by frame (for the record; `synprobe replay` does not report these).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mix {
    /// SYN frames (first SYNs and retransmissions).
    pub syn_frames: u64,
    /// Attempts over IPv6.
    pub ipv6_attempts: u64,
    /// ECN-setup SYNs (ECE and CWR set).
    pub ecn_attempts: u64,
    /// Attempts whose SYN carried a non-zero DSCP.
    pub dscp_attempts: u64,
    /// SYN-ACKs.
    pub syn_acks: u64,
    /// RSTs from the server's own stack.
    pub stack_rsts: u64,
    /// RSTs forged by a firewall in front of the server.
    pub forged_rsts: u64,
    /// ICMP/ICMPv6 errors quoting a SYN.
    pub icmp_errors: u64,
    /// Of those, ICMPv4 errors quoting only 8 bytes of TCP.
    pub minimal_quotes: u64,
    /// The client's ACK or RST after a SYN-ACK.
    pub client_followups: u64,
    /// Data segments of established connections.
    pub data_frames: u64,
    /// RSTs tearing down established connections.
    pub teardown_rsts: u64,
    /// DNS queries and answers.
    pub dns_frames: u64,
    /// ICMP errors quoting UDP.
    pub icmp_quoting_udp: u64,
    /// Deliberate strays (SYN-ACKs, RSTs, ICMP errors quoting data segments).
    pub stray_frames: u64,
    /// Bytes of the pcap file.
    pub file_bytes: u64,
    /// Capture time from the first to the last frame, in seconds.
    pub duration_secs: f64,
}

/// The ground truth of a generated capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// The seed it was generated from.
    pub seed: u64,
    /// What `synprobe replay` must report.
    pub counts: Counts,
    /// What the frames are.
    pub mix: Mix,
}

/// Write a capture to `out` and return its ground truth.
pub fn generate<W: Write>(config: &Config, out: W) -> io::Result<Truth> {
    let mut g = Generator::new(config);
    let mut writer = PcapWriter::new(
        CountingWriter { inner: out, n: 0 },
        LinkType::ETHERNET,
        65_535,
        false,
    )?;
    g.run(&mut writer)?;
    let counting = writer.finish()?;
    g.truth.mix.file_bytes = counting.n;
    Ok(g.truth)
}

struct CountingWriter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// xorshift64*: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    fn nonzero_u32(&mut self) -> u32 {
        self.u32().max(1)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// An index in `0..n` skewed towards the start (some servers are much more popular than others).
    fn popular(&mut self, n: usize) -> usize {
        let u = self.below(1 << 20) as f64 / f64::from(1 << 20);
        ((u * u * u) * n as f64) as usize % n
    }
}

const SERVICE_PORTS: [u16; 30] = [
    443, 80, 22, 25, 53, 8080, 8443, 3306, 5432, 6379, 9200, 3389, 445, 21, 110, 143, 993, 995,
    1433, 27017, 11211, 5672, 9092, 2379, 8000, 8888, 5000, 9000, 6443, 10250,
];
const PORTS_PER_SERVER: usize = 5;

struct Server {
    addr: IpAddr,
    /// Initial TTL of its stack: 64 (Linux), 128 (Windows), 255.
    initial: u8,
    /// Its distance from the capture point, counted as traceroute does (first router = 1).
    hops: u8,
    rtt_us: i64,
    /// Service ports; the first `open` of them listen.
    ports: [u16; PORTS_PER_SERVER],
    open: usize,
    /// Whether its stack's RSTs echo the SYN's TOS (Linux does).
    echoes_tos: bool,
    /// A firewall in front of it that forges RSTs, at this hop.
    firewall_hops: Option<u8>,
    /// The router that sends ICMP errors about it.
    router: IpAddr,
    router_hops: u8,
    router_initial: u8,
    /// Whether an attempt answered by its SYN-ACK (without retransmission) has started: from then on a forged
    /// RST for it has a baseline to be told apart by.
    baseline: bool,
}

impl Server {
    fn reply_ttl(&self) -> u8 {
        self.initial - (self.hops - 1)
    }
    fn open_port(&self, rng: &mut Rng) -> u16 {
        self.ports[rng.below(self.open as u64) as usize]
    }
    fn closed_port(&self, rng: &mut Rng) -> u16 {
        self.ports[self.open + rng.below((PORTS_PER_SERVER - self.open) as u64) as usize]
    }
    /// A round-trip time around the server's own (±10%), for a reply from `hops` away.
    fn rtt(&self, rng: &mut Rng, hops: u8) -> i64 {
        let base = self.rtt_us * i64::from(hops) / i64::from(self.hops);
        (base + rng.range(0, (base / 5).max(1) as u64) as i64 - base / 10).max(50)
    }
}

struct Client {
    addr: IpAddr,
    initial: u8,
    /// Routers between the client and the capture point.
    hops: u8,
    dscp_tos: u8,
    windows: bool,
    next_port: u16,
    next_flow_port: u16,
    ident: u16,
    ts_val: u32,
}

impl Client {
    fn syn_ttl(&self) -> u8 {
        self.initial - self.hops
    }
    /// Ephemeral ports for attempts cycle through 32768..=60999 (Linux's range); established connections use
    /// 61000..=65535, so the two never share a four-tuple.
    fn attempt_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p >= 60_999 { 32_768 } else { p + 1 };
        p
    }
    fn flow_port(&mut self) -> u16 {
        let p = self.next_flow_port;
        self.next_flow_port = if p == u16::MAX { 61_000 } else { p + 1 };
        p
    }
    fn ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }
    fn syn_options(&mut self, v6: bool) -> TcpOptions {
        if self.windows {
            let mss: [u8; 2] = if v6 { [0x05, 0xa0] } else { [0x05, 0xb4] };
            TcpOptions::from_bytes(&[2, 4, mss[0], mss[1], 1, 3, 3, 8, 1, 1, 4, 2])
        } else {
            self.ts_val = self.ts_val.wrapping_add(997);
            let t = self.ts_val.to_be_bytes();
            let mss: [u8; 2] = if v6 { [0x05, 0xa0] } else { [0x05, 0xb4] };
            TcpOptions::from_bytes(&[
                2, 4, mss[0], mss[1], 4, 2, 8, 10, t[0], t[1], t[2], t[3], 0, 0, 0, 0, 1, 3, 3, 7,
            ])
        }
    }
}

/// An established connection (its handshake is before the capture).
struct Flow {
    client: usize,
    server: usize,
    v6: bool,
    client_port: u16,
    server_port: u16,
    client_seq: u32,
    server_seq: u32,
    client_label: u32,
    server_label: u32,
    server_ident: u16,
}

/// A datagram to emit.
#[derive(Debug, Clone, Copy)]
enum Datagram {
    Tcp(IpSpec, TcpSpec),
    Udp(IpSpec, u16, u16, usize),
    IcmpError {
        ip: IpSpec,
        icmp_type: u8,
        code: u8,
        quoted: Quoted,
        quote: QuoteLen,
    },
}

/// The datagram an ICMP error quotes.
#[derive(Debug, Clone, Copy)]
enum Quoted {
    Tcp(IpSpec, TcpSpec),
    Udp(IpSpec, u16, u16, usize),
}

impl Datagram {
    fn emit(&self) -> io::Result<Vec<u8>> {
        let r = match *self {
            Datagram::Tcp(ip, tcp) => tcp.emit(&ip),
            Datagram::Udp(ip, s, d, n) => udp(&ip, s, d, n),
            Datagram::IcmpError {
                ip,
                icmp_type,
                code,
                quoted,
                quote,
            } => {
                let offending = match quoted {
                    Quoted::Tcp(qip, qtcp) => qtcp.emit(&qip),
                    Quoted::Udp(qip, s, d, n) => udp(&qip, s, d, n),
                }
                .map_err(io::Error::other)?;
                icmp_error(&ip, icmp_type, code, &offending, quote)
            }
        };
        r.map_err(io::Error::other)
    }
}

/// A frame waiting for its capture time; ordered by (time, order of scheduling).
struct Scheduled {
    at_us: i64,
    seq: u64,
    datagram: Datagram,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap, the earliest frame must come out first.
        (other.at_us, other.seq).cmp(&(self.at_us, self.seq))
    }
}

/// The most frames one item (an attempt with a retransmission, its reply and the client's follow-up) schedules.
const MAX_ITEM_FRAMES: u64 = 4;

struct Generator {
    config: Config,
    rng: Rng,
    servers_v4: Vec<Server>,
    servers_v6: Vec<Server>,
    clients_v4: Vec<Client>,
    clients_v6: Vec<Client>,
    flows: Vec<Flow>,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    emitted: u64,
    truth: Truth,
}

fn v4(a: u8, b: u8, i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, (i / 250) as u8, (i % 250 + 1) as u8))
}

fn v6(net: u16, i: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        net,
        0,
        0,
        0,
        (i >> 16) as u16,
        (i & 0xffff) as u16 + 1,
    ))
}

impl Generator {
    fn new(config: &Config) -> Self {
        let mut rng = Rng::new(config.seed);
        let servers_v4 = (0..config.servers)
            .map(|i| {
                Self::server(
                    &mut rng,
                    v4(198, 18 + (i / 62_500) as u8, i % 62_500),
                    false,
                )
            })
            .collect();
        let servers_v6 = (0..config.servers.div_ceil(10))
            .map(|i| Self::server(&mut rng, v6(5, i), true))
            .collect();
        let clients_v4 = (0..config.clients)
            .map(|i| Self::client(&mut rng, v4(10, 1 + (i / 62_500) as u8, i % 62_500)))
            .collect();
        let clients_v6 = (0..config.clients.div_ceil(10))
            .map(|i| Self::client(&mut rng, v6(0xc, i)))
            .collect();
        let mut g = Generator {
            config: *config,
            rng,
            servers_v4,
            servers_v6,
            clients_v4,
            clients_v6,
            flows: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            emitted: 0,
            truth: Truth {
                seed: config.seed,
                ..Truth::default()
            },
        };
        for _ in 0..config.flows {
            let f = g.new_flow();
            g.flows.push(f);
        }
        g
    }

    fn server(rng: &mut Rng, addr: IpAddr, is_v6: bool) -> Server {
        let initial = match rng.below(10) {
            0..=5 => 64,
            6..=8 => 128,
            _ => 255,
        };
        let hops = rng.range(2, 20) as u8;
        let mut ports = [0u16; PORTS_PER_SERVER];
        let mut n = 0;
        while n < PORTS_PER_SERVER {
            // Mostly well-known services, now and then a high port.
            let p = if rng.chance(10) {
                rng.range(1024, 49_151) as u16
            } else {
                SERVICE_PORTS[rng.popular(SERVICE_PORTS.len())]
            };
            if !ports[..n].contains(&p) {
                ports[n] = p;
                n += 1;
            }
        }
        let router_index = rng.below(250) as u32;
        let router = if is_v6 {
            v6(0xff, router_index)
        } else {
            v4(198, 19, 50_000 + router_index)
        };
        Server {
            addr,
            initial,
            hops,
            rtt_us: i64::from(hops) * rng.range(500, 12_500) as i64,
            ports,
            open: rng.range(1, 3) as usize,
            echoes_tos: initial != 128,
            firewall_hops: (hops >= 3 && rng.chance(40))
                .then(|| rng.range(1, u64::from(hops) - 1) as u8),
            router,
            router_hops: rng.range(1, u64::from(hops) - 1) as u8,
            router_initial: if rng.chance(70) { 255 } else { 64 },
            baseline: false,
        }
    }

    fn client(rng: &mut Rng, addr: IpAddr) -> Client {
        let windows = rng.chance(30);
        Client {
            addr,
            initial: if windows { 128 } else { 64 },
            hops: rng.range(0, 1) as u8,
            dscp_tos: if rng.chance(5) { 0x48 } else { 0 },
            windows,
            next_port: rng.range(32_768, 60_999) as u16,
            next_flow_port: rng.range(61_000, 65_535) as u16,
            ident: rng.u32() as u16,
            ts_val: rng.u32(),
        }
    }

    fn new_flow(&mut self) -> Flow {
        let is_v6 = self.rng.chance(10);
        let (nc, ns) = if is_v6 {
            (self.clients_v6.len(), self.servers_v6.len())
        } else {
            (self.clients_v4.len(), self.servers_v4.len())
        };
        let client = self.rng.below(nc as u64) as usize;
        let server = self.rng.popular(ns);
        let (cl, sv) = if is_v6 {
            (&mut self.clients_v6[client], &self.servers_v6[server])
        } else {
            (&mut self.clients_v4[client], &self.servers_v4[server])
        };
        let server_port = sv.open_port(&mut self.rng);
        Flow {
            client,
            server,
            v6: is_v6,
            client_port: cl.flow_port(),
            server_port,
            client_seq: self.rng.nonzero_u32(),
            server_seq: self.rng.nonzero_u32(),
            client_label: self.rng.nonzero_u32() & 0xf_ffff,
            server_label: self.rng.nonzero_u32() & 0xf_ffff,
            server_ident: self.rng.u32() as u16,
        }
    }

    fn schedule(&mut self, at_us: i64, datagram: Datagram) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at_us,
            seq: self.seq,
            datagram,
        });
    }

    fn run<W: Write>(&mut self, out: &mut PcapWriter<W>) -> io::Result<()> {
        let n = self.config.packets;
        // Items (an attempt, a data segment, a DNS exchange...) average about 1.3 frames.
        let mean_gap_us = (1.3e6 / f64::from(self.config.packets_per_sec.max(1))).max(1.0);
        let max_gap = (2.0 * mean_gap_us) as u64;
        let mut now: i64 = 0;
        let mut last: i64 = 0;
        loop {
            let committed = self.emitted + self.queue.len() as u64;
            if committed < n {
                now += self.rng.below(max_gap + 1) as i64;
                if n - committed >= MAX_ITEM_FRAMES {
                    self.start_item(now);
                } else {
                    self.data_segment(now);
                }
            } else if self.queue.is_empty() {
                break;
            } else {
                now = i64::MAX;
            }
            while self.queue.peek().is_some_and(|s| s.at_us <= now) {
                let Some(s) = self.queue.pop() else { break };
                let ip = s.datagram.emit()?;
                let frame = ethernet(&ip);
                let ts = Timestamp(self.config.start_secs * 1_000_000_000 + s.at_us * 1_000);
                out.write(ts, &frame, frame.len() as u32)?;
                self.emitted += 1;
                last = s.at_us;
            }
        }
        self.truth.counts.frames = self.emitted;
        self.truth.mix.duration_secs = last as f64 / 1e6;
        Ok(())
    }

    fn start_item(&mut self, now: i64) {
        // Out of 10,000 items: about 24% of frames are SYNs and 56% data segments.
        match self.rng.below(10_000) {
            0..=2433 => self.attempt(now),
            2434..=9821 => self.data_segment(now),
            9822..=9831 => self.teardown(now),
            9832..=9959 => self.dns(now),
            9960..=9985 => self.icmp_quoting_udp(now),
            _ => self.stray(now),
        }
    }

    fn attempt(&mut self, now: i64) {
        let is_v6 = self.rng.chance(10);
        let outcome = self.rng.below(100);
        let (nc, ns) = if is_v6 {
            (self.clients_v6.len(), self.servers_v6.len())
        } else {
            (self.clients_v4.len(), self.servers_v4.len())
        };
        let ci = self.rng.below(nc as u64) as usize;
        let si = self.rng.popular(ns);
        let rng = &mut self.rng;
        let (client, server) = if is_v6 {
            (&mut self.clients_v6[ci], &mut self.servers_v6[si])
        } else {
            (&mut self.clients_v4[ci], &mut self.servers_v4[si])
        };
        let ecn = rng.chance(5);
        let isn = rng.u32();
        let port = if outcome < 40 {
            server.open_port(rng)
        } else {
            server.closed_port(rng)
        };
        let mut syn = TcpSpec::syn(client.attempt_port(), port, isn);
        syn.options = client.syn_options(is_v6);
        if ecn {
            syn.flags = TcpFlags(TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR);
        }
        let label = rng.nonzero_u32() & 0xf_ffff;
        let syn_ip = IpSpec::new(client.addr, server.addr)
            .ttl(client.syn_ttl())
            .tos(client.dscp_tos)
            .ident(client.ident())
            .flow_label(label);
        let mut events: [Option<(i64, Datagram)>; 4] = [None; 4];
        events[0] = Some((now, Datagram::Tcp(syn_ip, syn)));
        let mut retransmissions = 0u64;
        let mut last_syn = now;
        let reply_ip = IpSpec::new(server.addr, client.addr)
            .ttl(server.reply_ttl())
            .ident(0)
            .flow_label(rng.nonzero_u32() & 0xf_ffff);
        let m = &mut self.truth.mix;
        let verdict = match outcome {
            0..=39 => {
                // SYN-ACK; a few SYNs are lost beyond the capture point and retransmitted once.
                if rng.chance(3) {
                    last_syn = now + 1_000_000 + rng.below(2_000) as i64;
                    events[1] = Some((last_syn, Datagram::Tcp(syn_ip.ident(client.ident()), syn)));
                    retransmissions = 1;
                } else {
                    server.baseline = true;
                }
                let mut syn_ack = TcpSpec::syn_ack_to(&syn, rng.u32());
                if ecn {
                    syn_ack.flags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE);
                }
                let at = last_syn + server.rtt(rng, server.hops);
                events[2] = Some((at, Datagram::Tcp(reply_ip, syn_ack)));
                m.syn_acks += 1;
                // The client's ACK completes the handshake; a scanner's kernel sends RST instead.
                let follow = rng.below(100);
                if follow < 30 {
                    let flags = if follow < 25 {
                        TcpFlags::ACK
                    } else {
                        TcpFlags::RST
                    };
                    let ours = TcpSpec {
                        src_port: syn.src_port,
                        dst_port: syn.dst_port,
                        seq: isn.wrapping_add(1),
                        ack: if flags == TcpFlags::ACK {
                            syn_ack.seq.wrapping_add(1)
                        } else {
                            0
                        },
                        flags: TcpFlags(flags),
                        window: if flags == TcpFlags::ACK { 502 } else { 0 },
                        options: TcpOptions::default(),
                        payload_len: 0,
                    };
                    let after = at + rng.range(30, 400) as i64;
                    events[3] = Some((after, Datagram::Tcp(syn_ip.ident(client.ident()), ours)));
                    m.client_followups += 1;
                }
                Verdict::Open
            }
            40..=69 => {
                let forged = server.baseline && server.firewall_hops.is_some() && rng.chance(20);
                match server.firewall_hops {
                    Some(fw) if forged => {
                        // netfilter's REJECT --reject-with tcp-reset on a Linux firewall: TTL 64 at its
                        // distance, TOS 0, flow label 0.
                        let ip = IpSpec::new(server.addr, client.addr)
                            .ttl(64 - (fw - 1))
                            .ident(0)
                            .df(false)
                            .flow_label(0);
                        let at = now + server.rtt(rng, fw);
                        events[2] = Some((at, Datagram::Tcp(ip, TcpSpec::rst_to(&syn))));
                        m.forged_rsts += 1;
                        Verdict::FirewallRst
                    }
                    _ => {
                        let tos = if server.echoes_tos {
                            client.dscp_tos
                        } else {
                            0
                        };
                        let at = now + server.rtt(rng, server.hops);
                        events[2] =
                            Some((at, Datagram::Tcp(reply_ip.tos(tos), TcpSpec::rst_to(&syn))));
                        m.stack_rsts += 1;
                        Verdict::Closed
                    }
                }
            }
            70..=79 => {
                let kind = rng.below(100);
                let (src, hops, initial) = if (50..65).contains(&kind) {
                    (server.addr, server.hops, server.initial)
                } else {
                    (server.router, server.router_hops, server.router_initial)
                };
                let (icmp_type, code, verdict) = match (is_v6, kind) {
                    (false, 0..=49) => (3, *rng.pick(&[13, 10, 9]), Verdict::IcmpRejected),
                    (false, 50..=64) => (3, 3, Verdict::IcmpRejected),
                    (false, _) => (3, *rng.pick(&[1, 0]), Verdict::Unreachable),
                    (true, 0..=49) => (1, *rng.pick(&[1, 5, 6]), Verdict::IcmpRejected),
                    (true, 50..=64) => (1, 4, Verdict::IcmpRejected),
                    (true, _) => (1, *rng.pick(&[0, 3]), Verdict::Unreachable),
                };
                let quote = if !is_v6 && rng.chance(30) {
                    m.minimal_quotes += 1;
                    QuoteLen::Minimal
                } else {
                    QuoteLen::Full
                };
                // The SYN as it reached the sender of the error, after `hops - 1` routers.
                let quoted = syn_ip.ttl(syn_ip.ttl - (hops - 1));
                let ip = IpSpec::new(src, client.addr)
                    .ttl(initial - (hops - 1))
                    .tos(0xc0)
                    .ident(rng.u32() as u16)
                    .df(false)
                    .flow_label(0);
                let at = now + server.rtt(rng, hops);
                events[2] = Some((
                    at,
                    Datagram::IcmpError {
                        ip,
                        icmp_type,
                        code,
                        quoted: Quoted::Tcp(quoted, syn),
                        quote,
                    },
                ));
                m.icmp_errors += 1;
                verdict
            }
            _ => {
                // Silence: Linux retransmits after 1 s and again 2 s later.
                retransmissions = 1 + rng.below(2);
                let mut at = now;
                for (i, gap) in [1_000_000i64, 2_000_000]
                    .iter()
                    .enumerate()
                    .take(retransmissions as usize)
                {
                    at += gap + rng.below(2_000) as i64;
                    events[1 + i] = Some((at, Datagram::Tcp(syn_ip.ident(client.ident()), syn)));
                }
                Verdict::Filtered
            }
        };
        let replies = u64::from(!matches!(verdict, Verdict::Filtered));
        m.syn_frames += 1 + retransmissions;
        m.ipv6_attempts += u64::from(is_v6);
        m.ecn_attempts += u64::from(ecn);
        m.dscp_attempts += u64::from(client.dscp_tos != 0);
        let c = &mut self.truth.counts;
        c.attempts += 1;
        *c.by_verdict.entry(verdict).or_default() += 1;
        c.retransmitted_attempts += u64::from(retransmissions > 0);
        c.retransmissions += retransmissions;
        c.replies += replies;
        for (at, d) in events.into_iter().flatten() {
            self.schedule(at, d);
        }
    }

    fn flow_endpoints(&self, f: &Flow) -> (&Client, &Server) {
        if f.v6 {
            (&self.clients_v6[f.client], &self.servers_v6[f.server])
        } else {
            (&self.clients_v4[f.client], &self.servers_v4[f.server])
        }
    }

    fn data_segment(&mut self, now: i64) {
        let i = self.rng.below(self.flows.len() as u64) as usize;
        let payload = self.rng.range(100, 1400) as u32;
        let from_server = self.rng.chance(70);
        let push = self.rng.chance(40);
        let ts = self.rng.u32();
        let f = &self.flows[i];
        let (client, server) = self.flow_endpoints(f);
        let flags = TcpFlags::ACK | if push { TcpFlags::PSH } else { 0 };
        let t = ts.to_be_bytes();
        let options = TcpOptions::from_bytes(&[1, 1, 8, 10, t[0], t[1], t[2], t[3], 0, 0, 0, 1]);
        let (ip, tcp) = if from_server {
            (
                IpSpec::new(server.addr, client.addr)
                    .ttl(server.reply_ttl())
                    .ident(f.server_ident)
                    .flow_label(f.server_label),
                TcpSpec {
                    src_port: f.server_port,
                    dst_port: f.client_port,
                    seq: f.server_seq,
                    ack: f.client_seq,
                    flags: TcpFlags(flags),
                    window: 501,
                    options,
                    payload_len: payload as usize,
                },
            )
        } else {
            (
                IpSpec::new(client.addr, server.addr)
                    .ttl(client.syn_ttl())
                    .ident(f.server_ident ^ 0x5555)
                    .flow_label(f.client_label),
                TcpSpec {
                    src_port: f.client_port,
                    dst_port: f.server_port,
                    seq: f.client_seq,
                    ack: f.server_seq,
                    flags: TcpFlags(flags),
                    window: 1024,
                    options,
                    payload_len: payload as usize,
                },
            )
        };
        let f = &mut self.flows[i];
        f.server_ident = f.server_ident.wrapping_add(1);
        if from_server {
            f.server_seq = f.server_seq.wrapping_add(payload);
        } else {
            f.client_seq = f.client_seq.wrapping_add(payload);
        }
        self.schedule(now, Datagram::Tcp(ip, tcp));
        self.truth.mix.data_frames += 1;
        if self.rng.below(4_000) == 0 {
            self.flows[i] = self.new_flow();
        }
    }

    fn teardown(&mut self, now: i64) {
        let i = self.rng.below(self.flows.len() as u64) as usize;
        let f = &self.flows[i];
        let (client, server) = self.flow_endpoints(f);
        let ip = IpSpec::new(server.addr, client.addr)
            .ttl(server.reply_ttl())
            .ident(f.server_ident)
            .flow_label(f.server_label);
        let rst = TcpSpec {
            src_port: f.server_port,
            dst_port: f.client_port,
            // Never 0: an RST with sequence number 0 is shaped like an answer to a SYN.
            seq: f.server_seq.max(1),
            ack: f.client_seq,
            flags: TcpFlags(TcpFlags::RST | TcpFlags::ACK),
            window: 0,
            options: TcpOptions::default(),
            payload_len: 0,
        };
        self.schedule(now, Datagram::Tcp(ip, rst));
        self.truth.mix.teardown_rsts += 1;
        self.truth.counts.other_resets += 1;
        self.flows[i] = self.new_flow();
    }

    fn dns(&mut self, now: i64) {
        let is_v6 = self.rng.chance(10);
        let (client, resolver) = if is_v6 {
            let c = self.rng.below(self.clients_v6.len() as u64) as usize;
            (self.clients_v6[c].addr, v6(0xd, 0x52))
        } else {
            let c = self.rng.below(self.clients_v4.len() as u64) as usize;
            (
                self.clients_v4[c].addr,
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53)),
            )
        };
        let port = self.rng.range(1024, 65_535) as u16;
        let query = IpSpec::new(client, resolver)
            .ttl(64)
            .df(false)
            .ident(self.rng.u32() as u16)
            .flow_label(self.rng.nonzero_u32());
        let answer = IpSpec::new(resolver, client)
            .ttl(63)
            .df(false)
            .ident(self.rng.u32() as u16)
            .flow_label(self.rng.nonzero_u32());
        let qlen = self.rng.range(28, 60) as usize;
        let alen = self.rng.range(60, 300) as usize;
        let later = now + self.rng.range(500, 40_000) as i64;
        self.schedule(now, Datagram::Udp(query, port, 53, qlen));
        self.schedule(later, Datagram::Udp(answer, 53, port, alen));
        self.truth.mix.dns_frames += 2;
    }

    fn icmp_quoting_udp(&mut self, now: i64) {
        // A traceroute probe (or a datagram to a closed port) answered by port unreachable from the target.
        let is_v6 = self.rng.chance(10);
        let (client, server) = if is_v6 {
            let c = self.rng.below(self.clients_v6.len() as u64) as usize;
            let s = self.rng.popular(self.servers_v6.len());
            (&self.clients_v6[c], &self.servers_v6[s])
        } else {
            let c = self.rng.below(self.clients_v4.len() as u64) as usize;
            let s = self.rng.popular(self.servers_v4.len());
            (&self.clients_v4[c], &self.servers_v4[s])
        };
        let sport = 33_000 + self.rng.below(1_000) as u16;
        let dport = 33_434 + self.rng.below(100) as u16;
        let quoted = IpSpec::new(client.addr, server.addr)
            .ttl(client.syn_ttl() - (server.hops - 1))
            .df(false)
            .ident(self.rng.u32() as u16);
        let ip = IpSpec::new(server.addr, client.addr)
            .ttl(server.reply_ttl())
            .tos(0xc0)
            .df(false)
            .ident(self.rng.u32() as u16);
        let (icmp_type, code) = if is_v6 { (1, 4) } else { (3, 3) };
        self.schedule(
            now,
            Datagram::IcmpError {
                ip,
                icmp_type,
                code,
                quoted: Quoted::Udp(quoted, sport, dport, 32),
                quote: QuoteLen::Full,
            },
        );
        self.truth.mix.icmp_quoting_udp += 1;
    }

    fn stray(&mut self, now: i64) {
        let kind = self.rng.below(3);
        let (stray_client, stray_server) = (
            v4(10, 99, self.rng.below(10_000) as u32),
            v4(198, 19, 62_000 + self.rng.below(250) as u32),
        );
        let port = self.rng.range(32_768, 60_999) as u16;
        let ip = IpSpec::new(stray_server, stray_client).ttl(52);
        match kind {
            0 => {
                // A SYN-ACK whose SYN took another path (asymmetric routing): not in the capture.
                let syn = TcpSpec::syn(port, 443, self.rng.u32());
                let sa = TcpSpec::syn_ack_to(&syn, self.rng.u32());
                self.schedule(now, Datagram::Tcp(ip, sa));
                self.truth.counts.stray_tcp += 1;
            }
            1 => {
                let syn = TcpSpec::syn(port, 8080, self.rng.u32());
                self.schedule(now, Datagram::Tcp(ip, TcpSpec::rst_to(&syn)));
                self.truth.counts.stray_tcp += 1;
            }
            _ => {
                // "Fragmentation needed" / "packet too big" quoting a data segment of an established connection.
                let i = self.rng.below(self.flows.len() as u64) as usize;
                let f = &self.flows[i];
                let (client, server) = self.flow_endpoints(f);
                let segment = TcpSpec {
                    src_port: f.client_port,
                    dst_port: f.server_port,
                    seq: f.client_seq,
                    ack: f.server_seq,
                    flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH),
                    window: 1024,
                    options: TcpOptions::default(),
                    payload_len: 1400,
                };
                let quoted = IpSpec::new(client.addr, server.addr)
                    .ttl(client.syn_ttl() - (server.router_hops - 1))
                    .ident(f.server_ident ^ 0x5555)
                    .flow_label(f.client_label);
                let ip = IpSpec::new(server.router, client.addr)
                    .ttl(server.router_initial - (server.router_hops - 1))
                    .tos(0xc0)
                    .df(false);
                let (icmp_type, code) = if f.v6 { (2, 0) } else { (3, 4) };
                self.schedule(
                    now,
                    Datagram::IcmpError {
                        ip,
                        icmp_type,
                        code,
                        quoted: Quoted::Tcp(quoted, segment),
                        quote: QuoteLen::Full,
                    },
                );
                self.truth.counts.stray_icmp += 1;
            }
        }
        self.truth.mix.stray_frames += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_frames_asked_for_in_time_order() {
        let config = Config {
            packets: 3_000,
            ..Config::default()
        };
        let mut bytes = Vec::new();
        let truth = generate(&config, &mut bytes).expect("generate");
        assert_eq!(truth.counts.frames, 3_000);
        assert_eq!(truth.mix.file_bytes, bytes.len() as u64);
        let mut reader = synprobe_core::capture::CaptureReader::new(&bytes[..]).expect("reads");
        let (mut n, mut last) = (0u64, Timestamp(i64::MIN));
        while let Some(f) = reader.next_frame().expect("clean file") {
            assert!(f.ts >= last, "frame {n} goes back in time");
            assert!(f.data.len() >= 60, "frame {n} is not padded");
            last = f.ts;
            n += 1;
        }
        assert_eq!(n, 3_000);
    }

    #[test]
    fn the_same_seed_gives_the_same_file() {
        let config = Config {
            packets: 500,
            ..Config::default()
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        generate(&config, &mut a).expect("generate");
        generate(&config, &mut b).expect("generate");
        assert_eq!(a, b);
        let mut c = Vec::new();
        generate(&Config { seed: 2, ..config }, &mut c).expect("generate");
        assert_ne!(a, c);
    }
}
