//! What the local host itself knows about a TCP port, for when the probed address is one of this machine's own
//! addresses: which sockets listen on the port, on which addresses, how full their accept queues are, and the
//! kernel's counters of connections refused because an accept queue overflowed.
//!
//! This module is pure: the types, the kernel's text formats (`/proc/net/tcp`, `/proc/net/tcp6`,
//! `/proc/net/netstat`) parsed from `&str`, and [`PortListeners::classify`], which says what the listeners on a
//! port mean for a connection to one address. Reading the live system is the job of
//! [`crate::live::local`].
//!
//! ```
//! use synprobe_core::host::{Listener, PortListeners};
//!
//! // A server listening on loopback only, probed on the host's LAN address.
//! let on_loopback = Listener::new("127.0.0.1".parse().unwrap(), 8080);
//! let found = PortListeners::classify(&[on_loopback], 8080, "192.0.2.2".parse().unwrap());
//! assert_eq!(found, PortListeners::OnlyElsewhere { listeners: vec![on_loopback] });
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// One listening TCP socket of this host (what `ss -tln` shows as one line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Listener {
    /// The address the socket is bound to: `0.0.0.0` or `::` for every address of the family, otherwise one
    /// address. An IPv6 socket bound to an IPv4-mapped address (`::ffff:a.b.c.d`) is reported as the kernel
    /// shows it; [`PortListeners::classify`] treats it as the IPv4 address.
    pub addr: IpAddr,
    /// The port.
    pub port: u16,
    /// Connections completed and waiting in the accept queue now (`ss` Recv-Q).
    pub queued: u32,
    /// The largest accept queue the kernel keeps for it (`listen()`'s backlog capped by `net.core.somaxconn`;
    /// `ss` Send-Q), when known. `/proc/net/tcp` does not show it.
    pub backlog: Option<u32>,
    /// For an IPv6 socket, whether IPV6_V6ONLY is set (it then refuses IPv4-mapped connections), when known;
    /// `None` for IPv4 sockets and when the source does not show it.
    pub v6only: Option<bool>,
}

impl Listener {
    /// A listener on `addr` and `port` with an empty accept queue, backlog and IPV6_V6ONLY unknown.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        Listener {
            addr,
            port,
            queued: 0,
            backlog: None,
            v6only: None,
        }
    }

    /// The same listener with `queued` connections waiting and a maximum accept queue of `backlog`.
    pub fn with_queue(mut self, queued: u32, backlog: u32) -> Self {
        self.queued = queued;
        self.backlog = Some(backlog);
        self
    }

    /// The same listener with IPV6_V6ONLY known.
    pub fn with_v6only(mut self, v6only: bool) -> Self {
        self.v6only = Some(v6only);
        self
    }

    /// Whether the accept queue is full, so that the kernel drops new SYNs (and counts them in
    /// ListenOverflows and ListenDrops). Linux's `sk_acceptq_is_full` is `sk_ack_backlog > sk_max_ack_backlog`:
    /// the queue holds `backlog + 1` connections, and is full when it holds more than `backlog`. Unknown
    /// backlog: `false`.
    pub fn is_full(&self) -> bool {
        self.backlog.is_some_and(|b| self.queued > b)
    }

    /// How this listener matches a connection to `target` (already canonical), in the kernel's order of
    /// preference; `None` when it does not take such connections at all.
    fn rank(&self, target: IpAddr) -> Option<Rank> {
        let bound = self.addr.to_canonical();
        match (bound, target) {
            (b, t) if b == t && !b.is_unspecified() => Some(Rank::Exact),
            (IpAddr::V4(b), IpAddr::V4(_)) if b.is_unspecified() => Some(Rank::Wildcard),
            (IpAddr::V6(b), IpAddr::V6(_)) if b.is_unspecified() => Some(Rank::Wildcard),
            (IpAddr::V6(b), IpAddr::V4(_)) if b.is_unspecified() => match self.v6only {
                Some(false) => Some(Rank::DualStack),
                None => Some(Rank::MaybeDualStack),
                Some(true) => None,
            },
            _ => None,
        }
    }
}

