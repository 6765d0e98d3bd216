//! The frames of a file transfer (`protocol-spec.md` §6.9), carried on a
//! stream of kind [`FILES`](crate::StreamKind::FILES): each frame is a
//! 4-byte big-endian length (of what follows), a type byte and a body.
//! [`FrameReader`] cuts the stream's bytes into frames; every length is
//! checked against what the input holds before anything is allocated.

use std::fmt;

use crate::hex::hex;

/// Protocol version in an offer.
pub const VERSION: u8 = 1;
/// Smallest chunk size an offer may use.
pub const MIN_CHUNK: u32 = 16 * 1024;
/// Largest chunk size an offer may use.
pub const MAX_CHUNK: u32 = 4 << 20;
/// The chunk size `tinynode send` uses.
pub const DEFAULT_CHUNK: u32 = 1 << 20;
/// Longest frame (type and body): an offer of about half a million
/// chunk hashes, or a chunk of [`MAX_CHUNK`] with its header.
pub const MAX_FRAME: usize = 16 << 20;
/// Longest path in an offer, in bytes.
pub const MAX_PATH: usize = 4096;
/// Longest reason of an [`Frame::Abort`], in bytes.
pub const MAX_REASON: usize = 255;
/// Bytes of a SHA-256 digest.
pub const HASH_LEN: usize = 32;

const OFFER: u8 = 1;
const WANT: u8 = 2;
const CHUNK: u8 = 3;
const DONE: u8 = 4;
const ABORT: u8 = 5;

const KIND_FILE: u8 = 1;
const KIND_DIRECTORY: u8 = 2;
const MODE_EXECUTABLE: u8 = 1;

/// A SHA-256 digest.
pub type Hash = [u8; HASH_LEN];

/// One file or directory of an offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative path, components joined by `/` (checked by the receiver:
    /// [`super::paths::check`]).
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// The owner may execute it (files only; kept by the receiver).
    pub executable: bool,
}

/// A file (its size and hashes) or a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A directory: created, even when empty.
    Directory,
    /// A regular file.
    File {
        /// Its length in bytes.
        size: u64,
        /// SHA-256 of the whole file.
        sha256: Hash,
        /// SHA-256 of each chunk, in order: `size` divided by the chunk
        /// size, rounded up.
        chunks: Vec<Hash>,
    },
}

/// What a transfer's sender offers: every entry, parents before children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Bytes per chunk (the last chunk of a file may be shorter).
    pub chunk_size: u32,
    /// Files and directories.
    pub entries: Vec<Entry>,
}

impl Offer {
    /// Files, and the bytes of all of them.
    pub fn totals(&self) -> (usize, u64) {
        self.entries
            .iter()
            .fold((0, 0), |(files, bytes), entry| match &entry.kind {
                EntryKind::File { size, .. } => (files + 1, bytes + size),
                EntryKind::Directory => (files, bytes),
            })
    }
}

/// Chunks `first..end` of file `file` (its index in the offer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// Index of the entry.
    pub file: u32,
    /// First chunk wanted.
    pub first: u32,
    /// One past the last chunk wanted.
    pub end: u32,
}

/// Why a side gives up the transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortCode {
    /// The receiver's user said no, or files are in the way.
    Declined,
    /// The offer is unsafe or malformed (a path outside the directory).
    BadOffer,
    /// A disk error (full, no permission) on either side.
    Disk,
    /// A chunk failed its hash twice, or the file changed on the sender.
    Corrupt,
    /// Anything else the other side sent that breaks this protocol.
    Protocol,
    /// A code this version does not know.
    Other(u8),
}

impl AbortCode {
    fn byte(self) -> u8 {
        match self {
            Self::Declined => 1,
            Self::BadOffer => 2,
            Self::Disk => 3,
            Self::Corrupt => 4,
            Self::Protocol => 5,
            Self::Other(code) => code,
        }
    }

    fn from_byte(byte: u8) -> Self {
        match byte {
            1 => Self::Declined,
            2 => Self::BadOffer,
            3 => Self::Disk,
            4 => Self::Corrupt,
            5 => Self::Protocol,
            other => Self::Other(other),
        }
    }
}

