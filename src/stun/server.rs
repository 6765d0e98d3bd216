//! STUN Binding server (RFC 5389 §7.3, §10): the answer every node gives to a
//! Binding request, so any tinynode can tell a peer its public address.
//!
//! The server is a pure function of the request and its source address; it
//! keeps no state. Rules, in order:
//! - only requests are answered; indications and responses get nothing;
//! - a datagram with a valid STUN request header that fails to decode, or a
//!   request for a method other than Binding, gets 400 (Bad Request);
//! - a request carrying a FINGERPRINT that does not match gets nothing;
//! - a request with comprehension-required attributes this codec does not
//!   know gets 420 (Unknown Attribute) listing them in UNKNOWN-ATTRIBUTES;
//! - otherwise a success response with XOR-MAPPED-ADDRESS = source address,
//!   then SOFTWARE, then FINGERPRINT when the request carried one.
//!
//! No amplification: an answer is never longer than [`AMPLIFICATION_FACTOR`]
//! times the request. SOFTWARE is left out when it would break that bound,
//! and an answer that cannot fit even without it is not sent.
//! Authentication attributes (USERNAME, MESSAGE-INTEGRITY) are not checked:
//! this server answers anyone, like a public STUN server without credentials.

use std::net::SocketAddr;

use super::attribute::{Attribute, ErrorCode, TypeList};
use super::message::{Class, FingerprintStatus, Header, Message, MessageEncoder, Method};
use crate::limits::AMPLIFICATION_FACTOR;

/// Most attribute types listed in one UNKNOWN-ATTRIBUTES answer.
pub const MAX_UNKNOWN_LISTED: usize = 16;

/// What kind of answer was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    /// Success response with the source address.
    Binding,
    /// 400 Bad Request.
    BadRequest,
    /// 420 Unknown Attribute.
    UnknownAttribute,
}

/// Why a datagram got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// Not even a valid STUN header.
    Malformed,
    /// A valid message that is not a request (indication or response).
    NotARequest,
    /// The request's FINGERPRINT does not match.
    BadFingerprint,
    /// Even the smallest answer would exceed the amplification bound.
    AnswerTooLarge,
}

/// The answer to a datagram received from `source`, and what kind it is.
/// Decodes the datagram; the node, which has decoded it already, calls
/// `answer_request` or `answer_malformed` instead.
pub fn answer(
    datagram: &[u8],
    source: SocketAddr,
    software: &str,
) -> Result<(Vec<u8>, AnswerKind), Silence> {
    match Message::decode(datagram) {
        Ok(request) => answer_request(&request, source, software),
        Err(_) => {
            let header = Header::parse(datagram).map_err(|_| Silence::Malformed)?;
            answer_malformed(&header, datagram.len(), software)
        }
    }
}

/// The answer to a decoded message received from `source`.
pub fn answer_request(
    request: &Message<'_>,
    source: SocketAddr,
    software: &str,
) -> Result<(Vec<u8>, AnswerKind), Silence> {
    let budget = request.len().saturating_mul(AMPLIFICATION_FACTOR);
    if request.class() != Class::Request {
        return Err(Silence::NotARequest);
    }
    let with_fingerprint = match request.fingerprint_status() {
        FingerprintStatus::Invalid => return Err(Silence::BadFingerprint),
        FingerprintStatus::Valid => true,
        FingerprintStatus::Absent => false,
    };
    let kind = if request.method() != Method::Binding {
        AnswerKind::BadRequest
    } else if request.unknown_required_attributes().next().is_some() {
        AnswerKind::UnknownAttribute
    } else {
        AnswerKind::Binding
    };
    let mut unknown_types = [0u8; 2 * MAX_UNKNOWN_LISTED];
    let mut listed = 0;
    for attribute_type in request
        .unknown_required_attributes()
        .take(MAX_UNKNOWN_LISTED)
    {
        unknown_types[2 * listed..2 * listed + 2].copy_from_slice(&attribute_type.to_be_bytes());
        listed += 1;
    }
    let mandatory: &[Attribute<'_>] = match kind {
        AnswerKind::Binding => &[Attribute::XorMappedAddress(source)],
        AnswerKind::BadRequest => &[bad_request()],
        AnswerKind::UnknownAttribute => &[
            Attribute::ErrorCode(ErrorCode {
                code: 420,
                reason: "Unknown Attribute",
            }),
            Attribute::UnknownAttributes(
                TypeList::from_be_bytes(&unknown_types[..2 * listed]).unwrap_or(TypeList::EMPTY),
            ),
        ],
    };
    let class = match kind {
        AnswerKind::Binding => Class::SuccessResponse,
        AnswerKind::BadRequest | AnswerKind::UnknownAttribute => Class::ErrorResponse,
    };
    let response = build(
        MessageEncoder::new(class, request.method(), request.transaction_id()),
        mandatory,
        Some(Attribute::Software(software)),
        with_fingerprint,
        budget,
    )?;
    Ok((response, kind))
}

