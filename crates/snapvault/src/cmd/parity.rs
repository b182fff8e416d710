//! `snapvault parity set`, and keeping parity up to date after the commands that write or
//! delete repository files (snapshot, forget, prune, copy into its destination, key, repair):
//! each is wrapped by [`watch`] before and [`keep_up`] after (docs/format.md §15.5).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use snapvault_repo::backend::{Backend, FileKind};
use snapvault_repo::config::Config;
use snapvault_repo::crypto::Crypto;
use snapvault_repo::lock::LockGuard;
use snapvault_repo::parity::MemberKind;
use snapvault_repo::parity::guard::Guard;
use snapvault_repo::parity::store::{self, Changes, SyncReport};
use snapvault_repo::text::short_name;
use snapvault_repo::{RepoError, Repository};

use super::Ctx;
use crate::cli::{Command, KeyCommand, ParityCommand};

/// The files of a repository with parity, listed before a command runs.
pub struct Before {
    guard: Arc<Guard>,
    files: HashMap<(MemberKind, String), u64>,
    /// The config's bytes: a rewrite keeps its size.
    config: Option<Vec<u8>>,
}

/// Per location: the guard its command removes files through (see [`watch`]).
static GUARDS: Mutex<Vec<(String, Arc<Guard>)>> = Mutex::new(Vec::new());
/// Per location: files whose loss the command accepted (see [`loss_accepted`]).
static ACCEPTED: Mutex<Vec<(String, (MemberKind, String))>> = Mutex::new(Vec::new());
/// Per location: the repository the command opened (see [`Opened`]).
static OPENED: Mutex<Vec<(String, Opened)>> = Mutex::new(Vec::new());

/// What the command learned opening a repository: its keys, for the parity update's own
/// lock (so it asks for no password again), and the parity level its config gave as the
/// opening verified it, with the config's bytes then (a level no later read overrides
/// while the file stays as it was).
#[derive(Clone)]
struct Opened {
    crypto: Crypto,
    level: u8,
    config: Option<Vec<u8>>,
}

/// The guarded backend of `location`, when its command keeps parity.
pub fn guarded(location: &str) -> Option<Arc<dyn Backend>> {
    let g = GUARDS.lock().ok()?;
    let (_, guard) = g.iter().find(|(l, _)| l == location)?;
    Some(guard.clone() as Arc<dyn Backend>)
}

/// The storage beneath the guard of `location` (and above the test builds' fault
/// injector), when its command keeps parity: where `repair` puts back the files parity
/// rebuilt. Such a file has the bytes and the name its group recorded, so its group stays
/// valid; through the guard a rebuilt pack would be streamed as a new pack into a group of
/// its own (a full copy of it, the pack named by two groups).
pub fn beneath_guard(location: &str) -> Option<Arc<dyn Backend>> {
    let g = GUARDS.lock().ok()?;
    let (_, guard) = g.iter().find(|(l, _)| l == location)?;
    Some(guard.inner().clone())
}

/// `backend` of `location` behind the test builds' fault injector
/// (`snapvault_repo::testhooks`), unless its command keeps parity: then the injector sits
/// beneath the parity guard already (see [`watch`]).
pub fn with_faults(location: &str, backend: Arc<dyn Backend>) -> Result<Arc<dyn Backend>> {
    if guarded(location).is_some() {
        return Ok(backend);
    }
    Ok(snapvault_repo::testhooks::with_faults(backend)?)
}

/// `repair` accepted the loss of these files (packs gone beyond what parity rebuilds, that
/// no index names any more): the parity update rebuilds their groups without them, as for
/// files removed on purpose. Otherwise the groups would name them for ever, `check` would
/// report them as lost after every read, and no other member could be regrouped.
pub fn loss_accepted(location: &str, files: Vec<(MemberKind, String)>) {
    if let Ok(mut a) = ACCEPTED.lock() {
        a.extend(files.into_iter().map(|f| (location.to_string(), f)));
    }
}

/// `repair --apply` gave up `files`, which parity found lost beyond what it rebuilds: the
/// guard of `location` rebuilds their groups without them when another member leaves or
/// changes ([`Guard::give_up`]), so the damaged packs repair removes beside a lost one are
/// really removed.
pub fn given_up(location: &str, files: Vec<(MemberKind, String)>) {
    let guard = GUARDS.lock().ok().and_then(|g| {
        g.iter()
            .find(|(l, g)| l == location || g.inner().location() == location)
            .map(|(_, g)| g.clone())
    });
    if let Some(g) = guard {
        g.give_up(files);
    }
}

