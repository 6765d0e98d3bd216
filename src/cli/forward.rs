//! `tinynode expose` and `tinynode connect`: TCP port forwarding between
//! members, one stream (`StreamKind::TCP`, named for the service) per
//! forwarded connection, each joined to its TCP connection by a
//! [`Bridge`].
//!
//! The exposing side connects only to the services it was started with:
//! a stream names a service, never an address. The connecting side
//! accepts at `--listen` and opens a stream to a connected member that
//! exposes (`--peer` narrows the choice); a member that refuses TCP
//! streams (it runs `join`, or exposes nothing of that name) is not asked
//! again, and the connection is offered to the next. Connections accepted
//! while no such member is connected wait, at most [`WAIT_LIMIT`] each and
//! [`MAX_WAITING`] in all. The TCP sockets are on the driver's one mio
//! loop (the handler's own tokens).
//!
//! About 800 lines, kept as one file: both commands share the one handler
//! shape (a member table, waiting clients, bridges keyed by stream) and
//! differ only in which side opens; each part with a job of its own has
//! its own file (`bridge.rs` one TCP connection, `udp.rs` UDP flows,
//! `allow.rs` the allow-list).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use tinynode::driver::resolve_all;
use tinynode::driver::{Flow, HANDLER_TOKENS, HANDLER_TOKENS_END, Handler};
use tinynode::{Event, Identity, Node, NodeId, ResetCode, StreamHeader, StreamId, StreamKind};

use super::bridge::{Bridge, Pumped, Waiting};
use super::json::JsonLine;
use super::options::{AllowOptions, ConnectOptions, ExposeOptions, Service};
use super::printer::{PrintEvents, Printer};
use super::udp::{ClientFlows, ServiceFlows};
use super::{EXIT_FAILURE, Entered, RESOLVE_LIMIT, allow, enter, finish};

/// Longest an accepted connection waits for a member that exposes.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// Most accepted connections waiting at once; more are closed at once.
pub const MAX_WAITING: usize = 256;

/// The TCP listener's token.
const LISTENER: Token = Token(HANDLER_TOKENS);
/// The UDP socket of `connect --udp-listen`; connections and flows take
/// the tokens after it.
const UDP_LISTENER: Token = Token(HANDLER_TOKENS + 1);

/// `tinynode expose`: runs until stopped.
pub fn expose(options: ExposeOptions, identity: Identity) -> i32 {
    let printer = Printer::new(options.meeting.json);
    let (Some(services), Some(udp_services)) = (
        resolve_services(&options.tcp, &printer),
        resolve_services(&options.udp, &printer),
    ) else {
        return EXIT_FAILURE;
    };
    let Some((mut driver, mut node, allowed)) =
        start(&options.meeting, &options.allow, identity, &printer)
    else {
        return EXIT_FAILURE;
    };
    node.set_stream_kinds(&[StreamKind::TCP, StreamKind::UDP]);
    if allowed.is_none() {
        printer.error(
            "no --allow or --allow-file: anyone who knows the code can reach the services exposed here",
        );
    }
    for (proto, list) in [("tcp", &services), ("udp", &udp_services)] {
        for (name, target) in list {
            printer.line(
                || format!("exposing {name} ({proto} {target}) to the meeting's members"),
                || {
                    JsonLine::event("expose")
                        .str("service", name)
                        .str("proto", proto)
                        .display("target", target)
                },
            );
        }
    }
    let mut forward = Forward::new(
        &printer,
        Role::Expose {
            services,
            udp_services,
            flows: ServiceFlows::default(),
        },
    );
    let result = driver.run(&mut node, &mut forward);
    finish(&printer, result)
}

/// Each service's name and first address, or `None` after printing why
/// one does not resolve.
fn resolve_services(list: &[Service], printer: &Printer) -> Option<Vec<(String, SocketAddr)>> {
    let targets: Vec<_> = list.iter().map(|s| s.target.clone()).collect();
    let mut services = Vec::new();
    for (service, resolved) in list.iter().zip(resolve_all(&targets, RESOLVE_LIMIT)) {
        match resolved {
            Ok(addrs) if !addrs.is_empty() => services.push((service.name.clone(), addrs[0])),
            Ok(_) => {
                printer.error(&format!(
                    "service {}: {} has no address",
                    service.name, service.target
                ));
                return None;
            }
            Err(error) => {
                printer.error(&format!("service {}: {error}", service.name));
                return None;
            }
        }
    }
    Some(services)
}

