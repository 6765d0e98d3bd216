//! The disk side of a file transfer: what the sender offers (walking its
//! paths and hashing them), and on the receiver what an offer would do
//! to its directory ([`plan`]: refusing unsafe paths and symlinks on the
//! way, naming conflicts, finding complete files and partial ones to
//! resume) and the partial files themselves ([`PartFile`]). Like the
//! driver, this is the IO shell around the protocol (`wire.rs`), used by
//! `tinynode send` and `tinynode receive`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};

use super::paths;
use super::wire::{Entry, EntryKind, Hash, Offer, chunk_count};

/// What a partial file is called beside its target: `.NAME.tinynode-part`.
pub const PART_SUFFIX: &str = ".tinynode-part";

/// An IO error and the path it concerns.
#[derive(Debug)]
pub struct DiskError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong.
    pub error: io::Error,
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for DiskError {}

/// `error` about `path`.
fn at(path: &Path) -> impl FnOnce(io::Error) -> DiskError + '_ {
    move |error| DiskError {
        path: path.to_owned(),
        error,
    }
}

/// The sender's side: where an offered file is on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Index of the entry in the offer.
    pub entry: usize,
    /// The file.
    pub path: PathBuf,
}

/// An offer of `paths` (files and directory trees) in chunks of
/// `chunk_size`, and where each file is. Each path is offered under its
/// own name; symlinks inside a tree are left out (named in the
/// returned list), since what they point at may be outside it.
pub fn offer_paths(
    paths: &[PathBuf],
    chunk_size: u32,
) -> Result<(Offer, Vec<Source>, Vec<PathBuf>), DiskError> {
    let mut walk = Walk {
        chunk_size,
        entries: Vec::new(),
        sources: Vec::new(),
        skipped: Vec::new(),
    };
    for path in paths {
        let name = top_name(path).ok_or_else(|| DiskError {
            path: path.clone(),
            error: io::Error::new(io::ErrorKind::InvalidInput, "names no file or directory"),
        })?;
        if walk.entries.iter().any(|e| e.path == name) {
            return Err(DiskError {
                path: path.clone(),
                error: io::Error::new(io::ErrorKind::AlreadyExists, "offered twice"),
            });
        }
        walk.add(path, name)?;
    }
    let offer = Offer {
        chunk_size,
        entries: walk.entries,
    };
    Ok((offer, walk.sources, walk.skipped))
}

/// The name a path given to `send` is offered under: its last
/// component, as UTF-8.
fn top_name(path: &Path) -> Option<String> {
    let absolute = fs::canonicalize(path).ok()?;
    let name = absolute.file_name()?.to_str()?.to_owned();
    let safe = paths::check(&name).is_ok();
    safe.then_some(name)
}

struct Walk {
    chunk_size: u32,
    entries: Vec<Entry>,
    sources: Vec<Source>,
    skipped: Vec<PathBuf>,
}

impl Walk {
    fn add(&mut self, path: &Path, name: String) -> Result<(), DiskError> {
        let meta = fs::metadata(path).map_err(at(path))?;
        if meta.is_dir() {
            self.entries.push(Entry {
                path: name.clone(),
                kind: EntryKind::Directory,
                executable: false,
            });
            let mut children: Vec<(String, PathBuf)> = Vec::new();
            for child in fs::read_dir(path).map_err(at(path))? {
                let child = child.map_err(at(path))?;
                let child_path = child.path();
                match child.file_name().to_str() {
                    Some(child_name) if paths::check(child_name).is_ok() => {
                        children.push((child_name.to_owned(), child_path));
                    }
                    _ => self.skipped.push(child_path),
                }
            }
            children.sort();
            for (child_name, child_path) in children {
                let kind = fs::symlink_metadata(&child_path).map_err(at(&child_path))?;
                if kind.file_type().is_symlink()
                    || !(kind.file_type().is_dir() || kind.file_type().is_file())
                {
                    self.skipped.push(child_path);
                    continue;
                }
                self.add(&child_path, format!("{name}/{child_name}"))?;
            }
            return Ok(());
        }
        let (size, sha256, chunks) = hash_file(path, self.chunk_size)?;
        self.sources.push(Source {
            entry: self.entries.len(),
            path: path.to_owned(),
        });
        self.entries.push(Entry {
            path: name,
            kind: EntryKind::File {
                size,
                sha256,
                chunks,
            },
            executable: meta.permissions().mode() & 0o100 != 0,
        });
        Ok(())
    }
}

