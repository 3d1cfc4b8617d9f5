//! The exporter's modules: named probe settings a scrape picks with `&module=NAME`, read from a TOML file.
//!
//! ```toml
//! [modules.default]          # used when the scrape names no module
//! plan = "full"              # full (default) or quick
//! preferred_ip_protocol = "ip4"
//! ip_protocol_fallback = true
//! timeout = 5.0              # seconds; the scrape's own timeout (minus the offset) caps it
//!
//! [modules.quick]
//! plan = "quick"
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use synprobe_core::session::SessionConfig;
use synprobe_core::Duration;

/// Which plan a module runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// The whole plan: discriminators and the TTL walk that locates the rejecter.
    #[default]
    Full,
    /// Just the SYN and its retransmissions.
    Quick,
}

/// The address family a host name's address is picked from first (blackbox_exporter's
/// `preferred_ip_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum IpProtocol {
    /// IPv4.
    #[serde(rename = "ip4")]
    Ip4,
    /// IPv6.
    #[serde(rename = "ip6")]
    Ip6,
}

/// One module.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    /// The plan.
    #[serde(default)]
    pub plan: Plan,
    /// The family tried first for a host name (default ip6, as blackbox_exporter).
    #[serde(default = "default_preferred")]
    pub preferred_ip_protocol: IpProtocol,
    /// Whether the other family is used when the preferred one has no address (default true).
    #[serde(default = "default_fallback")]
    pub ip_protocol_fallback: bool,
    /// Longest probe, in seconds; 0 or absent: the scrape's timeout minus the offset decides.
    #[serde(default)]
    pub timeout: f64,
}

fn default_preferred() -> IpProtocol {
    IpProtocol::Ip6
}

fn default_fallback() -> bool {
    true
}

impl Default for Module {
    fn default() -> Self {
        Module {
            plan: Plan::Full,
            preferred_ip_protocol: default_preferred(),
            ip_protocol_fallback: true,
            timeout: 0.0,
        }
    }
}

impl Module {
    /// The address to probe among a name's addresses: the first of the preferred family, else (with fallback)
    /// the first of the other.
    pub fn pick(&self, addrs: &[IpAddr]) -> Option<IpAddr> {
        let preferred = |a: &&IpAddr| match self.preferred_ip_protocol {
            IpProtocol::Ip4 => a.is_ipv4(),
            IpProtocol::Ip6 => a.is_ipv6(),
        };
        addrs
            .iter()
            .find(preferred)
            .or_else(|| addrs.first().filter(|_| self.ip_protocol_fallback))
            .copied()
    }

    /// The plan's settings for a probe that may take `timeout`: the wait for a silent SYN shrinks to fit.
    pub fn session(&self, timeout: std::time::Duration) -> SessionConfig {
        let mut s = SessionConfig {
            quick: self.plan == Plan::Quick,
            retries: if self.plan == Plan::Quick { 1 } else { 2 },
            ..SessionConfig::default()
        };
        let limit = Duration::from_secs_f64(timeout.as_secs_f64());
        // Leave the plan room after the silence: its walk and controls.
        let wait = Duration::from_secs_f64(timeout.as_secs_f64() * 0.6);
        s.first_answer_wait = s.first_answer_wait.min(wait).max(Duration::from_millis(50));
        s.max_rto = s.max_rto.min(limit).max(s.min_rto);
        s
    }
}

/// The configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Modules by name.
    #[serde(default)]
    pub modules: BTreeMap<String, Module>,
}

impl Default for Config {
    /// Without a file: `default` (the full plan) and `quick`.
    fn default() -> Self {
        let mut modules = BTreeMap::new();
        modules.insert("default".to_string(), Module::default());
        modules.insert(
            "quick".to_string(),
            Module {
                plan: Plan::Quick,
                ..Module::default()
            },
        );
        Config { modules }
    }
}

