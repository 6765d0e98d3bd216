//! The `tinynode` binary: parse the command line, set up logging, run.

mod cli;

use std::process::ExitCode;

use cli::args::{self, Command};

/// Exit code for a command line that cannot be run.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let parsed = args::parse(std::env::args().skip(1));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("tinynode: {error}\n\n{}", args::MAIN_HELP);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging(cli.verbose || debug_from_env());
    let code = match cli.command {
        Command::Help(text) => {
            print!("{text}");
            0
        }
        Command::Version => {
            println!("tinynode {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Command::Stun(options) => cli::stun(options),
        Command::Serve(options) => cli::serve(options),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
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
    // Fails only if a logger is already set, which cannot happen here.
    let _ = simple_logger::SimpleLogger::new().with_level(level).init();
}
