//! Invariant checks shared by the `cargo fuzz` targets in `fuzz/` and by the
//! corpus replay in `tests/fuzz_corpus.rs`, so the fuzzer and `cargo test`
//! exercise exactly the same code. Each check panics when an invariant
//! breaks; that is how a fuzzer reports a finding.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use crate::api::{Command, Input, NodeConfig, Output, RelayRole, WallClock};
use crate::beacon;
use crate::codec::WireAddr;
use crate::demux::{Protocol, classify};
use crate::dht::wire::{Blob, BoundedList, decode_frame, encode_frame};
use crate::hello;
use crate::id::NodeId;
use crate::identity::Identity;
use crate::limits::AMPLIFICATION_FACTOR;
use crate::mainline::{bencode, krpc};
use crate::meeting::Meeting;
use crate::nat::NatClass;
use crate::node::Node;
use crate::record;
use crate::relay::wire::{Bind as RelayBind, Frame as RelayFrame, RELAY_TAG};
use crate::signal::{self, Envelope, RelayHint, SessionParams, SignalKind};
use crate::stun::message::{IntegrityKey, Message, MessageEncoder};

/// Decode → encode → decode must agree, and the checks on a decoded message
/// must not panic.
pub fn check_stun_decode(data: &[u8]) {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    message.fingerprint_status();
    message.integrity_status(&IntegrityKey::short_term("fuzz"));
    message.reflexive_address();
    let mut encoder =
        MessageEncoder::new(message.class(), message.method(), message.transaction_id());
    for attribute in message.attributes() {
        encoder.push(&attribute);
    }
    let bytes = encoder.finish();
    let again = Message::decode(&bytes).expect("a re-encoded message decodes");
    assert_eq!(again.header().class, message.class());
    assert_eq!(again.method(), message.method());
    assert_eq!(again.transaction_id(), message.transaction_id());
    assert!(
        again.attributes().eq(message.attributes()),
        "attributes differ after a round trip"
    );
    assert!(
        bytes.len() <= data.len(),
        "re-encoding never grows a message"
    );
}

/// One datagram into a fresh dual-stack node created at `now`, once from
/// an IPv4 sender to its IPv4 socket and once from an IPv6 sender to its
/// IPv6 socket: each time it is accounted for exactly once (handled or
/// dropped), anything sent goes back to the sender from the socket it
/// arrived on, STUN answers stay within the amplification bound, and DHT
/// replies decode.
pub fn check_node_datagram(now: Instant, data: &[u8]) {
    let v4 = SocketAddr::from(([10, 0, 0, 1], 3478));
    let v6 = SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 3478));
    let senders = [
        (v4, SocketAddr::from(([192, 0, 2, 7], 40000))),
        (
            v6,
            SocketAddr::from(([0x2001, 0xdb8, 7, 0, 0, 0, 0, 7], 40000)),
        ),
    ];
    for (local, source) in senders {
        check_node_datagram_at(now, &[v4, v6], local, source, data);
    }
}

fn check_node_datagram_at(
    now: Instant,
    locals: &[SocketAddr],
    local: SocketAddr,
    source: SocketAddr,
    data: &[u8],
) {
    let clock = WallClock {
        at: now,
        unix_ms: 1_800_000_000_000,
    };
    let mut config = NodeConfig::new(local, Identity::from_seed([0; 32]), clock);
    config.local_addrs = locals.to_vec();
    // Mainline on, so KRPC reaches its client (no bootstrap: nothing sent).
    config.mainline_bootstrap = Some(Vec::new());
    let mut node = Node::new(now, config, [0; 32]);
    let destination = local;
    node.handle_input(
        now,
        Input::Receive {
            source,
            destination,
            data,
        },
    );
    for output in node.drain() {
        match output {
            Output::Transmit(transmit) if transmit.destination != source => {
                // Only a `Probe` makes a node send to a third party: one
                // `Pong` to the target it names, smaller than the request.
                let probe_target = match decode_frame(data) {
                    Ok(crate::dht::wire::Message::Request {
                        body: crate::dht::wire::Request::Probe { target, .. },
                        ..
                    }) => Some(SocketAddr::from(target)),
                    _ => None,
                };
                assert_eq!(
                    Some(transmit.destination),
                    probe_target,
                    "sent to a third party"
                );
                assert!(
                    transmit.payload.len() < data.len(),
                    "a probe never amplifies"
                );
                decode_frame(&transmit.payload).expect("the probe is a DHT frame");
            }
            Output::Transmit(transmit) => {
                assert_eq!(transmit.source, local, "answered from where it arrived");
                match classify(&transmit.payload) {
                    Protocol::Stun => {
                        assert!(transmit.payload.len() <= AMPLIFICATION_FACTOR * data.len());
                        Message::decode(&transmit.payload).expect("STUN answers are valid STUN");
                    }
                    Protocol::Dht => {
                        decode_frame(&transmit.payload).expect("DHT replies decode");
                    }
                    Protocol::Relay => {
                        assert!(
                            transmit.payload.len() < data.len(),
                            "relay answers are smaller"
                        );
                        RelayFrame::decode(&transmit.payload).expect("relay answers decode");
                    }
                    other => panic!("sent a {other:?} datagram"),
                }
            }
            Output::Event(event) => panic!("unsolicited datagram raised {event:?}"),
            other => panic!("drain yielded {other:?}"),
        }
    }
    let stats = node.stats();
    assert_eq!(stats.received, 1);
    assert_eq!(
        stats.handled() + stats.dropped_total(),
        1,
        "accounted exactly once"
    );
}

