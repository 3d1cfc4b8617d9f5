//! # synprobe-core
//!
//! "Connection refused": who refused, and why? synprobe-core answers from the packets themselves. It parses
//! frames, groups SYNs into connection attempts, matches every reply (SYN-ACK, RST, ICMP/ICMPv6 unreachable,
//! time exceeded, silence) to its attempt, and judges each attempt with evidence: typed [`Finding`]s that carry
//! their numbers, put into words for people by [`explain`]:
//!
//! | verdict | meaning |
//! |---|---|
//! | `open` | the target answered SYN-ACK |
//! | `closed` | the target's own TCP stack answered RST: nothing listens there |
//! | `firewall-rst` | an RST forged by a device on the path, or by a firewall rule on the target |
//! | `icmp-rejected` | an ICMP unreachable of a filtering kind (admin prohibited, port unreachable) |
//! | `unreachable` | an ICMP routing failure (no route, host unreachable), or the TTL ran out |
//! | `filtered` | silence after every SYN |
//!
//! The core is sans-IO: the [`Engine`] is fed frames with their capture time and hands out [`Report`]s; it never
//! reads a clock or opens a socket. The same engine runs on a capture file ([`replay()`], or
//! [`replay_parallel()`]: the same reports, with matching and judging on two threads), behind live probing
//! ([`live::Prober`], over the sans-IO plan of [`session::Session`]; [`live::serve::SharedProber`] keeps one
//! set of sockets open for many probes at once, for a server such as `synprobe exporter`), and in tests on
//! frames built in memory with [`build`].
//!
//! ## Layers
//!
//! Dependencies point one way. From the bottom: `time` → `ports` → `capture` (reading and writing
//! files) → `wire` (parsing frames) → `error` → `model` → `findings` → `verdict` → `host` → `trace` → `pool`
//! → `matcher` → `analysis` → `engine` → `build` → `summary` → `replay` → `session` (the sans-IO live plan)
//! → `sweep` (the plan for a range of ports) → `live` (the I/O edge) → `explain` → `record`. A module uses
//! only modules before it in this list: a lower one never imports a higher one to borrow a helper (the helper
//! moves down instead), and `tests/layers.rs` checks it. Tests may use any module.
//!
//! Two cargo features, both on by default, hold the I/O an engine-only embedder does not need: `live` (the
//! [`live`] module: raw sockets, libpcap capture, privilege drop; pnet, socket2, nix, netlink) and `bpf`
//! (`BpfFilter`: filters compiled by libpcap). Without them, everything else builds and runs, libpcap-free.
//!
//! ## Judging frames
//!
//! A capture built in memory: a server 8 hops away answers port 443, and port 22 is refused by an RST that
//! carries the server's address but was sent from 4 hops away, by a firewall in front of it.
//!
//! ```
//! use synprobe_core::build::{IpSpec, TcpSpec, Timeline};
//! use synprobe_core::explain::Explain;
//! use synprobe_core::{Engine, EngineConfig, Finding, HopCount, LinkType, Verdict};
//!
//! # fn main() -> Result<(), synprobe_core::Error> {
//! let client = "198.18.0.2".parse().expect("an address");
//! let server = "198.18.9.9".parse().expect("an address");
//! let to_server = IpSpec::new(client, server);
//! // Sent with TTL 64, it arrives with 57: the server is 8 hops away.
//! let from_server = IpSpec::new(server, client).ttl(57);
//!
//! let mut capture = Timeline::starting_at(1_700_000_000);
//! let syn = TcpSpec::syn(40000, 443, 1000).linux_options();
//! capture.at(0.0, syn.emit(&to_server)?);
//! capture.at(18.0, TcpSpec::syn_ack_to(&syn, 5000).emit(&from_server)?);
//! let syn = TcpSpec::syn(40001, 22, 2000).linux_options();
//! capture.at(100.0, syn.emit(&to_server)?);
//! capture.at(109.0, TcpSpec::rst_to(&syn).emit(&from_server.ttl(61))?);
//!
//! // Push frames with their capture time, pop judged attempts; `finish` at the end of the input.
//! let mut engine = Engine::new(EngineConfig::default())?;
//! let mut reports = Vec::new();
//! for (ts, frame) in capture.ethernet_frames() {
//!     engine
//!         .push_frame(LinkType::ETHERNET, ts, &frame, frame.len() as u32)
//!         .expect("a frame synprobe built parses");
//!     reports.extend(std::iter::from_fn(|| engine.pop_report()));
//! }
//! engine.finish();
//! reports.extend(std::iter::from_fn(|| engine.pop_report()));
//!
//! let to_port = |port: u16| {
//!     reports
//!         .iter()
//!         .find(|r| r.attempt.probe.key.server_port.0 == port)
//!         .expect("an attempt to the port")
//! };
//! assert_eq!(to_port(443).judgement.verdict, Verdict::Open);
//! let refused = &to_port(22).judgement;
//! assert_eq!(refused.verdict, Verdict::FirewallRst);
//! let rejecter = refused.rejecter.expect("who sent the RST");
//! assert_eq!(rejecter.hops.map(|h| h.0), Some(4));
//! assert!(!rejecter.is_target);
//! // The findings are data, with their numbers; `explain` writes the words.
//! assert!(matches!(
//!     refused.findings[0],
//!     Finding::RstCloserThanSynack { rst_hops: HopCount(4), .. }
//! ));
//! let words = Explain::new(server, 22);
//! println!("{}", words.headline(refused));
//! for f in &refused.findings {
//!     println!("  {}: {}: {}", f.code(), words.observed(f), words.implies(f));
//! }
//!
//! // `Timeline::judge` does the same in one call.
//! assert_eq!(capture.judge(EngineConfig::default()), reports);
//! # Ok(())
//! # }
//! ```
//!
//! ## Replaying a capture file
//!
//! ```no_run
//! use std::path::Path;
//! use synprobe_core::explain::Explain;
//! use synprobe_core::{capture::CaptureReader, replay, ReplayOptions};
//!
//! # fn main() -> Result<(), synprobe_core::Error> {
//! let mut reader = CaptureReader::open(Path::new("incident.pcapng"))?;
//! let (stats, damage) = replay(
//!     &mut reader,
//!     &ReplayOptions::default(),
//!     |report, _| {
//!         let words = Explain::of_report(report);
//!         println!("{}: {}", report.judgement.verdict, words.headline(&report.judgement))
//!     },
//!     |_bytes| {},
//! )?;
//! println!("{} frames, {} attempts", stats.frames.frames, stats.matching.attempts);
//! if let Some(e) = damage {
//!     eprintln!("the file is damaged: {e}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Probing live
//!
//! [`live::Prober`] sends the probes over raw sockets and captures the replies (it needs CAP_NET_RAW); see the
//! [`live`] module. Two complete programs come with the crate:
//!
//! - `examples/replay.rs`: replays a capture and counts the verdicts
//!   (`cargo run -p synprobe-core --example replay -- capture.pcap`);
//! - `examples/monitor.rs`: probes a list of `HOST:PORT` every few seconds and prints only the verdicts that
//!   change (`sudo target/debug/examples/monitor --every 10 192.0.2.7:443 192.0.2.7:22`).

