//! One module per command; this file holds what they share (opening the repository).

mod browse;
mod check;
mod completions;
mod config_show;
mod copy;
mod demo;
mod devices;
mod diff;
mod find;
mod forget;
mod init;
mod key;
mod ls;
pub(crate) mod parity;
pub(crate) mod parity_check;
mod photos;
mod prune;
mod repair;
mod restore;
mod restore_date;
mod restore_edits;
mod restore_list;
pub(crate) mod second;
mod snapshot;
mod snapshots;
mod stats;
mod unlock;
mod verify;

use std::sync::Arc;

use anyhow::{Result, anyhow};
use snapvault_repo::backend::{Backend, LocalBackend};
use snapvault_repo::keyfile::{DEFAULT_KDF, KdfParams};
use snapvault_repo::open::OpenOptions;
use snapvault_repo::pending::Opening;
use snapvault_repo::{RepoError, Repository};

use crate::cli::{Cli, Command, Global};
use crate::password::PasswordSource;

/// Argon2id cost for new keys.
pub fn kdf() -> KdfParams {
    DEFAULT_KDF
}

pub struct Ctx {
    pub global: Global,
    /// The command's `--json`: warnings on stderr are then JSON lines (docs/json.md).
    pub json: bool,
}

impl Ctx {
    pub fn repo_location(&self) -> Result<String> {
        self.global.repo.clone().ok_or_else(|| {
            anyhow!(
                "no repository given: use --repo REPO, set SNAPVAULT_REPOSITORY, or put `repository = \"…\"` in the config file (`snapvault config show` says where it is)"
            )
        })
    }

    pub fn backend(&self) -> Result<Arc<dyn Backend>> {
        open_backend(&self.repo_location()?)
    }

    pub fn password_source(&self) -> PasswordSource {
        PasswordSource {
            env_var: "SNAPVAULT_PASSWORD",
            file: self.global.password_file.clone(),
            command: self.global.password_command.clone(),
        }
    }

    /// Open the repository: with the key remembered on this computer when there is a
    /// usable one (`key remember`), else with the password.
    pub fn open(&self) -> Result<Repository> {
        self.open_as(true, |_| {})
    }

    /// [`Ctx::open`], starting `early` (work that needs no key: listing and hinting what
    /// the step will read) while the password's key is derived on its own thread
    /// (`snapvault_repo::pending`). `early` runs once, before the first key is tried, and
    /// should stop when [`Opening::key_ready`] says so; it must not write.
    pub fn open_early(&self, early: impl FnOnce(&Opening)) -> Result<Repository> {
        self.open_as(true, early)
    }

    /// Open the repository with the password, whatever is remembered (`key remember`,
    /// `key passwd`: they act on the password's key file).
    pub fn open_with_password(&self) -> Result<Repository> {
        self.open_as(false, |_| {})
    }

    fn open_as(&self, use_remembered: bool, early: impl FnOnce(&Opening)) -> Result<Repository> {
        let mut early = Some(early);
        let backend = self.backend()?;
        let loc = backend.location();
        let src = self.password_source();
        // A typed password gets TRIES chances; one from a file, command or variable one.
        let tries = if src.will_prompt() {
            crate::password::TRIES
        } else {
            1
        };
        // Each warning once, however many tries a typed password takes.
        let warned = std::sync::Mutex::new(std::collections::HashSet::new());
        let say = |m: &str| {
            if !warned.lock().is_ok_and(|mut w| w.insert(m.to_string())) {
                return;
            }
            if self.json {
                let line = serde_json::json!({"type": "warning", "command": "open", "message": m});
                eprintln!("{line}");
            } else {
                eprintln!("warning: {m}");
            }
        };
        let warn = |w: &snapvault_repo::open::OpenWarning| say(&crate::remedy::open_warning(w));
        // `--key` names a key file: the password's, never the remembered key.
        let remembered = |id: &str| match crate::remembered::load(id) {
            crate::remembered::Lookup::Key(k) => Some(k),
            crate::remembered::Lookup::Nothing => None,
            crate::remembered::Lookup::Unusable(m) => {
                say(&m);
                None
            }
        };
        let opts = OpenOptions {
            key: self.global.key.as_deref(),
            warn: Some(&warn),
            remembered: (use_remembered && self.global.key.is_none()).then_some(&remembered),
        };
        let mut attempt = 0;
        let mut repo = loop {
            attempt += 1;
            let opened = Repository::begin_open(
                backend.clone(),
                || {
                    src.get(&format!("repository {loc}"), false)
                        .map_err(|e| RepoError::PasswordUnavailable(crate::exit::message(&e)))
                },
                &opts,
            )
            .and_then(|opening| {
                if let Some(early) = early.take() {
                    early(&opening);
                }
                opening.finish(&opts)
            });
            match opened {
                Err(RepoError::WrongPassword) if tries > 1 && attempt < tries => {
                    eprintln!("wrong password; try again ({} left)", tries - attempt);
                }
                Err(RepoError::WrongPassword) if tries > 1 => {
                    return Err(crate::password::TypedWrong.into());
                }
                other => break other.map_err(|e| crate::drive::explain(&loc, e))?,
            }
        };
        // Someone who can write to the repository could replace an encrypted one by an
        // unencrypted one; a run that expects encryption must not then write plaintext.
        // A key remembered for its id expects encryption just as much.
        if !repo.crypto().is_encrypted() && crate::remembered::exists(&repo.config().id) {
            anyhow::bail!(
                "the repository at {loc} is NOT encrypted, but a key is remembered for it on \
                 this computer ({}); refusing to use it, because an encrypted repository may \
                 have been replaced. If it is meant to be unencrypted, run `snapvault key \
                 forget` first",
                crate::remembered::file_for(&repo.config().id)
                    .map(|f| f.display().to_string())
                    .unwrap_or_default()
            );
        }
        if !repo.crypto().is_encrypted() && src.is_configured() {
            anyhow::bail!(
                "the repository at {loc} is NOT encrypted, but a password was given; refusing to use it, \
                 because an encrypted repository may have been replaced. If it is meant to be unencrypted, \
                 run without SNAPVAULT_PASSWORD, --password-file or --password-command"
            );
        }
        parity::opened(&loc, &repo);
        if let Some(d) = &self.global.retry_lock {
            let d = crate::fmt::parse_duration(d).map_err(|e| anyhow!("--retry-lock: {e}"))?;
            repo.set_lock_wait(d);
        }
        Ok(repo)
    }

