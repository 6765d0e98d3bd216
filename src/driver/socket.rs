//! Binding the node's sockets: one per address family
//! (`protocol-spec.md` §1.1).
//!
//! An IPv6 socket is made IPv6-only (`IPV6_V6ONLY`) before it binds, so
//! IPv4 traffic never arrives on it as v4-mapped addresses and the IPv4
//! socket can take the same port: each family has exactly one socket, and
//! the node sees every IPv4 peer at its plain IPv4 address. The socket
//! options the LAN beacon needs (`lan.rs`) use [`setsockopt`] from here.

use std::io;
use std::net::{SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

/// `setsockopt(2)` with a value of the option's type.
pub(crate) fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: setsockopt on an open socket with a value of the option's
    // type and its exact size.
    let result = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(value).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes closing `socket` (a TCP stream) a reset (RST) instead of an
/// orderly FIN: `SO_LINGER` with a zero timeout, so the far end sees the
/// failure (port forwarding uses it when the other side of a bridge fails).
pub fn reset_on_close(socket: &impl AsRawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(
        socket.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_LINGER,
        &linger,
    )
}

/// A non-blocking UDP socket bound at `addr`, IPv6-only when `addr` is
/// IPv6.
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = match addr {
        SocketAddr::V4(_) => UdpSocket::bind(addr)?,
        SocketAddr::V6(v6) => bind_v6_only(v6)?,
    };
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn bind_v6_only(addr: SocketAddrV6) -> io::Result<UdpSocket> {
    let (socket, fd) = new_udp(libc::AF_INET6, false)?;
    setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &1)?;
    bind_fd_v6(fd, addr)?;
    Ok(socket)
}

/// A fresh, unbound UDP socket of `domain` (close-on-exec, non-blocking
/// if asked), owned, with its descriptor for the options to set before
/// it binds.
pub(crate) fn new_udp(domain: libc::c_int, nonblocking: bool) -> io::Result<(UdpSocket, RawFd)> {
    let flags = if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: a plain socket(2) call; the descriptor is owned below.
    let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | flags, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nobody else owns.
    Ok((unsafe { UdpSocket::from_raw_fd(fd) }, fd))
}

/// Binds `fd` (an AF_INET6 socket) at `addr`, scope ID included.
pub(crate) fn bind_fd_v6(fd: libc::c_int, addr: SocketAddrV6) -> io::Result<()> {
    let address = libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: addr.port().to_be(),
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: addr.ip().octets(),
        },
        sin6_scope_id: addr.scope_id(),
    };
    // SAFETY: bind with a valid sockaddr_in6 and its size.
    let result = unsafe {
        libc::bind(
            fd,
            std::ptr::from_ref(&address).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_share_one_port() {
        let Ok(v6) = bind("[::]:0".parse().unwrap()) else {
            // A host without IPv6 cannot run this test; the CI machines
            // have it.
            assert!(
                std::env::var_os("TINYNODE_NO_IPV6").is_some(),
                "no IPv6: set TINYNODE_NO_IPV6=1 to skip"
            );
            return;
        };
        let port = v6.local_addr().unwrap().port();
        let v4 = bind(SocketAddr::from(([0, 0, 0, 0], port)));
        assert!(
            v4.is_ok(),
            "the IPv4 wildcard binds the IPv6 socket's port: {v4:?}"
        );
        // The IPv6 socket never hears IPv4.
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"x", ("127.0.0.1", port)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut buf = [0u8; 8];
        assert!(
            v6.recv_from(&mut buf).is_err(),
            "v4 arrived on the v6 socket"
        );
        assert_eq!(v4.unwrap().recv_from(&mut buf).unwrap().0, 1);
    }
}
