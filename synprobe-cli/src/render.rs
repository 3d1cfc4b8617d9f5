//! Rendering replay results for people (aligned text) and for programs (JSON Lines).

use std::collections::BTreeMap;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::time::Instant;

use synprobe_core::capture::{CaptureReader, Format};
use synprobe_core::explain::Explain;
use synprobe_core::matcher::MatchConfig;
use synprobe_core::record::{write_attempt_json, AddrText, FileErrorRecord, SummaryRecord};
use synprobe_core::trace::attempt_lines;
use synprobe_core::{
    replay_parallel as run_replay, Duration, EngineConfig, Error, Rejecter, RejecterKind,
    ReplayOptions, Report, Summary, SummaryRow, Timestamp, Verdict,
};

use crate::advice::{Advised, AdvisedCapture};
use crate::exit;
use crate::palette::Palette;
use crate::progress::Meter;
use crate::ReplayArgs;

/// Findings listed in detail: the first attempt of each (server, port, verdict), at most this many.
const MAX_FINDINGS: usize = 12;

pub fn replay(args: &ReplayArgs) -> io::Result<u8> {
    let started = Instant::now();
    let name = args.file.display().to_string();
    let mut size = None;
    // Read on a thread of its own (`replay_parallel`), so the source must be `Send`: `Stdin`, not its lock.
    let source: Box<dyn Read + Send> = if name == "-" {
        Box::new(io::stdin())
    } else {
        match std::fs::File::open(&args.file) {
            Ok(f) => {
                // A regular file's size is what the progress bar counts towards (a FIFO's is 0).
                size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
                Box::new(f)
            }
            Err(e) => {
                eprintln!(
                    "synprobe: cannot open {name}: {e} (check the path and that you may read it)"
                );
                return Ok(exit::NO_INPUT);
            }
        }
    };
    let stdout_is_terminal = io::stdout().is_terminal();
    let meter = Meter::new(
        !args.output.quiet && io::stderr().is_terminal(),
        stdout_is_terminal,
        size,
    );
    let palette = Palette::for_stdout(args.output.color);
    let mut reader = match CaptureReader::new(meter.reader(source)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("synprobe: cannot replay {name}: {}", AdvisedCapture(&e));
            return Ok(exit::NO_INPUT);
        }
    };
    tracing::info!(
        "reading {name}{}: {}",
        size.map_or(String::new(), |b| format!(" ({b} bytes)")),
        describe_format(reader.format())
    );
    let options = ReplayOptions {
        filter: args.filter.clone(),
        host: args.host,
        port: args.port,
        engine: EngineConfig {
            matcher: MatchConfig {
                timeout: Duration::from_secs_f64(args.timeout),
                max_in_flight: args.max_in_flight as usize,
                ..MatchConfig::default()
            },
            ..EngineConfig::default()
        },
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, meter.writer(stdout.lock()));
    let mut summary = Summary::with_rows(args.summary_rows);
    let mut findings: BTreeMap<(String, u16, Verdict), Report> = BTreeMap::new();
    let mut write_err: Option<io::Error> = None;
    // One attempt's JSON line, or text line, reused from attempt to attempt.
    let mut json_buf = Vec::with_capacity(4096);
    let mut line_buf = String::with_capacity(256);
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
                json_line(
                    &mut out,
                    &mut json_buf,
                    report,
                    t0,
                    args.trace,
                    args.explain,
                )
            } else {
                if !header_done {
                    header_done = true;
                    if let Err(e) = writeln!(
                        out,
                        "{}",
                        palette.heading(format_args!(
                            "{:>11}  {:<47} {:<22} WHY",
                            "TIME", "ATTEMPT", "VERDICT"
                        ))
                    ) {
                        write_err = Some(e);
                        return;
                    }
                }
                // Once MAX_FINDINGS kinds are kept no other is added, and a kind already kept keeps its first
                // report: nothing more to do for the rest of the capture.
                if findings.len() < MAX_FINDINGS {
                    let key = (
                        report.attempt.probe.key.server.to_string(),
                        report.attempt.probe.key.server_port.0,
                        report.judgement.verdict,
                    );
                    findings.entry(key).or_insert_with(|| report.clone());
                }
                human_line(&mut out, &mut line_buf, report, t0, args.trace, palette)
            };
            if let Err(e) = r {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    // The reader of our output is gone (`| head`): stop now, as tcpdump does on SIGPIPE, rather
                    // than reading the rest of a capture of gigabytes for nobody. A broken pipe is success.
                    meter.finish();
                    std::process::exit(i32::from(exit::OK));
                }
                write_err = Some(e);
            }
        },
        |_| {},
    );
    meter.finish();
    if let Some(e) = write_err {
        return Err(e);
    }
    let (stats, damage) = match result {
        Ok(x) => x,
        Err(e @ (Error::Filter { .. } | Error::FilterUnsupported { .. })) => {
            eprintln!("synprobe: --filter: {}", Advised(&e));
            return Ok(exit::USAGE);
        }
        Err(e @ Error::Config(_)) => {
            eprintln!("synprobe: {}", Advised(&e));
            return Ok(exit::USAGE);
        }
        Err(e) => {
            eprintln!("synprobe: cannot replay {name}: {}", Advised(&e));
            return Ok(exit::NO_INPUT);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        "{} frames, {} bytes in {secs:.3} s: {:.0} frames/s, {:.1} MB/s",
        stats.frames.frames,
        stats.bytes_read,
        stats.frames.frames as f64 / secs.max(1e-9),
        stats.bytes_read as f64 / 1e6 / secs.max(1e-9)
    );
    tracing::debug!(
        "{} frame(s) left out by --filter, {} attempt(s) by --host/--port; {} fragment(s) without a transport header",
        stats.filtered_out,
        stats.not_selected,
        stats.frames.fragments
    );
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
                "\n{}",
                palette.heading("Findings (first attempt of each server:port and verdict):")
            )?;
            for r in findings.values() {
                finding(&mut out, r, palette)?;
            }
        }
        summary_table(&mut out, &summary.rows(), &summary.totals(), palette)?;
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

