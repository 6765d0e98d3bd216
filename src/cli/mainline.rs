//! Where `join` finds its first Mainline DHT nodes: the user's
//! `--mainline-bootstrap` list (or `$TINYNODE_MAINLINE_BOOTSTRAP`), else a
//! cache of good nodes from earlier runs together with the public routers
//! (always both: a cache alone would carry a Sybil's view from one run to
//! the next).
//!
//! IP literals go to the node at start; host names are resolved on a
//! thread, so the event loop never waits for DNS, and handed to the running
//! node with [`NodeCommand::MainlineBootstrap`]. A name that does not
//! resolve is retried with backoff (DNS comes back after an outage).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, warn};
use tinynode::Command as NodeCommand;
use tinynode::driver::CommandSender;
use tinynode::driver::{HostPort, resolve_all};

use super::options::MAINLINE_PORT;

/// The public Mainline bootstrap routers that the project's Mainline
/// study found still answering (`protocol-spec.md` §9.1), asked after the
/// node cache. Used only when the user names no Mainline node.
pub const DEFAULT_ROUTERS: [&str; 6] = [
    "dht.libtorrent.org:25401",
    "dht.transmissionbt.com:6881",
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "router.bt.ouinet.work:6881",
    "relay.pkarr.org:6881",
];
/// Most nodes kept in the cache file.
pub const MAX_CACHED_NODES: usize = 200;
/// How often a running node saves the cache (and once more at exit).
pub const CACHE_SAVE_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// Name of the cache file (next to the identity file, or in the cache directory).
pub const CACHE_FILE: &str = "mainline-nodes";
/// Time allowed for one round of router name resolution.
const RESOLVE_LIMIT: Duration = Duration::from_secs(5);
/// Waits between rounds when no name resolved: 30 s doubling to 5 min.
const RESOLVE_RETRY: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(300));

/// How `join` starts the Mainline DHT.
pub struct Plan {
    /// Addresses the node bootstraps from at start (`None`: Mainline off).
    pub initial: Option<Vec<SocketAddr>>,
    /// Host names to resolve off the loop.
    pub names: Vec<HostPort>,
    /// Where to save good nodes at exit (only with the default routers).
    pub cache: Option<PathBuf>,
}

/// The plan for `given` nodes (flag or environment), or the defaults
/// with the cache at `cache`; `off` for `--no-mainline`.
pub fn plan(off: bool, given: Vec<HostPort>, cache: Option<PathBuf>) -> Plan {
    if off {
        return Plan {
            initial: None,
            names: Vec::new(),
            cache: None,
        };
    }
    let (names, initial, cache) = if given.is_empty() {
        let routers = DEFAULT_ROUTERS
            .iter()
            .filter_map(|r| HostPort::parse(r, MAINLINE_PORT).ok())
            .collect();
        let cached = cache.as_deref().map(load_cache).unwrap_or_default();
        debug!("mainline: {} cached nodes", cached.len());
        (routers, cached, cache)
    } else {
        (given, Vec::new(), None)
    };
    let (literals, names): (Vec<HostPort>, Vec<HostPort>) = names
        .into_iter()
        .partition(|n| n.host.parse::<IpAddr>().is_ok());
    let mut initial = initial;
    for literal in literals {
        if let Ok(ip) = literal.host.parse::<IpAddr>() {
            initial.push(SocketAddr::new(ip, literal.port));
        }
    }
    Plan {
        initial: Some(initial),
        names,
        cache,
    }
}

/// `$TINYNODE_MAINLINE_BOOTSTRAP`, comma-separated, with the names that
/// do not parse.
pub fn from_env() -> (Vec<HostPort>, Vec<String>) {
    let Ok(list) = std::env::var("TINYNODE_MAINLINE_BOOTSTRAP") else {
        return (Vec::new(), Vec::new());
    };
    let mut problems = Vec::new();
    let nodes = list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .filter_map(|item| match HostPort::parse(item, MAINLINE_PORT) {
            Ok(node) => Some(node),
            Err(error) => {
                problems.push(format!("TINYNODE_MAINLINE_BOOTSTRAP: {error}"));
                None
            }
        })
        .collect();
    (nodes, problems)
}

