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

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use snapvault_repo::archiver::Observer;
use snapvault_repo::checker::CheckObserver;
use snapvault_repo::copy::CopyObserver;
use snapvault_repo::fs_source::Source;
use snapvault_repo::prune::PruneObserver;
use snapvault_repo::restorer::RestoreObserver;
use snapvault_repo::tree::{Node, NodeKind};

use crate::fmt;

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

/// Moving window of (time, bytes) samples for rates.
#[derive(Default)]
struct Window(VecDeque<(Instant, u64)>);

impl Window {
    const SPAN: Duration = Duration::from_secs(5);

    fn rate(&mut self, now: Instant, value: u64) -> f64 {
        self.0.push_back((now, value));
        while self.0.len() > 2 && now.duration_since(self.0[0].0) > Self::SPAN {
            self.0.pop_front();
        }
        let (t0, v0) = self.0[0];
        let dt = now.duration_since(t0).as_secs_f64();
        if dt < 0.2 {
            return 0.0;
        }
        value.saturating_sub(v0) as f64 / dt
    }
}

struct Snapshot {
    elapsed: Duration,
    items_done: u64,
    items_total: Option<u64>,
    bytes_done: u64,
    bytes_total: Option<u64>,
    bytes_read: u64,
    read_rate: f64,
    transfer: Option<(u64, f64)>,
    eta: Option<Duration>,
    percent: Option<f64>,
    totals_final: bool,
    current: String,
    phase: String,
    errors: u64,
}

struct Rates {
    read: Window,
    done: Window,
    transfer: Window,
}

fn sample(i: &Inner, r: &mut Rates) -> Snapshot {
    let now = Instant::now();
    let bytes_done = i.bytes_done.load(Relaxed);
    let bytes_read = i.bytes_read.load(Relaxed);
    let has = i.has_totals.load(Relaxed);
    let known = i.totals_known.load(Relaxed);
    let bytes_total = has.then(|| i.bytes_total.load(Relaxed).max(bytes_done));
    let items_total = has.then(|| i.items_total.load(Relaxed));
    let done_rate = r.done.rate(now, bytes_done);
    let percent = match bytes_total {
        Some(t) if t > 0 => Some((bytes_done as f64 * 100.0 / t as f64).min(100.0)),
        _ => None,
    };
    let eta = match bytes_total {
        Some(t) if known && done_rate > 0.0 => Some(Duration::from_secs_f64(
            t.saturating_sub(bytes_done) as f64 / done_rate,
        )),
        _ => None,
    };
    let transfer = i.has_transfer.load(Relaxed).then(|| {
        let n = i.transfer.load(Relaxed);
        (n, r.transfer.rate(now, n))
    });
    Snapshot {
        elapsed: i.started.elapsed(),
        items_done: i.items_done.load(Relaxed),
        items_total,
        bytes_done,
        bytes_total,
        bytes_read,
        // Too short a window (the first second, or a quick run): the average so far.
        read_rate: match r.read.rate(now, bytes_read) {
            x if x > 0.0 => x,
            _ => bytes_read as f64 / i.started.elapsed().as_secs_f64().max(0.001),
        },
        totals_final: known,
        transfer,
        eta,
        percent,
        current: i.current.lock().map(|c| c.clone()).unwrap_or_default(),
        phase: i.phase.lock().map(|c| c.clone()).unwrap_or_default(),
        errors: i.errors.load(Relaxed),
    }
}

fn eta_text(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The progress line, fitted to the terminal: parts in order of importance — the time left
/// and the phone's USB rate first, then errors, how far (a bar and the percentage of the
/// bytes beside it), the counts, the read rate, the phase, the time so far, and the current
/// file with whatever room is left. A part that does not fit is left out, never cut.
fn bar_message(i: &Inner, s: &Snapshot) -> String {
    fit_line(&bar_parts(i, s), &s.current, terminal_width())
}

fn bar_parts(i: &Inner, s: &Snapshot) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(eta) = s.eta {
        parts.push(format!("ETA {}", eta_text(eta)));
    }
    if let Some((_, rate)) = s.transfer {
        parts.push(format!("USB {}/s", fmt::size(rate as u64)));
    }
    if s.errors > 0 {
        parts.push(format!("{} error(s)", s.errors));
    }
    // The percentage is of the bytes, shown right beside them, and never 100% before the
    // last item is done or while the totals are still being counted.
    let unfinished = !s.totals_final || s.items_total.is_some_and(|t| s.items_done < t);
    match (s.percent, s.bytes_total) {
        (Some(p), Some(t)) => {
            let p = if unfinished { p.min(99.0) } else { p };
            let filled = ((p / 100.0) * BAR as f64).round() as usize;
            parts.push(format!(
                "[{}{}] {:.0}% {}/{}",
                "=".repeat(filled.min(BAR)),
                " ".repeat(BAR - filled.min(BAR)),
                p.floor(),
                fmt::size(s.bytes_done),
                fmt::size(t)
            ));
        }
        _ => parts.push(fmt::size(s.bytes_done)),
    }
    if let Some(name) = i.unit.bar_name() {
        match s.items_total {
            Some(t) => parts.push(format!("{}/{} {name}", s.items_done, t)),
            None => parts.push(format!("{} {name}", s.items_done)),
        }
    }
    parts.push(format!("{}/s", fmt::size(s.read_rate as u64)));
    if !s.phase.is_empty() {
        parts.push(s.phase.clone());
    }
    let secs = s.elapsed.as_secs();
    parts.push(if secs < 60 {
        format!("{secs}s so far")
    } else {
        format!("{} so far", eta_text(s.elapsed))
    });
    parts
}

