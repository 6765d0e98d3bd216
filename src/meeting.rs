//! Meeting codes and what members derive from them.
//!
//! A code is normalized (leading and trailing whitespace removed, inner runs
//! of whitespace collapsed to one space, lower-cased), stretched with
//! PBKDF2-HMAC-SHA256 ([`PBKDF2_ITERATIONS`] rounds, fixed salt
//! [`PBKDF2_SALT`]) so that guessing short codes from a topic is expensive,
//! then expanded with HKDF-SHA256 (salt [`HKDF_SALT`]) into two independent
//! values: the DHT topic (info [`TOPIC_INFO`]), which storing nodes see, and
//! the ChaCha20-Poly1305 sealing key (info [`SEAL_INFO`]), which only members
//! can compute, and the key of the Mainline DHT infohashes (info
//! [`MAINLINE_INFO`]; [`Meeting::infohash`] per UTC hour), which shares
//! nothing with the topic, so a Mainline crawler cannot link the two. Different codes give different topics (SHA-256 collisions
//! aside) and different keys.
//!
//! Sealed blobs are `nonce (12) || ciphertext || tag (16)`; the associated
//! data binds each blob to its purpose and topic.

use std::fmt;
use std::num::NonZeroU32;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::{hkdf, pbkdf2};

use crate::id::NodeId;

/// PBKDF2 salt: fixed, so every member derives the same values; `v2`
/// names the work factor below (`v1` had 30,000 rounds).
pub const PBKDF2_SALT: &[u8] = b"tinynode/meeting/pbkdf2/v2";
/// PBKDF2 rounds: about 0.1 s on a 2020s x86-64 core (4 M rounds/s measured),
/// about 1.3 s on a Cortex-A72 board such as a Raspberry Pi 4 (about
/// 0.3 M rounds/s without SHA extensions). Each guess at a code costs an
/// attacker as much; a generated code (70 bits, `code.rs`) is what makes
/// guessing hopeless.
pub const PBKDF2_ITERATIONS: u32 = 400_000;
/// HKDF extract salt.
pub const HKDF_SALT: &[u8] = b"tinynode/meeting/hkdf/v1";
/// HKDF info for the 32-byte DHT topic.
pub const TOPIC_INFO: &[u8] = b"tinynode topic v1";
/// HKDF info for the 32-byte ChaCha20-Poly1305 key.
pub const SEAL_INFO: &[u8] = b"tinynode seal v1";
/// HKDF info for the 32-byte key of the Mainline infohashes.
pub const MAINLINE_INFO: &[u8] = b"tinynode mainline v1";
/// HKDF info for the 32-byte key of the LAN beacon tags.
pub const LAN_INFO: &[u8] = b"tinynode lan v1";
/// HKDF info of the relay key, which makes relay pairing tokens.
pub const RELAY_INFO: &[u8] = b"tinynode relay v1";
/// HKDF info of the hello key, which authenticates hellos (§9.6).
pub const HELLO_INFO: &[u8] = b"tinynode hello v2";
/// HMAC label before the hello bytes in [`Meeting::hello_mac`].
pub const HELLO_MAC_LABEL: &[u8] = b"tinynode hello mac v2";
/// HMAC label before the session and node IDs in [`Meeting::relay_token`].
pub const RELAY_TOKEN_LABEL: &[u8] = b"tinynode relay token v1";
/// HMAC label before the window number in [`Meeting::lan_tag`].
pub const LAN_TAG_LABEL: &[u8] = b"tinynode lan tag v1";
/// Length of a LAN tag window.
pub const LAN_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// HMAC label before the window number in [`Meeting::infohash`].
pub const INFOHASH_LABEL: &[u8] = b"tinynode mainline infohash v1";

/// Length of the nonce prefixed to a sealed blob.
pub const NONCE_LEN: usize = 12;
/// Length of the authentication tag at the end of a sealed blob.
pub const TAG_LEN: usize = 16;

/// The values a member derives from a meeting code.
#[derive(Clone)]
pub struct Meeting {
    topic: NodeId,
    key: [u8; 32],
    mainline_key: [u8; 32],
    lan_key: [u8; 32],
    relay_key: [u8; 32],
    hello_key: [u8; 32],
}