// Without the `live` feature the documentation still names the live module (what the feature adds); those
// links have nothing to point to in that build.
#![cfg_attr(not(feature = "live"), allow(rustdoc::broken_intra_doc_links))]

pub mod analysis;
pub mod build;
pub mod capture;
mod engine;
mod error;
pub mod explain;
pub mod findings;
pub mod host;
#[cfg(test)]
mod lab_frames;
#[cfg(feature = "live")]
pub mod live;
pub mod matcher;
mod model;
mod pool;
mod ports;
pub mod record;
mod replay;
pub mod session;
mod summary;
pub mod sweep;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
mod time;
pub mod trace;
mod verdict;
pub mod wire;

pub use capture::LinkType;
pub use engine::{Engine, EngineConfig, FrameStats, Report};
pub use error::{ConfigError, Error, Result};
pub use findings::{Advice, Cause, Finding};
pub use model::{
    Attempt, Closure, FlowKey, FrameRole, HopCount, Isn, Observed, Port, Probe, Reply, ReplyKind,
    Ttl,
};
pub use ports::{parse_ports, PortListError, MAX_PORTS};
#[cfg(feature = "bpf")]
pub use replay::BpfFilter;
pub use replay::{replay, replay_parallel, ReplayOptions, ReplayStats};
pub use summary::{Summary, SummaryRow};
pub use time::{Duration, Timestamp};
pub use verdict::{Confidence, Judgement, Rejecter, RejecterKind, Verdict};
pub use wire::{parse_frame, Packet, ParseError};
