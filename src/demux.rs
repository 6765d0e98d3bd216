//! Datagram demultiplexing by first byte (RFC 7983 §7, extended by RFC 9443
//! §3): the one place that decides which protocol a received datagram
//! belongs to. The node's single UDP socket carries STUN, tinynode's DHT
//! frames, hellos, the Mainline DHT's KRPC and DTLS; every other range is
//! recognised only to be dropped.
//!
//! | first byte | protocol |
//! |---|---|
//! | 0–3 | STUN |
//! | [`DHT_FRAME_TAG`] (in 4–15) | tinynode DHT frame |
//! | [`HELLO_TAG`](crate::hello::HELLO_TAG) (in 4–15) | hello |
//! | [`BEACON_TAG`](crate::beacon::BEACON_TAG) (in 4–15) | LAN beacon |
//! | [`RELAY_TAG`](crate::relay::wire::RELAY_TAG) (in 4–15) | relay frame |
//! | 16–19 | ZRTP (dropped) |
//! | 20–63 | DTLS |
//! | 64–79 | TURN ChannelData (dropped) |
//! | [`KRPC_FIRST_BYTE`] `d` (in 80–127) | Mainline KRPC (a bencoded dict) |
//! | other values in 80–127 | QUIC (dropped) |
//! | 128–191 | RTP / RTCP (dropped) |
//! | 192–255 | QUIC (dropped) |
//! | other values in 4–15 | unassigned (dropped) |

/// First byte of every tinynode DHT frame. The range 4–15 is the one that
/// neither RFC 7983 nor RFC 9443 assigns, and str0m does not claim it.
pub const DHT_FRAME_TAG: u8 = 0x0A;
/// First byte of every KRPC message: `d`, the start of a bencoded dict.
/// It lies in RFC 9443's QUIC range, which tinynode never speaks; a QUIC
/// long header starts at 0xC0 and a short header's first byte is random in
/// 0x40–0x7F, so a stray QUIC packet that lands here fails bencode and is
/// dropped as malformed (`protocol-spec.md` §2).
pub const KRPC_FIRST_BYTE: u8 = b'd';

/// The protocol a datagram belongs to, judged by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// STUN: address discovery, our STUN server, ICE connectivity checks.
    Stun,
    /// A tinynode DHT frame.
    Dht,
    /// A hello (`hello.rs`).
    Hello,
    /// A LAN beacon (`beacon.rs`).
    Beacon,
    /// A relay frame (`relay/wire.rs`).
    Relay,
    /// A Mainline DHT (KRPC) message.
    Mainline,
    /// DTLS, for the WebRTC stack.
    Dtls,
    /// ZRTP (not used by tinynode).
    Zrtp,
    /// TURN ChannelData (not used by tinynode).
    TurnChannel,
    /// QUIC (not used by tinynode).
    Quic,
    /// RTP or RTCP (not used by tinynode).
    Rtp,
    /// A first byte in 4–15 other than the DHT tag.
    Unassigned,
    /// A zero-length datagram.
    Empty,
}

/// Classifies a datagram by its first byte.
pub fn classify(datagram: &[u8]) -> Protocol {
    let Some(&first) = datagram.first() else {
        return Protocol::Empty;
    };
    match first {
        0..=3 => Protocol::Stun,
        DHT_FRAME_TAG => Protocol::Dht,
        crate::hello::HELLO_TAG => Protocol::Hello,
        crate::beacon::BEACON_TAG => Protocol::Beacon,
        crate::relay::wire::RELAY_TAG => Protocol::Relay,
        KRPC_FIRST_BYTE => Protocol::Mainline,
        4..=15 => Protocol::Unassigned,
        16..=19 => Protocol::Zrtp,
        20..=63 => Protocol::Dtls,
        64..=79 => Protocol::TurnChannel,
        80..=127 | 192..=255 => Protocol::Quic,
        128..=191 => Protocol::Rtp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_first_byte_has_exactly_the_documented_owner() {
        assert_eq!(classify(&[]), Protocol::Empty);
        for byte in 0..=255u8 {
            let expected = match byte {
                0..=3 => Protocol::Stun,
                0x0A => Protocol::Dht,
                0x0B => Protocol::Hello,
                0x0C => Protocol::Beacon,
                0x0D => Protocol::Relay,
                0x64 => Protocol::Mainline,
                4..=15 => Protocol::Unassigned,
                16..=19 => Protocol::Zrtp,
                20..=63 => Protocol::Dtls,
                64..=79 => Protocol::TurnChannel,
                128..=191 => Protocol::Rtp,
                _ => Protocol::Quic,
            };
            assert_eq!(classify(&[byte, 0, 0]), expected, "first byte {byte}");
        }
    }
}
