//! Per server:port summaries of judged attempts: attempts by verdict, hop distances seen, median RTT.
//!
//! Bounded by design, whatever the length of the capture and the number of distinct server:ports:
//! - The rows are the heaviest K server:ports by attempts ([`Summary::with_rows`], default
//!   [`Summary::DEFAULT_ROWS`]), kept with the Space-Saving heavy-hitter sketch: while there is room every new
//!   server:port gets a row; once there is none, a new one takes the place of the row with the smallest count
//!   (of those, the one that reached it first) and inherits that count as its error bound. A row's own
//!   statistics count exactly what came since it was admitted; those of the row it replaced fold into the rest
//!   row, so the rows and the rest add up to the totals exactly. A server:port with more than 1/K of the
//!   attempts always has a row. Each attempt costs a hash look-up and O(1) in the sketch's list of buckets of
//!   equal counts.
//! - A fixed reservoir of RTT samples per row: 32 for a server:port, 512 for the total and rest rows. Past that
//!   many replies the median is that of a uniform random sample (reservoir sampling, with a fixed seed: the same
//!   input gives the same summary). A server:port's replies mostly come from one host at one distance, so 32
//!   samples place its median well. The samples of a row that gives way join the rest row's reservoir as
//!   replies of their own.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::engine::Report;
use crate::verdict::Verdict;

type Hasher = foldhash::fast::RandomState;

/// RTT samples kept for a server:port row.
const ROW_RTT_SAMPLES: usize = 32;
/// RTT samples kept for the total and the rest rows (one of each).
const TOTAL_RTT_SAMPLES: usize = 512;
const MAX_HOPS_LISTED: usize = 8;

/// One server:port row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// The server address (None for the totals and the rest row).
    pub target: Option<IpAddr>,
    /// The server port (None for the totals and the rest row).
    pub port: Option<u16>,
    /// Attempts (for a server:port: exactly those since its row was admitted).
    pub attempts: u64,
    /// For a server:port: at most this many of its attempts came before its row was admitted, and are counted in
    /// the rest row (Space-Saving's error bound: its true count lies between `attempts` and
    /// `attempts + error_bound`). 0 for a row admitted while there was room, for the totals and the rest row.
    #[serde(default)]
    pub error_bound: u64,
    /// Attempts by verdict (kebab-case keys; verdicts with no attempt are left out).
    pub by_verdict: BTreeMap<Verdict, u64>,
    /// Attempts with at least one SYN retransmission.
    pub retransmitted: u64,
    /// Distinct hop distances of the deciding replies (rejecter or target), ascending, at most 8.
    pub hops: Vec<u8>,
    /// Median round-trip time of the deciding replies, in milliseconds (over a uniform sample of up to 32 of
    /// them; up to 512 for the total and rest rows).
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
        self.add(i, 1)
    }

    /// Add `n` to count `i` and give its new value.
    fn add(&mut self, i: usize, n: u64) -> u64 {
        if let Some(wide) = &mut self.wide {
            wide[i] = wide[i].saturating_add(n);
            return wide[i];
        }
        let sum = u64::from(self.narrow[i]).saturating_add(n);
        match u32::try_from(sum) {
            Ok(v) => self.narrow[i] = v,
            Err(_) => {
                let mut wide = Box::new(self.narrow.map(u64::from));
                wide[i] = sum;
                self.wide = Some(wide);
            }
        }
        sum
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
            self.note_hop(h.0);
        }
        if let Some(rtt) = j.rtt_ms() {
            self.sample(rtt, rng, cap);
        }
    }

    fn note_hop(&mut self, h: u8) {
        let n = usize::from(self.hops_len);
        if !self.hops[..n].contains(&h) && n < MAX_HOPS_LISTED {
            self.hops[n] = h;
            self.hops_len += 1;
            self.hops[..=n].sort_unstable();
        }
    }

    /// One more RTT, into a reservoir of up to `cap`.
    fn sample(&mut self, rtt: f64, rng: &mut u64, cap: usize) {
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

    /// Fold `other` in: its counts and hop distances, and its RTT samples as replies of their own.
    fn absorb(&mut self, other: &Acc, rng: &mut u64, cap: usize) {
        for i in ATTEMPTS..SEEN_RTTS {
            self.counts.add(i, other.counts.get(i));
        }
        for &h in &other.hops[..usize::from(other.hops_len)] {
            self.note_hop(h);
        }
        match &other.rtts {
            Rtts::Nanos(v) => v.iter().for_each(|&n| self.sample(millis(n), rng, cap)),
            Rtts::Millis(v) => v.iter().for_each(|&ms| self.sample(ms, rng, cap)),
        }
    }

    /// Empty again, keeping the memory of its samples.
    fn clear(&mut self) {
        self.counts = Counts::default();
        self.hops_len = 0;
        match &mut self.rtts {
            Rtts::Nanos(v) => v.clear(),
            Rtts::Millis(_) => self.rtts = Rtts::default(),
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
            error_bound: 0,
        }
    }
}

