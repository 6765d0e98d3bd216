//! Server names from the command line (`HOST[:PORT]`) and their resolution.
//!
//! IP literals need no lookup. Host names go to the system resolver, which
//! blocks, so each name is looked up on a short-lived thread and the caller
//! waits at most a given time for all of them together, before the event loop
//! starts. A name that has not resolved by then is reported as timed out; its
//! thread is abandoned and ends with the resolver call.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A server as the user wrote it: a host name or IP literal and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// UDP port.
    pub port: u16,
}

/// Why a `HOST[:PORT]` argument was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPortError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for HostPortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid server {:?}: {}", self.text, self.reason)
    }
}

impl std::error::Error for HostPortError {}

impl HostPort {
    /// Parses `HOST`, `HOST:PORT`, `IPV4`, `IPV4:PORT`, `IPV6`, `[IPV6]` or
    /// `[IPV6]:PORT`; `default_port` fills a missing port.
    pub fn parse(text: &str, default_port: u16) -> Result<Self, HostPortError> {
        let fail = |reason| HostPortError {
            text: text.to_owned(),
            reason,
        };
        let parse_port = |port: &str| {
            port.parse::<u16>()
                .map_err(|_| fail("port is not a number in 0..=65535"))
        };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or(fail("missing ']'"))?;
            host.parse::<std::net::Ipv6Addr>()
                .map_err(|_| fail("not an IPv6 address inside [ ]"))?;
            let port = match after {
                "" => default_port,
                _ => parse_port(
                    after
                        .strip_prefix(':')
                        .ok_or(fail("expected ':' after ']'"))?,
                )?,
            };
            (host, port)
        } else if text.parse::<IpAddr>().is_ok() {
            (text, default_port)
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) => (host, parse_port(port)?),
                None => (text, default_port),
            }
        };
        if host.is_empty() {
            return Err(fail("empty host"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a name gave no address.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// The resolver answered with an error.
    Failed(String),
    /// The resolver answered with no addresses.
    NoAddresses,
    /// No answer within the time allowed.
    TimedOut(Duration),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(error) => write!(f, "could not resolve: {error}"),
            Self::NoAddresses => f.write_str("name has no addresses"),
            Self::TimedOut(limit) => write!(f, "no DNS answer within {:.1} s", limit.as_secs_f64()),
        }
    }
}

impl std::error::Error for ResolveError {}

/// Resolves every name, waiting at most `limit` in all; results are in input
/// order, each with all the name's addresses.
pub fn resolve_all(
    names: &[HostPort],
    limit: Duration,
) -> Vec<Result<Vec<SocketAddr>, ResolveError>> {
    let mut results: Vec<Option<Result<Vec<SocketAddr>, ResolveError>>> = names
        .iter()
        .map(|name| {
            name.host
                .parse::<IpAddr>()
                .ok()
                .map(|ip| Ok(vec![SocketAddr::new(ip, name.port)]))
        })
        .collect();
    let (sender, receiver) = mpsc::channel();
    let mut outstanding = 0;
    let to_look_up: Vec<usize> = (0..names.len()).filter(|&i| results[i].is_none()).collect();
    for index in to_look_up {
        let sender = sender.clone();
        let name = names[index].clone();
        let spawned = thread::Builder::new()
            .name("resolve".into())
            .spawn(move || {
                let result = (name.host.as_str(), name.port)
                    .to_socket_addrs()
                    .map(|addrs| addrs.collect::<Vec<_>>())
                    .map_err(|error| ResolveError::Failed(error.to_string()))
                    .and_then(|addrs| {
                        if addrs.is_empty() {
                            Err(ResolveError::NoAddresses)
                        } else {
                            Ok(addrs)
                        }
                    });
                // The receiver may be gone after a timeout; nothing to do then.
                let _ = sender.send((index, result));
            });
        match spawned {
            Ok(_) => outstanding += 1,
            Err(error) => results[index] = Some(Err(ResolveError::Failed(error.to_string()))),
        }
    }
    let deadline = Instant::now() + limit;
    while outstanding > 0 {
        let Ok((index, result)) =
            receiver.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        else {
            break;
        };
        results[index] = Some(result);
        outstanding -= 1;
    }
    results
        .into_iter()
        .map(|result| result.unwrap_or(Err(ResolveError::TimedOut(limit))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(
            HostPort::parse("192.0.2.1", 3478).unwrap(),
            hp("192.0.2.1", 3478)
        );
        assert_eq!(
            HostPort::parse("192.0.2.1:19302", 3478).unwrap(),
            hp("192.0.2.1", 19302)
        );
        assert_eq!(HostPort::parse("::1", 3478).unwrap(), hp("::1", 3478));
        assert_eq!(HostPort::parse("[::1]", 3478).unwrap(), hp("::1", 3478));
        assert_eq!(HostPort::parse("[::1]:5", 3478).unwrap(), hp("::1", 5));
        assert_eq!(
            HostPort::parse("stun.example", 3478).unwrap(),
            hp("stun.example", 3478)
        );
        assert_eq!(
            HostPort::parse("stun.example:1", 3478).unwrap(),
            hp("stun.example", 1)
        );
        assert_eq!(hp("::1", 5).to_string(), "[::1]:5");
    }

    #[test]
    fn rejects_bad_forms() {
        for text in [
            "",
            ":5",
            "host:",
            "host:99999",
            "[::1",
            "[::1]5",
            "[nope]:1",
        ] {
            assert!(HostPort::parse(text, 3478).is_err(), "{text}");
        }
    }

    #[test]
    fn literals_and_localhost_resolve() {
        let results = resolve_all(
            &[hp("127.0.0.1", 7), hp("localhost", 8)],
            Duration::from_secs(5),
        );
        assert_eq!(results[0], Ok(vec![SocketAddr::from(([127, 0, 0, 1], 7))]));
        let local = results[1].as_ref().expect("localhost resolves");
        assert!(
            local
                .iter()
                .all(|addr| addr.ip().is_loopback() && addr.port() == 8)
        );
    }
}