/// One frame of a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Sender → receiver, first: what is on offer.
    Offer(Offer),
    /// Receiver → sender: send these chunks, in this order.
    Want(Vec<Range>),
    /// Sender → receiver: chunk `index` of entry `file`, whole.
    Chunk {
        /// Index of the entry.
        file: u32,
        /// Index of the chunk.
        index: u32,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// Receiver → sender: every file is verified and in place.
    Done,
    /// Either side: the transfer ends here, and why.
    Abort(AbortCode, String),
}

/// Why bytes are not a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame's length is over [`MAX_FRAME`] (or zero).
    Length(usize),
    /// The input ends inside a field.
    Truncated,
    /// Bytes left after the last field.
    Trailing,
    /// An unknown frame type.
    Type(u8),
    /// An offer of another protocol version.
    Version(u8),
    /// A chunk size outside [`MIN_CHUNK`]..=[`MAX_CHUNK`].
    ChunkSize(u32),
    /// An unknown entry kind.
    EntryKind(u8),
    /// A path or reason that is not UTF-8, or too long.
    Text,
    /// A file's chunk hashes do not match its size.
    ChunkCount,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length(length) => write!(f, "frame length {length}"),
            Self::Truncated => f.write_str("truncated frame"),
            Self::Trailing => f.write_str("bytes after the frame's fields"),
            Self::Type(kind) => write!(f, "unknown frame type {kind}"),
            Self::Version(version) => write!(f, "transfer version {version}"),
            Self::ChunkSize(size) => write!(f, "chunk size {size}"),
            Self::EntryKind(kind) => write!(f, "unknown entry kind {kind}"),
            Self::Text => f.write_str("a path or reason that is not UTF-8 or too long"),
            Self::ChunkCount => f.write_str("chunk hashes that do not match the file's size"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The number of chunks of a file of `size` bytes.
pub fn chunk_count(size: u64, chunk_size: u32) -> u64 {
    size.div_ceil(u64::from(chunk_size.max(1)))
}

/// A cursor over a frame's body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < len {
            return Err(FrameError::Truncated);
        }
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FrameError> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(bytes))
    }

    fn hash(&mut self) -> Result<Hash, FrameError> {
        let mut hash = [0u8; HASH_LEN];
        hash.copy_from_slice(self.take(HASH_LEN)?);
        Ok(hash)
    }

    fn text(&mut self, len: usize, max: usize) -> Result<String, FrameError> {
        if len > max {
            return Err(FrameError::Text);
        }
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| FrameError::Text)
    }

    fn end(&self) -> Result<(), FrameError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Trailing)
        }
    }

    /// At most `count` items of at least `min` bytes each can follow:
    /// the capacity to reserve for them.
    fn capacity(&self, count: u64, min: usize) -> usize {
        usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(self.0.len() / min.max(1))
    }
}

impl Frame {
    /// Parses one frame's type and body (the length prefix removed).
    pub fn parse(bytes: &[u8]) -> Result<Self, FrameError> {
        let mut reader = Reader(bytes);
        let frame = match reader.u8()? {
            OFFER => Self::Offer(parse_offer(&mut reader)?),
            WANT => {
                let count = reader.u32()?;
                let mut ranges = Vec::with_capacity(reader.capacity(u64::from(count), 12));
                for _ in 0..count {
                    ranges.push(Range {
                        file: reader.u32()?,
                        first: reader.u32()?,
                        end: reader.u32()?,
                    });
                }
                Self::Want(ranges)
            }
            CHUNK => {
                let file = reader.u32()?;
                let index = reader.u32()?;
                let data = reader.0.to_vec();
                reader.0 = &[];
                Self::Chunk { file, index, data }
            }
            DONE => Self::Done,
            ABORT => {
                let code = AbortCode::from_byte(reader.u8()?);
                let len = usize::from(reader.u8()?);
                Self::Abort(code, reader.text(len, MAX_REASON)?)
            }
            other => return Err(FrameError::Type(other)),
        };
        reader.end()?;
        Ok(frame)
    }

