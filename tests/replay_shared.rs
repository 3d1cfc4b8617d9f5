//! Replay of every public capture in ../shared/pcaps (see its README for what each holds and where it is from).
//! The files are read in place: they are never copied into this repository. Without them every test here says
//! SKIP and passes, except in CI (see [`synprobe_tests::pcaps`]).

use std::path::{Path, PathBuf};

use synprobe_core::capture::{CaptureError, CaptureReader};
use synprobe_core::wire::Unreachable;
use synprobe_core::{
    replay, replay_parallel, HopCount, ReplayOptions, ReplayStats, ReplyKind, Report, Verdict,
};
use synprobe_tests::pcaps;

fn shared(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    assert!(p.exists(), "missing public capture {}", p.display());
    p
}

struct Run {
    reports: Vec<Report>,
    stats: ReplayStats,
    damage: Option<CaptureError>,
}

impl Run {
    fn of(dir: &Path, name: &str) -> Run {
        let mut reader = CaptureReader::open(&shared(dir, name)).expect("the capture opens");
        let mut reports = Vec::new();
        let (stats, damage) = replay(
            &mut reader,
            &ReplayOptions::default(),
            |r, _| reports.push(r.clone()),
            |_| {},
        )
        .expect("replay runs");
        Run {
            reports,
            stats,
            damage,
        }
    }
    fn count(&self, v: Verdict) -> usize {
        self.reports
            .iter()
            .filter(|r| r.judgement.verdict == v)
            .count()
    }
    fn syns(&self) -> u64 {
        self.reports
            .iter()
            .map(|r| u64::from(r.attempt.syn_count))
            .sum()
    }
}

#[test]
fn nmap_t1_five_syn_ack_are_five_open_attempts() {
    let Some(dir) = pcaps("nmap_t1_five_syn_ack_are_five_open_attempts") else {
        return;
    };
    let r = Run::of(&dir, "nmap_tcpconnect_T1_synack.cap");
    assert_eq!(r.stats.frames.frames, 27);
    assert_eq!(r.reports.len(), 5);
    assert_eq!(r.count(Verdict::Open), 5);
    assert!(r
        .reports
        .iter()
        .all(|x| x.judgement.target_hops == Some(HopCount(1))));
    assert_eq!(r.stats.matching.strays(), 0);
    assert!(r.damage.is_none());
}

#[test]
fn nmap_t2_five_rst_are_closed_by_the_host_itself() {
    let Some(dir) = pcaps("nmap_t2_five_rst_are_closed_by_the_host_itself") else {
        return;
    };
    let r = Run::of(&dir, "nmap_tcpconnect_T2_rst.cap");
    assert_eq!(
        (
            r.stats.frames.frames,
            r.reports.len(),
            r.count(Verdict::Closed)
        ),
        (10, 5, 5)
    );
    for x in &r.reports {
        let rej = x.judgement.rejecter.expect("the host");
        assert!(rej.is_target);
        assert_eq!(rej.hops, Some(HopCount(1)));
        assert_eq!(x.attempt.probe.key.server_port.0, 81);
    }
}

#[test]
fn nmap_t3_eight_syns_three_retransmitted_no_reply() {
    let Some(dir) = pcaps("nmap_t3_eight_syns_three_retransmitted_no_reply") else {
        return;
    };
    let r = Run::of(&dir, "nmap_tcpconnect_T3_noreply.cap");
    assert_eq!(r.syns(), 8);
    assert_eq!(r.stats.matching.retransmissions, 3);
    assert_eq!(r.reports.len(), 5);
    assert_eq!(r.count(Verdict::Filtered), 5);
}

