//! The words: each finding's observation and what it implies, a judgement's headline and its next steps, in
//! English for an operator. Judging ([`crate::analysis`], [`crate::session`]) hands out data only
//! ([`Finding`], [`Cause`], [`Advice`]); this module is the one place that turns it into sentences, for the
//! text report and, with `--explain`, for JSON.
//!
//! ```
//! use synprobe_core::explain::Explain;
//! use synprobe_core::findings::{Finding, HopRange};
//! use synprobe_core::HopCount;
//!
//! let words = Explain::new("198.18.9.9".parse().expect("an address"), 22);
//! let finding = Finding::RstCloserThanSynack {
//!     rst_hops: HopCount(4),
//!     host_hops: HopRange { min: HopCount(8), max: HopCount(8) },
//! };
//! assert_eq!(words.implies(&finding), "a device 4 hop(s) closer than the host forged the RST");
//! ```

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use crate::engine::Report;
use crate::findings::{
    Advice, Cause, DropPoint, Finding, HopRange, HostReplies, IcmpSender, InitialTtls, TtlReading,
    WalkAnswer, WalkStep,
};
use crate::session::TargetReport;
use crate::trace::AddrText;
use crate::verdict::{Judgement, RejecterKind};

/// Writes the words about the judgement of one attempt to `target`:`port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Explain {
    /// The address the SYN went to.
    pub target: IpAddr,
    /// The port it went to.
    pub port: u16,
    /// The words are for a live run's own report: they never suggest running synprobe live.
    pub live: bool,
}

/// A value written by a closure.
struct DisplayWith<F>(F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for DisplayWith<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

/// "TTL 50 (initial 64, 15 hops away)".
fn ttl_text(r: &TtlReading) -> impl fmt::Display + '_ {
    DisplayWith(move |f: &mut fmt::Formatter<'_>| {
        write!(
            f,
            "TTL {} (initial {}, {} hop{} away)",
            r.received,
            r.initial,
            r.hops.0,
            if r.hops.0 == 1 { "" } else { "s" }
        )
    })
}

/// "8" or "7-9".
fn hops_text(r: &HopRange) -> impl fmt::Display + '_ {
    DisplayWith(move |f: &mut fmt::Formatter<'_>| {
        if r.min == r.max {
            write!(f, "{}", r.min.0)
        } else {
            write!(f, "{}-{}", r.min.0, r.max.0)
        }
    })
}

/// "64/128".
fn initials_text(set: InitialTtls) -> String {
    set.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// "the target 198.18.9.9 itself", "198.18.1.1 at hop 2".
fn who(s: &IcmpSender) -> impl fmt::Display + '_ {
    DisplayWith(move |f: &mut fmt::Formatter<'_>| match s.kind {
        RejecterKind::Sender => write!(f, "the sending host {} itself", AddrText(s.addr)),
        RejecterKind::Target => write!(f, "the target {} itself", AddrText(s.addr)),
        _ => write!(f, "{} at hop {}", AddrText(s.addr), s.hops.0),
    })
}

/// "3:time-exceeded 198.18.1.2, 4:rst".
fn walk_text(steps: &[WalkStep]) -> String {
    let mut s = String::new();
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{}:{}", step.ttl, step.answer.as_str());
        if let (Some(from), WalkAnswer::TimeExceeded | WalkAnswer::Unreachable) =
            (step.from, step.answer)
        {
            let _ = write!(s, " {from}");
        }
    }
    s
}

