//! The matcher: a state machine that groups SYNs into attempts and matches replies to them.
//!
//! Fed frames in capture order with [`Matcher::observe`]; time only moves when a frame says so. An attempt
//! stays in the table until its reply window (the timeout after its last SYN) has passed, so late duplicates
//! are absorbed, then it is handed out through [`Matcher::pop_closed`]. Memory is bounded by the attempts in
//! flight, and by a hard cap beyond which the attempts due to close first are closed early (evicted, and counted).

mod expiry;
mod flows;
mod lesson;
mod recent;
mod slot;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::{check, ConfigError};
use crate::model::{Attempt, Closure, FlowKey, Isn, Observed, Port, Probe, Reply, ReplyKind, Ttl};
use crate::time::{Duration, Timestamp};
#[cfg(test)]
use crate::wire::TcpFlags;
use crate::wire::Transport;
use expiry::Expiry;
pub use lesson::rtt_of;
pub(crate) use lesson::{is_route_wide, linux_option_layout, Lesson, LessonReply};
use recent::Recent;
pub(crate) use slot::Spent;
use slot::{InFlight, Slot};

/// How many frames of each kind an attempt keeps for its trace (counts are always complete).
const KEEP_SYNS: usize = 8;
const KEEP_REPLIES: usize = 16;
const KEEP_CLIENT_FRAMES: usize = 4;

/// Matcher settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchConfig {
    /// How long after its last SYN an attempt waits for replies before it is resolved (default 3 s).
    pub timeout: Duration,
    /// The most attempts kept in flight; beyond it the attempt due to close first (earliest deadline, the oldest
    /// of equal waits) is evicted (default 262,144).
    pub max_in_flight: usize,
    /// Keep an unanswered attempt open for one more backoff interval of its sender (twice the last gap between
    /// its SYNs plus 1 s, at most 64 s; 1 s after a lone SYN), so that SYN retransmissions (Windows retries after
    /// 3 s and 6 s, Linux after 1, 2, 4, ... s) join their attempt instead of starting new ones (default true).
    pub follow_retransmissions: bool,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            timeout: Duration::from_millis(3000),
            max_in_flight: 1 << 18,
            follow_retransmissions: true,
        }
    }
}

impl MatchConfig {
    /// Check the settings: `timeout` longer than zero, `max_in_flight` at least 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::positive("matcher.timeout", self.timeout)?;
        check::at_least_one("matcher.max_in_flight", self.max_in_flight)
    }
}

/// Counters kept by the matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MatchStats {
    /// SYN frames seen (first SYNs and retransmissions).
    pub syns: u64,
    /// SYN retransmissions (same four-tuple and ISN as an attempt in flight).
    pub retransmissions: u64,
    /// Attempts opened.
    pub attempts: u64,
    /// Replies matched to an attempt (SYN-ACK, RST, ICMP errors), duplicates included.
    pub replies: u64,
    /// Replies matched by ports but not acknowledging the SYN exactly (kept, marked inexact).
    pub inexact_replies: u64,
    /// SYN-ACKs, and RSTs shaped like an answer to a SYN (sequence number 0), that matched no attempt.
    pub stray_tcp: u64,
    /// Replies that arrived after their attempt had closed (duplicates, or answers later than the timeout).
    pub late_replies: u64,
    /// RSTs that tear down established connections (not answers to a SYN); not strays.
    pub other_resets: u64,
    /// Attempts whose SYN was not captured, rebuilt from the SYN quoted in an ICMP error (for example one
    /// rejected by the capturing host's own firewall before it reached the wire).
    pub rebuilt_from_icmp: u64,
    /// ICMP errors quoting TCP that matched no attempt in flight.
    pub stray_icmp: u64,
    /// Attempts pushed out early because the table was full.
    pub evicted: u64,
    /// The most attempts in flight at once.
    pub peak_in_flight: u64,
}

impl MatchStats {
    /// All stray replies.
    pub fn strays(&self) -> u64 {
        self.stray_tcp + self.stray_icmp
    }
}

/// Groups SYNs into attempts and matches replies to them. Sans-IO: feed it frames, take closed attempts.
pub struct Matcher {
    config: MatchConfig,
    /// The attempts in flight, stored compactly (see the `slot` module).
    table: InFlight,
    /// (deadline, key), earliest first; stale entries are skipped when popped.
    expiry: Expiry,
    closed: VecDeque<ClosedAttempt>,
    /// Recently closed attempts (key → ISN), to tell late replies from strays; bounded in time and count.
    recent: Recent,
    stats: MatchStats,
}

