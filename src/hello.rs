//! Hellos: the datagram that turns a bare address (a Mainline `values`
//! entry) into a verified member, `protocol-spec.md` §9.6.
//!
//! ```text
//! 0     tag 0x0B | kind (0 hello, 1 reply, 2 LAN hello, 3 ack) | u16 BE length
//! 4     sealed record | zeros to byte 237
//! 237   to: family (4 or 6) | 16 address bytes (IPv4 in the first 4) | u16 BE port
//! 256   nonce [8] | echo [8]
//! 272   mac [16]: the first 16 bytes of HMAC-SHA256(hello key, label || bytes 0..272)
//! ```
//!
//! Every hello is exactly [`HELLO_LEN`] bytes, so an answer (the same size)
//! never amplifies, and a planted address costs its victim at most
//! [`HELLO_LEN`] bytes per hello. The body is the member's sealed, signed
//! meeting record: an outsider sees random bytes and gets no answer,
//! because only a hello whose code checks with the meeting's hello key is
//! answered. The code covers `to` (the address the hello was sent to: one
//! captured at a planted address names that address, so a replay elsewhere
//! is refused) and the nonces: `echo` repeats the nonce of the hello it
//! answers, which proves that the sender receives at its address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// First byte of a hello: in 4–15, the range RFC 7983 leaves unassigned,
/// beside the DHT tag.
pub const HELLO_TAG: u8 = 0x0B;
/// Length of every hello and answer.
pub const HELLO_LEN: usize = 288;
/// Bytes before the record: tag, kind, length.
const HEADER_LEN: usize = 4;
/// Where the fixed tail (`to`, nonces, code) starts.
const TAIL_AT: usize = HELLO_LEN - TO_LEN - 2 * NONCE_LEN - MAC_LEN;
/// Bytes of the address a hello was sent to.
const TO_LEN: usize = 19;
/// Bytes of a hello nonce.
pub const NONCE_LEN: usize = 8;
/// Bytes of a hello's authentication code.
pub const MAC_LEN: usize = 16;
/// The longest sealed record a hello carries.
pub const MAX_HELLO_RECORD: usize = TAIL_AT - HEADER_LEN;

/// A hello nonce; all zeros means none.
pub type HelloNonce = [u8; NONCE_LEN];

/// Whether a hello asks for an answer, and which source sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloKind {
    /// Sent to a Mainline candidate address; a member answers with a reply.
    Hello,
    /// The answer to a hello; answered with an ack when it proves its
    /// sender's address.
    Reply,
    /// Sent to the source of a LAN beacon.
    Lan,
    /// The last word: echoes an answer's nonce; never answered.
    Ack,
}

/// A decoded hello (its code not yet checked: see [`verify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello<'a> {
    /// Hello, reply, LAN hello or ack.
    pub kind: HelloKind,
    /// The sealed record.
    pub record: &'a [u8],
    /// The address the sender sent it to.
    pub to: SocketAddr,
    /// The sender's fresh nonce for this destination.
    pub nonce: HelloNonce,
    /// The nonce of the hello this one answers (zeros: none).
    pub echo: HelloNonce,
}

/// Why bytes are not a hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloError {
    /// Not exactly [`HELLO_LEN`] bytes, or not the tag.
    WrongLength,
    /// A kind other than 0–3.
    UnknownKind,
    /// The length field is 0 or runs into the tail.
    BadLength,
    /// Padding that is not zeros.
    BadPadding,
    /// `to` is not a valid address.
    BadAddress,
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WrongLength => "not a hello-sized datagram",
            Self::UnknownKind => "unknown hello kind",
            Self::BadLength => "record length out of range",
            Self::BadPadding => "padding is not zeros",
            Self::BadAddress => "the destination address is malformed",
        })
    }
}

impl std::error::Error for HelloError {}

fn kind_code(kind: HelloKind) -> u8 {
    match kind {
        HelloKind::Hello => 0,
        HelloKind::Reply => 1,
        HelloKind::Lan => 2,
        HelloKind::Ack => 3,
    }
}

