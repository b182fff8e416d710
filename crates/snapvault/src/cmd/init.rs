use anyhow::Result;
use snapvault_repo::Repository;

use super::{Ctx, kdf};
use crate::cli::InitArgs;

pub fn run(ctx: &Ctx, a: InitArgs) -> Result<i32> {
    let backend = ctx.backend()?;
    let loc = backend.location();
    if let Some(missing) = crate::drive::missing_ancestor(&loc).filter(|_| !a.create_parents) {
        return Err(crate::drive::DriveMissing {
            missing,
            location: loc.clone(),
            init: true,
        }
        .into());
    }
    if backend.exists(snapvault_repo::backend::FileKind::Config, "config")? {
        return Err(snapvault_repo::RepoError::AlreadyExists(loc).into());
    }
    refuse_non_empty(&ctx.repo_location()?)?;
    let pw = if a.insecure_no_encryption {
        None
    } else {
        Some(
            ctx.password_source()
                .get_new(&format!("new repository {loc}"), a.allow_weak_password)?,
        )
    };
    let parity = a.parity.unwrap_or(0);
    let repo = Repository::init_with_parity(backend, pw.as_deref(), kdf(), a.compression, parity)?;
    if parity > 0 {
        let changes = snapvault_repo::parity::store::Changes::default();
        snapvault_repo::parity::store::sync(
            repo.backend().as_ref(),
            parity,
            &changes,
            &mut |_| {},
        )?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "id": repo.config().id,
                "location": loc,
                "encrypted": repo.config().encrypted,
                "compression_level": repo.config().compression_level,
                "parity": repo.config().parity,
                "version": repo.config().version,
            })
        );
        return Ok(0);
    }
    if a.insecure_no_encryption {
        ctx.say(format!(
            "created UNENCRYPTED repository {} at {loc}",
            snapvault_repo::text::prefix(&repo.config().id, 8)
        ));
    } else {
        ctx.say(format!(
            "created repository {} at {loc}",
            snapvault_repo::text::prefix(&repo.config().id, 8)
        ));
        ctx.say("keep the password safe: without it the data cannot be recovered");
        ctx.say(
            "next: keep it in a password manager and let snapvault ask it there, e.g. \
             --password-command 'pass show snapvault' (or put password_command in the config file);",
        );
        ctx.say(
            "      and add a spare password, kept somewhere else, with `snapvault key add` \
             — any of them opens the repository",
        );
    }
    Ok(0)
}

/// A repository is made in an empty or new folder only: files already there would be taken
/// for repository files (a stray file in `index/` makes every command fail) or be lost
/// among them.
fn refuse_non_empty(location: &str) -> Result<()> {
    if snapvault_remote::is_remote(location) {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(location) else {
        return Ok(());
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .take(3)
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{location} is not empty (it holds {}{}); give `init` an empty or new folder",
        names.join(", "),
        if names.len() == 3 { ", …" } else { "" }
    )
}
