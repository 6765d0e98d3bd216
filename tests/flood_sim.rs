//! A flood of spoofed DHT pings, each from a fresh /24 so that no per-source
//! or per-prefix rate limit applies, cannot starve a node's own DHT work
//! (`protocol-spec.md` §7.2): the pings it sends to verify strangers are
//! budgeted and leave most of its request table to its own lookups,
//! announces and signals, and a request it never sent is never held
//! against a routing entry.

mod sim;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use sim::Sim;
use tinynode::wire::dht::Request;
use tinynode::{Command, Meeting, NodeId};

/// Floods each of `targets` with `per_second` pings for `duration`, each
/// from a fresh /24 (`next` numbers them) with a fresh sender ID; runs the
/// simulation meanwhile (a batch every 10 ms, so the flood is as even as a
/// real one), calling `until` every 100 ms and stopping early when it says
/// so. True if it did.
fn flood(
    sim: &mut Sim,
    targets: &[SocketAddr],
    per_second: usize,
    duration: Duration,
    next: &mut u32,
    mut until: impl FnMut(&Sim) -> bool,
) -> bool {
    let tick = Duration::from_millis(10);
    let per_tick = per_second / 100;
    let start = sim.now;
    let mut ticks = 0u32;
    while sim.now - start < duration {
        for &target in targets {
            for _ in 0..per_tick {
                *next += 1;
                let n = *next;
                let ip = Ipv4Addr::new(11 + (n >> 16) as u8, (n >> 8) as u8, n as u8, 7);
                let source = SocketAddr::new(IpAddr::V4(ip), 6881);
                let sender = NodeId(sim.rng.bytes32());
                let ping = sim::request_frame(
                    sim.rng.bytes32()[..8].try_into().unwrap(),
                    sender,
                    Request::Ping,
                    0,
                );
                sim.inject(source, target, ping);
            }
        }
        sim.run_for(tick);
        ticks += 1;
        if ticks.is_multiple_of(10) && until(sim) {
            return true;
        }
    }
    false
}

#[test]
fn a_spoofed_ping_flood_leaves_the_routing_table_and_the_meeting_intact() {
    let mut sim = Sim::new(0xf100_d001);
    // A serve node with a routing table of twelve other nodes.
    let serve = sim.add_host(None, &[]);
    let serve_addr = sim.addr(serve);
    let others: Vec<usize> = (0..12).map(|_| sim.add_host(None, &[serve_addr])).collect();
    sim.run_for(Duration::from_secs(5));
    let routing_before = sim.hosts[serve].node.sizes().routing;
    assert!(routing_before >= others.len(), "{routing_before}");

    let a = sim.add_host(None, &[serve_addr]);
    let b = sim.add_host(None, &[serve_addr]);
    sim.run_for(Duration::from_secs(2));
    // The member with the lower ID offers: flood it and the serve node.
    let offerer = if sim.id(a) < sim.id(b) { a } else { b };
    let answerer = a + b - offerer;
    let mut next = 0;
    let targets = [serve_addr, sim.addr(offerer)];
    // The flood is under way before the members join.
    flood(
        &mut sim,
        &targets,
        600,
        Duration::from_secs(5),
        &mut next,
        |_| false,
    );
    let meeting = Meeting::derive("flooded but fine").unwrap();
    sim.command(a, Command::Join(meeting.clone()));
    sim.command(b, Command::Join(meeting));
    let answerer_id = sim.id(answerer);
    let connected = flood(
        &mut sim,
        &targets,
        600,
        Duration::from_secs(30),
        &mut next,
        |sim| sim.open_connections(offerer).contains(&answerer_id),
    );
    assert!(
        connected,
        "the pair did not connect under the flood (seed {})",
        sim.seed
    );

    // Keep flooding a while longer: the serve node keeps its entries.
    flood(
        &mut sim,
        &[serve_addr],
        600,
        Duration::from_secs(20),
        &mut next,
        |_| false,
    );
    let sizes = sim.hosts[serve].node.sizes();
    assert!(
        sizes.routing >= routing_before,
        "routing table shrank from {routing_before} to {} under the flood",
        sizes.routing
    );
    assert!(
        sizes.pending_requests <= tinynode::tuning::REMOTE_TRIGGERED_ROOM + 16,
        "{} requests in flight",
        sizes.pending_requests
    );
    assert!(sizes.within_limits(), "{sizes:?}");
}
