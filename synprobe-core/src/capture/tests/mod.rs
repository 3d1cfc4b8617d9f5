//! Tests for the capture readers: hand-built files byte by byte, property tests, and the public captures
//! in `../shared/pcaps` (or `SYNPROBE_TEST_PCAPS`).

mod pcap;
mod pcapng;
mod properties;
mod reader;
mod real_captures;

use std::io::{self, Read};

use super::{CaptureError, CaptureReader, LinkType};
use crate::time::Timestamp;

/// A frame copied out of the reader, to compare after the reader has moved on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Owned {
    pub link: LinkType,
    pub ts: Timestamp,
    pub data: Vec<u8>,
    pub orig_len: u32,
    pub offset: u64,
    pub interface: u32,
}

/// Every frame until the end or the first error, and that error.
pub(super) fn read_all<R: Read>(
    reader: &mut CaptureReader<R>,
) -> (Vec<Owned>, Option<CaptureError>) {
    let mut frames = Vec::new();
    loop {
        match reader.next_frame() {
            Ok(Some(f)) => frames.push(Owned {
                link: f.link,
                ts: f.ts,
                data: f.data.to_vec(),
                orig_len: f.orig_len,
                offset: f.offset,
                interface: f.interface,
            }),
            Ok(None) => return (frames, None),
            Err(e) => {
                // After an error the reader stays finished.
                assert!(
                    matches!(reader.next_frame(), Ok(None)),
                    "reader must be finished after {e}"
                );
                return (frames, Some(e));
            }
        }
    }
}

/// Opens `bytes` and reads everything; panics if the header is refused.
pub(super) fn read_bytes(bytes: &[u8]) -> (Vec<Owned>, Option<CaptureError>) {
    let mut reader = CaptureReader::new(bytes).expect("header accepted");
    read_all(&mut reader)
}

/// The error `CaptureReader::new` gives for `bytes`; panics if it accepts them.
pub(super) fn refused(bytes: &[u8]) -> CaptureError {
    match CaptureReader::new(bytes) {
        Ok(_) => panic!("header accepted but should not be"),
        Err(e) => e,
    }
}

/// A reader that hands out at most `chunk` bytes per call and interrupts every other call, to exercise
/// the buffer refill across every boundary.
pub(super) struct Trickle<'a> {
    pub bytes: &'a [u8],
    pub chunk: usize,
    pub calls: u64,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls % 2 == 0 {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "signal"));
        }
        let n = self.chunk.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// Writes fields in one byte order.
pub(super) struct Writer {
    pub big_endian: bool,
    pub out: Vec<u8>,
}

impl Writer {
    pub fn new(big_endian: bool) -> Writer {
        Writer {
            big_endian,
            out: Vec::new(),
        }
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b);
        self
    }

    /// Zero bytes up to a multiple of 4.
    pub fn pad4(&mut self) -> &mut Self {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
        self
    }
}

/// Classic pcap files.
pub(super) mod build_pcap {
    use super::Writer;

    /// A 24-byte file header.
    pub fn header(
        big_endian: bool,
        nanos: bool,
        version: (u16, u16),
        snaplen: u32,
        link: u32,
    ) -> Vec<u8> {
        let mut w = Writer::new(big_endian);
        w.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 })
            .u16(version.0)
            .u16(version.1)
            .u32(0)
            .u32(0)
            .u32(snaplen)
            .u32(link);
        w.out
    }

    /// A record: 16-byte header and data (caplen and orig_len as given, even if they lie).
    pub fn record(
        big_endian: bool,
        secs: u32,
        frac: u32,
        caplen: u32,
        orig_len: u32,
        data: &[u8],
    ) -> Vec<u8> {
        let mut w = Writer::new(big_endian);
        w.u32(secs).u32(frac).u32(caplen).u32(orig_len).bytes(data);
        w.out
    }

    /// A version 2.4 Ethernet file (snaplen 65535) holding `frames` as (secs, fraction, data).
    pub fn file(big_endian: bool, nanos: bool, frames: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut out = header(big_endian, nanos, (2, 4), 65_535, 1);
        for (secs, frac, data) in frames {
            let len = u32::try_from(data.len()).expect("small frame");
            out.extend(record(big_endian, *secs, *frac, len, len, data));
        }
        out
    }
}

