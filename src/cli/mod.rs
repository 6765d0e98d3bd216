//! The `tinynode` commands: parse, set up the driver, print what happens.

mod allow;
pub mod args;
mod bridge;
pub mod demo;
pub mod doctor;
pub mod forward;
mod help;
mod json;
mod lex;
pub mod logger;
mod mainline;
pub mod options;
pub mod pipe;
mod printer;
pub mod receive;
pub mod send;
mod status;
mod stdio;
mod stdout_sink;
mod udp;

use std::net::SocketAddr;
use std::time::Duration;

use log::{debug, warn};
use tinynode::driver::{Driver, Flow, Handler, StartError, Stop, concrete_local_addr};
use tinynode::driver::{HostPort, Signals, resolve_all};
use tinynode::{
    AddressSource, Command as NodeCommand, Event, Identity, Input, Meeting, Node, NodeConfig,
    RelayRole, ServerFailure, WallClock,
};

use json::JsonLine;
use logger::errln;
use options::{Binds, JoinOptions, ServeOptions, StunOptions};
use printer::{PrintEvents, Printer};

/// Exit code when the command ran but failed.
pub const EXIT_FAILURE: i32 = 1;

/// Time allowed for resolving bootstrap and STUN host names at start.
const RESOLVE_LIMIT: Duration = Duration::from_secs(5);

/// `join`'s handler: prints like [`PrintEvents`] and saves the Mainline
/// node cache every [`mainline::CACHE_SAVE_INTERVAL`], so a node that is
/// killed still leaves a fresh cache.
struct JoinEvents<'a> {
    print: PrintEvents<'a>,
    cache: Option<(std::path::PathBuf, std::time::Instant)>,
}

impl Handler for JoinEvents<'_> {
    fn on_event(&mut self, event: &Event) -> Flow {
        self.print.on_event(event)
    }

    fn before_sleep(&mut self, node: &Node) {
        self.print.before_sleep(node);
        if let Some((path, saved)) = self.cache.as_mut()
            && saved.elapsed() >= mainline::CACHE_SAVE_INTERVAL
        {
            mainline::save_cache(path, &node.mainline_nodes(mainline::MAX_CACHED_NODES));
            *saved = std::time::Instant::now();
        }
    }

    fn on_wake(&mut self, node: &mut Node) -> Flow {
        self.print.on_wake(node)
    }
}

/// The value of `"key":"..."` in a one-line JSON object this program printed
/// (string values without escaped quotes, which is all it prints there).
pub fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

/// The addresses `binds` names that this host can bind: a default IPv6
/// wildcard is left out, with a note in the debug log, where the host has
/// no IPv6 (a throwaway IPv6 socket will not bind).
fn usable_binds(binds: &Binds) -> Vec<SocketAddr> {
    let mut addrs = binds.addrs();
    if binds.is_default() {
        addrs.retain(|addr| {
            addr.is_ipv4()
                || match tinynode::driver::bind_udp(SocketAddr::new(addr.ip(), 0)) {
                    Ok(_) => true,
                    Err(error) => {
                        debug!("no IPv6 socket on this host ({error}); IPv4 only");
                        false
                    }
                }
        });
    }
    addrs
}

/// Resolves `names` and keeps the addresses of the families in `binds`,
/// with a description of each name that gave none.
fn resolve_for(
    names: &[HostPort],
    binds: &[SocketAddr],
) -> (Vec<SocketAddr>, Vec<(SocketAddr, String)>, Vec<String>) {
    let mut unusable = Vec::new();
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut labels = Vec::new();
    let has_family = |addr: &SocketAddr| binds.iter().any(|b| b.is_ipv4() == addr.is_ipv4());
    for (name, result) in names.iter().zip(resolve_all(names, RESOLVE_LIMIT)) {
        match result {
            Ok(resolved) => {
                let before = addrs.len();
                for addr in resolved.into_iter().filter(has_family) {
                    if !addrs.contains(&addr) {
                        addrs.push(addr);
                        labels.push((addr, name.to_string()));
                    }
                }
                if addrs.len() == before {
                    let sockets: Vec<String> = binds.iter().map(ToString::to_string).collect();
                    unusable.push(format!(
                        "{name}: no address of the sockets' families ({})",
                        sockets.join(", ")
                    ));
                }
            }
            Err(error) => unusable.push(format!("{name}: {error}")),
        }
    }
    (addrs, labels, unusable)
}

