//! The snapvault repository: everything that turns files into sealed, deduplicated,
//! immutable objects and back. It knows nothing of photos, phones or SQLite.
//!
//! Layering, bottom up: [`backend`] (where bytes live) → [`crypto`] / [`keyfile`] (who may
//! read them) → [`pack`] / [`index`] (how blobs are stored and found) → [`tree`] /
//! [`snapshot`] (what a backup is) → [`archiver`] / [`restorer`] / [`checker`] (what users do).
//! The on-disk format is specified in `docs/format.md`.

pub mod archiver;
pub mod backend;
pub mod blob;
pub mod checker;
pub mod chunker;
pub mod config;
pub mod copy;
pub mod crypto;
pub mod direct_io;
pub mod durable;
pub mod error;
pub mod expansion;
/// Fault injection for tests: only in builds with the `test-faults` feature.
#[cfg(feature = "test-faults")]
pub mod faulty;
pub mod forget;
pub mod fs_source;
pub mod heal;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod lock;
pub mod open;
pub mod pack;
pub mod packer;
pub mod prune;
pub mod readahead;
pub mod readback;
pub mod repair;
pub mod repository;
pub mod restorer;
pub mod revalidate;
pub mod snapshot;
pub mod stop;
pub mod survey;
pub mod testhooks;
pub mod text;
pub mod time;
pub mod tree;
#[cfg(test)]
mod vectors;

pub use error::{RepoError, Result};
pub use id::{BlobId, Id, PackId, SnapshotId};
pub use repository::Repository;
