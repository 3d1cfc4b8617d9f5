//! The crate's error type: each says what was being done, to what, and what the user can do about it.

use crate::capture::CaptureError;

/// Errors from synprobe-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a capture file failed; frames before the damage were delivered.
    #[error(transparent)]
    Capture(#[from] CaptureError),

    /// A BPF filter expression did not compile.
    #[error("the filter `{expr}` is not a valid BPF expression: {reason} (see `man pcap-filter`)")]
    Filter {
        /// The expression.
        expr: String,
        /// libpcap's message.
        reason: String,
    },

    /// A BPF filter was asked for, but this build of synprobe-core has no BPF compiler (feature `bpf` off).
    #[error("cannot apply the filter `{expr}`: this build has no BPF support (the `bpf` feature is off)")]
    FilterUnsupported {
        /// The expression.
        expr: String,
    },

    /// A packet could not be built (addresses of different families, a value out of range).
    #[error("cannot build the packet: {0}")]
    Build(String),

    /// The run cannot be planned as asked (too many targets for the source ports, for example).
    #[error("cannot plan the run: {0}")]
    Plan(String),

    /// Live probing lacks CAP_NET_RAW (or CAP_NET_ADMIN for capture).
    #[error(
        "cannot {what}: permission denied. Live probing needs raw sockets and packet capture: run it with sudo, \
         or give the binary the capabilities once: sudo setcap cap_net_raw,cap_net_admin+ep \"$(command -v synprobe)\""
    )]
    Privilege {
        /// What was being opened.
        what: &'static str,
    },

    /// No route, or no capture device, towards a target.
    #[error("cannot reach {target}: {reason}")]
    Route {
        /// The address concerned.
        target: std::net::IpAddr,
        /// Why.
        reason: String,
    },

    /// The live capture failed.
    #[error("the capture on {interface} failed: {reason} (check the interface with `ip link`, or pick one with --interface)")]
    LiveCapture {
        /// The interface.
        interface: String,
        /// libpcap's message.
        reason: String,
    },

    /// Another I/O operation failed.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
