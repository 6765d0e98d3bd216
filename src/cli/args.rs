//! Command-line parsing, by hand (no argument-parsing dependency): words
//! into the commands and options of `options.rs` (the help texts are
//! `help.rs`, the tokens `lex.rs`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tinynode::driver::{HostPort, HostPortError};

use super::lex::{Arg, Args};
use super::options::{
    AllowOptions, Binds, Cli, Command, ConnectOptions, DEFAULT_STUN_TIMEOUT, DEMO_NODES,
    DoctorOptions, ExposeOptions, JoinOptions, MAINLINE_PORT, PipeOptions, ReceiveOptions,
    STUN_PORT, SendOptions, ServeOptions, Service, StunOptions,
};

pub use super::help::{
    CODE_HELP, CONNECT_HELP, DEMO_HELP, DOCTOR_HELP, EXPOSE_HELP, ID_HELP, JOIN_HELP, MAIN_HELP,
    PIPE_HELP, RECEIVE_HELP, SEND_HELP, SERVE_HELP, STUN_HELP,
};

/// A command line that cannot be run.
#[derive(Clone, Debug, PartialEq)]
pub enum UsageError {
    /// No command given.
    NoCommand,
    /// Not a known command.
    UnknownCommand(String),
    /// Not an option of this command.
    UnknownOption(String),
    /// A word the command takes no (more) of.
    UnexpectedArgument(String),
    /// `--flag=value` for an option that takes no value.
    UnexpectedValue {
        /// The option.
        option: String,
        /// The value given.
        value: String,
    },
    /// An option that needs a value came last.
    MissingValue(&'static str),
    /// A command was given without an option it needs.
    MissingOption(&'static str),
    /// An option that only means something with another one.
    Needs {
        /// The option given.
        option: &'static str,
        /// The option it needs.
        needs: &'static str,
    },
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
            Self::UnexpectedArgument(word) => write!(f, "unexpected argument {word:?}"),
            Self::UnexpectedValue { option, value } => {
                write!(f, "{option} takes no value (got {value:?})")
            }
            Self::MissingValue(option) => write!(f, "{option} needs a value"),
            Self::MissingOption(option) => write!(f, "{option} is required"),
            Self::Needs { option, needs } => write!(f, "{option} needs {needs}"),
            Self::BadValue { option, value } => write!(f, "invalid value {value:?} for {option}"),
            Self::BadServer(error) => error.fmt(f),
            Self::NoServers => f.write_str("stun needs at least one SERVER"),
        }
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name.
pub fn parse(words: impl IntoIterator<Item = String>) -> Result<Cli, UsageError> {
    let mut args = Args::new(words);
    let command = match args.next()? {
        None => return Err(UsageError::NoCommand),
        Some(Arg::Option(option)) => match option.as_str() {
            "-h" | "--help" => Command::Help(MAIN_HELP),
            "-V" | "--version" => Command::Version,
            _ => return Err(UsageError::UnknownOption(option)),
        },
        Some(Arg::Value(command)) => match command.as_str() {
            "help" => Command::Help(MAIN_HELP),
            "stun" => parse_stun(&mut args)?,
            "serve" | "bootstrap" => parse_serve(&mut args)?,
            "join" => parse_join(&mut args)?,
            "pipe" => parse_pipe(&mut args)?,
            "expose" => parse_expose(&mut args)?,
            "connect" => parse_connect(&mut args)?,
            "send" => parse_send(&mut args)?,
            "receive" => parse_receive(&mut args)?,
            "id" => parse_id(&mut args)?,
            "demo" => parse_demo(&mut args)?,
            "doctor" => parse_doctor(&mut args)?,
            "code" => parse_code(&mut args)?,
            _ => return Err(UsageError::UnknownCommand(command)),
        },
    };
    // `-v` counts after the command too (`join CODE -v`).
    while args.next()?.is_some() {}
    Ok(Cli {
        verbose: args.verbose,
        command,
    })
}

/// `Err` for an option `option` the command does not know, or a value
/// `value` it takes no more of.
/// Adds a `--bind` address; a second one of the same family is an error.
fn add_bind(binds: &mut Binds, addr: SocketAddr) -> Result<(), UsageError> {
    if binds.add(addr) {
        return Ok(());
    }
    Err(UsageError::BadValue {
        option: "--bind",
        value: format!("{addr} (one address per family: IPv4 and IPv6)"),
    })
}

fn unexpected(arg: Arg) -> UsageError {
    match arg {
        Arg::Option(option) => UsageError::UnknownOption(option),
        Arg::Value(value) => UsageError::UnexpectedArgument(value),
    }
}

fn parse_code(args: &mut Args) -> Result<Command, UsageError> {
    match args.next()? {
        None => Ok(Command::Code),
        Some(Arg::Option(o)) if o == "-h" || o == "--help" => Ok(Command::Help(CODE_HELP)),
        Some(other) => Err(unexpected(other)),
    }
}

fn parse_stun(args: &mut Args) -> Result<Command, UsageError> {
    let mut options = StunOptions {
        servers: Vec::new(),
        bind: None,
        timeout: DEFAULT_STUN_TIMEOUT,
        json: false,
    };
    while let Some(arg) = args.next()? {
        match &arg {
            Arg::Value(server) => options
                .servers
                .push(HostPort::parse(server, STUN_PORT).map_err(UsageError::BadServer)?),
            Arg::Option(option) => match option.as_str() {
                "-h" | "--help" => return Ok(Command::Help(STUN_HELP)),
                "--json" => options.json = true,
                "--bind" => options.bind = Some(parse_value(args, "--bind")?),
                "--timeout" => {
                    let seconds: f64 = parse_value(args, "--timeout")?;
                    options.timeout = Duration::try_from_secs_f64(seconds)
                        .ok()
                        .filter(|timeout| !timeout.is_zero())
                        .ok_or(UsageError::BadValue {
                            option: "--timeout",
                            value: seconds.to_string(),
                        })?;
                }
                _ => return Err(unexpected(arg)),
            },
        }
    }
    if options.servers.is_empty() {
        return Err(UsageError::NoServers);
    }
    Ok(Command::Stun(options))
}

fn parse_serve(args: &mut Args) -> Result<Command, UsageError> {
    let mut options = ServeOptions {
        bind: Binds::default_at(STUN_PORT),
        bootstrap: Vec::new(),
        identity: None,
        relay: false,
        mainline_bootstrap: Vec::new(),
        no_mainline: false,
        relay_rate: None,
        relay_total: None,
        relay_pairs: None,
        json: false,
    };
    while let Some(arg) = args.next()? {
        let Arg::Option(option) = &arg else {
            return Err(unexpected(arg));
        };
        match option.as_str() {
            "-h" | "--help" => return Ok(Command::Help(SERVE_HELP)),
            "--relay-rate" => options.relay_rate = Some(parse_rate(args, "--relay-rate")?),
            "--relay-total" => options.relay_total = Some(parse_rate(args, "--relay-total")?),
            "--relay-pairs" => {
                let value = args.value("--relay-pairs")?;
                options.relay_pairs = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| (1..=tinynode::RelayLimits::MAX_OPEN_PAIRS).contains(n))
                        .ok_or(UsageError::BadValue {
                            option: "--relay-pairs",
                            value,
                        })?,
                );
            }
            "--json" => options.json = true,
            "--relay" => options.relay = true,
            "--no-mainline" => options.no_mainline = true,
            "--mainline-bootstrap" => options.mainline_bootstrap.push(parse_mainline_node(args)?),
            "--bind" => add_bind(&mut options.bind, parse_value(args, "--bind")?)?,
            "--bootstrap" => options.bootstrap.push(parse_server(args, "--bootstrap")?),
            "--identity" => options.identity = Some(parse_value(args, "--identity")?),
            _ => return Err(unexpected(arg)),
        }
    }
    let quotas = [
        ("--relay-rate", options.relay_rate.is_some()),
        ("--relay-total", options.relay_total.is_some()),
        ("--relay-pairs", options.relay_pairs.is_some()),
    ];
    if let Some((option, _)) = quotas.iter().find(|(_, given)| *given && !options.relay) {
        return Err(UsageError::Needs {
            option,
            needs: "--relay",
        });
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

/// Takes `arg` if it is the meeting code or one of the discovery,
/// identity and output options every command in a meeting shares
/// (`join`, `pipe`, …), with its value: the one place they are parsed.
/// `Ok(Some(arg))` gives back what is not one of them.
fn meeting_option(
    arg: Arg,
    args: &mut Args,
    options: &mut JoinOptions,
) -> Result<Option<Arg>, UsageError> {
    let option = match arg {
        Arg::Value(code) if options.code.is_none() => {
            options.code = Some(code);
            return Ok(None);
        }
        Arg::Value(_) => return Ok(Some(arg)),
        Arg::Option(option) => option,
    };
    match option.as_str() {
        "--json" => options.json = true,
        "--bind" => add_bind(&mut options.bind, parse_value(args, "--bind")?)?,
        "--bootstrap" => options.bootstrap.push(parse_server(args, "--bootstrap")?),
        "--stun" => options.stun.push(parse_server(args, "--stun")?),
        "--mainline-bootstrap" => options.mainline_bootstrap.push(parse_mainline_node(args)?),
        "--no-mainline" => options.no_mainline = true,
        "--no-lan" => options.no_lan = true,
        "--no-relay" => options.no_relay = true,
        "--identity" => options.identity = Some(parse_value(args, "--identity")?),
        _ => return Ok(Some(Arg::Option(option))),
    }
    Ok(None)
}

fn parse_join(args: &mut Args) -> Result<Command, UsageError> {
    let mut options = meeting_defaults();
    while let Some(arg) = args.next()? {
        let Some(arg) = meeting_option(arg, args, &mut options)? else {
            continue;
        };
        match &arg {
            Arg::Option(o) if o == "-h" || o == "--help" => return Ok(Command::Help(JOIN_HELP)),
            Arg::Option(o) if o == "--no-stdin" => options.no_stdin = true,
            Arg::Option(o) if o == "--keep-running" => options.keep_running = true,
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::Join(options))
}

fn parse_pipe(args: &mut Args) -> Result<Command, UsageError> {
    let mut options = PipeOptions {
        meeting: meeting_defaults(),
        peer: None,
        timeout: None,
        allow: AllowOptions::default(),
    };
    while let Some(arg) = args.next()? {
        let Some(option) =
            stream_command_option(arg, args, &mut options.meeting, &mut options.allow)?
        else {
            continue;
        };
        match option.as_str() {
            "-h" | "--help" => return Ok(Command::Help(PIPE_HELP)),
            "--peer" => options.peer = Some(parse_peer(args)?),
            "--timeout" => {
                let seconds: f64 = parse_value(args, "--timeout")?;
                if !(seconds.is_finite() && seconds > 0.0) {
                    return Err(UsageError::BadValue {
                        option: "--timeout",
                        value: seconds.to_string(),
                    });
                }
                options.timeout = Some(Duration::from_secs_f64(seconds));
            }
            _ => return Err(UsageError::UnknownOption(option)),
        }
    }
    Ok(Command::Pipe(options))
}

fn parse_send(args: &mut Args) -> Result<Command, UsageError> {
    let mut options = SendOptions {
        meeting: meeting_defaults(),
        paths: Vec::new(),
        receivers: None,
        allow: AllowOptions::default(),
    };
    while let Some(arg) = args.next()? {
        // Every word is a path (`-` for stdin): the code comes with --code.
        if let Arg::Value(path) = arg {
            options.paths.push(PathBuf::from(path));
            continue;
        }
        let Some(option) =
            stream_command_option(arg, args, &mut options.meeting, &mut options.allow)?
        else {
            continue;
        };
        match option.as_str() {
            "-h" | "--help" => return Ok(Command::Help(SEND_HELP)),
            "--code" => options.meeting.code = Some(args.value("--code")?),
            "--once" => set_receivers(&mut options.receivers, "--once", 1)?,
            "--receivers" => {
                let value = args.value("--receivers")?;
                let count = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_RECEIVERS).contains(n))
                    .ok_or(UsageError::BadValue {
                        option: "--receivers",
                        value,
                    })?;
                set_receivers(&mut options.receivers, "--receivers", count)?;
            }
            _ => return Err(UsageError::UnknownOption(option)),
        }
    }
    if options.paths.is_empty() {
        return Err(UsageError::MissingOption("a file or directory to send"));
    }
    if options.paths.len() > 1 && options.paths.iter().any(|p| p.as_os_str() == "-") {
        return Err(UsageError::BadValue {
            option: "-",
            value: "stdin is sent alone".into(),
        });
    }
    Ok(Command::Send(options))
}

/// The most receivers `send --receivers` waits for.
const MAX_RECEIVERS: u32 = 10_000;

/// `--once` and `--receivers N` both say when `send` leaves: one of them,
/// once.
fn set_receivers(
    receivers: &mut Option<u32>,
    option: &'static str,
    count: u32,
) -> Result<(), UsageError> {
    if receivers.is_some() {
        return Err(UsageError::BadValue {
            option,
            value: "--once and --receivers say the same thing: give one, once".into(),
        });
    }
    *receivers = Some(count);
    Ok(())
}

fn parse_receive(args: &mut Args) -> Result<Command, UsageError> {
    let mut options = ReceiveOptions {
        meeting: meeting_defaults(),
        out: PathBuf::from("."),
        overwrite: false,
        yes: false,
        stdout: false,
        allow: AllowOptions::default(),
    };
    while let Some(arg) = args.next()? {
        let Some(option) =
            stream_command_option(arg, args, &mut options.meeting, &mut options.allow)?
        else {
            continue;
        };
        match option.as_str() {
            "-h" | "--help" => return Ok(Command::Help(RECEIVE_HELP)),
            "--out" => options.out = parse_value(args, "--out")?,
            "--overwrite" => options.overwrite = true,
            "--yes" | "-y" => options.yes = true,
            "--stdout" => options.stdout = true,
            _ => return Err(UsageError::UnknownOption(option)),
        }
    }
    Ok(Command::Receive(options))
}

/// A rate in bytes a second: a number with an optional `k`, `M` or `G`
/// (powers of 1024), or `unlimited`.
fn parse_rate(args: &mut Args, option: &'static str) -> Result<u64, UsageError> {
    let value = args.value(option)?;
    if value == "unlimited" {
        return Ok(tinynode::RelayLimits::UNLIMITED_RATE);
    }
    let (digits, unit) = match value.char_indices().last() {
        Some((at, 'k' | 'K')) => (&value[..at], 1 << 10),
        Some((at, 'M')) => (&value[..at], 1 << 20),
        Some((at, 'G')) => (&value[..at], 1 << 30),
        _ => (value.as_str(), 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|rate| (1024..=tinynode::RelayLimits::UNLIMITED_RATE).contains(rate))
        .ok_or(UsageError::BadValue { option, value })
}

/// `--peer`'s value: hex digits, lower-cased.
fn parse_peer(args: &mut Args) -> Result<String, UsageError> {
    let value = args.value("--peer")?;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(UsageError::BadValue {
            option: "--peer",
            value,
        });
    }
    Ok(value.to_ascii_lowercase())
}

/// Takes `arg` if it is `--allow` or `--allow-file`, with its value;
/// `Ok(Some(arg))` gives back anything else.
fn allow_option(
    arg: Arg,
    args: &mut Args,
    allow: &mut AllowOptions,
) -> Result<Option<Arg>, UsageError> {
    match &arg {
        Arg::Option(option) if option == "--allow" => {
            let value = args.value("--allow")?;
            let key = tinynode::NodeId::from_hex(&value).ok_or(UsageError::BadValue {
                option: "--allow",
                value,
            })?;
            allow.keys.push(key);
        }
        Arg::Option(option) if option == "--allow-file" => {
            allow.files.push(parse_value(args, "--allow-file")?);
        }
        _ => return Ok(Some(arg)),
    }
    Ok(None)
}

/// Takes `arg` if it is the meeting code or an option every command that
/// opens or takes streams shares (join's options, the allow-list);
/// otherwise gives back the option's name, or `Err` for a stray word.
fn stream_command_option(
    arg: Arg,
    args: &mut Args,
    meeting: &mut JoinOptions,
    allow: &mut AllowOptions,
) -> Result<Option<String>, UsageError> {
    let Some(arg) = meeting_option(arg, args, meeting)? else {
        return Ok(None);
    };
    match allow_option(arg, args, allow)? {
        None => Ok(None),
        Some(Arg::Option(option)) => Ok(Some(option)),
        Some(value) => Err(unexpected(value)),
    }
}

/// `--tcp` or `--udp` (`option`) `[NAME=]HOST:PORT`.
fn parse_service(args: &mut Args, option: &'static str) -> Result<Service, UsageError> {
    let value = args.value(option)?;
    let bad = |value: &str| UsageError::BadValue {
        option,
        value: value.to_owned(),
    };
    let (name, target) = match value.split_once('=') {
        Some((name, target)) => (Some(name), target),
        None => (None, value.as_str()),
    };
    // No default port: a forwarded service is always named by its port.
    let target = HostPort::parse(target, 0).map_err(|_| bad(&value))?;
    if target.port == 0 {
        return Err(bad(&value));
    }
    let name = name.map_or_else(|| target.port.to_string(), str::to_owned);
    if name.is_empty() || name.len() > tinynode::wire::stream::MAX_NAME {
        return Err(bad(&value));
    }
    Ok(Service { name, target })
}

fn parse_expose(args: &mut Args) -> Result<Command, UsageError> {
    let mut options = ExposeOptions {
        meeting: meeting_defaults(),
        allow: AllowOptions::default(),
        tcp: Vec::new(),
        udp: Vec::new(),
    };
    while let Some(arg) = args.next()? {
        let Some(option) =
            stream_command_option(arg, args, &mut options.meeting, &mut options.allow)?
        else {
            continue;
        };
        match option.as_str() {
            "-h" | "--help" => return Ok(Command::Help(EXPOSE_HELP)),
            "--tcp" | "--udp" => {
                let (flag, list) = if option == "--tcp" {
                    ("--tcp", &mut options.tcp)
                } else {
                    ("--udp", &mut options.udp)
                };
                let service = parse_service(args, flag)?;
                if list.iter().any(|s| s.name == service.name) {
                    return Err(UsageError::BadValue {
                        option: flag,
                        value: format!("{} (a second service of that name)", service.name),
                    });
                }
                list.push(service);
            }
            _ => return Err(UsageError::UnknownOption(option)),
        }
    }
    if options.tcp.is_empty() && options.udp.is_empty() {
        return Err(UsageError::MissingOption("--tcp or --udp"));
    }
    Ok(Command::Expose(options))
}

fn parse_connect(args: &mut Args) -> Result<Command, UsageError> {
    let mut meeting = meeting_defaults();
    let mut allow = AllowOptions::default();
    let (mut listen, mut udp_listen, mut service, mut peer) = (None, None, None, None);
    while let Some(arg) = args.next()? {
        let Some(option) = stream_command_option(arg, args, &mut meeting, &mut allow)? else {
            continue;
        };
        match option.as_str() {
            "-h" | "--help" => return Ok(Command::Help(CONNECT_HELP)),
            "--listen" => listen = Some(parse_value(args, "--listen")?),
            "--udp-listen" => udp_listen = Some(parse_value(args, "--udp-listen")?),
            "--service" => service = Some(args.value("--service")?),
            "--peer" => peer = Some(parse_peer(args)?),
            _ => return Err(UsageError::UnknownOption(option)),
        }
    }
    if listen.is_none() && udp_listen.is_none() {
        return Err(UsageError::MissingOption("--listen or --udp-listen"));
    }
    Ok(Command::Connect(ConnectOptions {
        meeting,
        allow,
        listen,
        udp_listen,
        service,
        peer,
    }))
}

fn parse_id(args: &mut Args) -> Result<Command, UsageError> {
    let (mut identity, mut json) = (None, false);
    while let Some(arg) = args.next()? {
        let Arg::Option(option) = &arg else {
            return Err(unexpected(arg));
        };
        match option.as_str() {
            "-h" | "--help" => return Ok(Command::Help(ID_HELP)),
            "--identity" => identity = Some(parse_value(args, "--identity")?),
            "--json" => json = true,
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::Id { identity, json })
}

fn parse_demo(args: &mut Args) -> Result<Command, UsageError> {
    let mut nodes = DEMO_NODES.0;
    while let Some(arg) = args.next()? {
        let Arg::Option(option) = &arg else {
            return Err(unexpected(arg));
        };
        match option.as_str() {
            "-h" | "--help" => return Ok(Command::Help(DEMO_HELP)),
            "--nodes" => {
                let value = args.value("--nodes")?;
                nodes = value
                    .parse()
                    .ok()
                    .filter(|n| (2..=DEMO_NODES.1).contains(n))
                    .ok_or(UsageError::BadValue {
                        option: "--nodes",
                        value,
                    })?;
            }
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::Demo { nodes })
}

fn parse_doctor(args: &mut Args) -> Result<Command, UsageError> {
    let mut options = DoctorOptions {
        bootstrap: Vec::new(),
        mainline_bootstrap: Vec::new(),
        no_mainline: false,
        bind: Binds::default_at(0),
        json: false,
    };
    while let Some(arg) = args.next()? {
        let Arg::Option(option) = &arg else {
            return Err(unexpected(arg));
        };
        match option.as_str() {
            "-h" | "--help" => return Ok(Command::Help(DOCTOR_HELP)),
            "--json" => options.json = true,
            "--no-mainline" => options.no_mainline = true,
            "--bind" => add_bind(&mut options.bind, parse_value(args, "--bind")?)?,
            "--bootstrap" => options.bootstrap.push(parse_server(args, "--bootstrap")?),
            "--mainline-bootstrap" => options.mainline_bootstrap.push(parse_mainline_node(args)?),
            _ => return Err(unexpected(arg)),
        }
    }
    Ok(Command::Doctor(options))
}

fn parse_mainline_node(args: &mut Args) -> Result<HostPort, UsageError> {
    let value = args.value("--mainline-bootstrap")?;
    HostPort::parse(&value, MAINLINE_PORT).map_err(UsageError::BadServer)
}

fn parse_server(args: &mut Args, option: &'static str) -> Result<HostPort, UsageError> {
    let value = args.value(option)?;
    HostPort::parse(&value, STUN_PORT).map_err(UsageError::BadServer)
}

fn parse_value<T: std::str::FromStr>(
    args: &mut Args,
    option: &'static str,
) -> Result<T, UsageError> {
    let value = args.value(option)?;
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
    fn send_takes_paths_a_code_and_once_and_receive_its_options() {
        let Command::Send(options) =
            parse_line("send a.txt dir --code some-code --once --no-lan --allow-file keys")
                .unwrap()
                .command
        else {
            panic!()
        };
        assert_eq!(
            options.paths,
            [PathBuf::from("a.txt"), PathBuf::from("dir")]
        );
        assert_eq!(options.meeting.code.as_deref(), Some("some-code"));
        assert_eq!(options.receivers, Some(1), "--once is --receivers 1");
        assert!(options.meeting.no_lan);
        assert_eq!(options.allow.files, [PathBuf::from("keys")]);
        assert!(matches!(
            parse_line("send").map(|c| c.command),
            Err(UsageError::MissingOption(_))
        ));
        assert!(matches!(
            parse_line("send - other").map(|c| c.command),
            Err(UsageError::BadValue { option: "-", .. })
        ));
        let receivers = |line: &str| match parse_line(line).map(|c| c.command) {
            Ok(Command::Send(options)) => Ok(options.receivers),
            Ok(_) => panic!("{line}"),
            Err(error) => Err(error),
        };
        assert_eq!(receivers("send f"), Ok(None));
        assert_eq!(receivers("send f --receivers 3"), Ok(Some(3)));
        for bad in ["0", "-1", "x", "10001"] {
            assert!(
                matches!(
                    receivers(&format!("send f --receivers {bad}")),
                    Err(UsageError::BadValue {
                        option: "--receivers",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            receivers("send f --once --receivers 2"),
            Err(UsageError::BadValue {
                option: "--receivers",
                ..
            })
        ));
        let Command::Receive(options) =
            parse_line("receive the-code --out d --overwrite -y --stdout --json")
                .unwrap()
                .command
        else {
            panic!()
        };
        assert_eq!(options.meeting.code.as_deref(), Some("the-code"));
        assert_eq!(options.out, PathBuf::from("d"));
        assert!(options.overwrite && options.yes && options.stdout && options.meeting.json);
        let Command::Receive(defaults) = parse_line("receive c").unwrap().command else {
            panic!()
        };
        assert_eq!(defaults.out, PathBuf::from("."));
        assert!(!defaults.overwrite && !defaults.yes && !defaults.stdout);
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
                relay_rate: None,
                relay_total: None,
                relay_pairs: None,
                json: false
            })
        );
        assert!(!cli.verbose);
    }

    #[test]
    fn relay_quotas_take_units_and_unlimited_and_need_relay() {
        let Command::Serve(options) =
            parse_line("serve --relay --relay-rate 10M --relay-total unlimited --relay-pairs 2")
                .unwrap()
                .command
        else {
            panic!()
        };
        assert_eq!(options.relay_rate, Some(10 << 20));
        assert_eq!(
            options.relay_total,
            Some(tinynode::RelayLimits::UNLIMITED_RATE)
        );
        assert_eq!(options.relay_pairs, Some(2));
        let Command::Serve(options) = parse_line("serve --relay --relay-rate=512k")
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(options.relay_rate, Some(512 << 10));
        for bad in [
            "serve --relay --relay-rate 100",
            "serve --relay --relay-rate 10T",
            "serve --relay --relay-rate -1k",
            "serve --relay --relay-rate fast",
            "serve --relay --relay-pairs 0",
            "serve --relay --relay-pairs 5000",
        ] {
            assert!(
                matches!(parse_line(bad), Err(UsageError::BadValue { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn relay_quotas_without_relay_say_so() {
        let error = parse_line("serve --relay-rate 1M").unwrap_err();
        assert_eq!(error.to_string(), "--relay-rate needs --relay");
    }

    #[test]
    fn expose_connect_and_id_take_their_options() {
        let key = "ab".repeat(32);
        let line = format!("expose c --tcp ssh=127.0.0.1:22 --tcp 127.0.0.1:80 --allow {key}");
        let Command::Expose(options) = parse_line(&line).unwrap().command else {
            panic!()
        };
        let names: Vec<&str> = options.tcp.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ssh", "80"]);
        assert_eq!(options.allow.keys.len(), 1);
        assert_eq!(options.meeting.code.as_deref(), Some("c"));
        assert!(matches!(
            parse_line("expose c"),
            Err(UsageError::MissingOption("--tcp or --udp"))
        ));
        let Command::Expose(options) = parse_line("expose c --udp wg=127.0.0.1:51820")
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(options.udp[0].name, "wg");
        assert!(options.tcp.is_empty());
        for bad in [
            "expose c --tcp 127.0.0.1",
            "expose c --tcp a=127.0.0.1:22 --tcp a=127.0.0.1:23",
            "expose c --tcp =127.0.0.1:22",
            "expose c --tcp ssh=127.0.0.1:22 --allow abc",
        ] {
            assert!(
                matches!(parse_line(bad), Err(UsageError::BadValue { .. })),
                "{bad}"
            );
        }
        let Command::Connect(options) =
            parse_line("connect c --listen 127.0.0.1:2222 --service ssh --peer AB12")
                .unwrap()
                .command
        else {
            panic!()
        };
        assert_eq!(options.listen, Some("127.0.0.1:2222".parse().unwrap()));
        assert_eq!(options.udp_listen, None);
        assert_eq!(options.service.as_deref(), Some("ssh"));
        assert_eq!(options.peer.as_deref(), Some("ab12"));
        assert!(matches!(
            parse_line("connect c"),
            Err(UsageError::MissingOption("--listen or --udp-listen"))
        ));
        assert_eq!(
            parse_line("id --identity /k --json").unwrap().command,
            Command::Id {
                identity: Some("/k".into()),
                json: true
            }
        );
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

    #[test]
    fn short_options_are_options_and_double_dash_and_inline_values_work() {
        assert_eq!(
            parse_line("join -q").map(|c| c.command),
            Err(UsageError::UnknownOption("-q".into()))
        );
        let Command::Join(options) = parse_line("join --bind=127.0.0.1:0 -- -q").unwrap().command
        else {
            panic!()
        };
        assert_eq!(options.code.as_deref(), Some("-q"));
        assert_eq!(options.bind.addrs(), vec!["127.0.0.1:0".parse().unwrap()]);
        assert_eq!(
            parse_line("join x --json=yes").map(|c| c.command),
            Err(UsageError::UnexpectedValue {
                option: "--json".into(),
                value: "yes".into()
            })
        );
        assert_eq!(
            parse_line("join x y").map(|c| c.command),
            Err(UsageError::UnexpectedArgument("y".into()))
        );
        assert!(parse_line("join x -v").unwrap().verbose);
    }

    #[test]
    fn pipe_takes_joins_options_and_its_own() {
        let Command::Pipe(options) = parse_line(
            "pipe x --peer=AB12 --timeout 2.5 --bootstrap 127.0.0.1 --no-lan --no-mainline --json",
        )
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(options.meeting.code.as_deref(), Some("x"));
        assert_eq!(options.peer.as_deref(), Some("ab12"));
        assert_eq!(options.timeout, Some(Duration::from_millis(2500)));
        assert!(options.meeting.no_lan && options.meeting.no_mainline && options.meeting.json);
        assert_eq!(options.meeting.bootstrap.len(), 1);
        assert!(matches!(
            parse_line("pipe x --peer zz").map(|c| c.command),
            Err(UsageError::BadValue {
                option: "--peer",
                ..
            })
        ));
        assert_eq!(
            parse_line("pipe x --no-stdin").map(|c| c.command),
            Err(UsageError::UnknownOption("--no-stdin".into()))
        );
    }
}
