//! The crate's error type: each says what was being done, to what, and what the user can do about it.

use crate::capture::CaptureError;
use crate::time::Duration;

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

    /// A configuration makes no sense (a zero cap, a negative timeout, bounds the wrong way round).
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),

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

/// What is wrong with a configuration (`validate()` of [`MatchConfig`](crate::matcher::MatchConfig),
/// [`AnalyzerConfig`](crate::analysis::AnalyzerConfig), [`EngineConfig`](crate::EngineConfig),
/// [`ReplayOptions`](crate::ReplayOptions), [`SessionConfig`](crate::session::SessionConfig) and the live
/// prober's). `setting` names the field, as `matcher.timeout`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A time that must be longer than zero is zero or negative.
    #[error("{setting} must be longer than zero, not {} s", .value.as_secs_f64())]
    NotPositive {
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: Duration,
    },
    /// A time that must not be negative is.
    #[error("{setting} must not be negative, not {} s", .value.as_secs_f64())]
    Negative {
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: Duration,
    },
    /// A count, cap or limit that must be at least 1 is 0.
    #[error("{setting} must be at least 1, not 0")]
    Zero {
        /// The setting.
        setting: &'static str,
    },
    /// A lower bound is above its upper bound.
    #[error("{low} ({} s) must not be above {high} ({} s)", .low_value.as_secs_f64(), .high_value.as_secs_f64())]
    Inverted {
        /// The lower bound's setting.
        low: &'static str,
        /// Its value.
        low_value: Duration,
        /// The upper bound's setting.
        high: &'static str,
        /// Its value.
        high_value: Duration,
    },
    /// A port that must be a real one (1-65535) is 0.
    #[error("{setting} lists port 0, which no packet can carry")]
    PortZero {
        /// The setting.
        setting: &'static str,
    },
    /// A name that must not be empty is.
    #[error("{setting} must not be empty")]
    Empty {
        /// The setting.
        setting: &'static str,
    },
}

impl ConfigError {
    /// The setting at fault, as `matcher.timeout`.
    pub fn setting(&self) -> &'static str {
        match self {
            ConfigError::NotPositive { setting, .. }
            | ConfigError::Negative { setting, .. }
            | ConfigError::Zero { setting }
            | ConfigError::PortZero { setting }
            | ConfigError::Empty { setting } => setting,
            ConfigError::Inverted { low, .. } => low,
        }
    }
}

/// Checks the validate() methods share.
pub(crate) mod check {
    use super::ConfigError;
    use crate::time::Duration;

    /// `value` is longer than zero.
    pub(crate) fn positive(setting: &'static str, value: Duration) -> Result<(), ConfigError> {
        if value.0 > 0 {
            Ok(())
        } else {
            Err(ConfigError::NotPositive { setting, value })
        }
    }

    /// `value` is zero or longer.
    pub(crate) fn not_negative(setting: &'static str, value: Duration) -> Result<(), ConfigError> {
        if value.0 >= 0 {
            Ok(())
        } else {
            Err(ConfigError::Negative { setting, value })
        }
    }

    /// `value` is at least 1.
    pub(crate) fn at_least_one<T: Default + PartialEq>(
        setting: &'static str,
        value: T,
    ) -> Result<(), ConfigError> {
        if value == T::default() {
            Err(ConfigError::Zero { setting })
        } else {
            Ok(())
        }
    }
}
