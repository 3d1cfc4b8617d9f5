//! An attempt in flight, stored compactly.
//!
//! A replay holds every attempt whose reply window is still open: tens of thousands at a busy capture point.
//! Held as an [`Attempt`], each would take about 1.3 KiB (the attempt, then a vector for its SYNs, one for its
//! replies, one for the client's later frames, each rounded up to room for four). A [`Slot`] keeps the same
//! information in under 200 bytes: the probe without its four-tuple (the table holds that), what the first SYN
//! adds to the probe, the first TCP reply without what the four-tuple says (options of up to 20 bytes inline),
//! and everything rarer (retransmitted SYNs, as what differs from the first; ICMP replies, further replies, the
//! client's frames, longer options) in an allocation made only when needed.
//!
//! [`Slot::into_attempt`] gives back exactly the attempt the matcher would have built: a frame is only stored
//! compactly when rebuilding it gives the same frame again (checked on the way in); anything else is kept whole.

use super::flows::{FlowTable, KeepsKey, V4Key};
use super::{Lesson, LessonReply};
use super::{KEEP_CLIENT_FRAMES, KEEP_REPLIES, KEEP_SYNS};
use crate::model::{Attempt, Closure, FlowKey, Isn, Observed, Probe, Reply, ReplyKind, Ttl};
use crate::time::Timestamp;
use crate::wire::{IpMeta, Packet, TcpFlags, TcpMeta, TcpOptions, Transport};

/// TCP options of up to 20 bytes, inline: what SYNs and SYN-ACKs carry (Linux 20 bytes, Windows 12, a reset
/// none). Longer options are kept whole elsewhere.
#[derive(Debug, Clone, Copy)]
struct ShortOptions {
    len: u8,
    bytes: [u8; 20],
}

impl ShortOptions {
    fn of(o: &TcpOptions) -> Option<Self> {
        let raw = o.as_bytes();
        let mut bytes = [0; 20];
        bytes.get_mut(..raw.len())?.copy_from_slice(raw);
        Some(ShortOptions {
            len: raw.len() as u8,
            bytes,
        })
    }

    fn options(&self) -> TcpOptions {
        TcpOptions::from_bytes(&self.bytes[..usize::from(self.len).min(20)])
    }
}

/// The probe without its four-tuple.
#[derive(Debug, Clone, Copy)]
struct ProbeRest {
    ts: Timestamp,
    isn: Isn,
    flow_label: u32,
    flags: TcpFlags,
    ttl: Ttl,
    tos: u8,
    has_flow_label: bool,
    /// The options, when they fit; else they are in [`Rest::long_options`].
    options: Option<ShortOptions>,
}

impl ProbeRest {
    fn of(p: &Probe) -> Self {
        ProbeRest {
            ts: p.ts,
            isn: p.isn,
            flow_label: p.flow_label.unwrap_or(0),
            flags: p.flags,
            ttl: p.ttl,
            tos: p.tos,
            has_flow_label: p.flow_label.is_some(),
            options: ShortOptions::of(&p.options),
        }
    }

    fn probe(&self, key: FlowKey, long_options: Option<&TcpOptions>) -> Probe {
        Probe {
            key,
            isn: self.isn,
            ttl: self.ttl,
            tos: self.tos,
            flow_label: self.has_flow_label.then_some(self.flow_label),
            flags: self.flags,
            options: match self.options {
                Some(o) => o.options(),
                None => long_options.copied().unwrap_or_default(),
            },
            ts: self.ts,
        }
    }
}

/// What the first SYN adds to its probe and four-tuple.
#[derive(Debug, Clone, Copy)]
struct FirstSyn {
    frame: u64,
    ack: u32,
    len: u16,
    payload_len: u16,
    ident: u16,
    window: u16,
    df: bool,
}

