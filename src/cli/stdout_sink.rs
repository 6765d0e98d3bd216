//! `receive --stdout`: the one offered file written to standard output,
//! chunk by chunk in order, each checked against its hash first and the
//! whole against its SHA-256 at the end. Writing happens on the stdio
//! writer thread (`stdio.rs`); the sender's bytes are handed back as
//! consumed only while little waits for stdout, so a slow reader slows
//! the sender.

use std::sync::Arc;

use mio::Waker;
use ring::digest::{Context, SHA256};
use tinynode::transfer::disk;
use tinynode::transfer::wire::{AbortCode, Hash};

use super::stdio::Output;

/// Bytes queued for stdout past which the sender's bytes are held back.
const STDOUT_QUEUE: usize = 2 << 20;

/// The file being written out.
pub struct StdoutSink {
    output: Output,
    path: String,
    chunks: Vec<Hash>,
    sha256: Hash,
    next: u32,
    context: Context,
    /// Bytes queued for stdout and not written yet.
    queued: usize,
    /// Stream bytes not yet handed back as consumed.
    held: usize,
    /// Every chunk is out and the whole file checked.
    complete: bool,
}

/// Why the file cannot be written out: the code to tell the sender, and
/// the words.
pub type Failure = (AbortCode, String);

impl StdoutSink {
    /// A sink for the file `path` with these hashes; its writer thread
    /// wakes the loop through `waker`.
    pub fn new(waker: Arc<Waker>, path: String, chunks: Vec<Hash>, sha256: Hash) -> Self {
        Self {
            output: Output::spawn(waker),
            path,
            chunks,
            sha256,
            next: 0,
            context: Context::new(&SHA256),
            queued: 0,
            held: 0,
            complete: false,
        }
    }

    /// Chunk `index` arrived: checked and queued for stdout.
    pub fn take(&mut self, index: u32, data: Vec<u8>) -> Result<(), Failure> {
        if index != self.next {
            return Err((AbortCode::Protocol, "a chunk out of order".into()));
        }
        if self.chunks.get(index as usize) != Some(&disk::digest(&data)) {
            let why = format!("{}: chunk {index} failed its hash", self.path);
            return Err((AbortCode::Corrupt, why));
        }
        self.context.update(&data);
        self.next += 1;
        self.queued += data.len();
        self.output.write(data);
        Ok(())
    }

    /// `count` more bytes came on the stream.
    pub fn hold(&mut self, count: usize) {
        self.held += count;
    }

    /// Notes what stdout took; the stream bytes to hand back as consumed
    /// now. Once every chunk is out, checks the whole file and ends
    /// stdout.
    pub fn progress(&mut self) -> Result<usize, Failure> {
        self.queued = self.queued.saturating_sub(self.output.take_written());
        if let Some(error) = self.output.error() {
            return Err((AbortCode::Disk, format!("writing stdout: {error}")));
        }
        let consumed = if self.queued <= STDOUT_QUEUE {
            std::mem::take(&mut self.held)
        } else {
            0
        };
        if !self.complete && self.next as usize == self.chunks.len() {
            let whole = std::mem::replace(&mut self.context, Context::new(&SHA256)).finish();
            if whole.as_ref() != self.sha256 {
                let why = format!("{}: the whole does not match its SHA-256", self.path);
                return Err((AbortCode::Corrupt, why));
            }
            self.complete = true;
            self.output.finish();
        }
        Ok(consumed)
    }

    /// Every byte is checked, written and flushed.
    pub fn is_done(&self) -> bool {
        self.complete && self.output.is_done()
    }
}
