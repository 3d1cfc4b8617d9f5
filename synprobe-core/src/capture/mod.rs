//! Reading capture files: classic pcap and pcapng, parsed by hand.
//!
//! [`CaptureReader`] detects the format from the first four bytes (never from the file name), then hands out
//! one [`Frame`] at a time, borrowed from its own buffer: no allocation and no copy per frame. It reads
//! pcapng files whose interfaces have different link types and timestamp resolutions, and when a file is
//! damaged it says what broke and at which byte offset ([`CaptureError::offset`]).
//!
//! ```no_run
//! use std::path::Path;
//! use synprobe_core::capture::CaptureReader;
//!
//! # fn main() -> Result<(), synprobe_core::capture::CaptureError> {
//! let mut reader = CaptureReader::open(Path::new("scan.pcapng"))?;
//! let mut frames = 0u64;
//! let failure = loop {
//!     match reader.next_frame() {
//!         Ok(Some(frame)) => {
//!             frames += 1;
//!             let _ = (frame.link, frame.ts, frame.data);
//!         }
//!         Ok(None) => break None,
//!         // Analyse what was read, then report the damage.
//!         Err(e) => break Some(e),
//!     }
//! };
//! println!("{frames} frames");
//! if let Some(e) = failure {
//!     eprintln!("warning: {e}");
//! }
//! # Ok(())
//! # }
//! ```

mod input;
mod pcap;
mod pcapng;
#[cfg(test)]
mod tests;
mod write;

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::time::Timestamp;
use input::Input;
pub use write::{PcapNgWriter, PcapWriter};

/// The size of the reader's own buffer (it grows only for a record larger than this). Small enough that what
/// one read brings in is still in the CPU's cache when its records are parsed: replay runs 15-20% faster with
/// 256 KiB than with 1 MiB (BENCHMARKS.md).
pub const DEFAULT_BUFFER_SIZE: usize = 256 << 10;

/// The largest captured length accepted in a classic pcap record whatever the header's snaplen says
/// (libpcap's `MAXIMUM_SNAPLEN`). A file whose header declares a larger snaplen may use up to that, but
/// never more than [`MAX_BLOCK_LEN`].
pub const MAX_PCAP_CAPLEN: u32 = 262_144;

/// The largest pcapng block accepted, in bytes (16 MiB, as Wireshark). Anything larger is damage.
pub const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;

/// A link-layer header type (pcap `LINKTYPE_` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in the host byte order of the capturing machine.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II / 802.3.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP as written by some BSDs (`DLT_RAW` is 12 on most of them).
    pub const RAW_12: LinkType = LinkType(12);
    /// Raw IP as written by OpenBSD (`DLT_RAW` is 14 there).
    pub const RAW_14: LinkType = LinkType(14);
    /// Raw IP, version 4 or 6 from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux "cooked" capture, version 1 (`any` device).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Ethernet with 802.3br preemption (mPackets).
    pub const ETHERNET_MPACKET: LinkType = LinkType(274);
    /// Linux "cooked" capture, version 2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// A short human name for the link type ("unknown" for values synprobe has no name for).
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "BSD loopback",
            1 => "Ethernet",
            9 => "PPP",
            12 | 14 | 101 => "raw IP",
            105 => "IEEE 802.11",
            108 => "OpenBSD loopback",
            113 => "Linux cooked (SLL)",
            127 => "IEEE 802.11 radiotap",
            228 => "raw IPv4",
            229 => "raw IPv6",
            274 => "Ethernet mPackets (802.3br)",
            276 => "Linux cooked v2 (SLL2)",
            _ => "unknown",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (link type {})", self.name(), self.0)
    }
}

/// One captured frame, borrowed from the reader's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The link-layer header type of `data` (per interface in pcapng).
    pub link: LinkType,
    /// When the frame was captured. A pcapng simple packet has none and gets the last timestamp seen.
    pub ts: Timestamp,
    /// The captured bytes (`caplen` of them), starting with the link-layer header.
    pub data: &'a [u8],
    /// The length of the frame on the wire (may be smaller than `data.len()` in odd files; tolerated).
    pub orig_len: u32,
    /// The file offset of this record's header (pcap) or block (pcapng).
    pub offset: u64,
    /// The pcapng interface id within its section; 0 for classic pcap.
    pub interface: u32,
}

