//! [`SftpBackend`]: the repository's [`Backend`] on an SSH server, over `ssh -s sftp`
//! processes snapvault starts and owns ([`spawn`]), speaking SFTP with
//! `openssh-sftp-client`.
//!
//! Connections come from a small pool. A connection that breaks is dropped (its ssh is
//! killed) and the operation carries on over a new login: uploads and downloads resume at
//! the last byte the server confirmed, so a flaky link costs time, not the whole pack.
//! Every SFTP request is given up on when it moves nothing for the stall period.
//!
//! A file is written under a new `.tmp-…` name with O_EXCL, at explicit offsets (a resumed
//! upload rewrites from the confirmed offset, it never appends), its size is checked, and it
//! is hard-linked into place (which, unlike rename, never replaces a file) and the temp
//! name removed. Locks are created in place with O_EXCL.

mod login;
mod spawn;
mod transfer;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use openssh_sftp_client::error::{Error as SftpError, SftpErrorKind};
use snapvault_repo::backend::{Backend, FileInfo, FileKind};
use snapvault_repo::{LocationError, RemoteError, RepoError};
use tokio::sync::Semaphore;

use crate::RemoteOptions;
use crate::errors::what;
use crate::retry::{Failure, Policy, Tries};
use crate::url::RemoteUrl;
pub(crate) use login::{Login, Problem, ProblemKind, Session};

const TEMP_PREFIX: &str = ".tmp-";
/// The most one SFTP read or write request carries (OpenSSH's own limit is about 255 KiB).
const REQUEST: usize = 240 << 10;

pub struct SftpBackend {
    login: Login,
    root: String,
    location: String,
    rt: tokio::runtime::Handle,
    idle: Mutex<Vec<Session>>,
    permits: Semaphore,
    policy: Policy,
    stall: Duration,
}

/// Trusted-on-first-use notices already printed (once per host and process).
fn tell_once(notice: String) {
    static TOLD: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    if let Ok(mut t) = TOLD.lock()
        && t.get_or_insert_with(HashSet::new).insert(notice.clone())
    {
        eprintln!("snapvault: {notice}");
    }
}

/// What an SFTP client error means for us.
fn problem(e: SftpError, session: &Session) -> Problem {
    match e {
        SftpError::SftpError(kind, msg) => {
            let (kind, text) = match kind {
                SftpErrorKind::NoSuchFile => (ProblemKind::NotFound, "no such file"),
                SftpErrorKind::PermDenied => (ProblemKind::Denied, "permission denied"),
                _ => (ProblemKind::Refused, "the server refused"),
            };
            Problem {
                failure: Failure::Permanent,
                kind,
                detail: format!("{text} ({msg})"),
            }
        }
        other => {
            let last = session.last_words();
            let failure = if last.contains("Timeout, server") {
                Failure::Stalled
            } else {
                Failure::Transient
            };
            let why = if last.is_empty() {
                other.to_string()
            } else {
                last
            };
            Problem::net(failure, format!("the SSH connection was lost: {why}"))
        }
    }
}

impl SftpBackend {
    pub fn open(location: &str, url: &RemoteUrl, opts: &RemoteOptions) -> Result<Self, RepoError> {
        let RemoteUrl::Sftp {
            user,
            host,
            port,
            path,
        } = url
        else {
            return Err(LocationError::WrongScheme {
                location: location.to_string(),
                scheme: "sftp",
            }
            .into());
        };
        let rt = crate::runtime::runtime()?;
        Ok(SftpBackend {
            login: Login {
                host: host.clone(),
                port: *port,
                user: user.clone(),
                key: opts.ssh_key.clone(),
                host_keys: opts.host_keys,
                known_hosts: opts.known_hosts.clone(),
                stall: opts.stall,
            },
            root: path.clone(),
            location: location.to_string(),
            rt,
            idle: Mutex::new(Vec::new()),
            // Each connection is an ssh process; sshd's MaxStartups resets bursts.
            permits: Semaphore::new(opts.connections.unwrap_or(4).max(1)),
            policy: Policy::new(opts.retries),
            stall: opts.stall,
        })
    }

