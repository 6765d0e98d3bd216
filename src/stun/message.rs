//! STUN message framing (RFC 5389 §6, §15.4, §15.5): the 20-byte header,
//! the attribute walk, MESSAGE-INTEGRITY (HMAC-SHA1, short-term credentials)
//! and FINGERPRINT.
//!
//! [`Message::decode`] borrows the datagram, validates the header, the total
//! length and every attribute before returning, and allocates nothing.
//! Invariants of a decoded message: the datagram is exactly one message, every
//! attribute is framed inside it, every surfaced attribute parses, FINGERPRINT
//! (if any) is last. Attributes between MESSAGE-INTEGRITY and FINGERPRINT are
//! framed but ignored, as §15.4 requires. Padding contents are ignored.
//!
//! [`MessageEncoder`] writes a message attribute by attribute and computes
//! MESSAGE-INTEGRITY and FINGERPRINT over what precedes them.
//!
//! Longer than most files (about 590 lines before its RFC 5769 tests) and
//! kept whole on purpose: decoding and encoding share the header layout and
//! the integrity and fingerprint offsets, which must agree byte for byte.

use std::fmt;

use ring::hmac;

use super::attribute::{self, Attribute, AttributeError, INTEGRITY_LEN};
use super::fingerprint::fingerprint;
pub use super::ids::{MAGIC_COOKIE, TransactionId};
use crate::ct::constant_time_eq;

/// Length of the message header.
pub const HEADER_LEN: usize = 20;
/// Length of an attribute's type and length fields.
const ATTRIBUTE_HEADER_LEN: usize = 4;
/// Size of a whole MESSAGE-INTEGRITY attribute.
const INTEGRITY_ATTRIBUTE_LEN: usize = ATTRIBUTE_HEADER_LEN + INTEGRITY_LEN;
/// Size of a whole FINGERPRINT attribute.
const FINGERPRINT_ATTRIBUTE_LEN: usize = ATTRIBUTE_HEADER_LEN + 4;

/// Message class (§6): the two class bits of the message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Expects a response.
    Request,
    /// Expects nothing back.
    Indication,
    /// Successful answer to a request.
    SuccessResponse,
    /// Failed answer to a request, with ERROR-CODE.
    ErrorResponse,
}

/// Message method (§6, §18.1): the twelve method bits of the message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Binding (0x001), the only method RFC 5389 defines.
    Binding,
    /// Any other 12-bit method number, kept as data.
    Unknown(u16),
}

impl Method {
    const BINDING: u16 = 0x001;

    fn from_number(number: u16) -> Self {
        match number {
            Self::BINDING => Self::Binding,
            other => Self::Unknown(other),
        }
    }

    fn number(self) -> u16 {
        match self {
            Self::Binding => Self::BINDING,
            Self::Unknown(number) => number & 0x0FFF,
        }
    }
}

