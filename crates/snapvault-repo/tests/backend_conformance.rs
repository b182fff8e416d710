//! The local-folder backend passes the backend conformance suite
//! (`snapvault_repo::testing::backend`); the remote backends run the same suite in
//! `snapvault-remote/tests/servers.rs`.

use snapvault_repo::backend::LocalBackend;
use snapvault_repo::testing::backend::conformance;

#[test]
fn local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&LocalBackend::new(dir.path().join("repo")), "local");
}
