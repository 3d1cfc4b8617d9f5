//! `synprobe exporter`: a Prometheus exporter in blackbox_exporter's multi-target style. `GET
//! /probe?target=HOST:PORT[&module=NAME]` runs one probe and answers with its metrics ([`metrics`]); only
//! addresses inside `--allow` are probed (anything else: HTTP 403, no packet). The raw sockets and the capture
//! are opened once, before privileges are dropped, and shared by concurrent scrapes (at most
//! `--max-concurrent`; beyond: HTTP 503).

mod config;
mod metrics;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::{ArgAction, Args, ValueHint};
use ipnet::IpNet;
use synprobe_core::live::serve::{ServeConfig, SharedProber};
use synprobe_core::live::{drop_privileges, Job};
use synprobe_core::Error;
use tokio::sync::Semaphore;

use crate::advice::Advised;
use crate::exit;
use config::Config;
use metrics::{Diagnosis, Own, Scrape};

/// Arguments of `synprobe exporter`.
#[derive(Args, Debug)]
pub struct ExporterArgs {
    /// Address and port to serve HTTP on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9799")]
    listen: SocketAddr,
    /// Networks that may be probed (CIDR, e.g. 192.0.2.0/24 or 2001:db8::/32; an address alone is a /32 or
    /// /128). A target outside them (after resolving a name) gets HTTP 403 and no packet. Required: an
    /// exporter that probes whatever a URL names is an open relay.
    #[arg(long, value_name = "CIDR", required = true, num_args = 1.., value_parser = parse_net, action = ArgAction::Append)]
    allow: Vec<IpNet>,
    /// TOML file of modules (plan, preferred_ip_protocol, ip_protocol_fallback, timeout); see the README.
    /// Without it: `default` (the full plan) and `quick`.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    config: Option<PathBuf>,
    /// Probes that may run at once; a scrape beyond gets HTTP 503.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=400))]
    max_concurrent: u32,
    /// Seconds taken off the scrape's timeout (X-Prometheus-Scrape-Timeout-Seconds) to leave time for the answer.
    #[arg(long, value_name = "SECS", default_value_t = 0.5, value_parser = parse_offset)]
    timeout_offset: f64,
    /// Packets per second at most, over all probes.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10000))]
    rate: u32,
    /// Capture on this interface (default: `any`, every interface).
    #[arg(short = 'i', long, value_name = "IFACE")]
    interface: Option<String>,
    /// Say more on stderr: -v each probe's result, -vv more.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("`{s}` is not a network (CIDR such as 192.0.2.0/24) or an address"))
}

fn parse_offset(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.0..=60.0).contains(&v) {
        return Err("it must be between 0 and 60 seconds".into());
    }
    Ok(v)
}

struct App {
    prober: SharedProber,
    config: Config,
    offset: f64,
    limit: Arc<Semaphore>,
    own: Own,
}

/// Run the exporter until SIGINT or SIGTERM.
pub fn run(args: &ExporterArgs) -> io::Result<u8> {
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("synprobe: {e}");
                return Ok(exit::USAGE);
            }
        },
        None => Config::default(),
    };
    let prober = match SharedProber::open(ServeConfig {
        networks: args.allow.clone(),
        interface: args.interface.clone(),
        max_pps: args.rate,
    }) {
        Ok(p) => p,
        Err(e) => return Ok(fail(&e)),
    };
    // Bound before privileges go, so that a port below 1024 works too.
    let listener = match std::net::TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "synprobe: cannot listen on {}: {e}; pick another --listen",
                args.listen
            );
            return Ok(exit::USAGE);
        }
    };
    match drop_privileges() {
        Ok(id) => tracing::info!("privileges dropped: now uid {} gid {}", id.uid, id.gid),
        Err(e) => return Ok(fail(&e)),
    }
    listener.set_nonblocking(true)?;
    let nets: Vec<String> = args.allow.iter().map(IpNet::to_string).collect();
    tracing::info!(
        "serving on http://{}/probe for {} (capture on {}, modules: {})",
        args.listen,
        nets.join(", "),
        prober.interface(),
        config
            .modules
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    let app = Arc::new(App {
        prober,
        config,
        offset: args.timeout_offset,
        limit: Arc::new(Semaphore::new(args.max_concurrent as usize)),
        own: Own::new(args.max_concurrent as usize),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(listener, app))?;
    Ok(exit::OK)
}

fn fail(e: &Error) -> u8 {
    eprintln!("synprobe: {}", Advised(e));
    match e {
        Error::Privilege { .. } => exit::NO_PERMISSION,
        Error::Config(_) => exit::USAGE,
        _ => exit::NO_TARGET,
    }
}

async fn serve(listener: std::net::TcpListener, app: Arc<App>) -> io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let router = Router::new()
        .route("/probe", get(probe))
        .route("/metrics", get(own_metrics))
        .route("/-/healthy", get(|| async { "Healthy" }))
        .route("/", get(|| async { INDEX }))
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown())
        .await
}

const INDEX: &str =
    "synprobe exporter: /probe?target=HOST:PORT[&module=NAME], /metrics, /-/healthy\n";

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn own_metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        app.own.render(),
    )
        .into_response()
}

