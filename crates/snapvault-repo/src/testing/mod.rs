//! Shared test support, behind the `testing` feature (test builds only): one copy of what
//! the tests of this crate and of the crates above it need, instead of a copy per test file.
//!
//! - [`backend`]: the conformance suite every `Backend` passes (local here; S3 and SFTP in
//!   `snapvault-remote`).

pub mod backend;
