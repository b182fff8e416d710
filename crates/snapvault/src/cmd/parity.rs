//! `snapvault parity set`, and keeping parity up to date after the commands that write or
//! delete repository files (snapshot, forget, prune, copy into its destination, key, repair):
//! each is wrapped by [`watch`] before and [`keep_up`] after (docs/format.md §15.5).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use snapvault_repo::backend::{Backend, FileKind};
use snapvault_repo::config::Config;
use snapvault_repo::parity::MemberKind;
use snapvault_repo::parity::store::{self, Changes, SyncReport};

use super::Ctx;
use crate::cli::{Command, KeyCommand, ParityCommand};

/// The files of a repository with parity, listed before a command runs.
pub struct Before {
    backend: Arc<dyn Backend>,
    files: HashMap<(MemberKind, String), u64>,
}

/// The repository a command may change, listed when it keeps parity; `None` otherwise
/// (no parity, a command that writes nothing, or a repository that cannot be listed: the
/// command itself will say why).
pub fn watch(ctx: &Ctx, cmd: &Command) -> Option<Before> {
    let location = match cmd {
        Command::Snapshot(_)
        | Command::Forget(_)
        | Command::Prune(_)
        | Command::Repair(_)
        | Command::Key(KeyCommand::Add(_) | KeyCommand::Passwd(_) | KeyCommand::Remove { .. }) => {
            ctx.repo_location().ok()?
        }
        Command::Copy(a) => a.to.clone(),
        _ => return None,
    };
    let backend = super::open_backend(&location).ok()?;
    level(backend.as_ref()).filter(|&p| p > 0)?;
    let files = store::current_files(backend.as_ref()).ok()?;
    Some(Before { backend, files })
}

/// The parity level in the config (plain JSON, no password needed); `None` if unreadable.
fn level(be: &dyn Backend) -> Option<u8> {
    let bytes = be.read(FileKind::Config, "config").ok()?;
    Config::parse(&bytes, &be.location()).ok().map(|c| c.parity)
}

/// After a command: cover what it wrote, rebuild the groups of what it deleted.
pub fn keep_up(ctx: &Ctx, before: Before) -> Result<()> {
    let be = before.backend.as_ref();
    let Some(percent) = level(be) else {
        return Ok(());
    };
    let now = store::current_files(be)?;
    let deleted = before
        .files
        .into_keys()
        .filter(|f| !now.contains_key(f))
        .collect();
    let changes = Changes {
        deleted,
        rebuild_all: false,
    };
    let r = store::sync(be, percent, &changes, &mut |m| progress(ctx, m))
        .with_context(|| format!("updating the parity of {}", be.location()))?;
    report(ctx, &r, false);
    Ok(())
}

pub fn run(ctx: &Ctx, cmd: ParityCommand) -> Result<i32> {
    let ParityCommand::Set { percent } = cmd;
    let mut repo = ctx.open()?;
    let _lock = repo.lock(true, "parity set")?;
    let was = repo.config().parity;
    let resealed = repo.set_parity(percent)?;
    let mut deleted = vec![(MemberKind::Config, "config".into())];
    deleted.extend(resealed.into_iter().map(|(old, _)| (MemberKind::Key, old)));
    let changes = Changes {
        deleted,
        rebuild_all: true,
    };
    let be = repo.backend().clone();
    let r = store::sync(be.as_ref(), percent, &changes, &mut |m| progress(ctx, m))?;
    ctx.say(format!("parity: {was} % → {percent} %"));
    report(ctx, &r, true);
    Ok(0)
}

fn progress(ctx: &Ctx, m: &str) {
    if !ctx.global.quiet {
        eprintln!("{m}");
    }
}

fn report(ctx: &Ctx, r: &SyncReport, always: bool) {
    if ctx.global.quiet || ctx.json || (!always && *r == SyncReport::default()) {
        return;
    }
    eprintln!(
        "parity: {} file(s) covered in {} group(s) ({}), {} parity file(s) removed",
        r.files_covered,
        r.groups_written,
        crate::fmt::size(r.bytes_written),
        r.parity_removed
    );
}
