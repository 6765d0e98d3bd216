//! What a command line asks for: the commands, their options and the
//! defaults they start from (`args.rs` parses the words into these).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tinynode::driver::HostPort;

/// Exit code for a command line that cannot be run.
pub const EXIT_USAGE: i32 = 2;

/// Default STUN port (RFC 5389 §18.4).
pub const STUN_PORT: u16 = 3478;

/// Default port of a `--mainline-bootstrap` node: BitTorrent's usual one.
pub const MAINLINE_PORT: u16 = 6881;

/// Default wait per STUN server for `tinynode stun`.
pub const DEFAULT_STUN_TIMEOUT: Duration = Duration::from_secs(5);

/// Default and largest member count of `tinynode demo`.
pub const DEMO_NODES: (usize, usize) = (3, 16);

/// What to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Print a help text.
    Help(&'static str),
    /// Print the version.
    Version,
    /// Discover the public address.
    Stun(StunOptions),
    /// Run a DHT node until stopped.
    Serve(ServeOptions),
    /// Join a meeting.
    Join(JoinOptions),
    /// Pipe bytes to and from another member running `pipe`.
    Pipe(PipeOptions),
    /// Offer local TCP services to the meeting's members.
    Expose(ExposeOptions),
    /// Reach a member's exposed service at a local TCP address.
    Connect(ConnectOptions),
    /// Offer files and directories to whoever receives with the code.
    Send(SendOptions),
    /// Fetch what a member sends with the code.
    Receive(ReceiveOptions),
    /// Print this node's key.
    Id {
        /// Key file.
        identity: Option<PathBuf>,
        /// JSON output.
        json: bool,
    },
    /// Diagnose what the network allows.
    Doctor(DoctorOptions),
    /// Run the local demo with this many members.
    Demo {
        /// Members to start.
        nodes: usize,
    },
    /// Print a fresh meeting code.
    Code,
}

/// Options of `tinynode doctor`.
#[derive(Clone, Debug, PartialEq)]
pub struct DoctorOptions {
    /// tinynode DHT nodes to ask (and probe as relays).
    pub bootstrap: Vec<HostPort>,
    /// Mainline nodes to ask instead of the public routers.
    pub mainline_bootstrap: Vec<HostPort>,
    /// `--no-mainline`.
    pub no_mainline: bool,
    /// Local addresses.
    pub bind: Binds,
    /// JSON output.
    pub json: bool,
}

/// Options of `tinynode stun`.
#[derive(Clone, Debug, PartialEq)]
pub struct StunOptions {
    /// Servers in the order to try them.
    pub servers: Vec<HostPort>,
    /// Local address, if given.
    pub bind: Option<SocketAddr>,
    /// Wait per server.
    pub timeout: Duration,
    /// JSON output.
    pub json: bool,
}

/// Options of `tinynode serve`.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeOptions {
    /// Listening addresses.
    pub bind: Binds,
    /// DHT nodes to join through.
    pub bootstrap: Vec<HostPort>,
    /// Key file.
    pub identity: Option<PathBuf>,
    /// `--relay`.
    pub relay: bool,
    /// Mainline nodes to announce the relay through instead of the public
    /// routers.
    pub mainline_bootstrap: Vec<HostPort>,
    /// `--no-mainline`: a relay is not announced in the Mainline DHT.
    pub no_mainline: bool,
    /// `--relay-rate`: bytes a second per pair.
    pub relay_rate: Option<u64>,
    /// `--relay-total`: bytes a second through the whole relay.
    pub relay_total: Option<u64>,
    /// `--relay-pairs`: most pairs at once.
    pub relay_pairs: Option<usize>,
    /// JSON output.
    pub json: bool,
}

/// Options of `tinynode join`.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinOptions {
    /// The meeting code, if given on the command line.
    pub code: Option<String>,
    /// DHT nodes to join through.
    pub bootstrap: Vec<HostPort>,
    /// Mainline nodes to join through instead of the cache and the routers.
    pub mainline_bootstrap: Vec<HostPort>,
    /// `--no-mainline`.
    pub no_mainline: bool,
    /// `--no-lan`.
    pub no_lan: bool,
    /// `--no-relay`.
    pub no_relay: bool,
    /// STUN servers.
    pub stun: Vec<HostPort>,
    /// Local addresses.
    pub bind: Binds,
    /// Key file.
    pub identity: Option<PathBuf>,
    /// JSON output.
    pub json: bool,
    /// Do not read stdin.
    pub no_stdin: bool,
    /// Keep running when stdout is closed.
    pub keep_running: bool,
}

