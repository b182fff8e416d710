//! A repository on an external drive that is not plugged in: its folder and the folders
//! above it are missing. Saying "there is no repository (run `snapvault init`)" then leads
//! people to create a new repository on the internal disk, so name the missing folder and
//! ask about the drive instead; `init` creates missing parents only when asked.

use std::path::{Path, PathBuf};

use snapvault_repo::RepoError;

/// The repository's folder and its parent are both missing.
#[derive(Debug)]
pub struct DriveMissing {
    /// The topmost missing folder (`/media/T7` for `/media/T7/photos`).
    pub missing: PathBuf,
    /// The repository's location.
    pub location: String,
    /// Raised by `init`, which could create it (`--create-parents`).
    pub init: bool,
}

impl std::fmt::Display for DriveMissing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} does not exist — is the drive plugged in? (repository {})",
            self.missing.display(),
            self.location
        )?;
        if self.init {
            write!(
                f,
                " (init does not create the folders above the repository unless --create-parents)"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for DriveMissing {}

/// For a local repository location whose folder and parent are both missing, the topmost
/// missing folder. `None` for remote locations, or when the parent exists (then it is just
/// a folder without a repository yet).
pub fn missing_ancestor(location: &str) -> Option<PathBuf> {
    if snapvault_remote::is_remote(location) {
        return None;
    }
    let path = Path::new(location);
    let exists = |p: &Path| p.as_os_str().is_empty() || p.symlink_metadata().is_ok();
    if exists(path) || path.parent().is_none_or(exists) {
        return None;
    }
    let mut top = path.parent()?;
    while let Some(up) = top.parent().filter(|u| !exists(u)) {
        top = up;
    }
    Some(top.to_path_buf())
}

/// Turn "no repository at LOCATION" into "…/T7 does not exist — is the drive plugged in?"
/// when the drive's folder is missing; other errors pass through.
pub fn explain(location: &str, e: RepoError) -> anyhow::Error {
    match (&e, missing_ancestor(location)) {
        (RepoError::NotFound(_), Some(missing)) => DriveMissing {
            missing,
            location: location.to_string(),
            init: false,
        }
        .into(),
        _ => e.into(),
    }
}
