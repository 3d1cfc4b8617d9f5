//! Criterion benches of replay's hot path, in nanoseconds per operation (BENCHMARKS.md has the figures):
//!
//! - `parse/*`: `parse_frame` of one Ethernet frame per class (SYN, SYN-ACK, RST, ICMP/ICMPv6 unreachable with a
//!   full or an 8-byte quote, a data segment, a DNS datagram);
//! - `matcher/*`: a new SYN, a reply that matches an attempt in flight (hit), a data segment that matches none
//!   (miss), a SYN retransmission, and an attempt expiring (closed and handed out), with 30,000 in flight;
//! - `verdict/*`: judging one attempt of each verdict against per-server baselines;
//! - `format/*`: a Wireshark-style trace line, and an attempt's JSON line (synprobe's writer and serde's);
//! - `read/*`: one record of a classic pcap and of a pcapng file, from memory;
//! - `engine/frame`: a whole frame through the engine (parse, match, judge) on generated traffic.
//!
//! `cargo bench -p synprobe-bench --bench hot_path`

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use synprobe_bench::{generate, Config};
use synprobe_core::analysis::{Analyzer, AnalyzerConfig};
use synprobe_core::build::{ethernet, icmp_error, udp, IpSpec, QuoteLen, TcpSpec, Timeline};
use synprobe_core::capture::{CaptureReader, PcapNgWriter};
use synprobe_core::matcher::{MatchConfig, Matcher};
use synprobe_core::record::{write_attempt_json, AttemptRecord};
use synprobe_core::trace::{frame_line, is_from_server, SeqBases};
use synprobe_core::wire::TcpFlags;
use synprobe_core::{
    parse_frame, Engine, EngineConfig, FrameRole, LinkType, Observed, Report, Timestamp, Verdict,
};

fn addr(a: &str) -> IpAddr {
    a.parse().expect("a literal address")
}

/// One frame of each class a replay meets, as captured (Ethernet, padded to 60 bytes).
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let out = IpSpec::new(addr("198.18.0.2"), addr("198.18.9.9")).ttl(64);
    let back = out.reversed().ttl(57);
    let router = IpSpec::new(addr("198.18.4.1"), addr("198.18.0.2")).ttl(253);
    let out6 = IpSpec::new(addr("2001:db8::2"), addr("2001:db8:9::9")).flow_label(0x1234);
    let router6 = IpSpec::new(addr("2001:db8:4::1"), addr("2001:db8::2")).ttl(62);
    let syn = TcpSpec::syn(51234, 443, 0x1f2e_3d4c).linux_options();
    let syn_bytes = syn.emit(&out).expect("syn");
    let syn6_bytes = syn.emit(&out6).expect("syn");
    let data = TcpSpec::syn(443, 51234, 77)
        .flags(TcpFlags::ACK | TcpFlags::PSH)
        .payload(1400);
    let build = |r: synprobe_core::Result<Vec<u8>>| ethernet(&r.expect("build"));
    vec![
        ("syn", ethernet(&syn_bytes)),
        ("syn_ack", build(TcpSpec::syn_ack_to(&syn, 5).emit(&back))),
        ("rst_ack", build(TcpSpec::rst_to(&syn).emit(&back))),
        (
            "icmp_unreachable_full_quote",
            build(icmp_error(&router, 3, 13, &syn_bytes, QuoteLen::Full)),
        ),
        (
            "icmp_unreachable_8_byte_quote",
            build(icmp_error(&router, 3, 13, &syn_bytes, QuoteLen::Minimal)),
        ),
        ("syn_v6", ethernet(&syn6_bytes)),
        (
            "icmpv6_unreachable",
            build(icmp_error(&router6, 1, 1, &syn6_bytes, QuoteLen::Full)),
        ),
        ("data_1400", build(data.emit(&back))),
        ("dns_udp", build(udp(&out, 53000, 53, 40))),
    ]
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in frames() {
        assert!(
            parse_frame(LinkType::ETHERNET, &frame).is_ok(),
            "{name} parses"
        );
        g.bench_function(name, |b| {
            b.iter(|| parse_frame(LinkType::ETHERNET, black_box(&frame)))
        });
    }
    g.finish();
}

const IN_FLIGHT: u32 = 30_000;

fn seen(frame: u64, ts: Timestamp, bytes: &[u8]) -> Observed {
    Observed {
        frame,
        ts,
        len: bytes.len() as u32,
        packet: parse_frame(LinkType::RAW, bytes).expect("bench frame parses"),
    }
}

/// SYNs from 30,000 clients, their SYN-ACKs, their retransmissions, and data segments of other connections.
struct MatcherLoad {
    syns: Vec<Observed>,
    retransmissions: Vec<Observed>,
    replies: Vec<Observed>,
    unrelated: Vec<Observed>,
}

