//! Sealing checks: bytes that open as a record, a signal or a beacon are
//! genuine seals of the fuzz meeting, and what is sealed opens to exactly
//! what went in.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use crate::api::{Command, Input, NodeConfig, Output, WallClock};
use crate::beacon;
use crate::codec::WireAddr;
use crate::demux::{Protocol, classify};
use crate::dht::wire::{Blob, BoundedList};
use crate::id::NodeId;
use crate::identity::Identity;
use crate::meeting::Meeting;
use crate::nat::NatClass;
use crate::node::Node;
use crate::record;
use crate::signal::{self, Envelope, RelayHint, SessionParams, SignalKind};

/// The meeting whose key the record target uses.
pub const FUZZ_MEETING_CODE: &str = "fuzz meeting";

/// The meeting of [`FUZZ_MEETING_CODE`], derived once (PBKDF2 is slow by
/// design).
pub(super) fn fuzz_meeting() -> &'static Meeting {
    static MEETING: OnceLock<Meeting> = OnceLock::new();
    MEETING.get_or_init(|| Meeting::derive(FUZZ_MEETING_CODE).expect("non-empty code"))
}

/// Opening a sealed record: bytes that open are a genuine seal by the fuzz
/// identity (re-sealing the opened fields with the blob's own nonce gives
/// the blob back byte for byte, since Ed25519 signing is deterministic;
/// anything else is a forgery), and a record sealed from fuzzer-chosen
/// addresses and time opens to exactly what was sealed.
pub fn check_record_open(data: &[u8]) {
    let meeting = fuzz_meeting();
    let identity = Identity::from_seed([7; 32]);
    if let Ok(opened) = record::open(meeting, data) {
        assert_eq!(
            opened.node_id,
            identity.node_id(),
            "opened a record of an unknown key"
        );
        let nonce = *data
            .first_chunk::<12>()
            .expect("an opened blob has its nonce");
        let again = record::seal(
            meeting,
            &identity,
            &opened.addrs,
            record::NetworkFacts {
                nat: opened.nat,
                reachable: opened.reachable,
            },
            opened.timestamp_ms,
            nonce,
        );
        assert_eq!(again, data, "a blob that opens must be a genuine seal");
        return;
    }
    let (time, rest) = data
        .split_first_chunk::<8>()
        .map_or((0, data), |(t, r)| (u64::from_le_bytes(*t), r));
    let addrs: Vec<SocketAddr> = rest
        .chunks_exact(6)
        .take(record::MAX_RECORD_ADDRS)
        .map(|c| SocketAddr::from(([c[0], c[1], c[2], c[3]], u16::from_be_bytes([c[4], c[5]]))))
        .collect();
    let facts = record::NetworkFacts {
        nat: NatClass::from_code(time as u8 % 6),
        reachable: time % 2 == 1,
    };
    let blob = record::seal(meeting, &identity, &addrs, facts, time, [1; 12]);
    let opened = record::open(meeting, &blob).expect("a sealed record opens");
    assert_eq!(
        (
            opened.addrs,
            opened.timestamp_ms,
            opened.node_id,
            opened.nat,
            opened.reachable
        ),
        (addrs, time, identity.node_id(), facts.nat, facts.reachable)
    );
}

/// Unix time (ms) at which the signal target reads, and its seeds.
pub const FUZZ_SIGNAL_TIME_MS: u64 = 1_800_000_000_000;