/// A file's size, SHA-256 and chunk hashes.
pub fn hash_file(path: &Path, chunk_size: u32) -> Result<(u64, Hash, Vec<Hash>), DiskError> {
    let mut file = File::open(path).map_err(at(path))?;
    let mut whole = Context::new(&SHA256);
    let mut chunks = Vec::new();
    let mut buffer = vec![0u8; chunk_size as usize];
    let mut size = 0u64;
    loop {
        let read = read_full(&mut file, &mut buffer).map_err(at(path))?;
        if read == 0 {
            break;
        }
        whole.update(&buffer[..read]);
        chunks.push(digest(&buffer[..read]));
        size += read as u64;
        if read < buffer.len() {
            break;
        }
    }
    Ok((size, finish(whole), chunks))
}

/// Reads until `buffer` is full or the file ends: how much was read.
pub fn read_full(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> Hash {
    finish({
        let mut context = Context::new(&SHA256);
        context.update(bytes);
        context
    })
}

fn finish(context: Context) -> Hash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(context.finish().as_ref());
    hash
}

/// Why the receiver does not take an offer.
#[derive(Debug)]
#[non_exhaustive]
pub enum PlanError {
    /// A path that could leave the directory: never taken, whoever sent it.
    Unsafe {
        /// The path as offered.
        path: String,
        /// Why.
        why: String,
    },
    /// Things in the way, and `--overwrite` was not given (or they are
    /// not files): every one of them.
    Conflicts(Vec<String>),
    /// The directory could not be read.
    Disk(DiskError),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsafe { path, why } => write!(f, "refused {path:?}: {why}"),
            Self::Conflicts(paths) => write!(
                f,
                "already there (give --overwrite to replace files): {}",
                paths.join(", ")
            ),
            Self::Disk(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for PlanError {}

/// What the receiver does with one entry.
#[derive(Debug)]
pub enum Step {
    /// Make this directory (if missing).
    Directory(PathBuf),
    /// The file is there already, whole and equal: nothing to fetch.
    Complete {
        /// Index of the entry.
        entry: usize,
    },
    /// Fetch the file from chunk `from` on; chunks before are in its
    /// partial file, verified.
    Fetch {
        /// Index of the entry.
        entry: usize,
        /// Where it goes.
        target: PathBuf,
        /// Its partial file.
        part: PathBuf,
        /// The first chunk not verified in the partial file.
        from: u32,
    },
}

/// What an offer does to `dir`: a step per entry, in the offer's order.
/// Refuses the whole offer if any path is unsafe (absolute, `..`,
/// through a symlink), and names every conflict unless `overwrite`
/// allows replacing files. Reads only: nothing is created or changed.
pub fn plan(dir: &Path, offer: &Offer, overwrite: bool) -> Result<Vec<Step>, PlanError> {
    let mut steps = Vec::new();
    let mut conflicts = Vec::new();
    'entries: for (entry_index, entry) in offer.entries.iter().enumerate() {
        let unsafe_path = |why: String| PlanError::Unsafe {
            path: entry.path.clone(),
            why,
        };
        let components = paths::check(&entry.path).map_err(|e| unsafe_path(e.to_string()))?;
        let mut target = dir.to_owned();
        for (depth, component) in components.iter().enumerate() {
            target.push(component);
            let last = depth + 1 == components.len();
            match fs::symlink_metadata(&target) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(unsafe_path(format!(
                        "{} is a symbolic link",
                        target.display()
                    )));
                }
                Ok(meta) if !last && !meta.is_dir() => {
                    conflicts.push(format!("{} (not a directory)", target.display()));
                    continue 'entries;
                }
                Ok(_) => {}
                // Missing: nothing deeper exists either.
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    for rest in &components[depth + 1..] {
                        target.push(rest);
                    }
                    break;
                }
                Err(error) => return Err(PlanError::Disk(at(&target)(error))),
            }
        }
        let step = match &entry.kind {
            EntryKind::Directory => {
                if target.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
                    conflicts.push(format!(
                        "{} (a file where a directory goes)",
                        target.display()
                    ));
                }
                Step::Directory(target)
            }
            EntryKind::File {
                size,
                sha256,
                chunks,
            } => match fs::symlink_metadata(&target) {
                Ok(meta) if meta.is_dir() => {
                    conflicts.push(format!("{} (a directory)", target.display()));
                    continue;
                }
                Ok(meta) if meta.len() == *size && whole_hash(&target)? == *sha256 => {
                    Step::Complete { entry: entry_index }
                }
                Ok(_) if !overwrite => {
                    conflicts.push(target.display().to_string());
                    continue;
                }
                _ => {
                    let part = part_path(&target);
                    if part
                        .symlink_metadata()
                        .is_ok_and(|m| m.file_type().is_symlink())
                    {
                        return Err(unsafe_path(format!(
                            "{} is a symbolic link",
                            part.display()
                        )));
                    }
                    let from = verified_prefix(&part, offer.chunk_size, chunks)?;
                    Step::Fetch {
                        entry: entry_index,
                        target,
                        part,
                        from,
                    }
                }
            },
        };
        steps.push(step);
    }
    if conflicts.is_empty() {
        Ok(steps)
    } else {
        Err(PlanError::Conflicts(conflicts))
    }
}

