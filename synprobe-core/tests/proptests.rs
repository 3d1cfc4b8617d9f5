//! Property tests: build → parse round trips for SYNs, replies and ICMP errors (every header field survives), and
//! the matcher's invariants on random sequences of SYNs, retransmissions, replies and capture times.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use synprobe_core::analysis::AnalyzerConfig;
use synprobe_core::build::{ethernet, icmp_error, IpSpec, QuoteLen, TcpSpec};
use synprobe_core::matcher::MatchConfig;
use synprobe_core::wire::{IcmpErrorKind, TcpFlags, TcpOption, Transport, Unreachable};
use synprobe_core::{
    parse_frame, Closure, Duration, Engine, EngineConfig, LinkType, Packet, ReplyKind, Report,
    Timestamp,
};

// ---- TCP options: valid encodings, up to 40 bytes ----

/// One option, encoded, and what the parser must decode it as.
fn tcp_option() -> impl Strategy<Value = (Vec<u8>, TcpOption)> {
    prop_oneof![
        Just((vec![1], TcpOption::Nop)),
        any::<u16>().prop_map(|m| {
            let b = m.to_be_bytes();
            (vec![2, 4, b[0], b[1]], TcpOption::Mss(m))
        }),
        any::<u8>().prop_map(|w| (vec![3, 3, w], TcpOption::WindowScale(w))),
        Just((vec![4, 2], TcpOption::SackPermitted)),
        (1u8..=4, any::<[u8; 32]>()).prop_map(|(n, blocks)| {
            let mut o = vec![5, 2 + 8 * n];
            o.extend_from_slice(&blocks[..usize::from(8 * n)]);
            (o, TcpOption::Sack(n))
        }),
        (any::<u32>(), any::<u32>()).prop_map(|(v, e)| {
            let mut o = vec![8, 10];
            o.extend_from_slice(&v.to_be_bytes());
            o.extend_from_slice(&e.to_be_bytes());
            (o, TcpOption::Timestamps(v, e))
        }),
        // Kinds the parser does not decode (6, 7, 9..=255), with a body of 0 to 8 bytes.
        (6u8..=254, prop::collection::vec(any::<u8>(), 0..=8)).prop_map(|(kind, body)| {
            let kind = if kind == 8 { 255 } else { kind };
            let mut o = vec![kind, 2 + body.len() as u8];
            o.extend_from_slice(&body);
            (o, TcpOption::Unknown(kind))
        }),
    ]
}

/// Options that fit in 40 bytes, sometimes closed by End; with the decoded list the parser must give back (the
/// builder pads to a multiple of 4 with NOPs, which decode as NOPs unless End came first).
fn tcp_options() -> impl Strategy<Value = (Vec<u8>, Vec<TcpOption>)> {
    (prop::collection::vec(tcp_option(), 0..12), any::<bool>()).prop_map(|(opts, end)| {
        let (mut raw, mut decoded) = (Vec::new(), Vec::new());
        for (bytes, option) in opts {
            if raw.len() + bytes.len() <= 40 {
                raw.extend(bytes);
                decoded.push(option);
            }
        }
        if end && raw.len() < 40 {
            raw.push(0);
            decoded.push(TcpOption::End);
        }
        let padded = raw.len().next_multiple_of(4);
        if !end {
            decoded.extend(std::iter::repeat_n(TcpOption::Nop, padded - raw.len()));
        }
        raw.resize(padded, 1);
        (raw, decoded)
    })
}

// ---- IP headers ----

/// An IP header in either family with every field the parser reports drawn at random.
fn ip_spec() -> impl Strategy<Value = IpSpec> {
    (
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<bool>(),
        0u32..(1 << 20),
    )
        .prop_map(|(v6, s, d, ttl, tos, ident, df, flow)| {
            let (src, dst) = if v6 {
                (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)))
            } else {
                let four = |a: [u8; 16]| IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]));
                (four(s), four(d))
            };
            IpSpec::new(src, dst)
                .ttl(ttl)
                .tos(tos)
                .ident(ident)
                .df(df)
                .flow_label(flow)
        })
}

fn parse(ethernet_frame: bool, datagram: &[u8]) -> Packet {
    if ethernet_frame {
        parse_frame(LinkType::ETHERNET, &ethernet(datagram)).expect("a built frame parses")
    } else {
        parse_frame(LinkType::RAW, datagram).expect("a built datagram parses")
    }
}

