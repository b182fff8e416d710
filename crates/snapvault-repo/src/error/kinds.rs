//! The nested kinds of [`RepoError`](super::RepoError): keys, parity, prune's refusals,
//! remote storage and locations, interruptions and lost locks. The rules are at the top of `error.rs`.

/// Adding, removing or choosing a key was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `key remove PREFIX`: no key file's name starts so.
    #[error("no key matches {prefix:?}")]
    NoMatch { prefix: String },
    /// `key remove PREFIX`: several key files' names start so.
    #[error("key prefix {prefix:?} is ambiguous")]
    Ambiguous { prefix: String, count: usize },
    /// The key chosen to open the repository with (`--key`) names no key file.
    #[error("--key {prefix}: no key file of this repository has a name starting so")]
    ChosenNoMatch { prefix: String },
    /// The key chosen to open the repository with (`--key`) names several key files.
    #[error("--key {prefix} matches {count} key files; give more of the name")]
    ChosenAmbiguous { prefix: String, count: usize },
    #[error("refusing to remove the last key: the repository would be unreadable forever")]
    LastKey,
    #[error(
        "refusing to remove the key you are using; open the repository with another password to remove this one"
    )]
    InUse { name: String },
    #[error("this repository is not encrypted; it has no keys")]
    NotEncrypted,
}

/// Parity (Reed-Solomon recovery data) cannot be made as asked.
#[derive(Debug, thiserror::Error)]
pub enum ParityError {
    /// The level asked of a parity group.
    #[error("parity level {percent} %: choose 1 to {max}")]
    Level { percent: u8, max: u8 },
    /// The level asked of the repository (0 turns parity off).
    #[error("parity level {percent} % is out of range: use 0 to {max}")]
    ConfigLevel { percent: u8, max: u8 },
    #[error("a parity group has 1 to {max} members, not {count}")]
    Members { count: usize, max: usize },
    #[error("a parity group member is larger than 1 GiB")]
    MemberTooLarge { size: u64 },
    /// The Reed-Solomon library refused (shard counts or sizes it cannot code).
    #[error("Reed-Solomon codec: {0}")]
    Codec(String),
    /// A file parity covers is to be removed or changed, and another member of its group
    /// is damaged: the group cannot be rebuilt without baking the damage in.
    #[error(
        "{what} was left as it is: {member}, in the same parity group ({parity}), is {}, \
         and the group must be whole before it is rebuilt",
        .state.describe()
    )]
    GroupDamaged {
        what: String,
        member: String,
        parity: String,
        /// What became of the member (the binary's advice depends on it).
        state: crate::parity::store::KeptState,
    },
}

/// Why prune stopped before changing anything (restic's `ErrPacksMissing` and kin): what it
/// found means the index or the snapshots are not what deleting safely needs.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// A snapshot file cannot be read, so the data it uses is unknown.
    #[error(
        "snapshot {snapshot} cannot be read ({reason}); prune must know every snapshot's data, \
         so it changed nothing"
    )]
    SnapshotUnreadable { snapshot: String, reason: String },
    /// A tree of a snapshot cannot be read.
    #[error("a tree of snapshot {snapshot} cannot be read ({source}); prune changed nothing")]
    TreeUnreadable {
        snapshot: String,
        #[source]
        source: Box<super::RepoError>,
    },
    /// Blobs that snapshots use are not in the index: the index may be incomplete.
    #[error(
        "{count} blob(s) used by snapshots are not in the index (first: {first}); prune changed \
         nothing, since the index may be incomplete"
    )]
    BlobsNotIndexed { count: u64, first: String },
    /// A pack the index lists, holding data in use, is not in the repository.
    #[error("pack {pack} holds data in use but is missing; prune changed nothing")]
    PackMissing { pack: String },
    /// A pack holding data in use is not the size the index says.
    #[error("pack {pack} has {found} bytes but the index says {indexed}; prune changed nothing")]
    PackSize {
        pack: String,
        found: u64,
        indexed: u64,
    },
    /// The index files changed under prune (another process wrote or removed some).
    #[error(
        "the index changed while prune ran ({found} of {kept} kept packs found); nothing was deleted"
    )]
    IndexChanged { found: usize, kept: usize },
}

