//! Per server:port summaries of judged attempts: attempts by verdict, hop distances seen, median RTT.
//! Bounded: at most [`Summary::MAX_ROWS`] rows (the rest is folded into one overflow row) and a fixed
//! reservoir of RTT samples per row: 32 for a server:port, 512 for the total and overflow rows. Past that many
//! replies the median is that of a uniform random sample (reservoir sampling, with a fixed seed: the same
//! input gives the same summary). A server:port's replies mostly come from one host at one distance, so 32
//! samples place its median well; keeping them all made memory grow with the length of the capture (10 MB of
//! samples for 16,500 server:ports over 20 M frames with 512 a row).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::engine::Report;
use crate::verdict::Verdict;

type Hasher = foldhash::fast::RandomState;

/// RTT samples kept for a server:port row.
const ROW_RTT_SAMPLES: usize = 32;
/// RTT samples kept for the total and the overflow rows (one of each).
const TOTAL_RTT_SAMPLES: usize = 512;
const MAX_HOPS_LISTED: usize = 8;

/// One server:port row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// The server address (None for the overflow row).
    pub target: Option<IpAddr>,
    /// The server port (None for the overflow row).
    pub port: Option<u16>,
    /// Attempts.
    pub attempts: u64,
    /// Attempts by verdict (kebab-case keys; verdicts with no attempt are left out).
    pub by_verdict: BTreeMap<Verdict, u64>,
    /// Attempts with at least one SYN retransmission.
    pub retransmitted: u64,
    /// Distinct hop distances of the deciding replies (rejecter or target), ascending, at most 8.
    pub hops: Vec<u8>,
    /// Median round-trip time of the deciding replies, in milliseconds (over a uniform sample of up to 32 of
    /// them; up to 512 for the total and overflow rows).
    pub median_rtt_ms: Option<f64>,
}

/// A reservoir of round-trip times. They come from a count of nanoseconds (`Duration::as_millis_f64`), so nearly
/// all are kept as that count in 4 bytes, which gives back the same `f64` exactly; a row with a value that does
/// not (negative, over 4.29 s, or not such a quotient) keeps all of its values as `f64`.
#[derive(Debug, Clone)]
enum Rtts {
    Nanos(Vec<u32>),
    Millis(Vec<f64>),
}

impl Default for Rtts {
    fn default() -> Self {
        Rtts::Nanos(Vec::new())
    }
}

/// `ms` as the count of nanoseconds it was computed from, if that gives it back exactly.
fn as_nanos(ms: f64) -> Option<u32> {
    let n = (ms * 1e6).round();
    if !(0.0..=f64::from(u32::MAX)).contains(&n) {
        return None;
    }
    let n = n as u32;
    (millis(n).to_bits() == ms.to_bits()).then_some(n)
}

fn millis(nanos: u32) -> f64 {
    f64::from(nanos) / 1e6
}

/// Grow by a quarter at a time (not double): many rows are alive at once and most stay short.
fn push_frugal<T>(v: &mut Vec<T>, x: T, cap: usize) {
    if v.len() == v.capacity() {
        let room = cap.saturating_sub(v.len()).max(1);
        v.reserve_exact((v.len() / 4).max(4).min(room));
    }
    v.push(x);
}

impl Rtts {
    fn len(&self) -> usize {
        match self {
            Rtts::Nanos(v) => v.len(),
            Rtts::Millis(v) => v.len(),
        }
    }

    /// Keep `ms` at `slot` (pushed when `slot` is the length).
    fn put(&mut self, slot: usize, ms: f64, cap: usize) {
        if let Rtts::Nanos(v) = self {
            match as_nanos(ms) {
                Some(n) if slot < v.len() => {
                    v[slot] = n;
                    return;
                }
                Some(n) => {
                    push_frugal(v, n, cap);
                    return;
                }
                None => {
                    let wide: Vec<f64> = v.iter().map(|&n| millis(n)).collect();
                    *self = Rtts::Millis(wide);
                }
            }
        }
        if let Rtts::Millis(v) = self {
            if slot < v.len() {
                v[slot] = ms;
            } else {
                push_frugal(v, ms, cap);
            }
        }
    }

    fn to_vec(&self) -> Vec<f64> {
        match self {
            Rtts::Nanos(v) => v.iter().map(|&n| millis(n)).collect(),
            Rtts::Millis(v) => v.clone(),
        }
    }
}

