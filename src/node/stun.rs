//! STUN on the node: responses to our address-discovery client, and the
//! Binding server every node runs (answers from the address the request
//! arrived on).

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use super::route::Known;
use super::stats::DropReason;
use crate::api::{AddressSource, Event};
use crate::hex::hex;
use crate::id::NodeId;
use crate::mainline::engine::Mainline;
use crate::rtc::Connections;
use crate::stun::client::{ClientEvent, Rejection, StunClient};
use crate::stun::message::{Header, Message, TransactionId};
use crate::stun::server::{self, AnswerKind, Silence};
use crate::transmit::Transmit;

/// What routing asks of the node, answered by the STUN client, the
/// connections' index and the Mainline client.
pub(super) struct Tables<'a> {
    stun: &'a StunClient,
    connections: Option<&'a Connections>,
    mainline: Option<&'a Mainline>,
}

impl Known for Tables<'_> {
    fn our_stun_transaction(&self, txid: &TransactionId) -> bool {
        self.stun.owns(txid)
    }

    fn peer_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.connections?.peer_at(addr)
    }

    fn peer_with_ufrag(&self, ufrag: &str) -> Option<NodeId> {
        self.connections?.peer_with_ufrag(ufrag)
    }

    fn mainline_awaits(&self, addr: SocketAddr) -> bool {
        self.mainline.is_some_and(|m| m.awaits(addr))
    }
}

impl Node {
    /// What routing needs to know now.
    pub(super) fn known(&self) -> Tables<'_> {
        Tables {
            stun: &self.stun_client,
            connections: self.joined.as_ref().map(|j| &j.connections),
            mainline: self.mainline.as_ref(),
        }
    }

    pub(super) fn on_stun_response(
        &mut self,
        now: Instant,
        source: SocketAddr,
        response: &Message<'_>,
    ) {
        match self.stun_client.handle_response(now, source, response) {
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

    /// Reports what the STUN client found.
    pub(super) fn process_stun_events(&mut self) {
        while let Some(event) = self.stun_client.poll_event() {
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
