//! Hellos: the datagram that turns a bare address (a Mainline `values`
//! entry) into a verified member, `protocol-spec.md` §9.5.
//!
//! ```text
//! tag 0x0B | kind (0 hello, 1 reply, 2 LAN hello) | u16 BE length | sealed record | zeros to HELLO_LEN
//! ```
//!
//! Every hello is exactly [`HELLO_LEN`] bytes, so a reply (the same size)
//! never amplifies, and a planted address costs its victim at most
//! [`HELLO_LEN`] bytes per hello. The body is the member's sealed, signed
//! meeting record: an outsider sees random bytes and gets no answer,
//! because only a hello that opens with the meeting key is replied to.

use std::fmt;

/// First byte of a hello: in 4–15, the range RFC 7983 leaves unassigned,
/// beside the DHT tag.
pub const HELLO_TAG: u8 = 0x0B;
/// Length of every hello and reply.
pub const HELLO_LEN: usize = 256;
/// Bytes before the record: tag, kind, length.
const HEADER_LEN: usize = 4;
/// The longest sealed record a hello carries.
pub const MAX_HELLO_RECORD: usize = HELLO_LEN - HEADER_LEN;

/// Whether a hello asks for an answer, and which source sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloKind {
    /// Sent to a Mainline candidate address; a member answers with a reply.
    Hello,
    /// The answer to a hello; never answered.
    Reply,
    /// Sent to the source of a LAN beacon; never answered.
    Lan,
}

/// A decoded hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello<'a> {
    /// Hello or reply.
    pub kind: HelloKind,
    /// The sealed record.
    pub record: &'a [u8],
}

/// Why bytes are not a hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloError {
    /// Not exactly [`HELLO_LEN`] bytes, or not the tag.
    WrongLength,
    /// A kind other than 0 or 1.
    UnknownKind,
    /// The length field is 0 or runs past the end.
    BadLength,
    /// Padding that is not zeros.
    BadPadding,
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WrongLength => "not a hello-sized datagram",
            Self::UnknownKind => "unknown hello kind",
            Self::BadLength => "record length out of range",
            Self::BadPadding => "padding is not zeros",
        })
    }
}

impl std::error::Error for HelloError {}

/// The datagram for `record` (at most [`MAX_HELLO_RECORD`] bytes; the
/// caller seals a record that fits).
pub fn encode(kind: HelloKind, record: &[u8]) -> Vec<u8> {
    debug_assert!(!record.is_empty() && record.len() <= MAX_HELLO_RECORD);
    let len = record.len().min(MAX_HELLO_RECORD);
    let mut out = Vec::with_capacity(HELLO_LEN);
    out.push(HELLO_TAG);
    out.push(match kind {
        HelloKind::Hello => 0,
        HelloKind::Reply => 1,
        HelloKind::Lan => 2,
    });
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&record[..len]);
    out.resize(HELLO_LEN, 0);
    out
}

/// Decodes a hello datagram.
pub fn decode(datagram: &[u8]) -> Result<Hello<'_>, HelloError> {
    let Some((&[tag, kind, high, low], rest)) = datagram.split_first_chunk::<HEADER_LEN>() else {
        return Err(HelloError::WrongLength);
    };
    if tag != HELLO_TAG || datagram.len() != HELLO_LEN {
        return Err(HelloError::WrongLength);
    }
    let kind = match kind {
        0 => HelloKind::Hello,
        1 => HelloKind::Reply,
        2 => HelloKind::Lan,
        _ => return Err(HelloError::UnknownKind),
    };
    let len = usize::from(u16::from_be_bytes([high, low]));
    if len == 0 || len > rest.len() {
        return Err(HelloError::BadLength);
    }
    let (record, padding) = rest.split_at(len);
    if padding.iter().any(|&b| b != 0) {
        return Err(HelloError::BadPadding);
    }
    Ok(Hello { kind, record })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::meeting::Meeting;
    use std::net::SocketAddr;

    #[test]
    fn round_trips_at_a_fixed_size() {
        let bytes = encode(HelloKind::Reply, b"sealed");
        assert_eq!(bytes.len(), HELLO_LEN);
        assert_eq!(&bytes[..4], &[HELLO_TAG, 1, 0, 6]);
        assert_eq!(
            decode(&bytes),
            Ok(Hello {
                kind: HelloKind::Reply,
                record: b"sealed"
            })
        );
    }

    #[test]
    fn every_malformation_is_named() {
        let good = encode(HelloKind::Hello, b"x");
        assert_eq!(decode(&good[..HELLO_LEN - 1]), Err(HelloError::WrongLength));
        assert_eq!(decode(&[HELLO_TAG]), Err(HelloError::WrongLength));
        let mut kind = good.clone();
        kind[1] = 3;
        assert_eq!(decode(&kind), Err(HelloError::UnknownKind));
        let mut len = good.clone();
        len[2] = 0xff;
        assert_eq!(decode(&len), Err(HelloError::BadLength));
        let mut zero = good.clone();
        zero[3] = 0;
        assert_eq!(decode(&zero), Err(HelloError::BadLength));
        let mut padding = good;
        padding[HELLO_LEN - 1] = 1;
        assert_eq!(decode(&padding), Err(HelloError::BadPadding));
    }

    #[test]
    fn a_record_with_four_ipv6_addresses_fits() {
        let meeting = Meeting::derive("hello size").unwrap();
        let identity = Identity::from_seed([3; 32]);
        let addrs: Vec<SocketAddr> = (1..=4)
            .map(|i| format!("[2001:db8::{i}]:65535").parse().unwrap())
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