/// DHT frame decode: no panic; decode → encode → decode agrees; encoding
/// is idempotent and never longer than what was decoded (the encoder
/// writes the shortest form).
pub fn check_dht_frame(data: &[u8]) {
    let Ok(message) = decode_frame(data) else {
        return;
    };
    let bytes = encode_frame(&message);
    assert!(bytes.len() <= data.len(), "re-encoding grew the frame");
    let again = decode_frame(&bytes).expect("a re-encoded frame decodes");
    assert_eq!(again, message, "DHT frame round trip");
    assert_eq!(encode_frame(&again), bytes, "encoding is idempotent");
}

/// Mainline input: bencode decode → encode → decode agrees, re-encoding
/// is canonical and idempotent, canonical input comes back byte for byte
/// and nothing grows; a KRPC response keeps within its caps, holds each
/// family's contacts in its own list and addresses in canonical form, and
/// survives encode → decode; a hello re-encodes to its own bytes.
pub fn check_krpc(data: &[u8]) {
    if let Ok(decoded) = bencode::decode(data) {
        let bytes = decoded.value.encode();
        assert!(bytes.len() <= data.len(), "re-encoding grew the value");
        let again = bencode::decode(&bytes).expect("a re-encoded value decodes");
        assert!(again.canonical, "the encoder writes canonical bencode");
        assert_eq!(again.value.encode(), bytes, "encoding is idempotent");
        if decoded.canonical {
            assert_eq!(bytes, data, "canonical input round-trips byte for byte");
        }
    }
    if let Ok(krpc::Message::Response { txid, body }) = krpc::decode(data) {
        assert!(body.nodes.len() <= krpc::MAX_NODES);
        assert!(body.nodes6.len() <= krpc::MAX_NODES);
        assert!(
            body.nodes.iter().all(|n| n.addr.is_ipv4()),
            "nodes are IPv4"
        );
        assert!(
            body.nodes6.iter().all(|n| n.addr.is_ipv6()),
            "nodes6 are IPv6"
        );
        assert!(body.values.len() <= krpc::MAX_VALUES);
        assert!(
            body.values
                .iter()
                .chain(body.ip.iter())
                .all(|a| *a == crate::addr::canonical(*a)),
            "addresses are read in canonical form"
        );
        assert!(
            body.token
                .as_ref()
                .is_none_or(|t| t.len() <= krpc::MAX_TOKEN_LEN)
        );
        let bytes = krpc::encode_response(txid, &body);
        match krpc::decode(&bytes) {
            Ok(krpc::Message::Response { body: again, .. }) => {
                assert_eq!(again, body, "KRPC response round trip")
            }
            other => panic!("a re-encoded response decodes as {other:?}"),
        }
    }
    if let Ok(decoded) = hello::decode(data) {
        // Re-encoded with the code it carries, a hello is its own bytes.
        let carried = |_: &[u8]| {
            let mut code = [0; hello::MAC_LEN];
            code.copy_from_slice(&data[hello::HELLO_LEN - hello::MAC_LEN..]);
            code
        };
        assert_eq!(hello::encode(&decoded, carried), data, "hello round trip");
    }
}