/// The partial file of `target`: `.NAME.tinynode-part` beside it.
pub fn part_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}{PART_SUFFIX}"))
}

fn whole_hash(path: &Path) -> Result<Hash, PlanError> {
    File::open(path)
        .and_then(|mut file| hash_rest(&mut file))
        .map_err(|e| PlanError::Disk(at(path)(e)))
}

/// SHA-256 of `file` from where it stands to its end.
fn hash_rest(file: &mut File) -> io::Result<Hash> {
    let mut context = Context::new(&SHA256);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = read_full(file, &mut buffer)?;
        context.update(&buffer[..read]);
        if read < buffer.len() {
            return Ok(finish(context));
        }
    }
}

/// How many chunks at the start of the partial file `part` match
/// `chunks` (0 if it does not exist).
fn verified_prefix(part: &Path, chunk_size: u32, chunks: &[Hash]) -> Result<u32, PlanError> {
    let mut file = match File::open(part) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(PlanError::Disk(at(part)(error))),
    };
    let mut buffer = vec![0u8; chunk_size as usize];
    let mut verified = 0u32;
    for expected in chunks {
        let read = read_full(&mut file, &mut buffer).map_err(|e| PlanError::Disk(at(part)(e)))?;
        if read == 0 || digest(&buffer[..read]) != *expected {
            break;
        }
        verified += 1;
    }
    Ok(verified)
}

/// A file being received: its partial file, written chunk by chunk,
/// checked whole and renamed into place at the end.
pub struct PartFile {
    file: File,
    part: PathBuf,
    target: PathBuf,
    chunk_size: u64,
    /// Chunks `..next` are written, in order, and in `context`.
    next: u32,
    context: Option<Context>,
}