/// No row or bucket.
const NIL: u32 = u32::MAX;

/// A kept server:port row, in the bucket of its count.
#[derive(Debug, Clone)]
struct Row {
    key: (IpAddr, u16),
    acc: Acc,
    error_bound: u64,
    /// Space-Saving's count: `error_bound` plus the attempts since admission.
    count: u64,
    bucket: u32,
    /// The rows of its bucket that reached its count just before and just after it.
    before: u32,
    after: u32,
}

/// The rows with one count, in the order they reached it (Space-Saving's "Stream-Summary": buckets in a list by
/// count, so that finding the lightest row and moving a row up by one are O(1)).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    count: u64,
    first: u32,
    last: u32,
    /// The buckets with the next lower and the next higher count.
    lower: u32,
    higher: u32,
}

/// Accumulates judged attempts into the heaviest K server:port rows, a rest row and totals (see the module).
#[derive(Debug, Clone)]
pub struct Summary {
    max_rows: usize,
    /// Where each kept server:port's row is in `rows`.
    index: HashMap<(IpAddr, u16), u32, Hasher>,
    rows: Vec<Row>,
    buckets: Vec<Bucket>,
    /// Buckets emptied, to be used again.
    free_buckets: Vec<u32>,
    /// The bucket with the lowest count.
    lightest: u32,
    rest: Acc,
    total: Acc,
    rng: u64,
}

impl Default for Summary {
    fn default() -> Self {
        Summary::with_rows(Summary::DEFAULT_ROWS)
    }
}

impl Summary {
    /// The server:port rows kept by [`Summary::default`].
    pub const DEFAULT_ROWS: usize = 1024;

