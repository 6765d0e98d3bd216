//! The mio driver: the only code that touches sockets, the clock and the
//! OS random generator.
//!
//! One UDP socket per bound address (one per address family) and one
//! `Poll`. The loop hands every input to the [`Node`], drains its outputs
//! (sending each datagram from the socket its [`Transmit::source`] names,
//! passing events to the caller), then sleeps in `poll` until the node's
//! next deadline, a datagram, socket writability (only while datagrams are
//! queued), a line on standard input or SIGINT/SIGTERM. An idle node with
//! no deadline sleeps without a timeout: there is no polling loop. Reads
//! are drained until `WouldBlock` (mio is edge-triggered), an unexpected
//! receive error is logged and reading goes on; writes that would block
//! wait in a bounded queue (`send_queue.rs`). With LAN beacons on, a receive-only
//! listener on the beacon group joins the poll (`lan.rs`). A wildcard-bound
//! socket's concrete address is looked at again whenever the host's
//! addresses or routes change (`netwatch.rs`), and the node told.
//!
//! About 845 lines before its tests, kept as one file: the loop, its
//! sockets, the waker and the flushing of queued sends share one `Poll`
//! and its tokens; each helper with a job of its own has its own file
//! (`key_file.rs`, `lan.rs`, `netwatch.rs`, `resolve.rs`, `send_queue.rs`,
//! `signals.rs`, `socket.rs`, `stdin.rs`).

mod key_file;
mod lan;
mod netwatch;
mod resolve;
mod send_queue;
mod signals;
mod socket;
mod stdin;

pub use key_file::{KeyFileError, generate_identity, load_or_create_identity};
pub use resolve::{HostPort, HostPortError, ResolveError, resolve_all};
pub use signals::Signals;
pub use socket::{bind as bind_udp, reset_on_close};

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, mpsc};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use log::{debug, warn};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use ring::rand::{SecureRandom, SystemRandom};

use crate::api::{Command, Event, Input, NodeConfig, Output, WallClock};
use crate::limits::MAX_DATAGRAM_LEN;
use crate::node::Node;
use crate::transmit::Transmit;
use netwatch::NetWatch;
use send_queue::{Flushed, SEND_QUEUE_CAPACITY, SendQueue};
use stdin::{StdinLines, Taken};

/// Most batches of standard input (each one read of up to 64 KiB) taken
/// between two looks at the sockets.
const STDIN_READS_PER_WAKEUP: usize = 4;
/// Most receive errors in a row on one socket before the loop leaves it
/// until its next readiness event (a socket that only errors must not spin).
const MAX_RECEIVE_ERRORS: usize = 64;
/// Datagrams read from one socket per wakeup before the loop runs due
/// timers and standard input; the rest is read at the next turn, which
/// comes at once. A flood the node cannot keep up with then delays its
/// timers (ICE consent, retransmissions, DHT timeouts) by one batch, never
/// indefinitely.
const MAX_DATAGRAMS_PER_WAKEUP: usize = 256;

const SIGNALS: Token = Token(0);
/// The loop's one waker (mio allows one per poll): standard input's reader
/// and [`CommandSender`]s share it.
const WAKE: Token = Token(1);
/// LAN beacon listener `i` ([`Driver::listen_for_beacons`]) is registered
/// as `Token(LAST_BEACONS - i)`.
const LAST_BEACONS: usize = usize::MAX;
/// Socket `i` is registered as `Token(FIRST_SOCKET + i)`.
const FIRST_SOCKET: usize = 2;
/// The handler's own sources (TCP listeners and connections of port
/// forwarding) take tokens from here up, below [`HANDLER_TOKENS_END`].
pub const HANDLER_TOKENS: usize = 1 << 16;
/// The watch on the host's addresses ([`NetWatch`]).
const NETWATCH: Token = Token(HANDLER_TOKENS - 1);
/// One past the last token a handler may use.
pub const HANDLER_TOKENS_END: usize = 1 << 30;

/// Hands commands to a running [`Driver`] from another thread (for
/// example host names resolved off the loop), waking it.
#[derive(Clone)]
pub struct CommandSender {
    sender: mpsc::Sender<Command>,
    waker: Arc<Waker>,
}

