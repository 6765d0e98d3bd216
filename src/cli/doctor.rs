//! `tinynode doctor`: what this network allows, in plain words, within
//! [`DOCTOR_LIMIT`].
//!
//! It runs a node that joins no meeting and relays for nobody, and reads
//! what its sources say: which bootstrap nodes answer and how fast, the
//! public address and how many observers saw it, the NAT's mapping class
//! (§11), whether the NAT hairpins (a STUN Binding request to our own
//! public address, answered by our own STUN server if it comes back), and
//! which bootstrap nodes relay for us (a bind probe, §12). Exit status: 0
//! when direct connections are likely, 1 when some peers will need a
//! relay, 2 when no bootstrap source answered (no UDP, or nothing to ask).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tinynode::driver::{CommandSender, Flow, Handler};
use tinynode::{
    AddressSource, Command as NodeCommand, Event, Identity, NatClass, Node, ReachResult,
    RelayRefusal, RelayRole, RetransmitConfig,
};

use super::args::DoctorOptions;
use super::json::JsonLine;
use super::printer::Printer;
use super::{Sources, finish, mainline, resolve_for, start_configured, usable_binds};

/// The longest a diagnosis takes.
pub const DOCTOR_LIMIT: Duration = Duration::from_secs(10);
/// How long to wait for more observers once a source has answered.
const SETTLE: Duration = Duration::from_secs(2);
/// How long a forwarded reachability probe may take to arrive.
const REACH_WAIT: Duration = Duration::from_millis(1500);
/// Exit status when no bootstrap source answered.
pub const EXIT_NO_UDP: i32 = 2;
/// Exit status when some peers will need a relay.
pub const EXIT_RELAY_NEEDED: i32 = 1;

/// What the diagnosis found so far.
#[derive(Debug, Default)]
struct Findings {
    dht_answered: Option<Duration>,
    dht_failed: bool,
    mainline_answered: Option<(Duration, usize)>,
    mainline_failed: bool,
    public: Option<(SocketAddr, String)>,
    nat: Option<(NatClass, usize)>,
    /// `Some(true)` hairpins, `Some(false)` does not, `None` untested.
    hairpin: Option<bool>,
    hairpin_sent: bool,
    relays: Vec<(SocketAddr, Result<u16, RelayRefusal>)>,
    filtering: Option<Filtering>,
    /// Whether the Mainline DHT was asked at all.
    mainline_on: bool,
}

/// What the reachability probe (§5.8) found.
#[derive(Clone, Copy, Debug)]
enum Filtering {
    /// A third node's datagram got in unasked, from this address.
    Open(SocketAddr),
    /// Forwarded, and nothing arrived.
    Closed,
    /// It arrived from an address we had sent to: proves nothing.
    Inconclusive(SocketAddr),
    /// The bootstrap nodes asked nobody (they know no third node, are
    /// too old, or did not answer).
    NotTested,
}

struct Doctor {
    started: Instant,
    /// The DHT bootstrap, held back until the reachability probe is over:
    /// a probe from a node we have already sent to would get in anyway.
    bootstrap: Vec<SocketAddr>,
    bootstrap_sent: Option<Instant>,
    commands: CommandSender,
    probed: Vec<SocketAddr>,
    findings: Findings,
    settled_at: Option<Instant>,
}

impl Doctor {
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// True once every question has an answer or cannot get one now.
    fn done(&self) -> bool {
        let f = &self.findings;
        let dht_done = self.probed.is_empty() || f.dht_answered.is_some() || f.dht_failed;
        let mainline_done = !f.mainline_on || f.mainline_answered.is_some() || f.mainline_failed;
        let relays_done = f.relays.len() >= self.probed.len();
        let nat_done = f.nat.is_some_and(|(class, _)| class != NatClass::Unknown)
            || self.settled_at.is_some_and(|at| at.elapsed() >= SETTLE);
        let hairpin_done = f.hairpin.is_some() || (f.public.is_none() && self.settled_at.is_some());
        let filtering_done = self.probed.is_empty() || f.filtering.is_some();
        dht_done && mainline_done && relays_done && nat_done && hairpin_done && filtering_done
    }

    /// The reachability probe is over: join the DHT now.
    fn start_bootstrap(&mut self) {
        if self.bootstrap_sent.is_none() && !self.bootstrap.is_empty() {
            self.bootstrap_sent = Some(Instant::now());
            self.commands
                .send(NodeCommand::Bootstrap(self.bootstrap.clone()));
        }
    }

    /// Time since the DHT bootstrap began.
    fn since_bootstrap(&self) -> Duration {
        self.bootstrap_sent
            .map_or(Duration::ZERO, |at| at.elapsed())
    }
}

