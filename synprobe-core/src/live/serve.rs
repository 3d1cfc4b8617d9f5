//! A long-running prober shared by many callers: opened once for a set of networks, it takes one probe at a
//! time from any thread and answers each as soon as its own plan is done, while others are still running (an
//! open port's answer never waits behind a silent one's).
//!
//! One worker thread owns the raw sockets and one capture, opened before privileges are dropped. Each request
//! becomes its own [`Session`] with its own range of source ports (no two live sessions share a port, so every
//! reply has exactly one owner), and every captured frame is offered to the live sessions.
//!
//! ```no_run
//! use std::time::Duration;
//! use synprobe_core::live::serve::{ServeConfig, SharedProber};
//! use synprobe_core::live::Job;
//! use synprobe_core::session::SessionConfig;
//!
//! # fn main() -> Result<(), synprobe_core::Error> {
//! let cfg = ServeConfig::new(vec!["192.0.2.0/24".parse().unwrap()]);
//! let prober = SharedProber::open(cfg)?; // needs CAP_NET_RAW and CAP_NET_ADMIN
//! synprobe_core::live::drop_privileges()?;
//! let job = Job::new("192.0.2.10".parse().unwrap(), 443);
//! let served = prober.probe(job, SessionConfig::default(), Duration::from_secs(5))?;
//! println!("{} (plan complete: {})", served.report.judgement.verdict, served.complete);
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use ipnet::IpNet;

use super::{now, source_for, RawSender, Sender};
use crate::capture::LinkType;
use crate::error::{Error, Result};
use crate::live::Job;
use crate::model::Observed;
use crate::session::{source_ports_needed, Outgoing, Session, SessionConfig, TargetReport};
use crate::time::Timestamp;
use crate::wire::parse_frame;

/// Settings of a [`SharedProber`].
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The networks it may probe; a request for any other address is refused ([`Error::NotAllowed`]) and sends
    /// nothing. The capture only takes TCP to and from these networks (and ICMP to this host).
    pub networks: Vec<IpNet>,
    /// Capture on this device (default `any`: every interface, so that any route to the networks is covered).
    pub interface: Option<String>,
    /// Packets per second at most, over all probes (default 500, bursts of 100).
    pub max_pps: u32,
}

impl ServeConfig {
    /// Defaults for these networks.
    pub fn new(networks: Vec<IpNet>) -> Self {
        ServeConfig {
            networks,
            interface: None,
            max_pps: 500,
        }
    }
}

/// What one probe gave.
#[derive(Debug, Clone)]
pub struct Served {
    /// The diagnosis.
    pub report: TargetReport,
    /// Whether the plan finished before the timeout (false: the report judges what was seen until then).
    pub complete: bool,
}

/// What a caller is told when its probe ends.
pub type Answer = Box<dyn FnOnce(Result<Served>) + Send + 'static>;

struct Request {
    job: Job,
    session: SessionConfig,
    timeout: std::time::Duration,
    answer: Answer,
}

/// A prober that serves probes from many threads over one set of raw sockets and one capture. Dropping it
/// stops the worker once the probes under way are answered.
pub struct SharedProber {
    tx: Option<mpsc::Sender<Request>>,
    worker: Option<JoinHandle<()>>,
    networks: Vec<IpNet>,
    interface: String,
    send_failures: Arc<AtomicU64>,
}

impl std::fmt::Debug for SharedProber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedProber")
            .field("networks", &self.networks)
            .field("interface", &self.interface)
            .finish_non_exhaustive()
    }
}