impl PartFile {
    /// Opens (creating parents) the partial file of `target`, keeping its
    /// first `from` chunks (verified by [`plan`]) and dropping the rest.
    /// Never follows a symlink at the partial file.
    pub fn open(target: &Path, part: &Path, chunk_size: u32, from: u32) -> Result<Self, DiskError> {
        if let Some(parent) = part.parent() {
            fs::create_dir_all(parent).map_err(at(parent))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(part)
            .map_err(at(part))?;
        let keep = u64::from(from) * u64::from(chunk_size);
        file.set_len(keep).map_err(at(part))?;
        // The verified prefix goes into the running hash.
        let mut context = Context::new(&SHA256);
        let mut buffer = vec![0u8; 1 << 20];
        let mut left = keep;
        file.seek(SeekFrom::Start(0)).map_err(at(part))?;
        while left > 0 {
            let want = buffer
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let read = read_full(&mut file, &mut buffer[..want]).map_err(at(part))?;
            if read == 0 {
                break;
            }
            context.update(&buffer[..read]);
            left -= read as u64;
        }
        Ok(Self {
            file,
            part: part.to_owned(),
            target: target.to_owned(),
            chunk_size: u64::from(chunk_size),
            next: from,
            context: Some(context),
        })
    }

    /// Writes chunk `index` (already checked against its hash).
    pub fn write_chunk(&mut self, index: u32, data: &[u8]) -> Result<(), DiskError> {
        let part = &self.part;
        self.file
            .seek(SeekFrom::Start(u64::from(index) * self.chunk_size))
            .map_err(at(part))?;
        self.file.write_all(data).map_err(at(part))?;
        if index == self.next {
            if let Some(context) = self.context.as_mut() {
                context.update(data);
            }
            self.next += 1;
        } else {
            // Out of order (a chunk fetched again): hash it all at the end.
            self.context = None;
        }
        Ok(())
    }

    /// Checks the whole file against `sha256`; if it matches, gives it
    /// the executable bit if asked and renames it into place. False (and
    /// nothing renamed) if it does not match.
    pub fn finish(mut self, sha256: &Hash, executable: bool) -> Result<bool, DiskError> {
        let part = self.part.clone();
        self.file.flush().map_err(at(&part))?;
        let whole = match self.context.take() {
            Some(context) => finish(context),
            None => {
                self.file.seek(SeekFrom::Start(0)).map_err(at(&part))?;
                hash_rest(&mut self.file).map_err(at(&part))?
            }
        };
        if whole != *sha256 {
            return Ok(false);
        }
        self.file.sync_all().map_err(at(&part))?;
        if executable {
            let mut permissions = self.file.metadata().map_err(at(&part))?.permissions();
            // Execute wherever read is allowed.
            let mode = permissions.mode();
            permissions.set_mode(mode | ((mode & 0o444) >> 2));
            fs::set_permissions(&part, permissions).map_err(at(&part))?;
        }
        fs::rename(&part, &self.target).map_err(at(&self.target))?;
        Ok(true)
    }
}

/// The number of chunks of an entry (0 for a directory).
pub fn entry_chunks(entry: &Entry, chunk_size: u32) -> u32 {
    match &entry.kind {
        EntryKind::File { size, .. } => {
            u32::try_from(chunk_count(*size, chunk_size)).unwrap_or(u32::MAX)
        }
        EntryKind::Directory => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::wire::MIN_CHUNK;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tinynode-disk-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn file_entry(path: &str, bytes: &[u8]) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File {
                size: bytes.len() as u64,
                sha256: digest(bytes),
                chunks: bytes.chunks(MIN_CHUNK as usize).map(digest).collect(),
            },
            executable: false,
        }
    }

    fn offer(entries: Vec<Entry>) -> Offer {
        Offer {
            chunk_size: MIN_CHUNK,
            entries,
        }
    }

