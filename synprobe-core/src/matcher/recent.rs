//! The recently closed attempts: four-tuple → ISN, in the order they closed, to tell a late reply from a stray.
//!
//! It holds tens of thousands of entries for the whole of a replay. As a `HashMap<FlowKey, u32>` beside a queue
//! of closures it took about 45 bytes an entry (more while the map grew). Here each entry is stored once, in
//! the queue (24 bytes: the packed IPv4 four-tuple, the ISN and the time), and look-up tables hold only 4-byte
//! sequence numbers into the queue. Keys that are not IPv4 (rare) sit in a side queue in the same order.
//!
//! Every closed attempt goes in and, later, out: once per closure, while look-ups are rare (only replies that
//! match nothing in flight). So the look-up tables are generations of [`GENERATION`] consecutive sequence
//! numbers each: an entry goes into the newest, small enough to stay in the cache, and leaves with its whole
//! generation once every entry of it has left the queue, instead of costing a probe of one large table on the
//! way in and another on the way out. A look-up asks the generations newest first, and skips sequence numbers
//! that have already left the queue.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::flows::{pack, V4Key};
use crate::model::FlowKey;
use crate::time::Timestamp;

type Hasher = foldhash::fast::RandomState;

/// One closure: the packed key (or, for a key that is not IPv4, its sequence number in the side queue), the ISN
/// and when it closed.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: V4Key,
    isn: u32,
    at: Timestamp,
}

/// Four-tuple → ISN of recently closed attempts, oldest first, with at most `cap` entries (the oldest goes when
/// a new one would exceed it).
#[derive(Debug)]
pub(super) struct Recent {
    cap: usize,
    entries: VecDeque<Entry>,
    /// Whether each entry's key is in `other` (same order as `entries`).
    is_other: VecDeque<bool>,
    other: VecDeque<FlowKey>,
    /// Sequence number of `entries.front()` and of `other.front()`; they count up, wrapping.
    front: u32,
    other_front: u32,
    /// Sequence numbers of the entries, found by key, in generations of [`GENERATION`] consecutive sequence
    /// numbers, oldest first; the first starts at `generations_front`. At most one per key in each generation:
    /// its latest closure.
    generations: VecDeque<HashTable<u32>>,
    generations_front: u32,
    /// Sequence numbers per generation ([`GENERATION`]; smaller in tests).
    generation: u32,
    /// An emptied generation's table, kept for the next one.
    spare: Option<HashTable<u32>>,
    hasher: Hasher,
}

/// Sequence numbers per look-up generation: as many as a table of 16,384 places holds before it would grow
/// (seven eighths), so no place is left empty for nothing.
const GENERATION: u32 = 14_336;

/// A key as it is looked up: packed when IPv4.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Probe<'a> {
    V4(V4Key),
    Other(&'a FlowKey),
}

impl Recent {
    /// An empty set holding at most `cap` entries (room for them is reserved when the first one comes).
    pub(super) fn new(cap: usize) -> Self {
        Self::with_generation(cap, GENERATION)
    }

