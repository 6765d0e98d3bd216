//! The test vectors of `protocol-spec.md` (Appendix A), rebuilt from their
//! fixed inputs and compared with the hex dumps in the spec, so spec and
//! code cannot drift. The meeting derivation and the seal are recomputed
//! here with ring's primitives directly, as an implementer following the
//! spec would, and checked against the crate's.
//!
//! After an intended wire change, `TINYNODE_PRINT_VECTORS=1 cargo test
//! --test spec_vectors -- --nocapture` prints the appendix's blocks.

use std::net::SocketAddr;

use ring::{aead, hkdf, hmac, pbkdf2};
use tinynode::transfer::wire::{AbortCode, Entry, EntryKind, Frame, Offer, Range};
use tinynode::wire::beacon;
use tinynode::wire::dht::{
    Blob, BoundedList, Contact, ErrorCode, FIND_NODE_REQUEST_LEN, Message, REACH_ME_REQUEST_LEN,
    Request, Response, WireAddr, decode_frame, encode_frame, signed_announce, signing_input,
};
use tinynode::wire::hello::{self, Hello, HelloKind};
use tinynode::wire::link;
use tinynode::wire::mainline::{self, Query, encode_query, window_at};
use tinynode::wire::record;
use tinynode::wire::relay;
use tinynode::wire::signal::{self, Envelope, RelayHint, SessionParams, SignalKind};
use tinynode::wire::stream;
use tinynode::wire::{hex, normalize_meeting_code};
use tinynode::{Identity, Meeting, NodeId};
use tinynode::{ResetCode, StreamHeader, StreamKind};

const CODE: &str = "  Test   VECTORS ";
const UNIX_MS: u64 = 1_800_000_000_000;
const NONCE: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const TXID: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
const TOKEN: [u8; 16] = [0x70; 16];
/// KRPC transaction ID and Mainline node ID of the Mainline vectors.
const KRPC_TXID: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
const MAINLINE_ID: [u8; 20] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
];

/// §10.2 by hand: the LAN key and the window's 8-byte tag.
fn lan_tag_by_hand(stretched: &[u8; 32], window: u64) -> ([u8; 32], [u8; 8]) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tinynode/meeting/hkdf/v1").extract(stretched);
    let mut key = [0u8; 32];
    prk.expand(&[b"tinynode lan v1"], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut key))
        .expect("HKDF");
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        &[&b"tinynode lan tag v1"[..], &window.to_be_bytes()].concat(),
    );
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&mac.as_ref()[..8]);
    (key, tag)
}

/// §9.2 by hand: the Mainline key from the stretched secret, and the
/// window's infohash.
fn infohash_by_hand(stretched: &[u8; 32], window: u64) -> ([u8; 32], [u8; 20]) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tinynode/meeting/hkdf/v1").extract(stretched);
    let mut key = [0u8; 32];
    prk.expand(&[mainline::MAINLINE_INFO], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut key))
        .expect("HKDF");
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        &[mainline::INFOHASH_LABEL, &window.to_be_bytes()].concat(),
    );
    let mut info_hash = [0u8; 20];
    info_hash.copy_from_slice(&tag.as_ref()[..20]);
    (key, info_hash)
}

/// §9.6 by hand: the hello key and the code of the hello `bytes` (all
/// but the code).
fn hello_by_hand(stretched: &[u8; 32], bytes: &[u8]) -> ([u8; 32], [u8; 16]) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tinynode/meeting/hkdf/v1").extract(stretched);
    let mut key = [0u8; 32];
    prk.expand(&[b"tinynode hello v2"], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut key))
        .expect("HKDF");
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        &[&b"tinynode hello mac v2"[..], bytes].concat(),
    );
    let mut code = [0u8; 16];
    code.copy_from_slice(&tag.as_ref()[..16]);
    (key, code)
}

