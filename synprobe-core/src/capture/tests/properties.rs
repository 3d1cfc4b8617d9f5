//! Property tests: random files round-trip, damaged files never panic, cuts are reported as cuts.

use proptest::prelude::*;

use super::build_pcap;
use super::build_pcapng::{epb, idb, shb};
use super::{read_all, Trickle};
use crate::capture::{CaptureError, CaptureReader};
use crate::time::Timestamp;

type Frames = Vec<(u32, u32, Vec<u8>)>;

fn frames() -> impl Strategy<Value = Frames> {
    prop::collection::vec(
        (
            any::<u32>(),
            0u32..1_000_000,
            prop::collection::vec(any::<u8>(), 0..300),
        ),
        0..20,
    )
}

fn pcap_file(big_endian: bool, nanos: bool, frames: &Frames) -> Vec<u8> {
    let refs: Vec<(u32, u32, &[u8])> = frames.iter().map(|(s, f, d)| (*s, *f, &d[..])).collect();
    build_pcap::file(big_endian, nanos, &refs)
}

/// Reads `bytes` through a trickling source and a small buffer; never panics.
fn read_trickled(bytes: &[u8], chunk: usize) -> Option<(Vec<super::Owned>, Option<CaptureError>)> {
    let source = Trickle {
        bytes,
        chunk,
        calls: 0,
    };
    let mut reader = CaptureReader::with_buffer_size(source, 32).ok()?;
    Some(read_all(&mut reader))
}

proptest! {
    #[test]
    fn pcap_round_trips(big_endian: bool, nanos: bool, frames in frames(), chunk in 1usize..200) {
        let bytes = pcap_file(big_endian, nanos, &frames);
        let (got, err) = read_trickled(&bytes, chunk).expect("valid header");
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(got.len(), frames.len());
        let unit = if nanos { 1 } else { 1_000 };
        for (g, (secs, frac, data)) in got.iter().zip(&frames) {
            prop_assert_eq!(g.ts, Timestamp(i64::from(*secs) * 1_000_000_000 + i64::from(*frac) * unit));
            prop_assert_eq!(&g.data, data);
        }
    }

    #[test]
    fn pcapng_round_trips(big_endian: bool, frames in frames(), chunk in 1usize..200) {
        let mut bytes = shb(big_endian);
        bytes.extend(idb(big_endian, 1, 0, None, None));
        bytes.extend(idb(big_endian, 101, 0, Some(9), None));
        for (i, (secs, frac, data)) in frames.iter().enumerate() {
            let units = u64::from(*secs) * 1_000_000 + u64::from(*frac);
            bytes.extend(epb(big_endian, (i % 2) as u32, units, data, 9000));
        }
        let (got, err) = read_trickled(&bytes, chunk).expect("valid section");
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(got.len(), frames.len());
        for (i, (g, (secs, frac, data))) in got.iter().zip(&frames).enumerate() {
            let units = i64::from(*secs) * 1_000_000 + i64::from(*frac);
            let ns = if i % 2 == 0 { units * 1_000 } else { units };
            prop_assert_eq!(g.ts, Timestamp(ns));
            prop_assert_eq!(g.interface, (i % 2) as u32);
            prop_assert_eq!(&g.data, data);
        }
    }

    /// Cutting a valid file anywhere gives a prefix of its frames, then either a clean end (cut at a
    /// record boundary) or a Truncated error located inside the file.
    #[test]
    fn cut_files_report_a_cut(big_endian: bool, ng: bool, frames in frames(), cut in any::<prop::sample::Index>()) {
        let bytes = if ng {
            let mut b = shb(big_endian);
            b.extend(idb(big_endian, 1, 0, None, None));
            for (secs, _, data) in &frames {
                b.extend(epb(big_endian, 0, u64::from(*secs), data, 1500));
            }
            b
        } else {
            pcap_file(big_endian, false, &frames)
        };
        let (whole, _) = read_trickled(&bytes, 4096).expect("valid header");
        let at = cut.index(bytes.len() + 1);
        let Some((got, err)) = read_trickled(&bytes[..at], 4096) else { return Ok(()) };
        prop_assert!(got.len() <= whole.len());
        prop_assert_eq!(&got[..], &whole[..got.len()]);
        match err {
            None => prop_assert!(
                at == bytes.len()
                    || whole.get(got.len()).is_some_and(|f| f.offset == at as u64)
                    || (ng && at == 28) // after the section header, before the interface
            ),
            Some(CaptureError::Truncated { offset, got: present, .. }) => {
                prop_assert!(offset + present == at as u64, "offset {} + {} != cut {}", offset, present, at);
            }
            Some(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    /// Random bytes after a valid magic (or a valid header) never panic, and every frame and error lies
    /// inside the input.
    #[test]
    fn garbage_never_panics(
        prefix in 0usize..4,
        body in prop::collection::vec(any::<u8>(), 0..2000),
        chunk in 1usize..64,
    ) {
        let mut bytes = match prefix {
            0 => build_pcap::header(false, false, (2, 4), 65_535, 1),
            1 => build_pcap::header(true, true, (2, 3), 0, 0),
            2 => shb(false),
            _ => {
                let mut b = shb(true);
                b.extend(idb(true, 1, 0, Some(0x85), None));
                b
            }
        };
        bytes.extend(body);
        if let Some((got, err)) = read_trickled(&bytes, chunk) {
            for f in &got {
                prop_assert!(f.offset as usize + f.data.len() <= bytes.len());
            }
            if let Some(offset) = err.and_then(|e| e.offset()) {
                prop_assert!(offset <= bytes.len() as u64);
            }
        }
    }

    /// Any input at all: refused or read, never a panic.
    #[test]
    fn any_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = read_trickled(&bytes, 7);
    }
}