fn json_line(
    out: &mut impl Write,
    buf: &mut Vec<u8>,
    r: &Report,
    t0: Timestamp,
    packets: bool,
    explain: bool,
) -> io::Result<()> {
    buf.clear();
    write_attempt_json(buf, r, t0, packets, explain);
    buf.push(b'\n');
    out.write_all(buf)
}

/// One attempt as a line of the text report: time, client → server:port, verdict (confidence), the deciding
/// evidence. Built in `line` (reused from attempt to attempt: a replay writes a line per attempt) and written at
/// once.
fn human_line(
    out: &mut impl Write,
    line: &mut String,
    r: &Report,
    t0: Timestamp,
    trace: bool,
    palette: Palette,
) -> io::Result<()> {
    use std::fmt::Write as _;
    let a = &r.attempt;
    let j = &r.judgement;
    let k = &a.probe.key;
    line.clear();
    // Writing to a String cannot fail.
    let _ = write!(line, "{:>11.6}  ", a.probe.ts.since(t0).as_secs_f64());
    // The attempt, padded to 47 characters (not bytes: the arrow is one character of three bytes).
    let from = line.len();
    let _ = write!(
        line,
        "{} → {}",
        Endpoint(k.client, k.client_port.0),
        Endpoint(k.server, k.server_port.0)
    );
    let width = line[from..].chars().count();
    line.extend(std::iter::repeat_n(' ', 47usize.saturating_sub(width)));
    line.push(' ');
    // The verdict word painted, then " (confidence)", padded as plain text to 22: escapes must not count
    // towards the column's width.
    let word = j.verdict.as_str();
    let _ = write!(
        line,
        "{} ({})",
        palette.verdict(j.verdict, word),
        j.confidence
    );
    let plain = word.len() + 3 + j.confidence.as_str().len();
    line.extend(std::iter::repeat_n(' ', 22usize.saturating_sub(plain)));
    line.push(' ');
    if let Some(f) = j.findings.first() {
        line.push_str(&Explain::of_report(r).observed(f));
    }
    match a.syn_count {
        0 => line.push_str(" [SYN not captured]"),
        1 => {}
        n => {
            let _ = write!(line, " [{n} SYNs]");
        }
    }
    line.push('\n');
    out.write_all(line.as_bytes())?;
    if trace {
        for l in attempt_lines(a, t0) {
            writeln!(out, "      {l}")?;
        }
    }
    Ok(())
}