/// Width of the drawn bar, in characters.
const BAR: usize = 12;

/// Join `parts` (most important first) and then `current`, within `width` columns: a part
/// that does not fit is skipped; `current` is shortened from the left (`…IMG_0001.HEIC`).
fn fit_line(parts: &[String], current: &str, width: usize) -> String {
    // One column spare: a line that fills the last column makes some terminals wrap.
    let room = width.saturating_sub(1);
    let mut line = String::new();
    let mut used = 0;
    for p in parts {
        let need = p.chars().count() + if used == 0 { 0 } else { 2 };
        if used + need > room {
            continue;
        }
        if used > 0 {
            line.push_str("  ");
        }
        line.push_str(p);
        used += need;
    }
    let left = room.saturating_sub(used + 2);
    let n = current.chars().count();
    if !current.is_empty() && left >= 8 {
        line.push_str("  ");
        if n <= left {
            line.push_str(current);
        } else {
            line.push('…');
            line.extend(current.chars().skip(n - (left - 1)));
        }
    }
    line
}

/// Columns of the terminal on stderr (`COLUMNS`, else 80, when it cannot be asked).
fn terminal_width() -> usize {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ only writes a winsize into `ws`.
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        return usize::from(ws.ws_col);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|c| *c > 0)
        .unwrap_or(80)
}

/// One JSON progress line (schema in docs/json.md).
fn json_line(i: &Inner, s: &Snapshot, last: bool) -> serde_json::Value {
    json!({
        "type": "progress",
        "command": i.command,
        "final": last,
        "elapsed_ms": s.elapsed.as_millis() as u64,
        "unit": i.unit.name(),
        "done": s.items_done,
        "total": s.items_total,
        "total_final": s.totals_final,
        "bytes_done": s.bytes_done,
        "bytes_total": s.bytes_total,
        "bytes_read": s.bytes_read,
        "bytes_per_sec": s.read_rate.round() as u64,
        "transfer_bytes": s.transfer.map(|t| t.0),
        "transfer_bytes_per_sec": s.transfer.map(|t| t.1.round() as u64),
        "percent": s.percent.map(|p| (p * 10.0).round() / 10.0),
        "eta_secs": s.eta.map(|d| d.as_secs()),
        "phase": (!s.phase.is_empty()).then_some(&s.phase),
        "current": (!last && !s.current.is_empty()).then_some(&s.current),
        "errors": s.errors,
    })
}

fn emit_json(v: &serde_json::Value) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{v}");
}