/// Why a datagram is not a valid STUN message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than a header.
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// One of the two most significant bits is set (§6).
    NotStun,
    /// Bytes 4..8 are not the magic cookie (RFC 3489 messages are refused).
    BadMagicCookie,
    /// The length field is not a multiple of four.
    UnalignedLength {
        /// The length field.
        declared: u16,
    },
    /// Header length + 20 differs from the datagram length.
    LengthMismatch {
        /// Header length + 20.
        declared: usize,
        /// Datagram length.
        actual: usize,
    },
    /// An attribute runs past the end of the message.
    TruncatedAttribute {
        /// Offset of the attribute's type field.
        offset: usize,
    },
    /// Something follows FINGERPRINT, which must be last (§15.5).
    AttributeAfterFingerprint {
        /// Offset of the offending attribute.
        offset: usize,
    },
    /// A known attribute has an invalid value.
    BadAttribute(AttributeError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "{len} bytes is shorter than a STUN header"),
            Self::NotStun => f.write_str("top two bits of the message type are not zero"),
            Self::BadMagicCookie => f.write_str("magic cookie missing"),
            Self::UnalignedLength { declared } => {
                write!(f, "length {declared} is not a multiple of 4")
            }
            Self::LengthMismatch { declared, actual } => {
                write!(f, "header says {declared} bytes, datagram has {actual}")
            }
            Self::TruncatedAttribute { offset } => {
                write!(f, "attribute at offset {offset} runs past the end")
            }
            Self::AttributeAfterFingerprint { offset } => {
                write!(f, "attribute at offset {offset} follows FINGERPRINT")
            }
            Self::BadAttribute(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The fixed header of a STUN message (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message class.
    pub class: Class,
    /// Message method.
    pub method: Method,
    /// Transaction ID.
    pub transaction_id: TransactionId,
    /// Length of the attributes in bytes (the length field).
    pub body_len: u16,
}

impl Header {
    /// Parses the first 20 bytes: zero top bits, cookie and an aligned length.
    /// Used alone to answer a malformed request with 400.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header: &[u8; HEADER_LEN] = bytes
            .first_chunk()
            .ok_or(DecodeError::TooShort { len: bytes.len() })?;
        let [
            type_high,
            type_low,
            len_high,
            len_low,
            c0,
            c1,
            c2,
            c3,
            txid @ ..,
        ] = *header;
        let message_type = u16::from_be_bytes([type_high, type_low]);
        if message_type & 0xC000 != 0 {
            return Err(DecodeError::NotStun);
        }
        if u32::from_be_bytes([c0, c1, c2, c3]) != MAGIC_COOKIE {
            return Err(DecodeError::BadMagicCookie);
        }
        let body_len = u16::from_be_bytes([len_high, len_low]);
        if body_len % 4 != 0 {
            return Err(DecodeError::UnalignedLength { declared: body_len });
        }
        let (class, method) = split_message_type(message_type);
        Ok(Self {
            class,
            method,
            transaction_id: TransactionId(txid),
            body_len,
        })
    }
}

/// Interleaves class and method bits into the 14-bit message type (§6, figure 3).
fn join_message_type(class: Class, method: Method) -> u16 {
    let class_bits: u16 = match class {
        Class::Request => 0b00,
        Class::Indication => 0b01,
        Class::SuccessResponse => 0b10,
        Class::ErrorResponse => 0b11,
    };
    let m = method.number();
    (m & 0x000F)
        | ((class_bits & 1) << 4)
        | ((m & 0x0070) << 1)
        | ((class_bits & 2) << 7)
        | ((m & 0x0F80) << 2)
}

fn split_message_type(message_type: u16) -> (Class, Method) {
    let class = match ((message_type >> 7) & 0b10) | ((message_type >> 4) & 0b01) {
        0b00 => Class::Request,
        0b01 => Class::Indication,
        0b10 => Class::SuccessResponse,
        _ => Class::ErrorResponse,
    };
    let method =
        (message_type & 0x000F) | ((message_type >> 1) & 0x0070) | ((message_type >> 2) & 0x0F80);
    (class, Method::from_number(method))
}

/// Short-term credential key for MESSAGE-INTEGRITY (§15.4): HMAC-SHA1 keyed
/// with the password's UTF-8 bytes (SASLprep is the identity for the ASCII
/// passwords ICE generates).
pub struct IntegrityKey(hmac::Key);

impl IntegrityKey {
    /// Key for short-term credentials with `password`.
    pub fn short_term(password: &str) -> Self {
        Self(hmac::Key::new(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            password.as_bytes(),
        ))
    }

    /// HMAC over `prefix` (the message up to the integrity attribute) as if the
    /// header length were `body_len`.
    fn mac(&self, prefix: &[u8], body_len: usize) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(prefix.get(..2).unwrap_or_default());
        context.update(&(body_len as u16).to_be_bytes());
        context.update(prefix.get(4..).unwrap_or_default());
        context.sign()
    }
}

/// Outcome of checking a message's FINGERPRINT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FingerprintStatus {
    /// The message carries no FINGERPRINT.
    Absent,
    /// FINGERPRINT matches the message.
    Valid,
    /// FINGERPRINT does not match: not a STUN message, or corrupted.
    Invalid,
}

/// Outcome of checking MESSAGE-INTEGRITY against a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegrityStatus {
    /// The message carries no MESSAGE-INTEGRITY.
    Absent,
    /// The HMAC matches.
    Valid,
    /// The HMAC does not match.
    Invalid,
}

