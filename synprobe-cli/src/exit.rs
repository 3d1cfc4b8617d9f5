//! Exit codes, one per kind of outcome. Documented in README.md and `--help`; keep the three in step.

use std::process::ExitCode;

use synprobe_core::Verdict;

/// Success: the replay read the whole file; every probed port is open.
pub const OK: u8 = 0;
/// Usage error: a wrong flag or argument (clap's own code), a --filter that does not compile, a bad port list,
/// settings the library refuses (`Error::Config`).
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
/// Stopped by SIGINT/SIGTERM: the partial report (`watch`: the history) was printed.
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
        // A verdict newer than this table (the enum is non-exhaustive): the highest probe code, so that it is
        // never read as open. Give it its own code here, in README.md and in `--help` when it arrives.
        _ => 14,
    }
}

/// Every exit code with its meaning, in the order `--help` and the man page list them. README.md has the same
/// table; `tests/cli.rs` checks that the three agree.
pub const CODES: &[(u8, &str)] = &[
    (OK, "probe: every port open; replay: the whole file was read and analysed"),
    (10, "probe: closed (the host's own stack refused)"),
    (11, "probe: firewall-rst (an RST forged by a firewall)"),
    (12, "probe: icmp-rejected (ICMP prohibited / port unreachable)"),
    (13, "probe: unreachable (routing)"),
    (14, "probe: filtered (silently dropped); with several targets, the highest code wins"),
    (USAGE, "usage error: a wrong flag or argument, a bad port list, a --filter that does not compile"),
    (DAMAGED_INPUT, "replay: the capture is damaged; what came before the damage was analysed and printed"),
    (NO_INPUT, "replay: the input cannot be read (missing, unreadable, empty, not pcap/pcapng)"),
    (NO_TARGET, "probe: the target cannot be probed (the name does not resolve, no route or capture device)"),
    (CANNOT_WRITE, "the output cannot be written (a closed pipe is not an error)"),
    (NO_PERMISSION, "probe: missing privilege (CAP_NET_RAW): use sudo, or setcap cap_net_raw,cap_net_admin+ep"),
    (INTERRUPTED, "probe: interrupted (SIGINT/SIGTERM); the partial report was printed (watch: the history)"),
];

/// The table for `--help`, made from [`CODES`].
pub fn help() -> String {
    let mut s = String::from("Exit codes:");
    for (code, meaning) in CODES {
        s.push_str(&format!("\n  {code:<4}{meaning}"));
    }
    s
}

/// Convert to the process exit code.
pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
