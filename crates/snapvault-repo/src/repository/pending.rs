//! Opening a repository in two halves, so the disk is not idle while Argon2id runs.
//!
//! With a password, opening spends about 0.1 CPU-s (64 MiB, 2 passes) deriving the key
//! before anything else happens, and on a cold cache every step then starts with the disk
//! idle for that long. [`Repository::begin_open`] reads the config and the key files,
//! chooses which keys to try, and starts the derivation on its own thread; the caller
//! then starts what needs no key (listing and hinting what it will read: the source's
//! first folders, the packs, the index files) and calls [`Opening::finish`], which waits
//! for the key and settles the config exactly as [`Repository::open_with`] always did.
//! Errors (a wrong password) come from `finish`, the same as before, and nothing is
//! written before it returns: the work started meanwhile only reads, is bounded by its
//! own budget and stops once [`Opening::key_ready`] says so.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{RepoError, Result};
use crate::format::config::Config;
use crate::format::crypto::Crypto;
use crate::repository::Repository;
use crate::repository::open::{OpenOptions, OpenWarning, Unwrapped};
use crate::storage::{Backend, FileKind};

/// Index and snapshot bytes [`Opening::prefetch_metadata`] hints at most: every index
/// file of a large library (≈ 60 bytes a blob), not an unbounded read on a wrong password.
pub const METADATA_PREFETCH: u64 = 64 << 20;

/// A repository being opened: the key may still be derived on its own thread.
pub struct Opening {
    backend: Arc<dyn Backend>,
    state: State,
}

enum State {
    /// Nothing to derive: unencrypted, or opened with a key remembered on this computer.
    Open(Repository),
    /// The key is being derived; the config as read waits for it.
    Deriving {
        key: JoinHandle<Result<Unwrapped>>,
        location: String,
        parsed: Result<Config>,
    },
}

impl Repository {
    /// The first half of [`Repository::open_with`]: everything up to the key derivation,
    /// which is started on its own thread. See [`Opening`].
    pub fn begin_open(
        backend: Arc<dyn Backend>,
        password: impl FnOnce() -> Result<Vec<u8>>,
        opts: &OpenOptions,
    ) -> Result<Opening> {
        begin(backend, password, opts, None)
    }
}

/// [`Repository::begin_open`]; in tests, `gate` holds the derivation back until it is
/// sent something (or dropped), so a test sees work done before the key is ready.
pub(crate) fn begin(
    backend: Arc<dyn Backend>,
    password: impl FnOnce() -> Result<Vec<u8>>,
    opts: &OpenOptions,
    gate: Option<std::sync::mpsc::Receiver<()>>,
) -> Result<Opening> {
    let location = backend.location();
    let parsed = match Repository::open_without_password(&backend, opts)? {
        Ok(repo) => {
            return Ok(Opening {
                backend,
                state: State::Open(repo),
            });
        }
        Err(parsed) => parsed,
    };
    let pw = password()?;
    let candidates = crate::repository::open::candidates(backend.as_ref(), opts)?;
    let derive = move || {
        if let Some(g) = gate {
            let _ = g.recv();
        }
        candidates.unwrap(&pw)
    };
    let key = std::thread::Builder::new()
        .name("key derivation".into())
        .spawn(derive)
        .map_err(|e| RepoError::io("starting the key derivation", e))?;
    Ok(Opening {
        backend,
        state: State::Deriving {
            key,
            location,
            parsed,
        },
    })
}

impl Opening {
    /// The repository's storage, for reads that need no key while it is derived.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Is the key there (or none needed)? Work started meanwhile stops once it is.
    pub fn key_ready(&self) -> bool {
        match &self.state {
            State::Open(_) => true,
            State::Deriving { key, .. } => key.is_finished(),
        }
    }

    /// Hint the index and snapshot files to the storage (a local disk reads them ahead),
    /// up to [`METADATA_PREFETCH`] bytes, while the key is derived: they are read as soon
    /// as it is. Only on storage that reads ahead on its own (a local disk): a remote
    /// backend's hints would fetch into memory what it caches anyway.
    pub fn prefetch_metadata(&self) {
        let be = self.backend.as_ref();
        if be.read_ahead() != 0 || self.key_ready() {
            return;
        }
        let mut left = METADATA_PREFETCH;
        for kind in [FileKind::Index, FileKind::Snapshot] {
            let Ok(files) = be.list(kind) else { continue };
            for f in files {
                if left == 0 || self.key_ready() {
                    return;
                }
                let n = f.size.min(left);
                be.prefetch(kind, &f.name, 0, n);
                left -= n;
            }
        }
    }

    /// Wait for the key and open the repository (what [`Repository::open_with`] does after
    /// reading the key files): a wrong password is [`RepoError::WrongPassword`] here.
    pub fn finish(self, opts: &OpenOptions) -> Result<Repository> {
        let (key, location, parsed) = match self.state {
            State::Open(repo) => return Ok(repo),
            State::Deriving {
                key,
                location,
                parsed,
            } => (key, location, parsed),
        };
        let unwrapped = match key.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let (key_name, mk, keys) = unwrapped?;
        let crypto = Crypto::Keyed(mk);
        let (config, config_damage) =
            crate::repository::open::settle_config(&crypto, &location, parsed, &key_name, &keys)?;
        if let Some(d) = &config_damage {
            opts.warn(OpenWarning::ConfigFromCopy(d.clone()));
        }
        Ok(Repository::assemble(
            self.backend,
            config,
            crypto,
            Some(key_name),
            config_damage,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::format::keyfile::KdfParams;
    use crate::storage::LocalBackend;

    const KDF: KdfParams = KdfParams {
        m_kib: 8,
        t: 1,
        p: 1,
    };

    fn repo() -> (tempfile::TempDir, Arc<dyn Backend>) {
        let tmp = tempfile::tempdir().unwrap();
        let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(tmp.path().join("r")));
        Repository::init(be.clone(), Some(b"right password"), KDF).unwrap();
        (tmp, be)
    }

    #[test]
    fn work_is_done_while_the_key_is_derived() {
        let (_tmp, be) = repo();
        let (go, gate) = mpsc::channel();
        let pw = || Ok(b"right password".to_vec());
        let opening = begin(be, pw, &OpenOptions::default(), Some(gate)).unwrap();
        // The derivation waits for the gate: what happens now happens before the key.
        assert!(!opening.key_ready());
        let listed = opening.backend().list(FileKind::Key).unwrap();
        assert_eq!(listed.len(), 1);
        opening.prefetch_metadata();
        assert!(!opening.key_ready());
        go.send(()).unwrap();
        let repo = opening.finish(&OpenOptions::default()).unwrap();
        assert!(repo.crypto().is_encrypted());
    }

    #[test]
    fn a_wrong_password_fails_at_finish_and_writes_nothing() {
        let (tmp, be) = repo();
        let before: Vec<_> = walkdir(tmp.path());
        let pw = || Ok(b"wrong password".to_vec());
        let opening = Repository::begin_open(be, pw, &OpenOptions::default()).unwrap();
        opening.prefetch_metadata();
        let err = opening.finish(&OpenOptions::default()).err();
        assert!(matches!(err, Some(RepoError::WrongPassword)), "{err:?}");
        assert_eq!(walkdir(tmp.path()), before);
    }

    fn walkdir(p: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![p.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap().path();
                if e.is_dir() {
                    todo.push(e.clone());
                }
                out.push(e);
            }
        }
        out.sort();
        out
    }
}
