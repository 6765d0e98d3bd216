//! STUN Binding client (RFC 5389 §7.2.1, §7.3.3): discovers the public
//! address of the node's socket by asking a list of servers one after another.
//!
//! Each server gets one transaction, retransmitted on the RFC 5389 schedule:
//! the first request at once, the next after RTO, each gap doubling, at most
//! Rc requests, then a final wait of Rm × RTO. [`RetransmitConfig`] holds the
//! numbers (RFC defaults: RTO 500 ms, Rc 7, Rm 16, 39.5 s in all) and an
//! optional cap per server so interactive use fails over sooner. When a server
//! times out or answers with an error, the next one is tried; when none is
//! left, the failure names every server and why it failed.
//!
//! A response counts only if it carries the outstanding transaction ID, comes
//! from the address the request went to, and has a valid FINGERPRINT when it
//! has one. Everything else is rejected and reported to the caller, which
//! counts it. The client is sans-IO: time comes in as `now`.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::attribute::Attribute;
use super::message::{Class, FingerprintStatus, Message, MessageEncoder, Method, TransactionId};
use crate::api::{FailureReason, RetransmitConfig, ServerFailure};
use crate::hex::hex;
use crate::rng::Rng;
use crate::transmit::Transmit;

/// What the client reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A server told us the address our requests came from.
    Discovered {
        /// The public (server-reflexive) address.
        address: SocketAddr,
        /// The server that reported it.
        server: SocketAddr,
    },
    /// Every server failed.
    Failed {
        /// Each server tried, in order, with its reason.
        attempts: Vec<ServerFailure>,
    },
}

/// Why a STUN response was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// No outstanding transaction has this ID.
    UnknownTransaction,
    /// The transaction matched but the response came from another address.
    WrongSource,
    /// FINGERPRINT present and wrong.
    BadFingerprint,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownTransaction => "no outstanding transaction with this ID",
            Self::WrongSource => "response from an address the request was not sent to",
            Self::BadFingerprint => "FINGERPRINT does not match",
        })
    }
}

/// The outstanding request to one server.
struct Transaction {
    server: SocketAddr,
    id: TransactionId,
    request: Vec<u8>,
    started: Instant,
    sends: u32,
    give_up_at: Instant,
}

impl Transaction {
    /// When the next retransmission is due, if the schedule has one left.
    fn next_send_at(&self, config: &RetransmitConfig) -> Option<Instant> {
        (self.sends < config.max_sends)
            .then(|| self.started + config.send_offset(self.sends))
            .filter(|at| *at < self.give_up_at)
    }
}

/// Binding client with failover across servers.
pub struct StunClient {
    config: RetransmitConfig,
    rng: Rng,
    local: SocketAddr,
    pending: VecDeque<SocketAddr>,
    current: Option<Transaction>,
    failures: Vec<ServerFailure>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
}