/// Where each count is in [`Counts`].
const ATTEMPTS: usize = 0;
/// Attempts by verdict, in [`Verdict::ALL`] order, from here.
const BY_VERDICT: usize = 1;
const RETRANSMITTED: usize = BY_VERDICT + Verdict::ALL.len();
const SEEN_RTTS: usize = RETRANSMITTED + 1;
const COUNTS: usize = SEEN_RTTS + 1;

/// A row's counts: 4 bytes each while they fit, which is for every row short of 4 billion attempts; all of them
/// move to 8 bytes each the first time one would not.
#[derive(Debug, Clone, Default)]
struct Counts {
    narrow: [u32; COUNTS],
    wide: Option<Box<[u64; COUNTS]>>,
}

impl Counts {
    /// Add one to count `i` and give its new value.
    fn bump(&mut self, i: usize) -> u64 {
        if let Some(wide) = &mut self.wide {
            wide[i] += 1;
            return wide[i];
        }
        match self.narrow[i].checked_add(1) {
            Some(n) => {
                self.narrow[i] = n;
                u64::from(n)
            }
            None => {
                let mut wide = Box::new(self.narrow.map(u64::from));
                wide[i] += 1;
                let n = wide[i];
                self.wide = Some(wide);
                n
            }
        }
    }

