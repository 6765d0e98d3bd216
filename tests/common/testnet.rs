//! A Mainline DHT testnet of an independent implementation (the `mainline`
//! crate), each node on its own loopback address (127.0.0.20, .21, …) so
//! that per-IP rules (pacing, BEP 42 exemptions) act as on the real
//! network and the kernel refuses any send outside loopback.

#![allow(deprecated)] // The crate's blocking API is what a test wants.
#![allow(dead_code)] // Each test file uses a different subset.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mainline::Dht;
use tinynode::wire::mainline::{Message, Query, decode, encode_query};

/// Nodes running until dropped.
pub struct Testnet {
    pub nodes: Vec<Dht>,
}

impl Testnet {
    /// `count` server-mode nodes bootstrapped from the first; returns once
    /// every node's table is filled.
    pub fn start(count: usize) -> Self {
        Self::start_on(count, |i| Ipv4Addr::new(127, 0, 0, 20 + i as u8), 0)
    }

    /// Like [`start`](Self::start) with node `i` bound to `ip(i)` and
    /// `port` (0: any).
    pub fn start_on(count: usize, ip: impl Fn(usize) -> Ipv4Addr, port: u16) -> Self {
        let first = Dht::builder()
            .server_mode()
            .no_bootstrap()
            .bind_address(ip(0))
            .port(port)
            .build()
            .expect("first testnet node");
        let bootstrap = first.info().local_addr().to_string();
        let mut nodes = vec![first];
        for i in 1..count {
            let node = Dht::builder()
                .server_mode()
                .bootstrap(&[bootstrap.as_str()])
                .bind_address(ip(i))
                .port(port)
                .build()
                .expect("testnet node");
            nodes.push(node);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            while !node.bootstrapped() {
                assert!(Instant::now() < deadline, "testnet did not bootstrap");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { nodes }
    }

    /// The address of node `i`, for `--mainline-bootstrap`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::V4(self.nodes[i].info().local_addr())
    }

    /// The peers node `i` itself stores under `info_hash`: the `values` of
    /// a plain `get_peers` query to it (at most 10, the crate's reply cap).
    pub fn stored_on(&self, i: usize, info_hash: [u8; 20]) -> Vec<SocketAddr> {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let query = encode_query(*b"test", &[0x42; 20], &Query::GetPeers { info_hash });
        socket.send_to(&query, self.addr(i)).expect("send");
        let mut buf = [0u8; 2048];
        let (len, _) = socket
            .recv_from(&mut buf)
            .expect("the testnet node answers");
        match decode(&buf[..len]) {
            Ok(Message::Response { body, .. }) => body.values,
            other => panic!("unexpected answer {other:?}"),
        }
    }
}
