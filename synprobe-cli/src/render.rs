//! Rendering replay results for people (aligned text) and for programs (JSON Lines).

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Write};

use synprobe_core::capture::CaptureReader;
use synprobe_core::matcher::MatchConfig;
use synprobe_core::record::{AttemptRecord, FileErrorRecord, SummaryRecord};
use synprobe_core::trace::attempt_lines;
use synprobe_core::{
    replay as run_replay, Duration, EngineConfig, Error, ReplayOptions, Report, Summary,
    SummaryRow, Timestamp, Verdict,
};

use crate::exit;
use crate::ReplayArgs;

/// Findings listed in detail: the first attempt of each (server, port, verdict), at most this many.
const MAX_FINDINGS: usize = 12;

pub fn replay(args: &ReplayArgs) -> io::Result<u8> {
    let name = args.file.display().to_string();
    let source: Box<dyn Read> = if name == "-" {
        Box::new(io::stdin().lock())
    } else {
        match std::fs::File::open(&args.file) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!(
                    "synprobe: cannot open {name}: {e} (check the path and that you may read it)"
                );
                return Ok(exit::NO_INPUT);
            }
        }
    };
    let mut reader = match CaptureReader::new(source) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("synprobe: cannot replay {name}: {e}");
            return Ok(exit::NO_INPUT);
        }
    };
    let options = ReplayOptions {
        filter: args.filter.clone(),
        host: args.host,
        port: args.port,
        engine: EngineConfig {
            matcher: MatchConfig {
                timeout: Duration::from_secs_f64(args.timeout),
                ..MatchConfig::default()
            },
            ..EngineConfig::default()
        },
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut summary = Summary::default();
    let mut findings: BTreeMap<(String, u16, Verdict), Report> = BTreeMap::new();
    let mut write_err: Option<io::Error> = None;
    let mut header_done = false;
    let result = run_replay(
        &mut reader,
        &options,
        |report, stats| {
            if write_err.is_some() {
                return;
            }
            summary.add(report);
            let t0 = stats.first_ts.unwrap_or_default();
            let r = if args.json {
                json_line(&mut out, report, t0, args.trace)
            } else {
                if !header_done {
                    header_done = true;
                    if let Err(e) = writeln!(
                        out,
                        "{:>11}  {:<47} {:<22} WHY",
                        "TIME", "ATTEMPT", "VERDICT"
                    ) {
                        write_err = Some(e);
                        return;
                    }
                }
                let key = (
                    report.attempt.probe.key.server.to_string(),
                    report.attempt.probe.key.server_port.0,
                    report.judgement.verdict,
                );
                if findings.len() < MAX_FINDINGS || findings.contains_key(&key) {
                    findings.entry(key).or_insert_with(|| report.clone());
                }
                human_line(&mut out, report, t0, args.trace)
            };
            if let Err(e) = r {
                write_err = Some(e);
            }
        },
        |_| {},
    );
    if let Some(e) = write_err {
        return Err(e);
    }
    let (stats, damage) = match result {
        Ok(x) => x,
        Err(Error::Filter { expr, reason }) => {
            eprintln!("synprobe: the --filter `{expr}` is not a valid BPF expression: {reason} (see `man pcap-filter`)");
            return Ok(exit::USAGE);
        }
        Err(e) => {
            eprintln!("synprobe: cannot replay {name}: {e}");
            return Ok(exit::NO_INPUT);
        }
    };
    let error = damage.as_ref().map(|e| FileErrorRecord {
        offset: e.offset(),
        message: e.to_string(),
    });
    if args.json {
        let rec = SummaryRecord::new(&name, &stats, summary.totals(), summary.rows(), error);
        serde_json::to_writer(&mut out, &rec).map_err(io::Error::other)?;
        writeln!(out)?;
    } else {
        if !findings.is_empty() {
            writeln!(
                out,
                "\nFindings (first attempt of each server:port and verdict):"
            )?;
            for r in findings.values() {
                finding(&mut out, r)?;
            }
        }
        summary_table(&mut out, &summary.rows(), &summary.totals())?;
        writeln!(
            out,
            "\n{} frames read ({} not IP, {} malformed, {} of unsupported link types{}); {} attempt(s), {} SYN retransmission(s), {} stray and {} late repl(ies), {} rebuilt from ICMP quotes, {} evicted",
            stats.frames.frames,
            stats.frames.not_ip,
            stats.frames.malformed,
            stats.frames.unsupported_link,
            if args.filter.is_some() { format!(", {} left out by --filter", stats.filtered_out) } else { String::new() },
            summary.totals().attempts,
            stats.matching.retransmissions,
            stats.matching.strays(),
            stats.matching.late_replies,
            stats.matching.rebuilt_from_icmp,
            stats.matching.evicted,
        )?;
    }
    out.flush()?;
    drop(out);
    match damage {
        Some(e) => {
            eprintln!(
                "synprobe: {name} is damaged: {e}\nsynprobe: everything before the damage was analysed and is shown above."
            );
            Ok(exit::DAMAGED_INPUT)
        }
        None => Ok(exit::OK),
    }
}