/// The datagram for `hello` (its record at most [`MAX_HELLO_RECORD`]
/// bytes; the caller seals a record that fits), its last [`MAC_LEN`]
/// bytes the code `mac` gives the bytes before them (the meeting's
/// [`hello_mac`](crate::meeting::Meeting::hello_mac)).
pub fn encode(hello: &Hello<'_>, mac: impl FnOnce(&[u8]) -> [u8; MAC_LEN]) -> Vec<u8> {
    debug_assert!(!hello.record.is_empty() && hello.record.len() <= MAX_HELLO_RECORD);
    let len = hello.record.len().min(MAX_HELLO_RECORD);
    let mut out = Vec::with_capacity(HELLO_LEN);
    out.push(HELLO_TAG);
    out.push(kind_code(hello.kind));
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&hello.record[..len]);
    out.resize(TAIL_AT, 0);
    let (family, ip) = match crate::addr::canonical(hello.to).ip() {
        IpAddr::V4(v4) => {
            let mut ip = [0; 16];
            ip[..4].copy_from_slice(&v4.octets());
            (4, ip)
        }
        IpAddr::V6(v6) => (6, v6.octets()),
    };
    out.push(family);
    out.extend_from_slice(&ip);
    out.extend_from_slice(&hello.to.port().to_be_bytes());
    out.extend_from_slice(&hello.nonce);
    out.extend_from_slice(&hello.echo);
    let code = mac(&out);
    out.extend_from_slice(&code);
    out
}

