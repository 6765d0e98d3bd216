//! The bounded bincode codec every tinynode wire format shares: DHT frames,
//! sealed records and signals.
//!
//! Encoding is bincode 2.0.1 through its serde integration with
//! `config::standard()`: little-endian varints, enum variants as varint
//! indices, sequences and byte strings as a varint length and the items.
//! Decoding borrows the input, refuses input longer than the caller's
//! explicit limit, rejects trailing bytes, and allocates at most what the
//! input holds: [`Blob`] copies a byte string at its exact length after
//! checking its cap, and [`BoundedList`] checks its cap while reading, never
//! pre-allocating from a length on the wire.
//!
//! A leaf: this module imports nothing from the crate, so every layer above
//! may use it.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// Bincode's own ceiling on what one decode may read; callers pass their
/// (smaller) limit to [`decode_value`].
const BINCODE_LIMIT: usize = 64 * 1024;

/// A UDP endpoint on the wire: IPv4 or IPv6 address bytes and a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WireAddr {
    /// IPv4 address (4 bytes) and port.
    V4([u8; 4], u16),
    /// IPv6 address (16 bytes) and port.
    V6([u8; 16], u16),
}

/// Written in canonical form (`protocol-spec.md` §1.1): a v4-mapped IPv6
/// address goes on the wire as the IPv4 address it is.
impl From<SocketAddr> for WireAddr {
    fn from(addr: SocketAddr) -> Self {
        match addr.ip() {
            IpAddr::V4(ip) => Self::V4(ip.octets(), addr.port()),
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.octets(), addr.port()),
                None => Self::V6(ip.octets(), addr.port()),
            },
        }
    }
}

/// Read in canonical form: a v4-mapped `V6` a peer wrote anyway is the
/// IPv4 address.
impl From<WireAddr> for SocketAddr {
    fn from(addr: WireAddr) -> Self {
        match addr {
            WireAddr::V4(ip, port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port),
            WireAddr::V6(ip, port) => {
                let ip = Ipv6Addr::from(ip);
                match ip.to_ipv4_mapped() {
                    Some(v4) => SocketAddr::new(IpAddr::V4(v4), port),
                    None => SocketAddr::new(IpAddr::V6(ip), port),
                }
            }
        }
    }
}

/// An opaque byte string of at most `MAX` bytes.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Blob<const MAX: usize>(pub Vec<u8>);

impl<const MAX: usize> fmt::Debug for Blob<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl<const MAX: usize> Serialize for Blob<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Blob<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlobVisitor<const MAX: usize>;
        impl<const MAX: usize> Visitor<'_> for BlobVisitor<MAX> {
            type Value = Blob<MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {MAX} bytes")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
                if bytes.len() > MAX {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                Ok(Blob(bytes.to_vec()))
            }
        }
        deserializer.deserialize_bytes(BlobVisitor::<MAX>)
    }
}

/// A list of at most `MAX` items; decoding fails past the cap and never
/// reserves room for more than `MAX` items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundedList<T, const MAX: usize>(pub Vec<T>);

impl<T, const MAX: usize> Default for BoundedList<T, MAX> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Serialize, const MAX: usize> Serialize for BoundedList<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in &self.0 {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedList<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for ListVisitor<T, MAX> {
            type Value = BoundedList<T, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {MAX} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                if let Some(claimed) = seq.size_hint().filter(|&n| n > MAX) {
                    return Err(de::Error::invalid_length(claimed, &self));
                }
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(de::Error::invalid_length(MAX + 1, &self));
                    }
                    items.push(item);
                }
                Ok(BoundedList(items))
            }
        }
        deserializer.deserialize_seq(ListVisitor::<T, MAX>(PhantomData))
    }
}

/// Why bytes did not decode as the expected value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// Longer than the caller's limit; not read at all.
    TooLong {
        /// The limit.
        limit: usize,
    },
    /// The input ended inside the value.
    Truncated,
    /// A variant index, length or cap the type does not allow, or another
    /// malformed field; the context says which kind.
    Invalid(&'static str),
    /// Bytes left after the value.
    TrailingBytes(usize),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { limit } => write!(f, "longer than {limit} bytes"),
            Self::Truncated => f.write_str("truncated"),
            Self::Invalid(what) => write!(f, "invalid {what}"),
            Self::TrailingBytes(n) => write!(f, "{n} bytes after the value"),
        }
    }
}

impl std::error::Error for CodecError {}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<BINCODE_LIMIT>()
}

