//! Command-line parsing, by hand (no argument-parsing dependency): the
//! commands, their options and their help texts.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tinynode::driver::resolve::{HostPort, HostPortError};

/// Exit code for a command line that cannot be run.
pub const EXIT_USAGE: i32 = 2;

/// Default STUN port (RFC 5389 §18.4).
pub const STUN_PORT: u16 = 3478;

/// Default port of a `--mainline-bootstrap` node: BitTorrent's usual one.
pub const MAINLINE_PORT: u16 = 6881;

/// Default wait per STUN server for `tinynode stun`.
pub const DEFAULT_STUN_TIMEOUT: Duration = Duration::from_secs(5);

/// Top-level usage.
pub const MAIN_HELP: &str = "\
tinynode: a tiny peer-to-peer node

Usage: tinynode [-v] COMMAND [OPTIONS]

Commands:
  code                    print a fresh meeting code (7 words, 70 bits)
  demo                    run a small network on this machine and show it working
  doctor                  tell what this network allows: NAT, hairpinning, relays
  join CODE               join a meeting: find the other members and chat with them
  pipe CODE               pipe stdin/stdout to another member running pipe
  serve                   run a DHT node that also answers STUN (alias: bootstrap)
  stun SERVER[:PORT]...   print this host's public address as STUN servers see it

Options:
  -v, --verbose   debug logs on stderr (same as DEBUG=true)
  -h, --help      this help; COMMAND --help for a command's options
  -V, --version   print the version

Environment:
  DEBUG=true            debug logs: STUN queries, DHT bootstrap, lookups, announces
  MEETING_CODE=CODE     the meeting code when `join` is given none
  TINYNODE_BOOTSTRAP    comma-separated bootstrap nodes when none is given
  TINYNODE_MAINLINE_BOOTSTRAP
                        comma-separated Mainline DHT nodes replacing the
                        public routers when no --mainline-bootstrap is given
";

/// `tinynode join --help`.
/// Help for `tinynode pipe`.
pub const PIPE_HELP: &str = "\
Usage: tinynode pipe CODE [--peer ID] [--timeout SECONDS] [join's options]

Joins the meeting CODE like `join` and waits for another member running
`pipe` (members running `join` are not partners), however late it starts.
Then stdin goes to the partner and the partner's bytes come out on stdout,
both directions at once, binary-safe, over an encrypted data channel:

  tar c dir | tinynode pipe CODE        # on one machine
  tinynode pipe CODE | tar x            # on the other

End of stdin finishes our half; the command exits 0 once both halves are
finished and every byte is written out, and non-zero with the reason when
the partner leaves or resets mid-stream. A slow reader on either side
slows the writer on the other. stdout carries only the partner's bytes:
status and errors go to stderr.

Options:
  --peer ID          only this member (its node ID or its first hex digits)
  --timeout SECONDS  give up (exit 1) when no partner is found in time
  --json             status as JSON lines on stderr: pipe_waiting,
                     pipe_connected, pipe_done, error
  and join's --bootstrap, --mainline-bootstrap, --no-mainline, --no-lan,
  --no-relay, --stun, --bind, --identity
";

pub const JOIN_HELP: &str = "\
Usage: tinynode join CODE [--bootstrap ADDR]... [--mainline-bootstrap ADDR]...
                          [--no-mainline] [--no-lan] [--no-relay] [--stun ADDR]... [--bind ADDR]
                          [--identity PATH] [--json] [--no-stdin] [--keep-running]

