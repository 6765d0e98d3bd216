//! KRPC (BEP 5) messages as a read-only client speaks them: the queries it
//! sends and the responses and errors it reads, over IPv4 and IPv6 (BEP
//! 32: `nodes6` lists 38-byte IPv6 contacts, `values` may hold 18-byte
//! IPv6 peers, and a query's `want` asks for either family's contacts).
//!
//! Every query carries `ro=1` (BEP 43: do not add us to routing tables),
//! a [`TXID_LEN`]-byte transaction ID and no `v` (a client version would
//! label tinynode users to every observer). `announce_peer` always sends
//! `implied_port=1` together with `port` (libtorrent requires `port` even
//! then), so storing nodes record the NAT mapping of the socket the query
//! left from. Decoding is bounded: at most [`MAX_NODES`] nodes and
//! [`MAX_VALUES`] peers are taken from one response, tokens are at most
//! [`MAX_TOKEN_LEN`] bytes; anything else in the message is ignored.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

use super::bencode::{self, DecodeError, Value};

/// Length of a Mainline node ID and of an infohash.
pub const ID_LEN: usize = 20;
/// Length of the transaction IDs we send.
pub const TXID_LEN: usize = 4;
/// Nodes taken from one response's `nodes`.
pub const MAX_NODES: usize = 16;
/// Peers taken from one response's `values`.
pub const MAX_VALUES: usize = 100;
/// Longest token kept.
pub const MAX_TOKEN_LEN: usize = 64;
/// Bytes of one compact IPv4 node: ID, IPv4, port.
const COMPACT_NODE_LEN: usize = ID_LEN + 6;
/// Bytes of one compact IPv6 node (BEP 32): ID, IPv6, port.
const COMPACT_NODE6_LEN: usize = ID_LEN + 18;

/// A Mainline node ID or infohash.
pub type Id = [u8; ID_LEN];

/// A query this client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query<'a> {
    /// `ping`.
    Ping,
    /// `find_node` for `target`.
    FindNode {
        /// The ID looked for.
        target: Id,
        /// Ask for contacts of both families (`want: ["n4", "n6"]`, BEP
        /// 32), while bootstrapping a node that has sockets of both.
        want_both: bool,
    },
    /// `get_peers` for `info_hash`.
    GetPeers {
        /// The infohash.
        info_hash: Id,
    },
    /// `announce_peer` with `implied_port=1`.
    AnnouncePeer {
        /// The infohash.
        info_hash: Id,
        /// Our socket's local port (ignored by storing nodes, required by libtorrent).
        port: u16,
        /// The token the storing node gave in its `get_peers` answer.
        token: &'a [u8],
    },
}

impl Query<'_> {
    /// The method name on the wire.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::FindNode { .. } => "find_node",
            Self::GetPeers { .. } => "get_peers",
            Self::AnnouncePeer { .. } => "announce_peer",
        }
    }
}

/// The bencoded query: `d1:a d<args> e 1:q <method> 2:ro i1e 1:t <txid> 1:y 1:q e`.
pub fn encode_query(txid: [u8; TXID_LEN], id: &Id, query: &Query<'_>) -> Vec<u8> {
    let mut args: Vec<(&[u8], Value<'_>)> = vec![(b"id", Value::Bytes(id))];
    match query {
        Query::Ping => {}
        Query::FindNode { target, want_both } => {
            args.push((b"target", Value::Bytes(target)));
            if *want_both {
                args.push((
                    b"want",
                    Value::List(vec![Value::Bytes(b"n4"), Value::Bytes(b"n6")]),
                ));
            }
        }
        Query::GetPeers { info_hash } => args.push((b"info_hash", Value::Bytes(info_hash))),
        Query::AnnouncePeer {
            info_hash,
            port,
            token,
        } => {
            args.push((b"implied_port", Value::Int(1)));
            args.push((b"info_hash", Value::Bytes(info_hash)));
            args.push((b"port", Value::Int(i64::from(*port))));
            args.push((b"token", Value::Bytes(token)));
        }
    }
    Value::Dict(vec![
        (b"a", Value::Dict(args)),
        (b"q", Value::Bytes(query.method().as_bytes())),
        (b"ro", Value::Int(1)),
        (b"t", Value::Bytes(&txid)),
        (b"y", Value::Bytes(b"q")),
    ])
    .encode()
}

/// A node from a `nodes` or `nodes6` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactNode {
    /// Its ID.
    pub id: Id,
    /// Its address: IPv4 from `nodes`, IPv6 from `nodes6`.
    pub addr: SocketAddr,
}

