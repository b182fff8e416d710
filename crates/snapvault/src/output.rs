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

/// stdout as an [`io::Write`] with [`stdout_bytes`]'s rules (a failure is remembered, never
/// returned), buffered: for listings printed as they are walked (`ls`, `restore
/// --dry-run`), a write per 64 KiB rather than per line.
pub fn buffered_stdout() -> io::BufWriter<StdoutBytes> {
    io::BufWriter::with_capacity(64 << 10, StdoutBytes)
}

/// See [`buffered_stdout`].
pub struct StdoutBytes;

impl Write for StdoutBytes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        stdout_bytes(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Write a line to stderr, ignoring errors (stderr is where errors would go).
pub fn stderr(args: std::fmt::Arguments) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Print a JSON array element by element, exactly as `serde_json::to_string_pretty` prints
/// the whole array, so a command listing 100,000 photos never holds them all as JSON values
/// and one big string at once (`photos --json` peaked at 437 MiB for 100,000 photos).
pub fn json_array(items: impl IntoIterator<Item = serde_json::Value>) -> serde_json::Result<()> {
    let mut buf = String::new();
    pretty_array(items, &mut buf, |chunk| {
        stdout(format_args!("{chunk}"), false);
        chunk.clear();
    })?;
    stdout(format_args!("{buf}"), true);
    Ok(())
}

/// The text of [`json_array`], handed to `flush` in pieces of about 64 KiB; the last
/// piece (without a final newline) is left in `buf`.
fn pretty_array(
    items: impl IntoIterator<Item = serde_json::Value>,
    buf: &mut String,
    mut flush: impl FnMut(&mut String),
) -> serde_json::Result<()> {
    let mut first = true;
    for v in items {
        buf.push_str(if first { "[\n" } else { ",\n" });
        first = false;
        // A pretty element indented by one level: its strings escape their newlines, so
        // every line break here is the formatter's own.
        for (i, line) in serde_json::to_string_pretty(&v)?.split('\n').enumerate() {
            if i > 0 {
                buf.push('\n');
            }
            buf.push_str("  ");
            buf.push_str(line);
        }
        if buf.len() >= 64 << 10 {
            flush(buf);
        }
    }
    buf.push_str(if first { "[]" } else { "\n]" });
    Ok(())
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn streamed(items: Vec<serde_json::Value>) -> (String, usize) {
        let mut out = String::new();
        let mut pieces = 0;
        let mut buf = String::new();
        super::pretty_array(items, &mut buf, |b| {
            out.push_str(b);
            b.clear();
            pieces += 1;
        })
        .expect("serialize");
        out.push_str(&buf);
        (out, pieces)
    }

    #[test]
    fn a_streamed_array_prints_as_the_whole_array_would() {
        let many: Vec<serde_json::Value> = (0..3000)
            .map(|i| {
                json!({
                    "path": format!("DCIM/100APPLE/IMG_{i:04}.HEIC"),
                    "taken": "2020-07-14T10:00:00+02:00",
                    "note": "two\nlines and a \"quote\"",
                    "library": {"albums": ["a", "b"], "favorite": i % 2 == 0},
                    "empty": [],
                    "none": null,
                })
            })
            .collect();
        for items in [vec![], vec![json!(1)], vec![json!({})], many] {
            let whole = serde_json::to_string_pretty(&items).expect("serialize");
            let (out, _) = streamed(items);
            assert_eq!(out, whole);
        }
    }

    #[test]
    fn a_long_array_is_printed_in_pieces() {
        // ≈ 450 KB of text: never held whole, handed out about every 64 KiB.
        let items: Vec<_> = (0..20_000).map(|i| json!({ "n": i })).collect();
        let (out, pieces) = streamed(items);
        assert!(
            pieces >= 2 && pieces >= out.len() / (128 << 10),
            "{pieces} pieces for {} bytes",
            out.len()
        );
    }
}