    /// A summary that keeps the heaviest `rows` server:ports (0: every attempt goes to the rest row).
    pub fn with_rows(rows: usize) -> Self {
        Summary {
            max_rows: rows.min(NIL as usize - 1),
            index: HashMap::with_hasher(Hasher::default()),
            rows: Vec::new(),
            buckets: Vec::new(),
            free_buckets: Vec::new(),
            lightest: NIL,
            rest: Acc::default(),
            total: Acc::default(),
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// The most server:port rows kept.
    pub fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// Add one judged attempt.
    pub fn add(&mut self, r: &Report) {
        let key = (
            r.attempt.probe.key.server,
            r.attempt.probe.key.server_port.0,
        );
        self.total.add(r, &mut self.rng, TOTAL_RTT_SAMPLES);
        if let Some(&i) = self.index.get(&key) {
            self.rows[i as usize]
                .acc
                .add(r, &mut self.rng, ROW_RTT_SAMPLES);
            self.count_up(i);
        } else if self.rows.len() < self.max_rows {
            let i = self.rows.len() as u32;
            let mut acc = Acc::default();
            acc.add(r, &mut self.rng, ROW_RTT_SAMPLES);
            self.rows.push(Row {
                key,
                acc,
                error_bound: 0,
                count: 1,
                bucket: NIL,
                before: NIL,
                after: NIL,
            });
            self.index.insert(key, i);
            let b = match self.lightest {
                l if l != NIL && self.buckets[l as usize].count == 1 => l,
                l => {
                    let b = self.new_bucket(1, NIL, l);
                    self.lightest = b;
                    b
                }
            };
            self.append(b, i);
        } else if self.lightest != NIL {
            // Space-Saving: the new server:port takes the place of the row with the smallest count (of those, the
            // first to reach it), and that count plus one.
            let i = self.buckets[self.lightest as usize].first;
            let row = &mut self.rows[i as usize];
            self.rest.absorb(&row.acc, &mut self.rng, TOTAL_RTT_SAMPLES);
            self.index.remove(&row.key);
            row.key = key;
            row.acc.clear();
            row.acc.add(r, &mut self.rng, ROW_RTT_SAMPLES);
            row.error_bound = row.count;
            self.index.insert(key, i);
            self.count_up(i);
        } else {
            self.rest.add(r, &mut self.rng, TOTAL_RTT_SAMPLES);
        }
    }

    /// A bucket for `count`, linked between `lower` and `higher`.
    fn new_bucket(&mut self, count: u64, lower: u32, higher: u32) -> u32 {
        let bucket = Bucket {
            count,
            first: NIL,
            last: NIL,
            lower,
            higher,
        };
        let b = match self.free_buckets.pop() {
            Some(b) => {
                self.buckets[b as usize] = bucket;
                b
            }
            None => {
                self.buckets.push(bucket);
                self.buckets.len() as u32 - 1
            }
        };
        if lower != NIL {
            self.buckets[lower as usize].higher = b;
        }
        if higher != NIL {
            self.buckets[higher as usize].lower = b;
        }
        b
    }

    /// Put row `i` last in bucket `b`.
    fn append(&mut self, b: u32, i: u32) {
        let last = self.buckets[b as usize].last;
        let row = &mut self.rows[i as usize];
        row.bucket = b;
        row.before = last;
        row.after = NIL;
        match last {
            NIL => self.buckets[b as usize].first = i,
            l => self.rows[l as usize].after = i,
        }
        self.buckets[b as usize].last = i;
    }

    /// Row `i`'s count goes up by one: it moves to the end of the next bucket up, and its bucket goes if empty.
    fn count_up(&mut self, i: u32) {
        let (b, before, after, count) = {
            let row = &self.rows[i as usize];
            (row.bucket, row.before, row.after, row.count + 1)
        };
        match before {
            NIL => self.buckets[b as usize].first = after,
            x => self.rows[x as usize].after = after,
        }
        match after {
            NIL => self.buckets[b as usize].last = before,
            x => self.rows[x as usize].before = before,
        }
        let higher = self.buckets[b as usize].higher;
        let up = if higher != NIL && self.buckets[higher as usize].count == count {
            higher
        } else {
            self.new_bucket(count, b, higher)
        };
        self.rows[i as usize].count = count;
        self.append(up, i);
        if self.buckets[b as usize].first == NIL {
            let Bucket { lower, higher, .. } = self.buckets[b as usize];
            match lower {
                NIL => self.lightest = higher,
                l => self.buckets[l as usize].higher = higher,
            }
            if higher != NIL {
                self.buckets[higher as usize].lower = lower;
            }
            self.free_buckets.push(b);
        }
    }

    /// The kept server:port rows, sorted by server then port; then the rest row (no target, no port) if it has
    /// attempts. The rows and the rest add up to [`Summary::totals`] in attempts, by verdict and retransmitted.
    pub fn rows(&self) -> Vec<SummaryRow> {
        let mut kept: Vec<&Row> = self.rows.iter().collect();
        kept.sort_unstable_by_key(|r| r.key);
        let mut out: Vec<SummaryRow> = kept
            .into_iter()
            .map(|r| SummaryRow {
                error_bound: r.error_bound,
                ..r.acc.row(Some(r.key.0), Some(r.key.1))
            })
            .collect();
        if self.rest.attempts() > 0 {
            out.push(self.rest.row(None, None));
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

    /// The summary written plainly (rows in a map of plain vectors, the row to replace found by a scan): the
    /// compact one must agree with it.
    #[derive(Default)]
    struct Plain {
        rows: std::collections::BTreeMap<(IpAddr, u16), PlainRow>,
        rest: PlainAcc,
        total: PlainAcc,
        rng: u64,
        changes: u64,
    }

    #[derive(Default)]
    struct PlainRow {
        acc: PlainAcc,
        count: u64,
        error_bound: u64,
        /// When its count last changed (a number from a counter of such changes).
        reached: u64,
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
                self.hop(h.0);
            }
            if let Some(rtt) = j.rtt_ms() {
                self.rtt(rtt, rng, cap);
            }
        }

        fn hop(&mut self, h: u8) {
            if !self.hops.contains(&h) && self.hops.len() < MAX_HOPS_LISTED {
                self.hops.push(h);
                self.hops.sort_unstable();
            }
        }

        fn rtt(&mut self, rtt: f64, rng: &mut u64, cap: usize) {
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

        fn absorb(&mut self, other: &PlainAcc, rng: &mut u64, cap: usize) {
            self.attempts += other.attempts;
            for (n, m) in self.by_verdict.iter_mut().zip(other.by_verdict) {
                *n += m;
            }
            self.retransmitted += other.retransmitted;
            for &h in &other.hops {
                self.hop(h);
            }
            for &ms in &other.rtts {
                self.rtt(ms, rng, cap);
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
                error_bound: 0,
            }
        }
    }

    impl Plain {
        fn new() -> Self {
            Plain {
                rng: 0x9e37_79b9_7f4a_7c15,
                ..Plain::default()
            }
        }

        /// Space-Saving as its paper states it: a new key when the table is full replaces the key with the
        /// smallest count (here the first of those to reach it), taking that count plus one.
        fn add(&mut self, r: &Report, max_rows: usize) {
            let key = (
                r.attempt.probe.key.server,
                r.attempt.probe.key.server_port.0,
            );
            self.total.add(r, &mut self.rng, TOTAL_RTT_SAMPLES);
            self.changes += 1;
            if let Some(row) = self.rows.get_mut(&key) {
                row.acc.add(r, &mut self.rng, ROW_RTT_SAMPLES);
                row.count += 1;
                row.reached = self.changes;
                return;
            }
            if max_rows == 0 {
                self.rest.add(r, &mut self.rng, TOTAL_RTT_SAMPLES);
                return;
            }
            let mut error_bound = 0;
            if self.rows.len() == max_rows {
                let victim = *self
                    .rows
                    .iter()
                    .min_by_key(|(_, row)| (row.count, row.reached))
                    .map(|(k, _)| k)
                    .expect("a full table has rows");
                let gone = self.rows.remove(&victim).expect("the victim");
                self.rest
                    .absorb(&gone.acc, &mut self.rng, TOTAL_RTT_SAMPLES);
                error_bound = gone.count;
            }
            let mut acc = PlainAcc::default();
            acc.add(r, &mut self.rng, ROW_RTT_SAMPLES);
            self.rows.insert(
                key,
                PlainRow {
                    acc,
                    count: error_bound + 1,
                    error_bound,
                    reached: self.changes,
                },
            );
        }

        fn rows(&self) -> Vec<SummaryRow> {
            let mut out: Vec<SummaryRow> = self
                .rows
                .iter()
                .map(|(k, row)| SummaryRow {
                    error_bound: row.error_bound,
                    ..row.acc.row(Some(k.0), Some(k.1))
                })
                .collect();
            if self.rest.attempts > 0 {
                out.push(self.rest.row(None, None));
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
                (x.target, x.port, x.attempts, x.error_bound),
                (y.target, y.port, y.attempts, y.error_bound)
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
        let acc = &summary.rows.first().expect("one row").acc;
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

    /// A stream of reports: a few very busy server:ports (past their 32 samples, and the total past its 512)
    /// and many quiet ones, a tenth of them IPv6, with every kind of RTT.
    fn stream(n: u64, seed: u64) -> impl Iterator<Item = Report> {
        let base = base_report();
        let mut rng = seed;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        (0..n).map(move |i| {
            let mut r = base.clone();
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
            r
        })
    }

    /// The rows and the rest add up to the totals.
    fn adds_up(rows: &[SummaryRow], totals: &SummaryRow) {
        let sum = |f: &dyn Fn(&SummaryRow) -> u64| rows.iter().map(f).sum::<u64>();
        assert_eq!(sum(&|r| r.attempts), totals.attempts);
        assert_eq!(sum(&|r| r.retransmitted), totals.retransmitted);
        for v in Verdict::ALL {
            let of = |r: &SummaryRow| r.by_verdict.get(&v).copied().unwrap_or(0);
            assert_eq!(sum(&of), of(totals), "{v}");
        }
    }

    #[test]
    fn the_compact_summary_agrees_with_the_plain_one() {
        // No room at all, a little, a tenth of the server:ports, the default, and room for all of them.
        for (k, seed) in [
            (0, 1u64),
            (1, 2),
            (5, 3),
            (64, 4),
            (900, 5),
            (Summary::DEFAULT_ROWS, 6),
            (20_000, 7),
        ] {
            let (mut compact, mut plain) = (Summary::with_rows(k), Plain::new());
            for r in stream(40_000, 0x1234_5678_9abc_def1 ^ seed) {
                compact.add(&r);
                plain.add(&r, k);
            }
            assert_eq!(plain.rest.attempts > 0, k < 9_000, "k = {k}");
            let rows = compact.rows();
            same(&rows, &plain.rows());
            same(&[compact.totals()], &[plain.total.row(None, None)]);
            adds_up(&rows, &compact.totals());
            assert!(rows.len() <= k + 1);
        }
    }

    /// The heaviest server:ports keep their rows, with exact counts when they were admitted while there was room,
    /// and a server:port with more than 1/K of the attempts always has a row, its count within its error bound.
    #[test]
    fn the_heaviest_server_ports_keep_their_rows() {
        let mut summary = Summary::with_rows(16);
        let mut r = base_report();
        let heavy = |i: u32| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let mut truth = std::collections::HashMap::new();
        for i in 0..50_000u32 {
            // Four heavy servers (a fifth of the attempts each, from the start), and a scan of distinct ones.
            let server = if i % 5 < 4 {
                heavy(i % 5)
            } else {
                IpAddr::V4(std::net::Ipv4Addr::from(0xc000_0000 + i))
            };
            r.attempt.probe.key.server = server;
            *truth.entry(server).or_insert(0u64) += 1;
            summary.add(&r);
        }
        let rows = summary.rows();
        assert_eq!(rows.len(), 17);
        for i in 0..4 {
            let row = rows
                .iter()
                .find(|x| x.target == Some(heavy(i)))
                .expect("a heavy row");
            assert_eq!((row.attempts, row.error_bound), (truth[&heavy(i)], 0));
        }
        for row in rows.iter().filter(|x| x.target.is_some()) {
            let t = truth[&row.target.expect("target")];
            assert!(row.attempts <= t && t <= row.attempts + row.error_bound);
        }
        let rest = rows.last().expect("the rest row");
        assert_eq!((rest.target, rest.port, rest.error_bound), (None, None, 0));
        adds_up(&rows, &summary.totals());
    }

    /// A million distinct server:ports (a scan) leave K rows: nothing grows with them.
    #[test]
    fn a_million_distinct_server_ports_keep_k_rows() {
        let mut summary = Summary::default();
        let mut r = base_report();
        for i in 0..1_000_000u32 {
            r.attempt.probe.key.server = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            r.attempt.probe.key.server_port.0 = (i % 65_536) as u16;
            r.judgement.rtt = Some(crate::time::Duration(i64::from(i % 977) * 1_000_000 / 7));
            summary.add(&r);
            if i == 2 * Summary::DEFAULT_ROWS as u32 {
                // Full: from here on, nothing more is allocated for rows.
                assert_eq!(summary.rows.len(), Summary::DEFAULT_ROWS);
            }
        }
        let k = Summary::DEFAULT_ROWS;
        assert_eq!(summary.rows.len(), k);
        assert!(summary.rows.capacity() <= 2 * k);
        assert_eq!(summary.index.len(), k);
        // The buckets: no more than rows, ascending counts from the lightest, each row in its count's.
        assert!(summary.buckets.len() <= k);
        let (mut b, mut seen, mut last) = (summary.lightest, 0, 0);
        while b != NIL {
            let bucket = summary.buckets[b as usize];
            assert!(bucket.count > last);
            last = bucket.count;
            let mut i = bucket.first;
            while i != NIL {
                let row = &summary.rows[i as usize];
                assert_eq!((row.count, row.bucket), (bucket.count, b));
                seen += 1;
                i = row.after;
            }
            b = bucket.higher;
        }
        assert_eq!(seen, k);
        assert!(summary.index.capacity() <= 4 * k);
        assert!(summary
            .rows
            .iter()
            .all(|r| r.acc.rtts.len() <= ROW_RTT_SAMPLES));
        assert!(summary.rest.rtts.len() <= TOTAL_RTT_SAMPLES);
        let rows = summary.rows();
        assert_eq!(rows.len(), k + 1);
        assert_eq!(summary.totals().attempts, 1_000_000);
        adds_up(&rows, &summary.totals());
        assert!(rows.last().expect("rest").median_rtt_ms.is_some());
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