impl SharedProber {
    /// Open the raw sockets (for the families of `cfg.networks`) and the capture, and start the worker. Needs
    /// CAP_NET_RAW and CAP_NET_ADMIN; drop privileges after it (nothing later needs them).
    pub fn open(cfg: ServeConfig) -> Result<SharedProber> {
        crate::error::check::at_least_one("serve.max_pps", cfg.max_pps)?;
        if cfg.networks.is_empty() {
            return Err(Error::Config(crate::error::ConfigError::Empty {
                setting: "serve.networks",
            }));
        }
        // The source towards each network (a route lookup, no packet). IPv6 shares one raw socket bound to one
        // source, as a run of [`super::Prober`] does.
        let mut sources: Vec<IpAddr> = Vec::new();
        for net in &cfg.networks {
            let s = source_for(net.network())?;
            if !sources.contains(&s) {
                sources.push(s);
            }
        }
        let v6: Vec<IpAddr> = sources.iter().copied().filter(IpAddr::is_ipv6).collect();
        if v6.len() > 1 {
            return Err(Error::MixedIpv6Sources {
                first: v6[0],
                second: v6[1],
            });
        }
        let need_v4 = cfg.networks.iter().any(|n| matches!(n, IpNet::V4(_)));
        let sender = RawSender::open(need_v4, v6.first().copied())?;
        let interface = cfg.interface.clone().unwrap_or_else(|| "any".to_string());
        let (cap, link) =
            super::open_capture(&interface, &filter_for(&cfg.networks, &sources), 4 << 20)?;
        SharedProber::start(
            Box::new(sender),
            Box::new(Tap { cap, link }),
            Box::new(source_for),
            cfg,
            interface,
            v6.first().copied(),
        )
    }

    /// Start the worker over these parts (the live ones, or in tests a scripted network).
    fn start(
        sender: Box<dyn Sender + Send>,
        frames: Box<dyn FrameSource>,
        route: Box<dyn Fn(IpAddr) -> Result<IpAddr> + Send>,
        cfg: ServeConfig,
        interface: String,
        v6_source: Option<IpAddr>,
    ) -> Result<SharedProber> {
        let (tx, rx) = mpsc::channel::<Request>();
        let send_failures = Arc::new(AtomicU64::new(0));
        let worker = Worker {
            sender,
            frames,
            route,
            interface: interface.clone(),
            networks: cfg.networks.clone(),
            v6_source,
            max_pps: cfg.max_pps,
            live: Vec::new(),
            ports: PortRanges::new(),
            frame: 0,
            counter: 0,
            send_failures: send_failures.clone(),
        };
        let worker = std::thread::Builder::new()
            .name("synprobe-serve".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| Error::Io {
                what: "start the prober's worker thread",
                source: e,
            })?;
        Ok(SharedProber {
            tx: Some(tx),
            worker: Some(worker),
            networks: cfg.networks,
            interface,
            send_failures,
        })
    }

    /// The networks it may probe.
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    /// The capture device.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Probes the kernel refused to send so far (each shows in its probe's report as silence).
    pub fn send_failures(&self) -> u64 {
        self.send_failures.load(Ordering::Relaxed)
    }

    /// Whether `addr` lies inside one of the networks.
    pub fn allows(&self, addr: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&addr))
    }

    /// Start a probe of one address and port with this plan; `answer` is called (on the worker thread: keep it
    /// short, e.g. send on a channel) with the report once the plan is done, or at `timeout` with what was seen
    /// until then. An address outside the networks is refused at once, before any packet.
    pub fn submit(
        &self,
        job: Job,
        session: SessionConfig,
        timeout: std::time::Duration,
        answer: Answer,
    ) -> Result<()> {
        if !self.allows(job.target) {
            return Err(Error::NotAllowed { target: job.target });
        }
        session.validate()?;
        let stopped = || Error::ProberStopped;
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(Request {
                job,
                session,
                timeout,
                answer,
            })
            .map_err(|_| stopped())
    }

    /// [`SharedProber::submit`], waiting for the answer.
    pub fn probe(
        &self,
        job: Job,
        session: SessionConfig,
        timeout: std::time::Duration,
    ) -> Result<Served> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(
            job,
            session,
            timeout,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.recv().map_err(|_| Error::ProberStopped)?
    }
}

impl Drop for SharedProber {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Source ports from this one up are handed out; below are the kernel's and the usual services'.
const FIRST_PORT: u32 = 10_000;
const PORT_END: u32 = 65_536;

/// Ranges of source ports held by live sessions: a new range never overlaps a held one, and the search starts
/// after the last range handed out, so that a port is reused as late as possible (a late reply to a finished
/// probe meets no session, or one whose ISNs differ).
#[derive(Debug, Default)]
struct PortRanges {
    held: Vec<(u32, u32)>,
    cursor: u32,
}

impl PortRanges {
    fn new() -> Self {
        PortRanges {
            held: Vec::new(),
            cursor: FIRST_PORT,
        }
    }

