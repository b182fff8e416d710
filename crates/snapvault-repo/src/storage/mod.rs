//! The storage layer: the [`Backend`] contract and [`FileKind`] (`backend.rs`), the
//! local-folder backend, and how it writes and reads a disk (durable writes, direct I/O,
//! read-ahead hints), plus the test hooks that wrap or pause a backend.

pub mod backend;
pub(crate) mod direct_io;
pub(crate) mod direct_read;
pub(crate) mod durable;
/// Fault injection for tests: only in builds with the `test-faults` feature.
#[cfg(feature = "test-faults")]
pub mod faulty;
mod local;
pub(crate) mod readahead;
pub mod testhooks;

#[cfg(test)]
pub(crate) use backend::LocalBackend;
pub use backend::{Backend, FileInfo, FileKind, PackBuffer};