/// Encodes a serde value in the shared configuration. The types this crate
/// encodes have capped lists and blobs far below bincode's limit, so
/// encoding cannot fail; a debug build asserts it.
pub fn encode_value<T: Serialize>(value: &T) -> Vec<u8> {
    let encoded = bincode::serde::encode_to_vec(value, config());
    debug_assert!(encoded.is_ok(), "encoding a capped value failed");
    encoded.unwrap_or_default()
}

/// Decodes a serde value that must fill `bytes` exactly; input longer than
/// `limit` bytes is refused unread.
pub fn decode_value<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    limit: usize,
) -> Result<T, CodecError> {
    if bytes.len() > limit.min(BINCODE_LIMIT) {
        return Err(CodecError::TooLong { limit });
    }
    let (value, used) =
        bincode::serde::borrow_decode_from_slice(bytes, config()).map_err(classify)?;
    match bytes.len().checked_sub(used) {
        Some(0) => Ok(value),
        Some(extra) => Err(CodecError::TrailingBytes(extra)),
        None => Err(CodecError::Invalid("length")),
    }
}

/// Reduces bincode's error (which may carry a formatted string) to a
/// `Copy` kind, so a malformed datagram costs no more than its parse.
fn classify(error: bincode::error::DecodeError) -> CodecError {
    use bincode::error::DecodeError as E;
    match error {
        E::UnexpectedEnd { .. } => CodecError::Truncated,
        E::LimitExceeded => CodecError::TooLong {
            limit: BINCODE_LIMIT,
        },
        E::InvalidIntegerType { .. } | E::UnexpectedVariant { .. } => {
            CodecError::Invalid("variant or integer")
        }
        E::Utf8 { .. } | E::InvalidCharEncoding(_) => CodecError::Invalid("text"),
        E::InvalidBooleanValue(_) => CodecError::Invalid("boolean"),
        _ => CodecError::Invalid("field"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_mapped_addresses_are_ipv4_on_the_wire_and_when_read() {
        let mapped: SocketAddr = "[::ffff:192.0.2.9]:4000".parse().unwrap();
        assert_eq!(WireAddr::from(mapped), WireAddr::V4([192, 0, 2, 9], 4000));
        let mut written = [0u8; 16];
        written[10] = 0xff;
        written[11] = 0xff;
        written[12..].copy_from_slice(&[192, 0, 2, 9]);
        assert_eq!(
            SocketAddr::from(WireAddr::V6(written, 4000)),
            "192.0.2.9:4000".parse::<SocketAddr>().unwrap()
        );
        let v6: SocketAddr = "[2001:db8::9]:4000".parse().unwrap();
        assert_eq!(SocketAddr::from(WireAddr::from(v6)), v6);
    }

    #[test]
    fn caps_limits_and_trailing_bytes_are_enforced() {
        let too_many = BoundedList::<u8, 9>((0..9).collect());
        let bytes = encode_value(&too_many);
        assert!(decode_value::<BoundedList<u8, 8>>(&bytes, 100).is_err());
        assert!(decode_value::<BoundedList<u8, 9>>(&bytes, 100).is_ok());
        let too_long = Blob::<500>(vec![0; 401]);
        let bytes = encode_value(&too_long);
        assert!(decode_value::<Blob<400>>(&bytes, 1000).is_err());
        assert_eq!(
            decode_value::<Blob<500>>(&bytes, 100),
            Err(CodecError::TooLong { limit: 100 })
        );
        let mut bytes = encode_value(&Blob::<4>(vec![1, 2]));
        bytes.push(0);
        assert_eq!(
            decode_value::<Blob<4>>(&bytes, 100),
            Err(CodecError::TrailingBytes(1))
        );
        assert_eq!(
            decode_value::<Blob<4>>(&[3, 1], 100),
            Err(CodecError::Truncated)
        );
    }

    #[test]
    fn a_huge_claimed_length_fails_without_allocating_it() {
        // A list claiming u32::MAX entries (varint marker 252 + 4 bytes).
        let bytes = [252, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_value::<BoundedList<u64, 8>>(&bytes, 100).is_err());
        let bytes = [252, 0xff, 0xff, 0xff, 0x00];
        assert!(decode_value::<Blob<400>>(&bytes, 100).is_err());
    }

    #[test]
    fn addresses_convert_both_ways() {
        for text in ["192.0.2.1:5", "[2001:db8::1]:65535"] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(SocketAddr::from(WireAddr::from(addr)), addr);
        }
    }
}
