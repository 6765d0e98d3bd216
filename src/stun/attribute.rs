//! STUN attributes (RFC 5389 §15, RFC 8445 §7.1.1 for the ICE ones): the
//! typed view of one attribute value, its parser and its emitter.
//!
//! Parsing borrows the value bytes, checks every length before reading, and
//! never allocates. Unknown attribute types are kept as data
//! ([`Attribute::Unknown`]); whether they matter is decided by the caller
//! (comprehension-required types are `0x0000..=0x7FFF`, §15).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::ids::{MAGIC_COOKIE, TransactionId};

/// MAPPED-ADDRESS (§15.1).
pub const MAPPED_ADDRESS: u16 = 0x0001;
/// USERNAME (§15.3).
pub const USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY (§15.4).
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE (§15.6).
pub const ERROR_CODE: u16 = 0x0009;
/// UNKNOWN-ATTRIBUTES (§15.9).
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
/// REALM (§15.7).
pub const REALM: u16 = 0x0014;
/// NONCE (§15.8).
pub const NONCE: u16 = 0x0015;
/// XOR-MAPPED-ADDRESS (§15.2).
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// PRIORITY (RFC 8445 §7.1.1).
pub const PRIORITY: u16 = 0x0024;
/// USE-CANDIDATE (RFC 8445 §7.1.2).
pub const USE_CANDIDATE: u16 = 0x0025;
/// SOFTWARE (§15.10).
pub const SOFTWARE: u16 = 0x8022;
/// ALTERNATE-SERVER (§15.11).
pub const ALTERNATE_SERVER: u16 = 0x8023;
/// FINGERPRINT (§15.5).
pub const FINGERPRINT: u16 = 0x8028;
/// ICE-CONTROLLED (RFC 8445 §7.1.3).
pub const ICE_CONTROLLED: u16 = 0x8029;
/// ICE-CONTROLLING (RFC 8445 §7.1.3).
pub const ICE_CONTROLLING: u16 = 0x802A;

/// Length of a MESSAGE-INTEGRITY value (HMAC-SHA1).
pub const INTEGRITY_LEN: usize = 20;
/// Longest USERNAME value in bytes (§15.3: "less than 513 bytes").
pub const MAX_USERNAME_BYTES: usize = 512;
/// Longest REALM, NONCE, SOFTWARE or reason phrase value in bytes (§15.6–15.10).
pub const MAX_TEXT_BYTES: usize = 763;
/// Most characters in REALM, NONCE, SOFTWARE or a reason phrase ("fewer than 128").
pub const MAX_TEXT_CHARS: usize = 127;

const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

/// True for attribute types a receiver must understand (§15: `0x0000..=0x7FFF`).
pub fn is_comprehension_required(attribute_type: u16) -> bool {
    attribute_type < 0x8000
}

