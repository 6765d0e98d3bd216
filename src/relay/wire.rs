//! Relay frames, `protocol-spec.md` §12.2: fixed offsets, big-endian
//! integers, checked lengths; nothing here allocates when decoding.
//!
//! ```text
//! data       0x0D 0x00 | channel u32 | payload (1..=MAX_PAYLOAD)
//! bind       0x0D 0x01 | token [16] | session u64 | low id [32] | high id [32] [| cookie [16]]
//!                                                                    (90 bytes, 106 with the cookie)
//! bound      0x0D 0x02 | token [16] | channel u32 | lifetime_s u16 | rate_kib u16  (26 bytes)
//! refused    0x0D 0x03 | token [16] | cookie [16] | reason u8                      (35 bytes)
//! release    0x0D 0x04 | token [16] | channel u32                                   (22 bytes)
//! challenge  0x0D 0x05 | token [16] | cookie [16]                                   (34 bytes)
//! ```
//!
//! A bind without a cookie is answered only with a `challenge` (the relay
//! keeps nothing); the binder proves it receives at its address by
//! echoing the cookie. A bind is the largest control frame, and every
//! answer to it is smaller, so a relay never sends more bytes than it was
//! sent.

use std::fmt;

use crate::api::RelayRefusal;
use crate::id::NodeId;

/// First byte of every relay frame: in 4–15, the range RFC 7983 leaves
/// unassigned, beside the DHT, hello and beacon tags.
pub const RELAY_TAG: u8 = 0x0D;
/// Bytes before a data frame's payload: tag, kind, channel.
pub const DATA_HEADER_LEN: usize = 6;
/// The longest payload a data frame carries: a relayed datagram (an ICE
/// check or a DTLS record; str0m keeps those under 1200 bytes) with room.
pub const MAX_PAYLOAD: usize = 1400;
/// Length of a relay's return-routability cookie.
pub const COOKIE_LEN: usize = 16;
/// Length of a bind frame without a cookie (the first one).
pub const BIND_LEN: usize = 2 + 16 + 8 + 32 + 32;
/// Length of a bind frame that echoes a cookie.
pub const COOKIE_BIND_LEN: usize = BIND_LEN + COOKIE_LEN;
/// Length of a bound frame.
pub const BOUND_LEN: usize = 2 + 16 + 4 + 2 + 2;
/// Length of a refused frame.
pub const REFUSED_LEN: usize = 2 + 16 + COOKIE_LEN + 1;
/// Length of a release frame.
pub const RELEASE_LEN: usize = 2 + 16 + 4;
/// Length of a challenge frame.
pub const CHALLENGE_LEN: usize = 2 + 16 + COOKIE_LEN;

// Every answer to a bind is smaller than the bind it answers: a challenge
// than a first bind, a bound or refused than a bind with a cookie. No
// amplification.
const _: () = assert!(
    CHALLENGE_LEN < BIND_LEN && BOUND_LEN < COOKIE_BIND_LEN && REFUSED_LEN < COOKIE_BIND_LEN
);

const KIND_DATA: u8 = 0;
const KIND_BIND: u8 = 1;
const KIND_BOUND: u8 = 2;
const KIND_REFUSED: u8 = 3;
const KIND_RELEASE: u8 = 4;
const KIND_CHALLENGE: u8 = 5;

/// The 16 bytes two binders present to be paired.
pub type Token = [u8; 16];
/// The relay's proof that a binder receives at its address (§12.2).
pub type Cookie = [u8; COOKIE_LEN];

impl RelayRefusal {
    fn code(self) -> u8 {
        match self {
            Self::NotARelay => 0,
            Self::BadToken => 1,
            Self::Full => 2,
            Self::TooManyFromSource => 3,
            Self::TokenTaken => 4,
            Self::Forbidden => 5,
            Self::TooFast => 6,
            Self::Unknown(code) => code,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            0 => Self::NotARelay,
            1 => Self::BadToken,
            2 => Self::Full,
            3 => Self::TooManyFromSource,
            4 => Self::TokenTaken,
            5 => Self::Forbidden,
            6 => Self::TooFast,
            other => Self::Unknown(other),
        }
    }
}