impl StunClient {
    /// An idle client whose transaction IDs come from `rng`.
    pub fn new(config: RetransmitConfig, rng: Rng) -> Self {
        Self {
            config,
            rng,
            local: SocketAddr::from(([0, 0, 0, 0], 0)),
            pending: VecDeque::new(),
            current: None,
            failures: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Starts a discovery over `servers`, in order, from the socket bound at
    /// `local`. Any discovery under way is abandoned.
    pub fn start(&mut self, now: Instant, local: SocketAddr, servers: Vec<SocketAddr>) {
        self.local = local;
        self.pending = servers.into();
        self.current = None;
        self.failures.clear();
        self.start_next(now);
    }

    /// True if `id` is the outstanding transaction's: a response with it
    /// is ours, not an ICE check's.
    pub fn owns(&self, id: &TransactionId) -> bool {
        self.current.as_ref().is_some_and(|t| t.id == *id)
    }

    #[cfg(test)]
    /// True while a discovery is under way.
    pub fn is_active(&self) -> bool {
        self.current.is_some()
    }

    /// Offers a response (success or error class). `Ok` when it belonged to
    /// the outstanding transaction and was acted on.
    pub fn handle_response(
        &mut self,
        now: Instant,
        source: SocketAddr,
        response: &Message<'_>,
    ) -> Result<(), Rejection> {
        let transaction = self
            .current
            .as_ref()
            .filter(|t| t.id == response.transaction_id())
            .ok_or(Rejection::UnknownTransaction)?;
        if source != transaction.server {
            return Err(Rejection::WrongSource);
        }
        if response.fingerprint_status() == FingerprintStatus::Invalid {
            return Err(Rejection::BadFingerprint);
        }
        let server = transaction.server;
        let outcome = match response.class() {
            Class::SuccessResponse => response
                .reflexive_address()
                .ok_or(FailureReason::NoAddressInResponse),
            _ => Err(error_response_reason(response)),
        };
        match outcome {
            Ok(address) => {
                debug!(
                    "stun: {server} says we are {address} (txid {})",
                    hex(&transaction.id.0)
                );
                self.current = None;
                self.pending.clear();
                self.events
                    .push_back(ClientEvent::Discovered { address, server });
            }
            Err(reason) => {
                self.follow_alternate_server(response);
                self.fail_current(now, reason);
            }
        }
        Ok(())
    }

    /// Sends due retransmissions and gives up on a server whose time is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(transaction) = self.current.as_mut() else {
            return;
        };
        if now >= transaction.give_up_at {
            let reason = FailureReason::NoResponse {
                sends: transaction.sends,
                waited: now.saturating_duration_since(transaction.started),
            };
            self.fail_current(now, reason);
            return;
        }
        if transaction
            .next_send_at(&self.config)
            .is_some_and(|at| now >= at)
        {
            transaction.sends += 1;
            debug!(
                "stun: retransmit {} of {} to {} (txid {})",
                transaction.sends,
                self.config.max_sends,
                transaction.server,
                hex(&transaction.id.0)
            );
            self.transmits.push_back(Transmit {
                source: self.local,
                destination: transaction.server,
                payload: transaction.request.clone(),
            });
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let transaction = self.current.as_ref()?;
        Some(match transaction.next_send_at(&self.config) {
            Some(at) => at.min(transaction.give_up_at),
            None => transaction.give_up_at,
        })
    }

    fn start_next(&mut self, now: Instant) {
        while let Some(server) = self.pending.pop_front() {
            if server.is_ipv4() != self.local.is_ipv4() {
                let reason = FailureReason::AddressFamilyMismatch { local: self.local };
                debug!("stun: skipping {server}: {reason}");
                self.failures.push(ServerFailure { server, reason });
                continue;
            }
            let id = TransactionId(self.rng.bytes());
            let mut encoder = MessageEncoder::new(Class::Request, Method::Binding, id);
            encoder.push_fingerprint();
            let request = encoder.finish();
            debug!("stun: Binding request to {server} (txid {})", hex(&id.0));
            self.transmits.push_back(Transmit {
                source: self.local,
                destination: server,
                payload: request.clone(),
            });
            self.current = Some(Transaction {
                server,
                id,
                request,
                started: now,
                sends: 1,
                give_up_at: now + self.config.transaction_timeout(),
            });
            return;
        }
        self.current = None;
        debug!("stun: every server failed");
        self.events.push_back(ClientEvent::Failed {
            attempts: std::mem::take(&mut self.failures),
        });
    }

    fn fail_current(&mut self, now: Instant, reason: FailureReason) {
        if let Some(transaction) = self.current.take() {
            debug!("stun: {} failed: {reason}", transaction.server);
            self.failures.push(ServerFailure {
                server: transaction.server,
                reason,
            });
        }
        self.start_next(now);
    }

    /// On 300 (Try Alternate), queue the ALTERNATE-SERVER next unless it was
    /// already tried or queued (§11).
    fn follow_alternate_server(&mut self, response: &Message<'_>) {
        if !matches!(error_code(response), Some((300, _))) {
            return;
        }
        let alternate = response.attributes().find_map(|attribute| match attribute {
            Attribute::AlternateServer(addr) => Some(addr),
            _ => None,
        });
        let Some(alternate) = alternate else { return };
        let seen = self.failures.iter().any(|f| f.server == alternate)
            || self.current.as_ref().is_some_and(|t| t.server == alternate)
            || self.pending.contains(&alternate);
        if !seen {
            debug!("stun: trying alternate server {alternate}");
            self.pending.push_front(alternate);
        }
    }
}

fn error_code<'a>(response: &Message<'a>) -> Option<(u16, &'a str)> {
    response.attributes().find_map(|attribute| match attribute {
        Attribute::ErrorCode(error) => Some((error.code, error.reason)),
        _ => None,
    })
}