Joins the meeting CODE (or $MEETING_CODE, which other users of the host
cannot read in ps; make a strong code with `tinynode code`: a code
estimated under 50 bits gets a warning) and finds the other members with
no server of ours, three ways at once: on the local network (a sealed
multicast beacon, on by default), through the BitTorrent Mainline DHT (on
by default; its nodes see members' IP addresses, as for any torrent), and
through tinynode DHT nodes given with --bootstrap. It learns the public address (from the
STUN servers when given, otherwise from DHT answers), announces itself,
finds the other members and opens an encrypted WebRTC data channel to each. Lines typed on stdin go
to every connected member; their messages are printed as `<peer>: text`.
Ctrl-C closes the channels and exits 0.

Options:
  --bootstrap ADDR   tinynode DHT node to join through, repeatable (default
                     port 3478; default: $TINYNODE_BOOTSTRAP, comma-separated)
  --mainline-bootstrap ADDR
                     Mainline DHT node to join through, repeatable (default
                     port 6881); replaces the node cache and the public
                     routers (default: $TINYNODE_MAINLINE_BOOTSTRAP)
  --no-mainline      do not use the Mainline DHT
  --no-lan           send no LAN beacons and listen for none
  --no-relay         do not relay for other members (relaying is on by
                     default: a member connected to two others forwards
                     their encrypted traffic when their NATs need it)
  --stun ADDR        STUN server for the public address, repeatable
  --bind ADDR        local UDP address, once per family (default 0.0.0.0:0
                     and [::]:0, the second only where the host has IPv6)
  --identity PATH    key file: loaded, or created (mode 0600) if missing;
                     without it a fresh identity each run
  --json             one JSON object per line on stdout (logs stay on stderr):
                     started, weak_code, public_address, nat, mainline_bootstrapped,
                     peer_discovered, peer_lost, connected (with path
                     direct or relay), path_changed, message,
                     disconnected, connect_failed, error
  --no-stdin         do not read stdin (for scripts that only listen)
  --keep-running     stay in the meeting when stdout is closed (by default
                     `join` leaves, closing its channels, once nobody reads
                     what it prints)
  -h, --help         this help
";

/// `tinynode code --help`.
pub const CODE_HELP: &str = "\
Usage: tinynode code

Prints a fresh meeting code: 7 words drawn at random from a built-in list
of 1024 (70 bits), joined with '-', such as
  hazel-orbit-tiger-quilt-mango-sonic-ferry
Anyone who learns the code can join the meeting, and anyone who sees the
meeting's traffic can test guesses at it offline, so a code you make up
(\"blue fox\": about 20 bits) falls in seconds; `join` warns when a code
is estimated under 50 bits. Pass the code in MEETING_CODE rather than on
the command line where other users of the host can read it (ps).
";

/// `tinynode stun --help`.
pub const STUN_HELP: &str = "\
Usage: tinynode stun SERVER[:PORT]... [--bind ADDR] [--timeout SECS] [--json]

Asks the STUN servers, one after another, for the address this host's
requests come from. Exits 0 and prints the address when one answers;
exits 1 naming every server tried when none does.

Arguments:
  SERVER[:PORT]    host name, IPv4 or [IPv6] address; port 3478 by default

Options:
  --bind ADDR      local address to send from (default 0.0.0.0:0, or [::]:0
                   when the servers are IPv6)
  --timeout SECS   how long to wait for each server before trying the next
                   (default 5; requests are retransmitted on the RFC 5389
                   schedule within it)
  --json           print one JSON object per line on stdout
  -h, --help       this help
";

/// `tinynode doctor --help`.
pub const DOCTOR_HELP: &str = "\
Usage: tinynode doctor [--bootstrap ADDR]... [--mainline-bootstrap ADDR]...
                       [--no-mainline] [--bind ADDR] [--json]

Tells, within 10 seconds, what this network allows: the socket, which
bootstrap sources answered and how fast, the public address and how many
observers saw it, the NAT's mapping (one public port for every peer, or
a new one per peer), whether the NAT hairpins, which bootstrap nodes
relay for this host, and a verdict in plain words. Joins no meeting.

Exit status: 0 when direct connections are likely, 1 when a relay will be
needed for some peers, 2 when no bootstrap source answered.

Options:
  --bootstrap ADDR   tinynode DHT node to ask, repeatable (also probed as a
                     relay)
  --mainline-bootstrap ADDR
                     Mainline DHT node to ask instead of the public
                     routers, repeatable (its many nodes are the observers
                     that tell the NAT's mapping)
  --no-mainline      do not use the Mainline DHT
  --bind ADDR        local UDP address, once per family (default 0.0.0.0:0
                     and [::]:0, the second only where the host has IPv6)
  --json             one JSON object (event doctor) on stdout
  -h, --help         this help
";

/// `tinynode demo --help`.
pub const DEMO_HELP: &str = "\
Usage: tinynode demo [--nodes N]

Starts a serve node and N members (default 3, at most 16) with a random
meeting code on 127.0.0.1, as child processes; shows discovery and
connections as they happen, sends a message across every pair, prints a
summary, and exits 0 on success or 1 with the reason. Needs no outside
servers.

Options:
  --nodes N     members to start (2..=16, default 3)
  -h, --help    this help
";

/// Default and largest member count of `tinynode demo`.
pub const DEMO_NODES: (usize, usize) = (3, 16);

/// `tinynode serve --help`.
pub const SERVE_HELP: &str = "\
Usage: tinynode serve [--bind ADDR]... [--bootstrap ADDR]... [--identity PATH] [--relay]
                      [--mainline-bootstrap ADDR]... [--no-mainline] [--json]
       tinynode bootstrap ...

Runs a DHT node that stores meeting records, relays signals and answers
STUN Binding requests, until Ctrl-C (SIGINT) or SIGTERM, then exits 0.
Prints its node ID and the addresses it listens on. As a service, see
contrib/tinynode-serve.service (a hardened systemd unit).

Options:
  --bind ADDR        address to listen on, once per family (default
                     0.0.0.0:3478 and [::]:3478, the second only where the
                     host has IPv6)
  --bootstrap ADDR   other DHT node to join through, repeatable
  --identity PATH    key file (created with mode 0600 if missing): the node
                     keeps its node ID across restarts; without it a fresh
                     identity each run
  --relay            also relay, blindly, for members whose NATs cannot reach
                     each other: it pairs two bindings that present the same
                     token and forwards their encrypted datagrams, within
                     quotas (protocol-spec.md §12.5); a relay announces
                     itself in the Mainline DHT, so members of meetings
                     that name no serve node can find it
  --mainline-bootstrap ADDR
                     Mainline DHT node to announce the relay through,
                     repeatable (default: the public routers)
  --no-mainline      do not announce the relay in the Mainline DHT
  --json             print events as one JSON object per line on stdout
  -h, --help         this help

Logs go to stderr (the journal, under systemd); DEBUG=true or -v logs every
step: STUN answers, DHT requests, relay bindings, dropped datagrams.
";

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

    /// Adds a `--bind` address; a second one of the same family is an error.
    fn add(&mut self, addr: SocketAddr) -> Result<(), UsageError> {
        if self.named.iter().any(|a| a.is_ipv4() == addr.is_ipv4()) {
            return Err(UsageError::BadValue {
                option: "--bind",
                value: format!("{addr} (one address per family: IPv4 and IPv6)"),
            });
        }
        self.named.push(addr);
        Ok(())
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

/// A command line that cannot be run.
#[derive(Clone, Debug, PartialEq)]
pub enum UsageError {
    /// No command given.
    NoCommand,
    /// Not a known command.
    UnknownCommand(String),
    /// Not an option of this command.
    UnknownOption(String),
    /// An option that needs a value came last.
    MissingValue(&'static str),
    /// An option value that does not parse.
    BadValue {
        /// The option.
        option: &'static str,
        /// The value given.
        value: String,
    },
    /// A server argument that does not parse.
    BadServer(HostPortError),
    /// `stun` without servers.
    NoServers,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCommand => f.write_str("no command given"),
            Self::UnknownCommand(command) => write!(f, "unknown command {command:?}"),
            Self::UnknownOption(option) => write!(f, "unknown option {option:?}"),
            Self::MissingValue(option) => write!(f, "{option} needs a value"),
            Self::BadValue { option, value } => write!(f, "invalid value {value:?} for {option}"),
            Self::BadServer(error) => error.fmt(f),
            Self::NoServers => f.write_str("stun needs at least one SERVER"),
        }
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Cli, UsageError> {
    let mut verbose = false;
    let mut rest = Vec::new();
    for arg in args {
        match arg.as_str() {
            "-v" | "--verbose" => verbose = true,
            _ => rest.push(arg),
        }
    }
    let mut args = rest.into_iter();
    let command = match args.next().as_deref() {
        None => return Err(UsageError::NoCommand),
        Some("-h" | "--help" | "help") => Command::Help(MAIN_HELP),
        Some("-V" | "--version") => Command::Version,
        Some("stun") => parse_stun(args)?,
        Some("serve" | "bootstrap") => parse_serve(args)?,
        Some("join") => parse_join(args)?,
        Some("pipe") => parse_pipe(args)?,
        Some("demo") => parse_demo(args)?,
        Some("doctor") => parse_doctor(args)?,
        Some("code") => match args.next().as_deref() {
            None => Command::Code,
            Some("-h" | "--help") => Command::Help(CODE_HELP),
            Some(other) => return Err(UsageError::UnknownOption(other.to_owned())),
        },
        Some(other) => return Err(UsageError::UnknownCommand(other.to_owned())),
    };
    Ok(Cli { verbose, command })
}

fn parse_stun(mut args: impl Iterator<Item = String>) -> Result<Command, UsageError> {
    let mut options = StunOptions {
        servers: Vec::new(),
        bind: None,
        timeout: DEFAULT_STUN_TIMEOUT,
        json: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(STUN_HELP)),
            "--json" => options.json = true,
            "--bind" => options.bind = Some(parse_value("--bind", args.next())?),
            "--timeout" => {
                let seconds: f64 = parse_value("--timeout", args.next())?;
                options.timeout = Duration::try_from_secs_f64(seconds)
                    .ok()
                    .filter(|timeout| !timeout.is_zero())
                    .ok_or(UsageError::BadValue {
                        option: "--timeout",
                        value: seconds.to_string(),
                    })?;
            }
            option if option.starts_with('-') && option.len() > 1 => {
                return Err(UsageError::UnknownOption(arg));
            }
            server => options
                .servers
                .push(HostPort::parse(server, STUN_PORT).map_err(UsageError::BadServer)?),
        }
    }
    if options.servers.is_empty() {
        return Err(UsageError::NoServers);
    }
    Ok(Command::Stun(options))
}

fn parse_serve(mut args: impl Iterator<Item = String>) -> Result<Command, UsageError> {
    let mut options = ServeOptions {
        bind: Binds::default_at(STUN_PORT),
        bootstrap: Vec::new(),
        identity: None,
        relay: false,
        mainline_bootstrap: Vec::new(),
        no_mainline: false,
        json: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(SERVE_HELP)),
            "--json" => options.json = true,
            "--relay" => options.relay = true,
            "--no-mainline" => options.no_mainline = true,
            "--mainline-bootstrap" => options
                .mainline_bootstrap
                .push(parse_mainline_node(args.next())?),
            "--bind" => options.bind.add(parse_value("--bind", args.next())?)?,
            "--bootstrap" => options
                .bootstrap
                .push(parse_server("--bootstrap", args.next())?),
            "--identity" => options.identity = Some(parse_value("--identity", args.next())?),
            _ => return Err(UsageError::UnknownOption(arg)),
        }
    }
    Ok(Command::Serve(options))
}