/// The storage behind a remote backend failed; the object's bytes are unknown (see
/// [`RepoError::is_unavailable`](super::RepoError::is_unavailable)). `doing` and `what`
/// say what was being done ("reading", "pack 3fa2…").
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The connection stalled twice in a row, the second time a new one.
    #[error(
        "{location}: {doing} {what} failed: the connection stalled twice in a row (the second \
         time a new one): {detail}: the server or the network stopped answering"
    )]
    Stalled {
        location: String,
        doing: String,
        what: String,
        detail: String,
    },
    /// Nothing answers at the address (`server`: "server", "SSH server").
    #[error(
        "{location}: {doing} {what} failed: {detail} (is the {server} running, and is the address \
         right?)"
    )]
    Refused {
        location: String,
        doing: String,
        what: String,
        detail: String,
        server: &'static str,
    },
    /// A failure that retrying may cure, still there after every retry.
    #[error("{location}: {doing} {what} failed: {detail} (gave up after {retries} retries)")]
    GaveUp {
        location: String,
        doing: String,
        what: String,
        detail: String,
        retries: usize,
    },
    /// A failure retrying cannot cure.
    #[error("{location}: {doing} {what} failed: {detail}")]
    Failed {
        location: String,
        doing: String,
        what: String,
        detail: String,
    },
    /// The server kept asking to slow down.
    #[error(
        "{location}: {doing} {what} failed: the server kept asking to slow down (gave up after \
         {retries} retries): {detail}"
    )]
    Throttled {
        location: String,
        doing: String,
        what: String,
        detail: String,
        retries: usize,
    },
    /// The server kept failing (5xx and the like).
    #[error(
        "{location}: {doing} {what} failed: the server kept failing (gave up after {retries} \
         retries): {detail}"
    )]
    ServerFailing {
        location: String,
        doing: String,
        what: String,
        detail: String,
        retries: usize,
    },
    /// The server refused the request for a reason of its own.
    #[error("{location}: {doing} {what} failed: the server refused: {detail}")]
    ServerRefused {
        location: String,
        doing: String,
        what: String,
        detail: String,
    },
    /// The S3 bucket does not exist (`target`: "bucket NAME").
    #[error(
        "{location}: the {target} does not exist; create the bucket first (snapvault does not \
         create buckets)"
    )]
    NoBucket { location: String, target: String },
    /// S3 credentials were refused.
    #[error(
        "{location}: access denied while {doing} {what}: check AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), and the bucket's policy"
    )]
    S3Denied {
        location: String,
        doing: String,
        what: String,
    },
    /// The SSH login or the folder's permissions refused.
    #[error(
        "{location}: {doing} {what}: {detail}; check the SSH key (SNAPVAULT_SFTP_KEY, ~/.ssh, \
         ssh-agent) and the folder's permissions"
    )]
    SftpDenied {
        location: String,
        doing: String,
        what: String,
        detail: String,
    },
    /// An upload's size on the server is not what was sent.
    #[error("{location}: the upload of {what} is incomplete: the server has {got} of {want} bytes")]
    UploadIncomplete {
        location: String,
        what: String,
        got: u64,
        want: u64,
    },
    /// This process's network machinery (runtime, connection pool, TLS setup) failed.
    #[error("{0}")]
    Runtime(String),
}

/// A repository location, or a setting of a remote backend, cannot be used as given;
/// nothing was contacted or changed.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The location does not parse (`form`: the forms it may take).
    #[error("invalid repository location {location:?}: {why} (expected {form})")]
    Malformed {
        location: String,
        why: String,
        form: &'static str,
    },
    /// A backend was handed a location of another scheme (`scheme`: "s3", "sftp").
    #[error("{location} is not an {scheme}: location")]
    WrongScheme {
        location: String,
        scheme: &'static str,
    },
    /// An S3 location without an endpoint needs a region.
    #[error(
        "{location}: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or give the endpoint: s3:https://host/bucket"
    )]
    NoRegion { location: String },
    /// The storage library refused the location's settings.
    #[error("cannot use the repository location {location}: {detail}")]
    Unusable { location: String, detail: String },
    /// An environment variable holds a value that is not one of the choices.
    #[error("{var}={value:?}: expected {expected}")]
    BadChoice {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    /// An environment variable that should hold a whole number does not.
    #[error("{var}={value:?} is not a whole number")]
    NotANumber { var: String, value: String },
}

