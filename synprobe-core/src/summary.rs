//! Per server:port summaries of judged attempts: attempts by verdict, hop distances seen, median RTT.
//! Bounded: at most [`Summary::MAX_ROWS`] rows (the rest is folded into one overflow row) and a fixed
//! reservoir of RTT samples per row.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::engine::Report;
use crate::verdict::Verdict;

type Hasher = foldhash::fast::RandomState;

const RTT_SAMPLES: usize = 512;
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
    /// Median round-trip time of the deciding replies, in milliseconds (over a sample of up to 512).
    pub median_rtt_ms: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct Acc {
    attempts: u64,
    by_verdict: [u64; 6],
    retransmitted: u64,
    hops: Vec<u8>,
    rtts: Vec<f64>,
    seen_rtts: u64,
}

impl Acc {
    fn add(&mut self, r: &Report, rng: &mut u64) {
        self.attempts += 1;
        let j = &r.judgement;
        if let Some(i) = Verdict::ALL.iter().position(|v| *v == j.verdict) {
            self.by_verdict[i] += 1;
        }
        if r.attempt.syn_count > 1 {
            self.retransmitted += 1;
        }
        let hop = j.rejecter.and_then(|x| x.hops).or(j.target_hops);
        if let Some(h) = hop {
            if !self.hops.contains(&h.0) && self.hops.len() < MAX_HOPS_LISTED {
                self.hops.push(h.0);
                self.hops.sort_unstable();
            }
        }
        if let Some(rtt) = j.rtt_ms {
            self.seen_rtts += 1;
            if self.rtts.len() < RTT_SAMPLES {
                self.rtts.push(rtt);
            } else {
                // Reservoir sampling with a small deterministic generator: the same input, the same summary.
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                let slot = (*rng % self.seen_rtts) as usize;
                if slot < RTT_SAMPLES {
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

/// Accumulates judged attempts into per server:port rows and totals.
#[derive(Debug, Clone)]
pub struct Summary {
    rows: HashMap<(IpAddr, u16), Acc, Hasher>,
    overflow: Acc,
    total: Acc,
    rng: u64,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            rows: HashMap::with_hasher(Hasher::default()),
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
        let key = (
            r.attempt.probe.key.server,
            r.attempt.probe.key.server_port.0,
        );
        self.total.add(r, &mut self.rng);
        if let Some(acc) = self.rows.get_mut(&key) {
            acc.add(r, &mut self.rng);
        } else if self.rows.len() < Self::MAX_ROWS {
            let mut acc = Acc::default();
            acc.add(r, &mut self.rng);
            self.rows.insert(key, acc);
        } else {
            self.overflow.add(r, &mut self.rng);
        }
    }

    /// The rows, sorted by server then port; the overflow row last if it has attempts.
    pub fn rows(&self) -> Vec<SummaryRow> {
        let mut keys: Vec<&(IpAddr, u16)> = self.rows.keys().collect();
        keys.sort();
        let mut out: Vec<SummaryRow> = keys
            .into_iter()
            .filter_map(|k| self.rows.get(k).map(|a| a.row(Some(k.0), Some(k.1))))
            .collect();
        if self.overflow.attempts > 0 {
            out.push(self.overflow.row(None, None));
        }
        out
    }

    /// Totals over every attempt.
    pub fn totals(&self) -> SummaryRow {
        self.total.row(None, None)
    }
}
