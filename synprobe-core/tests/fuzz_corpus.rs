//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets' own logic, so CI catches a
//! regression on any input the fuzzers ever kept, without cargo-fuzz or a nightly toolchain. The targets' logic
//! lives in `fuzz/src/lib.rs`, included here as a module: the fuzzers and this test run the same code.
//!
//! The seed files (`seed-*`) are written by the ignored test `write_seed_corpus`:
//! `cargo test -p synprobe-core --test fuzz_corpus -- --ignored write_seed_corpus`.

#[path = "../../fuzz/src/lib.rs"]
mod fuzz_logic;

use std::fs;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use synprobe_core::build::{echo, ethernet, icmp_error, udp, IpSpec, QuoteLen, TcpSpec};
use synprobe_core::capture::{PcapNgWriter, PcapWriter};
use synprobe_core::{LinkType, Timestamp};

use fuzz_logic::{engine_input, link_selector, EngineRecord};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Run `target` over every file of its corpus; name the file that fails.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    let mut failed = Vec::new();
    for file in &files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} corpus inputs fail: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn parse_frame_corpus() {
    replay("parse_frame", fuzz_logic::parse_frame);
}

#[test]
fn engine_corpus() {
    replay("engine", fuzz_logic::engine);
}

#[test]
fn capture_reader_corpus() {
    replay("capture_reader", fuzz_logic::capture_reader);
}

#[test]
fn parse_ports_corpus() {
    replay("parse_ports", fuzz_logic::parse_ports);
}

// ---- seeds ----

fn addr(s: &str) -> IpAddr {
    s.parse().expect("a literal address")
}

/// A client, a server 8 hops away (TTL 57 on arrival) and a router at hop 3, in one address family.
struct Hosts {
    out: IpSpec,
    back: IpSpec,
    router: IpSpec,
}

fn hosts(v6: bool) -> Hosts {
    let (client, server, router) = if v6 {
        ("2001:db8::2", "2001:db8:9::9", "2001:db8:4::1")
    } else {
        ("198.18.0.2", "198.18.9.9", "198.18.4.1")
    };
    Hosts {
        out: IpSpec::new(addr(client), addr(server))
            .ttl(64)
            .tos(0x10)
            .ident(0x1234)
            .flow_label(0x51b2e),
        back: IpSpec::new(addr(server), addr(client))
            .ttl(57)
            .tos(0x10)
            .flow_label(0x2222),
        router: IpSpec::new(addr(router), addr(client)).ttl(62),
    }
}

fn ok(r: synprobe_core::Result<Vec<u8>>) -> Vec<u8> {
    r.expect("the builder accepts the seed")
}

/// An IP datagram in a frame of `link`.
fn framed(link: LinkType, ip: &[u8]) -> Vec<u8> {
    let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
    let ethertype: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    let mut out = match link {
        LinkType::ETHERNET => return ethernet(ip),
        LinkType::ETHERNET_MPACKET => {
            let mut f = vec![0x55; 7];
            f.push(0xd5);
            f.extend(ethernet(ip));
            return f;
        }
        LinkType::NULL => (if v6 { 30u32 } else { 2 }).to_le_bytes().to_vec(),
        LinkType::LOOP => (if v6 { 30u32 } else { 2 }).to_be_bytes().to_vec(),
        LinkType::LINUX_SLL => {
            let mut h = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
            h.extend_from_slice(&ethertype);
            h
        }
        LinkType::LINUX_SLL2 => {
            let mut h = ethertype.to_vec();
            h.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            h
        }
        _ => Vec::new(),
    };
    out.extend_from_slice(ip);
    out
}

/// Every kind of frame the engine reasons about, as IP datagrams: (name, datagram).
fn datagrams() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        let fam = if v6 { "v6" } else { "v4" };
        let h = hosts(v6);
        let syn = TcpSpec::syn(51234, 443, 0x1f2e_3d4c).linux_options();
        let sent = ok(syn.emit(&h.out));
        out.push((format!("{fam}-syn"), sent.clone()));
        out.push((
            format!("{fam}-syn-no-options"),
            ok(TcpSpec::syn(51235, 80, 7).emit(&h.out)),
        ));
        out.push((
            format!("{fam}-syn-ack"),
            ok(TcpSpec::syn_ack_to(&syn, 0x7777_0001).emit(&h.back)),
        ));
        out.push((
            format!("{fam}-rst"),
            ok(TcpSpec::rst_to(&syn).emit(&h.back)),
        ));
        let (unreach, admin, exceeded) = if v6 { (1, 1, 3) } else { (3, 13, 11) };
        for (q, quote) in [("full", QuoteLen::Full), ("8-byte", QuoteLen::Minimal)] {
            out.push((
                format!("{fam}-icmp-admin-prohibited-{q}-quote"),
                ok(icmp_error(&h.router, unreach, admin, &sent, quote)),
            ));
            out.push((
                format!("{fam}-icmp-time-exceeded-{q}-quote"),
                ok(icmp_error(&h.router, exceeded, 0, &sent, quote)),
            ));
        }
        let inner = ok(icmp_error(&h.router, unreach, 3, &sent, QuoteLen::Full));
        out.push((
            format!("{fam}-icmp-quoting-icmp"),
            ok(icmp_error(&h.router, unreach, 1, &inner, QuoteLen::Full)),
        ));
        out.push((format!("{fam}-echo-reply"), ok(echo(&h.back, true, 9, 3))));
        out.push((format!("{fam}-udp"), ok(udp(&h.out, 5353, 53, 12))));
    }
    out
}

