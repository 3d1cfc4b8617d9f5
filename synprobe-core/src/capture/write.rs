//! Writing captures: classic pcap (for the bundled examples, tests and the generator) and pcapng with per-packet
//! comments (for `-w` in live runs). Both are read back by this crate, libpcap and tshark.

use std::io::{self, Write};

use super::LinkType;
use crate::time::Timestamp;

/// Writes a classic pcap file (little-endian, microsecond or nanosecond timestamps, version 2.4).
pub struct PcapWriter<W: Write> {
    out: W,
    nanos: bool,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Write the file header.
    pub fn new(mut out: W, link: LinkType, snaplen: u32, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        out.write_all(&magic.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&snaplen.to_le_bytes())?;
        out.write_all(&link.0.to_le_bytes())?;
        Ok(PcapWriter {
            out,
            nanos,
            snaplen,
        })
    }

    /// Write one record; `data` is cut to the snap length, `orig_len` is the length on the wire.
    pub fn write(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let (secs, sub) = split(ts, self.nanos);
        let cap = data.len().min(self.snaplen as usize);
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&(secs as u32).to_le_bytes());
        header[4..8].copy_from_slice(&sub.to_le_bytes());
        header[8..12].copy_from_slice(&(cap as u32).to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.max(cap as u32).to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&data[..cap])
    }

    /// Flush and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn split(ts: Timestamp, nanos: bool) -> (i64, u32) {
    let n = ts.as_nanos();
    let secs = n.div_euclid(1_000_000_000);
    let rem = n.rem_euclid(1_000_000_000) as u32;
    (secs, if nanos { rem } else { rem / 1000 })
}

/// Writes a pcapng file: one section naming its writer, one interface, enhanced packet blocks with optional
/// comments (shown by `tshark -T fields -e frame.comment`). Nanosecond timestamps.
pub struct PcapNgWriter<W: Write> {
    out: W,
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
    buf.extend_from_slice(value);
    buf.resize(pad4(buf.len()), 0);
}

fn block(out: &mut impl Write, block_type: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}

impl<W: Write> PcapNgWriter<W> {
    /// Write the section header (with `shb_userappl` = `application`, e.g. "synprobe 0.1.0", and an optional
    /// section comment) and one interface of `link` (nanosecond resolution).
    pub fn new(
        out: W,
        link: LinkType,
        application: &str,
        comment: Option<&str>,
    ) -> io::Result<Self> {
        Self::with_interfaces(out, &[link], application, comment)
    }

    /// As [`PcapNgWriter::new`], with one interface per link type (packets name theirs by index).
    pub fn with_interfaces(
        mut out: W,
        links: &[LinkType],
        application: &str,
        comment: Option<&str>,
    ) -> io::Result<Self> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        if let Some(c) = comment {
            option(&mut shb, 1, c.as_bytes());
        }
        option(&mut shb, 4, application.as_bytes());
        option(&mut shb, 0, &[]);
        block(&mut out, 0x0a0d_0d0a, &shb)?;
        for link in links {
            let mut idb = Vec::new();
            idb.extend_from_slice(&(link.0 as u16).to_le_bytes());
            idb.extend_from_slice(&0u16.to_le_bytes());
            idb.extend_from_slice(&262_144u32.to_le_bytes());
            option(&mut idb, 9, &[9]); // if_tsresol: 10^-9
            option(&mut idb, 0, &[]);
            block(&mut out, 1, &idb)?;
        }
        out.flush()?;
        Ok(PcapNgWriter { out })
    }

    /// Write one enhanced packet block on interface 0, with an optional comment.
    pub fn write(
        &mut self,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
        comment: Option<&str>,
    ) -> io::Result<()> {
        self.write_on(0, ts, data, orig_len, comment)
    }

    /// Write one enhanced packet block on the given interface, with an optional comment.
    pub fn write_on(
        &mut self,
        interface: u32,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
        comment: Option<&str>,
    ) -> io::Result<()> {
        let t = ts.as_nanos().max(0) as u64;
        let mut epb = Vec::with_capacity(32 + data.len());
        epb.extend_from_slice(&interface.to_le_bytes());
        epb.extend_from_slice(&((t >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(t as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        epb.resize(pad4(epb.len()), 0);
        if let Some(c) = comment {
            option(&mut epb, 1, c.as_bytes());
            option(&mut epb, 0, &[]);
        }
        block(&mut self.out, 6, &epb)?;
        // Flushed per packet: a run stopped by a signal leaves a complete, readable file.
        self.out.flush()
    }

    /// Flush and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod write_tests {
    use super::*;
    use crate::capture::{CaptureReader, Format};

    #[test]
    fn pcap_round_trip_with_micro_and_nano_seconds() {
        for nanos in [false, true] {
            let mut w = PcapWriter::new(Vec::new(), LinkType::RAW, 65535, nanos).expect("header");
            w.write(Timestamp(1_700_000_000_123_456_789), &[0x45; 40], 40)
                .expect("record");
            w.write(Timestamp(1_700_000_001_000_000_000), &[0x60; 60], 1500)
                .expect("record");
            let bytes = w.finish().expect("finish");
            let mut r = CaptureReader::new(&bytes[..]).expect("reads back");
            assert!(matches!(r.format(), Format::Pcap { .. }));
            let f = r.next_frame().expect("ok").expect("frame");
            let want = if nanos {
                1_700_000_000_123_456_789
            } else {
                1_700_000_000_123_456_000
            };
            assert_eq!(
                (f.ts, f.data.len(), f.link),
                (Timestamp(want), 40, LinkType::RAW)
            );
            let f = r.next_frame().expect("ok").expect("frame");
            assert_eq!((f.data.len(), f.orig_len), (60, 1500));
            assert!(r.next_frame().expect("clean end").is_none());
        }
    }

    #[test]
    fn pcapng_round_trip_with_comments() {
        let mut w = PcapNgWriter::new(
            Vec::new(),
            LinkType::ETHERNET,
            "synprobe test",
            Some("section"),
        )
        .expect("header");
        w.write(
            Timestamp(5_000_000_001),
            &[1, 2, 3],
            3,
            Some("probe 1: main SYN"),
        )
        .expect("epb");
        w.write(Timestamp(6_000_000_000), &[4; 61], 61, None)
            .expect("epb");
        let bytes = w.finish().expect("finish");
        let mut r = CaptureReader::new(&bytes[..]).expect("reads back");
        assert!(matches!(r.format(), Format::PcapNg));
        let f = r.next_frame().expect("ok").expect("frame");
        assert_eq!(
            (f.ts, f.data, f.link),
            (
                Timestamp(5_000_000_001),
                &[1u8, 2, 3][..],
                LinkType::ETHERNET
            )
        );
        assert_eq!(r.next_frame().expect("ok").expect("frame").data.len(), 61);
        assert!(r.next_frame().expect("clean end").is_none());
    }
}