/// Remember an opened repository (see [`OPENED`]); when its command keeps parity, the
/// guard writes parity from now on at the level of the config as the opening verified it
/// (its MAC, else a key file's sealed copy; unencrypted: [`trusted_level`]), never at one
/// read from the config file's unchecked bytes.
pub fn opened(location: &str, repo: &Repository) {
    let guard = GUARDS.lock().ok().and_then(|g| {
        g.iter()
            .find(|(l, g)| l == location || g.inner().location() == location)
            .map(|(_, g)| g.clone())
    });
    let (level, config) = match &guard {
        Some(g) => {
            let be = g.inner().as_ref();
            let config = be.read(FileKind::Config, "config").ok();
            let level = trusted_level(be, repo.config().parity, repo.crypto());
            g.set_level(level, u64::from(repo.config().pack_size));
            (level, config)
        }
        None => (repo.config().parity, None),
    };
    if let Ok(mut o) = OPENED.lock() {
        o.retain(|(l, _)| l != location);
        o.push((
            location.to_string(),
            Opened {
                crypto: repo.crypto().clone(),
                level,
                config,
            },
        ));
    }
}

/// The repository a command may change, listed when it keeps parity; `None` otherwise
/// (no parity, a command that writes nothing, or a repository that cannot be listed: the
/// command itself will say why). From here on the command removes files through a
/// [`Guard`], so no parity in force names a file it removed (docs/format.md §15.5).
pub fn watch(ctx: &Ctx, cmd: &Command) -> Option<Before> {
    let location = match cmd {
        Command::Snapshot(_)
        | Command::Forget(_)
        | Command::Prune(_)
        | Command::Repair(_)
        | Command::Parity(_)
        | Command::Key(KeyCommand::Add(_) | KeyCommand::Passwd(_) | KeyCommand::Remove { .. }) => {
            ctx.repo_location().ok()?
        }
        Command::Copy(a) => a.to.clone(),
        _ => return None,
    };
    let backend = super::open_backend(&location).ok()?;
    // Only whether to guard: the level parity is written at is set when the command opens
    // the repository (see [`opened`]).
    level(backend.as_ref()).filter(|&p| p > 0)?;
    // Test builds only: the fault injector goes beneath the guard, so the writes and
    // removals of parity files (the guard's, and the update after the command) are write
    // points a test can kill the process at, counted with the command's own.
    let backend = snapvault_repo::testhooks::with_faults(backend).ok()?;
    let files = store::current_files(backend.as_ref()).ok()?;
    let config = backend.read(FileKind::Config, "config").ok();
    let guard = Arc::new(Guard::unverified(backend));
    if let Ok(mut g) = GUARDS.lock() {
        g.push((location, guard.clone()));
    }
    Some(Before {
        guard,
        files,
        config,
    })
}

/// Whether the repository may have parity, before a command, read without a password:
/// the config's level, or, when the config does not read or says none while parity is in
/// force (a damaged config, even in its `parity` field; a `parity set 0` that stopped
/// before removing the parity), the level of the parity in force. Only decides whether the
/// command runs behind a guard, never the level parity is written at (that comes from the
/// config as the opened repository verified it, [`opened`]). Erring towards a guard is
/// harmless; without one, a command that removes files (a repair that puts the config
/// back, then replaces index files) would leave parity naming them, and a later repair
/// would bring them back. `None` without config or parity.
fn level(be: &dyn Backend) -> Option<u8> {
    let parsed = be
        .read(FileKind::Config, "config")
        .ok()
        .and_then(|bytes| Config::parse(&bytes, &be.location()).ok());
    match parsed {
        Some(c) if c.parity > 0 => Some(c.parity),
        other => level_of_parity(be).or(other.map(|c| c.parity)),
    }
}

