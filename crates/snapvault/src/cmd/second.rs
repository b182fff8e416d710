//! Opening a second repository (`copy --to`, `repair --from`, `verify-device --also`): its
//! own password from
//! SNAPVAULT_PASSWORD2, --password-file2, --password-command2 or a prompt, and the same
//! downgrade rule as the first one.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use snapvault_repo::backend::Backend;
use snapvault_repo::{RepoError, Repository};

use crate::password::PasswordSource;

/// Where the second repository's password comes from.
pub struct Second<'a> {
    pub location: &'a str,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<String>,
    /// How messages name it: "destination repository", "repository to heal from".
    pub role: &'a str,
}

/// Context marking an error as being about the second repository (its role and location),
/// so the hint names REPO2's password settings, not the first repository's.
#[derive(Debug)]
pub struct AtSecond(pub String);

impl std::fmt::Display for AtSecond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Open it; `wrap` may put a test fault layer around its backend.
pub fn open(
    s: Second<'_>,
    wrap: impl FnOnce(Arc<dyn Backend>) -> Result<Arc<dyn Backend>>,
) -> Result<Repository> {
    let backend = wrap(super::open_backend(s.location)?)?;
    let loc = backend.location();
    let pw = PasswordSource {
        env_var: "SNAPVAULT_PASSWORD2",
        file: s.password_file,
        command: s.password_command,
    };
    let role = s.role;
    let repo = Repository::open(backend, || {
        if !pw.is_configured() && !std::io::stdin().is_terminal() {
            return Err(RepoError::PasswordUnavailable(
                "no password given for it: set SNAPVAULT_PASSWORD2, or use --password-file2 or \
                 --password-command2 (stdin is not a terminal, so snapvault cannot ask)"
                    .into(),
            ));
        }
        pw.get(&format!("the {role} {loc}"), false)
            .map_err(|e| RepoError::PasswordUnavailable(crate::exit::message(&e)))
    })
    .map_err(|e| crate::drive::explain(&loc, e))
    .with_context(|| AtSecond(format!("{role} {loc}")))?;
    super::parity::opened(&loc, &repo);
    if !repo.crypto().is_encrypted() && pw.is_configured() {
        bail!(
            "the {role} at {loc} is NOT encrypted, but a password was given for it; \
             refusing to use it, because an encrypted repository may have been replaced. If it is \
             meant to be unencrypted, run without SNAPVAULT_PASSWORD2, --password-file2 or \
             --password-command2"
        );
    }
    Ok(repo)
}
