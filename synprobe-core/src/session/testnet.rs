//! A scripted network for the plans' tests: a chain of Linux routers with the target at the end, rules per
//! port, and the routers' (and the target's) ICMP buckets as the lab measured them.

use std::collections::HashMap;
use std::net::IpAddr;

use super::Outgoing;
use crate::build::{echo as build_echo, icmp_error, IpSpec, QuoteLen, TcpSpec};
use crate::time::{Duration, Timestamp};
use crate::wire::{parse_frame, Transport};
use crate::LinkType;

pub(crate) const CLIENT: &str = "198.18.0.2";
pub(crate) const TARGET: &str = "198.18.3.2";

pub(crate) fn a(s: &str) -> IpAddr {
    s.parse().expect("address")
}
pub(crate) fn router(hop: u8) -> IpAddr {
    a(&format!("198.18.{hop}.1"))
}

/// What sits in front of or on the target, for one port (other ports: the host's stack, closed; 80 open).
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Rule {
    None,
    RejectRstAtRouter(u8),
    RejectRstOnHost,
    DropAtRouter(u8),
    DropOnHost,
    IcmpAdminAtRouter(u8),
    /// DNAT on the target to a backend one hop beyond it, where nothing listens.
    ForwardedClosed,
    /// REJECT with ICMP port unreachable on the target, from its own ICMP bucket.
    IcmpPortOnHost,
    /// A listener on the target.
    Open,
}

/// The network: a chain of routers, the target at `hops`, rules per port, and the routers' ICMP buckets.
pub(crate) struct Net {
    pub(crate) hops: u8,
    pub(crate) rules: Vec<(u16, Rule)>,
    /// A route error for the whole address at this router (host unreachable, quoted TTL not decremented).
    pub(crate) route_error_at: Option<u8>,
    /// Routers that never send time-exceeded.
    pub(crate) silent: Vec<u8>,
    /// Per router: (tokens, last refill) of a Linux-like bucket: burst 6, one a second, a route error
    /// costs 2.
    pub(crate) buckets: HashMap<u8, (f64, Timestamp)>,
    pub(crate) limited: bool,
}

impl Net {
    pub(crate) fn new(hops: u8) -> Net {
        Net {
            hops,
            rules: Vec::new(),
            route_error_at: None,
            silent: Vec::new(),
            buckets: HashMap::new(),
            limited: true,
        }
    }
    pub(crate) fn rule(mut self, port: u16, r: Rule) -> Net {
        self.rules.push((port, r));
        self
    }
    fn allow(&mut self, hop: u8, now: Timestamp, cost: f64) -> bool {
        if !self.limited {
            return true;
        }
        let (tokens, at) = self.buckets.get(&hop).copied().unwrap_or((6.0, now));
        let tokens = (tokens + now.since(at).as_secs_f64()).min(6.0);
        if tokens >= cost {
            self.buckets.insert(hop, (tokens - cost, now));
            true
        } else {
            self.buckets.insert(hop, (tokens, now));
            false
        }
    }