/// "[::1]:8080, 127.0.0.1:8080".
fn sockets_text(sockets: &[SocketAddr]) -> String {
    sockets
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Explain {
    /// Words about an attempt to `target`:`port`, for a capture (not a live run).
    pub fn new(target: IpAddr, port: u16) -> Self {
        Explain {
            target,
            port,
            live: false,
        }
    }

    /// Words for a live run's own report (`true`): next steps then never suggest a live run.
    pub fn live(self, live: bool) -> Self {
        Explain { live, ..self }
    }

    /// Words about a replayed attempt.
    pub fn of_report(r: &Report) -> Self {
        let k = &r.attempt.probe.key;
        Explain::new(k.server, k.server_port.0)
    }

    /// Words about a live run's report.
    pub fn of_target(r: &TargetReport) -> Self {
        Explain::new(r.target, r.port).live(true)
    }

    /// "198.18.1.59 port 3306".
    fn port_desc(&self) -> impl fmt::Display + '_ {
        DisplayWith(move |f: &mut fmt::Formatter<'_>| {
            write!(f, "{} port {}", AddrText(self.target), self.port)
        })
    }

    /// What the packets show, for one finding.
    pub fn observed(&self, finding: &Finding) -> String {
        use Finding::*;
        match finding {
            SynAck { from, ttl } => format!("SYN-ACK from {} with {}", AddrText(*from), ttl_text(ttl)),
            InexactAck => "the SYN-ACK does not acknowledge ISN+1".into(),
            SynAckBeyondAddress {
                synack_hops,
                echo_hops,
            } => format!(
                "the SYN-ACK came from {} hop(s) away, the address's echo replies from {}",
                synack_hops.0, echo_hops.0
            ),
            RstAndSynAck => "an RST for the same SYN was seen as well".into(),
            SynAckWindowZero => "the SYN-ACK advertises a receive window of 0".into(),
            Rst { from, ttl, after } => {
                let mut s = format!("RST from {} with {}", AddrText(*from), ttl_text(ttl));
                if let Some(d) = after {
                    let _ = write!(s, ", after {:.2} ms", d.as_millis_f64());
                }
                s
            }
            RstInitialTtlDiffers {
                rst_initial,
                host_replies,
                host_initials,
                host_count,
            } => match host_replies {
                HostReplies::SynAcks => format!(
                    "the RST left its sender with TTL {rst_initial}, the host's {host_count} SYN-ACK(s) with TTL {}",
                    initials_text(*host_initials)
                ),
                _ => format!(
                    "the RST left its sender with TTL {rst_initial}, the host's echo replies and its other RSTs with TTL {}",
                    initials_text(*host_initials)
                ),
            },
            RstAtEchoDistance {
                rst_hops,
                synack_hops,
            } => format!(
                "the RST came from the address's own distance ({} hop(s), as its echo replies), its SYN-ACKs from {} hop(s)",
                rst_hops.0,
                hops_text(synack_hops)
            ),
            RstCloserThanSynack {
                rst_hops,
                host_hops,
            } => format!(
                "the RST came from {} hop(s) away, the host's SYN-ACKs from {} hop(s)",
                rst_hops.0,
                hops_text(host_hops)
            ),
            RstFartherThanSynack {
                rst_hops,
                host_hops,
            } => format!(
                "the RST came from {} hop(s) away, farther than the host's SYN-ACKs ({} hop(s))",
                rst_hops.0,
                hops_text(host_hops)
            ),
            RstSameDistance {
                rst_hops,
                synack_count,
            } => format!(
                "same distance ({} hop(s)) and initial TTL as the host's {synack_count} SYN-ACK(s)",
                rst_hops.0
            ),
            RstFlowLabelZero { labelled } => match labelled {
                HostReplies::SynAcks => {
                    "the RST has IPv6 flow label 0 while the host's SYN-ACKs carry flow labels".into()
                }
                HostReplies::EchoReplies => {
                    "the RST has IPv6 flow label 0 while the host's echo replies carry flow labels"
                        .into()
                }
                HostReplies::OtherRsts => {
                    "the RST has IPv6 flow label 0 while other RSTs from this host carry flow labels"
                        .into()
                }
            },
            RstAtEchoOnly {
                rst_hops,
                echo_hops,
            } => format!(
                "the RST came from {} hop(s) away, as the host's echo replies do ({} hop(s))",
                rst_hops.0,
                hops_text(echo_hops)
            ),
            RstCloserThanEcho {
                rst_hops,
                echo_hops,
            } => format!(
                "the RST came from {} hop(s) away, the host's echo replies from {} hop(s)",
                rst_hops.0,
                hops_text(echo_hops)
            ),
            RstCloserThanOtherRsts {
                rst_hops,
                other_hops,
            } => format!(
                "other RSTs from this address came from {} hop(s) away, this one from {}",
                other_hops.0, rst_hops.0
            ),
            RstConsistent { others } => {
                format!("{others} other RST(s) from this address came from the same distance")
            }
            PortTosZero { port } => format!(
                "a TOS-marked SYN to port {port} drew an RST with TOS 0, while the host's RSTs for other ports echo the TOS"
            ),
            PortTosEchoed { port } => {
                format!("a TOS-marked SYN to port {port} drew an RST that echoed the TOS")
            }
            RstTosEchoed { syn_tos } => format!("the RST echoed the SYN's TOS 0x{syn_tos:02x}"),
            RstTosZero { syn_tos, .. } => {
                format!("the RST has TOS 0 though the SYN carried 0x{syn_tos:02x}")
            }
            RstTosZeroLinuxHost => "the host's SYN-ACKs come from the same distance with Linux's TCP option layout (MSS, SACK, timestamps packed)".into(),
            RstFlowLabel { flow_label } => {
                format!("the RST carries IPv6 flow label 0x{flow_label:05x}")
            }
            RstInexactAck { ack, expected } => {
                format!("the RST acknowledges {ack}, not the SYN's ISN+1 ({expected})")
            }
            NoBaseline => {
                "no SYN-ACK from this address in the capture to compare the RST's distance with"
                    .into()
            }
            HostRulePossible => "no TOS- or flow-label test in this capture".into(),
            IcmpUnreachable {
                icmp_code,
                from,
                from_kind,
                ttl,
            } => format!(
                "ICMP destination unreachable ({}) from {}, {}",
                icmp_code.description(),
                who(&IcmpSender {
                    addr: *from,
                    kind: *from_kind,
                    hops: ttl.hops
                }),
                ttl_text(ttl)
            ),
            IcmpQuote {
                quoted_ttl,
                sent_ttl,
                tcp_bytes,
            } => format!(
                "it quotes our SYN (TTL {quoted_ttl} left of {sent_ttl}, {tcp_bytes} bytes of TCP)"
            ),
            TimeExceeded {
                from,
                from_kind,
                ttl,
                ..
            } => format!(
                "ICMP time exceeded from {}, {}",
                who(&IcmpSender {
                    addr: *from,
                    kind: *from_kind,
                    hops: ttl.hops
                }),
                ttl_text(ttl)
            ),
            IcmpError {
                icmp_type,
                icmp_code,
                from,
                from_kind,
                ttl,
            } => format!(
                "ICMP error type {icmp_type} code {icmp_code} from {}",
                who(&IcmpSender {
                    addr: *from,
                    kind: *from_kind,
                    hops: ttl.hops
                })
            ),
            SynNotCaptured => "the SYN itself is not in the capture".into(),
            IcmpInexactQuote => {
                "the ICMP error quotes another sequence number than the SYN's".into()
            }
            Silence { syns, span, waited } => format!(
                "{syns} SYN(s) over {:.1} s, no reply within {:.1} s of the last",
                span.as_secs_f64(),
                waited.as_secs_f64()
            ),
            HostAnswersElsewhere { host_hops } => format!(
                "the host answered other SYNs in this capture ({} hop(s) away)",
                host_hops.0
            ),
            CaptureEnded { waited } => format!(
                "the capture ended {:.1} s after the last SYN",
                waited.as_secs_f64()
            ),
            Evicted => "the attempt was evicted early because too many were in flight".into(),
            RouteErrorForAddress {
                icmp_code,
                from,
                hops,
                target,
                port,
            } => format!(
                "ICMP destination unreachable ({}) from {} at hop {} about {}, for a SYN to port {port}",
                icmp_code.description(),
                AddrText(*from),
                hops.0,
                AddrText(*target)
            ),
            SilenceRateLimited { syns } => {
                format!("{syns} SYN(s) to this port drew no answer of their own")
            }
            TosProbeEchoed { tos } => format!("a SYN with TOS 0x{tos:02x} drew an RST that echoed it"),
            BadChecksumAnswered => {
                "a SYN with a wrong TCP checksum was answered with an RST".into()
            }
            WalkHopSilent { hops } => format!(
                "hop(s) {} sent no time-exceeded for SYNs that went past them, asked twice",
                hops.iter()
                    .map(|h| h.0.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Budget { budget } => format!("the packet budget of {budget} was spent"),
            ConnectAccepted => "a full TCP connection was accepted and stayed up".into(),
            ConnectReset => "a full TCP connection completed its handshake, then was reset".into(),
            ConnectFailed { outcome } => {
                format!("a full TCP connection did not complete ({outcome:?})")
            }
            LocalListensElsewhere {
                port,
                target,
                listeners,
            } => format!(
                "this host's sockets on port {port}: {}, none for {target}",
                sockets_text(listeners)
            ),
            LocalNoListener { port } => format!("no socket of this host listens on port {port}"),
            LocalBacklogFull {
                listener,
                queued,
                backlog,
                overflows,
            } => format!(
                "the socket listening on {listener} has {queued} connection(s) waiting in an accept queue of {backlog}; ListenOverflows rose by {overflows} during the probe"
            ),
            LocalListener { listener, .. } => {
                format!("a socket of this host listens on {listener} for this address")
            }
            LocalListenOverflows { overflows } => {
                format!("ListenOverflows rose by {overflows} during the probe")
            }
            TtlWalkRstAtRouter { router, hops } => {
                let h = hops.0;
                format!(
                    "TTL walk: the SYN with TTL {h} expired at {router} (hop {h}), and the RST came from {h} hop(s) away"
                )
            }
            TtlWalkRstBehindTarget {
                target,
                target_hops,
                rst_hops,
                ..
            } => {
                let before = target_hops.0;
                format!(
                    "TTL walk: the SYN with TTL {before} expired at {target} itself (hop {before}), and the RST came from {} hop(s) away",
                    rst_hops.0
                )
            }
            TtlWalk { steps, .. } | TtlWalkSilence { steps, .. } => {
                format!("TTL walk: {}", walk_text(steps))
            }
            HopNamedByOtherProbe { target, addr, hops } => format!(
                "other TTL-limited SYNs to {target} expired at {addr} at hop {}",
                hops.0
            ),
            RejecterUnnamed { hops } => format!(
                "the SYN with TTL {} drew no time-exceeded, asked twice",
                hops.0
            ),
            EchoAnswered { target, hops } => format!(
                "{target} answered from {} hop(s) away (ICMP echo or another port)",
                hops.0
            ),
            NotCaptured => "the capture saw neither our SYN nor any reply".into(),
            SweepSameAs { port, silent_here: false } => format!(
                "the sweep's SYN to this port was answered like the one to port {port} (same sender distance and TOS behaviour)"
            ),
            SweepSameAs { port, silent_here: true } => format!(
                "this port stayed silent in the sweep, in the same run of silent ports as port {port}"
            ),
            SweepRunMixed { first, last } => format!(
                "ports {first} and {last}, the ends of this run of silent ports, ended differently when probed further"
            ),
        }
    }

    /// What one finding means.
    pub fn implies(&self, finding: &Finding) -> String {
        use Finding::*;
        match finding {
            SynAck { .. } => {
                "the target's TCP stack accepted the connection: something listens on the port".into()
            }
            InexactAck => "it may answer an earlier SYN on the same ports; treat with care".into(),
            SynAckBeyondAddress { .. } => "the address forwards the port (a port forward, DNAT, a load balancer) to a backend beyond it, and the backend accepted".into(),
            RstAndSynAck => {
                "two devices answered: something on the path also resets this connection".into()
            }
            SynAckWindowZero => "a SYN proxy answered (netfilter SYNPROXY answers with window 0; a host's own listener offers a window): the service behind it is not confirmed".into(),
            Rst { .. } => "something refused the SYN with a TCP reset".into(),
            RstInitialTtlDiffers { .. } => {
                "a different network stack sent the RST: not the host's own".into()
            }
            RstAtEchoDistance { .. } => "sent by the address's own host: the SYN-ACKs from farther come through port forwards to backends beyond it".into(),
            RstCloserThanSynack {
                rst_hops,
                host_hops,
            } => format!(
                "a device {} hop(s) closer than the host forged the RST",
                host_hops.min.0.saturating_sub(rst_hops.0)
            ),
            RstFartherThanSynack { .. } => {
                "the return path changed, or the RST crossed another path: distance cannot decide"
                    .into()
            }
            RstSameDistance { .. } => {
                "sent by the host itself: its TCP stack, or a firewall rule on the host".into()
            }
            RstFlowLabelZero { .. } => {
                "netfilter's REJECT sends flow label 0; the host's own stack labels its packets".into()
            }
            RstCloserThanEcho { .. } => "a device closer than the host forged the RST".into(),
            RstAtEchoOnly { .. } => {
                "the host itself sent it (farther RSTs for other ports come from backends behind port forwards)".into()
            }
            RstCloserThanOtherRsts { .. } => {
                "two devices answer for this address; the closer one is not the host".into()
            }
            RstConsistent { .. } => {
                "consistent with the host's own stack, but no SYN-ACK to compare distances with"
                    .into()
            }
            PortTosZero { .. } => {
                "RSTs for this port come from a REJECT rule on the host, not from its stack".into()
            }
            PortTosEchoed { .. } => "the host's own stack answers for this port: a netfilter REJECT rule sends TOS 0".into(),
            RstTosEchoed { .. } => {
                "a Linux stack's own RST echoes the TOS; netfilter's REJECT sends 0".into()
            }
            RstTosZero { others_echo, .. } => if *others_echo {
                "other RSTs from this host echo the TOS: this one came from a REJECT rule, not the stack"
            } else {
                "netfilter's REJECT sends TOS 0 where a Linux stack echoes it (other systems may not echo)"
            }
            .into(),
            RstTosZeroLinuxHost => "a Linux stack's own RST echoes the TOS: this RST came from a REJECT rule on the host".into(),
            RstFlowLabel { .. } => "netfilter's REJECT sends flow label 0: a stack sent this one".into(),
            RstInexactAck { .. } => "a stack answering this SYN acknowledges it exactly: this RST may be injected or stale".into(),
            NoBaseline => if self.live {
                "read as the host's own RST; a firewall at the same distance or on the host would look alike"
            } else {
                "read as the host's own RST; a firewall at the same distance or on the host would look alike (run `sudo synprobe HOST PORT` to test it live)"
            }
            .into(),
            HostRulePossible => if self.live {
                "a firewall rule on the host itself would look the same"
            } else {
                "a firewall rule on the host itself would look the same (run `sudo synprobe HOST PORT`: it sends a TOS-marked SYN to tell)"
            }
            .into(),
            IcmpUnreachable { icmp_code, .. } => match icmp_code.linux_source() {
                Some(src) => format!("typically produced by {src}"),
                None => "the packet could not be delivered".into(),
            },
            IcmpQuote {
                quoted_ttl,
                sent_ttl,
                ..
            } => format!(
                "the SYN had crossed about {} router(s) when it was turned back",
                sent_ttl.saturating_sub(*quoted_ttl)
            ),
            TimeExceeded { sent_ttl, .. } => {
                if *sent_ttl < 30 {
                    format!("the SYN was sent with TTL {sent_ttl}: a deliberate TTL-limited probe (traceroute), not a verdict on the port")
                } else {
                    "the SYN's TTL ran out before the target: a routing loop".into()
                }
            }
            IcmpError { .. } => "the SYN could not be delivered as sent".into(),
            SynNotCaptured => "the attempt was rebuilt from the SYN quoted in the ICMP error".into(),
            IcmpInexactQuote => "it may concern an earlier SYN on the same ports".into(),
            Silence { .. } => "something dropped the SYNs or the replies without a word".into(),
            HostAnswersElsewhere { .. } => {
                "the host is up and reachable: a DROP rule filters this port".into()
            }
            CaptureEnded { .. } => "a late reply may simply not have been captured".into(),
            Evicted => "a reply may have come after it was judged".into(),
            RouteErrorForAddress { .. } => {
                "a routing error concerns the whole address: every port of it is affected".into()
            }
            SilenceRateLimited { .. } => "routers send ICMP errors to one destination from a small token bucket (a burst, then about one a second): these were most likely not sent for that reason".into(),
            TosProbeEchoed { .. } => {
                "the host's own stack answered: a netfilter REJECT rule sends TOS 0".into()
            }
            BadChecksumAnswered => "an end host's stack drops such a SYN: a middlebox that does not validate checksums answered".into(),
            WalkHopSilent { .. } => "those routers rate-limit their ICMP errors or send none: the walk cannot name them".into(),
            Budget { .. } => "some discriminators were not sent (raise it with --budget)".into(),
            ConnectAccepted => "the service itself accepts connections".into(),
            ConnectReset => "what answered the SYN was not the service: nothing behind it accepts the connection".into(),
            ConnectFailed { .. } => "the path or the proxy behaves differently for a kernel's connection: the SYN-ACK alone is the evidence".into(),
            LocalListensElsewhere { .. } => "the service listens, but not on the address probed: the kernel refuses SYNs to it".into(),
            LocalNoListener { .. } => {
                "nothing listens: the service is stopped, or listens on another port".into()
            }
            LocalBacklogFull { .. } => {
                "the listen backlog is full: the kernel drops new SYNs until the service accepts"
                    .into()
            }
            LocalListener { port_open, .. } => if *port_open {
                "the service is up"
            } else {
                "the service listens: what refused or dropped the SYN is a rule, not the service"
            }
            .into(),
            LocalListenOverflows { .. } => {
                "some listener on this host has a full accept queue".into()
            }
            TtlWalkRstAtRouter { router, hops } => format!(
                "router {router} at hop {} answers with a forged RST instead of forwarding the SYN",
                hops.0
            ),
            TtlWalkRstBehindTarget { target, port, .. } => format!(
                "{target} forwards port {port} (a port forward or DNAT) to a backend one hop beyond it, and the backend refused"
            ),
            TtlWalk { rst_hops, .. } => {
                format!("the RST comes from the first device at hop {}", rst_hops.0)
            }
            HopNamedByOtherProbe { addr, hops, .. } => format!(
                "the RST's sender at hop {} is most likely {addr}",
                hops.0
            ),
            RejecterUnnamed { hops } => format!(
                "the device at hop {} rate-limits its ICMP errors or sends none: it is known by its distance only",
                hops.0
            ),
            TtlWalkSilence {
                last_router,
                last_hops,
                dropped,
                ..
            } => match (last_router, last_hops) {
                (Some(addr), Some(r)) => {
                    let (r, next) = (r.0, r.0.saturating_add(1));
                    match dropped {
                        DropPoint::Target => format!(
                            "every router up to hop {r} ({addr}) forwarded the SYN; the target at hop {next} drops it: a DROP rule on the host, or a full listen backlog (Linux drops SYNs while the accept queue is full)"
                        ),
                        DropPoint::AfterHop => format!(
                            "the SYNs vanish after hop {r} ({addr}): hop {next} answers other TTL-limited SYNs, not these: a DROP rule at hop {r} or on the link after it"
                        ),
                        DropPoint::Unknown => format!(
                            "the SYNs pass hop {r} ({addr}); hop {next} answered no TTL-limited SYN at all (it sends no time-exceeded, or rate-limits them), so where they vanish beyond hop {r} cannot be told"
                        ),
                    }
                }
                _ => "no router answered either: the first hop drops the SYNs, or routers do not send time-exceeded".into(),
            },
            EchoAnswered { .. } => "the host is up: the port's SYNs are filtered".into(),
            NotCaptured => "the capture may be on the wrong interface (use --interface)".into(),
            SweepSameAs { port, .. } => format!(
                "judged with the deeper probes sent to port {port}: its evidence below stands for this port too"
            ),
            SweepRunMixed { .. } => format!(
                "two rules meet inside this run: where this port is dropped is not known (probe it alone: {})",
                "synprobe HOST PORT"
            ),
        }
    }

    /// The headline: one sentence for an operator.
    pub fn headline(&self, j: &Judgement) -> String {
        let pd = self.port_desc();
        let target = AddrText(self.target);
        match &j.cause {
            Cause::Open => format!("{pd} is open: the host accepted the connection"),
            Cause::OpenAtSynProxy => format!(
                "{pd} is open at a SYN proxy: whether the service behind it accepts is not confirmed"
            ),
            Cause::OpenBehindSynProxy => format!(
                "{pd} is open: a SYN proxy answered, and the service behind it accepted a full connection"
            ),
            Cause::Closed => format!(
                "{pd}: closed by the host's own TCP stack: nothing listens on that port and address"
            ),
            Cause::RstRuleOnHost => {
                format!("{pd}: RST from a firewall rule on the host itself, not its TCP stack")
            }
            Cause::RstForgedOnPath {
                rst_hops,
                target_hops,
            } => {
                let mut s = format!("{pd}: RST forged by a firewall at hop {}", rst_hops.0);
                if let Some(t) = target_hops {
                    let _ = write!(s, " in front of the host at hop {}", t.0);
                }
                s.push_str(", not by the host (it used the host's address)");
                s
            }
            Cause::RstForgedByMiddlebox => format!(
                "{pd}: RST forged by a middlebox (it answered a SYN with a bad checksum)"
            ),
            Cause::RstAtRouter { router, hops } => format!(
                "{pd}: RST forged by router {router} at hop {} (it uses the target's address), not by the host",
                hops.0
            ),
            Cause::ForwardedBackendRefused { by_rule } => {
                if *by_rule {
                    format!("{pd}: forwarded to a backend one hop beyond {target}, where a firewall rule resets it")
                } else {
                    format!("{pd}: forwarded to a backend one hop beyond {target}, and nothing listens there (the backend's own stack refused)")
                }
            }
            Cause::ClosedBehindSynProxy => format!(
                "{pd}: closed behind a SYN proxy: the proxy completed the handshake, then the connection was reset (nothing listens behind it)"
            ),
            Cause::ListensElsewhere { listeners } => format!(
                "{pd}: closed: the service listens on {} only: bind it to 0.0.0.0 / [::] or to {target}",
                sockets_text(listeners)
            ),
            Cause::RejectedBySender { addr, icmp_code } => format!(
                "{pd}: rejected by a firewall rule on the sending host {} itself (ICMP {}); the SYN never left it",
                AddrText(*addr),
                icmp_code.description()
            ),
            Cause::Rejected { by, icmp_code } => format!(
                "{pd}: rejected by {} with ICMP {}",
                who(by),
                icmp_code.description()
            ),
            Cause::ForwardedBackendGone { by, icmp_code } => format!(
                "{pd}: {} forwards the port to a backend that does not answer ({}): a port forward to a stopped container or a gone backend",
                who(by),
                icmp_code.description()
            ),
            Cause::Unreachable { by, icmp_code } => format!(
                "{pd}: unreachable, {} reports {}",
                who(by),
                icmp_code.description()
            ),
            Cause::Expired { at } => format!("{pd}: the SYN expired in transit at {}", who(at)),
            Cause::IcmpError { by } => {
                format!("{pd}: an ICMP error from {} turned the SYN back", who(by))
            }
            Cause::RouteError {
                from,
                hops,
                icmp_code,
            } => format!(
                "{pd}: {} by {} at hop {} ({}), which answered for another port of the address",
                if icmp_code.is_rejection() {
                    "rejected"
                } else {
                    "unreachable"
                },
                AddrText(*from),
                hops.0,
                icmp_code.description()
            ),
            Cause::Filtered => format!("{pd}: filtered, every SYN went unanswered"),
            Cause::DroppedAfterHop {
                router,
                hops,
                dropped,
            } => {
                let r = hops.0;
                match dropped {
                    DropPoint::Target => format!(
                        "{pd}: silently dropped after hop {r} ({router}), by the target itself or a rule on it"
                    ),
                    DropPoint::AfterHop => {
                        format!("{pd}: silently dropped after hop {r} ({router})")
                    }
                    DropPoint::Unknown => {
                        format!("{pd}: silently dropped somewhere after hop {r} ({router})")
                    }
                }
            }
            Cause::BacklogFull { queued, backlog } => format!(
                "{pd}: filtered: the listen backlog is full ({queued} waiting, backlog {backlog}), the kernel drops new SYNs"
            ),
            Cause::NotCaptured => format!("{pd}: no frame of the probe was captured"),
        }
    }

    /// One next step, or None where it does not apply (a suggestion to run live, in a live run's words).
    pub fn step(&self, advice: &Advice) -> Option<String> {
        let server = AddrText(self.target);
        let port = self.port;
        Some(match advice {
            Advice::LookAboveTcp => "TCP is fine: if the client still fails, look above TCP (TLS, the application's logs, an HTTP proxy)".into(),
            Advice::ConnectThroughProxy => "A full connection tells: `synprobe --connect` completes one, or `nc -vz HOST PORT` (a reset after the handshake means nothing listens behind the proxy)".into(),
            Advice::FindSynProxy => "On the host: `iptables -S | grep SYNPROXY`, `nft list ruleset | grep synproxy`, and `ss -tlnp` for the service".into(),
            Advice::CheckListener => format!("On {server}: `ss -tlnp 'sport = :{port}'` shows whether anything listens on port {port}"),
            Advice::ServiceStopped => "If the service is stopped: `systemctl status <service>`, then its logs (`journalctl -u <service>`)".into(),
            Advice::LoopbackBind => format!("If it listens only on 127.0.0.1 or ::1 (`ss -tln` shows 127.0.0.1:{port}), bind it to 0.0.0.0/:: or the public address"),
            Advice::WindowsBacklog => "On Windows a full listen backlog also answers RST (Linux drops the SYNs instead): check the service's accept loop".into(),
            Advice::HostRejectRule => format!("On {server}: look for a REJECT --reject-with tcp-reset rule for port {port}: `iptables -S | grep -i reject`, `nft list ruleset | grep -i reject`"),
            Advice::PathRejectRule => format!("On the device that sent the RST (see rejecter): look for a REJECT --reject-with tcp-reset rule for port {port} (`iptables -S`, `nft list ruleset`), or a firewall/IPS policy that resets connections"),
            Advice::CloudPolicies => "In a cloud: check security groups, network ACLs and load-balancer listeners on the path".into(),
            Advice::TestBeyondFirewall => "The service itself may be running fine: test from a host beyond the firewall".into(),
            Advice::SenderOutputRule { addr } => format!("On {}: look for a REJECT rule in the OUTPUT chain: `iptables -S OUTPUT`, `ip6tables -S OUTPUT`, `nft list ruleset`", AddrText(*addr)),
            Advice::LocalSecuritySoftware => "Local security software (a host firewall, a container or VPN policy) can install such rules".into(),
            Advice::FindRejectRule { addr } => format!("On {}: find the REJECT rule (`iptables -S | grep REJECT`, `ip6tables -S`, `nft list ruleset`) or a `prohibit` route (`ip route show type prohibit`)", AddrText(*addr)),
            Advice::AllowBeforeRule => "A REJECT rule answers at once; if the port must be reachable, allow it before that rule".into(),
            Advice::KubeProxyNoEndpoints => "Kubernetes: kube-proxy rejects a Service's port this way while it has no ready endpoint: `kubectl get endpoints -A | grep '<none>'`, then the pods' readiness".into(),
            Advice::FindPortForward { addr } => format!("On {}: find where the port is forwarded: `iptables -t nat -S | grep -- '--dport {port}'`, `nft list ruleset | grep dnat`, `docker ps -a`", AddrText(*addr)),
            Advice::BackendUp => "Is the backend up? `ip neigh` on the target shows FAILED for its address; restart the container, or remove the stale rule".into(),
            Advice::RouteGet { addr } => format!("On {}: `ip route get {server}` shows which route (or `unreachable` route) applies", AddrText(*addr)),
            Advice::NeighbourCheck => format!("If the route is right: is {server} up, and does it answer ARP/neighbour discovery (`ip neigh`) on its link?"),
            Advice::TracePath => format!("Trace the path (`mtr -T -P {port} {server}`) and look for a loop"),
            Advice::CheckMtu => format!("Check the path MTU and routing towards {server}"),
            Advice::LocalFirewall => "The target is local: the rule is in this host's own firewall".into(),
            Advice::DropOrBlackhole => "A DROP rule, a blackhole route, or a host that is down behind a router that sends no ICMP".into(),
            Advice::LinuxBacklog => "On a Linux host, a full listen backlog drops SYNs silently too: `nstat -az TcpExtListenOverflows TcpExtListenDrops`, and Recv-Q against Send-Q in `ss -tln`".into(),
            Advice::RunLive if self.live => return None,
            Advice::RunLive => format!("Run `sudo synprobe {server} {port}` live: its TTL walk shows after which hop the SYNs vanish"),
            Advice::FindDropRule => "On the suspected firewall: `iptables -S | grep DROP`, `nft list ruleset | grep drop`; in a cloud, security groups and NACLs".into(),
            Advice::RouteGetAddress { addr } => format!("On {}: `ip route get {server}` shows which route (or `unreachable`/`prohibit` route) applies", AddrText(*addr)),
            Advice::ProhibitRoute { addr } => format!("A `prohibit` route or a policy on {} refuses every packet to {server}: `ip route show type prohibit`, `ip rule`", AddrText(*addr)),
            Advice::ProxyServiceDown => format!("On {server}: `ss -tlnp 'sport = :{port}'`: the service behind the SYN proxy is not listening"),
            Advice::ProxyRules => "`iptables -S | grep SYNPROXY`, `nft list ruleset | grep synproxy` show the proxy's rules".into(),
            Advice::Rebind { listeners } => format!("Change the service's listen address (e.g. `0.0.0.0:{port}` instead of `{}`) and restart it; `ss -tlnp 'sport = :{port}'` shows the process", sockets_text(listeners)),
            Advice::AcceptLoop => "The service does not accept connections fast enough: look at its accept loop, worker count and logs; `ss -tln` shows Recv-Q against Send-Q, `nstat -az TcpExtListenOverflows`".into(),
            Advice::RouterRejectRule { router } => format!("On {router}: find the rule answering port {port}: `iptables -S FORWARD | grep -i reject`, `nft list ruleset | grep -i reject`"),
            Advice::FindForwardedBackend => format!("On {server}: find where port {port} is forwarded: `docker ps` and `docker port CONTAINER`, `iptables -t nat -S | grep -- '--dport {port}'`, `nft list ruleset | grep dnat`, or `kubectl get svc -A | grep {port}`"),
            Advice::InsideBackend => "Inside the backend (e.g. `docker exec CONTAINER ss -tlnp`): is the service running, and listening on 0.0.0.0 (not 127.0.0.1) on the mapped port?".into(),
            Advice::BackendEndpoints => "Kubernetes: `kubectl get endpoints SERVICE` (no ready endpoint, or the wrong targetPort); a load balancer: its target group's health".into(),
            Advice::UseInterface => "Run again with --interface set to the interface the route uses".into(),
        })
    }

    /// The next steps, in order.
    pub fn next_steps(&self, j: &Judgement) -> Vec<String> {
        j.advice.iter().filter_map(|a| self.step(a)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::tests::examples;

    /// Every finding has words, in a capture's report and in a live run's.
    #[test]
    fn every_finding_is_explained() {
        for live in [false, true] {
            let words = Explain::new("198.18.9.9".parse().expect("addr"), 443).live(live);
            for f in examples() {
                let (observed, implies) = (words.observed(&f), words.implies(&f));
                for s in [&observed, &implies] {
                    assert!(s.len() > 10 && s.contains(' '), "{f:?}: {s:?}");
                    assert!(!s.contains('{'), "{f:?}: {s:?}");
                }
            }
        }
    }

    #[test]
    fn the_sentences_carry_the_numbers() {
        let words = Explain::new("198.18.9.9".parse().expect("addr"), 22);
        let rst = Finding::Rst {
            from: "198.18.9.9".parse().expect("addr"),
            ttl: TtlReading::of(61),
            after: Some(crate::time::Duration(9_126_000)),
        };
        assert_eq!(
            words.observed(&rst),
            "RST from 198.18.9.9 with TTL 61 (initial 64, 4 hops away), after 9.13 ms"
        );
        assert!(words
            .implies(&Finding::NoBaseline)
            .contains("run `sudo synprobe HOST PORT`"));
        assert!(!words
            .live(true)
            .implies(&Finding::NoBaseline)
            .contains("synprobe"));
        assert!(words.step(&Advice::RunLive).is_some());
        assert!(words.live(true).step(&Advice::RunLive).is_none());
    }
    /// Every cause has a headline and every piece of advice its words (a new variant fails to compile in the
    /// matches below until it has an example here).
    #[test]
    fn every_cause_and_advice_is_explained() {
        use crate::findings::{Advice as A, Cause as C, DropPoint};
        use crate::model::HopCount;
        use crate::wire::Unreachable;
        let addr: IpAddr = "198.18.1.1".parse().expect("addr");
        let by = IcmpSender {
            addr,
            kind: RejecterKind::Router,
            hops: HopCount(2),
        };
        let sockets = vec!["127.0.0.1:443".parse().expect("socket")];
        let causes = vec![
            C::Open,
            C::OpenAtSynProxy,
            C::OpenBehindSynProxy,
            C::Closed,
            C::RstRuleOnHost,
            C::RstForgedOnPath {
                rst_hops: HopCount(4),
                target_hops: Some(HopCount(8)),
            },
            C::RstForgedByMiddlebox,
            C::RstAtRouter {
                router: addr,
                hops: HopCount(2),
            },
            C::ForwardedBackendRefused { by_rule: true },
            C::ClosedBehindSynProxy,
            C::ListensElsewhere {
                listeners: sockets.clone(),
            },
            C::RejectedBySender {
                addr,
                icmp_code: Unreachable::AdminProhibited,
            },
            C::Rejected {
                by,
                icmp_code: Unreachable::Port,
            },
            C::ForwardedBackendGone {
                by,
                icmp_code: Unreachable::Host,
            },
            C::Unreachable {
                by,
                icmp_code: Unreachable::Net,
            },
            C::Expired { at: by },
            C::IcmpError { by },
            C::RouteError {
                from: addr,
                hops: HopCount(2),
                icmp_code: Unreachable::Host,
            },
            C::Filtered,
            C::DroppedAfterHop {
                router: addr,
                hops: HopCount(2),
                dropped: DropPoint::Target,
            },
            C::BacklogFull {
                queued: 129,
                backlog: 128,
            },
            C::NotCaptured,
        ];
        let covered: std::collections::BTreeSet<usize> = causes
            .iter()
            .map(|c| match c {
                C::Open => 0,
                C::OpenAtSynProxy => 1,
                C::OpenBehindSynProxy => 2,
                C::Closed => 3,
                C::RstRuleOnHost => 4,
                C::RstForgedOnPath { .. } => 5,
                C::RstForgedByMiddlebox => 6,
                C::RstAtRouter { .. } => 7,
                C::ForwardedBackendRefused { .. } => 8,
                C::ClosedBehindSynProxy => 9,
                C::ListensElsewhere { .. } => 10,
                C::RejectedBySender { .. } => 11,
                C::Rejected { .. } => 12,
                C::ForwardedBackendGone { .. } => 13,
                C::Unreachable { .. } => 14,
                C::Expired { .. } => 15,
                C::IcmpError { .. } => 16,
                C::RouteError { .. } => 17,
                C::Filtered => 18,
                C::DroppedAfterHop { .. } => 19,
                C::BacklogFull { .. } => 20,
                C::NotCaptured => 21,
            })
            .collect();
        assert_eq!(covered.len(), 22);
        let advice = vec![
            A::LookAboveTcp,
            A::ConnectThroughProxy,
            A::FindSynProxy,
            A::CheckListener,
            A::ServiceStopped,
            A::LoopbackBind,
            A::WindowsBacklog,
            A::HostRejectRule,
            A::PathRejectRule,
            A::CloudPolicies,
            A::TestBeyondFirewall,
            A::SenderOutputRule { addr },
            A::LocalSecuritySoftware,
            A::FindRejectRule { addr },
            A::AllowBeforeRule,
            A::KubeProxyNoEndpoints,
            A::FindPortForward { addr },
            A::BackendUp,
            A::RouteGet { addr },
            A::NeighbourCheck,
            A::TracePath,
            A::CheckMtu,
            A::LocalFirewall,
            A::DropOrBlackhole,
            A::LinuxBacklog,
            A::RunLive,
            A::FindDropRule,
            A::RouteGetAddress { addr },
            A::ProhibitRoute { addr },
            A::ProxyServiceDown,
            A::ProxyRules,
            A::Rebind { listeners: sockets },
            A::AcceptLoop,
            A::RouterRejectRule { router: addr },
            A::FindForwardedBackend,
            A::InsideBackend,
            A::BackendEndpoints,
            A::UseInterface,
        ];
        let covered: std::collections::BTreeSet<usize> = advice
            .iter()
            .map(|a| match a {
                A::LookAboveTcp => 0,
                A::ConnectThroughProxy => 1,
                A::FindSynProxy => 2,
                A::CheckListener => 3,
                A::ServiceStopped => 4,
                A::LoopbackBind => 5,
                A::WindowsBacklog => 6,
                A::HostRejectRule => 7,
                A::PathRejectRule => 8,
                A::CloudPolicies => 9,
                A::TestBeyondFirewall => 10,
                A::SenderOutputRule { .. } => 11,
                A::LocalSecuritySoftware => 12,
                A::FindRejectRule { .. } => 13,
                A::AllowBeforeRule => 14,
                A::KubeProxyNoEndpoints => 15,
                A::FindPortForward { .. } => 16,
                A::BackendUp => 17,
                A::RouteGet { .. } => 18,
                A::NeighbourCheck => 19,
                A::TracePath => 20,
                A::CheckMtu => 21,
                A::LocalFirewall => 22,
                A::DropOrBlackhole => 23,
                A::LinuxBacklog => 24,
                A::RunLive => 25,
                A::FindDropRule => 26,
                A::RouteGetAddress { .. } => 27,
                A::ProhibitRoute { .. } => 28,
                A::ProxyServiceDown => 29,
                A::ProxyRules => 30,
                A::Rebind { .. } => 31,
                A::AcceptLoop => 32,
                A::RouterRejectRule { .. } => 33,
                A::FindForwardedBackend => 34,
                A::InsideBackend => 35,
                A::BackendEndpoints => 36,
                A::UseInterface => 37,
            })
            .collect();
        assert_eq!(covered.len(), 38);
        let words = Explain::new("198.18.9.9".parse().expect("addr"), 443);
        let mut j = Judgement {
            verdict: crate::verdict::Verdict::Closed,
            confidence: crate::verdict::Confidence::High,
            cause: C::Closed,
            rejecter: None,
            target_hops: None,
            rtt: None,
            findings: Vec::new(),
            advice: advice.clone(),
        };
        for cause in causes {
            j.cause = cause;
            let h = words.headline(&j);
            assert!(h.starts_with("198.18.9.9 port 443"), "{h}");
            assert!(h.len() > 30 && !h.contains('{'), "{h}");
        }
        assert_eq!(words.next_steps(&j).len(), advice.len());
        assert_eq!(words.live(true).next_steps(&j).len(), advice.len() - 1);
        for step in words.next_steps(&j) {
            assert!(step.len() > 20 && !step.contains('{'), "{step}");
        }
    }
}
