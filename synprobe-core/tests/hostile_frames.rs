//! Hostile frames through the engine: damaged headers are counted as malformed (never a panic, never an index
//! past a slice, never a frame silently passed off as something else), and what a snap length cut short still
//! counts for what it holds.

use std::net::IpAddr;
use std::time::Instant;

use synprobe_core::build::{echo, ethernet, icmp_error, IpSpec, QuoteLen, TcpSpec};
use synprobe_core::matcher::MatchStats;
use synprobe_core::{
    Engine, EngineConfig, FrameStats, LinkType, ParseError, Report, Timestamp, Verdict,
};

fn addr(s: &str) -> IpAddr {
    s.parse().expect("a literal address")
}

fn client(v6: bool) -> IpSpec {
    if v6 {
        IpSpec::new(addr("2001:db8::2"), addr("2001:db8:9::9")).flow_label(0x12345)
    } else {
        IpSpec::new(addr("198.18.0.2"), addr("198.18.9.9"))
    }
}

fn router(v6: bool) -> IpSpec {
    if v6 {
        IpSpec::new(addr("2001:db8:4::1"), addr("2001:db8::2"))
    } else {
        IpSpec::new(addr("198.18.4.1"), addr("198.18.0.2"))
    }
}

/// A Linux SYN (20 bytes of options: a 40-byte TCP header) as an IP datagram.
fn syn(v6: bool) -> Vec<u8> {
    TcpSpec::syn(40000, 443, 0x0102_0304)
        .linux_options()
        .emit(&client(v6))
        .expect("SYN")
}

/// The RST the server's stack answers `syn` with.
fn rst(v6: bool) -> Vec<u8> {
    let syn = TcpSpec::syn(40000, 443, 0x0102_0304);
    TcpSpec::rst_to(&syn)
        .emit(&client(v6).reversed().ttl(57))
        .expect("RST")
}

/// What an engine made of some frames, one millisecond apart.
struct Outcome {
    frames: FrameStats,
    matching: MatchStats,
    reports: Vec<Report>,
    errors: Vec<Option<ParseError>>,
}

fn run(frames: &[(LinkType, Vec<u8>)]) -> Outcome {
    let mut engine = Engine::new(EngineConfig::default()).expect("valid settings");
    let mut errors = Vec::new();
    for (i, (link, data)) in frames.iter().enumerate() {
        let ts = Timestamp(1_700_000_000_000_000_000 + i as i64 * 1_000_000);
        errors.push(engine.push_frame(*link, ts, data, data.len() as u32).err());
    }
    engine.finish();
    let reports = std::iter::from_fn(|| engine.pop_report()).collect();
    let f = *engine.frame_stats();
    assert_eq!(
        f.frames,
        f.ip + f.not_ip + f.malformed + f.unsupported_link + f.fragments,
        "every frame is counted once: {f:?}"
    );
    Outcome {
        frames: f,
        matching: *engine.match_stats(),
        reports,
        errors,
    }
}

fn raw(frames: impl IntoIterator<Item = Vec<u8>>) -> Vec<(LinkType, Vec<u8>)> {
    frames.into_iter().map(|f| (LinkType::RAW, f)).collect()
}

/// One damaged frame is counted malformed, opens nothing and is no stray; the error names the header.
fn assert_malformed(frame: Vec<u8>, header: &str) {
    let o = run(&raw([frame]));
    assert_eq!((o.frames.malformed, o.frames.ip), (1, 0), "{:?}", o.errors);
    assert_eq!(o.matching.attempts + o.matching.strays(), 0);
    match o.errors[0] {
        Some(ParseError::Malformed(what)) => assert!(what.contains(header), "{what}"),
        ref other => panic!("expected a malformed {header}, got {other:?}"),
    }
}

#[test]
fn ipv4_header_length_below_five_words_is_malformed() {
    for ihl in [0u8, 1, 4] {
        let mut f = syn(false);
        f[0] = 0x40 | ihl;
        assert_malformed(f, "IP header");
    }
}

#[test]
fn ipv4_header_length_past_the_datagram_is_malformed() {
    // IHL 15 claims 60 bytes of IP header: over a 60-byte SYN nothing is left for TCP; over a 40-byte one the
    // IP header itself runs past the end.
    let mut f = syn(false);
    f[0] = 0x4f;
    assert_malformed(f, "header");
    let mut bare = TcpSpec::syn(40000, 443, 1)
        .emit(&client(false))
        .expect("SYN");
    bare[0] = 0x4f;
    assert_malformed(bare, "IP header");
}

#[test]
fn tcp_data_offset_below_five_words_is_malformed() {
    for v6 in [false, true] {
        for offset in [0u8, 4] {
            let mut f = syn(v6);
            let at = if v6 { 40 + 12 } else { 20 + 12 };
            f[at] = (offset << 4) | (f[at] & 0x0f);
            assert_malformed(f, "TCP header");
        }
    }
}