/// How well a listener matches, best first (the kernel's `compute_score` and its lookup of the exact address
/// before the wildcard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// Bound to the target address itself.
    Exact,
    /// Bound to the wildcard of the target's family.
    Wildcard,
    /// An IPv6 wildcard socket that takes IPv4 too (IPV6_V6ONLY off), for an IPv4 target.
    DualStack,
    /// An IPv6 wildcard socket whose IPV6_V6ONLY is unknown, for an IPv4 target.
    MaybeDualStack,
}

/// What the listeners on a port mean for a connection to one of this host's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum PortListeners {
    /// A socket takes connections to the address and has room in its accept queue (or its backlog is
    /// unknown). With several sockets of one SO_REUSEPORT group, the first of them.
    Serves {
        /// The socket the kernel hands the connection to.
        listener: Listener,
    },
    /// The sockets that take connections to the address all have a full accept queue: the kernel drops new SYNs
    /// without an answer, so clients retransmit and time out.
    BacklogFull {
        /// The (first) full socket.
        listener: Listener,
        /// Connections waiting in its accept queue.
        queued: u32,
        /// Its maximum accept queue.
        backlog: u32,
    },
    /// Several sockets share the port (SO_REUSEPORT) and some of them have a full accept queue: the kernel
    /// spreads connections over the group by a hash of the addresses and ports, so the connections hashed to a
    /// full socket are dropped while others succeed.
    PartlyFull {
        /// A socket of the group with room.
        serving: Listener,
        /// The sockets of the group whose accept queue is full.
        full: Vec<Listener>,
    },
    /// Only an IPv6 wildcard socket (`::`) could take this IPv4 connection, and whether IPV6_V6ONLY is set on it
    /// is unknown: it serves the address if it is off (Linux's default, `net.ipv6.bindv6only = 0`).
    ServesIfDualStack {
        /// The IPv6 wildcard socket.
        listener: Listener,
    },
    /// Sockets listen on the port, but none takes connections to this address: they are bound to other
    /// addresses (loopback only, another interface's address), or are IPv6 sockets with IPV6_V6ONLY set for an
    /// IPv4 address, or IPv4 sockets for an IPv6 address. The kernel answers such SYNs with RST.
    OnlyElsewhere {
        /// The sockets on the port.
        listeners: Vec<Listener>,
    },
    /// Nothing listens on the port: the kernel answers SYNs with RST.
    None,
}

impl PortListeners {
    /// What `listeners` (of any ports; those of other ports are ignored) mean for a connection to `target` on
    /// `port`, where `target` is an address of this host (check with [`is_local`] first: a wildcard socket
    /// serves only the host's own addresses).
    ///
    /// The socket semantics follow Linux: a socket bound to the target address wins over a wildcard one;
    /// `0.0.0.0` serves every IPv4 address and `::` every IPv6 address; `::` also serves IPv4 (as IPv4-mapped
    /// connections) unless IPV6_V6ONLY is set, with lower preference than `0.0.0.0`; an IPv4-mapped target or
    /// bound address counts as the IPv4 address. A socket bound to a device (SO_BINDTODEVICE) is treated as
    /// unbound.
    pub fn classify(listeners: &[Listener], port: u16, target: IpAddr) -> PortListeners {
        let target = target.to_canonical();
        let on_port: Vec<Listener> = listeners
            .iter()
            .filter(|l| l.port == port)
            .copied()
            .collect();
        if on_port.is_empty() {
            return PortListeners::None;
        }
        let Some(best) = on_port.iter().filter_map(|l| l.rank(target)).min() else {
            return PortListeners::OnlyElsewhere { listeners: on_port };
        };
        let group: Vec<Listener> = on_port
            .into_iter()
            .filter(|l| l.rank(target) == Some(best))
            .collect();
        let (full, room): (Vec<Listener>, Vec<Listener>) = group.iter().partition(|l| l.is_full());
        if best == Rank::MaybeDualStack {
            if let Some(&listener) = room.first().or(full.first()) {
                return PortListeners::ServesIfDualStack { listener };
            }
        }
        match (room.first(), full.first()) {
            (Some(&listener), None) => PortListeners::Serves { listener },
            (Some(&serving), Some(_)) => PortListeners::PartlyFull { serving, full },
            (None, Some(&listener)) => PortListeners::BacklogFull {
                listener,
                queued: listener.queued,
                backlog: listener.backlog.unwrap_or(0),
            },
            // The group holds at least the best-ranked listener.
            (None, None) => PortListeners::None,
        }
    }
}

