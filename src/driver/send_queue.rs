//! Datagrams waiting for the socket to accept them.
//!
//! UDP sends rarely block, but when the kernel buffer is full `send_to`
//! returns `WouldBlock`; the datagram then waits here and the driver asks mio
//! for writability. The queue is bounded: when full, the oldest datagram is
//! dropped (and counted), because under overload fresh traffic matters more.
//! Other send errors (unreachable network, refused, a firewall's EPERM) drop
//! that one datagram and never stop the node; they are warned about at the
//! 1st, 2nd, 4th, 8th … failure, so a firewall dropping a share of what we
//! send does not flood the log.

use std::collections::VecDeque;
use std::io;

use log::{debug, warn};

use crate::transmit::Transmit;

/// Most datagrams held while the socket is not writable.
pub const SEND_QUEUE_CAPACITY: usize = 1024;

/// Whether everything queued was handed to the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flushed {
    /// The queue is empty.
    All,
    /// The socket would block; datagrams remain.
    Blocked,
}

/// A bounded FIFO of datagrams to send.
pub struct SendQueue {
    items: VecDeque<Transmit>,
    capacity: usize,
    overflowed: u64,
    failed: u64,
}

impl SendQueue {
    /// An empty queue holding at most `capacity` datagrams.
    pub fn new(capacity: usize) -> Self {
        Self {
            items: VecDeque::new(),
            capacity,
            overflowed: 0,
            failed: 0,
        }
    }

    /// Queues a datagram, dropping the oldest one if the queue is full.
    pub fn push(&mut self, transmit: Transmit) {
        if self.items.len() >= self.capacity {
            self.items.pop_front();
            self.overflowed += 1;
            // Once full, a queue overflows once per datagram: warn at 1, 2,
            // 4, 8 … drops.
            if self.overflowed.is_power_of_two() {
                warn!(
                    "send queue full ({} datagrams): dropped the oldest ({} dropped so far)",
                    self.capacity, self.overflowed
                );
            }
        }
        self.items.push_back(transmit);
    }

    /// True when nothing waits.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Datagrams dropped because the queue was full.
    #[cfg(test)]
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Datagrams dropped because sending failed with an error other than `WouldBlock`.
    #[cfg(test)]
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Sends queued datagrams in order with `send` until the queue is empty
    /// or `send` reports `WouldBlock`.
    pub fn flush(&mut self, mut send: impl FnMut(&Transmit) -> io::Result<usize>) -> Flushed {
        while let Some(front) = self.items.front() {
            match send(front) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Flushed::Blocked,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.failed += 1;
                    if front.destination.ip().is_multicast() {
                        // A LAN beacon where the host has no multicast
                        // route or drops multicast: the other sources
                        // carry on, so this is no warning.
                        debug!("lan: beacon to {} not sent: {error}", front.destination);
                    } else if self.failed.is_power_of_two() {
                        // A firewall that drops what we send (EPERM) fails
                        // every datagram: warn at 1, 2, 4, 8 … failures.
                        warn!(
                            "send to {} failed: {error} ({} sends failed so far)",
                            front.destination, self.failed
                        );
                    } else {
                        debug!("send to {} failed: {error}", front.destination);
                    }
                }
            }
            self.items.pop_front();
        }
        Flushed::All
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transmit(n: u8) -> Transmit {
        Transmit {
            source: std::net::SocketAddr::from(([127, 0, 0, 1], 8)),
            destination: std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
            payload: vec![n],
        }
    }

    #[test]
    fn would_block_keeps_the_rest_in_order() {
        let mut queue = SendQueue::new(8);
        (1..=4).for_each(|n| queue.push(transmit(n)));
        let mut sent = Vec::new();
        let result = queue.flush(|t| {
            if sent.len() == 2 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            sent.push(t.payload[0]);
            Ok(1)
        });
        assert_eq!(result, Flushed::Blocked);
        assert_eq!(sent, [1, 2]);
        let result = queue.flush(|t| {
            sent.push(t.payload[0]);
            Ok(1)
        });
        assert_eq!(result, Flushed::All);
        assert_eq!(sent, [1, 2, 3, 4]);
        assert!(queue.is_empty());
    }

    #[test]
    fn hard_errors_drop_one_datagram_and_go_on() {
        let mut queue = SendQueue::new(8);
        (1..=3).for_each(|n| queue.push(transmit(n)));
        let mut sent = Vec::new();
        let result = queue.flush(|t| {
            if t.payload[0] == 2 {
                return Err(io::Error::from_raw_os_error(libc::ENETUNREACH));
            }
            sent.push(t.payload[0]);
            Ok(1)
        });
        assert_eq!(result, Flushed::All);
        assert_eq!(sent, [1, 3]);
        assert_eq!(queue.failed(), 1);
    }

    #[test]
    fn full_queue_drops_the_oldest() {
        let mut queue = SendQueue::new(2);
        (1..=3).for_each(|n| queue.push(transmit(n)));
        assert_eq!(queue.overflowed(), 1);
        let mut sent = Vec::new();
        queue.flush(|t| {
            sent.push(t.payload[0]);
            Ok(1)
        });
        assert_eq!(sent, [2, 3]);
    }
}
