//! Replayed hellos cannot steer a member's signals (`protocol-spec.md`
//! §6.2, §9.6), sans-IO. Member A learns member B from B's hello, sent
//! from the address B's signed record lists; the same hello replayed from
//! four addresses of an attacker's (on the code before issue 26, enough to
//! push B's real path out) leaves A's offers going to B alone. A hello
//! captured where it was sent (a planted address) and replayed to A is
//! refused. And a member whose record does not list the address it sends
//! from proves it by echoing A's nonce, which confirms that path.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tinynode::wire::DHT_FRAME_TAG;
use tinynode::wire::hello::{self, Hello, HelloKind, HelloNonce};
use tinynode::wire::record::{self, NetworkFacts};
use tinynode::{
    Command, DropReason, Identity, Input, Meeting, Node, NodeConfig, Output, SignalPath, WallClock,
};

const UNIX_MS: u64 = 1_800_000_000_000;
const CODE: &str = "hello-replay-able-acid-acorn-actor-adapt";

/// Identities for A and B, A's node ID the lower (A offers).
fn pair() -> (Identity, Identity) {
    let (x, y) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
    if x.node_id() < y.node_id() {
        (x, y)
    } else {
        (y, x)
    }
}

fn a_addr() -> SocketAddr {
    "10.0.0.1:4000".parse().unwrap()
}

/// Member A, joined.
fn member_a(now: Instant, identity: Identity) -> Node {
    let clock = WallClock {
        at: now,
        unix_ms: UNIX_MS,
    };
    let config = NodeConfig::new(a_addr(), identity, clock);
    let mut a = Node::new(now, config, [7; 32]);
    a.handle_input(
        now,
        Input::Command(Command::Join(Meeting::derive(CODE).unwrap())),
    );
    let _ = a.drain().count();
    a
}

/// A hello of B's, listing `listed`, of `kind`, sent to `to`.
fn hello_of_b(
    b: &Identity,
    listed: SocketAddr,
    kind: HelloKind,
    to: SocketAddr,
    echo: HelloNonce,
) -> Vec<u8> {
    let meeting = Meeting::derive(CODE).unwrap();
    let sealed = record::seal(
        &meeting,
        b,
        &[listed],
        NetworkFacts::UNKNOWN,
        UNIX_MS,
        [3; 12],
    );
    let hello = Hello {
        kind,
        record: &sealed,
        to,
        nonce: [9; 8],
        echo,
    };
    hello::encode(&hello, |bytes| meeting.hello_mac(bytes))
}

/// Hands `data` from `from` to A; what A sends, as (destination, bytes).
fn hear(a: &mut Node, now: Instant, from: SocketAddr, data: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
    a.handle_input(
        now,
        Input::Receive {
            source: from,
            destination: a_addr(),
            data,
        },
    );
    a.drain()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some((t.destination, t.payload)),
            _ => None,
        })
        .collect()
}

fn signals(sent: &[(SocketAddr, Vec<u8>)]) -> Vec<SocketAddr> {
    sent.iter()
        .filter(|(_, p)| p.first() == Some(&DHT_FRAME_TAG))
        .map(|(d, _)| *d)
        .collect()
}

#[test]
fn a_hello_replayed_from_four_addresses_does_not_steer_the_offers() {
    let now = Instant::now();
    let (a_identity, b) = pair();
    let mut a = member_a(now, a_identity);
    let b_addr: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    let hello = hello_of_b(&b, b_addr, HelloKind::Hello, a_addr(), [0; 8]);
    let first = signals(&hear(&mut a, now, b_addr, &hello));
    assert!(!first.is_empty(), "A offers to B");
    assert!(first.iter().all(|d| *d == b_addr), "{first:?}");
    for i in 1..=4 {
        let replayer = SocketAddr::from(([10, 0, 66, i], 4000));
        let sent = signals(&hear(&mut a, now, replayer, &hello));
        assert!(sent.iter().all(|d| *d == b_addr), "{sent:?}");
    }
    let known = a.known_peers();
    assert_eq!(known[0].paths, [SignalPath::Direct(b_addr)], "{known:?}");
    // The offer's repeats over the next seconds go to B only.
    let mut at = now;
    let mut repeats = Vec::new();
    while at < now + Duration::from_secs(8) {
        at += Duration::from_millis(250);
        a.handle_input(at, Input::Timeout);
        repeats.extend(signals(
            &a.drain()
                .filter_map(|o| match o {
                    Output::Transmit(t) => Some((t.destination, t.payload)),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ));
    }
    assert!(!repeats.is_empty(), "the offer is repeated");
    assert!(repeats.iter().all(|d| *d == b_addr), "{repeats:?}");
}

#[test]
fn a_hello_sent_to_someone_else_is_refused_here() {
    let now = Instant::now();
    let (a_identity, b) = pair();
    let mut a = member_a(now, a_identity);
    let b_addr: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    // B greeted a planted address; whoever sits there replays it to A.
    let planted: SocketAddr = "10.0.77.7:6881".parse().unwrap();
    let captured = hello_of_b(&b, b_addr, HelloKind::Hello, planted, [0; 8]);
    let sent = hear(&mut a, now, planted, &captured);
    assert!(sent.is_empty(), "no answer, no offer: {sent:?}");
    assert!(a.known_peers().is_empty());
    assert_eq!(a.stats().dropped(DropReason::HelloMisdirected), 1);
}

#[test]
fn an_unlisted_address_is_confirmed_by_echoing_our_nonce() {
    let now = Instant::now();
    let (a_identity, b) = pair();
    let mut a = member_a(now, a_identity);
    // B's record lists its home address; it sends from another (a NAT
    // that maps by destination).
    let home: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    let mapped: SocketAddr = "10.0.9.9:51000".parse().unwrap();
    let sent = hear(
        &mut a,
        now,
        mapped,
        &hello_of_b(&b, home, HelloKind::Hello, a_addr(), [0; 8]),
    );
    let known = a.known_peers();
    assert!(known[0].paths.is_empty() && known[0].tentative == [SignalPath::Direct(mapped)]);
    // A answered with a reply carrying its nonce.
    let reply = sent
        .iter()
        .find(|(d, p)| *d == mapped && hello::decode(p).is_ok_and(|h| h.kind == HelloKind::Reply))
        .map(|(_, p)| hello::decode(p).unwrap())
        .expect("a reply");
    assert_eq!(reply.echo, [9; 8], "it echoes B's nonce");
    // B acks, echoing A's nonce: the path is proven.
    let ack = hello_of_b(&b, home, HelloKind::Ack, a_addr(), reply.nonce);
    hear(&mut a, now, mapped, &ack);
    let known = a.known_peers();
    assert_eq!(known[0].paths, [SignalPath::Direct(mapped)], "{known:?}");
    // A wrong echo proves nothing.
    let elsewhere: SocketAddr = "10.0.9.10:51000".parse().unwrap();
    hear(
        &mut a,
        now,
        elsewhere,
        &hello_of_b(&b, home, HelloKind::Ack, a_addr(), [5; 8]),
    );
    assert_eq!(a.known_peers()[0].paths, [SignalPath::Direct(mapped)]);
}
