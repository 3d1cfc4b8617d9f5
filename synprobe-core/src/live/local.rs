//! What this host knows about its own TCP ports, read from the kernel: whether an address is one of the host's,
//! the listening sockets on a port (netlink sock_diag, as `ss -tln`; `/proc/net/tcp{,6}` when netlink is not
//! available), and the listen-overflow counters (`/proc/net/netstat`). The decisions are made by the pure
//! [`crate::host`] module.
//!
//! Everything here reads the network namespace the process runs in, and needs no privilege.
//!
//! ```no_run
//! use synprobe_core::host::PortListeners;
//! use synprobe_core::live::local;
//!
//! # fn main() -> std::io::Result<()> {
//! let target = "192.0.2.2".parse().unwrap();
//! if local::is_local_address(target)? {
//!     let before = local::listen_counters()?;
//!     match PortListeners::classify(&local::listeners(8080)?, 8080, target) {
//!         PortListeners::BacklogFull { queued, backlog, .. } => println!("accept queue full: {queued} > {backlog}"),
//!         other => println!("{other:?}"),
//!     }
//!     println!("overflows since: {}", local::listen_counters()?.since(&before).overflows);
//! }
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN};
use netlink_packet_sock_diag::inet::{
    nlas::Nla, ExtensionFlags, InetRequest, SocketId, StateFlags,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

use crate::host::{self, ListenCounters, Listener};

/// Whether `addr` is configured on an interface of this network namespace, or is loopback (127.0.0.0/8,
/// `::1`). IPv4-mapped IPv6 addresses count as their IPv4 address. Addresses that are local only through a
/// `local` route (AnyIP, `ip route add local 198.51.100.0/24 dev lo`) are not seen.
pub fn is_local_address(addr: IpAddr) -> io::Result<bool> {
    Ok(host::is_local(addr, &interface_addresses()?))
}

/// Every address configured on the interfaces of this network namespace (getifaddrs), in the kernel's order,
/// without the IPv6 scope.
pub fn interface_addresses() -> io::Result<Vec<IpAddr>> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    Ok(addrs
        .filter_map(|ifa| {
            let a = ifa.address?;
            if let Some(v4) = a.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect())
}

/// The TCP sockets listening on `port`, IPv4 and IPv6, in this network namespace: from netlink sock_diag, with
/// the accept queue, its maximum and IPV6_V6ONLY; if the kernel refuses sock_diag (some sandboxes), from
/// `/proc/net/tcp` and `/proc/net/tcp6`, without the maximum and IPV6_V6ONLY (`None`). An error only when
/// neither works (the netlink error then).
pub fn listeners(port: u16) -> io::Result<Vec<Listener>> {
    match all_listeners_sock_diag() {
        Ok(all) => Ok(all.into_iter().filter(|l| l.port == port).collect()),
        Err(netlink) => match all_listeners_proc() {
            Ok(all) => Ok(all.into_iter().filter(|l| l.port == port).collect()),
            Err(_) => Err(netlink),
        },
    }
}

/// Every listening TCP socket in this network namespace, from netlink sock_diag (as `ss -tln`). A kernel that
/// does not answer within 5 s gives an error of kind `WouldBlock`.
pub fn all_listeners_sock_diag() -> io::Result<Vec<Listener>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    // The kernel answers a dump at once; the timeout only keeps a broken kernel or sandbox from hanging us.
    socket2::SockRef::from(&socket).set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut out = Vec::new();
    for (family, seq) in [(AF_INET, 1), (AF_INET6, 2)] {
        dump_listeners(&socket, family, seq, &mut out)?;
    }
    Ok(out)
}

/// Every listening TCP socket in this network namespace, from `/proc/net/tcp` and `/proc/net/tcp6` (a missing
/// `tcp6`, IPv6 disabled, is no error). The backlog and IPV6_V6ONLY are `None`.
pub fn all_listeners_proc() -> io::Result<Vec<Listener>> {
    let mut out = host::parse_proc_net_tcp(&std::fs::read_to_string("/proc/net/tcp")?).listeners;
    match std::fs::read_to_string("/proc/net/tcp6") {
        Ok(text) => out.extend(host::parse_proc_net_tcp(&text).listeners),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(out)
}

/// The ListenOverflows and ListenDrops counters of this network namespace, from `/proc/net/netstat`.
pub fn listen_counters() -> io::Result<ListenCounters> {
    let text = std::fs::read_to_string("/proc/net/netstat")?;
    host::parse_netstat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "/proc/net/netstat has no TcpExt ListenOverflows and ListenDrops",
        )
    })
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected sock_diag answer: {e}"),
    )
}