/// `HOST:PORT`, `[V6]:PORT` or `V4:PORT`.
fn split_target(t: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| format!("`{t}`: write an IPv6 target as [ADDRESS]:PORT"))?;
        (h, p)
    } else {
        t.rsplit_once(':')
            .filter(|(h, _)| !h.contains(':'))
            .ok_or_else(|| format!("`{t}` is not HOST:PORT (IPv6: [ADDRESS]:PORT)"))?
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{t}`: the port must be 1-65535"))?;
    if host.is_empty() {
        return Err(format!("`{t}` names no host"));
    }
    Ok((host, port))
}

async fn probe(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let start = Instant::now();
    let bad = |msg: String| {
        app.own.bad_requests.inc();
        text(StatusCode::BAD_REQUEST, msg + "\n")
    };
    let Some(target) = q.get("target") else {
        return bad("Target parameter is missing".into());
    };
    let module_name = q.get("module").map_or("default", String::as_str);
    let Some(module) = app.config.modules.get(module_name) else {
        return bad(format!("Unknown module {module_name:?}"));
    };
    let header = headers
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok());
    let timeout = match config::timeout_secs(header, module.timeout, app.offset) {
        Ok(t) if t > 0.0 => Duration::from_secs_f64(t.min(3600.0)),
        Ok(_) => return bad("The probe's timeout is zero".into()),
        Err(e) => {
            return bad(format!(
                "Failed to parse timeout from Prometheus header: {e}"
            ))
        }
    };
    let (host, port) = match split_target(target) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    let Ok(permit) = app.limit.clone().try_acquire_owned() else {
        app.own.overloaded.inc();
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many probes under way (--max-concurrent); try again\n".into(),
        );
    };
    app.own.in_flight.inc();
    let _in_flight = InFlight {
        own: &app.own,
        _slot: permit,
    };
    // Resolve (a literal address stays itself), then pick the module's family.
    let dns_start = Instant::now();
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(a) => vec![a],
        Err(_) => {
            match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
                Ok(Ok(found)) => found.map(|s| s.ip()).collect(),
                Ok(Err(e)) => {
                    tracing::info!("{target}: cannot resolve: {e}");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            }
        }
    };
    let dns_lookup = if host.parse::<IpAddr>().is_ok() {
        0.0
    } else {
        dns_start.elapsed().as_secs_f64()
    };
    let Some(addr) = module.pick(&addrs) else {
        app.own.count("error");
        let scrape = Scrape {
            duration: start.elapsed().as_secs_f64(),
            dns_lookup,
            addr: None,
            diagnosis: None,
        };
        return exposition(&scrape);
    };
    if !app.prober.allows(addr) {
        app.own.forbidden.inc();
        tracing::info!("{target}: {addr} is outside --allow: refused");
        return text(
            StatusCode::FORBIDDEN,
            format!("{addr} is outside the networks this exporter may probe (--allow)\n"),
        );
    }
    let left = timeout.saturating_sub(start.elapsed());
    let job = Job {
        host: host.parse::<IpAddr>().is_err().then(|| host.to_string()),
        target: addr,
        port,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let submitted = app.prober.submit(
        job,
        module.session(left),
        left,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    let answer = match submitted {
        Ok(()) => tokio::time::timeout(left + Duration::from_secs(2), rx)
            .await
            .ok()
            .and_then(Result::ok),
        Err(e) => Some(Err(e)),
    };
    let diagnosis = match answer {
        Some(Ok(served)) => {
            let d = Diagnosis::of(&served.report, served.complete);
            app.own.count(d.verdict.as_str());
            tracing::info!(
                "{target} ({addr}): {} ({} confidence{})",
                d.verdict,
                d.confidence.as_str(),
                if d.complete { "" } else { ", timed out" }
            );
            Some(d)
        }
        Some(Err(e)) => {
            app.own.count("error");
            tracing::warn!("{target} ({addr}): {}", Advised(&e));
            None
        }
        None => {
            app.own.count("error");
            tracing::warn!("{target} ({addr}): no answer from the prober");
            None
        }
    };
    exposition(&Scrape {
        duration: start.elapsed().as_secs_f64(),
        dns_lookup,
        addr: Some(addr),
        diagnosis,
    })
}

/// Holds a probe's slot; gives it back (and lowers the in-flight gauge) when the scrape ends.
struct InFlight<'a> {
    own: &'a Own,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.own.in_flight.dec();
    }
}

fn exposition(s: &Scrape) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(s),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_host_and_port() {
        assert_eq!(split_target("198.18.2.2:80"), Ok(("198.18.2.2", 80)));
        assert_eq!(split_target("[2001:db8::2]:443"), Ok(("2001:db8::2", 443)));
        assert_eq!(split_target("example.com:22"), Ok(("example.com", 22)));
        assert!(split_target("2001:db8::2:443").is_err());
        assert!(split_target("example.com").is_err());
        assert!(split_target("example.com:0").is_err());
        assert!(split_target(":80").is_err());
    }

    #[test]
    fn allowed_networks_parse_as_cidrs_or_addresses() {
        assert_eq!(
            parse_net("198.18.2.7/24").map(|n| n.to_string()),
            Ok("198.18.2.0/24".to_string())
        );
        assert_eq!(
            parse_net("2001:db8::1").map(|n| n.to_string()),
            Ok("2001:db8::1/128".to_string())
        );
        assert!(parse_net("example.com").is_err());
    }
}
