//! The WebRTC connections on the node: datagrams routed to them, their
//! signals sent along signal paths, their events reported, messages out.

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use crate::id::NodeId;

impl Node {
    /// An ICE or DTLS datagram that routing gave to `peer`'s connection.
    pub(super) fn deliver_to_connection(
        &mut self,
        now: Instant,
        peer: NodeId,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        if let Some(joined) = self.joined.as_mut() {
            joined
                .connections
                .receive(now, peer, source, destination, data);
            self.stats.webrtc_datagrams += 1;
            self.unsettled = Some(now);
        }
    }

    /// Sends the connections' signals and reports their events.
    pub(super) fn process_connections(&mut self, now: Instant) {
        let Some(joined) = self.joined.as_mut() else {
            return;
        };
        let links = joined.connections.take_link_counts();
        self.stats.loss_reports += links.loss_reports;
        self.stats.extra_copies += links.extra_copies;
        let mut outgoing = Vec::new();
        while let Some(signal) = joined.connections.poll_signal() {
            outgoing.push(signal);
        }
        while let Some(event) = joined.connections.poll_event() {
            self.events.push_back(event);
        }
        let mut unanswered = Vec::new();
        while let Some(peer) = joined.connections.poll_unanswered() {
            unanswered.push(peer);
        }
        for peer in unanswered {
            self.offer_unanswered(&peer);
        }
        for signal in outgoing {
            self.send_signal(now, signal);
        }
    }

    /// Queues text lines for every connected member.
    pub(super) fn send_texts(&mut self, now: Instant, texts: &[String]) {
        let reached = self
            .joined
            .as_mut()
            .map_or(0, |j| j.connections.send_texts(now, texts));
        debug!("queued {} messages for {reached} peers", texts.len());
    }

    /// Queues bytes for one member ([`Command::SendTo`](crate::Command::SendTo)):
    /// a failure is reported as [`Event::SendFailed`](crate::Event::SendFailed).
    pub(super) fn send_to_command(&mut self, now: Instant, peer: NodeId, bytes: &[u8]) {
        if let Err(reason) = self.send_to(now, peer, bytes) {
            debug!(
                "{} bytes to {} not sent: {reason}",
                bytes.len(),
                peer.short()
            );
            self.events
                .push_back(crate::Event::SendFailed { peer, reason });
        }
    }
}
