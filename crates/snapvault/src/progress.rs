//! Progress of long commands (snapshot, restore, check --read-data, prune, copy).
//!
//! Three modes, chosen once per command by [`mode`]:
//! - a bar on stderr (indicatif) when stderr is a terminal, without `--quiet` or `--json`;
//! - JSON lines on stderr with `--json` (schema in docs/json.md): one at the start, about
//!   one a second while running, and a last one with `"final": true`;
//! - nothing otherwise (stderr redirected to a file or a pipe, `--quiet`).
//!
//! The counters are plain atomics updated by the library's observer hooks; a ticker thread
//! turns them into a bar or a JSON line, so the hot paths never format or write.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use snapvault_repo::fs_source::Source;
use snapvault_repo::tree::NodeKind;

mod observers;
mod render;

use render::tick_loop;

pub use observers::{PruneProgress, RestoreProgress, SnapshotProgress, changed_message};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Hidden,
    Bar,
    Json,
}

/// How progress is shown: `--quiet` hides it, `--json` makes it JSON lines, otherwise a
/// bar only when stderr is a terminal (and `SNAPVAULT_NO_PROGRESS` is unset).
pub fn mode(quiet: bool, json: bool) -> Mode {
    if quiet {
        Mode::Hidden
    } else if json {
        Mode::Json
    } else if std::io::stderr().is_terminal()
        && std::env::var_os("SNAPVAULT_NO_PROGRESS").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
    {
        Mode::Bar
    } else {
        Mode::Hidden
    }
}

/// What the counted things are called in the bar: `files`, `packs` or `blobs`.
#[derive(Clone, Copy)]
pub enum Unit {
    Files,
    Packs,
    Blobs,
}

impl Unit {
    /// What the bar calls them: only files are worth counting for a person; packs and
    /// blobs are storage internals (the bar shows bytes for those).
    fn bar_name(self) -> Option<&'static str> {
        match self {
            Unit::Files => Some("files"),
            Unit::Packs | Unit::Blobs => None,
        }
    }

    /// The name in JSON progress lines (docs/json.md).
    fn name(self) -> &'static str {
        match self {
            Unit::Files => "files",
            Unit::Packs => "packs",
            Unit::Blobs => "blobs",
        }
    }
}

struct Inner {
    command: &'static str,
    unit: Unit,
    mode: Mode,
    bar: Option<ProgressBar>,
    started: Instant,
    items_done: AtomicU64,
    items_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
    /// Bytes actually read (snapshot: from the source; check: from the repository).
    bytes_read: AtomicU64,
    errors: AtomicU64,
    /// The totals are final (given up front, or the scan finished).
    totals_known: AtomicBool,
    /// Totals are known at all (a scan is running or they were given).
    has_totals: AtomicBool,
    current: Mutex<String>,
    phase: Mutex<String>,
    /// Bytes moved over USB so far (the iPhone), for the transfer rate.
    transfer: AtomicU64,
    has_transfer: AtomicBool,
    stop: Mutex<bool>,
    cv: Condvar,
}

