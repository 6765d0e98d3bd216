//! `tinynode doctor`: what this network allows, in plain words, within
//! [`DOCTOR_LIMIT`].
//!
//! It runs a node that joins no meeting and relays for nobody, and reads
//! what its sources say: which bootstrap nodes answer and how fast, the
//! public address and how many observers saw it, the NAT's mapping class
//! (§11), whether the NAT hairpins (a STUN Binding request to our own
//! public address, answered by our own STUN server if it comes back), and
//! which bootstrap nodes relay for us (a bind probe, §12). Address, mapping
//! and filtering are found and reported for each address family the host
//! has a socket of (IPv6 usually has no NAT, only a firewall). Exit
//! status: 0 when direct connections are likely, 1 when some peers will
//! need a relay, 2 when no bootstrap source answered (no UDP, or nothing to
//! ask).
//!
//! About 620 lines, kept as one file: the findings, the handler that
//! gathers them per family and the report that words them change
//! together whenever the diagnosis learns something new.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tinynode::driver::{CommandSender, Flow, Handler, HostPort};
use tinynode::{
    AddressSource, Command as NodeCommand, Event, Family, Identity, NatClass, Node, ReachResult,
    RelayRefusal, RelayRole, RetransmitConfig,
};

use super::json::JsonLine;
use super::options::DoctorOptions;
use super::printer::Printer;
use super::{Sources, finish, mainline, resolve_for, start_configured, usable_binds};

/// The longest a diagnosis takes.
pub const DOCTOR_LIMIT: Duration = Duration::from_secs(10);
/// How long to wait for more observers once a source has answered.
const SETTLE: Duration = Duration::from_secs(2);
/// How long a reachability probe may take to arrive once a bootstrap node
/// said it forwarded it (spec §5.8).
const REACH_WAIT: Duration = Duration::from_millis(1500);
/// Exit status when no bootstrap source answered.
pub const EXIT_NO_UDP: i32 = 2;
/// Exit status when some peers will need a relay.
pub const EXIT_RELAY_NEEDED: i32 = 1;
/// Exit status when too few observers answered to classify the NAT.
pub const EXIT_UNKNOWN: i32 = 3;

/// What the diagnosis found so far.
#[derive(Debug, Default)]
struct Findings {
    dht_answered: Option<Duration>,
    dht_failed: bool,
    mainline_answered: Option<(Duration, usize)>,
    mainline_failed: bool,
    /// What was found of each family we have a socket of.
    families: BTreeMap<Family, FamilyFindings>,
    /// `Some(true)` hairpins, `Some(false)` does not, `None` untested
    /// (the first socket's family).
    hairpin: Option<bool>,
    hairpin_sent: bool,
    relays: Vec<(SocketAddr, Result<u16, RelayRefusal>)>,
    /// Whether the Mainline DHT was asked at all.
    mainline_on: bool,
}

impl Findings {
    /// True once no family waits for its reachability probe: the DHTs
    /// may be joined.
    fn probe_over(&self) -> bool {
        !self.families.values().any(FamilyFindings::probing)
    }
}

/// What was found of one address family.
#[derive(Debug, Default)]
struct FamilyFindings {
    /// Our socket of this family.
    local: Option<SocketAddr>,
    public: Option<(SocketAddr, String)>,
    nat: Option<(NatClass, usize)>,
    filtering: Option<Filtering>,
    /// Bootstrap nodes of this family asked for a reachability probe.
    asked: usize,
    /// Of those, how many forwarded nothing.
    not_forwarded: usize,
    /// When the first of them said it forwarded the probe: the wait for
    /// it runs from here, not from our start, so that a slow bootstrap
    /// node does not make an open NAT look closed.
    forwarded_at: Option<Instant>,
}

impl FamilyFindings {
    /// Still waiting for the reachability probe's verdict.
    fn probing(&self) -> bool {
        self.asked > 0 && self.filtering.is_none()
    }

