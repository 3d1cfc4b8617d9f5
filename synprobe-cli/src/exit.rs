//! Exit codes, one per kind of outcome. Documented in README.md and `--help`; keep the three in step.

use std::process::ExitCode;

/// The replay read the whole file.
pub const OK: u8 = 0;
/// Usage error: a wrong flag or argument (clap's own code), or a --filter that does not compile.
pub const USAGE: u8 = 2;
/// The capture file is damaged: what came before the damage was analysed and printed.
pub const DAMAGED_INPUT: u8 = 65;
/// The input could not be read at all: missing, unreadable, empty, not a capture, unsupported version.
pub const NO_INPUT: u8 = 66;
/// Output could not be written (other than a closed pipe, which is success).
pub const CANNOT_WRITE: u8 = 74;

/// The table for `--help`.
pub const HELP: &str = "\
Exit codes:
  0   the whole file was read and analysed
  2   usage error (a wrong flag or argument, a --filter that does not compile)
  65  the capture is damaged: everything before the damage was analysed and printed
  66  the input cannot be read: missing, unreadable, empty, not pcap/pcapng, unsupported version
  74  the output cannot be written";

/// Convert to the process exit code.
pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
