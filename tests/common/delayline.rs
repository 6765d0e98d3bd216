//! A userspace delay line for the path lab: this kernel has no `sch_netem`
//! (nor `fq`/`etf`), so round-trip time is added by forwarding frames
//! between two veth ends in a namespace of their own, each held for a
//! fixed delay.
//!
//! Each direction is one thread of the test process, switched into the
//! delay namespace (`setns` moves only the calling thread). It reads every
//! frame arriving on its input interface from an `AF_PACKET` socket
//! (promiscuous, outgoing frames ignored, `PACKET_VNET_HDR` so veth
//! checksum-offload state passes through unchanged) and sends it out of
//! the other interface once the delay has passed, in order (one FIFO).
//! Frames sent out of an interface go through its qdisc, so a `tc tbf` on
//! an output interface makes a bottleneck router with this delay.
//!
//! Every frame and its bytes are counted per direction: the path lab's
//! wire figures.

#![allow(dead_code)] // The bench and the test use different parts.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes of the virtio-net header `PACKET_VNET_HDR` puts before each frame.
const VNET_HDR_LEN: usize = 10;
/// Largest frame read (a veth may carry GSO super-frames up to 64 KiB).
const FRAME_MAX: usize = 65_536 + 64;
/// Frames held per direction before new ones are dropped (counted).
const QUEUE_CAP: usize = 131_072;

/// What one direction has carried so far.
#[derive(Default)]
pub struct Counters {
    /// Frames forwarded.
    pub frames: AtomicU64,
    /// Their bytes, Ethernet header included.
    pub bytes: AtomicU64,
    /// Frames dropped because the queue was full or the send failed.
    pub drops: AtomicU64,
}