    /// Linux as the lab measured it: routers check the TTL before their FORWARD rules; every reply starts
    /// at TTL 64; the stack's RST echoes the DSCP, REJECT sends 0; end hosts and REJECT drop bad checksums.
    pub(crate) fn respond(&mut self, now: Timestamp, o: &Outgoing) -> Vec<(Duration, Vec<u8>)> {
        let ms = |x: i64| Duration::from_millis(x);
        let p = parse_frame(LinkType::RAW, &o.datagram).expect("parses");
        let back = |from: IpAddr, from_hop: u8| IpSpec::new(from, a(CLIENT)).ttl(65 - from_hop);
        let dport = p.tcp().map(|t| t.dst_port);
        let rule = dport
            .and_then(|d| self.rules.iter().find(|r| r.0 == d).map(|r| r.1))
            .unwrap_or(Rule::None);
        if let Some(h) = self.route_error_at {
            if o.ttl >= h {
                if !self.allow(h, now, 2.0) {
                    return vec![];
                }
                let mut quoted = o.datagram.clone();
                quoted[8] = o.ttl - (h - 1);
                let e = icmp_error(&back(router(h), h), 3, 1, &quoted, QuoteLen::Full)
                    .expect("unreach");
                return vec![(ms(2), e)];
            }
        }
        let intercepted_at = match rule {
            Rule::RejectRstAtRouter(h) | Rule::DropAtRouter(h) | Rule::IcmpAdminAtRouter(h) => h,
            _ => self.hops,
        };
        // Time exceeded where the TTL runs out, before any rule further on; the target forwards a
        // forwarded port, so a SYN expiring there draws time-exceeded from the target's own address.
        let forwarded = rule == Rule::ForwardedClosed;
        if o.ttl <= intercepted_at && (o.ttl < self.hops || (forwarded && o.ttl == self.hops)) {
            if self.silent.contains(&o.ttl) || !self.allow(o.ttl, now, 1.0) {
                return vec![];
            }
            let from = if o.ttl == self.hops {
                a(TARGET)
            } else {
                router(o.ttl)
            };
            let mut quoted = o.datagram.clone();
            quoted[8] = 1;
            let e = icmp_error(&back(from, o.ttl), 11, 0, &quoted, QuoteLen::Full).expect("te");
            return vec![(ms(i64::from(o.ttl)), e)];
        }
        if let Transport::Echo {
            reply: false,
            id,
            seq,
        } = p.transport
        {
            return vec![(
                ms(8),
                build_echo(&back(a(TARGET), self.hops), true, id, seq).expect("echo"),
            )];
        }
        let Some(t) = p.tcp() else { return vec![] };
        let spec = TcpSpec::syn(t.src_port, t.dst_port, t.seq);
        let valid = TcpSpec::syn(t.src_port, t.dst_port, t.seq)
            .linux_options()
            .emit(
                &IpSpec::new(a(CLIENT), a(TARGET))
                    .ttl(o.ttl)
                    .tos(o.tos)
                    .ident(p.ip.ident),
            )
            .expect("rebuild")
            == o.datagram;
        let echoed = o.tos & 0xfc;
        match rule {
            Rule::RejectRstAtRouter(h) if o.ttl > h && valid => {
                return vec![(
                    ms(2),
                    TcpSpec::rst_to(&spec)
                        .emit(&back(a(TARGET), h))
                        .expect("rst"),
                )]
            }
            Rule::DropAtRouter(h) if o.ttl > h => return vec![],
            Rule::DropOnHost => return vec![],
            Rule::IcmpAdminAtRouter(h) if o.ttl > h => {
                if !self.allow(h, now, 1.0) {
                    return vec![];
                }
                let mut quoted = o.datagram.clone();
                quoted[8] = o.ttl - h;
                let e =
                    icmp_error(&back(router(h), h), 3, 13, &quoted, QuoteLen::Full).expect("icmp");
                return vec![(ms(2), e)];
            }
            Rule::RejectRstOnHost if valid => {
                return vec![(
                    ms(8),
                    TcpSpec::rst_to(&spec)
                        .emit(&back(a(TARGET), self.hops))
                        .expect("rst"),
                )]
            }
            Rule::RejectRstOnHost => return vec![],
            Rule::IcmpPortOnHost => {
                if !self.allow(self.hops, now, 1.0) {
                    return vec![];
                }
                let mut quoted = o.datagram.clone();
                quoted[8] = o.ttl - (self.hops - 1);
                let e = icmp_error(&back(a(TARGET), self.hops), 3, 3, &quoted, QuoteLen::Full)
                    .expect("icmp");
                return vec![(ms(8), e)];
            }
            Rule::ForwardedClosed if valid => {
                return vec![(
                    ms(9),
                    TcpSpec::rst_to(&spec)
                        .emit(&back(a(TARGET), self.hops + 1).tos(echoed))
                        .expect("rst"),
                )]
            }
            _ => {}
        }
        if !valid {
            return vec![];
        }
        if t.dst_port == 80 || rule == Rule::Open {
            let sa = TcpSpec::syn_ack_to(&spec, 42)
                .emit(&back(a(TARGET), self.hops))
                .expect("sa");
            return vec![(ms(8), sa)];
        }
        vec![(
            ms(8),
            TcpSpec::rst_to(&spec)
                .emit(&back(a(TARGET), self.hops).tos(echoed))
                .expect("rst"),
        )]
    }
}