fn assert_ip(p: &Packet, ip: &IpSpec) -> Result<(), TestCaseError> {
    prop_assert_eq!((p.ip.src, p.ip.dst), (ip.src, ip.dst));
    prop_assert_eq!((p.ip.ttl, p.ip.tos), (ip.ttl, ip.tos));
    if ip.src.is_ipv6() {
        prop_assert_eq!(p.ip.flow_label, Some(ip.flow_label));
        prop_assert_eq!((p.ip.ident, p.ip.df), (0, false));
    } else {
        prop_assert_eq!(p.ip.flow_label, None);
        prop_assert_eq!((p.ip.ident, p.ip.df), (ip.ident, ip.df));
    }
    Ok(())
}

proptest! {
    /// Any TCP segment (SYNs and replies alike: any flags, sequence and acknowledgment numbers, window, options,
    /// payload length) comes back field for field, over Ethernet or raw IP.
    #[test]
    fn tcp_segments_round_trip(
        ip in ip_spec(),
        ports in any::<(u16, u16)>(),
        seq: u32,
        ack: u32,
        flags in 0u16..0x200,
        window: u16,
        (options, decoded) in tcp_options(),
        payload in 0usize..64,
        over_ethernet: bool,
    ) {
        let spec = TcpSpec::syn(ports.0, ports.1, seq)
            .flags(flags)
            .ack(ack)
            .window(window)
            .options(&options)
            .payload(payload);
        let p = parse(over_ethernet, &spec.emit(&ip).expect("the builder takes any header"));
        assert_ip(&p, &ip)?;
        let t = p.tcp().expect("TCP");
        prop_assert_eq!((t.src_port, t.dst_port, t.seq, t.ack), (ports.0, ports.1, seq, ack));
        prop_assert_eq!((t.flags, t.window), (TcpFlags(flags), window));
        prop_assert_eq!(t.options.as_bytes(), &options[..]);
        prop_assert_eq!(t.options.iter().collect::<Vec<_>>(), decoded);
        prop_assert_eq!(t.payload_len as usize, payload);
    }

    /// The SYN-ACK and RST builders answer a SYN as a stack does, and the answer parses back as one.
    #[test]
    fn replies_to_a_syn_round_trip(
        ip in ip_spec(),
        ports in any::<(u16, u16)>(),
        isn: u32,
        server_isn: u32,
        (options, _) in tcp_options(),
        over_ethernet: bool,
    ) {
        let syn = TcpSpec::syn(ports.0, ports.1, isn).options(&options);
        let p = parse(over_ethernet, &syn.emit(&ip).expect("SYN"));
        assert_ip(&p, &ip)?;
        let t = p.tcp().expect("TCP");
        prop_assert!(t.flags.is_syn_only());
        prop_assert_eq!((t.seq, t.options.as_bytes()), (isn, &options[..]));

        let back = ip.reversed();
        let synack = parse(over_ethernet, &TcpSpec::syn_ack_to(&syn, server_isn).emit(&back).expect("SYN-ACK"));
        assert_ip(&synack, &back)?;
        let t = synack.tcp().expect("TCP");
        prop_assert!(t.flags.is_syn_ack());
        prop_assert_eq!((t.src_port, t.dst_port), (ports.1, ports.0));
        prop_assert_eq!((t.seq, t.ack), (server_isn, isn.wrapping_add(1)));

        let rst = parse(over_ethernet, &TcpSpec::rst_to(&syn).emit(&back).expect("RST"));
        let t = rst.tcp().expect("TCP");
        prop_assert!(t.flags.is_rst() && t.flags.has(TcpFlags::ACK));
        prop_assert_eq!((t.src_port, t.dst_port), (ports.1, ports.0));
        prop_assert_eq!((t.seq, t.ack, t.window), (0, isn.wrapping_add(1), 0));
    }

    /// An ICMP error quoting a SYN, with the whole SYN or only the 8 bytes every router must quote, gives back
    /// the quoted four-tuple, sequence number and TTL, and answers the SYN's attempt exactly.
    #[test]
    fn icmp_errors_quoting_a_syn_round_trip(
        ip in ip_spec(),
        router in any::<[u8; 16]>(),
        router_ttl: u8,
        ports in any::<(u16, u16)>(),
        isn: u32,
        (options, _) in tcp_options(),
        time_exceeded: bool,
        code: u8,
        full: bool,
    ) {
        let syn = TcpSpec::syn(ports.0, ports.1, isn).options(&options);
        let sent = syn.emit(&ip).expect("SYN");
        let v6 = ip.src.is_ipv6();
        let router = if v6 {
            IpAddr::V6(Ipv6Addr::from(router))
        } else {
            IpAddr::V4(Ipv4Addr::new(router[0], router[1], router[2], router[3]))
        };
        let from_router = IpSpec::new(router, ip.src).ttl(router_ttl);
        let icmp_type = match (v6, time_exceeded) {
            (false, false) => 3,
            (false, true) => 11,
            (true, false) => 1,
            (true, true) => 3,
        };
        let quote_len = if full { QuoteLen::Full } else { QuoteLen::Minimal };
        let error = icmp_error(&from_router, icmp_type, code, &sent, quote_len).expect("ICMP error");
        let p = parse_frame(LinkType::RAW, &error).expect("an ICMP error parses");
        prop_assert_eq!((p.ip.src, p.ip.dst, p.ip.ttl), (router, ip.src, router_ttl));
        let e = p.icmp_error().expect("an ICMP error");
        let kind = match (v6, time_exceeded) {
            (_, true) => IcmpErrorKind::TimeExceeded(code),
            (false, false) => IcmpErrorKind::DestinationUnreachable(Unreachable::from_v4(code)),
            (true, false) => IcmpErrorKind::DestinationUnreachable(Unreachable::from_v6(code)),
        };
        prop_assert_eq!((e.kind, e.icmp_type, e.code), (kind, icmp_type, code));
        let q = e.quote.expect("the quote parses");
        prop_assert_eq!((q.src, q.dst, q.ttl, q.tos, q.protocol), (ip.src, ip.dst, ip.ttl, ip.tos, 6));
        let qt = q.tcp.expect("the quoted TCP header");
        prop_assert_eq!((qt.src_port, qt.dst_port, qt.seq), (ports.0, ports.1, isn));
        if full {
            prop_assert_eq!(qt.flags, Some(TcpFlags(TcpFlags::SYN)));
            prop_assert_eq!(usize::from(q.transport_bytes), 20 + options.len());
        } else {
            prop_assert_eq!((qt.flags, q.transport_bytes), (None, 8));
        }

        let mut engine = Engine::new(EngineConfig::default()).expect("valid settings");
        engine.push_frame(LinkType::RAW, Timestamp(0), &sent, 0).expect("SYN");
        engine.push_frame(LinkType::RAW, Timestamp(1_000_000), &error, 0).expect("ICMP");
        engine.finish();
        let report = engine.pop_report().expect("one attempt");
        prop_assert!(engine.pop_report().is_none());
        prop_assert_eq!(report.attempt.replies.len(), 1);
        let reply = &report.attempt.replies[0];
        prop_assert!(reply.exact);
        let want = if time_exceeded { ReplyKind::TimeExceeded } else { ReplyKind::Unreachable(match kind {
            IcmpErrorKind::DestinationUnreachable(u) => u,
            _ => Unreachable::Unknown(code),
        }) };
        prop_assert_eq!(reply.kind, want);
    }
}

