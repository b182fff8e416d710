//! The repository's error type. Every variant names the thing that is wrong.
//!
//! # Rules
//!
//! 1. **One kind per thing a caller may act on.** Add a variant (or a variant of a nested
//!    kind such as [`KeyError`], [`ParityError`], [`PruneError`], [`RemoteError`],
//!    [`LocationError`]) when a caller would choose differently on it: an exit code, a
//!    hint, a retry, a fallback. Do not add a catch-all `String` kind: a message that fits
//!    no kind is a new kind.
//! 2. **A kind carries the facts, not a sentence.** Which file, pack, snapshot or key (its
//!    id or name), which setting and what was expected, the numbers that disagree. The
//!    `#[error]` text is built from those fields and is the message users see; a caller
//!    never parses it (match the variant and read the fields instead).
//! 3. **The message says what is wrong and what was (not) changed; it names no command.**
//!    Advice that names a `snapvault` command or switch ("run `snapvault check`") is the
//!    CLI's: it maps the kind to an exit code and a hint (crates/snapvault/src/exit.rs),
//!    where a change of command names is one edit and a test covers each mapping.
//! 4. **A cause stays a cause.** An error that happened underneath is kept as `#[source]`
//!    (boxed if it is a `RepoError`), not flattened into a string, so
//!    [`RepoError::is_unavailable`] and the CLI see through it.
//! 5. **Unavailable is not damaged.** A read that could not happen (disk, network, a stopped
//!    process) is [`RepoError::Io`], [`RepoError::Remote`] or [`RepoError::Interrupted`];
//!    everything else a read returns is proof about the object. Keep that line when adding
//!    kinds: `is_unavailable` is how check, repair and prune tell "retry later" from "lost".

use std::io;
use std::path::PathBuf;

mod kinds;

pub use kinds::{
    Interruption, KeyError, LocationError, LockHolder, LockLoss, ParityError, PruneError, Remedy,
    RemoteError, Worker,
};

pub type Result<T, E = RepoError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// No config file at this location (the CLI suggests `init`).
    #[error("there is no repository at {0}")]
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
    /// The storage behind a remote backend failed (network, server, credentials, bucket).
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A repository location or a remote backend's setting cannot be used as given.
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("wrong password: no key in the repository opens with it")]
    WrongPassword,
    /// The password could not be obtained (the caller's reason: no terminal, a failing
    /// password command); no key was tried.
    #[error("{0}")]
    PasswordUnavailable(String),
    /// Another process holds a conflicting lock: `holder` says who and since when (from
    /// its lock file); `None` when other processes kept taking the exclusive lock marker
    /// while this one tried.
    #[error(
        "repository is in use{}",
        match holder {
            Some(h) => format!(" by {h}"),
            None => ": another process keeps taking the exclusive lock".to_string(),
        }
    )]
    Locked { holder: Option<Box<LockHolder>> },
    /// A lock file that cannot be read is in the way (`marker`: the exclusive lock marker,
    /// else a lock file); it is nobody's for sure, so it is left for `unlock --remove-all`.
    #[error(
        "repository is in use{}",
        if *marker {
            format!(": an unreadable exclusive lock marker locks/{file}")
        } else {
            format!(" by an unreadable lock file locks/{file}")
        }
    )]
    LockUnreadable { file: String, marker: bool },
    #[error("corrupt or invalid data in {what}: {reason}")]
    Corrupt { what: String, reason: String },
    /// A config (the repository's file, `of` which one, or a key file's copy) is damaged;
    /// from `Repository::open`: no intact copy was found either, so the repository cannot
    /// be opened until the file is put back.
    #[error("corrupt or invalid data in config{}: {reason}", of.as_ref().map(|o| format!(" of {o}")).unwrap_or_default())]
    ConfigDamaged { of: Option<String>, reason: String },
    #[error("authentication failed for {0}: the data was modified or damaged")]
    Auth(String),
    /// A piece of data a snapshot needs is not listed as stored (the index lacks it).
    #[error("stored data {0} is missing from the repository")]
    MissingBlob(String),
    #[error("no snapshot matches {0:?}")]
    NoSuchSnapshot(String),
    #[error("snapshot id prefix {prefix:?} is ambiguous: it matches {count} snapshots")]
    AmbiguousSnapshot { prefix: String, count: usize },
    /// Text that should be an object's id (64 hex digits) is not one.
    #[error("not a 64-hex-digit id: {text:?}")]
    NotAnId { text: String },
    /// The config says the repository is encrypted, but it has no key file: nothing can
    /// open it until the folder `keys` is put back.
    #[error(
        "corrupt or invalid data in keys: the config says the repository is encrypted, but there \
         is no key file in keys/"
    )]
    NoKeyFiles,
    /// Making or using parity was refused.
    #[error(transparent)]
    Parity(#[from] ParityError),
    /// Adding, removing or choosing a key was refused.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Prune stopped before changing anything: what it found would make it delete data in
    /// use.
    #[error(transparent)]
    Prune(#[from] PruneError),
    /// A pack could not be read while deciding what to change; nothing was changed.
    #[error(
        "pack {pack} cannot be read ({source}); nothing was changed: a pack that cannot be read \
         is not known to be damaged. Run again when the storage answers"
    )]
    PackUnreadable {
        pack: String,
        #[source]
        source: Box<RepoError>,
    },
    #[error("source path {0} does not exist")]
    SourceMissing(PathBuf),
    /// A source path is a symlink whose target does not exist.
    #[error("source path {} is a symlink to {}, which does not exist", path.display(), target.display())]
    SourceDanglingSymlink { path: PathBuf, target: PathBuf },
    /// Two source paths would be stored under the same top-level name.
    #[error("two source paths end in the same name {name:?}; back them up in separate snapshots")]
    SourceNameClash { name: String },
    /// The sources held nothing to store (no root could be made).
    #[error("nothing to back up")]
    NothingToBackUp,
    #[error("restore target {} exists and is not a folder", .0.display())]
    RestoreTargetNotFolder(PathBuf),
    /// `copy` was given the same repository as source and destination.
    #[error("the destination is the source repository itself")]
    CopyToItself,
    #[error("compression level {level} is out of range: use {} to {}", Self::COMPRESSION_LEVELS.start(), Self::COMPRESSION_LEVELS.end())]
    CompressionLevel { level: i32 },
    /// A name that cannot be a file of this kind (a path separator, a dot file, …).
    #[error("invalid {kind} name {name:?}")]
    BadFileName { kind: &'static str, name: String },
    /// A test fault specification (`SNAPVAULT_TEST_FAULT`) that does not parse.
    #[error("invalid fault spec {spec:?}: expected OPS@N[:EFFECT]")]
    BadFaultSpec { spec: String },
    /// The run stopped before its end; nothing is known about the data it did not reach.
    #[error("operation interrupted: {0}")]
    Interrupted(#[from] Interruption),
    /// The run's lock may have been taken by others (`why`), and data the new snapshot
    /// reuses is gone meanwhile: `missing` files or folders, `example` the first. The
    /// snapshot was not saved.
    #[error(
        "{why}; meanwhile data this snapshot reuses was removed (by a prune elsewhere?): \
         {missing} file(s) or folder(s), e.g. {example}; the snapshot was NOT saved (what it \
         wrote is kept and reused by the next run)"
    )]
    LockLost {
        why: LockLoss,
        missing: u64,
        example: String,
    },
}