fn bad_request() -> Attribute<'static> {
    Attribute::ErrorCode(ErrorCode {
        code: 400,
        reason: "Bad Request",
    })
}

/// 400 for a datagram of `datagram_len` bytes whose header is a STUN
/// request but whose body is not valid.
pub fn answer_malformed(
    header: &Header,
    datagram_len: usize,
    software: &str,
) -> Result<(Vec<u8>, AnswerKind), Silence> {
    let budget = datagram_len.saturating_mul(AMPLIFICATION_FACTOR);
    if header.class != Class::Request {
        return Err(Silence::NotARequest);
    }
    let encoder = MessageEncoder::new(Class::ErrorResponse, header.method, header.transaction_id);
    let response = build(
        encoder,
        &[bad_request()],
        Some(Attribute::Software(software)),
        false,
        budget,
    )?;
    Ok((response, AnswerKind::BadRequest))
}

/// Writes the mandatory attributes, then `optional` if the budget allows it,
/// then FINGERPRINT if asked; fails if the mandatory part does not fit.
fn build(
    mut encoder: MessageEncoder,
    mandatory: &[Attribute<'_>],
    optional: Option<Attribute<'_>>,
    with_fingerprint: bool,
    budget: usize,
) -> Result<Vec<u8>, Silence> {
    const FINGERPRINT_LEN: usize = 8;
    let tail = if with_fingerprint { FINGERPRINT_LEN } else { 0 };
    let mandatory_len: usize = mandatory.iter().map(MessageEncoder::encoded_len).sum();
    if encoder.len() + mandatory_len + tail > budget {
        return Err(Silence::AnswerTooLarge);
    }
    for attribute in mandatory {
        encoder.push(attribute);
    }
    if let Some(optional) = optional
        && encoder.len() + MessageEncoder::encoded_len(&optional) + tail <= budget
    {
        encoder.push(&optional);
    }
    if with_fingerprint {
        encoder.push_fingerprint();
    }
    Ok(encoder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::attribute::SOFTWARE;
    use crate::stun::message::{IntegrityKey, TransactionId};

    const SOURCE: &str = "203.0.113.5:40000";
    const TXID: TransactionId = TransactionId([0x42; 12]);

    fn source() -> SocketAddr {
        SOURCE.parse().unwrap()
    }

    fn request(build: impl FnOnce(&mut MessageEncoder)) -> Vec<u8> {
        let mut encoder = MessageEncoder::new(Class::Request, Method::Binding, TXID);
        build(&mut encoder);
        encoder.finish()
    }

    fn error_code(response: &Message<'_>) -> Option<u16> {
        response.attributes().find_map(|a| match a {
            Attribute::ErrorCode(e) => Some(e.code),
            _ => None,
        })
    }

    #[test]
    fn binding_request_gets_source_address_and_fingerprint_when_asked() {
        let plain = request(|_| {});
        let (bytes, kind) = answer(&plain, source(), "tinynode").unwrap();
        assert_eq!(kind, AnswerKind::Binding);
        let response = Message::decode(&bytes).unwrap();
        assert_eq!(response.class(), Class::SuccessResponse);
        assert_eq!(response.transaction_id(), TXID);
        assert_eq!(response.reflexive_address(), Some(source()));
        assert_eq!(response.fingerprint_status(), FingerprintStatus::Absent);

        let with_fp = request(|e| {
            e.push_fingerprint();
        });
        let (bytes, _) = answer(&with_fp, source(), "tinynode").unwrap();
        let response = Message::decode(&bytes).unwrap();
        assert_eq!(response.fingerprint_status(), FingerprintStatus::Valid);
        assert!(
            response
                .attributes()
                .any(|a| a == Attribute::Software("tinynode"))
        );
    }

    #[test]
    fn ice_style_request_with_credentials_is_answered() {
        let key = IntegrityKey::short_term("pass");
        let ice = request(|e| {
            e.push(&Attribute::Username("a:b"))
                .push(&Attribute::Priority(1))
                .push(&Attribute::IceControlling(9))
                .push(&Attribute::UseCandidate)
                .push_integrity(&key)
                .push_fingerprint();
        });
        let (_, kind) = answer(&ice, source(), "tinynode").unwrap();
        assert_eq!(kind, AnswerKind::Binding);
    }

    #[test]
    fn unknown_required_attributes_get_420_with_the_list() {
        let unknown = request(|e| {
            e.push(&Attribute::Unknown {
                attribute_type: 0x0031,
                value: b"",
            })
            .push(&Attribute::Unknown {
                attribute_type: 0x8031,
                value: b"",
            })
            .push_fingerprint();
        });
        let (bytes, kind) = answer(&unknown, source(), "tinynode").unwrap();
        assert_eq!(kind, AnswerKind::UnknownAttribute);
        let response = Message::decode(&bytes).unwrap();
        assert_eq!(response.class(), Class::ErrorResponse);
        assert_eq!(error_code(&response), Some(420));
        let listed: Vec<u16> = response
            .attributes()
            .find_map(|a| match a {
                Attribute::UnknownAttributes(list) => Some(list.iter().collect()),
                _ => None,
            })
            .unwrap();
        assert_eq!(listed, [0x0031]);
    }

    #[test]
    fn malformed_request_gets_400_and_other_garbage_nothing() {
        let mut broken = request(|e| {
            e.push(&Attribute::Software("x"));
        });
        broken[23] = 0xff; // SOFTWARE length past the end
        let (bytes, kind) = answer(&broken, source(), "tinynode").unwrap();
        assert_eq!(kind, AnswerKind::BadRequest);
        let response = Message::decode(&bytes).unwrap();
        assert_eq!(error_code(&response), Some(400));
        assert_eq!(response.transaction_id(), TXID);

        let mut other_method =
            MessageEncoder::new(Class::Request, Method::Unknown(0x003), TXID).finish();
        assert_eq!(
            answer(&other_method, source(), "x").unwrap().1,
            AnswerKind::BadRequest
        );
        other_method[3] = 1;
        assert_eq!(
            answer(&other_method[..19], source(), "x"),
            Err(Silence::Malformed)
        );

        let indication = MessageEncoder::new(Class::Indication, Method::Binding, TXID).finish();
        assert_eq!(
            answer(&indication, source(), "x"),
            Err(Silence::NotARequest)
        );
        let response = MessageEncoder::new(Class::SuccessResponse, Method::Binding, TXID).finish();
        assert_eq!(answer(&response, source(), "x"), Err(Silence::NotARequest));
    }

    #[test]
    fn request_with_wrong_fingerprint_is_ignored() {
        let mut bytes = request(|e| {
            e.push_fingerprint();
        });
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(answer(&bytes, source(), "x"), Err(Silence::BadFingerprint));
    }

    #[test]
    fn answers_stay_within_the_amplification_bound() {
        let v6: SocketAddr = "[2001:db8::5]:40000".parse().unwrap();
        let long_software = "s".repeat(100);
        let smallest = request(|_| {});
        for from in [source(), v6] {
            let (bytes, _) = answer(&smallest, from, &long_software).unwrap();
            assert!(bytes.len() <= AMPLIFICATION_FACTOR * smallest.len());
            let response = Message::decode(&bytes).unwrap();
            assert!(
                response
                    .attributes()
                    .all(|a| a.attribute_type() != SOFTWARE)
            );
        }
        let many_unknown = request(|e| {
            for attribute_type in 0x0040..0x0060 {
                e.push(&Attribute::Unknown {
                    attribute_type,
                    value: b"",
                });
            }
        });
        let (bytes, _) = answer(&many_unknown, source(), "tinynode").unwrap();
        assert!(bytes.len() <= AMPLIFICATION_FACTOR * many_unknown.len());
    }
}