/// A validated STUN message borrowing its datagram.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    header: Header,
    bytes: &'a [u8],
    integrity_offset: Option<usize>,
    fingerprint_offset: Option<usize>,
}

impl<'a> Message<'a> {
    /// Decodes and validates one datagram as a STUN message.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let header = Header::parse(bytes)?;
        let declared = HEADER_LEN + usize::from(header.body_len);
        if declared != bytes.len() {
            return Err(DecodeError::LengthMismatch {
                declared,
                actual: bytes.len(),
            });
        }
        let mut message = Self {
            header,
            bytes,
            integrity_offset: None,
            fingerprint_offset: None,
        };
        for raw in RawAttributes::new(bytes) {
            let raw = raw?;
            if message.fingerprint_offset.is_some() {
                return Err(DecodeError::AttributeAfterFingerprint { offset: raw.offset });
            }
            match raw.attribute_type {
                attribute::FINGERPRINT => message.fingerprint_offset = Some(raw.offset),
                _ if message.integrity_offset.is_some() => continue,
                attribute::MESSAGE_INTEGRITY => message.integrity_offset = Some(raw.offset),
                _ => {}
            }
            Attribute::parse(raw.attribute_type, raw.value, &header.transaction_id)
                .map_err(DecodeError::BadAttribute)?;
        }
        Ok(message)
    }

    /// The message header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Message class.
    pub fn class(&self) -> Class {
        self.header.class
    }

    /// Message method.
    pub fn method(&self) -> Method {
        self.header.method
    }

    /// Transaction ID.
    pub fn transaction_id(&self) -> TransactionId {
        self.header.transaction_id
    }

    /// Length of the whole message on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a message has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The attributes a receiver acts on, in wire order: everything up to and
    /// including MESSAGE-INTEGRITY, then FINGERPRINT.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            raw: RawAttributes::new(self.bytes),
            transaction_id: self.header.transaction_id,
            after_integrity: false,
        }
    }

    /// XOR-MAPPED-ADDRESS if present, otherwise MAPPED-ADDRESS (§7.3.3).
    pub fn reflexive_address(&self) -> Option<std::net::SocketAddr> {
        let mut mapped = None;
        for attribute in self.attributes() {
            match attribute {
                Attribute::XorMappedAddress(addr) => return Some(addr),
                Attribute::MappedAddress(addr) if mapped.is_none() => mapped = Some(addr),
                _ => {}
            }
        }
        mapped
    }

    /// Comprehension-required attribute types this codec does not know (§7.3.1).
    pub fn unknown_required_attributes(&self) -> impl Iterator<Item = u16> + 'a {
        self.attributes().filter_map(|attribute| match attribute {
            Attribute::Unknown { attribute_type, .. }
                if attribute::is_comprehension_required(attribute_type) =>
            {
                Some(attribute_type)
            }
            _ => None,
        })
    }

    /// Checks FINGERPRINT (§15.5) against the bytes that precede it.
    pub fn fingerprint_status(&self) -> FingerprintStatus {
        let Some(offset) = self.fingerprint_offset else {
            return FingerprintStatus::Absent;
        };
        let covered = self.bytes.get(..offset);
        let carried = self
            .bytes
            .get(offset + ATTRIBUTE_HEADER_LEN..)
            .and_then(|value| value.first_chunk::<4>())
            .map(|value| u32::from_be_bytes(*value));
        match (covered, carried) {
            (Some(covered), Some(carried)) if fingerprint(covered) == carried => {
                FingerprintStatus::Valid
            }
            _ => FingerprintStatus::Invalid,
        }
    }

    /// Checks MESSAGE-INTEGRITY (§15.4) with a short-term credential key.
    pub fn integrity_status(&self, key: &IntegrityKey) -> IntegrityStatus {
        let Some(offset) = self.integrity_offset else {
            return IntegrityStatus::Absent;
        };
        let body_len = offset - HEADER_LEN + INTEGRITY_ATTRIBUTE_LEN;
        let covered = self.bytes.get(..offset);
        let carried = self
            .bytes
            .get(offset + ATTRIBUTE_HEADER_LEN..offset + INTEGRITY_ATTRIBUTE_LEN);
        match (covered, carried) {
            (Some(covered), Some(carried))
                if constant_time_eq(key.mac(covered, body_len).as_ref(), carried) =>
            {
                IntegrityStatus::Valid
            }
            _ => IntegrityStatus::Invalid,
        }
    }
}

