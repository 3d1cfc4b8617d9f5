//! What a scrape of `/probe` answers, in the Prometheus exposition format: blackbox_exporter's tcp prober's
//! metrics with their names and meanings, and synprobe's verdict. Every label value comes from a closed set
//! (verdicts, confidences, rejecter kinds): no address, no free text.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use synprobe_core::session::TargetReport;
use synprobe_core::{Confidence, Verdict};

/// The Content-Type of what [`render`] writes (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The parts of a diagnosis the metrics show.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// The verdict.
    pub verdict: Verdict,
    /// How sure.
    pub confidence: Confidence,
    /// The rejecter's distance, when known, and whether it is the target and what kind it is.
    pub rejecter: Option<(Option<u8>, bool, &'static str)>,
    /// The target's distance, when a reply showed it.
    pub target_hops: Option<u8>,
    /// Round trip of the deciding reply, in seconds.
    pub rtt: Option<f64>,
    /// Packets sent.
    pub probes_sent: u32,
    /// Whether the plan finished within the timeout.
    pub complete: bool,
}

impl Diagnosis {
    /// From a live report.
    pub fn of(report: &TargetReport, complete: bool) -> Self {
        let j = &report.judgement;
        Diagnosis {
            verdict: j.verdict,
            confidence: j.confidence,
            rejecter: j
                .rejecter
                .as_ref()
                .map(|r| (r.hops.map(|h| h.0), r.is_target, r.kind.as_str())),
            target_hops: j.target_hops.map(|h| h.0),
            rtt: j.rtt.map(|d| d.as_secs_f64()),
            probes_sent: report.probes_sent,
            complete,
        }
    }
}

/// One scrape's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    /// From the request to the answer, DNS included, in seconds.
    pub duration: f64,
    /// Time spent resolving the name (0 for an address), in seconds.
    pub dns_lookup: f64,
    /// The address probed, once resolved.
    pub addr: Option<IpAddr>,
    /// The diagnosis, when the probe ran.
    pub diagnosis: Option<Diagnosis>,
}

/// blackbox_exporter's `probe_ip_addr_hash`: FNV-1a (32 bits) of the address as text.
pub fn addr_hash(addr: IpAddr) -> f64 {
    let mut h: u32 = 0x811c_9dc5;
    for b in addr.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    f64::from(h)
}

type Labels = Vec<(&'static str, &'static str)>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g: Gauge<f64, AtomicU64> = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

