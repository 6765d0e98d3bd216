//! Printing what happens: one text line per event, or with `--json` one
//! JSON object per line, written in batches.

use super::logger::errln;
use std::cell::RefCell;
use std::io::Write;

use log::error;
use tinynode::driver::{Flow, Handler};
use tinynode::wire::hex;
use tinynode::{Event, Node};

use super::json::JsonLine;
use super::no_server_answered;

/// Output buffered beyond this many bytes is written at once.
const OUTPUT_BATCH: usize = 64 * 1024;

/// Prints results as text lines or, with `--json`, one JSON object per line.
///
/// Lines are collected and written when the event loop is about to sleep
/// ([`Handler::before_sleep`]), when [`OUTPUT_BATCH`] bytes wait, and on
/// drop: a burst of messages costs one write, and nothing waits longer than
/// the loop is busy.
pub struct Printer {
    json: bool,
    pending: RefCell<String>,
    /// True once a write to stdout failed: nobody reads it any more.
    closed: std::cell::Cell<bool>,
    /// Sources reported down in text (once, until they come back):
    /// tinynode's DHT, Mainline.
    down: std::cell::Cell<(bool, bool)>,
}

impl Printer {
    /// A printer of text lines, or JSON lines when `json`.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            pending: RefCell::new(String::new()),
            closed: std::cell::Cell::new(false),
            down: std::cell::Cell::new((false, false)),
        }
    }

    /// True when lines are JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints one line: `human` as text, or `json`.
    pub fn line(&self, human: impl FnOnce() -> String, json: impl FnOnce() -> JsonLine) {
        self.push(if self.json { json().finish() } else { human() });
    }

    /// Queues one finished line.
    fn push(&self, text: String) {
        let full = {
            let mut pending = self.pending.borrow_mut();
            pending.push_str(&text);
            pending.push('\n');
            pending.len() >= OUTPUT_BATCH
        };
        if full {
            self.flush();
        }
    }

    /// Writes the collected lines.
    pub fn flush(&self) {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (for example a pipe whose reader left) must not
        // crash the node; there is no one left to tell. `join` then leaves
        // (see `events_until_closed`).
        let written = stdout
            .write_all(pending.as_bytes())
            .and_then(|()| stdout.flush());
        if written.is_err() {
            self.closed.set(true);
        }
        pending.clear();
    }

    /// True once stdout could not be written: its reader left.
    pub fn closed(&self) -> bool {
        self.closed.get()
    }

    /// A failure the user must see: an `error` event with `--json` (and a
    /// log line on stderr), otherwise one line on stderr.
    pub fn error(&self, what: &str) {
        if self.json {
            error!("{what}");
            self.line(String::new, || JsonLine::event("error").str("what", what));
        } else {
            self.flush();
            errln!("tinynode: {what}");
        }
    }

    /// Prints every event of `join`, and leaves the meeting (closing every
    /// channel, exit code 0) once stdout is closed, so that members are not
    /// kept connected to a node whose messages nobody reads.
    pub fn events_until_closed(&self) -> PrintEvents<'_> {
        PrintEvents {
            printer: self,
            leave_when_closed: true,
        }
    }

    /// Prints every event of `join` and `serve`.
    pub fn events(&self) -> PrintEvents<'_> {
        PrintEvents {
            printer: self,
            leave_when_closed: false,
        }
    }

    /// The events `join` and `serve` report.
    pub fn event(&self, event: &Event) {
        match event {
            Event::PublicAddress { address, via } => {
                let (via_name, by) = (via.name(), via.reporter());
                let verbose = log::log_enabled!(log::Level::Debug);
                self.line(
                    || {
                        let mut line = format!("others see this node at {address}");
                        if verbose {
                            line += &format!(" (via {via_name}, reported by {by})");
                        }
                        line
                    },
                    || {
                        JsonLine::event("public_address")
                            .display("addr", address)
                            .str("via", via_name)
                            .display("by", by)
                    },
                );
            }
            Event::LocalAddresses { addrs } => {
                let all: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                let all = all.join(" ");
                self.line(
                    || format!("this host's addresses changed to {all}: gathering again and reconnecting"),
                    || JsonLine::event("local_addresses").str("local_addrs", &all),
                );
            }
            Event::PublicAddressFailed { attempts } => self.error(&format!(
                "{}; using the address DHT peers report",
                no_server_answered(&[], attempts, &[])
            )),
            Event::BootstrapFailed { attempt, retry_in } => self.source_down(
                false,
                &format!(
                    "no bootstrap node answered (attempt {attempt}); retrying in {} s",
                    retry_in.as_secs()
                ),
                "no tinynode DHT node answered; still trying in the background",
            ),
            Event::Bootstrapped { nodes } => {
                if self.json {
                    self.line(String::new, || {
                        JsonLine::event("bootstrapped").display("nodes", nodes)
                    });
                }
                self.source_up(false, "reached the tinynode DHT");
            }
            Event::PeerDiscovered { peer, addr, via } => self.line(
                || format!("peer {} discovered at {addr} (via {via})", peer.short()),
                || {
                    JsonLine::event("peer_discovered")
                        .display("peer", peer)
                        .display("addr", addr)
                        .display("via", via)
                },
            ),
            Event::PeerLost { peer, reason } => self.line(
                || format!("peer {} lost: {reason}", peer.short()),
                || {
                    JsonLine::event("peer_lost")
                        .display("peer", peer)
                        .display("reason", reason)
                },
            ),
            Event::Connected {
                peer,
                addr,
                via,
                relay,
            } => self.line(
                || {
                    let how = if *relay { "through the relay" } else { "at" };
                    let family = tinynode::Family::of(*addr);
                    format!(
                        "connected to {} {how} {addr} (via {via}, {family})",
                        peer.short()
                    )
                },
                || {
                    let line = JsonLine::event("connected")
                        .display("peer", peer)
                        .display("addr", addr)
                        .display("via", via);
                    with_path(line, *addr, *relay)
                },
            ),
            Event::PathChanged { peer, addr, relay } => self.line(
                || {
                    let how = if *relay {
                        "through the relay"
                    } else {
                        "direct at"
                    };
                    format!("{} now {how} {addr}", peer.short())
                },
                || {
                    let line = JsonLine::event("path_changed")
                        .display("peer", peer)
                        .display("addr", addr);
                    with_path(line, *addr, *relay)
                },
            ),
            Event::Nat {
                class,
                samples,
                family,
            } => self.line(
                || format!("{family} NAT mapping {class} ({samples} observers)"),
                || {
                    JsonLine::event("nat")
                        .str("mapping", class.name())
                        .display("samples", samples)
                        .str("family", family.name())
                },
            ),
            Event::MainlineBootstrapped { nodes } => {
                if self.json {
                    self.line(String::new, || {
                        JsonLine::event("mainline_bootstrapped").display("nodes", nodes)
                    });
                }
                self.source_up(true, "reached the Mainline DHT");
            }
            Event::RelayListed { nodes } => self.line(
                || format!("listed as a relay in the Mainline directory ({nodes} nodes)"),
                || JsonLine::event("relay_listed").display("nodes", nodes),
            ),
            Event::MainlineBootstrapFailed { attempt, retry_in } => self.source_down(
                true,
                &format!(
                    "no Mainline bootstrap node answered (attempt {attempt}); retrying in {} s",
                    retry_in.as_secs()
                ),
                "no Mainline DHT node answered (offline?); still trying in the background, \
                 the other sources carry on",
            ),
            Event::Message { peer, text } => self.line(
                || format!("{}: {}", peer.short(), escape_controls(text)),
                || {
                    JsonLine::event("message")
                        .display("peer", peer)
                        .str("text", text)
                },
            ),
            Event::Disconnected { peer, reason } => self.line(
                || format!("disconnected from {}: {reason}", peer.short()),
                || {
                    JsonLine::event("disconnected")
                        .display("peer", peer)
                        .display("reason", reason)
                },
            ),
            Event::ConnectFailed { peer, reason } => self.line(
                || format!("could not connect to {}: {reason}; retrying", peer.short()),
                || {
                    JsonLine::event("connect_failed")
                        .display("peer", peer)
                        .display("reason", reason)
                },
            ),
            Event::Data { peer, bytes } => self.line(
                || {
                    format!(
                        "{} sent {} bytes: {}",
                        peer.short(),
                        bytes.len(),
                        hex(bytes)
                    )
                },
                || {
                    JsonLine::event("data")
                        .display("peer", peer)
                        .str("hex", &hex(bytes))
                },
            ),
            _ => {}
        }
    }
}