impl FirstSyn {
    fn observed(&self, key: &FlowKey, p: &Probe) -> Observed {
        Observed {
            frame: self.frame,
            ts: p.ts,
            len: u32::from(self.len),
            packet: Packet {
                ip: IpMeta {
                    src: key.client,
                    dst: key.server,
                    ttl: p.ttl.0,
                    tos: p.tos,
                    ident: self.ident,
                    df: self.df,
                    flow_label: p.flow_label,
                },
                transport: Transport::Tcp(TcpMeta {
                    src_port: key.client_port.0,
                    dst_port: key.server_port.0,
                    seq: p.isn.0,
                    ack: self.ack,
                    flags: p.flags,
                    window: self.window,
                    options: p.options,
                    payload_len: u32::from(self.payload_len),
                }),
            },
        }
    }

    /// The compact form of `seen`, if rebuilding it gives `seen` again.
    fn of(p: &Probe, seen: &Observed) -> Option<Self> {
        let Transport::Tcp(t) = &seen.packet.transport else {
            return None;
        };
        let ip = &seen.packet.ip;
        let compact = FirstSyn {
            frame: seen.frame,
            ack: t.ack,
            len: u16::try_from(seen.len).ok()?,
            payload_len: u16::try_from(t.payload_len).ok()?,
            ident: ip.ident,
            window: t.window,
            df: ip.df,
        };
        (compact.observed(&p.key, p) == *seen).then_some(compact)
    }
}

/// A retransmitted SYN, as what differs from the first one: frame, time, IP ID and options (a Linux SYN's
/// timestamp option changes).
#[derive(Debug, Clone, Copy)]
struct RetxSyn {
    frame: u64,
    ts: Timestamp,
    ident: u16,
    options: ShortOptions,
}

impl RetxSyn {
    fn observed(&self, first: &Observed) -> Observed {
        let mut o = *first;
        o.frame = self.frame;
        o.ts = self.ts;
        o.packet.ip.ident = self.ident;
        if let Transport::Tcp(t) = &mut o.packet.transport {
            t.options = self.options.options();
        }
        o
    }

    fn of(first: &Observed, seen: &Observed) -> Option<Self> {
        let compact = RetxSyn {
            frame: seen.frame,
            ts: seen.ts,
            ident: seen.packet.ip.ident,
            options: ShortOptions::of(&seen.packet.tcp()?.options)?,
        };
        (compact.observed(first) == *seen).then_some(compact)
    }
}

/// An IPv6 flow label, or none (IPv4) as `u32::MAX` (a label is 20 bits; a value that is not is kept whole).
const NO_FLOW_LABEL: u32 = u32::MAX;

/// A SYN-ACK or RST on the reversed four-tuple, without what the four-tuple says.
#[derive(Debug, Clone, Copy)]
struct TcpReply {
    frame: u64,
    ts: Timestamp,
    /// The flow label, or [`NO_FLOW_LABEL`].
    flow_label: u32,
    seq: u32,
    ack: u32,
    len: u16,
    payload_len: u16,
    ident: u16,
    flags: TcpFlags,
    window: u16,
    ttl: u8,
    tos: u8,
    options: ShortOptions,
    df: bool,
    syn_ack: bool,
    exact: bool,
}

impl TcpReply {
    fn reply(&self, key: &FlowKey) -> Reply {
        Reply {
            seen: Observed {
                frame: self.frame,
                ts: self.ts,
                len: u32::from(self.len),
                packet: Packet {
                    ip: IpMeta {
                        src: key.server,
                        dst: key.client,
                        ttl: self.ttl,
                        tos: self.tos,
                        ident: self.ident,
                        df: self.df,
                        flow_label: (self.flow_label != NO_FLOW_LABEL).then_some(self.flow_label),
                    },
                    transport: Transport::Tcp(TcpMeta {
                        src_port: key.server_port.0,
                        dst_port: key.client_port.0,
                        seq: self.seq,
                        ack: self.ack,
                        flags: self.flags,
                        window: self.window,
                        options: self.options.options(),
                        payload_len: u32::from(self.payload_len),
                    }),
                },
            },
            kind: if self.syn_ack {
                ReplyKind::SynAck
            } else {
                ReplyKind::Rst
            },
            exact: self.exact,
        }
    }

