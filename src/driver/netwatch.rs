//! Watches the host's addresses so that a node on a wildcard-bound socket
//! notices when the address it is known by changes (a new DHCP lease,
//! another Wi-Fi, a VPN coming up) and gathers again.
//!
//! On Linux a route netlink socket joined to the IPv4 and IPv6 address
//! and route groups becomes readable on every such change. Its messages
//! are not parsed: any of them means "look again", once the burst that
//! one change makes (address removed, address added, routes) has been
//! quiet for [`SETTLE`]; the look is
//! [`concrete_local_addr`](super::concrete_local_addr), the same as at
//! start. Elsewhere, or where the socket cannot be made, nothing is
//! watched (logged once) and the node keeps its addresses.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// Quiet time after the last change before the addresses are looked at.
pub const SETTLE: Duration = Duration::from_millis(300);

/// Bytes read per netlink message batch (the contents are discarded).
const READ_BUFFER: usize = 8192;

/// The netlink watch and when to look again.
pub struct NetWatch {
    socket: OwnedFd,
    look_at: Option<Instant>,
}

impl NetWatch {
    /// Opens the watch (route netlink, address and route groups of both
    /// families).
    pub fn open() -> io::Result<Self> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-zero sockaddr_nl is valid; the fields are set below.
        let mut local: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        local.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        local.nl_groups = (libc::RTMGRP_IPV4_IFADDR
            | libc::RTMGRP_IPV6_IFADDR
            | libc::RTMGRP_IPV4_ROUTE
            | libc::RTMGRP_IPV6_ROUTE) as u32;
        // SAFETY: `local` is a sockaddr_nl of the size given.
        let bound = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&raw const local).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if bound != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            socket,
            look_at: None,
        })
    }

    /// Registers the watch with the loop's poll under `token`.
    pub fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut SourceFd(&self.socket.as_raw_fd()),
            token,
            Interest::READABLE,
        )
    }

    /// The socket is readable: drains it and looks again [`SETTLE`] after
    /// now (a later change pushes the look back).
    pub fn on_readable(&mut self, now: Instant) {
        let mut buf = [0u8; READ_BUFFER];
        let mut changed = false;
        loop {
            // SAFETY: `buf` is writable for its length.
            let read = unsafe {
                libc::recv(
                    self.socket.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if read > 0 {
                changed = true;
                continue;
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => break,
                // ENOBUFS: the kernel dropped messages; something changed.
                _ if error.raw_os_error() == Some(libc::ENOBUFS) => changed = true,
                _ => log::debug!("netwatch: {error}"),
            }
            break;
        }
        if changed {
            self.look_at = Some(now + SETTLE);
        }
    }

    /// When the addresses are to be looked at, if a change is pending.
    pub fn due(&self) -> Option<Instant> {
        self.look_at
    }

    /// True (once) when the settle time of a change has passed.
    pub fn take_due(&mut self, now: Instant) -> bool {
        match self.look_at {
            Some(at) if now >= at => {
                self.look_at = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_look_is_due_only_after_the_settle_time_and_only_once() {
        let mut watch = NetWatch::open().expect("a route netlink socket");
        let start = Instant::now();
        assert_eq!(watch.due(), None);
        assert!(!watch.take_due(start + SETTLE * 10));
        // Nothing to read: no change.
        watch.on_readable(start);
        assert_eq!(watch.due(), None);
        watch.look_at = Some(start + SETTLE);
        assert!(!watch.take_due(start));
        assert!(watch.take_due(start + SETTLE));
        assert!(!watch.take_due(start + SETTLE * 2));
    }
}
