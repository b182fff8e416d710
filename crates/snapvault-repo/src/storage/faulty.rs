//! A fault-injecting [`Backend`] wrapper for crash tests.
//!
//! It counts the operations it is told to watch (writes, removes, reads, lists, of the file
//! kinds given) and makes the N-th one fail — before or after doing it — or kills the
//! process there. Once a crash-like fault (`Fail*`, `Kill*`) has fired, every later
//! operation fails too: the process is considered dead, so no clean-up code can run after
//! the "crash". The OS-error faults (`Errno*`, `ShortWrite`) model a process that lives on:
//! one operation fails with `ENOSPC`, `EACCES`, `EIO`… (or, for a full disk, every watched
//! operation from then on), and the code's own error handling runs. Lock files are exempt
//! (neither counted nor failed), so the harness can release its lock and re-run.
//!
//! How the steps of a local write map onto faults: a failed open/write/fsync of the
//! temporary file or a failed link/rename is `FailBefore`/`Errno` (nothing visible) or
//! `ShortWrite` (half the data left in a `.tmp-*` file, as a crash mid-write leaves it); a
//! failed fsync of the folder after the link is `FailAfter`/`ErrnoAfter` (the object is
//! there, the caller sees an error).
//!
//! Test builds only (the `test-faults` feature). The binary built for tests reads
//! `SNAPVAULT_TEST_FAULT` (see [`FaultyBackend::from_spec`] and [`crate::storage::testhooks`]) in
//! `prune`, `forget` and `copy`, and in every command on a repository with parity, so
//! end-to-end tests can kill it at exact moments.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use crate::error::{Interruption, RepoError, Result};
use crate::storage::{Backend, FileInfo, FileKind};

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
    /// Return this OS error (`libc::ENOSPC`, `EACCES`, `EIO`…) without doing the
    /// operation; the process lives on and later operations succeed.
    Errno(i32),
    /// Do the operation, then return this OS error (say, the folder fsync after the link
    /// failed); the process lives on.
    ErrnoAfter(i32),
    /// From the chosen operation on, every watched operation fails with this OS error
    /// without being done: a disk that filled up stays full.
    ErrnoFromThenOn(i32),
    /// A write that stops half-way with `ENOSPC`: the object is not written, and half of
    /// its bytes are left in a `.tmp-*` file beside it (with [`FaultyBackend::local_root`]
    /// set). Other operations: like `Errno(ENOSPC)`.
    ShortWrite,
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
    /// Set once an `ErrnoFromThenOn` fault fired.
    stuck: AtomicBool,
    local_root: Option<PathBuf>,
}

/// Every kind but locks: with parity, its files and the config are write points too.
const DATA_KINDS: [FileKind; 6] = [
    FileKind::Pack,
    FileKind::Index,
    FileKind::Snapshot,
    FileKind::Key,
    FileKind::Config,
    FileKind::Parity,
];

impl FaultyBackend {
    /// A pass-through wrapper that counts writes and removes of packs, index files,
    /// snapshots, keys, the config and parity files, and never fails.
    pub fn new(inner: Arc<dyn Backend>) -> FaultyBackend {
        FaultyBackend {
            inner,
            ops: vec![Op::Write, Op::Remove],
            kinds: DATA_KINDS.to_vec(),
            at: 0,
            effect: Effect::FailBefore,
            count: AtomicU64::new(0),
            dead: AtomicBool::new(false),
            stuck: AtomicBool::new(false),
            local_root: None,
        }
    }