/// One decoded attribute. String and byte values borrow from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribute<'a> {
    /// Reflexive transport address, not obfuscated (pre-RFC 5389 servers).
    MappedAddress(SocketAddr),
    /// Reflexive transport address, XORed with the cookie and transaction ID.
    XorMappedAddress(SocketAddr),
    /// User name for short-term credentials (at most 512 bytes of UTF-8).
    Username(&'a str),
    /// HMAC-SHA1 of the message up to this attribute.
    MessageIntegrity([u8; INTEGRITY_LEN]),
    /// Error class, number and reason phrase.
    ErrorCode(ErrorCode<'a>),
    /// Attribute types that a request carried and the server did not understand.
    UnknownAttributes(TypeList<'a>),
    /// Authentication realm.
    Realm(&'a str),
    /// Authentication nonce.
    Nonce(&'a str),
    /// Name and version of the sending software.
    Software(&'a str),
    /// Server a client should try instead (with a 300 error).
    AlternateServer(SocketAddr),
    /// CRC-32 of the message XOR `0x5354554e`; always the last attribute.
    Fingerprint(u32),
    /// ICE candidate priority.
    Priority(u32),
    /// ICE nomination flag (empty value).
    UseCandidate,
    /// ICE role: controlled, with the tie-breaker.
    IceControlled(u64),
    /// ICE role: controlling, with the tie-breaker.
    IceControlling(u64),
    /// Any other type, kept verbatim.
    Unknown {
        /// The attribute type.
        attribute_type: u16,
        /// The value, without padding.
        value: &'a [u8],
    },
}

/// ERROR-CODE value (§15.6): a code in 300..=699 and a UTF-8 reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode<'a> {
    /// Class × 100 + number, for example 420.
    pub code: u16,
    /// Human-readable reason; at most 127 characters.
    pub reason: &'a str,
}

/// A list of 16-bit attribute types stored big-endian, as carried by
/// UNKNOWN-ATTRIBUTES. Borrowing the bytes keeps decoding allocation-free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeList<'a>(&'a [u8]);

impl<'a> TypeList<'a> {
    /// A list with no types.
    pub const EMPTY: TypeList<'static> = TypeList(&[]);

    /// Wraps big-endian type bytes; `None` when the length is odd.
    pub fn from_be_bytes(bytes: &'a [u8]) -> Option<Self> {
        bytes.len().is_multiple_of(2).then_some(Self(bytes))
    }

    /// The attribute types in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        self.0
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
    }

    /// The raw big-endian bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Why an attribute value was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttributeError {
    /// The attribute type.
    pub attribute_type: u16,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for AttributeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attribute 0x{:04x}: {}",
            self.attribute_type, self.reason
        )
    }
}

impl std::error::Error for AttributeError {}

impl<'a> Attribute<'a> {
    /// Parses the value of an attribute of type `attribute_type`. The
    /// transaction ID is needed to undo the XOR of XOR-MAPPED-ADDRESS.
    pub fn parse(
        attribute_type: u16,
        value: &'a [u8],
        transaction_id: &TransactionId,
    ) -> Result<Self, AttributeError> {
        let fail = |reason| AttributeError {
            attribute_type,
            reason,
        };
        Ok(match attribute_type {
            MAPPED_ADDRESS => Self::MappedAddress(parse_address(value).ok_or(fail("bad address"))?),
            XOR_MAPPED_ADDRESS => Self::XorMappedAddress(xor_address(
                parse_address(value).ok_or(fail("bad address"))?,
                transaction_id,
            )),
            ALTERNATE_SERVER => {
                Self::AlternateServer(parse_address(value).ok_or(fail("bad address"))?)
            }
            USERNAME => {
                Self::Username(parse_text(value, MAX_USERNAME_BYTES, usize::MAX).map_err(fail)?)
            }
            REALM => Self::Realm(parse_text(value, MAX_TEXT_BYTES, MAX_TEXT_CHARS).map_err(fail)?),
            NONCE => Self::Nonce(parse_text(value, MAX_TEXT_BYTES, MAX_TEXT_CHARS).map_err(fail)?),
            SOFTWARE => {
                Self::Software(parse_text(value, MAX_TEXT_BYTES, MAX_TEXT_CHARS).map_err(fail)?)
            }
            MESSAGE_INTEGRITY => {
                Self::MessageIntegrity(value.try_into().map_err(|_| fail("length is not 20"))?)
            }
            FINGERPRINT => Self::Fingerprint(u32::from_be_bytes(
                value.try_into().map_err(|_| fail("length is not 4"))?,
            )),
            PRIORITY => Self::Priority(u32::from_be_bytes(
                value.try_into().map_err(|_| fail("length is not 4"))?,
            )),
            ICE_CONTROLLED => Self::IceControlled(u64::from_be_bytes(
                value.try_into().map_err(|_| fail("length is not 8"))?,
            )),
            ICE_CONTROLLING => Self::IceControlling(u64::from_be_bytes(
                value.try_into().map_err(|_| fail("length is not 8"))?,
            )),
            USE_CANDIDATE if value.is_empty() => Self::UseCandidate,
            USE_CANDIDATE => return Err(fail("value is not empty")),
            ERROR_CODE => Self::ErrorCode(parse_error_code(value).map_err(fail)?),
            UNKNOWN_ATTRIBUTES => {
                Self::UnknownAttributes(TypeList::from_be_bytes(value).ok_or(fail("odd length"))?)
            }
            other => Self::Unknown {
                attribute_type: other,
                value,
            },
        })
    }

    /// The attribute type number.
    pub fn attribute_type(&self) -> u16 {
        match self {
            Self::MappedAddress(_) => MAPPED_ADDRESS,
            Self::XorMappedAddress(_) => XOR_MAPPED_ADDRESS,
            Self::Username(_) => USERNAME,
            Self::MessageIntegrity(_) => MESSAGE_INTEGRITY,
            Self::ErrorCode(_) => ERROR_CODE,
            Self::UnknownAttributes(_) => UNKNOWN_ATTRIBUTES,
            Self::Realm(_) => REALM,
            Self::Nonce(_) => NONCE,
            Self::Software(_) => SOFTWARE,
            Self::AlternateServer(_) => ALTERNATE_SERVER,
            Self::Fingerprint(_) => FINGERPRINT,
            Self::Priority(_) => PRIORITY,
            Self::UseCandidate => USE_CANDIDATE,
            Self::IceControlled(_) => ICE_CONTROLLED,
            Self::IceControlling(_) => ICE_CONTROLLING,
            Self::Unknown { attribute_type, .. } => *attribute_type,
        }
    }

    /// Length of the value in bytes, before padding.
    pub fn value_len(&self) -> usize {
        match self {
            Self::MappedAddress(addr)
            | Self::XorMappedAddress(addr)
            | Self::AlternateServer(addr) => address_len(addr),
            Self::Username(text) | Self::Realm(text) | Self::Nonce(text) | Self::Software(text) => {
                text.len()
            }
            Self::MessageIntegrity(_) => INTEGRITY_LEN,
            Self::ErrorCode(error) => 4 + error.reason.len(),
            Self::UnknownAttributes(list) => list.as_bytes().len(),
            Self::Fingerprint(_) | Self::Priority(_) => 4,
            Self::UseCandidate => 0,
            Self::IceControlled(_) | Self::IceControlling(_) => 8,
            Self::Unknown { value, .. } => value.len(),
        }
    }

    /// Appends the value (without padding) to `out`.
    pub fn emit_value(&self, transaction_id: &TransactionId, out: &mut Vec<u8>) {
        match self {
            Self::MappedAddress(addr) | Self::AlternateServer(addr) => emit_address(*addr, out),
            Self::XorMappedAddress(addr) => emit_address(xor_address(*addr, transaction_id), out),
            Self::Username(text) | Self::Realm(text) | Self::Nonce(text) | Self::Software(text) => {
                out.extend_from_slice(text.as_bytes())
            }
            Self::MessageIntegrity(mac) => out.extend_from_slice(mac),
            Self::ErrorCode(error) => {
                let class = (error.code / 100) as u8;
                let number = (error.code % 100) as u8;
                out.extend_from_slice(&[0, 0, class & 0x07, number]);
                out.extend_from_slice(error.reason.as_bytes());
            }
            Self::UnknownAttributes(list) => out.extend_from_slice(list.as_bytes()),
            Self::Fingerprint(value) | Self::Priority(value) => {
                out.extend_from_slice(&value.to_be_bytes())
            }
            Self::UseCandidate => {}
            Self::IceControlled(value) | Self::IceControlling(value) => {
                out.extend_from_slice(&value.to_be_bytes())
            }
            Self::Unknown { value, .. } => out.extend_from_slice(value),
        }
    }
}

fn parse_text(value: &[u8], max_bytes: usize, max_chars: usize) -> Result<&str, &'static str> {
    if value.len() > max_bytes {
        return Err("value too long");
    }
    let text = std::str::from_utf8(value).map_err(|_| "not UTF-8")?;
    if text.chars().count() > max_chars {
        return Err("too many characters");
    }
    Ok(text)
}

