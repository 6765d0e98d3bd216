//! Lines typed on standard input, read without blocking the event loop.
//!
//! Standard input is made non-blocking and registered with mio (pipes and
//! terminals can be polled); its original flags are restored on drop so the
//! terminal is left as it was found. Complete lines are handed out; a
//! partial line waits for its newline. A line longer than [`MAX_LINE`] is cut
//! there. Input is read a chunk at a time, so the driver can stop reading
//! while the node is not ready to send. Sources that cannot be polled
//! (regular files, `/dev/null`) are reported by [`StdinLines::register`]
//! failing.

use std::io::{self, Read};
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// Longest line handed out, in bytes.
pub const MAX_LINE: usize = 16 * 1024;
/// Most bytes taken from standard input per read.
pub const READ_CHUNK: usize = 64 * 1024;

const STDIN: RawFd = 0;

/// Non-blocking, line-splitting standard input.
pub struct StdinLines {
    original_flags: libc::c_int,
    chunk: Vec<u8>,
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
            chunk: vec![0; READ_CHUNK],
            pending: Vec::new(),
            closed: false,
        })
    }

    /// Reads at most one chunk of [`READ_CHUNK`] bytes and returns the
    /// complete lines it finished (without their line endings), and whether
    /// more may be waiting. Reading a chunk at a time lets the caller stop
    /// when its consumer is busy: standard input then backs up into the pipe
    /// or terminal instead of into memory. After end of input, stdin is
    /// deregistered.
    pub fn read_lines(&mut self, registry: &Registry) -> (Vec<String>, More) {
        let more = loop {
            if self.closed {
                break More::No;
            }
            match io::stdin().lock().read(&mut self.chunk) {
                Ok(0) => {
                    self.closed = true;
                    let _ = registry.deregister(&mut SourceFd(&STDIN));
                }
                Ok(n) => {
                    self.pending.extend_from_slice(&self.chunk[..n]);
                    break More::Maybe;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break More::No,
            }
        };
        (self.take_lines(), more)
    }

    /// Splits off what [`split_lines`] finds complete.
    fn take_lines(&mut self) -> Vec<String> {
        split_lines(&mut self.pending, self.closed)
    }
}

/// Removes from `pending` and returns its complete lines, a line grown past
/// [`MAX_LINE`], and at end of input (`closed`) the unterminated rest;
/// empty lines are skipped.
fn split_lines(pending: &mut Vec<u8>, closed: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(offset) = pending[start..].iter().position(|&b| b == b'\n') {
        lines.push(line_text(&pending[start..start + offset]));
        start += offset + 1;
    }
    pending.drain(..start);
    if pending.len() > MAX_LINE || (closed && !pending.is_empty()) {
        lines.push(line_text(pending));
        pending.clear();
    }
    lines.retain(|line| !line.is_empty());
    lines
}

/// Whether standard input may have more to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum More {
    /// A read returned data; the next one may too.
    Maybe,
    /// Nothing to read until the next readiness event (or ever, after end of input).
    No,
}

/// A line's text: cut at [`MAX_LINE`] bytes, invalid UTF-8 replaced, a
/// trailing carriage return removed.
fn line_text(line: &[u8]) -> String {
    let line = &line[..line.len().min(MAX_LINE)];
    String::from_utf8_lossy(line)
        .trim_end_matches(['\n', '\r'])
        .to_owned()
}

impl Drop for StdinLines {
    fn drop(&mut self) {
        // SAFETY: restores the flags read in `register`.
        unsafe {
            libc::fcntl(STDIN, libc::F_SETFL, self.original_flags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_are_taken_and_a_partial_one_waits() {
        let mut pending = b"one\r\ntwo\n\nthr".to_vec();
        assert_eq!(split_lines(&mut pending, false), ["one", "two"]);
        assert_eq!(pending, b"thr");
        pending.extend_from_slice(b"ee\n");
        assert_eq!(split_lines(&mut pending, false), ["three"]);
        assert!(pending.is_empty());
    }

    #[test]
    fn the_rest_is_a_line_at_end_of_input() {
        let mut pending = b"last words".to_vec();
        assert!(split_lines(&mut pending, false).is_empty());
        assert_eq!(split_lines(&mut pending, true), ["last words"]);
        assert!(pending.is_empty());
    }

    #[test]
    fn an_overlong_line_is_cut_at_the_limit() {
        let mut pending = vec![b'x'; MAX_LINE + 10];
        let lines = split_lines(&mut pending, false);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert!(pending.is_empty());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let mut pending = b"caf\xe9\n".to_vec();
        assert_eq!(split_lines(&mut pending, false), ["caf\u{fffd}"]);
    }
}