/// §12.3 by hand: the relay key, the pairing token of `session` between
/// `low` and `high`, and the synthetic address of `member` at `hint`.
fn relay_by_hand(
    stretched: &[u8; 32],
    session: u64,
    (low, high): (NodeId, NodeId),
    hint: SocketAddr,
    member: NodeId,
) -> ([u8; 32], [u8; 16], SocketAddr) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tinynode/meeting/hkdf/v1").extract(stretched);
    let mut key = [0u8; 32];
    prk.expand(&[b"tinynode relay v1"], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut key))
        .expect("HKDF");
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        &[
            &b"tinynode relay token v1"[..],
            &session.to_be_bytes(),
            &low.0,
            &high.0,
        ]
        .concat(),
    );
    let mut token = [0u8; 16];
    token.copy_from_slice(&mac.as_ref()[..16]);
    let SocketAddr::V4(v4) = hint else {
        panic!("an IPv4 hint");
    };
    let input = [
        &b"tinynode relay addr v1"[..],
        &[4],
        &v4.ip().octets(),
        &hint.port().to_be_bytes(),
        &session.to_be_bytes(),
        &member.0,
    ]
    .concat();
    let h = ring::digest::digest(&ring::digest::SHA256, &input);
    let h = h.as_ref();
    let port = u16::from_be_bytes([h[4], h[5]]).max(1);
    let synthetic = SocketAddr::from(([240 + h[0] % 15, h[1], h[2], h[3]], port));
    (key, token, synthetic)
}

/// The relay secret of the cookie vector: 32 bytes of 0x42.
const RELAY_SECRET: [u8; 32] = [0x42; 32];

/// §12.2 by hand: the cookie a relay with [`RELAY_SECRET`] gives `source`
/// for `token`.
fn relay_cookie_by_hand(source: SocketAddr, token: &[u8; 16]) -> [u8; 16] {
    let SocketAddr::V4(v4) = source else {
        unreachable!("the vector's source is IPv4")
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, &RELAY_SECRET);
    let message = [
        &b"tinynode relay cookie v1"[..],
        &[4],
        &v4.ip().octets(),
        &v4.port().to_be_bytes(),
        token,
    ]
    .concat();
    hmac::sign(&key, &message).as_ref()[..16]
        .try_into()
        .unwrap()
}

/// §12.6 by hand: the relay directory's infohash.
fn relay_infohash_by_hand() -> Vec<u8> {
    let hash = ring::digest::digest(&ring::digest::SHA256, b"tinynode relay infohash v1");
    assert_eq!(
        relay::relay_infohash(),
        hash.as_ref()[..20],
        "the crate agrees"
    );
    hash.as_ref()[..20].to_vec()
}

/// Alice: Ed25519 seed 00 01 02 … 1f.
fn alice() -> Identity {
    Identity::from_seed(std::array::from_fn(|i| i as u8))
}

/// Bob: Ed25519 seed 20 21 … 3f.
fn bob() -> Identity {
    Identity::from_seed(std::array::from_fn(|i| 0x20 + i as u8))
}

fn addr_v4() -> SocketAddr {
    "203.0.113.7:4000".parse().unwrap()
}

fn addr_v6() -> SocketAddr {
    "[2001:db8::7]:51000".parse().unwrap()
}

/// The meeting secret S, topic and sealing key, computed from the spec's
/// §4.2 with ring's PBKDF2 and HKDF.
fn derive_by_hand(normalized: &str) -> ([u8; 32], [u8; 32], [u8; 32]) {
    let mut stretched = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(400_000).unwrap(),
        b"tinynode/meeting/pbkdf2/v2",
        normalized.as_bytes(),
        &mut stretched,
    );
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tinynode/meeting/hkdf/v1").extract(&stretched);
    let expand = |info: &[u8]| {
        let mut out = [0u8; 32];
        prk.expand(&[info], hkdf::HKDF_SHA256)
            .unwrap()
            .fill(&mut out)
            .unwrap();
        out
    };
    (
        stretched,
        expand(b"tinynode topic v1"),
        expand(b"tinynode seal v1"),
    )
}