    fn with_generation(cap: usize, generation: u32) -> Self {
        Recent {
            cap: cap.max(1),
            entries: VecDeque::new(),
            is_other: VecDeque::new(),
            other: VecDeque::new(),
            front: 0,
            other_front: 0,
            generations: VecDeque::new(),
            generations_front: 0,
            generation: generation.max(1),
            spare: None,
            hasher: Hasher::default(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// When the oldest entry closed.
    pub(super) fn front_at(&self) -> Option<Timestamp> {
        self.entries.front().map(|e| e.at)
    }

    /// The ISN of the latest closed attempt on `key`, if it is still remembered.
    pub(super) fn get(&self, key: &FlowKey) -> Option<u32> {
        let probe = match pack(key) {
            Some(p) => Probe::V4(p),
            None => Probe::Other(key),
        };
        let hash = hash_of(&self.hasher, probe);
        let seq = self
            .generations
            .iter()
            .rev()
            .find_map(|g| g.find(hash, |&s| self.probe_at(s) == Some(probe)))?;
        self.entry(*seq).map(|e| e.isn)
    }

    /// Remember that the attempt on `key` with `isn` closed at `at` (replacing an earlier closure on the same
    /// key); forgets the oldest entry first if the set is full.
    pub(super) fn insert(&mut self, key: &FlowKey, isn: u32, at: Timestamp) {
        if self.entries.len() >= self.cap {
            self.pop_front();
        }
        if self.entries.capacity() == 0 {
            self.entries.reserve_exact(self.cap);
            self.is_other.reserve_exact(self.cap);
        }
        let seq = self.front.wrapping_add(self.entries.len() as u32);
        let (entry_key, probe) = match pack(key) {
            Some(p) => (p, Probe::V4(p)),
            None => {
                let other_seq = self.other_front.wrapping_add(self.other.len() as u32);
                self.other.push_back(*key);
                (V4Key([other_seq, 0, 0]), Probe::Other(key))
            }
        };
        self.entries.push_back(Entry {
            key: entry_key,
            isn,
            at,
        });
        self.is_other.push_back(matches!(probe, Probe::Other(_)));
        let hash = hash_of(&self.hasher, probe);
        if self.generations.is_empty() {
            self.generations_front = seq;
        }
        let generation = seq.wrapping_sub(self.generations_front) / self.generation;
        if generation as usize >= self.generations.len() {
            let table = self.spare.take().unwrap_or_default();
            self.generations.push_back(table);
        }
        let Recent {
            entries,
            is_other,
            other,
            front,
            other_front,
            generations,
            hasher,
            ..
        } = self;
        let Some(newest) = generations.back_mut() else {
            return;
        };
        let view = View {
            entries,
            is_other,
            other,
            front: *front,
            other_front: *other_front,
        };
        match newest.find_mut(hash, |&s| view.probe_at(s) == Some(probe)) {
            Some(latest) => *latest = seq,
            None => {
                newest.insert_unique(hash, seq, |&s| {
                    view.probe_at(s).map_or(0, |p| hash_of(hasher, p))
                });
            }
        }
    }

    /// Forget the oldest entry (its key stays remembered if it closed again since).
    pub(super) fn pop_front(&mut self) {
        if self.entries.pop_front().is_none() {
            return;
        }
        if self.is_other.pop_front() == Some(true) {
            self.other.pop_front();
            self.other_front = self.other_front.wrapping_add(1);
        }
        self.front = self.front.wrapping_add(1);
        // The oldest generation leaves once all of its sequence numbers have (or everything has).
        if self.front.wrapping_sub(self.generations_front) >= self.generation
            || self.entries.is_empty()
        {
            if let Some(mut oldest) = self.generations.pop_front() {
                oldest.clear();
                self.spare = Some(oldest);
            }
            self.generations_front = self.generations_front.wrapping_add(self.generation);
            if self.entries.is_empty() {
                self.generations.clear();
            }
        }
    }

    fn entry(&self, seq: u32) -> Option<&Entry> {
        self.entries.get(seq.wrapping_sub(self.front) as usize)
    }

    fn probe_at(&self, seq: u32) -> Option<Probe<'_>> {
        View {
            entries: &self.entries,
            is_other: &self.is_other,
            other: &self.other,
            front: self.front,
            other_front: self.other_front,
        }
        .probe_at(seq)
    }
}

/// The queues, borrowed apart from the index (which is being changed while they are read).
struct View<'a> {
    entries: &'a VecDeque<Entry>,
    is_other: &'a VecDeque<bool>,
    other: &'a VecDeque<FlowKey>,
    front: u32,
    other_front: u32,
}

impl<'a> View<'a> {
    fn probe_at(&self, seq: u32) -> Option<Probe<'a>> {
        let i = seq.wrapping_sub(self.front) as usize;
        let entry = self.entries.get(i)?;
        if *self.is_other.get(i)? {
            let j = entry.key.0[0].wrapping_sub(self.other_front) as usize;
            self.other.get(j).map(Probe::Other)
        } else {
            Some(Probe::V4(entry.key))
        }
    }
}