impl RepoError {
    /// The zstd levels a repository may be created with.
    pub const COMPRESSION_LEVELS: std::ops::RangeInclusive<i32> = 1..=22;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Rule 3: no message names a `snapvault` command (the CLI adds those as hints), and
    /// rule 2: the facts are in the message built from the fields.
    #[test]
    fn messages_name_no_command() {
        let boxed = || Box::new(RepoError::corrupt("tree 3f", "too short"));
        let all: Vec<RepoError> = vec![
            RepoError::NotFound("/r".into()),
            RepoError::ConfigDamaged {
                of: Some("/r".into()),
                reason: "it is missing".into(),
            },
            RepoError::PackUnreadable {
                pack: "3f".into(),
                source: boxed(),
            },
            RepoError::SourceDanglingSymlink {
                path: "/a".into(),
                target: "/b".into(),
            },
            RepoError::SourceNameClash { name: "a".into() },
            RepoError::NothingToBackUp,
            RepoError::RestoreTargetNotFolder("/t".into()),
            RepoError::CopyToItself,
            RepoError::CompressionLevel { level: 99 },
            RepoError::BadFileName {
                kind: "pack",
                name: "../x".into(),
            },
            RepoError::BadFaultSpec { spec: "x".into() },
            KeyError::NoMatch {
                prefix: "ab".into(),
            }
            .into(),
            KeyError::Ambiguous {
                prefix: "a".into(),
                count: 2,
            }
            .into(),
            KeyError::ChosenNoMatch {
                prefix: "ab".into(),
            }
            .into(),
            KeyError::ChosenAmbiguous {
                prefix: "a".into(),
                count: 2,
            }
            .into(),
            KeyError::LastKey.into(),
            KeyError::InUse { name: "ab".into() }.into(),
            KeyError::NotEncrypted.into(),
            PruneError::SnapshotUnreadable {
                snapshot: "ab12".into(),
                reason: "too short".into(),
            }
            .into(),
            PruneError::TreeUnreadable {
                snapshot: "ab12".into(),
                source: boxed(),
            }
            .into(),
            PruneError::BlobsNotIndexed {
                count: 3,
                first: "blob 3f".into(),
            }
            .into(),
            PruneError::PackMissing { pack: "3f".into() }.into(),
            PruneError::PackSize {
                pack: "3f".into(),
                found: 1,
                indexed: 2,
            }
            .into(),
            PruneError::IndexChanged { found: 1, kept: 2 }.into(),
            RepoError::Locked { holder: None },
            RepoError::NotAnId { text: "xy".into() },
            RepoError::LockLost {
                why: LockLoss::NotRefreshed { minutes: 40 },
                missing: 2,
                example: "DCIM/IMG_1.HEIC".into(),
            },
            Interruption::WorkerStopped(Worker::PackWriter).into(),
            Interruption::Stopped {
                why: "the iPhone was disconnected".into(),
            }
            .into(),
        ];
        for e in &all {
            let m = e.to_string();
            assert!(!m.contains("`snapvault"), "{m}");
        }
        assert_eq!(
            all[8].to_string(),
            "compression level 99 is out of range: use 1 to 22"
        );
        assert_eq!(
            all[1].to_string(),
            "corrupt or invalid data in config of /r: it is missing"
        );
        let n = all.len();
        assert_eq!(
            all[n - 2].to_string(),
            "operation interrupted: the pack writer stopped"
        );
        assert!(
            all[n - 3]
                .to_string()
                .starts_with("the repository lock was not refreshed for 40 minutes"),
            "{}",
            all[n - 3]
        );
    }
}
