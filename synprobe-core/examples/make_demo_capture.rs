//! Writes the demo capture bundled with synprobe (examples/demo.pcap), built with synprobe's own packet builder.
//!
//! One client probes two servers over IPv4 and IPv6; every way a connection can fail is in it:
//! an open port, a port closed by the host, an RST forged by a firewall 4 hops before the server, an ICMP
//! administratively-prohibited from a router, a REJECT rule on the server itself (IPv6 flow label 0), a
//! host-unreachable from a router, and a silently dropped port with SYN retransmissions.
//!
//! `cargo run -p synprobe-core --example make_demo_capture -- examples/demo.pcap`

use std::fs::File;
use std::io::BufWriter;
use std::net::IpAddr;

use synprobe_core::build::{icmp_error, IpSpec, QuoteLen, TcpSpec, Timeline};

fn addr(s: &str) -> IpAddr {
    s.parse().expect("a literal address")
}

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/demo.pcap".into());
    let build = |r: synprobe_core::Result<Vec<u8>>| r.map_err(std::io::Error::other);
    let (client, web, router) = (addr("198.18.0.2"), addr("198.18.9.9"), addr("198.18.4.1"));
    let out = IpSpec::new(client, web).ttl(64);
    // The server is 8 hops away (TTL 57 on arrival); the firewall that forges RSTs sits 4 hops away.
    let from_web = IpSpec::new(web, client).ttl(57);
    let mut t = Timeline::starting_at(1_763_700_000);
    let mut ms = 0.0;
    let mut next = |step: f64| {
        ms += step;
        ms
    };

    // 443: open.
    let syn = TcpSpec::syn(51234, 443, 0x1f2e_3d4c).linux_options();
    t.at(next(0.0), build(syn.emit(&out.ident(0x1111)))?);
    t.at(
        next(18.2),
        build(TcpSpec::syn_ack_to(&syn, 0x7777_0001).emit(&from_web))?,
    );
    // 8080: closed by the server's own stack (same distance as its SYN-ACK).
    let syn = TcpSpec::syn(51236, 8080, 0x2a2a_0001).linux_options();
    t.at(next(100.0), build(syn.emit(&out.ident(0x1112)))?);
    t.at(next(18.4), build(TcpSpec::rst_to(&syn).emit(&from_web))?);
    // 22: RST forged by a firewall 4 hops out (TTL 61: initial 64, 4 hops), faster than the server could answer.
    let syn = TcpSpec::syn(51238, 22, 0x3b3b_0001).linux_options();
    t.at(next(100.0), build(syn.emit(&out.ident(0x1113)))?);
    t.at(
        next(9.1),
        build(TcpSpec::rst_to(&syn).emit(&from_web.ttl(61)))?,
    );
    // 3306: ICMP administratively prohibited from a router at hop 3 (its ICMP arrives with TTL 62).
    let syn = TcpSpec::syn(51240, 3306, 0x4c4c_0001).linux_options();
    let sent = build(syn.emit(&out.ident(0x1114)))?;
    t.at(next(100.0), sent.clone());
    let mut quoted = sent;
    quoted[8] = 61; // what was left of the SYN's TTL at that router
    t.at(
        next(7.3),
        build(icmp_error(
            &IpSpec::new(router, client).ttl(62),
            3,
            13,
            &quoted,
            QuoteLen::Full,
        ))?,
    );
    // 25: silently dropped, retransmitted after 1 s and 2 s more.
    let syn = TcpSpec::syn(51242, 25, 0x5d5d_0001).linux_options();
    let sent = build(syn.emit(&out.ident(0x1115)))?;
    let start = next(100.0);
    for offset in [0.0, 1000.0, 3000.0] {
        t.at(start + offset, sent.clone());
    }
    // 198.18.77.7:80: host unreachable from the router (no route / no ARP answer), quoting 8 bytes of TCP.
    let lost = addr("198.18.77.7");
    let syn = TcpSpec::syn(51244, 80, 0x6e6e_0001).linux_options();
    let sent = build(syn.emit(&IpSpec::new(client, lost).ident(0x1116)))?;
    t.at(start + 200.0, sent.clone());
    t.at(
        start + 3201.0,
        build(icmp_error(
            &IpSpec::new(router, client).ttl(62),
            3,
            1,
            &sent,
            QuoteLen::Minimal,
        ))?,
    );

    // IPv6: the server labels its packets; a REJECT rule on it answers port 81 with flow label 0.
    let (c6, s6) = (addr("2001:db8::2"), addr("2001:db8:9::9"));
    let out6 = IpSpec::new(c6, s6).flow_label(0x3c1d2);
    let from6 = IpSpec::new(s6, c6).ttl(57).flow_label(0x9a0b7);
    let syn = TcpSpec::syn(51250, 443, 0x7f7f_0001).linux_options();
    t.at(start + 7000.0, build(syn.emit(&out6))?);
    t.at(
        start + 7018.0,
        build(TcpSpec::syn_ack_to(&syn, 0x1234_5678).emit(&from6))?,
    );
    let syn = TcpSpec::syn(51252, 81, 0x8080_0001).linux_options();
    t.at(start + 7100.0, build(syn.emit(&out6.flow_label(0x51b2e)))?);
    t.at(
        start + 7118.0,
        build(TcpSpec::rst_to(&syn).emit(&from6.flow_label(0)))?,
    );

    let file = BufWriter::new(File::create(&path)?);
    t.write_pcap(file)?;
    eprintln!("wrote {path}");
    Ok(())
}