/// One attribute's framing: where it starts, its type and its unpadded value.
struct RawAttribute<'a> {
    offset: usize,
    attribute_type: u16,
    value: &'a [u8],
}

/// The USERNAME of the message in `bytes`, whose header parsed as
/// `header`, found by walking the attribute TLVs without decoding the
/// others (an ICE check is handed to str0m, which decodes it anyway):
/// `Ok(None)` when there is none, `Err` when the length, the TLVs before it
/// or the name itself are malformed. Only attributes before
/// MESSAGE-INTEGRITY count, as in [`Message::attributes`].
pub fn find_username<'a>(header: &Header, bytes: &'a [u8]) -> Result<Option<&'a str>, DecodeError> {
    let declared = HEADER_LEN + usize::from(header.body_len);
    if declared != bytes.len() {
        return Err(DecodeError::LengthMismatch {
            declared,
            actual: bytes.len(),
        });
    }
    for raw in RawAttributes::new(bytes) {
        let raw = raw?;
        match raw.attribute_type {
            attribute::USERNAME => {
                return match Attribute::parse(raw.attribute_type, raw.value, &header.transaction_id)
                {
                    Ok(Attribute::Username(name)) => Ok(Some(name)),
                    Ok(_) => Ok(None),
                    Err(error) => Err(DecodeError::BadAttribute(error)),
                };
            }
            attribute::MESSAGE_INTEGRITY | attribute::FINGERPRINT => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

/// Walks the attribute TLVs of a message whose length was already checked.
struct RawAttributes<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> RawAttributes<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: HEADER_LEN,
        }
    }
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = Result<RawAttribute<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self
            .bytes
            .get(self.offset..)
            .filter(|rest| !rest.is_empty())?;
        let offset = self.offset;
        let truncated = DecodeError::TruncatedAttribute { offset };
        let Some((&[t0, t1, l0, l1], after_header)) =
            rest.split_first_chunk::<ATTRIBUTE_HEADER_LEN>()
        else {
            self.offset = self.bytes.len();
            return Some(Err(truncated));
        };
        let value_len = usize::from(u16::from_be_bytes([l0, l1]));
        let padded_len = value_len.next_multiple_of(4);
        let (Some(value), true) = (
            after_header.get(..value_len),
            padded_len <= after_header.len(),
        ) else {
            self.offset = self.bytes.len();
            return Some(Err(truncated));
        };
        self.offset = offset + ATTRIBUTE_HEADER_LEN + padded_len;
        Some(Ok(RawAttribute {
            offset,
            attribute_type: u16::from_be_bytes([t0, t1]),
            value,
        }))
    }
}

/// Iterator over the attributes of a decoded [`Message`].
pub struct Attributes<'a> {
    raw: RawAttributes<'a>,
    transaction_id: TransactionId,
    after_integrity: bool,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // The message was validated by `Message::decode`, so neither the
            // framing nor the value parse can fail here; a failure would end
            // the iteration rather than panic.
            let raw = self.raw.next()?.ok()?;
            if self.after_integrity && raw.attribute_type != attribute::FINGERPRINT {
                continue;
            }
            if raw.attribute_type == attribute::MESSAGE_INTEGRITY {
                self.after_integrity = true;
            }
            return Attribute::parse(raw.attribute_type, raw.value, &self.transaction_id).ok();
        }
    }
}

/// Builds one STUN message. Attributes are appended in call order;
/// [`push_integrity`](Self::push_integrity) and
/// [`push_fingerprint`](Self::push_fingerprint) compute their values over
/// everything written before them.
pub struct MessageEncoder {
    bytes: Vec<u8>,
    transaction_id: TransactionId,
    padding_byte: u8,
}