// ---- the matcher on random sequences ----

/// Eight four-tuples: two families, two client ports, two server ports.
const FLOWS: usize = 8;
/// The ISNs SYNs and replies draw from (small, so that retransmissions and exact answers happen; `u32::MAX`
/// so that ISN + 1 wraps).
const ISNS: [u32; 4] = [1000, 2000, u32::MAX, 77];

#[derive(Debug, Clone)]
enum Event {
    Syn {
        flow: usize,
        isn: usize,
    },
    SynAck {
        flow: usize,
        isn: usize,
    },
    Rst {
        flow: usize,
        isn: usize,
        teardown: bool,
    },
    Icmp {
        flow: usize,
        isn: usize,
        full: bool,
        code: u8,
    },
    Wait {
        ms: i64,
    },
}

fn event() -> impl Strategy<Value = Event> {
    let flow = 0..FLOWS;
    let isn = 0..ISNS.len();
    prop_oneof![
        4 => (flow.clone(), isn.clone()).prop_map(|(flow, isn)| Event::Syn { flow, isn }),
        2 => (flow.clone(), isn.clone()).prop_map(|(flow, isn)| Event::SynAck { flow, isn }),
        2 => (flow.clone(), isn.clone(), any::<bool>())
            .prop_map(|(flow, isn, teardown)| Event::Rst { flow, isn, teardown }),
        2 => (flow, isn, any::<bool>(), 0u8..16)
            .prop_map(|(flow, isn, full, code)| Event::Icmp { flow, isn, full, code }),
        3 => prop::sample::select(vec![0i64, 1, 500, 1000, 3500, 10_000, 70_000, -1000])
            .prop_map(|ms| Event::Wait { ms }),
    ]
}

