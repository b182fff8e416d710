use anyhow::Result;
use snapvault_repo::backend::FileKind;
use snapvault_repo::lock::list_locks;

use super::Ctx;
use crate::cli::UnlockArgs;

pub fn run(ctx: &Ctx, a: UnlockArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let now = snapvault_repo::time::now_unix();
    let mut removed = 0;
    let (mut removed_list, mut kept_list) = (Vec::new(), Vec::new());
    for l in list_locks(repo.backend().as_ref(), repo.crypto())? {
        let stale = l.info.as_ref().is_some_and(|i| i.is_stale(now));
        if stale || a.remove_all {
            if !a.dry_run {
                repo.backend().remove(FileKind::Lock, &l.name)?;
            }
            removed += 1;
            let who = l
                .info
                .map(|i| i.describe())
                .unwrap_or_else(|| "an unreadable lock".into());
            if !a.json {
                let verb = if a.dry_run { "would remove" } else { "removed" };
                ctx.say(format!(
                    "{verb} lock {} held by {who}",
                    snapvault_repo::text::short_name(&l.name)
                ));
            }
            removed_list.push(serde_json::json!({"id": l.name, "held_by": who, "stale": stale}));
        } else if let Some(i) = l.info {
            if !a.json {
                ctx.say(format!("kept active lock of {}", i.describe()));
            }
            kept_list.push(serde_json::json!({"id": l.name, "held_by": i.describe()}));
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "removed": if a.dry_run { serde_json::json!([]) } else { serde_json::json!(removed_list) },
                "would_remove": if a.dry_run { Some(&removed_list) } else { None },
                "kept": kept_list,
            }))?
        );
        return Ok(0);
    }
    if a.dry_run {
        ctx.say(format!(
            "{removed} lock(s) would be removed (dry run: nothing changed)"
        ));
    } else {
        ctx.say(format!("{removed} lock(s) removed"));
    }
    Ok(0)
}