    /// What the probe event `result` says of this family's filtering.
    fn on_reach(&mut self, result: ReachResult) {
        match result {
            ReachResult::Forwarded => {
                self.forwarded_at.get_or_insert_with(Instant::now);
            }
            ReachResult::NotForwarded => {
                self.not_forwarded += 1;
                if self.not_forwarded >= self.asked && self.forwarded_at.is_none() {
                    self.filtering.get_or_insert(Filtering::NotTested);
                }
            }
            // One probe reached us: that settles it.
            ReachResult::Reached(from) => self.filtering = Some(Filtering::Open(from)),
            ReachResult::Inconclusive(from)
                if !matches!(self.filtering, Some(Filtering::Open(_))) =>
            {
                self.filtering = Some(Filtering::Inconclusive(from));
            }
            _ => {}
        }
    }

    /// The mapping class: the observers' verdict, or open when an
    /// observer saw the socket's own address (no translation on the way,
    /// however few observers).
    fn class(&self) -> Option<(NatClass, usize)> {
        match (self.nat, self.public.as_ref()) {
            (Some((class, samples)), _) if class != NatClass::Unknown => Some((class, samples)),
            (nat, Some((public, _))) if Some(*public) == self.local => {
                Some((NatClass::Open, nat.map_or(1, |(_, samples)| samples.max(1))))
            }
            (nat, _) => nat,
        }
    }
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
    /// The Mainline bootstrap (addresses, and router names to resolve),
    /// held back with it: a Mainline node can share a third node's
    /// socket, and a lookup that reaches it first spoils the probe.
    mainline: Option<(Vec<SocketAddr>, Vec<HostPort>)>,
    /// When both DHTs were asked to join.
    joined_at: Option<Instant>,
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
        let settled = self.settled_at.is_some_and(|at| at.elapsed() >= SETTLE);
        let nat_done = settled
            || f.families.values().all(|family| {
                family
                    .class()
                    .is_some_and(|(class, _)| class != NatClass::Unknown)
            });
        let no_public = f.families.values().all(|family| family.public.is_none());
        let hairpin_done = f.hairpin.is_some() || (no_public && self.settled_at.is_some());
        let filtering_done = f.probe_over();
        dht_done && mainline_done && relays_done && nat_done && hairpin_done && filtering_done
    }

    /// The reachability probe is over (or there is none): join both
    /// DHTs now.
    fn join_dhts(&mut self) {
        if self.joined_at.is_some() {
            return;
        }
        self.joined_at = Some(Instant::now());
        if !self.bootstrap.is_empty() {
            self.commands
                .send(NodeCommand::Bootstrap(self.bootstrap.clone()));
        }
        if let Some((addrs, names)) = self.mainline.take() {
            if !addrs.is_empty() {
                self.commands.send(NodeCommand::MainlineBootstrap(addrs));
            }
            mainline::resolve_in_background(names, self.commands.clone());
        }
    }

    /// Time since both DHTs were asked to join.
    fn since_joined(&self) -> Duration {
        self.joined_at.map_or(Duration::ZERO, |at| at.elapsed())
    }
}