/// Options of `tinynode pipe`.
#[derive(Clone, Debug, PartialEq)]
pub struct PipeOptions {
    /// The meeting and the options every command in a meeting shares
    /// (`no_stdin` and `keep_running` unused).
    pub meeting: JoinOptions,
    /// The partner's node ID, or its first hex digits.
    pub peer: Option<String>,
    /// Give up when no partner is found in this time.
    pub timeout: Option<Duration>,
    /// Who may be a partner.
    pub allow: AllowOptions,
}

/// Options of `tinynode send`.
#[derive(Clone, Debug, PartialEq)]
pub struct SendOptions {
    /// The meeting (its code from `--code`, `MEETING_CODE` or made up)
    /// and the options every command in a meeting shares.
    pub meeting: JoinOptions,
    /// Files and directories to offer.
    pub paths: Vec<PathBuf>,
    /// Exit once this many receivers confirmed (`--receivers N`;
    /// `--once` is 1), whoever else is still under way; `None`: once
    /// every receiver that started has confirmed.
    pub receivers: Option<u32>,
    /// Who may receive.
    pub allow: AllowOptions,
}

/// Options of `tinynode receive`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiveOptions {
    /// The meeting and the options every command in a meeting shares.
    pub meeting: JoinOptions,
    /// Where the files go.
    pub out: PathBuf,
    /// Replace files that are in the way.
    pub overwrite: bool,
    /// Accept the offer without asking.
    pub yes: bool,
    /// Write the one offered file to stdout instead of a directory.
    pub stdout: bool,
    /// Whom to receive from.
    pub allow: AllowOptions,
}

/// `--allow KEY` and `--allow-file PATH`, on every command that opens or
/// takes streams: when either is given, only these members' streams are
/// taken and only they are opened to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AllowOptions {
    /// Node IDs given with `--allow`.
    pub keys: Vec<tinynode::NodeId>,
    /// Files of node IDs, one per line (`#` starts a comment).
    pub files: Vec<PathBuf>,
}

impl AllowOptions {
    /// True when neither option was given: every member is allowed.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty() && self.files.is_empty()
    }
}

/// A local TCP service `expose` offers: its name and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// What `connect --service` names it (`NAME=` of `--tcp`, else the port).
    pub name: String,
    /// Where `expose` connects for each forwarded connection.
    pub target: HostPort,
}

/// Options of `tinynode expose`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExposeOptions {
    /// The meeting and the shared options.
    pub meeting: JoinOptions,
    /// Who may connect.
    pub allow: AllowOptions,
    /// The TCP services offered.
    pub tcp: Vec<Service>,
    /// The UDP services offered (at least one service of either kind).
    pub udp: Vec<Service>,
}

/// Options of `tinynode connect`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectOptions {
    /// The meeting and the shared options.
    pub meeting: JoinOptions,
    /// Whose services may be reached.
    pub allow: AllowOptions,
    /// Where local TCP clients connect.
    pub listen: Option<SocketAddr>,
    /// Where local UDP clients send (at least one of the two).
    pub udp_listen: Option<SocketAddr>,
    /// The service to reach, when the exposing member offers several.
    pub service: Option<String>,
    /// The exposing member's node ID, or its first hex digits.
    pub peer: Option<String>,
}

/// Where a command binds its sockets: the addresses `--bind` named (at
/// most one per address family, `protocol-spec.md` §1.1), or, when none,
/// the wildcard of each family at the command's default port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binds {
    named: Vec<SocketAddr>,
    default_port: u16,
}

impl Binds {
    /// Both wildcards at `port` until `--bind` names addresses.
    pub fn default_at(port: u16) -> Self {
        Self {
            named: Vec::new(),
            default_port: port,
        }
    }

    /// Adds a `--bind` address; false (and nothing added) when one of
    /// its family is there already: one socket per family.
    pub fn add(&mut self, addr: SocketAddr) -> bool {
        if self.named.iter().any(|a| a.is_ipv4() == addr.is_ipv4()) {
            return false;
        }
        self.named.push(addr);
        true
    }

    /// True when no `--bind` was given: the IPv6 wildcard is left out on a
    /// host without IPv6 instead of failing.
    pub fn is_default(&self) -> bool {
        self.named.is_empty()
    }

    /// The addresses to bind, IPv4 first.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        if self.named.is_empty() {
            vec![
                SocketAddr::from(([0, 0, 0, 0], self.default_port)),
                SocketAddr::from(([0u16; 8], self.default_port)),
            ]
        } else {
            let mut named = self.named.clone();
            named.sort_by_key(|a| a.is_ipv6());
            named
        }
    }
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Cli {
    /// `-v` was given.
    pub verbose: bool,
    /// The command.
    pub command: Command,
}