impl Printer {
    /// A source failed: every attempt with `--json` (`what`), in text once
    /// (`once`) until it comes back. `mainline` picks the source.
    fn source_down(&self, mainline: bool, what: &str, once: &str) {
        if self.json {
            return self.error(what);
        }
        let (dht, main) = self.down.get();
        let was = if mainline { main } else { dht };
        if was {
            log::debug!("{what}");
            return;
        }
        self.down
            .set(if mainline { (dht, true) } else { (true, main) });
        self.error(once);
    }

    /// A source answered: in text only when it had been reported down, or
    /// (`Mainline`) the first time.
    fn source_up(&self, mainline: bool, text: &str) {
        let (dht, main) = self.down.get();
        let was = if mainline { main } else { dht };
        self.down.set(if mainline {
            (dht, false)
        } else {
            (false, main)
        });
        if !self.json && (was || mainline) {
            self.push(text.to_owned());
        }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The driver handler of `join` and `serve`: print each event, flush before
/// sleeping, and (for `join`) leave once stdout is closed.
pub struct PrintEvents<'a> {
    printer: &'a Printer,
    leave_when_closed: bool,
}

impl PrintEvents<'_> {
    fn flow(&self) -> Flow {
        if self.leave_when_closed && self.printer.closed() {
            log::warn!("standard output closed: leaving the meeting");
            Flow::Leave(0)
        } else {
            Flow::Continue
        }
    }
}

