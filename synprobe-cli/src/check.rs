//! `synprobe check -H HOST -p PORT`: a Nagios / Icinga plugin in the conventions of monitoring-plugins'
//! check_tcp: one status line (`TCP OK - …`), perfdata after ` | `, exit 0/1/2/3.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use clap::{Args, ValueHint};
use synprobe_core::explain::Explain;
use synprobe_core::live::{drop_privileges, Job, Prober, ProberConfig, RunError};
use synprobe_core::session::{SessionConfig, TargetReport};
use synprobe_core::{Duration, Verdict};

use crate::advice::Advised;
use crate::probe::{resolve_in_order, stop_on_signals};
use crate::render::rejecter_at;

/// Nagios plugin states, with their exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// 0: all is well.
    Ok = 0,
    /// 1: look at it soon.
    Warning = 1,
    /// 2: look at it now.
    Critical = 2,
    /// 3: the check itself could not run (a local problem, never a probe result).
    Unknown = 3,
}

impl State {
    /// The word of the status line: `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn label(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    /// The plugin's exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The exit code of `synprobe check` for a local problem (and for its usage errors).
pub const UNKNOWN: u8 = State::Unknown as u8;

/// The exit codes of `synprobe check`, for its `--help` (README.md has the same table).
pub const CODES: &[(u8, &str)] = &[
    (
        0,
        "OK: the verdict's state is ok (default: open, within -w/-c)",
    ),
    (
        1,
        "WARNING: the verdict's state is warning, or open but slower than -w",
    ),
    (
        2,
        "CRITICAL: the verdict's state is critical (default: all but open), or slower than -c",
    ),
    (
        3,
        "UNKNOWN: a local problem only (arguments, privilege, name, route, capture device)",
    ),
];

/// The exit code table for `synprobe check --help`.
pub fn help() -> String {
    let mut s = String::from("Exit codes (Nagios plugin states):");
    for (code, meaning) in CODES {
        let _ = write!(s, "\n  {code:<4}{meaning}");
    }
    s
}

/// Arguments of `synprobe check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Host name or address. A name with several addresses: the first one of the chosen family is probed.
    #[arg(short = 'H', long = "hostname", value_name = "HOST", value_hint = ValueHint::Hostname)]
    host: String,
    /// The port.
    #[arg(short = 'p', long, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Response time in seconds above which an open port is WARNING.
    #[arg(short = 'w', long = "warning", value_name = "SECS", value_parser = crate::parse_secs)]
    warning: Option<f64>,
    /// Response time in seconds above which an open port is CRITICAL.
    #[arg(short = 'c', long = "critical", value_name = "SECS", value_parser = crate::parse_secs)]
    critical: Option<f64>,
    /// Overall timeout in seconds: the plan is chosen so that the verdict comes within it (the quick plan
    /// below 8 s), and the probe is judged on what it has seen when the time is up.
    #[arg(short = 't', long, value_name = "SECS", default_value_t = 10.0, value_parser = crate::parse_secs)]
    timeout: f64,
    #[command(flatten)]
    family: crate::probe::FamilyArgs,
    /// The state of a verdict, e.g. `--state closed=warning` (repeatable). Verdicts: open, closed, firewall-rst,
    /// icmp-rejected, unreachable, filtered; states: ok, warning, critical, unknown. Default: open is ok, every
    /// other verdict critical.
    #[arg(long = "state", value_name = "VERDICT=STATE", value_parser = parse_state_rule)]
    state: Vec<(Verdict, State)>,
    /// Capture on this interface instead of the one the route uses.
    #[arg(short = 'i', long, value_name = "IFACE")]
    interface: Option<String>,
}

/// Parse `VERDICT=STATE` (names as in JSON: `firewall-rst=warning`).
pub fn parse_state_rule(s: &str) -> Result<(Verdict, State), String> {
    let (v, st) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not VERDICT=STATE (e.g. closed=warning)"))?;
    let verdict = Verdict::ALL
        .into_iter()
        .find(|x| x.as_str() == v.trim())
        .ok_or_else(|| {
            let names: Vec<&str> = Verdict::ALL.iter().map(|x| x.as_str()).collect();
            format!("`{v}` is not a verdict (one of {})", names.join(", "))
        })?;
    let state = match st.trim().to_ascii_lowercase().as_str() {
        "ok" => State::Ok,
        "warning" => State::Warning,
        "critical" => State::Critical,
        "unknown" => State::Unknown,
        other => {
            return Err(format!(
                "`{other}` is not a state (one of ok, warning, critical, unknown)"
            ))
        }
    };
    Ok((verdict, state))
}

