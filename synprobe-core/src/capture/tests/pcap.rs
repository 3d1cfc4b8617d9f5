//! Classic pcap, built byte by byte.

use super::build_pcap::{file, header, record};
use super::{read_bytes, refused};
use crate::capture::{CaptureError, CaptureReader, Format, LinkType, Part};
use crate::time::Timestamp;

/// Two frames in the given byte order and resolution come back with their data, lengths, offsets and
/// timestamps.
fn two_frames(big_endian: bool, nanos: bool) {
    let a: &[u8] = &[0xaa; 60];
    let b: &[u8] = &[0xbb; 74];
    let bytes = file(
        big_endian,
        nanos,
        &[(1_700_000_000, 123_456, a), (1_700_000_001, 999_999, b)],
    );
    let reader = CaptureReader::new(&bytes[..]).expect("valid header");
    assert_eq!(
        *reader.format(),
        Format::Pcap {
            nanos,
            big_endian,
            version: (2, 4),
            snaplen: 65_535,
            link: LinkType::ETHERNET
        }
    );
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames.len(), 2);
    let unit = if nanos { 1 } else { 1_000 };
    assert_eq!(
        frames[0].ts,
        Timestamp(1_700_000_000 * 1_000_000_000 + 123_456 * unit)
    );
    assert_eq!(
        frames[1].ts,
        Timestamp(1_700_000_001 * 1_000_000_000 + 999_999 * unit)
    );
    assert_eq!(frames[0].data, a);
    assert_eq!(frames[1].data, b);
    assert_eq!((frames[0].orig_len, frames[1].orig_len), (60, 74));
    assert_eq!((frames[0].offset, frames[1].offset), (24, 24 + 16 + 60));
    assert!(frames
        .iter()
        .all(|f| f.link == LinkType::ETHERNET && f.interface == 0));
}

#[test]
fn little_endian_micros() {
    two_frames(false, false);
}

#[test]
fn big_endian_micros() {
    two_frames(true, false);
}

#[test]
fn little_endian_nanos() {
    two_frames(false, true);
}

#[test]
fn big_endian_nanos() {
    two_frames(true, true);
}

#[test]
fn header_only_is_a_clean_empty_capture() {
    let bytes = header(false, false, (2, 4), 65_535, 1);
    let mut reader = CaptureReader::new(&bytes[..]).expect("valid header");
    assert!(matches!(reader.next_frame(), Ok(None)));
    assert_eq!(reader.bytes_read(), 24);
}