impl Handler for Doctor {
    fn on_event(&mut self, event: &Event) -> Flow {
        let at = self.elapsed();
        let since_bootstrap = self.since_bootstrap();
        let f = &mut self.findings;
        match event {
            Event::ReachProbed { result, .. } => {
                let found = match result {
                    ReachResult::Reached(from) => Filtering::Open(*from),
                    ReachResult::Inconclusive(from) => Filtering::Inconclusive(*from),
                    _ => Filtering::NotTested,
                };
                // One probe reached us: that settles it.
                if !matches!(f.filtering, Some(Filtering::Open(_))) {
                    f.filtering = Some(found);
                }
                self.start_bootstrap();
            }
            Event::Bootstrapped { .. } => {
                f.dht_answered.get_or_insert(since_bootstrap);
                self.commands.send(NodeCommand::SampleNat);
            }
            Event::BootstrapFailed { .. } => f.dht_failed = true,
            Event::MainlineBootstrapped { nodes } => {
                f.mainline_answered.get_or_insert((at, *nodes));
                self.commands.send(NodeCommand::SampleNat);
            }
            Event::MainlineBootstrapFailed { .. } => f.mainline_failed = true,
            Event::PublicAddress { address, via } => {
                match via {
                    AddressSource::Stun { .. } if f.hairpin_sent => f.hairpin = Some(true),
                    _ if f.public.is_none() => f.public = Some((*address, via.name().to_owned())),
                    _ => {}
                }
                // The first DHT answer carries the first report.
                if matches!(via, AddressSource::Dht { .. }) {
                    f.dht_answered.get_or_insert(since_bootstrap);
                }
            }
            Event::PublicAddressFailed { .. } if f.hairpin_sent => f.hairpin = Some(false),
            Event::Nat { class, samples, .. } => f.nat = Some((*class, *samples)),
            Event::RelayProbed { relay, result } if !f.relays.iter().any(|(r, _)| r == relay) => {
                f.relays.push((*relay, *result));
            }
            _ => {}
        }
        Flow::Continue
    }

    fn wake_at(&self) -> Option<Instant> {
        let limit = self.started + DOCTOR_LIMIT;
        let settle = self.settled_at.map_or(limit, |at| (at + SETTLE).min(limit));
        let reach = (self.findings.filtering.is_none()).then_some(self.started + REACH_WAIT);
        [Some(settle), reach].into_iter().flatten().min()
    }

    fn on_wake(&mut self, node: &Node) -> Flow {
        if self.findings.filtering.is_none() && self.elapsed() >= REACH_WAIT {
            self.findings.filtering = Some(Filtering::Closed);
            self.start_bootstrap();
        }
        let f = &self.findings;
        if self.settled_at.is_none()
            && (f.dht_answered.is_some() || f.mainline_answered.is_some() || f.dht_failed)
        {
            self.settled_at = Some(Instant::now());
        }
        if let Some((public, _)) = self.findings.public
            && !self.findings.hairpin_sent
            && public != node.local_addr()
        {
            self.findings.hairpin_sent = true;
            self.commands.send(NodeCommand::DiscoverPublicAddress {
                servers: vec![public],
            });
        }
        if let Some((public, _)) = self.findings.public
            && public == node.local_addr()
        {
            // No NAT between us and the observers: nothing to hairpin.
            self.findings.hairpin.get_or_insert(true);
        }
        if self.done() || self.elapsed() >= DOCTOR_LIMIT {
            Flow::Exit(0)
        } else {
            Flow::Continue
        }
    }
}

/// `tinynode doctor`.
pub fn run(options: DoctorOptions, identity: Identity) -> i32 {
    let printer = Printer::new(options.json);
    let binds = usable_binds(&options.bind);
    let (bootstrap, _, unusable) = resolve_for(&options.bootstrap, &binds);
    for problem in &unusable {
        printer.error(&format!("bootstrap {problem}"));
    }
    let plan = mainline::plan(
        options.no_mainline,
        options.mainline_bootstrap.clone(),
        None,
    );
    let mainline_on = plan.initial.is_some();
    if bootstrap.is_empty() && !mainline_on {
        printer.error("nothing to ask: give --bootstrap or leave the Mainline DHT on");
        return EXIT_NO_UDP;
    }
    let sources = Sources {
        bootstrap: Vec::new(),
        mainline: plan.initial,
        lan: false,
        relay: RelayRole::Off,
    };
    let quick = RetransmitConfig {
        initial_rto: Duration::from_millis(250),
        max_sends: 4,
        final_wait_rtos: 4,
        per_server_limit: Some(Duration::from_secs(3)),
    };
    let Some((mut driver, mut node)) =
        start_configured(&printer, &binds, identity, sources, |config| {
            config.retransmit = quick;
        })
    else {
        return EXIT_NO_UDP;
    };
    mainline::resolve_in_background(plan.names, plan.delay, driver.command_sender());
    for command in [
        NodeCommand::ProbeReach(bootstrap.clone()),
        NodeCommand::ProbeRelays(bootstrap.clone()),
    ] {
        driver.submit(&mut node, tinynode::Input::Command(command));
    }
    let mut doctor = Doctor {
        started: Instant::now(),
        bootstrap: bootstrap.clone(),
        bootstrap_sent: None,
        commands: driver.command_sender(),
        probed: bootstrap,
        findings: Findings {
            mainline_on,
            ..Findings::default()
        },
        settled_at: None,
    };
    let result = driver.run(&mut node, &mut doctor);
    if finish(&printer, result) != 0 {
        return EXIT_NO_UDP;
    }
    report(&printer, &node, &doctor.findings)
}

