//! The LAN beacon's sockets: the receive-only listeners on the beacon
//! groups' port, shared by every tinynode on the host, and the multicast
//! options of the node's own sockets, which send the beacons
//! (`protocol-spec.md` §10.1).
//!
//! A listener binds the group address itself (so unicast to the port
//! never reaches it) with `SO_REUSEADDR` and `SO_REUSEPORT`. The IPv4 one
//! joins the group on the interface of the node's bound address, or on
//! every up, multicast-capable IPv4 interface when bound to the wildcard.
//! The IPv6 group is link-scoped, so its listener is bound to one
//! interface (the scope ID): the one holding the node's IPv6 address, or
//! the first up, multicast-capable, non-loopback interface with IPv6; the
//! node's IPv6 socket sends out of the same interface. Nothing is ever
//! sent from a listener.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use log::debug;

use super::socket::{bind_fd_v6, new_udp, setsockopt};
use crate::beacon::{LAN_GROUP, LAN_GROUP_V6};

fn in_addr(ip: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from_ne_bytes(ip.octets()),
    }
}

/// Sets the node's socket (bound at `bound`) to send beacons: TTL 1, loop
/// back to other tinynodes on this host, and out of the bound address's
/// interface when the address is specific.
pub fn prepare_sender(socket: &impl AsRawFd, bound: SocketAddrV4) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    let one: libc::c_int = 1;
    setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &one)?;
    setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &one)?;
    if !bound.ip().is_unspecified() {
        setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            &in_addr(*bound.ip()),
        )?;
    }
    Ok(())
}

/// A non-blocking UDP socket of `domain` that every tinynode on the host
/// can bind at the same group and port (`SO_REUSEADDR`, `SO_REUSEPORT`).
fn shared_listener(domain: libc::c_int) -> io::Result<(UdpSocket, RawFd)> {
    let (socket, fd) = new_udp(domain, true)?;
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1)?;
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, &1)?;
    Ok((socket, fd))
}

/// The listener for `group`, joined on the interface of `bound` (every
/// multicast-capable interface for the wildcard); non-blocking.
pub fn open_listener(group: SocketAddrV4, bound: Ipv4Addr) -> io::Result<UdpSocket> {
    let (socket, fd) = shared_listener(libc::AF_INET)?;
    let address = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: group.port().to_be(),
        sin_addr: in_addr(*group.ip()),
        sin_zero: [0; 8],
    };
    // SAFETY: bind with a valid sockaddr_in and its size.
    let result = unsafe {
        libc::bind(
            fd,
            std::ptr::from_ref(&address).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    let interfaces = if bound.is_unspecified() {
        multicast_interfaces()
    } else {
        vec![bound]
    };
    let mut joined = 0;
    for interface in &interfaces {
        let request = libc::ip_mreq {
            imr_multiaddr: in_addr(*group.ip()),
            imr_interface: in_addr(*interface),
        };
        match setsockopt(fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &request) {
            Ok(()) => {
                debug!("lan: listening for beacons on {group} via {interface}");
                joined += 1;
            }
            Err(error) => debug!("lan: cannot join {group} on {interface}: {error}"),
        }
    }
    if joined == 0 {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no multicast-capable interface joined the beacon group",
        ));
    }
    Ok(socket)
}