/// A request to be paired with whoever presents the same token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bind {
    /// The pairing token (§12.3).
    pub token: Token,
    /// The connection attempt the token was made for.
    pub session: u64,
    /// The lower node ID of the pair.
    pub low: NodeId,
    /// The higher node ID of the pair.
    pub high: NodeId,
    /// The relay's cookie for this source and token, echoed; `None` in a
    /// first bind.
    pub cookie: Option<Cookie>,
}

/// A relay frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A relayed datagram on a channel.
    Data {
        /// The binding it is sent on (to the relay) or arrives on (from it).
        channel: u32,
        /// The datagram.
        payload: &'a [u8],
    },
    /// Bind (or refresh a binding).
    Bind(Bind),
    /// The relay's yes.
    Bound {
        /// The bind's token.
        token: Token,
        /// The binder's channel.
        channel: u32,
        /// Seconds until the binding expires unless bound again.
        lifetime_s: u16,
        /// The pair's rate limit, KiB per second.
        rate_kib: u16,
    },
    /// The relay's no, to a bind that echoed a cookie.
    Refused {
        /// The bind's token.
        token: Token,
        /// The bind's cookie: proof that the refusal answers our bind.
        cookie: Cookie,
        /// Why.
        reason: RelayRefusal,
    },
    /// The relay's answer to a bind without a valid cookie: bind again
    /// with this one.
    Challenge {
        /// The bind's token.
        token: Token,
        /// The cookie to echo.
        cookie: Cookie,
    },
    /// The binder is done with its binding.
    Release {
        /// The binding's token.
        token: Token,
        /// The binder's channel.
        channel: u32,
    },
}

/// Why bytes are not a relay frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not the relay tag, or no kind byte.
    NotRelay,
    /// A kind this version does not know.
    UnknownKind(u8),
    /// The length is wrong for the kind (or a data frame is empty or too long).
    BadLength,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRelay => f.write_str("not a relay frame"),
            Self::UnknownKind(kind) => write!(f, "unknown relay frame kind {kind}"),
            Self::BadLength => f.write_str("wrong length for its kind"),
        }
    }
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at + N)?.try_into().ok()
}

