//! The mio driver: the only code that touches the socket, the clock and the
//! OS random generator.
//!
//! One UDP socket and one `Poll`. The loop hands every input to the
//! [`Node`], drains its outputs (sending datagrams, passing events to the
//! caller), then sleeps in `poll` until the node's next deadline, a datagram,
//! socket writability (only while datagrams are queued) or SIGINT/SIGTERM. An
//! idle node with no deadline sleeps without a timeout: there is no polling
//! loop. Reads are drained until `WouldBlock`; writes that would block wait
//! in a bounded [`SendQueue`].

pub mod resolve;
pub mod send_queue;
pub mod signals;
pub mod stdin;

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use log::{debug, warn};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use ring::rand::{SecureRandom, SystemRandom};

use crate::node::{Command, Event, Input, MAX_DATAGRAM_LEN, Node, NodeConfig, Output, WallClock};
use send_queue::{Flushed, SEND_QUEUE_CAPACITY, SendQueue};
use signals::Signals;
use stdin::{More, StdinLines};

/// Most reads of standard input (each up to 64 KiB) between two looks at
/// the socket.
pub const STDIN_READS_PER_WAKEUP: usize = 4;

const SOCKET: Token = Token(0);
const SIGNALS: Token = Token(1);
const STDIN: Token = Token(2);

/// What the event callback wants the loop to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep running.
    Continue,
    /// Return from [`Driver::run`] with this exit code.
    Exit(i32),
}

/// What the loop tells its user: each event, and when it is about to sleep.
pub trait Handler {
    /// An event from the node; the answer says whether to keep running.
    fn on_event(&mut self, event: &Event) -> Flow;

    /// The loop has handled everything pending and is about to wait: the
    /// moment to flush buffered output.
    fn before_sleep(&mut self) {}
}

impl<F: FnMut(&Event) -> Flow> Handler for F {
    fn on_event(&mut self, event: &Event) -> Flow {
        self(event)
    }
}

/// Why [`Driver::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT or SIGTERM arrived.
    Signal,
    /// The event callback returned [`Flow::Exit`] with this code.
    Exit(i32),
}

/// Why the driver could not start.
#[derive(Debug)]
pub enum StartError {
    /// Binding the UDP socket failed.
    Bind(SocketAddr, io::Error),
    /// Setting up mio or the signal handlers failed.
    Setup(io::Error),
    /// The OS random generator failed.
    Random,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bind(addr, error) => write!(f, "cannot bind UDP socket to {addr}: {error}"),
            Self::Setup(error) => write!(f, "cannot set up the event loop: {error}"),
            Self::Random => f.write_str("the operating system's random generator failed"),
        }
    }
}

impl std::error::Error for StartError {}

/// One socket, one poll, one node.
pub struct Driver {
    poll: Poll,
    socket: UdpSocket,
    signals: Signals,
    stdin: Option<StdinLines>,
    /// Standard input signaled readable and has not been read to the end of
    /// what is available (reading pauses while the node is not ready to send).
    stdin_readable: bool,
    queue: SendQueue,
    writable_interest: bool,
    wakeups: u64,
}

impl Driver {
    /// Binds the socket at `bind`, installs the signal handlers, registers
    /// standard input if `read_stdin` (its lines become
    /// [`Command::SendMany`]s), and creates the node (seeded from the OS random
    /// generator) for `configure`'s config, which receives the socket's
    /// actual address and a wall-clock reading.
    pub fn start(
        bind: SocketAddr,
        read_stdin: bool,
        configure: impl FnOnce(SocketAddr, WallClock) -> NodeConfig,
    ) -> Result<(Self, Node), StartError> {
        let mut socket = UdpSocket::bind(bind).map_err(|error| StartError::Bind(bind, error))?;
        let local_addr = socket.local_addr().map_err(StartError::Setup)?;
        enlarge_buffers(&socket);
        let poll = Poll::new().map_err(StartError::Setup)?;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)
            .map_err(StartError::Setup)?;
        let signals = Signals::install(poll.registry(), SIGNALS).map_err(StartError::Setup)?;
        let stdin = if read_stdin {
            match StdinLines::register(poll.registry(), STDIN) {
                Ok(stdin) => Some(stdin),
                Err(error) => {
                    warn!("standard input cannot be polled ({error}); typed lines are not sent");
                    None
                }
            }
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
        let node = Node::new(now, configure(local_addr, clock), seed);
        debug!("bound UDP socket to {local_addr}");
        let driver = Self {
            poll,
            socket,
            signals,
            stdin,
            stdin_readable: false,
            queue: SendQueue::new(SEND_QUEUE_CAPACITY),
            writable_interest: false,
            wakeups: 0,
        };
        Ok((driver, node))
    }