/// The cache file: next to the identity file, else
/// `$XDG_CACHE_HOME/tinynode/`, else `~/.cache/tinynode/`.
pub fn cache_path(identity: Option<&Path>) -> Option<PathBuf> {
    if let Some(identity) = identity {
        let name = identity.file_name()?.to_string_lossy().into_owned();
        return Some(identity.with_file_name(format!("{name}.{CACHE_FILE}")));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("tinynode").join(CACHE_FILE))
}

/// Most bytes read from the node cache: [`MAX_CACHED_NODES`] lines of
/// the longest address with room to spare.
pub const MAX_CACHE_BYTES: u64 = 16 * 1024;

/// Nodes saved by an earlier run: one `IP:PORT` per line, at most
/// [`MAX_CACHED_NODES`]; unreadable lines are skipped. Only a regular file
/// is read, never through a symlink, and at most [`MAX_CACHE_BYTES`] of it.
pub fn load_cache(path: &Path) -> Vec<SocketAddr> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    let mut text = String::new();
    let read = opened.and_then(|file| {
        if !file.metadata()?.is_file() {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        file.take(MAX_CACHE_BYTES).read_to_string(&mut text)
    });
    if let Err(error) = read {
        if error.kind() != std::io::ErrorKind::NotFound {
            debug!("mainline: node cache {} not read: {error}", path.display());
        }
        return Vec::new();
    }
    text.lines()
        .filter_map(|line| line.trim().parse().ok())
        .take(MAX_CACHED_NODES)
        .collect()
}

/// Saves `nodes` (at most [`MAX_CACHED_NODES`]) for the next run; a
/// failure is logged, not fatal.
pub fn save_cache(path: &Path, nodes: &[SocketAddr]) {
    if nodes.is_empty() {
        return;
    }
    let text: String = nodes
        .iter()
        .take(MAX_CACHED_NODES)
        .map(|n| format!("{n}\n"))
        .collect();
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| replace_atomically(path, text.as_bytes()));
    match written {
        Ok(()) => debug!(
            "mainline: saved {} nodes to {}",
            nodes.len(),
            path.display()
        ),
        Err(error) => warn!("mainline: cannot save nodes to {}: {error}", path.display()),
    }
}

