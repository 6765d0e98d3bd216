//! Our probes of relays (§12.4): one bind with a fresh, random token at
//! each address, to learn whether it relays for us; a bound probe is
//! released at once. Pure: the caller sends the frames and acts on the
//! verdicts.
//!
//! A probe never answered is given up at the next call to
//! [`RelayProbes::expire`], not on a timer of its own: it costs nothing
//! while it waits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::client::RelayAnswer;
use super::wire::{Bind, Frame, Token};
use crate::api::RelayRefusal;
use crate::id::NodeId;
use crate::rng::Rng;

/// A relay probe unanswered this long is given up (a directory address
/// then counts as no relay).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Who asked for a relay probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeBy {
    /// [`Command::ProbeRelays`](crate::api::Command::ProbeRelays).
    User,
    /// The Mainline relay directory listed the address: nobody vouches for
    /// it, so it is used only once it binds.
    Directory,
}

/// One probe waiting for its answer.
#[derive(Clone, Copy, Debug)]
struct Probe {
    by: ProbeBy,
    /// The bind, with the relay's cookie once it challenged us.
    bind: Bind,
    /// When the first bind went out.
    sent_at: Instant,
}

/// What an answer to a probe calls for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeStep {
    /// Send this frame to the relay (the bind again, with its cookie), or
    /// nothing (a repeated challenge), and keep waiting.
    Again(Option<Vec<u8>>),
    /// A refusal without our cookie: not an answer to our bind.
    Unsolicited,
    /// The probe is over: who asked, whether it relays for us (its rate in
    /// KiB/s) and a release frame to send when it bound.
    Done {
        /// Who asked.
        by: ProbeBy,
        /// Bound (the per-pair rate in KiB/s) or why not.
        result: Result<u16, RelayRefusal>,
        /// The release of the probe's binding, to send to the relay.
        release: Option<Vec<u8>>,
    },
}

/// Our probes waiting for answers, by relay and token.
#[derive(Debug, Default)]
pub struct RelayProbes {
    waiting: BTreeMap<(SocketAddr, Token), Probe>,
}

impl RelayProbes {
    /// Starts a probe of `relay` for `by`: the bind frame to send it.
    /// Random IDs and token: a probe tells the relay nothing about us.
    pub fn start(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        by: ProbeBy,
        rng: &mut Rng,
    ) -> Vec<u8> {
        let token = rng.bytes();
        let (one, other) = (NodeId(rng.bytes()), NodeId(rng.bytes()));
        let bind = Bind {
            token,
            session: u64::from_be_bytes(rng.bytes()),
            low: one.min(other),
            high: one.max(other),
            cookie: None,
        };
        self.waiting.insert(
            (relay, token),
            Probe {
                by,
                bind,
                sent_at: now,
            },
        );
        Frame::Bind(bind).encode()
    }

    /// Gives up the probes sent [`PROBE_TIMEOUT`] or longer ago: each
    /// relay and who asked.
    pub fn expire(&mut self, now: Instant) -> Vec<(SocketAddr, ProbeBy)> {
        let mut expired = Vec::new();
        self.waiting.retain(|(relay, _), probe| {
            let keep = now < probe.sent_at + PROBE_TIMEOUT;
            if !keep {
                expired.push((*relay, probe.by));
            }
            keep
        });
        expired
    }

    /// `answer` (with the bound rate, `rate_kib`) from `source` for
    /// `token`: what to do, or `None` when it answers no probe of ours.
    pub fn on_answer(
        &mut self,
        source: SocketAddr,
        token: Token,
        answer: RelayAnswer,
        rate_kib: u16,
    ) -> Option<ProbeStep> {
        let probe = self.waiting.get_mut(&(source, token))?;
        let (result, release) = match answer {
            RelayAnswer::Challenge(cookie) => {
                // One bind with each fresh cookie; a repeated challenge
                // changes nothing.
                if probe.bind.cookie == Some(cookie) {
                    return Some(ProbeStep::Again(None));
                }
                probe.bind.cookie = Some(cookie);
                return Some(ProbeStep::Again(Some(Frame::Bind(probe.bind).encode())));
            }
            RelayAnswer::Refused { cookie, reason } if probe.bind.cookie == Some(cookie) => {
                (Err(reason), None)
            }
            RelayAnswer::Refused { .. } => return Some(ProbeStep::Unsolicited),
            RelayAnswer::Bound { channel, .. } => (
                Ok(rate_kib),
                Some(Frame::Release { token, channel }.encode()),
            ),
        };
        let by = probe.by;
        self.waiting.remove(&(source, token));
        Some(ProbeStep::Done {
            by,
            result,
            release,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of(bind_frame: &[u8]) -> Token {
        match Frame::decode(bind_frame) {
            Ok(Frame::Bind(bind)) => bind.token,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_probe_binds_again_with_the_cookie_then_releases_what_it_bound() {
        let now = Instant::now();
        let relay: SocketAddr = "198.51.100.9:3478".parse().unwrap();
        let mut rng = Rng::from_seed([3; 32]);
        let mut probes = RelayProbes::default();
        let token = token_of(&probes.start(now, relay, ProbeBy::User, &mut rng));
        let other: SocketAddr = "198.51.100.10:3478".parse().unwrap();
        let challenge = RelayAnswer::Challenge([5; 16]);
        assert_eq!(
            probes.on_answer(other, token, challenge, 0),
            None,
            "not asked"
        );
        let Some(ProbeStep::Again(Some(again))) = probes.on_answer(relay, token, challenge, 0)
        else {
            panic!("binds again")
        };
        assert!(matches!(Frame::decode(&again), Ok(Frame::Bind(b)) if b.cookie == Some([5; 16])));
        assert_eq!(
            probes.on_answer(relay, token, challenge, 0),
            Some(ProbeStep::Again(None))
        );
        let forged = RelayAnswer::Refused {
            cookie: [6; 16],
            reason: RelayRefusal::Full,
        };
        assert_eq!(
            probes.on_answer(relay, token, forged, 0),
            Some(ProbeStep::Unsolicited)
        );
        let bound = RelayAnswer::Bound {
            channel: 9,
            lifetime_s: 600,
        };
        let Some(ProbeStep::Done {
            by: ProbeBy::User,
            result: Ok(256),
            release: Some(release),
        }) = probes.on_answer(relay, token, bound, 256)
        else {
            panic!("done")
        };
        assert!(matches!(
            Frame::decode(&release),
            Ok(Frame::Release { channel: 9, .. })
        ));
        assert_eq!(probes.on_answer(relay, token, bound, 256), None, "over");
    }

    #[test]
    fn unanswered_probes_are_given_up_after_the_timeout() {
        let now = Instant::now();
        let relay: SocketAddr = "198.51.100.9:3478".parse().unwrap();
        let mut rng = Rng::from_seed([4; 32]);
        let mut probes = RelayProbes::default();
        probes.start(now, relay, ProbeBy::Directory, &mut rng);
        assert!(probes.expire(now + PROBE_TIMEOUT / 2).is_empty());
        assert_eq!(
            probes.expire(now + PROBE_TIMEOUT),
            [(relay, ProbeBy::Directory)]
        );
        assert!(probes.expire(now + 2 * PROBE_TIMEOUT).is_empty());
    }
}
