//! The public captures in `../shared/pcaps` (never copied into the repository). Counts, timestamps and
//! captured bytes were checked against `tshark -r FILE -T fields -e frame.number -e frame.time_epoch
//! -e frame.cap_len` (tshark 4.0). Without them every test here says SKIP and passes, except in CI (see
//! [`pcaps`]).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::{read_all, Owned};
use crate::capture::{CaptureError, CaptureReader, Format, LinkType, Part};
use crate::testing::pcaps;
use crate::time::Timestamp;

fn path(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "public capture {} is missing (see shared/pcaps/README.md); never copy the files into the repository",
        path.display()
    );
    path
}

fn open(dir: &Path, name: &str) -> CaptureReader<BufReader<File>> {
    match CaptureReader::open(&path(dir, name)) {
        Ok(reader) => reader,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// Reads a whole capture that must end cleanly.
fn read_clean(dir: &Path, name: &str) -> (CaptureReader<BufReader<File>>, Vec<Owned>) {
    let mut reader = open(dir, name);
    let (frames, err) = read_all(&mut reader);
    if let Some(e) = err {
        panic!("{name}: {e}");
    }
    (reader, frames)
}

/// Frame count, first and last timestamp (ns) and total captured bytes, as tshark reports them.
struct Expect {
    name: &'static str,
    frames: usize,
    first_ns: i64,
    last_ns: i64,
    captured: usize,
}

const CLEAN: &[Expect] = &[
    Expect {
        name: "nmap_tcpconnect_T1_synack.cap",
        frames: 27,
        first_ns: 1_274_122_633_300_320_000,
        last_ns: 1_274_122_637_306_398_000,
        captured: 1862,
    },
    Expect {
        name: "nmap_tcpconnect_T2_rst.cap",
        frames: 10,
        first_ns: 1_274_123_391_351_557_000,
        last_ns: 1_274_123_395_356_526_000,
        captured: 640,
    },
    Expect {
        name: "nmap_tcpconnect_T3_noreply.cap",
        frames: 8,
        first_ns: 1_274_123_591_351_558_000,
        last_ns: 1_274_123_596_344_413_000,
        captured: 592,
    },
    Expect {
        name: "ndpi_synscan.pcap",
        frames: 2011,
        first_ns: 1_278_275_056_274_870_000,
        last_ns: 1_278_275_079_360_213_000,
        captured: 116_672,
    },
    Expect {
        name: "ndpi_tcp_scan.pcapng",
        frames: 30,
        first_ns: 1_674_583_448_287_506_000,
        last_ns: 1_674_583_501_983_146_000,
        captured: 1772,
    },
    Expect {
        name: "ndpi_instagram_icmp_port_unreach.pcap",
        frames: 847,
        first_ns: 1_436_720_898_354_402_000,
        last_ns: 1_568_796_268_054_084_000,
        captured: 586_088,
    },
    Expect {
        name: "ndpi_gnutella_icmp_host_unreach.pcap",
        frames: 3905,
        first_ns: 22_000,
        last_ns: 600_247_226_000,
        captured: 578_418,
    },
    Expect {
        name: "sv_kill_router6_icmpv6_unreach.pcap",
        frames: 21,
        first_ns: 1_538_130_792_559_099_000,
        last_ns: 1_538_130_801_650_988_000,
        captured: 2318,
    },
    Expect {
        name: "zeek_ldap_modify-request_ipv6.pcapng",
        frames: 17,
        first_ns: 1_725_966_551_231_155_000,
        last_ns: 1_725_966_551_239_887_000,
        captured: 7129,
    },
    Expect {
        name: "ndpi_vmess_ipv6_synretx.pcapng",
        frames: 100,
        first_ns: 1_725_108_604_542_518_053,
        last_ns: 1_725_108_606_831_814_574,
        captured: 69_743,
    },
    Expect {
        name: "ndpi_syn_noreply.pcapng",
        frames: 8,
        first_ns: 1_680_119_132_471_406_976,
        last_ns: 1_690_371_378_748_110_000,
        captured: 592,
    },
    Expect {
        name: "zeek_trunc-hdr.pcap",
        frames: 1,
        first_ns: 1_404_148_886_981_015_000,
        last_ns: 1_404_148_886_981_015_000,
        captured: 8,
    },
];

#[test]
fn clean_captures_match_tshark() {
    let Some(dir) = pcaps("clean_captures_match_tshark") else {
        return;
    };
    for e in CLEAN {
        let (reader, frames) = read_clean(&dir, e.name);
        assert_eq!(frames.len(), e.frames, "{}: frame count", e.name);
        assert_eq!(
            frames[0].ts,
            Timestamp(e.first_ns),
            "{}: first timestamp",
            e.name
        );
        assert_eq!(
            frames[frames.len() - 1].ts,
            Timestamp(e.last_ns),
            "{}: last timestamp",
            e.name
        );
        assert_eq!(
            frames.iter().map(|f| f.data.len()).sum::<usize>(),
            e.captured,
            "{}: captured bytes",
            e.name
        );
        let size = std::fs::metadata(path(&dir, e.name))
            .map(|m| m.len())
            .unwrap_or(0);
        assert_eq!(
            reader.bytes_read(),
            size,
            "{}: consumed the whole file",
            e.name
        );
        assert!(
            frames.windows(2).all(|w| w[0].offset < w[1].offset),
            "{}: offsets increase",
            e.name
        );
    }
}

#[test]
fn tcp_scan_pcapng_is_classic_pcap_despite_its_name() {
    let Some(dir) = pcaps("tcp_scan_pcapng_is_classic_pcap_despite_its_name") else {
        return;
    };
    let reader = open(&dir, "ndpi_tcp_scan.pcapng");
    assert!(
        matches!(
            reader.format(),
            Format::Pcap {
                nanos: false,
                big_endian: false,
                version: (2, 4),
                link: LinkType::ETHERNET,
                ..
            }
        ),
        "{:?}",
        reader.format()
    );
}

#[test]
fn zeek_ldap_has_126_interfaces_and_uses_48() {
    let Some(dir) = pcaps("zeek_ldap_has_126_interfaces_and_uses_48") else {
        return;
    };
    let (reader, frames) = read_clean(&dir, "zeek_ldap_modify-request_ipv6.pcapng");
    assert_eq!(*reader.format(), Format::PcapNg);
    assert!(frames
        .iter()
        .all(|f| f.interface == 48 && f.link == LinkType::ETHERNET));
    assert_eq!(reader.skipped(), 5, "five name resolution blocks");
}

#[test]
fn vmess_is_linux_cooked_with_nanoseconds() {
    let Some(dir) = pcaps("vmess_is_linux_cooked_with_nanoseconds") else {
        return;
    };
    let (reader, frames) = read_clean(&dir, "ndpi_vmess_ipv6_synretx.pcapng");
    assert!(frames
        .iter()
        .all(|f| f.link == LinkType::LINUX_SLL && f.interface == 0));
    assert_eq!(frames[1].ts, Timestamp(1_725_108_604_542_542_477));
    assert_eq!(reader.skipped(), 1, "one interface statistics block");
}

#[test]
fn syn_noreply_has_two_interfaces_with_ns_and_us() {
    let Some(dir) = pcaps("syn_noreply_has_two_interfaces_with_ns_and_us") else {
        return;
    };
    let (_, frames) = read_clean(&dir, "ndpi_syn_noreply.pcapng");
    let interfaces: Vec<u32> = frames.iter().map(|f| f.interface).collect();
    assert_eq!(interfaces, [0, 0, 0, 0, 0, 1, 1, 1]);
    // Interface 0 counts nanoseconds, interface 1 microseconds (tshark: .471406976 and .710832000).
    assert_eq!(frames[0].ts, Timestamp(1_680_119_132_471_406_976));
    assert_eq!(frames[5].ts, Timestamp(1_690_371_375_710_832_000));
}

#[test]
fn trunc_hdr_has_snaplen_1_and_an_8_byte_frame() {
    let Some(dir) = pcaps("trunc_hdr_has_snaplen_1_and_an_8_byte_frame") else {
        return;
    };
    let (reader, frames) = read_clean(&dir, "zeek_trunc-hdr.pcap");
    assert!(matches!(reader.format(), Format::Pcap { snaplen: 1, .. }));
    assert_eq!((frames[0].data.len(), frames[0].orig_len), (8, 78));
}

#[test]
fn der_corrupt_gives_six_frames_then_the_oversized_record() {
    let Some(dir) = pcaps("der_corrupt_gives_six_frames_then_the_oversized_record") else {
        return;
    };
    let mut reader = open(&dir, "sv_DER-incomplete-header_corrupt.pcap");
    let (frames, err) = read_all(&mut reader);
    assert_eq!(frames.len(), 6);
    // Time goes back 21 years on frame 2 (tshark agrees: 761195582.033594).
    assert_eq!(frames[1].ts, Timestamp(761_195_582_033_594_000));
    assert_eq!(frames[5].data.len(), 4274);
    let err = err.expect("the damaged record is reported");
    assert!(
        matches!(
            err,
            CaptureError::RecordTooLarge {
                offset: 5035,
                caplen: 4_325_376,
                limit: 262_144,
                snaplen: 262_144
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "record at offset 5035 claims 4325376 captured bytes, more than the limit of 262144 (snaplen 262144): \
         the file is damaged"
    );
}

#[test]
fn fuzz_cutshort_gives_one_frame_then_truncated() {
    let Some(dir) = pcaps("fuzz_cutshort_gives_one_frame_then_truncated") else {
        return;
    };
    let mut reader = open(&dir, "ndpi_fuzz-2021-10-13_cutshort.pcap");
    assert!(
        matches!(
            reader.format(),
            Format::Pcap {
                nanos: true,
                version: (2, 0),
                snaplen: 0,
                link: LinkType::NULL,
                ..
            }
        ),
        "{:?}",
        reader.format()
    );
    let (frames, err) = read_all(&mut reader);
    // Version 2.0 has the lengths swapped (as libpcap and tshark read it): 197 captured of 524501.
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].data.len(), frames[0].orig_len, frames[0].link),
        (197, 524_501, LinkType::NULL)
    );
    // The nanosecond field is 1882137472 (> 1e9): added, so 980658803.882137472 (tshark prints
    // "980658802.1882137472").
    assert_eq!(frames[0].ts, Timestamp(980_658_803_882_137_472));
    let err = err.expect("the cut is reported");
    assert!(
        matches!(
            err,
            CaptureError::Truncated {
                part: Part::RecordHeader,
                offset: 237,
                wanted: 16,
                got: 2
            }
        ),
        "{err:?}"
    );
}

#[test]
fn invalid_version_1_is_refused() {
    let Some(dir) = pcaps("invalid_version_1_is_refused") else {
        return;
    };
    let err = match CaptureReader::open(&path(&dir, "libpcap_pcap-invalid-version-1.pcap")) {
        Ok(_) => panic!("version 1 accepted"),
        Err(e) => e,
    };
    assert!(
        matches!(
            err,
            CaptureError::UnsupportedVersion {
                major: 1,
                minor: 4,
                offset: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "unsupported pcap version 1.4 at offset 4 (synprobe reads pcap versions 2.0 to 2.4)"
    );
}
