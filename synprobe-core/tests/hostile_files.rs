//! Damaged capture files, end to end through `replay`: the attempts before the damage are analysed and reported,
//! then the damage comes back as an error that says where (byte offset) and what was wrong. Files are built in
//! memory with `PcapWriter` / `PcapNgWriter`, then damaged by hand.

use std::net::IpAddr;
use std::time::Instant;

use synprobe_core::build::{ethernet, icmp_error, IpSpec, QuoteLen, TcpSpec};
use synprobe_core::capture::{CaptureError, CaptureReader, PcapNgWriter, PcapWriter};
use synprobe_core::{replay, LinkType, ReplayOptions, ReplayStats, Timestamp, Verdict};

fn addr(s: &str) -> IpAddr {
    s.parse().expect("a literal address")
}

/// Ethernet frames of five attempts, in order: 443 open, 8080 closed, 3306 ICMP-rejected (frames 0-5), then
/// 25 and 22 (frames 6-8), which come after the damage in most tests.
fn frames() -> Vec<(Timestamp, Vec<u8>)> {
    let out = IpSpec::new(addr("198.18.0.2"), addr("198.18.9.9")).ttl(64);
    let back = IpSpec::new(addr("198.18.9.9"), addr("198.18.0.2")).ttl(57);
    let router = IpSpec::new(addr("198.18.4.1"), addr("198.18.0.2")).ttl(62);
    let syn = |port: u16| TcpSpec::syn(51000 + port % 1000, port, u32::from(port) * 1000);
    let b = |r: synprobe_core::Result<Vec<u8>>| ethernet(&r.expect("frame"));
    let rejected = syn(3306).emit(&out).expect("SYN");
    let list = vec![
        b(syn(443).emit(&out)),
        b(TcpSpec::syn_ack_to(&syn(443), 7).emit(&back)),
        b(syn(8080).emit(&out)),
        b(TcpSpec::rst_to(&syn(8080)).emit(&back)),
        ethernet(&rejected),
        b(icmp_error(&router, 3, 13, &rejected, QuoteLen::Full)),
        b(syn(25).emit(&out)),
        b(syn(22).emit(&out)),
        b(TcpSpec::rst_to(&syn(22)).emit(&back)),
    ];
    list.into_iter()
        .enumerate()
        .map(|(i, f)| {
            (
                Timestamp(1_700_000_000_000_000_000 + i as i64 * 20_000_000),
                f,
            )
        })
        .collect()
}

/// The ports of the attempts made of frames 0-5.
const BEFORE_DAMAGE: [u16; 3] = [443, 8080, 3306];

fn pcap(snaplen: u32) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, snaplen, false).expect("header");
    for (ts, f) in frames() {
        w.write(ts, &f, f.len() as u32).expect("record");
    }
    w.finish().expect("finish")
}

fn pcapng() -> Vec<u8> {
    let mut w =
        PcapNgWriter::new(Vec::new(), LinkType::ETHERNET, "synprobe tests", None).expect("header");
    for (ts, f) in frames() {
        w.write(ts, &f, f.len() as u32, None).expect("block");
    }
    w.finish().expect("finish")
}

/// The file offset of every frame's record (pcap) or block (pcapng), as the reader reports it.
fn offsets(file: &[u8]) -> Vec<usize> {
    let mut reader = CaptureReader::new(file).expect("a valid file");
    let mut out = Vec::new();
    while let Some(f) = reader.next_frame().expect("a valid file") {
        out.push(f.offset as usize);
    }
    out
}

/// What a replay reported: (server port, verdict) per attempt, the stats, the damage.
struct Replayed {
    attempts: Vec<(u16, Verdict)>,
    stats: ReplayStats,
    damage: Option<CaptureError>,
    skipped: u64,
}

fn replay_bytes(file: &[u8]) -> Replayed {
    let mut reader = CaptureReader::new(file).expect("the header is valid");
    let mut attempts = Vec::new();
    let (stats, damage) = replay(
        &mut reader,
        &ReplayOptions::default(),
        |r, _| {
            attempts.push((r.attempt.probe.key.server_port.0, r.judgement.verdict));
        },
        |_| {},
    )
    .expect("no filter, no setup error");
    Replayed {
        attempts,
        stats,
        damage,
        skipped: reader.skipped(),
    }
}

