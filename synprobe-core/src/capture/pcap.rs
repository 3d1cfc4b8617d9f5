//! Classic libpcap files: a 24-byte file header, then records made of a 16-byte header and the captured
//! bytes.

use std::io::Read;

use super::input::Input;
use super::{CaptureError, Format, Frame, LinkType, Part, MAX_BLOCK_LEN, MAX_PCAP_CAPLEN};
use crate::time::Timestamp;

const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// `(nanos, big_endian)` for a pcap magic number given as its four bytes in file order.
pub(super) fn magic(bytes: [u8; 4]) -> Option<(bool, bool)> {
    match bytes {
        [0xd4, 0xc3, 0xb2, 0xa1] => Some((false, false)),
        [0xa1, 0xb2, 0xc3, 0xd4] => Some((false, true)),
        [0x4d, 0x3c, 0xb2, 0xa1] => Some((true, false)),
        [0xa1, 0xb2, 0x3c, 0x4d] => Some((true, true)),
        _ => None,
    }
}

/// Before version 2.3 the record header had the original length before the captured length; some
/// 2.3 files were written either way. libpcap and Wireshark swap them back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LengthOrder {
    /// 2.4: captured length, then original length.
    Normal,
    /// 2.0 to 2.2: original length first.
    Swapped,
    /// 2.3: swapped if the "captured" length is larger than the "original" one.
    MaybeSwapped,
}

/// What a pcap file header says about every record.
#[derive(Debug)]
pub(super) struct PcapState {
    big_endian: bool,
    /// 1 for nanosecond files, 1000 for microsecond files.
    frac_to_nanos: i64,
    link: LinkType,
    snaplen: u32,
    /// The largest captured length accepted in a record.
    limit: u32,
    lengths: LengthOrder,
}

impl PcapState {
    /// Reads and checks the 24-byte file header (the magic has been recognised).
    pub(super) fn start<R: Read>(
        input: &mut Input<R>,
        nanos: bool,
        big_endian: bool,
    ) -> Result<(Format, PcapState), CaptureError> {
        let avail = input.fill(FILE_HEADER_LEN)?;
        let Some(h) = input.available().first_chunk::<FILE_HEADER_LEN>() else {
            return Err(CaptureError::Truncated {
                part: Part::FileHeader,
                offset: 0,
                wanted: FILE_HEADER_LEN as u64,
                got: avail as u64,
            });
        };
        let u16_at = |i: usize| {
            let b = [h[i], h[i + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let u32_at = |i: usize| read_u32([h[i], h[i + 1], h[i + 2], h[i + 3]], big_endian);
        let (major, minor) = (u16_at(4), u16_at(6));
        if major != 2 || minor > 4 {
            return Err(CaptureError::UnsupportedVersion {
                format: "pcap",
                major,
                minor,
                offset: 4,
                supported: "pcap versions 2.0 to 2.4",
            });
        }
        let snaplen = u32_at(16);
        // The upper bits carry an FCS length and reserved flags (libpcap's LT_LINKTYPE mask).
        let link = LinkType(u32_at(20) & 0xffff);
        let lengths = match minor {
            0..=2 => LengthOrder::Swapped,
            3 => LengthOrder::MaybeSwapped,
            _ => LengthOrder::Normal,
        };
        input.skip(FILE_HEADER_LEN);
        let format = Format::Pcap {
            nanos,
            big_endian,
            version: (major, minor),
            snaplen,
            link,
        };
        let state = PcapState {
            big_endian,
            frac_to_nanos: if nanos { 1 } else { 1_000 },
            link,
            snaplen,
            // A smaller snaplen does not lower the limit: damaged files declare 0 or 1 and still hold data.
            limit: snaplen.clamp(MAX_PCAP_CAPLEN, MAX_BLOCK_LEN),
            lengths,
        };
        Ok((format, state))
    }

    /// The next record, `Ok(None)` if the input ends exactly at a record boundary.
    #[inline]
    pub(super) fn next<'a, R: Read>(
        &self,
        input: &'a mut Input<R>,
    ) -> Result<Option<Frame<'a>>, CaptureError> {
        let avail = input.fill(RECORD_HEADER_LEN)?;
        let offset = input.offset();
        let Some(h) = input.available().first_chunk::<RECORD_HEADER_LEN>() else {
            if avail == 0 {
                return Ok(None);
            }
            return Err(CaptureError::Truncated {
                part: Part::RecordHeader,
                offset,
                wanted: RECORD_HEADER_LEN as u64,
                got: avail as u64,
            });
        };
        let be = self.big_endian;
        let secs = read_u32([h[0], h[1], h[2], h[3]], be);
        let frac = read_u32([h[4], h[5], h[6], h[7]], be);
        let mut caplen = read_u32([h[8], h[9], h[10], h[11]], be);
        let mut orig_len = read_u32([h[12], h[13], h[14], h[15]], be);
        let swap = match self.lengths {
            LengthOrder::Normal => false,
            LengthOrder::Swapped => true,
            LengthOrder::MaybeSwapped => caplen > orig_len,
        };
        if swap {
            std::mem::swap(&mut caplen, &mut orig_len);
        }
        // Checked before anything is read or allocated for the record.
        if caplen > self.limit {
            return Err(CaptureError::RecordTooLarge {
                offset,
                caplen,
                limit: self.limit,
                snaplen: self.snaplen,
            });
        }
        let total = RECORD_HEADER_LEN + caplen as usize;
        let avail = input.fill(total)?;
        if avail < total {
            return Err(CaptureError::Truncated {
                part: Part::RecordData,
                offset: offset + RECORD_HEADER_LEN as u64,
                wanted: u64::from(caplen),
                got: (avail - RECORD_HEADER_LEN) as u64,
            });
        }
        let record = input.consume(total);
        // Cannot overflow: u32 seconds * 1e9 + u32 fraction * 1000 < 2^63.
        let ts = Timestamp(i64::from(secs) * 1_000_000_000 + i64::from(frac) * self.frac_to_nanos);
        Ok(Some(Frame {
            link: self.link,
            ts,
            data: &record[RECORD_HEADER_LEN..],
            orig_len,
            offset,
            interface: 0,
        }))
    }
}

#[inline(always)]
fn read_u32(bytes: [u8; 4], big_endian: bool) -> u32 {
    if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    }
}
