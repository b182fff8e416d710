//! Shared test support, behind the `testing` feature (test builds only): one copy of what
//! the tests of this crate (unit tests and `tests/`) and of the crates above it need,
//! instead of a copy per test file.
//!
//! - [`backend`]: the conformance suite every `Backend` passes (local here; S3 and SFTP in
//!   `snapvault-remote`).
//! - [`data`]: deterministic bytes, photo-like files, folder contents, copies, bit flips.
//! - [`repo`]: a small test repository (small chunks, 1 MiB packs, a cheap KDF), opening it,
//!   snapshot options for a folder, `check --read-data`, restore into a folder.
//! - [`trees`]: crafted folder listings (shared, missing) and snapshots naming them.

pub mod backend;
pub mod data;
pub mod repo;
pub mod trees;

pub use data::{Content, copy_dir, files_under, flipped, noise, photo_file, write};
pub use repo::{
    FAST_KDF, PASSWORD, check_all, create_small_repo, folder_options, local, open, open_with,
    open_with_password, restore_to,
};