impl Config {
    /// Read and check a file. The built-in `default` and `quick` modules stay unless the file redefines them.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("the config {} is wrong: {e}", path.display()))
    }

    /// Parse and check the TOML text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let file: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut config = Config::default();
        for (name, m) in file.modules {
            if !(m.timeout.is_finite() && m.timeout >= 0.0 && m.timeout <= 3600.0) {
                return Err(format!(
                    "module {name}: timeout must be between 0 and 3600 seconds"
                ));
            }
            config.modules.insert(name, m);
        }
        Ok(config)
    }
}

/// The probe's timeout in seconds, as blackbox_exporter computes it: the scrape's timeout from Prometheus's
/// `X-Prometheus-Scrape-Timeout-Seconds` header (120 s without it) minus `offset`, unless the module's own
/// timeout is shorter (or the difference is negative).
pub fn timeout_secs(header: Option<&str>, module_timeout: f64, offset: f64) -> Result<f64, String> {
    let mut scrape = match header {
        Some(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| format!("cannot parse the scrape timeout `{v}`"))?,
        _ => 0.0,
    };
    if scrape == 0.0 {
        scrape = 120.0;
    }
    let max = scrape - offset;
    Ok(
        if (module_timeout > 0.0 && module_timeout < max) || max < 0.0 {
            module_timeout
        } else {
            max
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_follows_the_scrape_header_minus_the_offset() {
        assert_eq!(timeout_secs(Some("10"), 0.0, 0.5), Ok(9.5));
        assert_eq!(timeout_secs(None, 0.0, 0.5), Ok(119.5));
        // The module's shorter timeout wins.
        assert_eq!(timeout_secs(Some("10"), 3.0, 0.5), Ok(3.0));
        assert_eq!(timeout_secs(Some("2"), 3.0, 0.5), Ok(1.5));
        // An offset larger than the scrape's timeout: the module's.
        assert_eq!(timeout_secs(Some("0.2"), 1.0, 0.5), Ok(1.0));
        assert!(timeout_secs(Some("soon"), 0.0, 0.5).is_err());
    }

    #[test]
    fn modules_parse_with_blackbox_names_and_defaults() {
        let c = Config::parse(
            "[modules.v4]\nplan = \"quick\"\npreferred_ip_protocol = \"ip4\"\nip_protocol_fallback = false\n\
             timeout = 2.5\n",
        )
        .expect("parses");
        let m = &c.modules["v4"];
        assert_eq!(m.plan, Plan::Quick);
        assert_eq!(m.preferred_ip_protocol, IpProtocol::Ip4);
        assert!(!m.ip_protocol_fallback);
        assert_eq!(m.timeout, 2.5);
        assert_eq!(c.modules["default"], Module::default());
        assert!(Config::parse("[modules.x]\nplann = \"full\"\n").is_err());
        assert!(Config::parse("[modules.x]\ntimeout = -1\n").is_err());
    }

    #[test]
    fn the_preferred_family_comes_first_and_fallback_is_optional() {
        let v4: IpAddr = "198.18.2.2".parse().expect("addr");
        let v6: IpAddr = "2001:db8::2".parse().expect("addr");
        let m = Module::default();
        assert_eq!(m.pick(&[v4, v6]), Some(v6));
        assert_eq!(m.pick(&[v4]), Some(v4));
        let strict = Module {
            preferred_ip_protocol: IpProtocol::Ip4,
            ip_protocol_fallback: false,
            ..Module::default()
        };
        assert_eq!(strict.pick(&[v6]), None);
        assert_eq!(strict.pick(&[v6, v4]), Some(v4));
    }

    #[test]
    fn a_short_timeout_shrinks_the_silent_wait() {
        let s = Module::default().session(std::time::Duration::from_millis(500));
        assert!(s.first_answer_wait <= Duration::from_millis(300));
        assert!(s.validate().is_ok());
        let s = Module::default().session(std::time::Duration::from_secs(30));
        assert_eq!(
            s.first_answer_wait,
            SessionConfig::default().first_answer_wait
        );
    }
}
