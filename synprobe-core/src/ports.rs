//! Port lists as operators write them: `443`, `80,443`, `8000-8010`, `22,80,8000-8010`.

use std::fmt;

/// The most ports one list may name: every port (`1-65535`); a list of many ports on one host is a sweep.
pub const MAX_PORTS: usize = 65_535;

/// Why a port list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortListError {
    /// The list as given.
    pub input: String,
    /// What is wrong, in words.
    pub reason: String,
}

impl fmt::Display for PortListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a port list: {} (write ports as 443, 80,443 or 8000-8010)",
            self.input, self.reason
        )
    }
}

impl std::error::Error for PortListError {}

/// Parse a port list into ascending, distinct ports (1..=65535, at most [`MAX_PORTS`]).
///
/// ```
/// assert_eq!(synprobe_core::parse_ports("443,80,8000-8002").unwrap(), vec![80, 443, 8000, 8001, 8002]);
/// assert!(synprobe_core::parse_ports("0").is_err());
/// ```
pub fn parse_ports(input: &str) -> Result<Vec<u16>, PortListError> {
    let err = |reason: String| PortListError {
        input: input.chars().take(80).collect(),
        reason,
    };
    let mut ports: Vec<u16> = Vec::new();
    if input.trim().is_empty() {
        return Err(err("it is empty".into()));
    }
    for part in input.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(err("an empty item between commas".into()));
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (port(a.trim()).map_err(&err)?, port(b.trim()).map_err(&err)?),
            None => {
                let p = port(part).map_err(&err)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(err(format!("the range {lo}-{hi} runs backwards")));
        }
        if usize::from(hi - lo) + 1 + ports.len() > MAX_PORTS * 2 {
            return Err(err(format!("more than {MAX_PORTS} ports")));
        }
        ports.extend(lo..=hi);
    }
    ports.sort_unstable();
    ports.dedup();
    if ports.len() > MAX_PORTS {
        return Err(err(format!("{} ports, more than {MAX_PORTS}", ports.len())));
    }
    Ok(ports)
}

fn port(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{}` is not a number",
            s.chars().take(20).collect::<String>()
        ));
    }
    match s.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(format!(
            "{} is not a port (1 to 65535)",
            s.chars().take(20).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_ranges_and_duplicates() {
        assert_eq!(parse_ports("443").expect("ok"), vec![443]);
        assert_eq!(parse_ports(" 80 , 443 ,80").expect("ok"), vec![80, 443]);
        assert_eq!(
            parse_ports("8000-8003,1").expect("ok"),
            vec![1, 8000, 8001, 8002, 8003]
        );
        assert_eq!(parse_ports("65535").expect("ok"), vec![65535]);
        assert_eq!(parse_ports("1-1024").expect("ok").len(), 1024);
        assert_eq!(parse_ports("1-65535,80,1-100").expect("ok").len(), 65_535);
    }

    #[test]
    fn refusals_say_why() {
        for (bad, why) in [
            ("", "empty"),
            ("0", "not a port"),
            ("65536", "not a port"),
            ("99999999999999999999", "not a port"),
            ("80,,443", "empty item"),
            ("10-5", "backwards"),
            ("http", "not a number"),
            ("-5", "not a number"),
            ("1-65535,x", "not a number"),
            ("+80", "not a number"),
        ] {
            let e = parse_ports(bad).expect_err(bad);
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }
}