    /// The frame with its length prefix, ready for the stream.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; 4];
        match self {
            Self::Offer(offer) => {
                out.push(OFFER);
                out.push(VERSION);
                out.extend_from_slice(&offer.chunk_size.to_be_bytes());
                out.extend_from_slice(&(offer.entries.len() as u32).to_be_bytes());
                for entry in &offer.entries {
                    encode_entry(&mut out, entry);
                }
            }
            Self::Want(ranges) => {
                out.push(WANT);
                out.extend_from_slice(&(ranges.len() as u32).to_be_bytes());
                for range in ranges {
                    for value in [range.file, range.first, range.end] {
                        out.extend_from_slice(&value.to_be_bytes());
                    }
                }
            }
            Self::Chunk { file, index, data } => {
                out.push(CHUNK);
                out.extend_from_slice(&file.to_be_bytes());
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(data);
            }
            Self::Done => out.push(DONE),
            Self::Abort(code, reason) => {
                out.push(ABORT);
                out.push(code.byte());
                let reason = truncate(reason, MAX_REASON);
                out.push(reason.len() as u8);
                out.extend_from_slice(reason.as_bytes());
            }
        }
        let length = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&length.to_be_bytes());
        out
    }

    /// The length prefix and header of a [`Frame::Chunk`] of `len` data
    /// bytes: a sender writes it and then the data straight from disk,
    /// with no copy of the chunk in a frame.
    pub fn chunk_header(file: u32, index: u32, len: usize) -> [u8; 13] {
        let mut header = [0u8; 13];
        header[..4].copy_from_slice(&((len + 9) as u32).to_be_bytes());
        header[4] = CHUNK;
        header[5..9].copy_from_slice(&file.to_be_bytes());
        header[9..].copy_from_slice(&index.to_be_bytes());
        header
    }

    /// The frame's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Offer(_) => "offer",
            Self::Want(_) => "want",
            Self::Chunk { .. } => "chunk",
            Self::Done => "done",
            Self::Abort(..) => "abort",
        }
    }
}

fn parse_offer(reader: &mut Reader<'_>) -> Result<Offer, FrameError> {
    let version = reader.u8()?;
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let chunk_size = reader.u32()?;
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
        return Err(FrameError::ChunkSize(chunk_size));
    }
    let count = reader.u32()?;
    // An entry is at least 4 bytes (kind, mode, path length).
    let mut entries = Vec::with_capacity(reader.capacity(u64::from(count), 4));
    for _ in 0..count {
        let kind = reader.u8()?;
        let mode = reader.u8()?;
        let len = usize::from(reader.u16()?);
        let path = reader.text(len, MAX_PATH)?;
        let kind = match kind {
            KIND_DIRECTORY => EntryKind::Directory,
            KIND_FILE => {
                let size = reader.u64()?;
                let sha256 = reader.hash()?;
                let count = chunk_count(size, chunk_size);
                // Checked against the input before anything is reserved.
                if reader.capacity(count, HASH_LEN) as u64 != count {
                    return Err(FrameError::ChunkCount);
                }
                let mut chunks = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    chunks.push(reader.hash()?);
                }
                EntryKind::File {
                    size,
                    sha256,
                    chunks,
                }
            }
            other => return Err(FrameError::EntryKind(other)),
        };
        entries.push(Entry {
            path,
            kind,
            executable: mode & MODE_EXECUTABLE != 0,
        });
    }
    Ok(Offer {
        chunk_size,
        entries,
    })
}

