//! Repository locks. Each process writes its own lock object `locks/<random id>` (sealed
//! JSON: host, user, pid, time, exclusive, command) and refreshes it while it runs by
//! writing a new one and removing the old — objects are never modified in place.
//! snapshot, restore and check hold shared locks; prune and key removal hold exclusive ones.
//! A lock is stale when it is older than `LEASE_SECS` or its process is gone on this host;
//! stale locks never block anyone, they are reported so `snapvault unlock` can remove them.
//!
//! Exclusive locks are first serialised by one fixed object, `locks/exclusive`, created with
//! the backend's atomic create (link(2) locally, `If-None-Match: *` on S3, O_EXCL on SFTP),
//! so that of many processes racing for an exclusive lock exactly one goes on. The winner
//! then writes its own lock object and lists: any other live lock makes it back off. Shared
//! lockers write theirs and list too, so of a shared and an exclusive locker racing, at least
//! one sees the other (each writes before it lists). The marker is never refreshed; a marker
//! older than the lease is stale and may be replaced, which is safe because the refreshed
//! lock objects, not the marker, carry the exclusion.

use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{LockHolder, LockLoss, RepoError, Result};
use crate::format::crypto::Crypto;
use crate::format::id::Id;
use crate::storage::{Backend, FileKind};

pub(crate) const LEASE_SECS: i64 = 30 * 60;
/// The name of the object that serialises exclusive lockers.
pub(crate) const EXCLUSIVE_MARKER: &str = "exclusive";
/// An unreadable marker younger than this may be one being written (SFTP writes in place).
const UNREADABLE_MARKER_GRACE_SECS: u64 = 60;
const REFRESH_SECS: u64 = 5 * 60;

pub use crate::format::lock_file::LockInfo;

/// The locking rules for a lock file's contents (its format is `format::lock_file`).
impl LockInfo {
    pub fn is_stale(&self, now: i64) -> bool {
        if now - self.time > LEASE_SECS {
            return true;
        }
        self.hostname == crate::format::time::hostname() && !process_alive(self.pid)
    }

    /// Who holds this lock, for a refusal ([`RepoError::Locked`]) or a note.
    pub fn holder(&self) -> LockHolder {
        LockHolder {
            command: self.command.clone(),
            pid: self.pid,
            hostname: self.hostname.clone(),
            username: self.username.clone(),
            time: self.time,
            since: crate::format::time::format_utc(self.time),
        }
    }