/// pcapng blocks.
pub(super) mod build_pcapng {
    use super::Writer;

    /// A block of `block_type` around `body` (padded to 4), with matching lengths.
    pub fn block(big_endian: bool, block_type: u32, body: &[u8]) -> Vec<u8> {
        let len = 12 + body.len().next_multiple_of(4);
        let len = u32::try_from(len).expect("small block");
        let mut w = Writer::new(big_endian);
        w.u32(block_type).u32(len).bytes(body).pad4().u32(len);
        w.out
    }

    /// A section header block, version 1.0, unknown section length.
    pub fn shb(big_endian: bool) -> Vec<u8> {
        let mut body = Writer::new(big_endian);
        body.u32(0x1a2b_3c4d).u16(1).u16(0).i64(-1);
        block(big_endian, 0x0a0d_0d0a, &body.out)
    }

    /// An interface description block with optional `if_tsresol` and `if_tsoffset`.
    pub fn idb(
        big_endian: bool,
        link: u16,
        snaplen: u32,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) -> Vec<u8> {
        let mut body = Writer::new(big_endian);
        body.u16(link).u16(0).u32(snaplen);
        // An option synprobe ignores (if_name), to check that options are walked correctly.
        body.u16(2).u16(5).bytes(b"eth0\0").pad4();
        if let Some(r) = tsresol {
            body.u16(9).u16(1).bytes(&[r]).pad4();
        }
        if let Some(off) = tsoffset {
            body.u16(14).u16(8).i64(off);
        }
        body.u16(0).u16(0);
        block(big_endian, 1, &body.out)
    }

    /// An enhanced packet block with a comment option after the data.
    pub fn epb(
        big_endian: bool,
        interface: u32,
        units: u64,
        data: &[u8],
        orig_len: u32,
    ) -> Vec<u8> {
        let mut body = Writer::new(big_endian);
        let caplen = u32::try_from(data.len()).expect("small packet");
        body.u32(interface)
            .u32((units >> 32) as u32)
            .u32(units as u32)
            .u32(caplen)
            .u32(orig_len);
        body.bytes(data).pad4();
        body.u16(1).u16(3).bytes(b"hi!").pad4().u16(0).u16(0);
        block(big_endian, 6, &body.out)
    }

    /// An enhanced packet block whose captured length field says `caplen` whatever the data.
    pub fn epb_claiming(big_endian: bool, interface: u32, caplen: u32, data: &[u8]) -> Vec<u8> {
        let mut body = Writer::new(big_endian);
        body.u32(interface)
            .u32(0)
            .u32(0)
            .u32(caplen)
            .u32(caplen)
            .bytes(data);
        block(big_endian, 6, &body.out)
    }

    /// A simple packet block.
    pub fn spb(big_endian: bool, orig_len: u32, data: &[u8]) -> Vec<u8> {
        let mut body = Writer::new(big_endian);
        body.u32(orig_len).bytes(data);
        block(big_endian, 3, &body.out)
    }

    /// An obsolete packet block (type 2).
    pub fn pb(big_endian: bool, interface: u16, units: u64, data: &[u8]) -> Vec<u8> {
        let mut body = Writer::new(big_endian);
        let caplen = u32::try_from(data.len()).expect("small packet");
        body.u16(interface)
            .u16(0)
            .u32((units >> 32) as u32)
            .u32(units as u32)
            .u32(caplen)
            .u32(caplen);
        body.bytes(data);
        block(big_endian, 2, &body.out)
    }
}
