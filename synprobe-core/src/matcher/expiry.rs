//! When each attempt in flight is due to close, earliest deadline first.
//!
//! Nearly every deadline is pushed in order: a first SYN's is its time plus a fixed wait, and frames come in
//! time order. Those go to a first-in first-out queue. The others (a retransmission pushes its attempt's
//! deadline out by its sender's backoff, an ICMP error rebuilds an attempt with a shorter wait, a capture's
//! clock steps back) go to a binary heap. Popping takes the earlier of the two fronts.
//!
//! A single queue in push order (as before) let one attempt waiting out a long backoff hold back the closing of
//! every attempt queued after it: with a Linux client retrying for a minute, a minute's worth of attempts stayed
//! in the table.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::flows::FlowQueue;
use crate::model::FlowKey;
use crate::time::Timestamp;

/// A deadline pushed out of order.
#[derive(Debug)]
struct Late {
    deadline: Timestamp,
    /// Push order, so that equal deadlines pop in the order they were pushed.
    seq: u64,
    key: FlowKey,
}

impl PartialEq for Late {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Late {}

impl PartialOrd for Late {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Late {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// Deadlines and their four-tuples, popped earliest first (on a tie, the in-order queue first, then in push
/// order). Entries whose attempt has since moved its deadline stay queued; the matcher skips them.
#[derive(Debug)]
pub(super) struct Expiry {
    in_order: FlowQueue<Timestamp>,
    /// The last deadline pushed to `in_order`.
    last: Option<Timestamp>,
    late: BinaryHeap<Reverse<Late>>,
    seq: u64,
}

impl Expiry {
    pub(super) fn new() -> Self {
        Expiry {
            in_order: FlowQueue::new(),
            last: None,
            late: BinaryHeap::new(),
            seq: 0,
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.in_order.len() + self.late.len()
    }

    pub(super) fn push(&mut self, deadline: Timestamp, key: FlowKey) {
        if self.last.is_none_or(|last| deadline >= last) {
            self.in_order.push_back(deadline, key);
            self.last = Some(deadline);
        } else {
            self.late.push(Reverse(Late {
                deadline,
                seq: self.seq,
                key,
            }));
            self.seq += 1;
        }
    }

    /// The earliest deadline.
    pub(super) fn first(&self) -> Option<Timestamp> {
        match (self.in_order.front_value(), self.late.peek()) {
            (Some(a), Some(Reverse(b))) => Some(a.min(b.deadline)),
            (a, b) => a.or(b.map(|Reverse(l)| l.deadline)),
        }
    }

    /// Take the entry with the earliest deadline.
    pub(super) fn pop(&mut self) -> Option<(Timestamp, FlowKey)> {
        let from_heap = match (self.in_order.front_value(), self.late.peek()) {
            (Some(a), Some(Reverse(b))) => b.deadline < a,
            (None, Some(_)) => true,
            _ => false,
        };
        if from_heap {
            self.late.pop().map(|Reverse(l)| (l.deadline, l.key))
        } else {
            let popped = self.in_order.pop_front();
            if self.in_order.front_value().is_none() {
                self.last = None;
            }
            popped
        }
    }

    /// Give memory back once everything has closed.
    pub(super) fn shrink_to_fit(&mut self) {
        self.in_order.shrink_to_fit();
        self.late.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::Port;

    fn key(n: u16) -> FlowKey {
        FlowKey {
            client: "198.18.0.2".parse().expect("addr"),
            server: "2001:db8::9".parse().expect("addr"),
            client_port: Port(n),
            server_port: Port(443),
        }
    }

    proptest! {
        /// Whatever the order of pushes (mostly rising, with some out of order) and pops, entries come out earliest
        /// deadline first, equal deadlines in the order they were pushed into the same structure, none lost.
        #[test]
        fn pops_earliest_first(ops in proptest::collection::vec((0i64..50, any::<bool>(), 0u8..3), 0..300)) {
            let mut e = Expiry::new();
            let mut model: Vec<(Timestamp, u16)> = Vec::new();
            let mut t = 0i64;
            for (i, (step, back, pops)) in ops.into_iter().enumerate() {
                t += step;
                let deadline = Timestamp(if back { t - step * 3 } else { t });
                e.push(deadline, key(i as u16));
                model.push((deadline, i as u16));
                for _ in 0..pops {
                    let first = e.first();
                    let Some((d, k)) = e.pop() else { break };
                    prop_assert_eq!(Some(d), first);
                    let min = model.iter().map(|m| m.0).min();
                    prop_assert_eq!(Some(d), min, "not the earliest deadline");
                    let at = model.iter().position(|m| m.1 == k.client_port.0);
                    prop_assert!(at.is_some());
                    model.remove(at.unwrap_or(0));
                }
                prop_assert_eq!(e.len(), model.len());
            }
            let mut last = None;
            while let Some((d, _)) = e.pop() {
                prop_assert!(last.is_none_or(|l| l <= d));
                last = Some(d);
            }
        }
    }
}
