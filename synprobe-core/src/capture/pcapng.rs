//! pcapng: a sequence of blocks (type, total length, body, total length again) grouped in sections. Each
//! section starts with a section header block that sets the byte order, and describes its own interfaces,
//! each with a link type, a snaplen and a timestamp resolution.

use std::io::Read;

use super::input::Input;
use super::{CaptureError, Frame, LengthProblem, LinkType, Part, MAX_BLOCK_LEN};
use crate::time::Timestamp;

/// The section header block type as it appears in the file (the same in both byte orders).
pub(super) const SHB_TYPE_BYTES: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
/// The obsolete packet block.
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

const OPT_ENDOFOPT: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// The smallest valid total length of each block type (for packet blocks, also the bytes that are not
/// packet data).
const SHB_MIN_LEN: u32 = 28;
const IDB_MIN_LEN: u32 = 20;
const EPB_MIN_LEN: u32 = 32;
const SPB_MIN_LEN: u32 = 16;
const BLOCK_MIN_LEN: u32 = 12;
/// Offset of the packet data in an enhanced or obsolete packet block.
const PACKET_DATA_AT: usize = 28;
/// Offset of the packet data in a simple packet block.
const SIMPLE_DATA_AT: usize = 12;

/// How to turn an interface's timestamp units into nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsScale {
    /// Units of 10^-k s with k <= 9.
    Multiply(u64),
    /// Units of 10^-k s with 9 < k <= 28.
    Divide(u64),
    /// Units of 2^-k s.
    Binary(u32),
    /// Units so fine that no 64-bit count reaches a nanosecond.
    Zero,
}

impl TsScale {
    /// From the `if_tsresol` option byte: 10^-v, or 2^-(v & 0x7f) if the top bit is set.
    fn from_tsresol(v: u8) -> TsScale {
        if v & 0x80 != 0 {
            TsScale::Binary(u32::from(v & 0x7f))
        } else if v <= 9 {
            TsScale::Multiply(10u64.pow(9 - u32::from(v)))
        } else if v <= 28 {
            TsScale::Divide(10u64.pow(u32::from(v) - 9))
        } else {
            TsScale::Zero
        }
    }

    #[inline]
    fn nanos(self, units: u64) -> u64 {
        match self {
            TsScale::Multiply(m) => units.saturating_mul(m),
            TsScale::Divide(d) => units / d,
            // At most 2^64 * 1e9 < 2^94: no overflow in u128.
            TsScale::Binary(k) => {
                u64::try_from((u128::from(units) * 1_000_000_000) >> k).unwrap_or(u64::MAX)
            }
            TsScale::Zero => 0,
        }
    }
}

/// One interface description block, as far as frames need it.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    scale: TsScale,
    /// `if_tsoffset`, in nanoseconds.
    offset_nanos: i64,
}

impl Interface {
    #[inline]
    fn timestamp(&self, units: u64) -> Timestamp {
        let nanos = i64::try_from(self.scale.nanos(units)).unwrap_or(i64::MAX);
        Timestamp(nanos.saturating_add(self.offset_nanos))
    }
}

/// Where a block starts and what its header says (its length has been checked).
#[derive(Debug, Clone, Copy)]
struct BlockHead {
    offset: u64,
    block_type: u32,
    length: u32,
}

/// The state of the current section.
#[derive(Debug)]
pub(super) struct PcapNgState {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Given to simple packet blocks, which carry no timestamp.
    last_ts: Timestamp,
}

impl PcapNgState {
    /// Reads the first section header block (the magic has been recognised).
    pub(super) fn start<R: Read>(input: &mut Input<R>) -> Result<PcapNgState, CaptureError> {
        let mut state = PcapNgState {
            big_endian: false,
            interfaces: Vec::new(),
            last_ts: Timestamp(0),
        };
        // The caller saw the section header type in the first four bytes, so read_block finds a block.
        if let Some(head) = state.read_block(input)? {
            state.section_header(input, head)?;
        }
        Ok(state)
    }