/// Ask for the TCP sockets of `family` in state LISTEN and append them to `out`.
fn dump_listeners(
    socket: &Socket,
    family: u8,
    seq: u32,
    out: &mut Vec<Listener>,
) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id,
        })
        .into(),
    );
    request.finalize();
    let mut buf = vec![0u8; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;

    loop {
        let (datagram, _) = socket.recv_from_full()?;
        if datagram.is_empty() {
            return Err(invalid("an empty datagram"));
        }
        let mut offset = 0;
        while offset < datagram.len() {
            let bytes = datagram.get(offset..).unwrap_or_default();
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(bytes).map_err(invalid)?;
            let len = message.header.length as usize;
            if message.header.sequence_number == seq {
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r))
                        if r.header.state == TCP_LISTEN =>
                    {
                        out.push(listener_of(&r));
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) => {
                        return Err(match e.code {
                            Some(code) => io::Error::from_raw_os_error(-code.get()),
                            None => invalid("an acknowledgment instead of a dump"),
                        })
                    }
                    _ => {}
                }
            }
            if len == 0 {
                break;
            }
            // Messages are 4-byte aligned in a datagram.
            offset = offset.saturating_add(len.saturating_add(3) & !3);
        }
    }
}

fn listener_of(r: &netlink_packet_sock_diag::inet::InetResponse) -> Listener {
    let v6only = r.nlas.iter().find_map(|n| match n {
        Nla::SkV6Only(v) => Some(*v),
        _ => None,
    });
    Listener {
        addr: r.header.socket_id.source_address,
        port: r.header.socket_id.source_port,
        // For a LISTEN socket: idiag_rqueue is sk_ack_backlog, idiag_wqueue sk_max_ack_backlog.
        queued: r.header.recv_queue,
        backlog: Some(r.header.send_queue),
        v6only: if r.header.family == AF_INET6 {
            v6only
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr as StdSocketAddr, TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    use socket2::{Domain, Protocol, Socket as RawSocket, Type};

    use super::*;
    use crate::host::PortListeners;

    fn loopback4() -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    /// A non-loopback address of this host of the same family as `like`, if there is one.
    fn other_local(like: IpAddr) -> Option<IpAddr> {
        interface_addresses()
            .expect("getifaddrs")
            .into_iter()
            .find(|a| a.is_ipv4() == like.is_ipv4() && !a.is_loopback() && !a.is_unspecified())
    }

    #[test]
    fn loopback_and_interface_addresses_are_local() {
        assert!(is_local_address(loopback4()).expect("getifaddrs"));
        assert!(is_local_address("127.9.9.9".parse().expect("an address")).expect("getifaddrs"));
        assert!(is_local_address(IpAddr::V6(Ipv6Addr::LOCALHOST)).expect("getifaddrs"));
        // TEST-NET-2: never configured on a test host.
        assert!(
            !is_local_address("198.51.100.77".parse().expect("an address")).expect("getifaddrs")
        );
        for a in interface_addresses().expect("getifaddrs") {
            assert!(is_local_address(a).expect("getifaddrs"), "{a}");
        }
    }

    #[test]
    fn finds_a_loopback_listener() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        let found = listeners(port).expect("listeners");
        let mine: Vec<&Listener> = found.iter().filter(|x| x.addr == loopback4()).collect();
        assert_eq!(mine.len(), 1, "{found:?}");
        assert_eq!(mine[0].port, port);
        assert_eq!(mine[0].queued, 0);
        assert!(mine[0].backlog.is_some_and(|b| b > 0), "{found:?}");
        assert_eq!(mine[0].v6only, None);
        assert_eq!(
            PortListeners::classify(&found, port, loopback4()),
            PortListeners::Serves { listener: *mine[0] }
        );
        let elsewhere =
            other_local(loopback4()).unwrap_or("127.0.0.2".parse().expect("an address"));
        assert_eq!(
            PortListeners::classify(&found, port, elsewhere),
            PortListeners::OnlyElsewhere {
                listeners: found.clone()
            }
        );
        // /proc agrees, without the backlog.
        let proc: Vec<Listener> = all_listeners_proc()
            .expect("/proc/net/tcp")
            .into_iter()
            .filter(|x| x.port == port)
            .collect();
        assert_eq!(proc, vec![Listener::new(loopback4(), port)]);
    }

    #[test]
    fn finds_an_ipv6_wildcard_listener() {
        let l = match TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("SKIPPED finds_an_ipv6_wildcard_listener: no IPv6 here ({e})");
                return;
            }
        };
        let port = l.local_addr().expect("local addr").port();
        let found = listeners(port).expect("listeners");
        assert_eq!(found.len(), 1, "{found:?}");
        let got = found[0];
        assert_eq!(got.addr, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(got.port, port);
        let bindv6only = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only")
            .map(|s| s.trim() == "1")
            .unwrap_or(false);
        assert_eq!(got.v6only, Some(bindv6only));
        let six = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(
            PortListeners::classify(&found, port, six),
            PortListeners::Serves { listener: got }
        );
        let four = PortListeners::classify(&found, port, loopback4());
        if bindv6only {
            assert_eq!(four, PortListeners::OnlyElsewhere { listeners: found });
        } else {
            assert_eq!(four, PortListeners::Serves { listener: got });
        }
    }

    /// A non-blocking connect to `to`: the handshake goes on in the kernel.
    fn start_connect(to: StdSocketAddr) -> RawSocket {
        let s = RawSocket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        s.set_nonblocking(true).expect("non-blocking");
        match s.connect(&to.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
            Err(e) => panic!("connect to {to}: {e}"),
        }
        s
    }

    /// Poll `f` every 10 ms for up to 2 s until it returns `Some`.
    fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_full_accept_queue_is_seen_and_counted() {
        let server =
            RawSocket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        let at: StdSocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        server.bind(&at.into()).expect("bind 127.0.0.1:0");
        server.listen(0).expect("listen(0)");
        let addr = server
            .local_addr()
            .expect("local addr")
            .as_socket()
            .expect("an inet address");
        let port = addr.port();

        // listen(0) keeps one connection: sk_ack_backlog 1 > sk_max_ack_backlog 0 is full.
        let first =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("first connect");
        let full = wait_for(|| {
            let found = listeners(port).ok()?;
            (found.len() == 1 && found[0].queued == 1).then_some(found)
        })
        .expect("the accepted connection shows in the queue");
        assert_eq!(found_one(&full).backlog, Some(0));
        assert!(found_one(&full).is_full());
        assert_eq!(
            PortListeners::classify(&full, port, loopback4()),
            PortListeners::BacklogFull {
                listener: found_one(&full),
                queued: 1,
                backlog: 0
            }
        );

        // One more SYN is dropped at the listener: ListenOverflows rises. Other tests may run in parallel
        // in this namespace, so the counter must rise by at least one.
        let before = listen_counters().expect("/proc/net/netstat");
        let _second = start_connect(addr);
        let rose = wait_for(|| {
            let now = listen_counters().ok()?;
            let d = now.since(&before);
            (d.overflows >= 1 && d.drops >= 1).then_some(d)
        });
        assert!(
            rose.is_some(),
            "ListenOverflows did not rise after a SYN to a full queue"
        );
        // Nothing was accepted: the second client is still in SYN-SENT.
        assert_eq!(found_one(&listeners(port).expect("listeners")).queued, 1);
        drop(first);
        match server.set_nonblocking(true).and_then(|()| server.accept()) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                panic!("the first connection was not queued")
            }
            Err(e) => panic!("accept: {e}"),
        }
    }

    fn found_one(found: &[Listener]) -> Listener {
        assert_eq!(found.len(), 1, "{found:?}");
        found[0]
    }

    #[test]
    fn counters_read() {
        let a = listen_counters().expect("/proc/net/netstat");
        let b = listen_counters().expect("/proc/net/netstat");
        assert!(b.overflows >= a.overflows && b.drops >= a.drops);
    }
}