/// Whether `addr` is an address of this host: loopback (all of 127.0.0.0/8, and `::1`), or one of
/// `configured` (the addresses on the host's interfaces). IPv4-mapped IPv6 addresses count as their IPv4
/// address. The unspecified addresses (`0.0.0.0`, `::`) are not.
pub fn is_local(addr: IpAddr, configured: &[IpAddr]) -> bool {
    let addr = addr.to_canonical();
    if addr.is_unspecified() {
        return false;
    }
    addr.is_loopback() || configured.iter().any(|c| c.to_canonical() == addr)
}

/// The kernel's counters of connections refused at listening sockets, since boot, for the whole network
/// namespace (`TcpExt` in `/proc/net/netstat`; `nstat -az TcpExtListenOverflows TcpExtListenDrops`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ListenCounters {
    /// ListenOverflows: SYNs (and handshake-completing ACKs) dropped because an accept queue was full.
    pub overflows: u64,
    /// ListenDrops: every SYN dropped at a listening socket, overflows included (also out of memory, no
    /// route for the SYN-ACK, and others).
    pub drops: u64,
}

impl ListenCounters {
    /// How much each counter rose from `earlier` to `self`; zero where it went down (a counter does not
    /// go down, unless the reads came from different network namespaces).
    pub fn since(&self, earlier: &ListenCounters) -> ListenCounters {
        ListenCounters {
            overflows: self.overflows.saturating_sub(earlier.overflows),
            drops: self.drops.saturating_sub(earlier.drops),
        }
    }
}

/// The listening sockets of a `/proc/net/tcp` or `/proc/net/tcp6` text, and how many lines did not parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcListeners {
    /// Sockets in state LISTEN (`0A`), in file order. `backlog` and `v6only` are `None`: the file shows
    /// neither.
    pub listeners: Vec<Listener>,
    /// Lines that are neither the header nor a socket line.
    pub malformed: u32,
}

/// The TCP state `LISTEN` as `/proc/net/tcp` prints it.
const TCP_LISTEN: u8 = 0x0A;

/// Parse `/proc/net/tcp` or `/proc/net/tcp6` text (both: the address length tells the family).
///
/// The kernel prints each 32-bit word of an address as a hexadecimal number in the host's byte order
/// (`0100007F` is 127.0.0.1 on a little-endian machine), so the text is read in this machine's byte order: parse
/// the text of the host this runs on. Lines that do not parse are counted in
/// [`ProcListeners::malformed`]; sockets in other states are skipped.
pub fn parse_proc_net_tcp(text: &str) -> ProcListeners {
    let mut out = ProcListeners::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if first == "sl" {
            continue;
        }
        match parse_socket_line(first, fields) {
            Some(Some(l)) => out.listeners.push(l),
            Some(None) => {}
            None => out.malformed = out.malformed.saturating_add(1),
        }
    }
    out
}

