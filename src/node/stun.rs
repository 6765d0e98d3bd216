//! STUN on the node: responses to our address-discovery client, and the
//! Binding server every node runs (answers from the address the request
//! arrived on).

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use super::route::Known;
use super::stats::DropReason;
use crate::addr::{Family, PerFamily};
use crate::api::{AddressSource, Event};
use crate::hex::hex;
use crate::id::NodeId;
use crate::mainline::engine::Mainline;
use crate::rtc::Connections;
use crate::stun::client::{ClientEvent, Rejection, StunClient};
use crate::stun::message::{Header, Message, TransactionId};
use crate::stun::server::{self, AnswerKind, Silence};
use crate::transmit::Transmit;

/// What routing asks of the node, answered by the STUN clients, the
/// connections' index and the Mainline client.
pub(super) struct Tables<'a> {
    stun: &'a PerFamily<StunClient>,
    connections: Option<&'a Connections>,
    mainline: &'a PerFamily<Mainline>,
}

impl Known for Tables<'_> {
    fn our_stun_transaction(&self, txid: &TransactionId) -> bool {
        self.stun.iter().any(|(_, client)| client.owns(txid))
    }

    fn peer_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.connections?.peer_at(addr)
    }

    fn peer_with_ufrag(&self, ufrag: &str) -> Option<NodeId> {
        self.connections?.peer_with_ufrag(ufrag)
    }

    fn mainline_awaits(&self, addr: SocketAddr) -> bool {
        self.mainline.for_addr(addr).is_some_and(|m| m.awaits(addr))
    }
}

impl Node {
    /// What routing needs to know now.
    pub(super) fn known(&self) -> Tables<'_> {
        Tables {
            stun: &self.stun_clients,
            connections: self.joined.as_ref().map(|j| &j.connections),
            mainline: &self.mainline,
        }
    }

    pub(super) fn on_stun_response(
        &mut self,
        now: Instant,
        source: SocketAddr,
        response: &Message<'_>,
    ) {
        let result = match self.stun_clients.for_addr_mut(source) {
            Some(client) => client.handle_response(now, source, response),
            None => Err(Rejection::UnknownTransaction),
        };
        match result {
            Ok(()) => self.stats.stun_responses += 1,
            Err(rejection) => self.drop_datagram(
                source,
                match rejection {
                    Rejection::UnknownTransaction => DropReason::StunUnknownTransaction,
                    Rejection::WrongSource => DropReason::StunWrongSource,
                    Rejection::BadFingerprint => DropReason::StunBadFingerprint,
                },
            ),
        }
    }

    pub(super) fn answer_binding(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        request: &Message<'_>,
    ) {
        let answer = server::answer_request(request, source, &self.config.software);
        self.send_answer(source, destination, answer);
    }

    pub(super) fn answer_malformed(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        header: &Header,
        len: usize,
    ) {
        let answer = server::answer_malformed(header, len, &self.config.software);
        self.send_answer(source, destination, answer);
    }

    fn send_answer(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        answer: Result<(Vec<u8>, AnswerKind), Silence>,
    ) {
        match answer {
            Ok((payload, kind)) => {
                debug!(
                    "stun: {} to {source} (txid {})",
                    match kind {
                        AnswerKind::Binding => "Binding success",
                        AnswerKind::BadRequest => "400 Bad Request",
                        AnswerKind::UnknownAttribute => "420 Unknown Attribute",
                    },
                    hex(payload.get(8..20).unwrap_or_default())
                );
                match kind {
                    AnswerKind::Binding => self.stats.stun_answers += 1,
                    AnswerKind::BadRequest | AnswerKind::UnknownAttribute => {
                        self.stats.stun_error_answers += 1
                    }
                }
                self.transmits.push_back(Transmit {
                    source: destination,
                    destination: source,
                    payload,
                });
            }
            Err(silence) => self.drop_datagram(
                source,
                match silence {
                    Silence::Malformed => DropReason::StunMalformed,
                    Silence::NotARequest => DropReason::StunIgnored,
                    Silence::BadFingerprint => DropReason::StunBadFingerprint,
                    Silence::AnswerTooLarge => DropReason::StunAnswerTooLarge,
                },
            ),
        }
    }

    /// Starts discovery of our public address of each family through the
    /// `servers` of that family, from the socket of that family; servers
    /// of a family we have no socket of go to the first socket's client,
    /// which reports them as unusable.
    pub(super) fn discover_public(&mut self, now: Instant, servers: Vec<SocketAddr>) {
        self.stun_servers.clone_from(&servers);
        let primary = Family::of(self.locals.primary());
        let mut by_family: PerFamily<Vec<SocketAddr>> = PerFamily::default();
        for server in servers {
            let family = match self.stun_clients.for_addr(server) {
                Some(_) => Family::of(server),
                None => primary,
            };
            let mut list = by_family.set(family, None).unwrap_or_default();
            list.push(server);
            by_family.set(family, Some(list));
        }
        for (family, servers) in by_family.iter() {
            let local = servers
                .iter()
                .find(|s| Family::of(**s) == family)
                .map_or(self.locals.primary(), |s| self.locals.toward(*s));
            if let Some(client) = self.stun_clients.get_mut(family) {
                client.start(now, local, servers.clone());
            }
        }
    }

    /// Reports what the STUN clients found.
    pub(super) fn process_stun_events(&mut self) {
        loop {
            let next = self
                .stun_clients
                .iter_mut()
                .find_map(|(_, c)| c.poll_event());
            let Some(event) = next else {
                break;
            };
            match event {
                ClientEvent::Discovered { address, server } => {
                    self.set_public(address);
                    self.events.push_back(Event::PublicAddress {
                        address,
                        via: AddressSource::Stun { server },
                    });
                }
                ClientEvent::Failed { attempts } => self
                    .events
                    .push_back(Event::PublicAddressFailed { attempts }),
            }
        }
    }
}
