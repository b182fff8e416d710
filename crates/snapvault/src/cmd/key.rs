use anyhow::Result;

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

pub fn run(ctx: &Ctx, k: KeyCommand) -> Result<i32> {
    match k {
        KeyCommand::Add(a) => {
            let repo = ctx.open()?;
            let pw = new_password(&a)?;
            let name = repo.add_key(&pw, kdf())?;
            if a.json {
                println!("{}", serde_json::json!({"added": name}));
            } else {
                ctx.say(format!("added key {}", &name[..8]));
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
                            &k.name[..8],
                            snapvault_repo::time::format_utc(f.created),
                            f.hostname,
                            f.username
                        ),
                        None => println!("{mark} {:<9} (damaged key file)", &k.name[..8]),
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
                        &name[..8]
                    ));
                }
                return Ok(0);
            }
            let _lock = repo.lock(true, "key remove")?;
            let name = repo.remove_key(&id)?;
            if json {
                println!("{}", serde_json::json!({"removed": name}));
            } else {
                ctx.say(format!("removed key {}", &name[..8]));
            }
        }
        KeyCommand::Passwd(a) => {
            let mut repo = ctx.open()?;
            let pw = new_password(&a)?;
            let name = repo.change_password(&pw, kdf())?;
            if a.json {
                println!("{}", serde_json::json!({"changed": true, "key": name}));
            } else {
                ctx.say(format!("password changed (new key {})", &name[..8]));
            }
        }
    }
    Ok(0)
}
