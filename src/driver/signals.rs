//! SIGINT, SIGTERM and SIGHUP as mio events (the self-pipe pattern).
//!
//! The handler only writes one byte to a non-blocking socket pair (`write`
//! is async-signal-safe); the event loop sees the other end become readable
//! and stops cleanly. Installing replaces the default handlers, dropping
//! restores them. Process-wide state, so the library never installs them
//! itself: the program's `main` does and hands them to
//! [`Driver::stop_on_signals`](super::Driver::stop_on_signals).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};

/// Write end of the pipe, read by the signal handler; -1 when not installed.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

/// SIGHUP (the terminal closed, or a supervisor's reload) stops the node
/// as cleanly as SIGINT and SIGTERM: channels closed, cache saved.
const HANDLED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(_signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: `write` is async-signal-safe; the buffer is one valid byte.
        // A full pipe (EAGAIN) is fine: a wake-up is already pending.
        unsafe {
            libc::write(fd, (&raw const byte).cast(), 1);
        }
    }
}

/// Installed SIGINT/SIGTERM handlers whose delivery makes a mio source readable.
pub struct Signals {
    receiver: UnixStream,
    _sender: UnixStream,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> io::Result<Self> {
        let (sender, receiver) = UnixStream::pair()?;
        SIGNAL_PIPE.store(sender.as_raw_fd(), Ordering::Relaxed);
        for signal in HANDLED {
            set_handler(signal, on_signal as *const () as libc::sighandler_t)?;
        }
        Ok(Self {
            receiver,
            _sender: sender,
        })
    }

    /// Registers the readable end under `token`.
    pub(super) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.receiver, token, Interest::READABLE)
    }

    /// Empties the pipe after a wake-up.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(io::Read::read(&mut self.receiver, &mut buf), Ok(n) if n > 0) {}
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        SIGNAL_PIPE.store(-1, Ordering::Relaxed);
        for signal in HANDLED {
            // Restoring the default cannot meaningfully fail for these signals.
            let _ = set_handler(signal, libc::SIG_DFL);
        }
    }
}

fn set_handler(signal: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the
    // handler is either SIG_DFL or an extern "C" fn that only calls `write`.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