    /// The folder of the wrapped [`crate::storage::LocalBackend`], where `ShortWrite`
    /// leaves its partial temporary file.
    pub fn local_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.local_root = Some(root.into());
        self
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
    /// `+` or `,`; EFFECT is `fail`, `fail-after`, `kill` (default), `kill-after`, `enospc`
    /// (the disk is full from then on), `eacces`, `eio`, `eio-after` or `short` (a short
    /// write). For example `write+remove@7:kill-after`.
    pub(crate) fn from_spec(inner: Arc<dyn Backend>, spec: &str) -> Result<FaultyBackend> {
        let bad = || RepoError::BadFaultSpec {
            spec: spec.to_string(),
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
            "enospc" => Effect::ErrnoFromThenOn(libc::ENOSPC),
            "eacces" => Effect::Errno(libc::EACCES),
            "eio" => Effect::Errno(libc::EIO),
            "eio-after" => Effect::ErrnoAfter(libc::EIO),
            "short" => Effect::ShortWrite,
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
        self.dead.load(SeqCst) || (self.at > 0 && self.count.load(SeqCst) >= self.at)
    }

    fn dead_error() -> RepoError {
        Interruption::InjectedFault.into()
    }

    fn os_error(op: Op, kind: Option<FileKind>, name: &str, code: i32) -> RepoError {
        let what = kind.map(|k| k.name()).unwrap_or("repository");
        RepoError::io(
            format!("{op:?} of {what} {name} (injected fault)").to_lowercase(),
            io::Error::from_raw_os_error(code),
        )
    }

    /// Leave half of `data` in a temporary file where the local backend would write it.
    fn leave_partial(&self, kind: FileKind, name: &str, data: &[u8]) {
        let Some(root) = &self.local_root else { return };
        let dir = match kind {
            FileKind::Config => root.clone(),
            FileKind::Pack => root.join("data").join(name.get(..2).unwrap_or("00")),
            _ => root.join(kind.dir()),
        };
        let _ = std::fs::create_dir_all(&dir);
        let tmp = dir.join(format!(".tmp-{}", crate::format::id::Id::random().short()));
        let _ = std::fs::write(tmp, &data[..data.len() / 2]);
    }

    /// Run one operation through the fault logic.
    fn op<T>(&self, op: Op, kind: Option<FileKind>, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.op_named(op, kind, "", None, f)
    }

    fn op_named<T>(
        &self,
        op: Op,
        kind: Option<FileKind>,
        name: &str,
        data: Option<&[u8]>,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
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
        if self.stuck.load(SeqCst)
            && let Effect::ErrnoFromThenOn(code) = self.effect
        {
            return Err(Self::os_error(op, kind, name, code));
        }
        if n != self.at {
            return f();
        }
        match self.effect {
            Effect::Errno(code) => {
                return Err(Self::os_error(op, kind, name, code));
            }
            Effect::ErrnoAfter(code) => {
                let _ = f();
                return Err(Self::os_error(op, kind, name, code));
            }
            Effect::ErrnoFromThenOn(code) => {
                self.stuck.store(true, SeqCst);
                return Err(Self::os_error(op, kind, name, code));
            }
            Effect::ShortWrite => {
                if let (Some(k), Some(d)) = (kind, data) {
                    self.leave_partial(k, name, d);
                }
                return Err(Self::os_error(op, kind, name, libc::ENOSPC));
            }
            _ => {}
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
            Effect::Errno(_)
            | Effect::ErrnoAfter(_)
            | Effect::ErrnoFromThenOn(_)
            | Effect::ShortWrite => unreachable!("handled above"),
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
    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.op(Op::Read, Some(kind), || {
            self.inner.read_range_into(kind, name, offset, len, buf)
        })
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.op_named(Op::Write, Some(kind), name, Some(data), || {
            self.inner.write(kind, name, data)
        })
    }
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        self.op(Op::List, Some(kind), || self.inner.list(kind))
    }
    /// One write (the wrapped backend's own replace: atomic where it can be).
    fn replace(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.op_named(Op::Write, Some(kind), name, Some(data), || {
            self.inner.replace(kind, name, data)
        })
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
    fn checkpoint_packs(&self) -> usize {
        self.inner.checkpoint_packs()
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
    use crate::storage::LocalBackend;

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

    #[test]
    fn os_errors_keep_the_process_alive() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        local.create_layout().unwrap();
        let name = |i: u8| format!("{i:02x}").repeat(32);
        let is_errno = |r: Result<()>, code: i32| matches!(r, Err(RepoError::Io { source, .. }) if source.raw_os_error() == Some(code));
        // One EACCES, then business as usual.
        let f = FaultyBackend::new(local.clone()).fail_at(2, Effect::Errno(libc::EACCES));
        f.write(FileKind::Pack, &name(1), b"1").unwrap();
        assert!(is_errno(
            f.write(FileKind::Pack, &name(2), b"2"),
            libc::EACCES
        ));
        assert!(!local.exists(FileKind::Pack, &name(2)).unwrap());
        f.write(FileKind::Pack, &name(3), b"3").unwrap();
        assert!(f.fired());
        // A full disk stays full for writes; reads and removes still work.
        let f = FaultyBackend::from_spec(local.clone(), "write@1:enospc").unwrap();
        assert!(is_errno(
            f.write(FileKind::Index, &name(4), b"4"),
            libc::ENOSPC
        ));
        assert!(is_errno(
            f.write(FileKind::Pack, &name(5), b"5"),
            libc::ENOSPC
        ));
        assert_eq!(f.read(FileKind::Pack, &name(1)).unwrap(), b"1");
        f.remove(FileKind::Pack, &name(3)).unwrap();
        // After: the object is there, the caller sees EIO.
        let f = FaultyBackend::new(local.clone()).fail_at(1, Effect::ErrnoAfter(libc::EIO));
        assert!(is_errno(f.write(FileKind::Pack, &name(6), b"6"), libc::EIO));
        assert!(local.exists(FileKind::Pack, &name(6)).unwrap());
        // A short write leaves half the bytes in a temporary file, and no object.
        let f = FaultyBackend::new(local.clone())
            .local_root(dir.path())
            .fail_at(1, Effect::ShortWrite);
        assert!(is_errno(
            f.write(FileKind::Pack, &name(7), b"12345678"),
            libc::ENOSPC
        ));
        assert!(!local.exists(FileKind::Pack, &name(7)).unwrap());
        let tmp = local.leftover_temp_files().unwrap();
        assert_eq!(tmp.len(), 1);
        assert_eq!(tmp[0].size, 4);
        assert!(tmp[0].name.starts_with("data/07/.tmp-"), "{}", tmp[0].name);
        assert_eq!(local.remove_leftover_temp_files(0).unwrap(), 1);
    }
}