/// The file format detected from the magic number (never from the file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Classic libpcap format.
    Pcap {
        /// Nanosecond timestamps (magic 0xa1b23c4d) rather than microseconds (0xa1b2c3d4).
        nanos: bool,
        /// Big-endian file (written on a big-endian machine).
        big_endian: bool,
        /// Format version (major, minor); 2.0 to 2.4 are read.
        version: (u16, u16),
        /// The snapshot length declared in the file header (damaged files may declare 0 or 1).
        snaplen: u32,
        /// The link type of every record (the low 16 bits of the header field).
        link: LinkType,
    },
    /// pcapng: link type and timestamp resolution are per interface, byte order per section.
    PcapNg,
}

/// Which piece of the file was incomplete when the input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// The 4-byte magic number and the rest of the 24-byte pcap file header.
    FileHeader,
    /// A 16-byte pcap record header.
    RecordHeader,
    /// The captured bytes of a pcap record.
    RecordData,
    /// The 8 to 12 bytes at the start of a pcapng block (type, length, byte-order magic).
    BlockHeader,
    /// The rest of a pcapng block.
    Block,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::FileHeader => "the file header",
            Part::RecordHeader => "a record header",
            Part::RecordData => "the data of a record",
            Part::BlockHeader => "a pcapng block header",
            Part::Block => "a pcapng block",
        })
    }
}

/// What is wrong with a pcapng block's total length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LengthProblem {
    /// Block lengths are always a multiple of 4.
    NotMultipleOf4,
    /// Shorter than the smallest valid block of its type.
    TooShort {
        /// The minimum for this block type.
        min: u32,
    },
    /// Longer than [`MAX_BLOCK_LEN`].
    TooLong {
        /// The limit.
        max: u32,
    },
}

impl fmt::Display for LengthProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LengthProblem::NotMultipleOf4 => f.write_str("not a multiple of 4"),
            LengthProblem::TooShort { min } => {
                write!(f, "less than the minimum of {min} for this block type")
            }
            LengthProblem::TooLong { max } => write!(f, "more than the limit of {max}"),
        }
    }
}

/// Why a capture could not be read (further), and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be opened.
    #[error("cannot open capture file {}: {source}", path.display())]
    Open {
        /// The path given.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Reading failed.
    #[error("cannot read the capture at offset {offset}: {source}")]
    Io {
        /// Where the failed read started.
        offset: u64,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Zero bytes of input.
    #[error("the input is empty (0 bytes at offset 0): not a pcap or pcapng file")]
    Empty,
    /// The first four bytes are not a pcap or pcapng magic number.
    #[error(
        "not a pcap or pcapng file: magic {magic:#010x} at offset 0 (expected a pcap 0xa1b2c3d4/0xa1b23c4d \
         or pcapng 0x0a0d0d0a header){}",
        magic_hint(*magic)
    )]
    BadMagic {
        /// The first four bytes, read big-endian (as they appear in a hex dump).
        magic: u32,
    },
    /// A format version synprobe does not read.
    #[error("unsupported {format} version {major}.{minor} at offset {offset} (synprobe reads {supported})")]
    UnsupportedVersion {
        /// "pcap" or "pcapng".
        format: &'static str,
        /// Major version found.
        major: u16,
        /// Minor version found.
        minor: u16,
        /// Offset of the version field.
        offset: u64,
        /// The versions that are read, in words.
        supported: &'static str,
    },
    /// The input ended inside a header, a record or a block.
    #[error("file ends inside {part} at offset {offset} ({got} of {wanted} bytes): the capture was cut short")]
    Truncated {
        /// What was incomplete.
        part: Part,
        /// Where that piece starts.
        offset: u64,
        /// Bytes the piece needs.
        wanted: u64,
        /// Bytes present before the end of the input.
        got: u64,
    },
    /// A pcap record header claims more captured bytes than any real capture holds.
    #[error(
        "record at offset {offset} claims {caplen} captured bytes, more than the limit of {limit} \
         (snaplen {snaplen}): the file is damaged"
    )]
    RecordTooLarge {
        /// Offset of the record header.
        offset: u64,
        /// The captured length claimed.
        caplen: u32,
        /// The limit applied.
        limit: u32,
        /// The snaplen from the file header.
        snaplen: u32,
    },
    /// A pcapng section header whose byte-order magic is neither 0x1a2b3c4d nor its swap.
    #[error(
        "pcapng section header at offset {offset} has byte-order magic {magic:#010x} (expected 0x1a2b3c4d \
         in either byte order): the file is damaged"
    )]
    BadByteOrderMagic {
        /// Offset of the section header block.
        offset: u64,
        /// The four bytes found, read big-endian.
        magic: u32,
    },
    /// A pcapng block's total length is impossible.
    #[error(
        "pcapng block at offset {offset} (type {block_type:#010x}) has a total length of {length} bytes, \
         {problem}: the file is damaged"
    )]
    BadBlockLength {
        /// Offset of the block.
        offset: u64,
        /// Its block type.
        block_type: u32,
        /// The total length it claims.
        length: u32,
        /// What is wrong with it.
        problem: LengthProblem,
    },
    /// A pcapng block's trailing length differs from its leading length.
    #[error(
        "pcapng block at offset {offset} (type {block_type:#010x}) starts with a total length of {leading} \
         bytes but ends with {trailing}: the file is damaged"
    )]
    BlockLengthMismatch {
        /// Offset of the block.
        offset: u64,
        /// Its block type.
        block_type: u32,
        /// The length at the start of the block.
        leading: u32,
        /// The length at the end of the block.
        trailing: u32,
    },
    /// A pcapng packet block names an interface its section never described.
    #[error(
        "packet block at offset {offset} refers to interface {interface}, but its section describes only \
         {known} interface(s): the file is damaged"
    )]
    UnknownInterface {
        /// Offset of the packet block.
        offset: u64,
        /// The interface id it names.
        interface: u32,
        /// How many interface description blocks the section has so far.
        known: usize,
    },
    /// A pcapng packet block claims more captured bytes than the block holds.
    #[error(
        "packet block at offset {offset} claims {caplen} captured bytes, but the block has room for only \
         {room}: the file is damaged"
    )]
    PacketOverrunsBlock {
        /// Offset of the packet block.
        offset: u64,
        /// The captured length claimed.
        caplen: u32,
        /// The bytes of packet data the block can hold.
        room: u32,
    },
}