/// `tinynode stun`: exit 0 with the public address, 1 when no server answered.
pub fn stun(options: StunOptions, identity: Identity) -> i32 {
    let printer = Printer::new(options.json);
    let resolved = resolve_all(&options.servers, options.timeout);
    let any_ipv4 = resolved.iter().flatten().flatten().any(SocketAddr::is_ipv4);
    let any_address = resolved.iter().flatten().next().is_some();
    let bind = options.bind.unwrap_or(if any_ipv4 || !any_address {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    });
    let (servers, names, unusable) = resolve_for(&options.servers, &[bind]);
    if servers.is_empty() {
        printer.error(&no_server_answered(&unusable, &[], &names));
        return EXIT_FAILURE;
    }
    let timeout = options.timeout;
    let (mut driver, mut node) = match start_driver(&[bind], false, |locals, clock| {
        let mut config = NodeConfig::new(locals[0], identity, clock);
        config.retransmit.per_server_limit = Some(timeout);
        config
    }) {
        Ok(started) => started,
        Err(error) => {
            printer.error(&error.to_string());
            return EXIT_FAILURE;
        }
    };
    driver.submit(
        &mut node,
        Input::Command(NodeCommand::DiscoverPublicAddress { servers }),
    );
    let result = driver.run(&mut node, |event: &Event| match event {
        Event::PublicAddress {
            address,
            via: AddressSource::Stun { server },
        } => {
            printer.line(
                || format!("public address {address} (from STUN server {server})"),
                || {
                    JsonLine::event("public_address")
                        .display("addr", address)
                        .str("via", "stun")
                        .display("server", server)
                },
            );
            Flow::Exit(0)
        }
        Event::PublicAddressFailed { attempts } => {
            printer.error(&no_server_answered(&unusable, attempts, &names));
            Flow::Exit(EXIT_FAILURE)
        }
        _ => Flow::Continue,
    });
    finish(&printer, result)
}

/// `tinynode serve`: a DHT node until SIGINT or SIGTERM, then exit 0.
pub fn serve(options: ServeOptions, identity: Identity) -> i32 {
    let printer = Printer::new(options.json);
    let binds = usable_binds(&options.bind);
    let (bootstrap, _, unusable) = resolve_for(&options.bootstrap, &binds);
    for problem in &unusable {
        printer.error(&format!("bootstrap {problem}"));
    }
    // A relay announces itself in the Mainline DHT (§12.6); a plain serve
    // node has no use for it.
    let plan = mainline::plan(
        !options.relay || options.no_mainline,
        options.mainline_bootstrap.clone(),
        None,
    );
    let sources = Sources {
        bootstrap,
        mainline: plan.initial,
        lan: false,
        relay: if options.relay {
            RelayRole::Open
        } else {
            RelayRole::Off
        },
    };
    let mut limits = tinynode::RelayLimits::OPEN;
    if let Some(rate) = options.relay_rate {
        limits.pair_rate = rate;
        limits.pair_burst = rate.saturating_mul(2);
    }
    if let Some(rate) = options.relay_total {
        limits.total_rate = rate;
        limits.total_burst = rate.saturating_mul(2);
    }
    if let Some(pairs) = options.relay_pairs {
        limits.max_pairs = pairs;
    }
    if options.relay {
        debug!(
            "relay limits: {} pairs, {} bytes/s per pair, {} bytes/s in all",
            limits.max_pairs, limits.pair_rate, limits.total_rate
        );
    }
    let Some((mut driver, mut node)) =
        start_configured(&printer, &binds, identity, sources, |config| {
            config.open_relay_limits = limits;
        })
    else {
        return EXIT_FAILURE;
    };
    mainline::resolve_in_background(plan.names, driver.command_sender());
    started(&printer, &node, None);
    let result = driver.run(&mut node, printer.events());
    finish(&printer, result)
}

