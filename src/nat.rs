//! NAT classification from observers (`protocol-spec.md` §11): what kind
//! of mapping our NAT makes, judged from the addresses that DHT and
//! Mainline responders on different IPs report they saw our requests come
//! from (RFC 4787's vocabulary, RFC 5780's distinctions without a
//! CHANGE-REQUEST server).
//!
//! A [`NatSampler`] keeps the first [`MAX_SAMPLES`] reports from distinct
//! responders; [`NatSampler::class`] decides once there are at least
//! [`MIN_SAMPLES`] from at least two responder IPs:
//!
//! - [`NatClass::Open`]: every report is the socket's own address (no NAT);
//! - [`NatClass::EndpointIndependent`]: one public address for every
//!   responder: members can punch through with it;
//! - [`NatClass::EndpointDependent`]: the port differs between responders
//!   ("symmetric"); `sequential` when the ports grow by a small constant
//!   in the order we contacted the responders, random otherwise. The
//!   public address one responder saw is valid only towards it;
//! - [`NatClass::MultipleIps`]: the public IP differs between responders (a
//!   carrier-grade NAT without paired pooling): as endpoint-dependent;
//! - [`NatClass::Unknown`]: not enough reports yet.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Reports kept.
pub const MAX_SAMPLES: usize = 8;
/// Reports needed before a class is decided.
pub const MIN_SAMPLES: usize = 3;
/// Largest step between consecutive ports still called sequential.
pub const SEQUENTIAL_STEP: u16 = 16;

/// The mapping behaviour of our NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatClass {
    /// Not enough reports from different responder IPs yet.
    Unknown,
    /// No NAT: responders see the socket's own address.
    Open,
    /// One public address towards every destination.
    EndpointIndependent,
    /// A new public port per destination.
    EndpointDependent {
        /// Ports grow by a small constant in contact order.
        sequential: bool,
    },
    /// Different public IPs towards different destinations.
    MultipleIps,
}

impl NatClass {
    /// The name used in logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Open => "open",
            Self::EndpointIndependent => "endpoint-independent",
            Self::EndpointDependent { sequential: true } => "endpoint-dependent-sequential",
            Self::EndpointDependent { sequential: false } => "endpoint-dependent-random",
            Self::MultipleIps => "multiple-ips",
        }
    }

    /// The byte a record carries for the class (`protocol-spec.md` §4.3).
    pub fn code(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Open => 1,
            Self::EndpointIndependent => 2,
            Self::EndpointDependent { sequential: true } => 3,
            Self::EndpointDependent { sequential: false } => 4,
            Self::MultipleIps => 5,
        }
    }

    /// The class a record's byte names; codes this version does not know
    /// read as [`NatClass::Unknown`].
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Open,
            2 => Self::EndpointIndependent,
            3 => Self::EndpointDependent { sequential: true },
            4 => Self::EndpointDependent { sequential: false },
            5 => Self::MultipleIps,
            _ => Self::Unknown,
        }
    }

    /// True when a server-reflexive address is valid only towards the
    /// responder that reported it, so it is not worth advertising.
    pub fn mapping_varies(self) -> bool {
        matches!(self, Self::EndpointDependent { .. } | Self::MultipleIps)
    }

    /// True unless the mapping is known to be one a peer can punch
    /// through (open or endpoint-independent): then connection attempts
    /// propose relays from the first offer (`protocol-spec.md` §12.3).
    pub fn may_need_relay(self) -> bool {
        !matches!(self, Self::Open | Self::EndpointIndependent)
    }
}

impl fmt::Display for NatClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One report: who saw our request come from where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The responder.
    pub by: SocketAddr,
    /// Our address as it saw it.
    pub observed: SocketAddr,
}

/// The reports of one socket, in the order they arrived.
#[derive(Clone, Debug)]
pub struct NatSampler {
    local: SocketAddr,
    samples: Vec<Sample>,
}

impl NatSampler {
    /// A sampler for the socket at `local`.
    pub fn new(local: SocketAddr) -> Self {
        Self {
            local,
            samples: Vec::new(),
        }
    }

    /// Records that `by` saw us as `observed`; false when it adds nothing
    /// (a responder already sampled, or the sampler is full).
    pub fn observe(&mut self, by: SocketAddr, observed: SocketAddr) -> bool {
        if self.samples.len() >= MAX_SAMPLES || self.samples.iter().any(|s| s.by == by) {
            return false;
        }
        self.samples.push(Sample { by, observed });
        true
    }

    /// The reports so far.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The class the reports so far show.
    pub fn class(&self) -> NatClass {
        classify(self.local, &self.samples)
    }
}