impl CaptureError {
    /// For input that is no capture ([`CaptureError::BadMagic`]), what it looks like, if its first bytes tell.
    pub fn looks_like(&self) -> Option<LooksLike> {
        match self {
            CaptureError::BadMagic { magic } => LooksLike::of_magic(*magic),
            _ => None,
        }
    }

    /// The byte offset in the input where the problem is, if it has one (opening a file does not).
    pub fn offset(&self) -> Option<u64> {
        match self {
            CaptureError::Open { .. } => None,
            CaptureError::Empty | CaptureError::BadMagic { .. } => Some(0),
            CaptureError::Io { offset, .. }
            | CaptureError::UnsupportedVersion { offset, .. }
            | CaptureError::Truncated { offset, .. }
            | CaptureError::RecordTooLarge { offset, .. }
            | CaptureError::BadByteOrderMagic { offset, .. }
            | CaptureError::BadBlockLength { offset, .. }
            | CaptureError::BlockLengthMismatch { offset, .. }
            | CaptureError::UnknownInterface { offset, .. }
            | CaptureError::PacketOverrunsBlock { offset, .. } => Some(*offset),
        }
    }
}

/// A hint for a magic number that is a known non-capture (or unsupported capture) format.
fn magic_hint(magic: u32) -> String {
    LooksLike::of_magic(magic).map_or(String::new(), |l| format!(": it looks like {l}"))
}

/// What a file that is no capture looks like, from its first four bytes: a front end can say what to do
/// (decompress it, convert it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LooksLike {
    /// gzip-compressed.
    Gzip,
    /// zstd-compressed.
    Zstd,
    /// xz-compressed.
    Xz,
    /// bzip2-compressed.
    Bzip2,
    /// A zip archive.
    Zip,
    /// A pcap with Kuznetzov's patched record headers (magic 0xa1b2cd34).
    KuznetzovPcap,
    /// A snoop capture (Solaris).
    Snoop,
}

