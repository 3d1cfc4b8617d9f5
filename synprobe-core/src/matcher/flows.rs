//! Four-tuples stored compactly. Nearly every key is IPv4: packed, it takes 12 bytes instead of the 38 of a
//! [`FlowKey`], which matters for tables that hold tens of thousands of keys (attempts in flight, their expiry
//! queue, recently closed attempts). Other keys are kept whole beside them.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};

use hashbrown::HashTable;

use crate::model::{FlowKey, Port};

type RandomState = foldhash::fast::RandomState;

/// An IPv4 four-tuple: client, server, client port << 16 | server port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct V4Key(pub(super) [u32; 3]);

impl Hash for V4Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As two whole integers: hashed as an array, the key was read back from memory in 8-byte pieces just after
        // being written in 4-byte ones, which stalls (store forwarding fails) on every look-up.
        state.write_u64(u64::from(self.0[0]) << 32 | u64::from(self.0[1]));
        state.write_u32(self.0[2]);
    }
}

pub(super) fn pack(k: &FlowKey) -> Option<V4Key> {
    match (k.client, k.server) {
        (IpAddr::V4(c), IpAddr::V4(s)) => Some(V4Key([
            u32::from(c),
            u32::from(s),
            u32::from(k.client_port.0) << 16 | u32::from(k.server_port.0),
        ])),
        _ => None,
    }
}

fn unpack(k: V4Key) -> FlowKey {
    FlowKey {
        client: IpAddr::V4(Ipv4Addr::from(k.0[0])),
        server: IpAddr::V4(Ipv4Addr::from(k.0[1])),
        client_port: Port((k.0[2] >> 16) as u16),
        server_port: Port(k.0[2] as u16),
    }
}

/// A value that keeps the packed IPv4 four-tuple it is stored under in a [`FlowTable`] (which sets it).
pub(super) trait KeepsKey {
    fn kept_key(&self) -> V4Key;
    fn keep_key(&mut self, key: V4Key);
}

/// A map from four-tuples to values, as `HashMap<FlowKey, T>`, for the attempts in flight: the values sit in a
/// dense vector whose freed places are reused, and an IPv4 key is found through a table of 4-byte places, the
/// key itself kept in its value (read on a hit anyway), instead of a table of 16-byte key-and-place entries. The
/// table stays at a few hundred KB even when churn has grown it to twice its entries.
#[derive(Debug)]
pub(super) struct FlowTable<T> {
    /// Places in `values` of the IPv4 four-tuples, found by hashing the key kept in the value at that place.
    v4: HashTable<u32>,
    /// Places of the other four-tuples.
    other: HashMap<FlowKey, u32, RandomState>,
    values: Vec<Option<T>>,
    free: Vec<u32>,
    hasher: RandomState,
}

/// Whether the value at place `i` is kept under `key`.
fn kept_at<T: KeepsKey>(values: &[Option<T>], i: u32, key: V4Key) -> bool {
    values
        .get(i as usize)
        .and_then(Option::as_ref)
        .is_some_and(|v| v.kept_key() == key)
}