/// Binds `source` at the relay `node` (reached at `local`) the way a
/// client does: a first bind, then the bind echoing the challenge's cookie.
/// The relay's answer to the second bind, or to the first when it did not
/// challenge.
pub fn bind_with_cookie(
    node: &mut Node,
    now: Instant,
    source: SocketAddr,
    local: SocketAddr,
    mut bind: RelayBind,
) -> Option<RelayFrame<'static>> {
    let answer = |node: &mut Node, bind: RelayBind| {
        let data = RelayFrame::Bind(bind).encode();
        node.handle_input(
            now,
            Input::Receive {
                source,
                destination: local,
                data: &data,
            },
        );
        let mut reply = None;
        for output in node.drain() {
            if let Output::Transmit(t) = output
                && t.destination == source
            {
                reply = Some(t.payload);
            }
        }
        reply
    };
    bind.cookie = None;
    let first = answer(node, bind)?;
    let first = owned(RelayFrame::decode(&first).ok()?);
    let RelayFrame::Challenge { cookie, .. } = first else {
        return Some(first);
    };
    bind.cookie = Some(cookie);
    let second = answer(node, bind)?;
    Some(owned(RelayFrame::decode(&second).ok()?))
}

/// A control frame with no borrowed payload (data frames become empty).
fn owned(frame: RelayFrame<'_>) -> RelayFrame<'static> {
    match frame {
        RelayFrame::Data { channel, .. } => RelayFrame::Data {
            channel,
            payload: &[],
        },
        RelayFrame::Bind(b) => RelayFrame::Bind(b),
        RelayFrame::Bound {
            token,
            channel,
            lifetime_s,
            rate_kib,
        } => RelayFrame::Bound {
            token,
            channel,
            lifetime_s,
            rate_kib,
        },
        RelayFrame::Refused {
            token,
            cookie,
            reason,
        } => RelayFrame::Refused {
            token,
            cookie,
            reason,
        },
        RelayFrame::Release { token, channel } => RelayFrame::Release { token, channel },
        RelayFrame::Challenge { token, cookie } => RelayFrame::Challenge { token, cookie },
    }
}

/// Relay frames: no panic; a decoded frame re-encodes to its own bytes
/// (the layout is fixed); and a `serve --relay` node holding one pair
/// (two bindings of one token), handed the datagram from one side,
/// accounts for it exactly once and sends only to the pair; a relay frame
/// (first byte 0x0D) makes it send at most one relay frame, no longer
/// than the datagram (no reflection to others, no amplification). Other
/// datagrams get the node's usual answers, checked by
/// [`check_node_datagram`].
pub fn check_relay_frame(now: Instant, data: &[u8]) {
    if let Ok(frame) = RelayFrame::decode(data) {
        assert_eq!(frame.encode(), data, "relay frame round trip");
    }
    let local = SocketAddr::from(([10, 0, 0, 1], 3478));
    let (a, b) = (
        SocketAddr::from(([192, 0, 2, 1], 4000)),
        SocketAddr::from(([198, 51, 100, 2], 5000)),
    );
    let clock = WallClock {
        at: now,
        unix_ms: 1_800_000_000_000,
    };
    let mut config = NodeConfig::new(local, Identity::from_seed([0; 32]), clock);
    config.relay = RelayRole::Open;
    let mut node = Node::new(now, config, [0; 32]);
    let bind = RelayBind {
        token: [7; 16],
        session: 1,
        low: NodeId([1; 32]),
        high: NodeId([2; 32]),
        cookie: None,
    };
    for side in [a, b] {
        let answer = bind_with_cookie(&mut node, now, side, local, bind);
        assert!(
            matches!(answer, Some(RelayFrame::Bound { .. })),
            "{answer:?}"
        );
    }
    let before = node.stats().clone();
    node.handle_input(
        now,
        Input::Receive {
            source: a,
            destination: local,
            data,
        },
    );
    let relay_input = data.first() == Some(&RELAY_TAG);
    let mut sent = 0;
    for output in node.drain() {
        match output {
            Output::Transmit(transmit) => {
                sent += 1;
                assert!([a, b].contains(&transmit.destination), "only to the pair");
                if relay_input {
                    assert!(transmit.payload.len() <= data.len(), "no amplification");
                    RelayFrame::decode(&transmit.payload).expect("a relay frame");
                }
            }
            Output::Event(event) => panic!("a relay frame raised {event:?}"),
            other => panic!("drain yielded {other:?}"),
        }
    }
    assert!(
        !relay_input || sent <= 1,
        "one relay frame in, at most one out"
    );
    let after = node.stats();
    assert_eq!(
        (after.handled() + after.dropped_total()) - (before.handled() + before.dropped_total()),
        1,
        "accounted exactly once"
    );
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

/// The meeting whose key the record target uses.
pub const FUZZ_MEETING_CODE: &str = "fuzz meeting";

/// The meeting of [`FUZZ_MEETING_CODE`], derived once (PBKDF2 is slow by
/// design).
fn fuzz_meeting() -> &'static Meeting {
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

/// Sources the sequence target picks from (a few, so state accumulates).
const SEQUENCE_SOURCES: [([u8; 4], u16); 4] = [
    ([192, 0, 2, 1], 3478),
    ([192, 0, 2, 2], 4000),
    ([198, 51, 100, 7], 5000),
    ([203, 0, 113, 9], 6000),
];

/// Whole node: a sequence of (time step, source, datagram) into a node that
/// has joined a meeting; no panic, every datagram is accounted for exactly
/// once (handled or dropped), and its state stays within its limits.
/// Each step is `dt (1 byte, ×10 ms) | source (1 byte) | length (2 bytes,
/// little-endian) | that many bytes` (the last step takes what is left).
pub fn check_node_sequence(start: Instant, data: &[u8]) {
    let local = SocketAddr::from(([10, 0, 0, 1], 3478));
    let clock = WallClock {
        at: start,
        unix_ms: FUZZ_SIGNAL_TIME_MS,
    };
    let mut config = NodeConfig::new(local, Identity::from_seed([8; 32]), clock);
    config.bootstrap = vec![SocketAddr::from(SEQUENCE_SOURCES[0])];
    let mut node = Node::new(start, config, [8; 32]);
    node.handle_input(start, Input::Command(Command::Join(fuzz_meeting().clone())));
    let mut now = start;
    let mut rest = data;
    while let [dt, source, len_low, len_high, tail @ ..] = rest {
        let take = usize::from(u16::from_le_bytes([*len_low, *len_high])).min(tail.len());
        let (datagram, after) = tail.split_at(take);
        rest = after;
        let (ip, port) = SEQUENCE_SOURCES[usize::from(*source) % SEQUENCE_SOURCES.len()];
        let source = SocketAddr::from((ip, port.wrapping_add(u16::from(*source >> 2))));
        if *dt > 0 {
            now += std::time::Duration::from_millis(u64::from(*dt) * 10);
            node.handle_input(now, Input::Timeout);
        }
        let before = node.stats().clone();
        node.handle_input(
            now,
            Input::Receive {
                source,
                destination: local,
                data: datagram,
            },
        );
        node.drain().for_each(drop);
        let stats = node.stats();
        assert_eq!(stats.received, before.received + 1);
        assert_eq!(
            stats.handled() + stats.dropped_total(),
            before.handled() + before.dropped_total() + 1,
            "each datagram accounted for exactly once"
        );
        let sizes = node.sizes();
        assert!(sizes.within_limits(), "state over its limits: {sizes:?}");
    }
}

/// Link reports and the loss meter (`rtc/link.rs`): no panic; a report
/// that decodes re-encodes to its own bytes and holds a share (at most
/// 1000 permille); a record number comes only from a DTLS 1.x header. The
/// input is then read as datagrams (a length byte, then that many bytes)
/// fed to a meter, each one that reads as a report also taken as the
/// peer's declaration: every figure the meter gives is a share, and a
/// meter then fed three rounds of clean records of a later epoch, each
/// declared by a real ledger, reports no loss for the last round.
pub fn check_link(data: &[u8]) {
    use crate::rtc::link::{BLOCK, LinkReport, LossMeter, SentLedger, record_number};
    if let Some(report) = LinkReport::decode(data) {
        assert!(report.loss.is_none_or(|loss| loss <= 1000), "a share");
        assert_eq!(report.encode().as_slice(), data, "report round trip");
    }
    if record_number(data).is_some() {
        assert!((20..=25).contains(&data[0]) && data[1] == 0xFE, "DTLS only");
    }
    let mut meter = LossMeter::default();
    let mut rest = data;
    let mut last_epoch = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let datagram = tail.get(..usize::from(len)).unwrap_or(tail);
        rest = &tail[datagram.len()..];
        if let Some(number) = record_number(datagram) {
            last_epoch = last_epoch.max(number >> 48);
        }
        meter.observe(datagram);
        if let Some(sent) = LinkReport::decode(datagram).and_then(|r| r.sent) {
            meter.declared(sent);
        }
        if let Some(loss) = meter.take_report() {
            assert!(loss <= 1000, "a share");
        }
    }
    let epoch = (last_epoch + 1).min(0xFFFF) << 48;
    let mut ledger = SentLedger::default();
    let mut reports = Vec::new();
    for round in 0..3u64 {
        for seq in round * 8 * BLOCK..(round + 1) * 8 * BLOCK {
            let mut record = vec![23, 0xFE, 0xFD];
            record.extend_from_slice(&(epoch + seq).to_be_bytes());
            ledger.note(&record, 1);
            meter.observe(&record);
        }
        if let Some(sent) = ledger.take() {
            meter.declared(sent);
        }
        reports.push(meter.take_report());
    }
    assert_eq!(
        reports.last(),
        Some(&Some(0)),
        "clean records report no loss: {reports:?}"
    );
}

/// Stream frames and one stream's state machine (`stream.rs`): no panic;
/// a frame that parses re-parses identically from its own encoding, within
/// its bounds. The input is then read as messages (a length byte, then
/// that many bytes) fed to an accepted stream whose application never
/// consumes: it never hands over more data than its first grant, and
/// after it ends nothing more happens.
pub fn check_stream_frames(data: &[u8]) {
    use crate::stream::{Frame, MAX_DATA, STREAM_WINDOW, Stream, StreamEvent};
    if let Ok(frame) = Frame::parse(data) {
        let encoded = frame.encode();
        assert_eq!(Frame::parse(&encoded), Ok(frame.clone()), "stable");
        if let Frame::Data(bytes) = frame {
            assert!(!bytes.is_empty() && bytes.len() <= MAX_DATA);
        }
    }
    let mut stream = Stream::accepted();
    let (mut delivered, mut ended) = (0u64, false);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let message = tail.get(..usize::from(len)).unwrap_or(tail);
        rest = &tail[message.len()..];
        stream.on_message(message);
        while let Some(event) = stream.poll_event() {
            assert!(!ended, "an event after the end: {event:?}");
            match event {
                StreamEvent::Data(bytes) => delivered += bytes.len() as u64,
                StreamEvent::Reset { .. } | StreamEvent::Closed => ended = true,
                _ => {}
            }
        }
        assert_eq!(ended, stream.is_ended());
    }
    assert!(delivered <= STREAM_WINDOW, "at most the grant: {delivered}");
}

