//! Reading a repository that cannot be written: a write-protected drive, a disk mounted
//! read-only for safety, an archived copy. Commands that only read take a shared lock so a
//! prune cannot delete data under them; where no lock can be written they go on without
//! one (saying so once), and `--no-lock` skips it for the user who knows nothing else runs.

use anyhow::Result;
use snapvault_repo::lock::LockGuard;
use snapvault_repo::{RepoError, Repository};

use crate::cli::{Cli, Command};
use crate::cmd::Ctx;

/// `--no-lock` is for commands that only read (and `copy`'s source); a command that writes
/// always locks, so asking otherwise is an error rather than silently ignored.
pub fn no_lock_allowed(cli: &Cli) -> Result<()> {
    if !cli.global.no_lock {
        return Ok(());
    }
    match &cli.command {
        Command::Snapshots(_)
        | Command::Ls(_)
        | Command::Restore(_)
        | Command::Check(_)
        | Command::Copy(_)
        | Command::Photos(_)
        | Command::Browse(_)
        | Command::Diff(_)
        | Command::Stats(_)
        | Command::VerifyDevice(_)
        | Command::Devices(_)
        | Command::Demo(_)
        | Command::Config(_)
        | Command::Completions(_)
        | Command::Manpage(_) => Ok(()),
        _ => anyhow::bail!(
            "--no-lock is only for commands that read the repository (restore, check, ls, …): \
             a command that changes it always locks it"
        ),
    }
}

/// A shared lock for a command that only reads, or `None` when the repository cannot be
/// written (or `--no-lock`).
pub fn shared_lock(ctx: &Ctx, repo: &Repository, command: &str) -> Result<Option<LockGuard>> {
    if ctx.global.no_lock {
        return Ok(None);
    }
    match repo.lock(false, command) {
        Ok(g) => Ok(Some(g)),
        Err(e) => match cannot_write(&e) {
            Some(why) => {
                eprintln!(
                    "note: the repository at {} cannot be written ({why}): reading it without a lock",
                    repo.backend().location()
                );
                Ok(None)
            }
            None => Err(e.into()),
        },
    }
}

/// Why writing failed, when the reason is that the storage refuses writes.
fn cannot_write(e: &RepoError) -> Option<String> {
    let RepoError::Io { source, .. } = e else {
        return None;
    };
    match source.raw_os_error() {
        Some(libc::EROFS) => Some("read-only file system".into()),
        Some(libc::EACCES | libc::EPERM) => Some("no permission to write".into()),
        _ => None,
    }
}
