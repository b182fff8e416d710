//! The format layer: what the repository's objects look like as bytes, and how they are
//! sealed. Pure encoding and decoding of ids, blobs, packs, trees, snapshots, the config and
//! key files; every decoder bounds what it reads (the byte layout is `docs/format.md`).

pub mod blob;
pub mod config;
pub mod crypto;
pub mod id;
pub mod index_file;
pub mod keyfile;
pub mod lock_file;
pub mod pack;
pub mod snapshot;
pub mod text;
pub mod time;
pub mod tree;
