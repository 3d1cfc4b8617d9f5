//! pcapng, built block by block.

use super::build_pcapng::{block, epb, epb_claiming, idb, pb, shb, spb};
use super::{read_all, read_bytes, refused, Writer};
use crate::capture::{CaptureError, CaptureReader, LengthProblem, LinkType, Part};
use crate::time::Timestamp;

const T: u64 = 1_700_000_000;

#[test]
fn two_interfaces_with_different_link_types_and_resolutions() {
    for be in [false, true] {
        let mut bytes = shb(be);
        bytes.extend(idb(be, 1, 65_535, None, None)); // Ethernet, default microseconds
        bytes.extend(idb(be, 113, 262_144, Some(9), None)); // Linux SLL, nanoseconds
        bytes.extend(epb(be, 0, T * 1_000_000 + 5, &[1; 60], 60));
        bytes.extend(epb(be, 1, T * 1_000_000_000 + 7, &[2; 61], 1500));
        bytes.extend(epb(be, 0, T * 1_000_000 + 6, &[3; 62], 62));
        let mut reader = CaptureReader::new(&bytes[..]).expect("valid section");
        let (frames, err) = read_all(&mut reader);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames
                .iter()
                .map(|f| (f.interface, f.link))
                .collect::<Vec<_>>(),
            [
                (0, LinkType::ETHERNET),
                (1, LinkType::LINUX_SLL),
                (0, LinkType::ETHERNET)
            ]
        );
        let base = T as i64 * 1_000_000_000;
        assert_eq!(frames[0].ts, Timestamp(base + 5_000));
        assert_eq!(frames[1].ts, Timestamp(base + 7));
        assert_eq!(frames[2].ts, Timestamp(base + 6_000));
        assert_eq!(frames[1].data, [2; 61]);
        assert_eq!(frames[1].orig_len, 1500);
        let first_epb =
            28 + idb(be, 1, 65_535, None, None).len() + idb(be, 113, 262_144, Some(9), None).len();
        assert_eq!(frames[0].offset, first_epb as u64);
        assert_eq!(reader.skipped(), 0);
    }
}

#[test]
fn other_resolutions_and_ts_offset() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 1, 0, Some(12), None)); // picoseconds
    bytes.extend(idb(false, 1, 0, Some(0x80 | 20), None)); // 2^-20 s
    bytes.extend(idb(false, 1, 0, Some(0), Some(-3600))); // seconds, one hour back
    bytes.extend(idb(false, 1, 0, Some(3), Some(T as i64))); // milliseconds after T
    bytes.extend(epb(false, 0, 1_500_000_000_123_456, &[0; 4], 4));
    bytes.extend(epb(false, 1, (3 << 20) | (1 << 19), &[0; 4], 4));
    bytes.extend(epb(false, 2, 7_200, &[0; 4], 4));
    bytes.extend(epb(false, 3, 250, &[0; 4], 4));
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    let ts: Vec<i64> = frames.iter().map(|f| f.ts.0).collect();
    assert_eq!(
        ts,
        [
            1_500_000_000_123,
            3_500_000_000,
            3_600_000_000_000,
            T as i64 * 1_000_000_000 + 250_000_000
        ]
    );
}

#[test]
fn huge_timestamps_saturate() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 1, 0, Some(0), Some(i64::MAX)));
    bytes.extend(epb(false, 0, u64::MAX, &[0; 4], 4));
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames[0].ts, Timestamp(i64::MAX));
}

#[test]
fn unknown_and_non_packet_blocks_are_skipped_and_counted() {
    let mut bytes = shb(false);
    bytes.extend(block(false, 4, &[0; 8])); // name resolution
    bytes.extend(idb(false, 1, 0, None, None));
    bytes.extend(block(false, 5, &[0; 12])); // interface statistics
    bytes.extend(block(false, 0x0000_0bad, &[1, 2, 3])); // custom
    bytes.extend(epb(false, 0, 1, &[5; 60], 60));
    bytes.extend(block(false, 0x8000_1234, &[])); // local use, empty body
    bytes.extend(block(false, 0x0000_000a, &[0; 20])); // decryption secrets
    let mut reader = CaptureReader::new(&bytes[..]).expect("valid section");
    let (frames, err) = read_all(&mut reader);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames.len(), 1);
    assert_eq!(reader.skipped(), 5);
    assert_eq!(reader.bytes_read(), bytes.len() as u64);
}