/// The attempts of frames 0-5 were reported with their verdicts, nothing after; the error is at `offset` and
/// says `words`.
fn assert_damage_after_three_attempts(r: &Replayed, offset: usize, words: &[&str]) {
    let ports: Vec<u16> = r.attempts.iter().map(|a| a.0).collect();
    assert_eq!(ports, BEFORE_DAMAGE);
    assert_eq!(
        r.attempts.iter().map(|a| a.1).collect::<Vec<_>>(),
        [Verdict::Open, Verdict::Closed, Verdict::IcmpRejected]
    );
    assert_eq!(r.stats.frames.frames, 6);
    let e = r.damage.as_ref().expect("the damage is reported");
    assert_eq!(e.offset(), Some(offset as u64), "{e}");
    let text = e.to_string();
    assert!(text.contains(&format!("offset {offset}")), "{text}");
    for w in words {
        assert!(text.contains(w), "`{text}` should say `{w}`");
    }
}

fn put_u32(file: &mut [u8], at: usize, v: u32) {
    file[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

// ---- refused before any frame ----

#[test]
fn zero_length_wrong_magic_and_cut_headers_are_refused_with_offset_zero() {
    let refused = |bytes: &[u8]| match CaptureReader::new(bytes) {
        Ok(_) => panic!("{} bytes accepted", bytes.len()),
        Err(e) => e,
    };
    let e = refused(&[]);
    assert!(matches!(e, CaptureError::Empty));
    assert!(e.to_string().contains("empty"));
    let e = refused(b"GET / HTTP/1.1\r\n\r\n");
    assert!(matches!(e, CaptureError::BadMagic { .. }));
    assert!(e.to_string().contains("not a pcap or pcapng file"), "{e}");
    for file in [pcap(262_144), pcapng()] {
        for cut in [2, 10, 23] {
            let e = refused(&file[..cut]);
            assert_eq!(e.offset(), Some(0), "{e}");
            assert!(e.to_string().contains("cut short"), "{e}");
        }
    }
}

// ---- classic pcap ----

#[test]
fn pcap_undamaged_reports_every_attempt() {
    let r = replay_bytes(&pcap(262_144));
    assert!(r.damage.is_none());
    assert_eq!(r.attempts.len(), 5);
    assert_eq!(r.stats.frames.frames, 9);
}

#[test]
fn pcap_truncated_record_header() {
    let file = pcap(262_144);
    let at = offsets(&file)[6];
    let r = replay_bytes(&file[..at + 7]);
    assert_damage_after_three_attempts(&r, at, &["record header", "7 of 16 bytes", "cut short"]);
}

#[test]
fn pcap_truncated_record_data() {
    let file = pcap(262_144);
    let at = offsets(&file)[6];
    let r = replay_bytes(&file[..at + 16 + 5]);
    assert_damage_after_three_attempts(&r, at + 16, &["the data of a record", "5 of 60 bytes"]);
}

#[test]
fn pcap_caplen_over_the_limit_is_damage() {
    let file = pcap(262_144);
    let at = offsets(&file)[6];
    let mut damaged = file.clone();
    put_u32(&mut damaged, at + 8, 300_000);
    let r = replay_bytes(&damaged);
    assert_damage_after_three_attempts(
        &r,
        at,
        &["claims 300000 captured bytes", "limit of 262144", "damaged"],
    );
}

#[test]
fn pcap_absurd_caplen_is_refused_without_reading_or_allocating_4_gib() {
    let file = pcap(262_144);
    let at = offsets(&file)[6];
    let mut damaged = file.clone();
    put_u32(&mut damaged, at + 8, u32::MAX);
    let started = Instant::now();
    let r = replay_bytes(&damaged);
    assert!(started.elapsed().as_secs() < 2);
    assert_damage_after_three_attempts(&r, at, &["claims 4294967295 captured bytes"]);
}

#[test]
fn pcap_caplen_over_a_small_snaplen_is_tolerated() {
    // The writer cut nothing (a 64-byte snaplen is only declared), so every record is longer than the snaplen:
    // damaged files declare 0 or 1 and still hold data. Everything is read.
    let mut file = pcap(262_144);
    put_u32(&mut file, 16, 64);
    let r = replay_bytes(&file);
    assert!(r.damage.is_none());
    assert_eq!(r.attempts.len(), 5);
}

// ---- pcapng ----

#[test]
fn pcapng_undamaged_reports_every_attempt() {
    let r = replay_bytes(&pcapng());
    assert!(r.damage.is_none());
    assert_eq!(r.attempts.len(), 5);
}

/// A pcapng block (little-endian).
fn block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let total = (12 + body.len()) as u32;
    let mut b = block_type.to_le_bytes().to_vec();
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

#[test]
fn pcapng_unknown_blocks_are_skipped_and_counted() {
    let file = pcapng();
    let at = offsets(&file)[3];
    let mut with_unknown = file[..at].to_vec();
    // An unknown type, a custom block, a name resolution block, an interface statistics block.
    with_unknown.extend(block(0x0000_0bad, &[0xee; 20]));
    with_unknown.extend(block(0x0000_0bad, &[]));
    with_unknown.extend(block(0x4000_0bad, &[0, 0, 0x7e, 0xd9, 1, 2, 3, 4]));
    with_unknown.extend(block(4, &[0; 4]));
    with_unknown.extend(block(5, &[0; 12]));
    with_unknown.extend_from_slice(&file[at..]);
    let r = replay_bytes(&with_unknown);
    assert!(r.damage.is_none(), "{:?}", r.damage);
    assert_eq!(r.attempts.len(), 5);
    assert_eq!(r.skipped, 5);
}

#[test]
fn pcapng_block_length_not_a_multiple_of_4() {
    let file = pcapng();
    let at = offsets(&file)[6];
    let mut damaged = file.clone();
    put_u32(&mut damaged, at + 4, 93);
    let r = replay_bytes(&damaged);
    assert_damage_after_three_attempts(
        &r,
        at,
        &["total length of 93 bytes", "not a multiple of 4"],
    );
}

#[test]
fn pcapng_block_longer_than_16_mib_is_refused_before_reading() {
    let file = pcapng();
    let at = offsets(&file)[6];
    let mut damaged = file.clone();
    put_u32(&mut damaged, at + 4, 0xffff_fff0);
    let started = Instant::now();
    let r = replay_bytes(&damaged);
    assert!(started.elapsed().as_secs() < 2);
    assert_damage_after_three_attempts(&r, at, &["more than the limit of 16777216"]);
}

#[test]
fn pcapng_trailing_length_mismatch() {
    let file = pcapng();
    let at = offsets(&file)[6];
    let len = u32::from_le_bytes(file[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
    let mut damaged = file.clone();
    put_u32(&mut damaged, at + len - 4, 12);
    let r = replay_bytes(&damaged);
    assert_damage_after_three_attempts(
        &r,
        at,
        &[
            &format!("starts with a total length of {len}"),
            "ends with 12",
        ],
    );
}

#[test]
fn pcapng_packet_naming_an_unknown_interface() {
    let file = pcapng();
    let at = offsets(&file)[6];
    let mut damaged = file.clone();
    put_u32(&mut damaged, at + 8, 5);
    let r = replay_bytes(&damaged);
    assert_damage_after_three_attempts(&r, at, &["refers to interface 5", "only 1 interface"]);
}

#[test]
fn pcapng_packet_overrunning_its_block() {
    let file = pcapng();
    let at = offsets(&file)[6];
    let mut damaged = file.clone();
    put_u32(&mut damaged, at + 20, 10_000);
    let r = replay_bytes(&damaged);
    assert_damage_after_three_attempts(&r, at, &["claims 10000 captured bytes", "room for only"]);
}

#[test]
fn pcapng_truncated_block_and_block_header() {
    let file = pcapng();
    let at = offsets(&file)[6];
    let r = replay_bytes(&file[..at + 40]);
    assert_damage_after_three_attempts(&r, at, &["a pcapng block", "40 of", "cut short"]);
    let r = replay_bytes(&file[..at + 5]);
    assert_damage_after_three_attempts(&r, at, &["a pcapng block header", "5 of 8 bytes"]);
}

#[test]
fn pcapng_second_section_with_a_bad_byte_order_magic() {
    let file = pcapng();
    let at = offsets(&file)[6];
    let mut damaged = file[..at].to_vec();
    let shb = block(
        0x0a0d_0d0a,
        &[
            0x12, 0x34, 0x56, 0x78, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );
    damaged.extend(shb);
    damaged.extend_from_slice(&file[at..]);
    let r = replay_bytes(&damaged);
    assert_damage_after_three_attempts(&r, at, &["byte-order magic 0x12345678"]);
}