    #[test]
    fn an_offer_through_dots_the_root_or_a_symlink_is_refused_whole() {
        let dir = scratch("unsafe");
        let outside = scratch("outside");
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        for path in ["../x", "/etc/x", "link/x", "a/../../x"] {
            let crafted = offer(vec![file_entry("fine", b"ok"), file_entry(path, b"evil")]);
            match plan(&dir, &crafted, true) {
                Err(PlanError::Unsafe { path: refused, .. }) => assert_eq!(refused, path),
                other => panic!("{path}: {other:?}"),
            }
        }
        // A symlink as the file itself, or as its partial file.
        std::os::unix::fs::symlink(outside.join("t"), dir.join("target")).unwrap();
        let crafted = offer(vec![file_entry("target", b"evil")]);
        assert!(matches!(
            plan(&dir, &crafted, true),
            Err(PlanError::Unsafe { .. })
        ));
        std::os::unix::fs::symlink(outside.join("p"), dir.join(".other.tinynode-part")).unwrap();
        let crafted = offer(vec![file_entry("other", b"evil")]);
        assert!(matches!(
            plan(&dir, &crafted, true),
            Err(PlanError::Unsafe { .. })
        ));
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing outside"
        );
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&outside);
    }

    #[test]
    fn existing_files_conflict_unless_equal_or_overwritten() {
        let dir = scratch("conflict");
        fs::write(dir.join("same"), b"same").unwrap();
        fs::write(dir.join("other"), b"old").unwrap();
        let offered = offer(vec![
            file_entry("same", b"same"),
            file_entry("other", b"new"),
        ]);
        match plan(&dir, &offered, false) {
            Err(PlanError::Conflicts(paths)) => {
                assert_eq!(paths.len(), 1);
                assert!(paths[0].ends_with("other"), "{paths:?}");
            }
            other => panic!("{other:?}"),
        }
        let steps = plan(&dir, &offered, true).unwrap();
        assert!(matches!(steps[0], Step::Complete { entry: 0 }));
        assert!(matches!(steps[1], Step::Fetch { from: 0, .. }));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_partial_file_resumes_after_its_verified_chunks_and_lands_whole() {
        let dir = scratch("resume");
        let bytes: Vec<u8> = (0..MIN_CHUNK * 3 + 5).map(|i| (i % 251) as u8).collect();
        let offered = offer(vec![file_entry("f", &bytes)]);
        // Two good chunks and a bad third on disk.
        let chunk = MIN_CHUNK as usize;
        let mut partial = bytes[..2 * chunk].to_vec();
        partial.extend_from_slice(&[0u8; 100]);
        fs::write(dir.join(".f.tinynode-part"), &partial).unwrap();
        let steps = plan(&dir, &offered, false).unwrap();
        let Step::Fetch {
            target, part, from, ..
        } = &steps[0]
        else {
            panic!("{steps:?}")
        };
        assert_eq!(*from, 2);
        let mut file = PartFile::open(target, part, MIN_CHUNK, *from).unwrap();
        file.write_chunk(3, &bytes[3 * chunk..]).unwrap();
        file.write_chunk(2, &bytes[2 * chunk..3 * chunk]).unwrap();
        let EntryKind::File { sha256, .. } = &offered.entries[0].kind else {
            unreachable!()
        };
        assert!(file.finish(sha256, true).unwrap());
        assert_eq!(fs::read(dir.join("f")).unwrap(), bytes);
        assert!(!part.exists());
        let mode = fs::metadata(dir.join("f")).unwrap().permissions().mode();
        assert_ne!(mode & 0o100, 0, "executable: {mode:o}");
        // A wrong whole hash leaves the target alone.
        let mut file =
            PartFile::open(&dir.join("g"), &part_path(&dir.join("g")), MIN_CHUNK, 0).unwrap();
        file.write_chunk(0, b"x").unwrap();
        assert!(!file.finish(&[0; 32], false).unwrap());
        assert!(!dir.join("g").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tree_is_offered_sorted_with_its_empty_parts_and_without_symlinks() {
        let dir = scratch("offer");
        let tree = dir.join("tree");
        fs::create_dir_all(tree.join("empty")).unwrap();
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("sub/b"), b"bee").unwrap();
        fs::write(tree.join("a"), b"").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tree.join("link")).unwrap();
        let (offered, sources, skipped) =
            offer_paths(std::slice::from_ref(&tree), MIN_CHUNK).unwrap();
        let names: Vec<&str> = offered.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            names,
            ["tree", "tree/a", "tree/empty", "tree/sub", "tree/sub/b"]
        );
        assert_eq!(sources.len(), 2);
        assert_eq!(skipped, [tree.join("link")]);
        assert_eq!(entry_chunks(&offered.entries[1], MIN_CHUNK), 0);
        let _ = fs::remove_dir_all(&dir);
    }
}
