//! The `tinynode` binary: parse the command line, set up logging, run.

mod cli;

use std::path::Path;
use std::process::ExitCode;

use cli::args;
use cli::logger::{errln, outln};
use cli::options::{Command, EXIT_USAGE};
use ring::rand::SystemRandom;
use tinynode::Identity;
use tinynode::driver::{KeyFileError, generate_identity, load_or_create_identity};

fn main() -> ExitCode {
    let parsed = args::parse(std::env::args().skip(1));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => {
            errln!("tinynode: {error}\n\n{}", args::MAIN_HELP);
            return ExitCode::from(EXIT_USAGE as u8);
        }
    };
    init_logging(cli.verbose || debug_from_env());
    let code = match cli.command {
        Command::Help(text) => {
            cli::logger::to_stdout(text);
            0
        }
        Command::Version => {
            outln!(
                "tinynode {} ({})",
                env!("CARGO_PKG_VERSION"),
                env!("TINYNODE_TARGET")
            );
            0
        }
        Command::Stun(options) => with_identity(None, |identity| cli::stun(options, identity)),
        Command::Serve(options) => with_identity(options.identity.clone().as_deref(), |identity| {
            cli::serve(options, identity)
        }),
        Command::Join(options) => with_identity(options.identity.clone().as_deref(), |identity| {
            cli::join(options, identity)
        }),
        Command::Pipe(options) => {
            with_identity(options.meeting.identity.clone().as_deref(), |identity| {
                cli::pipe::pipe(options, identity)
            })
        }
        Command::Expose(options) => {
            with_identity(options.meeting.identity.clone().as_deref(), |identity| {
                cli::forward::expose(options, identity)
            })
        }
        Command::Connect(options) => {
            with_identity(options.meeting.identity.clone().as_deref(), |identity| {
                cli::forward::connect(options, identity)
            })
        }
        Command::Send(options) => {
            with_identity(options.meeting.identity.clone().as_deref(), |identity| {
                cli::send::send(options, identity)
            })
        }
        Command::Receive(options) => {
            with_identity(options.meeting.identity.clone().as_deref(), |identity| {
                cli::receive::receive(options, identity)
            })
        }
        Command::Id { identity, json } => with_identity(identity.as_deref(), |identity| {
            let key = identity.node_id();
            if json {
                outln!(
                    "{{\"event\":\"id\",\"key\":\"{key}\",\"short\":\"{}\"}}",
                    key.short()
                );
            } else {
                outln!("{key}");
                outln!("short form: {}", key.short());
            }
            0
        }),
        Command::Doctor(options) => {
            with_identity(None, |identity| cli::doctor::run(options, identity))
        }
        Command::Code => match cli::send::fresh_code() {
            Some(code) => {
                outln!("{code}");
                0
            }
            None => {
                errln!("tinynode: the random generator failed");
                cli::EXIT_FAILURE
            }
        },
        Command::Demo { nodes } => match random_code() {
            Some(code) => cli::demo::run(nodes, &code),
            None => {
                errln!("tinynode: the random generator failed");
                cli::EXIT_FAILURE
            }
        },
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// A fresh meeting code for the demo: "demo-" and 12 random hex digits.
fn random_code() -> Option<String> {
    let mut bytes = [0u8; 6];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut bytes).ok()?;
    Some(format!("demo-{}", tinynode::wire::hex(&bytes)))
}

/// Loads or creates the key at `path`, or makes a fresh one, then runs `run`.
fn with_identity(path: Option<&Path>, run: impl FnOnce(Identity) -> i32) -> i32 {
    let identity: Result<Identity, KeyFileError> = match path {
        Some(path) => load_or_create_identity(path),
        None => generate_identity(),
    };
    match identity {
        Ok(identity) => run(identity),
        Err(error) => {
            errln!("tinynode: {error}");
            cli::EXIT_FAILURE
        }
    }
}

/// `DEBUG=true` (or `1`, any case) asks for debug logs.
fn debug_from_env() -> bool {
    std::env::var("DEBUG").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

/// Logs go to stderr, so stdout stays clean for results and `--json`.
fn init_logging(debug: bool) {
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    cli::logger::init(level);
}