/// Warns once, on stderr (and as a `weak_code` event with `--json`), when
/// `code` is estimated under [`WEAK_CODE_BITS`](tinynode::code::WEAK_CODE_BITS)
/// bits (`protocol-spec.md` §4.2).
fn warn_if_weak(printer: &Printer, code: &str) {
    let bits = tinynode::code::estimate_bits(code);
    if bits >= tinynode::code::WEAK_CODE_BITS {
        return;
    }
    printer.flush();
    errln!(
        "tinynode: warning: this meeting code is weak (about {bits} bits): anyone who sees \
         the meeting's traffic can guess it offline. Make a strong one with `tinynode code`."
    );
    if printer.json() {
        printer.line(String::new, || {
            JsonLine::event("weak_code").number("bits", u64::from(bits))
        });
    }
}

/// A node in a meeting, as `join` and `pipe` start it.
struct Entered {
    driver: Driver,
    node: Node,
    /// Where the Mainline node cache lives, if it is kept.
    cache: Option<std::path::PathBuf>,
}

/// Starts a node with `options`' sources and joins their meeting; the
/// exit code when that fails. The one place every command in a meeting
/// turns `join`'s options into a running node.
fn enter(
    options: &JoinOptions,
    identity: Identity,
    printer: &Printer,
    read_stdin: bool,
    announce: bool,
) -> Result<Entered, i32> {
    let Some(code) = options
        .code
        .clone()
        .or_else(|| std::env::var("MEETING_CODE").ok())
    else {
        printer.error("no meeting code: give one (tinynode join CODE) or set MEETING_CODE");
        return Err(options::EXIT_USAGE);
    };
    let meeting = match Meeting::derive(&code) {
        Ok(meeting) => meeting,
        Err(error) => {
            printer.error(&error.to_string());
            return Err(options::EXIT_USAGE);
        }
    };
    let mut bootstrap_names = options.bootstrap.clone();
    if bootstrap_names.is_empty() {
        bootstrap_names = bootstrap_from_env(printer);
    }
    let binds = usable_binds(&options.bind);
    let (bootstrap, _, unusable) = resolve_for(&bootstrap_names, &binds);
    for problem in &unusable {
        printer.error(&format!("bootstrap {problem}"));
    }
    let mut mainline_nodes = options.mainline_bootstrap.clone();
    if mainline_nodes.is_empty() && !options.no_mainline {
        let (from_env, problems) = mainline::from_env();
        for problem in &problems {
            printer.error(problem);
        }
        mainline_nodes = from_env;
    }
    let plan = mainline::plan(
        options.no_mainline,
        mainline_nodes,
        mainline::cache_path(options.identity.as_deref()),
    );
    let mut looking = Vec::new();
    if !options.no_lan {
        looking.push("on the local network");
    }
    if plan.initial.is_some() {
        looking.push("through the Mainline DHT");
    }
    if !bootstrap.is_empty() {
        looking.push("through tinynode DHT nodes");
    }
    if looking.is_empty() {
        warn!(
            "no bootstrap node, Mainline and LAN off: this node can only be found by nodes \
             that bootstrap from it"
        );
    } else {
        debug!("looking for members {}", looking.join(", "));
    }
    let (stun_servers, _, unusable) = resolve_for(&options.stun, &binds);
    for problem in &unusable {
        printer.error(&format!("STUN server {problem}"));
    }
    let Some((mut driver, mut node)) = start(
        printer,
        &binds,
        identity,
        Sources {
            bootstrap,
            mainline: plan.initial,
            lan: !options.no_lan,
            relay: if options.no_relay {
                RelayRole::Off
            } else {
                RelayRole::Members
            },
        },
        read_stdin,
    ) else {
        return Err(EXIT_FAILURE);
    };
    if !options.no_lan
        && let Err(error) = driver.listen_for_beacons()
    {
        debug!("lan: no beacons on this host ({error}); the other sources carry on");
    }
    mainline::resolve_in_background(plan.names, driver.command_sender());
    // `pipe` keeps stdout for the partner's bytes and says what it does
    // on stderr itself.
    if announce {
        started(printer, &node, Some((&meeting, &looking)));
        warn_if_weak(printer, &code);
    }
    if !stun_servers.is_empty() {
        driver.submit(
            &mut node,
            Input::Command(NodeCommand::DiscoverPublicAddress {
                servers: stun_servers,
            }),
        );
    }
    driver.submit(&mut node, Input::Command(NodeCommand::Join(meeting)));
    Ok(Entered {
        driver,
        node,
        cache: plan.cache,
    })
}

