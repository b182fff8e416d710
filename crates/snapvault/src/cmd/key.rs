use anyhow::{Context, Result, bail};
use snapvault_repo::backend::FileKind;
use snapvault_repo::config::Config;
use snapvault_repo::crypto::Crypto;
use snapvault_repo::text::{is_id_name, short_name};

use super::{Ctx, kdf};
use crate::cli::{KeyCommand, NewPasswordArgs};
use crate::password::PasswordSource;

fn new_password(a: &NewPasswordArgs) -> Result<Vec<u8>> {
    PasswordSource {
        env_var: "SNAPVAULT_NEW_PASSWORD",
        file: a.new_password_file.clone(),
        command: None,
    }
    .get_new("the new key", a.allow_weak_password)
}

/// `key add`, `key passwd` and `key remove` change key files, which parity covers with the
/// config (docs/format.md §15): a command that rewrites parity (`parity set`, `repair`,
/// prune, the parity update after any writer) holds the exclusive lock, so a key file
/// changing meanwhile would be read half-way or left out of its group. Each therefore
/// takes a lock. `key add` only adds a file, as a snapshot adds its files: a shared lock,
/// so it runs beside snapshots and restores (restic's `key add` takes its non-exclusive
/// lock too). `key passwd` and `key remove` remove a key file, which a reader that
/// opened with it may still use: the exclusive lock, as prune takes to remove packs (and
/// as restic's `key passwd`/`key remove` do). rustic takes no repository locks at all.
/// A refusal names the holder and exits 11 (`exit.rs`, user guide).
pub fn run(ctx: &Ctx, k: KeyCommand) -> Result<i32> {
    match k {
        KeyCommand::Add(a) => {
            let repo = ctx.open()?;
            let _lock = repo.lock(false, "key add")?;
            let pw = new_password(&a)?;
            let name = repo.add_key(&pw, kdf())?;
            if a.json {
                println!("{}", serde_json::json!({"added": name}));
            } else {
                ctx.say(format!("added key {}", short_name(&name)));
            }
        }
        KeyCommand::List { json } => {
            let repo = ctx.open()?;
            let keys = repo.list_keys()?;
            if json {
                let v: Vec<_> = keys
                    .iter()
                    .map(|k| serde_json::json!({
                        "id": k.name,
                        "current": k.current,
                        "readable": k.file.is_some(),
                        "created": k.file.as_ref().map(|f| snapvault_repo::time::rfc3339_utc(f.created)),
                        "hostname": k.file.as_ref().map(|f| f.hostname.clone()),
                        "username": k.file.as_ref().map(|f| f.username.clone()),
                    }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("  {:<9} {:<19} {:<12} user", "id", "created (UTC)", "host");
                for k in keys {
                    let mark = if k.current { '*' } else { ' ' };
                    match &k.file {
                        Some(f) => println!(
                            "{mark} {:<9} {:<19} {:<12} {}",
                            short_name(&k.name),
                            snapvault_repo::time::format_utc(f.created),
                            f.hostname,
                            f.username
                        ),
                        // A stray file (`keys/x`) is not a damaged key: say which it is.
                        None if is_id_name(&k.name) => {
                            println!("{mark} {:<9} (damaged key file)", short_name(&k.name))
                        }
                        None => println!(
                            "{mark} {:<9} (not a key file: a stray file in keys/)",
                            short_name(&k.name)
                        ),
                    }
                }
            }
        }
        KeyCommand::Remove { id, dry_run, json } => {
            let repo = ctx.open()?;
            if dry_run {
                let name = repo.key_to_remove(&id)?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"removed": null, "would_remove": name})
                    );
                } else {
                    ctx.say(format!(
                        "would remove key {} (dry run: nothing changed)",
                        short_name(&name)
                    ));
                }
                return Ok(0);
            }
            let _lock = repo.lock(true, "key remove")?;
            let name = repo.remove_key(&id)?;
            if json {
                println!("{}", serde_json::json!({"removed": name}));
            } else {
                ctx.say(format!("removed key {}", short_name(&name)));
            }
        }
        KeyCommand::Passwd(a) => {
            // The password in use is that of the key file the password opened.
            let mut repo = ctx.open_with_password()?;
            let _lock = repo.lock(true, "key passwd")?;
            let pw = new_password(&a)?;
            let name = repo.change_password(&pw, kdf())?;
            if a.json {
                println!("{}", serde_json::json!({"changed": true, "key": name}));
            } else {
                ctx.say(format!("password changed (new key {})", short_name(&name)));
            }
        }
        KeyCommand::Remember => remember(ctx)?,
        KeyCommand::Forget => forget(ctx)?,
    }
    Ok(0)
}

/// `key remember`: open with the password (proving it), then keep the master key in the
/// config folder. Writes nothing to the repository, so takes no lock.
fn remember(ctx: &Ctx) -> Result<()> {
    let repo = ctx.open_with_password()?;
    let Crypto::Keyed(master) = repo.crypto() else {
        bail!("the repository is not encrypted: it has no key to remember");
    };
    let id = &repo.config().id;
    let file = crate::remembered::store(id, &repo.backend().location(), master)?;
    ctx.say(format!(
        "remembered the key of repository {} in {}: commands on it here no longer ask for the \
         password. Anyone who can read that file can read the backup; `snapvault key forget` \
         removes it",
        short_name(id),
        file.display()
    ));
    Ok(())
}

/// `key forget`: remove the remembered key. Needs no password: the repository id is in
/// its config, which is plain.
fn forget(ctx: &Ctx) -> Result<()> {
    let backend = ctx.backend()?;
    // No config and no key files: no repository here, said as every command says it.
    if !backend.exists(FileKind::Config, "config")?
        && backend.list(FileKind::Key).is_ok_and(|k| k.is_empty())
    {
        return Err(snapvault_repo::RepoError::NotFound(backend.location()).into());
    }
    let id = backend
        .read(FileKind::Config, "config")
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(Config::parse(&b, &backend.location())?.id))
        .with_context(|| {
            format!(
                "reading the repository's id from its config; remembered keys are the files \
                 in {}, one per repository id, and can be removed by hand",
                crate::remembered::dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|| "$XDG_CONFIG_HOME/snapvault/keys".into())
            )
        })?;
    match crate::remembered::forget(&id)? {
        Some(file) => ctx.say(format!(
            "removed the remembered key {}: commands on repository {} ask for the password \
             again",
            file.display(),
            short_name(&id)
        )),
        None => ctx.say(format!(
            "no key is remembered for repository {} on this computer",
            short_name(&id)
        )),
    }
    Ok(())
}