/// Opens a sealed blob by hand (ChaCha20-Poly1305, nonce first).
fn open_by_hand(key: &[u8; 32], aad: &[u8], blob: &[u8]) -> Vec<u8> {
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::CHACHA20_POLY1305, key).unwrap());
    let nonce = aead::Nonce::try_assume_unique_for_key(&blob[..12]).unwrap();
    let mut in_out = blob[12..].to_vec();
    let plaintext = key
        .open_in_place(nonce, aead::Aad::from(aad), &mut in_out)
        .expect("the seal opens by hand");
    plaintext.to_vec()
}

fn request(body: Request, padding: usize) -> Vec<u8> {
    encode_frame(&Message::Request {
        txid: TXID,
        sender: alice().node_id(),
        body,
        padding: Blob(vec![0; padding]),
    })
}

fn response(body: Response) -> Vec<u8> {
    encode_frame(&Message::Response {
        txid: TXID,
        sender: bob().node_id(),
        observed: WireAddr::from(addr_v4()),
        body,
    })
}

fn contacts() -> BoundedList<Contact, 8> {
    BoundedList(vec![
        Contact {
            id: alice().node_id(),
            addr: WireAddr::from(addr_v4()),
        },
        Contact {
            id: bob().node_id(),
            addr: WireAddr::from(addr_v6()),
        },
    ])
}