    pub fn describe(&self) -> String {
        self.holder().to_string()
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// A lock found in the repository.
#[derive(Clone, Debug)]
pub struct FoundLock {
    pub name: String,
    /// None when the lock file cannot be read (damaged).
    pub info: Option<LockInfo>,
}

pub fn list_locks(backend: &dyn Backend, crypto: &Crypto) -> Result<Vec<FoundLock>> {
    let mut out = Vec::new();
    for f in backend.list(FileKind::Lock)? {
        let info = match backend.read(FileKind::Lock, &f.name) {
            Ok(b) => LockInfo::decode(crypto, &b, &f.name).ok(),
            // Removed meanwhile: the holder finished.
            Err(_) if !backend.exists(FileKind::Lock, &f.name).unwrap_or(true) => continue,
            Err(_) => None,
        };
        out.push(FoundLock { name: f.name, info });
    }
    Ok(out)
}

/// A held lock; dropping it stops the refresher and removes the lock object.
pub struct LockGuard {
    held: LockHandle,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
    /// Stale locks seen while locking (for a hint to run `snapvault unlock`).
    pub stale: Vec<LockInfo>,
}

impl LockGuard {
    pub fn acquire(
        backend: Arc<dyn Backend>,
        crypto: Crypto,
        exclusive: bool,
        command: &str,
    ) -> Result<LockGuard> {
        let now = crate::format::time::now_unix();
        let conflict = |locks: &[FoundLock], own: Option<&str>| -> Option<RepoError> {
            for l in locks {
                if Some(l.name.as_str()) == own || l.name == EXCLUSIVE_MARKER {
                    continue;
                }
                match &l.info {
                    Some(i) if i.is_stale(now) => {}
                    Some(i) if exclusive || i.exclusive => {
                        return Some(RepoError::Locked {
                            holder: Some(Box::new(i.holder())),
                        });
                    }
                    Some(_) => {}
                    None if exclusive => {
                        return Some(RepoError::LockUnreadable {
                            file: l.name.clone(),
                            marker: false,
                        });
                    }
                    None => {}
                }
            }
            None
        };
        let before = list_locks(backend.as_ref(), &crypto)?;
        if let Some(e) = conflict(&before, None) {
            return Err(e);
        }
        let stale: Vec<LockInfo> = before
            .iter()
            .filter_map(|l| l.info.clone())
            .filter(|i| i.is_stale(now))
            .collect();
        let info = LockInfo {
            hostname: crate::format::time::hostname(),
            username: crate::format::time::username(),
            pid: std::process::id(),
            time: now,
            exclusive,
            command: command.to_string(),
        };
        let marker = if exclusive {
            Some(take_marker(backend.as_ref(), &crypto, &info, now)?)
        } else {
            None
        };
        let name = match write_lock(backend.as_ref(), &crypto, &info) {
            Ok(n) => n,
            Err(e) => {
                release_marker(backend.as_ref(), marker.as_deref());
                return Err(e);
            }
        };
        // Someone may have locked at the same moment: look again, and back off on conflict.
        let after = match list_locks(backend.as_ref(), &crypto) {
            Ok(a) => a,
            Err(e) => {
                let _ = backend.remove(FileKind::Lock, &name);
                release_marker(backend.as_ref(), marker.as_deref());
                return Err(e);
            }
        };
        if let Some(holder) = conflict(&after, Some(&name)) {
            let _ = backend.remove(FileKind::Lock, &name);
            release_marker(backend.as_ref(), marker.as_deref());
            return Err(holder);
        }
        let held = LockHandle {
            backend,
            current: Arc::new(Mutex::new(name)),
            marker,
            written: Arc::new(AtomicI64::new(now)),
            lost: Arc::new(Mutex::new(None)),
        };
        let (tx, rx) = mpsc::channel::<()>();
        let h2 = held.clone();
        let refresher = std::thread::spawn(move || {
            loop {
                match rx.recv_timeout(Duration::from_secs(REFRESH_SECS)) {
                    Err(RecvTimeoutError::Timeout) => h2.refresh(&crypto, &info),
                    _ => return,
                }
            }
        });
        Ok(LockGuard {
            held,
            stop: Some(tx),
            refresher: Some(refresher),
            stale,
        })
    }

    /// A handle on this lock for other threads: whether it may have been lost, and a way to
    /// remove it when the process must end at once (a second Ctrl-C).
    pub fn handle(&self) -> LockHandle {
        self.held.clone()
    }
}

/// The shared state of a held lock; see [`LockGuard::handle`].
#[derive(Clone)]
pub struct LockHandle {
    backend: Arc<dyn Backend>,
    /// The name of our current lock object (it changes with each refresh).
    current: Arc<Mutex<String>>,
    /// The sealed bytes of our `locks/exclusive` marker, when we hold it.
    marker: Option<Vec<u8>>,
    /// When our lock object was last written (Unix seconds, wall clock: a suspended
    /// machine's monotonic clock stops, but other hosts judge staleness by wall time).
    written: Arc<AtomicI64>,
    /// Why the lock may have been lost, once known; never cleared, since what others did
    /// while it was lost cannot be undone by refreshing it again.
    lost: Arc<Mutex<Option<LockLoss>>>,
}

impl LockHandle {
    fn refresh(&self, crypto: &Crypto, info: &LockInfo) {
        let now = crate::format::time::now_unix();
        if let Some(why) = gap(self.written.load(SeqCst), now) {
            self.mark_lost(why);
        }
        let mut fresh = info.clone();
        fresh.time = now;
        match write_lock(self.backend.as_ref(), crypto, &fresh) {
            Ok(new_name) => {
                self.written.store(now, SeqCst);
                if let Ok(mut cur) = self.current.lock() {
                    let old = std::mem::replace(&mut *cur, new_name);
                    let _ = self.backend.remove(FileKind::Lock, &old);
                }
            }
            Err(e) => self.mark_lost(LockLoss::RefreshFailed {
                reason: e.to_string(),
            }),
        }
    }

    fn mark_lost(&self, why: LockLoss) {
        if let Ok(mut g) = self.lost.lock()
            && g.is_none()
        {
            *g = Some(why);
        }
    }

    /// Why other processes may have taken this lock as stale (and, say, pruned data this
    /// process relies on), or `None` while it is known to have held: a failed refresh, a
    /// gap longer than the lease since it was last written (a suspended laptop), or our
    /// lock object gone from the repository (removed by `snapvault unlock`).
    pub fn lost(&self) -> Option<LockLoss> {
        self.lost_at(crate::format::time::now_unix())
    }

    /// [`LockHandle::lost`] as judged at `now` (Unix seconds).
    pub(crate) fn lost_at(&self, now: i64) -> Option<LockLoss> {
        if let Some(why) = self.lost.lock().ok().and_then(|g| g.clone()) {
            return Some(why);
        }
        if let Some(why) = gap(self.written.load(SeqCst), now) {
            self.mark_lost(why.clone());
            return Some(why);
        }
        let name = self.current.lock().ok()?.clone();
        let why = match self.backend.exists(FileKind::Lock, &name) {
            Ok(true) => return None,
            Ok(false) => LockLoss::Removed { name },
            Err(e) => LockLoss::Unverifiable {
                reason: e.to_string(),
            },
        };
        self.mark_lost(why.clone());
        Some(why)
    }

    /// Remove the lock object (and the exclusive marker) now. The refresher may still write
    /// one more before the process ends; that one is stale as soon as the process is gone.
    pub fn release(&self) {
        if let Ok(name) = self.current.lock() {
            let _ = self.backend.remove(FileKind::Lock, &name);
        }
        // Lock object first, then the marker: a marker without a lock object is harmless.
        release_marker(self.backend.as_ref(), self.marker.as_deref());
    }
}

/// The lock went unrefreshed for longer than the lease when it was last written at
/// `written` and it is now `now`.
fn gap(written: i64, now: i64) -> Option<LockLoss> {
    let secs = now - written;
    (secs > LEASE_SECS).then_some(LockLoss::NotRefreshed { minutes: secs / 60 })
}

/// Create `locks/exclusive` atomically; returns the sealed bytes written (to recognise our
/// own marker later). A live marker of someone else is a conflict; a stale one is replaced.
fn take_marker(
    backend: &dyn Backend,
    crypto: &Crypto,
    info: &LockInfo,
    now: i64,
) -> Result<Vec<u8>> {
    // A random nonce makes our marker recognisable even among lockers that share a pid and
    // a clock second (threads of one process) or an unencrypted repository's sealing.
    let mut doc = serde_json::to_value(info).unwrap_or_default();
    if let Some(m) = doc.as_object_mut() {
        m.insert("nonce".into(), Id::random().to_hex().into());
    }
    let bytes = crypto.seal(&serde_json::to_vec(&doc).unwrap_or_default());
    for _ in 0..3 {
        match backend.write(FileKind::Lock, EXCLUSIVE_MARKER, &bytes) {
            Ok(()) => return Ok(bytes),
            Err(RepoError::FileExists(_)) => {}
            Err(e) => return Err(e),
        }
        let found = match backend.read(FileKind::Lock, EXCLUSIVE_MARKER) {
            Ok(b) => b,
            // Released meanwhile: try again.
            Err(_) if !backend.exists(FileKind::Lock, EXCLUSIVE_MARKER)? => continue,
            Err(e) => return Err(e),
        };
        // A create that was retried after its reply got lost finds its own marker.
        if found == bytes {
            return Ok(bytes);
        }
        match LockInfo::decode(crypto, &found, EXCLUSIVE_MARKER) {
            Ok(holder) if !holder.is_stale(now) => {
                return Err(RepoError::Locked {
                    holder: Some(Box::new(holder.holder())),
                });
            }
            Ok(_) => {}
            Err(_) => {
                let age = backend.age_secs(FileKind::Lock, EXCLUSIVE_MARKER)?;
                if age.is_none_or(|a| a < UNREADABLE_MARKER_GRACE_SECS) {
                    return Err(RepoError::LockUnreadable {
                        file: EXCLUSIVE_MARKER.to_string(),
                        marker: true,
                    });
                }
            }
        }
        // Stale: its holder is gone. Remove it and race again.
        match backend.remove(FileKind::Lock, EXCLUSIVE_MARKER) {
            Ok(()) => {}
            Err(_) if !backend.exists(FileKind::Lock, EXCLUSIVE_MARKER)? => {}
            Err(e) => return Err(e),
        }
    }
    Err(RepoError::Locked { holder: None })
}

/// Remove our marker, unless someone replaced it meanwhile.
fn release_marker(backend: &dyn Backend, ours: Option<&[u8]>) {
    let Some(ours) = ours else { return };
    if backend
        .read(FileKind::Lock, EXCLUSIVE_MARKER)
        .is_ok_and(|b| b == ours)
    {
        let _ = backend.remove(FileKind::Lock, EXCLUSIVE_MARKER);
    }
}

fn write_lock(backend: &dyn Backend, crypto: &Crypto, info: &LockInfo) -> Result<String> {
    let name = Id::random().to_hex();
    let bytes = info.seal(crypto);
    backend.write(FileKind::Lock, &name, &bytes)?;
    Ok(name)
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        self.held.release();
    }
}

/// Race `n` threads for an exclusive lock (released by a barrier); returns how many got it.
/// Used by the local unit test and by the remote backends' tests against real servers.
pub fn race_exclusive(backend: &Arc<dyn Backend>, n: usize) -> usize {
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let held = Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (b, barrier, held) = (backend.clone(), barrier.clone(), held.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let g = LockGuard::acquire(b, Crypto::Plain, true, "prune");
                // Hold until everyone has tried, so a late starter cannot win after release.
                held.wait();
                g.is_ok()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or(false))
        .filter(|&w| w)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalBackend;

    #[test]
    fn shared_and_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        b.create_layout().unwrap();
        let c = Crypto::Plain;
        let s1 = LockGuard::acquire(b.clone(), c.clone(), false, "snapshot").unwrap();
        let s2 = LockGuard::acquire(b.clone(), c.clone(), false, "restore").unwrap();
        let e = LockGuard::acquire(b.clone(), c.clone(), true, "prune")
            .err()
            .unwrap();
        let msg = e.to_string();
        assert!(
            msg.starts_with("repository is in use by `snapvault "),
            "{msg}"
        );
        // The holder is in the kind's fields, not only in the text.
        let RepoError::Locked { holder: Some(h) } = e else {
            panic!("{e:?}")
        };
        assert!(
            ["snapshot", "restore"].contains(&h.command.as_str()),
            "{h:?}"
        );
        assert_eq!(h.pid, std::process::id(), "{h:?}");
        drop((s1, s2));
        assert!(b.list(FileKind::Lock).unwrap().is_empty());
        let ex = LockGuard::acquire(b.clone(), c.clone(), true, "prune").unwrap();
        assert!(LockGuard::acquire(b.clone(), c.clone(), false, "snapshot").is_err());
        drop(ex);
    }

