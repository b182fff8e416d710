//! `snapvault repair [index|snapshots] [--apply]`: shows the plan, applies it with --apply.
//! The plan comes from a full `check --read-data`, so it acts on exactly what is damaged.

use anyhow::{Result, bail};
use snapvault_repo::checker::{self, CheckOptions, ReadData};
use snapvault_repo::repair::{self, Parts};

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
    let repo = ctx.open()?;
    let _lock = repo.lock(true, "repair")?;
    if !a.json {
        ctx.say("reading and verifying every pack to find what is damaged…");
    }
    let progress = crate::progress::Progress::new(
        "check",
        crate::progress::mode(ctx.global.quiet, a.json),
        crate::progress::Unit::Packs,
    );
    if !progress.is_hidden() {
        let packs = repo.load_index_lenient().map(|l| l.index.packs().to_vec());
        if let Ok(packs) = packs {
            progress.set_totals(packs.len() as u64, packs.iter().map(|(_, s)| *s).sum());
        }
    }
    let report = checker::check(
        &repo,
        &CheckOptions {
            read_data: ReadData::All,
            threads: io_threads(),
            last_verified: Default::default(),
        },
        &progress,
    );
    progress.finish();
    let report = report?;
    let plan = repair::plan(&repo, &report)?;
    if a.json && !a.apply {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(0);
    }
    if plan.is_empty() && report.errors() == 0 {
        ctx.say("nothing to repair: no damage found");
        return Ok(0);
    }
    if parts.index {
        for p in &plan.salvage_packs {
            println!(
                "pack {}: damaged; its intact blobs are copied to a new pack, then it is removed",
                p.short()
            );
        }
        for p in &plan.adopt_packs {
            println!(
                "pack {}: not in any index; added to the rebuilt index",
                p.short()
            );
        }
        println!(
            "index: rebuilt from the pack headers, replacing {} index file(s)",
            plan.replace_index.len()
        );
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
                &n[..8.min(n.len())],
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
    if parts.index && !parts.snapshots && plan.lost_blobs > 0 && !plan.snapshots.is_empty() {
        eprintln!(
            "note: some snapshots reference lost data; run `snapvault repair snapshots --apply` too"
        );
    }
    let out = repair::apply(&repo, &report, &plan, parts, a.forget_damaged)?;
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