/// Which state each verdict gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMap([State; Verdict::ALL.len()]);

impl Default for StateMap {
    /// Open is OK, every other verdict CRITICAL.
    fn default() -> Self {
        let mut states = [State::Critical; Verdict::ALL.len()];
        states[0] = State::Ok;
        StateMap(states)
    }
}

impl StateMap {
    /// The default map with `rules` applied in order (a later rule for the same verdict wins).
    pub fn with_rules(rules: &[(Verdict, State)]) -> Self {
        let mut map = StateMap::default();
        for (v, s) in rules {
            if let Some(i) = Verdict::ALL.iter().position(|x| x == v) {
                map.0[i] = *s;
            }
        }
        map
    }

    /// The state of `verdict` (a verdict newer than this map is CRITICAL: never read as fine).
    pub fn of(&self, verdict: Verdict) -> State {
        Verdict::ALL
            .iter()
            .position(|x| *x == verdict)
            .map_or(State::Critical, |i| self.0[i])
    }
}

/// Response-time thresholds in seconds (check_tcp's -w and -c).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    /// Above this, an open port is WARNING.
    pub warning: Option<f64>,
    /// Above this, an open port is CRITICAL.
    pub critical: Option<f64>,
}

/// The plugin state of a verdict with its response time: the map's state, raised (never lowered) by the
/// thresholds for an open port as check_tcp does. An UNKNOWN the map asked for stays UNKNOWN.
pub fn state_of(verdict: Verdict, response_secs: f64, map: &StateMap, limits: Thresholds) -> State {
    let base = map.of(verdict);
    if verdict != Verdict::Open || base == State::Unknown {
        return base;
    }
    let by_time = if limits.critical.is_some_and(|c| response_secs > c) {
        State::Critical
    } else if limits.warning.is_some_and(|w| response_secs > w) {
        State::Warning
    } else {
        State::Ok
    };
    base.max(by_time)
}