    #[test]
    fn stale_locks_do_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        b.create_layout().unwrap();
        let c = Crypto::Plain;
        let dead = LockInfo {
            hostname: crate::format::time::hostname(),
            username: "u".into(),
            pid: 999_999_999,
            time: crate::format::time::now_unix(),
            exclusive: true,
            command: "prune".into(),
        };
        write_lock(b.as_ref(), &c, &dead).unwrap();
        let g = LockGuard::acquire(b.clone(), c.clone(), true, "prune").unwrap();
        assert_eq!(g.stale.len(), 1);
    }

    #[test]
    fn a_gap_past_the_lease_or_a_removed_lock_object_means_lost() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        b.create_layout().unwrap();
        let g = LockGuard::acquire(b.clone(), Crypto::Plain, false, "snapshot").unwrap();
        let h = g.handle();
        let now = crate::format::time::now_unix();
        assert_eq!(h.lost_at(now), None);
        assert_eq!(h.lost_at(now + LEASE_SECS - 5), None);
        // Woken after a long sleep: lost, and it stays lost even after a refresh.
        let why = h.lost_at(now + LEASE_SECS + 120).unwrap();
        assert_eq!(why, LockLoss::NotRefreshed { minutes: 32 });
        assert!(
            why.to_string().contains("not refreshed for 32 minutes"),
            "{why}"
        );
        assert_eq!(h.lost_at(now), Some(why));

        let g2 = LockGuard::acquire(b.clone(), Crypto::Plain, false, "snapshot").unwrap();
        let h2 = g2.handle();
        for l in b.list(FileKind::Lock).unwrap() {
            b.remove(FileKind::Lock, &l.name).unwrap();
        }
        let why = h2.lost().unwrap();
        assert!(matches!(why, LockLoss::Removed { .. }), "{why:?}");
        assert!(
            why.to_string().contains("was removed by someone else"),
            "{why}"
        );
        drop((g, g2));
    }

    #[test]
    fn exclusive_race_has_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        b.create_layout().unwrap();
        let winners = race_exclusive(&b, 16);
        assert_eq!(winners, 1);
        // Everything released: the next exclusive locker gets in.
        assert!(b.list(FileKind::Lock).unwrap().is_empty());
        drop(LockGuard::acquire(b.clone(), Crypto::Plain, true, "prune").unwrap());
    }

    #[test]
    fn stale_marker_is_replaced_and_live_one_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        b.create_layout().unwrap();
        let c = Crypto::Plain;
        let mut dead = LockInfo {
            hostname: crate::format::time::hostname(),
            username: "u".into(),
            pid: 999_999_999,
            time: crate::format::time::now_unix(),
            exclusive: true,
            command: "prune".into(),
        };
        let sealed = c.seal(&serde_json::to_vec(&dead).unwrap());
        b.write(FileKind::Lock, EXCLUSIVE_MARKER, &sealed).unwrap();
        let g = LockGuard::acquire(b.clone(), c.clone(), true, "prune").unwrap();
        drop(g);
        assert!(!b.exists(FileKind::Lock, EXCLUSIVE_MARKER).unwrap());
        // A live holder on another host blocks, and is named.
        dead.hostname = "elsewhere".into();
        let sealed = c.seal(&serde_json::to_vec(&dead).unwrap());
        b.write(FileKind::Lock, EXCLUSIVE_MARKER, &sealed).unwrap();
        let msg = LockGuard::acquire(b.clone(), c.clone(), true, "prune")
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("elsewhere"), "{msg}");
        // Shared lockers are not blocked by a marker without a lock object.
        drop(LockGuard::acquire(b.clone(), c, false, "snapshot").unwrap());
    }
}