    /// The compact form of `r`, if rebuilding it gives `r` again.
    fn of(key: &FlowKey, r: &Reply) -> Option<Self> {
        let Transport::Tcp(t) = &r.seen.packet.transport else {
            return None;
        };
        let ip = &r.seen.packet.ip;
        let compact = TcpReply {
            frame: r.seen.frame,
            ts: r.seen.ts,
            flow_label: ip.flow_label.unwrap_or(NO_FLOW_LABEL),
            seq: t.seq,
            ack: t.ack,
            len: u16::try_from(r.seen.len).ok()?,
            payload_len: u16::try_from(t.payload_len).ok()?,
            ident: ip.ident,
            flags: t.flags,
            window: t.window,
            ttl: ip.ttl,
            tos: ip.tos,
            options: ShortOptions::of(&t.options)?,
            df: ip.df,
            syn_ack: r.kind == ReplyKind::SynAck,
            exact: r.exact,
        };
        (compact.reply(key) == *r).then_some(compact)
    }
}

/// The frames a compact slot has no room for, allocated only when one comes. Nearly always that is only
/// retransmitted SYNs (an unanswered attempt's), so the rest is one more step away: 32 bytes for such an
/// attempt instead of 104.
#[derive(Debug, Default)]
struct Extra {
    /// SYNs after the first, compactly, for as long as each can be.
    retx: Vec<RetxSyn>,
    rest: Option<Box<Rest>>,
}

/// The rarer frames a compact slot has no room for.
#[derive(Debug, Default)]
struct Rest {
    /// The probe's options, when longer than [`ShortOptions`] holds.
    long_options: Option<Box<TcpOptions>>,
    /// SYNs kept whole, after the compact ones (every SYN of an attempt rebuilt from an ICMP quote).
    syns: Vec<Observed>,
    /// Replies after the compact first one (or all of them, when the first was not a SYN-ACK or RST).
    replies: Vec<Reply>,
    client_frames: Vec<Observed>,
}

/// Push without the doubling growth of `Vec::push`: these vectors stay short and many are alive at once.
fn push_exact<T>(v: &mut Vec<T>, item: T) {
    v.reserve_exact(1);
    v.push(item);
}

/// An attempt in flight.
#[derive(Debug)]
pub(super) struct Slot {
    /// SYNs sent in all (1 + retransmissions; 0 for an attempt rebuilt from an ICMP quote).
    pub(super) syn_count: u32,
    /// Replies matched in all.
    pub(super) reply_count: u32,
    /// When the last SYN was seen.
    pub(super) last_syn: Timestamp,
    /// When the reply window (and the wait for retransmissions) ends.
    pub(super) deadline: Timestamp,
    probe: ProbeRest,
    first_syn: Option<FirstSyn>,
    first_reply: Option<TcpReply>,
    extra: Option<Box<Extra>>,
    /// Whether an exact SYN-ACK is among the kept replies.
    handshake_done: bool,
    /// The packed four-tuple the in-flight table keeps it under (IPv4 only; set by the table).
    key: V4Key,
}

impl KeepsKey for Slot {
    fn kept_key(&self) -> V4Key {
        self.key
    }

    fn keep_key(&mut self, key: V4Key) {
        self.key = key;
    }
}

impl Slot {
    fn empty(probe: &Probe, last_syn: Timestamp, deadline: Timestamp) -> Self {
        let mut slot = Slot {
            syn_count: 0,
            reply_count: 0,
            last_syn,
            deadline,
            probe: ProbeRest::of(probe),
            first_syn: None,
            first_reply: None,
            extra: None,
            handshake_done: false,
            key: V4Key::default(),
        };
        if slot.probe.options.is_none() {
            slot.rest_mut().long_options = Some(Box::new(probe.options));
        }
        slot
    }