/// True if `datagram`'s code is the one `mac` gives its other bytes.
pub fn verify(datagram: &[u8], mac: impl FnOnce(&[u8]) -> [u8; MAC_LEN]) -> bool {
    let Some((body, code)) = datagram.split_at_checked(HELLO_LEN - MAC_LEN) else {
        return false;
    };
    let expected = mac(body);
    // No early exit: timing says nothing about how much of a guess was right.
    code.len() == MAC_LEN
        && expected
            .iter()
            .zip(code)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Decodes a hello datagram (its code is checked by [`verify`]).
pub fn decode(datagram: &[u8]) -> Result<Hello<'_>, HelloError> {
    let Some((&[tag, kind, high, low], _)) = datagram.split_first_chunk::<HEADER_LEN>() else {
        return Err(HelloError::WrongLength);
    };
    if tag != HELLO_TAG || datagram.len() != HELLO_LEN {
        return Err(HelloError::WrongLength);
    }
    let kind = match kind {
        0 => HelloKind::Hello,
        1 => HelloKind::Reply,
        2 => HelloKind::Lan,
        3 => HelloKind::Ack,
        _ => return Err(HelloError::UnknownKind),
    };
    let len = usize::from(u16::from_be_bytes([high, low]));
    if len == 0 || len > MAX_HELLO_RECORD {
        return Err(HelloError::BadLength);
    }
    let body = datagram
        .get(HEADER_LEN..TAIL_AT)
        .ok_or(HelloError::WrongLength)?;
    let (record, padding) = body.split_at(len);
    if padding.iter().any(|&b| b != 0) {
        return Err(HelloError::BadPadding);
    }
    let tail = datagram.get(TAIL_AT..).ok_or(HelloError::WrongLength)?;
    let field = |at: usize, n: usize| tail.get(at..at + n).ok_or(HelloError::WrongLength);
    let ip_bytes: [u8; 16] = field(1, 16)?
        .try_into()
        .map_err(|_| HelloError::WrongLength)?;
    let ip = match tail.first() {
        Some(4) if ip_bytes[4..].iter().all(|&b| b == 0) => IpAddr::V4(Ipv4Addr::new(
            ip_bytes[0],
            ip_bytes[1],
            ip_bytes[2],
            ip_bytes[3],
        )),
        // Written in canonical form (§1.1): a v4-mapped address is not.
        Some(6) if Ipv6Addr::from(ip_bytes).to_ipv4_mapped().is_none() => {
            IpAddr::V6(Ipv6Addr::from(ip_bytes))
        }
        _ => return Err(HelloError::BadAddress),
    };
    let port_bytes = field(17, 2)?;
    let port = u16::from_be_bytes([port_bytes[0], port_bytes[1]]);
    let nonce = field(TO_LEN, NONCE_LEN)?
        .try_into()
        .map_err(|_| HelloError::WrongLength)?;
    let echo = field(TO_LEN + NONCE_LEN, NONCE_LEN)?
        .try_into()
        .map_err(|_| HelloError::WrongLength)?;
    Ok(Hello {
        kind,
        record,
        to: SocketAddr::new(ip, port),
        nonce,
        echo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::meeting::Meeting;

    fn sample(record: &[u8]) -> Hello<'_> {
        Hello {
            kind: HelloKind::Reply,
            record,
            to: "203.0.113.5:4000".parse().unwrap(),
            nonce: [1; 8],
            echo: [2; 8],
        }
    }

    fn mac(bytes: &[u8]) -> [u8; MAC_LEN] {
        Meeting::derive("hello-tests-able-acid-acorn")
            .unwrap()
            .hello_mac(bytes)
    }

    #[test]
    fn round_trips_at_a_fixed_size_and_the_code_covers_every_byte() {
        let meeting = Meeting::derive("hello-tests-able-acid-acorn").unwrap();
        let code = |b: &[u8]| meeting.hello_mac(b);
        let bytes = encode(&sample(b"sealed"), code);
        assert_eq!(bytes.len(), HELLO_LEN);
        assert_eq!(&bytes[..4], &[HELLO_TAG, 1, 0, 6]);
        assert_eq!(decode(&bytes), Ok(sample(b"sealed")));
        assert!(verify(&bytes, code));
        for at in [0, 4, TAIL_AT, TAIL_AT + 18, HELLO_LEN - 1] {
            let mut altered = bytes.clone();
            altered[at] ^= 1;
            assert!(!verify(&altered, code), "byte {at}");
        }
        let other = Meeting::derive("another meeting").unwrap();
        assert!(!verify(&bytes, |b| other.hello_mac(b)));
        let v6 = Hello {
            to: "[2001:db8::7]:9".parse().unwrap(),
            ..sample(b"x")
        };
        assert_eq!(decode(&encode(&v6, code)), Ok(v6));
    }

    #[test]
    fn every_malformation_is_named() {
        let good = encode(&sample(b"x"), mac);
        assert_eq!(decode(&good[..HELLO_LEN - 1]), Err(HelloError::WrongLength));
        assert_eq!(decode(&[HELLO_TAG]), Err(HelloError::WrongLength));
        let mut kind = good.clone();
        kind[1] = 4;
        assert_eq!(decode(&kind), Err(HelloError::UnknownKind));
        let mut len = good.clone();
        len[2] = 0xff;
        assert_eq!(decode(&len), Err(HelloError::BadLength));
        let mut zero = good.clone();
        zero[3] = 0;
        assert_eq!(decode(&zero), Err(HelloError::BadLength));
        let mut padding = good.clone();
        padding[TAIL_AT - 1] = 1;
        assert_eq!(decode(&padding), Err(HelloError::BadPadding));
        let mut family = good.clone();
        family[TAIL_AT] = 5;
        assert_eq!(decode(&family), Err(HelloError::BadAddress));
        let mut v4_junk = good.clone();
        v4_junk[TAIL_AT + 10] = 1;
        assert_eq!(decode(&v4_junk), Err(HelloError::BadAddress));
        let mut mapped = good;
        mapped[TAIL_AT] = 6;
        mapped[TAIL_AT + 1..TAIL_AT + 17]
            .copy_from_slice(&"::ffff:203.0.113.5".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(decode(&mapped), Err(HelloError::BadAddress));
    }

    #[test]
    fn a_record_with_four_addresses_fits() {
        let meeting = Meeting::derive("hello size").unwrap();
        let identity = Identity::from_seed([3; 32]);
        let addrs: Vec<SocketAddr> = [
            "[2001:db8::1]:65535",
            "[2001:db8::2]:65535",
            "203.0.113.1:65535",
            "10.0.0.1:65535",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let record = crate::record::seal(
            &meeting,
            &identity,
            &addrs,
            crate::record::NetworkFacts::UNKNOWN,
            u64::MAX,
            [0; 12],
        );
        assert!(
            record.len() <= MAX_HELLO_RECORD,
            "{} > {MAX_HELLO_RECORD}",
            record.len()
        );
    }
}