    /// Hands the node an input at the current time.
    pub fn submit(&mut self, node: &mut Node, input: Input<'_>) {
        node.handle_input(Instant::now(), input);
    }

    /// How many times `poll` returned so far.
    pub fn wakeups(&self) -> u64 {
        self.wakeups
    }

    /// Runs the loop until a signal arrives or `handler` asks to exit.
    pub fn run(&mut self, node: &mut Node, mut handler: impl Handler) -> io::Result<Stop> {
        let mut events = Events::with_capacity(16);
        // One byte more than accepted, so an oversized datagram is seen as such.
        let mut buf = vec![0u8; MAX_DATAGRAM_LEN + 1];
        loop {
            let deadline = match self.drain_outputs(node, &mut handler) {
                Drained::Stop(stop) => return Ok(stop),
                Drained::Wait(deadline) => deadline,
            };
            self.flush()?;
            handler.before_sleep();
            let timeout = if self.stdin_readable && node.ready_to_send() {
                // Input left unread to let the socket have its turn.
                Some(std::time::Duration::ZERO)
            } else {
                deadline.map(|at| at.saturating_duration_since(Instant::now()))
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
            self.wakeups += 1;
            for event in events.iter() {
                match event.token() {
                    SIGNALS => {
                        self.signals.drain();
                        debug!("signal received; node stats: {}", node.stats());
                        self.leave(node, &mut handler);
                        return Ok(Stop::Signal);
                    }
                    STDIN => self.stdin_readable = true,
                    SOCKET if event.is_readable() => {
                        if let Some(stop) = self.receive_all(node, &mut buf, &mut handler) {
                            return Ok(stop);
                        }
                    }
                    _ => {}
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|at| now >= at) {
                node.handle_input(now, Input::Timeout);
            }
            if let Some(stop) = self.read_stdin(node, &mut handler) {
                return Ok(stop);
            }
        }
    }

    /// Hands standard input's lines to the node, each read's lines as one
    /// [`Command::SendMany`], while there is input and the node is ready to
    /// send, for at most [`STDIN_READS_PER_WAKEUP`] reads, so a producer
    /// faster than the node cannot keep the socket waiting. When the node is
    /// not ready, reading stops until a later wakeup (acknowledgements from
    /// peers) finds it ready again; the unread input waits in the pipe.
    fn read_stdin(&mut self, node: &mut Node, handler: &mut impl Handler) -> Option<Stop> {
        for _ in 0..STDIN_READS_PER_WAKEUP {
            if !(self.stdin_readable && node.ready_to_send()) {
                break;
            }
            let Some(stdin) = self.stdin.as_mut() else {
                self.stdin_readable = false;
                break;
            };
            let (lines, more) = stdin.read_lines(self.poll.registry());
            self.stdin_readable = more == More::Maybe;
            if !lines.is_empty() {
                node.handle_input(Instant::now(), Input::Command(Command::SendMany(lines)));
                if let Drained::Stop(stop) = self.drain_outputs(node, handler) {
                    return Some(stop);
                }
            }
        }
        None
    }

    /// Tells the node to leave (closing its channels) and sends what that
    /// produces, without waiting for answers.
    fn leave(&mut self, node: &mut Node, handler: &mut impl Handler) {
        node.handle_input(Instant::now(), Input::Command(Command::Leave));
        let _ = self.drain_outputs(node, handler);
        let socket = &self.socket;
        self.queue
            .flush(|payload, destination| socket.send_to(payload, destination));
    }

    /// Reads datagrams until the socket would block, feeding each to the node
    /// and draining its outputs after each.
    fn receive_all(
        &mut self,
        node: &mut Node,
        buf: &mut [u8],
        handler: &mut impl Handler,
    ) -> Option<Stop> {
        loop {
            match self.socket.recv_from(buf) {
                Ok((len, source)) => {
                    let data = buf.get(..len).unwrap_or_default();
                    node.handle_input(Instant::now(), Input::Receive { source, data });
                    if let Drained::Stop(stop) = self.drain_outputs(node, handler) {
                        return Some(stop);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return None,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    // For example ICMP errors reported on the socket: logged,
                    // never fatal; the next readiness event retries.
                    warn!("receive failed: {error}");
                    return None;
                }
            }
        }
    }

    fn drain_outputs(&mut self, node: &mut Node, handler: &mut impl Handler) -> Drained {
        loop {
            match node.poll_output() {
                Output::Transmit(transmit) => self.queue.push(transmit),
                Output::Event(event) => {
                    if let Flow::Exit(code) = handler.on_event(&event) {
                        return Drained::Stop(Stop::Exit(code));
                    }
                }
                Output::Wait(deadline) => {
                    // Sent right away, not after the socket is read dry: an
                    // acknowledgement that waits for a whole burst to be
                    // read lets the peer's next burst overflow the buffers.
                    let socket = &self.socket;
                    self.queue
                        .flush(|payload, destination| socket.send_to(payload, destination));
                    return Drained::Wait(deadline);
                }
            }
        }
    }

    /// Sends what is queued and asks for writability only while something waits.
    fn flush(&mut self) -> io::Result<()> {
        let socket = &self.socket;
        let blocked = self
            .queue
            .flush(|payload, destination| socket.send_to(payload, destination))
            == Flushed::Blocked;
        if blocked != self.writable_interest {
            let interest = if blocked {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            self.poll
                .registry()
                .reregister(&mut self.socket, SOCKET, interest)?;
            self.writable_interest = blocked;
        }
        Ok(())
    }
}

/// Socket buffer size asked for in each direction (the kernel caps it at
/// `net.core.rmem_max` / `wmem_max`).
pub const SOCKET_BUFFER: usize = 1024 * 1024;

/// Asks for [`SOCKET_BUFFER`]-byte receive and send buffers. The one socket
/// carries every connection; the default (about 200 KiB, some 90 full-size
/// datagrams) overflows when a peer's SCTP window arrives while the loop is
/// busy, and each overflow costs the sender a retransmission timeout.
/// Failure only costs that, so it is logged, not returned.
pub fn enlarge_buffers(socket: &impl AsRawFd) {
    let fd = socket.as_raw_fd();
    let size = libc::c_int::try_from(SOCKET_BUFFER).unwrap_or(libc::c_int::MAX);
    for (option, name) in [(libc::SO_RCVBUF, "receive"), (libc::SO_SNDBUF, "send")] {
        // SAFETY: setsockopt on an open socket with a valid c_int and its size.
        let result = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                std::ptr::from_ref(&size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result != 0 {
            debug!(
                "cannot set the socket's {name} buffer: {}",
                io::Error::last_os_error()
            );
        }
    }
}

/// `bound` with its wildcard IP replaced by the local IP the OS would use to
/// reach `toward` (found with a connected UDP socket; nothing is sent). ICE
/// host candidates must be concrete addresses.
pub fn concrete_local_addr(bound: SocketAddr, toward: &[SocketAddr]) -> SocketAddr {
    if !bound.ip().is_unspecified() {
        return bound;
    }
    let routed = toward
        .iter()
        .find(|t| t.is_ipv4() == bound.is_ipv4())
        .and_then(|target| {
            let probe = std::net::UdpSocket::bind(SocketAddr::new(bound.ip(), 0)).ok()?;
            probe.connect(target).ok()?;
            probe.local_addr().ok()
        });
    match routed {
        Some(local) => SocketAddr::new(local.ip(), bound.port()),
        None => bound,
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
        let mut size: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt on an open socket into a c_int of the given size.
        let result = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                std::ptr::from_mut(&mut size).cast(),
                &mut len,
            )
        };
        assert_eq!(result, 0, "getsockopt");
        size
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