#[test]
fn ndpi_synscan_a_real_nmap_ss_scan() {
    let Some(dir) = pcaps("ndpi_synscan_a_real_nmap_ss_scan") else {
        return;
    };
    let r = Run::of(&dir, "ndpi_synscan.pcap");
    assert_eq!(r.stats.frames.frames, 2011);
    assert_eq!(r.syns(), 1994);
    assert_eq!(
        r.reports.len(),
        1994,
        "every SYN of the scan is its own attempt"
    );
    assert_eq!(r.count(Verdict::Closed), 5, "5 RST/ACK");
    // 12 SYN-ACKs from 3 open ports: the server retransmits its SYN-ACK because the scanner never answers.
    assert_eq!(r.count(Verdict::Open), 3);
    let synacks: u32 = r
        .reports
        .iter()
        .filter(|x| x.judgement.verdict == Verdict::Open)
        .map(|x| x.attempt.reply_count)
        .sum();
    assert_eq!(u64::from(synacks) + r.stats.matching.late_replies, 12);
    assert_eq!(r.stats.matching.strays(), 0);
    assert_eq!(r.count(Verdict::Filtered), 1994 - 8);
}

#[test]
fn ndpi_tcp_scan_is_classic_pcap_despite_its_name() {
    let Some(dir) = pcaps("ndpi_tcp_scan_is_classic_pcap_despite_its_name") else {
        return;
    };
    let reader = CaptureReader::open(&shared(&dir, "ndpi_tcp_scan.pcapng")).expect("opens");
    assert!(matches!(
        reader.format(),
        synprobe_core::capture::Format::Pcap { .. }
    ));
    let r = Run::of(&dir, "ndpi_tcp_scan.pcapng");
    assert_eq!(r.stats.frames.frames, 30);
    assert_eq!(r.syns(), 4);
    assert_eq!((r.count(Verdict::Open), r.count(Verdict::Closed)), (2, 2));
    // The FIN, NULL and XMAS probes are not SYNs: their RST/ACK answers match no attempt.
    assert_eq!(r.stats.matching.stray_tcp, 3);
}

#[test]
fn ndpi_instagram_port_unreachable_from_the_sending_host_itself() {
    let Some(dir) = pcaps("ndpi_instagram_port_unreachable_from_the_sending_host_itself") else {
        return;
    };
    let r = Run::of(&dir, "ndpi_instagram_icmp_port_unreach.pcap");
    assert_eq!(r.stats.frames.frames, 847);
    assert_eq!(r.syns(), 11);
    assert_eq!(r.count(Verdict::Open), 11);
    // 5 ICMP port unreachable from 192.168.0.103 to itself quote SYNs that never reached the wire (3 attempts).
    let rejected: Vec<&Report> = r
        .reports
        .iter()
        .filter(|x| x.judgement.verdict == Verdict::IcmpRejected)
        .collect();
    assert_eq!(rejected.len(), 3);
    assert_eq!(
        rejected.iter().map(|x| x.attempt.reply_count).sum::<u32>(),
        5
    );
    for x in &rejected {
        assert_eq!(x.attempt.syn_count, 0);
        assert_eq!(x.attempt.probe.key.server_port.0, 443);
        let rej = x.judgement.rejecter.expect("rejecter");
        assert_eq!(
            rej.addr,
            "192.168.0.103".parse::<std::net::IpAddr>().expect("addr")
        );
        assert_eq!((rej.hops, rej.is_target), (Some(HopCount(0)), false));
        assert!(x
            .attempt
            .replies
            .iter()
            .all(|p| p.kind == ReplyKind::Unreachable(Unreachable::Port)));
    }
    assert_eq!(r.stats.matching.rebuilt_from_icmp, 3);
    assert_eq!(r.stats.matching.stray_icmp, 0);
    assert_eq!(
        r.stats.matching.stray_tcp, 1,
        "12 SYN-ACKs for 11 captured SYNs"
    );
}