    /// A free range of `span` ports, `[start, start + span)`, held until [`PortRanges::release`]: the first gap
    /// at or after the cursor that fits, else the first one from the bottom.
    fn take(&mut self, span: u32) -> Option<u32> {
        if span == 0 {
            return None;
        }
        self.held.sort_unstable();
        let mut gaps: Vec<(u32, u32)> = Vec::new();
        let mut from = FIRST_PORT;
        for &(s, e) in &self.held {
            gaps.push((from, s));
            from = from.max(e);
        }
        gaps.push((from, PORT_END));
        let fits = |lo: u32, hi: u32| (lo + span <= hi).then_some(lo);
        let start = gaps
            .iter()
            .find_map(|&(lo, hi)| fits(lo.max(self.cursor), hi))
            .or_else(|| gaps.iter().find_map(|&(lo, hi)| fits(lo, hi)))?;
        self.held.push((start, start + span));
        self.cursor = start + span;
        Some(start)
    }

    fn release(&mut self, start: u32) {
        self.held.retain(|(s, _)| *s != start);
    }
}

struct Live {
    session: Session,
    ports: u32,
    deadline: Timestamp,
    answer: Answer,
}

/// What a [`FrameSource`] hands each frame to: its capture time, its link type, its bytes, its length on the wire.
type OnFrame<'a> = dyn FnMut(Timestamp, LinkType, &[u8], u32) + 'a;

/// Where the worker's frames come from: the live capture, or in tests a scripted network.
trait FrameSource: Send {
    /// Wait up to `ms` milliseconds for a frame.
    fn wait(&mut self, ms: u16);
    /// Hand every frame captured so far to `each`; an error when the capture failed.
    fn drain(&mut self, each: &mut OnFrame<'_>) -> std::result::Result<(), String>;
}

/// The live capture.
struct Tap {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
}

impl FrameSource for Tap {
    fn wait(&mut self, ms: u16) {
        let mut fds = [nix::poll::PollFd::new(
            self.cap.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
    }

    fn drain(&mut self, each: &mut OnFrame<'_>) -> std::result::Result<(), String> {
        loop {
            let packet = match self.cap.next_packet() {
                Ok(p) => p,
                Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            };
            let h = packet.header;
            let ts = Timestamp::from_parts(h.ts.tv_sec, (h.ts.tv_usec as u32).saturating_mul(1000));
            each(ts, self.link, packet.data, h.len);
        }
    }
}

struct Worker {
    sender: Box<dyn Sender + Send>,
    frames: Box<dyn FrameSource>,
    /// The source address towards a target ([`source_for`], live).
    route: Box<dyn Fn(IpAddr) -> Result<IpAddr> + Send>,
    interface: String,
    networks: Vec<IpNet>,
    v6_source: Option<IpAddr>,
    max_pps: u32,
    live: Vec<Live>,
    ports: PortRanges,
    frame: u64,
    counter: u64,
    send_failures: Arc<AtomicU64>,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        let mut queue: VecDeque<Outgoing> = VecDeque::new();
        let burst = 100.0f64;
        let mut tokens = burst;
        let mut last_refill = now();
        let mut open = true;
        loop {
            if self.live.is_empty() && queue.is_empty() {
                if !open {
                    return;
                }
                // Idle: wait for a request; what the capture took meanwhile belongs to no probe.
                match rx.recv_timeout(std::time::Duration::from_millis(500)) {
                    Ok(r) => {
                        self.discard_captured();
                        self.start(r);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.discard_captured();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(r) => self.start(r),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            let t = now();
            let mut next: Option<Timestamp> = None;
            for i in 0..self.live.len() {
                if self.live[i].session.is_done() {
                    continue;
                }
                let (out, deadline) = self.live[i].session.poll(t);
                // Concurrent probes share the routers' ICMP buckets for us: each one's TTL-limited SYNs are
                // charged to the others' models.
                let mut plans: Vec<&mut Session> =
                    self.live.iter_mut().map(|l| &mut l.session).collect();
                crate::session::charge_ttl_limited(&mut plans, i, &out, t);
                queue.extend(out);
                if let Some(d) = deadline {
                    next = Some(next.map_or(d, |n: Timestamp| n.min(d)));
                }
            }
            let elapsed = t.since(last_refill).as_secs_f64().max(0.0);
            tokens = (tokens + elapsed * f64::from(self.max_pps)).min(burst);
            last_refill = t;
            while tokens >= 1.0 {
                let Some(p) = queue.pop_front() else { break };
                // A failed send is a probe that draws no answer: the session judges its silence.
                if self.sender.send(&p).is_err() {
                    self.send_failures.fetch_add(1, Ordering::Relaxed);
                }
                tokens -= 1.0;
            }
            self.finish(t);
            let wait_ms: i64 = if !queue.is_empty() {
                2
            } else {
                // Wake at least every 10 ms to take new requests.
                next.map_or(10, |n| (n.since(now()).0 / 1_000_000).clamp(0, 10))
            };
            self.wait(wait_ms as u16);
            if let Err(e) = self.drain() {
                // The capture failed: answer every probe under way with the error, and stop.
                for l in self.live.drain(..) {
                    (l.answer)(Err(Error::LiveCapture {
                        interface: self.interface.clone(),
                        reason: e.clone(),
                    }));
                }
                fail_all(&rx, &self.interface, &e);
                return;
            }
        }
    }

    /// Start a session for the request, or answer it with why not.
    fn start(&mut self, r: Request) {
        let target = r.job.target;
        if !self.networks.iter().any(|n| n.contains(&target)) {
            (r.answer)(Err(Error::NotAllowed { target }));
            return;
        }
        let source = match (self.route)(target) {
            Ok(s) => s,
            Err(e) => {
                (r.answer)(Err(e));
                return;
            }
        };
        if source.is_ipv6() && Some(source) != self.v6_source {
            let first = self.v6_source.unwrap_or(source);
            (r.answer)(Err(Error::MixedIpv6Sources {
                first,
                second: source,
            }));
            return;
        }
        let span = source_ports_needed(1, &r.session);
        let Some(base) = self.ports.take(span) else {
            (r.answer)(Err(Error::SourcePorts {
                pairs: self.live.len() + 1,
                budget: r.session.budget,
                needed: span * (self.live.len() as u32 + 1),
                available: PORT_END - FIRST_PORT,
            }));
            return;
        };
        self.counter += 1;
        let seed = (now().as_nanos() as u64 ^ u64::from(std::process::id()) << 32)
            .wrapping_mul(self.counter)
            .rotate_left(17);
        let session =
            match Session::new(target, &[r.job.port], source, r.session, base as u16, seed) {
                Ok(s) => s.with_host(r.job.host).local(source == target),
                Err(e) => {
                    self.ports.release(base);
                    (r.answer)(Err(e.into()));
                    return;
                }
            };
        let timeout = crate::time::Duration::from_secs_f64(r.timeout.as_secs_f64());
        self.live.push(Live {
            session,
            ports: base,
            deadline: now().plus(timeout),
            answer: r.answer,
        });
    }

    /// Answer the sessions whose plan is done or whose time is up.
    fn finish(&mut self, t: Timestamp) {
        let mut i = 0;
        while i < self.live.len() {
            let l = &self.live[i];
            let done = l.session.is_done();
            if done || t >= l.deadline {
                let mut l = self.live.swap_remove(i);
                self.ports.release(l.ports);
                let report = l.session.reports().into_iter().next();
                (l.answer)(report.map_or(Err(Error::ProberStopped), |report| {
                    Ok(Served {
                        report,
                        complete: done,
                    })
                }));
            } else {
                i += 1;
            }
        }
    }

    fn wait(&mut self, ms: u16) {
        self.frames.wait(ms);
    }

    /// Drop what was captured while no probe ran: it belongs to none.
    fn discard_captured(&mut self) {
        let _ = self.frames.drain(&mut |_, _, _, _| {});
    }

    /// Offer every captured frame to the live sessions; the first that takes it owns it.
    fn drain(&mut self) -> std::result::Result<(), String> {
        let (live, frame) = (&mut self.live, &mut self.frame);
        self.frames.drain(&mut |ts, link, data, len| {
            let Ok(packet) = parse_frame(link, data) else {
                return;
            };
            *frame += 1;
            let seen = Observed {
                frame: *frame,
                ts,
                len,
                packet,
            };
            for l in live.iter_mut() {
                if l.session.on_frame(&seen) {
                    break;
                }
            }
        })
    }
}

/// Answer the requests still queued after the capture failed.
fn fail_all(rx: &mpsc::Receiver<Request>, interface: &str, reason: &str) {
    while let Ok(r) = rx.try_recv() {
        (r.answer)(Err(Error::LiveCapture {
            interface: interface.to_string(),
            reason: reason.to_string(),
        }));
    }
}

/// The BPF filter: TCP to and from the networks, ICMP and ICMPv6 to our sources (errors from routers outside
/// the networks included) and from the networks (echo replies).
fn filter_for(networks: &[IpNet], sources: &[IpAddr]) -> String {
    let nets: Vec<String> = networks
        .iter()
        .map(|n| format!("net {}", n.trunc()))
        .collect();
    let dsts: Vec<String> = sources.iter().map(|s| format!("dst host {s}")).collect();
    format!(
        "(({}) and (tcp or icmp or icmp6)) or ((icmp or icmp6) and ({}))",
        nets.join(" or "),
        dsts.join(" or ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verdict;
    use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
    use std::sync::Mutex;
    use std::time::Instant;

    type Wire = Arc<Mutex<VecDeque<(Timestamp, Vec<u8>)>>>;

    /// A scripted network: the target answers ports below 100 with a SYN-ACK and ports 100-199 with an RST
    /// (both from 3 hops away); other ports are silent. What is sent is captured too, as live.
    struct Network {
        wire: Wire,
        sent: Arc<Mutex<Vec<IpAddr>>>,
    }

    impl Sender for Network {
        fn send(&mut self, p: &Outgoing) -> std::io::Result<()> {
            self.sent.lock().expect("lock").push(p.dst);
            let t = now();
            let mut wire = self.wire.lock().expect("lock");
            wire.push_back((t, p.datagram.clone()));
            if let Some(reply) = answer(&p.datagram) {
                wire.push_back((t, reply));
            }
            Ok(())
        }
    }

    fn answer(datagram: &[u8]) -> Option<Vec<u8>> {
        let sliced = SlicedPacket::from_ip(datagram).ok()?;
        let Some(NetSlice::Ipv4(ip)) = sliced.net else {
            return None;
        };
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
            return None;
        };
        if !tcp.syn() {
            return None;
        }
        let h = ip.header();
        let (port, sport) = (tcp.destination_port(), tcp.source_port());
        let ack = tcp.sequence_number().wrapping_add(1);
        let reply = PacketBuilder::ipv4(h.destination(), h.source(), 62);
        let mut out = Vec::new();
        match port {
            1..=99 => reply
                .tcp(port, sport, 7_000, 64_240)
                .syn()
                .ack(ack)
                .write(&mut out, &[])
                .ok()?,
            100..=199 => reply
                .tcp(port, sport, 0, 0)
                .rst()
                .ack(ack)
                .write(&mut out, &[])
                .ok()?,
            _ => return None,
        }
        Some(out)
    }

    struct Captured(Wire);

    impl FrameSource for Captured {
        fn wait(&mut self, ms: u16) {
            if self.0.lock().expect("lock").is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(u64::from(ms.min(2))));
            }
        }

        fn drain(&mut self, each: &mut OnFrame<'_>) -> std::result::Result<(), String> {
            let frames: Vec<(Timestamp, Vec<u8>)> =
                self.0.lock().expect("lock").drain(..).collect();
            for (ts, f) in frames {
                each(ts, LinkType::RAW, &f, f.len() as u32);
            }
            Ok(())
        }
    }

    const TARGET: &str = "198.18.2.2";

    fn scripted() -> (SharedProber, Arc<Mutex<Vec<IpAddr>>>) {
        let wire: Wire = Arc::default();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let prober = SharedProber::start(
            Box::new(Network {
                wire: wire.clone(),
                sent: sent.clone(),
            }),
            Box::new(Captured(wire)),
            Box::new(|_| Ok("198.18.0.2".parse().expect("addr"))),
            ServeConfig::new(vec!["198.18.2.0/24".parse().expect("net")]),
            "scripted".into(),
            None,
        )
        .expect("the worker starts");
        (prober, sent)
    }

    fn quick() -> SessionConfig {
        SessionConfig {
            quick: true,
            retries: 1,
            first_answer_wait: crate::time::Duration::from_millis(300),
            ..SessionConfig::default()
        }
    }

    #[test]
    fn concurrent_probes_each_get_their_own_answer_and_silence_holds_up_no_other() {
        let (prober, _) = scripted();
        let target: IpAddr = TARGET.parse().expect("addr");
        let (tx, rx) = mpsc::channel();
        // Silent ports first: the answered ones, submitted after them, still come back first.
        let ports: Vec<u16> = (1000..1010).chain(10..20).chain(110..120).collect();
        for &port in &ports {
            let tx = tx.clone();
            prober
                .submit(
                    Job::new(target, port),
                    quick(),
                    std::time::Duration::from_secs(10),
                    Box::new(move |r| {
                        let _ = tx.send((port, r));
                    }),
                )
                .expect("submitted");
        }
        drop(tx);
        let answers: Vec<(u16, Result<Served>)> = rx.iter().collect();
        assert_eq!(answers.len(), ports.len());
        for (i, (port, r)) in answers.iter().enumerate() {
            let served = r.as_ref().expect("a report");
            assert_eq!(served.report.port, *port);
            let want = match port {
                0..=99 => Verdict::Open,
                100..=199 => Verdict::Closed,
                _ => Verdict::Filtered,
            };
            assert_eq!(served.report.judgement.verdict, want, "port {port}");
            assert!(served.complete, "port {port}");
            // The 20 answered ports come back before any silent one.
            assert_eq!(*port >= 1000, i >= 20, "port {port} answered {i}th");
        }
    }

    #[test]
    fn a_probe_ends_at_its_timeout_and_an_outside_address_gets_no_packet() {
        let (prober, sent) = scripted();
        let target: IpAddr = TARGET.parse().expect("addr");
        // The plan would wait 3.5 s for the silent SYN; the timeout cuts it at 0.3 s.
        let slow = SessionConfig {
            quick: true,
            ..SessionConfig::default()
        };
        let started = Instant::now();
        let served = prober
            .probe(
                Job::new(target, 2000),
                slow,
                std::time::Duration::from_millis(300),
            )
            .expect("a report");
        assert!(!served.complete);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let outside: IpAddr = "198.18.3.3".parse().expect("addr");
        let refused = prober.probe(
            Job::new(outside, 80),
            quick(),
            std::time::Duration::from_secs(1),
        );
        assert!(matches!(refused, Err(Error::NotAllowed { target }) if target == outside));
        assert!(!sent.lock().expect("lock").contains(&outside));
        assert!(sent.lock().expect("lock").iter().all(|d| *d == target));
    }

    #[test]
    fn port_ranges_never_overlap_a_held_one() {
        let mut r = PortRanges::new();
        let a = r.take(128).expect("a range");
        let b = r.take(128).expect("a range");
        assert_eq!(b, a + 128);
        r.release(a);
        // The cursor moves on: the freed range is reused only after the others.
        let c = r.take(128).expect("a range");
        assert_eq!(c, b + 128);
        // Fill the space; every range is disjoint from every other.
        let mut all = vec![b, c];
        while let Some(s) = r.take(1000) {
            all.push(s);
        }
        let mut spans: Vec<(u32, u32)> = r.held.clone();
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0, "{w:?} overlap");
        }
        assert!(spans
            .iter()
            .all(|(s, e)| *s >= FIRST_PORT && *e <= PORT_END));
        // After a release in the middle, a range fits there again.
        r.release(all[3]);
        assert_eq!(r.take(1000), Some(all[3]));
        assert_eq!(r.take(1000), None);
    }

    #[test]
    fn the_filter_names_the_networks_and_the_sources() {
        let f = filter_for(
            &[
                "198.18.2.9/24".parse().expect("net"),
                "2001:db8::/32".parse().expect("net"),
            ],
            &["198.18.0.2".parse().expect("addr")],
        );
        assert_eq!(
            f,
            "((net 198.18.2.0/24 or net 2001:db8::/32) and (tcp or icmp or icmp6)) or \
             ((icmp or icmp6) and (dst host 198.18.0.2))"
        );
    }
}
