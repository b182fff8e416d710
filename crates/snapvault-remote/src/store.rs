//! [`RemoteBackend`]: the repository's [`Backend`] on S3 or SFTP through Apache OpenDAL.
//!
//! OpenDAL is async; its blocking facade runs each call on one process-wide tokio runtime.
//! Layers, inside out: per-operation timeout, retry with jittered exponential backoff on
//! errors OpenDAL marks temporary (5xx, 429, SlowDown, timeouts, dropped connections), and a
//! limit on concurrent operations (`--connections`). No OpenDAL type leaves this module.
//!
//! Writes never replace a file. On S3 every write is a single `PUT` with `If-None-Match: *`
//! and `Content-MD5` (the server rejects a body damaged in transit). On SFTP a lock is created
//! with O_EXCL; anything else is written to a `.tmp-…` name and renamed into place, so a
//! reader never sees half a pack. Either way the size is checked after the upload. A
//! conditional write that finds the file already there reads it back: the same bytes mean an
//! earlier attempt of ours succeeded but its reply was lost.

use std::sync::Arc;
use std::time::Duration;

use opendal::layers::{ConcurrentLimitLayer, RetryLayer, TimeoutLayer};
use opendal::options::{ListOptions, ReadOptions, WriteOptions};
use opendal::{ErrorKind, Operator, blocking};
use snapvault_repo::RepoError;
use snapvault_repo::backend::{Backend, FileInfo, FileKind};

use crate::RemoteOptions;
use crate::errors::{config_err, what};
use crate::url::RemoteUrl;

const TEMP_PREFIX: &str = ".tmp-";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    S3,
    Sftp,
}

pub struct RemoteBackend {
    op: blocking::Operator,
    service: Service,
    location: String,
    /// For messages: "bucket b at https://host".
    target: String,
}