impl<T: KeepsKey> FlowTable<T> {
    pub(super) fn new() -> Self {
        FlowTable {
            v4: HashTable::new(),
            other: HashMap::with_hasher(RandomState::default()),
            values: Vec::new(),
            free: Vec::new(),
            hasher: RandomState::default(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    /// The place of `k`, if it is in the table.
    fn place(&self, k: &FlowKey) -> Option<usize> {
        let i = match pack(k) {
            Some(p) => {
                let h = self.hasher.hash_one(p);
                *self.v4.find(h, |&i| kept_at(&self.values, i, p))?
            }
            None => *self.other.get(k)?,
        };
        Some(i as usize)
    }

    pub(super) fn get(&self, k: &FlowKey) -> Option<&T> {
        let i = self.place(k)?;
        self.values.get(i)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, k: &FlowKey) -> Option<&mut T> {
        let i = self.place(k)?;
        self.values.get_mut(i)?.as_mut()
    }

    /// Insert (or replace) the value of `k`.
    pub(super) fn insert(&mut self, k: FlowKey, mut value: T) {
        let packed = pack(&k).map(|p| (p, self.hasher.hash_one(p)));
        let existing = match packed {
            Some((p, h)) => {
                value.keep_key(p);
                self.v4.find(h, |&i| kept_at(&self.values, i, p)).copied()
            }
            None => self.other.get(&k).copied(),
        };
        if let Some(place) = existing.and_then(|i| self.values.get_mut(i as usize)) {
            *place = Some(value);
            return;
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.values.push(None);
                (self.values.len() - 1) as u32
            }
        };
        if let Some(place) = self.values.get_mut(i as usize) {
            *place = Some(value);
        }
        match packed {
            Some((_, h)) => {
                let FlowTable {
                    v4, values, hasher, ..
                } = self;
                v4.insert_unique(h, i, |&j| {
                    let kept = values.get(j as usize).and_then(Option::as_ref);
                    hasher.hash_one(kept.map(T::kept_key).unwrap_or_default())
                });
            }
            None => {
                self.other.insert(k, i);
            }
        }
    }

    /// Remove the value of `k` if `due` says so (one look-up: the value is checked through the entry found).
    pub(super) fn remove_if(&mut self, k: &FlowKey, due: impl FnOnce(&T) -> bool) -> Option<T> {
        let i = match pack(k) {
            Some(p) => {
                let values = &self.values;
                let entry = self
                    .v4
                    .find_entry(self.hasher.hash_one(p), |&j| kept_at(values, j, p))
                    .ok()?;
                let i = *entry.get() as usize;
                if !values.get(i)?.as_ref().is_some_and(due) {
                    return None;
                }
                entry.remove();
                i
            }
            None => {
                let i = *self.other.get(k)? as usize;
                if !self.values.get(i)?.as_ref().is_some_and(due) {
                    return None;
                }
                self.other.remove(k);
                i
            }
        };
        self.free.push(i as u32);
        self.values.get_mut(i)?.take()
    }

    pub(super) fn remove(&mut self, k: &FlowKey) -> Option<T> {
        self.remove_if(k, |_| true)
    }

    /// Any one key (the next to take when emptying the table).
    pub(super) fn any_key(&self) -> Option<FlowKey> {
        match self.v4.iter().next() {
            Some(&i) => self
                .values
                .get(i as usize)
                .and_then(Option::as_ref)
                .map(|v| unpack(v.kept_key())),
            None => self.other.keys().next().copied(),
        }
    }

    /// Give the memory back once the table has emptied.
    pub(super) fn shrink_to_fit(&mut self) {
        if self.len() == 0 {
            self.values = Vec::new();
            self.free = Vec::new();
            self.v4 = HashTable::new();
            self.other = HashMap::with_hasher(self.hasher.clone());
        }
    }
}

/// A first-in first-out queue of four-tuples with a value each, as `VecDeque<(T, FlowKey)>`.
#[derive(Debug)]
pub(super) struct FlowQueue<T> {
    /// The value, the packed key, and whether the key is in `other` instead.
    items: VecDeque<(T, V4Key, bool)>,
    /// The keys that are not IPv4, in the same order.
    other: VecDeque<FlowKey>,
}

impl<T: Copy> FlowQueue<T> {
    pub(super) fn new() -> Self {
        FlowQueue {
            items: VecDeque::new(),
            other: VecDeque::new(),
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn push_back(&mut self, value: T, k: FlowKey) {
        match pack(&k) {
            Some(p) => self.items.push_back((value, p, false)),
            None => {
                self.items.push_back((value, V4Key::default(), true));
                self.other.push_back(k);
            }
        }
    }

    /// The value at the front, without its key.
    pub(super) fn front_value(&self) -> Option<T> {
        self.items.front().map(|&(value, ..)| value)
    }

    pub(super) fn pop_front(&mut self) -> Option<(T, FlowKey)> {
        let (value, p, is_other) = self.items.pop_front()?;
        if is_other {
            self.other.pop_front().map(|k| (value, k))
        } else {
            Some((value, unpack(p)))
        }
    }

    /// Give memory back once the queue has emptied.
    pub(super) fn shrink_to_fit(&mut self) {
        self.items.shrink_to_fit();
        self.other.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: &str, s: &str, cp: u16, sp: u16) -> FlowKey {
        FlowKey {
            client: c.parse().expect("addr"),
            server: s.parse().expect("addr"),
            client_port: Port(cp),
            server_port: Port(sp),
        }
    }

    /// A test value: a number, and the key the table keeps in it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct V(u32, V4Key);

    impl KeepsKey for V {
        fn kept_key(&self) -> V4Key {
            self.1
        }
        fn keep_key(&mut self, key: V4Key) {
            self.1 = key;
        }
    }

    #[test]
    fn maps_and_queues_behave_as_the_plain_collections() {
        let keys = [
            key("0.0.0.0", "0.0.0.0", 0, 0),
            key("198.18.0.2", "198.18.9.9", 40000, 443),
            key("198.18.9.9", "198.18.0.2", 443, 40000),
            key("255.255.255.255", "1.2.3.4", 65535, 1),
            key("2001:db8::2", "2001:db8::9", 40000, 443),
            key("::ffff:198.18.0.2", "198.18.9.9", 40000, 443),
            key("198.18.0.2", "2001:db8::9", 1, 2),
        ];
        let mut m = FlowTable::new();
        let mut plain = std::collections::HashMap::new();
        let mut q = FlowQueue::new();
        let mut plain_q = VecDeque::new();
        for (i, k) in keys.iter().chain(keys.iter().rev()).enumerate() {
            m.insert(*k, V(i as u32, V4Key::default()));
            plain.insert(*k, i as u32);
            q.push_back(i, *k);
            plain_q.push_back((i, *k));
            assert_eq!(m.len(), plain.len());
        }
        for k in &keys {
            assert_eq!(m.get(k).map(|v| v.0), plain.get(k).copied());
        }
        while let Some(k) = m.any_key() {
            assert_eq!(m.remove(&k).map(|v| v.0), plain.remove(&k));
            assert_eq!(m.remove(&k), None);
        }
        assert!(plain.is_empty());
        while let Some(value) = q.front_value() {
            assert_eq!(Some(value), plain_q.front().map(|f| f.0));
            assert_eq!(q.pop_front(), plain_q.pop_front());
        }
        assert_eq!((q.len(), plain_q.len()), (0, 0));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize, u32),
        Remove(usize),
        RemoveIfEven(usize),
        Bump(usize),
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever mix of inserts, replacements, removals and changes in place, over IPv4 and IPv6 keys that
        /// collide in their packed parts, the table answers as a `HashMap` does, and empties to nothing.
        #[test]
        fn the_table_behaves_as_a_hash_map(
            ops in proptest::collection::vec(
                prop_oneof![
                    (0usize..12, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
                    (0usize..12).prop_map(Op::Remove),
                    (0usize..12).prop_map(Op::RemoveIfEven),
                    (0usize..12).prop_map(Op::Bump),
                ],
                0..300,
            ),
        ) {
            let keys: Vec<FlowKey> = (0..12u16)
                .map(|n| match n % 3 {
                    0 => key("198.18.0.2", "198.18.9.9", 40000 + n, 443),
                    1 => key("198.18.9.9", "198.18.0.2", 443, 40000 + n),
                    _ => key("2001:db8::2", "2001:db8::9", 40000 + n, 443),
                })
                .collect();
            let mut t = FlowTable::new();
            let mut plain = std::collections::HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        t.insert(keys[k], V(v, V4Key::default()));
                        plain.insert(keys[k], v);
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(t.remove(&keys[k]).map(|v| v.0), plain.remove(&keys[k]))
                    }
                    Op::RemoveIfEven(k) => {
                        let want = plain.get(&keys[k]).is_some_and(|v| v % 2 == 0);
                        let got = t.remove_if(&keys[k], |v| v.0 % 2 == 0);
                        prop_assert_eq!(got.is_some(), want);
                        if want {
                            plain.remove(&keys[k]);
                        }
                    }
                    Op::Bump(k) => {
                        if let Some(v) = t.get_mut(&keys[k]) {
                            v.0 = v.0.wrapping_add(1);
                        }
                        if let Some(v) = plain.get_mut(&keys[k]) {
                            *v = v.wrapping_add(1);
                        }
                    }
                }
                prop_assert_eq!(t.len(), plain.len());
                for k in &keys {
                    prop_assert_eq!(t.get(k).map(|v| v.0), plain.get(k).copied());
                }
                // Places are reused: never more than the most keys there have been at once.
                prop_assert!(t.values.len() <= keys.len());
            }
            while let Some(k) = t.any_key() {
                prop_assert_eq!(t.remove(&k).map(|v| v.0), plain.remove(&k));
            }
            prop_assert!(plain.is_empty());
            t.shrink_to_fit();
            prop_assert_eq!(t.values.len(), 0);
        }
    }
}