#[test]
fn ndpi_gnutella_host_unreachable_with_eight_byte_quotes() {
    let Some(dir) = pcaps("ndpi_gnutella_host_unreachable_with_eight_byte_quotes") else {
        return;
    };
    let r = Run::of(&dir, "ndpi_gnutella_icmp_host_unreach.pcap");
    assert_eq!(r.stats.frames.frames, 3905);
    assert_eq!(r.syns(), 291);
    assert_eq!(
        r.stats.matching.retransmissions, 154,
        "Windows' 3 s and 6 s retries stay in their attempt"
    );
    assert_eq!(r.reports.len(), 291 - 154);
    let icmp: Vec<_> = r
        .reports
        .iter()
        .flat_map(|x| x.attempt.replies.iter())
        .filter(|p| p.kind == ReplyKind::Unreachable(Unreachable::Host))
        .collect();
    assert_eq!(icmp.len(), 4);
    for p in &icmp {
        let q = p
            .seen
            .packet
            .icmp_error()
            .and_then(|e| e.quote)
            .expect("quote");
        assert_eq!(q.transport_bytes, 8);
        assert!(
            q.tcp.expect("ports and seq").flags.is_none(),
            "no flags in an 8-byte quote"
        );
        assert!(p.exact, "matched on the quoted sequence number");
    }
    assert_eq!(r.count(Verdict::Unreachable), 2);
}

#[test]
fn suricata_kill_router6_icmpv6_no_route() {
    let Some(dir) = pcaps("suricata_kill_router6_icmpv6_no_route") else {
        return;
    };
    let r = Run::of(&dir, "sv_kill_router6_icmpv6_unreach.pcap");
    assert_eq!(r.syns(), 5);
    assert_eq!(r.stats.matching.retransmissions, 3);
    assert_eq!(r.count(Verdict::Unreachable), r.reports.len());
    let replies: Vec<_> = r
        .reports
        .iter()
        .flat_map(|x| x.attempt.replies.iter())
        .collect();
    assert_eq!(replies.len(), 5, "each SYN answered by ICMPv6 1/0");
    assert!(replies
        .iter()
        .all(|p| p.kind == ReplyKind::Unreachable(Unreachable::V6NoRoute)));
    let ecn = synprobe_core::wire::TcpFlags::ECE | synprobe_core::wire::TcpFlags::CWR;
    let ecn_syns = r
        .reports
        .iter()
        .flat_map(|x| x.attempt.syns.iter())
        .filter(|s| s.packet.tcp().is_some_and(|t| t.flags.has(ecn)))
        .count();
    assert_eq!(ecn_syns, 1);
}

#[test]
fn zeek_ldap_ipv6_pcapng_with_126_interfaces() {
    let Some(dir) = pcaps("zeek_ldap_ipv6_pcapng_with_126_interfaces") else {
        return;
    };
    let r = Run::of(&dir, "zeek_ldap_modify-request_ipv6.pcapng");
    assert_eq!(r.stats.frames.frames, 17);
    assert_eq!(r.reports.len(), 1);
    assert!(r.reports[0].attempt.probe.key.server.is_ipv6());
    assert_eq!(r.count(Verdict::Open), 1);
    assert_eq!(
        r.stats.matching.other_resets, 1,
        "the closing RST/ACK ends the connection, it answers no SYN"
    );
}

#[test]
fn ndpi_vmess_ipv6_syn_retransmitted_twice_then_answered() {
    let Some(dir) = pcaps("ndpi_vmess_ipv6_syn_retransmitted_twice_then_answered") else {
        return;
    };
    let r = Run::of(&dir, "ndpi_vmess_ipv6_synretx.pcapng");
    let v6: Vec<&Report> = r
        .reports
        .iter()
        .filter(|x| x.attempt.probe.key.server.is_ipv6())
        .collect();
    assert_eq!(v6.len(), 1);
    let a = v6[0];
    assert_eq!(
        (a.attempt.syn_count, a.judgement.verdict),
        (3, Verdict::Open)
    );
    let rtt = a.judgement.rtt_ms().expect("rtt");
    assert!(
        (9.0..10.5).contains(&rtt),
        "measured from the last SYN: {rtt}"
    );
}

#[test]
fn ndpi_syn_noreply_pcapng_with_two_interfaces() {
    let Some(dir) = pcaps("ndpi_syn_noreply_pcapng_with_two_interfaces") else {
        return;
    };
    let r = Run::of(&dir, "ndpi_syn_noreply.pcapng");
    assert_eq!(
        (r.syns(), r.reports.len(), r.stats.matching.retransmissions),
        (8, 3, 5)
    );
    assert_eq!(r.count(Verdict::Filtered), 3);
}

