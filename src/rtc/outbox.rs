//! Messages for one peer that str0m's SCTP send buffer has no room for
//! yet, in order, bounded by [`OUTBOX_LIMIT`] bytes.

use std::collections::VecDeque;

/// Most bytes queued for one peer; a message that would exceed it is
/// dropped for that peer (only a caller that ignores readiness gets there).
pub const OUTBOX_LIMIT: usize = 256 * 1024;

/// One queued message: its bytes and whether it is binary (bytes for one
/// peer) or text (a chat line).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Queued {
    pub(super) binary: bool,
    pub(super) bytes: Vec<u8>,
}

/// The queue.
#[derive(Default)]
pub(super) struct Outbox {
    messages: VecDeque<Queued>,
    bytes: usize,
    /// Messages refused since the last one accepted.
    pub(super) dropped: u64,
}

impl Outbox {
    /// Bytes queued.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when nothing is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Queues `message`; false (and nothing queued) when it would exceed the limit.
    pub(super) fn push(&mut self, binary: bool, message: &[u8]) -> bool {
        if self.bytes + message.len() > OUTBOX_LIMIT {
            self.dropped += 1;
            return false;
        }
        self.dropped = 0;
        self.bytes += message.len();
        self.messages.push_back(Queued {
            binary,
            bytes: message.to_vec(),
        });
        true
    }

    /// Hands messages to `write` in order until it refuses one (returns
    /// false); returns how many it took.
    pub(super) fn flush(&mut self, mut write: impl FnMut(&Queued) -> bool) -> usize {
        let mut taken = 0;
        while let Some(message) = self.messages.front() {
            if !write(message) {
                break;
            }
            self.bytes -= message.bytes.len();
            self.messages.pop_front();
            taken += 1;
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the largest data-channel message.
    const MAX_MESSAGE_LEN: usize = 16 * 1024;

    #[test]
    fn outbox_flushes_in_order_until_the_writer_refuses() {
        let mut outbox = Outbox::default();
        for message in [&b"one"[..], b"two", b"three"] {
            assert!(outbox.push(false, message));
        }
        let mut written = Vec::new();
        let taken = outbox.flush(|message| {
            if written.len() == 2 {
                return false;
            }
            written.push(message.bytes.clone());
            true
        });
        assert_eq!(taken, 2);
        assert_eq!(written, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(outbox.bytes(), 5, "\"three\" waits");
        assert_eq!(outbox.flush(|_| true), 1);
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn outbox_refuses_what_would_exceed_its_limit() {
        let mut outbox = Outbox::default();
        let message = vec![b'x'; MAX_MESSAGE_LEN];
        let fits = OUTBOX_LIMIT / MAX_MESSAGE_LEN;
        for _ in 0..fits {
            assert!(outbox.push(true, &message));
        }
        assert!(!outbox.push(true, &message));
        assert!(
            !outbox.push(false, b"y"),
            "the limit counts bytes, not messages"
        );
        assert_eq!(outbox.bytes(), fits * MAX_MESSAGE_LEN);
        assert_eq!(outbox.messages.len(), fits);
    }
}
