//! snapvault repositories on remote storage: S3-compatible object storage and SFTP.
//!
//! [`open`] turns a location (`s3:…`, `sftp:…`) into a [`Backend`] — S3 through OpenDAL
//! ([`s3`]), SFTP over snapvault's own `ssh` processes ([`sftp`]) — wrapped in a local cache
//! of index and snapshot files ([`cache`]), so that listing snapshots or starting a snapshot
//! does not download the metadata again. Everything above the `Backend` trait is the same as
//! for a local folder. Both backends time out on lack of progress and retry as [`retry`]
//! says.

pub mod cache;
mod checksum;
mod errors;
mod kept;
pub mod readahead;
mod retry;
mod runtime;
mod s3;
mod sftp;
/// Test builds only (the `test-faults` feature).
#[cfg(feature = "test-faults")]
pub mod test_proxy;
#[cfg(feature = "test-faults")]
pub mod test_servers;
mod transport;
pub mod url;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use snapvault_repo::backend::Backend;
use snapvault_repo::{LocationError, RepoError};

pub use checksum::Checksum;
pub use runtime::shutdown;
pub use url::{RemoteUrl, is_remote};

/// How snapvault treats an SFTP server's host key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKeys {
    /// The key must already be known: in `~/.ssh/known_hosts` or in snapvault's own
    /// known-hosts file (the default).
    Strict,
    /// Trust a server seen for the first time and record its key in snapvault's own
    /// known-hosts file (never in `~/.ssh/known_hosts`); refuse a changed key.
    Add,
    /// Accept any key for this run and record nothing (only for throwaway test servers).
    Accept,
}

/// Settings for remote repositories. Credentials are not here: S3 keys come from the
/// environment (`AWS_ACCESS_KEY_ID`, …) and SSH keys from `~/.ssh` or ssh-agent.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Concurrent operations (None: 8 for S3, 4 for SFTP).
    pub connections: Option<usize>,
    /// Retries in a row of a failed operation that may succeed when repeated.
    pub retries: usize,
    /// How long a request may go without moving any data before it counts as stalled
    /// (there is no limit on how long a request that moves data may take).
    pub stall: Duration,
    pub host_keys: HostKeys,
    /// snapvault's own known-hosts file: keys trusted with [`HostKeys::Add`] go there.
    pub known_hosts: Option<PathBuf>,
    /// An SSH identity file (else ssh's defaults: ~/.ssh/id_*, ssh-agent).
    pub ssh_key: Option<PathBuf>,
    /// Where index and snapshot files are cached (None: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Upper bound of the cache, in bytes.
    pub cache_limit: u64,
    /// The integrity checksum an S3 `PUT` carries (`SNAPVAULT_S3_CHECKSUM`; see [`checksum`]).
    pub s3_checksum: Checksum,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            connections: None,
            retries: 6,
            stall: Duration::from_secs(60),
            host_keys: HostKeys::Strict,
            known_hosts: None,
            ssh_key: None,
            cache_dir: None,
            cache_limit: 512 << 20,
            s3_checksum: Checksum::default(),
        }
    }
}

impl RemoteOptions {
    /// Defaults, adjusted by `SNAPVAULT_SFTP_KEY`, `SNAPVAULT_SFTP_HOST_KEYS`
    /// (strict|add|accept), `SNAPVAULT_SFTP_KNOWN_HOSTS` (else
    /// `$XDG_CONFIG_HOME/snapvault/known_hosts` or `~/.config/snapvault/known_hosts`),
    /// `SNAPVAULT_RETRIES`, `SNAPVAULT_TIMEOUT` (seconds without progress) and
    /// `SNAPVAULT_S3_CHECKSUM` (crc32c|md5).
    pub fn from_env() -> Result<RemoteOptions, RepoError> {
        let mut o = RemoteOptions::default();
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        if let Some(k) = var("SNAPVAULT_SFTP_KEY") {
            o.ssh_key = Some(PathBuf::from(k));
        }
        o.known_hosts = var("SNAPVAULT_SFTP_KNOWN_HOSTS")
            .map(PathBuf::from)
            .or_else(|| {
                var("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))
                    .map(|c| c.join("snapvault/known_hosts"))
            });
        if let Some(h) = var("SNAPVAULT_SFTP_HOST_KEYS") {
            o.host_keys = match h.to_ascii_lowercase().as_str() {
                "strict" => HostKeys::Strict,
                "add" => HostKeys::Add,
                "accept" => HostKeys::Accept,
                _ => {
                    return Err(LocationError::BadChoice {
                        var: "SNAPVAULT_SFTP_HOST_KEYS",
                        value: h,
                        expected: "strict, add or accept",
                    }
                    .into());
                }
            };
        }
        if let Some(c) = var("SNAPVAULT_S3_CHECKSUM") {
            o.s3_checksum = Checksum::parse(&c).ok_or(LocationError::BadChoice {
                var: "SNAPVAULT_S3_CHECKSUM",
                value: c,
                expected: "crc32c or md5",
            })?;
        }
        let number = |n: &str| -> Result<Option<u64>, RepoError> {
            var(n)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        LocationError::NotANumber {
                            var: n.to_string(),
                            value: v,
                        }
                        .into()
                    })
                })
                .transpose()
        };
        if let Some(r) = number("SNAPVAULT_RETRIES")? {
            o.retries = r as usize;
        }
        if let Some(t) = number("SNAPVAULT_TIMEOUT")? {
            o.stall = Duration::from_secs(t.max(1));
        }
        Ok(o)
    }
}

/// Read-ahead on S3: at most four 16 MiB windows held (in flight, waiting to be read, or
/// spare), announced 128 MiB ahead so a pack's ranges are mostly known when its window is
/// taken.
const S3_READ_AHEAD: readahead::Limits = readahead::Limits {
    held: 64 << 20,
    announce: 128 << 20,
};

/// Open the backend for a remote location.
pub fn open(location: &str, opts: &RemoteOptions) -> Result<Arc<dyn Backend>, RepoError> {
    let url = RemoteUrl::parse(location)?;
    let inner: Arc<dyn Backend> = match url {
        // Every S3 read is a request that waits on the server: announced pack ranges are
        // merged and fetched ahead (see `readahead`).
        RemoteUrl::S3 { .. } => Arc::new(readahead::ReadAhead::new(
            s3::open(location, &url, opts)?,
            S3_READ_AHEAD,
        )),
        RemoteUrl::Sftp { .. } => Arc::new(sftp::SftpBackend::open(location, &url, opts)?),
    };
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
