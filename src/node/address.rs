//! Our public address as others report it: from STUN servers (trusted at
//! once: the user named them) or from DHT responders' `observed` field
//! (a change needs two different responders to agree).

use std::net::SocketAddr;

/// Tracks the public address peers report, switching to a new one only when
/// two different peers agree on it.
#[derive(Default)]
pub(super) struct ObservedAddress {
    pub(super) current: Option<SocketAddr>,
    candidate: Option<(SocketAddr, SocketAddr)>,
}

impl ObservedAddress {
    /// Returns the address to report if it changed.
    pub(super) fn observe(&mut self, addr: SocketAddr, by: SocketAddr) -> Option<SocketAddr> {
        match self.current {
            None => {
                self.current = Some(addr);
                Some(addr)
            }
            Some(current) if current == addr => {
                self.candidate = None;
                None
            }
            Some(_) => match self.candidate {
                Some((candidate, first_by)) if candidate == addr && first_by != by => {
                    self.current = Some(addr);
                    self.candidate = None;
                    Some(addr)
                }
                _ => {
                    self.candidate = Some((addr, by));
                    None
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_change_needs_two_different_responders() {
        let mut observed = ObservedAddress::default();
        let (a, b) = (addr("203.0.113.1:4000"), addr("203.0.113.2:4000"));
        let (x, y) = (addr("192.0.2.1:1"), addr("192.0.2.2:1"));
        assert_eq!(observed.observe(a, x), Some(a));
        assert_eq!(observed.observe(b, x), None);
        assert_eq!(observed.observe(b, x), None, "the same responder twice");
        assert_eq!(observed.observe(b, y), Some(b));
        assert_eq!(observed.current, Some(b));
        assert_eq!(observed.observe(b, x), None, "no change");
    }
}