impl CommandSender {
    /// Queues `command` for the node; false once the driver is gone.
    pub fn send(&self, command: Command) -> bool {
        self.sender.send(command).is_ok() && self.waker.wake().is_ok()
    }
}

/// What the event callback wants the loop to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep running.
    Continue,
    /// Return from [`Driver::run`] with this exit code.
    Exit(i32),
    /// Leave the meeting (closing every channel, as on a signal), then
    /// return from [`Driver::run`] with this exit code.
    Leave(i32),
}

/// What the loop tells its user: each event, and when it is about to sleep.
pub trait Handler {
    /// An event from the node; the answer says whether to keep running.
    fn on_event(&mut self, event: &Event) -> Flow;

    /// The loop has handled everything pending and is about to wait: the
    /// moment to flush buffered output, or to save what `node` knows.
    fn before_sleep(&mut self, _node: &Node) {}

    /// A deadline of the handler's own (a time limit): the loop wakes by
    /// then at the latest and calls [`on_wake`](Self::on_wake).
    fn wake_at(&self) -> Option<Instant> {
        None
    }

    /// The loop woke (for any reason) and handled what woke it; the
    /// answer says whether to keep running.
    fn on_wake(&mut self, _node: &mut Node) -> Flow {
        Flow::Continue
    }

    /// The loop starts: sources of the handler's own (TCP listeners and
    /// connections) are registered with `registry` (or a clone of it, for
    /// later ones), with tokens in [`HANDLER_TOKENS`]..[`HANDLER_TOKENS_END`],
    /// so one loop waits for everything.
    fn attach(&mut self, _registry: &mio::Registry) {}

    /// One of the handler's own sources is ready. The node's outputs are
    /// sent right after.
    fn on_ready(&mut self, _node: &mut Node, _event: &mio::event::Event) -> Flow {
        Flow::Continue
    }
}

impl<F: FnMut(&Event) -> Flow> Handler for F {
    fn on_event(&mut self, event: &Event) -> Flow {
        self(event)
    }
}

/// Why [`Driver::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stop {
    /// SIGINT or SIGTERM arrived.
    Signal,
    /// The event callback returned [`Flow::Exit`] with this code.
    Exit(i32),
}

/// Why the driver could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// Binding a UDP socket failed.
    Bind(SocketAddr, io::Error),
    /// Setting up mio or the standard input reader failed.
    Setup(io::Error),
    /// The OS random generator failed.
    Random,
    /// The configuration names a different number of local addresses than
    /// there are sockets.
    Addresses,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bind(addr, error) => write!(f, "cannot bind UDP socket to {addr}: {error}"),
            Self::Setup(error) => write!(f, "cannot set up the event loop: {error}"),
            Self::Random => f.write_str("the operating system's random generator failed"),
            Self::Addresses => f.write_str("one local address per socket is needed"),
        }
    }
}

impl std::error::Error for StartError {}

/// A socket the loop reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Readable {
    /// The node's socket at this index.
    Socket(usize),
    /// The LAN beacon listener at this index.
    Beacons(usize),
}

/// One bound socket and the address the node knows it by (the bound
/// address with a wildcard IP made concrete).
struct Socket {
    udp: UdpSocket,
    bound: SocketAddr,
    local: SocketAddr,
    writable_interest: bool,
}

/// The sockets, the poll and the node's IO.
pub struct Driver {
    poll: Poll,
    sockets: Vec<Socket>,
    signals: Option<Signals>,
    stdin: Option<StdinLines>,
    /// Standard input woke the loop and may have a batch waiting (taking
    /// pauses while the node is not ready to send).
    stdin_pending: bool,
    queue: SendQueue,
    waker: Arc<Waker>,
    /// Commands from other threads ([`CommandSender`]).
    inbox: Option<mpsc::Receiver<Command>>,
    /// The receive-only LAN beacon listeners (one per family) and their
    /// group addresses.
    beacons: Vec<(UdpSocket, SocketAddr)>,
    /// Sockets left readable when their batch ran out (mio reports
    /// readiness once per edge, so the loop remembers them).
    backlog: Vec<Readable>,
    /// True once the loop is leaving (a signal, or a handler's
    /// [`Flow::Leave`]).
    leaving: bool,
    /// Receive errors (ICMP errors reported on a socket), warned about at
    /// the 1st, 2nd, 4th … one.
    receive_errors: crate::throttle::Throttle,
    /// The watch on the host's addresses, when a socket is bound to a
    /// wildcard address.
    netwatch: Option<NetWatch>,
    /// Where the node's traffic goes (its bootstrap nodes): the addresses
    /// a wildcard socket's concrete address is looked up toward.
    toward: Vec<SocketAddr>,
}

