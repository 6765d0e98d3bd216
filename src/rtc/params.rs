//! str0m's direct-API session parameters to and from the signaled
//! [`SessionParams`]: ICE credentials, the DTLS fingerprint, candidates.

use std::net::SocketAddr;

use log::debug;
use str0m::crypto::Fingerprint;
use str0m::{Candidate, IceCreds, Rtc};

use crate::codec::{Blob, BoundedList, WireAddr};
use crate::signal::{MAX_CANDIDATES, MAX_TEXT, SessionParams};

/// Why the peer's parameters could not be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamsError {
    /// A credential or the hash name is not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for ParamsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotUtf8 => "ICE credentials or fingerprint hash not UTF-8",
        })
    }
}

/// Our ICE credentials, DTLS fingerprint and candidates.
pub(super) fn local_params(rtc: &mut Rtc, candidates: &[SocketAddr]) -> SessionParams {
    let api = rtc.direct_api();
    let creds = api.local_ice_credentials();
    let fingerprint = api.local_dtls_fingerprint().clone();
    let candidates = candidates
        .iter()
        .map(|a| WireAddr::from(*a))
        .take(MAX_CANDIDATES)
        .collect();
    SessionParams {
        ice_ufrag: Blob(creds.ufrag.into_bytes()),
        ice_pwd: Blob(creds.pass.into_bytes()),
        fingerprint_hash: Blob(fingerprint.hash_func.into_bytes()),
        fingerprint: Blob(fingerprint.bytes),
        candidates: BoundedList(candidates),
        relays: BoundedList(Vec::new()),
    }
}

/// Applies the peer's credentials, fingerprint and candidates.
pub(super) fn apply_remote(rtc: &mut Rtc, params: &SessionParams) -> Result<(), ParamsError> {
    let text =
        |blob: &Blob<MAX_TEXT>| String::from_utf8(blob.0.clone()).map_err(|_| ParamsError::NotUtf8);
    let creds = IceCreds {
        ufrag: text(&params.ice_ufrag)?,
        pass: text(&params.ice_pwd)?,
    };
    let fingerprint = Fingerprint {
        hash_func: text(&params.fingerprint_hash)?,
        bytes: params.fingerprint.0.clone(),
    };
    let mut api = rtc.direct_api();
    api.set_remote_ice_credentials(creds);
    api.set_remote_fingerprint(fingerprint);
    for addr in params.candidate_addrs() {
        match Candidate::host(addr, "udp") {
            Ok(candidate) => rtc.add_remote_candidate(candidate),
            Err(_) => debug!("webrtc: skipping unusable remote candidate {addr}"),
        }
    }
    Ok(())
}
