//! UDP forwarding for `expose --udp` and `connect --udp-listen`: each
//! client address's datagrams travel in a flow of their own (a stream of
//! kind UDP: unordered, unreliable, one datagram per message), so two
//! clients' traffic never mixes. On the exposing side each flow has its
//! own socket connected to the service, so the service's answers find
//! their flow. A flow quiet for [`FLOW_IDLE`] ends on both sides.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use tinynode::{Node, NodeId, StreamId};

/// A flow with no datagram either way for this long ends.
pub const FLOW_IDLE: Duration = Duration::from_secs(120);
/// Largest datagram read from a socket.
const MAX_DATAGRAM: usize = 64 * 1024;

/// The exposing side: a socket per flow, connected to the service.
#[derive(Default)]
pub struct ServiceFlows {
    by_stream: BTreeMap<StreamId, (Token, UdpSocket, Instant)>,
    by_token: BTreeMap<Token, StreamId>,
}

impl ServiceFlows {
    /// A member opened `flow` to the service at `target`: a socket for it,
    /// registered under `token`.
    pub fn open(
        &mut self,
        registry: &Registry,
        token: Token,
        flow: StreamId,
        target: SocketAddr,
    ) -> io::Result<()> {
        let any: SocketAddr = if target.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let mut socket = UdpSocket::bind(any)?;
        socket.connect(target)?;
        registry.register(&mut socket, token, Interest::READABLE)?;
        self.by_token.insert(token, flow);
        self.by_stream.insert(flow, (token, socket, Instant::now()));
        Ok(())
    }

    /// True if `flow` is one of these.
    pub fn has(&self, flow: StreamId) -> bool {
        self.by_stream.contains_key(&flow)
    }

    /// A datagram from the member on `flow`: to the service.
    pub fn deliver(&mut self, flow: StreamId, datagram: &[u8]) {
        if let Some((_, socket, last)) = self.by_stream.get_mut(&flow) {
            *last = Instant::now();
            if let Err(error) = socket.send(datagram) {
                log::debug!("udp: to the service: {error}");
            }
        }
    }

    /// The socket at `token` is readable: its datagrams go to its flow.
    /// False if `token` is not a flow's.
    pub fn on_ready(&mut self, node: &mut Node, token: Token) -> bool {
        let Some(&flow) = self.by_token.get(&token) else {
            return false;
        };
        if let Some((_, socket, last)) = self.by_stream.get_mut(&flow) {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        *last = Instant::now();
                        let _ = node.stream_write(Instant::now(), flow, &buf[..n]);
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    // An ICMP error (the service is not listening): the
                    // datagram is lost, as UDP's would be.
                    Err(error) => log::debug!("udp: from the service: {error}"),
                }
            }
        }
        true
    }

    /// `flow` ended: its socket goes.
    pub fn close(&mut self, registry: Option<&Registry>, flow: StreamId) {
        if let Some((token, mut socket, _)) = self.by_stream.remove(&flow) {
            self.by_token.remove(&token);
            if let Some(registry) = registry {
                let _ = registry.deregister(&mut socket);
            }
        }
    }

    /// Ends the flows idle for [`FLOW_IDLE`].
    pub fn expire(&mut self, node: &mut Node, registry: Option<&Registry>, now: Instant) {
        let idle: Vec<StreamId> = self
            .by_stream
            .iter()
            .filter(|(_, (_, _, last))| now.duration_since(*last) >= FLOW_IDLE)
            .map(|(flow, _)| *flow)
            .collect();
        for flow in idle {
            let _ = node.stream_finish(now, flow);
            self.close(registry, flow);
        }
    }

    /// When the next flow would expire.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_stream
            .values()
            .map(|(_, _, last)| *last + FLOW_IDLE)
            .min()
    }
}