/// `tinynode join`: find the meeting's members until SIGINT or SIGTERM.
pub fn join(options: JoinOptions, identity: Identity) -> i32 {
    let printer = Printer::new(options.json);
    let Entered {
        mut driver,
        mut node,
        cache,
    } = match enter(&options, identity, &printer, !options.no_stdin, true) {
        Ok(entered) => entered,
        Err(code) => return code,
    };
    let handler = JoinEvents {
        print: if options.keep_running {
            printer.events()
        } else {
            printer.events_until_closed()
        },
        cache: cache.clone().map(|path| (path, std::time::Instant::now())),
    };
    let result = driver.run(&mut node, handler);
    if let Some(cache) = cache {
        mainline::save_cache(&cache, &node.mainline_nodes(mainline::MAX_CACHED_NODES));
    }
    finish(&printer, result)
}

fn bootstrap_from_env(printer: &Printer) -> Vec<HostPort> {
    let Ok(list) = std::env::var("TINYNODE_BOOTSTRAP") else {
        return Vec::new();
    };
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .filter_map(|item| match HostPort::parse(item, options::STUN_PORT) {
            Ok(name) => Some(name),
            Err(error) => {
                printer.error(&format!("TINYNODE_BOOTSTRAP: {error}"));
                None
            }
        })
        .collect()
}

/// Where a node looks for others.
struct Sources {
    /// tinynode DHT nodes.
    bootstrap: Vec<SocketAddr>,
    /// Mainline bootstrap addresses (`None`: Mainline off).
    mainline: Option<Vec<SocketAddr>>,
    /// LAN beacons.
    lan: bool,
    /// Whom to relay for.
    relay: RelayRole,
}

fn start(
    printer: &Printer,
    binds: &[SocketAddr],
    identity: Identity,
    sources: Sources,
    read_stdin: bool,
) -> Option<(Driver, Node)> {
    start_with(printer, binds, identity, sources, read_stdin, |_| {})
}

/// [`start`], without standard input, with `adjust` applied to the
/// node's configuration last.
fn start_configured(
    printer: &Printer,
    binds: &[SocketAddr],
    identity: Identity,
    sources: Sources,
    adjust: impl FnOnce(&mut NodeConfig),
) -> Option<(Driver, Node)> {
    start_with(printer, binds, identity, sources, false, adjust)
}

fn start_with(
    printer: &Printer,
    binds: &[SocketAddr],
    identity: Identity,
    sources: Sources,
    read_stdin: bool,
    adjust: impl FnOnce(&mut NodeConfig),
) -> Option<(Driver, Node)> {
    let started = start_driver(binds, read_stdin, |bound, clock| {
        let toward: Vec<SocketAddr> = sources
            .bootstrap
            .iter()
            .chain(sources.mainline.iter().flatten())
            .copied()
            .collect();
        let locals: Vec<SocketAddr> = bound
            .iter()
            .map(|b| concrete_local_addr(*b, &toward))
            .collect();
        let mut config = NodeConfig::new(locals[0], identity, clock);
        config.local_addrs = locals;
        config.bootstrap = sources.bootstrap;
        config.mainline_bootstrap = sources.mainline;
        config.lan = sources.lan;
        config.relay = sources.relay;
        adjust(&mut config);
        config
    });
    match started {
        Ok(started) => Some(started),
        Err(error) => {
            printer.error(&error.to_string());
            None
        }
    }
}