    /// The next packet, skipping (and counting) blocks that hold none; `Ok(None)` at a block boundary EOF.
    pub(super) fn next<'a, R: Read>(
        &mut self,
        input: &'a mut Input<R>,
        skipped: &mut u64,
    ) -> Result<Option<Frame<'a>>, CaptureError> {
        loop {
            let Some(head) = self.read_block(input)? else {
                return Ok(None);
            };
            let len = head.length as usize;
            match head.block_type {
                EPB | PB => {
                    let b = &input.available()[..len];
                    let interface = if head.block_type == EPB {
                        self.u32_at(b, 8)
                    } else {
                        u32::from(self.u16_at(b, 8))
                    };
                    let units =
                        (u64::from(self.u32_at(b, 12)) << 32) | u64::from(self.u32_at(b, 16));
                    let caplen = self.u32_at(b, 20);
                    let orig_len = self.u32_at(b, 24);
                    let iface = self.interface(head.offset, interface)?;
                    let room = head.length - EPB_MIN_LEN;
                    if caplen > room {
                        return Err(CaptureError::PacketOverrunsBlock {
                            offset: head.offset,
                            caplen,
                            room,
                        });
                    }
                    let ts = iface.timestamp(units);
                    self.last_ts = ts;
                    let block = input.consume(len);
                    return Ok(Some(Frame {
                        link: iface.link,
                        ts,
                        data: &block[PACKET_DATA_AT..PACKET_DATA_AT + caplen as usize],
                        orig_len,
                        offset: head.offset,
                        interface,
                    }));
                }
                SPB => {
                    let b = &input.available()[..len];
                    let orig_len = self.u32_at(b, 8);
                    let iface = self.interface(head.offset, 0)?;
                    let room = head.length - SPB_MIN_LEN;
                    let mut caplen = orig_len.min(room);
                    if iface.snaplen != 0 {
                        caplen = caplen.min(iface.snaplen);
                    }
                    let block = input.consume(len);
                    return Ok(Some(Frame {
                        link: iface.link,
                        ts: self.last_ts,
                        data: &block[SIMPLE_DATA_AT..SIMPLE_DATA_AT + caplen as usize],
                        orig_len,
                        offset: head.offset,
                        interface: 0,
                    }));
                }
                SHB => self.section_header(input, head)?,
                IDB => {
                    let iface = self.interface_description(&input.available()[..len]);
                    self.interfaces.push(iface);
                    input.skip(len);
                }
                _ => {
                    *skipped += 1;
                    input.skip(len);
                }
            }
        }
    }

    /// Reads a block header, checks the total length, makes the whole block available and checks its
    /// trailing length. A section header block sets the byte order first. `Ok(None)` at a clean EOF.
    fn read_block<R: Read>(
        &mut self,
        input: &mut Input<R>,
    ) -> Result<Option<BlockHead>, CaptureError> {
        let avail = input.fill(8)?;
        let offset = input.offset();
        if avail == 0 {
            return Ok(None);
        }
        let truncated_header = |wanted: u64, got: usize| CaptureError::Truncated {
            part: Part::BlockHeader,
            offset,
            wanted,
            got: got as u64,
        };
        if avail < 8 {
            return Err(truncated_header(8, avail));
        }
        if input.available()[..4] == SHB_TYPE_BYTES {
            let avail = input.fill(12)?;
            let Some(head) = input.available().first_chunk::<12>() else {
                return Err(truncated_header(12, avail));
            };
            self.big_endian = match [head[8], head[9], head[10], head[11]] {
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                other => {
                    return Err(CaptureError::BadByteOrderMagic {
                        offset,
                        magic: u32::from_be_bytes(other),
                    })
                }
            };
        }
        let head = input.available();
        let block_type = self.u32_at(head, 0);
        let length = self.u32_at(head, 4);
        let min = match block_type {
            SHB => SHB_MIN_LEN,
            IDB => IDB_MIN_LEN,
            EPB | PB => EPB_MIN_LEN,
            SPB => SPB_MIN_LEN,
            _ => BLOCK_MIN_LEN,
        };
        let problem = if length % 4 != 0 {
            Some(LengthProblem::NotMultipleOf4)
        } else if length < min {
            Some(LengthProblem::TooShort { min })
        } else if length > MAX_BLOCK_LEN {
            Some(LengthProblem::TooLong { max: MAX_BLOCK_LEN })
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(CaptureError::BadBlockLength {
                offset,
                block_type,
                length,
                problem,
            });
        }
        let len = length as usize;
        let avail = input.fill(len)?;
        if avail < len {
            return Err(CaptureError::Truncated {
                part: Part::Block,
                offset,
                wanted: u64::from(length),
                got: avail as u64,
            });
        }
        let trailing = self.u32_at(input.available(), len - 4);
        if trailing != length {
            return Err(CaptureError::BlockLengthMismatch {
                offset,
                block_type,
                leading: length,
                trailing,
            });
        }
        Ok(Some(BlockHead {
            offset,
            block_type,
            length,
        }))
    }

    /// Starts a new section: checks the version, forgets the previous section's interfaces.
    fn section_header<R: Read>(
        &mut self,
        input: &mut Input<R>,
        head: BlockHead,
    ) -> Result<(), CaptureError> {
        let b = input.available();
        let (major, minor) = (self.u16_at(b, 12), self.u16_at(b, 14));
        if major != 1 {
            return Err(CaptureError::UnsupportedVersion {
                format: "pcapng",
                major,
                minor,
                offset: head.offset + 12,
                supported: "pcapng version 1.x",
            });
        }
        self.interfaces.clear();
        input.skip(head.length as usize);
        Ok(())
    }

    /// Parses an interface description block (its length is at least [`IDB_MIN_LEN`]). Options that run
    /// past the block end the option list; they are not worth refusing the file for.
    fn interface_description(&self, b: &[u8]) -> Interface {
        let mut iface = Interface {
            link: LinkType(u32::from(self.u16_at(b, 8))),
            snaplen: self.u32_at(b, 12),
            scale: TsScale::Multiply(1_000),
            offset_nanos: 0,
        };
        let end = b.len() - 4;
        let mut at = 16;
        while at + 4 <= end {
            let code = self.u16_at(b, at);
            let len = usize::from(self.u16_at(b, at + 2));
            let value = at + 4;
            if code == OPT_ENDOFOPT || value + len > end {
                break;
            }
            match code {
                IF_TSRESOL if len >= 1 => iface.scale = TsScale::from_tsresol(b[value]),
                IF_TSOFFSET if len >= 8 => {
                    let secs = if self.big_endian {
                        i64::from_be_bytes(eight(b, value))
                    } else {
                        i64::from_le_bytes(eight(b, value))
                    };
                    iface.offset_nanos = secs.saturating_mul(1_000_000_000);
                }
                _ => {}
            }
            at = value + len.next_multiple_of(4);
        }
        iface
    }

    /// The interface a packet block names, or the error saying it does not exist.
    #[inline]
    fn interface(&self, offset: u64, id: u32) -> Result<Interface, CaptureError> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.interfaces.get(i))
            .copied()
            .ok_or(CaptureError::UnknownInterface {
                offset,
                interface: id,
                known: self.interfaces.len(),
            })
    }

    /// The u32 at `at` in the section's byte order (the caller has checked `at + 4 <= b.len()`).
    #[inline]
    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let bytes = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    }

    /// The u16 at `at` in the section's byte order (the caller has checked `at + 2 <= b.len()`).
    #[inline]
    fn u16_at(&self, b: &[u8], at: usize) -> u16 {
        let bytes = [b[at], b[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        }
    }
}

/// The eight bytes at `at` (the caller has checked they exist).
fn eight(b: &[u8], at: usize) -> [u8; 8] {
    [
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
        b[at + 6],
        b[at + 7],
    ]
}