#[test]
fn tcp_data_offset_past_the_segment_is_malformed() {
    for v6 in [false, true] {
        // A 40-byte TCP segment whose header claims 60 bytes.
        let mut f = syn(v6);
        let at = if v6 { 40 + 12 } else { 20 + 12 };
        f[at] = 0xf0 | (f[at] & 0x0f);
        assert_malformed(f, "TCP header");
    }
}

#[test]
fn ip_length_shorter_than_the_tcp_header_is_malformed() {
    // The IPv4 total length says 30 bytes: 10 bytes of TCP, less than any TCP header.
    let mut f = syn(false);
    f[2..4].copy_from_slice(&30u16.to_be_bytes());
    assert_malformed(f, "TCP header");
    // The IPv6 payload length says 12 bytes.
    let mut f = syn(true);
    f[4..6].copy_from_slice(&12u16.to_be_bytes());
    assert_malformed(f, "TCP header");
}

#[test]
fn ip_length_past_the_capture_is_a_snap_length_cut_not_damage() {
    // A 1500-byte segment of which the capture kept the headers: parsed, with the length the IP header gives.
    let mut f = syn(false);
    f[2..4].copy_from_slice(&1500u16.to_be_bytes());
    let o = run(&raw([f]));
    assert_eq!((o.frames.ip, o.frames.malformed), (1, 0));
    assert_eq!(o.matching.syns, 1);
    let seen = &o.reports[0].attempt.syns[0];
    assert_eq!(seen.packet.tcp().expect("TCP").payload_len, 1500 - 20 - 40);
}

/// Regression: a SYN whose options a snap length cut off (tcpdump's old default of 68 bytes keeps 14 of a Linux
/// SYN's 20 bytes of options over IPv4 Ethernet; 54 bytes keep none) was passed off as "IP protocol 6" and its
/// attempt silently lost. The fixed 20 bytes say everything the matcher needs.
#[test]
fn a_syn_cut_by_the_snap_length_still_opens_its_attempt() {
    for v6 in [false, true] {
        let ip_header = if v6 { 40 } else { 20 };
        for snaplen in [
            14 + ip_header + 20,
            14 + ip_header + 27,
            14 + ip_header + 34,
        ] {
            let syn = ethernet(&syn(v6));
            let cut = syn[..snaplen.min(syn.len())].to_vec();
            let o = run(&[
                (LinkType::ETHERNET, cut),
                (LinkType::ETHERNET, ethernet(&rst(v6))),
            ]);
            assert_eq!(
                (o.frames.ip, o.frames.malformed),
                (2, 0),
                "v6 {v6} snaplen {snaplen}"
            );
            assert_eq!(o.reports.len(), 1);
            let a = &o.reports[0].attempt;
            assert_eq!(
                (a.probe.key.server_port.0, a.probe.isn.0),
                (443, 0x0102_0304)
            );
            assert!(a.probe.flags.is_syn_only());
            let kept = snaplen.saturating_sub(14 + ip_header + 20).min(20);
            assert_eq!(a.probe.options.as_bytes().len(), kept);
            assert_eq!(o.reports[0].judgement.verdict, Verdict::Closed);
        }
    }
}

#[test]
fn a_tcp_header_cut_inside_its_fixed_part_is_malformed() {
    let f = syn(false);
    for tcp_bytes in [0, 8, 14, 19] {
        assert_malformed(f[..20 + tcp_bytes].to_vec(), "TCP header");
    }
}

#[test]
fn a_first_fragment_is_read_and_later_fragments_are_counted_as_fragments() {
    // IPv4: MF set, offset 0 (the first fragment has the TCP header); offset 2 (16 bytes) has none.
    let mut first = syn(false);
    first[6] = 0x20;
    let mut later = syn(false);
    later[6..8].copy_from_slice(&2u16.to_be_bytes());
    let o = run(&raw([first, later]));
    assert_eq!((o.frames.ip, o.frames.fragments), (1, 1));
    assert_eq!(o.matching.syns, 1);
    // IPv6: the same with a fragment header; a later fragment's bytes must not be read as TCP.
    let v6_fragment = |offset_field: u16| {
        let s = syn(true);
        let mut f = s[..40].to_vec();
        f[6] = 44;
        f.extend_from_slice(&[6, 0]);
        f.extend_from_slice(&offset_field.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 1]);
        f.extend_from_slice(&s[40..]);
        let payload = (f.len() - 40) as u16;
        f[4..6].copy_from_slice(&payload.to_be_bytes());
        f
    };
    let o = run(&raw([v6_fragment(1), v6_fragment(2 << 3)]));
    assert_eq!((o.frames.ip, o.frames.fragments), (1, 1));
    assert_eq!(o.matching.syns, 1);
}