/// Why a run stopped before its end. Rule 5: it says nothing about the repository's data,
/// only that the run did not get there; running again is the remedy.
#[derive(Debug, thiserror::Error)]
pub enum Interruption {
    /// The run was asked to stop (Ctrl-C, or a failure elsewhere in it) while reading.
    #[error("snapshot stopped")]
    Aborted,
    /// The run was asked to stop, or its source went away, before anything was read: `why`
    /// is the reason the stop request or the source gave.
    #[error("{why}")]
    Stopped { why: String },
    /// A worker thread ended before its work was handed over.
    #[error("the {0} stopped")]
    WorkerStopped(Worker),
    #[error("the {0} panicked")]
    WorkerPanicked(Worker),
    #[error("could not start the {0}")]
    WorkerNotStarted(Worker),
    /// Shared state was left poisoned by a panic in another thread.
    #[error("another thread panicked")]
    Poisoned,
    /// The tree writer received folders out of order (a bug, not a property of the data).
    #[error("directory order broken")]
    DirectoryOrder,
    /// A test fault (`storage::faulty`) declared the process dead.
    #[error("injected fault: the process is considered dead")]
    InjectedFault,
}

/// The threads of a run that can end early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Worker {
    /// Seals and writes packs.
    PackWriter,
    /// Hands blobs to the pack writers.
    Packer,
    /// Assembles and stores a snapshot's trees.
    TreeWriter,
}

impl std::fmt::Display for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Worker::PackWriter => "pack writer",
            Worker::Packer => "packer thread",
            Worker::TreeWriter => "tree writer",
        })
    }
}

/// Why a held lock may have been taken by others as stale (so a prune elsewhere may have
/// deleted data the run relies on); see `LockHandle::lost`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockLoss {
    /// Not refreshed for longer than the lease (a suspended computer).
    #[error(
        "the repository lock was not refreshed for {minutes} minutes (was the computer \
         asleep?), so other commands took it as stale"
    )]
    NotRefreshed { minutes: i64 },
    #[error("refreshing the repository lock failed ({reason})")]
    RefreshFailed { reason: String },
    /// Our lock object is gone from the repository (`unlock` elsewhere).
    #[error("the repository lock locks/{name} was removed by someone else")]
    Removed { name: String },
    #[error("the repository lock could not be checked ({reason})")]
    Unverifiable { reason: String },
}

/// Who holds a lock, as its lock file says (`format::lock_file::LockInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    /// The command it runs (`prune`, `snapshot`, `key remove`).
    pub command: String,
    pub pid: u32,
    pub hostname: String,
    pub username: String,
    /// When its lock file was last written: Unix seconds, and as `YYYY-MM-DD HH:MM:SS` UTC.
    pub time: i64,
    pub since: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`snapvault {}` (pid {} on {} by {}) since {} UTC",
            self.command, self.pid, self.hostname, self.username, self.since
        )
    }
}

/// A step that mends what `check` found, named by what it does: the CLI names the command
/// (rule 3) and adds it to the finding's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remedy {
    /// Rebuild the index from the pack headers.
    RebuildIndex,
    /// A pack of ours no index names: prune removes it once older than its grace period,
    /// rebuilding the index adopts it.
    PruneOrAdopt,
    /// A blob has a damaged copy beside a good one: applying repair drops the damaged one.
    DropDamagedCopy,
    /// Damage an earlier check found and this one did not read: repair's plan says what to
    /// do, reading the data again confirms it.
    RepairOrReread,
    /// The config file is damaged and a key file's copy is in use: applying repair
    /// rewrites the file from the copy.
    RewriteConfig,
    /// A key file is damaged: remove it (the other keys still open the repository).
    RemoveKey,
    /// A key file's copy of the config is damaged or out of date: applying repair seals
    /// the config in use into it.
    ResealConfigCopy,
    /// No key file holds a copy of the config: writing a new key file (a password change,
    /// even to the same password) makes one.
    WriteKeyWithCopy,
}