impl Driver {
    /// Binds a socket at each of `binds`, starts the standard input reader
    /// if `read_stdin` (its lines become [`Command::SendMany`]s), and
    /// creates the node (seeded from the OS random generator) for
    /// `configure`'s config, which receives the sockets' actual addresses
    /// and a wall-clock reading and must list one local address per socket,
    /// in the same order.
    pub fn start(
        binds: &[SocketAddr],
        read_stdin: bool,
        configure: impl FnOnce(&[SocketAddr], WallClock) -> NodeConfig,
    ) -> Result<(Self, Node), StartError> {
        if binds.is_empty() {
            return Err(StartError::Addresses);
        }
        let poll = Poll::new().map_err(StartError::Setup)?;
        let mut sockets = Vec::new();
        let mut bound = Vec::new();
        for (i, &bind) in binds.iter().enumerate() {
            let udp = socket::bind(bind).map_err(|error| StartError::Bind(bind, error))?;
            let mut udp = UdpSocket::from_std(udp);
            let addr = udp.local_addr().map_err(StartError::Setup)?;
            enlarge_buffers(&udp);
            poll.registry()
                .register(&mut udp, Token(FIRST_SOCKET + i), Interest::READABLE)
                .map_err(StartError::Setup)?;
            debug!("bound UDP socket to {addr}");
            bound.push(addr);
            sockets.push(Socket {
                udp,
                bound: addr,
                local: addr,
                writable_interest: false,
            });
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKE).map_err(StartError::Setup)?);
        let stdin = if read_stdin {
            Some(StdinLines::spawn(Arc::clone(&waker)).map_err(StartError::Setup)?)
        } else {
            None
        };
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| StartError::Random)?;
        let now = Instant::now();
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let clock = WallClock { at: now, unix_ms };
        let config = configure(&bound, clock);
        if config.local_addrs.len() != sockets.len() {
            return Err(StartError::Addresses);
        }
        for (socket, local) in sockets.iter_mut().zip(&config.local_addrs) {
            socket.local = *local;
        }
        let toward: Vec<SocketAddr> = config
            .bootstrap
            .iter()
            .chain(config.mainline_bootstrap.iter().flatten())
            .copied()
            .collect();
        let netwatch = sockets
            .iter()
            .any(|s| s.bound.ip().is_unspecified())
            .then(|| watch_addresses(&poll))
            .flatten();
        let node = Node::new(now, config, seed);
        let driver = Self {
            poll,
            sockets,
            signals: None,
            stdin,
            stdin_pending: false,
            queue: SendQueue::new(SEND_QUEUE_CAPACITY),
            waker,
            inbox: None,
            beacons: Vec::new(),
            backlog: Vec::new(),
            leaving: false,
            receive_errors: crate::throttle::Throttle::default(),
            netwatch,
            toward,
        };
        Ok((driver, node))
    }

    /// Makes [`run`](Self::run) leave (closing the node's channels) and
    /// return [`Stop::Signal`] when SIGINT or SIGTERM arrives.
    pub fn stop_on_signals(&mut self, mut signals: Signals) -> io::Result<()> {
        signals.register(self.poll.registry(), SIGNALS)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// A handle that wakes the loop from another thread (the handler's
    /// [`on_wake`](Handler::on_wake) runs after).
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// A sender whose commands the loop hands to the node as they come
    /// (one inbox per driver; a second call replaces the first).
    pub fn command_sender(&mut self) -> CommandSender {
        let (sender, receiver) = mpsc::channel();
        self.inbox = Some(receiver);
        CommandSender {
            sender,
            waker: Arc::clone(&self.waker),
        }
    }

    /// Lets each of the node's sockets send LAN beacons (IPv4 to
    /// 239.255.70.77, IPv6 to ff02::114; TTL and hop limit 1, out of
    /// the bound interface) and opens the shared listener of each family
    /// that hears other tinynodes' beacons. A family the host cannot serve
    /// (no multicast-capable interface, no permission) is logged and left
    /// out; an error only when no family could be set up, for the caller
    /// to log: the node carries on with its other sources.
    pub fn listen_for_beacons(&mut self) -> io::Result<()> {
        let mut last_error = None;
        for index in 0..self.sockets.len() {
            let opened = self.open_beacons(index);
            match opened {
                Ok((mut listener, group)) => {
                    let token = Token(LAST_BEACONS - self.beacons.len());
                    self.poll
                        .registry()
                        .register(&mut listener, token, Interest::READABLE)?;
                    self.beacons.push((listener, group));
                }
                Err(error) => {
                    debug!("lan: no beacons from socket {index}: {error}");
                    last_error = Some(error);
                }
            }
        }
        match (self.beacons.is_empty(), last_error) {
            (true, Some(error)) => Err(error),
            _ => Ok(()),
        }
    }

    /// Prepares socket `index` to send beacons and opens the listener of
    /// its family.
    fn open_beacons(&self, index: usize) -> io::Result<(UdpSocket, SocketAddr)> {
        let socket = self
            .sockets
            .get(index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such socket"))?;
        let (listener, group) = lan::open_beacons(&socket.udp, socket.bound, socket.local)?;
        Ok((UdpSocket::from_std(listener), group))
    }

    /// Hands the node an input at the current time.
    pub fn submit(&mut self, node: &mut Node, input: Input<'_>) {
        node.handle_input(Instant::now(), input);
    }

    /// Runs the loop until a signal arrives or `handler` asks to exit.
    pub fn run(&mut self, node: &mut Node, mut handler: impl Handler) -> io::Result<Stop> {
        let mut events = Events::with_capacity(16);
        // One byte more than accepted, so an oversized datagram is seen as such.
        let mut buf = vec![0u8; MAX_DATAGRAM_LEN + 1];
        handler.attach(self.poll.registry());
        loop {
            let deadline = match self.drain_outputs(node, &mut handler) {
                Drained::Stop(stop) => return Ok(stop),
                Drained::Wait(deadline) => deadline,
            };
            self.flush()?;
            handler.before_sleep(node);
            let look = self.netwatch.as_ref().and_then(NetWatch::due);
            let wake = [deadline, handler.wake_at(), look]
                .into_iter()
                .flatten()
                .min();
            let timeout =
                if (self.stdin_pending && node.ready_to_send()) || !self.backlog.is_empty() {
                    // Input left untaken to let the sockets have their turn, or
                    // datagrams left unread to let the timers have theirs.
                    Some(std::time::Duration::ZERO)
                } else {
                    wake.map(|at| at.saturating_duration_since(Instant::now()))
                };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
            for event in events.iter() {
                match event.token() {
                    SIGNALS => {
                        if let Some(signals) = self.signals.as_mut() {
                            signals.drain();
                        }
                        debug!("signal received; node stats: {}", node.stats());
                        self.leave(node, &mut handler);
                        return Ok(Stop::Signal);
                    }
                    WAKE => {
                        self.stdin_pending = self.stdin.is_some();
                        let commands: Vec<Command> = self
                            .inbox
                            .as_ref()
                            .map(|inbox| inbox.try_iter().collect())
                            .unwrap_or_default();
                        for command in commands {
                            node.handle_input(Instant::now(), Input::Command(command));
                        }
                    }
                    NETWATCH => {
                        if let Some(watch) = self.netwatch.as_mut() {
                            watch.on_readable(Instant::now());
                        }
                    }
                    Token(token) if (HANDLER_TOKENS..HANDLER_TOKENS_END).contains(&token) => {
                        let flow = handler.on_ready(node, event);
                        if let Some(stop) = self.end_of(flow, node, &mut handler) {
                            return Ok(stop);
                        }
                        if let Drained::Stop(stop) = self.drain_outputs(node, &mut handler) {
                            return Ok(stop);
                        }
                    }
                    Token(token) if token > LAST_BEACONS - self.beacons.len() => {
                        let beacons = Readable::Beacons(LAST_BEACONS - token);
                        if let Some(stop) = self.receive_all(beacons, node, &mut buf, &mut handler)
                        {
                            return Ok(stop);
                        }
                    }
                    Token(n) if event.is_readable() && n >= FIRST_SOCKET => {
                        let socket = Readable::Socket(n - FIRST_SOCKET);
                        if let Some(stop) = self.receive_all(socket, node, &mut buf, &mut handler) {
                            return Ok(stop);
                        }
                    }
                    _ => {}
                }
            }
            for from in std::mem::take(&mut self.backlog) {
                if let Some(stop) = self.receive_all(from, node, &mut buf, &mut handler) {
                    return Ok(stop);
                }
            }
            let now = Instant::now();
            if self.netwatch.as_mut().is_some_and(|w| w.take_due(now)) {
                self.look_at_addresses(now, node);
            }
            if deadline.is_some_and(|at| now >= at) {
                node.handle_input(now, Input::Timeout);
            }
            if let Some(stop) = self.read_stdin(node, &mut handler) {
                return Ok(stop);
            }
            let flow = handler.on_wake(node);
            if let Some(stop) = self.end_of(flow, node, &mut handler) {
                return Ok(stop);
            }
        }
    }

    /// The host's addresses changed: each wildcard socket's concrete
    /// address is looked up again and the node told if one moved.
    fn look_at_addresses(&mut self, now: Instant, node: &mut Node) {
        let found: Vec<SocketAddr> = self
            .sockets
            .iter()
            .map(|s| concrete_local_addr(s.bound, &self.toward))
            .collect();
        if found.iter().zip(&self.sockets).all(|(f, s)| *f == s.local) {
            debug!("netwatch: the host's addresses changed, ours did not");
            return;
        }
        for (socket, local) in self.sockets.iter_mut().zip(&found) {
            socket.local = *local;
        }
        node.set_local_addrs(now, found);
    }

    /// The stop a handler's `flow` asks for, after leaving if it says so.
    fn end_of(&mut self, flow: Flow, node: &mut Node, handler: &mut impl Handler) -> Option<Stop> {
        match flow {
            Flow::Continue => None,
            Flow::Exit(code) => Some(Stop::Exit(code)),
            Flow::Leave(code) => {
                self.leave(node, handler);
                Some(Stop::Exit(code))
            }
        }
    }

    /// Hands standard input's lines to the node, each read's lines as one
    /// [`Command::SendMany`], while batches wait and the node is ready to
    /// send, for at most [`STDIN_READS_PER_WAKEUP`] batches, so a producer
    /// faster than the node cannot keep the sockets waiting. When the node
    /// is not ready, taking stops until a later wakeup (acknowledgements from
    /// peers) finds it ready again; the reader thread waits meanwhile.
    fn read_stdin(&mut self, node: &mut Node, handler: &mut impl Handler) -> Option<Stop> {
        for _ in 0..STDIN_READS_PER_WAKEUP {
            if !(self.stdin_pending && node.ready_to_send()) {
                break;
            }
            let Some(stdin) = self.stdin.as_ref() else {
                self.stdin_pending = false;
                break;
            };
            match stdin.take() {
                Taken::Lines(lines) => {
                    node.handle_input(Instant::now(), Input::Command(Command::SendMany(lines)));
                    if let Drained::Stop(stop) = self.drain_outputs(node, handler) {
                        return Some(stop);
                    }
                }
                Taken::Empty => self.stdin_pending = false,
                Taken::Closed => {
                    self.stdin = None;
                    self.stdin_pending = false;
                }
            }
        }
        None
    }

    /// Tells the node to leave (closing its channels) and sends what that
    /// produces, without waiting for answers.
    fn leave(&mut self, node: &mut Node, handler: &mut impl Handler) {
        self.leaving = true;
        node.handle_input(Instant::now(), Input::Command(Command::Leave));
        let _ = self.drain_outputs(node, handler);
    }

    /// Reads datagrams from `from` until it would block, or until
    /// [`MAX_DATAGRAMS_PER_WAKEUP`] were read (then `from` goes to the
    /// backlog, read on the next turn), feeding each to the node and
    /// draining its outputs after each. Beacons from the listener arrive
    /// with the group as their destination.
    fn receive_all(
        &mut self,
        from: Readable,
        node: &mut Node,
        buf: &mut [u8],
        handler: &mut impl Handler,
    ) -> Option<Stop> {
        let mut errors = 0;
        for _ in 0..MAX_DATAGRAMS_PER_WAKEUP {
            let (udp, destination) = match from {
                Readable::Socket(index) => {
                    let socket = self.sockets.get(index)?;
                    (&socket.udp, socket.local)
                }
                Readable::Beacons(index) => {
                    let (listener, group) = self.beacons.get(index)?;
                    (listener, *group)
                }
            };
            match udp.recv_from(buf) {
                Ok((len, source)) => {
                    let data = buf.get(..len).unwrap_or_default();
                    let input = Input::Receive {
                        source: crate::addr::canonical(source),
                        destination,
                        data,
                    };
                    node.handle_input(Instant::now(), input);
                    if let Drained::Stop(stop) = self.drain_outputs(node, handler) {
                        return Some(stop);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return None,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    // For example an ICMP error reported on the socket:
                    // logged, never fatal; what is queued behind it is read.
                    match self.receive_errors.tick() {
                        Some(count) => warn!(
                            "receive on {destination} failed: {error} ({count} receive errors so far)"
                        ),
                        None => debug!("receive on {destination} failed: {error}"),
                    }
                    errors += 1;
                    if errors >= MAX_RECEIVE_ERRORS {
                        return None;
                    }
                }
            }
        }
        if !self.backlog.contains(&from) {
            self.backlog.push(from);
        }
        None
    }

    fn drain_outputs(&mut self, node: &mut Node, handler: &mut impl Handler) -> Drained {
        let mut leave_with = None;
        let mut outputs = node.drain();
        for output in &mut outputs {
            match output {
                Output::Transmit(transmit) => self.queue.push(transmit),
                Output::Event(event) => match handler.on_event(&event) {
                    Flow::Continue => {}
                    Flow::Exit(code) => return Drained::Stop(Stop::Exit(code)),
                    // While leaving, the events leaving raises change nothing.
                    Flow::Leave(_) if self.leaving => {}
                    Flow::Leave(code) => {
                        leave_with = Some(code);
                        break;
                    }
                },
                _ => {}
            }
        }
        let deadline = outputs.deadline();
        if let Some(code) = leave_with {
            self.leave(node, handler);
            return Drained::Stop(Stop::Exit(code));
        }
        // Sent right away, not after the socket is read dry: an
        // acknowledgement that waits for a whole burst to be read lets the
        // peer's next burst overflow the buffers.
        self.send_queued();
        Drained::Wait(deadline)
    }

    /// Sends what is queued, each datagram from its source's socket.
    fn send_queued(&mut self) -> Flushed {
        let sockets = &self.sockets;
        self.queue
            .flush(|transmit| match socket_for(sockets, transmit) {
                Some(socket) => socket.udp.send_to(&transmit.payload, transmit.destination),
                None => Err(io::ErrorKind::AddrNotAvailable.into()),
            })
    }

    /// Sends what is queued and asks for writability only while something waits.
    fn flush(&mut self) -> io::Result<()> {
        let blocked = self.send_queued() == Flushed::Blocked;
        for (i, socket) in self.sockets.iter_mut().enumerate() {
            if blocked != socket.writable_interest {
                let interest = if blocked {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                self.poll.registry().reregister(
                    &mut socket.udp,
                    Token(FIRST_SOCKET + i),
                    interest,
                )?;
                socket.writable_interest = blocked;
            }
        }
        Ok(())
    }
}

/// The socket to send `transmit` from: the one the node knows by its
/// source address, else the one bound there, else the first of its family.
fn socket_for<'a>(sockets: &'a [Socket], transmit: &Transmit) -> Option<&'a Socket> {
    let source = transmit.source;
    sockets
        .iter()
        .find(|s| s.local == source || s.bound == source)
        .or_else(|| {
            sockets
                .iter()
                .find(|s| s.local.is_ipv4() == source.is_ipv4())
        })
        .or_else(|| sockets.first())
}

/// Socket buffer size asked for in each direction: the largest send
/// window (`rtc::window::MAX_WINDOW`), so a whole window arriving while the
/// loop is busy fits. Without privileges the kernel caps it at
/// `net.core.rmem_max` / `wmem_max`.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Asks for [`SOCKET_BUFFER`]-byte receive and send buffers (beyond the
/// kernel's cap where the process may, as root), and says in the debug
/// log what it got and, when the kernel capped it, which setting to raise.
/// The one socket carries every connection; the default (about 200 KiB,
/// some 90 full-size datagrams) overflows when a peer's window arrives
/// while the loop is busy, and each overflow costs the sender a
/// retransmission. Failure only costs that, so it is logged, not returned.
#[doc(hidden)]
pub fn enlarge_buffers(socket: &impl AsRawFd) {
    let fd = socket.as_raw_fd();
    let size = libc::c_int::try_from(SOCKET_BUFFER).unwrap_or(libc::c_int::MAX);
    for (force, option, name, sysctl) in [
        (
            libc::SO_RCVBUFFORCE,
            libc::SO_RCVBUF,
            "receive",
            "net.core.rmem_max",
        ),
        (
            libc::SO_SNDBUFFORCE,
            libc::SO_SNDBUF,
            "send",
            "net.core.wmem_max",
        ),
    ] {
        let set = |option| {
            // SAFETY: setsockopt on an open socket with a valid c_int and its size.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    option,
                    std::ptr::from_ref(&size).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            }
        };
        if set(force) != 0 && set(option) != 0 {
            debug!(
                "cannot set the socket's {name} buffer: {}",
                io::Error::last_os_error()
            );
            continue;
        }
        // The kernel reports twice what it grants (its bookkeeping share).
        let granted = usize::try_from(buffer_size(fd, option) / 2).unwrap_or(0);
        if granted < SOCKET_BUFFER {
            debug!(
                "the kernel capped the socket's {name} buffer at {} KiB of {} KiB asked; \
                 fast paths with long round trips may drop datagrams (raise {sysctl})",
                granted / 1024,
                SOCKET_BUFFER / 1024
            );
        } else {
            debug!("socket {name} buffer: {} KiB", granted / 1024);
        }
    }
}