/// The body of a response (`y=r`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The responder's ID.
    pub id: Id,
    /// Closer IPv4 nodes (`nodes`), at most [`MAX_NODES`].
    pub nodes: Vec<CompactNode>,
    /// Closer IPv6 nodes (`nodes6`), at most [`MAX_NODES`].
    pub nodes6: Vec<CompactNode>,
    /// Peers stored under the infohash (`values`, 6-byte IPv4 or 18-byte
    /// IPv6 entries), at most [`MAX_VALUES`].
    pub values: Vec<SocketAddr>,
    /// The write token for `announce_peer`.
    pub token: Option<Vec<u8>>,
    /// Our address as the responder saw it (BEP 42 `ip`).
    pub ip: Option<SocketAddr>,
}

/// A decoded KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A response to one of our queries.
    Response {
        /// Its transaction ID.
        txid: &'a [u8],
        /// What it says.
        body: Response,
    },
    /// An error answer to one of our queries.
    Error {
        /// Its transaction ID.
        txid: &'a [u8],
        /// The error code (201 generic, 202 server, 203 protocol, 204 method).
        code: i64,
    },
    /// A query to us (we are read-only and do not answer).
    Query {
        /// The method.
        method: &'a [u8],
    },
}

/// Why a datagram is not a KRPC message we can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KrpcError {
    /// Not bencode.
    Bencode(DecodeError),
    /// Not a dict with `t` and a known `y`.
    NotKrpc,
    /// A response without a 20-byte `id`.
    MissingId,
}

impl fmt::Display for KrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bencode(error) => write!(f, "not bencode: {error}"),
            Self::NotKrpc => f.write_str("not a KRPC message"),
            Self::MissingId => f.write_str("response without a node ID"),
        }
    }
}

impl std::error::Error for KrpcError {}

/// Decodes a KRPC datagram.
pub fn decode(datagram: &[u8]) -> Result<Message<'_>, KrpcError> {
    let decoded = bencode::decode(datagram).map_err(KrpcError::Bencode)?;
    let message = decoded.value;
    let txid = message
        .get(b"t")
        .and_then(Value::as_bytes)
        .ok_or(KrpcError::NotKrpc)?;
    match message.get(b"y").and_then(Value::as_bytes) {
        Some(b"r") => {
            let r = message.get(b"r").ok_or(KrpcError::NotKrpc)?;
            let mut body = response(r)?;
            body.ip = message
                .get(b"ip")
                .and_then(Value::as_bytes)
                .and_then(compact_addr);
            Ok(Message::Response { txid, body })
        }
        Some(b"e") => {
            let code = message
                .get(b"e")
                .and_then(Value::as_list)
                .and_then(|e| e.first())
                .and_then(Value::as_int)
                .ok_or(KrpcError::NotKrpc)?;
            Ok(Message::Error { txid, code })
        }
        Some(b"q") => Ok(Message::Query {
            method: message
                .get(b"q")
                .and_then(Value::as_bytes)
                .ok_or(KrpcError::NotKrpc)?,
        }),
        _ => Err(KrpcError::NotKrpc),
    }
}

