//! Whole-node checks: datagrams (alone, in sequences, as relay frames)
//! into a node, each accounted for exactly once, and its state within its
//! limits.

use std::net::SocketAddr;
use std::time::Instant;

use super::seals::{FUZZ_SIGNAL_TIME_MS, fuzz_meeting};
use crate::api::{Command, Input, NodeConfig, Output, RelayRole, WallClock};
use crate::demux::{Protocol, classify};
use crate::dht::wire::decode_frame;
use crate::id::NodeId;
use crate::identity::Identity;
use crate::limits::AMPLIFICATION_FACTOR;
use crate::node::Node;
use crate::relay::wire::{Bind as RelayBind, Frame as RelayFrame, RELAY_TAG};
use crate::stun::message::Message;

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