/// `join`'s options before any is given.
fn meeting_defaults() -> JoinOptions {
    JoinOptions {
        code: None,
        bootstrap: Vec::new(),
        mainline_bootstrap: Vec::new(),
        no_mainline: false,
        no_lan: false,
        no_relay: false,
        stun: Vec::new(),
        bind: Binds::default_at(0),
        identity: None,
        json: false,
        no_stdin: false,
        keep_running: false,
    }
}

/// Takes `arg` if it is one of the discovery, identity and output options
/// every command in a meeting shares (`join`, `pipe`, …), with its value
/// from `args`: the one place they are parsed. False if it is not one.
fn meeting_option(
    arg: &str,
    args: &mut impl Iterator<Item = String>,
    options: &mut JoinOptions,
) -> Result<bool, UsageError> {
    match arg {
        "--json" => options.json = true,
        "--bind" => options.bind.add(parse_value("--bind", args.next())?)?,
        "--bootstrap" => options
            .bootstrap
            .push(parse_server("--bootstrap", args.next())?),
        "--stun" => options.stun.push(parse_server("--stun", args.next())?),
        "--mainline-bootstrap" => {
            let value = args
                .next()
                .ok_or(UsageError::MissingValue("--mainline-bootstrap"))?;
            let node = HostPort::parse(&value, MAINLINE_PORT).map_err(UsageError::BadServer)?;
            options.mainline_bootstrap.push(node);
        }
        "--no-mainline" => options.no_mainline = true,
        "--no-lan" => options.no_lan = true,
        "--no-relay" => options.no_relay = true,
        "--identity" => options.identity = Some(parse_value("--identity", args.next())?),
        _ => return Ok(false),
    }
    Ok(true)
}