/// `tinynode connect`: runs until stopped.
pub fn connect(options: ConnectOptions, identity: Identity) -> i32 {
    let printer = Printer::new(options.meeting.json);
    let listener = match options.listen.map(TcpListener::bind).transpose() {
        Ok(listener) => listener,
        Err(error) => {
            printer.error(&format!("listening for TCP: {error}"));
            return EXIT_FAILURE;
        }
    };
    let udp = match options.udp_listen.map(UdpSocket::bind).transpose() {
        Ok(socket) => socket.map(ClientFlows::new),
        Err(error) => {
            printer.error(&format!("listening for UDP: {error}"));
            return EXIT_FAILURE;
        }
    };
    let Some((mut driver, mut node, _)) =
        start(&options.meeting, &options.allow, identity, &printer)
    else {
        return EXIT_FAILURE;
    };
    let tcp_at = listener.as_ref().and_then(|l| l.local_addr().ok());
    let udp_at = udp.as_ref().and_then(|u| u.socket.local_addr().ok());
    for (proto, at) in [("tcp", tcp_at), ("udp", udp_at)] {
        if let Some(at) = at {
            printer.line(
                || format!("listening at {proto} {at}: what arrives goes to a member that exposes"),
                || {
                    JsonLine::event("listening")
                        .display("addr", at)
                        .str("proto", proto)
                },
            );
        }
    }
    // A channel ready on each connection: a client's first bytes leave
    // the moment it is accepted.
    node.set_stream_spares(listener.is_some());
    let mut forward = Forward::new(
        &printer,
        Role::Connect {
            listener,
            udp,
            service: options.service.unwrap_or_default(),
            peer: options.peer,
            members: Vec::new(),
            not_exposing: Vec::new(),
            exposing: Vec::new(),
            waiting: VecDeque::new(),
        },
    );
    let result = driver.run(&mut node, &mut forward);
    finish(&printer, result)
}

/// Enters the meeting and applies the allow-list.
fn start(
    meeting: &super::options::JoinOptions,
    allow_options: &AllowOptions,
    identity: Identity,
    printer: &Printer,
) -> Option<(tinynode::driver::Driver, Node, Option<Vec<NodeId>>)> {
    let allowed = match allow::load(allow_options) {
        Ok(allowed) => allowed,
        Err(error) => {
            printer.error(&error);
            return None;
        }
    };
    let Entered {
        driver, mut node, ..
    } = enter(meeting, identity, printer, false, true).ok()?;
    node.set_stream_peers(allowed.as_deref());
    Some((driver, node, allowed))
}

/// What this side does.
enum Role {
    /// Connects each stream to the service it names.
    Expose {
        /// TCP service names and addresses.
        services: Vec<(String, SocketAddr)>,
        /// UDP service names and addresses.
        udp_services: Vec<(String, SocketAddr)>,
        /// The UDP flows members opened.
        flows: ServiceFlows,
    },
    /// Accepts connections and opens a stream for each.
    Connect {
        listener: Option<TcpListener>,
        /// The UDP socket clients send to, and a flow per client.
        udp: Option<ClientFlows>,
        /// The service to ask for ("" for the only one).
        service: String,
        /// Only members whose ID starts with these hex digits.
        peer: Option<String>,
        /// Connected members, in the order they connected.
        members: Vec<NodeId>,
        /// Members that refused a TCP stream (reset when they reconnect).
        not_exposing: Vec<NodeId>,
        /// Members that took a TCP stream: asked first.
        exposing: Vec<NodeId>,
        /// Accepted connections with no stream yet, and since when.
        waiting: VecDeque<Waiting>,
    },
}

/// The handler of both commands.
struct Forward<'a> {
    print: PrintEvents<'a>,
    printer: &'a Printer,
    role: Role,
    registry: Option<Registry>,
    next_token: usize,
    bridges: BTreeMap<Token, Bridge>,
    by_stream: BTreeMap<StreamId, Token>,
    /// Streams opened for a connection, not yet accepted by the member.
    unaccepted: Vec<StreamId>,
    inbox: Vec<Event>,
}