/// One gauge per value of a closed set, 1 for `current`, 0 for the others.
fn state_set(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[&'static str],
    current: &str,
) {
    let f: Family<Labels, Gauge> = Family::default();
    for v in values {
        f.get_or_create(&vec![(label, *v)])
            .set(i64::from(*v == current));
    }
    registry.register(name, help, f);
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The exposition text for one scrape.
pub fn render(s: &Scrape) -> String {
    let mut r = Registry::default();
    let d = s.diagnosis.as_ref();
    let success = d.is_some_and(|d| d.verdict == Verdict::Open);
    gauge(
        &mut r,
        "probe_success",
        "Displays whether or not the probe was a success",
        flag(success),
    );
    gauge(
        &mut r,
        "probe_duration_seconds",
        "Returns how long the probe took to complete in seconds",
        s.duration,
    );
    gauge(
        &mut r,
        "probe_dns_lookup_time_seconds",
        "Returns the time taken for probe dns lookup in seconds",
        s.dns_lookup,
    );
    if let Some(a) = s.addr {
        gauge(
            &mut r,
            "probe_ip_protocol",
            "Specifies whether probe ip protocol is IP4 or IP6",
            if a.is_ipv4() { 4.0 } else { 6.0 },
        );
        gauge(
            &mut r,
            "probe_ip_addr_hash",
            "Specifies the hash of IP address. It's useful to detect if the IP address changes",
            addr_hash(a),
        );
    }
    let Some(d) = d else {
        return finish(&r);
    };
    let names: Vec<&'static str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
    if d.verdict != Verdict::Open {
        let f: Family<Labels, Gauge> = Family::default();
        f.get_or_create(&vec![("reason", d.verdict.as_str())])
            .set(1);
        r.register(
            "probe_failure_info",
            "Why the probe failed: the verdict (closed, firewall-rst, icmp-rejected, unreachable, filtered)",
            f,
        );
    }
    state_set(
        &mut r,
        "probe_synprobe_verdict",
        "synprobe's verdict: 1 for the verdict found, 0 for the others",
        "verdict",
        &names,
        d.verdict.as_str(),
    );
    state_set(
        &mut r,
        "probe_synprobe_confidence",
        "How strongly the packets support the verdict: 1 for the level, 0 for the others",
        "confidence",
        &["low", "medium", "high"],
        d.confidence.as_str(),
    );
    gauge(
        &mut r,
        "probe_synprobe_plan_complete",
        "Whether the probing plan finished within the timeout (0: the verdict judges what was seen until then)",
        flag(d.complete),
    );
    gauge(
        &mut r,
        "probe_synprobe_packets_sent",
        "Packets sent for this probe",
        f64::from(d.probes_sent),
    );
    if let Some(rtt) = d.rtt {
        gauge(
            &mut r,
            "probe_synprobe_reply_rtt_seconds",
            "Round-trip time of the reply that decided the verdict",
            rtt,
        );
    }
    if let Some(h) = d.target_hops {
        gauge(
            &mut r,
            "probe_synprobe_target_hops",
            "The target's distance in hops, when a reply from its stack showed it",
            f64::from(h),
        );
    }
    if let Some((hops, is_target, kind)) = d.rejecter {
        if let Some(h) = hops {
            gauge(
                &mut r,
                "probe_synprobe_rejecter_hops",
                "The distance in hops of whoever refused (the RST or ICMP sender; this host is 0)",
                f64::from(h),
            );
        }
        gauge(
            &mut r,
            "probe_synprobe_rejecter_is_target",
            "Whether the refusal came from the target host itself (its stack or a rule on it)",
            flag(is_target),
        );
        state_set(
            &mut r,
            "probe_synprobe_rejecter_kind",
            "What refused: 1 for the kind, 0 for the others",
            "kind",
            &["target", "router", "backend", "sender"],
            kind,
        );
    }
    finish(&r)
}

fn finish(r: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, r);
    out
}

/// The exporter's own metrics, served on `/metrics`.
#[derive(Debug)]
pub struct Own {
    /// The registry that holds them.
    pub registry: Registry,
    /// Probes run, by result (a verdict, or `error`).
    pub probes: Family<Labels, Counter>,
    /// Scrapes refused with 403: the target is outside --allow.
    pub forbidden: Counter,
    /// Scrapes refused with 503: --max-concurrent probes were running.
    pub overloaded: Counter,
    /// Scrapes refused with 400: no target, an unknown module, a bad timeout header.
    pub bad_requests: Counter,
    /// Probes running now.
    pub in_flight: Gauge,
}

impl Own {
    /// Registered, at zero.
    pub fn new(max_concurrent: usize) -> Self {
        let mut registry = Registry::default();
        let probes = Family::<Labels, Counter>::default();
        for v in Verdict::ALL.iter().map(|v| v.as_str()).chain(["error"]) {
            let _ = probes.get_or_create(&vec![("result", v)]);
        }
        let forbidden = Counter::default();
        let overloaded = Counter::default();
        let bad_requests = Counter::default();
        let in_flight = Gauge::default();
        let limit: Gauge = Gauge::default();
        limit.set(max_concurrent as i64);
        registry.register(
            "synprobe_exporter_probes",
            "Probes run, by result: the verdict, or error (the probe could not run)",
            probes.clone(),
        );
        registry.register(
            "synprobe_exporter_forbidden",
            "Scrapes refused with HTTP 403 because the target is outside --allow (no packet sent)",
            forbidden.clone(),
        );
        registry.register(
            "synprobe_exporter_overloaded",
            "Scrapes refused with HTTP 503 because --max-concurrent probes were running",
            overloaded.clone(),
        );
        registry.register(
            "synprobe_exporter_bad_requests",
            "Scrapes refused with HTTP 400 (no target, an unknown module, a bad timeout header)",
            bad_requests.clone(),
        );
        registry.register(
            "synprobe_exporter_probes_in_flight",
            "Probes running now",
            in_flight.clone(),
        );
        registry.register(
            "synprobe_exporter_max_concurrent",
            "Probes that may run at once (--max-concurrent)",
            limit,
        );
        Own {
            registry,
            probes,
            forbidden,
            overloaded,
            bad_requests,
            in_flight,
        }
    }

    /// Count a probe's result.
    pub fn count(&self, result: &'static str) {
        self.probes.get_or_create(&vec![("result", result)]).inc();
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        finish(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_hash_is_blackbox_exporters_fnv1a() {
        // FNV-1a 32 of "127.0.0.1", as Go's hash/fnv New32a gives it.
        assert_eq!(addr_hash("127.0.0.1".parse().expect("addr")), 144_953_630.0);
    }

    fn firewall() -> Scrape {
        Scrape {
            duration: 0.25,
            dns_lookup: 0.0,
            addr: Some("198.18.2.2".parse().expect("addr")),
            diagnosis: Some(Diagnosis {
                verdict: Verdict::FirewallRst,
                confidence: Confidence::High,
                rejecter: Some((Some(2), false, "router")),
                target_hops: Some(3),
                rtt: Some(0.001),
                probes_sent: 5,
                complete: true,
            }),
        }
    }

    #[test]
    fn a_refused_probe_says_why_with_bounded_labels() {
        let text = render(&firewall());
        for line in [
            "probe_success 0.0",
            "probe_ip_protocol 4.0",
            "probe_failure_info{reason=\"firewall-rst\"} 1",
            "probe_synprobe_verdict{verdict=\"firewall-rst\"} 1",
            "probe_synprobe_verdict{verdict=\"closed\"} 0",
            "probe_synprobe_confidence{confidence=\"high\"} 1",
            "probe_synprobe_rejecter_hops 2.0",
            "probe_synprobe_rejecter_is_target 0.0",
            "probe_synprobe_rejecter_kind{kind=\"router\"} 1",
            "probe_synprobe_target_hops 3.0",
            "probe_synprobe_plan_complete 1.0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(!text.contains("198.18"), "no address in the text:\n{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn an_open_port_is_a_success_without_failure_info() {
        let mut s = firewall();
        if let Some(d) = s.diagnosis.as_mut() {
            d.verdict = Verdict::Open;
            d.rejecter = None;
        }
        let text = render(&s);
        assert!(text.lines().any(|l| l == "probe_success 1.0"), "{text}");
        assert!(!text.contains("probe_failure_info"), "{text}");
        assert!(!text.contains("rejecter"), "{text}");
    }

    #[test]
    fn a_probe_that_did_not_run_is_a_failure_without_a_verdict() {
        let text = render(&Scrape {
            duration: 0.01,
            dns_lookup: 0.01,
            addr: None,
            diagnosis: None,
        });
        assert!(text.lines().any(|l| l == "probe_success 0.0"), "{text}");
        assert!(!text.contains("probe_synprobe_verdict"), "{text}");
    }
}