fn parse_join(mut args: impl Iterator<Item = String>) -> Result<Command, UsageError> {
    let mut options = meeting_defaults();
    while let Some(arg) = args.next() {
        if meeting_option(&arg, &mut args, &mut options)? {
            continue;
        }
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(JOIN_HELP)),
            "--no-stdin" => options.no_stdin = true,
            "--keep-running" => options.keep_running = true,
            option if option.starts_with("--") => return Err(UsageError::UnknownOption(arg)),
            _ if options.code.is_none() => options.code = Some(arg),
            _ => return Err(UsageError::UnknownOption(arg)),
        }
    }
    Ok(Command::Join(options))
}

fn parse_pipe(mut args: impl Iterator<Item = String>) -> Result<Command, UsageError> {
    let mut options = PipeOptions {
        meeting: meeting_defaults(),
        peer: None,
        timeout: None,
    };
    while let Some(arg) = args.next() {
        if meeting_option(&arg, &mut args, &mut options.meeting)? {
            continue;
        }
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(PIPE_HELP)),
            "--peer" => {
                let value = args.next().ok_or(UsageError::MissingValue("--peer"))?;
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(UsageError::BadValue {
                        option: "--peer",
                        value,
                    });
                }
                options.peer = Some(value.to_ascii_lowercase());
            }
            "--timeout" => {
                let seconds: f64 = parse_value("--timeout", args.next())?;
                if !(seconds.is_finite() && seconds > 0.0) {
                    return Err(UsageError::BadValue {
                        option: "--timeout",
                        value: seconds.to_string(),
                    });
                }
                options.timeout = Some(Duration::from_secs_f64(seconds));
            }
            option if option.starts_with("--") => return Err(UsageError::UnknownOption(arg)),
            _ if options.meeting.code.is_none() => options.meeting.code = Some(arg),
            _ => return Err(UsageError::UnknownOption(arg)),
        }
    }
    Ok(Command::Pipe(options))
}

