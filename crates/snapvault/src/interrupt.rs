//! Ctrl-C (SIGINT) and SIGTERM during `snapshot`. The first asks the run to stop reading and
//! save what it has as a partial snapshot (as an unplugged phone does); a second ends the
//! process at once, after removing its repository lock. The exit code is 128 + the signal
//! number: 130 for Ctrl-C, 143 for SIGTERM.
//!
//! The handler itself only writes the signal number into a pipe (async-signal-safe); a
//! watcher thread reads it and does the rest.

use std::sync::atomic::{AtomicI32, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};

use snapvault_repo::lock::LockHandle;
use snapvault_repo::stop::Stop;

/// Write end of the pipe the handler writes into (-1 until installed).
static PIPE: AtomicI32 = AtomicI32::new(-1);
/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static STATE: OnceLock<Shared> = OnceLock::new();
/// What the first signal says the run does now (default: a snapshot saving what it read).
static FIRST_NOTE: OnceLock<&'static str> = OnceLock::new();

struct Shared {
    stop: Arc<Stop>,
    /// The lock to remove when a second signal ends the process.
    lock: Mutex<Option<LockHandle>>,
}

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE.load(SeqCst);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; one byte from a valid local.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// Catch SIGINT and SIGTERM from now on (once per process); returns the stop request the
/// run polls. If the handlers cannot be installed, the signals keep their default action.
pub fn catch() -> Arc<Stop> {
    let shared = STATE.get_or_init(|| {
        let s = Shared {
            stop: Arc::new(Stop::default()),
            lock: Mutex::new(None),
        };
        install();
        s
    });
    shared.stop.clone()
}

/// Say this, instead of the snapshot's "saving what was read so far", when the first
/// signal arrives (a command that simply ends, such as `browse`).
pub fn first_note(note: &'static str) {
    let _ = FIRST_NOTE.set(note);
}

/// Remove this lock if a second signal ends the process at once.
pub fn guard_lock(h: LockHandle) {
    if let Some(s) = STATE.get()
        && let Ok(mut g) = s.lock.lock()
    {
        *g = Some(h);
    }
}

/// The signal that asked us to stop, if one did.
pub fn received() -> Option<i32> {
    match RECEIVED.load(SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The exit code for a run ended by `signal`.
pub fn exit_code(signal: i32) -> i32 {
    128 + signal
}

/// How a signal reads in messages.
pub fn describe(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "interrupted (Ctrl-C)",
        libc::SIGTERM => "stopped by SIGTERM",
        _ => "stopped by a signal",
    }
}

fn install() {
    use std::os::fd::IntoRawFd;
    // std's pipe is close-on-exec everywhere (libc's pipe2 does not exist on macOS).
    let Ok((reader, writer)) = std::io::pipe() else {
        return;
    };
    let (read_fd, write_fd) = (reader.into_raw_fd(), writer.into_raw_fd());
    PIPE.store(write_fd, SeqCst);
    if std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || watch(read_fd))
        .is_err()
    {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with our handler; SA_RESTART so that reads and writes
        // on other threads go on instead of failing with EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn watch(fd: libc::c_int) {
    loop {
        let mut b = 0u8;
        // SAFETY: reading one byte into a local from our own pipe.
        let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        if n != 1 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        let sig = i32::from(b);
        let Some(s) = STATE.get() else { continue };
        if RECEIVED.compare_exchange(0, sig, SeqCst, SeqCst).is_ok() {
            s.stop.request(describe(sig));
            let note = FIRST_NOTE.get().copied().unwrap_or(
                "stopping, saving what was read so far (press Ctrl-C again to quit at once)",
            );
            eprintln!("\n{}: {note}", describe(sig));
            continue;
        }
        eprintln!("\n{}: quitting at once", describe(sig));
        if let Some(h) = s.lock.lock().ok().and_then(|mut g| g.take()) {
            h.release();
        }
        std::process::exit(exit_code(sig));
    }
}
