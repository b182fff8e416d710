use anyhow::{Context, Result};
use globset::{Glob, GlobSetBuilder};
use snapvault_repo::restorer::{self, RestoreOptions, RestoreStats};
use snapvault_repo::tree::NodeKind;

use super::{Ctx, threads};
use crate::cli::RestoreArgs;
use crate::fmt;

pub fn run(ctx: &Ctx, a: RestoreArgs) -> Result<i32> {
    let include = if a.include.is_empty() {
        None
    } else {
        let mut b = GlobSetBuilder::new();
        for g in &a.include {
            let g = g.trim_start_matches('/');
            b.add(Glob::new(g).with_context(|| format!("invalid --include pattern {g:?}"))?);
        }
        Some(b.build().context("building --include patterns")?)
    };
    let repo = ctx.open()?;
    let _lock = repo.lock(false, "restore")?;
    let (sid, snap) = repo.find_snapshot(&a.snapshot)?;
    let index = repo.load_index()?.index;
    let (items, dirs) = restorer::collect(&repo, &index, &snap.tree, &include)?;
    let opts = RestoreOptions {
        target: a.target.clone(),
        include,
        overwrite: a.overwrite,
        dry_run: a.dry_run,
        threads: threads(),
    };
    let stats = restorer::restore(
        &repo,
        &index,
        &items,
        &dirs,
        &opts,
        &snapvault_repo::archiver::NoHooks,
    )?;
    let total: u64 = items.iter().map(|i| i.node.size).sum();
    let files = items
        .iter()
        .filter(|i| i.node.kind == NodeKind::File)
        .count();
    if a.dry_run {
        if a.json {
            let v: Vec<_> = items
                .iter()
                .map(|i| serde_json::json!({"path": String::from_utf8_lossy(&i.path), "size": i.node.size, "type": i.node.kind}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"snapshot": sid.to_hex(), "files": files, "bytes": total, "items": v})
                )?
            );
        } else {
            for i in &items {
                println!("{:>12} {}", i.node.size, String::from_utf8_lossy(&i.path));
            }
            ctx.say(format!(
                "would restore {files} file(s), {} from snapshot {}",
                fmt::size(total),
                sid.short()
            ));
        }
        return Ok(0);
    }
    report(ctx, &stats, &sid.short(), &a.target, a.json)
}

pub fn report(
    ctx: &Ctx,
    stats: &RestoreStats,
    snapshot: &str,
    target: &std::path::Path,
    json: bool,
) -> Result<i32> {
    for (p, why) in &stats.problems {
        eprintln!("error: not restored: {p}: {why}");
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "snapshot": snapshot,
                "target": target.display().to_string(),
                "files_restored": stats.files_restored,
                "files_already_right": stats.files_already_right,
                "symlinks": stats.symlinks,
                "dirs": stats.dirs,
                "bytes_written": stats.bytes_written,
                "problems": stats.problems.iter().map(|(p, w)| serde_json::json!({"path": p, "problem": w})).collect::<Vec<_>>(),
            })
        );
    } else {
        ctx.say(format!(
            "restored {} file(s) ({}), {} already right, {} symlink(s), {} folder(s) from snapshot {} into {}",
            stats.files_restored,
            fmt::size(stats.bytes_written),
            stats.files_already_right,
            stats.symlinks,
            stats.dirs,
            snapshot,
            target.display()
        ));
    }
    if stats.problems.is_empty() {
        Ok(0)
    } else {
        eprintln!("error: {} item(s) were not restored", stats.problems.len());
        Ok(crate::exit::ERROR)
    }
}
