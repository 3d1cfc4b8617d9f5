//! `synprobe completions SHELL` and `synprobe man`: generated from the clap definition, so they never drift
//! from `--help`.

use std::io::{self, Write};

use clap::Command;
use clap_mangen::Man;

use crate::exit;

/// Write the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell, mut cmd: Command) -> io::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "synprobe", &mut script);
    let mut out = io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(exit::OK)
}

/// Write the manual page, synprobe(1), to stdout.
pub fn man_page(cmd: Command) -> io::Result<u8> {
    let mut page = Vec::new();
    render(cmd, &mut page)?;
    // troff reads ASCII: any other character (the help's "→") becomes a named Unicode escape.
    let page: String = String::from_utf8_lossy(&page)
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\[u{:04X}]", u32::from(c))
            }
        })
        .collect();
    let mut out = io::stdout().lock();
    out.write_all(page.as_bytes())?;
    out.flush()?;
    Ok(exit::OK)
}

/// The whole page: clap_mangen's sections for live probing, the same for `synprobe replay`, then what clap does
/// not know (exit status, environment, examples).
fn render(mut cmd: Command, out: &mut Vec<u8>) -> io::Result<()> {
    // NAME reads "synprobe - who refused the connection, and why", not "synprobe - synprobe: who ...".
    if let Some(about) = cmd.get_about().map(ToString::to_string) {
        let short = about.trim_start_matches("synprobe: ").to_string();
        cmd = cmd.about(short);
    }
    cmd.build();
    let man = Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    // The subcommands are described in this page (clap_mangen would point to a page per subcommand).
    writeln!(out, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        writeln!(
            out,
            ".TP\n\\fBsynprobe {}\\fR\n{}",
            sub.get_name(),
            roff(&about)
        )?;
    }
    for sub in cmd
        .get_subcommands()
        .filter(|s| ["replay", "check", "watch"].contains(&s.get_name()))
    {
        let title = format!("synprobe {}", sub.get_name());
        let sub_man = Man::new(sub.clone());
        let mut part = Vec::new();
        sub_man.render_synopsis_section(&mut part)?;
        sub_man.render_description_section(&mut part)?;
        sub_man.render_options_section(&mut part)?;
        // Its sections become subsections of one section named after the command.
        let part = String::from_utf8_lossy(&part)
            .replace(".SH SYNOPSIS", ".SS Synopsis")
            .replace(".SH DESCRIPTION", ".SS Description")
            .replace(".SH OPTIONS", ".SS Options");
        writeln!(out, ".SH \"{}\"", title.to_uppercase())?;
        out.extend_from_slice(part.as_bytes());
    }
    extra_sections(out)?;
    man.render_version_section(out)?;
    Ok(())
}

/// Escape text for roff: backslashes and hyphens (so that `--quick` stays two ASCII hyphens), and a leading
/// dot or quote that would read as a request.
fn roff(text: &str) -> String {
    let s = text.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

fn extra_sections(out: &mut Vec<u8>) -> io::Result<()> {
    writeln!(out, ".SH VERDICTS")?;
    for (verdict, meaning) in [
        ("open", "SYN-ACK from the target: a service listens (a SYN-ACK with window 0 is a SYN proxy's: open with a caveat; --connect tells what is behind it)."),
        ("closed", "RST from the target's own TCP stack, or from a backend behind a port forward on the target (one hop beyond it: rejecter kind backend): nothing listens there."),
        ("firewall-rst", "An RST forged by a firewall: a router on the path (named by its own address, at its hop) or a REJECT rule on the target."),
        ("icmp-rejected", "ICMP administratively prohibited, or port unreachable for TCP: a REJECT rule, firewalld, kube-proxy for a Service without endpoints, a prohibit route."),
        ("unreachable", "ICMP no route, host or network unreachable: a route, or a neighbour that does not answer ARP (including a port forward to a stopped container)."),
        ("filtered", "Silence: a DROP rule, a blackhole, a full listen backlog; the TTL walk says after which hop the SYNs vanish."),
    ] {
        writeln!(out, ".TP\n\\fB{verdict}\\fR\n{}", roff(meaning))?;
    }
    writeln!(
        out,
        ".PP\n{}",
        roff("Every rejecter has a kind: target (the host itself), router (a device in front of it), backend (behind a port forward on the target) or sender (this host, hop 0). Hops count as traceroute does: the first router is hop 1; an address of this host is hop 0.")
    )?;
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (code, meaning) in exit::CODES {
        writeln!(out, ".TP\n\\fB{code}\\fR\n{}", roff(meaning))?;
    }
    writeln!(
        out,
        ".PP\n{}",
        roff("synprobe check has the Nagios plugin states instead: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a local problem only: bad arguments, missing privilege, a name that does not resolve, no route or capture device). synprobe watch exits 130 when stopped by SIGINT/SIGTERM, after printing the history.")
    )?;
    writeln!(out, ".SH ENVIRONMENT")?;
    for (name, meaning) in [
        (
            "NO_COLOR",
            "When set and not empty, the human report is not coloured (unless --color always).",
        ),
        (
            "SUDO_UID, SUDO_GID",
            "Live probing: after opening its sockets and captures, synprobe becomes this user (else nobody), \
             and the -w file belongs to them.",
        ),
    ] {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(name), roff(meaning))?;
    }
    writeln!(out, ".SH EXAMPLES")?;
    for (command, meaning) in [
        (
            "sudo synprobe example.com 443",
            "Probe port 443 on every address of example.com and explain the answer.",
        ),
        (
            "sudo synprobe 192.0.2.7 80,443,8000-8010 --json -w run.pcapng",
            "Several ports, JSON Lines on stdout, every packet written as annotated pcapng.",
        ),
        (
            "synprobe replay incident.pcapng --filter 'host 192.0.2.7'",
            "Explain every connection attempt to or from 192.0.2.7 in a capture.",
        ),
        (
            "synprobe replay --json capture.pcap | jq 'select(.verdict == \"firewall-rst\")'",
            "The attempts a firewall refused, as JSON.",
        ),
        (
            "sudo synprobe check -H example.com -p 443 -w 0.5 -c 1 --state closed=warning",
            "A Nagios/Icinga check: TCP OK/WARNING/CRITICAL with the verdict, who refused, and perfdata.",
        ),
        (
            "sudo synprobe watch 192.0.2.7 22,443 --every 30",
            "Probe every 30 s; print a line when a port's verdict or rejecter changes; Ctrl-C prints the history.",
        ),
    ] {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(command), roff(meaning))?;
    }
    writeln!(out, ".SH \"SEE ALSO\"")?;
    writeln!(
        out,
        "\\fBtcpdump\\fR(1), \\fBtshark\\fR(1), \\fBpcap\\-filter\\fR(7), \\fBnmap\\fR(1), \\fBss\\fR(8), \
         \\fBiptables\\fR(8), \\fBnft\\fR(8)"
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes_hyphens_backslashes_and_leading_dots() {
        assert_eq!(roff("--quick"), "\\-\\-quick");
        assert_eq!(roff("a\\b"), "a\\eb");
        assert_eq!(roff(".hidden"), "\\&.hidden");
    }
}