impl Handler for PrintEvents<'_> {
    fn on_event(&mut self, event: &Event) -> Flow {
        self.printer.event(event);
        self.flow()
    }

    fn before_sleep(&mut self, _node: &Node) {
        self.printer.flush();
    }

    fn on_wake(&mut self, _node: &mut Node) -> Flow {
        self.flow()
    }
}

/// `text` with every control character (escape sequences, line breaks,
/// carriage returns) written as a Rust escape, so a peer cannot move the
/// terminal's cursor, recolour it or forge extra lines.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    escaped.into()
}

/// `line` with the path fields of `connected`, `path_changed` and
/// `pipe_connected`: the `family` of the addresses the traffic flows
/// between, and `"path":"direct"`, or `"path":"relay"` with the relay's
/// address as `relay`.
pub(super) fn with_path(line: JsonLine, addr: std::net::SocketAddr, relay: bool) -> JsonLine {
    let line = line.str("family", tinynode::Family::of(addr).name());
    if relay {
        line.str("path", "relay").display("relay", addr)
    } else {
        line.str("path", "direct")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_cannot_steer_the_terminal_or_forge_lines() {
        assert_eq!(
            escape_controls("plain text, ünïcode"),
            "plain text, ünïcode"
        );
        assert_eq!(
            escape_controls("hi\x1b[31mred\nabc: forged\r"),
            "hi\\u{1b}[31mred\\nabc: forged\\r"
        );
        assert!(
            !escape_controls("\u{7}\u{9b}x")
                .chars()
                .any(char::is_control)
        );
    }
}