fn parse_demo(mut args: impl Iterator<Item = String>) -> Result<Command, UsageError> {
    let mut nodes = DEMO_NODES.0;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(DEMO_HELP)),
            "--nodes" => {
                let value = args.next().ok_or(UsageError::MissingValue("--nodes"))?;
                nodes = value
                    .parse()
                    .ok()
                    .filter(|n| (2..=DEMO_NODES.1).contains(n))
                    .ok_or(UsageError::BadValue {
                        option: "--nodes",
                        value,
                    })?;
            }
            _ => return Err(UsageError::UnknownOption(arg)),
        }
    }
    Ok(Command::Demo { nodes })
}

fn parse_doctor(mut args: impl Iterator<Item = String>) -> Result<Command, UsageError> {
    let mut options = DoctorOptions {
        bootstrap: Vec::new(),
        mainline_bootstrap: Vec::new(),
        no_mainline: false,
        bind: Binds::default_at(0),
        json: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(DOCTOR_HELP)),
            "--json" => options.json = true,
            "--no-mainline" => options.no_mainline = true,
            "--bind" => options.bind.add(parse_value("--bind", args.next())?)?,
            "--bootstrap" => options
                .bootstrap
                .push(parse_server("--bootstrap", args.next())?),
            "--mainline-bootstrap" => options
                .mainline_bootstrap
                .push(parse_mainline_node(args.next())?),
            _ => return Err(UsageError::UnknownOption(arg)),
        }
    }
    Ok(Command::Doctor(options))
}

