//! The snapvault repository: everything that turns files into sealed, deduplicated,
//! immutable objects and back. It knows nothing of photos, phones or SQLite.
//!
//! Layers, bottom up, one folder each: [`format`] (the bytes of every object, and how they
//! are sealed) → [`storage`] (where bytes live: the `Backend` trait, the local folder) →
//! [`repository`] (an open repository: keys, index, packer, chunker, locks) → [`ops`] (what
//! users do: snapshot, restore, check, prune, forget, repair, copy). [`error`] is shared by
//! all. The on-disk format is specified in `docs/format.md`.

pub mod error;
#[cfg(test)]
mod fixtures_v1;
pub mod format;
#[cfg(test)]
mod layers;
pub mod ops;
pub mod parity;
pub mod repository;
pub mod storage;
#[cfg(test)]
mod vectors;

// The module paths from before the layer folders, kept so that the other crates' imports
// need no change.
pub use format::{blob, config, crypto, id, keyfile, pack, snapshot, text, time, tree};
pub use ops::{
    archiver, checker, copy, forget, fs_source, heal, prune, readback, repair, restorer,
    revalidate, stop, survey,
};
pub use repository::{chunker, expansion, index, lock, open, packer};
pub use storage as backend;
#[cfg(feature = "test-faults")]
pub use storage::faulty;
pub use storage::{direct_io, durable, readahead, testhooks};

pub use error::{RepoError, Result};
pub use id::{BlobId, Id, PackId, SnapshotId};
pub use repository::Repository;