fn response(r: &Value<'_>) -> Result<Response, KrpcError> {
    let id = r
        .get(b"id")
        .and_then(Value::as_bytes)
        .and_then(|id| Id::try_from(id).ok())
        .ok_or(KrpcError::MissingId)?;
    // A `nodes6` entry holding a v4-mapped address is not an IPv6 contact:
    // dropped, so each list holds its own family only.
    let nodes_of = |key: &[u8], len: usize, v6: bool| -> Vec<CompactNode> {
        r.get(key)
            .and_then(Value::as_bytes)
            .map(|bytes| {
                bytes
                    .chunks_exact(len)
                    .take(MAX_NODES)
                    .filter_map(compact_node)
                    .filter(|node| node.addr.is_ipv6() == v6)
                    .collect()
            })
            .unwrap_or_default()
    };
    let nodes = nodes_of(b"nodes", COMPACT_NODE_LEN, false);
    let nodes6 = nodes_of(b"nodes6", COMPACT_NODE6_LEN, true);
    let values = r
        .get(b"values")
        .and_then(Value::as_list)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_bytes)
                .filter_map(compact_addr)
                .take(MAX_VALUES)
                .collect()
        })
        .unwrap_or_default();
    let token = r
        .get(b"token")
        .and_then(Value::as_bytes)
        .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
        .map(<[u8]>::to_vec);
    Ok(Response {
        id,
        nodes,
        nodes6,
        values,
        token,
        ip: None,
    })
}

fn compact_node(chunk: &[u8]) -> Option<CompactNode> {
    let (id, addr) = chunk.split_first_chunk::<ID_LEN>()?;
    Some(CompactNode {
        id: *id,
        addr: compact_addr(addr)?,
    })
}

/// A compact address: 4-byte IPv4 or 16-byte IPv6, then a 2-byte port,
/// network order.
pub fn compact_addr(bytes: &[u8]) -> Option<SocketAddr> {
    match bytes.len() {
        6 => {
            let ip = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            Some(SocketAddr::from((
                ip,
                u16::from_be_bytes([bytes[4], bytes[5]]),
            )))
        }
        18 => {
            let ip: [u8; 16] = bytes[..16].try_into().ok()?;
            let addr = SocketAddr::from((ip, u16::from_be_bytes([bytes[16], bytes[17]])));
            Some(crate::addr::canonical(addr))
        }
        _ => None,
    }
}