/// Replaces `path` with a file holding `bytes` (mode 0600) all at once: a
/// temporary file beside it, created exclusively (never through a
/// symlink), written and synced, then renamed over `path` (which replaces a
/// symlink there rather than writing through it). A full disk leaves the
/// old file whole; the temporary file is removed in every case.
fn replace_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.file_name().ok_or(std::io::ErrorKind::InvalidInput)?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Resolves `names` on a thread and hands the addresses to
/// the node (one per router and family; each family's Mainline client
/// takes its own, and ignores them once joined); rounds that resolve
/// nothing are retried with backoff.
pub fn resolve_in_background(names: Vec<HostPort>, sender: CommandSender) {
    if names.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("mainline-dns".into())
        .spawn(move || {
            let mut wait = RESOLVE_RETRY.0;
            loop {
                let mut addrs = Vec::new();
                for (name, result) in names.iter().zip(resolve_all(&names, RESOLVE_LIMIT)) {
                    match result {
                        // One address per router and family: enough, and politer.
                        Ok(found) => {
                            addrs.extend(found.iter().copied().find(SocketAddr::is_ipv4));
                            addrs.extend(found.iter().copied().find(SocketAddr::is_ipv6));
                        }
                        Err(error) => warn!("mainline: bootstrap router {name}: {error}"),
                    }
                }
                if !addrs.is_empty() {
                    debug!("mainline: routers resolved to {addrs:?}");
                    sender.send(NodeCommand::MainlineBootstrap(addrs));
                    return;
                }
                warn!(
                    "mainline: no bootstrap router resolved; retrying in {} s",
                    wait.as_secs()
                );
                std::thread::sleep(wait);
                wait = (wait * 2).min(RESOLVE_RETRY.1);
            }
        });
    if let Err(error) = spawned {
        warn!("mainline: cannot start the resolver thread: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_nodes_replace_the_defaults_and_literals_start_at_once() {
        let given = vec![
            HostPort::parse("127.0.0.2:7000", MAINLINE_PORT).unwrap(),
            HostPort::parse("testnet.invalid", MAINLINE_PORT).unwrap(),
        ];
        let plan = plan(false, given, Some(PathBuf::from("/nonexistent")));
        assert_eq!(plan.initial, Some(vec!["127.0.0.2:7000".parse().unwrap()]));
        assert_eq!(plan.names.len(), 1);
        assert_eq!(plan.cache, None, "a test network is never cached");
        let off = super::plan(true, Vec::new(), None);
        assert_eq!(off.initial, None);
        let defaults = super::plan(false, Vec::new(), None);
        assert_eq!(defaults.names.len(), DEFAULT_ROUTERS.len());
    }

    #[test]
    fn the_cache_round_trips_bounded() {
        let dir = std::env::temp_dir().join(format!("tinynode-cache-{}", std::process::id()));
        let path = dir.join("sub").join(CACHE_FILE);
        let nodes: Vec<SocketAddr> = (0..300u16)
            .map(|p| SocketAddr::from(([192, 0, 2, 1], 1000 + p)))
            .collect();
        save_cache(&path, &nodes);
        let loaded = load_cache(&path);
        assert_eq!(loaded, nodes[..MAX_CACHED_NODES]);
        std::fs::write(&path, "junk\n192.0.2.9:6881\n").unwrap();
        assert_eq!(load_cache(&path), ["192.0.2.9:6881".parse().unwrap()]);
        let _ = std::fs::remove_dir_all(dir);
        assert_eq!(
            cache_path(Some(Path::new("/keys/me.key"))),
            Some(PathBuf::from("/keys/me.key.mainline-nodes"))
        );
    }

    #[test]
    fn a_save_that_cannot_complete_leaves_the_old_cache_whole() {
        let dir = std::env::temp_dir().join(format!("tinynode-cache-fail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(CACHE_FILE);
        save_cache(&path, &["192.0.2.1:1".parse().unwrap()]);
        // The write fails part-way (here: the temporary name is taken by
        // a directory; on a full disk, the write itself).
        let temporary = dir.join(format!(".{CACHE_FILE}.{}.tmp", std::process::id()));
        std::fs::create_dir(&temporary).unwrap();
        save_cache(&path, &["192.0.2.2:2".parse().unwrap()]);
        assert_eq!(
            load_cache(&path),
            ["192.0.2.1:1".parse().unwrap()],
            "the old cache, whole"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A full disk (a 64 KiB tmpfs the test mounts, as root) while the cache
    /// is saved: the old cache stays whole and nothing partial is left.
    /// Without root it fails, unless `TINYNODE_SKIP_ROOT=1` skips it.
    #[test]
    fn a_full_disk_leaves_the_old_cache_whole() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var_os("TINYNODE_SKIP_ROOT").is_some_and(|v| v == "1"),
                "mounting a tmpfs needs root; or set TINYNODE_SKIP_ROOT=1"
            );
            return;
        }
        let dir = std::env::temp_dir().join(format!("tinynode-cache-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tinynode-cache-full"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(mounted, "mount tmpfs");
        let path = dir.join(CACHE_FILE);
        let old: Vec<SocketAddr> = vec!["192.0.2.1:1".parse().unwrap()];
        save_cache(&path, &old);
        let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
        while std::io::Write::write_all(&mut filler, &[0; 1024]).is_ok() {}
        let new: Vec<SocketAddr> = (0..MAX_CACHED_NODES as u16)
            .map(|p| SocketAddr::from(([198, 51, 100, 1], 1000 + p)))
            .collect();
        save_cache(&path, &new);
        let loaded = load_cache(&path);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let _ = std::process::Command::new("umount").arg(&dir).status();
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(loaded, old, "the old cache, whole");
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn the_cache_is_never_read_or_written_through_a_symlink_and_reads_are_bounded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tinynode-cache-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "192.0.2.1:1\n").unwrap();
        let path = dir.join(CACHE_FILE);
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(load_cache(&path).is_empty(), "not read through the link");
        save_cache(&path, &["192.0.2.7:7".parse().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "192.0.2.1:1\n",
            "victim untouched"
        );
        assert!(
            std::fs::symlink_metadata(&path).unwrap().is_file(),
            "the link was replaced"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A link to an endless file reads nothing; a huge file reads 16 KiB.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        assert!(load_cache(&path).is_empty());
        std::fs::remove_file(&path).unwrap();
        let line = "192.0.2.9:6881\n";
        std::fs::write(&path, line.repeat(100_000)).unwrap();
        assert_eq!(load_cache(&path).len(), MAX_CACHED_NODES);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