impl<'a> Forward<'a> {
    fn new(printer: &'a Printer, role: Role) -> Self {
        Self {
            print: printer.events(),
            printer,
            role,
            registry: None,
            next_token: HANDLER_TOKENS + 2,
            bridges: BTreeMap::new(),
            by_stream: BTreeMap::new(),
            unaccepted: Vec::new(),
            inbox: Vec::new(),
        }
    }

    /// A token no source of ours holds (they wrap around long after the
    /// first ones are gone).
    fn fresh_token(&mut self) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        if self.next_token >= HANDLER_TOKENS_END {
            self.next_token = HANDLER_TOKENS + 2;
        }
        token
    }

    /// Registers `tcp` for readiness under a fresh token.
    fn register(&mut self, tcp: &mut TcpStream) -> Option<Token> {
        let token = self.fresh_token();
        let registry = self.registry.as_ref()?;
        registry
            .register(tcp, token, Interest::READABLE | Interest::WRITABLE)
            .ok()?;
        Some(token)
    }

    fn add_bridge(&mut self, token: Token, bridge: Bridge) {
        self.by_stream.insert(bridge.stream, token);
        self.bridges.insert(token, bridge);
    }

    /// Pumps the bridge at `token` and ends it if it ended.
    fn pump(&mut self, node: &mut Node, token: Token) {
        let Some(bridge) = self.bridges.get_mut(&token) else {
            return;
        };
        match bridge.pump(node) {
            Pumped::Open => {}
            Pumped::Done => self.end(token, None),
            Pumped::Failed(why) => self.end(token, Some(why)),
        }
    }

    /// Drops the bridge at `token`, saying how it ended.
    fn end(&mut self, token: Token, failure: Option<String>) {
        let Some(mut bridge) = self.bridges.remove(&token) else {
            return;
        };
        self.by_stream.remove(&bridge.stream);
        self.unaccepted.retain(|s| *s != bridge.stream);
        if let Some(registry) = &self.registry {
            let _ = registry.deregister(&mut bridge.tcp);
        }
        let peer = bridge.stream.peer();
        let (sent, received) = (bridge.to_stream, bridge.to_tcp);
        match failure {
            None => self.printer.line(
                || {
                    format!(
                        "forwarded connection with {} closed: {sent} bytes sent, {received} received",
                        peer.short()
                    )
                },
                || {
                    JsonLine::event("forward_closed")
                        .display("peer", peer)
                        .number("sent", sent)
                        .number("received", received)
                },
            ),
            Some(why) => {
                bridge.reset_tcp();
                self.printer.line(
                    || format!("forwarded connection with {} reset: {why}", peer.short()),
                    || {
                        JsonLine::event("forward_reset")
                            .display("peer", peer)
                            .str("reason", &why)
                    },
                );
            }
        }
    }

    fn handle(&mut self, node: &mut Node, event: Event) {
        if self.flow_event(node, &event) {
            return;
        }
        match event {
            Event::Connected { peer, .. } => {
                if let Role::Connect {
                    members,
                    not_exposing,
                    ..
                } = &mut self.role
                {
                    members.retain(|m| *m != peer);
                    members.push(peer);
                    not_exposing.retain(|m| *m != peer);
                }
                if let Role::Connect { udp: Some(udp), .. } = &mut self.role {
                    udp.forget_refusal(peer);
                }
                self.assign(node);
            }
            Event::Disconnected { peer, .. } => {
                if let Role::Connect { members, .. } = &mut self.role {
                    members.retain(|m| *m != peer);
                }
            }
            Event::StreamIncoming { stream, header } => self.incoming(node, stream, &header),
            Event::StreamRefused {
                peer,
                header,
                reason,
            } => self.printer.line(
                || {
                    format!(
                        "refused a {} stream from {peer}: {reason}",
                        header.kind.name()
                    )
                },
                || {
                    JsonLine::event("stream_refused")
                        .display("peer", peer)
                        .str("kind", &header.kind.name())
                        .str("reason", &reason)
                },
            ),
            Event::StreamAccepted { stream } => {
                self.unaccepted.retain(|s| *s != stream);
                if let Role::Connect { exposing, .. } = &mut self.role
                    && !exposing.contains(&stream.peer())
                {
                    exposing.push(stream.peer());
                }
                if let Some(&token) = self.by_stream.get(&stream) {
                    if let Some(bridge) = self.bridges.get_mut(&token) {
                        bridge.accepted();
                    }
                    self.pump(node, token);
                }
            }
            Event::StreamData { stream, bytes } => {
                self.on_stream(node, stream, |b| b.on_data(&bytes))
            }
            Event::StreamFinished { stream } => self.on_stream(node, stream, Bridge::on_finished),
            Event::StreamWritable { stream } => self.on_stream(node, stream, |_| {}),
            Event::StreamClosed { stream } => self.on_stream(node, stream, Bridge::on_closed),
            Event::StreamReset {
                stream,
                code,
                reason,
            } => self.reset(node, stream, code, reason),
            _ => {}
        }
    }

    /// Takes `event` if it is about a UDP flow: true when it was.
    fn flow_event(&mut self, node: &mut Node, event: &Event) -> bool {
        let token = match (&self.role, event) {
            (Role::Expose { .. }, Event::StreamIncoming { header, .. })
                if header.kind == StreamKind::UDP =>
            {
                Some(self.fresh_token())
            }
            _ => None,
        };
        let registry = self.registry.as_ref();
        match (&mut self.role, event) {
            (
                Role::Expose {
                    udp_services,
                    flows,
                    ..
                },
                Event::StreamIncoming { stream, header },
            ) if header.kind == StreamKind::UDP => {
                let now = Instant::now();
                let found = match header.name.as_str() {
                    "" if udp_services.len() == 1 => udp_services.first(),
                    name => udp_services.iter().find(|(n, _)| n == name),
                };
                let opened = match (found, registry, token) {
                    (Some((name, target)), Some(registry), Some(token)) => {
                        match flows.open(registry, token, *stream, *target) {
                            Ok(()) => {
                                log::debug!(
                                    "udp: member {} opened a flow to {name} ({target})",
                                    stream.peer().short()
                                );
                                true
                            }
                            Err(error) => {
                                log::warn!("udp: a socket for {name}: {error}");
                                false
                            }
                        }
                    }
                    _ => false,
                };
                if !opened {
                    let _ = node.stream_reset(now, *stream, "no such udp service");
                }
                true
            }
            (Role::Expose { flows, .. }, Event::StreamData { stream, bytes })
                if flows.has(*stream) =>
            {
                flows.deliver(*stream, bytes);
                true
            }
            (
                Role::Expose { flows, .. },
                Event::StreamClosed { stream } | Event::StreamReset { stream, .. },
            ) if flows.has(*stream) => {
                flows.close(registry, *stream);
                true
            }
            (Role::Connect { udp: Some(udp), .. }, Event::StreamData { stream, bytes })
                if udp.has(*stream) =>
            {
                udp.deliver(*stream, bytes);
                true
            }
            (
                Role::Connect { udp: Some(udp), .. },
                Event::StreamClosed { stream } | Event::StreamReset { stream, .. },
            ) if udp.has(*stream) => {
                udp.close(*stream);
                true
            }
            _ => false,
        }
    }

    /// Datagrams from `connect --udp-listen`'s clients, each to its flow.
    fn udp_from_clients(&mut self, node: &mut Node) {
        let Role::Connect {
            udp: Some(udp),
            service,
            peer,
            members,
            ..
        } = &mut self.role
        else {
            return;
        };
        let header = StreamHeader {
            kind: StreamKind::UDP,
            name: service.clone(),
        };
        udp.on_ready(node, |node, refusers| {
            members
                .iter()
                .filter(|m| {
                    !refusers.contains(m)
                        && peer
                            .as_ref()
                            .is_none_or(|prefix| m.to_string().starts_with(prefix.as_str()))
                })
                .find_map(|m| node.open_stream(Instant::now(), *m, header.clone()).ok())
        });
    }

    fn on_stream(&mut self, node: &mut Node, stream: StreamId, action: impl FnOnce(&mut Bridge)) {
        if let Some(&token) = self.by_stream.get(&stream) {
            if let Some(bridge) = self.bridges.get_mut(&token) {
                action(bridge);
            }
            self.pump(node, token);
        }
    }

    /// The member reset `stream`. A connection whose stream the member
    /// refused without taking it (or whose connection to the member was
    /// lost first) goes back to wait for another member, with the bytes
    /// read from it (a member that refused is not asked again until it
    /// reconnects); any other ends.
    fn reset(&mut self, node: &mut Node, stream: StreamId, code: ResetCode, reason: String) {
        let Some(&token) = self.by_stream.get(&stream) else {
            return;
        };
        let never_taken = self.unaccepted.contains(&stream);
        if let Role::Connect {
            waiting,
            not_exposing,
            ..
        } = &mut self.role
            && never_taken
            && matches!(code, ResetCode::Refused | ResetCode::ConnectionLost)
            && let Some(mut bridge) = self.bridges.remove(&token)
        {
            self.by_stream.remove(&stream);
            self.unaccepted.retain(|s| *s != stream);
            if code == ResetCode::Refused && !not_exposing.contains(&stream.peer()) {
                not_exposing.push(stream.peer());
            }
            log::debug!(
                "member {} did not take a tcp stream ({code:?}): {reason}",
                stream.peer().short()
            );
            if let Some(registry) = &self.registry {
                let _ = registry.deregister(&mut bridge.tcp);
            }
            waiting.push_front(bridge.into_waiting(Instant::now()));
            self.assign(node);
            return;
        }
        let why = match code {
            ResetCode::ConnectionLost => "the connection to the member was lost".to_owned(),
            _ => format!("the member reset it: {reason}"),
        };
        self.end(token, Some(why));
    }

    /// A member opened a stream: expose connects it to its service.
    fn incoming(&mut self, node: &mut Node, stream: StreamId, header: &StreamHeader) {
        let now = Instant::now();
        let Role::Expose { services, .. } = &self.role else {
            let _ = node.stream_reset(now, stream, "this member exposes nothing");
            return;
        };
        let found = match header.name.as_str() {
            "" if services.len() == 1 => services.first(),
            name => services.iter().find(|(n, _)| n == name),
        };
        let Some((name, target)) = found.cloned() else {
            let offered: Vec<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
            let why = if header.name.is_empty() {
                format!("name a service: {}", offered.join(", "))
            } else {
                format!(
                    "no service {:?} here (offered: {})",
                    header.name,
                    offered.join(", ")
                )
            };
            let _ = node.stream_reset(now, stream, &why);
            return;
        };
        let mut tcp = match TcpStream::connect(target) {
            Ok(tcp) => tcp,
            Err(error) => {
                let _ = node.stream_reset(now, stream, &format!("the service: {error}"));
                return;
            }
        };
        let Some(token) = self.register(&mut tcp) else {
            let _ = node.stream_reset(now, stream, "cannot watch the connection");
            return;
        };
        let peer = stream.peer();
        self.printer.line(
            || format!("member {} connects to {name} ({target})", peer.short()),
            || {
                JsonLine::event("forward_open")
                    .display("peer", peer)
                    .str("service", &name)
                    .display("target", target)
            },
        );
        self.add_bridge(token, Bridge::to_service(tcp, stream));
        self.pump(node, token);
    }

    /// Accepts every waiting client of the listener.
    fn accept(&mut self, node: &mut Node) {
        loop {
            let Role::Connect {
                listener: Some(listener),
                waiting,
                ..
            } = &mut self.role
            else {
                return;
            };
            match listener.accept() {
                Ok((tcp, from)) => {
                    if waiting.len() >= MAX_WAITING {
                        log::warn!(
                            "{MAX_WAITING} connections already wait for a member; closing {from}"
                        );
                        continue;
                    }
                    log::debug!("accepted {from}");
                    waiting.push_back(Waiting::new(tcp, Instant::now()));
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    log::warn!("accepting a connection: {error}");
                    break;
                }
            }
        }
        self.assign(node);
    }

    /// Gives each waiting connection a stream to a member that exposes
    /// (one that took a stream before, if any is connected), and closes
    /// those that waited too long.
    fn assign(&mut self, node: &mut Node) {
        let now = Instant::now();
        let Role::Connect {
            service,
            peer,
            members,
            not_exposing,
            exposing,
            waiting,
            ..
        } = &mut self.role
        else {
            return;
        };
        let wanted = |m: &NodeId| {
            !not_exposing.contains(m)
                && peer
                    .as_ref()
                    .is_none_or(|prefix| m.to_string().starts_with(prefix.as_str()))
        };
        let mut assigned = Vec::new();
        while let Some(client) = waiting.pop_front() {
            let header = StreamHeader {
                kind: StreamKind::TCP,
                name: service.clone(),
            };
            let known = members.iter().filter(|m| exposing.contains(m));
            let others = members.iter().filter(|m| !exposing.contains(m));
            let opened = known
                .chain(others)
                .filter(|m| wanted(m))
                .find_map(|m| node.open_stream(now, *m, header.clone()).ok());
            match opened {
                Some(stream) => assigned.push((client, stream)),
                None if now.duration_since(client.since) >= WAIT_LIMIT => {
                    log::warn!(
                        "no member exposing a service connected in {WAIT_LIMIT:?}; closing a connection"
                    );
                    drop(client);
                }
                None => {
                    waiting.push_front(client);
                    break;
                }
            }
        }
        for (mut client, stream) in assigned {
            let Some(token) = self.register(&mut client.tcp) else {
                let _ = node.stream_reset(now, stream, "cannot watch the connection");
                continue;
            };
            self.unaccepted.push(stream);
            self.add_bridge(token, Bridge::from_client(client, stream));
            self.pump(node, token);
        }
    }

    /// When the oldest waiting connection gives up.
    fn next_deadline(&self) -> Option<Instant> {
        match &self.role {
            Role::Connect { waiting, udp, .. } => {
                let waited = waiting.front().map(|client| client.since + WAIT_LIMIT);
                let idle = udp.as_ref().and_then(ClientFlows::next_expiry);
                waited.into_iter().chain(idle).min()
            }
            Role::Expose { flows, .. } => flows.next_expiry(),
        }
    }
}

