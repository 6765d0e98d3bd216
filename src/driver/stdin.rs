//! Lines typed or piped on standard input, read on a helper thread so the
//! event loop never blocks and standard input is never made non-blocking.
//!
//! Setting `O_NONBLOCK` on fd 0 would change the terminal's open file
//! description, which the parent shell shares; a crash or `kill -9` would
//! leave the shell's input non-blocking. Instead a thread does blocking
//! reads of at most [`READ_CHUNK`] bytes, splits complete lines (a partial
//! line waits for its newline; a line longer than [`MAX_LINE`] is cut
//! there) and hands each read's lines through a channel of one batch,
//! waking the event loop through a [`mio::Waker`]. The channel being full
//! blocks the thread, so input the node is not ready for waits in the pipe
//! or terminal, not in memory: flow control is the same as reading on
//! demand. At end of input the thread ends and [`StdinLines::take`] says so.
//!
//! A node started in the background (`tinynode join CODE &`) with the
//! terminal as its input would be stopped by SIGTTIN at its first read, the
//! whole process with it. The reader ignores SIGTTIN instead (the read then
//! fails with EIO) and, while the process is not in the terminal's
//! foreground process group, waits a second and tries again, so the node
//! keeps running and reads the terminal once brought to the foreground.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread;

use log::debug;
use mio::Waker;

/// Longest line handed out, in bytes.
pub const MAX_LINE: usize = 16 * 1024;
/// Most bytes taken from standard input per read.
pub const READ_CHUNK: usize = 64 * 1024;

/// Standard input as batches of lines.
pub struct StdinLines {
    batches: Receiver<Vec<String>>,
}

/// What [`StdinLines::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// One read's lines.
    Lines(Vec<String>),
    /// Nothing yet.
    Empty,
    /// End of input (or a read error): no more lines ever.
    Closed,
}

impl StdinLines {
    /// Starts the reader thread; it wakes the loop through `waker` after
    /// each batch and at end of input.
    pub fn spawn(waker: Arc<Waker>) -> io::Result<Self> {
        // SAFETY: ignoring a signal installs no handler code; SIGTTIN's only
        // effect is to stop a background reader of the terminal.
        unsafe {
            libc::signal(libc::SIGTTIN, libc::SIG_IGN);
        }
        let (sender, batches) = mpsc::sync_channel(1);
        thread::Builder::new()
            .name("stdin".into())
            .spawn(move || read_loop(io::stdin().lock(), &sender, &waker))?;
        Ok(Self { batches })
    }

    /// The next batch, without waiting.
    pub fn take(&self) -> Taken {
        match self.batches.try_recv() {
            Ok(lines) => Taken::Lines(lines),
            Err(TryRecvError::Empty) => Taken::Empty,
            Err(TryRecvError::Disconnected) => Taken::Closed,
        }
    }
}

/// How often a background node looks whether it has the terminal yet.
const BACKGROUND_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// True if standard input is a terminal whose foreground process group is
/// not ours (we were started with `&`, or suspended and resumed with `bg`).
fn in_background_of_terminal() -> bool {
    // SAFETY: isatty, tcgetpgrp and getpgrp only read process state.
    unsafe {
        libc::isatty(libc::STDIN_FILENO) == 1
            && libc::tcgetpgrp(libc::STDIN_FILENO) != libc::getpgrp()
    }
}

/// Reads `input` to its end, sending each read's complete lines.
fn read_loop(mut input: impl Read, sender: &SyncSender<Vec<String>>, waker: &Waker) {
    let mut chunk = vec![0; READ_CHUNK];
    let mut pending = Vec::new();
    let mut waited = false;
    loop {
        let closed = match input.read(&mut chunk) {
            Ok(0) => true,
            Ok(n) => {
                pending.extend_from_slice(&chunk[..n]);
                false
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) if in_background_of_terminal() => {
                if !waited {
                    debug!(
                        "standard input: the terminal belongs to the foreground; waiting for it"
                    );
                    waited = true;
                }
                thread::sleep(BACKGROUND_RETRY);
                continue;
            }
            Err(error) => {
                debug!("standard input: {error}");
                true
            }
        };
        let lines = split_lines(&mut pending, closed);
        if !lines.is_empty() {
            debug!("standard input: {} lines read", lines.len());
            // Waits here while the node takes nothing (no member yet, or
            // the slowest member is behind): the rest stays in the pipe.
            if sender.send(lines).is_err() {
                return;
            }
        }
        let _ = waker.wake();
        if closed {
            return;
        }
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

/// A line's text: cut at [`MAX_LINE`] bytes, invalid UTF-8 replaced, a
/// trailing carriage return removed.
fn line_text(line: &[u8]) -> String {
    let line = &line[..line.len().min(MAX_LINE)];
    String::from_utf8_lossy(line)
        .trim_end_matches(['\n', '\r'])
        .to_owned()
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

    #[test]
    fn the_reader_blocks_while_its_batch_is_not_taken() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (sender, batches) = mpsc::sync_channel(1);
        let input: Vec<u8> = (0..3)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        // A reader that returns one line per read.
        struct OneLine(std::io::Cursor<Vec<u8>>);
        impl Read for OneLine {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(7);
                self.0.read(&mut buf[..n])
            }
        }
        let reader = thread::spawn({
            let waker = Arc::clone(&waker);
            move || read_loop(OneLine(std::io::Cursor::new(input)), &sender, &waker)
        });
        let lines = StdinLines { batches };
        let mut got = Vec::new();
        loop {
            match lines.take() {
                Taken::Lines(batch) => got.extend(batch),
                Taken::Empty => thread::yield_now(),
                Taken::Closed => break,
            }
        }
        reader.join().unwrap();
        assert_eq!(got, ["line 0", "line 1", "line 2"]);
    }
}
