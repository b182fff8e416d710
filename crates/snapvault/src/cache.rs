//! The local cache folder (`$XDG_CACHE_HOME/snapvault/<repository id>/`, else
//! `~/.cache/snapvault/<id>/`). Everything in it is disposable and rebuilt from the
//! repository when missing, so a cache folder that cannot be created or written (a
//! read-only home, a full disk) means running without it: slower, never a failure.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result};

/// The cache folder for `repo_id`, created if missing; `None` (with a note, once per run)
/// when it cannot be used.
pub fn dir(repo_id: &str) -> Option<PathBuf> {
    match usable_dir(repo_id) {
        Ok(d) => Some(d),
        Err(e) => {
            static NOTE: Once = Once::new();
            NOTE.call_once(|| {
                eprintln!(
                    "note: running without the cache ({}): repository metadata is read anew",
                    crate::exit::message(&e)
                );
            });
            None
        }
    }
}

fn usable_dir(repo_id: &str) -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(
            std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set")?,
        )
        .join(".cache"),
    };
    let d = base.join("snapvault").join(repo_id);
    // Owner-only: the photo catalog holds paths and capture dates in plain text.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .with_context(|| format!("creating cache folder {}", d.display()))?;
    for p in [base.join("snapvault"), d.clone()] {
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700));
    }
    // An existing folder may still refuse writes (a read-only mount): find out now rather
    // than half-way through a command.
    let probe = d.join(format!(".probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .with_context(|| format!("cache folder {} is not writable", d.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(d)
}

/// Write a cache file atomically (temp + rename), so a crash never leaves half a file.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