/// The compact form of `addr` (see [`compact_addr`]).
pub fn compact(addr: SocketAddr) -> Vec<u8> {
    let mut out = match addr {
        SocketAddr::V4(a) => a.ip().octets().to_vec(),
        SocketAddr::V6(a) => a.ip().octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// A response as a Mainline node would send it, for tests and fuzz seeds.
pub fn encode_response(txid: &[u8], body: &Response) -> Vec<u8> {
    let list = |nodes: &[CompactNode]| -> Vec<u8> {
        nodes
            .iter()
            .flat_map(|n| [&n.id[..], &compact(n.addr)].concat())
            .collect()
    };
    let (nodes, nodes6) = (list(&body.nodes), list(&body.nodes6));
    let values: Vec<Vec<u8>> = body.values.iter().map(|v| compact(*v)).collect();
    let mut r: Vec<(&[u8], Value<'_>)> = vec![(b"id", Value::Bytes(&body.id))];
    if !nodes.is_empty() {
        r.push((b"nodes", Value::Bytes(&nodes)));
    }
    if !nodes6.is_empty() {
        r.push((b"nodes6", Value::Bytes(&nodes6)));
    }
    if let Some(token) = &body.token {
        r.push((b"token", Value::Bytes(token)));
    }
    if !values.is_empty() {
        r.push((
            b"values",
            Value::List(values.iter().map(|v| Value::Bytes(v)).collect()),
        ));
    }
    let ip = body.ip.map(compact);
    let mut top: Vec<(&[u8], Value<'_>)> = vec![
        (b"r", Value::Dict(r)),
        (b"t", Value::Bytes(txid)),
        (b"y", Value::Bytes(b"r")),
    ];
    if let Some(ip) = &ip {
        top.push((b"ip", Value::Bytes(ip)));
    }
    Value::Dict(top).encode()
}

/// An error answer `e=[code, message]`, for tests and fuzz seeds.
pub fn encode_error(txid: &[u8], code: i64, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Value::Dict(vec![
        (
            b"e",
            Value::List(vec![Value::Int(code), Value::Bytes(message.as_bytes())]),
        ),
        (b"t", Value::Bytes(txid)),
        (b"y", Value::Bytes(b"e")),
    ])
    .encode_into(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mainline::bencode::encode_bytes;

    /// `<len>:<bytes>`, for hand-built messages.
    fn key(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_bytes(bytes, &mut out);
        out
    }

    #[test]
    fn queries_match_bep5_with_ro_and_our_txid() {
        let id = *b"abcdefghij0123456789";
        assert_eq!(
            encode_query(*b"aaaa", &id, &Query::Ping),
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi1e1:t4:aaaa1:y1:qe"
        );
        let announce = encode_query(
            *b"tttt",
            &id,
            &Query::AnnouncePeer {
                info_hash: *b"mnopqrstuvwxyz123456",
                port: 6881,
                token: b"aoeusnth",
            },
        );
        assert_eq!(
            announce,
            &b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer2:roi1e1:t4:tttt1:y1:qe"[..]
        );
        assert!(bencode::decode(&announce).unwrap().canonical);
        // BEP 32: `want` comes after `target`, in key order.
        let find = encode_query(
            *b"ffff",
            &id,
            &Query::FindNode {
                target: *b"mnopqrstuvwxyz123456",
                want_both: true,
            },
        );
        assert_eq!(
            find,
            &b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:find_node2:roi1e1:t4:ffff1:y1:qe"[..]
        );
        assert!(bencode::decode(&find).unwrap().canonical);
    }

    #[test]
    fn responses_round_trip_with_nodes_nodes6_values_token_and_ip() {
        let body = Response {
            id: [7; 20],
            nodes: vec![CompactNode {
                id: [8; 20],
                addr: "192.0.2.8:6881".parse().unwrap(),
            }],
            nodes6: vec![CompactNode {
                id: [9; 20],
                addr: "[2001:db8::9]:6881".parse().unwrap(),
            }],
            values: vec![
                "198.51.100.1:4000".parse().unwrap(),
                "[2001:db8::1]:4000".parse().unwrap(),
            ],
            token: Some(b"tok".to_vec()),
            ip: Some("[2001:db8::5]:9999".parse().unwrap()),
        };
        let bytes = encode_response(b"tx", &body);
        assert_eq!(decode(&bytes), Ok(Message::Response { txid: b"tx", body }));
        assert_eq!(
            decode(&encode_error(b"tx", 203, "Bad token")),
            Ok(Message::Error {
                txid: b"tx",
                code: 203
            })
        );
        assert_eq!(
            decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"),
            Ok(Message::Query { method: b"ping" })
        );
    }

    #[test]
    fn oversized_answers_are_cut_to_the_limits() {
        let nodes: Vec<u8> = (0..40u8)
            .flat_map(|i| [[i; 20].to_vec(), vec![192, 0, 2, i, 0x1a, 0xe1]].concat())
            .collect();
        let values: Vec<u8> = (0..300u16)
            .flat_map(|i| key(&[10, 0, (i >> 8) as u8, i as u8, 0, 80]))
            .collect();
        let long_token = [b'x'; MAX_TOKEN_LEN + 1];
        let bytes = [
            &b"d1:rd2:id20:"[..],
            &[1; 20],
            &key(b"nodes"),
            &key(&nodes),
            &key(b"token"),
            &key(&long_token),
            &key(b"values"),
            b"l",
            &values,
            b"ee1:t2:aa1:y1:re",
        ]
        .concat();
        let Ok(Message::Response { body, .. }) = decode(&bytes) else {
            panic!("decodes");
        };
        assert_eq!(body.nodes.len(), MAX_NODES);
        assert_eq!(body.values.len(), MAX_VALUES);
        assert_eq!(body.token, None, "an oversized token is not kept");
    }

    #[test]
    fn what_is_not_a_usable_message_is_an_error() {
        assert!(matches!(decode(b"d1:y1:re"), Err(KrpcError::NotKrpc)));
        assert!(matches!(
            decode(b"d1:rd2:id3:abce1:t2:aa1:y1:re"),
            Err(KrpcError::MissingId)
        ));
        assert!(matches!(decode(b"le"), Err(KrpcError::NotKrpc)));
        assert!(matches!(
            decode(b"d1:t2:aa1:y1:xe"),
            Err(KrpcError::NotKrpc)
        ));
        assert!(matches!(decode(b"dx"), Err(KrpcError::Bencode(_))));
    }
}