    fn full(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{rel}", self.root.trim_end_matches('/'))
        }
    }

    async fn checkout(&self) -> Result<Session, Problem> {
        while let Some(mut s) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            if s.alive() {
                return Ok(s);
            }
        }
        let (s, notice) = self.login.connect().await?;
        if let Some(n) = notice {
            tell_once(n);
        }
        Ok(s)
    }

    fn give_back(&self, s: Session, broken: bool) {
        if broken {
            // Its siblings were likely cut by the same event (a server restart): start fresh.
            if let Ok(mut v) = self.idle.lock() {
                v.clear();
            }
        } else if let Ok(mut v) = self.idle.lock() {
            v.push(s);
        }
    }

    /// One SFTP request, given up on when it moves nothing for the stall period.
    async fn req<T>(
        &self,
        s: &Session,
        fut: impl Future<Output = Result<T, SftpError>>,
    ) -> Result<T, Problem> {
        match tokio::time::timeout(self.stall, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(problem(e, s)),
            Err(_) => Err(Problem::net(
                Failure::Stalled,
                format!("no data moved for {} s", self.stall.as_secs()),
            )),
        }
    }

    /// Run `op` on a pooled session, retrying as [`crate::retry`] says. `op` reports
    /// progress worth keeping through its `&mut bool`.
    fn run<T>(
        &self,
        doing: &str,
        what: &str,
        mut op: impl AsyncFnMut(&Session, &mut bool) -> Result<T, Problem>,
    ) -> Result<T, RepoError> {
        self.rt.block_on(async {
            let _permit =
                self.permits.acquire().await.map_err(|_| {
                    RemoteError::Runtime("the SFTP connection pool is closed".into())
                })?;
            let mut tries = Tries::new(self.policy);
            loop {
                let mut progressed = false;
                let result = match self.checkout().await {
                    Ok(s) => {
                        let r = op(&s, &mut progressed).await;
                        let broken = matches!(&r, Err(p) if p.kind == ProblemKind::Network);
                        self.give_back(s, broken);
                        r
                    }
                    Err(p) => Err(p),
                };
                let p = match result {
                    Ok(v) => return Ok(v),
                    Err(p) => p,
                };
                if progressed {
                    tries.progressed();
                }
                match tries.next_delay(p.failure) {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(self.explain(doing, what, p)),
                }
            }
        })
    }

    fn explain(&self, doing: &str, what: &str, p: Problem) -> RepoError {
        let loc = &self.location;
        match (p.kind, p.failure) {
            (ProblemKind::NotFound, _) => RepoError::corrupt(
                format!("{what} in {loc}"),
                "file is missing from the repository",
            ),
            (ProblemKind::Denied, _) => RemoteError::SftpDenied {
                location: loc.clone(),
                doing: doing.to_string(),
                what: what.to_string(),
                detail: p.detail,
            }
            .into(),
            (_, failure) => crate::errors::network(
                failure,
                loc.clone(),
                doing.to_string(),
                what.to_string(),
                p.detail,
                "SSH server",
                self.policy.retries,
            )
            .into(),
        }
    }

    /// Make a folder; one that exists already is fine.
    async fn mkdir(&self, s: &Session, dir: &str) -> Result<(), Problem> {
        match self.req(s, s.sftp.fs().create_dir(dir)).await {
            Ok(()) => Ok(()),
            // Exists already (or a parent we may not write to, which exists): fine if it is
            // a folder now.
            Err(p) if matches!(p.kind, ProblemKind::Refused | ProblemKind::Denied) => {
                match self.req(s, s.sftp.fs().metadata(dir)).await {
                    Ok(m) if m.file_type().is_some_and(|t| t.is_dir()) => Ok(()),
                    _ => Err(p),
                }
            }
            Err(p) => Err(p),
        }
    }

    async fn stat(&self, s: &Session, path: &str) -> Result<Option<(u64, Option<u64>)>, Problem> {
        match self.req(s, s.sftp.fs().metadata(path)).await {
            Ok(m) => Ok(Some((
                m.len().unwrap_or(0),
                m.modified().and_then(|t| {
                    t.as_system_time()
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs())
                }),
            ))),
            Err(p) if p.kind == ProblemKind::NotFound => Ok(None),
            Err(p) => Err(p),
        }
    }

    fn all_dirs(&self) -> [(&'static str, bool); 5] {
        [
            ("keys", false),
            ("locks", false),
            ("snapshots", false),
            ("index", false),
            ("data", true),
        ]
    }
}

impl Drop for SftpBackend {
    fn drop(&mut self) {
        // Sessions hold runtime tasks: drop them (and kill their ssh) inside the runtime.
        let _rt = self.rt.enter();
        if let Ok(mut v) = self.idle.lock() {
            v.clear();
        }
    }
}