fn parse_error_code(value: &[u8]) -> Result<ErrorCode<'_>, &'static str> {
    let (&[_, _, class, number], reason) = value.split_first_chunk::<4>().ok_or("too short")?;
    let class = class & 0x07;
    if !(3..=6).contains(&class) || number > 99 {
        return Err("code outside 300..=699");
    }
    let reason = parse_text(reason, MAX_TEXT_BYTES, MAX_TEXT_CHARS)?;
    Ok(ErrorCode {
        code: u16::from(class) * 100 + u16::from(number),
        reason,
    })
}

fn address_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 8,
        SocketAddr::V6(_) => 20,
    }
}

/// Parses the common address layout of §15.1: reserved byte, family, port,
/// then 4 or 16 address bytes.
fn parse_address(value: &[u8]) -> Option<SocketAddr> {
    let (&[_, family, port_high, port_low], address) = value.split_first_chunk::<4>()?;
    let port = u16::from_be_bytes([port_high, port_low]);
    let ip = match family {
        FAMILY_IPV4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(address).ok()?)),
        FAMILY_IPV6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(address).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn emit_address(addr: SocketAddr, out: &mut Vec<u8>) {
    let family = match addr {
        SocketAddr::V4(_) => FAMILY_IPV4,
        SocketAddr::V6(_) => FAMILY_IPV6,
    };
    out.extend_from_slice(&[0, family]);
    out.extend_from_slice(&addr.port().to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
}

/// XOR-MAPPED-ADDRESS obfuscation (§15.2). It is its own inverse.
fn xor_address(addr: SocketAddr, transaction_id: &TransactionId) -> SocketAddr {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match addr.ip() {
        IpAddr::V4(ip) => {
            let mut octets = ip.octets();
            octets.iter_mut().zip(cookie).for_each(|(o, c)| *o ^= c);
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        IpAddr::V6(ip) => {
            let mut octets = ip.octets();
            let key = cookie.iter().chain(transaction_id.0.iter());
            octets.iter_mut().zip(key).for_each(|(o, k)| *o ^= k);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
    };
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXID: TransactionId = TransactionId([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

    fn round_trip(attribute: Attribute<'_>) {
        let mut value = Vec::new();
        attribute.emit_value(&TXID, &mut value);
        assert_eq!(value.len(), attribute.value_len());
        let parsed = Attribute::parse(attribute.attribute_type(), &value, &TXID).unwrap();
        assert_eq!(parsed, attribute);
    }

    #[test]
    fn every_known_attribute_round_trips() {
        let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();
        for attribute in [
            Attribute::MappedAddress(v4),
            Attribute::MappedAddress(v6),
            Attribute::XorMappedAddress(v4),
            Attribute::XorMappedAddress(v6),
            Attribute::AlternateServer(v6),
            Attribute::Username("user:name"),
            Attribute::MessageIntegrity([7; 20]),
            Attribute::ErrorCode(ErrorCode {
                code: 420,
                reason: "Unknown Attribute",
            }),
            Attribute::UnknownAttributes(
                TypeList::from_be_bytes(&[0x00, 0x31, 0x7f, 0xff]).unwrap(),
            ),
            Attribute::Realm("example.org"),
            Attribute::Nonce("f//499k954d6OL34oL9FSTvy64sA"),
            Attribute::Software("tinynode"),
            Attribute::Fingerprint(0xdead_beef),
            Attribute::Priority(0x6e00_01ff),
            Attribute::UseCandidate,
            Attribute::IceControlled(u64::MAX),
            Attribute::IceControlling(1),
            Attribute::Unknown {
                attribute_type: 0x4000,
                value: b"opaque",
            },
        ] {
            round_trip(attribute);
        }
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let cases: &[(u16, &[u8])] = &[
            (XOR_MAPPED_ADDRESS, &[0, 1, 0]),
            (XOR_MAPPED_ADDRESS, &[0, 1, 0, 0, 1, 2, 3]),
            (MAPPED_ADDRESS, &[0, 3, 0, 0, 1, 2, 3, 4]),
            (MAPPED_ADDRESS, &[0, 2, 0, 0, 1, 2, 3, 4]),
            (USERNAME, &[0xff, 0xfe]),
            (MESSAGE_INTEGRITY, &[0; 19]),
            (FINGERPRINT, &[0; 5]),
            (PRIORITY, &[]),
            (ICE_CONTROLLING, &[0; 4]),
            (USE_CANDIDATE, &[0]),
            (ERROR_CODE, &[0, 0, 4]),
            (ERROR_CODE, &[0, 0, 7, 0]),
            (ERROR_CODE, &[0, 0, 4, 100]),
            (UNKNOWN_ATTRIBUTES, &[0, 1, 2]),
        ];
        for (attribute_type, value) in cases {
            let err = Attribute::parse(*attribute_type, value, &TXID).unwrap_err();
            assert_eq!(err.attribute_type, *attribute_type);
        }
        let long_software = [b'a'; 128];
        assert!(Attribute::parse(SOFTWARE, &long_software, &TXID).is_err());
        let long_username = [b'a'; 513];
        assert!(Attribute::parse(USERNAME, &long_username, &TXID).is_err());
    }

    #[test]
    fn error_code_ignores_reserved_bits() {
        let parsed = Attribute::parse(ERROR_CODE, &[0xff, 0xff, 0xfc, 20, b'x'], &TXID).unwrap();
        assert_eq!(
            parsed,
            Attribute::ErrorCode(ErrorCode {
                code: 420,
                reason: "x"
            })
        );
    }

    #[test]
    fn comprehension_ranges() {
        assert!(is_comprehension_required(PRIORITY));
        assert!(is_comprehension_required(0x7fff));
        assert!(!is_comprehension_required(SOFTWARE));
    }
}