/// A file-transfer frame (`transfer::wire`, spec §6.9) parses from any
/// bytes without panicking, and one that parses re-parses from its
/// encoding; an offer's chunk hashes match its files' sizes. The input
/// fed to a [`FrameReader`](crate::transfer::wire::FrameReader) in
/// pieces gives the same frames as fed whole, and the reader holds less
/// than a frame's prefix plus [`MAX_FRAME`](crate::transfer::wire::MAX_FRAME).
pub fn check_transfer_frames(data: &[u8]) {
    use crate::transfer::wire::{EntryKind, Frame, FrameReader, MAX_FRAME, chunk_count};
    if let Ok(frame) = Frame::parse(data) {
        let encoded = frame.encode();
        assert_eq!(Frame::parse(&encoded[4..]), Ok(frame.clone()), "stable");
        if let Frame::Offer(offer) = &frame {
            for entry in &offer.entries {
                if let EntryKind::File { size, chunks, .. } = &entry.kind {
                    assert_eq!(chunks.len() as u64, chunk_count(*size, offer.chunk_size));
                }
            }
        }
    }
    let frames = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut reader = FrameReader::default();
        let mut out = Vec::new();
        for piece in pieces {
            reader.push(piece);
            loop {
                match reader.next_frame() {
                    Ok(Some(frame)) => out.push(Ok(frame)),
                    Ok(None) => break,
                    Err(error) => {
                        out.push(Err(error));
                        return out;
                    }
                }
            }
            assert!(reader.buffered() < 4 + MAX_FRAME + piece.len());
        }
        out
    };
    let whole = frames(&mut std::iter::once(data));
    let split = frames(&mut data.chunks(7));
    assert_eq!(whole, split, "the same frames in pieces");
}