fn matcher_load() -> MatcherLoad {
    let t0 = Timestamp(1_700_000_000_000_000_000);
    let mut load = MatcherLoad {
        syns: Vec::new(),
        retransmissions: Vec::new(),
        replies: Vec::new(),
        unrelated: Vec::new(),
    };
    for i in 0..IN_FLIGHT {
        let client = IpAddr::V4(std::net::Ipv4Addr::from(0x0a01_0000 + i));
        let server = IpAddr::V4(std::net::Ipv4Addr::from(0xc612_0000 + i % 3000));
        let ip = IpSpec::new(client, server);
        let syn = TcpSpec::syn(32768 + (i % 20_000) as u16, 443, i).linux_options();
        let bytes = syn.emit(&ip).expect("syn");
        let at = t0.plus(synprobe_core::Duration(i64::from(i) * 1000));
        load.syns.push(seen(u64::from(i), at, &bytes));
        load.retransmissions.push(seen(
            u64::from(i),
            at.plus(synprobe_core::Duration::from_millis(1000)),
            &bytes,
        ));
        let reply = TcpSpec::syn_ack_to(&syn, 7)
            .emit(&ip.reversed().ttl(57))
            .expect("syn-ack");
        load.replies.push(seen(u64::from(i), at, &reply));
        let data = TcpSpec::syn(61000, 443, 5)
            .flags(TcpFlags::ACK)
            .payload(1000)
            .emit(&ip)
            .expect("data");
        load.unrelated.push(seen(u64::from(i), at, &data));
    }
    load
}

/// A matcher with every SYN of the load in flight.
fn loaded(load: &MatcherLoad) -> Matcher {
    let mut m = Matcher::new(MatchConfig::default());
    for s in &load.syns {
        m.observe(s);
    }
    m
}

/// Time `op` on each frame of `frames` against a freshly loaded matcher (loading is not timed), `iters` times.
fn per_frame(
    load: &MatcherLoad,
    frames: &[Observed],
    iters: u64,
    op: impl Fn(&mut Matcher, &Observed),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0u64;
    while done < iters {
        let mut m = loaded(load);
        let n = (iters - done).min(frames.len() as u64) as usize;
        let start = Instant::now();
        for f in &frames[..n] {
            op(&mut m, f);
        }
        total += start.elapsed();
        done += n as u64;
        drop(black_box(m));
    }
    total
}

fn matcher(c: &mut Criterion) {
    let load = matcher_load();
    let mut g = c.benchmark_group("matcher");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.bench_function("new_syn", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let mut m = Matcher::new(MatchConfig::default());
                let n = (iters - done).min(load.syns.len() as u64) as usize;
                let start = Instant::now();
                for s in &load.syns[..n] {
                    m.observe(s);
                }
                total += start.elapsed();
                done += n as u64;
                drop(black_box(m));
            }
            total
        })
    });
    g.bench_function("hit_syn_ack", |b| {
        b.iter_custom(|iters| per_frame(&load, &load.replies, iters, |m, f| m.observe(f)))
    });
    g.bench_function("miss_data_segment", |b| {
        b.iter_custom(|iters| per_frame(&load, &load.unrelated, iters, |m, f| m.observe(f)))
    });
    g.bench_function("retransmission", |b| {
        b.iter_custom(|iters| per_frame(&load, &load.retransmissions, iters, |m, f| m.observe(f)))
    });
    // Every attempt expires and is handed out as an `Attempt`.
    g.bench_function("expiry", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            let far = Timestamp(i64::MAX / 2);
            while done < iters {
                let mut m = loaded(&load);
                let start = Instant::now();
                m.advance(far);
                let mut n = 0u64;
                while let Some(a) = m.pop_closed() {
                    black_box(&a);
                    n += 1;
                }
                total += start.elapsed();
                done += n;
            }
            total.mul_f64(iters as f64 / done as f64)
        })
    });
    g.finish();
}

/// One report of each verdict, from a small capture (IPv4 and IPv6) judged by the engine.
fn verdict_reports() -> Vec<Report> {
    let mut t = Timeline::starting_at(1_763_700_000);
    let (c, s, r) = (addr("198.18.0.2"), addr("198.18.9.9"), addr("198.18.4.1"));
    let out = IpSpec::new(c, s).ttl(64).tos(0x48);
    let back = |ttl: u8| IpSpec::new(s, c).ttl(ttl).tos(0x48);
    let router = IpSpec::new(r, c).ttl(253);
    let syn = |port: u16| TcpSpec::syn(50_000 + port, port, u32::from(port)).linux_options();
    let e = |r: synprobe_core::Result<Vec<u8>>| r.expect("build");
    t.at(0.0, e(syn(443).emit(&out)));
    t.at(20.0, e(TcpSpec::syn_ack_to(&syn(443), 1).emit(&back(57))));
    t.at(100.0, e(syn(81).emit(&out)));
    t.at(118.0, e(TcpSpec::rst_to(&syn(81)).emit(&back(57))));
    t.at(200.0, e(syn(22).emit(&out)));
    t.at(209.0, e(TcpSpec::rst_to(&syn(22)).emit(&back(61).tos(0))));
    let quoted = e(syn(3306).emit(&out));
    t.at(300.0, quoted.clone());
    t.at(
        303.0,
        e(icmp_error(&router, 3, 13, &quoted, QuoteLen::Minimal)),
    );
    let lost = e(syn(80).emit(&out));
    t.at(400.0, lost.clone());
    t.at(404.0, e(icmp_error(&router, 3, 1, &lost, QuoteLen::Full)));
    let dropped = e(syn(25).emit(&out));
    for ms in [500.0, 1500.0, 3500.0] {
        t.at(ms, dropped.clone());
    }
    t.judge(EngineConfig::default())
}