/// The socket's buffer size for `option` (`SO_RCVBUF` or `SO_SNDBUF`), as
/// the kernel reports it; 0 when it cannot be read.
fn buffer_size(fd: libc::c_int, option: libc::c_int) -> libc::c_int {
    let mut size: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt on an open socket into a c_int of the given size.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            std::ptr::from_mut(&mut size).cast(),
            &mut len,
        )
    };
    if result == 0 { size } else { 0 }
}

/// The watch on the host's addresses, registered with `poll`; `None`
/// (logged) where none can be made.
fn watch_addresses(poll: &Poll) -> Option<NetWatch> {
    match NetWatch::open()
        .and_then(|watch| watch.register(poll.registry(), NETWATCH).map(|()| watch))
    {
        Ok(watch) => Some(watch),
        Err(error) => {
            warn!(
                "cannot watch the host's addresses ({error}); a change of network needs a restart"
            );
            None
        }
    }
}

/// `bound` with its wildcard IP replaced by the local IP the OS would use to
/// reach `toward` (found with a connected UDP socket; nothing is sent), or,
/// with no target of `bound`'s family, a documentation address (192.0.2.1,
/// 2001:db8::1), which finds the default route's source. ICE host
/// candidates must be concrete addresses; with no route at all the
/// wildcard stays (and is never advertised).
pub fn concrete_local_addr(bound: SocketAddr, toward: &[SocketAddr]) -> SocketAddr {
    if !bound.ip().is_unspecified() {
        return bound;
    }
    let fallback = if bound.is_ipv4() {
        SocketAddr::from(([192, 0, 2, 1], 9))
    } else {
        SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 9))
    };
    let target = toward
        .iter()
        .copied()
        .find(|t| t.is_ipv4() == bound.is_ipv4())
        .unwrap_or(fallback);
    let routed = socket::bind(SocketAddr::new(bound.ip(), 0))
        .and_then(|probe| probe.connect(target).and_then(|()| probe.local_addr()));
    match routed {
        Ok(local) if !local.ip().is_unspecified() => SocketAddr::new(local.ip(), bound.port()),
        _ => bound,
    }
}

enum Drained {
    Stop(Stop),
    Wait(Option<std::time::Instant>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive_buffer(socket: &std::net::UdpSocket) -> libc::c_int {
        buffer_size(socket.as_raw_fd(), libc::SO_RCVBUF)
    }

    #[test]
    fn socket_buffers_grow_beyond_the_default() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let before = receive_buffer(&socket);
        enlarge_buffers(&socket);
        assert!(
            receive_buffer(&socket) > before,
            "receive buffer stayed at {before} bytes"
        );
    }
}