/// `address:port`, an IPv6 address in brackets (IPv4 written by [`AddrText`], without `fmt` per octet: the text
/// report writes two per line).
struct Endpoint(std::net::IpAddr, u16);

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Endpoint(addr, port) = *self;
        if addr.is_ipv6() {
            write!(f, "[{addr}]:{port}")
        } else {
            write!(f, "{}:{port}", AddrText(addr))
        }
    }
}

fn endpoint(addr: std::net::IpAddr, port: u16) -> String {
    Endpoint(addr, port).to_string()
}

fn finding(out: &mut impl Write, r: &Report, palette: Palette) -> io::Result<()> {
    let j = &r.judgement;
    let words = Explain::of_report(r);
    writeln!(
        out,
        "\n{} {} [{} confidence]",
        palette.verdict(j.verdict, "*"),
        palette.heading(words.headline(j)),
        j.confidence
    )?;
    for f in &j.findings {
        writeln!(out, "    - {}: {}", words.observed(f), words.implies(f))?;
    }
    if let Some(rej) = j.rejecter {
        let hops = rej.hops.map_or("unknown".to_string(), |h| h.0.to_string());
        writeln!(
            out,
            "    rejecter: {} at hop {}{}",
            rej.addr,
            hops,
            rejecter_note(rej.kind)
        )?;
    }
    for s in words.next_steps(j) {
        writeln!(out, "    next: {s}")?;
    }
    Ok(())
}