fn error_response_reason(response: &Message<'_>) -> FailureReason {
    let (code, reason) = error_code(response).unwrap_or((0, "without ERROR-CODE"));
    FailureReason::ErrorResponse {
        code,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::attribute::ErrorCode;
    use std::time::Duration;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn client() -> StunClient {
        StunClient::new(RetransmitConfig::default(), Rng::from_seed([5; 32]))
    }

    fn success(request: &[u8], mapped: SocketAddr) -> Vec<u8> {
        let id = Message::decode(request).unwrap().transaction_id();
        let mut encoder = MessageEncoder::new(Class::SuccessResponse, Method::Binding, id);
        encoder
            .push(&Attribute::XorMappedAddress(mapped))
            .push_fingerprint();
        encoder.finish()
    }

    /// Runs the client with no answers and returns the offsets (from start) of
    /// every request it sent and the moment it reported failure.
    fn silent_run(
        config: RetransmitConfig,
        servers: usize,
    ) -> (Vec<Duration>, Duration, Vec<ServerFailure>) {
        let start = Instant::now();
        let mut client = StunClient::new(config, Rng::from_seed([1; 32]));
        let list = (0..servers)
            .map(|i| addr(&format!("192.0.2.{}:3478", i + 1)))
            .collect();
        client.start(start, addr("10.0.0.1:5000"), list);
        let mut sends = Vec::new();
        let mut now = start;
        loop {
            while client.poll_transmit().is_some() {
                sends.push(now - start);
            }
            if let Some(ClientEvent::Failed { attempts }) = client.poll_event() {
                return (sends, now - start, attempts);
            }
            now = client.poll_timeout().expect("a deadline while active");
            client.handle_timeout(now);
        }
    }

    #[test]
    fn rfc5389_schedule_with_default_numbers() {
        let (sends, failed_at, attempts) = silent_run(RetransmitConfig::default(), 1);
        let expected: Vec<Duration> = [0, 500, 1500, 3500, 7500, 15500, 31500]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        assert_eq!(sends, expected);
        assert_eq!(failed_at, Duration::from_millis(39_500));
        assert_eq!(
            attempts[0].reason,
            FailureReason::NoResponse {
                sends: 7,
                waited: Duration::from_millis(39_500)
            }
        );
    }

    #[test]
    fn configurable_numbers_and_cap_fail_over_in_order() {
        let config = RetransmitConfig {
            initial_rto: Duration::from_millis(100),
            max_sends: 3,
            final_wait_rtos: 4,
            per_server_limit: Some(Duration::from_millis(600)),
        };
        assert_eq!(config.transaction_timeout(), Duration::from_millis(600));
        let (sends, failed_at, attempts) = silent_run(config, 2);
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        assert_eq!(sends, ms(&[0, 100, 300, 600, 700, 900]));
        assert_eq!(failed_at, Duration::from_millis(1200));
        let servers: Vec<_> = attempts.iter().map(|a| a.server).collect();
        assert_eq!(servers, [addr("192.0.2.1:3478"), addr("192.0.2.2:3478")]);
    }

    #[test]
    fn answer_from_the_asked_server_is_accepted() {
        let now = Instant::now();
        let server = addr("192.0.2.1:3478");
        let mut c = client();
        c.start(now, addr("10.0.0.1:5000"), vec![server]);
        let request = c.poll_transmit().unwrap();
        assert_eq!(request.destination, server);
        let response = success(&request.payload, addr("203.0.113.9:41000"));
        c.handle_response(now, server, &Message::decode(&response).unwrap())
            .unwrap();
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::Discovered {
                address: addr("203.0.113.9:41000"),
                server
            })
        );
        assert!(!c.is_active());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn responses_from_elsewhere_or_for_other_transactions_are_rejected() {
        let now = Instant::now();
        let server = addr("192.0.2.1:3478");
        let mut c = client();
        c.start(now, addr("10.0.0.1:5000"), vec![server]);
        let request = c.poll_transmit().unwrap();
        let response = success(&request.payload, addr("203.0.113.9:41000"));
        let message = Message::decode(&response).unwrap();
        assert_eq!(
            c.handle_response(now, addr("192.0.2.99:3478"), &message),
            Err(Rejection::WrongSource)
        );
        let mut other = MessageEncoder::new(
            Class::SuccessResponse,
            Method::Binding,
            TransactionId([0; 12]),
        );
        other.push(&Attribute::XorMappedAddress(addr("1.1.1.1:1")));
        let other = other.finish();
        assert_eq!(
            c.handle_response(now, server, &Message::decode(&other).unwrap()),
            Err(Rejection::UnknownTransaction)
        );
        let mut corrupted = response.clone();
        let last = corrupted.len() - 1;
        corrupted[last] ^= 0xff;
        assert_eq!(
            c.handle_response(now, server, &Message::decode(&corrupted).unwrap()),
            Err(Rejection::BadFingerprint)
        );
        assert!(c.is_active());
        assert_eq!(c.poll_event(), None);
    }

    #[test]
    fn error_response_moves_to_next_server_and_alternate_is_followed() {
        let now = Instant::now();
        let first = addr("192.0.2.1:3478");
        let alternate = addr("192.0.2.7:3478");
        let last = addr("192.0.2.2:3478");
        let mut c = client();
        c.start(now, addr("10.0.0.1:5000"), vec![first, last]);
        let request = c.poll_transmit().unwrap();
        let id = Message::decode(&request.payload).unwrap().transaction_id();
        let mut encoder = MessageEncoder::new(Class::ErrorResponse, Method::Binding, id);
        encoder
            .push(&Attribute::ErrorCode(ErrorCode {
                code: 300,
                reason: "Try Alternate",
            }))
            .push(&Attribute::AlternateServer(alternate));
        let response = encoder.finish();
        c.handle_response(now, first, &Message::decode(&response).unwrap())
            .unwrap();
        assert_eq!(c.poll_transmit().unwrap().destination, alternate);
        c.handle_timeout(now + Duration::from_secs(40));
        assert_eq!(c.poll_transmit().unwrap().destination, last);
        c.handle_timeout(now + Duration::from_secs(80));
        let Some(ClientEvent::Failed { attempts }) = c.poll_event() else {
            panic!("expected failure")
        };
        assert_eq!(
            attempts[0].reason,
            FailureReason::ErrorResponse {
                code: 300,
                reason: "Try Alternate".into()
            }
        );
        assert_eq!(
            attempts.iter().map(|a| a.server).collect::<Vec<_>>(),
            [first, alternate, last]
        );
    }

    #[test]
    fn servers_of_the_other_family_fail_without_traffic() {
        let now = Instant::now();
        let mut c = client();
        c.start(now, addr("10.0.0.1:5000"), vec![addr("[2001:db8::1]:3478")]);
        assert_eq!(c.poll_transmit(), None);
        let Some(ClientEvent::Failed { attempts }) = c.poll_event() else {
            panic!("expected failure")
        };
        assert!(matches!(
            attempts[0].reason,
            FailureReason::AddressFamilyMismatch { .. }
        ));
    }

    #[test]
    fn retransmissions_repeat_the_same_transaction() {
        let now = Instant::now();
        let mut c = client();
        c.start(now, addr("10.0.0.1:5000"), vec![addr("192.0.2.1:3478")]);
        let first = c.poll_transmit().unwrap();
        c.handle_timeout(now + Duration::from_millis(500));
        assert_eq!(c.poll_transmit().unwrap(), first);
    }
}
