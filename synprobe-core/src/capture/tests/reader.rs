//! Format detection, buffering and I/O, whatever the format.

use std::io::{self, Read};
use std::path::Path;

use super::build_pcap::file;
use super::build_pcapng::{epb, idb, shb};
use super::{read_all, read_bytes, refused, Trickle};
use crate::capture::{CaptureError, CaptureReader, Format, LooksLike, Part};

#[test]
fn zero_length_input() {
    let err = refused(&[]);
    assert!(matches!(err, CaptureError::Empty), "{err:?}");
    assert_eq!(err.offset(), Some(0));
    assert_eq!(
        err.to_string(),
        "the input is empty (0 bytes at offset 0): not a pcap or pcapng file"
    );
}

#[test]
fn input_shorter_than_a_magic_number() {
    let err = refused(&[0xd4, 0xc3]);
    assert!(
        matches!(
            err,
            CaptureError::Truncated {
                part: Part::FileHeader,
                offset: 0,
                wanted: 4,
                got: 2
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bad_magic() {
    let err = refused(b"GET / HTTP/1.1\r\n\r\n");
    assert!(
        matches!(err, CaptureError::BadMagic { magic: 0x4745_5420 }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "not a pcap or pcapng file: magic 0x47455420 at offset 0 (expected a pcap 0xa1b2c3d4/0xa1b23c4d or \
         pcapng 0x0a0d0d0a header)"
    );
}

#[test]
fn compressed_input_gets_a_hint() {
    let err = refused(&[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0]);
    assert!(
        err.to_string()
            .ends_with(": it looks like a gzip-compressed file"),
        "{err}"
    );
    assert_eq!(err.looks_like(), Some(LooksLike::Gzip));
    assert!(LooksLike::Gzip.is_compressed());
}

#[test]
fn format_comes_from_the_magic_not_the_name() {
    let pcap = file(false, false, &[(1, 0, &[0; 60])]);
    let mut ng = shb(false);
    ng.extend(idb(false, 1, 0, None, None));
    for (bytes, want_ng) in [(pcap, false), (ng, true)] {
        let reader = CaptureReader::new(&bytes[..]).expect("valid header");
        assert_eq!(matches!(reader.format(), Format::PcapNg), want_ng);
    }
}

/// The same frames whether the source gives everything at once or one byte at a time with interruptions,
/// and whether the buffer starts large or tiny (it grows).
#[test]
fn trickling_source_and_tiny_buffer_give_the_same_frames() {
    let frames: Vec<(u32, u32, Vec<u8>)> = (0..50u32)
        .map(|i| (i, i * 7, vec![i as u8; 40 + (i as usize * 13) % 90]))
        .collect();
    let refs: Vec<(u32, u32, &[u8])> = frames.iter().map(|(s, f, d)| (*s, *f, &d[..])).collect();
    let pcap = file(true, false, &refs);
    let mut ng = shb(true);
    ng.extend(idb(true, 1, 0, Some(9), None));
    for (i, (_, _, d)) in frames.iter().enumerate() {
        ng.extend(epb(true, 0, i as u64 * 1_000, d, 1500));
    }
    for bytes in [pcap, ng] {
        let (whole, err) = read_bytes(&bytes);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(whole.len(), 50);
        for (chunk, buffer) in [(1, 16), (3, 64), (7, 1 << 20), (4096, 17)] {
            let source = Trickle {
                bytes: &bytes,
                chunk,
                calls: 0,
            };
            let mut reader = CaptureReader::with_buffer_size(source, buffer).expect("valid header");
            let (got, err) = read_all(&mut reader);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(got, whole, "chunk {chunk}, buffer {buffer}");
            assert_eq!(reader.bytes_read(), bytes.len() as u64);
        }
    }
}

/// A source that fails after `ok` bytes.
struct Failing<'a> {
    bytes: &'a [u8],
    ok: usize,
}

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = self.ok.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn io_error_carries_the_offset() {
    let bytes = file(false, false, &[(1, 0, &[0; 60]), (2, 0, &[0; 60])]);
    let mut reader = CaptureReader::new(Failing {
        bytes: &bytes,
        ok: 110,
    })
    .expect("valid header");
    let (frames, err) = read_all(&mut reader);
    assert_eq!(frames.len(), 1);
    let err = err.expect("an error");
    assert!(
        matches!(err, CaptureError::Io { offset: 110, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "cannot read the capture at offset 110: disk on fire"
    );
}

#[test]
fn bytes_read_follows_the_records() {
    let bytes = file(false, false, &[(1, 0, &[0; 60]), (2, 0, &[0; 80])]);
    let mut reader = CaptureReader::new(&bytes[..]).expect("valid header");
    assert_eq!(reader.bytes_read(), 24);
    assert!(matches!(reader.next_frame(), Ok(Some(_))));
    assert_eq!(reader.bytes_read(), 100);
    assert!(matches!(reader.next_frame(), Ok(Some(_))));
    assert_eq!(reader.bytes_read(), 196);
    assert!(matches!(reader.next_frame(), Ok(None)));
    assert!(matches!(reader.next_frame(), Ok(None)));
}

#[test]
fn opening_a_missing_file_names_it() {
    let err = match CaptureReader::open(Path::new("/nonexistent/synprobe/scan.pcap")) {
        Ok(_) => panic!("opened a missing file"),
        Err(e) => e,
    };
    assert!(matches!(err, CaptureError::Open { .. }), "{err:?}");
    assert_eq!(err.offset(), None);
    assert!(
        err.to_string()
            .starts_with("cannot open capture file /nonexistent/synprobe/scan.pcap: "),
        "{err}"
    );
}