fn tick_loop(i: &Inner) {
    let period = match i.mode {
        Mode::Json => Duration::from_secs(1),
        _ => Duration::from_millis(100),
    };
    let mut rates = Rates {
        read: Window::default(),
        done: Window::default(),
        transfer: Window::default(),
    };
    // A first frame at once, so even a quick command shows what it does.
    match (i.mode, &i.bar) {
        (Mode::Json, _) => emit_json(&json_line(i, &sample(i, &mut rates), false)),
        (Mode::Bar, Some(b)) => {
            b.set_message(bar_message(i, &sample(i, &mut rates)));
            b.tick();
        }
        _ => {}
    }
    loop {
        let stopped = {
            let Ok(g) = i.stop.lock() else { break };
            match i.cv.wait_timeout_while(g, period, |s| !*s) {
                Ok((g, _)) => *g,
                Err(_) => true,
            }
        };
        let s = sample(i, &mut rates);
        match i.mode {
            Mode::Json => emit_json(&json_line(i, &s, stopped)),
            Mode::Bar => {
                if let Some(b) = &i.bar {
                    b.set_message(bar_message(i, &s));
                    if stopped {
                        b.finish_and_clear();
                    } else {
                        b.tick();
                    }
                }
            }
            Mode::Hidden => {}
        }
        if stopped {
            break;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Observers

/// The snapshot observer: counts for the progress display and forwards every hook to the
/// command's own observer (which prints skipped files and collects photo keys).
pub struct SnapshotProgress<'a> {
    pub progress: &'a Progress,
    pub inner: &'a dyn Observer,
    /// Bytes moved over USB so far (the iPhone), read as the data streams in.
    pub transfer: Option<&'a (dyn Fn() -> u64 + Sync)>,
}

impl Observer for SnapshotProgress<'_> {
    fn annotate(&self, snapshot: &mut snapvault_repo::snapshot::Snapshot) {
        self.inner.annotate(snapshot);
    }

    fn file_started(&self, path: &[u8], size: u64) {
        self.progress.set_current(path);
        self.progress.inner.items_done.fetch_add(1, Relaxed);
        self.inner.file_started(path, size);
    }

    fn file_unchanged(&self, path: &[u8], size: u64) {
        self.progress.item_done(size);
        self.inner.file_unchanged(path, size);
    }

    fn bytes_read(&self, n: u64) {
        self.progress.inner.bytes_read.fetch_add(n, Relaxed);
        self.progress.inner.bytes_done.fetch_add(n, Relaxed);
        if let Some(t) = self.transfer
            && !self.progress.is_hidden()
        {
            self.progress.set_transfer(t());
        }
        self.inner.bytes_read(n);
    }

    fn skipped(&self, path: &[u8], error: &std::io::Error) {
        self.progress.inner.errors.fetch_add(1, Relaxed);
        // Not being processed any more: only the warning names it.
        if let Ok(mut c) = self.progress.inner.current.lock() {
            c.clear();
        }
        match self.progress.mode() {
            Mode::Json => {
                emit_json(&json!({
                    "type": "warning",
                    "command": self.progress.inner.command,
                    "path": String::from_utf8_lossy(path),
                    "message": format!("skipped: {error}"),
                }));
                // The inner observer still takes note (it prints nothing in JSON mode).
                self.inner.skipped(path, error);
            }
            Mode::Bar => match &self.progress.inner.bar {
                Some(b) => b.suspend(|| self.inner.skipped(path, error)),
                None => self.inner.skipped(path, error),
            },
            Mode::Hidden => self.inner.skipped(path, error),
        }
    }

    fn recorded(&self, dir: &[u8], node: &Node) {
        self.inner.recorded(dir, node);
    }
}

/// Restore: files restored (or found already right) and their bytes.
pub struct RestoreProgress<'a> {
    pub progress: &'a Progress,
    sizes: HashMap<Vec<u8>, u64>,
}

impl<'a> RestoreProgress<'a> {
    pub fn new(progress: &'a Progress, items: &[snapvault_repo::restorer::RestoreItem]) -> Self {
        let files: Vec<_> = items
            .iter()
            .filter(|i| i.node.kind == NodeKind::File)
            .collect();
        progress.set_totals(files.len() as u64, files.iter().map(|i| i.node.size).sum());
        let sizes = if progress.is_hidden() {
            HashMap::new()
        } else {
            files
                .iter()
                .map(|i| (i.path.clone(), i.node.size))
                .collect()
        };
        RestoreProgress { progress, sizes }
    }
}

impl RestoreObserver for RestoreProgress<'_> {
    fn file_restored(&self, path: &[u8], bytes: u64) {
        let size = self.sizes.get(path).copied().unwrap_or(bytes);
        self.progress.set_current(path);
        self.progress.inner.bytes_read.fetch_add(bytes, Relaxed);
        self.progress.item_done(size);
    }
}

impl CheckObserver for Progress {
    fn pack_read(&self, bytes: u64) {
        self.inner.bytes_read.fetch_add(bytes, Relaxed);
        self.item_done(bytes);
    }
}

/// Copy: the snapshot being copied as the phase; data blobs done (copied, or known to be in
/// the destination) with their sizes; bytes read from the source.
impl CopyObserver for Progress {
    fn learning(&self, pairs: usize) {
        self.set_phase(&format!("comparing {pairs} earlier copies"));
    }

    fn snapshot_started(&self, n: usize, of: usize, source: &snapvault_repo::SnapshotId) {
        self.set_phase(&format!("snapshot {}/{of} {}", n + 1, source.short()));
    }

    fn blob_done(&self, size: u64, read: u64) {
        self.inner.bytes_read.fetch_add(read, Relaxed);
        self.item_done(size);
    }
}

/// Prune: phases and packs rewritten; warnings go above the bar. `verbose` also prints
/// each phase as a line.
pub struct PruneProgress<'a> {
    pub progress: &'a Progress,
    pub verbose: bool,
}

impl PruneObserver for PruneProgress<'_> {
    fn step(&self, what: &str) {
        self.progress.set_phase(what);
        if self.verbose {
            self.progress.println(&format!("{what}…"));
        }
    }

    fn pack_done(&self, bytes: u64) {
        self.progress.inner.bytes_read.fetch_add(bytes, Relaxed);
        self.progress.item_done(bytes);
    }

    fn warning(&self, what: &str) {
        if self.progress.mode() == Mode::Json {
            emit_json(&json!({"type": "warning", "command": "prune", "message": what}));
        } else {
            self.progress.println(&format!("warning: {what}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