/// A number of seconds in perfdata: no trailing zeros (`10`, `0.5`).
fn secs_text(s: f64) -> String {
    let t = format!("{s:.6}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Nagios perfdata: `time=0.012345s;W;C;0;T` (W and C empty when not given), then `target_hops=N;;;0` and
/// `rejecter_hops=N;;;0` when known.
pub fn perfdata(
    response_secs: f64,
    limits: Thresholds,
    timeout: f64,
    target_hops: Option<u8>,
    rejecter_hops: Option<u8>,
) -> String {
    let opt = |v: Option<f64>| v.map(secs_text).unwrap_or_default();
    let mut s = format!(
        "time={response_secs:.6}s;{};{};0;{}",
        opt(limits.warning),
        opt(limits.critical),
        secs_text(timeout)
    );
    for (name, value) in [
        ("target_hops", target_hops),
        ("rejecter_hops", rejecter_hops),
    ] {
        if let Some(v) = value {
            let _ = write!(s, " {name}={v};;;0");
        }
    }
    s
}

/// The response time of a report, in seconds: the deciding reply's round trip, else the time to the verdict.
pub fn response_secs(r: &TargetReport) -> f64 {
    r.judgement
        .rtt
        .unwrap_or(r.time_to_verdict)
        .max(Duration(0))
        .as_secs_f64()
}

/// The plan for a timeout: below 8 s the quick plan (the SYN and its retransmissions), and waits that fit.
pub fn session_for(timeout: f64) -> SessionConfig {
    let defaults = SessionConfig::default();
    let mut s = SessionConfig {
        quick: timeout < 8.0,
        retries: if timeout < 8.0 { 1 } else { 2 },
        ..defaults
    };
    // The longest wait and the wait for a first answer leave room for the rest of the plan.
    s.max_rto = s.max_rto.min(Duration::from_secs_f64(timeout / 4.0));
    s.min_rto = s.min_rto.min(s.max_rto);
    s.first_answer_wait = s
        .first_answer_wait
        .min(Duration::from_secs_f64(timeout * 0.6));
    s
}

/// The status line (without the state word) of a report; `resolved` names the host and the number of its
/// addresses when it was a name.
fn summary(r: &TargetReport, resolved: Option<(&str, usize)>, judged_at_limit: bool) -> String {
    let j = &r.judgement;
    let mut s = format!(
        "{}: {} ({} confidence)",
        j.verdict,
        Explain::of_target(r).headline(j),
        j.confidence
    );
    if let Some(rej) = j.rejecter {
        let _ = write!(s, ", rejecter {}", rejecter_at(rej));
    }
    let _ = write!(s, ", {:.3} s response time", response_secs(r));
    if judged_at_limit {
        s.push_str(", judged on what came back within -t");
    }
    if let Some((host, n)) = resolved {
        let _ = write!(s, "; {host} is {}", r.target);
        if n > 1 {
            let _ = write!(s, " (the first of its {n} addresses)");
        }
    }
    s
}

/// Print `TCP UNKNOWN - what` and give exit code 3.
fn unknown(what: impl std::fmt::Display) -> u8 {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "TCP UNKNOWN - {what}");
    let _ = out.flush();
    UNKNOWN
}

/// A usage error of `synprobe check` (clap has printed it on stderr): UNKNOWN (3), said on stdout too, where
/// Nagios reads, as the plugin conventions ask.
pub fn usage_error(e: &clap::Error) -> u8 {
    let text = e.to_string();
    // The error's first paragraph, on one line.
    let first = text.split("\n\n").next().unwrap_or_default();
    let words: Vec<&str> = first.split_whitespace().collect();
    unknown(format_args!(
        "invalid arguments: {} (see synprobe check --help)",
        words.join(" ").trim_start_matches("error: ")
    ))
}

/// Run the check; returns the exit code (3 for any local problem, output errors included).
pub fn run(args: &CheckArgs) -> u8 {
    let started = Instant::now();
    let addrs = match resolve_in_order(&args.host, args.family.ipv4, args.family.ipv6) {
        Ok(a) => a,
        Err(e) => return unknown(e),
    };
    let target = addrs[0];
    let named = args.host.parse::<IpAddr>().is_err();
    let job = Job {
        host: named.then(|| args.host.clone()),
        target,
        port: args.port,
    };
    let config = ProberConfig {
        session: session_for(args.timeout),
        interface: args.interface.clone(),
        keep_frames: false,
        ..ProberConfig::default()
    };
    let mut prober = match Prober::open(config, std::slice::from_ref(&job)) {
        Ok(p) => p,
        Err(e) => return unknown(Advised(&e)),
    };
    if let Err(e) = drop_privileges() {
        return unknown(Advised(&e));
    }
    let stop = stop_on_signals();
    let timed_out = Arc::new(AtomicBool::new(false));
    {
        // The watchdog: at the timeout (less a margin for the judgement and the output), the run stops and the
        // verdict is judged on what was seen.
        let (stop, timed_out) = (Arc::clone(&stop), Arc::clone(&timed_out));
        let margin = (args.timeout * 0.05).min(0.25);
        let limit = StdDuration::from_secs_f64((args.timeout - margin).max(0.0));
        let left = limit.saturating_sub(started.elapsed());
        std::thread::spawn(move || {
            std::thread::sleep(left);
            timed_out.store(true, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
        });
    }
    let outcome = match prober.run(vec![job], &stop) {
        Ok(o) => o,
        Err(RunError { error, .. }) => {
            return unknown(format_args!("the probe failed: {}", Advised(&error)))
        }
    };
    let at_limit = outcome.interrupted && timed_out.load(Ordering::Relaxed);
    if outcome.interrupted && !at_limit {
        return unknown("interrupted (SIGINT/SIGTERM) before the verdict");
    }
    let Some(r) = outcome.reports.first() else {
        return unknown("internal error: the probe gave no report");
    };
    let limits = Thresholds {
        warning: args.warning,
        critical: args.critical,
    };
    let response = response_secs(r);
    let state = state_of(
        r.judgement.verdict,
        response,
        &StateMap::with_rules(&args.state),
        limits,
    );
    let line = format!(
        "TCP {} - {} | {}",
        state.label(),
        summary(r, named.then_some((&args.host, addrs.len())), at_limit),
        perfdata(
            response,
            limits,
            args.timeout,
            r.judgement.target_hops.map(|h| h.0),
            r.judgement.rejecter.and_then(|x| x.hops).map(|h| h.0),
        )
    );
    let mut out = io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => state.code(),
        Err(_) => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_rules_parse_and_override_the_default() {
        assert_eq!(
            parse_state_rule("closed=warning"),
            Ok((Verdict::Closed, State::Warning))
        );
        assert_eq!(
            parse_state_rule("firewall-rst=OK"),
            Ok((Verdict::FirewallRst, State::Ok))
        );
        assert!(parse_state_rule("closed").is_err());
        assert!(parse_state_rule("shut=warning")
            .expect_err("not a verdict")
            .contains("firewall-rst"));
        assert!(parse_state_rule("closed=bad").is_err());
        let map = StateMap::default();
        assert_eq!(map.of(Verdict::Open), State::Ok);
        for v in &Verdict::ALL[1..] {
            assert_eq!(map.of(*v), State::Critical, "{v}");
        }
        let map = StateMap::with_rules(&[
            (Verdict::Closed, State::Warning),
            (Verdict::Filtered, State::Ok),
            (Verdict::Filtered, State::Unknown),
        ]);
        assert_eq!(map.of(Verdict::Closed), State::Warning);
        assert_eq!(map.of(Verdict::Filtered), State::Unknown);
        assert_eq!(map.of(Verdict::FirewallRst), State::Critical);
    }

    #[test]
    fn thresholds_raise_an_open_port_only() {
        let map = StateMap::default();
        let limits = Thresholds {
            warning: Some(0.5),
            critical: Some(1.0),
        };
        assert_eq!(state_of(Verdict::Open, 0.1, &map, limits), State::Ok);
        assert_eq!(state_of(Verdict::Open, 0.5, &map, limits), State::Ok);
        assert_eq!(state_of(Verdict::Open, 0.7, &map, limits), State::Warning);
        assert_eq!(state_of(Verdict::Open, 1.5, &map, limits), State::Critical);
        assert_eq!(
            state_of(Verdict::Open, 9.0, &map, Thresholds::default()),
            State::Ok
        );
        // Only -c: fast is OK, slow CRITICAL.
        let only_c = Thresholds {
            warning: None,
            critical: Some(1.0),
        };
        assert_eq!(state_of(Verdict::Open, 0.7, &map, only_c), State::Ok);
        assert_eq!(state_of(Verdict::Open, 1.2, &map, only_c), State::Critical);
        // A refusal keeps its mapped state whatever the time; thresholds never lower a state.
        let mapped = StateMap::with_rules(&[
            (Verdict::Closed, State::Warning),
            (Verdict::Open, State::Critical),
        ]);
        assert_eq!(
            state_of(Verdict::Closed, 5.0, &mapped, limits),
            State::Warning
        );
        assert_eq!(
            state_of(Verdict::Open, 0.1, &mapped, limits),
            State::Critical
        );
        let unknown_open = StateMap::with_rules(&[(Verdict::Open, State::Unknown)]);
        assert_eq!(
            state_of(Verdict::Open, 5.0, &unknown_open, limits),
            State::Unknown
        );
    }

    #[test]
    fn perfdata_follows_the_nagios_format() {
        assert_eq!(
            perfdata(0.012345, Thresholds::default(), 10.0, Some(3), Some(1)),
            "time=0.012345s;;;0;10 target_hops=3;;;0 rejecter_hops=1;;;0"
        );
        let limits = Thresholds {
            warning: Some(0.5),
            critical: Some(2.0),
        };
        assert_eq!(
            perfdata(1.5, limits, 4.25, None, None),
            "time=1.500000s;0.5;2;0;4.25"
        );
        assert_eq!(
            perfdata(0.0001, Thresholds::default(), 10.0, Some(0), None),
            "time=0.000100s;;;0;10 target_hops=0;;;0"
        );
        // Every item parses as label=value[UOM];warn;crit;min[;max].
        for item in perfdata(0.2, limits, 10.0, Some(3), Some(2)).split(' ') {
            let (label, rest) = item.split_once('=').expect("label=value");
            assert!(!label.is_empty());
            let fields: Vec<&str> = rest.split(';').collect();
            assert!((4..=5).contains(&fields.len()), "{item}");
            let value = fields[0].trim_end_matches('s');
            assert!(value.parse::<f64>().is_ok(), "{item}");
            for f in &fields[1..] {
                assert!(f.is_empty() || f.parse::<f64>().is_ok(), "{item}");
            }
        }
    }

    #[test]
    fn the_plan_fits_the_timeout() {
        let long = session_for(10.0);
        assert!(!long.quick);
        assert_eq!(long.max_rto, Duration::from_millis(2500));
        assert_eq!(long.first_answer_wait, Duration::from_millis(3500));
        let short = session_for(2.0);
        assert!(short.quick);
        assert_eq!(short.max_rto, Duration::from_millis(500));
        assert!(short.min_rto <= short.max_rto);
        assert_eq!(short.first_answer_wait, Duration::from_millis(1200));
        assert!(short.validate().is_ok() && long.validate().is_ok());
        assert!(session_for(0.001).validate().is_ok());
    }

    #[test]
    fn exit_codes_are_the_states() {
        for (code, state) in [
            (0, State::Ok),
            (1, State::Warning),
            (2, State::Critical),
            (3, State::Unknown),
        ] {
            assert_eq!(state.code(), code);
            assert!(help().contains(&format!("\n  {code}   {}:", state.label())));
        }
    }
}