/// The connecting side: one socket clients send to, a flow per client
/// address.
pub struct ClientFlows {
    /// The socket clients send to.
    pub socket: UdpSocket,
    by_client: BTreeMap<SocketAddr, (StreamId, Instant)>,
    /// Each flow's client, and whether the member sent anything on it.
    by_stream: BTreeMap<StreamId, (SocketAddr, Instant, bool)>,
    /// Members that closed a flow at once, without a datagram: they take
    /// no flows (they run `join`, or expose no such service). Asked again
    /// only once they reconnect.
    refusers: Vec<NodeId>,
}

impl ClientFlows {
    /// Clients send to `socket`.
    pub fn new(socket: UdpSocket) -> Self {
        Self {
            socket,
            by_client: BTreeMap::new(),
            by_stream: BTreeMap::new(),
            refusers: Vec::new(),
        }
    }

    /// `peer` (re)connected: it is asked again.
    pub fn forget_refusal(&mut self, peer: NodeId) {
        self.refusers.retain(|p| *p != peer);
    }

    /// True if `flow` is one of these.
    pub fn has(&self, flow: StreamId) -> bool {
        self.by_stream.contains_key(&flow)
    }

    /// Reads what clients sent: each datagram goes to its client's flow,
    /// opened with `open` for a new client, given the members that
    /// refused flows (none: the datagram is dropped, as a network with no
    /// route would drop it).
    pub fn on_ready(
        &mut self,
        node: &mut Node,
        mut open: impl FnMut(&mut Node, &[NodeId]) -> Option<StreamId>,
    ) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (n, client) = match self.socket.recv_from(&mut buf) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    log::debug!("udp: from a client: {error}");
                    continue;
                }
            };
            let now = Instant::now();
            let flow = match self.by_client.get_mut(&client) {
                Some((flow, last)) => {
                    *last = now;
                    *flow
                }
                None => {
                    let Some(flow) = open(node, &self.refusers) else {
                        log::debug!(
                            "udp: no member exposing a service; dropped a datagram from {client}"
                        );
                        continue;
                    };
                    log::debug!("udp: a flow for {client}");
                    self.by_client.insert(client, (flow, now));
                    self.by_stream.insert(flow, (client, now, false));
                    flow
                }
            };
            let _ = node.stream_write(now, flow, &buf[..n]);
        }
    }

    /// A datagram from the member on `flow`: to its client.
    pub fn deliver(&mut self, flow: StreamId, datagram: &[u8]) {
        if let Some((client, _, answered)) = self.by_stream.get_mut(&flow) {
            *answered = true;
            if let Some((_, last)) = self.by_client.get_mut(client) {
                *last = Instant::now();
            }
            if let Err(error) = self.socket.send_to(datagram, *client) {
                log::debug!("udp: to {client}: {error}");
            }
        }
    }

    /// `flow` ended: its client's next datagram opens another. A flow
    /// the member closed unanswered well before the idle time was
    /// refused: that member is not asked again until it reconnects.
    pub fn close(&mut self, flow: StreamId) {
        if let Some((client, opened, answered)) = self.by_stream.remove(&flow) {
            self.by_client.remove(&client);
            let refused = !answered && opened.elapsed() < FLOW_IDLE / 2;
            if refused && !self.refusers.contains(&flow.peer()) {
                log::debug!("udp: member {} refused a flow", flow.peer().short());
                self.refusers.push(flow.peer());
            }
        }
    }

    /// Ends the flows idle for [`FLOW_IDLE`].
    pub fn expire(&mut self, node: &mut Node, now: Instant) {
        let idle: Vec<StreamId> = self
            .by_client
            .values()
            .filter(|(_, last)| now.duration_since(*last) >= FLOW_IDLE)
            .map(|(flow, _)| *flow)
            .collect();
        for flow in idle {
            let _ = node.stream_finish(now, flow);
            self.close(flow);
        }
    }

    /// When the next flow would expire.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_client
            .values()
            .map(|(_, last)| *last + FLOW_IDLE)
            .min()
    }
}
