//! Exit codes, one per kind of outcome. Documented in README.md and `--help`; keep the three in step.

use std::process::ExitCode;

use synprobe_core::Verdict;

/// Success: the replay read the whole file; every probed port is open.
pub const OK: u8 = 0;
/// Usage error: a wrong flag or argument (clap's own code), a --filter that does not compile, a bad port list.
pub const USAGE: u8 = 2;
/// The capture file is damaged: what came before the damage was analysed and printed.
pub const DAMAGED_INPUT: u8 = 65;
/// The input could not be read at all: missing, unreadable, empty, not a capture, unsupported version.
pub const NO_INPUT: u8 = 66;
/// The target cannot be probed: the name does not resolve, no route or capture device, a socket error.
pub const NO_TARGET: u8 = 68;
/// Output could not be written (other than a closed pipe, which is success).
pub const CANNOT_WRITE: u8 = 74;
/// Missing privilege (CAP_NET_RAW) for live probing.
pub const NO_PERMISSION: u8 = 77;
/// Stopped by SIGINT/SIGTERM: the partial report was printed.
pub const INTERRUPTED: u8 = 130;

/// The exit code for a probe verdict; with several targets the highest wins.
pub fn for_verdict(v: Verdict) -> u8 {
    match v {
        Verdict::Open => 0,
        Verdict::Closed => 10,
        Verdict::FirewallRst => 11,
        Verdict::IcmpRejected => 12,
        Verdict::Unreachable => 13,
        Verdict::Filtered => 14,
    }
}

/// The table for `--help`.
pub const HELP: &str = "\
Exit codes:
  0   probe: every port open; replay: the whole file was read
  10  closed (the host's own stack refused)          13  unreachable (routing)
  11  firewall-rst (an RST forged by a firewall)     14  filtered (silently dropped)
  12  icmp-rejected (ICMP prohibited / port unreachable)
      (several targets: the highest code)
  2   usage error                  65  capture damaged (what came before was analysed)
  66  capture unreadable           68  target cannot be probed (name, route, socket)
  74  cannot write output          77  missing privilege (run with sudo, or setcap cap_net_raw,cap_net_admin+ep)
  130 interrupted (partial report printed)";

/// Convert to the process exit code.
pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
