//! Turning the counters into a bar or a JSON line: rates over a moving window, the ETA,
//! the bar's line fitted to the terminal, and the ticker thread that draws them.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Inner, Mode};
use crate::fmt;

/// Moving window of (time, bytes) samples for rates.
#[derive(Default)]
pub(super) struct Window(VecDeque<(Instant, u64)>);

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

pub(super) struct Snapshot {
    pub(super) elapsed: Duration,
    pub(super) items_done: u64,
    pub(super) items_total: Option<u64>,
    pub(super) bytes_done: u64,
    pub(super) bytes_total: Option<u64>,
    pub(super) bytes_read: u64,
    pub(super) read_rate: f64,
    pub(super) transfer: Option<(u64, f64)>,
    pub(super) eta: Option<Duration>,
    pub(super) percent: Option<f64>,
    pub(super) totals_final: bool,
    pub(super) current: String,
    pub(super) phase: String,
    pub(super) errors: u64,
}

pub(super) struct Rates {
    pub(super) read: Window,
    pub(super) done: Window,
    pub(super) transfer: Window,
}

pub(super) fn sample(i: &Inner, r: &mut Rates) -> Snapshot {
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

pub(super) fn eta_text(d: Duration) -> String {
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
pub(super) fn bar_message(i: &Inner, s: &Snapshot) -> String {
    fit_line(&bar_parts(i, s), &s.current, terminal_width())
}

pub(super) fn bar_parts(i: &Inner, s: &Snapshot) -> Vec<String> {
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
pub(super) const BAR: usize = 12;

/// Join `parts` (most important first) and then `current`, within `width` columns: a part
/// that does not fit is skipped; `current` is shortened from the left (`…IMG_0001.HEIC`).
pub(super) fn fit_line(parts: &[String], current: &str, width: usize) -> String {
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
pub(super) fn terminal_width() -> usize {
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
pub(super) fn json_line(i: &Inner, s: &Snapshot, last: bool) -> serde_json::Value {
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

pub(super) fn emit_json(v: &serde_json::Value) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{v}");
}

pub(super) fn tick_loop(i: &Inner) {
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