impl Backend for SftpBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool, RepoError> {
        let path = self.full(&kind.path_of(name)?);
        let found = self.run("looking for", &what(kind, name), async |s, _| {
            self.stat(s, &path).await
        })?;
        Ok(found.is_some())
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, RepoError> {
        self.read_at(kind, name, 0, None)
    }

    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<(), RepoError> {
        *buf = self.read_at(kind, name, offset, Some(len))?;
        Ok(())
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), RepoError> {
        let path = self.full(&kind.path_of(name)?);
        if kind == FileKind::Lock {
            self.create_lock(kind, name, &path, data)
        } else {
            self.upload(kind, name, &path, data)
        }
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, RepoError> {
        if kind == FileKind::Config {
            let path = self.full("config");
            let found = self.run("looking for", "the config", async |s, _| {
                self.stat(s, &path).await
            })?;
            return Ok(found
                .map(|(size, _)| FileInfo {
                    name: "config".into(),
                    size,
                })
                .into_iter()
                .collect());
        }
        Ok(self
            .list_dir(kind.dir(), kind == FileKind::Pack)?
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f| !f.name.starts_with('.'))
            .collect())
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, RepoError> {
        let path = self.full(&kind.path_of(name)?);
        let what = what(kind, name);
        match self.run("looking at", &what, async |s, _| self.stat(s, &path).await)? {
            Some((size, _)) => Ok(size),
            None => Err(RepoError::corrupt(
                format!("{what} in {}", self.location),
                "file is missing from the repository",
            )),
        }
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), RepoError> {
        let path = self.full(&kind.path_of(name)?);
        self.run("deleting", &what(kind, name), async |s, _| {
            match self.req(s, s.sftp.fs().remove_file(&path)).await {
                // Gone already (perhaps by an attempt whose reply was lost).
                Err(p) if p.kind == ProblemKind::NotFound => Ok(()),
                r => r,
            }
        })
    }

    fn age_secs(&self, kind: FileKind, name: &str) -> Result<Option<u64>, RepoError> {
        let path = self.full(&kind.path_of(name)?);
        let found = self.run("looking at", &what(kind, name), async |s, _| {
            self.stat(s, &path).await
        })?;
        let now = snapvault_repo::time::now_unix().max(0) as u64;
        Ok(found.and_then(|(_, m)| m).map(|t| now.saturating_sub(t)))
    }

    fn checkpoint_packs(&self) -> usize {
        // 64 MiB of uploads: a failed run costs at most that much again.
        4
    }

    fn create_layout(&self) -> Result<(), RepoError> {
        let mut dirs: Vec<String> = Vec::new();
        // The repository folder and its parents (an absolute path from /, a relative one
        // from the login folder).
        let mut acc = String::new();
        for part in self.root.split('/') {
            if part.is_empty() {
                if acc.is_empty() && self.root.starts_with('/') {
                    acc.push('/');
                }
                continue;
            }
            if !acc.is_empty() && !acc.ends_with('/') {
                acc.push('/');
            }
            acc.push_str(part);
            dirs.push(acc.clone());
        }
        for (d, _) in self.all_dirs() {
            dirs.push(self.full(d));
        }
        for d in dirs {
            self.run("creating folder", &d, async |s, _| self.mkdir(s, &d).await)?;
        }
        Ok(())
    }

    fn leftover_temp_files(&self) -> Result<Vec<FileInfo>, RepoError> {
        let mut out = Vec::new();
        for (dir, rec) in self.all_dirs() {
            for (path, f) in self.list_dir(dir, rec)? {
                if f.name.starts_with(TEMP_PREFIX) {
                    out.push(FileInfo {
                        name: path,
                        size: f.size,
                    });
                }
            }
        }
        Ok(out)
    }

    fn remove_leftover_temp_files(&self, min_age_secs: u64) -> Result<usize, RepoError> {
        let now = snapvault_repo::time::now_unix().max(0) as u64;
        let mut n = 0;
        for f in self.leftover_temp_files()? {
            let path = self.full(&f.name);
            let removed = self.run("removing", &f.name, async |s, _| {
                let old = match self.stat(s, &path).await? {
                    Some((_, Some(m))) => now.saturating_sub(m) >= min_age_secs,
                    _ => false,
                };
                if old {
                    self.req(s, s.sftp.fs().remove_file(&path)).await?;
                }
                Ok(old)
            });
            if removed.unwrap_or(false) {
                n += 1;
            }
        }
        Ok(n)
    }
}