impl RemoteBackend {
    pub fn open(location: &str, url: &RemoteUrl, opts: &RemoteOptions) -> Result<Self, RepoError> {
        let rt = crate::runtime::runtime()?;
        let (op, service, target) = match url {
            RemoteUrl::S3 {
                endpoint,
                bucket,
                prefix,
            } => {
                let region = std::env::var("AWS_REGION")
                    .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                    .ok()
                    .filter(|r| !r.is_empty());
                let region = match (region, endpoint) {
                    (Some(r), _) => r,
                    // S3-compatible servers mostly ignore the region; it is only signed.
                    (None, Some(_)) => "us-east-1".to_string(),
                    (None, None) => {
                        return Err(RepoError::Invalid(format!(
                            "{location}: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or give the endpoint: s3:https://host/bucket"
                        )));
                    }
                };
                let endpoint = endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
                let mut b = opendal::services::S3::default()
                    .endpoint(&endpoint)
                    .bucket(bucket)
                    .region(&region)
                    .root(&format!("/{prefix}"))
                    .checksum_algorithm("md5");
                if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
                    b = b.disable_ec2_metadata();
                }
                let op = Operator::new(b).map_err(|e| config_err(location, e))?;
                (op, Service::S3, format!("bucket {bucket} at {endpoint}"))
            }
            RemoteUrl::Sftp {
                user,
                host,
                port,
                path,
            } => {
                let endpoint = match port {
                    Some(p) => format!("ssh://{host}:{p}"),
                    None => format!("ssh://{host}"),
                };
                let mut b = opendal::services::Sftp::default()
                    .endpoint(&endpoint)
                    .root(path)
                    .known_hosts_strategy(opts.host_keys.as_str());
                if let Some(u) = user {
                    b = b.user(u);
                }
                if let Some(k) = &opts.ssh_key {
                    b = b.key(&k.to_string_lossy());
                }
                let op = Operator::new(b).map_err(|e| config_err(location, e))?;
                (op, Service::Sftp, format!("{path} on {host}"))
            }
        };
        let connections = opts.connections.unwrap_or(match service {
            // Each SFTP connection is an ssh process; sshd's MaxStartups (10 by default)
            // resets bursts of new ones.
            Service::Sftp => 4,
            Service::S3 => 8,
        });
        let op = op
            .layer(
                TimeoutLayer::new()
                    .with_timeout(opts.timeout)
                    .with_io_timeout(opts.io_timeout),
            )
            .layer(
                RetryLayer::new()
                    .with_max_times(opts.retries)
                    .with_min_delay(Duration::from_millis(500))
                    .with_max_delay(Duration::from_secs(30))
                    .with_jitter(),
            )
            .layer(ConcurrentLimitLayer::new(connections.max(1)));
        let _guard = rt.enter();
        let op = blocking::Operator::new(op).map_err(|e| config_err(location, e))?;
        Ok(RemoteBackend {
            op,
            service,
            location: location.to_string(),
            target,
        })
    }

    fn path(&self, kind: FileKind, name: &str) -> Result<String, RepoError> {
        kind.path_of(name)
    }

    /// Create `path` only if it does not exist (S3 `If-None-Match: *`, SFTP `O_EXCL`).
    fn create_new(&self, path: &str, data: &[u8]) -> opendal::Result<()> {
        let opts = WriteOptions {
            if_not_exists: true,
            ..Default::default()
        };
        self.op.write_options(path, data.to_vec(), opts).map(|_| ())
    }

    /// Turn an OpenDAL error into one that says what failed, where, and what to do.
    fn err(&self, doing: &str, what: &str, e: opendal::Error) -> RepoError {
        crate::errors::explain(
            &self.location,
            &self.target,
            self.service == Service::Sftp,
            doing,
            what,
            e,
        )
    }

    fn verify_size(&self, path: &str, what: &str, want: usize) -> Result<(), RepoError> {
        let got = self
            .op
            .stat(path)
            .map_err(|e| self.err("checking the upload of", what, e))?
            .content_length();
        if got != want as u64 {
            return Err(RepoError::Remote(format!(
                "{}: the upload of {what} is incomplete: the server has {got} of {want} bytes",
                self.location
            )));
        }
        Ok(())
    }

    /// After "already exists": ours (a retried create whose reply was lost) or someone else's?
    fn already_there(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), RepoError> {
        match self.read(kind, name) {
            Ok(existing) if existing == data => Ok(()),
            _ => Err(RepoError::FileExists(format!("{} {name}", kind.name()))),
        }
    }

    fn write_s3(
        &self,
        kind: FileKind,
        name: &str,
        path: &str,
        data: &[u8],
    ) -> Result<(), RepoError> {
        let what = what(kind, name);
        match self.create_new(path, data) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConditionNotMatch | ErrorKind::AlreadyExists
                ) =>
            {
                return self.already_there(kind, name, data);
            }
            Err(e) => return Err(self.err("uploading", &what, e)),
        }
        self.verify_size(path, &what, data.len())
    }

    fn write_sftp(
        &self,
        kind: FileKind,
        name: &str,
        path: &str,
        data: &[u8],
    ) -> Result<(), RepoError> {
        let what = what(kind, name);
        if kind == FileKind::Lock {
            return match self.create_new(path, data) {
                Ok(_) => self.verify_size(path, &what, data.len()),
                Err(e) if e.kind() == ErrorKind::ConditionNotMatch => {
                    self.already_there(kind, name, data)
                }
                Err(e) => Err(self.err("uploading", &what, e)),
            };
        }
        if self.exists(kind, name)? {
            return self.already_there(kind, name, data);
        }
        let (dir, _) = path.rsplit_once('/').unwrap_or(("", path));
        let tmp_name = format!("{TEMP_PREFIX}{}", hex::encode(rand::random::<[u8; 8]>()));
        let tmp = if dir.is_empty() {
            tmp_name
        } else {
            format!("{dir}/{tmp_name}")
        };
        let result = self
            .create_new(&tmp, data)
            .map_err(|e| self.err("uploading", &what, e))
            .and_then(|_| self.verify_size(&tmp, &what, data.len()))
            .and_then(|_| {
                self.op
                    .rename(&tmp, path)
                    .map_err(|e| self.err("moving into place", &what, e))
            });
        if result.is_err() {
            let _ = self.op.delete(&tmp);
        }
        result
    }

    fn list_dir(&self, dir: &str, recursive: bool) -> Result<Vec<(String, FileInfo)>, RepoError> {
        let opts = ListOptions {
            recursive,
            ..Default::default()
        };
        let entries = match self.op.list_options(&format!("{dir}/"), opts) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err("listing", dir, e)),
        };
        let mut out = Vec::new();
        for e in entries {
            if !e.metadata().is_file() {
                continue;
            }
            let name = e.name().trim_end_matches('/').to_string();
            let size = e.metadata().content_length();
            out.push((e.path().to_string(), FileInfo { name, size }));
        }
        Ok(out)
    }

    /// Fails clearly on a missing bucket, bad credentials or an unreachable host.
    fn probe(&self) -> Result<(), RepoError> {
        let opts = ListOptions {
            limit: Some(1),
            ..Default::default()
        };
        match self.op.list_options("", opts) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("opening", &self.target, e)),
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