/// Why a code cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeetingError {
    /// Nothing but whitespace.
    EmptyCode,
}

impl fmt::Display for MeetingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the meeting code is empty")
    }
}

impl std::error::Error for MeetingError {}

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// The normalized form of a code (`protocol-spec.md` §4.2): split on
/// Unicode `White_Space`, joined with one space, then Unicode full
/// lower-casing (with the final-sigma rule) as of [`char::UNICODE_VERSION`].
/// No normalization form is applied: composed and decomposed characters are
/// different codes.
pub fn normalize(code: &str) -> String {
    code.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// HMAC-SHA256(key, label || u64be(window)).
fn hmac_window(key: &[u8; 32], label: &[u8], window: u64) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(label);
    context.update(&window.to_be_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(context.sign().as_ref());
    out
}

impl Meeting {
    /// Derives topic and key from `code` (costs PBKDF2_ITERATIONS rounds, `protocol-spec.md` §4.2).
    pub fn derive(code: &str) -> Result<Self, MeetingError> {
        let normalized = normalize(code);
        if normalized.is_empty() {
            return Err(MeetingError::EmptyCode);
        }
        let mut stretched = [0u8; 32];
        let rounds = NonZeroU32::new(PBKDF2_ITERATIONS).expect("non-zero constant");
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            PBKDF2_SALT,
            normalized.as_bytes(),
            &mut stretched,
        );
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(&stretched);
        let expand = |info: &[u8]| {
            let mut out = [0u8; 32];
            prk.expand(&[info], Len32)
                .and_then(|okm| okm.fill(&mut out))
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            out
        };
        Ok(Self {
            topic: NodeId(expand(TOPIC_INFO)),
            key: expand(SEAL_INFO),
            mainline_key: expand(MAINLINE_INFO),
            lan_key: expand(LAN_INFO),
            relay_key: expand(RELAY_INFO),
            hello_key: expand(HELLO_INFO),
        })
    }

    /// The LAN beacon tag of window `window` (⌊Unix seconds / 300⌋): the
    /// first 8 bytes of HMAC-SHA256(LAN key, [`LAN_TAG_LABEL`] ||
    /// u64be(window)), `protocol-spec.md` §10.2.
    pub fn lan_tag(&self, window: u64) -> [u8; 8] {
        let mut out = [0u8; 8];
        out.copy_from_slice(&hmac_window(&self.lan_key, LAN_TAG_LABEL, window)[..8]);
        out
    }

    /// The token two members present to a relay to be paired for
    /// connection attempt `session` (`protocol-spec.md` §12.3): the first
    /// 16 bytes of HMAC-SHA256(relay key, [`RELAY_TOKEN_LABEL`] ||
    /// u64be(session) || low ID || high ID). Only members can make it, so
    /// a member relay serves its own meeting alone.
    pub fn relay_token(&self, session: u64, low: &NodeId, high: &NodeId) -> [u8; 16] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.relay_key);
        let mut context = ring::hmac::Context::with_key(&key);
        context.update(RELAY_TOKEN_LABEL);
        context.update(&session.to_be_bytes());
        context.update(&low.0);
        context.update(&high.0);
        let mut out = [0u8; 16];
        out.copy_from_slice(&context.sign().as_ref()[..16]);
        out
    }

    /// The authentication code of a hello's `bytes` (all but the code
    /// itself, `protocol-spec.md` §9.6): the first 16 bytes of
    /// HMAC-SHA256(hello key, `HELLO_MAC_LABEL` || bytes). Only members
    /// can make it, so the address a hello names and the nonces it carries
    /// cannot be changed by someone who captured it.
    pub fn hello_mac(&self, bytes: &[u8]) -> [u8; 16] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.hello_key);
        let mut context = ring::hmac::Context::with_key(&key);
        context.update(HELLO_MAC_LABEL);
        context.update(bytes);
        let mut out = [0u8; 16];
        out.copy_from_slice(&context.sign().as_ref()[..16]);
        out
    }

    /// The Mainline DHT infohash of time window `window` (⌊Unix seconds /
    /// 3600⌋): the first 20 bytes of HMAC-SHA256(mainline key,
    /// [`INFOHASH_LABEL`] || u64be(window)), `protocol-spec.md` §9.2.
    pub fn infohash(&self, window: u64) -> [u8; 20] {
        let mut out = [0u8; 20];
        out.copy_from_slice(&hmac_window(&self.mainline_key, INFOHASH_LABEL, window)[..20]);
        out
    }

    /// The DHT key members announce under.
    pub fn topic(&self) -> NodeId {
        self.topic
    }

    fn aead_key(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &self.key).expect("32-byte ChaCha20 key"),
        )
    }

    /// Encrypts and authenticates `plaintext` under `nonce` (which must never
    /// repeat for this meeting) with associated data `aad`.
    pub fn seal(&self, nonce: [u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut blob = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(plaintext);
        let mut in_out = blob.split_off(NONCE_LEN);
        // Sealing in place only fails for absurd lengths (> 256 GiB).
        self.aead_key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut in_out,
            )
            .expect("plaintext within ChaCha20-Poly1305 limits");
        blob.extend_from_slice(&in_out);
        blob
    }

    /// The plaintext of a sealed blob, or `None` if it was not sealed with
    /// this meeting's key and `aad`, or was altered.
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = blob.split_first_chunk::<NONCE_LEN>()?;
        if ciphertext.len() < TAG_LEN {
            return None;
        }
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .aead_key()
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut in_out,
            )
            .ok()?;
        let len = plaintext.len();
        in_out.truncate(len);
        Some(in_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_is_pinned_to_one_unicode_version() {
        // A toolchain with another Unicode version may lower-case other
        // characters: that changes which codes meet, so the spec must say so.
        assert_eq!(char::UNICODE_VERSION, (17, 0, 0));
        assert_eq!(
            normalize("ΣΑΣ\u{3000}ΟΔΟΣ"),
            "σας οδος",
            "final sigma, ideographic space"
        );
        assert_eq!(normalize("İ"), "i\u{307}", "full mapping, not simple");
        assert_ne!(
            normalize("caf\u{e9}"),
            normalize("cafe\u{301}"),
            "no NFC: composed and decomposed are different meetings"
        );
    }

    #[test]
    fn normalization_ignores_spacing_and_case() {
        assert_eq!(normalize("  Blue \t Fox\n"), "blue fox");
        let a = Meeting::derive("Blue Fox").unwrap();
        let b = Meeting::derive(" blue   fox ").unwrap();
        assert_eq!(a.topic(), b.topic());
        assert!(matches!(
            Meeting::derive(" \n"),
            Err(MeetingError::EmptyCode)
        ));
    }

    #[test]
    fn infohashes_match_the_independent_vectors() {
        // Computed with Python's hashlib/hmac from the spec (MAINLINE.md §3.2).
        let m = Meeting::derive(" Blue   Fox ").unwrap();
        let hex = |w| crate::hex::hex(&m.infohash(w));
        assert_eq!(hex(0), "b22577e15f8885f5ba465e9d8494cf01066ddc87");
        assert_eq!(hex(1), "dd7abd49e67c5ba531322268589a416cedf2ee5d");
        assert_eq!(hex(493_000), "efc3b03599344cf3bd156a6aabbaf152dfe761f1");
        assert_eq!(
            m.topic().0,
            *b"\x1f\xc6\x9d\xb1\xd9\x26\xf8\xdd\x1c\xde\x03\xba\xb6\x01\x15\x6b\x1c\xf3\x7f\xbe\x69\xd1\xc2\xa1\x75\x10\x69\x23\xd9\xbb\x80\x01",
            "the same derivation pins the topic"
        );
    }

    #[test]
    fn different_codes_never_share_topic_or_key() {
        let a = Meeting::derive("blue fox").unwrap();
        let b = Meeting::derive("bluefox").unwrap();
        assert_ne!(a.topic(), b.topic());
        let sealed = a.seal([1; 12], b"aad", b"secret");
        assert_eq!(a.open(b"aad", &sealed).as_deref(), Some(&b"secret"[..]));
        assert_eq!(b.open(b"aad", &sealed), None);
        assert_eq!(a.open(b"other", &sealed), None);
        let mut altered = sealed.clone();
        altered[14] ^= 1;
        assert_eq!(a.open(b"aad", &altered), None);
        assert_eq!(a.open(b"aad", &sealed[..20]), None);
    }
}