impl<'a> Frame<'a> {
    /// Decodes one frame: the whole datagram, exact length for control
    /// frames.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, FrameError> {
        let &[RELAY_TAG, kind, ref rest @ ..] = bytes else {
            return Err(FrameError::NotRelay);
        };
        let exact = |len: usize| {
            if bytes.len() == len {
                Ok(())
            } else {
                Err(FrameError::BadLength)
            }
        };
        let token = || array::<16>(rest, 0).ok_or(FrameError::BadLength);
        let u32_at = |at| array::<4>(bytes, at).map(u32::from_be_bytes);
        let u16_at = |at| array::<2>(bytes, at).map(u16::from_be_bytes);
        match kind {
            KIND_DATA => {
                let channel = u32_at(2).ok_or(FrameError::BadLength)?;
                let payload = &bytes[DATA_HEADER_LEN..];
                if payload.is_empty() || payload.len() > MAX_PAYLOAD {
                    return Err(FrameError::BadLength);
                }
                Ok(Self::Data { channel, payload })
            }
            KIND_BIND => {
                let cookie = match bytes.len() {
                    BIND_LEN => None,
                    COOKIE_BIND_LEN => {
                        Some(array::<COOKIE_LEN>(bytes, BIND_LEN).ok_or(FrameError::BadLength)?)
                    }
                    _ => return Err(FrameError::BadLength),
                };
                let session = array::<8>(bytes, 18).map(u64::from_be_bytes);
                let low = array::<32>(bytes, 26).map(NodeId);
                let high = array::<32>(bytes, 58).map(NodeId);
                match (session, low, high) {
                    (Some(session), Some(low), Some(high)) => Ok(Self::Bind(Bind {
                        token: token()?,
                        session,
                        low,
                        high,
                        cookie,
                    })),
                    _ => Err(FrameError::BadLength),
                }
            }
            KIND_BOUND => {
                exact(BOUND_LEN)?;
                match (u32_at(18), u16_at(22), u16_at(24)) {
                    (Some(channel), Some(lifetime_s), Some(rate_kib)) => Ok(Self::Bound {
                        token: token()?,
                        channel,
                        lifetime_s,
                        rate_kib,
                    }),
                    _ => Err(FrameError::BadLength),
                }
            }
            KIND_REFUSED => {
                exact(REFUSED_LEN)?;
                let reason = RelayRefusal::from_code(*bytes.get(34).ok_or(FrameError::BadLength)?);
                Ok(Self::Refused {
                    token: token()?,
                    cookie: array::<COOKIE_LEN>(bytes, 18).ok_or(FrameError::BadLength)?,
                    reason,
                })
            }
            KIND_CHALLENGE => {
                exact(CHALLENGE_LEN)?;
                Ok(Self::Challenge {
                    token: token()?,
                    cookie: array::<COOKIE_LEN>(bytes, 18).ok_or(FrameError::BadLength)?,
                })
            }
            KIND_RELEASE => {
                exact(RELEASE_LEN)?;
                Ok(Self::Release {
                    token: token()?,
                    channel: u32_at(18).ok_or(FrameError::BadLength)?,
                })
            }
            other => Err(FrameError::UnknownKind(other)),
        }
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(COOKIE_BIND_LEN);
        match self {
            Self::Data { channel, payload } => {
                out.reserve(payload.len());
                out.extend_from_slice(&[RELAY_TAG, KIND_DATA]);
                out.extend_from_slice(&channel.to_be_bytes());
                out.extend_from_slice(payload);
            }
            Self::Bind(bind) => {
                out.extend_from_slice(&[RELAY_TAG, KIND_BIND]);
                out.extend_from_slice(&bind.token);
                out.extend_from_slice(&bind.session.to_be_bytes());
                out.extend_from_slice(&bind.low.0);
                out.extend_from_slice(&bind.high.0);
                if let Some(cookie) = &bind.cookie {
                    out.extend_from_slice(cookie);
                }
            }
            Self::Bound {
                token,
                channel,
                lifetime_s,
                rate_kib,
            } => {
                out.extend_from_slice(&[RELAY_TAG, KIND_BOUND]);
                out.extend_from_slice(token);
                out.extend_from_slice(&channel.to_be_bytes());
                out.extend_from_slice(&lifetime_s.to_be_bytes());
                out.extend_from_slice(&rate_kib.to_be_bytes());
            }
            Self::Refused {
                token,
                cookie,
                reason,
            } => {
                out.extend_from_slice(&[RELAY_TAG, KIND_REFUSED]);
                out.extend_from_slice(token);
                out.extend_from_slice(cookie);
                out.push(reason.code());
            }
            Self::Challenge { token, cookie } => {
                out.extend_from_slice(&[RELAY_TAG, KIND_CHALLENGE]);
                out.extend_from_slice(token);
                out.extend_from_slice(cookie);
            }
            Self::Release { token, channel } => {
                out.extend_from_slice(&[RELAY_TAG, KIND_RELEASE]);
                out.extend_from_slice(token);
                out.extend_from_slice(&channel.to_be_bytes());
            }
        }
        out
    }
}

