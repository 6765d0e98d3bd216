//! NAT classification on a node, sans-IO: three Mainline responders on
//! different IPs report the address they saw our queries come from; the
//! node reports its NAT class, and behind a mapping that varies by
//! destination it stops advertising the public address (its beacon's
//! record no longer carries it).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tinynode::wire::beacon;
use tinynode::wire::mainline::{Response, Value, bencode, encode_response};
use tinynode::wire::record;
use tinynode::{
    Command, Event, Identity, Input, Meeting, NatClass, Node, NodeConfig, Output, WallClock,
};

const LOCAL: &str = "10.0.0.1:4000";

fn responders() -> Vec<SocketAddr> {
    ["192.0.2.1:6881", "198.51.100.1:6881", "203.0.113.1:6881"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect()
}

/// Runs a joined node whose Mainline responder `i` reports us at
/// `report(i)`; returns its events and the addresses in its last beacon.
fn run(report: impl Fn(usize) -> SocketAddr) -> (Vec<Event>, Vec<SocketAddr>) {
    let now = Instant::now();
    let clock = WallClock {
        at: now,
        unix_ms: 1_800_000_000_000,
    };
    let mut config = NodeConfig::new(LOCAL.parse().unwrap(), Identity::from_seed([1; 32]), clock);
    config.mainline_bootstrap = Some(responders());
    config.lan = true;
    let mut node = Node::new(now, config, [1; 32]);
    let meeting = Meeting::derive("nat classes").unwrap();
    node.handle_input(now, Input::Command(Command::Join(meeting.clone())));
    node.handle_input(now, Input::Timeout);
    let (mut events, mut beacon_addrs) = (Vec::new(), Vec::new());
    let mut t = now;
    while t < now + Duration::from_secs(3) {
        loop {
            let outputs: Vec<Output> = node.drain().collect();
            let mut replies = Vec::new();
            for output in outputs {
                match output {
                    Output::Event(event) => events.push(event),
                    Output::Transmit(tx) if tx.destination == SocketAddr::V4(beacon::LAN_GROUP) => {
                        let heard = beacon::decode(&tx.payload).unwrap();
                        beacon_addrs = record::open(&meeting, heard.record).unwrap().addrs;
                    }
                    Output::Transmit(tx) => {
                        if let Some(i) = responders().iter().position(|r| *r == tx.destination) {
                            let query = bencode::decode(&tx.payload).unwrap().value;
                            let txid = query.get(b"t").and_then(Value::as_bytes).unwrap();
                            let body = Response {
                                id: [i as u8 + 1; 20],
                                ip: Some(report(i)),
                                ..Response::default()
                            };
                            replies.push((tx.destination, encode_response(txid, &body)));
                        }
                    }
                    _ => {}
                }
            }
            if replies.is_empty() {
                break;
            }
            for (source, data) in replies {
                node.handle_input(
                    t,
                    Input::Receive {
                        source,
                        destination: LOCAL.parse().unwrap(),
                        data: &data,
                    },
                );
            }
        }
        t += Duration::from_millis(100);
        node.handle_input(t, Input::Timeout);
    }
    (events, beacon_addrs)
}

fn nat_events(events: &[Event]) -> Vec<NatClass> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Nat { class, .. } => Some(*class),
            _ => None,
        })
        .collect()
}

#[test]
fn one_mapping_for_every_responder_is_endpoint_independent_and_advertised() {
    let public: SocketAddr = "198.18.0.11:4000".parse().unwrap();
    let (events, addrs) = run(|_| public);
    assert_eq!(nat_events(&events), [NatClass::EndpointIndependent]);
    assert!(addrs.contains(&public), "{addrs:?}");
}

#[test]
fn a_port_per_responder_is_endpoint_dependent_and_not_advertised() {
    let ports = [51_812, 1_025, 33_760];
    let (events, addrs) = run(|i| SocketAddr::from(([198, 18, 0, 12], ports[i])));
    assert_eq!(
        nat_events(&events),
        [NatClass::EndpointDependent { sequential: false }]
    );
    assert!(
        addrs
            .iter()
            .all(|a| a.ip() != "198.18.0.12".parse::<std::net::IpAddr>().unwrap()),
        "the public address is valid towards one responder only: {addrs:?}"
    );
    assert!(
        addrs.contains(&LOCAL.parse().unwrap()),
        "the host address stays"
    );
}