fn engine_config() -> impl Strategy<Value = EngineConfig> {
    (
        prop::sample::select(vec![1usize, 2, 4, MatchConfig::default().max_in_flight]),
        any::<bool>(),
        prop::sample::select(vec![0usize, 2, AnalyzerConfig::default().max_pending]),
        prop::sample::select(vec![1000i64, 3000]),
    )
        .prop_map(
            |(max_in_flight, follow, max_pending, timeout)| EngineConfig {
                matcher: MatchConfig {
                    timeout: Duration::from_millis(timeout),
                    max_in_flight,
                    follow_retransmissions: follow,
                },
                analyzer: AnalyzerConfig {
                    max_pending,
                    ..AnalyzerConfig::default()
                },
            },
        )
}

fn flow_ip(flow: usize) -> IpSpec {
    let (client, server) = if flow & 4 == 0 {
        ("198.18.0.2", "198.18.9.9")
    } else {
        ("2001:db8::2", "2001:db8:9::9")
    };
    IpSpec::new(
        client.parse().expect("address"),
        server.parse().expect("address"),
    )
}

fn flow_syn(flow: usize, isn: usize) -> TcpSpec {
    TcpSpec::syn(
        40000 + (flow & 1) as u16,
        [80, 443][(flow >> 1) & 1],
        ISNS[isn],
    )
    .linux_options()
}

/// The frame of an event (None for the passing of time).
fn frame(e: &Event) -> Option<Vec<u8>> {
    let built = match *e {
        Event::Syn { flow, isn } => flow_syn(flow, isn).emit(&flow_ip(flow)),
        Event::SynAck { flow, isn } => {
            TcpSpec::syn_ack_to(&flow_syn(flow, isn), 5).emit(&flow_ip(flow).reversed())
        }
        Event::Rst {
            flow,
            isn,
            teardown,
        } => {
            let mut rst = TcpSpec::rst_to(&flow_syn(flow, isn));
            if teardown {
                rst.seq = 12345;
            }
            rst.emit(&flow_ip(flow).reversed())
        }
        Event::Icmp {
            flow,
            isn,
            full,
            code,
        } => {
            let ip = flow_ip(flow);
            let sent = flow_syn(flow, isn).emit(&ip).expect("SYN");
            let router: IpAddr = if ip.src.is_ipv6() {
                "2001:db8:4::1".parse().expect("address")
            } else {
                "198.18.4.1".parse().expect("address")
            };
            let icmp_type = if ip.src.is_ipv6() { 1 } else { 3 };
            let quote = if full {
                QuoteLen::Full
            } else {
                QuoteLen::Minimal
            };
            icmp_error(&IpSpec::new(router, ip.src), icmp_type, code, &sent, quote)
        }
        Event::Wait { .. } => return None,
    };
    Some(built.expect("the builder accepts every event"))
}

