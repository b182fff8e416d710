//! Hooks that let end-to-end tests steer the real binary: fault injection
//! (`SNAPVAULT_TEST_FAULT`, see `crate::faulty`), read by `prune`, `forget` and `copy`,
//! and by every command that keeps parity (beneath its parity guard, so parity files are
//! write points too), and pause points (`SNAPVAULT_TEST_PAUSE`).
//!
//! They exist only in builds with the `test-faults` feature, which only test builds enable
//! (the crates' dev-dependencies ask for it; `cargo build --release` never does). Without
//! it every hook here is a no-op that reads no environment variable, so a user's
//! environment cannot make a released snapvault fail on purpose or stop half-way.
//!
//! **Pause points** make a process wait at a named step until the test releases it, so a
//! test looks at the repository at a defined moment instead of racing the process.
//! `SNAPVAULT_TEST_PAUSE=POINT@N[,POINT@N…]` picks the N-th time (1-based) the process
//! reaches POINT; `SNAPVAULT_TEST_PAUSE_DIR` is a folder for the handshake. There the
//! process creates `POINT@N.paused` (holding its pid), then waits until the test creates
//! `POINT@N.go`. Points: `locked` (a command holds its repository lock), `lock-wait` (a
//! lock was refused and `--retry-lock` waits to try again), `write-<kind>` (a file of that
//! kind — `pack`, `index`, `snapshot`, … — is being written to a local folder: its
//! temporary file exists and holds nothing yet).

use std::sync::Arc;

use crate::error::Result;
use crate::storage::Backend;

/// Does this build honour the test hooks?
pub(crate) const ENABLED: bool = cfg!(feature = "test-faults");

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

/// A pause point (see the module documentation).
pub fn pause(point: &str) {
    imp::pause(point)
}

/// The pause point `write-<kind>`: a file of `kind` is being written.
pub(crate) fn pause_write(kind: crate::storage::FileKind) {
    if ENABLED {
        imp::pause(&format!("write-{}", kind.name()))
    }
}

#[cfg(not(feature = "test-faults"))]
mod imp {
    use super::*;

    pub(crate) fn fault_spec() -> Option<String> {
        None
    }

    pub fn wrap(backend: Arc<dyn Backend>, _spec: &str) -> Result<Arc<dyn Backend>> {
        Ok(backend)
    }

    pub fn pause(_point: &str) {}
}

#[cfg(feature = "test-faults")]
mod imp {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Mutex, OnceLock};
    use std::time::Duration;

    use super::*;
    use crate::storage::faulty::FaultyBackend;

    const FAULT_ENV: &str = "SNAPVAULT_TEST_FAULT";
    const PAUSE_ENV: &str = "SNAPVAULT_TEST_PAUSE";
    const PAUSE_DIR_ENV: &str = "SNAPVAULT_TEST_PAUSE_DIR";

    pub(crate) fn fault_spec() -> Option<String> {
        std::env::var(FAULT_ENV).ok().filter(|s| !s.is_empty())
    }

    pub fn wrap(backend: Arc<dyn Backend>, spec: &str) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(FaultyBackend::from_spec(backend, spec)?))
    }

    struct Pauses {
        dir: PathBuf,
        /// (point, occurrence) to pause at.
        wanted: Vec<(String, u64)>,
        seen: Mutex<HashMap<String, u64>>,
    }

    fn pauses() -> Option<&'static Pauses> {
        static P: OnceLock<Option<Pauses>> = OnceLock::new();
        P.get_or_init(|| {
            let spec = std::env::var(PAUSE_ENV).ok().filter(|s| !s.is_empty())?;
            let dir = std::env::var_os(PAUSE_DIR_ENV).map(PathBuf::from);
            let Some(dir) = dir else {
                eprintln!("test hook: {PAUSE_ENV} needs {PAUSE_DIR_ENV}; not pausing");
                return None;
            };
            let mut wanted = Vec::new();
            for item in spec.split(',') {
                let (point, n) = item.split_once('@').unwrap_or((item, "1"));
                match n.trim().parse::<u64>() {
                    Ok(n) if n > 0 => wanted.push((point.trim().to_string(), n)),
                    _ => eprintln!("test hook: ignoring {PAUSE_ENV} item {item:?}"),
                }
            }
            Some(Pauses {
                dir,
                wanted,
                seen: Mutex::new(HashMap::new()),
            })
        })
        .as_ref()
    }

    pub fn pause(point: &str) {
        let Some(p) = pauses() else {
            return;
        };
        if !p.wanted.iter().any(|(w, _)| w == point) {
            return;
        }
        let n = {
            let mut seen = p.seen.lock().unwrap_or_else(|e| e.into_inner());
            let n = seen.entry(point.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        if !p.wanted.iter().any(|(w, k)| w == point && *k == n) {
            return;
        }
        let label = format!("{point}@{n}");
        let go = p.dir.join(format!("{label}.go"));
        let paused = p.dir.join(format!("{label}.paused"));
        // Written under a temporary name and renamed, so the test never reads half a pid.
        let tmp = p.dir.join(format!(".{label}.{}", std::process::id()));
        let announced = std::fs::write(&tmp, std::process::id().to_string())
            .and_then(|()| std::fs::rename(&tmp, &paused));
        if let Err(e) = announced {
            eprintln!(
                "test hook: cannot announce pause {label} in {}: {e}",
                p.dir.display()
            );
            return;
        }
        while !go.exists() {
            std::thread::sleep(Duration::from_millis(2));
        }
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
    /// with `test-faults`, so neither `SNAPVAULT_TEST_FAULT` nor the pause points are in
    /// it; a test build has the hooks (the e2e tests drive the binary through them).
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