#[test]
fn block_length_not_a_multiple_of_4() {
    let mut bytes = shb(false);
    let at = bytes.len() as u64;
    let mut w = Writer::new(false);
    w.u32(1).u32(21).bytes(&[0; 9]).u32(21);
    bytes.extend(w.out);
    let (_, err) = read_bytes(&bytes);
    let err = err.expect("an error");
    assert!(
        matches!(
            err,
            CaptureError::BadBlockLength { offset, block_type: 1, length: 21, problem: LengthProblem::NotMultipleOf4 }
                if offset == at
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "pcapng block at offset 28 (type 0x00000001) has a total length of 21 bytes, not a multiple of 4: the \
         file is damaged"
    );
}

#[test]
fn block_shorter_than_its_type_allows() {
    let mut bytes = shb(false);
    bytes.extend(block(false, 6, &[0; 8])); // an EPB needs 32 bytes
    let (_, err) = read_bytes(&bytes);
    assert!(
        matches!(
            err,
            Some(CaptureError::BadBlockLength {
                length: 20,
                problem: LengthProblem::TooShort { min: 32 },
                ..
            })
        ),
        "{err:?}"
    );
    let mut w = Writer::new(false);
    w.u32(0x99).u32(8);
    let mut bytes = shb(false);
    bytes.extend(w.out);
    let (_, err) = read_bytes(&bytes);
    assert!(matches!(
        err,
        Some(CaptureError::BadBlockLength {
            problem: LengthProblem::TooShort { min: 12 },
            ..
        })
    ));
}

#[test]
fn block_longer_than_16_mib_is_refused_before_reading() {
    let mut bytes = shb(true);
    let mut w = Writer::new(true);
    w.u32(6).u32(0xfff0_0000);
    bytes.extend(w.out);
    let (_, err) = read_bytes(&bytes);
    let err = err.expect("an error");
    assert!(
        matches!(
            err,
            CaptureError::BadBlockLength {
                offset: 28,
                problem: LengthProblem::TooLong { max: 16_777_216 },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn trailing_length_differs() {
    let mut bytes = shb(false);
    let mut damaged = idb(false, 1, 0, None, None);
    let n = damaged.len();
    damaged[n - 4] ^= 0x40;
    bytes.extend(damaged);
    let (_, err) = read_bytes(&bytes);
    let err = err.expect("an error");
    assert!(
        matches!(
            err,
            CaptureError::BlockLengthMismatch {
                offset: 28,
                block_type: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("starts with a total length of"),
        "{err}"
    );
}

#[test]
fn epb_with_unknown_interface() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 1, 0, None, None));
    bytes.extend(idb(false, 1, 0, None, None));
    let at = bytes.len() as u64;
    bytes.extend(epb(false, 2, 0, &[0; 60], 60));
    let (_, err) = read_bytes(&bytes);
    let err = err.expect("an error");
    assert!(
        matches!(err, CaptureError::UnknownInterface { offset, interface: 2, known: 2 } if offset == at),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "packet block at offset {at} refers to interface 2, but its section describes only 2 interface(s): \
             the file is damaged"
        )
    );
}

#[test]
fn epb_before_any_interface() {
    let mut bytes = shb(false);
    bytes.extend(epb(false, 0, 0, &[0; 60], 60));
    let (_, err) = read_bytes(&bytes);
    assert!(
        matches!(
            err,
            Some(CaptureError::UnknownInterface {
                interface: 0,
                known: 0,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn epb_claiming_more_than_its_block() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 1, 0, None, None));
    bytes.extend(epb_claiming(false, 0, 64, &[0; 60]));
    let (_, err) = read_bytes(&bytes);
    assert!(
        matches!(
            err,
            Some(CaptureError::PacketOverrunsBlock {
                caplen: 64,
                room: 60,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn shb_switching_byte_order_resets_interfaces() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 1, 0, None, None));
    bytes.extend(epb(false, 0, 1_000_000, &[1; 60], 60));
    let second = bytes.len() as u64;
    bytes.extend(shb(true));
    bytes.extend(idb(true, 229, 0, Some(9), None));
    bytes.extend(idb(true, 101, 0, None, None));
    bytes.extend(epb(true, 1, 2_000_000, &[2; 40], 40));
    bytes.extend(epb(true, 0, 3_000_000_000, &[3; 40], 40));
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        frames
            .iter()
            .map(|f| (f.interface, f.link, f.ts.0))
            .collect::<Vec<_>>(),
        [
            (0, LinkType::ETHERNET, 1_000_000_000),
            (1, LinkType::RAW, 2_000_000_000),
            (0, LinkType::IPV6, 3_000_000_000)
        ]
    );
    assert!(frames[1].offset > second);

    // The new section forgets the old one's interfaces.
    let mut bytes = shb(true);
    bytes.extend(idb(true, 1, 0, None, None));
    bytes.extend(idb(true, 1, 0, None, None));
    bytes.extend(shb(false));
    bytes.extend(idb(false, 1, 0, None, None));
    bytes.extend(epb(false, 1, 0, &[0; 60], 60));
    let (_, err) = read_bytes(&bytes);
    assert!(
        matches!(
            err,
            Some(CaptureError::UnknownInterface {
                interface: 1,
                known: 1,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn simple_packet_uses_interface_0_and_the_last_timestamp() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 1, 50, Some(9), None));
    bytes.extend(spb(false, 60, &[1; 60])); // before any timestamp: 0
    bytes.extend(epb(false, 0, 42, &[2; 50], 50));
    bytes.extend(spb(false, 60, &[3; 60])); // trimmed to snaplen 50
    bytes.extend(spb(false, 30, &[4; 30]));
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        frames
            .iter()
            .map(|f| (f.ts.0, f.data.len(), f.orig_len, f.interface))
            .collect::<Vec<_>>(),
        [
            (0, 50, 60, 0),
            (42, 50, 50, 0),
            (42, 50, 60, 0),
            (42, 30, 30, 0)
        ]
    );
    assert_eq!(frames[3].data, [4; 30]);
}

#[test]
fn simple_packet_without_interface() {
    let mut bytes = shb(false);
    bytes.extend(spb(false, 30, &[4; 30]));
    let (_, err) = read_bytes(&bytes);
    assert!(
        matches!(
            err,
            Some(CaptureError::UnknownInterface {
                interface: 0,
                known: 0,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn obsolete_packet_block() {
    let mut bytes = shb(true);
    bytes.extend(idb(true, 1, 0, None, None));
    bytes.extend(idb(true, 0, 0, None, None));
    bytes.extend(pb(true, 1, 1_000_001, &[9; 33]));
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        (frames[0].interface, frames[0].link, frames[0].ts.0),
        (1, LinkType::NULL, 1_000_001_000)
    );
    assert_eq!(frames[0].data, [9; 33]);
}

#[test]
fn truncated_block_and_block_header() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 1, 0, None, None));
    let at = bytes.len() as u64;
    let packet = epb(false, 0, 0, &[0; 60], 60);
    let mut cut = bytes.clone();
    cut.extend_from_slice(&packet[..50]);
    let (_, err) = read_bytes(&cut);
    let err = err.expect("an error");
    assert!(
        matches!(err, CaptureError::Truncated { part: Part::Block, offset, wanted, got: 50 }
            if offset == at && wanted == packet.len() as u64),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(&format!(
        "file ends inside a pcapng block at offset {at} (50 of "
    )));

    let mut cut = bytes.clone();
    cut.extend_from_slice(&packet[..5]);
    let (_, err) = read_bytes(&cut);
    assert!(
        matches!(
            err,
            Some(CaptureError::Truncated {
                part: Part::BlockHeader,
                wanted: 8,
                got: 5,
                ..
            })
        ),
        "{err:?}"
    );

    // A section header needs 12 bytes before its byte order is known.
    let mut cut = bytes;
    cut.extend_from_slice(&shb(true)[..10]);
    let (_, err) = read_bytes(&cut);
    assert!(
        matches!(
            err,
            Some(CaptureError::Truncated {
                part: Part::BlockHeader,
                wanted: 12,
                got: 10,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_first_section_header() {
    let err = refused(&shb(false)[..20]);
    assert!(
        matches!(
            err,
            CaptureError::Truncated {
                part: Part::Block,
                offset: 0,
                wanted: 28,
                got: 20
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bad_byte_order_magic() {
    let mut bytes = shb(false);
    bytes[8..12].copy_from_slice(&[1, 2, 3, 4]);
    let err = refused(&bytes);
    assert!(
        matches!(
            err,
            CaptureError::BadByteOrderMagic {
                offset: 0,
                magic: 0x0102_0304
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pcapng_version_2_is_refused() {
    let mut bytes = shb(true);
    bytes[12..14].copy_from_slice(&[0, 2]);
    let err = refused(&bytes);
    assert!(
        matches!(
            err,
            CaptureError::UnsupportedVersion {
                format: "pcapng",
                major: 2,
                minor: 0,
                offset: 12,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "unsupported pcapng version 2.0 at offset 12 (synprobe reads pcapng version 1.x)"
    );
}

#[test]
fn section_with_no_packets_ends_cleanly() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 1, 0, None, None));
    let mut reader = CaptureReader::new(&bytes[..]).expect("valid section");
    assert!(matches!(reader.next_frame(), Ok(None)));
    assert_eq!(reader.bytes_read(), bytes.len() as u64);
}

#[test]
fn interface_option_running_past_the_block_is_ignored() {
    let mut body = Writer::new(false);
    body.u16(1)
        .u16(0)
        .u32(0)
        .u16(9)
        .u16(200)
        .bytes(&[9, 0, 0, 0]);
    let mut bytes = shb(false);
    bytes.extend(block(false, 1, &body.out));
    bytes.extend(epb(false, 0, 7, &[0; 20], 20));
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames[0].ts, Timestamp(7_000)); // default microseconds: the bad option was not applied
}
