use anyhow::Result;
use snapvault_repo::backend::FileKind;
use snapvault_repo::lock::list_locks;

use super::Ctx;
use crate::cli::UnlockArgs;

pub fn run(ctx: &Ctx, a: UnlockArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let now = snapvault_repo::time::now_unix();
    let mut removed = 0;
    for l in list_locks(repo.backend().as_ref(), repo.crypto())? {
        let stale = l.info.as_ref().is_some_and(|i| i.is_stale(now));
        if stale || a.remove_all {
            repo.backend().remove(FileKind::Lock, &l.name)?;
            removed += 1;
            let who = l
                .info
                .map(|i| i.describe())
                .unwrap_or_else(|| "an unreadable lock".into());
            ctx.say(format!("removed lock {} held by {who}", &l.name[..8]));
        } else if let Some(i) = l.info {
            ctx.say(format!("kept active lock of {}", i.describe()));
        }
    }
    ctx.say(format!("{removed} lock(s) removed"));
    Ok(0)
}
