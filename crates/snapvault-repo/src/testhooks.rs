//! Hooks that let end-to-end tests steer the real binary: fault injection
//! (`SNAPVAULT_TEST_FAULT`, see [`crate::faulty`]), read by `prune`, `forget` and `copy`.
//!
//! They exist only in builds with the `test-faults` feature, which only test builds enable
//! (the crates' dev-dependencies ask for it; `cargo build --release` never does). Without
//! it every hook here is a no-op that reads no environment variable, so a user's
//! environment cannot make a released snapvault fail on purpose.

use std::sync::Arc;

use crate::backend::Backend;
use crate::error::Result;

/// Does this build honour the test hooks?
pub const ENABLED: bool = cfg!(feature = "test-faults");

/// Is a fault to be injected (`SNAPVAULT_TEST_FAULT` set, in a build with the hooks)?
pub fn faults_requested() -> bool {
    imp::fault_spec().is_some()
}

/// `backend` behind the fault injector `SNAPVAULT_TEST_FAULT` describes; `backend` itself
/// when none is asked for, or in a build without the hooks.
pub fn with_faults(backend: Arc<dyn Backend>) -> Result<Arc<dyn Backend>> {
    match imp::fault_spec() {
        Some(spec) => imp::wrap(backend, &spec),
        None => Ok(backend),
    }
}

#[cfg(not(feature = "test-faults"))]
mod imp {
    use super::*;

    pub fn fault_spec() -> Option<String> {
        None
    }

    pub fn wrap(backend: Arc<dyn Backend>, _spec: &str) -> Result<Arc<dyn Backend>> {
        Ok(backend)
    }
}

#[cfg(feature = "test-faults")]
mod imp {
    use super::*;
    use crate::faulty::FaultyBackend;

    const FAULT_ENV: &str = "SNAPVAULT_TEST_FAULT";

    pub fn fault_spec() -> Option<String> {
        std::env::var(FAULT_ENV).ok().filter(|s| !s.is_empty())
    }

    pub fn wrap(backend: Arc<dyn Backend>, spec: &str) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(FaultyBackend::from_spec(backend, spec)?))
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    /// The features each workspace crate is built with, from `cargo tree` over the edges
    /// `edges` (`normal`: what `cargo build --release` compiles; `normal,dev`: a test build).
    fn features(edges: &str) -> String {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let out = Command::new(env!("CARGO"))
            .current_dir(root)
            .args([
                "tree",
                "--offline",
                "--locked",
                "--workspace",
                "--prefix",
                "none",
            ])
            .args(["-e", edges, "-f", "{p} [{f}]"])
            .output()
            .expect("run cargo tree");
        assert!(
            out.status.success(),
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A release build (`cargo build --release`, the binary users get) compiles no crate
    /// with `test-faults`, so `SNAPVAULT_TEST_FAULT` is not even read; a test build has
    /// the hooks (the e2e tests drive the binary through them).
    #[test]
    fn only_test_builds_have_the_hooks() {
        let release = features("normal");
        let hooked: Vec<&str> = release
            .lines()
            .filter(|l| l.contains("test-faults"))
            .collect();
        assert!(hooked.is_empty(), "built with test hooks: {hooked:?}");
        assert!(release.contains("snapvault-repo v"), "{release}");
        let test = features("normal,dev");
        assert!(
            test.lines()
                .any(|l| l.starts_with("snapvault-repo v") && l.contains("test-faults")),
            "a test build lacks the hooks:\n{test}"
        );
    }
}
