//! # synprobe-core
//!
//! "Connection refused": who refused, and why? synprobe-core answers from the packets themselves. It parses
//! frames, groups SYNs into connection attempts, matches every reply (SYN-ACK, RST, ICMP/ICMPv6 unreachable,
//! time exceeded, silence) to its attempt, and judges each attempt with evidence:
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
//! reads a clock or opens a socket. The same engine runs on a capture file ([`replay()`]) and in tests on frames
//! built in memory with [`build`].
//!
//! ```no_run
//! use std::path::Path;
//! use synprobe_core::{capture::CaptureReader, replay, ReplayOptions};
//!
//! # fn main() -> Result<(), synprobe_core::Error> {
//! let mut reader = CaptureReader::open(Path::new("incident.pcapng"))?;
//! let (stats, damage) = replay(
//!     &mut reader,
//!     &ReplayOptions::default(),
//!     |report, _| println!("{}: {}", report.judgement.verdict, report.judgement.headline),
//!     |_bytes| {},
//! )?;
//! println!("{} frames, {} attempts", stats.frames.frames, stats.matching.attempts);
//! if let Some(e) = damage {
//!     eprintln!("the file is damaged: {e}");
//! }
//! # Ok(())
//! # }
//! ```

pub mod analysis;
pub mod build;
pub mod capture;
#[cfg(test)]
mod lab_frames;
mod engine;
mod error;
pub mod live;
pub mod matcher;
mod model;
mod ports;
pub mod record;
mod replay;
pub mod session;
mod summary;
mod time;
pub mod trace;
mod verdict;
pub mod wire;

pub use capture::LinkType;
pub use engine::{Engine, EngineConfig, FrameStats, Report};
pub use error::{Error, Result};
pub use model::{
    Attempt, Closure, FlowKey, FrameRole, HopCount, Isn, Observed, Port, Probe, Reply, ReplyKind,
    Ttl,
};
pub use ports::{parse_ports, PortListError, MAX_PORTS};
pub use replay::{replay, BpfFilter, ReplayOptions, ReplayStats};
pub use summary::{Summary, SummaryRow};
pub use time::{Duration, Timestamp};
pub use verdict::{Confidence, Evidence, Judgement, Rejecter, Verdict};
pub use wire::{parse_frame, Packet, ParseError};
