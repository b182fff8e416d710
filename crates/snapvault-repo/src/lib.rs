//! The snapvault repository: everything that turns files into sealed, deduplicated,
//! immutable objects and back.
//!
//! Of photos and phones it derives nothing (no EXIF, no media types, no phone protocol, no
//! SQLite): it stores, sealed, what the binary tells it — a file's [`tree::MediaMeta`], a
//! device snapshot's [`snapshot::Device`], a phone library's [`snapshot::LibraryAccount`] —
//! and reads back only what a repository question needs: the device's udid and name
//! (which snapshots belong together), [`tree::MediaMeta::is_photo`] and the capture time
//! (`forget`'s photo-loss guard, `check`'s damaged files). `docs/design.md` says why.
//!
//! Layers, bottom up, one folder each: `format/` (the bytes of every object, and how they
//! are sealed) → `storage/` (where bytes live: the [`backend::Backend`] trait, the local
//! folder) → `repository/` (an open [`Repository`]: keys, index, packer, chunker, locks) →
//! `ops/` (what users do: snapshot, restore, check, prune, forget, repair, copy). A lower
//! layer never imports a higher one (a unit test checks it). [`error`] is shared by all.
//! The folders are the crate's own layout; callers see one module per concept, listed
//! below. The on-disk format is specified in `docs/format.md`.

pub mod error;
#[cfg(test)]
mod fixtures_v1;
pub(crate) mod format;
#[cfg(test)]
mod layers;
pub(crate) mod ops;
/// Reed-Solomon parity files: a codec of its own (reads through closures), beside the
/// repository layer.
pub mod parity;
pub(crate) mod repository;
pub(crate) mod storage;
/// Shared test support: only in builds with the `testing` feature.
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(test)]
mod vectors;

// The public API: one module per concept, whatever folder it lives in (the folders are
// the crate's own layout), and the types every caller needs at the root. Modules used only
// inside the crate (direct I/O, durable writes, read-ahead, the revalidation of a snapshot
// without its lock, the hooks' own module) are not exported.

// Format: the bytes of every object.
pub use format::{blob, config, crypto, id, keyfile, pack, snapshot, text, time, tree};
// Storage: where the bytes live.
pub use storage::backend;
#[cfg(feature = "test-faults")]
pub use storage::faulty;
pub use storage::testhooks;
// Repository: an open repository and what it holds.
pub use repository::{chunker, config_copy, expansion, index, lock, open, packer, pending, walk};
// Operations: what users do.
pub use ops::{
    archiver, checker, copy, forget, fs_source, heal, prune, readback, repair, restorer, stop,
    survey,
};

pub use error::{
    Interruption, KeyError, LocationError, LockHolder, LockLoss, ParityError, PruneError, Remedy,
    RemoteError, RepoError, Result, Worker,
};
pub use format::id::{BlobId, Id, PackId, SnapshotId};
pub use repository::{INDEX_BATCH_BYTES, LoadedIndex, Repository, SnapshotEntry, parallel_map};