/// How long a closed attempt is remembered to recognise late replies to it.
const RECENT_HORIZON: Duration = Duration(60_000_000_000);
/// The most closed attempts remembered.
const RECENT_MAX: usize = 1 << 16;

impl Matcher {
    /// A matcher with the given settings.
    pub fn new(config: MatchConfig) -> Self {
        Matcher {
            config,
            table: InFlight::new(),
            expiry: Expiry::new(),
            closed: VecDeque::new(),
            // Room beyond the count bound (enforced as time moves) for a burst of closures within one instant;
            // past it the oldest are forgotten at once.
            recent: Recent::new(RECENT_MAX + RECENT_MAX / 8),
            stats: MatchStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &MatchConfig {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> &MatchStats {
        &self.stats
    }

    /// Attempts now in flight.
    pub fn in_flight(&self) -> usize {
        self.table.len()
    }

    /// Move capture time to `now`: every attempt whose reply window ended before `now` is closed.
    pub fn advance(&mut self, now: Timestamp) {
        while let Some(at) = self.recent.front_at() {
            if at.plus(RECENT_HORIZON) >= now && self.recent.len() <= RECENT_MAX {
                break;
            }
            self.recent.pop_front();
        }
        while let Some(deadline) = self.expiry.first() {
            if deadline >= now {
                break;
            }
            if let Some((_, key)) = self.expiry.pop() {
                self.close_if_due(key, deadline, Closure::TimedOut, deadline);
            }
        }
    }

    /// Feed one frame. Call [`Matcher::advance`] with the frame's time first (the engine does).
    pub fn observe(&mut self, seen: &Observed) {
        let ip = &seen.packet.ip;
        match &seen.packet.transport {
            Transport::Tcp(t) => {
                if t.flags.is_syn_only() {
                    let key = FlowKey {
                        client: ip.src,
                        server: ip.dst,
                        client_port: Port(t.src_port),
                        server_port: Port(t.dst_port),
                    };
                    self.on_syn(key, seen);
                    return;
                }
                let reverse = FlowKey {
                    client: ip.dst,
                    server: ip.src,
                    client_port: Port(t.dst_port),
                    server_port: Port(t.src_port),
                };
                let forward = FlowKey {
                    client: ip.src,
                    server: ip.dst,
                    client_port: Port(t.src_port),
                    server_port: Port(t.dst_port),
                };
                if !t.flags.is_rst() && !t.flags.is_syn_ack() {
                    // Neither a reply nor an answer to a SYN (most frames: data and ACKs of established
                    // connections): all it can be is a client's frame of an attempt in flight, unless the reverse
                    // four-tuple is one too (a simultaneous open), where it is neither. One table look-up for the
                    // common miss instead of two; the same outcome as the general path below.
                    if self.table.get(&forward).is_some() && self.table.get(&reverse).is_none() {
                        if let Some(slot) = self.table.get_mut(&forward) {
                            slot.keep_client_frame(seen);
                        }
                    }
                    return;
                }
                if let Some(slot) = self.table.get_mut(&reverse) {
                    if let Some(kind) = Reply::classify(&seen.packet) {
                        let exact = t.flags.has(crate::wire::TcpFlags::ACK)
                            && t.ack == slot.isn().expected_ack();
                        let handshake_done = slot.handshake_done();
                        if kind == ReplyKind::Rst && !exact && handshake_done {
                            // The connection was accepted; this RST ends it, it does not answer the SYN.
                            self.stats.other_resets += 1;
                        } else {
                            Self::add_reply(&mut self.stats, slot, &reverse, *seen, kind, exact);
                        }
                    }
                    return;
                }
                if let Some(slot) = self.table.get_mut(&forward) {
                    slot.keep_client_frame(seen);
                    return;
                }
                let answers_a_syn = t.flags.is_syn_ack() || (t.flags.is_rst() && t.seq == 0);
                if !answers_a_syn {
                    if t.flags.is_rst() {
                        self.stats.other_resets += 1;
                    }
                    return;
                }
                match self.recent.get(&reverse) {
                    Some(isn) if t.ack == isn.wrapping_add(1) => self.stats.late_replies += 1,
                    _ => self.stats.stray_tcp += 1,
                }
            }
            Transport::IcmpError(e) => {
                let Some(q) = e.quote else { return };
                let Some(qt) = q.tcp else { return };
                let key = FlowKey {
                    client: q.src,
                    server: q.dst,
                    client_port: Port(qt.src_port),
                    server_port: Port(qt.dst_port),
                };
                let Some(kind) = Reply::classify(&seen.packet) else {
                    return;
                };
                if let Some(slot) = self.table.get_mut(&key) {
                    let exact = qt.seq == slot.isn().0;
                    Self::add_reply(&mut self.stats, slot, &key, *seen, kind, exact);
                } else if self.recent.get(&key) == Some(qt.seq) {
                    self.stats.late_replies += 1;
                } else if qt.flags.is_none_or(|f| f.is_syn_only()) {
                    self.rebuild_from_quote(key, &q, seen, kind);
                } else {
                    self.stats.stray_icmp += 1;
                }
            }
            _ => {}
        }
    }

    /// Close every attempt still in flight (end of the capture or of the run).
    pub fn finish(&mut self, now: Timestamp) {
        let mut closed = VecDeque::new();
        while let Some(a) = self.finish_next_closed(now) {
            closed.push_back(a);
        }
        self.closed = closed;
    }

    /// [`Matcher::finish`] one attempt at a time: the next attempt closed (first those already closed, then each
    /// still in flight, in the same order as `finish`), or `None` when none is left. A caller that judges and
    /// hands out each attempt before taking the next never holds them all at once.
    pub fn finish_next(&mut self, now: Timestamp) -> Option<Attempt> {
        self.finish_next_closed(now)
            .map(ClosedAttempt::into_attempt)
    }

    /// [`Matcher::finish_next`], with the attempt still in its compact form.
    pub(crate) fn finish_next_closed(&mut self, now: Timestamp) -> Option<ClosedAttempt> {
        let timeout = self.config.timeout;
        loop {
            if let Some(a) = self.closed.pop_front() {
                return Some(a);
            }
            if let Some((deadline, key)) = self.expiry.pop() {
                // The reply window may have passed even if the wait for more retransmissions had not.
                let closure = match self.table.get(&key) {
                    Some(slot) if slot.last_syn.plus(timeout) < now => Closure::TimedOut,
                    _ => Closure::EndOfInput,
                };
                self.close_if_due(key, deadline, closure, deadline.min(now));
                continue;
            }
            // Anything left has no queue entry (cannot happen, but never lose an attempt).
            let Some(key) = self.table.any_key() else {
                // Everything has closed: give the memory of the table back.
                self.table.shrink_to_fit();
                self.expiry.shrink_to_fit();
                return None;
            };
            if let Some(slot) = self.table.remove(&key) {
                self.push_closed(key, slot, Closure::EndOfInput, now);
            }
        }
    }

    /// Take the next closed attempt, in the order they closed.
    pub fn pop_closed(&mut self) -> Option<Attempt> {
        self.closed.pop_front().map(ClosedAttempt::into_attempt)
    }

    /// [`Matcher::pop_closed`], with the attempt still in its compact form: the replay's judging thread
    /// unpacks it, so that the matching thread does not spend its time there (and hands the slot's overflow
    /// boxes back to be freed here, see [`Spent`]).
    pub(crate) fn pop_closed_compact(&mut self) -> Option<ClosedAttempt> {
        self.closed.pop_front()
    }

    fn on_syn(&mut self, key: FlowKey, seen: &Observed) {
        let Transport::Tcp(t) = &seen.packet.transport else {
            return;
        };
        self.stats.syns += 1;
        let reply_window = seen.ts.plus(self.config.timeout);
        let follow = self.config.follow_retransmissions;
        let allowance = |gap: Option<Duration>| {
            if !follow {
                return Duration(0);
            }
            match gap {
                Some(g) => Duration(
                    (g.0.max(0).saturating_mul(2).saturating_add(1_000_000_000))
                        .min(64_000_000_000),
                ),
                None => Duration::from_millis(1000),
            }
        };
        let mut superseded_deadline = None;
        if let Some(slot) = self.table.get_mut(&key) {
            if slot.isn().0 == t.seq {
                // The first SYN of an attempt rebuilt from an ICMP quote (captured after the error, as when two
                // capture points are merged) is no retransmission.
                if slot.syn_count > 0 {
                    self.stats.retransmissions += 1;
                }
                let gap = seen.ts.since(slot.last_syn);
                let deadline = if slot.no_replies() {
                    reply_window.plus(allowance(Some(gap)))
                } else {
                    reply_window
                };
                slot.syn_count += 1;
                slot.last_syn = seen.ts;
                slot.keep_syn(&key, seen);
                // A new queue entry only when the deadline moves: the entry already queued serves an unchanged
                // one, so a burst of retransmissions within one instant does not grow the queue.
                if deadline > slot.deadline {
                    slot.deadline = deadline;
                    self.expiry.push(deadline, key, seen.ts);
                }
                return;
            }
            // The same four-tuple with a new ISN: the old attempt is over.
            if let Some(old) = self.table.remove(&key) {
                superseded_deadline = Some(old.deadline);
                self.push_closed(key, old, Closure::Superseded, seen.ts);
            }
        }
        let deadline = reply_window.plus(allowance(None));
        self.make_room(seen.ts);
        let ip = &seen.packet.ip;
        let probe = Probe {
            key,
            isn: Isn(t.seq),
            ttl: Ttl(ip.ttl),
            tos: ip.tos,
            flow_label: ip.flow_label,
            flags: t.flags,
            options: t.options,
            ts: seen.ts,
        };
        self.table.insert(key, Slot::opened(&probe, seen, deadline));
        // The superseded attempt's entry for this four-tuple is still queued; with the same deadline it serves
        // the new attempt too (many new ISNs within one instant do not grow the queue).
        if superseded_deadline != Some(deadline) {
            self.expiry.push(deadline, key, seen.ts);
        }
        self.stats.attempts += 1;
        self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.table.len() as u64);
    }

    /// An ICMP error quotes a SYN that was never captured: the attempt is rebuilt from the quote, with no SYN
    /// frame of its own.
    fn rebuild_from_quote(
        &mut self,
        key: FlowKey,
        q: &crate::wire::Quote,
        seen: &Observed,
        kind: ReplyKind,
    ) {
        let Some(qt) = q.tcp else { return };
        // Rebuilt attempts count against the cap like any other: a flood of ICMP errors quoting distinct SYNs
        // must not grow the table past it.
        self.make_room(seen.ts);
        self.stats.rebuilt_from_icmp += 1;
        self.stats.attempts += 1;
        let deadline = seen.ts.plus(self.config.timeout);
        let probe = Probe {
            key,
            isn: Isn(qt.seq),
            ttl: Ttl(q.ttl),
            tos: q.tos,
            flow_label: None,
            flags: qt
                .flags
                .unwrap_or(crate::wire::TcpFlags(crate::wire::TcpFlags::SYN)),
            options: crate::wire::TcpOptions::default(),
            ts: seen.ts,
        };
        let mut slot = Slot::rebuilt(&probe, seen.ts, deadline);
        Self::add_reply(&mut self.stats, &mut slot, &key, *seen, kind, true);
        self.table.insert(key, slot);
        self.expiry.push(deadline, key, seen.ts);
        self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.table.len() as u64);
    }

    /// Evict the attempts due to close first until there is room for one more under
    /// [`MatchConfig::max_in_flight`].
    fn make_room(&mut self, now: Timestamp) {
        while self.table.len() >= self.config.max_in_flight {
            let Some((old_deadline, old_key)) = self.expiry.pop() else {
                break;
            };
            if self.close_if_due(old_key, old_deadline, Closure::Evicted, now) {
                self.stats.evicted += 1;
            }
        }
    }

    fn add_reply(
        stats: &mut MatchStats,
        slot: &mut Slot,
        key: &FlowKey,
        seen: Observed,
        kind: ReplyKind,
        exact: bool,
    ) {
        stats.replies += 1;
        if !exact {
            stats.inexact_replies += 1;
        }
        slot.add_reply(key, Reply { seen, kind, exact });
    }

    /// Close the attempt at `key` if the queue entry (with `deadline`) is still its current one.
    fn close_if_due(
        &mut self,
        key: FlowKey,
        deadline: Timestamp,
        closure: Closure,
        at: Timestamp,
    ) -> bool {
        match self.table.remove_if(&key, |slot| slot.deadline == deadline) {
            Some(slot) => {
                self.push_closed(key, slot, closure, at);
                true
            }
            None => false,
        }
    }

    fn push_closed(&mut self, key: FlowKey, slot: Slot, closure: Closure, at: Timestamp) {
        self.recent.insert(&key, slot.isn().0, at);
        self.closed.push_back(ClosedAttempt {
            key,
            slot,
            closure,
            at,
        });
    }
}

/// A closed attempt still in the compact form it had in flight; [`ClosedAttempt::into_attempt`] unpacks it.
pub(crate) struct ClosedAttempt {
    key: FlowKey,
    slot: Slot,
    closure: Closure,
    at: Timestamp,
}

impl ClosedAttempt {
    /// What the analyzer learns from the attempt, read from the compact form when it holds it (nearly always:
    /// `None` when more than one reply was kept, or one that is not a SYN-ACK or RST).
    pub(crate) fn lesson(&self) -> Option<Lesson> {
        self.slot.lesson()
    }