/// Every vector, by the name the spec gives it, in the spec's order.
fn vectors() -> Vec<(&'static str, Vec<u8>)> {
    let normalized = normalize_meeting_code(CODE);
    assert_eq!(normalized, "test vectors");
    let meeting = Meeting::derive(CODE).unwrap();
    let (stretched, topic, key) = derive_by_hand(&normalized);
    assert_eq!(meeting.topic().0, topic, "the crate derives the same topic");
    let record = record::seal(
        &meeting,
        &alice(),
        &[addr_v4(), addr_v6()],
        tinynode::wire::record::NetworkFacts {
            nat: tinynode::NatClass::EndpointIndependent,
            reachable: true,
        },
        UNIX_MS,
        NONCE,
    );
    // Alice's hello to Bob at 198.51.100.20:4000 (§9.6): nonce 8 × 0x11,
    // no echo, coded with the hello key by hand.
    let hello_unsigned = hello::encode(
        &Hello {
            kind: HelloKind::Hello,
            record: &record,
            to: "198.51.100.20:4000".parse().unwrap(),
            nonce: [0x11; 8],
            echo: [0; 8],
        },
        |_| [0; 16],
    );
    let body_len = hello::HELLO_LEN - hello::MAC_LEN;
    let (hello_key, hello_code) = hello_by_hand(&stretched, &hello_unsigned[..body_len]);
    assert_eq!(
        meeting.hello_mac(&hello_unsigned[..body_len]),
        hello_code,
        "the crate agrees"
    );
    let mut hello_datagram = hello_unsigned;
    hello_datagram[body_len..].copy_from_slice(&hello_code);
    let record_aad = [&b"tinynode record v2"[..], &topic].concat();
    let record_plaintext = open_by_hand(&key, &record_aad, &record);
    let params = SessionParams {
        ice_ufrag: Blob(b"ufrg".to_vec()),
        ice_pwd: Blob(b"0123456789abcdefghijkl".to_vec()),
        fingerprint_hash: Blob(b"sha-256".to_vec()),
        fingerprint: Blob(vec![0xaa; 32]),
        candidates: BoundedList(vec![WireAddr::from(addr_v4())]),
        relays: BoundedList(vec![RelayHint {
            addr: WireAddr::from(addr_v4()),
            node: None,
        }]),
    };
    let signal = signal::seal(
        &meeting,
        &alice(),
        Envelope {
            to: bob().node_id(),
            seq: UNIX_MS,
            timestamp_ms: UNIX_MS,
            session: 7,
        },
        SignalKind::Offer(params),
        NONCE,
    );
    let signal_aad = [&b"tinynode signal v2"[..], &topic].concat();
    let signal_plaintext = open_by_hand(&key, &signal_aad, &signal);
    let short_record = Blob(record[..8].to_vec());
    let topic = NodeId(topic);
    // The unpadded frame holds the empty padding's one-byte length; padding
    // up to 250 bytes keeps that one byte.
    let unpadded = request(Request::FindNode { target: topic }, 0).len();
    let find_node_padded = request(
        Request::FindNode { target: topic },
        FIND_NODE_REQUEST_LEN - unpadded,
    );
    assert_eq!(find_node_padded.len(), FIND_NODE_REQUEST_LEN);
    let window = window_at(UNIX_MS);
    assert_eq!(window, 500_000, "the time falls in window 500000");
    let (mainline_key, info_hash) = infohash_by_hand(&stretched, window);
    assert_eq!(meeting.infohash(window), info_hash, "the crate agrees");
    let lan_window = UNIX_MS / 300_000;
    assert_eq!(
        lan_window, 6_000_000,
        "the time falls in LAN window 6000000"
    );
    let (lan_key, lan_tag) = lan_tag_by_hand(&stretched, lan_window);
    assert_eq!(meeting.lan_tag(lan_window), lan_tag, "the crate agrees");
    let pair = (
        alice().node_id().min(bob().node_id()),
        alice().node_id().max(bob().node_id()),
    );
    let (relay_key, relay_token, alice_relayed) =
        relay_by_hand(&stretched, 7, pair, addr_v4(), alice().node_id());
    assert_eq!(
        meeting.relay_token(7, &pair.0, &pair.1),
        relay_token,
        "the crate agrees"
    );
    assert_eq!(
        relay::synthetic_addr(addr_v4(), 7, &alice().node_id()),
        alice_relayed,
        "the crate agrees"
    );
    let bind = relay::Frame::Bind(relay::Bind {
        token: relay_token,
        session: 7,
        low: pair.0,
        high: pair.1,
        cookie: None,
    })
    .encode();
    let relay_cookie = relay_cookie_by_hand(addr_v4(), &relay_token);
    assert_eq!(
        relay::cookie(&RELAY_SECRET, addr_v4(), &relay_token),
        relay_cookie,
        "the crate agrees"
    );
    let bind_with_cookie = relay::Frame::Bind(relay::Bind {
        token: relay_token,
        session: 7,
        low: pair.0,
        high: pair.1,
        cookie: Some(relay_cookie),
    })
    .encode();
    let synthetic_bytes = {
        let SocketAddr::V4(v4) = alice_relayed else {
            unreachable!("synthetic addresses are IPv4")
        };
        [&v4.ip().octets()[..], &v4.port().to_be_bytes()].concat()
    };
    vec![
        ("alice-public-key", alice().public_key().to_vec()),
        ("alice-node-id", alice().node_id().0.to_vec()),
        ("bob-node-id", bob().node_id().0.to_vec()),
        ("meeting-stretched", stretched.to_vec()),
        ("meeting-topic", topic.0.to_vec()),
        ("meeting-key", key.to_vec()),
        ("record-plaintext", record_plaintext),
        ("record-blob", record.clone()),
        ("signal-plaintext", signal_plaintext),
        ("signal-blob", signal.clone()),
        ("request-ping", request(Request::Ping, 0)),
        ("request-find-node-padded", find_node_padded),
        ("request-get-peers", request(Request::GetPeers { topic }, 0)),
        (
            "request-announce-retired",
            request(
                Request::Announce {
                    topic,
                    token: TOKEN,
                    record: short_record.clone(),
                },
                0,
            ),
        ),
        (
            "request-signal",
            request(
                Request::Signal {
                    to: bob().node_id(),
                    payload: Blob(signal[..8].to_vec()),
                },
                0,
            ),
        ),
        (
            "request-reach-me",
            request(
                Request::ReachMe,
                REACH_ME_REQUEST_LEN - request(Request::ReachMe, 0).len(),
            ),
        ),
        (
            "request-probe",
            request(
                Request::Probe {
                    target: WireAddr::from(addr_v4()),
                    txid: TXID,
                },
                0,
            ),
        ),
        (
            "announce-signing-input",
            signing_input(&topic, &TOKEN, &record),
        ),
        (
            "request-signed-announce",
            request(signed_announce(&alice(), topic, TOKEN, &record), 0),
        ),
        ("response-pong", response(Response::Pong)),
        (
            "response-nodes",
            response(Response::Nodes { nodes: contacts() }),
        ),
        (
            "response-peers",
            response(Response::Peers {
                token: TOKEN,
                records: BoundedList(vec![short_record.clone()]),
                nodes: contacts(),
            }),
        ),
        ("response-announced", response(Response::Announced)),
        ("response-relayed", response(Response::Relayed)),
        (
            "response-error-unsupported",
            response(Response::Error(ErrorCode::Unsupported)),
        ),
        (
            "deliver",
            encode_frame(&Message::Deliver {
                sender: bob().node_id(),
                from: alice().node_id(),
                payload: Blob(signal[..8].to_vec()),
            }),
        ),
        (
            "push",
            encode_frame(&Message::Push {
                sender: bob().node_id(),
                topic,
                record: short_record,
            }),
        ),
        ("mainline-key", mainline_key.to_vec()),
        ("mainline-infohash", info_hash.to_vec()),
        (
            "krpc-get-peers",
            encode_query(KRPC_TXID, &MAINLINE_ID, &Query::GetPeers { info_hash }),
        ),
        (
            "krpc-announce-peer",
            encode_query(
                KRPC_TXID,
                &MAINLINE_ID,
                &Query::AnnouncePeer {
                    info_hash,
                    port: 4000,
                    token: &TOKEN[..4],
                },
            ),
        ),
        (
            "krpc-find-node-want",
            encode_query(
                KRPC_TXID,
                &MAINLINE_ID,
                &Query::FindNode {
                    target: info_hash,
                    want_both: true,
                },
            ),
        ),
        ("krpc-response-ipv6", ipv6_response()),
        ("hello-key", hello_key.to_vec()),
        ("hello", hello_datagram),
        ("lan-key", lan_key.to_vec()),
        ("lan-tag", lan_tag.to_vec()),
        ("beacon", beacon::encode(lan_tag, &record)),
        ("relay-key", relay_key.to_vec()),
        ("relay-token", relay_token.to_vec()),
        ("relay-synthetic-alice", synthetic_bytes),
        ("relay-bind", bind),
        ("relay-cookie", relay_cookie.to_vec()),
        (
            "relay-challenge",
            relay::Frame::Challenge {
                token: relay_token,
                cookie: relay_cookie,
            }
            .encode(),
        ),
        ("relay-bind-cookie", bind_with_cookie),
        (
            "relay-data",
            relay::data_frame(0x0102_0304, &[0x16, 0xfe, 0xfd]),
        ),
        ("relay-infohash", relay_infohash_by_hand()),
        ("link-report", link_report_example().encode().to_vec()),
        (
            "stream-open",
            stream::Frame::Open(StreamHeader {
                kind: StreamKind::TCP,
                name: "ssh".into(),
            })
            .encode(),
        ),
        (
            "stream-credit",
            stream::Frame::Credit(stream::STREAM_WINDOW).encode(),
        ),
        (
            "stream-reset",
            stream::Frame::Reset(ResetCode::Refused, "no".into()).encode(),
        ),
        ("transfer-offer", Frame::Offer(transfer_offer()).encode()),
        (
            "transfer-want",
            Frame::Want(vec![Range {
                file: 1,
                first: 0,
                end: 1,
            }])
            .encode(),
        ),
        (
            "transfer-chunk",
            Frame::Chunk {
                file: 1,
                index: 0,
                data: b"hello".to_vec(),
            }
            .encode(),
        ),
        ("transfer-done", Frame::Done.encode()),
        (
            "transfer-abort",
            Frame::Abort(AbortCode::Declined, "no".into()).encode(),
        ),
    ]
}

