//! Sending raw probes: IPv4 through pnet's layer-3 channel (our own IP header: TTL, TOS, ID, DF), IPv6 through
//! raw sockets with the hop limit and traffic class set per packet as socket options (the kernel writes IPv6
//! headers itself).

use std::io;
use std::net::{IpAddr, SocketAddr};

use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_transport::{transport_channel, TransportChannelType, TransportSender};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::{Error, Result};
use crate::session::Outgoing;

/// Sends the packets sessions hand out.
pub trait Sender {
    /// Send one packet.
    fn send(&mut self, packet: &Outgoing) -> io::Result<()>;
}

fn privilege_or_io(what: &'static str, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        Error::Privilege { what }
    } else {
        Error::Io { what, source: e }
    }
}

/// Raw sockets for both families (opened only for the families needed).
pub struct RawSender {
    v4: Option<TransportSender>,
    v6_tcp: Option<Socket>,
    v6_icmp: Option<Socket>,
}

impl RawSender {
    /// Open raw sockets: needs CAP_NET_RAW. `v6_source` binds the IPv6 sockets, so that the checksums we
    /// compute over it hold.
    pub fn open(v4: bool, v6_source: Option<IpAddr>) -> Result<Self> {
        let v4 = if v4 {
            let (tx, _rx) = transport_channel(
                1 << 16,
                TransportChannelType::Layer3(IpNextHeaderProtocols::Tcp),
            )
            .map_err(|e| privilege_or_io("open a raw IPv4 socket", e))?;
            Some(tx)
        } else {
            None
        };
        let (v6_tcp, v6_icmp) = match v6_source {
            Some(src) => {
                let open = |proto: Protocol| -> Result<Socket> {
                    let s = Socket::new(Domain::IPV6, Type::RAW, Some(proto))
                        .map_err(|e| privilege_or_io("open a raw IPv6 socket", e))?;
                    s.bind(&SockAddr::from(SocketAddr::new(src, 0)))
                        .map_err(|e| {
                            privilege_or_io("bind the raw IPv6 socket to its source address", e)
                        })?;
                    Ok(s)
                };
                (Some(open(Protocol::TCP)?), Some(open(Protocol::ICMPV6)?))
            }
            None => (None, None),
        };
        Ok(RawSender {
            v4,
            v6_tcp,
            v6_icmp,
        })
    }
}

impl Sender for RawSender {
    fn send(&mut self, p: &Outgoing) -> io::Result<()> {
        match p.dst {
            IpAddr::V4(_) => {
                let tx = self
                    .v4
                    .as_mut()
                    .ok_or_else(|| io::Error::other("no IPv4 socket open"))?;
                let packet = Ipv4Packet::new(&p.datagram)
                    .ok_or_else(|| io::Error::other("short IPv4 datagram"))?;
                tx.send_to(packet, p.dst).map(|_| ())
            }
            IpAddr::V6(_) => {
                let icmp = p.datagram.get(6) == Some(&58);
                let sock = if icmp {
                    self.v6_icmp.as_ref()
                } else {
                    self.v6_tcp.as_ref()
                };
                let sock = sock.ok_or_else(|| io::Error::other("no IPv6 socket open"))?;
                sock.set_unicast_hops_v6(u32::from(p.ttl))?;
                sock.set_tclass_v6(u32::from(p.tos))?;
                let payload = p
                    .datagram
                    .get(40..)
                    .ok_or_else(|| io::Error::other("short IPv6 datagram"))?;
                sock.send_to(payload, &SockAddr::from(SocketAddr::new(p.dst, 0)))
                    .map(|_| ())
            }
        }
    }
}