impl MessageEncoder {
    /// Starts a message with the given header fields and no attributes.
    pub fn new(class: Class, method: Method, transaction_id: TransactionId) -> Self {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&join_message_type(class, method).to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        bytes.extend_from_slice(&transaction_id.0);
        Self {
            bytes,
            transaction_id,
            padding_byte: 0,
        }
    }

    /// Fills attribute padding with `byte` instead of zero. Receivers ignore
    /// padding (§15); RFC 5769's samples pad with spaces to prove it.
    pub fn with_padding_byte(mut self, byte: u8) -> Self {
        self.padding_byte = byte;
        self
    }

    /// Length of the message so far, header included.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a message has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Size of `attribute` on the wire, header and padding included.
    pub fn encoded_len(attribute: &Attribute<'_>) -> usize {
        ATTRIBUTE_HEADER_LEN + attribute.value_len().next_multiple_of(4)
    }

    /// Appends one attribute verbatim (values longer than 65,535 bytes are the
    /// caller's error and are truncated by the length field).
    pub fn push(&mut self, attribute: &Attribute<'_>) -> &mut Self {
        let value_len = attribute.value_len();
        self.bytes
            .extend_from_slice(&attribute.attribute_type().to_be_bytes());
        self.bytes
            .extend_from_slice(&(value_len as u16).to_be_bytes());
        attribute.emit_value(&self.transaction_id, &mut self.bytes);
        let padding = value_len.next_multiple_of(4) - value_len;
        self.bytes
            .extend(std::iter::repeat_n(self.padding_byte, padding));
        self.set_body_len(self.bytes.len() - HEADER_LEN);
        self
    }

    /// Appends MESSAGE-INTEGRITY computed with `key` (§15.4).
    pub fn push_integrity(&mut self, key: &IntegrityKey) -> &mut Self {
        let body_len = self.bytes.len() - HEADER_LEN + INTEGRITY_ATTRIBUTE_LEN;
        let tag = key.mac(&self.bytes, body_len);
        let mut mac = [0u8; INTEGRITY_LEN];
        mac.copy_from_slice(tag.as_ref());
        self.push(&Attribute::MessageIntegrity(mac))
    }

    /// Appends FINGERPRINT (§15.5); it must be the last attribute.
    pub fn push_fingerprint(&mut self) -> &mut Self {
        self.set_body_len(self.bytes.len() - HEADER_LEN + FINGERPRINT_ATTRIBUTE_LEN);
        let value = fingerprint(&self.bytes);
        self.push(&Attribute::Fingerprint(value))
    }

    /// The finished message.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }

    fn set_body_len(&mut self, body_len: usize) {
        let field = (body_len as u16).to_be_bytes();
        self.bytes[2..4].copy_from_slice(&field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::attribute::{ErrorCode, TypeList};

    /// RFC 5769 §2.1: Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED,
    /// USERNAME, MESSAGE-INTEGRITY and FINGERPRINT; padding bytes are spaces.
    const SAMPLE_REQUEST: [u8; 108] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74,
        0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e,
        0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
        0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20,
        0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
        0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5,
        0x7a, 0x3b, 0xcf,
    ];

    /// RFC 5769 §2.2: success response with XOR-MAPPED-ADDRESS 192.0.2.1:32853.
    const SAMPLE_IPV4_RESPONSE: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1,
        0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
        0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00,
        0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];

    /// RFC 5769 §2.3: success response with XOR-MAPPED-ADDRESS
    /// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
    const SAMPLE_IPV6_RESPONSE: [u8; 92] = [
        0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01,
        0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
        0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9,
        0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb,
        0x0b, 0x4c,
    ];

    const REQUEST_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

    /// Re-encodes every attribute except the integrity and fingerprint, then
    /// recomputes those two with `key`.
    fn re_encode(message: &Message<'_>, key: &IntegrityKey) -> Vec<u8> {
        let mut encoder =
            MessageEncoder::new(message.class(), message.method(), message.transaction_id())
                .with_padding_byte(b' ');
        for attribute in message.attributes() {
            match attribute {
                Attribute::MessageIntegrity(_) => encoder.push_integrity(key),
                Attribute::Fingerprint(_) => encoder.push_fingerprint(),
                other => encoder.push(&other),
            };
        }
        encoder.finish()
    }

