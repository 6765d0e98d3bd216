//! Standard input and output as byte chunks on helper threads, for the
//! commands that move bytes (`pipe`): blocking IO off the event loop, so
//! a slow reader or writer never stalls it, and flow control by channel:
//! the reader hands over one chunk at a time (input waits in the pipe,
//! not in memory), the writer reports each chunk written.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread;

use mio::Waker;

/// Bytes read from stdin at a time.
const CHUNK: usize = 64 * 1024;

/// Standard input, read in chunks on a helper thread.
pub struct Input {
    chunks: Receiver<io::Result<Vec<u8>>>,
    ended: bool,
}

impl Input {
    /// Starts the reader thread; it wakes the loop through `waker` after
    /// each chunk and at the end.
    pub fn spawn(waker: Arc<Waker>) -> Self {
        let (sender, chunks) = mpsc::sync_channel(1);
        let spawned = thread::Builder::new()
            .name("stdin".into())
            .spawn(move || read_loop(&sender, &waker));
        let ended = spawned.is_err();
        Self { chunks, ended }
    }

    /// The next chunk; `Err` at the end of input (or a read error), `None`
    /// when nothing is ready.
    pub fn take(&mut self) -> Option<Result<Vec<u8>, ()>> {
        if self.ended {
            return Some(Err(()));
        }
        match self.chunks.try_recv() {
            Ok(Ok(chunk)) => Some(Ok(chunk)),
            Ok(Err(_)) | Err(TryRecvError::Disconnected) => {
                self.ended = true;
                Some(Err(()))
            }
            Err(TryRecvError::Empty) => None,
        }
    }
}

fn read_loop(sender: &SyncSender<io::Result<Vec<u8>>>, waker: &Waker) {
    let mut stdin = io::stdin().lock();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let read = match stdin.read(&mut chunk) {
            Ok(0) => return drop(waker.wake()),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                let _ = sender.send(Err(error));
                return drop(waker.wake());
            }
        };
        chunk.truncate(read);
        if sender.send(Ok(chunk)).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

/// What the writer thread is told.
enum ToWrite {
    Bytes(Vec<u8>),
    End,
}

/// Standard output, written on a helper thread.
pub struct Output {
    sender: Option<mpsc::Sender<ToWrite>>,
    written: Receiver<Result<usize, String>>,
    error: Option<String>,
    done: bool,
}

impl Output {
    /// Starts the writer thread; it wakes the loop through `waker` after
    /// each chunk written.
    pub fn spawn(waker: Arc<Waker>) -> Self {
        let (sender, orders) = mpsc::channel();
        let (report, written) = mpsc::channel();
        let spawned = thread::Builder::new()
            .name("stdout".into())
            .spawn(move || write_loop(&orders, &report, &waker));
        Self {
            sender: spawned.is_ok().then_some(sender),
            written,
            error: None,
            done: false,
        }
    }

    /// Queues `bytes` for stdout (the caller bounds what it queues: a
    /// stream's grant).
    pub fn write(&mut self, bytes: Vec<u8>) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(ToWrite::Bytes(bytes));
        }
    }

    /// No more bytes: flush and close stdout.
    pub fn finish(&mut self) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(ToWrite::End);
        }
    }

    /// Bytes written out since the last call.
    pub fn take_written(&mut self) -> usize {
        let mut total = 0;
        while let Ok(report) = self.written.try_recv() {
            match report {
                Ok(0) => self.done = true,
                Ok(n) => total += n,
                Err(error) => self.error = Some(error),
            }
        }
        total
    }

    /// Why stdout could not be written, once it could not.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// True once every byte was written and stdout flushed (as reported
    /// to [`take_written`](Self::take_written)).
    pub fn is_done(&self) -> bool {
        self.done
    }
}

fn write_loop(
    orders: &Receiver<ToWrite>,
    report: &mpsc::Sender<Result<usize, String>>,
    waker: &Waker,
) {
    let mut stdout = io::stdout().lock();
    while let Ok(order) = orders.recv() {
        let result = match order {
            ToWrite::Bytes(bytes) => stdout.write_all(&bytes).map(|()| bytes.len()),
            ToWrite::End => stdout.flush().map(|()| 0),
        };
        let failed = result.is_err();
        let _ = report.send(result.map_err(|e| e.to_string()));
        let _ = waker.wake();
        if failed {
            return;
        }
    }
}
