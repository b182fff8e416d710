//! A fault-injecting [`Backend`] wrapper for crash tests.
//!
//! It counts the operations it is told to watch (writes, removes, reads, lists, of the file
//! kinds given) and makes the N-th one fail — before or after doing it — or kills the
//! process there. Once a fault has fired, every later operation fails too: the process is
//! considered dead, so no clean-up code can run after the "crash". Lock files are exempt
//! (neither counted nor failed), so the harness can release its lock and re-run.
//!
//! The binary reads `SNAPVAULT_TEST_FAULT` (see [`FaultyBackend::from_spec`]) in `prune`
//! and `forget`, so end-to-end tests can kill it at exact moments.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use crate::backend::{Backend, FileInfo, FileKind};
use crate::error::{RepoError, Result};

/// The operations a fault can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Remove,
    List,
}

/// What happens at the chosen operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Return an error without doing the operation.
    FailBefore,
    /// Do the operation, then return an error (it completed, but the process died).
    FailAfter,
    /// SIGKILL the process before the operation.
    KillBefore,
    /// SIGKILL the process right after the operation completed.
    KillAfter,
}

pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    ops: Vec<Op>,
    kinds: Vec<FileKind>,
    /// 1-based number of the watched operation that fails; 0 = never.
    at: u64,
    effect: Effect,
    count: AtomicU64,
    dead: AtomicBool,
}

const DATA_KINDS: [FileKind; 4] = [
    FileKind::Pack,
    FileKind::Index,
    FileKind::Snapshot,
    FileKind::Key,
];

impl FaultyBackend {
    /// A pass-through wrapper that counts writes and removes of packs, index files,
    /// snapshots and keys, and never fails.
    pub fn new(inner: Arc<dyn Backend>) -> FaultyBackend {
        FaultyBackend {
            inner,
            ops: vec![Op::Write, Op::Remove],
            kinds: DATA_KINDS.to_vec(),
            at: 0,
            effect: Effect::FailBefore,
            count: AtomicU64::new(0),
            dead: AtomicBool::new(false),
        }
    }

    /// Watch these operations instead.
    pub fn watching(mut self, ops: &[Op]) -> Self {
        self.ops = ops.to_vec();
        self
    }

    /// Watch only these file kinds (locks are never watched).
    pub fn kinds(mut self, kinds: &[FileKind]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }

    /// Fire at the `n`-th watched operation (1-based).
    pub fn fail_at(mut self, n: u64, effect: Effect) -> Self {
        self.at = n;
        self.effect = effect;
        self
    }

    /// Parse `OPS@N[:EFFECT]`: OPS is `write`, `remove`, `read`, `list` or `all`, joined by
    /// `+` or `,`; EFFECT is `fail`, `fail-after`, `kill` (default) or `kill-after`. For
    /// example `write+remove@7:kill-after`.
    pub fn from_spec(inner: Arc<dyn Backend>, spec: &str) -> Result<FaultyBackend> {
        let bad = || {
            RepoError::Invalid(format!(
                "invalid fault spec {spec:?}: expected OPS@N[:EFFECT]"
            ))
        };
        let (ops, rest) = spec.split_once('@').ok_or_else(bad)?;
        let (n, effect) = match rest.split_once(':') {
            Some((n, e)) => (n, e),
            None => (rest, "kill"),
        };
        let mut list = Vec::new();
        for o in ops.split(['+', ',']) {
            match o.trim() {
                "write" => list.push(Op::Write),
                "remove" => list.push(Op::Remove),
                "read" => list.push(Op::Read),
                "list" => list.push(Op::List),
                "all" => list.extend([Op::Write, Op::Remove, Op::Read, Op::List]),
                _ => return Err(bad()),
            }
        }
        let effect = match effect.trim() {
            "fail" => Effect::FailBefore,
            "fail-after" => Effect::FailAfter,
            "kill" => Effect::KillBefore,
            "kill-after" => Effect::KillAfter,
            _ => return Err(bad()),
        };
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        Ok(FaultyBackend::new(inner).watching(&list).fail_at(n, effect))
    }