impl Counters {
    /// (frames, bytes) now.
    pub fn read(&self) -> (u64, u64) {
        (
            self.frames.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// A running delay line: two directions between two interfaces.
pub struct DelayLine {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Counters of `a → b`, then `b → a`.
    pub counters: [Arc<Counters>; 2],
}

impl DelayLine {
    /// Starts forwarding between interfaces `a` and `b` of the namespace
    /// mounted at `/run/netns/NETNS`, holding frames `a → b` for
    /// `a_to_b` and `b → a` for `b_to_a`.
    pub fn start(
        netns: &str,
        a: &str,
        b: &str,
        a_to_b: Duration,
        b_to_a: Duration,
    ) -> Result<DelayLine, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = [Arc::new(Counters::default()), Arc::new(Counters::default())];
        let mut threads = Vec::new();
        for (from, to, delay, counters) in [
            (a, b, a_to_b, Arc::clone(&counters[0])),
            (b, a, b_to_a, Arc::clone(&counters[1])),
        ] {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let (netns, from, to, stop) = (
                netns.to_owned(),
                from.to_owned(),
                to.to_owned(),
                Arc::clone(&stop),
            );
            threads.push(std::thread::spawn(move || {
                let direction =
                    enter_netns(&netns).and_then(|()| Direction::open(&from, &to, delay));
                match direction {
                    Ok(mut direction) => {
                        let _ = ready_tx.send(Ok(()));
                        direction.run(&stop, &counters);
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            }));
            ready_rx
                .recv()
                .map_err(|_| "the delay thread ended".to_owned())??;
        }
        Ok(DelayLine {
            stop,
            threads,
            counters,
        })
    }

    /// (frames, bytes) carried in both directions together.
    pub fn total(&self) -> (u64, u64) {
        let (f1, b1) = self.counters[0].read();
        let (f2, b2) = self.counters[1].read();
        (f1 + f2, b1 + b2)
    }

    /// Frames dropped in both directions.
    pub fn drops(&self) -> u64 {
        self.counters
            .iter()
            .map(|c| c.drops.load(Ordering::Relaxed))
            .sum()
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Moves the calling thread into the network namespace mounted at
/// `/run/netns/NETNS`.
pub fn enter_netns(netns: &str) -> Result<(), String> {
    let path = CString::new(format!("/run/netns/{netns}")).map_err(|e| e.to_string())?;
    // SAFETY: a plain open(2) of a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!("open {netns}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just opened and is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: setns(2) on a namespace file; affects this thread only.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns {netns}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// One direction: frames in on one interface, out of the other.
struct Direction {
    input: OwnedFd,
    output: OwnedFd,
    out_index: i32,
    delay: Duration,
    queue: VecDeque<(Instant, Vec<u8>)>,
}

impl Direction {
    fn open(from: &str, to: &str, delay: Duration) -> Result<Direction, String> {
        let (input, _) = packet_socket(from)?;
        let (output, out_index) = packet_socket(to)?;
        Ok(Direction {
            input,
            output,
            out_index,
            delay,
            queue: VecDeque::new(),
        })
    }

    fn run(&mut self, stop: &AtomicBool, counters: &Counters) {
        let mut buf = vec![0u8; FRAME_MAX];
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            while self.queue.front().is_some_and(|(due, _)| *due <= now) {
                let (_, frame) = self.queue.pop_front().expect("front");
                self.send(&frame, counters);
            }
            // Wait for a frame or the head's time, at most 50 ms (to see
            // the stop flag).
            let wait = self
                .queue
                .front()
                .map_or(Duration::from_millis(50), |(due, _)| {
                    due.saturating_duration_since(now)
                })
                .min(Duration::from_millis(50));
            let timeout = libc::timespec {
                tv_sec: 0,
                tv_nsec: i64::from(wait.subsec_nanos()),
            };
            let mut poll = libc::pollfd {
                fd: self.input.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd and a valid timespec.
            unsafe { libc::ppoll(&mut poll, 1, &timeout, std::ptr::null()) };
            loop {
                // SAFETY: recv into a buffer of the length given.
                let n = unsafe {
                    libc::recv(
                        self.input.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                let Ok(n) = usize::try_from(n) else { break };
                if n <= VNET_HDR_LEN + 14 {
                    continue;
                }
                if self.delay.is_zero() && self.queue.is_empty() {
                    self.send(&buf[..n], counters);
                } else if self.queue.len() >= QUEUE_CAP {
                    counters.drops.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.queue
                        .push_back((Instant::now() + self.delay, buf[..n].to_vec()));
                }
            }
        }
    }

    fn send(&self, frame: &[u8], counters: &Counters) {
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_ifindex = self.out_index;
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&frame[VNET_HDR_LEN..VNET_HDR_LEN + 6]);
        for _ in 0..1000 {
            // SAFETY: sendto with a valid buffer and address of the given lengths.
            let n = unsafe {
                libc::sendto(
                    self.output.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&raw const to).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if n >= 0 {
                counters.frames.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes
                    .fetch_add((frame.len() - VNET_HDR_LEN) as u64, Ordering::Relaxed);
                return;
            }
            let error = std::io::Error::last_os_error().raw_os_error();
            if error != Some(libc::EAGAIN) && error != Some(libc::ENOBUFS) {
                break;
            }
            let mut poll = libc::pollfd {
                fd: self.output.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut poll, 1, 1) };
        }
        counters.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// An `AF_PACKET` socket bound to interface `name` of this thread's
/// namespace, and the interface's index.
fn packet_socket(name: &str) -> Result<(OwnedFd, i32), String> {
    let c_name = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        return Err(format!("no interface {name}"));
    }
    let index = i32::try_from(index).map_err(|e| e.to_string())?;
    let protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            i32::from(protocol),
        )
    };
    if fd < 0 {
        return Err(format!("AF_PACKET: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just created and is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    let big: libc::c_int = 64 << 20;
    for (level, option, value) in [
        (libc::SOL_PACKET, libc::PACKET_VNET_HDR, one),
        (libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, one),
        (libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, big),
        (libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, big),
    ] {
        // SAFETY: setsockopt with an int option of its size.
        let result = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                option,
                (&raw const value).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        if result != 0 && level == libc::SOL_PACKET {
            return Err(format!(
                "socket option {option} on {name}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = protocol;
    address.sll_ifindex = index;
    // SAFETY: bind with a valid sockaddr_ll of its size.
    let bound = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const address).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if bound != 0 {
        return Err(format!("bind {name}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: packet_mreq is plain data; zeroed is a valid start.
    let mut membership: libc::packet_mreq = unsafe { std::mem::zeroed() };
    membership.mr_ifindex = index;
    membership.mr_type = libc::PACKET_MR_PROMISC as u16;
    // SAFETY: setsockopt with a packet_mreq of its size.
    let promiscuous = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&raw const membership).cast(),
            std::mem::size_of::<libc::packet_mreq>() as u32,
        )
    };
    if promiscuous != 0 {
        return Err(format!(
            "promiscuous {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok((fd, index))
}