impl Handler for &mut Forward<'_> {
    fn on_event(&mut self, event: &Event) -> Flow {
        let flow = self.print.on_event(event);
        if matches!(
            event,
            Event::Connected { .. }
                | Event::Disconnected { .. }
                | Event::StreamIncoming { .. }
                | Event::StreamRefused { .. }
                | Event::StreamAccepted { .. }
                | Event::StreamData { .. }
                | Event::StreamFinished { .. }
                | Event::StreamWritable { .. }
                | Event::StreamClosed { .. }
                | Event::StreamReset { .. }
        ) {
            self.inbox.push(event.clone());
        }
        flow
    }

    fn before_sleep(&mut self, node: &Node) {
        self.print.before_sleep(node);
    }

    fn wake_at(&self) -> Option<Instant> {
        self.next_deadline()
    }

    fn attach(&mut self, registry: &Registry) {
        let cloned = registry.try_clone().ok();
        if let (Some(registry), Role::Connect { listener, udp, .. }) = (&cloned, &mut self.role) {
            if let Some(listener) = listener
                && let Err(error) = registry.register(listener, LISTENER, Interest::READABLE)
            {
                log::warn!("watching the TCP listener: {error}");
            }
            if let Some(udp) = udp
                && let Err(error) =
                    registry.register(&mut udp.socket, UDP_LISTENER, Interest::READABLE)
            {
                log::warn!("watching the UDP socket: {error}");
            }
        }
        self.registry = cloned;
    }

    fn on_ready(&mut self, node: &mut Node, event: &mio::event::Event) -> Flow {
        let token = event.token();
        if token == LISTENER {
            self.accept(node);
            return Flow::Continue;
        }
        if token == UDP_LISTENER {
            self.udp_from_clients(node);
            return Flow::Continue;
        }
        if let Role::Expose { flows, .. } = &mut self.role
            && flows.on_ready(node, token)
        {
            return Flow::Continue;
        }
        if let Some(bridge) = self.bridges.get_mut(&token) {
            bridge.on_ready(
                event.is_readable() || event.is_read_closed() || event.is_error(),
                event.is_writable() || event.is_write_closed() || event.is_error(),
            );
            self.pump(node, token);
        }
        Flow::Continue
    }

    fn on_wake(&mut self, node: &mut Node) -> Flow {
        for event in std::mem::take(&mut self.inbox) {
            self.handle(node, event);
        }
        let now = Instant::now();
        if self.next_deadline().is_some_and(|at| now >= at) {
            self.assign(node);
            match &mut self.role {
                Role::Expose { flows, .. } => flows.expire(node, self.registry.as_ref(), now),
                Role::Connect { udp: Some(udp), .. } => udp.expire(node, now),
                Role::Connect { .. } => {}
            }
        }
        self.print.on_wake(node)
    }
}
