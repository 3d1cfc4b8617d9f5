//! When each attempt in flight is due to close, earliest deadline first.
//!
//! Deadlines come in a few kinds, each a fixed wait after the frame that set it: a first SYN's is the reply
//! window and 1 s after it; an answered attempt's retransmission, and an attempt rebuilt from an ICMP error, the
//! reply window. Frames come in time order, so deadlines of one wait are pushed in order: each wait gets a
//! first-in first-out lane of its own (a few lanes, reused once emptied). The rest (a silent attempt's
//! retransmission waits for its sender's next backoff, which varies; a capture's clock stepping back) go to a
//! binary heap. Popping takes the earliest of the fronts.
//!
//! A single queue in push order (as before) let one attempt waiting out a long backoff hold back the closing of
//! every attempt queued after it: with a Linux client retrying for a minute, a minute's worth of attempts stayed
//! in the table.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::flows::FlowQueue;
use crate::model::FlowKey;
use crate::time::{Duration, Timestamp};

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
    lanes: [Lane; LANES],
    late: BinaryHeap<Reverse<Late>>,
    seq: u64,
    /// [`Expiry::front`] as of the last push or pop: the matcher asks for the earliest deadline on every frame,
    /// and most frames push and pop nothing.
    front: Option<(Timestamp, usize)>,
}

/// A queue of deadlines that never decrease, all set the same wait after their frame.
#[derive(Debug)]
struct Lane {
    queue: FlowQueue<Timestamp>,
    /// The wait, while the lane holds anything.
    wait: Option<Duration>,
    /// The last deadline pushed.
    last: Timestamp,
}

/// In-order lanes: enough for the fixed waits above and a few more.
const LANES: usize = 4;

impl Expiry {
    pub(super) fn new() -> Self {
        Expiry {
            lanes: std::array::from_fn(|_| Lane {
                queue: FlowQueue::new(),
                wait: None,
                last: Timestamp(i64::MIN),
            }),
            late: BinaryHeap::new(),
            seq: 0,
            front: None,
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lanes.iter().map(|l| l.queue.len()).sum::<usize>() + self.late.len()
    }

    /// Queue `deadline` for `key`, set by a frame at `now`.
    pub(super) fn push(&mut self, deadline: Timestamp, key: FlowKey, now: Timestamp) {
        let wait = deadline.since(now);
        let lane = match self.lanes.iter().position(|l| l.wait == Some(wait)) {
            Some(i) => Some(i),
            None => self.lanes.iter().position(|l| l.wait.is_none()),
        };
        match lane.and_then(|i| self.lanes.get_mut(i)) {
            Some(lane) if lane.wait.is_none() || deadline >= lane.last => {
                // Behind the front of a lane that holds anything, a deadline changes no front.
                let was_empty = lane.wait.is_none();
                lane.queue.push_back(deadline, key);
                lane.wait = Some(wait);
                lane.last = deadline;
                if was_empty {
                    self.front = self.find_front();
                }
            }
            _ => {
                self.late.push(Reverse(Late {
                    deadline,
                    seq: self.seq,
                    key,
                }));
                self.seq += 1;
                self.front = self.find_front();
            }
        }
    }

    /// The earliest deadline, and where it is (a lane, or the heap as `LANES`); the first lane on a tie, the heap
    /// last.
    fn find_front(&self) -> Option<(Timestamp, usize)> {
        let mut front = self.late.peek().map(|Reverse(l)| (l.deadline, LANES));
        for (i, lane) in self.lanes.iter().enumerate().rev() {
            if let Some(d) = lane.queue.front_value() {
                if front.is_none_or(|(f, _)| d <= f) {
                    front = Some((d, i));
                }
            }
        }
        front
    }

    /// The earliest deadline.
    pub(super) fn first(&self) -> Option<Timestamp> {
        self.front.map(|(d, _)| d)
    }

    /// Take the entry with the earliest deadline.
    pub(super) fn pop(&mut self) -> Option<(Timestamp, FlowKey)> {
        let (_, at) = self.front?;
        let popped = match self.lanes.get_mut(at) {
            Some(lane) => {
                let popped = lane.queue.pop_front();
                if lane.queue.front_value().is_none() {
                    lane.wait = None;
                }
                popped
            }
            None => self.late.pop().map(|Reverse(l)| (l.deadline, l.key)),
        };
        self.front = self.find_front();
        popped
    }

    /// Give memory back once everything has closed.
    pub(super) fn shrink_to_fit(&mut self) {
        for lane in &mut self.lanes {
            lane.queue.shrink_to_fit();
        }
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
        /// Whatever the waits (a few fixed ones, odd ones, some set by a clock that steps back) and the mix of pushes
        /// and pops, entries come out earliest deadline first, none lost.
        #[test]
        fn pops_earliest_first(ops in proptest::collection::vec((0i64..50, 0u8..8, 0i64..40, 0u8..3), 0..300)) {
            let mut e = Expiry::new();
            let mut model: Vec<(Timestamp, u16)> = Vec::new();
            let mut t = 0i64;
            for (i, (step, kind, odd, pops)) in ops.into_iter().enumerate() {
                t += step;
                let (now, wait) = match kind {
                    0..=2 => (t, 400),
                    3 | 4 => (t, 300),
                    5 => (t, 300 + odd),
                    6 => (t - odd, 400),
                    _ => (t, odd),
                };
                let deadline = Timestamp(now + wait);
                e.push(deadline, key(i as u16), Timestamp(now));
                model.push((deadline, i as u16));
                for _ in 0..pops {
                    let first = e.first();
                    let Some((d, k)) = e.pop() else { break };
                    prop_assert_eq!(Some(d), first);
                    let min = model.iter().map(|m| m.0).min();
                    prop_assert_eq!(Some(d), min, "not the earliest deadline");
                    let at = model.iter().position(|m| m.1 == k.client_port.0 && m.0 == d);
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
