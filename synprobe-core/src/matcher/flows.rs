//! Four-tuples stored compactly. Nearly every key is IPv4: packed, it takes 12 bytes instead of the 38 of a
//! [`FlowKey`], which matters for tables that hold tens of thousands of keys (attempts in flight, their expiry
//! queue, recently closed attempts). Other keys are kept whole beside them.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use crate::model::{FlowKey, Port};

type Hasher = foldhash::fast::RandomState;

/// An IPv4 four-tuple: client, server, client port << 16 | server port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(super) struct V4Key(pub(super) [u32; 3]);

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

/// A map from four-tuples, as `HashMap<FlowKey, V>`.
#[derive(Debug)]
pub(super) struct FlowMap<V> {
    v4: HashMap<V4Key, V, Hasher>,
    other: HashMap<FlowKey, V, Hasher>,
}

impl<V> FlowMap<V> {
    pub(super) fn new() -> Self {
        FlowMap {
            v4: HashMap::with_hasher(Hasher::default()),
            other: HashMap::with_hasher(Hasher::default()),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    pub(super) fn get(&self, k: &FlowKey) -> Option<&V> {
        match pack(k) {
            Some(p) => self.v4.get(&p),
            None => self.other.get(k),
        }
    }

    pub(super) fn insert(&mut self, k: FlowKey, v: V) -> Option<V> {
        match pack(&k) {
            Some(p) => self.v4.insert(p, v),
            None => self.other.insert(k, v),
        }
    }

    pub(super) fn remove(&mut self, k: &FlowKey) -> Option<V> {
        match pack(k) {
            Some(p) => self.v4.remove(&p),
            None => self.other.remove(k),
        }
    }

    /// Any one key (the next to take when emptying the map).
    pub(super) fn any_key(&self) -> Option<FlowKey> {
        match self.v4.keys().next() {
            Some(p) => Some(unpack(*p)),
            None => self.other.keys().next().copied(),
        }
    }

    /// Give memory back once the map has emptied.
    pub(super) fn shrink_to_fit(&mut self) {
        self.v4.shrink_to_fit();
        self.other.shrink_to_fit();
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
        let mut m = FlowMap::new();
        let mut plain = std::collections::HashMap::new();
        let mut q = FlowQueue::new();
        let mut plain_q = VecDeque::new();
        for (i, k) in keys.iter().chain(keys.iter().rev()).enumerate() {
            assert_eq!(m.insert(*k, i), plain.insert(*k, i));
            q.push_back(i, *k);
            plain_q.push_back((i, *k));
            assert_eq!(m.len(), plain.len());
        }
        for k in &keys {
            assert_eq!(m.get(k), plain.get(k));
        }
        while let Some(k) = m.any_key() {
            assert_eq!(m.remove(&k), plain.remove(&k));
            assert_eq!(m.remove(&k), None);
        }
        assert!(plain.is_empty());
        while let Some(value) = q.front_value() {
            assert_eq!(Some(value), plain_q.front().map(|f| f.0));
            assert_eq!(q.pop_front(), plain_q.pop_front());
        }
        assert_eq!((q.len(), plain_q.len()), (0, 0));
    }
}
