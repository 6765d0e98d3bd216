//! Lines typed on standard input, read without blocking the event loop.
//!
//! Standard input is made non-blocking and registered with mio (pipes and
//! terminals can be polled); its original flags are restored on drop so the
//! terminal is left as it was found. Complete lines are handed out one by
//! one; a partial line waits for its newline. A line longer than
//! [`MAX_LINE`] is cut there. Sources that cannot be polled (regular files,
//! `/dev/null`) are reported by [`StdinLines::register`] failing.

use std::io::{self, Read};
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// Longest line handed out, in bytes.
pub const MAX_LINE: usize = 16 * 1024;

const STDIN: RawFd = 0;

/// Non-blocking, line-splitting standard input.
pub struct StdinLines {
    original_flags: libc::c_int,
    pending: Vec<u8>,
    closed: bool,
}

impl StdinLines {
    /// Makes stdin non-blocking and registers it under `token`.
    pub fn register(registry: &Registry, token: Token) -> io::Result<Self> {
        // SAFETY: fcntl on fd 0 with F_GETFL/F_SETFL has no memory effects.
        let original_flags = unsafe { libc::fcntl(STDIN, libc::F_GETFL) };
        if original_flags < 0 {
            return Err(io::Error::last_os_error());
        }
        registry.register(&mut SourceFd(&STDIN), token, Interest::READABLE)?;
        // SAFETY: as above.
        if unsafe { libc::fcntl(STDIN, libc::F_SETFL, original_flags | libc::O_NONBLOCK) } < 0 {
            let error = io::Error::last_os_error();
            let _ = registry.deregister(&mut SourceFd(&STDIN));
            return Err(error);
        }
        Ok(Self {
            original_flags,
            pending: Vec::new(),
            closed: false,
        })
    }

    /// Reads what is available and returns the complete lines (without
    /// their line endings). After end of input, stdin is deregistered.
    pub fn read_lines(&mut self, registry: &Registry) -> Vec<String> {
        let mut buf = [0u8; 4096];
        while !self.closed {
            match io::stdin().lock().read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    let _ = registry.deregister(&mut SourceFd(&STDIN));
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            lines.push(line);
        }
        if self.pending.len() > MAX_LINE || (self.closed && !self.pending.is_empty()) {
            lines.push(std::mem::take(&mut self.pending));
        }
        lines
            .into_iter()
            .map(|mut line| {
                line.truncate(MAX_LINE);
                let text = String::from_utf8_lossy(&line);
                text.trim_end_matches(['\n', '\r']).to_owned()
            })
            .filter(|line| !line.is_empty())
            .collect()
    }
}

impl Drop for StdinLines {
    fn drop(&mut self) {
        // SAFETY: restores the flags read in `register`.
        unsafe {
            libc::fcntl(STDIN, libc::F_SETFL, self.original_flags);
        }
    }
}