fn encode_entry(out: &mut Vec<u8>, entry: &Entry) {
    let path = truncate(&entry.path, MAX_PATH);
    out.push(match entry.kind {
        EntryKind::File { .. } => KIND_FILE,
        EntryKind::Directory => KIND_DIRECTORY,
    });
    out.push(if entry.executable { MODE_EXECUTABLE } else { 0 });
    out.extend_from_slice(&(path.len() as u16).to_be_bytes());
    out.extend_from_slice(path.as_bytes());
    if let EntryKind::File {
        size,
        sha256,
        chunks,
    } = &entry.kind
    {
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(sha256);
        for chunk in chunks {
            out.extend_from_slice(chunk);
        }
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Cuts a stream's bytes into frames.
#[derive(Debug, Default)]
pub struct FrameReader {
    buffer: Vec<u8>,
}

impl FrameReader {
    /// Adds bytes from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame, `Ok(None)` while it is incomplete, or why
    /// the stream cannot be read on (after which it must be dropped).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(prefix) = self.buffer.get(..4) else {
            return Ok(None);
        };
        let length = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if length == 0 || length > MAX_FRAME {
            return Err(FrameError::Length(length));
        }
        if self.buffer.len() < 4 + length {
            return Ok(None);
        }
        let frame = Frame::parse(&self.buffer[4..4 + length]);
        self.buffer.drain(..4 + length);
        frame.map(Some)
    }

    /// Bytes held, waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

/// A hash in hex, for messages.
pub fn hash_hex(hash: &Hash) -> String {
    hex(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> Offer {
        Offer {
            chunk_size: MIN_CHUNK,
            entries: vec![
                Entry {
                    path: "dir".into(),
                    kind: EntryKind::Directory,
                    executable: false,
                },
                Entry {
                    path: "dir/ü.sh".into(),
                    kind: EntryKind::File {
                        size: u64::from(MIN_CHUNK) + 1,
                        sha256: [7; 32],
                        chunks: vec![[1; 32], [2; 32]],
                    },
                    executable: true,
                },
            ],
        }
    }

    #[test]
    fn every_frame_parses_back_from_its_encoding() {
        let frames = [
            Frame::Offer(offer()),
            Frame::Want(vec![Range {
                file: 1,
                first: 0,
                end: 2,
            }]),
            Frame::Chunk {
                file: 1,
                index: 1,
                data: vec![9],
            },
            Frame::Done,
            Frame::Abort(AbortCode::Disk, "disk full".into()),
        ];
        let chunk = Frame::Chunk {
            file: 3,
            index: 4,
            data: vec![5, 6],
        };
        let mut by_header = Frame::chunk_header(3, 4, 2).to_vec();
        by_header.extend_from_slice(&[5, 6]);
        assert_eq!(by_header, chunk.encode());
        for frame in frames {
            let encoded = frame.encode();
            let mut reader = FrameReader::default();
            // Byte by byte: a frame is whole only at its last byte.
            for (i, byte) in encoded.iter().enumerate() {
                reader.push(&[*byte]);
                let next = reader.next_frame().unwrap();
                assert_eq!(next.is_some(), i + 1 == encoded.len(), "{frame:?} at {i}");
                if let Some(parsed) = next {
                    assert_eq!(parsed, frame);
                }
            }
            assert_eq!(reader.buffered(), 0);
        }
    }

    #[test]
    fn chunk_hashes_must_match_the_size_and_lengths_are_bounded() {
        let mut bad = offer();
        if let EntryKind::File { chunks, .. } = &mut bad.entries[1].kind {
            chunks.pop();
        }
        let encoded = Frame::Offer(bad).encode();
        assert_eq!(Frame::parse(&encoded[4..]), Err(FrameError::ChunkCount));
        // A size that implies more hashes than the input holds is refused
        // before anything is reserved.
        let mut huge = Frame::Offer(offer()).encode();
        let size_at = 4 + 1 + 1 + 4 + 4 + (1 + 1 + 2 + 3) + (1 + 1 + 2 + "dir/ü.sh".len());
        huge[size_at..size_at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(Frame::parse(&huge[4..]), Err(FrameError::ChunkCount));
        let mut reader = FrameReader::default();
        reader.push(&((MAX_FRAME + 1) as u32).to_be_bytes());
        assert_eq!(reader.next_frame(), Err(FrameError::Length(MAX_FRAME + 1)));
    }

    #[test]
    fn other_versions_chunk_sizes_and_types_are_refused() {
        let mut encoded = Frame::Offer(offer()).encode();
        encoded[5] = 2;
        assert_eq!(Frame::parse(&encoded[4..]), Err(FrameError::Version(2)));
        let mut encoded = Frame::Offer(offer()).encode();
        encoded[6..10].copy_from_slice(&(MAX_CHUNK + 1).to_be_bytes());
        assert_eq!(
            Frame::parse(&encoded[4..]),
            Err(FrameError::ChunkSize(MAX_CHUNK + 1))
        );
        assert_eq!(Frame::parse(&[9]), Err(FrameError::Type(9)));
        assert_eq!(Frame::parse(&[DONE, 0]), Err(FrameError::Trailing));
    }
}