    /// Watched operations seen so far (including the one that fired).
    pub fn count(&self) -> u64 {
        self.count.load(SeqCst)
    }

    /// Has the fault fired?
    pub fn fired(&self) -> bool {
        self.dead.load(SeqCst)
    }

    fn dead_error() -> RepoError {
        RepoError::Interrupted("injected fault: the process is considered dead".into())
    }

    /// Run one operation through the fault logic.
    fn op<T>(&self, op: Op, kind: Option<FileKind>, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if kind == Some(FileKind::Lock) {
            return f();
        }
        if self.dead.load(SeqCst) {
            return Err(Self::dead_error());
        }
        let watched = self.ops.contains(&op) && kind.is_none_or(|k| self.kinds.contains(&k));
        if !watched {
            return f();
        }
        let n = self.count.fetch_add(1, SeqCst) + 1;
        if n != self.at {
            return f();
        }
        self.dead.store(true, SeqCst);
        match self.effect {
            Effect::FailBefore => Err(Self::dead_error()),
            Effect::FailAfter => {
                let _ = f();
                Err(Self::dead_error())
            }
            Effect::KillBefore => kill_self(),
            Effect::KillAfter => {
                let _ = f();
                kill_self()
            }
        }
    }
}

fn kill_self() -> ! {
    // SAFETY: sending a signal to our own process.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

impl Backend for FaultyBackend {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        self.op(Op::Read, Some(kind), || self.inner.exists(kind, name))
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.op(Op::Read, Some(kind), || self.inner.read(kind, name))
    }
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.op(Op::Read, Some(kind), || {
            self.inner.read_range(kind, name, offset, len)
        })
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.op(Op::Write, Some(kind), || self.inner.write(kind, name, data))
    }
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        self.op(Op::List, Some(kind), || self.inner.list(kind))
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.op(Op::Read, Some(kind), || self.inner.size(kind, name))
    }
    fn age_secs(&self, kind: FileKind, name: &str) -> Result<Option<u64>> {
        self.op(Op::Read, Some(kind), || self.inner.age_secs(kind, name))
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.op(Op::Remove, Some(kind), || self.inner.remove(kind, name))
    }
    fn create_layout(&self) -> Result<()> {
        self.op(Op::Write, None, || self.inner.create_layout())
    }
    fn leftover_temp_files(&self) -> Result<Vec<FileInfo>> {
        self.op(Op::List, None, || self.inner.leftover_temp_files())
    }
    fn remove_leftover_temp_files(&self, min_age_secs: u64) -> Result<usize> {
        self.op(Op::Remove, None, || {
            self.inner.remove_leftover_temp_files(min_age_secs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;

    #[test]
    fn fires_once_then_stays_dead() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        local.create_layout().unwrap();
        let f = FaultyBackend::new(local.clone()).fail_at(2, Effect::FailAfter);
        let a = "aa".repeat(32);
        let b = "bb".repeat(32);
        f.write(FileKind::Pack, &a, b"1").unwrap();
        // Locks are exempt.
        f.write(FileKind::Lock, &a, b"l").unwrap();
        assert!(f.write(FileKind::Pack, &b, b"2").is_err());
        assert!(f.fired());
        // FailAfter: the write happened.
        assert_eq!(local.read(FileKind::Pack, &b).unwrap(), b"2");
        assert!(f.read(FileKind::Pack, &a).is_err());
        assert!(f.list(FileKind::Pack).is_err());
        f.remove(FileKind::Lock, &a).unwrap();
        assert_eq!(f.count(), 2);

        let g = FaultyBackend::from_spec(local.clone(), "remove@1:fail").unwrap();
        g.write(FileKind::Pack, &"cc".repeat(32), b"3").unwrap();
        assert!(g.remove(FileKind::Pack, &a).is_err());
        assert!(local.exists(FileKind::Pack, &a).unwrap());
        assert!(FaultyBackend::from_spec(local.clone(), "nope@1").is_err());
        assert!(FaultyBackend::from_spec(local, "write@x").is_err());
    }
}