/// A data frame's bytes, without building a [`Frame`] first.
pub fn data_frame(channel: u32, payload: &[u8]) -> Vec<u8> {
    Frame::Data { channel, payload }.encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Frame<'static>> {
        vec![
            Frame::Data {
                channel: 0xDEAD_BEEF,
                payload: &[22, 254, 253, 0, 1],
            },
            Frame::Bind(Bind {
                token: [7; 16],
                session: 0x0102_0304_0506_0708,
                low: NodeId([1; 32]),
                high: NodeId([2; 32]),
                cookie: None,
            }),
            Frame::Bind(Bind {
                token: [7; 16],
                session: 0x0102_0304_0506_0708,
                low: NodeId([1; 32]),
                high: NodeId([2; 32]),
                cookie: Some([8; 16]),
            }),
            Frame::Bound {
                token: [7; 16],
                channel: 9,
                lifetime_s: 600,
                rate_kib: 256,
            },
            Frame::Refused {
                token: [7; 16],
                cookie: [8; 16],
                reason: RelayRefusal::Full,
            },
            Frame::Release {
                token: [7; 16],
                channel: 9,
            },
            Frame::Challenge {
                token: [7; 16],
                cookie: [8; 16],
            },
        ]
    }

    #[test]
    fn every_frame_round_trips_at_its_documented_length() {
        let lengths = [
            DATA_HEADER_LEN + 5,
            BIND_LEN,
            COOKIE_BIND_LEN,
            BOUND_LEN,
            REFUSED_LEN,
            RELEASE_LEN,
            CHALLENGE_LEN,
        ];
        for (frame, len) in samples().into_iter().zip(lengths) {
            let bytes = frame.encode();
            assert_eq!(bytes.len(), len, "{frame:?}");
            assert_eq!(Frame::decode(&bytes), Ok(frame));
        }
        assert_eq!(
            (
                BIND_LEN,
                COOKIE_BIND_LEN,
                BOUND_LEN,
                REFUSED_LEN,
                RELEASE_LEN,
                CHALLENGE_LEN
            ),
            (90, 106, 26, 35, 22, 34)
        );
    }

    #[test]
    fn fixed_offsets_are_big_endian() {
        let bytes = data_frame(0x0102_0304, b"x");
        assert_eq!(bytes, [0x0D, 0, 1, 2, 3, 4, b'x']);
        let bound = Frame::Bound {
            token: [0; 16],
            channel: 1,
            lifetime_s: 0x0258,
            rate_kib: 0x0100,
        }
        .encode();
        assert_eq!(&bound[18..], &[0, 0, 0, 1, 0x02, 0x58, 0x01, 0x00]);
    }

    #[test]
    fn truncated_extended_and_unknown_frames_are_errors() {
        for frame in samples() {
            let bytes = frame.encode();
            // A data frame's payload may be any length from 1 byte.
            let shortest = match frame {
                Frame::Data { .. } => DATA_HEADER_LEN + 1,
                _ => bytes.len(),
            };
            for cut in
                (0..shortest).filter(|cut| *cut != BIND_LEN || !matches!(frame, Frame::Bind(_)))
            {
                assert!(
                    Frame::decode(&bytes[..cut]).is_err(),
                    "{frame:?} cut at {cut}"
                );
            }
            // A first bind is a prefix of a bind with a cookie.
            if !matches!(frame, Frame::Data { .. } | Frame::Bind(_)) {
                let mut longer = bytes.clone();
                longer.push(0);
                assert_eq!(Frame::decode(&longer), Err(FrameError::BadLength));
            }
        }
        let first_bind = samples()[1].encode();
        for extra in [1, 15, 17] {
            let mut longer = first_bind.clone();
            longer.extend(std::iter::repeat_n(0, extra));
            assert_eq!(
                Frame::decode(&longer),
                Err(FrameError::BadLength),
                "+{extra}"
            );
        }
        assert_eq!(
            Frame::decode(&[0x0D, 9, 0]),
            Err(FrameError::UnknownKind(9))
        );
        assert_eq!(Frame::decode(&[0x0A, 0]), Err(FrameError::NotRelay));
        let too_long = data_frame(1, &[0; MAX_PAYLOAD + 1]);
        assert_eq!(Frame::decode(&too_long), Err(FrameError::BadLength));
        assert!(Frame::decode(&data_frame(1, &[0; MAX_PAYLOAD])).is_ok());
    }

    #[test]
    fn an_unknown_refusal_reason_is_kept_as_data() {
        let bytes = Frame::Refused {
            token: [0; 16],
            cookie: [1; 16],
            reason: RelayRefusal::Unknown(200),
        }
        .encode();
        assert_eq!(
            Frame::decode(&bytes),
            Ok(Frame::Refused {
                token: [0; 16],
                cookie: [1; 16],
                reason: RelayRefusal::Unknown(200)
            })
        );
    }
}