fn summary_table(
    out: &mut impl Write,
    rows: &[SummaryRow],
    totals: &SummaryRow,
    palette: Palette,
) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "\nNo connection attempts (SYNs) in this capture.");
    }
    writeln!(out, "\n{}", palette.heading("Summary by server:port"))?;
    let mut header = format!("  {:<46} {:>8}", "SERVER:PORT", "ATTEMPTS");
    for v in Verdict::ALL {
        header.push_str(&format!(" {:>13}", v.as_str()));
    }
    header.push_str(&format!("  {:<10} {:>10}", "HOPS", "MEDIAN RTT"));
    writeln!(out, "{}", palette.heading(header))?;
    for row in rows.iter().chain(std::iter::once(totals)) {
        let name = match (row.target, row.port) {
            (Some(a), Some(p)) => endpoint(a, p),
            _ if std::ptr::eq(row, totals) => "total".to_string(),
            _ => "(other server:ports)".to_string(),
        };
        write!(out, "  {:<46} {:>8}", name, row.attempts)?;
        for v in Verdict::ALL {
            let n = row.by_verdict.get(&v).copied().unwrap_or(0);
            let cell = format!(" {n:>13}");
            if n > 0 {
                write!(out, "{}", palette.verdict(v, cell))?;
            } else {
                write!(out, "{cell}")?;
            }
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

/// The format line of `-v`: "pcap 2.4, microsecond timestamps, little-endian, Ethernet, snaplen 262144".
fn describe_format(f: &Format) -> String {
    match f {
        Format::Pcap {
            nanos,
            big_endian,
            version,
            snaplen,
            link,
        } => format!(
            "pcap {}.{}, {} timestamps, {}, {} (link type {}), snaplen {snaplen}",
            version.0,
            version.1,
            if *nanos { "nanosecond" } else { "microsecond" },
            if *big_endian {
                "big-endian"
            } else {
                "little-endian"
            },
            link.name(),
            link.0
        ),
        Format::PcapNg => "pcapng (link types and timestamp resolutions per interface)".to_string(),
        other => format!("{other:?}"),
    }
}

/// "198.18.0.2 at hop 1", with the note of [`rejecter_note`] ("?" for a hop count that cannot be told).
pub fn rejecter_at(rej: Rejecter) -> String {
    let hops = rej.hops.map_or("?".into(), |h| h.0.to_string());
    format!("{} at hop {hops}{}", rej.addr, rejecter_note(rej.kind))
}

/// What the rejecter line adds after the address and hop, by the rejecter's kind.
pub fn rejecter_note(kind: RejecterKind) -> &'static str {
    match kind {
        RejecterKind::Target => " (the target itself)",
        RejecterKind::Backend => {
            " (a backend behind a port forward on the target, answering with its address)"
        }
        RejecterKind::Sender => " (this host, before the SYN left)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use proptest::prelude::*;
    use synprobe_core::build::{IpSpec, TcpSpec, Timeline};

    use super::*;
    use crate::palette::ColorWhen;

    /// `address:port` as the report wrote it with `format!` and std's `IpAddr` display.
    fn std_endpoint(addr: IpAddr, port: u16) -> String {
        if addr.is_ipv6() {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        }
    }

    /// The line as it was written with `format!` before [`human_line`] built it in a reused buffer.
    fn line_with_format(r: &Report, t0: Timestamp, palette: Palette) -> String {
        let (a, j, k) = (&r.attempt, &r.judgement, &r.attempt.probe.key);
        let attempt = format!(
            "{} → {}",
            std_endpoint(k.client, k.client_port.0),
            std_endpoint(k.server, k.server_port.0)
        );
        let verdict = format!("{} ({})", j.verdict, j.confidence);
        let pad = 22usize.saturating_sub(verdict.chars().count());
        let (word, rest) = verdict.split_at(verdict.find(' ').unwrap_or(verdict.len()));
        let why = j
            .findings
            .first()
            .map_or(String::new(), |f| Explain::of_report(r).observed(f));
        let retx = match a.syn_count {
            0 => " [SYN not captured]".to_string(),
            1 => String::new(),
            n => format!(" [{n} SYNs]"),
        };
        format!(
            "{:>11.6}  {:<47} {}{rest}{:pad$} {}{}\n",
            a.probe.ts.since(t0).as_secs_f64(),
            attempt,
            palette.verdict(j.verdict, word),
            "",
            why,
            retx
        )
    }

    /// Open, closed and retransmitted-then-filtered attempts over IPv4 and IPv6, with short and long addresses.
    fn reports() -> Vec<Report> {
        let mut t = Timeline::starting_at(1_763_700_000);
        let pairs = [
            ("10.0.0.2", "10.0.0.9"),
            ("255.255.255.254", "198.18.100.200"),
            ("2001:db8::2", "2001:db8:ffff:ffff:ffff:ffff:ffff:fff9"),
        ];
        for (n, (c, s)) in pairs.iter().enumerate() {
            let ip = IpSpec::new(c.parse().expect("addr"), s.parse().expect("addr"));
            let base = n as f64 * 10_000.0;
            let syn = |port: u16| TcpSpec::syn(40_000 + port, port, 7);
            t.at(base, syn(443).emit(&ip).expect("syn"));
            let back = ip.reversed().ttl(60);
            t.at(
                base + 5.0,
                TcpSpec::syn_ack_to(&syn(443), 9)
                    .emit(&back)
                    .expect("syn-ack"),
            );
            t.at(base + 10.0, syn(8080).emit(&ip).expect("syn"));
            t.at(
                base + 15.0,
                TcpSpec::rst_to(&syn(8080)).emit(&back).expect("rst"),
            );
            for ms in [20.0, 1020.0, 3020.0] {
                t.at(base + ms, syn(25).emit(&ip).expect("syn"));
            }
        }
        t.judge(EngineConfig::default())
    }

    #[test]
    fn text_lines_are_the_ones_format_wrote() {
        let reports = reports();
        assert!(reports.len() >= 9, "{}", reports.len());
        assert!(reports.iter().any(|r| r.attempt.syn_count == 3));
        let t0 = Timestamp(1_763_700_000_000_000_000);
        for on in [false, true] {
            let palette = Palette::new(
                if on {
                    ColorWhen::Always
                } else {
                    ColorWhen::Never
                },
                false,
                false,
                false,
            );
            let mut line = String::new();
            for r in &reports {
                let mut out = Vec::new();
                human_line(&mut out, &mut line, r, t0, false, palette).expect("writes");
                assert_eq!(
                    String::from_utf8(out).expect("utf-8"),
                    line_with_format(r, t0, palette)
                );
            }
        }
    }

    proptest! {
        #[test]
        fn endpoints_are_written_as_std_formats_them(v4 in any::<u32>(), v6 in any::<u128>(), port in any::<u16>()) {
            for addr in [IpAddr::from(v4.to_be_bytes()), IpAddr::from(v6.to_be_bytes())] {
                prop_assert_eq!(endpoint(addr, port), std_endpoint(addr, port));
            }
        }
    }
}
