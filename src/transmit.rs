//! The one thing the core asks the driver to send.

use std::net::SocketAddr;

/// A datagram the node wants sent from its socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes of the datagram.
    pub payload: Vec<u8>,
}