fn parse_mainline_node(value: Option<String>) -> Result<HostPort, UsageError> {
    let value = value.ok_or(UsageError::MissingValue("--mainline-bootstrap"))?;
    HostPort::parse(&value, MAINLINE_PORT).map_err(UsageError::BadServer)
}

fn parse_server(option: &'static str, value: Option<String>) -> Result<HostPort, UsageError> {
    let value = value.ok_or(UsageError::MissingValue(option))?;
    HostPort::parse(&value, STUN_PORT).map_err(UsageError::BadServer)
}

fn parse_value<T: std::str::FromStr>(
    option: &'static str,
    value: Option<String>,
) -> Result<T, UsageError> {
    let value = value.ok_or(UsageError::MissingValue(option))?;
    value
        .parse()
        .map_err(|_| UsageError::BadValue { option, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Cli, UsageError> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn stun_with_every_option() {
        let cli = parse_line(
            "-v stun 127.0.0.1:3479 [::1] stun.example --bind 0.0.0.0:5000 --timeout 1.5 --json",
        )
        .unwrap();
        assert!(cli.verbose);
        let Command::Stun(options) = cli.command else {
            panic!()
        };
        assert_eq!(options.servers.len(), 3);
        assert_eq!(options.servers[1].port, STUN_PORT);
        assert_eq!(options.bind, Some("0.0.0.0:5000".parse().unwrap()));
        assert_eq!(options.timeout, Duration::from_millis(1500));
        assert!(options.json);
    }

    #[test]
    fn serve_defaults_and_alias() {
        let cli = parse_line("bootstrap").unwrap();
        assert_eq!(
            cli.command,
            Command::Serve(ServeOptions {
                bind: Binds::default_at(STUN_PORT),
                bootstrap: vec![],
                identity: None,
                relay: false,
                mainline_bootstrap: vec![],
                no_mainline: false,
                json: false
            })
        );
        assert!(!cli.verbose);
    }

    #[test]
    fn relay_options_of_join_serve_and_doctor() {
        let Command::Join(options) = parse_line("join x --no-relay").unwrap().command else {
            panic!()
        };
        assert!(options.no_relay);
        let Command::Serve(options) =
            parse_line("serve --relay --mainline-bootstrap 127.0.0.2 --no-mainline")
                .unwrap()
                .command
        else {
            panic!()
        };
        assert!(options.relay && options.no_mainline);
        assert_eq!(options.mainline_bootstrap[0].port, MAINLINE_PORT);
        let Command::Doctor(options) = parse_line(
            "doctor --bootstrap 127.0.0.1 --mainline-bootstrap 127.0.0.2:7000 --bind 127.0.0.1:0 --json",
        )
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(options.bootstrap[0].port, STUN_PORT);
        assert_eq!(options.mainline_bootstrap[0].port, 7000);
        assert!(options.json && !options.no_mainline);
        assert!(parse_line("doctor --relay").is_err());
        assert_eq!(
            parse_line("doctor --help").unwrap().command,
            Command::Help(DOCTOR_HELP)
        );
    }

    #[test]
    fn join_with_every_option() {
        let cli = parse_line(
            "join blue-fox --bootstrap 127.0.0.1:4000 --bootstrap host --stun [::1]:5 --bind 127.0.0.1:0 --identity /tmp/k --json --no-stdin",
        )
        .unwrap();
        let Command::Join(options) = cli.command else {
            panic!()
        };
        assert_eq!(options.code.as_deref(), Some("blue-fox"));
        assert_eq!(options.bootstrap.len(), 2);
        assert_eq!(options.bootstrap[1].port, STUN_PORT);
        assert_eq!(options.stun[0].port, 5);
        assert_eq!(options.identity, Some(PathBuf::from("/tmp/k")));
        assert!(options.json && options.no_stdin);
        assert!(options.mainline_bootstrap.is_empty() && !options.no_mainline);
        let Command::Join(options) = parse_line("join").unwrap().command else {
            panic!()
        };
        assert_eq!(options.code, None);
        let Command::Join(options) = parse_line(
            "join x --mainline-bootstrap 127.0.0.2 --mainline-bootstrap 127.0.0.3:7000 --no-mainline",
        )
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(options.mainline_bootstrap[0].port, MAINLINE_PORT);
        assert_eq!(options.mainline_bootstrap[1].port, 7000);
        assert!(options.no_mainline && !options.no_lan);
        assert!(parse_line("join x --mainline-bootstrap").is_err());
        let Command::Join(options) = parse_line("join x --no-lan").unwrap().command else {
            panic!()
        };
        assert!(options.no_lan);
        assert!(parse_line("join a b").is_err());
    }

    #[test]
    fn bind_is_given_once_per_family() {
        let Command::Join(options) = parse_line("join x").unwrap().command else {
            panic!()
        };
        assert!(options.bind.is_default());
        assert_eq!(
            options.bind.addrs(),
            ["0.0.0.0:0".parse().unwrap(), "[::]:0".parse().unwrap()]
        );
        let Command::Serve(options) =
            parse_line("serve --bind [fd00::1]:3478 --bind 10.0.0.1:3478")
                .unwrap()
                .command
        else {
            panic!()
        };
        assert!(!options.bind.is_default());
        assert_eq!(
            options.bind.addrs(),
            [
                "10.0.0.1:3478".parse().unwrap(),
                "[fd00::1]:3478".parse().unwrap()
            ],
            "IPv4 first, whatever the order given"
        );
        let Command::Doctor(options) = parse_line("doctor --bind [::1]:0").unwrap().command else {
            panic!()
        };
        assert_eq!(options.bind.addrs(), ["[::1]:0".parse().unwrap()]);
        assert!(matches!(
            parse_line("join x --bind 127.0.0.1:0 --bind 127.0.0.2:0"),
            Err(UsageError::BadValue {
                option: "--bind",
                ..
            })
        ));
    }

    #[test]
    fn demo_node_counts() {
        assert_eq!(
            parse_line("demo").unwrap().command,
            Command::Demo { nodes: 3 }
        );
        assert_eq!(
            parse_line("demo --nodes 8").unwrap().command,
            Command::Demo { nodes: 8 }
        );
        assert!(parse_line("demo --nodes 1").is_err());
        assert!(parse_line("demo --nodes 17").is_err());
        assert_eq!(
            parse_line("demo --help").unwrap().command,
            Command::Help(DEMO_HELP)
        );
    }

    #[test]
    fn help_and_version_everywhere() {
        assert_eq!(
            parse_line("--help").unwrap().command,
            Command::Help(MAIN_HELP)
        );
        assert_eq!(
            parse_line("stun --help").unwrap().command,
            Command::Help(STUN_HELP)
        );
        assert_eq!(
            parse_line("serve -h").unwrap().command,
            Command::Help(SERVE_HELP)
        );
        assert_eq!(parse_line("--version").unwrap().command, Command::Version);
    }

    #[test]
    fn usage_errors() {
        assert_eq!(parse_line(""), Err(UsageError::NoCommand));
        assert_eq!(
            parse_line("fly"),
            Err(UsageError::UnknownCommand("fly".into()))
        );
        assert_eq!(parse_line("stun"), Err(UsageError::NoServers));
        assert_eq!(
            parse_line("stun a --bind"),
            Err(UsageError::MissingValue("--bind"))
        );
        assert!(matches!(
            parse_line("stun a --timeout 0"),
            Err(UsageError::BadValue { .. })
        ));
        assert!(matches!(
            parse_line("stun a --timeout -1"),
            Err(UsageError::BadValue { .. })
        ));
        assert!(matches!(
            parse_line("stun a:99999"),
            Err(UsageError::BadServer(_))
        ));
        assert_eq!(
            parse_line("serve --nope"),
            Err(UsageError::UnknownOption("--nope".into()))
        );
    }
}