    pub fn say(&self, s: impl AsRef<str>) {
        if !self.global.quiet {
            println!("{}", s.as_ref());
        }
    }
}

/// The backend for a repository location: a local folder, `s3:…` or `sftp:…`.
pub fn open_backend(location: &str) -> Result<Arc<dyn Backend>> {
    if let Some(guarded) = parity::guarded(location) {
        return Ok(guarded);
    }
    if !snapvault_remote::is_remote(location) {
        return Ok(Arc::new(LocalBackend::new(location)));
    }
    let mut opts = snapvault_remote::RemoteOptions::from_env()?;
    opts.connections = CONNECTIONS.get().copied().flatten().map(usize::from);
    // Index and snapshot files are cached next to the catalog; without a cache folder
    // (no HOME) every command downloads them again, which is slower but correct.
    opts.cache_dir = crate::cache::dir("remote");
    Ok(snapvault_remote::open(location, &opts)?)
}

/// `--connections`, set once from the command line before any backend is opened.
static CONNECTIONS: std::sync::OnceLock<Option<u16>> = std::sync::OnceLock::new();

pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Threads for steps that alternate between waiting on storage and computing (check,
/// restore): two per core, so a core has work while another thread waits for its read or
/// write. Measured on 2 GiB, cold: `check --read-data` 2.0 s with 2 threads, 1.5–1.8 s
/// with 4.
pub fn io_threads() -> usize {
    threads() * 2
}

pub fn run(cli: Cli) -> Result<i32> {
    crate::readonly::no_lock_allowed(&cli)?;
    let _ = CONNECTIONS.set(cli.global.connections);
    let json = crate::exit::wants_json(&cli.command);
    let ctx = Ctx {
        global: cli.global,
        json,
    };
    // Commands that write keep the repository's parity up to date once they are done.
    let watched = parity::watch(&ctx, &cli.command);
    let rc = dispatch(&ctx, cli.command);
    match (watched, &rc) {
        (Some(before), Ok(_)) => parity::keep_up(&ctx, before)?,
        // A failed run may still have written (a partial snapshot): cover it if possible.
        (Some(before), Err(_)) => {
            if let Err(e) = parity::keep_up(&ctx, before) {
                eprintln!("warning: {e:#}");
            }
        }
        (None, _) => {}
    }
    rc
}

fn dispatch(ctx: &Ctx, command: Command) -> Result<i32> {
    match command {
        Command::Init(a) => init::run(ctx, a),
        Command::Snapshot(a) => snapshot::run(ctx, a),
        Command::Snapshots(a) => snapshots::run(ctx, a),
        Command::Ls(a) => ls::run(ctx, a),
        Command::Restore(a) => restore::run(ctx, a),
        Command::Check(a) => check::run(ctx, a),
        Command::Forget(a) => forget::run(ctx, a),
        Command::Prune(a) => prune::run(ctx, a),
        Command::Copy(a) => copy::run(ctx, a),
        Command::Key(k) => key::run(ctx, k),
        Command::Parity(p) => parity::run(ctx, p),
        Command::Unlock(a) => unlock::run(ctx, a),
        Command::Repair(a) => repair::run(ctx, a),
        Command::Photos(a) => photos::run(ctx, a),
        Command::Browse(a) => browse::run(ctx, a),
        Command::Find(a) => find::run(ctx, a),
        Command::Diff(a) => diff::run(ctx, a),
        Command::Devices(a) => devices::run(ctx, a),
        Command::VerifyDevice(a) => verify::run(ctx, a),
        Command::Demo(a) => demo::run(ctx, a),
        Command::Stats(a) => stats::run(ctx, a),
        Command::Config(crate::cli::ConfigCommand::Show { json }) => config_show::run(ctx, json),
        Command::Completions(a) => completions::completions(a),
        Command::Manpage(a) => completions::manpage(ctx, a),
    }
}