/// Whether `reply` (a frame of a report) answers the attempt `r`: the reversed four-tuple for TCP, the quoted
/// four-tuple for ICMP.
fn answers(r: &Report, p: &Packet) -> bool {
    let k = &r.attempt.probe.key;
    match &p.transport {
        Transport::Tcp(t) => {
            (p.ip.src, p.ip.dst, t.src_port, t.dst_port)
                == (k.server, k.client, k.server_port.0, k.client_port.0)
        }
        Transport::IcmpError(e) => {
            e.quote
                .and_then(|q| q.tcp.map(|t| (q, t)))
                .is_some_and(|(q, t)| {
                    (q.src, q.dst, t.src_port, t.dst_port)
                        == (k.client, k.server, k.client_port.0, k.server_port.0)
                })
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the order of SYNs, retransmissions, replies and capture times (backwards too): the engine never
    /// holds more than its caps, every attempt opened is reported exactly once, no frame serves two attempts,
    /// every reply frame is counted exactly once (matched, stray, late, or a teardown), and the counts add up.
    #[test]
    fn matcher_invariants(config in engine_config(), events in prop::collection::vec(event(), 1..150)) {
        let cap = config.matcher.max_in_flight + config.analyzer.max_pending;
        let mut engine = Engine::new(config).expect("valid settings");
        let mut ts = Timestamp(1_700_000_000_000_000_000);
        let mut reports = Vec::new();
        let (mut syns, mut replies) = (0u64, 0u64);
        for e in &events {
            match (e, frame(e)) {
                (Event::Wait { ms }, _) => ts = ts.plus(Duration::from_millis(*ms)),
                (_, Some(bytes)) => {
                    engine.push_frame(LinkType::RAW, ts, &bytes, bytes.len() as u32).expect("a built frame parses");
                    match e {
                        Event::Syn { .. } => syns += 1,
                        _ => replies += 1,
                    }
                    prop_assert!(engine.open_attempts() <= cap, "{} open, cap {}", engine.open_attempts(), cap);
                    reports.extend(std::iter::from_fn(|| engine.pop_report()));
                }
                (_, None) => {}
            }
        }
        engine.finish();
        reports.extend(std::iter::from_fn(|| engine.pop_report()));
        prop_assert_eq!(engine.open_attempts(), 0);

        let m = *engine.match_stats();
        prop_assert_eq!(reports.len() as u64, m.attempts, "every attempt opened is reported once");
        prop_assert_eq!(m.syns, syns);
        let sum = |of: fn(&Report) -> u64| reports.iter().map(of).sum::<u64>();
        prop_assert_eq!(sum(|r| u64::from(r.attempt.syn_count)), m.syns);
        prop_assert_eq!(sum(|r| u64::from(r.attempt.retransmissions())), m.retransmissions);
        // A rebuilt attempt may meet its own SYN later (captured after the ICMP error); then it has one.
        prop_assert!(sum(|r| u64::from(r.attempt.syn_count == 0)) <= m.rebuilt_from_icmp);
        prop_assert!(m.attempts - m.rebuilt_from_icmp <= sum(|r| u64::from(r.attempt.syn_count > 0)));
        prop_assert_eq!(sum(|r| u64::from(r.attempt.reply_count)), m.replies);
        prop_assert_eq!(
            m.replies + m.stray_tcp + m.stray_icmp + m.late_replies + m.other_resets,
            replies,
            "every reply frame counted once: {:?}", m
        );
        prop_assert_eq!(sum(|r| u64::from(r.attempt.closure == Closure::Evicted)), m.evicted);
        prop_assert!(m.peak_in_flight as usize <= config.matcher.max_in_flight);

        let mut frames = HashSet::new();
        for r in &reports {
            let k = &r.attempt.probe.key;
            for s in &r.attempt.syns {
                prop_assert!(frames.insert(s.frame), "SYN frame {} in two attempts", s.frame);
                let t = s.packet.tcp().expect("a SYN is TCP");
                prop_assert_eq!(
                    (s.packet.ip.src, s.packet.ip.dst, t.src_port, t.dst_port, t.seq),
                    (k.client, k.server, k.client_port.0, k.server_port.0, r.attempt.probe.isn.0)
                );
            }
            for reply in &r.attempt.replies {
                prop_assert!(frames.insert(reply.seen.frame), "reply frame {} in two attempts", reply.seen.frame);
                prop_assert!(answers(r, &reply.seen.packet), "frame {} does not answer {:?}", reply.seen.frame, k);
            }
        }
    }
}

/// Regression (found by `matcher_invariants`): when the ICMP error about a SYN is captured before the SYN itself
/// (two capture points merged), the attempt rebuilt from the quote met its own SYN, which was counted as a
/// retransmission: `MatchStats::retransmissions` no longer matched the attempts' own counts.
#[test]
fn a_syn_captured_after_its_icmp_error_is_no_retransmission() {
    let events = [
        Event::Icmp {
            flow: 3,
            isn: 0,
            full: false,
            code: 0,
        },
        Event::Syn { flow: 3, isn: 0 },
        Event::Syn { flow: 3, isn: 0 },
    ];
    let mut engine = Engine::new(EngineConfig::default()).expect("valid settings");
    for (i, e) in events.iter().enumerate() {
        let bytes = frame(e).expect("a frame");
        let ts = Timestamp(i as i64 * 1_000_000);
        engine
            .push_frame(LinkType::RAW, ts, &bytes, bytes.len() as u32)
            .expect("parses");
    }
    engine.finish();
    let report = engine.pop_report().expect("one attempt");
    let m = engine.match_stats();
    assert_eq!((m.attempts, m.rebuilt_from_icmp, m.syns), (1, 1, 2));
    assert_eq!(report.attempt.syn_count, 2);
    assert_eq!(
        m.retransmissions,
        u64::from(report.attempt.retransmissions())
    );
    assert_eq!(m.retransmissions, 1);
}