/// IPv4 addresses of the interfaces that are up and multicast-capable.
fn multicast_interfaces() -> Vec<Ipv4Addr> {
    interface_addrs()
        .into_iter()
        .filter_map(|entry| match entry.ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// An address of an up, multicast-capable interface.
struct InterfaceAddr {
    ip: IpAddr,
    index: u32,
    loopback: bool,
}

/// Every address of the interfaces that are up and multicast-capable.
fn interface_addrs() -> Vec<InterfaceAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*entry };
        let flags = ifa.ifa_flags as libc::c_int;
        let usable = flags & libc::IFF_UP != 0 && flags & libc::IFF_MULTICAST != 0;
        if usable && !ifa.ifa_addr.is_null() {
            // SAFETY: a non-null ifa_addr points to a sockaddr whose family
            // says its real type.
            let family = libc::c_int::from(unsafe { (*ifa.ifa_addr).sa_family });
            let ip = if family == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let v4 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
                Some(IpAddr::V4(Ipv4Addr::from(v4.sin_addr.s_addr.to_ne_bytes())))
            } else if family == libc::AF_INET6 {
                // SAFETY: an AF_INET6 address is a sockaddr_in6.
                let v6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
                Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
            } else {
                None
            };
            // SAFETY: ifa_name is the interface's NUL-terminated name.
            let index = unsafe { libc::if_nametoindex(ifa.ifa_name) };
            if let (Some(ip), true) = (ip, index != 0) {
                found.push(InterfaceAddr {
                    ip,
                    index,
                    loopback: flags & libc::IFF_LOOPBACK != 0,
                });
            }
        }
        entry = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// Prepares the node's socket `udp` (bound at `bound`, known to the node
/// as `local`) to send beacons to its family's group, and opens that
/// family's listener: the listener and the group.
pub fn open_beacons(
    udp: &impl AsRawFd,
    bound: SocketAddr,
    local: SocketAddr,
) -> io::Result<(UdpSocket, SocketAddr)> {
    match (bound, local) {
        (SocketAddr::V4(bound), _) => {
            prepare_sender(udp, bound)?;
            let listener = open_listener(LAN_GROUP, *bound.ip())?;
            Ok((listener, SocketAddr::V4(LAN_GROUP)))
        }
        (SocketAddr::V6(_), local) => {
            let local = match local {
                SocketAddr::V6(v6) => *v6.ip(),
                SocketAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
            };
            let interface = ipv6_interface(local).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    "no multicast-capable IPv6 interface",
                )
            })?;
            prepare_sender_v6(udp, interface)?;
            let listener = open_listener_v6(LAN_GROUP_V6, interface)?;
            Ok((listener, SocketAddr::V6(LAN_GROUP_V6)))
        }
    }
}

/// The interface IPv6 beacons use for a socket at `local`: the one holding
/// `local` when it is concrete, else the first up, multicast-capable,
/// non-loopback interface with an IPv6 address.
pub fn ipv6_interface(local: Ipv6Addr) -> Option<u32> {
    let addrs = interface_addrs();
    let holding = addrs
        .iter()
        .find(|a| !local.is_unspecified() && a.ip == IpAddr::V6(local));
    holding
        .or_else(|| addrs.iter().find(|a| a.ip.is_ipv6() && !a.loopback))
        .map(|a| a.index)
}

/// Sets the node's IPv6 socket to send beacons out of `interface`: hop
/// limit 1, looped back to other tinynodes on this host.
pub fn prepare_sender_v6(socket: &impl AsRawFd, interface: u32) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    let one: libc::c_int = 1;
    setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &one)?;
    setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &one)?;
    let index = libc::c_int::try_from(interface).unwrap_or(0);
    setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &index)
}

/// The IPv6 listener for `group` on `interface`, bound to the group with
/// that scope; non-blocking.
pub fn open_listener_v6(group: SocketAddrV6, interface: u32) -> io::Result<UdpSocket> {
    let (socket, fd) = shared_listener(libc::AF_INET6)?;
    setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &1)?;
    let scoped = SocketAddrV6::new(*group.ip(), group.port(), 0, interface);
    bind_fd_v6(fd, scoped)?;
    let request = libc::ipv6_mreq {
        ipv6mr_multiaddr: libc::in6_addr {
            s6_addr: group.ip().octets(),
        },
        ipv6mr_interface: interface,
    };
    setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &request)?;
    debug!("lan: listening for beacons on {group} via interface {interface}");
    Ok(socket)
}