    fn get(&self, i: usize) -> u64 {
        match &self.wide {
            Some(wide) => wide[i],
            None => u64::from(self.narrow[i]),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Acc {
    counts: Counts,
    /// Distinct hop distances, ascending, in the first `hops_len` places.
    hops: [u8; MAX_HOPS_LISTED],
    hops_len: u8,
    rtts: Rtts,
}

impl Acc {
    fn attempts(&self) -> u64 {
        self.counts.get(ATTEMPTS)
    }

    /// Count `r`, keeping up to `cap` RTT samples.
    fn add(&mut self, r: &Report, rng: &mut u64, cap: usize) {
        self.counts.bump(ATTEMPTS);
        let j = &r.judgement;
        if let Some(i) = Verdict::ALL.iter().position(|v| *v == j.verdict) {
            self.counts.bump(BY_VERDICT + i);
        }
        if r.attempt.syn_count > 1 {
            self.counts.bump(RETRANSMITTED);
        }
        let hop = j.rejecter.and_then(|x| x.hops).or(j.target_hops);
        if let Some(h) = hop {
            let n = usize::from(self.hops_len);
            if !self.hops[..n].contains(&h.0) && n < MAX_HOPS_LISTED {
                self.hops[n] = h.0;
                self.hops_len += 1;
                self.hops[..=n].sort_unstable();
            }
        }
        if let Some(rtt) = j.rtt_ms() {
            let seen = self.counts.bump(SEEN_RTTS);
            let len = self.rtts.len();
            if len < cap {
                self.rtts.put(len, rtt, cap);
            } else {
                // Reservoir sampling with a small deterministic generator: the same input, the same summary.
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                let slot = (*rng % seen) as usize;
                if slot < cap {
                    self.rtts.put(slot, rtt, cap);
                }
            }
        }
    }

    fn row(&self, target: Option<IpAddr>, port: Option<u16>) -> SummaryRow {
        let mut rtts = self.rtts.to_vec();
        rtts.sort_by(f64::total_cmp);
        let median = match rtts.len() {
            0 => None,
            n if n % 2 == 1 => Some(rtts[n / 2]),
            n => Some((rtts[n / 2 - 1] + rtts[n / 2]) / 2.0),
        };
        SummaryRow {
            target,
            port,
            attempts: self.attempts(),
            by_verdict: Verdict::ALL
                .iter()
                .enumerate()
                .map(|(i, v)| (*v, self.counts.get(BY_VERDICT + i)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            retransmitted: self.counts.get(RETRANSMITTED),
            hops: self.hops[..usize::from(self.hops_len)].to_vec(),
            median_rtt_ms: median,
        }
    }
}

/// An IPv4 server:port as one number.
fn v4_key(addr: Ipv4Addr, port: u16) -> u64 {
    u64::from(u32::from(addr)) << 16 | u64::from(port)
}

/// Accumulates judged attempts into per server:port rows and totals.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Where each IPv4 server:port's row is in `accs`, by address << 16 | port (12 bytes an entry instead of 24).
    v4_rows: HashMap<u64, u32, Hasher>,
    /// Where each other server:port's row is in `accs`.
    other_rows: HashMap<(IpAddr, u16), u32, Hasher>,
    accs: Vec<Acc>,
    overflow: Acc,
    total: Acc,
    rng: u64,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            v4_rows: HashMap::with_hasher(Hasher::default()),
            other_rows: HashMap::with_hasher(Hasher::default()),
            accs: Vec::new(),
            overflow: Acc::default(),
            total: Acc::default(),
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl Summary {
    /// The most server:port rows kept; attempts beyond go to the overflow row.
    pub const MAX_ROWS: usize = 100_000;

    /// Add one judged attempt.
    pub fn add(&mut self, r: &Report) {
        let (server, port) = (
            r.attempt.probe.key.server,
            r.attempt.probe.key.server_port.0,
        );
        self.total.add(r, &mut self.rng, TOTAL_RTT_SAMPLES);
        let row = match server {
            IpAddr::V4(a) => self.v4_rows.get(&v4_key(a, port)),
            IpAddr::V6(_) => self.other_rows.get(&(server, port)),
        };
        if let Some(acc) = row.and_then(|&i| self.accs.get_mut(i as usize)) {
            acc.add(r, &mut self.rng, ROW_RTT_SAMPLES);
        } else if self.accs.len() < Self::MAX_ROWS {
            let mut acc = Acc::default();
            acc.add(r, &mut self.rng, ROW_RTT_SAMPLES);
            let i = self.accs.len() as u32;
            match server {
                IpAddr::V4(a) => self.v4_rows.insert(v4_key(a, port), i),
                IpAddr::V6(_) => self.other_rows.insert((server, port), i),
            };
            self.accs.push(acc);
        } else {
            self.overflow.add(r, &mut self.rng, TOTAL_RTT_SAMPLES);
        }
    }

    /// The rows, sorted by server then port; the overflow row last if it has attempts.
    pub fn rows(&self) -> Vec<SummaryRow> {
        let mut keys: Vec<((IpAddr, u16), u32)> = self
            .v4_rows
            .iter()
            .map(|(&k, &i)| {
                let addr = Ipv4Addr::from((k >> 16) as u32);
                ((IpAddr::V4(addr), k as u16), i)
            })
            .chain(self.other_rows.iter().map(|(&k, &i)| (k, i)))
            .collect();
        keys.sort_unstable();
        let mut out: Vec<SummaryRow> = keys
            .into_iter()
            .filter_map(|((server, port), i)| {
                let acc = self.accs.get(i as usize)?;
                Some(acc.row(Some(server), Some(port)))
            })
            .collect();
        if self.overflow.attempts() > 0 {
            out.push(self.overflow.row(None, None));
        }
        out
    }

    /// Totals over every attempt.
    pub fn totals(&self) -> SummaryRow {
        self.total.row(None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{IpSpec, TcpSpec, Timeline};
    use crate::model::HopCount;
    use crate::verdict::Rejecter;

    /// The summary as first written (rows in a map of plain vectors): the compact one must agree with it.
    #[derive(Default)]
    struct Plain {
        rows: std::collections::BTreeMap<(IpAddr, u16), PlainAcc>,
        overflow: PlainAcc,
        total: PlainAcc,
        rng: u64,
    }

    #[derive(Default)]
    struct PlainAcc {
        attempts: u64,
        by_verdict: [u64; 6],
        retransmitted: u64,
        hops: Vec<u8>,
        rtts: Vec<f64>,
        seen_rtts: u64,
    }

    impl PlainAcc {
        fn add(&mut self, r: &Report, rng: &mut u64, cap: usize) {
            self.attempts += 1;
            let j = &r.judgement;
            if let Some(i) = Verdict::ALL.iter().position(|v| *v == j.verdict) {
                self.by_verdict[i] += 1;
            }
            if r.attempt.syn_count > 1 {
                self.retransmitted += 1;
            }
            if let Some(h) = j.rejecter.and_then(|x| x.hops).or(j.target_hops) {
                if !self.hops.contains(&h.0) && self.hops.len() < MAX_HOPS_LISTED {
                    self.hops.push(h.0);
                    self.hops.sort_unstable();
                }
            }
            if let Some(rtt) = j.rtt_ms() {
                self.seen_rtts += 1;
                if self.rtts.len() < cap {
                    self.rtts.push(rtt);
                } else {
                    *rng ^= *rng << 13;
                    *rng ^= *rng >> 7;
                    *rng ^= *rng << 17;
                    let slot = (*rng % self.seen_rtts) as usize;
                    if slot < cap {
                        self.rtts[slot] = rtt;
                    }
                }
            }
        }

        fn row(&self, target: Option<IpAddr>, port: Option<u16>) -> SummaryRow {
            let mut rtts = self.rtts.clone();
            rtts.sort_by(f64::total_cmp);
            let median = match rtts.len() {
                0 => None,
                n if n % 2 == 1 => Some(rtts[n / 2]),
                n => Some((rtts[n / 2 - 1] + rtts[n / 2]) / 2.0),
            };
            SummaryRow {
                target,
                port,
                attempts: self.attempts,
                by_verdict: Verdict::ALL
                    .iter()
                    .zip(self.by_verdict)
                    .filter(|(_, n)| *n > 0)
                    .map(|(v, n)| (*v, n))
                    .collect(),
                retransmitted: self.retransmitted,
                hops: self.hops.clone(),
                median_rtt_ms: median,
            }
        }
    }

    impl Plain {
        fn add(&mut self, r: &Report, max_rows: usize) {
            let key = (
                r.attempt.probe.key.server,
                r.attempt.probe.key.server_port.0,
            );
            self.total.add(r, &mut self.rng, TOTAL_RTT_SAMPLES);
            if let Some(acc) = self.rows.get_mut(&key) {
                acc.add(r, &mut self.rng, ROW_RTT_SAMPLES);
            } else if self.rows.len() < max_rows {
                let mut acc = PlainAcc::default();
                acc.add(r, &mut self.rng, ROW_RTT_SAMPLES);
                self.rows.insert(key, acc);
            } else {
                self.overflow.add(r, &mut self.rng, TOTAL_RTT_SAMPLES);
            }
        }

        fn rows(&self) -> Vec<SummaryRow> {
            let mut out: Vec<SummaryRow> = self
                .rows
                .iter()
                .map(|(k, a)| a.row(Some(k.0), Some(k.1)))
                .collect();
            if self.overflow.attempts > 0 {
                out.push(self.overflow.row(None, None));
            }
            out
        }
    }

    fn base_report() -> Report {
        let mut t = Timeline::starting_at(1_700_000_000);
        let ip = IpSpec::new(
            "198.18.0.2".parse().expect("addr"),
            "198.18.9.9".parse().expect("addr"),
        );
        let syn = TcpSpec::syn(40000, 443, 7);
        t.at(0.0, syn.emit(&ip).expect("syn"));
        t.at(
            5.0,
            TcpSpec::syn_ack_to(&syn, 1)
                .emit(&ip.reversed().ttl(57))
                .expect("syn-ack"),
        );
        t.judge(crate::EngineConfig::default()).remove(0)
    }

    /// Sort rows as `Summary::rows` does (the plain map is already in that order) and compare exactly,
    /// bit for bit in the medians.
    fn same(a: &[SummaryRow], b: &[SummaryRow]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            let bits = |r: &SummaryRow| r.median_rtt_ms.map(f64::to_bits);
            assert_eq!(
                (x.target, x.port, x.attempts),
                (y.target, y.port, y.attempts)
            );
            assert_eq!(
                (&x.by_verdict, x.retransmitted, &x.hops),
                (&y.by_verdict, y.retransmitted, &y.hops)
            );
            assert_eq!(bits(x), bits(y), "{x:?} {y:?}");
        }
    }

    #[test]
    fn a_busy_server_port_keeps_a_fixed_sample_of_rtts() {
        let mut summary = Summary::default();
        let mut r = base_report();
        // 20,000 replies with RTTs 1..=20,000 ms, in a scrambled order.
        for i in 0..20_000u64 {
            let ms = (i * 7_919) % 20_000 + 1;
            r.judgement.rtt = Some(crate::time::Duration(ms as i64 * 1_000_000));
            summary.add(&r);
        }
        let acc = summary.accs.first().expect("one row");
        assert_eq!(acc.rtts.len(), ROW_RTT_SAMPLES);
        assert_eq!(summary.total.rtts.len(), TOTAL_RTT_SAMPLES);
        assert_eq!(acc.counts.get(SEEN_RTTS), 20_000);
        // The true median is 10,000.5 ms: a uniform sample of 32 puts it well inside the middle half.
        let row = summary.rows().remove(0);
        let median = row.median_rtt_ms.expect("a median");
        assert!((5_000.0..15_000.0).contains(&median), "row median {median}");
        let total = summary.totals().median_rtt_ms.expect("a median");
        assert!((8_000.0..12_000.0).contains(&total), "total median {total}");
    }

    #[test]
    fn the_compact_summary_agrees_with_the_plain_one() {
        let base = base_report();
        let mut rng = 0x1234_5678_9abc_def1u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let (mut compact, mut plain) = (
            Summary::default(),
            Plain {
                rng: 0x9e37_79b9_7f4a_7c15,
                ..Plain::default()
            },
        );
        for i in 0..40_000u64 {
            let mut r = base.clone();
            // A few very busy server:ports (past their 32 samples, and the total past its 512) and many quiet ones.
            let server = if next(3) == 0 { next(4) } else { next(3_000) } as u32;
            // A tenth of the servers IPv6, so that rows of both kinds are kept and sorted together.
            r.attempt.probe.key.server = if server % 10 == 3 {
                IpAddr::V6(std::net::Ipv6Addr::from(
                    0x2001_0db8_u128 << 96 | u128::from(server),
                ))
            } else {
                IpAddr::V4(std::net::Ipv4Addr::from(0xc612_0000 + server))
            };
            r.attempt.probe.key.server_port.0 = [443, 80, 22][next(3) as usize];
            r.attempt.syn_count = 1 + next(3) as u32;
            r.judgement.verdict = Verdict::ALL[next(6) as usize];
            r.judgement.target_hops = (next(4) > 0).then(|| HopCount(next(12) as u8));
            r.judgement.rejecter = (next(2) == 0).then(|| Rejecter {
                addr: r.attempt.probe.key.server,
                hops: (next(3) > 0).then(|| HopCount(next(12) as u8)),
                is_target: false,
                kind: crate::verdict::RejecterKind::Router,
            });
            r.judgement.rtt = match next(40) {
                0 => None,
                1 => Some(crate::time::Duration(-1_500_000)),
                2 => Some(crate::time::Duration(i64::MIN)),
                3 => Some(crate::time::Duration(5_000_123_000)),
                4 => Some(crate::time::Duration(0)),
                5 => Some(crate::time::Duration(1)),
                _ => Some(crate::time::Duration(next(300_000_000) as i64)),
            };
            if i % 7 == 0 {
                // A row that never sees an odd value stays in nanoseconds; most rows do see one.
                r.judgement.rtt = Some(crate::time::Duration(i as i64 * 1000));
            }
            compact.add(&r);
            plain.add(&r, Summary::MAX_ROWS);
        }
        // Past the row limit: the rest goes to the overflow row.
        let mut r = base;
        for i in 0..(Summary::MAX_ROWS as u32 + 500) {
            r.attempt.probe.key.server = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            r.judgement.rtt = Some(crate::time::Duration(i64::from(i % 977) * 1_000_000 / 7));
            compact.add(&r);
            plain.add(&r, Summary::MAX_ROWS);
        }
        assert!(plain.overflow.attempts > 0);
        same(&compact.rows(), &plain.rows());
        same(&[compact.totals()], &[plain.total.row(None, None)]);
    }

    #[test]
    fn counts_move_to_eight_bytes_when_four_no_longer_hold_them() {
        let mut acc = Acc::default();
        let r = base_report();
        acc.add(&r, &mut 1, ROW_RTT_SAMPLES);
        // As if 4,294,967,294 more attempts had come: the next two pass what 4 bytes hold.
        acc.counts.narrow[ATTEMPTS] = u32::MAX - 1;
        acc.counts.narrow[RETRANSMITTED] = 7;
        acc.add(&r, &mut 1, ROW_RTT_SAMPLES);
        assert!(acc.counts.wide.is_none());
        acc.add(&r, &mut 1, ROW_RTT_SAMPLES);
        assert!(acc.counts.wide.is_some());
        let row = acc.row(None, None);
        assert_eq!(row.attempts, u64::from(u32::MAX) + 1);
        assert_eq!(row.retransmitted, 7);
        assert_eq!(row.by_verdict.values().sum::<u64>(), 3);
        acc.add(&r, &mut 1, ROW_RTT_SAMPLES);
        assert_eq!(acc.row(None, None).attempts, u64::from(u32::MAX) + 2);
        assert_eq!(acc.counts.get(SEEN_RTTS), 4);
    }

    #[test]
    fn rtts_kept_as_nanoseconds_give_back_the_same_milliseconds() {
        for ns in [0i64, 1, 999, 1_000, 123_456_789, 4_294_967_295] {
            let ms = crate::time::Duration(ns).as_millis_f64();
            assert_eq!(
                as_nanos(ms).map(millis).map(f64::to_bits),
                Some(ms.to_bits())
            );
        }
        for ms in [
            -1.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            4_294_967.296,
            0.1 + 0.2,
            1e-7,
        ] {
            assert!(
                as_nanos(ms).is_none_or(|n| millis(n).to_bits() == ms.to_bits()),
                "{ms}"
            );
        }
    }
}