impl LooksLike {
    /// What the first four bytes (read big-endian) suggest, if anything.
    pub fn of_magic(magic: u32) -> Option<LooksLike> {
        Some(match magic {
            m if m >> 16 == 0x1f8b => LooksLike::Gzip,
            0x28b5_2ffd => LooksLike::Zstd,
            0xfd37_7a58 => LooksLike::Xz,
            m if m >> 8 == 0x42_5a68 => LooksLike::Bzip2,
            0xa1b2_cd34 | 0x34cd_b2a1 => LooksLike::KuznetzovPcap,
            m if m >> 16 == 0x504b => LooksLike::Zip,
            0x736e_6f6f => LooksLike::Snoop,
            _ => return None,
        })
    }

    /// Whether it is a compressed file (gzip, zstd, xz, bzip2).
    pub fn is_compressed(self) -> bool {
        matches!(
            self,
            LooksLike::Gzip | LooksLike::Zstd | LooksLike::Xz | LooksLike::Bzip2
        )
    }
}

impl fmt::Display for LooksLike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LooksLike::Gzip => "a gzip-compressed file",
            LooksLike::Zstd => "a zstd-compressed file",
            LooksLike::Xz => "an xz-compressed file",
            LooksLike::Bzip2 => "a bzip2-compressed file",
            LooksLike::Zip => "a zip archive",
            LooksLike::KuznetzovPcap => "a Kuznetzov-patched pcap",
            LooksLike::Snoop => "a snoop capture",
        })
    }
}

/// Which format is being read, with its parsing state.
enum State {
    Pcap(pcap::PcapState),
    PcapNg(pcapng::PcapNgState),
}

/// Reads frames from any [`std::io::Read`] (a file, stdin, a byte slice).
///
/// The reader does its own buffering (one buffer, reused; [`DEFAULT_BUFFER_SIZE`] unless told), so there is
/// no need to wrap the source in a `BufReader`.
pub struct CaptureReader<R> {
    input: Input<R>,
    format: Format,
    state: State,
    skipped: u64,
    finished: bool,
}

impl<R: Read> CaptureReader<R> {
    /// Reads and validates the file header (pcap) or the first section header block (pcapng).
    pub fn new(reader: R) -> Result<Self, CaptureError> {
        Self::with_buffer_size(reader, DEFAULT_BUFFER_SIZE)
    }

    /// As [`CaptureReader::new`], with a buffer of `size` bytes to start with (it grows for a larger record).
    pub fn with_buffer_size(reader: R, size: usize) -> Result<Self, CaptureError> {
        let mut input = Input::new(reader, size);
        let avail = input.fill(4)?;
        if avail == 0 {
            return Err(CaptureError::Empty);
        }
        if avail < 4 {
            return Err(CaptureError::Truncated {
                part: Part::FileHeader,
                offset: 0,
                wanted: 4,
                got: avail as u64,
            });
        }
        let bytes = input.available();
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        let (format, state) = if magic == pcapng::SHB_TYPE_BYTES {
            let state = pcapng::PcapNgState::start(&mut input)?;
            (Format::PcapNg, State::PcapNg(state))
        } else if let Some((nanos, big_endian)) = pcap::magic(magic) {
            let (format, state) = pcap::PcapState::start(&mut input, nanos, big_endian)?;
            (format, State::Pcap(state))
        } else {
            return Err(CaptureError::BadMagic {
                magic: u32::from_be_bytes(magic),
            });
        };
        Ok(CaptureReader {
            input,
            format,
            state,
            skipped: 0,
            finished: false,
        })
    }

    /// The format detected from the magic number.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// The next frame, `Ok(None)` at a clean end of the input.
    ///
    /// After an error (or the end), every further call returns `Ok(None)`: analyse the frames already
    /// read, then report the error.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        let result = match &mut self.state {
            State::Pcap(state) => state.next(&mut self.input),
            State::PcapNg(state) => state.next(&mut self.input, &mut self.skipped),
        };
        match result {
            Ok(Some(frame)) => Ok(Some(frame)),
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(e) => {
                self.finished = true;
                Err(e)
            }
        }
    }

    /// Bytes of the input consumed so far: the offset of the next record (for a progress bar).
    pub fn bytes_read(&self) -> u64 {
        self.input.offset()
    }

    /// pcapng blocks skipped because they hold no packet (name resolution, statistics, decryption
    /// secrets, custom and unknown blocks). Counted, not errors.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

impl CaptureReader<BufReader<File>> {
    /// Opens a capture file and reads its header.
    ///
    /// The reader buffers 256 KiB itself; the `BufReader` is kept small so that those large reads bypass it.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(BufReader::with_capacity(8 * 1024, file))
    }
}
