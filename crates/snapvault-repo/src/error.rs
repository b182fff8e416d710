//! The repository's error type. Every variant names the thing that is wrong.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = RepoError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("there is no repository at {0} (run `snapvault init` to create one)")]
    NotFound(String),
    #[error("a repository already exists at {0}; refusing to overwrite it")]
    AlreadyExists(String),
    #[error(
        "the repository at {location} uses format version {found}, but this snapvault understands only up to version {supported}; upgrade snapvault"
    )]
    NewerVersion {
        location: String,
        found: u32,
        supported: u32,
    },
    /// A backend refused to replace an existing file (files are never overwritten).
    #[error("{0} already exists in the repository")]
    FileExists(String),
    /// The storage behind a backend failed (network, server, credentials, bucket).
    #[error("{0}")]
    Remote(String),
    #[error("wrong password: no key in the repository opens with it")]
    WrongPassword,
    #[error("repository is locked: {0}")]
    Locked(String),
    #[error("corrupt or invalid data in {what}: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("authentication failed for {0}: the data was modified or damaged")]
    Auth(String),
    /// A piece of data a snapshot needs is not listed as stored (the index lacks it).
    #[error("stored data {0} is missing from the repository")]
    MissingBlob(String),
    #[error("no snapshot matches {0:?}")]
    NoSuchSnapshot(String),
    #[error("snapshot id prefix {prefix:?} is ambiguous: it matches {count} snapshots")]
    AmbiguousSnapshot { prefix: String, count: usize },
    #[error("{0}")]
    Format(String),
    #[error("{0}")]
    Invalid(String),
    #[error("source path {0} does not exist")]
    SourceMissing(PathBuf),
    #[error("operation interrupted: {0}")]
    Interrupted(String),
    /// The run's lock was lost and data it relies on is gone: it committed nothing.
    #[error("{0}")]
    LockLost(String),
}

impl RepoError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        RepoError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        RepoError::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// The object could not be read at all (a disk I/O error, the network, a stopped
    /// process): nothing is known about its bytes, so it is neither damaged nor intact.
    /// Everything else a read can fail with (missing, corrupt, failed authentication) is
    /// proof about the object itself.
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            RepoError::Io { source, .. } => source.kind() != io::ErrorKind::NotFound,
            RepoError::Remote(_) | RepoError::Interrupted(_) => true,
            _ => false,
        }
    }
}

/// Attach context to io results.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| RepoError::io(context(), e))
    }
}