fn verdict(c: &mut Criterion) {
    let reports = verdict_reports();
    // An analyzer that has learnt the server's baseline from every attempt.
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    for r in &reports {
        analyzer.push(r.attempt.clone());
    }
    analyzer.finish();
    while analyzer.pop().is_some() {}
    let mut g = c.benchmark_group("verdict");
    g.throughput(Throughput::Elements(1));
    for v in Verdict::ALL {
        let r = reports
            .iter()
            .find(|r| r.judgement.verdict == v)
            .expect("a report of each verdict");
        assert_eq!(analyzer.judge(&r.attempt).verdict, v);
        g.bench_function(v.as_str(), |b| {
            b.iter(|| analyzer.judge(black_box(&r.attempt)))
        });
    }
    g.finish();
}

fn format(c: &mut Criterion) {
    let reports = verdict_reports();
    let t0 = Timestamp(1_763_700_000_000_000_000);
    let mut g = c.benchmark_group("format");
    g.throughput(Throughput::Elements(1));
    let rst = reports
        .iter()
        .find(|r| r.judgement.verdict == Verdict::FirewallRst)
        .expect("a firewall-rst report");
    let icmp = reports
        .iter()
        .find(|r| r.judgement.verdict == Verdict::IcmpRejected)
        .expect("an icmp-rejected report");
    for (name, r) in [("trace_line_rst", rst), ("trace_line_icmp", icmp)] {
        let a = &r.attempt;
        let bases = SeqBases::of(a);
        let reply = &a.replies[0].seen;
        let from_server = is_from_server(a, reply);
        g.bench_function(name, |b| {
            b.iter(|| frame_line(black_box(reply), FrameRole::Reply, &bases, from_server, t0))
        });
    }
    let mut buf = Vec::with_capacity(4096);
    g.bench_function("json_attempt_synprobe_writer", |b| {
        b.iter(|| {
            buf.clear();
            write_attempt_json(&mut buf, black_box(rst), t0, false, false);
            buf.len()
        })
    });
    g.bench_function("json_attempt_serde", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(
                &mut buf,
                &AttemptRecord::new(black_box(rst), t0, false, false),
            )
            .expect("serializes");
            buf.len()
        })
    });
    g.finish();
}

/// A generated capture of `n` frames, as classic pcap and as pcapng.
fn captures(n: u64) -> (Vec<u8>, Vec<u8>) {
    let mut pcap = Vec::new();
    generate(
        &Config {
            packets: n,
            ..Config::default()
        },
        &mut pcap,
    )
    .expect("generate");
    let mut w = PcapNgWriter::new(Vec::new(), LinkType::ETHERNET, "synprobe-bench", None)
        .expect("pcapng header");
    let mut r = CaptureReader::new(&pcap[..]).expect("reads");
    while let Some(f) = r.next_frame().expect("clean") {
        // The pcapng writer flushes per packet; into a Vec that costs nothing.
        w.write(f.ts, f.data, f.orig_len, None).expect("epb");
    }
    (pcap, w.finish().expect("finish"))
}

fn read(c: &mut Criterion) {
    const N: u64 = 100_000;
    let (pcap, pcapng) = captures(N);
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(N));
    for (name, bytes) in [("pcap_record", &pcap), ("pcapng_block", &pcapng)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut r = CaptureReader::new(&bytes[..]).expect("reads");
                let mut n = 0u64;
                while let Ok(Some(f)) = r.next_frame() {
                    n += u64::from(f.orig_len);
                }
                n
            })
        });
    }
    g.finish();
}

fn engine(c: &mut Criterion) {
    const N: u64 = 50_000;
    let (pcap, _) = captures(N);
    let mut frames = Vec::new();
    let mut r = CaptureReader::new(&pcap[..]).expect("reads");
    while let Some(f) = r.next_frame().expect("clean") {
        frames.push((f.ts, f.data.to_vec()));
    }
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("frame", |b| {
        b.iter_batched(
            || Engine::new(EngineConfig::default()).expect("valid settings"),
            |mut e| {
                let mut reports = 0u64;
                for (ts, data) in &frames {
                    let _ = e.push_frame(LinkType::ETHERNET, *ts, data, data.len() as u32);
                    while let Some(r) = e.pop_report() {
                        reports += u64::from(r.attempt.syn_count);
                    }
                }
                e.finish();
                while let Some(r) = e.pop_report() {
                    reports += u64::from(r.attempt.syn_count);
                }
                reports
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = parse, matcher, verdict, format, read, engine
}
criterion_main!(benches);