/// Classifies `samples` of the socket at `local` (module docs).
pub fn classify(local: SocketAddr, samples: &[Sample]) -> NatClass {
    let responder_ips: BTreeSet<IpAddr> = samples.iter().map(|s| s.by.ip()).collect();
    if samples.len() < MIN_SAMPLES || responder_ips.len() < 2 {
        return NatClass::Unknown;
    }
    let observed: BTreeSet<SocketAddr> = samples.iter().map(|s| s.observed).collect();
    let public_ips: BTreeSet<IpAddr> = observed.iter().map(SocketAddr::ip).collect();
    if public_ips.len() > 1 {
        return NatClass::MultipleIps;
    }
    if observed.len() == 1 {
        let only = samples[0].observed;
        let same_socket =
            only.port() == local.port() && (only.ip() == local.ip() || local.ip().is_unspecified());
        return if same_socket {
            NatClass::Open
        } else {
            NatClass::EndpointIndependent
        };
    }
    let ports: Vec<u16> = samples.iter().map(|s| s.observed.port()).collect();
    let sequential = ports
        .windows(2)
        .all(|pair| pair[1] > pair[0] && pair[1] - pair[0] <= SEQUENTIAL_STEP);
    NatClass::EndpointDependent { sequential }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(local: &str, reports: &[(&str, &str)]) -> NatSampler {
        let mut sampler = NatSampler::new(local.parse().unwrap());
        for (by, observed) in reports {
            sampler.observe(by.parse().unwrap(), observed.parse().unwrap());
        }
        sampler
    }

    #[test]
    fn recorded_observation_sets_are_classified() {
        // No NAT: the lab's public side.
        let open = sampler(
            "198.18.0.5:4000",
            &[
                ("198.18.0.1:3478", "198.18.0.5:4000"),
                ("198.18.0.20:6881", "198.18.0.5:4000"),
                ("198.18.0.21:6881", "198.18.0.5:4000"),
            ],
        );
        assert_eq!(open.class(), NatClass::Open);
        // MASQUERADE: one mapping for everyone.
        let cone = sampler(
            "10.1.0.2:4000",
            &[
                ("198.18.0.1:3478", "198.18.0.11:4000"),
                ("198.18.0.20:6881", "198.18.0.11:4000"),
                ("198.18.0.21:6881", "198.18.0.11:4000"),
            ],
        );
        assert_eq!(cone.class(), NatClass::EndpointIndependent);
        assert!(!cone.class().mapping_varies());
        for code in 0..=6u8 {
            let class = NatClass::from_code(code);
            let back = if code <= 5 { code } else { 0 };
            assert_eq!(class.code(), back, "code {code}");
        }
        // MASQUERADE --random-fully.
        let random = sampler(
            "10.2.0.2:4000",
            &[
                ("198.18.0.1:3478", "198.18.0.12:51812"),
                ("198.18.0.20:6881", "198.18.0.12:1025"),
                ("198.18.0.21:6881", "198.18.0.12:33760"),
            ],
        );
        assert_eq!(
            random.class(),
            NatClass::EndpointDependent { sequential: false }
        );
        assert!(random.class().mapping_varies());
        // A NAT that hands out the next port.
        let sequential = sampler(
            "10.2.0.2:4000",
            &[
                ("198.18.0.1:3478", "198.18.0.12:40000"),
                ("198.18.0.20:6881", "198.18.0.12:40001"),
                ("198.18.0.21:6881", "198.18.0.12:40003"),
            ],
        );
        assert_eq!(
            sequential.class(),
            NatClass::EndpointDependent { sequential: true }
        );
        // A CGN without paired pooling.
        let pooled = sampler(
            "100.64.0.2:4000",
            &[
                ("198.18.0.1:3478", "198.18.0.30:4000"),
                ("198.18.0.20:6881", "198.18.0.31:4000"),
                ("198.18.0.21:6881", "198.18.0.30:4000"),
            ],
        );
        assert_eq!(pooled.class(), NatClass::MultipleIps);
    }

    #[test]
    fn too_few_reports_or_responder_ips_decide_nothing() {
        let two = sampler(
            "10.1.0.2:4000",
            &[
                ("198.18.0.1:3478", "198.18.0.11:4000"),
                ("198.18.0.20:6881", "198.18.0.11:4000"),
            ],
        );
        assert_eq!(two.class(), NatClass::Unknown);
        let one_ip = sampler(
            "10.1.0.2:4000",
            &[
                ("198.18.0.1:3478", "198.18.0.11:4000"),
                ("198.18.0.1:3479", "198.18.0.11:4000"),
                ("198.18.0.1:3480", "198.18.0.11:4000"),
            ],
        );
        assert_eq!(one_ip.class(), NatClass::Unknown);
    }

    #[test]
    fn samples_are_bounded_and_one_per_responder() {
        let mut sampler = NatSampler::new("10.1.0.2:4000".parse().unwrap());
        let by: SocketAddr = "198.18.0.1:3478".parse().unwrap();
        let seen: SocketAddr = "198.18.0.11:4000".parse().unwrap();
        assert!(sampler.observe(by, seen));
        assert!(!sampler.observe(by, seen), "one sample per responder");
        for i in 0..20u8 {
            sampler.observe(SocketAddr::from(([198, 18, 1, i], 6881)), seen);
        }
        assert_eq!(sampler.samples().len(), MAX_SAMPLES);
    }
}