#[test]
fn zeek_trunc_hdr_one_cut_frame_is_counted_malformed() {
    let Some(dir) = pcaps("zeek_trunc_hdr_one_cut_frame_is_counted_malformed") else {
        return;
    };
    let r = Run::of(&dir, "zeek_trunc-hdr.pcap");
    assert_eq!((r.stats.frames.frames, r.stats.frames.malformed), (1, 1));
    assert!(r.reports.is_empty() && r.damage.is_none());
}

#[test]
fn suricata_der_corrupt_record_after_a_handshake() {
    let Some(dir) = pcaps("suricata_der_corrupt_record_after_a_handshake") else {
        return;
    };
    let r = Run::of(&dir, "sv_DER-incomplete-header_corrupt.pcap");
    assert_eq!(
        r.count(Verdict::Open),
        1,
        "the handshake before the damage is analysed"
    );
    let e = r.damage.expect("damage reported");
    assert_eq!(e.offset(), Some(5035));
    assert!(e.to_string().contains("4325376"), "{e}");
}

#[test]
fn ndpi_fuzz_cut_short_is_reported_with_its_offset() {
    let Some(dir) = pcaps("ndpi_fuzz_cut_short_is_reported_with_its_offset") else {
        return;
    };
    let r = Run::of(&dir, "ndpi_fuzz-2021-10-13_cutshort.pcap");
    assert_eq!(r.stats.frames.frames, 1);
    let e = r.damage.expect("damage reported");
    assert!(matches!(e, CaptureError::Truncated { .. }), "{e}");
    assert_eq!(e.offset(), Some(237));
}

#[test]
fn libpcap_invalid_version_is_refused_clearly() {
    let Some(dir) = pcaps("libpcap_invalid_version_is_refused_clearly") else {
        return;
    };
    match CaptureReader::open(&shared(&dir, "libpcap_pcap-invalid-version-1.pcap")) {
        Err(e @ CaptureError::UnsupportedVersion { .. }) => {
            assert!(e.to_string().contains("version 1.4"), "{e}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a version-1 file must be refused"),
    }
}

/// The two-threaded replay the CLI runs gives the same reports, in the same order, the same counters and the
/// same damage as the one-threaded one, on every public capture (damaged ones included), with and without a
/// BPF filter and a host selection.
#[test]
fn replay_parallel_matches_replay_on_every_public_capture() {
    let Some(dir) = pcaps("replay_parallel_matches_replay_on_every_public_capture") else {
        return;
    };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("list the public captures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x != "md"))
        .collect();
    names.sort();
    assert!(names.len() >= 14, "{names:?}");
    let with_filter = ReplayOptions {
        filter: Some("tcp or icmp or icmp6".into()),
        ..ReplayOptions::default()
    };
    for path in &names {
        for options in [&ReplayOptions::default(), &with_filter] {
            let run = |parallel: bool| {
                let Ok(mut reader) = CaptureReader::open(path) else {
                    return None;
                };
                let mut reports = Vec::new();
                let on_report = |r: &Report, _: &ReplayStats| reports.push(r.clone());
                let (stats, damage) = if parallel {
                    replay_parallel(&mut reader, options, on_report, |_| {})
                } else {
                    replay(&mut reader, options, on_report, |_| {})
                }
                .expect("replay runs");
                let stats = serde_json::to_string(&stats).expect("stats serialize");
                Some((reports, stats, damage.map(|d| d.to_string())))
            };
            let (one, two) = (run(false), run(true));
            assert_eq!(one.is_some(), two.is_some());
            if let (Some(one), Some(two)) = (one, two) {
                assert_eq!(one.0, two.0, "{}: reports", path.display());
                assert_eq!(one.1, two.1, "{}: stats", path.display());
                assert_eq!(one.2, two.2, "{}: damage", path.display());
            }
        }
    }
}