/// An IPv6 SYN behind a chain of extension headers: `chain` lists the header types in order.
fn v6_with_extensions(chain: &[u8]) -> Vec<u8> {
    let s = syn(true);
    let mut f = s[..40].to_vec();
    f[6] = chain.first().copied().unwrap_or(6);
    let nexts = chain.iter().skip(1).copied().chain([6]);
    for next in nexts {
        f.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]);
    }
    f.extend_from_slice(&s[40..]);
    let payload = u16::try_from(f.len() - 40).expect("fits an IPv6 payload length");
    f[4..6].copy_from_slice(&payload.to_be_bytes());
    f
}

#[test]
fn ipv6_extension_header_loops_are_malformed() {
    // Hop-by-hop pointing to itself, and hop-by-hop anywhere but first: no valid chain.
    assert_malformed(v6_with_extensions(&[0, 0]), "extension header");
    assert_malformed(v6_with_extensions(&[60, 0]), "extension header");
    // A header whose length runs past the end.
    let mut f = v6_with_extensions(&[60]);
    f[41] = 255;
    assert_malformed(f, "extension header");
}

#[test]
fn long_ipv6_extension_header_chains_are_walked_in_bounded_time() {
    // 1000 destination options headers (8,000 bytes): a valid if absurd chain; the SYN behind it is found, and
    // quickly (every header is at least 8 bytes, so the walk is linear in the frame).
    let chain = vec![60u8; 1000];
    let started = Instant::now();
    let o = run(&raw([v6_with_extensions(&chain)]));
    assert!(started.elapsed().as_secs() < 2);
    assert_eq!((o.frames.ip, o.matching.syns), (1, 1));
    for chain in [&[0u8, 43, 60][..], &[0, 60, 44, 60]] {
        let o = run(&raw([v6_with_extensions(chain)]));
        assert_eq!(o.frames.frames, 1, "{chain:?}");
    }
}

/// An ICMP error from a router quoting `quoted`.
fn icmp_quoting(v6: bool, quoted: &[u8]) -> Vec<u8> {
    let t = if v6 { 1 } else { 3 };
    icmp_error(&router(v6), t, 1, quoted, QuoteLen::Full).expect("ICMP error")
}

/// Regression: an ICMP error quoting garbage, or cut before the quoted ports and sequence number, was counted as
/// a good IP frame and then silently ignored by the matcher. It can answer no attempt: it is malformed.
#[test]
fn icmp_errors_quoting_garbage_are_malformed() {
    for v6 in [false, true] {
        let ip_header = if v6 { 40 } else { 20 };
        let mut bad_ihl = syn(v6);
        bad_ihl[0] = if v6 { 0x50 } else { 0x4f };
        let whole = icmp_quoting(v6, &syn(v6));
        for (what, frame) in [
            ("garbage", icmp_quoting(v6, &[0xff; 30])),
            ("nothing", icmp_quoting(v6, &[])),
            ("a damaged IP header", icmp_quoting(v6, &bad_ihl)),
            (
                "4 bytes of TCP",
                icmp_quoting(v6, &syn(v6)[..ip_header + 4]),
            ),
            (
                "a cut before the quote",
                whole[..ip_header + 8 + 10].to_vec(),
            ),
        ] {
            let o = run(&raw([syn(v6), frame]));
            assert_eq!(
                (o.frames.ip, o.frames.malformed),
                (1, 1),
                "v6 {v6}: quoting {what}"
            );
            assert!(matches!(o.errors[1], Some(ParseError::Malformed(w)) if w.contains("quoted")));
            assert_eq!(o.matching.replies + o.matching.strays(), 0);
            assert_eq!(o.reports[0].judgement.verdict, Verdict::Filtered);
        }
    }
}

#[test]
fn icmp_errors_quoting_icmp_are_read_and_answer_nothing() {
    for v6 in [false, true] {
        // An error about an error, and an unreachable for a ping: well-formed, but about no SYN.
        let inner = icmp_quoting(v6, &syn(v6));
        let ping = echo(&client(v6), false, 7, 1).expect("ping");
        let o = run(&raw([
            syn(v6),
            icmp_quoting(v6, &inner),
            icmp_quoting(v6, &ping),
        ]));
        assert_eq!((o.frames.ip, o.frames.malformed), (3, 0));
        assert_eq!(o.matching.attempts, 1);
        assert_eq!(o.matching.replies + o.matching.strays(), 0);
    }
}

