//! Which source address and interface the route to a target uses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};

use crate::error::{Error, Result};

/// The source address the kernel would use towards `target` (a connected UDP socket: no packet is sent).
pub fn source_for(target: IpAddr) -> Result<IpAddr> {
    let bind: IpAddr = if target.is_ipv6() {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let route_err = |source: std::io::Error| Error::Route { target, source };
    let sock = UdpSocket::bind((bind, 0)).map_err(route_err)?;
    sock.connect((target, 9)).map_err(route_err)?;
    Ok(sock.local_addr().map_err(route_err)?.ip())
}

/// The capture device that carries `source` (for the loopback range, the loopback device).
pub fn interface_for(source: IpAddr) -> Result<String> {
    let devices = pcap::Device::list().map_err(|e| Error::LiveCapture {
        interface: "(any)".into(),
        reason: e.to_string(),
    })?;
    if let Some(d) = devices
        .iter()
        .find(|d| d.addresses.iter().any(|a| a.addr == source))
    {
        return Ok(d.name.clone());
    }
    if source.is_loopback() {
        if let Some(d) = devices.iter().find(|d| d.flags.is_loopback()) {
            return Ok(d.name.clone());
        }
    }
    Err(Error::NoCaptureDevice { address: source })
}