    /// The server port.
    pub(crate) fn server_port(&self) -> u16 {
        self.key.server_port.0
    }

    /// The server it was sent to.
    pub(crate) fn server(&self) -> std::net::IpAddr {
        self.key.server
    }

    /// When it closed.
    pub(crate) fn closed_at(&self) -> Timestamp {
        self.at
    }

    /// The attempt with its packets.
    pub(crate) fn into_attempt(self) -> Attempt {
        self.slot.into_attempt(self.key, self.closure, self.at)
    }

    /// The attempt with its packets, and the slot's overflow boxes to be dropped on the matcher's thread (see
    /// [`Spent`]).
    pub(crate) fn unpack(self) -> (Attempt, Option<slot::Spent>) {
        self.slot.unpack(self.key, self.closure, self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{icmp_error, IpSpec, QuoteLen, TcpSpec};
    use crate::capture::LinkType;
    use crate::wire::parse_frame;

    const CLIENT: &str = "198.18.0.2";
    const SERVER: &str = "198.18.2.2";

    struct Feed {
        m: Matcher,
        frame: u64,
    }

    impl Feed {
        fn new(config: MatchConfig) -> Self {
            Feed {
                m: Matcher::new(config),
                frame: 0,
            }
        }
        fn push(&mut self, ms: i64, bytes: &[u8]) {
            self.frame += 1;
            let ts = Timestamp(ms * 1_000_000);
            let packet = parse_frame(LinkType::RAW, bytes).expect("test frame parses");
            self.m.advance(ts);
            self.m.observe(&Observed {
                frame: self.frame,
                ts,
                len: bytes.len() as u32,
                packet,
            });
        }
        fn closed(&mut self) -> Vec<Attempt> {
            std::iter::from_fn(|| self.m.pop_closed()).collect()
        }
    }

    fn ip() -> IpSpec {
        IpSpec::new(CLIENT.parse().expect("addr"), SERVER.parse().expect("addr"))
    }
    /// A feed holding a SYN to port 80 (ISN 1) at 0 ms and its SYN-ACK (ISN 50) at 1 ms.
    fn answered_syn() -> Feed {
        let mut f = Feed::new(MatchConfig::default());
        let (s, b) = syn(80, 1);
        f.push(0, &b);
        let syn_ack = TcpSpec::syn_ack_to(&s, 50).emit(&ip().reversed());
        f.push(1, &syn_ack.expect("build"));
        f
    }
    fn syn(port: u16, isn: u32) -> (TcpSpec, Vec<u8>) {
        let s = TcpSpec::syn(40000, port, isn);
        let b = s.emit(&ip()).expect("build");
        (s, b)
    }

    /// Unpacking hands back the overflow boxes of an attempt that has them (here: retransmissions and a later
    /// client frame) and none for one that fits the compact slot, and the attempt is the one `into_attempt`
    /// gives; an analyzer keeps them only when asked to.
    #[test]
    fn unpack_hands_back_the_overflow_boxes() {
        let closed = |retransmit: bool| {
            let mut f = Feed::new(MatchConfig::default());
            let (_, b) = syn(80, 1);
            f.push(0, &b);
            if retransmit {
                f.push(1000, &b);
                f.push(3000, &b);
            }
            f.m.finish_next_closed(Timestamp(10_000_000_000))
                .expect("one attempt")
        };
        let (lone, spent) = closed(false).unpack();
        assert!(spent.is_none());
        assert_eq!(lone, closed(false).into_attempt());
        let (retried, spent) = closed(true).unpack();
        assert!(spent.is_some());
        assert_eq!(retried.syns.len(), 3);
        assert_eq!(retried, closed(true).into_attempt());

        for keep in [false, true] {
            let mut analyzer = crate::analysis::Analyzer::new(Default::default());
            if keep {
                analyzer.keep_spent();
            }
            analyzer.push_closed(closed(true));
            analyzer.push_closed(closed(false));
            analyzer.finish();
            let mut spent = Vec::new();
            analyzer.take_spent(&mut spent);
            assert_eq!(spent.len(), usize::from(keep));
            let (a, _) = analyzer.pop().expect("judged");
            assert_eq!(a, retried);
        }
    }

    #[test]
    fn retransmissions_with_same_isn_are_one_attempt() {
        let mut f = Feed::new(MatchConfig::default());
        let (s, b) = syn(80, 10);
        f.push(0, &b);
        f.push(1000, &b);
        f.push(3000, &b);
        f.push(
            3010,
            &TcpSpec::syn_ack_to(&s, 99)
                .emit(&ip().reversed())
                .expect("build"),
        );
        f.m.finish(Timestamp(10_000_000_000));
        let closed = f.closed();
        assert_eq!(closed.len(), 1);
        let a = &closed[0];
        assert_eq!(
            (a.syn_count, a.retransmissions(), a.replies.len()),
            (3, 2, 1)
        );
        assert_eq!(a.decisive_reply().map(|r| r.kind), Some(ReplyKind::SynAck));
        assert_eq!(f.m.stats().retransmissions, 2);
        assert_eq!(f.m.stats().attempts, 1);
    }

    #[test]
    fn windows_backoff_of_three_then_six_seconds_stays_one_attempt() {
        let mut f = Feed::new(MatchConfig::default());
        let (_, b) = syn(80, 10);
        f.push(0, &b);
        f.push(3015, &b);
        f.push(9030, &b);
        f.push(60_000, &syn(81, 11).1);
        let closed = f.closed();
        assert_eq!(closed.len(), 1, "closed by the later frame's time");
        assert_eq!(closed[0].syn_count, 3);
        assert_eq!(closed[0].closure, Closure::TimedOut);
    }

    #[test]
    fn without_following_retransmissions_the_plain_timeout_splits() {
        let mut f = Feed::new(MatchConfig {
            follow_retransmissions: false,
            ..MatchConfig::default()
        });
        let (_, b) = syn(80, 10);
        f.push(0, &b);
        f.push(3015, &b);
        assert_eq!(f.closed().len(), 1);
        assert_eq!(f.m.in_flight(), 1);
    }

    #[test]
    fn rst_with_wrong_ack_is_kept_as_inexact() {
        let mut f = Feed::new(MatchConfig::default());
        let (s, b) = syn(81, 1000);
        f.push(0, &b);
        f.push(
            5,
            &TcpSpec::rst_to(&s)
                .ack(77)
                .emit(&ip().reversed())
                .expect("build"),
        );
        f.m.finish(Timestamp(1));
        let a = f.closed().remove(0);
        assert_eq!(a.replies.len(), 1);
        assert!(!a.replies[0].exact);
        assert_eq!(f.m.stats().inexact_replies, 1);
    }

    #[test]
    fn icmp_matches_on_quoted_tuple_and_sequence_even_with_eight_bytes() {
        let mut f = Feed::new(MatchConfig::default());
        let (_, b) = syn(443, 0xabcdef);
        f.push(0, &b);
        let router = IpSpec::new(
            "198.18.1.1".parse().expect("addr"),
            CLIENT.parse().expect("addr"),
        );
        f.push(
            2,
            &icmp_error(&router, 3, 13, &b, QuoteLen::Minimal).expect("build"),
        );
        f.m.finish(Timestamp(0));
        let a = f.closed().remove(0);
        assert_eq!(
            a.replies[0].kind,
            ReplyKind::Unreachable(crate::wire::Unreachable::AdminProhibited)
        );
        assert!(a.replies[0].exact);
    }

    #[test]
    fn strays_are_counted_and_replies_before_their_syn_do_not_match() {
        let mut f = Feed::new(MatchConfig::default());
        let (s, b) = syn(80, 5);
        // Reordered: the SYN-ACK is captured before the SYN (two capture points merged): a stray.
        f.push(
            0,
            &TcpSpec::syn_ack_to(&s, 1)
                .emit(&ip().reversed())
                .expect("build"),
        );
        f.push(1, &b);
        let other = TcpSpec::syn(40001, 22, 9);
        f.push(
            2,
            &TcpSpec::rst_to(&other)
                .emit(&ip().reversed())
                .expect("build"),
        );
        let router = IpSpec::new(
            "198.18.1.1".parse().expect("addr"),
            CLIENT.parse().expect("addr"),
        );
        // An ICMP error quoting a data segment (not a SYN) of no attempt: a stray.
        let data = TcpSpec::syn(40002, 22, 9)
            .flags(TcpFlags::ACK | TcpFlags::PSH)
            .payload(10);
        let quoted = data.emit(&ip()).expect("build");
        f.push(
            3,
            &icmp_error(&router, 3, 3, &quoted, QuoteLen::Full).expect("build"),
        );
        // A reset of an established connection (sequence number not 0): neither reply nor stray.
        let mut mid = TcpSpec::rst_to(&other);
        mid.seq = 12345;
        f.push(5, &mid.emit(&ip().reversed()).expect("build"));
        f.m.finish(Timestamp(10));
        assert_eq!(f.m.stats().stray_tcp, 2);
        assert_eq!(f.m.stats().stray_icmp, 1);
        assert_eq!(f.m.stats().other_resets, 1);
        let a = f.closed().remove(0);
        assert!(a.replies.is_empty());
        assert_eq!(a.closure, Closure::EndOfInput);
    }

    #[test]
    fn an_icmp_error_quoting_an_uncaptured_syn_rebuilds_its_attempt() {
        let mut f = Feed::new(MatchConfig::default());
        let (_, b) = syn(443, 4242);
        let me = IpSpec::new(CLIENT.parse().expect("addr"), CLIENT.parse().expect("addr"));
        let icmp = icmp_error(&me, 3, 3, &b, QuoteLen::Full).expect("build");
        f.push(0, &icmp);
        f.push(1, &icmp);
        f.m.finish(Timestamp(10_000_000));
        let a = f.closed().remove(0);
        assert_eq!((a.syn_count, a.reply_count, a.probe.isn), (0, 2, Isn(4242)));
        assert_eq!(a.probe.key.server_port, Port(443));
        assert_eq!(f.m.stats().rebuilt_from_icmp, 1);
        assert_eq!(f.m.stats().stray_icmp, 0);
    }

    #[test]
    fn late_duplicates_of_a_closed_attempt_are_late_replies_not_strays() {
        let mut f = Feed::new(MatchConfig::default());
        let (s, b) = syn(80, 10);
        let synack = TcpSpec::syn_ack_to(&s, 99)
            .emit(&ip().reversed())
            .expect("build");
        f.push(0, &b);
        f.push(10, &synack);
        f.push(10_000, &synack);
        f.push(200_000, &synack);
        assert_eq!(f.m.stats().late_replies, 1);
        assert_eq!(
            f.m.stats().stray_tcp,
            1,
            "past the 60 s horizon it is a stray"
        );
    }

    #[test]
    fn a_reused_four_tuple_is_remembered_for_its_latest_attempt() {
        let mut f = Feed::new(MatchConfig::default());
        let (first, b1) = syn(80, 10);
        let (second, b2) = syn(80, 20);
        let synack = |s: &TcpSpec| {
            TcpSpec::syn_ack_to(s, 99)
                .emit(&ip().reversed())
                .expect("build")
        };
        f.push(0, &b1);
        f.push(10, &synack(&first));
        // The same four-tuple again, 30 s later, with a new ISN (closed about 34 s in).
        f.push(30_000, &b2);
        f.push(30_010, &synack(&second));
        // Another attempt moves time on: the second closes, while the first is still remembered.
        f.push(40_000, &syn(81, 30).1);
        // 65 s: the first closure has left the 60 s memory, the second has not.
        f.push(65_000, &synack(&second));
        f.push(65_001, &synack(&first));
        assert_eq!(f.m.stats().late_replies, 1, "{:?}", f.m.stats());
        assert_eq!(f.m.stats().stray_tcp, 1, "{:?}", f.m.stats());
    }

    #[test]
    fn a_long_backoff_does_not_hold_back_the_attempts_behind_it() {
        // One client retries a silent port with Linux's backoff (1, 2, 4, 8, 16 s), each retry pushing its
        // attempt's deadline out, while ten answered attempts a second go to other ports.
        let mut f = Feed::new(MatchConfig::default());
        let (_, silent) = syn(9, 7);
        let retries = [0, 1_000, 3_000, 7_000, 15_000, 31_000];
        let mut most = 0;
        for i in 0..400u16 {
            let ms = i64::from(i) * 100;
            if retries.contains(&ms) {
                f.push(ms, &silent);
            }
            let (s, b) = syn(1000 + i, 100 + u32::from(i));
            f.push(ms, &b);
            let synack = TcpSpec::syn_ack_to(&s, 9).emit(&ip().reversed());
            f.push(ms + 1, &synack.expect("build"));
            most = most.max(f.m.in_flight());
        }
        // Each answered attempt waits 4 s after its SYN (3 s for replies, 1 s for a retransmission): about 40
        // are in flight at once, plus the silent one. In push order, attempts queued behind the silent one's
        // later deadlines stayed until those passed (201 at once here).
        assert!(most <= 42, "{most} attempts in flight at once");
        assert_eq!(f.m.stats().evicted, 0);
    }

    #[test]
    fn expiry_closes_silent_attempts_and_frees_the_table() {
        let mut f = Feed::new(MatchConfig::default());
        for i in 0..100u16 {
            f.push(i64::from(i), &syn(1000 + i, u32::from(i)).1);
        }
        assert_eq!(f.m.in_flight(), 100);
        f.m.advance(Timestamp(
            3_000_000_000 + 1000 * 1_000_000 + 100 * 1_000_000,
        ));
        assert_eq!(f.m.in_flight(), 0);
        let closed = f.closed();
        assert_eq!(closed.len(), 100);
        assert!(closed
            .iter()
            .all(|a| a.replies.is_empty() && a.closure == Closure::TimedOut));
        // Closed in the order they were opened.
        assert!(closed.windows(2).all(|w| w[0].probe.ts <= w[1].probe.ts));
    }

    #[test]
    fn bursts_within_one_instant_do_not_grow_the_expiry_queue() {
        let mut f = Feed::new(MatchConfig::default());
        let (_, b) = syn(80, 10);
        for _ in 0..1000 {
            f.push(0, &b);
        }
        assert_eq!(f.m.stats().retransmissions, 999);
        assert_eq!(
            f.m.expiry.len(),
            1,
            "retransmissions that do not move the deadline add no entry"
        );
        for isn in 0..1000u32 {
            f.push(5, &syn(81, isn).1);
        }
        assert_eq!(f.m.stats().attempts, 1001);
        assert_eq!(
            f.m.expiry.len(),
            2,
            "new ISNs on one four-tuple in one instant share one entry"
        );
        f.m.finish(Timestamp(60_000_000_000));
        assert_eq!(
            f.closed().len(),
            1001,
            "every attempt is still closed exactly once"
        );
    }

    #[test]
    fn the_cap_evicts_the_oldest_and_counts_it() {
        let mut f = Feed::new(MatchConfig {
            max_in_flight: 10,
            ..MatchConfig::default()
        });
        for i in 0..25u16 {
            f.push(0, &syn(1000 + i, u32::from(i)).1);
        }
        assert_eq!(f.m.in_flight(), 10);
        assert_eq!(f.m.stats().evicted, 15);
        let closed = f.closed();
        assert_eq!(closed.len(), 15);
        assert!(closed.iter().all(|a| a.closure == Closure::Evicted));
        assert_eq!(closed[0].probe.key.server_port, Port(1000));
    }

    #[test]
    fn a_new_isn_on_the_same_tuple_supersedes_the_old_attempt() {
        let mut f = Feed::new(MatchConfig::default());
        f.push(0, &syn(80, 1).1);
        f.push(10, &syn(80, 2).1);
        let closed = f.closed();
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (closed[0].probe.isn, closed[0].closure),
            (Isn(1), Closure::Superseded)
        );
        assert_eq!(f.m.stats().attempts, 2);
    }

    #[test]
    fn the_clients_own_rst_after_a_syn_ack_is_kept_as_ours() {
        let mut f = answered_syn();
        let ours = TcpSpec::syn(40000, 80, 2).flags(TcpFlags::RST);
        f.push(2, &ours.emit(&ip()).expect("build"));
        f.m.finish(Timestamp(3));
        let a = f.closed().remove(0);
        assert_eq!(a.client_frames.len(), 1);
        assert_eq!(f.m.stats().stray_tcp, 0);
    }

    /// Data and ACKs (neither a reply nor an answer to a SYN) take a shorter path: kept as the client's frames of
    /// an attempt in flight, ignored otherwise, and kept by neither attempt when both directions of the
    /// four-tuple have one (a simultaneous open).
    #[test]
    fn data_and_acks_are_client_frames_only_of_an_attempt_in_flight() {
        let mut f = answered_syn();
        let ack = TcpSpec::syn(40000, 80, 2).flags(TcpFlags::ACK).ack(51);
        f.push(2, &ack.emit(&ip()).expect("build"));
        let data = TcpSpec::syn(40000, 80, 2)
            .flags(TcpFlags::ACK | TcpFlags::PSH)
            .payload(100);
        f.push(3, &data.emit(&ip()).expect("build"));
        // The server's data is no client frame of this attempt, and nothing else is in flight.
        let back = TcpSpec::syn(80, 40000, 51).flags(TcpFlags::ACK).payload(10);
        f.push(4, &back.emit(&ip().reversed()).expect("build"));
        let stray = TcpSpec::syn(40001, 80, 9).flags(TcpFlags::ACK).payload(10);
        f.push(5, &stray.emit(&ip()).expect("build"));
        f.m.finish(Timestamp(6_000_000));
        let a = f.closed().remove(0);
        assert_eq!(a.client_frames.len(), 2);
        assert_eq!(a.replies.len(), 1);
        let st = f.m.stats();
        assert_eq!((st.stray_tcp, st.other_resets, st.replies), (0, 0, 1));

        // A SYN each way on the same ports: an ACK between them belongs to neither attempt.
        let mut f = Feed::new(MatchConfig::default());
        f.push(0, &syn(80, 1).1);
        let crossing = TcpSpec::syn(80, 40000, 7);
        f.push(1, &crossing.emit(&ip().reversed()).expect("build"));
        f.push(2, &ack.emit(&ip()).expect("build"));
        f.m.finish(Timestamp(6_000_000));
        let closed = f.closed();
        assert_eq!(closed.len(), 2);
        assert!(closed.iter().all(|a| a.client_frames.is_empty()));
    }
}