    #[test]
    fn rfc5769_sample_request() {
        let message = Message::decode(&SAMPLE_REQUEST).unwrap();
        assert_eq!(message.class(), Class::Request);
        assert_eq!(message.method(), Method::Binding);
        let key = IntegrityKey::short_term(REQUEST_PASSWORD);
        assert_eq!(message.integrity_status(&key), IntegrityStatus::Valid);
        assert_eq!(
            message.integrity_status(&IntegrityKey::short_term("wrong")),
            IntegrityStatus::Invalid
        );
        assert_eq!(message.fingerprint_status(), FingerprintStatus::Valid);
        let attributes: Vec<_> = message.attributes().collect();
        assert_eq!(attributes[0], Attribute::Software("STUN test client"));
        assert_eq!(attributes[1], Attribute::Priority(0x6e0001ff));
        assert_eq!(attributes[2], Attribute::IceControlled(0x932ff9b151263b36));
        assert_eq!(attributes[3], Attribute::Username("evtj:h6vY"));
        assert_eq!(attributes.len(), 6);
        assert_eq!(re_encode(&message, &key), SAMPLE_REQUEST);
    }

    #[test]
    fn rfc5769_sample_ipv4_response() {
        let message = Message::decode(&SAMPLE_IPV4_RESPONSE).unwrap();
        assert_eq!(message.class(), Class::SuccessResponse);
        let key = IntegrityKey::short_term(REQUEST_PASSWORD);
        assert_eq!(message.integrity_status(&key), IntegrityStatus::Valid);
        assert_eq!(message.fingerprint_status(), FingerprintStatus::Valid);
        assert_eq!(
            message.reflexive_address(),
            Some("192.0.2.1:32853".parse().unwrap())
        );
        assert_eq!(re_encode(&message, &key), SAMPLE_IPV4_RESPONSE);
    }

    #[test]
    fn rfc5769_sample_ipv6_response() {
        let message = Message::decode(&SAMPLE_IPV6_RESPONSE).unwrap();
        let key = IntegrityKey::short_term(REQUEST_PASSWORD);
        assert_eq!(message.integrity_status(&key), IntegrityStatus::Valid);
        assert_eq!(message.fingerprint_status(), FingerprintStatus::Valid);
        assert_eq!(
            message.reflexive_address(),
            Some(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            )
        );
        assert_eq!(re_encode(&message, &key), SAMPLE_IPV6_RESPONSE);
    }

    #[test]
    fn message_type_bits_follow_figure_3() {
        assert_eq!(join_message_type(Class::Request, Method::Binding), 0x0001);
        assert_eq!(
            join_message_type(Class::Indication, Method::Binding),
            0x0011
        );
        assert_eq!(
            join_message_type(Class::SuccessResponse, Method::Binding),
            0x0101
        );
        assert_eq!(
            join_message_type(Class::ErrorResponse, Method::Binding),
            0x0111
        );
        for number in 0..0x1000 {
            for class in [
                Class::Request,
                Class::Indication,
                Class::SuccessResponse,
                Class::ErrorResponse,
            ] {
                let method = Method::from_number(number);
                assert_eq!(
                    split_message_type(join_message_type(class, method)),
                    (class, method)
                );
            }
        }
    }