/// One frame of an `engine` seed: link selector, step in milliseconds, bytes.
type Frame = (u8, i16, Vec<u8>);

/// The seeds of each target: (target, file name, bytes).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut all = Vec::new();

    // parse_frame: every datagram as Ethernet and raw IP, a SYN in every other supported link type, and one
    // frame of an unsupported link type.
    let selector = |link: LinkType| link_selector(link).expect("a link type of the fuzz table");
    for (name, ip) in datagrams() {
        for link in [LinkType::ETHERNET, LinkType::RAW] {
            let mut input = vec![selector(link)];
            input.extend(framed(link, &ip));
            all.push(("parse_frame", format!("seed-{}-{name}", link.0), input));
        }
    }
    for v6 in [false, true] {
        let syn = ok(TcpSpec::syn(51234, 443, 9)
            .linux_options()
            .emit(&hosts(v6).out));
        for link in fuzz_logic::LINKS {
            let mut input = vec![selector(link)];
            input.extend(framed(link, &syn));
            let fam = if v6 { "v6" } else { "v4" };
            all.push(("parse_frame", format!("seed-{}-{fam}-syn", link.0), input));
        }
    }

    // engine: short exchanges, each as a sequence of frames.
    let rec = |link: LinkType, step_ms: i16, data: &[u8]| -> Frame {
        (selector(link), step_ms, framed(link, data))
    };
    let mut exchanges: Vec<(String, u8, Vec<Frame>)> = Vec::new();
    for v6 in [false, true] {
        let fam = if v6 { "v6" } else { "v4" };
        let h = hosts(v6);
        let syn = |port: u16, isn: u32| TcpSpec::syn(51234, port, isn).linux_options();
        let eth = LinkType::ETHERNET;
        let (unreach, admin) = if v6 { (1, 1) } else { (3, 13) };
        let open = syn(443, 100);
        let ack = TcpSpec::syn(51234, 443, 101).flags(0x010).ack(0x7777_0002);
        exchanges.push((
            format!("{fam}-open"),
            0,
            vec![
                rec(eth, 0, &ok(open.emit(&h.out))),
                rec(
                    eth,
                    18,
                    &ok(TcpSpec::syn_ack_to(&open, 0x7777_0001).emit(&h.back)),
                ),
                rec(eth, 0, &ok(ack.emit(&h.out))),
            ],
        ));
        let closed = syn(8080, 200);
        let forged = syn(22, 300);
        exchanges.push((
            format!("{fam}-closed-and-forged-rst"),
            0,
            vec![
                rec(eth, 0, &ok(open.emit(&h.out))),
                rec(eth, 18, &ok(TcpSpec::syn_ack_to(&open, 5).emit(&h.back))),
                rec(eth, 100, &ok(closed.emit(&h.out))),
                rec(eth, 18, &ok(TcpSpec::rst_to(&closed).emit(&h.back))),
                rec(eth, 100, &ok(forged.emit(&h.out))),
                rec(eth, 9, &ok(TcpSpec::rst_to(&forged).emit(&h.back.ttl(61)))),
                rec(eth, 11_000, &ok(TcpSpec::syn(1, 2, 3).emit(&h.out))),
            ],
        ));
        let rejected = syn(3306, 400);
        let sent = ok(rejected.emit(&h.out));
        exchanges.push((
            format!("{fam}-icmp-full-and-8-byte-quotes"),
            0,
            vec![
                rec(LinkType::RAW, 0, &sent),
                rec(
                    LinkType::RAW,
                    3,
                    &ok(icmp_error(&h.router, unreach, admin, &sent, QuoteLen::Full)),
                ),
                rec(
                    LinkType::RAW,
                    1000,
                    &ok(icmp_error(&h.router, unreach, 0, &sent, QuoteLen::Minimal)),
                ),
            ],
        ));
        let filtered = ok(syn(25, 500).emit(&h.out));
        exchanges.push((
            format!("{fam}-filtered-with-retransmissions"),
            0x10,
            vec![
                rec(LinkType::LINUX_SLL2, 0, &filtered),
                rec(LinkType::LINUX_SLL2, 1000, &filtered),
                rec(LinkType::LINUX_SLL2, 2000, &filtered),
                rec(LinkType::LINUX_SLL, 30_000, &ok(echo(&h.back, true, 1, 1))),
            ],
        ));
        let uncaptured = ok(syn(81, 600).emit(&h.out));
        exchanges.push((
            format!("{fam}-rebuilt-from-icmp-and-reordered"),
            0,
            vec![
                rec(
                    LinkType::NULL,
                    0,
                    &ok(icmp_error(
                        &h.router,
                        unreach,
                        4,
                        &uncaptured,
                        QuoteLen::Full,
                    )),
                ),
                rec(
                    LinkType::LOOP,
                    5,
                    &ok(TcpSpec::syn_ack_to(&open, 9).emit(&h.back)),
                ),
                rec(LinkType::LOOP, -3, &ok(open.emit(&h.out))),
                rec(LinkType::LOOP, i16::MAX, &ok(open.emit(&h.out))),
                rec(LinkType::LOOP, i16::MIN, &ok(syn(443, 101).emit(&h.out))),
            ],
        ));
        let mut flood = Vec::new();
        for port in 0..40u16 {
            flood.push(rec(
                eth,
                1,
                &ok(syn(1000 + port, u32::from(port)).emit(&h.out)),
            ));
        }
        exchanges.push((format!("{fam}-small-caps-flood"), 0b0110_0101, flood));
    }
    for (name, config, records) in exchanges {
        let records: Vec<EngineRecord<'_>> = records
            .iter()
            .map(|(link, step_ms, data)| EngineRecord {
                link: *link,
                step_ms: *step_ms,
                data,
            })
            .collect();
        all.push((
            "engine",
            format!("seed-{name}"),
            engine_input(config, &records),
        ));
    }

    // capture_reader: small valid files, one per writer and timestamp resolution.
    let frames: Vec<(Timestamp, Vec<u8>)> = datagrams()
        .into_iter()
        .filter(|(name, _)| {
            [
                "-syn",
                "-syn-ack",
                "-rst",
                "-icmp-admin-prohibited-8-byte-quote",
            ]
            .iter()
            .any(|s| name.ends_with(s))
        })
        .enumerate()
        .map(|(i, (_, ip))| {
            (
                Timestamp(1_700_000_000_000_000_000 + i as i64 * 1_234_567),
                ethernet(&ip),
            )
        })
        .collect();
    for nanos in [false, true] {
        let mut w =
            PcapWriter::new(Vec::new(), LinkType::ETHERNET, 262_144, nanos).expect("header");
        for (ts, f) in &frames {
            w.write(*ts, f, f.len() as u32).expect("record");
        }
        let name = if nanos {
            "seed-pcap-ns"
        } else {
            "seed-pcap-us"
        };
        all.push(("capture_reader", name.into(), w.finish().expect("finish")));
    }
    let mut w = PcapWriter::new(Vec::new(), LinkType::RAW, 64, false).expect("header");
    for (ts, f) in &frames {
        w.write(*ts, &f[14..], f.len() as u32 - 14).expect("record");
    }
    all.push((
        "capture_reader",
        "seed-pcap-raw-snaplen-64".into(),
        w.finish().expect("finish"),
    ));
    let mut w = PcapNgWriter::new(
        Vec::new(),
        LinkType::ETHERNET,
        "synprobe seeds",
        Some("seed"),
    )
    .expect("header");
    for (i, (ts, f)) in frames.iter().enumerate() {
        let comment = (i % 2 == 0).then_some("a comment");
        w.write(*ts, f, f.len() as u32, comment).expect("block");
    }
    all.push((
        "capture_reader",
        "seed-pcapng".into(),
        w.finish().expect("finish"),
    ));
    let w = PcapNgWriter::new(Vec::new(), LinkType::LINUX_SLL2, "synprobe seeds", None)
        .expect("header");
    all.push((
        "capture_reader",
        "seed-pcapng-no-packets".into(),
        w.finish().expect("finish"),
    ));

    // parse_ports: what operators write, and what they get wrong.
    for (i, list) in [
        "443",
        "80,443",
        "8000-8010",
        "22,80,8000-8010",
        " 80 , 443 ,80",
        "1-1024",
        "65535",
        "0",
        "10-5",
        "80,,443",
        "http",
        "1-65535",
    ]
    .iter()
    .enumerate()
    {
        all.push((
            "parse_ports",
            format!("seed-{i:02}"),
            list.as_bytes().to_vec(),
        ));
    }
    all
}

/// Writes the seed files into `fuzz/corpus/<target>/` (run by hand after changing the seeds).
#[test]
#[ignore = "writes files into fuzz/corpus; run by hand to regenerate the seeds"]
fn write_seed_corpus() {
    for (target, name, bytes) in seeds() {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).expect("create the corpus directory");
        fs::write(dir.join(name), bytes).expect("write a seed");
    }
}

/// The seeds themselves pass every target (whether or not they have been written to disk).
#[test]
fn seeds_pass_their_targets() {
    for (target, name, bytes) in seeds() {
        let run = match target {
            "parse_frame" => fuzz_logic::parse_frame,
            "engine" => fuzz_logic::engine,
            "capture_reader" => fuzz_logic::capture_reader,
            _ => fuzz_logic::parse_ports,
        };
        assert!(
            catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_ok(),
            "{target}/{name}"
        );
    }
}