/// The parity level after a command: the one its repository opened with while the config
/// file is as it was then (no second look at it, nor at the parity headers an unencrypted
/// config is checked against); else (the command rewrote it: `parity set`, repair putting
/// it back) the new config's when its MAC checks with the keys the command opened the
/// repository with, else (damaged) the level it opened with.
fn verified_level(be: &dyn Backend, opened: &Opened) -> u8 {
    let bytes = be.read(FileKind::Config, "config").ok();
    if bytes.is_some() && bytes == opened.config {
        return opened.level;
    }
    let parsed = bytes.and_then(|b| Config::parse(&b, &be.location()).ok());
    match parsed {
        Some(c) if c.verify(&opened.crypto).is_ok() => trusted_level(be, c.parity, &opened.crypto),
        _ => opened.level,
    }
}

/// The parity level of `repo` as it opened ([`trusted_level`] of its config's), worked
/// out once per command: a guarded command's [`opened`] did it already.
pub fn level_in_force(repo: &Repository) -> u8 {
    let be = repo.backend();
    let location = be.location();
    let guarded = GUARDS.lock().is_ok_and(|g| {
        g.iter()
            .any(|(l, g)| *l == location || g.inner().location() == location)
    });
    match opened_repo(&location) {
        Some(o) if guarded => o.level,
        _ => trusted_level(be.as_ref(), repo.config().parity, repo.crypto()),
    }
}

/// The parity level to trust, given `level` from the config the repository opened with.
/// An encrypted config's MAC was checked (else a key file's sealed copy is in use): its
/// level. An unencrypted config has neither, so a flipped bit in its `parity` field would
/// silently read as no parity (or as another level); but the parity in force recorded the
/// config's BLAKE3 (§15.3): when the file differs from it, it is damaged — `check` names it
/// repairable, `repair --apply` puts it back — and that parity's level is used meanwhile.
pub fn trusted_level(be: &dyn Backend, level: u8, crypto: &Crypto) -> u8 {
    if crypto.is_encrypted() {
        return level;
    }
    match level_recorded_for_another_config(be) {
        Some(p) => {
            eprintln!(
                "warning: the config file of {} is not the one its parity recorded (it is \
                 damaged): parity is kept at {p} %; `snapvault repair --apply` puts it back",
                be.location()
            );
            p
        }
        None => level,
    }
}

/// The level of the parity in force that names the config, when the config file's bytes
/// are not the ones it recorded.
fn level_recorded_for_another_config(be: &dyn Backend) -> Option<u8> {
    let now = be
        .read(FileKind::Config, "config")
        .ok()
        .map(|b| *blake3::hash(&b).as_bytes());
    let (all, _unreadable) = store::load(be).ok()?;
    let (in_force, _superseded) = store::live(all);
    in_force.iter().find_map(|l| {
        let m = l
            .header
            .members
            .iter()
            .find(|m| m.kind == MemberKind::Config)?;
        (now != Some(m.hash)).then_some(l.header.percent)
    })
}

/// The level of the parity file in force that names the config, else the highest level in
/// force.
fn level_of_parity(be: &dyn Backend) -> Option<u8> {
    let (all, _unreadable) = store::load(be).ok()?;
    let (in_force, _superseded) = store::live(all);
    let names_config = |l: &&store::Loaded| {
        l.header
            .members
            .iter()
            .any(|m| m.kind == MemberKind::Config)
    };
    in_force
        .iter()
        .find(names_config)
        .or_else(|| in_force.iter().max_by_key(|l| l.header.percent))
        .map(|l| l.header.percent)
}

