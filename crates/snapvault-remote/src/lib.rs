//! snapvault repositories on remote storage: S3-compatible object storage and SFTP.
//!
//! [`open`] turns a location (`s3:…`, `sftp:…`) into a [`Backend`]: the OpenDAL-based
//! store ([`store`]) wrapped in a local cache of index and snapshot files ([`cache`]), so
//! that listing snapshots or starting a snapshot does not download the metadata again.
//! Everything above the `Backend` trait is the same as for a local folder.

pub mod cache;
mod errors;
mod runtime;
mod store;
#[doc(hidden)]
pub mod test_servers;
pub mod url;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use snapvault_repo::RepoError;
use snapvault_repo::backend::Backend;

pub use runtime::shutdown;
pub use url::{RemoteUrl, is_remote};

/// How snapvault treats an SFTP server's host key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKeys {
    /// The key must already be in `~/.ssh/known_hosts` (the default).
    Strict,
    /// Trust a server seen for the first time and record its key; refuse a changed key.
    Add,
    /// Accept any key (only for throwaway test servers).
    Accept,
}

impl HostKeys {
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeys::Strict => "Strict",
            HostKeys::Add => "Add",
            HostKeys::Accept => "Accept",
        }
    }
}

/// Settings for remote repositories. Credentials are not here: S3 keys come from the
/// environment (`AWS_ACCESS_KEY_ID`, …) and SSH keys from `~/.ssh` or ssh-agent.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Concurrent operations (None: 8 for S3, 4 for SFTP).
    pub connections: Option<usize>,
    /// Retries of a failed operation that may succeed when repeated.
    pub retries: usize,
    /// Limit for one whole operation.
    pub timeout: Duration,
    /// Limit for one read or write step within an operation.
    pub io_timeout: Duration,
    pub host_keys: HostKeys,
    /// An SSH identity file (else ssh's defaults: ~/.ssh/id_*, ssh-agent).
    pub ssh_key: Option<PathBuf>,
    /// Where index and snapshot files are cached (None: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Upper bound of the cache, in bytes.
    pub cache_limit: u64,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            connections: None,
            retries: 6,
            timeout: Duration::from_secs(120),
            io_timeout: Duration::from_secs(30),
            host_keys: HostKeys::Strict,
            ssh_key: None,
            cache_dir: None,
            cache_limit: 512 << 20,
        }
    }
}

impl RemoteOptions {
    /// Defaults, adjusted by `SNAPVAULT_SFTP_KEY`, `SNAPVAULT_SFTP_HOST_KEYS`
    /// (strict|add|accept), `SNAPVAULT_RETRIES` and `SNAPVAULT_TIMEOUT` (seconds).
    pub fn from_env() -> Result<RemoteOptions, RepoError> {
        let mut o = RemoteOptions::default();
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        if let Some(k) = var("SNAPVAULT_SFTP_KEY") {
            o.ssh_key = Some(PathBuf::from(k));
        }
        if let Some(h) = var("SNAPVAULT_SFTP_HOST_KEYS") {
            o.host_keys = match h.to_ascii_lowercase().as_str() {
                "strict" => HostKeys::Strict,
                "add" => HostKeys::Add,
                "accept" => HostKeys::Accept,
                _ => {
                    return Err(RepoError::Invalid(format!(
                        "SNAPVAULT_SFTP_HOST_KEYS={h:?}: expected strict, add or accept"
                    )));
                }
            };
        }
        let number = |n: &str| -> Result<Option<u64>, RepoError> {
            var(n)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| RepoError::Invalid(format!("{n}={v:?} is not a whole number")))
                })
                .transpose()
        };
        if let Some(r) = number("SNAPVAULT_RETRIES")? {
            o.retries = r as usize;
        }
        if let Some(t) = number("SNAPVAULT_TIMEOUT")? {
            o.timeout = Duration::from_secs(t.max(1));
            o.io_timeout = o.io_timeout.min(o.timeout);
        }
        Ok(o)
    }
}

/// Open the backend for a remote location.
pub fn open(location: &str, opts: &RemoteOptions) -> Result<Arc<dyn Backend>, RepoError> {
    let url = RemoteUrl::parse(location)?;
    let inner = store::open(location, &url, opts)?;
    Ok(match &opts.cache_dir {
        Some(dir) => {
            let key = blake3::hash(location.as_bytes()).to_hex();
            Arc::new(cache::CachedBackend::new(
                inner,
                dir.join(&key[..32]),
                opts.cache_limit,
            ))
        }
        None => inner,
    })
}
