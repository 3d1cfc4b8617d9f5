//! What the analyzer learns about a server from one closed attempt (its [`Lesson`]), the reply facts it is made
//! of (a route-wide ICMP error, a Linux SYN-ACK option layout), and a reply's round-trip time. They sit with the
//! matcher, below analysis, because the matcher reads a lesson straight from its compact slots.

use std::net::IpAddr;

use crate::findings::TtlReading;
use crate::model::{Attempt, Reply, ReplyKind};
use crate::time::Duration;

/// What the analyzer learns about a server from one attempt: the decisive reply, as far as baselines use it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lesson {
    pub(crate) reply: Option<LessonReply>,
    /// The SYN's TOS byte.
    pub(crate) syn_tos: u8,
}

/// The decisive reply, as far as baselines use it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LessonReply {
    pub(crate) kind: ReplyKind,
    pub(crate) exact: bool,
    /// Whether it came from the server itself.
    pub(crate) from_server: bool,
    pub(crate) ttl: u8,
    pub(crate) tos: u8,
    pub(crate) flow_label: Option<u32>,
    /// For an ICMP unreachable about the whole address (a routing code, or a prohibition sent before the SYN
    /// was forwarded: a `prohibit` route), its sender; see [`route_error_of`].
    pub(crate) route_error_from: Option<IpAddr>,
    /// For a SYN-ACK: its options are laid out as only Linux lays them out ([`linux_option_layout`]).
    pub(crate) linux_layout: bool,
}

/// Whether TCP options start as Linux writes a SYN-ACK's: MSS, then SACK-permitted and timestamps packed
/// together with no padding between (`02 04 xx xx 04 02 08 0a`). BSDs, macOS and Windows put NOPs and window
/// scale first. Such a stack echoes the SYN's TOS in its own RSTs.
pub(crate) fn linux_option_layout(options: &[u8]) -> bool {
    matches!(options, [2, 4, _, _, 4, 2, 8, 10, ..])
}

impl Lesson {
    /// The lesson of an unpacked attempt.
    pub(crate) fn of(attempt: &Attempt) -> Lesson {
        Lesson {
            reply: attempt.decisive_reply().map(|r| LessonReply {
                kind: r.kind,
                exact: r.exact,
                from_server: r.source() == attempt.probe.key.server,
                ttl: r.seen.packet.ip.ttl,
                tos: r.seen.packet.ip.tos,
                flow_label: r.seen.packet.ip.flow_label,
                route_error_from: route_error_of(attempt, r),
                linux_layout: r.kind == ReplyKind::SynAck
                    && r.seen
                        .packet
                        .tcp()
                        .is_some_and(|t| linux_option_layout(t.options.as_bytes())),
            }),
            syn_tos: attempt.probe.tos,
        }
    }
}

/// Round-trip time of a reply: from the latest SYN sent before it.
pub fn rtt_of(attempt: &Attempt, reply: &Reply) -> Option<Duration> {
    let sent = attempt
        .syns
        .iter()
        .map(|s| s.ts)
        .filter(|&t| t <= reply.seen.ts)
        .max()?;
    Some(reply.seen.ts.since(sent))
}

/// The sender of an ICMP unreachable that concerns the whole address, not just the attempt's port: a routing
/// code (no route, host or network unreachable) from a device other than the target, or a prohibition sent
/// before the SYN was forwarded: a `prohibit` route quotes the TTL its sender received, where a FORWARD REJECT
/// rule quotes it after its own decrement, and a rule on the target is the target's.
pub(crate) fn route_error_of(a: &Attempt, r: &Reply) -> Option<IpAddr> {
    let ReplyKind::Unreachable(code) = r.kind else {
        return None;
    };
    let src = r.source();
    if src == a.probe.key.server || src == a.probe.key.client {
        return None;
    }
    let quote_ttl = r
        .seen
        .packet
        .icmp_error()
        .and_then(|e| e.quote)
        .map(|q| q.ttl);
    let hop = TtlReading::of(r.seen.packet.ip.ttl).hops.0;
    is_route_wide(code, hop, quote_ttl, a.probe.ttl.0).then_some(src)
}

/// Whether an ICMP unreachable that a device other than the target sent from `hop` hops away, quoting our SYN
/// (sent with TTL `sent_ttl`) with `quote_ttl` left, concerns the whole address: a routing code, or a
/// prohibition sent before the SYN was forwarded (the quoted TTL not yet decremented by its sender).
pub(crate) fn is_route_wide(
    code: crate::wire::Unreachable,
    hop: u8,
    quote_ttl: Option<u8>,
    sent_ttl: u8,
) -> bool {
    let before_forwarding = quote_ttl == Some(sent_ttl.saturating_sub(hop.saturating_sub(1)));
    code.is_routing() || (code.is_rejection() && before_forwarding)
}
