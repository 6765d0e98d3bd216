//! The `tinynode` commands: parse, set up the driver, print what happens.

pub mod args;
mod json;

use std::io::Write;
use std::net::SocketAddr;

use log::error;
use tinynode::driver::resolve::resolve_all;
use tinynode::driver::{Driver, Flow, Stop};
use tinynode::node::{Command as NodeCommand, Event, Input, NodeConfig};
use tinynode::stun::client::ServerFailure;

use args::{ServeOptions, StunOptions};
use json::JsonLine;

/// Exit code when the command ran but failed.
pub const EXIT_FAILURE: i32 = 1;

/// Prints results as text lines or, with `--json`, one JSON object per line.
struct Printer {
    json: bool,
}

impl Printer {
    fn line(&self, human: impl FnOnce() -> String, json: impl FnOnce() -> JsonLine) {
        let text = if self.json { json().finish() } else { human() };
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (for example a pipe whose reader left) must not
        // stop the node; there is no one left to tell.
        let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
    }

    /// A failure the user must see: an `error` event with `--json` (and a
    /// log line on stderr), otherwise one line on stderr.
    fn error(&self, what: &str) {
        if self.json {
            error!("{what}");
            self.line(String::new, || JsonLine::event("error").str("what", what));
        } else {
            eprintln!("tinynode: {what}");
        }
    }
}

/// `tinynode stun`: exit 0 with the public address, 1 when no server answered.
pub fn stun(options: StunOptions) -> i32 {
    let printer = Printer { json: options.json };
    let resolved = resolve_all(&options.servers, options.timeout);
    let any_ipv4 = resolved.iter().flatten().flatten().any(SocketAddr::is_ipv4);
    let bind = options
        .bind
        .unwrap_or(if any_ipv4 || resolved.iter().flatten().next().is_none() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        });
    let mut unusable = Vec::new();
    let mut servers: Vec<SocketAddr> = Vec::new();
    let mut names: Vec<(SocketAddr, String)> = Vec::new();
    for (name, result) in options.servers.iter().zip(resolved) {
        match result {
            Ok(addrs) => {
                let before = servers.len();
                for addr in addrs.into_iter().filter(|a| a.is_ipv4() == bind.is_ipv4()) {
                    if !servers.contains(&addr) {
                        servers.push(addr);
                        names.push((addr, name.to_string()));
                    }
                }
                if servers.len() == before {
                    unusable.push(format!(
                        "{name}: no address of the socket's family ({bind})"
                    ));
                }
            }
            Err(error) => unusable.push(format!("{name}: {error}")),
        }
    }
    if servers.is_empty() {
        printer.error(&no_server_answered(&unusable, &[], &names));
        return EXIT_FAILURE;
    }
    let timeout = options.timeout;
    let (mut driver, mut node) = match Driver::start(bind, |local| {
        let mut config = NodeConfig::new(local);
        config.retransmit.per_server_limit = Some(timeout);
        config
    }) {
        Ok(started) => started,
        Err(error) => {
            printer.error(&error.to_string());
            return EXIT_FAILURE;
        }
    };
    driver.submit(
        &mut node,
        Input::Command(NodeCommand::DiscoverPublicAddress { servers }),
    );
    let result = driver.run(&mut node, |event| match event {
        Event::PublicAddress { address, server } => {
            printer.line(
                || format!("public address {address} (from STUN server {server})"),
                || {
                    JsonLine::event("public_address")
                        .display("addr", address)
                        .str("via", "stun")
                        .display("server", server)
                },
            );
            Flow::Exit(0)
        }
        Event::PublicAddressFailed { attempts } => {
            printer.error(&no_server_answered(&unusable, attempts, &names));
            Flow::Exit(EXIT_FAILURE)
        }
    });
    finish(&printer, result)
}

/// `tinynode serve`: answer STUN until SIGINT or SIGTERM, then exit 0.
pub fn serve(options: ServeOptions) -> i32 {
    let printer = Printer { json: options.json };
    let (mut driver, mut node) = match Driver::start(options.bind, NodeConfig::new) {
        Ok(started) => started,
        Err(error) => {
            printer.error(&error.to_string());
            return EXIT_FAILURE;
        }
    };
    let local = node.local_addr();
    printer.line(
        || format!("listening on {local}"),
        || JsonLine::event("started").display("local_addr", local),
    );
    let result = driver.run(&mut node, |_| Flow::Continue);
    finish(&printer, result)
}

fn finish(printer: &Printer, result: std::io::Result<Stop>) -> i32 {
    match result {
        Ok(Stop::Signal) => 0,
        Ok(Stop::Exit(code)) => code,
        Err(error) => {
            printer.error(&format!("event loop failed: {error}"));
            EXIT_FAILURE
        }
    }
}

/// The final error of `tinynode stun`: every server, as the user named it,
/// with the reason it gave no address.
fn no_server_answered(
    unusable: &[String],
    attempts: &[ServerFailure],
    names: &[(SocketAddr, String)],
) -> String {
    let describe =
        |failure: &ServerFailure| match names.iter().find(|(addr, _)| *addr == failure.server) {
            Some((addr, name)) if *name != addr.to_string() => format!("{name} ({failure})"),
            _ => failure.to_string(),
        };
    let reasons: Vec<String> = unusable
        .iter()
        .cloned()
        .chain(attempts.iter().map(describe))
        .collect();
    format!("no STUN server answered: {}", reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tinynode::stun::client::FailureReason;

    #[test]
    fn failure_message_names_every_server() {
        let unusable = vec!["stun.invalid:3478: could not resolve".to_owned()];
        let attempts = [ServerFailure {
            server: "127.0.0.1:9".parse().unwrap(),
            reason: FailureReason::NoResponse {
                sends: 3,
                waited: Duration::from_secs(1),
            },
        }];
        let names = [(attempts[0].server, "localhost:9".to_owned())];
        let text = no_server_answered(&unusable, &attempts, &names);
        assert!(
            text.contains("stun.invalid:3478: could not resolve"),
            "{text}"
        );
        assert!(
            text.contains("localhost:9 (127.0.0.1:9: no response to 3 requests"),
            "{text}"
        );
    }
}