fn json_line(out: &mut impl Write, r: &Report, t0: Timestamp, packets: bool) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &AttemptRecord::new(r, t0, packets))
        .map_err(io::Error::other)?;
    writeln!(out)
}

fn human_line(out: &mut impl Write, r: &Report, t0: Timestamp, trace: bool) -> io::Result<()> {
    let a = &r.attempt;
    let j = &r.judgement;
    let k = &a.probe.key;
    let attempt = format!(
        "{} → {}",
        endpoint(k.client, k.client_port.0),
        endpoint(k.server, k.server_port.0)
    );
    let verdict = format!("{} ({})", j.verdict, j.confidence);
    let why = j.evidence.first().map_or("", |e| e.observed.as_str());
    let retx = match a.syn_count {
        0 => " [SYN not captured]".to_string(),
        1 => String::new(),
        n => format!(" [{n} SYNs]"),
    };
    writeln!(
        out,
        "{:>11.6}  {:<47} {:<22} {}{}",
        a.probe.ts.since(t0).as_secs_f64(),
        attempt,
        verdict,
        why,
        retx
    )?;
    if trace {
        for line in attempt_lines(a, t0) {
            writeln!(out, "      {line}")?;
        }
    }
    Ok(())
}

fn endpoint(addr: std::net::IpAddr, port: u16) -> String {
    if addr.is_ipv6() {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

fn finding(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let j = &r.judgement;
    writeln!(out, "\n* {} [{} confidence]", j.headline, j.confidence)?;
    for e in &j.evidence {
        writeln!(out, "    - {}: {}", e.observed, e.implies)?;
    }
    if let Some(rej) = j.rejecter {
        let hops = rej.hops.map_or("unknown".to_string(), |h| h.0.to_string());
        writeln!(
            out,
            "    rejecter: {} at hop {}{}",
            rej.addr,
            hops,
            if rej.is_target {
                " (the target itself)"
            } else {
                ""
            }
        )?;
    }
    for s in &j.next_steps {
        writeln!(out, "    next: {s}")?;
    }
    Ok(())
}

fn summary_table(out: &mut impl Write, rows: &[SummaryRow], totals: &SummaryRow) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "\nNo connection attempts (SYNs) in this capture.");
    }
    writeln!(out, "\nSummary by server:port")?;
    write!(out, "  {:<46} {:>8}", "SERVER:PORT", "ATTEMPTS")?;
    for v in Verdict::ALL {
        write!(out, " {:>13}", v.as_str())?;
    }
    writeln!(out, "  {:<10} {:>10}", "HOPS", "MEDIAN RTT")?;
    for row in rows.iter().chain(std::iter::once(totals)) {
        let name = match (row.target, row.port) {
            (Some(a), Some(p)) => endpoint(a, p),
            _ if std::ptr::eq(row, totals) => "total".to_string(),
            _ => "(other server:ports)".to_string(),
        };
        write!(out, "  {:<46} {:>8}", name, row.attempts)?;
        for v in Verdict::ALL {
            write!(out, " {:>13}", row.by_verdict.get(&v).copied().unwrap_or(0))?;
        }
        let hops = row
            .hops
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let rtt = row
            .median_rtt_ms
            .map_or("-".to_string(), |m| format!("{m:.2} ms"));
        writeln!(
            out,
            "  {:<10} {:>10}",
            if hops.is_empty() { "-" } else { &hops },
            rtt
        )?;
    }
    Ok(())
}