fn hash_of(hasher: &Hasher, probe: Probe<'_>) -> u64 {
    match probe {
        Probe::V4(k) => hasher.hash_one(k),
        Probe::Other(k) => hasher.hash_one(k),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::model::Port;

    fn key(n: u8, v6: bool) -> FlowKey {
        let (client, server) = if v6 {
            (
                format!("2001:db8::{n:x}").parse().expect("addr"),
                "2001:db8::ffff".parse().expect("addr"),
            )
        } else {
            (
                format!("198.18.0.{n}").parse().expect("addr"),
                "198.18.9.9".parse().expect("addr"),
            )
        };
        FlowKey {
            client,
            server,
            client_port: Port(40000),
            server_port: Port(443),
        }
    }

    /// The plain model: a queue of closures and a map of each key's latest one.
    #[derive(Default)]
    struct Plain {
        queue: VecDeque<(FlowKey, u32, Timestamp, u64)>,
        latest: HashMap<FlowKey, u64>,
        next: u64,
    }

    impl Plain {
        fn insert(&mut self, cap: usize, k: FlowKey, isn: u32, at: Timestamp) {
            if self.queue.len() >= cap {
                self.pop_front();
            }
            self.queue.push_back((k, isn, at, self.next));
            self.latest.insert(k, self.next);
            self.next += 1;
        }

        fn pop_front(&mut self) {
            if let Some((k, _, _, n)) = self.queue.pop_front() {
                if self.latest.get(&k) == Some(&n) {
                    self.latest.remove(&k);
                }
            }
        }

        fn get(&self, k: &FlowKey) -> Option<u32> {
            let n = self.latest.get(k)?;
            self.queue.iter().find(|e| e.3 == *n).map(|e| e.1)
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, bool, u32),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..12, any::<bool>(), any::<u32>()).prop_map(|(n, v6, isn)| Op::Insert(n, v6, isn)),
            1 => Just(Op::Pop),
        ]
    }

    proptest! {
        /// Whatever is inserted and popped, in whatever mix of IPv4 and IPv6 keys and repeated keys, the set
        /// answers as the plain queue-and-map model does.
        #[test]
        fn behaves_as_a_queue_and_a_map(
            cap in 1usize..8,
            generation in 1u32..5,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let mut r = Recent::with_generation(cap, generation);
            let mut plain = Plain::default();
            for (t, op) in ops.into_iter().enumerate() {
                let at = Timestamp(t as i64);
                match op {
                    Op::Insert(n, v6, isn) => {
                        r.insert(&key(n, v6), isn, at);
                        plain.insert(cap, key(n, v6), isn, at);
                    }
                    Op::Pop => {
                        r.pop_front();
                        plain.pop_front();
                    }
                }
                prop_assert_eq!(r.len(), plain.queue.len());
                prop_assert_eq!(r.front_at(), plain.queue.front().map(|e| e.2));
                prop_assert!(r.len() <= cap);
                for n in 0..12 {
                    for v6 in [false, true] {
                        prop_assert_eq!(r.get(&key(n, v6)), plain.get(&key(n, v6)));
                    }
                }
                // Look-up entries are bounded: those of the entries still queued, and at most one generation's
                // worth that have left.
                let indexed: usize = r.generations.iter().map(|g| g.len()).sum();
                prop_assert!(indexed <= r.len() + generation as usize, "{} indexed for {}", indexed, r.len());
                prop_assert!(r.generations.len() <= r.len() / generation as usize + 2);
            }
        }
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Recent::with_generation(4, 3);
        r.front = u32::MAX - 2;
        r.other_front = u32::MAX - 1;
        for i in 0..20u32 {
            r.insert(&key((i % 6) as u8, i % 3 == 0), i, Timestamp(i64::from(i)));
        }
        assert_eq!(r.len(), 4);
        // The last four: 16 (v4 key 4), 17 (v4 key 5), 18 (v6 key 0), 19 (v4 key 1).
        assert_eq!(r.get(&key(4, false)), Some(16));
        assert_eq!(r.get(&key(5, false)), Some(17));
        assert_eq!(r.get(&key(0, true)), Some(18));
        assert_eq!(r.get(&key(1, false)), Some(19));
        assert_eq!(r.get(&key(3, true)), None);
    }
}