/// After a command: holding the repository's exclusive lock, remove the packs it removed
/// (their groups rebuilt first), cover what it wrote, rebuild the groups of what it
/// deleted otherwise. Without the lock (another command holds it) nothing is lost: the
/// packs stay until a prune, and the next command covers the new files.
pub fn keep_up(ctx: &Ctx, before: Before) -> Result<()> {
    let guard = before.guard.clone();
    let be = guard.inner().as_ref();
    let location = be.location();
    let Some(opened) = opened_repo(&location) else {
        // The command never opened the repository, so it changed nothing.
        return Ok(());
    };
    let percent = verified_level(be, &opened);
    let _lock = match lock(ctx, guard.inner().clone(), opened.crypto.clone()) {
        Ok(l) => l,
        Err(e @ (RepoError::Locked { .. } | RepoError::LockUnreadable { .. })) => {
            eprintln!(
                "warning: parity not brought up to date now ({e}); the next command that \
                 writes does it"
            );
            return Ok(());
        }
        Err(e) => return Err(e).context("locking the repository to update its parity"),
    };
    snapvault_repo::testhooks::pause("parity-locked");
    guard
        .finish_stream()
        .with_context(|| format!("writing the parity of the last packs of {location}"))?;
    guard
        .flush()
        .with_context(|| format!("removing packs from the parity of {location}"))?;
    let now = store::current_files(be)?;
    let mut deleted: Vec<_> = before
        .files
        .into_keys()
        .filter(|f| !now.contains_key(f))
        .collect();
    if let Ok(accepted) = ACCEPTED.lock() {
        deleted.extend(
            accepted
                .iter()
                .filter(|(l, f)| *l == location && !now.contains_key(f))
                .map(|(_, f)| f.clone()),
        );
    }
    if be.read(FileKind::Config, "config").ok() != before.config {
        deleted.push((MemberKind::Config, "config".into()));
    }
    let changes = Changes {
        deleted,
        rebuild_all: false,
    };
    let streamed = guard.take_streamed();
    let r = store::sync_known(be, percent, &changes, streamed, &mut |m| progress(ctx, m))
        .with_context(|| format!("updating the parity of {location}"))?;
    report(ctx, &r, false);
    Ok(())
}

/// The repository the command opened at `location` (see [`OPENED`]).
fn opened_repo(location: &str) -> Option<Opened> {
    OPENED
        .lock()
        .ok()?
        .iter()
        .find(|(l, _)| l == location)
        .map(|(_, o)| o.clone())
}

/// The exclusive lock for the parity update, waiting as `--retry-lock` says (at least a
/// little: the command's own lock may still be going away).
fn lock(
    ctx: &Ctx,
    be: Arc<dyn Backend>,
    crypto: Crypto,
) -> std::result::Result<LockGuard, RepoError> {
    let wait = ctx
        .global
        .retry_lock
        .as_deref()
        .and_then(|d| crate::fmt::parse_duration(d).ok())
        .unwrap_or_default()
        .max(std::time::Duration::from_secs(10));
    let start = std::time::Instant::now();
    loop {
        match LockGuard::acquire(be.clone(), crypto.clone(), true, "parity update") {
            Err(RepoError::Locked { .. } | RepoError::LockUnreadable { .. })
                if start.elapsed() < wait =>
            {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            other => break other,
        }
    }
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
    let mut r = store::sync(be.as_ref(), percent, &changes, &mut |m| progress(ctx, m))?;
    r.parity_removed += remove_unusable(be.as_ref())?;
    ctx.say(format!("parity: {was} % → {percent} %"));
    report(ctx, &r, true);
    Ok(0)
}

/// Remove the parity files whose header no longer reads (both copies damaged): they
/// protect nothing, and after a rebuild of every group (or a `parity set 0`) no file needs
/// them, but the update leaves what it cannot read, so `check` would go on naming them and
/// advising the `parity set` that was just run (format.md §15.2).
fn remove_unusable(be: &dyn Backend) -> Result<usize> {
    let (_, unusable) = store::load(be)?;
    for (name, _) in &unusable {
        be.remove(FileKind::Parity, name)
            .with_context(|| format!("removing the unusable parity file {name}"))?;
    }
    Ok(unusable.len())
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
    for k in &r.groups_kept_damaged {
        let (command, does) = kept_advice(k.state);
        eprintln!(
            "hint: parity {} kept for {}, {}: `{command}` {does}",
            short_name(&k.parity),
            k.member,
            k.state.describe()
        );
    }
}

/// The command that resolves a kept group's member in its state. Parity rebuilds it:
/// `repair --apply` does. Beyond parity and gone: `repair --apply` gives the loss up.
/// Beyond parity and still present: `repair --apply --forget-damaged`, which rescues what
/// it can of it, removes it and forgets the snapshots left naming its lost data, so the
/// group can be rebuilt without it.
pub(crate) fn kept_advice(state: store::KeptState) -> (&'static str, &'static str) {
    match state {
        store::KeptState::Rebuildable => {
            ("snapvault repair --apply", "rebuilds it from this parity")
        }
        store::KeptState::MissingBeyond => ("snapvault repair --apply", "gives it up"),
        store::KeptState::DamagedBeyond => (
            "snapvault repair --apply --forget-damaged",
            "rescues what it can of it and gives the rest up",
        ),
    }
}
