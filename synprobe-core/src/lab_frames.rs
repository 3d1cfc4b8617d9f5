//! Unit tests on literal frames: real packets that Linux 6.18 sent in the project's namespace lab
//! (`client 198.18.0.1 -- r1 -- r2 -- server 198.18.2.2`, see tests/LAB_FACTS.md), captured with tcpdump on the
//! client's interface and kept here as hex. They pin the parser to what real stacks, routers and REJECT rules
//! emit, independently of the project's own packet builder.

use std::net::IpAddr;

use crate::capture::LinkType;
use crate::wire::{parse_frame, IcmpErrorKind, TcpFlags, Unreachable};

/// Frame 2 of the lab capture.
const SYN_ACK_V4: &str = concat!(
    "3687e0506e844ade4c0b467208004500003c000040003e06ae94c6120202c61200010050984bf22f921e44f49171a012",
    "fe888e560000020405b40402080a1628b2a4000000010103030a",
);

/// Frame 3 of the lab capture.
const CLIENT_KERNEL_RST_V4: &str = concat!(
    "4ade4c0b46723687e0506e84080045000028000040004006aca8c6120001c6120202984b005044f49171000000005004",
    "0000b2b70000",
);

/// Frame 5 of the lab capture.
const STACK_RST_V4: &str = concat!(
    "3687e0506e844ade4c0b4672080045000028000040003e06aea8c6120202c612000100518f9f00000000768238215014",
    "0000e3140000",
);

/// Frame 7 of the lab capture.
const ROUTER_ICMP_PORT_UNREACH_V4: &str = concat!(
    "3687e0506e844ade4c0b4672080045c0005897a000004001561dc6120002c612000103038b53000000004500003c2f20",
    "40003f067e74c6120001c6120202905e005479a8632b00000000a002faf051600000020405b40402080a000000010000",
    "000001030307",
);

/// Frame 13 of the lab capture.
const STACK_RST_V6: &str = concat!(
    "3687e0506e844ade4c0b467286dd600584350014063e20010db800000002000000000000000220010db8000000000000",
    "00000000000100517d8500000000c92bbfa0501400005b910000",
);

/// Frame 15 of the lab capture.
const ROUTER_ICMP6_ADMIN_PROHIBITED: &str = concat!(
    "3687e0506e844ade4c0b467286dd6003764800583a4020010db800000000000000000000000220010db8000000000000",
    "00000000000101014a0c00000000600cf2a50028063f20010db800000000000000000000000120010db8000000020000",
    "0000000000026c3600559a74e0ec00000000a002faf009ab0000020405b40402080a000000010000000001030307",
);

/// Frame 26 of the lab capture.
const ROUTER_TIME_EXCEEDED_V4: &str = concat!(
    "3687e0506e844ade4c0b4672080045c0005897a100004001561cc6120002c61200010b008356000000004500003c9602",
    "400001065592c6120001c61202029a380051791c98aa00000000a002faf012960000020405b40402080a000000010000",
    "000001030307",
);

fn frame(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn addr(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn server_syn_ack() {
    let p = parse_frame(LinkType::ETHERNET, &frame(SYN_ACK_V4)).expect("parses");
    assert_eq!(
        (p.ip.src, p.ip.dst, p.ip.ttl, p.ip.tos, p.ip.ident, p.ip.df),
        (addr("198.18.2.2"), addr("198.18.0.1"), 62, 0, 0, true)
    );
    let t = p.tcp().expect("tcp");
    assert!(t.flags.is_syn_ack());
    assert_eq!(
        (
            t.src_port,
            t.window,
            t.options.mss(),
            t.options.window_scale()
        ),
        (80, 65160, Some(1460), Some(10))
    );
    assert!(t.options.sack_permitted() && t.options.timestamps().is_some());
}

#[test]
fn server_stack_rst_v4_is_rst_ack_seq_0_window_0() {
    let p = parse_frame(LinkType::ETHERNET, &frame(STACK_RST_V4)).expect("parses");
    let t = p.tcp().expect("tcp");
    assert_eq!(t.flags, TcpFlags(TcpFlags::RST | TcpFlags::ACK));
    assert_eq!((t.seq, t.window, t.payload_len, t.src_port), (0, 0, 0, 81));
    assert_eq!((p.ip.ttl, p.ip.ident, p.ip.df), (62, 0, true));
}

#[test]
fn the_probing_hosts_own_rst_after_an_unexpected_syn_ack() {
    let p = parse_frame(LinkType::ETHERNET, &frame(CLIENT_KERNEL_RST_V4)).expect("parses");
    let t = p.tcp().expect("tcp");
    assert_eq!(t.flags, TcpFlags(TcpFlags::RST));
    assert_eq!((p.ip.src, t.dst_port), (addr("198.18.0.1"), 80));
}

#[test]
fn server_stack_rst_v6_carries_a_flow_label() {
    let p = parse_frame(LinkType::ETHERNET, &frame(STACK_RST_V6)).expect("parses");
    assert!(p.ip.is_v6());
    assert_eq!((p.ip.src, p.ip.ttl), (addr("2001:db8:0:2::2"), 62));
    assert!(
        p.ip.flow_label.is_some_and(|l| l != 0),
        "the stack's RST is labelled"
    );
    assert!(p.tcp().expect("tcp").flags.is_rst());
}

#[test]
fn router_reject_icmp_port_unreachable_quotes_the_whole_syn() {
    let p = parse_frame(LinkType::ETHERNET, &frame(ROUTER_ICMP_PORT_UNREACH_V4)).expect("parses");
    assert_eq!(
        (p.ip.src, p.ip.ttl, p.ip.tos, p.ip.df),
        (addr("198.18.0.2"), 64, 0xc0, false)
    );
    let e = p.icmp_error().expect("icmp error");
    assert_eq!(
        e.kind,
        IcmpErrorKind::DestinationUnreachable(Unreachable::Port)
    );
    let q = e.quote.expect("quote");
    assert_eq!(
        (q.src, q.dst, q.ttl, q.transport_bytes),
        (addr("198.18.0.1"), addr("198.18.2.2"), 63, 40)
    );
    let qt = q.tcp.expect("quoted tcp");
    assert_eq!(qt.dst_port, 84);
    assert!(qt.flags.is_some_and(|f| f.is_syn_only()));
}

#[test]
fn router_reject_icmp6_admin_prohibited() {
    let p = parse_frame(LinkType::ETHERNET, &frame(ROUTER_ICMP6_ADMIN_PROHIBITED)).expect("parses");
    assert_eq!((p.ip.src, p.ip.ttl, p.ip.tos), (addr("2001:db8::2"), 64, 0));
    let e = p.icmp_error().expect("icmpv6 error");
    assert_eq!(
        e.kind,
        IcmpErrorKind::DestinationUnreachable(Unreachable::V6AdminProhibited)
    );
    let q = e.quote.expect("quote");
    assert_eq!((q.dst, q.ttl), (addr("2001:db8:0:2::2"), 63));
    assert_eq!(q.tcp.expect("quoted tcp").dst_port, 85);
}

#[test]
fn router_time_exceeded_quotes_ttl_one() {
    let p = parse_frame(LinkType::ETHERNET, &frame(ROUTER_TIME_EXCEEDED_V4)).expect("parses");
    assert_eq!((p.ip.src, p.ip.ttl), (addr("198.18.0.2"), 64));
    let e = p.icmp_error().expect("icmp error");
    assert_eq!(e.kind, IcmpErrorKind::TimeExceeded(0));
    assert_eq!(e.quote.expect("quote").ttl, 1);
}