/// A running progress display; [`Progress::finish`] (or drop) ends it.
pub struct Progress {
    inner: Arc<Inner>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Progress {
    pub fn new(command: &'static str, mode: Mode, unit: Unit) -> Progress {
        let bar = (mode == Mode::Bar).then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            // The whole line is ours (bar_message), fitted to the terminal's width.
            if let Ok(style) = ProgressStyle::with_template("{msg}") {
                b.set_style(style);
            }
            b
        });
        let inner = Arc::new(Inner {
            command,
            unit,
            mode,
            bar,
            started: Instant::now(),
            items_done: AtomicU64::new(0),
            items_total: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            totals_known: AtomicBool::new(false),
            has_totals: AtomicBool::new(false),
            current: Mutex::new(String::new()),
            phase: Mutex::new(String::new()),
            transfer: AtomicU64::new(0),
            has_transfer: AtomicBool::new(false),
            stop: Mutex::new(false),
            cv: Condvar::new(),
        });
        let ticker = match mode {
            Mode::Hidden => None,
            _ => {
                let i = inner.clone();
                std::thread::Builder::new()
                    .name("progress".into())
                    .spawn(move || tick_loop(&i))
                    .ok()
            }
        };
        Progress {
            inner,
            ticker: Mutex::new(ticker),
        }
    }

    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    pub fn is_hidden(&self) -> bool {
        self.inner.mode == Mode::Hidden
    }

    /// Known totals (restore, the iPhone listing, check --read-data).
    pub fn set_totals(&self, items: u64, bytes: u64) {
        self.inner.items_total.store(items, Relaxed);
        self.inner.bytes_total.store(bytes, Relaxed);
        self.inner.has_totals.store(true, Relaxed);
        self.inner.totals_known.store(true, Relaxed);
    }

    /// Bytes transferred so far over USB (shown as a transfer rate).
    pub fn set_transfer(&self, bytes: u64) {
        self.inner.transfer.store(bytes, Relaxed);
        self.inner.has_transfer.store(true, Relaxed);
    }

    pub fn set_phase(&self, phase: &str) {
        if let Ok(mut p) = self.inner.phase.lock() {
            phase.clone_into(&mut p);
        }
    }

    /// Count the files under `source` in the background (like restic's scanner), so the bar
    /// has totals and an ETA. Runs inside `scope`; stops early when the progress finishes.
    pub fn scan<'s, 'e: 's>(
        &'e self,
        scope: &'s std::thread::Scope<'s, 'e>,
        source: &'e dyn Source,
    ) {
        if self.is_hidden() {
            return;
        }
        self.inner.has_totals.store(true, Relaxed);
        let inner = &self.inner;
        scope.spawn(move || {
            let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
            while let Some(dir) = stack.pop() {
                if inner.stop.lock().map(|s| *s).unwrap_or(true) {
                    return;
                }
                let Ok(entries) = source.list(&dir) else {
                    continue;
                };
                for e in entries {
                    let mut p = dir.clone();
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p.extend_from_slice(&e.name.0);
                    match e.kind {
                        NodeKind::Dir => stack.push(p),
                        NodeKind::File => {
                            inner.items_total.fetch_add(1, Relaxed);
                            inner.bytes_total.fetch_add(e.size, Relaxed);
                        }
                        // Symlinks, FIFOs, sockets, devices: nothing to read.
                        _ => {}
                    }
                }
            }
            inner.totals_known.store(true, Relaxed);
        });
    }

    /// Print a line above the bar (or plainly when there is none).
    pub fn println(&self, line: &str) {
        self.suspend(|| eprintln!("{line}"));
    }

    /// Run `f` (which prints) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.inner.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    fn item_done(&self, bytes: u64) {
        self.inner.items_done.fetch_add(1, Relaxed);
        self.inner.bytes_done.fetch_add(bytes, Relaxed);
    }

    fn set_current(&self, path: &[u8]) {
        if self.is_hidden() {
            return;
        }
        if let Ok(mut c) = self.inner.current.lock() {
            c.clear();
            // The name is drawn on the terminal: escaped, like every name shown.
            c.push_str(&snapvault_repo::text::escaped_bytes(path));
        }
    }

    /// Stop the display: clear the bar, or print the last JSON line.
    pub fn finish(&self) {
        if let Ok(mut s) = self.inner.stop.lock() {
            *s = true;
        }
        self.inner.cv.notify_all();
        let handle = self.ticker.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
#[cfg(test)]
mod tests {
    use super::render::{Rates, Window, bar_message, eta_text, fit_line, json_line, sample};
    use super::*;
    use snapvault_repo::checker::CheckObserver;
    use snapvault_repo::restorer::RestoreObserver;
    use std::time::Duration;

    #[test]
    fn hidden_progress_counts_without_a_thread() {
        let p = Progress::new("test", Mode::Hidden, Unit::Files);
        p.set_totals(2, 100);
        let r = RestoreProgress::new(&p, &[]);
        r.file_restored(b"a", 40);
        assert_eq!(p.inner.items_done.load(Relaxed), 1);
        assert_eq!(p.inner.bytes_done.load(Relaxed), 40);
        assert!(p.ticker.lock().unwrap().is_none());
        p.finish();
    }

    #[test]
    fn rates_and_eta() {
        let i = Progress::new("test", Mode::Hidden, Unit::Packs);
        i.set_totals(4, 1000);
        let mut r = Rates {
            read: Window::default(),
            done: Window::default(),
            transfer: Window::default(),
        };
        let s = sample(&i.inner, &mut r);
        assert_eq!(s.percent, Some(0.0));
        i.pack_read(500);
        let s = sample(&i.inner, &mut r);
        assert_eq!(s.percent, Some(50.0));
        let line = json_line(&i.inner, &s, true);
        assert_eq!(line["type"], "progress");
        assert_eq!(line["bytes_done"], 500);
        assert_eq!(line["total"], 4);
        assert_eq!(line["final"], true);
        let bar = bar_message(&i.inner, &s);
        assert!(bar.contains("50%") && !bar.contains("packs"), "{bar}");
        assert_eq!(eta_text(Duration::from_secs(3725)), "1h02m");
    }

    #[test]
    fn the_line_fits_keeping_the_first_parts_and_shortening_the_file_name() {
        let parts: Vec<String> = [
            "ETA 2m10s",
            "USB 30.1 MiB/s",
            "[====        ] 54% 267.0 MiB/491.1 MiB",
            "56/103 files",
            "42.7 MiB/s",
            "12s so far",
        ]
        .map(String::from)
        .to_vec();
        let name = "DCIM/100APPLE/IMG_0001_with_a_rather_long_name_indeed.HEIC";
        for width in [40, 60, 80, 120, 200] {
            let line = fit_line(&parts, name, width);
            assert!(line.chars().count() < width, "{width}: {line:?}");
            assert!(
                line.starts_with("ETA 2m10s  USB 30.1 MiB/s"),
                "{width}: {line:?}"
            );
        }
        let wide = fit_line(&parts, name, 200);
        assert!(wide.ends_with(name), "{wide}");
        let narrow = fit_line(&parts, name, 80);
        assert!(
            !narrow.contains("…") || narrow.ends_with(".HEIC"),
            "{narrow}"
        );
    }
}