impl Backend for RemoteBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool, RepoError> {
        let path = self.path(kind, name)?;
        let found = self
            .op
            .exists(&path)
            .map_err(|e| self.err("looking for", &what(kind, name), e))?;
        if !found && kind == FileKind::Config {
            // No repository here — or no bucket, or no access: a listing tells which.
            self.probe()?;
        }
        Ok(found)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, RepoError> {
        let path = self.path(kind, name)?;
        self.op
            .read(&path)
            .map(|b| b.to_vec())
            .map_err(|e| self.err("reading", &what(kind, name), e))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, RepoError> {
        let path = self.path(kind, name)?;
        let what = what(kind, name);
        let opts = ReadOptions {
            range: (offset..offset + len as u64).into(),
            ..Default::default()
        };
        let short = || {
            RepoError::corrupt(
                what.clone(),
                format!("file ends before byte {}", offset + len as u64),
            )
        };
        let got = match self.op.read_options(&path, opts) {
            Ok(b) => b.to_vec(),
            Err(e)
                if e.kind() == ErrorKind::RangeNotSatisfied
                    || e.message().contains("too little data") =>
            {
                return Err(short());
            }
            Err(e) => return Err(self.err("reading", &what, e)),
        };
        if got.len() != len {
            return Err(short());
        }
        Ok(got)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), RepoError> {
        let path = self.path(kind, name)?;
        match self.service {
            Service::S3 => self.write_s3(kind, name, &path, data),
            Service::Sftp => self.write_sftp(kind, name, &path, data),
        }
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, RepoError> {
        if kind == FileKind::Config {
            return Ok(match self.op.stat("config") {
                Ok(m) => vec![FileInfo {
                    name: "config".into(),
                    size: m.content_length(),
                }],
                Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(self.err("looking for", "the config", e)),
            });
        }
        let recursive = kind == FileKind::Pack;
        Ok(self
            .list_dir(kind.dir(), recursive)?
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f| !f.name.starts_with('.'))
            .collect())
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, RepoError> {
        let path = self.path(kind, name)?;
        self.op
            .stat(&path)
            .map(|m| m.content_length())
            .map_err(|e| self.err("looking at", &what(kind, name), e))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), RepoError> {
        let path = self.path(kind, name)?;
        self.op
            .delete(&path)
            .map_err(|e| self.err("deleting", &what(kind, name), e))
    }

    fn age_secs(&self, kind: FileKind, name: &str) -> Result<Option<u64>, RepoError> {
        let path = self.path(kind, name)?;
        let meta = self
            .op
            .stat(&path)
            .map_err(|e| self.err("looking at", &what(kind, name), e))?;
        Ok(meta.last_modified().map(|t| {
            let then = t.into_inner().as_second();
            let now = snapvault_repo::time::now_unix();
            now.saturating_sub(then).max(0) as u64
        }))
    }

    fn checkpoint_packs(&self) -> usize {
        // 64 MiB of uploads: a dropped connection costs at most that much again.
        4
    }

    fn create_layout(&self) -> Result<(), RepoError> {
        self.probe()?;
        if self.service == Service::Sftp {
            for (dir, _) in self.all_dirs() {
                self.op
                    .create_dir(&format!("{dir}/"))
                    .map_err(|e| self.err("creating folder", dir, e))?;
            }
        }
        Ok(())
    }

    fn leftover_temp_files(&self) -> Result<Vec<FileInfo>, RepoError> {
        if self.service != Service::Sftp {
            return Ok(Vec::new());
        }
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
        let mut n = 0;
        let now = snapvault_repo::time::now_unix();
        for f in self.leftover_temp_files()? {
            let old = match self.op.stat(&f.name) {
                Ok(m) => m
                    .last_modified()
                    .is_some_and(|t| now - t.into_inner().as_second() >= min_age_secs as i64),
                Err(_) => false,
            };
            if old && self.op.delete(&f.name).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Keep the type private to the crate's API: callers get a `dyn Backend`.
pub fn open(
    location: &str,
    url: &RemoteUrl,
    opts: &RemoteOptions,
) -> Result<Arc<dyn Backend>, RepoError> {
    Ok(Arc::new(RemoteBackend::open(location, url, opts)?))
}