/// §6.9's example offer: a directory `d` and in it `a.txt`, executable,
/// holding `hello`, in chunks of 16 KiB (so one chunk).
fn transfer_offer() -> Offer {
    let hello: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, b"hello")
        .as_ref()
        .try_into()
        .expect("32 bytes");
    Offer {
        chunk_size: 16 * 1024,
        entries: vec![
            Entry {
                path: "d".into(),
                kind: EntryKind::Directory,
                executable: false,
            },
            Entry {
                path: "d/a.txt".into(),
                kind: EntryKind::File {
                    size: 5,
                    sha256: hello,
                    chunks: vec![hello],
                },
                executable: true,
            },
        ],
    }
}

/// The link report of §6.6's example: 9.7 % lost, two copies, blocks
/// 2⁴⁴ + 1 to 2⁴⁴ + 3 (epoch 1's records 16 to 63) sent as 50 datagrams,
/// stamp 1000 ms, echoing 880 held 20 ms.
fn link_report_example() -> link::LinkReport {
    link::LinkReport {
        loss: Some(97),
        copies: 2,
        sent: Some(link::SentBlocks {
            first: (1 << 44) + 1,
            count: 3,
            datagrams: 50,
        }),
        stamp: 1000,
        echo: Some(880),
        held: 20,
    }
}