impl Handler for Doctor {
    fn on_event(&mut self, event: &Event) -> Flow {
        let since_joined = self.since_joined();
        let f = &mut self.findings;
        match event {
            Event::ReachProbed { via, result } => {
                if let Some(family) = f.families.get_mut(&Family::of(*via)) {
                    family.on_reach(*result);
                }
                if f.probe_over() {
                    self.join_dhts();
                }
            }
            Event::Bootstrapped { .. } => {
                f.dht_answered.get_or_insert(since_joined);
                self.commands.send(NodeCommand::SampleNat);
            }
            Event::BootstrapFailed { .. } => f.dht_failed = true,
            Event::MainlineBootstrapped { nodes } => {
                f.mainline_answered.get_or_insert((since_joined, *nodes));
                self.commands.send(NodeCommand::SampleNat);
            }
            Event::MainlineBootstrapFailed { .. } => f.mainline_failed = true,
            Event::PublicAddress { address, via } => {
                let family = f.families.entry(Family::of(*address)).or_default();
                match via {
                    AddressSource::Stun { .. } if f.hairpin_sent => f.hairpin = Some(true),
                    _ if family.public.is_none() => {
                        family.public = Some((*address, via.name().to_owned()));
                    }
                    _ => {}
                }
                // The first DHT answer carries the first report.
                if matches!(via, AddressSource::Dht { .. }) {
                    f.dht_answered.get_or_insert(since_joined);
                }
            }
            Event::PublicAddressFailed { .. } if f.hairpin_sent => f.hairpin = Some(false),
            Event::Nat {
                class,
                samples,
                family,
            } => f.families.entry(*family).or_default().nat = Some((*class, *samples)),
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
        let reach = self
            .findings
            .families
            .values()
            .filter(|family| family.probing())
            .filter_map(|family| family.forwarded_at)
            .map(|at| at + REACH_WAIT)
            .min();
        [Some(settle), reach].into_iter().flatten().min()
    }

    fn on_wake(&mut self, node: &mut Node) -> Flow {
        let now = Instant::now();
        for family in self.findings.families.values_mut() {
            if family.probing() && family.forwarded_at.is_some_and(|at| now >= at + REACH_WAIT) {
                family.filtering = Some(Filtering::Closed);
            }
        }
        if self.findings.probe_over() {
            self.join_dhts();
        }
        let f = &self.findings;
        if self.settled_at.is_none()
            && (f.dht_answered.is_some() || f.mainline_answered.is_some() || f.dht_failed)
        {
            self.settled_at = Some(Instant::now());
        }
        let primary = self
            .findings
            .families
            .get(&Family::of(node.local_addr()))
            .and_then(|family| family.public.as_ref())
            .map(|(public, _)| *public);
        if let Some(public) = primary
            && !self.findings.hairpin_sent
            && public != node.local_addr()
        {
            self.findings.hairpin_sent = true;
            self.commands.send(NodeCommand::DiscoverPublicAddress {
                servers: vec![public],
            });
        }
        if let Some(public) = primary
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
        // On, with nothing to ask yet: see `Doctor::mainline`.
        mainline: plan.initial.as_ref().map(|_| Vec::new()),
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
    for command in [
        NodeCommand::ProbeReach(bootstrap.clone()),
        NodeCommand::ProbeRelays(bootstrap.clone()),
    ] {
        driver.submit(&mut node, tinynode::Input::Command(command));
    }
    let mut families = BTreeMap::new();
    for &local in node.local_addrs() {
        let family = FamilyFindings {
            local: Some(local),
            asked: bootstrap
                .iter()
                .filter(|b| Family::of(**b) == Family::of(local))
                .count(),
            ..FamilyFindings::default()
        };
        families.insert(Family::of(local), family);
    }
    let mut doctor = Doctor {
        started: Instant::now(),
        bootstrap: bootstrap.clone(),
        mainline: plan.initial.map(|addrs| (addrs, plan.names)),
        joined_at: None,
        commands: driver.command_sender(),
        probed: bootstrap,
        findings: Findings {
            mainline_on,
            families,
            ..Findings::default()
        },
        settled_at: None,
    };
    if doctor.findings.probe_over() {
        doctor.join_dhts();
    }
    let result = driver.run(&mut node, &mut doctor);
    if finish(&printer, result) != 0 {
        return EXIT_NO_UDP;
    }
    report(&printer, &node, &doctor.findings, doctor.elapsed())
}

impl Handler for &mut Doctor {
    fn on_event(&mut self, event: &Event) -> Flow {
        (**self).on_event(event)
    }
    fn wake_at(&self) -> Option<Instant> {
        (**self).wake_at()
    }
    fn on_wake(&mut self, node: &mut Node) -> Flow {
        (**self).on_wake(node)
    }
}

/// The verdict and its exit status: from the first socket's family, with
/// a word on the other when it connects more easily.
fn verdict(findings: &Findings, primary: Family) -> (String, i32) {
    if findings.dht_answered.is_none() && findings.mainline_answered.is_none() {
        return (
            "no bootstrap source answered: UDP may be blocked, or the nodes are down".to_owned(),
            EXIT_NO_UDP,
        );
    }
    let relay = findings.relays.iter().any(|(_, r)| r.is_ok());
    let class_of = |family: Family| {
        findings
            .families
            .get(&family)
            .and_then(FamilyFindings::class)
            .map(|(class, _)| class)
    };
    let (text, code) = match class_of(primary) {
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
            "unknown: too few observers answered to tell an easy NAT from a hard one (3 on 2 IPs are \
             needed); give --bootstrap nodes on other networks, or let Mainline run. join still \
             connects directly where it can and tries relays where it cannot",
            EXIT_UNKNOWN,
        ),
    };
    let other = findings
        .families
        .keys()
        .copied()
        .find(|family| *family != primary);
    let better = other.filter(|family| {
        matches!(
            class_of(*family),
            Some(NatClass::Open | NatClass::EndpointIndependent)
        ) && !matches!(
            class_of(primary),
            Some(NatClass::Open | NatClass::EndpointIndependent)
        )
    });
    match better {
        Some(family) => (
            format!("{text}; over {family}, peers that have it connect directly"),
            code,
        ),
        None => (text.to_owned(), code),
    }
}

/// One family's findings in words.
struct FamilyWords {
    public: String,
    mapping: &'static str,
    observers: usize,
    filtering: String,
}

impl FamilyWords {
    /// The mapping with its observers, for people.
    fn mapping_line(&self) -> String {
        if self.observers == 0 {
            format!("{} (too few observers)", self.mapping)
        } else {
            format!("{} ({} observers)", self.mapping, self.observers)
        }
    }
}

/// The words of one family's findings: public address, mapping (and
/// observers), filtering.
fn family_words(family: &FamilyFindings) -> FamilyWords {
    let public = family
        .public
        .as_ref()
        .map_or("unknown".to_owned(), |(addr, via)| {
            format!("{addr} (via {via})")
        });
    let (mapping, observers) = family
        .class()
        .map_or(("unknown", 0), |(class, samples)| (class.name(), samples));
    let filtering = match family.filtering {
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
    FamilyWords {
        public,
        mapping,
        observers,
        filtering,
    }
}

fn report(printer: &Printer, node: &Node, findings: &Findings, took: Duration) -> i32 {
    let primary = Family::of(node.local_addr());
    let (verdict, code) = verdict(findings, primary);
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
    let empty = FamilyFindings::default();
    let first = family_words(findings.families.get(&primary).unwrap_or(&empty));
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
    let sockets: Vec<String> = node
        .local_addrs()
        .iter()
        .map(|a| format!("{a} (udp ok)"))
        .collect();
    let sockets = sockets.join(", ");
    let per_family: Vec<(Family, FamilyWords)> = findings
        .families
        .iter()
        .map(|(family, found)| (*family, family_words(found)))
        .collect();
    printer.line(
        || {
            let mut lines = vec![
                ("socket".to_owned(), sockets.clone()),
                ("bootstrap".to_owned(), bootstrap.clone()),
                ("mainline".to_owned(), mainline.clone()),
            ];
            for (family, words) in &per_family {
                lines.push((format!("{family} address"), words.public.clone()));
                lines.push((format!("{family} mapping"), words.mapping_line()));
                lines.push((format!("{family} filtering"), words.filtering.clone()));
            }
            lines.push(("hairpinning".to_owned(), hairpin.to_owned()));
            lines.push(("relays".to_owned(), relays.clone()));
            lines.push(("verdict".to_owned(), verdict.clone()));
            lines
                .iter()
                .map(|(k, v)| format!("{k:<16} {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        },
        || {
            let mut line = JsonLine::event("doctor")
                .display("socket", node.local_addr())
                .str("sockets", &sockets)
                .str("bootstrap", &bootstrap)
                .str("mainline", &mainline)
                .str("public_address", &first.public)
                .str("mapping", first.mapping)
                .display("observers", first.observers)
                .str("filtering", &first.filtering)
                .str("hairpinning", hairpin);
            for (family, words) in &per_family {
                let name = family.name();
                line = line
                    .str(&format!("{name}_public_address"), &words.public)
                    .str(&format!("{name}_mapping"), words.mapping)
                    .display(&format!("{name}_observers"), words.observers)
                    .str(&format!("{name}_filtering"), &words.filtering);
            }
            line.str("relays", &relays)
                .str("verdict", &verdict)
                .display("exit", code)
                .display("took_ms", took.as_millis())
        },
    );
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Findings where the DHT answered and each of `families` was
    /// classified as given; `relay` says whether a bootstrap node relays.
    fn findings(families: &[(Family, NatClass)], relay: bool) -> Findings {
        let relay_addr: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        Findings {
            dht_answered: Some(Duration::from_millis(5)),
            families: families
                .iter()
                .map(|(family, class)| {
                    let found = FamilyFindings {
                        nat: Some((*class, 3)),
                        ..FamilyFindings::default()
                    };
                    (*family, found)
                })
                .collect(),
            relays: vec![(
                relay_addr,
                if relay {
                    Ok(256)
                } else {
                    Err(RelayRefusal::NotARelay)
                },
            )],
            ..Findings::default()
        }
    }

    #[test]
    fn the_verdict_and_exit_code_follow_the_mapping() {
        let hard = NatClass::EndpointDependent { sequential: false };
        let v4 = Family::V4;
        for (families, relay, starts, code) in [
            (vec![(v4, NatClass::Open)], false, "no NAT", 0),
            (
                vec![(v4, NatClass::EndpointIndependent)],
                false,
                "easy NAT",
                0,
            ),
            (vec![(v4, hard)], true, "hard NAT", EXIT_RELAY_NEEDED),
            (
                vec![(v4, NatClass::MultipleIps)],
                false,
                "hard NAT",
                EXIT_RELAY_NEEDED,
            ),
            (
                vec![(v4, NatClass::Unknown)],
                false,
                "unknown",
                EXIT_UNKNOWN,
            ),
            (vec![], false, "unknown", EXIT_UNKNOWN),
        ] {
            let (text, exit) = verdict(&findings(&families, relay), v4);
            assert!(text.starts_with(starts), "{families:?}: {text}");
            assert_eq!(exit, code, "{families:?}: {text}");
        }
    }

    #[test]
    fn a_hard_nat_says_whether_a_relay_is_there_and_names_an_easier_family() {
        let hard = NatClass::EndpointDependent { sequential: true };
        let (with, _) = verdict(&findings(&[(Family::V4, hard)], true), Family::V4);
        assert!(with.ends_with("one is available"), "{with}");
        let (without, _) = verdict(&findings(&[(Family::V4, hard)], false), Family::V4);
        assert!(
            without.contains("none of the bootstrap nodes relays"),
            "{without}"
        );
        let both = [(Family::V4, hard), (Family::V6, NatClass::Open)];
        let (text, code) = verdict(&findings(&both, true), Family::V4);
        assert!(
            text.ends_with("peers that have it connect directly"),
            "{text}"
        );
        assert!(text.contains(&Family::V6.to_string()), "{text}");
        assert_eq!(code, EXIT_RELAY_NEEDED, "the first socket's family decides");
    }

    #[test]
    fn nothing_answering_means_udp_may_be_blocked() {
        let (text, code) = verdict(&Findings::default(), Family::V4);
        assert!(text.starts_with("no bootstrap source answered"), "{text}");
        assert_eq!(code, EXIT_NO_UDP);
    }

    #[test]
    fn the_filtering_verdict_waits_for_every_asked_node_and_an_arrived_probe_wins() {
        let a: SocketAddr = "198.51.100.2:3478".parse().unwrap();
        let b: SocketAddr = "198.51.100.3:3478".parse().unwrap();
        // Two nodes asked; one forwarded nothing: still waiting.
        let mut two = FamilyFindings {
            asked: 2,
            ..FamilyFindings::default()
        };
        two.on_reach(ReachResult::NotForwarded);
        assert!(two.probing() && two.forwarded_at.is_none());
        // The other forwarded: the wait runs from now.
        two.on_reach(ReachResult::Forwarded);
        assert!(two.probing() && two.forwarded_at.is_some());
        // A probe from an address we had sent to, then a real one.
        two.on_reach(ReachResult::Inconclusive(a));
        assert!(matches!(two.filtering, Some(Filtering::Inconclusive(from)) if from == a));
        two.on_reach(ReachResult::Reached(b));
        two.on_reach(ReachResult::Inconclusive(a));
        assert!(matches!(two.filtering, Some(Filtering::Open(from)) if from == b));
        // One node asked, and it forwarded nothing: not tested.
        let mut one = FamilyFindings {
            asked: 1,
            ..FamilyFindings::default()
        };
        one.on_reach(ReachResult::NotForwarded);
        assert!(!one.probing());
        assert!(matches!(one.filtering, Some(Filtering::NotTested)));
        // None asked: nothing to wait for.
        assert!(!FamilyFindings::default().probing());
    }
}
