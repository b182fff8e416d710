//! Every line for stdout and stderr goes through here. std's `println!` panics when stdout
//! cannot be written (`> /dev/full`, a pipe whose reader has gone), which turned a finished
//! backup into exit 101. Here the first stdout write error is remembered, later output is
//! dropped, the command's work goes on, and `main` reports the error at the end with exit
//! code 13 (see `finish`). stderr errors are ignored: there is nowhere left to report them.
//!
//! `println!`, `print!` and `eprintln!` are shadowed crate-wide (this module is declared
//! first in main.rs, so its macros are in scope everywhere), so no command can forget.

use std::io::{self, Write};
use std::sync::Mutex;

/// The first error writing stdout, if any.
static STDOUT_ERROR: Mutex<Option<io::Error>> = Mutex::new(None);

fn failed() -> bool {
    STDOUT_ERROR.lock().map(|e| e.is_some()).unwrap_or(true)
}

fn remember(e: io::Error) {
    if let Ok(mut slot) = STDOUT_ERROR.lock()
        && slot.is_none()
    {
        *slot = Some(e);
    }
}

/// Write to stdout; after the first failure, drop everything.
pub fn stdout(args: std::fmt::Arguments, newline: bool) {
    if failed() {
        return;
    }
    let mut out = io::stdout().lock();
    let r = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = r {
        remember(e);
    }
}

/// Write raw bytes to stdout (completion scripts, man pages on stdout).
pub fn stdout_bytes(bytes: &[u8]) {
    if failed() {
        return;
    }
    if let Err(e) = io::stdout().lock().write_all(bytes) {
        remember(e);
    }
}

/// Write a line to stderr, ignoring errors (stderr is where errors would go).
pub fn stderr(args: std::fmt::Arguments) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Writing stdout failed; exit code 13 (`exit::OUTPUT`).
#[derive(Debug)]
pub struct StdoutFailed(pub io::Error);

impl std::fmt::Display for StdoutFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not write the output to standard output")
    }
}

impl std::error::Error for StdoutFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Flush stdout and return the first write error of the run. A closed pipe (`| head`) is
/// the reader's choice, so `main` exits 13 without a message for it; any other error (a
/// full disk, an I/O error) is reported.
pub fn finish() -> Option<StdoutFailed> {
    if !failed()
        && let Err(e) = io::stdout().lock().flush()
    {
        remember(e);
    }
    STDOUT_ERROR
        .lock()
        .ok()
        .and_then(|mut e| e.take())
        .map(StdoutFailed)
}

macro_rules! println {
    () => {
        $crate::output::stdout(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!($($arg)*), true)
    };
}

// No command prints without a newline today; this keeps one that starts to from panicking.
#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!($($arg)*), false)
    };
}

macro_rules! eprintln {
    () => {
        $crate::output::stderr(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::stderr(format_args!($($arg)*))
    };
}