/// `bytes` as the spec prints them: 32 bytes per line, lower-case hex.
fn block(bytes: &[u8]) -> String {
    bytes.chunks(32).map(hex).collect::<Vec<_>>().join("\n")
}

/// The vectors in the spec: name → bytes of the text block after each
/// `<!-- vector NAME -->` marker.
fn vectors_in_spec() -> Vec<(String, Vec<u8>)> {
    let spec = include_str!("../protocol-spec.md");
    let mut found = Vec::new();
    let mut lines = spec.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("<!-- vector ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```text"),
            "vector {name}: a text block follows"
        );
        let hex_digits: String = lines
            .by_ref()
            .take_while(|l| *l != "```")
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace())
            .collect();
        let bytes = (0..hex_digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex_digits[i..i + 2], 16).expect("hex"))
            .collect();
        found.push((name.to_string(), bytes));
    }
    found
}

/// A `get_peers` answer from an IPv6 Mainline node (BEP 32): one `nodes6`
/// contact, an IPv6 and an IPv4 peer in `values`, our address in `ip`.
fn ipv6_response() -> Vec<u8> {
    let body = mainline::Response {
        id: [0x66; 20],
        nodes: Vec::new(),
        nodes6: vec![mainline::CompactNode {
            id: [0x06; 20],
            addr: "[2001:db8::6]:6881".parse().unwrap(),
        }],
        values: vec![
            "[2001:db8::a]:4000".parse().unwrap(),
            "192.0.2.10:4000".parse().unwrap(),
        ],
        token: Some(b"tok6".to_vec()),
        ip: Some("[2001:db8::5]:4321".parse().unwrap()),
    };
    mainline::encode_response(&KRPC_TXID, &body)
}

#[test]
fn the_spec_vectors_are_what_the_code_produces() {
    let vectors = vectors();
    if std::env::var_os("TINYNODE_PRINT_VECTORS").is_some() {
        for (name, bytes) in &vectors {
            println!("<!-- vector {name} -->\n```text\n{}\n```\n", block(bytes));
        }
    }
    let in_spec = vectors_in_spec();
    let names: Vec<&str> = in_spec.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<&str> = vectors.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected, "the spec lists every vector, in order");
    for ((name, bytes), (_, spec_bytes)) in vectors.iter().zip(&in_spec) {
        assert_eq!(
            hex(spec_bytes),
            hex(bytes),
            "vector {name} differs; the code gives:\n{}",
            block(bytes)
        );
    }
}

#[test]
fn every_frame_vector_decodes_and_the_sealed_ones_open() {
    let vectors = vectors();
    let frames: Vec<&(&str, Vec<u8>)> = vectors
        .iter()
        .filter(|(name, _)| name.starts_with("request") || name.starts_with("response"))
        .chain(
            vectors
                .iter()
                .filter(|(n, _)| *n == "deliver" || *n == "push"),
        )
        .collect();
    assert_eq!(frames.len(), 16);
    for (name, bytes) in frames {
        let message = decode_frame(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&encode_frame(&message), bytes, "{name} is canonical");
    }
    let meeting = Meeting::derive(CODE).unwrap();
    let get = |wanted: &str| {
        vectors
            .iter()
            .find(|(n, _)| *n == wanted)
            .map(|(_, b)| b.clone())
            .unwrap()
    };
    let opened = record::open(&meeting, &get("record-blob")).unwrap();
    assert_eq!(opened.addrs, [addr_v4(), addr_v6()]);
    assert_eq!(opened.timestamp_ms, UNIX_MS);
    let offer = signal::open(&meeting, &bob().node_id(), UNIX_MS, &get("signal-blob")).unwrap();
    assert_eq!(offer.from, alice().node_id());
}

