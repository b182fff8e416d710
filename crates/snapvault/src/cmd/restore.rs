use anyhow::{Context, Result, bail};
use globset::{GlobBuilder, GlobSetBuilder};
use snapvault_catalog::DateRange;
use snapvault_repo::restorer::{self, RestoreItem, RestoreOptions, RestoreStats};
use snapvault_repo::snapshot::Snapshot;
use snapvault_repo::tree::NodeKind;
use snapvault_repo::{Repository, SnapshotId};

use super::{Ctx, io_threads};
use crate::cli::{Layout, RestoreArgs};
use crate::fmt;

pub fn run(ctx: &Ctx, a: RestoreArgs) -> Result<i32> {
    if a.layout == Layout::Date && a.date.is_none() {
        bail!("--layout date goes with --date");
    }
    if a.date.is_some() {
        return super::restore_date::run(ctx, &a);
    }
    let include = if a.include.is_empty() {
        None
    } else {
        let mut b = GlobSetBuilder::new();
        for g in &a.include {
            let g = g.trim_start_matches('/');
            // `*` stays within one folder, as in a shell; `**` crosses folders.
            let glob = GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .with_context(|| format!("invalid --include pattern {g:?}"))?;
            b.add(glob);
        }
        Some(b.build().context("building --include patterns")?)
    };
    let repo = ctx.open()?;
    let _lock = crate::readonly::shared_lock(ctx, &repo, "restore")?;
    let (sid, snap) = match (&a.snapshot, &a.as_of) {
        (Some(_), Some(_)) => bail!("give either a snapshot or --as-of, not both"),
        (Some(s), None) => repo.find_snapshot(s)?,
        (None, Some(d)) => as_of(&repo, d, a.device.as_deref())?,
        (None, None) => bail!("which snapshot? give an id, `latest`, --date DATE or --as-of DATE"),
    };
    if a.as_of.is_some() {
        ctx.say(format!(
            "restoring snapshot {} of {} (the newest at or before {})",
            sid.short(),
            fmt::time_ns(snap.time),
            a.as_of.as_deref().unwrap_or_default()
        ));
    }
    let index = repo.load_index()?.index;
    let (items, dirs) = restorer::collect(&repo, &index, &snap.tree, &include)?;
    let opts = RestoreOptions {
        target: a.target.clone(),
        include,
        overwrite: a.overwrite,
        dry_run: a.dry_run,
        threads: io_threads(),
    };
    let progress = crate::progress::Progress::new(
        "restore",
        crate::progress::mode(ctx.global.quiet || a.dry_run, a.json),
        crate::progress::Unit::Files,
    );
    let observer = crate::progress::RestoreProgress::new(&progress, &items);
    let stats = restorer::restore(&repo, &index, &items, &dirs, &opts, &observer);
    progress.finish();
    let stats = stats?;
    if a.dry_run {
        return dry_run(ctx, &items, &sid.to_hex(), a.json);
    }
    report(
        ctx,
        &stats,
        &format!("snapshot {}", sid.short()),
        &a.target,
        a.json,
    )
}

/// The newest snapshot taken on or before the end of `date` (UTC), optionally of one device.
fn as_of(repo: &Repository, date: &str, device: Option<&str>) -> Result<(SnapshotId, Snapshot)> {
    let range: DateRange = date.parse()?;
    let (_, hi) = range.day_bounds();
    let (all, _) = repo.snapshots()?;
    all.into_iter()
        .rev()
        .filter(|(_, s)| {
            device.is_none_or(|u| s.source.device.as_ref().is_some_and(|d| d.udid == u))
        })
        .find(|(_, s)| {
            let day = snapvault_repo::time::rfc3339_utc(s.unix_time());
            snapvault_catalog::day_number(&day).is_some_and(|d| d <= hi)
        })
        .ok_or_else(|| anyhow::anyhow!("no snapshot was taken at or before {date}"))
}

pub fn dry_run(ctx: &Ctx, items: &[RestoreItem], snapshot: &str, json: bool) -> Result<i32> {
    let files: Vec<&RestoreItem> = items
        .iter()
        .filter(|i| i.node.kind == NodeKind::File)
        .collect();
    let total: u64 = files.iter().map(|i| i.node.size).sum();
    if json {
        let v: Vec<_> = items
            .iter()
            .map(|i| serde_json::json!({"path": String::from_utf8_lossy(&i.path), "size": i.node.size, "type": i.node.kind}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"snapshot": snapshot, "files": files.len(), "bytes": total, "items": v})
            )?
        );
    } else {
        for i in items {
            println!("{:>12} {}", i.node.size, String::from_utf8_lossy(&i.path));
        }
        ctx.say(format!(
            "would restore {} file(s), {}",
            files.len(),
            fmt::size(total)
        ));
    }
    Ok(0)
}

pub fn report(
    ctx: &Ctx,
    stats: &RestoreStats,
    source: &str,
    target: &std::path::Path,
    json: bool,
) -> Result<i32> {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "snapshot": source,
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
            "restored {} file(s) ({}), {} already right, {} symlink(s), {} folder(s) from {} into {}",
            stats.files_restored,
            fmt::size(stats.bytes_written),
            stats.files_already_right,
            stats.symlinks,
            stats.dirs,
            source,
            target.display()
        ));
    }
    if stats.problems.is_empty() {
        return Ok(crate::exit::OK);
    }
    // The failures last, where they are seen: everything else was restored.
    for (p, why) in &stats.problems {
        eprintln!("error: not restored: {p}: {why}");
    }
    eprintln!(
        "error: {} item(s) were not restored (listed above); everything else was",
        stats.problems.len()
    );
    Ok(crate::exit::INCOMPLETE)
}