    #[test]
    fn corrupted_fingerprint_is_detected() {
        let mut bytes = SAMPLE_IPV4_RESPONSE;
        bytes[79] ^= 1;
        let message = Message::decode(&bytes).unwrap();
        assert_eq!(message.fingerprint_status(), FingerprintStatus::Invalid);
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            Message::decode(&[0; 19]).unwrap_err(),
            DecodeError::TooShort { len: 19 }
        );
        let mut bytes = SAMPLE_IPV4_RESPONSE;
        bytes[0] |= 0x80;
        assert_eq!(Message::decode(&bytes).unwrap_err(), DecodeError::NotStun);
        let mut bytes = SAMPLE_IPV4_RESPONSE;
        bytes[4] = 0;
        assert_eq!(
            Message::decode(&bytes).unwrap_err(),
            DecodeError::BadMagicCookie
        );
        assert!(matches!(
            Message::decode(&SAMPLE_IPV4_RESPONSE[..76]),
            Err(DecodeError::LengthMismatch {
                declared: 80,
                actual: 76
            })
        ));
        let mut bytes = SAMPLE_IPV4_RESPONSE;
        bytes[3] = 0x3d;
        assert_eq!(
            Message::decode(&bytes).unwrap_err(),
            DecodeError::UnalignedLength { declared: 0x3d }
        );
        // SOFTWARE claims 0x40 bytes, past the end.
        let mut bytes = SAMPLE_IPV4_RESPONSE;
        bytes[23] = 0x40;
        assert_eq!(
            Message::decode(&bytes).unwrap_err(),
            DecodeError::TruncatedAttribute { offset: 20 }
        );
    }

    #[test]
    fn nothing_may_follow_fingerprint() {
        let txid = TransactionId([9; 12]);
        let mut encoder = MessageEncoder::new(Class::Request, Method::Binding, txid);
        encoder
            .push_fingerprint()
            .push(&Attribute::Software("late"));
        let bytes = encoder.finish();
        assert_eq!(
            Message::decode(&bytes).unwrap_err(),
            DecodeError::AttributeAfterFingerprint { offset: 28 }
        );
    }

    #[test]
    fn attributes_after_integrity_are_ignored() {
        let txid = TransactionId([3; 12]);
        let key = IntegrityKey::short_term("secret");
        let mut encoder = MessageEncoder::new(Class::Request, Method::Binding, txid);
        encoder
            .push(&Attribute::Username("a:b"))
            .push_integrity(&key)
            .push(&Attribute::Software("ignored"))
            .push_fingerprint();
        let bytes = encoder.finish();
        let message = Message::decode(&bytes).unwrap();
        let types: Vec<u16> = message.attributes().map(|a| a.attribute_type()).collect();
        assert_eq!(
            types,
            [
                attribute::USERNAME,
                attribute::MESSAGE_INTEGRITY,
                attribute::FINGERPRINT
            ]
        );
        assert_eq!(message.integrity_status(&key), IntegrityStatus::Valid);
        assert_eq!(message.fingerprint_status(), FingerprintStatus::Valid);
    }

    #[test]
    fn unknown_attributes_are_data() {
        let txid = TransactionId([4; 12]);
        let list = [0x00, 0x31];
        let mut encoder = MessageEncoder::new(Class::ErrorResponse, Method::Unknown(0x123), txid);
        encoder
            .push(&Attribute::Unknown {
                attribute_type: 0x0031,
                value: b"x",
            })
            .push(&Attribute::Unknown {
                attribute_type: 0xC001,
                value: b"",
            })
            .push(&Attribute::ErrorCode(ErrorCode {
                code: 420,
                reason: "Unknown Attribute",
            }))
            .push(&Attribute::UnknownAttributes(
                TypeList::from_be_bytes(&list).unwrap(),
            ));
        let bytes = encoder.finish();
        let message = Message::decode(&bytes).unwrap();
        assert_eq!(message.method(), Method::Unknown(0x123));
        assert_eq!(
            message.unknown_required_attributes().collect::<Vec<_>>(),
            [0x0031]
        );
    }

    #[test]
    fn the_username_is_found_without_decoding_the_rest() {
        let header = Header::parse(&SAMPLE_REQUEST).unwrap();
        assert_eq!(
            find_username(&header, &SAMPLE_REQUEST),
            Ok(Some("evtj:h6vY"))
        );
        // Past MESSAGE-INTEGRITY nothing counts; without USERNAME, none.
        let txid = TransactionId([9; 12]);
        let mut encoder = MessageEncoder::new(Class::Request, Method::Binding, txid);
        encoder.push_integrity(&IntegrityKey::short_term("pw"));
        encoder.push(&Attribute::Username("late:name"));
        let late = encoder.finish();
        let header = Header::parse(&late).unwrap();
        assert_eq!(find_username(&header, &late), Ok(None));
        // A length that does not match the datagram is an error.
        let header = Header::parse(&SAMPLE_REQUEST).unwrap();
        assert!(find_username(&header, &SAMPLE_REQUEST[..100]).is_err());
    }
}