#[test]
fn the_spec_names_exactly_the_counters_the_code_keeps() {
    let spec = include_str!("../protocol-spec.md");
    let start = spec.find("## 8. Counters").expect("§8");
    let body = start + "## 8. Counters".len();
    let end = spec[body..].find("\n## ").map_or(spec.len(), |e| body + e);
    let documented: std::collections::BTreeSet<&str> = spec[start..end]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| !word.contains(' '))
        .filter(|word| *word != "DEBUG=true")
        .collect();
    let stats = tinynode::Stats::default().to_string();
    let mut counted: std::collections::BTreeSet<&str> = stats
        .split_whitespace()
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name))
        .filter(|name| *name != "dropped")
        .collect();
    counted.extend(tinynode::DropReason::ALL.iter().map(|r| r.name()));
    assert_eq!(
        documented, counted,
        "§8 lists every counter, and only those"
    );
}

#[test]
fn the_mainline_vectors_are_canonical_and_the_hello_carries_the_record() {
    let in_spec = vectors_in_spec();
    let get = |name: &str| {
        in_spec
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("vector {name}"))
    };
    let Ok(mainline::Message::Response { body, .. }) = mainline::decode(&get("krpc-response-ipv6"))
    else {
        panic!("the IPv6 response decodes");
    };
    assert_eq!(body.nodes6.len(), 1);
    assert_eq!(body.nodes6[0].addr, "[2001:db8::6]:6881".parse().unwrap());
    assert_eq!(
        body.values,
        [
            "[2001:db8::a]:4000"
                .parse::<std::net::SocketAddr>()
                .unwrap(),
            "192.0.2.10:4000".parse().unwrap()
        ]
    );
    assert_eq!(body.ip, Some("[2001:db8::5]:4321".parse().unwrap()));
    for name in [
        "krpc-get-peers",
        "krpc-announce-peer",
        "krpc-find-node-want",
    ] {
        let bytes = get(name);
        let decoded = mainline::bencode::decode(&bytes).expect(name);
        assert!(decoded.canonical, "{name} is canonical bencode");
        assert_eq!(
            decoded.value.get(b"ro").and_then(mainline::Value::as_int),
            Some(1)
        );
    }
    let hello = get("hello");
    let decoded = hello::decode(&hello).expect("the hello decodes");
    assert_eq!(decoded.record, get("record-blob"));
    assert_eq!(decoded.to, "198.51.100.20:4000".parse().unwrap());
    assert!(hello::verify(&hello, |b| Meeting::derive(CODE)
        .unwrap()
        .hello_mac(b)));
    let meeting = Meeting::derive(CODE).unwrap();
    assert_eq!(
        record::open(&meeting, decoded.record).unwrap().node_id,
        alice().node_id()
    );
}

/// §6.6: the loss a report carries, the copies it calls for, and the
/// record number read from a DTLS 1.2 header.
#[test]
fn the_link_examples_of_the_spec_hold() {
    let report = link_report_example();
    assert_eq!(link::LinkReport::decode(&report.encode()), Some(report));
    assert_eq!(
        link::LinkReport::decode(&[0x01, 0x00, 0x61]),
        None,
        "version 1 is gone"
    );
    assert_eq!(
        [0, 1, 3, 4, 21, 97, 1000].map(link::copies_for),
        [1, 2, 2, 3, 3, 3, 3]
    );
    let header = [
        0x17, 0xfe, 0xfd, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x10,
    ];
    assert_eq!(link::record_number(&header), Some((1 << 48) | 300));
    assert_eq!(
        (1u64 << 48 | 300) / link::BLOCK,
        (1 << 44) + 18,
        "its block"
    );
    assert_eq!((link::LINK_STREAM, link::LINK_LABEL), (1, "tinynode-link"));
}