/// One socket line after its first field: `Some(Some(listener))` for a LISTEN socket, `Some(None)` for a
/// socket in another state, `None` when it does not parse.
fn parse_socket_line<'a>(
    slot: &str,
    mut fields: impl Iterator<Item = &'a str>,
) -> Option<Option<Listener>> {
    slot.strip_suffix(':')?.parse::<u32>().ok()?;
    let (addr, port) = parse_endpoint(fields.next()?)?;
    parse_endpoint(fields.next()?)?;
    let state = hex_u8(fields.next()?)?;
    let (_tx, rx) = fields.next()?.split_once(':')?;
    let queued = hex_u32(rx)?;
    if state != TCP_LISTEN {
        return Some(None);
    }
    Some(Some(Listener {
        addr,
        port,
        queued,
        backlog: None,
        v6only: None,
    }))
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6).
fn parse_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = hex_u16(port)?;
    let addr = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(hex_u32(addr)?.to_ne_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                let word = addr.get(i * 8..i * 8 + 8)?;
                chunk.copy_from_slice(&hex_u32(word)?.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((addr, port))
}

fn is_hex(s: &str, max_len: usize) -> bool {
    !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex_u32(s: &str) -> Option<u32> {
    is_hex(s, 8)
        .then(|| u32::from_str_radix(s, 16).ok())
        .flatten()
}

fn hex_u16(s: &str) -> Option<u16> {
    is_hex(s, 4)
        .then(|| u16::from_str_radix(s, 16).ok())
        .flatten()
}

fn hex_u8(s: &str) -> Option<u8> {
    is_hex(s, 2)
        .then(|| u8::from_str_radix(s, 16).ok())
        .flatten()
}

/// The listen counters of a `/proc/net/netstat` text: the `TcpExt:` line of names and the `TcpExt:` line of
/// values after it, matched by position. `None` when there is no such pair, or ListenOverflows or ListenDrops
/// is missing or not a number. Other sections (`IpExt:`, `MPTcpExt:`) are skipped.
pub fn parse_netstat(text: &str) -> Option<ListenCounters> {
    let mut tcp_ext = text
        .lines()
        .filter_map(|l| l.strip_prefix("TcpExt:"))
        .map(str::split_whitespace);
    let names = tcp_ext.next()?;
    let values: Vec<&str> = tcp_ext.next()?.collect();
    let mut overflows = None;
    let mut drops = None;
    for (name, value) in names.zip(values) {
        match name {
            "ListenOverflows" => overflows = value.parse().ok(),
            "ListenDrops" => drops = value.parse().ok(),
            _ => {}
        }
    }
    Some(ListenCounters {
        overflows: overflows?,
        drops: drops?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("a literal address")
    }

    // Captured on Linux 6.18 (x86_64): python listeners on ports 41001..41010; 41010 has listen(0) and three
    // clients, one accepted into the queue (rx_queue 1) and two left in SYN-SENT.
    const PROC_NET_TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 0100007F:A032 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 17634 2 0000000083f6faff 100 0 0 10 0                     
   1: 0100007F:A029 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17626 1 00000000747f098e 100 0 0 10 0                     
   2: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1064 1 0000000022fbb680 100 0 0 10 0                      
   3: 00000000:A02A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17627 1 00000000581a6027 100 0 0 10 0                     
   4: 020200C0:A02B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17628 1 000000005a0e61f4 100 0 0 10 0                     
   5: 0100007F:A032 0100007F:9954 01 00000000:00000000 00:00000000 00000000     0        0 0 1 000000004ec491cc 20 0 0 10 -1                         
   6: 0100007F:9954 0100007F:A032 01 00000000:00000000 00:00000000 00000000     0        0 17635 2 00000000f663de6b 20 0 0 10 -1                     
   7: 0100007F:9956 0100007F:A032 02 00000001:00000000 01:00000000 00000000     0        0 17636 2 0000000070dc8b5e 100 0 0 10 -1                    
   8: 0100007F:995C 0100007F:A032 02 00000001:00000000 01:00000000 00000000     0        0 17637 2 00000000182c5e9e 100 0 0 10 -1                    
";

    // The same moment: fd00::2, ::1, ::ffff:127.0.0.1 (v6only off), :: with v6only on (41006) and off (41005).
    const PROC_NET_TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 000000FD000000000000000002000000:A02F 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17632 1 00000000320853a1 100 0 0 10 0
   1: 00000000000000000000000001000000:A02C 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17629 1 00000000e9f61966 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:A030 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17633 1 00000000f63492ad 100 0 0 10 0
   3: 00000000000000000000000000000000:A02E 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17631 1 000000006cb1404f 100 0 0 10 0
   4: 00000000000000000000000000000000:A02D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17630 1 00000000c907aea5 100 0 0 10 0
";

    // Captured on Linux 6.18: the TcpExt pair cut after its first 26 columns, with ListenOverflows and
    // ListenDrops set to 7 and 9 (both 0 when captured) so that the test tells them apart; IpExt as captured.
    const NETSTAT: &str = "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled RcvPruned OfoPruned OutOfWindowIcmps LockDroppedIcmps ArpFilter TW TWRecycled TWKilled PAWSActive PAWSEstab BeyondWindow TSEcrRejected PAWSOldAck PAWSTimewait DelayedACKs DelayedACKLocked DelayedACKLost ListenOverflows ListenDrops TCPHPHits TCPPureAcks
TcpExt: 0 0 0 0 0 0 0 0 0 0 10 0 0 0 0 0 0 0 0 1 0 1 7 9 39 46
IpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets InMcastOctets OutMcastOctets InBcastOctets OutBcastOctets InCsumErrors InNoECTPkts InECT1Pkts InECT0Pkts InCEPkts ReasmOverlaps
IpExt: 0 0 0 0 0 0 72030732 116424 0 0 0 0 0 2653 0 0 0 0
";

    #[test]
    #[cfg(target_endian = "little")]
    fn proc_net_tcp_listeners() {
        let parsed = parse_proc_net_tcp(PROC_NET_TCP);
        assert_eq!(parsed.malformed, 0);
        let got: Vec<(IpAddr, u16, u32)> = parsed
            .listeners
            .iter()
            .map(|l| (l.addr, l.port, l.queued))
            .collect();
        assert_eq!(
            got,
            vec![
                (ip("127.0.0.1"), 41010, 1),
                (ip("127.0.0.1"), 41001, 0),
                (ip("0.0.0.0"), 2024, 0),
                (ip("0.0.0.0"), 41002, 0),
                (ip("192.0.2.2"), 41003, 0),
            ]
        );
        assert!(parsed
            .listeners
            .iter()
            .all(|l| l.backlog.is_none() && l.v6only.is_none()));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn proc_net_tcp6_listeners() {
        let parsed = parse_proc_net_tcp(PROC_NET_TCP6);
        assert_eq!(parsed.malformed, 0);
        let got: Vec<(IpAddr, u16)> = parsed.listeners.iter().map(|l| (l.addr, l.port)).collect();
        assert_eq!(
            got,
            vec![
                (ip("fd00::2"), 41007),
                (ip("::1"), 41004),
                (ip("::ffff:127.0.0.1"), 41008),
                (ip("::"), 41006),
                (ip("::"), 41005),
            ]
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn proc_net_tcp6_words_are_host_order() {
        // Built by hand (not captured): 2001:db8:1234:5678:9abc:def0:1122:3344, each 32-bit word printed as a
        // little-endian number, so that every byte of every word differs.
        let line = "   0: B80D012078563412F0DEBC9A44332211:0050 00000000000000000000000000000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0";
        let parsed = parse_proc_net_tcp(line);
        assert_eq!(parsed.malformed, 0);
        assert_eq!(
            parsed.listeners,
            vec![Listener {
                addr: ip("2001:db8:1234:5678:9abc:def0:1122:3344"),
                port: 80,
                queued: 3,
                backlog: None,
                v6only: None,
            }]
        );
    }

    #[test]
    fn malformed_lines_are_counted() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue
   0: 0100007F:A032 00000000:0000 0A 00000000:00000001 00:00000000
   1: 0100007F:A032 00000000:0000 0A
   2: 0100007G:A032 00000000:0000 0A 00000000:00000001
   3: 0100007F:+032 00000000:0000 0A 00000000:00000001
   4: 0100007F0:A032 00000000:0000 0A 00000000:00000001
   x: 0100007F:A032 00000000:0000 0A 00000000:00000001
garbage

";
        let parsed = parse_proc_net_tcp(text);
        assert_eq!(parsed.listeners.len(), 1);
        assert_eq!(parsed.malformed, 6);
    }

    #[test]
    fn netstat_counters() {
        assert_eq!(
            parse_netstat(NETSTAT),
            Some(ListenCounters {
                overflows: 7,
                drops: 9
            })
        );
        assert_eq!(parse_netstat(""), None);
        assert_eq!(parse_netstat("TcpExt: ListenOverflows ListenDrops\n"), None);
        assert_eq!(
            parse_netstat("TcpExt: ListenOverflows ListenDrops\nTcpExt: 3 x\n"),
            None
        );
        assert_eq!(
            parse_netstat("IpExt: ListenOverflows\nIpExt: 5\nTcpExt: ListenDrops ListenOverflows\nTcpExt: 2 1\n"),
            Some(ListenCounters {
                overflows: 1,
                drops: 2
            })
        );
    }

    #[test]
    fn counters_since_saturate() {
        let a = ListenCounters {
            overflows: 10,
            drops: 12,
        };
        let b = ListenCounters {
            overflows: 13,
            drops: 11,
        };
        assert_eq!(
            b.since(&a),
            ListenCounters {
                overflows: 3,
                drops: 0
            }
        );
    }

    #[test]
    fn full_is_more_than_backlog() {
        let l = Listener::new(ip("127.0.0.1"), 1);
        assert!(!l.is_full());
        assert!(!l.with_queue(0, 0).is_full());
        assert!(l.with_queue(1, 0).is_full());
        assert!(!l.with_queue(128, 128).is_full());
        assert!(l.with_queue(129, 128).is_full());
    }

    #[test]
    fn nothing_on_the_port() {
        let other = Listener::new(ip("0.0.0.0"), 22);
        assert_eq!(
            PortListeners::classify(&[other], 80, ip("192.0.2.2")),
            PortListeners::None
        );
        assert_eq!(
            PortListeners::classify(&[], 80, ip("192.0.2.2")),
            PortListeners::None
        );
    }

    #[test]
    fn specific_binds_serve_only_their_address() {
        let lo = Listener::new(ip("127.0.0.1"), 80);
        let lan = Listener::new(ip("192.0.2.2"), 80);
        let both = [lo, lan];
        assert_eq!(
            PortListeners::classify(&both, 80, ip("127.0.0.1")),
            PortListeners::Serves { listener: lo }
        );
        assert_eq!(
            PortListeners::classify(&both, 80, ip("192.0.2.2")),
            PortListeners::Serves { listener: lan }
        );
        // 127.0.0.2 is local, but nothing is bound to it.
        assert_eq!(
            PortListeners::classify(&both, 80, ip("127.0.0.2")),
            PortListeners::OnlyElsewhere {
                listeners: both.to_vec()
            }
        );
        let v6lo = Listener::new(ip("::1"), 80).with_v6only(false);
        assert_eq!(
            PortListeners::classify(&[v6lo], 80, ip("fd00::2")),
            PortListeners::OnlyElsewhere {
                listeners: vec![v6lo]
            }
        );
        assert_eq!(
            PortListeners::classify(&[v6lo], 80, ip("127.0.0.1")),
            PortListeners::OnlyElsewhere {
                listeners: vec![v6lo]
            }
        );
    }

    #[test]
    fn wildcards_serve_their_family() {
        let any4 = Listener::new(ip("0.0.0.0"), 80);
        assert_eq!(
            PortListeners::classify(&[any4], 80, ip("192.0.2.2")),
            PortListeners::Serves { listener: any4 }
        );
        assert_eq!(
            PortListeners::classify(&[any4], 80, ip("fd00::2")),
            PortListeners::OnlyElsewhere {
                listeners: vec![any4]
            }
        );
        // An IPv4-mapped target is an IPv4 connection.
        assert_eq!(
            PortListeners::classify(&[any4], 80, ip("::ffff:192.0.2.2")),
            PortListeners::Serves { listener: any4 }
        );
    }

    #[test]
    fn ipv6_wildcard_and_v6only() {
        let dual = Listener::new(ip("::"), 80).with_v6only(false);
        let only6 = Listener::new(ip("::"), 80).with_v6only(true);
        let unknown = Listener::new(ip("::"), 80);
        for l in [dual, only6, unknown] {
            assert_eq!(
                PortListeners::classify(&[l], 80, ip("fd00::2")),
                PortListeners::Serves { listener: l }
            );
        }
        assert_eq!(
            PortListeners::classify(&[dual], 80, ip("192.0.2.2")),
            PortListeners::Serves { listener: dual }
        );
        assert_eq!(
            PortListeners::classify(&[only6], 80, ip("192.0.2.2")),
            PortListeners::OnlyElsewhere {
                listeners: vec![only6]
            }
        );
        assert_eq!(
            PortListeners::classify(&[unknown], 80, ip("192.0.2.2")),
            PortListeners::ServesIfDualStack { listener: unknown }
        );
        // IPv4 prefers the IPv4 wildcard over a dual-stack IPv6 one.
        let any4 = Listener::new(ip("0.0.0.0"), 80);
        assert_eq!(
            PortListeners::classify(&[dual, any4], 80, ip("192.0.2.2")),
            PortListeners::Serves { listener: any4 }
        );
        assert_eq!(
            PortListeners::classify(&[unknown, any4], 80, ip("192.0.2.2")),
            PortListeners::Serves { listener: any4 }
        );
    }

    #[test]
    fn ipv4_mapped_bind_is_the_ipv4_address() {
        let mapped = Listener::new(ip("::ffff:127.0.0.1"), 80).with_v6only(false);
        assert_eq!(
            PortListeners::classify(&[mapped], 80, ip("127.0.0.1")),
            PortListeners::Serves { listener: mapped }
        );
        assert_eq!(
            PortListeners::classify(&[mapped], 80, ip("::1")),
            PortListeners::OnlyElsewhere {
                listeners: vec![mapped]
            }
        );
    }

    #[test]
    fn exact_bind_wins_over_wildcard_even_when_full() {
        let any4 = Listener::new(ip("0.0.0.0"), 80).with_queue(0, 128);
        let lan = Listener::new(ip("192.0.2.2"), 80).with_queue(6, 5);
        assert_eq!(
            PortListeners::classify(&[any4, lan], 80, ip("192.0.2.2")),
            PortListeners::BacklogFull {
                listener: lan,
                queued: 6,
                backlog: 5
            }
        );
        assert_eq!(
            PortListeners::classify(&[any4, lan], 80, ip("127.0.0.1")),
            PortListeners::Serves { listener: any4 }
        );
    }

    #[test]
    fn reuseport_groups() {
        let a = Listener::new(ip("0.0.0.0"), 80).with_queue(2, 1);
        let b = Listener::new(ip("0.0.0.0"), 80).with_queue(0, 1);
        let c = Listener::new(ip("0.0.0.0"), 80).with_queue(5, 4);
        assert_eq!(
            PortListeners::classify(&[a, b, c], 80, ip("192.0.2.2")),
            PortListeners::PartlyFull {
                serving: b,
                full: vec![a, c]
            }
        );
        assert_eq!(
            PortListeners::classify(&[a, c], 80, ip("192.0.2.2")),
            PortListeners::BacklogFull {
                listener: a,
                queued: 2,
                backlog: 1
            }
        );
    }

    #[test]
    fn unknown_backlog_is_not_full() {
        let l = Listener {
            addr: ip("127.0.0.1"),
            port: 80,
            queued: 4096,
            backlog: None,
            v6only: None,
        };
        assert_eq!(
            PortListeners::classify(&[l], 80, ip("127.0.0.1")),
            PortListeners::Serves { listener: l }
        );
    }

    #[test]
    fn local_addresses() {
        let configured = [ip("192.0.2.2"), ip("fd00::2"), ip("fe80::fc:ff:fe00:1")];
        for a in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "192.0.2.2",
            "::ffff:192.0.2.2",
            "fd00::2",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_local(ip(a), &configured), "{a}");
        }
        for a in ["192.0.2.3", "0.0.0.0", "::", "fd00::3", "198.51.100.1"] {
            assert!(!is_local(ip(a), &configured), "{a}");
        }
    }

    #[test]
    fn serde_shape() {
        let json = serde_json::to_value(PortListeners::BacklogFull {
            listener: Listener::new(ip("127.0.0.1"), 80).with_queue(2, 1),
            queued: 2,
            backlog: 1,
        })
        .expect("serializes");
        assert_eq!(json["kind"], "backlog-full");
        assert_eq!(json["queued"], 2);
        assert_eq!(json["listener"]["addr"], "127.0.0.1");
    }

    proptest! {
        #[test]
        fn proc_parser_never_panics(text in any::<String>()) {
            let _ = parse_proc_net_tcp(&text);
        }

        #[test]
        fn proc_parser_never_panics_on_near_misses(
            lines in proptest::collection::vec(
                "[ 0-9]{0,4}:? [0-9A-Fa-f+-]{0,33}:[0-9A-F+]{0,5} [0-9A-F:]{0,14} [0-9A-F]{0,3} [0-9A-F:+]{0,18}",
                0..8,
            )
        ) {
            let parsed = parse_proc_net_tcp(&lines.join("\n"));
            prop_assert!(parsed.listeners.len() + parsed.malformed as usize <= lines.len());
        }

        #[test]
        fn netstat_parser_never_panics(text in any::<String>()) {
            let _ = parse_netstat(&text);
        }

        #[test]
        fn netstat_parser_never_panics_on_near_misses(
            names in proptest::collection::vec("ListenOverflows|ListenDrops|[A-Za-z]{1,8}", 0..6),
            values in proptest::collection::vec("[0-9]{1,22}|-1|x", 0..6),
        ) {
            let text = format!("TcpExt: {}\nTcpExt: {}\n", names.join(" "), values.join(" "));
            let _ = parse_netstat(&text);
        }

        #[test]
        fn classify_never_panics(
            listeners in proptest::collection::vec(
                (any::<bool>(), any::<[u8; 16]>(), 0u16..3, any::<u32>(), any::<Option<u32>>(), any::<Option<bool>>()),
                0..6,
            ),
            target in any::<[u8; 16]>(),
            v4 in any::<bool>(),
        ) {
            let as_ip = |is_v4: bool, b: [u8; 16]| if is_v4 {
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            } else {
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let ls: Vec<Listener> = listeners
                .into_iter()
                .map(|(is_v4, b, port, queued, backlog, v6only)| Listener {
                    addr: as_ip(is_v4, b), port, queued, backlog, v6only,
                })
                .collect();
            let _ = PortListeners::classify(&ls, 1, as_ip(v4, target));
        }
    }
}