#[test]
fn link_headers_cut_short_are_malformed_and_other_links_are_counted() {
    let cases: [(LinkType, &[u8]); 7] = [
        (LinkType::ETHERNET, &[0; 13]),
        (LinkType::ETHERNET_MPACKET, &[0x55; 7]),
        (LinkType::LINUX_SLL, &[0; 15]),
        (LinkType::LINUX_SLL2, &[0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        (LinkType::NULL, &[2, 0, 0]),
        (LinkType::LOOP, &[0, 0]),
        (LinkType::RAW, &[]),
    ];
    let frames: Vec<(LinkType, Vec<u8>)> = cases.iter().map(|(l, d)| (*l, d.to_vec())).collect();
    let o = run(&frames);
    assert_eq!(o.frames.malformed, cases.len() as u64, "{:?}", o.errors);
    let o = run(&[
        (LinkType(147), syn(false)),
        (LinkType(105), syn(false)),
        (LinkType(u32::MAX), syn(false)),
    ]);
    assert_eq!(o.frames.unsupported_link, 3);
}

#[test]
fn every_prefix_of_every_frame_is_counted_once() {
    let mut frames = Vec::new();
    for v6 in [false, true] {
        let full = icmp_error(
            &router(v6),
            if v6 { 1 } else { 3 },
            1,
            &syn(v6),
            QuoteLen::Full,
        )
        .expect("ICMP");
        for ip in [syn(v6), rst(v6), full, v6_with_extensions(&[0, 43, 60])] {
            frames.push((LinkType::RAW, ip.clone()));
            frames.push((LinkType::ETHERNET, ethernet(&ip)));
        }
    }
    for (link, frame) in frames {
        for n in 0..=frame.len() {
            let o = run(&[(link, frame[..n].to_vec())]);
            assert_eq!(o.frames.frames, 1);
            assert!(o.matching.attempts <= 1);
        }
    }
}

/// Regression (found by the `engine` fuzz target): telling a later IPv6 fragment from the first used etherparse's
/// extension header iterator, which reads past the end of a chain it sliced laxly (an unchecked `unsafe`
/// precondition: a panic in debug builds, an out-of-bounds read in release). Here a fragment header with a
/// non-zero offset is followed by a hop-by-hop header cut short.
#[test]
fn a_fragment_header_followed_by_a_cut_extension_chain_is_counted() {
    let frame = hex(
        "6000000000582c3a3e20010d0000000000007a00000002200d01b800000000000900000000000000006500\
         01005e0002000000000202000000000186dd61051b2e00f70037",
    );
    let o = run(&raw([frame.clone()]));
    assert_eq!(o.frames.ip, 0);
    assert_eq!(o.frames.malformed + o.frames.fragments, 1);
    // Every prefix too.
    for n in 40..frame.len() {
        assert_eq!(run(&raw([frame[..n].to_vec()])).frames.ip, 0);
    }
}

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| {
            u8::from_str_radix(std::str::from_utf8(pair).expect("ASCII"), 16).expect("hex digits")
        })
        .collect()
}

/// Regression (found by the `parse_frame` fuzz target): a packet of a protocol synprobe does not read
/// (`Transport::Other`) could not be serialized: serde refuses a bare number inside an internally tagged enum.
#[test]
fn a_packet_of_any_protocol_serializes_to_json_and_back() {
    let mut gre = syn(false);
    gre[9] = 47;
    let mut v6_rsvp = syn(true);
    v6_rsvp[6] = 46;
    for frame in [gre, v6_rsvp] {
        let p = synprobe_core::parse_frame(LinkType::RAW, &frame).expect("IP");
        let json = serde_json::to_string(&p).expect("serializes");
        assert!(json.contains(r#""type":"other","protocol":4"#), "{json}");
        let back: synprobe_core::Packet = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, p);
    }
}

/// Regression (found by the `engine` fuzz target): capture times are the file's word (a pcapng timestamp with a
/// negative offset reaches `i64::MIN`). A SYN at the end of time, retransmitted at its start and again at its
/// end, made the gap between SYNs overflow while computing how long to wait for more retransmissions.
#[test]
fn retransmissions_at_the_ends_of_time_do_not_overflow() {
    for times in [
        [i64::MAX, i64::MIN, i64::MAX],
        [i64::MIN, i64::MAX, i64::MIN],
        [0, i64::MIN, i64::MAX],
    ] {
        let mut engine = Engine::new(EngineConfig::default()).expect("valid settings");
        for t in times {
            engine
                .push_frame(LinkType::RAW, Timestamp(t), &syn(false), 60)
                .expect("SYN");
            while engine.pop_report().is_some() {}
        }
        engine.finish();
        let reports: Vec<Report> = std::iter::from_fn(|| engine.pop_report()).collect();
        let m = engine.match_stats();
        assert_eq!(m.syns, 3);
        assert!(reports
            .iter()
            .all(|r| r.judgement.verdict == Verdict::Filtered));
    }
}
