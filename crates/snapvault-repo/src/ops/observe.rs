//! The hooks through which operations report progress and ask the binary what only it
//! knows (photo awareness). Every method defaults to doing nothing; [`NoHooks`] is the
//! observer of a caller that wants none of it (tests, tools). The binary implements them
//! for its progress output and plugs in `snapvault-media` as the [`Inspector`].

use crate::format::blob::Compression;
use crate::format::id::{BlobId, PackId, SnapshotId};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{MediaMeta, Node};
use crate::ops::fs_source::{Change, SourceEntry};

/// Progress and error reporting of a snapshot; all methods default to doing nothing.
pub trait Observer: Sync {
    fn file_started(&self, _path: &[u8], _size: u64) {}
    /// A file unchanged since the parent snapshot: its node is reused, nothing is read.
    fn file_unchanged(&self, _path: &[u8], _size: u64) {}
    fn bytes_read(&self, _n: u64) {}
    /// A file or folder could not be read; it is left out of the snapshot.
    fn skipped(&self, _path: &[u8], _error: &std::io::Error) {}
    /// A file that changed while it was read (its length read differs from its length
    /// listed, or its times say it was written meanwhile), so the bytes stored (those
    /// read) may be no version the file ever had. It is kept (better than nothing) and the
    /// snapshot is marked incomplete.
    fn changed_while_read(&self, _path: &[u8], _change: Change) {}
    /// A file as recorded in the new snapshot (called from the tree writer, in order).
    fn recorded(&self, _dir: &[u8], _node: &Node) {}
    /// A folder unchanged since the parent snapshot, down to its last subfolder: the
    /// parent's tree is reused as it is (neither built, encoded nor stored again).
    fn folder_reused(&self, _dir: &[u8]) {}
    /// The last look at the snapshot before it is written (every file is recorded by then):
    /// a source may add what it knows about itself (its library account).
    fn annotate(&self, _snapshot: &mut Snapshot) {}
}

/// Photo awareness plugged in by the binary; the repository does not interpret it.
pub trait Inspector: Sync {
    /// Is zstd worth trying on this file's chunks? `head` is its first chunk.
    fn compression(&self, _name: &[u8], _head: &[u8], level: i32) -> Compression {
        Compression::Try(level)
    }
    /// Metadata from the first chunk of a file (no second read of the file).
    fn inspect(&self, _path: &[u8], _head: &[u8], _entry: &SourceEntry) -> Option<MediaMeta> {
        None
    }
    /// For a file whose metadata lies beyond its first chunk (a video with `moov` at the
    /// end): a probe that sees every later chunk as it streams past, so the metadata still
    /// comes from the bytes read for chunking.
    fn tail_probe(
        &self,
        _path: &[u8],
        _head: &[u8],
        _entry: &SourceEntry,
    ) -> Option<Box<dyn TailProbe>> {
        None
    }
}

/// Sees the chunks after the first one; see [`Inspector::tail_probe`].
pub trait TailProbe {
    /// `offset` is the position of `data` in the file.
    fn chunk(&mut self, offset: u64, data: &[u8]);
    /// Improve the metadata found in the head, if the tail had more.
    fn finish(self: Box<Self>, head_meta: Option<MediaMeta>) -> Option<MediaMeta>;
}

/// Progress of a restore.
pub trait RestoreObserver: Sync {
    fn file_restored(&self, _path: &[u8], _bytes: u64) {}
}

/// Progress of a check (and of the survey of packs, which reads them the same way).
pub trait CheckObserver: Sync {
    fn pack_read(&self, _bytes: u64) {}
}

/// Progress of prune; all default to nothing.
pub trait PruneObserver: Sync {
    /// A phase starts (`"marking used blobs"`, …).
    fn step(&self, _what: &str) {}
    fn pack_done(&self, _bytes: u64) {}
    /// A problem that did not stop prune (a damaged pack left in place).
    fn warning(&self, _what: &PruneWarning) {}
}

/// A problem that did not stop prune. [`PruneWarning::describe`] states the facts; the
/// command that looks closer is the CLI's to name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PruneWarning {
    /// A pack chosen for repacking holds a damaged blob: it was left as it is (reading
    /// every byte back tells what else is damaged).
    DamagedPackKept { pack: PackId, blob: BlobId },
}

impl PruneWarning {
    pub fn describe(&self) -> String {
        match self {
            PruneWarning::DamagedPackKept { pack, blob } => format!(
                "pack {} holds a damaged blob ({}); left as it is",
                pack.to_hex(),
                blob.short()
            ),
        }
    }
}

/// Progress of a copy; all methods default to doing nothing.
pub trait CopyObserver: Sync {
    /// Comparing the trees of `pairs` snapshots with their copies (before copying).
    fn learning(&self, _pairs: usize) {}
    /// Snapshot `n` (0-based) of the `of` to copy is starting.
    fn snapshot_started(&self, _n: usize, _of: usize, _source: &SnapshotId) {}
    /// A data blob is done: `size` its plaintext length, `read` the bytes read from the
    /// source for it (0 when the destination was known to have it).
    fn blob_done(&self, _size: u64, _read: u64) {}
}

/// Every hook doing nothing.
pub struct NoHooks;
impl Observer for NoHooks {}
impl Inspector for NoHooks {}
impl RestoreObserver for NoHooks {}
impl CheckObserver for NoHooks {}
impl PruneObserver for NoHooks {}
impl CopyObserver for NoHooks {}