impl Handler for &mut Doctor {
    fn on_event(&mut self, event: &Event) -> Flow {
        (**self).on_event(event)
    }
    fn wake_at(&self) -> Option<Instant> {
        (**self).wake_at()
    }
    fn on_wake(&mut self, node: &Node) -> Flow {
        (**self).on_wake(node)
    }
}

/// The verdict and its exit status.
fn verdict(findings: &Findings) -> (&'static str, i32) {
    if findings.dht_answered.is_none() && findings.mainline_answered.is_none() {
        return (
            "no bootstrap source answered: UDP may be blocked, or the nodes are down",
            EXIT_NO_UDP,
        );
    }
    let relay = findings.relays.iter().any(|(_, r)| r.is_ok());
    match findings.nat.map(|(class, _)| class) {
        Some(NatClass::Open) => ("no NAT: every peer can reach this node directly", 0),
        Some(NatClass::EndpointIndependent) => (
            "easy NAT: direct connections to most peers (a relay only for peers behind hard NATs)",
            0,
        ),
        Some(class) if class.mapping_varies() => (
            if relay {
                "hard NAT: peers behind port-restricted or hard NATs need a relay; one is available"
            } else {
                "hard NAT: peers behind port-restricted or hard NATs need a relay, and none of the bootstrap nodes relays"
            },
            EXIT_RELAY_NEEDED,
        ),
        _ => (
            "mapping unknown (fewer than 3 observers on 2 IPs): likely direct; relays are tried when it is not",
            0,
        ),
    }
}

fn report(printer: &Printer, node: &Node, findings: &Findings) -> i32 {
    let (verdict, code) = verdict(findings);
    let ms = |d: Duration| d.as_millis();
    let bootstrap = match (findings.dht_answered, findings.dht_failed) {
        (Some(at), _) => format!("joined in {} ms", ms(at)),
        (None, true) => "no answer".to_owned(),
        (None, false) => "not asked".to_owned(),
    };
    let mainline = match (findings.mainline_answered, findings.mainline_failed) {
        (Some((at, nodes)), _) => format!("joined in {} ms ({nodes} nodes)", ms(at)),
        (None, true) => "no answer".to_owned(),
        (None, false) if !findings.mainline_on => "off".to_owned(),
        (None, false) => "no answer yet".to_owned(),
    };
    let public = findings
        .public
        .as_ref()
        .map_or("unknown".to_owned(), |(addr, via)| {
            format!("{addr} (via {via})")
        });
    let (mapping, observers) = findings
        .nat
        .map_or(("unknown", 0), |(class, samples)| (class.name(), samples));
    let mapping_line = if observers == 0 {
        format!("{mapping} (too few observers)")
    } else {
        format!("{mapping} ({observers} observers)")
    };
    let filtering = match findings.filtering {
        Some(Filtering::Open(from)) => {
            format!("endpoint-independent: {from} reached this host unasked")
        }
        Some(Filtering::Closed) => {
            "address- or port-dependent: a third node's datagram did not get in".to_owned()
        }
        Some(Filtering::NotTested) => "not tested: no bootstrap node knows a third node".to_owned(),
        Some(Filtering::Inconclusive(from)) => {
            format!("not tested: the probe came from {from}, which this host had sent to")
        }
        None => "not tested".to_owned(),
    };
    let hairpin = match findings.hairpin {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not tested",
    };
    let relays: Vec<String> = findings
        .relays
        .iter()
        .map(|(relay, result)| match result {
            Ok(kib) => format!("{relay} (relays, {kib} KiB/s per pair)"),
            Err(reason) => format!("{relay} ({reason})"),
        })
        .collect();
    let relays = if relays.is_empty() {
        "none answered".to_owned()
    } else {
        relays.join(", ")
    };
    printer.line(
        || {
            [
                ("socket", format!("{} (udp ok)", node.local_addr())),
                ("bootstrap", bootstrap.clone()),
                ("mainline", mainline.clone()),
                ("public address", public.clone()),
                ("mapping", mapping_line.clone()),
                ("filtering", filtering.clone()),
                ("hairpinning", hairpin.to_owned()),
                ("relays", relays.clone()),
                ("verdict", verdict.to_owned()),
            ]
            .iter()
            .map(|(k, v)| format!("{k:<15} {v}"))
            .collect::<Vec<_>>()
            .join("\n")
        },
        || {
            JsonLine::event("doctor")
                .display("socket", node.local_addr())
                .str("bootstrap", &bootstrap)
                .str("mainline", &mainline)
                .str("public_address", &public)
                .str("mapping", mapping)
                .display("observers", observers)
                .str("filtering", &filtering)
                .str("hairpinning", hairpin)
                .str("relays", &relays)
                .str("verdict", verdict)
                .display("exit", code)
        },
    );
    code
}