    /// An attempt opened by its first SYN, `seen`, from which `probe` was read.
    pub(super) fn opened(probe: &Probe, seen: &Observed, deadline: Timestamp) -> Self {
        let mut slot = Slot::empty(probe, seen.ts, deadline);
        slot.syn_count = 1;
        slot.first_syn = FirstSyn::of(probe, seen);
        if slot.first_syn.is_none() {
            push_exact(&mut slot.rest_mut().syns, *seen);
        }
        slot
    }

    /// An attempt rebuilt from the SYN an ICMP error quotes: no SYN frame of its own.
    pub(super) fn rebuilt(probe: &Probe, last_syn: Timestamp, deadline: Timestamp) -> Self {
        Slot::empty(probe, last_syn, deadline)
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    fn rest(&self) -> Option<&Rest> {
        self.extra.as_ref().and_then(|e| e.rest.as_deref())
    }

    fn rest_mut(&mut self) -> &mut Rest {
        self.extra_mut().rest.get_or_insert_with(Box::default)
    }

    fn probe(&self, key: FlowKey) -> Probe {
        let long = self.rest().and_then(|r| r.long_options.as_deref());
        self.probe.probe(key, long)
    }

    /// The attempt's ISN.
    pub(super) fn isn(&self) -> Isn {
        self.probe.isn
    }

    /// Whether no reply has been kept (none has come).
    pub(super) fn no_replies(&self) -> bool {
        self.first_reply.is_none() && self.rest().is_none_or(|r| r.replies.is_empty())
    }

    /// Whether an exact SYN-ACK has been kept: the connection was accepted.
    pub(super) fn handshake_done(&self) -> bool {
        self.handshake_done
    }

    /// Keep a retransmitted SYN (the first few) of the attempt at `key`.
    pub(super) fn keep_syn(&mut self, key: &FlowKey, seen: &Observed) {
        let kept = usize::from(self.first_syn.is_some())
            + self.extra.as_ref().map_or(0, |e| e.retx.len())
            + self.rest().map_or(0, |r| r.syns.len());
        if kept >= KEEP_SYNS {
            return;
        }
        // Compactly, relative to the first SYN, as long as no SYN has had to be kept whole.
        let compact = match self.first_syn {
            Some(f) if self.rest().is_none_or(|r| r.syns.is_empty()) => {
                let probe = self.probe(*key);
                RetxSyn::of(&f.observed(key, &probe), seen)
            }
            _ => None,
        };
        match compact {
            Some(r) => push_exact(&mut self.extra_mut().retx, r),
            None => push_exact(&mut self.rest_mut().syns, *seen),
        }
    }

    /// Count a reply, and keep it if fewer than [`KEEP_REPLIES`] are kept.
    pub(super) fn add_reply(&mut self, key: &FlowKey, reply: Reply) {
        self.reply_count += 1;
        let kept =
            usize::from(self.first_reply.is_some()) + self.rest().map_or(0, |r| r.replies.len());
        if kept >= KEEP_REPLIES {
            return;
        }
        if reply.exact && reply.kind == ReplyKind::SynAck {
            self.handshake_done = true;
        }
        if kept == 0 {
            if let Some(compact) = TcpReply::of(key, &reply) {
                self.first_reply = Some(compact);
                return;
            }
        }
        push_exact(&mut self.rest_mut().replies, reply);
    }

    /// Keep a later frame from the client (the first few).
    pub(super) fn keep_client_frame(&mut self, seen: &Observed) {
        let kept = self.rest().map_or(0, |r| r.client_frames.len());
        if kept < KEEP_CLIENT_FRAMES {
            push_exact(&mut self.rest_mut().client_frames, *seen);
        }
    }

    /// What the analyzer learns from the attempt ([`Lesson::of`] the unpacked attempt), read without
    /// unpacking it: `None` when that would take more than the compact first reply (a reply beyond it, or one
    /// not kept compactly).
    pub(super) fn lesson(&self) -> Option<Lesson> {
        if self.rest().is_some_and(|r| !r.replies.is_empty()) {
            return None;
        }
        let Some(r) = &self.first_reply else {
            return Some(Lesson {
                reply: None,
                syn_tos: self.probe.tos,
            });
        };
        // One reply, a SYN-ACK or an RST (exact or not): it is the decisive one whatever it says, and it came
        // from the server (the reversed four-tuple).
        Some(Lesson {
            reply: Some(LessonReply {
                kind: if r.syn_ack {
                    ReplyKind::SynAck
                } else {
                    ReplyKind::Rst
                },
                exact: r.exact,
                from_server: true,
                ttl: r.ttl,
                tos: r.tos,
                flow_label: (r.flow_label != NO_FLOW_LABEL).then_some(r.flow_label),
                route_error_from: None,
                linux_layout: r.syn_ack
                    && super::linux_option_layout(r.options.options().as_bytes()),
            }),
            syn_tos: self.probe.tos,
        })
    }

    /// The attempt as [`Attempt`], closed `closure` at `closed_at`.
    pub(super) fn into_attempt(
        self,
        key: FlowKey,
        closure: Closure,
        closed_at: Timestamp,
    ) -> Attempt {
        self.unpack(key, closure, closed_at).0
    }

    /// [`Slot::into_attempt`], with the slot's overflow boxes handed back instead of freed: the attempt's
    /// frames are copied out of them. The replay's judging thread sends them back to the matching thread that
    /// allocated them, since freeing them on another thread made glibc's allocator contend for its locks (15% of
    /// the whole replay's time on the benchmark file).
    pub(super) fn unpack(
        self,
        key: FlowKey,
        closure: Closure,
        closed_at: Timestamp,
    ) -> (Attempt, Option<Spent>) {
        let probe = self.probe(key);
        let (retx, rest): (&[RetxSyn], Option<&Rest>) = match self.extra.as_deref() {
            Some(e) => (&e.retx, e.rest.as_deref()),
            None => (&[], None),
        };
        let (whole_syns, more_replies, client_frames) = match rest {
            Some(r) if !r.client_frames.is_empty() => {
                let mut frames: Vec<Observed> = crate::pool::take(Vec::new);
                frames.extend_from_slice(&r.client_frames);
                (&r.syns[..], &r.replies[..], frames)
            }
            Some(r) => (&r.syns[..], &r.replies[..], Vec::new()),
            None => (&[][..], &[][..], Vec::new()),
        };
        let first = self.first_syn.map(|s| s.observed(&key, &probe));
        let mut syns: Vec<Observed> = crate::pool::take(Vec::new);
        syns.reserve_exact(usize::from(first.is_some()) + retx.len() + whole_syns.len());
        if let Some(f) = first {
            syns.push(f);
            syns.extend(retx.iter().map(|r| r.observed(&f)));
        }
        syns.extend_from_slice(whole_syns);
        let mut replies: Vec<Reply> = crate::pool::take(Vec::new);
        replies.reserve_exact(usize::from(self.first_reply.is_some()) + more_replies.len());
        replies.extend(self.first_reply.map(|r| r.reply(&key)));
        replies.extend_from_slice(more_replies);
        let attempt = Attempt {
            probe,
            syn_count: self.syn_count,
            last_syn: self.last_syn,
            syns,
            replies,
            reply_count: self.reply_count,
            client_frames,
            closure,
            closed_at,
        };
        (attempt, self.extra.map(Spent))
    }
}

/// A closed attempt's overflow boxes, emptied of use (its frames were copied out): to be dropped on the thread
/// that allocated them.
#[derive(Debug)]
pub(crate) struct Spent(#[expect(dead_code, reason = "held only to be dropped")] Box<Extra>);

/// The attempts in flight by four-tuple, as `HashMap<FlowKey, Slot>`.
pub(super) type InFlight = FlowTable<Slot>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{icmp_error, IpSpec, QuoteLen, TcpSpec};
    use crate::capture::LinkType;
    use crate::model::Port;
    use crate::wire::parse_frame;

    fn seen(frame: u64, ms: i64, bytes: &[u8]) -> Observed {
        Observed {
            frame,
            ts: Timestamp(ms * 1_000_000),
            len: bytes.len() as u32 + 14,
            packet: parse_frame(LinkType::RAW, bytes).expect("test frame parses"),
        }
    }

    fn probe_of(key: FlowKey, s: &Observed) -> Probe {
        let t = s.packet.tcp().expect("tcp");
        Probe {
            key,
            isn: Isn(t.seq),
            ttl: Ttl(s.packet.ip.ttl),
            tos: s.packet.ip.tos,
            flow_label: s.packet.ip.flow_label,
            flags: t.flags,
            options: t.options,
            ts: s.ts,
        }
    }

    /// The attempt built the way the matcher built it before slots: vectors of whole frames.
    fn plain(probe: Probe, syns: &[Observed], replies: &[Reply], ours: &[Observed]) -> Attempt {
        Attempt {
            probe,
            syn_count: syns.len() as u32,
            last_syn: syns.last().map_or(probe.ts, |s| s.ts),
            syns: syns.iter().take(KEEP_SYNS).copied().collect(),
            replies: replies.iter().take(KEEP_REPLIES).copied().collect(),
            reply_count: replies.len() as u32,
            client_frames: ours.iter().take(KEEP_CLIENT_FRAMES).copied().collect(),
            closure: Closure::TimedOut,
            closed_at: Timestamp(9),
        }
    }

    fn round_trip(
        v6: bool,
        replies_of: impl Fn(&TcpSpec, &IpSpec, &[u8]) -> Vec<(Vec<u8>, ReplyKind, bool)>,
    ) {
        let (c, s) = if v6 {
            ("2001:db8::2", "2001:db8:9::9")
        } else {
            ("198.18.0.2", "198.18.9.9")
        };
        let ip = IpSpec::new(c.parse().expect("addr"), s.parse().expect("addr"))
            .ttl(63)
            .tos(0x48)
            .ident(777)
            .flow_label(0x1_2345);
        let syn = TcpSpec::syn(40000, 443, 0xdead_beef).linux_options();
        let syn_bytes = syn.emit(&ip).expect("build");
        let first = seen(3, 100, &syn_bytes);
        let key = FlowKey {
            client: ip.src,
            server: ip.dst,
            client_port: Port(40000),
            server_port: Port(443),
        };
        let probe = probe_of(key, &first);
        let retx: Vec<Observed> = (0..10)
            .map(|i| {
                seen(
                    10 + i,
                    1100 + i as i64 * 1000,
                    &syn.emit(&ip.ident(778 + i as u16)).expect("build"),
                )
            })
            .collect();
        let replies: Vec<Reply> = replies_of(&syn, &ip, &syn_bytes)
            .into_iter()
            .enumerate()
            .map(|(i, (b, kind, exact))| Reply {
                seen: seen(40 + i as u64, 120 + i as i64, &b),
                kind,
                exact,
            })
            .collect();
        let ours = [seen(
            90,
            130,
            &TcpSpec::syn(40000, 443, 1)
                .flags(TcpFlags::ACK)
                .emit(&ip)
                .expect("build"),
        )];
        let mut read_compactly = 0;
        for n_syns in [1, 2, 9] {
            for n_replies in 0..=replies.len() {
                let syns: Vec<Observed> = std::iter::once(first)
                    .chain(retx.iter().copied())
                    .take(n_syns)
                    .collect();
                let mut slot = Slot::opened(&probe, &first, Timestamp(5));
                for s in &syns[1..] {
                    slot.syn_count += 1;
                    slot.keep_syn(&key, s);
                }
                slot.last_syn = syns.last().expect("a syn").ts;
                for r in &replies[..n_replies] {
                    slot.add_reply(&key, *r);
                }
                for o in &ours {
                    slot.keep_client_frame(o);
                }
                let want = plain(probe, &syns, &replies[..n_replies], &ours);
                assert_eq!(
                    slot.handshake_done(),
                    want.replies
                        .iter()
                        .any(|r| r.exact && r.kind == ReplyKind::SynAck)
                );
                assert_eq!(slot.no_replies(), want.replies.is_empty());
                // What the analyzer learns from, read from the compact form, is what the unpacked attempt gives.
                if let Some(lesson) = slot.lesson() {
                    assert_eq!(lesson, Lesson::of(&want));
                    read_compactly += 1;
                }
                assert_eq!(
                    slot.into_attempt(key, Closure::TimedOut, Timestamp(9)),
                    want
                );
            }
        }
        // With no reply, or one SYN-ACK or RST first, for each count of SYNs.
        assert!(read_compactly >= 3, "{read_compactly}");
    }

    #[test]
    fn slots_give_back_exactly_the_attempt_v4_and_v6() {
        for v6 in [false, true] {
            round_trip(v6, |syn, ip, syn_bytes| {
                let back = ip.reversed().ttl(57).tos(0x48).flow_label(0x5_4321);
                let router = IpSpec::new(
                    if v6 { "2001:db8:1::1" } else { "198.18.1.1" }
                        .parse()
                        .expect("addr"),
                    ip.src,
                );
                let icmp = |t: u8, c: u8| {
                    icmp_error(&router, t, c, syn_bytes, QuoteLen::Full).expect("build")
                };
                let (ut, uc) = if v6 { (1, 1) } else { (3, 13) };
                let mut v = vec![
                    (
                        TcpSpec::syn_ack_to(syn, 7).emit(&back).expect("build"),
                        ReplyKind::SynAck,
                        true,
                    ),
                    (
                        TcpSpec::rst_to(syn).emit(&back).expect("build"),
                        ReplyKind::Rst,
                        true,
                    ),
                    (
                        TcpSpec::rst_to(syn).ack(5).emit(&back).expect("build"),
                        ReplyKind::Rst,
                        false,
                    ),
                ];
                let kind = crate::model::Reply::classify(
                    &parse_frame(LinkType::RAW, &icmp(ut, uc)).expect("parse"),
                )
                .expect("an icmp reply");
                v.push((icmp(ut, uc), kind, true));
                // More than are kept, the first being an ICMP error in some runs below.
                for _ in 0..14 {
                    v.push((
                        TcpSpec::syn_ack_to(syn, 8).emit(&back).expect("build"),
                        ReplyKind::SynAck,
                        true,
                    ));
                }
                v
            });
            // The first reply an ICMP error: kept whole, and the order of replies is kept.
            round_trip(v6, |syn, ip, syn_bytes| {
                let router = IpSpec::new(ip.dst, ip.src);
                let icmp = icmp_error(
                    &router,
                    if v6 { 1 } else { 3 },
                    4,
                    syn_bytes,
                    QuoteLen::Minimal,
                )
                .expect("build");
                let kind = crate::model::Reply::classify(
                    &parse_frame(LinkType::RAW, &icmp).expect("parse"),
                )
                .expect("an icmp reply");
                vec![
                    (icmp, kind, true),
                    (
                        TcpSpec::rst_to(syn).emit(&ip.reversed()).expect("build"),
                        ReplyKind::Rst,
                        true,
                    ),
                ]
            });
        }
    }

    #[test]
    fn long_options_and_odd_retransmissions_are_kept_whole_and_in_order() {
        let ip = IpSpec::new(
            "198.18.0.2".parse().expect("addr"),
            "198.18.9.9".parse().expect("addr"),
        );
        // 32 bytes of options: more than a compact slot holds inline.
        let long = TcpSpec::syn(40000, 443, 5).options(&[
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7, 30, 12, 0, 0x81, 1, 2,
            3, 4, 5, 6, 7, 8,
        ]);
        let short = TcpSpec::syn(40000, 443, 5).linux_options();
        let key = FlowKey {
            client: ip.src,
            server: ip.dst,
            client_port: Port(40000),
            server_port: Port(443),
        };
        for first_spec in [short, long] {
            let first = seen(1, 0, &first_spec.emit(&ip).expect("build"));
            let probe = probe_of(key, &first);
            // Same SYN; then another TTL (kept whole); then the same again (whole too, to keep the order).
            let later = [
                seen(2, 1000, &first_spec.emit(&ip.ident(1)).expect("build")),
                seen(3, 3000, &first_spec.emit(&ip.ttl(20)).expect("build")),
                seen(4, 7000, &first_spec.emit(&ip.ident(2)).expect("build")),
                seen(5, 9000, &long.emit(&ip.ident(3)).expect("build")),
            ];
            let mut slot = Slot::opened(&probe, &first, Timestamp(5));
            let mut all = vec![first];
            for s in &later {
                slot.syn_count += 1;
                slot.keep_syn(&key, s);
                all.push(*s);
            }
            slot.last_syn = later[3].ts;
            let a = slot.into_attempt(key, Closure::TimedOut, Timestamp(9));
            assert_eq!(a, plain(probe, &all, &[], &[]));
        }
    }

    #[test]
    fn values_a_compact_form_cannot_hold_are_kept_whole() {
        let ip = IpSpec::new(
            "2001:db8::2".parse().expect("addr"),
            "2001:db8::9".parse().expect("addr"),
        );
        let syn = TcpSpec::syn(40000, 443, 5);
        let first = seen(1, 0, &syn.emit(&ip).expect("build"));
        let key = FlowKey {
            client: ip.src,
            server: ip.dst,
            client_port: Port(40000),
            server_port: Port(443),
        };
        let probe = probe_of(key, &first);
        let mut reply = Reply {
            seen: seen(
                2,
                1,
                &TcpSpec::rst_to(&syn).emit(&ip.reversed()).expect("build"),
            ),
            kind: ReplyKind::Rst,
            exact: true,
        };
        reply.seen.packet.ip.flow_label = Some(NO_FLOW_LABEL);
        let mut big = reply;
        big.seen.len = 70_000;
        big.seen.frame = u64::MAX;
        for r in [reply, big] {
            let mut slot = Slot::opened(&probe, &first, Timestamp(5));
            slot.add_reply(&key, r);
            assert!(slot.first_reply.is_none(), "kept whole");
            let a = slot.into_attempt(key, Closure::TimedOut, Timestamp(9));
            assert_eq!(a, plain(probe, &[first], &[r], &[]));
        }
    }

    #[test]
    fn a_rebuilt_attempt_keeps_its_quoted_probe_and_later_syns() {
        let ip = IpSpec::new(
            "198.18.0.2".parse().expect("addr"),
            "198.18.9.9".parse().expect("addr"),
        );
        let syn = TcpSpec::syn(40000, 443, 99);
        let s = seen(7, 50, &syn.emit(&ip).expect("build"));
        let key = FlowKey {
            client: ip.src,
            server: ip.dst,
            client_port: Port(40000),
            server_port: Port(443),
        };
        let mut probe = probe_of(key, &s);
        probe.ttl = Ttl(3);
        let mut slot = Slot::rebuilt(&probe, Timestamp(1), Timestamp(2));
        assert!(slot.no_replies());
        slot.keep_syn(&key, &s);
        let a = slot.into_attempt(key, Closure::EndOfInput, Timestamp(3));
        assert_eq!((a.syn_count, a.syns.len(), a.probe), (0, 1, probe));
    }
}
