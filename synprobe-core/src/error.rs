//! The crate's error types. Each says what failed, on what, and why, with the facts in typed fields; what the
//! user can do about it is for the front end to say (the synprobe CLI adds its advice per kind: "run it with
//! sudo", "see `man pcap-filter`"), since only it knows its flags and how it was started.

use std::net::IpAddr;

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
    #[error("the filter `{expr}` is not a valid BPF expression: {reason}")]
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

    /// A live run needs more source ports than there are: each address/port pair gets its own range, as large as
    /// its packet budget needs.
    #[error(
        "cannot plan the run: {pairs} address/port pairs with a budget of {budget} packets each need {needed} \
         source ports, more than the {available} available"
    )]
    SourcePorts {
        /// Address/port pairs in the run.
        pairs: usize,
        /// Packets each may cost at most.
        budget: u32,
        /// Source ports they need.
        needed: u32,
        /// Source ports there are.
        available: u32,
    },

    /// Live probing lacks CAP_NET_RAW (raw sockets) or CAP_NET_ADMIN (packet capture).
    #[error(
        "cannot {what}: permission denied (live probing needs CAP_NET_RAW for raw sockets and CAP_NET_ADMIN \
         for packet capture)"
    )]
    Privilege {
        /// What was being opened.
        what: &'static str,
    },

    /// The kernel has no route towards a target (or finding it failed).
    #[error("cannot reach {target}: {source}")]
    Route {
        /// The address concerned.
        target: IpAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },

    /// No capture device carries the source address the route to a target uses.
    #[error("cannot capture the replies to {address}: no capture device carries that address")]
    NoCaptureDevice {
        /// The local address (for a target on this host, the loopback address).
        address: IpAddr,
    },

    /// IPv6 targets reached from different source addresses cannot share one run (one raw IPv6 socket is
    /// bound to one source).
    #[error(
        "cannot probe these IPv6 targets in one run: they are reached from different source addresses \
         ({first} and {second})"
    )]
    MixedIpv6Sources {
        /// One source address.
        first: IpAddr,
        /// Another.
        second: IpAddr,
    },

    /// A shared prober was asked to probe an address outside the networks it was opened for: nothing was sent.
    #[error("refusing to probe {target}: it is outside the networks this prober may probe")]
    NotAllowed {
        /// The address asked for.
        target: IpAddr,
    },

    /// A shared prober's worker has stopped (its capture failed earlier): it takes no more probes.
    #[error("the prober has stopped and takes no more probes")]
    ProberStopped,

    /// The live capture failed.
    #[error("the capture on {interface} failed: {reason}")]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of each kind.
    fn every_kind() -> Vec<Error> {
        let addr: IpAddr = "192.0.2.7".parse().expect("address");
        vec![
            Error::Capture(CaptureError::Empty),
            Error::Capture(CaptureError::BadMagic { magic: 0x1f8b_0800 }),
            Error::Capture(CaptureError::BadMagic { magic: 0xa1b2_cd34 }),
            Error::Capture(CaptureError::BadMagic { magic: 0x736e_6f6f }),
            Error::Filter {
                expr: "port port".into(),
                reason: "syntax error".into(),
            },
            Error::FilterUnsupported { expr: "tcp".into() },
            Error::Config(ConfigError::Zero {
                setting: "session.budget",
            }),
            Error::Build("addresses of different families".into()),
            Error::SourcePorts {
                pairs: 2000,
                budget: 64,
                needed: 128_000,
                available: 55_535,
            },
            Error::Privilege {
                what: "open a raw IPv4 socket",
            },
            Error::Route {
                target: addr,
                source: std::io::Error::from_raw_os_error(101),
            },
            Error::NoCaptureDevice { address: addr },
            Error::MixedIpv6Sources {
                first: "2001:db8::1".parse().expect("address"),
                second: "2001:db8::2".parse().expect("address"),
            },
            Error::LiveCapture {
                interface: "eth9".into(),
                reason: "No such device exists".into(),
            },
            Error::Io {
                what: "send a probe",
                source: std::io::Error::other("no buffer space"),
            },
        ]
    }

    /// The library states facts: it names no command, flag or manual page (the CLI adds those).
    #[test]
    fn messages_say_what_failed_and_give_no_advice() {
        for e in every_kind() {
            let words = e.to_string();
            for advice in [
                "sudo",
                "setcap",
                "--",
                "man ",
                "ip link",
                "run it",
                "probe fewer",
                "lower",
            ] {
                assert!(
                    !words.contains(advice),
                    "{words:?} gives advice ({advice:?})"
                );
            }
            assert!(!words.is_empty());
        }
        let e = Error::SourcePorts {
            pairs: 2000,
            budget: 64,
            needed: 128_000,
            available: 55_535,
        };
        assert_eq!(
            e.to_string(),
            "cannot plan the run: 2000 address/port pairs with a budget of 64 packets each need 128000 source \
             ports, more than the 55535 available"
        );
    }
}
