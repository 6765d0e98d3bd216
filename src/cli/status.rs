//! Status on stderr for the commands whose stdout is data or whose user
//! watches a transfer (`pipe`, `send`, `receive`): plain lines prefixed
//! with the command's name, JSON lines with `--json`, and on a terminal
//! one progress line rewritten in place.

use std::time::Duration;

use super::json::JsonLine;
use super::logger::errln;

/// How often the progress line changes on a terminal, and how often a
/// plain or JSON progress line is printed otherwise.
const PROGRESS_TERMINAL: Duration = Duration::from_secs(1);
const PROGRESS_PLAIN: Duration = Duration::from_secs(5);

/// Where status goes, and whether a progress line is on the terminal.
pub struct Status {
    prefix: &'static str,
    json: bool,
    terminal: bool,
    /// A progress line is on the terminal, to be cleared before the next.
    progress_shown: bool,
}

impl Status {
    /// Status lines prefixed with `prefix` (the command), or JSON lines.
    pub fn new(prefix: &'static str, json: bool) -> Self {
        // SAFETY: isatty only inspects the descriptor.
        let terminal = !json && unsafe { libc::isatty(2) } == 1;
        Self {
            prefix,
            json,
            terminal,
            progress_shown: false,
        }
    }

    /// An event with no fields and its text.
    pub fn say(&mut self, event: &str, text: &str) {
        self.emit(JsonLine::event(event), text);
    }

    /// `line` with `--json`, else `text`.
    pub fn emit(&mut self, line: JsonLine, text: &str) {
        if self.json {
            errln!("{}", line.finish());
        } else {
            self.clear_progress();
            errln!("{}: {text}", self.prefix);
        }
    }

    /// An `error` event.
    pub fn error(&mut self, what: &str) {
        self.emit(JsonLine::event("error").str("what", what), what);
    }

    /// Time between progress reports.
    pub fn progress_every(&self) -> Duration {
        if self.terminal {
            PROGRESS_TERMINAL
        } else {
            PROGRESS_PLAIN
        }
    }

    /// A progress report: rewritten in place on a terminal, else a line.
    pub fn progress(&mut self, line: JsonLine, text: &str) {
        if self.terminal {
            errln_raw(&format!("\r\x1b[2K{}: {text}", self.prefix));
            self.progress_shown = true;
        } else {
            self.emit(line, text);
        }
    }

    /// Clears the progress line, if one is shown.
    pub fn clear_progress(&mut self) {
        if self.progress_shown {
            errln_raw("\r\x1b[2K");
            self.progress_shown = false;
        }
    }
}

/// Writes `text` to stderr without a newline.
fn errln_raw(text: &str) {
    super::logger::to_stderr(text);
}

/// How a member is reached, in words: "direct, IPv4", "relayed, IPv6".
pub fn path_words(addr: std::net::SocketAddr, relay: bool) -> String {
    format!(
        "{}, {}",
        if relay { "relayed" } else { "direct" },
        if addr.is_ipv4() { "IPv4" } else { "IPv6" }
    )
}

/// `bytes` in MB with one decimal, or in bytes when small.
pub fn megabytes(bytes: u64) -> String {
    if bytes < 100_000 {
        format!("{bytes} B")
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}
