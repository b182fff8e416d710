//! Repository locks. Each process writes its own lock object `locks/<random id>` (sealed
//! JSON: host, user, pid, time, exclusive, command) and refreshes it while it runs by
//! writing a new one and removing the old — objects are never modified in place.
//! snapshot, restore and check hold shared locks; prune and key removal hold exclusive ones.
//! A lock is stale when it is older than [`LEASE_SECS`] or its process is gone on this host;
//! stale locks never block anyone, they are reported so `snapvault unlock` can remove them.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, FileKind};
use crate::crypto::Crypto;
use crate::error::{RepoError, Result};
use crate::id::Id;

pub const LEASE_SECS: i64 = 30 * 60;
const REFRESH_SECS: u64 = 5 * 60;
const MAX_LOCK_FILE: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub hostname: String,
    pub username: String,
    pub pid: u32,
    /// Unix seconds when written (refreshed).
    pub time: i64,
    pub exclusive: bool,
    pub command: String,
}

impl LockInfo {
    pub fn is_stale(&self, now: i64) -> bool {
        if now - self.time > LEASE_SECS {
            return true;
        }
        self.hostname == crate::time::hostname() && !process_alive(self.pid)
    }

    pub fn describe(&self) -> String {
        format!(
            "`snapvault {}` (pid {} on {} by {}) since {} UTC",
            self.command,
            self.pid,
            self.hostname,
            self.username,
            crate::time::format_utc(self.time)
        )
    }

    pub fn decode(crypto: &Crypto, sealed: &[u8], name: &str) -> Result<LockInfo> {
        if sealed.len() > MAX_LOCK_FILE {
            return Err(RepoError::corrupt(format!("lock {name}"), "too large"));
        }
        let plain = crypto.open(sealed, &format!("lock {name}"))?;
        serde_json::from_slice(&plain)
            .map_err(|e| RepoError::corrupt(format!("lock {name}"), e.to_string()))
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
    backend: Arc<dyn Backend>,
    current: Arc<Mutex<String>>,
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
        let now = crate::time::now_unix();
        let conflict = |locks: &[FoundLock], own: Option<&str>| -> Option<String> {
            for l in locks {
                if Some(l.name.as_str()) == own {
                    continue;
                }
                match &l.info {
                    Some(i) if i.is_stale(now) => {}
                    Some(i) if exclusive || i.exclusive => return Some(i.describe()),
                    Some(_) => {}
                    None if exclusive => {
                        return Some(format!(
                            "an unreadable lock file locks/{} (remove it with `snapvault unlock --remove-all`)",
                            l.name
                        ));
                    }
                    None => {}
                }
            }
            None
        };
        let before = list_locks(backend.as_ref(), &crypto)?;
        if let Some(holder) = conflict(&before, None) {
            return Err(RepoError::Locked(format!(
                "repository is in use by {holder}"
            )));
        }
        let stale: Vec<LockInfo> = before
            .iter()
            .filter_map(|l| l.info.clone())
            .filter(|i| i.is_stale(now))
            .collect();
        let info = LockInfo {
            hostname: crate::time::hostname(),
            username: crate::time::username(),
            pid: std::process::id(),
            time: now,
            exclusive,
            command: command.to_string(),
        };
        let name = write_lock(backend.as_ref(), &crypto, &info)?;
        // Someone may have locked at the same moment: look again, and back off on conflict.
        let after = list_locks(backend.as_ref(), &crypto)?;
        if let Some(holder) = conflict(&after, Some(&name)) {
            let _ = backend.remove(FileKind::Lock, &name);
            return Err(RepoError::Locked(format!(
                "repository is in use by {holder}"
            )));
        }
        let current = Arc::new(Mutex::new(name));
        let (tx, rx) = mpsc::channel::<()>();
        let (b2, cur2) = (backend.clone(), current.clone());
        let refresher = std::thread::spawn(move || {
            loop {
                match rx.recv_timeout(Duration::from_secs(REFRESH_SECS)) {
                    Err(RecvTimeoutError::Timeout) => {
                        let mut fresh = info.clone();
                        fresh.time = crate::time::now_unix();
                        if let Ok(new_name) = write_lock(b2.as_ref(), &crypto, &fresh)
                            && let Ok(mut cur) = cur2.lock()
                        {
                            let old = std::mem::replace(&mut *cur, new_name);
                            let _ = b2.remove(FileKind::Lock, &old);
                        }
                    }
                    _ => return,
                }
            }
        });
        Ok(LockGuard {
            backend,
            current,
            stop: Some(tx),
            refresher: Some(refresher),
            stale,
        })
    }
}

fn write_lock(backend: &dyn Backend, crypto: &Crypto, info: &LockInfo) -> Result<String> {
    let name = Id::random().to_hex();
    let bytes = crypto.seal(&serde_json::to_vec(info).unwrap_or_default());
    backend.write(FileKind::Lock, &name, &bytes)?;
    Ok(name)
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        if let Ok(name) = self.current.lock() {
            let _ = self.backend.remove(FileKind::Lock, &name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;

    #[test]
    fn shared_and_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        b.create_layout().unwrap();
        let c = Crypto::Plain;
        let s1 = LockGuard::acquire(b.clone(), c.clone(), false, "snapshot").unwrap();
        let s2 = LockGuard::acquire(b.clone(), c.clone(), false, "restore").unwrap();
        let e = LockGuard::acquire(b.clone(), c.clone(), true, "prune");
        let msg = e.err().unwrap().to_string();
        assert!(msg.contains("in use by `snapvault "), "{msg}");
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
            hostname: crate::time::hostname(),
            username: "u".into(),
            pid: 999_999_999,
            time: crate::time::now_unix(),
            exclusive: true,
            command: "prune".into(),
        };
        write_lock(b.as_ref(), &c, &dead).unwrap();
        let g = LockGuard::acquire(b.clone(), c.clone(), true, "prune").unwrap();
        assert_eq!(g.stale.len(), 1);
    }
}
