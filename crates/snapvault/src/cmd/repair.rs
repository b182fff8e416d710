//! `snapvault repair [index|snapshots] [--apply]`: shows the plan, applies it with --apply.
//! The plan comes from reading and verifying every pack in storage (a survey), so it acts
//! on exactly what is damaged and judges loss by what the packs hold, not by the index.

use anyhow::{Result, bail};
use snapvault_repo::backend::FileKind;
use snapvault_repo::repair::{self, Parts};
use snapvault_repo::survey;

use super::{Ctx, io_threads};
use crate::cli::{RepairArgs, RepairPart};

pub fn run(ctx: &Ctx, a: RepairArgs) -> Result<i32> {
    let parts = match a.part {
        None => Parts {
            index: true,
            snapshots: true,
        },
        Some(RepairPart::Index) => Parts {
            index: true,
            snapshots: false,
        },
        Some(RepairPart::Snapshots) => Parts {
            index: false,
            snapshots: true,
        },
    };
    let mut repo = ctx.open()?;
    let _lock = repo.lock(true, "repair")?;
    let config_pending = config(ctx, &mut repo, a.apply && !a.dry_run, a.json)?;
    if !a.json {
        ctx.say("reading and verifying every pack to find what is damaged…");
    }
    let progress = crate::progress::Progress::new(
        "check",
        crate::progress::mode(ctx.global.quiet, a.json),
        crate::progress::Unit::Packs,
    );
    if !progress.is_hidden()
        && let Ok(packs) = repo.backend().list(FileKind::Pack)
    {
        progress.set_totals(packs.len() as u64, packs.iter().map(|p| p.size).sum());
    }
    let old = survey::load_old_index(&repo)?;
    let found = survey::survey(&repo, &old.index, io_threads(), &progress);
    progress.finish();
    let found = found?;
    let plan = repair::plan(&repo, &found, &old)?;
    if !parts.index && plan.rebuild_index && !plan.snapshots.is_empty() {
        bail!(
            "the index does not match what the packs hold, so snapshots cannot be judged yet; \
             nothing was changed: run `snapvault repair index --apply` first (or `snapvault repair --apply`)"
        );
    }
    if a.json && !a.apply {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(0);
    }
    if plan.is_empty() {
        ctx.say(if config_pending {
            "nothing else to repair: every pack is intact and the index and snapshots agree \
             with them; run again with --apply to rewrite the config"
        } else {
            "nothing to repair: every pack is intact and the index and snapshots agree with them"
        });
        return Ok(0);
    }
    if parts.index {
        for d in &found.damaged {
            println!(
                "pack {}: damaged ({}); its {} intact blob(s) are copied to a new pack, then it is removed",
                d.id.short(),
                d.reason,
                d.rescuable.len()
            );
        }
        for f in &plan.damaged_index_files {
            println!("index file {}: damaged", f.short());
        }
        for p in &plan.adopt_packs {
            println!(
                "pack {}: not in any index; added to the rebuilt index",
                p.short()
            );
        }
        if plan.rebuild_index {
            println!(
                "index: rebuilt from what the packs hold, replacing {} index file(s)",
                plan.replace_index.len()
            );
        }
    }
    if parts.snapshots {
        for f in &plan.snapshots {
            if f.root_lost {
                println!(
                    "snapshot {}: its root folder listing is lost; it cannot be repaired{}",
                    f.snapshot.short(),
                    if a.forget_damaged {
                        " and will be removed"
                    } else {
                        ""
                    }
                );
                continue;
            }
            println!(
                "snapshot {}: a repaired copy without {} damaged file(s) is written{}",
                f.snapshot.short(),
                f.removed.len(),
                if a.forget_damaged {
                    "; the original is removed"
                } else {
                    "; the original is kept (use --forget-damaged to remove it)"
                }
            );
            for r in &f.removed {
                println!("  lost: {r}");
            }
        }
        for n in &plan.unreadable_snapshots {
            println!(
                "snapshot file {}: unreadable{}",
                n.get(..8).unwrap_or(n),
                if a.forget_damaged { "; removed" } else { "" }
            );
        }
        if !plan.snapshots.is_empty() {
            println!(
                "a lost photo that is still on its source is stored again by the next `snapvault snapshot` of that source"
            );
        }
    }
    if !a.apply {
        ctx.say(
            "nothing was changed: this is only the plan; run again with --apply to carry it out",
        );
        return Ok(0);
    }
    if parts.index && !parts.snapshots && !plan.snapshots.is_empty() {
        eprintln!(
            "note: {} snapshot(s) use data no pack holds intact; run `snapvault repair snapshots --apply` too",
            plan.snapshots.len()
        );
    }
    let out = repair::apply(&repo, &found, &plan, parts, a.forget_damaged)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        ctx.say(format!(
            "repaired: {} blob(s) rescued, {} dropped, {} pack(s) removed, {} index file(s) replaced, {} snapshot(s) written, {} removed",
            out.blobs_rescued, out.blobs_dropped, out.packs_removed, out.index_files_replaced,
            out.snapshots_written.len(), out.snapshots_removed
        ));
    }
    if out.snapshots_written.is_empty()
        && parts.snapshots
        && plan.snapshots.iter().any(|f| !f.root_lost)
    {
        bail!("no repaired snapshot could be written");
    }
    Ok(0)
}

/// A damaged config file is rewritten from the key file copy the repository opened with
/// (with `apply`); returns whether that is still to do.
fn config(
    ctx: &Ctx,
    repo: &mut snapvault_repo::Repository,
    apply: bool,
    json: bool,
) -> Result<bool> {
    let Some(d) = repo.config_damage().cloned() else {
        return Ok(false);
    };
    let from = d.copy_in.get(..8).unwrap_or(&d.copy_in).to_string();
    if !apply {
        if !json {
            ctx.say(format!(
                "config: damaged ({}); --apply rewrites it from the copy kept in key file {from}",
                d.reason
            ));
        }
        return Ok(true);
    }
    repo.rewrite_config()?;
    if !json {
        ctx.say(format!(
            "config: rewritten from the copy kept in key file {from} (it was damaged: {})",
            d.reason
        ));
    }
    Ok(false)
}
