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

    /// A packet could not be built (addresses of different families, a value out of range).
    #[error("cannot build the packet: {0}")]
    Build(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