/// Opening signals: bytes that open are a genuine seal by the fuzz sender
/// (re-sealing the opened fields with the blob's own nonce gives the blob
/// back byte for byte; anything else is a forgery), and a signal sealed by
/// a member for us opens to exactly what was sent (sequence, session, kind).
pub fn check_signal_open(data: &[u8]) {
    let meeting = fuzz_meeting();
    let local = Identity::from_seed([8; 32]).node_id();
    let sender = Identity::from_seed([7; 32]);
    if let Ok(opened) = signal::open(meeting, &local, FUZZ_SIGNAL_TIME_MS, data) {
        assert_eq!(
            opened.from,
            sender.node_id(),
            "opened a signal of an unknown key"
        );
        let nonce = *data
            .first_chunk::<12>()
            .expect("an opened blob has its nonce");
        let envelope = Envelope {
            to: local,
            seq: opened.seq,
            timestamp_ms: opened.timestamp_ms,
            session: opened.session,
        };
        let again = signal::seal(meeting, &sender, envelope, opened.kind, nonce);
        assert_eq!(again, data, "a blob that opens must be a genuine seal");
        return;
    }
    let (seq, rest) = data
        .split_first_chunk::<8>()
        .map_or((0, data), |(s, r)| (u64::from_le_bytes(*s), r));
    let envelope = Envelope {
        to: local,
        seq,
        timestamp_ms: FUZZ_SIGNAL_TIME_MS,
        session: seq.rotate_left(7),
    };
    let kind = match rest.first() {
        Some(b) if b % 2 == 0 => SignalKind::Close,
        _ => SignalKind::Offer(SessionParams {
            ice_ufrag: Blob(rest.iter().take(32).copied().collect()),
            ice_pwd: Blob(rest.iter().skip(32).take(64).copied().collect()),
            fingerprint_hash: Blob(b"sha-256".to_vec()),
            fingerprint: Blob(vec![0xab; 32]),
            candidates: BoundedList(Vec::new()),
            // A relay hint at a port the input picks, so whole-node targets
            // reach the relay paths.
            relays: BoundedList(
                rest.get(96..98)
                    .map(|p| RelayHint {
                        addr: WireAddr::from(SocketAddr::from((
                            [127, 0, 0, 1],
                            u16::from_be_bytes([p[0], p[1]]),
                        ))),
                        node: None,
                    })
                    .into_iter()
                    .collect(),
            ),
        }),
    };
    let blob = signal::seal(meeting, &sender, envelope, kind.clone(), [2; 12]);
    let opened =
        signal::open(meeting, &local, FUZZ_SIGNAL_TIME_MS, &blob).expect("a sealed signal opens");
    assert_eq!(opened.from, sender.node_id());
    assert_eq!(
        (opened.seq, opened.session, opened.kind),
        (seq, envelope.session, kind)
    );
    assert!(signal::open(meeting, &NodeId([0; 32]), FUZZ_SIGNAL_TIME_MS, &blob).is_err());
}

/// LAN beacon parsing: no panic; a decoded beacon re-encodes to its own
/// bytes; and a fresh node in the fuzz meeting, handed the datagram as a
/// beacon, accounts for it exactly once, sends only to its source, and
/// at most one LAN hello (and the offer, if the beacon revealed a member).
pub fn check_beacon(now: Instant, data: &[u8]) {
    if let Ok(decoded) = beacon::decode(data) {
        assert_eq!(
            beacon::encode(decoded.tag, decoded.record),
            data,
            "beacon round trip"
        );
    }
    let local = SocketAddr::from(([10, 0, 0, 1], 4000));
    let source = SocketAddr::from(([10, 0, 0, 2], 4000));
    let clock = WallClock {
        at: now,
        unix_ms: 1_800_000_000_000,
    };
    let mut config = NodeConfig::new(local, Identity::from_seed([0; 32]), clock);
    config.lan = true;
    let mut node = Node::new(now, config, [0; 32]);
    node.handle_input(now, Input::Command(Command::Join(fuzz_meeting().clone())));
    let _ = node.drain().count();
    node.handle_input(
        now,
        Input::Receive {
            source,
            destination: SocketAddr::V4(beacon::LAN_GROUP),
            data,
        },
    );
    let mut hellos = 0;
    for output in node.drain() {
        if let Output::Transmit(transmit) = output {
            assert_eq!(
                transmit.destination, source,
                "sent only to the beacon's source"
            );
            match classify(&transmit.payload) {
                Protocol::Hello => hellos += 1,
                // The offer to a member the beacon revealed.
                Protocol::Dht => {}
                other => panic!("answered a beacon with {other:?}"),
            }
        }
    }
    assert!(hellos <= 1, "one LAN hello at most");
    let stats = node.stats();
    assert_eq!(stats.received, 1);
    assert_eq!(stats.handled() + stats.dropped_total(), 1, "accounted once");
}
