//! The local-folder backend passes the backend conformance suite
//! (`snapvault_repo::testing::backend`); the remote backends run the same suite in
//! `snapvault-remote/tests/servers.rs`.

use snapvault_repo::Result;
use snapvault_repo::backend::{Backend, FileInfo, FileKind, LocalBackend};
use snapvault_repo::testing::backend::conformance;

#[test]
fn local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&LocalBackend::new(dir.path().join("repo")), "local");
}

/// A local backend whose `write` replaces existing files: the broken promise most costly
/// to miss (a rewritten pack loses the blobs only its first version held).
struct Overwriting(LocalBackend);

impl Backend for Overwriting {
    fn location(&self) -> String {
        self.0.location()
    }
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        self.0.exists(kind, name)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.0.read(kind, name)
    }
    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.0.read_range_into(kind, name, offset, len, buf)
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.0.remove(kind, name)?;
        self.0.write(kind, name, data)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        self.0.list(kind)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.0.size(kind, name)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.0.remove(kind, name)
    }
    fn create_layout(&self) -> Result<()> {
        self.0.create_layout()
    }
}

/// The suite can fail: a backend that overwrites files does not pass it.
#[test]
fn the_suite_finds_a_backend_that_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let b = Overwriting(LocalBackend::new(dir.path().join("repo")));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        conformance(&b, "overwriting")
    }));
    let msg = r
        .expect_err("an overwriting backend passed the conformance suite")
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(msg.contains("backend overwriting: no replacement"), "{msg}");
}
