//! The `log` backend: one line per record on stderr, `LEVEL [target]
//! message`, and nothing else.
//!
//! A write that fails (stderr is a pipe whose reader left, as in `join …
//! 2>&1 | head`, or a journald stream that broke) is ignored: the node keeps
//! running and leaves cleanly instead of aborting on a panic, which is what
//! `eprintln!`-based loggers do (`panic = "abort"` would then kill it with
//! no `Close` to its peers and no cache saved).

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

/// Writes records at or above its level to stderr, ignoring write errors.
struct StderrLogger {
    level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{:<5} [{}] {}\n",
            record.level(),
            record.target(),
            record.args()
        );
        // One write per line, so lines from the stdin thread and the loop
        // never interleave mid-line; an error has nowhere to go.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().lock().flush();
    }
}

/// Installs the logger at `level`; a second call changes nothing.
pub fn init(level: LevelFilter) {
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger { level }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

/// Writes `text` to stderr, ignoring failure (see the module note).
pub fn to_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes `text` to stdout and flushes, ignoring failure.
pub fn to_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// `println!` that never panics: a closed stdout is ignored.
macro_rules! outln {
    () => {
        $crate::cli::logger::to_stdout("\n")
    };
    ($($arg:tt)*) => {
        $crate::cli::logger::to_stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics: a closed stderr is ignored.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::logger::to_stderr(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, outln};