/// The driver on a socket at each of `binds` (at least one), stopped by
/// SIGINT and SIGTERM (the handlers are the program's, installed here, not
/// by the library).
fn start_driver(
    binds: &[SocketAddr],
    read_stdin: bool,
    configure: impl FnOnce(&[SocketAddr], WallClock) -> NodeConfig,
) -> Result<(Driver, Node), StartError> {
    let (mut driver, node) = Driver::start(binds, read_stdin, configure)?;
    let signals = Signals::install().map_err(StartError::Setup)?;
    driver.stop_on_signals(signals).map_err(StartError::Setup)?;
    Ok((driver, node))
}

/// The node's socket addresses, for people: `A and B`.
fn shown(node: &Node) -> String {
    let all: Vec<String> = node.local_addrs().iter().map(ToString::to_string).collect();
    all.join(" and ")
}

/// Where a member looks for the others, in words: "on the local network,
/// through the Mainline DHT".
type Looking<'a> = &'a [&'a str];

/// The first line: what the node is and, in a meeting, that it waits for
/// the others and where it looks. Full IDs and topics only with `-v` or
/// `--json`.
fn started(printer: &Printer, node: &Node, meeting: Option<(&Meeting, Looking<'_>)>) {
    let (id, local) = (node.node_id(), node.local_addr());
    let verbose = log::log_enabled!(log::Level::Debug);
    printer.line(
        || match meeting {
            Some((meeting, looking)) => {
                let mut line = format!("joined the meeting as {} on {}", id.short(), shown(node));
                if verbose {
                    line += &format!(" (node {id}, meeting topic {})", meeting.topic());
                }
                line += "\nwaiting for the others who use this code";
                if looking.is_empty() {
                    line += " (no source to look through: they must find this node)";
                } else {
                    line += &format!(": looking {}", looking.join(", "));
                }
                line
            }
            None => format!("node {id} listening on {}", shown(node)),
        },
        || {
            let all: Vec<String> = node.local_addrs().iter().map(ToString::to_string).collect();
            let line = JsonLine::event("started")
                .display("node_id", id)
                .display("local_addr", local)
                .str("local_addrs", &all.join(" "));
            match meeting {
                Some((meeting, _)) => line.display("topic", meeting.topic()),
                None => line,
            }
        },
    );
}

fn finish(printer: &Printer, result: std::io::Result<Stop>) -> i32 {
    match result {
        Ok(Stop::Exit(code)) => code,
        // A signal (or a way to stop this build does not know): a clean end.
        Ok(_) => 0,
        Err(error) => {
            printer.error(&format!("event loop failed: {error}"));
            EXIT_FAILURE
        }
    }
}

/// The final error of `tinynode stun`: every server, as the user named it,
/// with the reason it gave no address.
fn no_server_answered(
    unusable: &[String],
    attempts: &[ServerFailure],
    names: &[(SocketAddr, String)],
) -> String {
    let describe =
        |failure: &ServerFailure| match names.iter().find(|(addr, _)| *addr == failure.server) {
            Some((addr, name)) if *name != addr.to_string() => format!("{name} ({failure})"),
            _ => failure.to_string(),
        };
    let reasons: Vec<String> = unusable
        .iter()
        .cloned()
        .chain(attempts.iter().map(describe))
        .collect();
    format!("no STUN server answered: {}", reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinynode::FailureReason;

    #[test]
    fn failure_message_names_every_server() {
        let unusable = vec!["stun.invalid:3478: could not resolve".to_owned()];
        let attempts = [ServerFailure {
            server: "127.0.0.1:9".parse().unwrap(),
            reason: FailureReason::NoResponse {
                sends: 3,
                waited: Duration::from_secs(1),
            },
        }];
        let names = [(attempts[0].server, "localhost:9".to_owned())];
        let text = no_server_answered(&unusable, &attempts, &names);
        assert!(
            text.contains("stun.invalid:3478: could not resolve"),
            "{text}"
        );
        assert!(
            text.contains("localhost:9 (127.0.0.1:9: no response to 3 requests"),
            "{text}"
        );
    }
}