#[test]
fn truncated_file_header() {
    let bytes = header(false, false, (2, 4), 65_535, 1);
    let err = refused(&bytes[..10]);
    assert!(
        matches!(
            err,
            CaptureError::Truncated {
                part: Part::FileHeader,
                offset: 0,
                wanted: 24,
                got: 10
            }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_record_header() {
    let mut bytes = file(false, false, &[(1, 0, &[1; 60])]);
    bytes.extend_from_slice(&record(false, 2, 0, 60, 60, &[])[..8]);
    let (frames, err) = read_bytes(&bytes);
    assert_eq!(frames.len(), 1);
    let err = err.expect("an error");
    assert!(
        matches!(
            err,
            CaptureError::Truncated {
                part: Part::RecordHeader,
                offset: 100,
                wanted: 16,
                got: 8
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "file ends inside a record header at offset 100 (8 of 16 bytes): the capture was cut short"
    );
    assert_eq!(err.offset(), Some(100));
}

#[test]
fn truncated_record_data() {
    let mut bytes = file(true, true, &[(1, 0, &[1; 60])]);
    bytes.extend(record(true, 2, 0, 197, 524_501, &[7; 150]));
    let (frames, err) = read_bytes(&bytes);
    assert_eq!(frames.len(), 1);
    let err = err.expect("an error");
    assert!(
        matches!(
            err,
            CaptureError::Truncated {
                part: Part::RecordData,
                offset: 116,
                wanted: 197,
                got: 150
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "file ends inside the data of a record at offset 116 (150 of 197 bytes): the capture was cut short"
    );
}

#[test]
fn absurd_caplen_is_refused_before_reading_or_allocating() {
    let mut bytes = file(false, false, &[(1, 0, &[1; 60])]);
    bytes.extend(record(false, 2, 0, u32::MAX, 60, &[0; 60]));
    let (frames, err) = read_bytes(&bytes);
    assert_eq!(frames.len(), 1);
    let err = err.expect("an error");
    assert!(
        matches!(
            err,
            CaptureError::RecordTooLarge {
                offset: 100,
                caplen: u32::MAX,
                limit: 262_144,
                snaplen: 65_535
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "record at offset 100 claims 4294967295 captured bytes, more than the limit of 262144 (snaplen 65535): \
         the file is damaged"
    );
}

#[test]
fn caplen_just_over_the_limit_is_refused() {
    let mut bytes = header(false, false, (2, 4), 65_535, 1);
    bytes.extend(record(false, 2, 0, 262_145, 262_145, &[]));
    let (_, err) = read_bytes(&bytes);
    assert!(
        matches!(
            err,
            Some(CaptureError::RecordTooLarge {
                caplen: 262_145,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn caplen_above_a_tiny_snaplen_is_accepted() {
    // zeek's trunc-hdr.pcap: snaplen 1, and an 8-byte record.
    let mut bytes = header(false, false, (2, 4), 1, 1);
    bytes.extend(record(false, 5, 6, 8, 78, &[9; 8]));
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].data.len(), frames[0].orig_len), (8, 78));
}

#[test]
fn a_large_snaplen_raises_the_limit_up_to_16_mib() {
    let mut bytes = header(false, false, (2, 4), 1 << 20, 1);
    bytes.extend(record(false, 1, 0, 300_000, 300_000, &vec![3; 300_000]));
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames[0].data.len(), 300_000);

    let mut bytes = header(false, false, (2, 4), u32::MAX, 1);
    bytes.extend(record(false, 1, 0, (16 << 20) + 1, 60, &[]));
    let (_, err) = read_bytes(&bytes);
    assert!(
        matches!(
            err,
            Some(CaptureError::RecordTooLarge {
                limit: 16_777_216,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn caplen_above_orig_len_is_tolerated() {
    let mut bytes = header(false, false, (2, 4), 65_535, 1);
    bytes.extend(record(false, 1, 0, 60, 40, &[1; 60]));
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!((frames[0].data.len(), frames[0].orig_len), (60, 40));
}

#[test]
fn fraction_of_a_second_too_large_is_added() {
    let mut bytes = header(false, false, (2, 4), 65_535, 1);
    bytes.extend(record(false, 10, 2_500_000, 4, 4, &[0; 4]));
    let mut ns = header(false, true, (2, 4), 65_535, 1);
    ns.extend(record(false, 10, u32::MAX, 4, 4, &[0; 4]));
    assert_eq!(read_bytes(&bytes).0[0].ts, Timestamp(12_500_000_000));
    assert_eq!(
        read_bytes(&ns).0[0].ts,
        Timestamp(10_000_000_000 + i64::from(u32::MAX))
    );
}

#[test]
fn largest_timestamp_does_not_overflow() {
    let mut bytes = header(true, false, (2, 4), 65_535, 1);
    bytes.extend(record(true, u32::MAX, u32::MAX, 0, 0, &[]));
    let frames = read_bytes(&bytes).0;
    assert_eq!(
        frames[0].ts,
        Timestamp(i64::from(u32::MAX) * 1_000_000_000 + i64::from(u32::MAX) * 1_000)
    );
    assert!(frames[0].data.is_empty());
}

#[test]
fn version_1_is_refused() {
    let err = refused(&header(false, false, (1, 0), 65_535, 1));
    assert!(
        matches!(
            err,
            CaptureError::UnsupportedVersion {
                format: "pcap",
                major: 1,
                minor: 0,
                offset: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "unsupported pcap version 1.0 at offset 4 (synprobe reads pcap versions 2.0 to 2.4)"
    );
    let err = refused(&header(true, true, (2, 5), 65_535, 1));
    assert!(
        matches!(
            err,
            CaptureError::UnsupportedVersion {
                major: 2,
                minor: 5,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn versions_before_2_3_have_the_lengths_swapped() {
    // As libpcap and Wireshark: 2.0-2.2 write orig_len before caplen; 2.3 swaps only if caplen > orig_len.
    let mut old = header(false, true, (2, 0), 0, 0);
    old.extend(record(false, 1, 0, 524_501, 4, &[1; 4]));
    let (frames, err) = read_bytes(&old);
    assert!(err.is_none(), "{err:?}");
    assert_eq!((frames[0].data.len(), frames[0].orig_len), (4, 524_501));

    let mut v23 = header(false, false, (2, 3), 65_535, 1);
    v23.extend(record(false, 1, 0, 100, 4, &[2; 4]));
    v23.extend(record(false, 1, 0, 4, 100, &[3; 4]));
    let (frames, err) = read_bytes(&v23);
    assert!(err.is_none(), "{err:?}");
    assert_eq!((frames[0].data.len(), frames[0].orig_len), (4, 100));
    assert_eq!((frames[1].data.len(), frames[1].orig_len), (4, 100));
}

#[test]
fn link_type_upper_bits_are_masked() {
    // The FCS-length bits libpcap keeps above the 16-bit link type (ndpi_fuzz has 0x40000000 | NULL).
    let bytes = header(false, false, (2, 4), 65_535, 0x4000_0000);
    let reader = CaptureReader::new(&bytes[..]).expect("valid header");
    assert!(matches!(
        reader.format(),
        Format::Pcap {
            link: LinkType::NULL,
            ..
        }
    ));
}

#[test]
fn zero_length_records_are_frames() {
    let mut bytes = header(false, false, (2, 4), 65_535, 101);
    bytes.extend(record(false, 1, 0, 0, 0, &[]));
    bytes.extend(record(false, 2, 0, 0, 20, &[]));
    let (frames, err) = read_bytes(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].link, LinkType::RAW);
    assert_eq!(frames[1].offset, 40);
}
