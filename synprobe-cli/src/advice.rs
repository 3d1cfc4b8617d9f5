//! What the user can do about an error: synprobe-core's errors say what failed, on what and why; the advice,
//! which names this program's flags and the commands around it, is added here, in one place.

use std::fmt;

use synprobe_core::capture::{CaptureError, LooksLike};
use synprobe_core::Error;

/// The next step for an error of this kind, if there is one worth saying.
pub fn advice(e: &Error) -> Option<&'static str> {
    match e {
        Error::Capture(c) => capture_advice(c),
        Error::Filter { .. } => Some("see `man pcap-filter`"),
        Error::FilterUnsupported { .. } => Some(
            "this synprobe was built without synprobe-core's `bpf` feature: rebuild it with default features, \
             or filter the capture with tcpdump first",
        ),
        Error::SourcePorts { .. } => Some("probe fewer at once or lower --budget"),
        Error::Privilege { .. } => Some(
            "run it with sudo, or give the binary the capabilities once: \
             sudo setcap cap_net_raw,cap_net_admin+ep \"$(command -v synprobe)\"",
        ),
        Error::NoCaptureDevice { .. } => Some("name one with --interface"),
        Error::MixedIpv6Sources { .. } => Some("probe them in separate runs"),
        Error::LiveCapture { .. } => {
            Some("check the interface with `ip link`, or pick one with --interface")
        }
        Error::Route { .. } => Some("check the address and the routes (`ip route get ADDRESS`)"),
        Error::NotAllowed { .. } => Some("add its network to --allow if it should be probed"),
        // The message says it all: a damaged or unreadable capture, a setting out of range, a failed send.
        _ => None,
    }
}

/// The next step for a capture that cannot be read: for input that is no capture but looks like something
/// known, how to turn it into one.
pub fn capture_advice(e: &CaptureError) -> Option<&'static str> {
    match e.looks_like()? {
        l if l.is_compressed() => Some("decompress it first"),
        LooksLike::Zip => Some("extract it first"),
        LooksLike::KuznetzovPcap => Some("convert it with editcap -F pcap first"),
        LooksLike::Snoop => Some("convert it with editcap -F pcapng first"),
        _ => None,
    }
}

/// A capture error with its advice, as [`Advised`].
pub struct AdvisedCapture<'a>(pub &'a CaptureError);

impl fmt::Display for AdvisedCapture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match capture_advice(self.0) {
            Some(a) => write!(f, "{}; {a}", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// An error with its advice: "what failed: why; what to do".
pub struct Advised<'a>(pub &'a Error);

impl fmt::Display for Advised<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match advice(self.0) {
            Some(a) => write!(f, "{}; {a}", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kinds_that_need_a_next_step_get_one() {
        let privilege = Error::Privilege {
            what: "open a raw IPv4 socket",
        };
        let words = Advised(&privilege).to_string();
        assert!(
            words.starts_with("cannot open a raw IPv4 socket: permission denied"),
            "{words}"
        );
        assert!(
            words.contains("run it with sudo")
                && words.contains("setcap cap_net_raw,cap_net_admin+ep"),
            "{words}"
        );
        let filter = Error::Filter {
            expr: "port port".into(),
            reason: "syntax error".into(),
        };
        assert_eq!(
            Advised(&filter).to_string(),
            "the filter `port port` is not a valid BPF expression: syntax error; see `man pcap-filter`"
        );
        let capture = Error::LiveCapture {
            interface: "eth9".into(),
            reason: "No such device exists".into(),
        };
        assert!(Advised(&capture)
            .to_string()
            .ends_with("; check the interface with `ip link`, or pick one with --interface"));
        let device = Error::NoCaptureDevice {
            address: "192.0.2.1".parse().expect("address"),
        };
        assert!(Advised(&device).to_string().contains("--interface"));
        let ports = Error::SourcePorts {
            pairs: 2000,
            budget: 64,
            needed: 128_000,
            available: 55_535,
        };
        assert!(Advised(&ports)
            .to_string()
            .ends_with("; probe fewer at once or lower --budget"));
        let v6 = Error::MixedIpv6Sources {
            first: "2001:db8::1".parse().expect("address"),
            second: "2001:db8::2".parse().expect("address"),
        };
        assert!(Advised(&v6)
            .to_string()
            .ends_with("; probe them in separate runs"));
        let unsupported = Error::FilterUnsupported { expr: "tcp".into() };
        assert!(advice(&unsupported).is_some());
        // Input that is no capture but looks like a known file: how to make it one.
        let gzip = CaptureError::BadMagic { magic: 0x1f8b_0800 };
        assert!(
            AdvisedCapture(&gzip)
                .to_string()
                .ends_with(": it looks like a gzip-compressed file; decompress it first"),
            "{}",
            AdvisedCapture(&gzip)
        );
        let snoop = Error::Capture(CaptureError::BadMagic { magic: 0x736e_6f6f });
        assert_eq!(
            advice(&snoop),
            Some("convert it with editcap -F pcapng first")
        );
        let http = CaptureError::BadMagic { magic: 0x4745_5420 };
        assert_eq!(capture_advice(&http), None);
        // A setting out of range says which and why; nothing to add.
        let config = Error::Config(synprobe_core::ConfigError::Zero {
            setting: "session.budget",
        });
        assert_eq!(
            Advised(&config).to_string(),
            "invalid configuration: session.budget must be at least 1, not 0"
        );
    }
}
